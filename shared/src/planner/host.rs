//! A host, observed or re-planned, for one environment.

use crate::domain::{
    Host, HostState, HostStatus, Order, Placement, Slot, SlotTask, Target, Verdict,
};

use super::{stop_reason, Effect, Transition, GONE_HOST_TTL_SECS};

/// Decide for one host of `target`'s environment.
///
/// `slot` is the record as read (`None`: we never saw this host); `observed` the host as an event
/// or ECS just described it (`None`: decide from the record alone); `order` how the daemons this
/// one depends on, and those depending on it, stand on the host. `target: None` means the
/// environment wants nothing new started (not deployed yet, or being deleted).
///
/// The record keeps the host's state only when it changes something a decision depends on: the
/// events ECS sends for every task placed on a host then cost a read and no write. The price: an
/// older status change delivered after such an event is still applied, and corrected by the next
/// event (which the change it causes brings).
pub fn plan_host(
    target: Option<&Target>,
    slot: Option<&Slot>,
    observed: Option<&Host>,
    order: &Order,
    now_ms: i64,
    claim_id: &str,
) -> Transition {
    let recorded = slot.map(|s| &s.host);
    // An observation at the recorded version or later shows the host as it is now.
    let facts = observed.filter(|o| recorded.is_none_or(|r| o.state.version >= r.version));
    let newer = facts.is_some_and(|o| recorded.is_none_or(|r| o.state.version > r.version));
    let state: HostState = match (facts, recorded) {
        (Some(o), _) => o.state.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => return Transition::nothing(),
    };
    let mut next = match (slot, target) {
        (Some(s), _) => s.clone(),
        (None, Some(t)) => Slot::new(&t.environment, &t.cluster_arn, state.clone()),
        (None, None) => return Transition::nothing(),
    };
    if newer && recorded.is_some_and(|r| r.differs_for_decisions(&state)) {
        next.host = state.clone();
    }
    let mut effect = Effect::None;

    if state.is_eligible() {
        next.expires_at = None;
        if let Some(t) = target {
            next.depends_on = t.spec.depends_on.clone();
            let verdict = match facts {
                Some(host) if !keeps_refusal(&next, t, newer) => {
                    let own = next
                        .launch
                        .as_ref()
                        .filter(|_| next.task.is_occupied())
                        .map(|l| &l.reserves);
                    Some(t.wants(host, order, own))
                }
                // Without a look at the host, only the record's own launch of this revision.
                _ => order.verdict(&next).filter(|_| {
                    next.launch
                        .as_ref()
                        .is_some_and(|l| l.revision == t.revision)
                }),
            };
            if let Some(v) = verdict {
                effect = apply(t, v, &mut next, now_ms, claim_id);
            }
        }
    } else {
        effect = leave(&state, order, &mut next, now_ms);
    }
    if newer && slot != Some(&next) {
        next.host = state; // whatever is written carries the latest version
    }
    Transition::write_if_changed(slot, next, effect)
}

/// Launch the slot's own launch again, when its record allows and nothing runs: a restart after
/// a crash, a daemon released by the one it waited for, a backoff that ended. No target and no
/// look at the host: what the record says, with the dependencies re-checked.
pub fn plan_restart(slot: &Slot, order: &Order, now_ms: i64, claim_id: &str) -> Transition {
    let mut next = slot.clone();
    let effect = restart(&mut next, order, now_ms, claim_id);
    Transition::write_if_changed(Some(slot), next, effect)
}

pub(super) fn restart(next: &mut Slot, order: &Order, now_ms: i64, claim_id: &str) -> Effect {
    if !next.host.is_eligible() || next.task != SlotTask::Vacant {
        return Effect::None;
    }
    match order.verdict(next) {
        Some(Verdict::Run(launch)) if now_ms >= next.retry_at_ms => {
            if matches!(
                next.placement,
                Placement::Waiting { .. } | Placement::Blocked { .. }
            ) {
                next.placement = Placement::Runs;
            }
            claim(next, launch, now_ms, claim_id)
        }
        Some(Verdict::Wait { reason, .. }) => {
            next.placement = Placement::Waiting { reason };
            Effect::None
        }
        Some(Verdict::Excluded {
            reason,
            blocked: true,
        }) => {
            next.placement = Placement::Blocked { reason };
            Effect::None
        }
        _ => Effect::None,
    }
}

/// A refusal (StartTask said the host cannot take the task) stands for its revision until the
/// host changes: an observation at the same version does not retry it.
fn keeps_refusal(slot: &Slot, t: &Target, newer: bool) -> bool {
    !newer
        && slot.task == SlotTask::Vacant
        && matches!(slot.placement, Placement::Unschedulable { revision, .. } if revision == t.revision)
}

fn claim(
    next: &mut Slot,
    launch: crate::domain::LaunchSpec,
    now_ms: i64,
    claim_id: &str,
) -> Effect {
    next.task = SlotTask::Launching {
        claim_id: claim_id.to_owned(),
        since_ms: now_ms,
    };
    next.baking = false;
    next.launch = Some(launch.clone());
    Effect::Start(launch)
}

/// The verdict on an eligible host, applied to its slot.
fn apply(t: &Target, verdict: Verdict, next: &mut Slot, now_ms: i64, claim_id: &str) -> Effect {
    let occupied = next.task.is_occupied();
    let judge = t.tracking.as_deref().unwrap_or(&t.deployment_id);
    let placement = Placement::of(&verdict, t.revision).judged_by(judge);
    match verdict {
        Verdict::Run(launch) | Verdict::Wait { launch, .. } if !occupied => {
            // Another revision (or another launch for this host) starts with a clean slate: the
            // backoff was earned by what ran before.
            let fresh = next
                .launch
                .as_ref()
                .is_none_or(|l| l.revision != launch.revision || !l.runs_same_as(&launch));
            if fresh {
                next.failures = 0;
                next.retry_at_ms = 0;
            }
            next.placement = placement;
            next.bake_ms = t.bake_ms();
            track(t, next);
            if matches!(next.placement, Placement::Runs) && now_ms >= next.retry_at_ms {
                return claim(next, launch, now_ms, claim_id);
            }
            next.launch = Some(launch);
            Effect::None
        }
        Verdict::Run(launch) | Verdict::Wait { launch, .. } => {
            next.placement = Placement::Runs;
            // The task here runs what is wanted: it counts for this revision and deployment now.
            let same = next
                .launch
                .as_ref()
                .is_some_and(|l| l.runs_same_as(&launch));
            if same
                && matches!(
                    next.task,
                    SlotTask::Pending { .. } | SlotTask::Running { .. }
                )
            {
                if let Some(l) = next.launch.as_mut() {
                    l.revision = launch.revision;
                    l.started_by = launch.started_by;
                }
                track(t, next);
            }
            Effect::None
        }
        Verdict::Unschedulable(_) => {
            next.placement = placement;
            if !occupied {
                next.tracked_by = None;
            }
            Effect::None
        }
        Verdict::Excluded { reason, .. } => {
            next.placement = placement;
            match &next.task {
                SlotTask::Vacant => {
                    next.tracked_by = None;
                    Effect::None
                }
                // This revision's own task on a host it no longer wants (relabelled): stop it.
                // Another revision's task is the rollout's to replace, within its budget.
                SlotTask::Pending { task_arn, .. } | SlotTask::Running { task_arn, .. }
                    if next
                        .launch
                        .as_ref()
                        .is_none_or(|l| l.revision == t.revision) =>
                {
                    let task_arn = task_arn.clone();
                    next.task = SlotTask::Stopping {
                        task_arn: task_arn.clone(),
                    };
                    next.tracked_by = None;
                    Effect::Stop {
                        task_arn,
                        reason: stop_reason(&format!("not placed here: {reason}")),
                    }
                }
                _ => Effect::None,
            }
        }
    }
}

/// An in-progress deployment counts the slot.
fn track(t: &Target, next: &mut Slot) {
    if t.tracking.is_some() && next.tracked_by != t.tracking {
        next.tracked_by = t.tracking.clone();
    }
}

/// A host that is not eligible: nothing new, and a host that drains or left loses its daemon —
/// once its other tasks are gone (drain-last: their logs and metrics still ship) and the daemons
/// that depend on this one have stopped there.
fn leave(state: &HostState, order: &Order, next: &mut Slot, now_ms: i64) -> Effect {
    // An in-progress deployment no longer waits for this host.
    next.tracked_by = None;
    let draining_others =
        state.status == HostStatus::Draining && state.other_tasks.is_some_and(|n| n > 0);
    let leaving = state.status == HostStatus::Draining || state.status.is_gone();
    let mut effect = Effect::None;
    if leaving && !draining_others && !order.dependents_live {
        // A surge's old task goes first; the new one at the next decision (its STOPPED event).
        if let Some(old) = next.surge.take() {
            next.retire(&old.task_arn);
            return Effect::Stop {
                task_arn: old.task_arn,
                reason: stop_reason(&format!("host is {:?}", state.status)),
            };
        }
        if let SlotTask::Pending { task_arn, .. } | SlotTask::Running { task_arn, .. } = &next.task
        {
            effect = Effect::Stop {
                task_arn: task_arn.clone(),
                reason: stop_reason(&format!("host is {:?}", state.status)),
            };
            next.task = SlotTask::Stopping {
                task_arn: task_arn.clone(),
            };
        }
    }
    if state.status.is_gone() && next.task == SlotTask::Vacant {
        next.expires_at = Some(now_ms / 1000 + GONE_HOST_TTL_SECS);
    }
    effect
}

pub(super) fn leave_if_ineligible(next: &mut Slot, order: &Order, now_ms: i64) -> Effect {
    if next.host.is_eligible() {
        return Effect::None;
    }
    let state = next.host.clone();
    leave(&state, order, next, now_ms)
}
