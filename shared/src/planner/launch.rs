//! What StartTask did with a claim, and claims whose launcher went quiet.

use crate::domain::{Order, Placement, Refusal, Slot, SlotTask, TaskObservation};

use super::rollout::abandon_surge;
use super::task::{observed, plan_task};
use super::{restart_delay_ms, Effect, Transition, CLAIM_LEASE_MS};

/// StartTask refused this host with ECS's `reason`. When the host cannot take the task (resources,
/// attributes, agent, the host gone) it is unschedulable for this revision until the host
/// changes: no failure, no timer. Otherwise the revision failed here: free the slot with a
/// failure and a backoff.
pub fn plan_start_refused(slot: &Slot, claim_id: &str, reason: &str, now_ms: i64) -> Transition {
    let SlotTask::Launching { claim_id: c, .. } = &slot.task else {
        return Transition::nothing();
    };
    if c != claim_id {
        return Transition::nothing();
    }
    let mut next = slot.clone();
    next.task = SlotTask::Vacant;
    match Refusal::classify(reason) {
        Refusal::HostCannot(reason) => {
            next.placement = Placement::Unschedulable {
                reason,
                revision: slot.launch.as_ref().map_or(0, |l| l.revision),
                deployment: slot
                    .tracked_by
                    .clone()
                    .or_else(|| slot.started_by().map(str::to_owned)),
            };
            next.tracked_by = None;
        }
        Refusal::Failure(reason) => {
            next.failures = slot.failures + 1;
            next.retry_at_ms = now_ms + restart_delay_ms(next.failures).max(1_000);
            next.last_failure = Some(reason);
            if slot.tracked_by.is_some() {
                next.failed_in = slot.tracked_by.clone();
            }
        }
    }
    // A surge's launch refused: the old task, still running, carries on.
    if abandon_surge(&mut next) && next.last_failure.is_none() {
        next.tracked_by = None;
    }
    Transition::write_if_changed(Some(slot), next, Effect::None)
}

/// StartTask was throttled: nothing started and nothing failed; free the claim so the next event
/// or reconcile launches again (not before a second has passed).
pub fn plan_start_throttled(slot: &Slot, claim_id: &str, now_ms: i64) -> Transition {
    match &slot.task {
        SlotTask::Launching { claim_id: c, .. } if c == claim_id => {
            let mut next = slot.clone();
            next.task = SlotTask::Vacant;
            next.retry_at_ms = next.retry_at_ms.max(now_ms + 1_000);
            // A surge's launch: the old task runs on; the deployment takes the host up again.
            if abandon_surge(&mut next) {
                next.tracked_by = None;
            }
            Transition::write_if_changed(Some(slot), next, Effect::None)
        }
        _ => Transition::nothing(),
    }
}

/// A claim whose writer went quiet past the lease. The caller has looked the host's tasks up in
/// ECS: `found` is a live task of ours there, or none (free the slot to launch again). A task
/// carrying the claim's `startedBy` is its launch (the answer was lost): adopted as such. Any
/// other (started by hand, or by an older launch) is not what the claim launches: it is decided
/// on the freed slot like any task we lost track of — recorded as what it runs where the daemon
/// belongs (a rollout replaces it if it runs another revision), stopped elsewhere. A surge's claim
/// that launched nothing gives the slot back to the old task it kept running.
pub fn plan_expired_claim(slot: &Slot, found: Option<&TaskObservation>, now_ms: i64) -> Transition {
    if !claim_expired(slot, now_ms) {
        return Transition::nothing();
    }
    let mut freed = slot.clone();
    freed.task = SlotTask::Vacant;
    // A surge's launch that never showed up: the old task runs on (as when StartTask refused or
    // was throttled); the deployment takes the host up again.
    if abandon_surge(&mut freed) {
        freed.tracked_by = None;
    }
    let (next, effect) = match found {
        Some(task)
            if task.started_by.is_some() && task.started_by.as_deref() == slot.started_by() =>
        {
            let mut next = slot.clone();
            next.task = observed(task, &slot.task, now_ms);
            (next, Effect::None)
        }
        // On a vacant slot the decision never claims, so it needs no claim id.
        Some(task) => {
            let t = plan_task(&freed, task, &Order::none(), now_ms, "");
            (t.next.unwrap_or(freed), t.effect)
        }
        None => (freed, Effect::None),
    };
    Transition::write_if_changed(Some(slot), next, effect)
}

/// One StartTask attempt gives up after this (the ECS adapter's operation timeout): a call cannot
/// hang on past its claim's lease.
pub const START_TASK_ATTEMPT_TIMEOUT_MS: i64 = 5_000;
/// Throttled StartTask calls the ECS adapter retries, waiting `50 << n` ms and up to 255 ms more.
pub const START_TASK_THROTTLE_RETRIES: u32 = 4;
/// The longest one StartTask call of the adapter can take, every attempt and wait included.
pub const START_TASK_MAX_MS: i64 = (START_TASK_THROTTLE_RETRIES as i64 + 1)
    * START_TASK_ATTEMPT_TIMEOUT_MS
    + ((50 << (START_TASK_THROTTLE_RETRIES + 1)) - 100)
    + 255 * START_TASK_THROTTLE_RETRIES as i64;
/// How far two Lambdas' clocks may disagree, and ECS may act after the call it answered.
pub const CLOCK_MARGIN_MS: i64 = 10_000;
/// The last moment after its claim a launcher may still call StartTask: its call then ends
/// (answered or timed out) before the lease does, so no other writer can have taken the host
/// over meanwhile (a claim is taken over only once it is `CLAIM_LEASE_MS` old).
pub const LAUNCH_DEADLINE_MS: i64 = CLAIM_LEASE_MS - START_TASK_MAX_MS - CLOCK_MARGIN_MS;
const _: () = assert!(
    LAUNCH_DEADLINE_MS > 60_000,
    "a launcher needs time to launch"
);

/// Whether the holder of this slot's claim may still call StartTask for it (see
/// `LAUNCH_DEADLINE_MS`); past that, it lets the claim go instead.
pub fn may_launch(slot: &Slot, now_ms: i64) -> bool {
    matches!(slot.task, SlotTask::Launching { since_ms, .. } if now_ms - since_ms <= LAUNCH_DEADLINE_MS)
}

pub fn claim_expired(slot: &Slot, now_ms: i64) -> bool {
    matches!(slot.task, SlotTask::Launching { since_ms, .. } if now_ms - since_ms >= CLAIM_LEASE_MS)
}
