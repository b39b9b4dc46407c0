//! The pure planner: what one slot (environment × host) should become, given what we just learnt.
//! No I/O and no clock: callers pass `now_ms` and a fresh `claim_id`, and carry out the
//! `Transition` (a compare-and-swap write of the slot, then at most one effect). Whether the
//! daemon belongs on a host at all is the domain's one decision, `Target::wants`; the planner
//! applies it to what the slot records.
//!
//! - `host`: a host observed (or re-planned) for an environment: claim, keep, wait, stop.
//! - `task`: a task of ours observed: adopt it, record it, restart it, or stop a duplicate.
//! - `launch`: what StartTask did (refused, throttled), and claims whose launcher went quiet.
//! - `rollout`: replacing another revision's task within a budget; bakes that end.
//! - `counters`: the deployment counters each slot write carries.
//! - `history`: which transitions a slot write is, for the host's history it also carries.
//!
//! Invariants (property-tested in convergence_tests.rs, unit-tested in tests.rs):
//! - a slot is claimed (`Launching`) only from `Vacant`, so one launch per slot at a time;
//! - an observation older than the slot's record never changes a decision;
//! - a host that cannot run the daemon is `Unschedulable`, never a failure, never on a timer;
//! - a daemon starts on a host only once the daemons it depends on are healthy there, and on a
//!   host that drains it stops before them.

mod counters;
pub mod history;
mod host;
mod launch;
mod rollout;
mod task;

pub use counters::{bucket, counter_deltas, Bucket, Counts, SlotWrite};
pub use host::{plan_host, plan_restart};
pub use launch::{
    claim_expired, may_launch, plan_expired_claim, plan_start_refused, plan_start_throttled,
    LAUNCH_DEADLINE_MS, START_TASK_ATTEMPT_TIMEOUT_MS, START_TASK_MAX_MS,
    START_TASK_THROTTLE_RETRIES,
};
pub use rollout::{
    launch_to_replace, needs_replacement, plan_baked, plan_due, plan_replace, plan_surge,
};
pub use task::plan_task;

use crate::domain::{LaunchSpec, Slot};

/// A claim older than this belongs to a writer that died between claiming and launching.
pub const CLAIM_LEASE_MS: i64 = 120_000;
/// A task that ran this long before stopping was healthy: its stop starts the backoff afresh.
pub const BACKOFF_RESET_AFTER_MS: i64 = 600_000;
/// Kubernetes DaemonSet: per-node backoff from 1 s doubling to 15 min.
pub const BACKOFF_MAX_MS: i64 = 900_000;
/// Records of a host that left the cluster expire after a day (the version guard outlives stragglers).
pub const GONE_HOST_TTL_SECS: i64 = 86_400;

/// What the caller must do: write `next` (compare-and-swap on the slot's current `rev`), then the effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `None`: the record stays as it is.
    pub next: Option<Slot>,
    pub effect: Effect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// StartTask of this launch on the slot's host, once `next` (a `Launching` claim) is written.
    Start(LaunchSpec),
    /// StopTask, after `next` is written.
    Stop {
        task_arn: String,
        reason: String,
    },
}

/// Delay before the restart after `failures` consecutive unasked stops: none for the first,
/// then 1 s, 2 s, 4 s … up to 15 min.
pub fn restart_delay_ms(failures: u32) -> i64 {
    if failures <= 1 {
        return 0;
    }
    let exp = (failures - 2).min(20);
    (1_000i64 << exp).min(BACKOFF_MAX_MS)
}

fn stop_reason(why: &str) -> String {
    format!("{}{why}", crate::domain::task::STOP_REASON_PREFIX)
}

impl Transition {
    pub fn nothing() -> Self {
        Self {
            next: None,
            effect: Effect::None,
        }
    }

    /// An effect with nothing to record.
    pub fn only(effect: Effect) -> Self {
        Self { next: None, effect }
    }

    fn write_if_changed(before: Option<&Slot>, next: Slot, effect: Effect) -> Self {
        let changed = before != Some(&next);
        Self {
            next: changed.then_some(next),
            effect,
        }
    }

    pub fn is_nothing(&self) -> bool {
        self.next.is_none() && self.effect == Effect::None
    }
}

#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod surge_tests;
#[cfg(test)]
mod tests;
