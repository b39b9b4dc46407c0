//! A rolling update, host by host: replacing another revision's task, and bakes that end.

use crate::domain::{Order, Placement, Slot, SlotTask, SurgedTask, Target, Verdict};

use super::{stop_reason, Effect, Transition};

/// Whether rolling `target` out still has to change this host's task: an eligible host whose
/// live task runs something other than what the verdict launches there, or belongs to another
/// revision that no longer places the daemon here. A host the revision cannot run on keeps what
/// it runs.
pub fn needs_replacement(target: &Target, slot: &Slot, verdict: &Verdict) -> bool {
    slot.host.is_eligible()
        && matches!(
            slot.task,
            SlotTask::Pending { .. } | SlotTask::Running { .. }
        )
        && replaces(target, slot, verdict)
}

/// A launch in flight on this host that rolling `target` out will have to replace once its task
/// shows up (a restart of the old revision, a join just before the deployment).
pub fn launch_to_replace(target: &Target, slot: &Slot, verdict: &Verdict) -> bool {
    slot.host.is_eligible()
        && matches!(slot.task, SlotTask::Launching { .. })
        && replaces(target, slot, verdict)
}

/// What the slot runs (or launches) is not what the verdict wants there.
fn replaces(target: &Target, slot: &Slot, verdict: &Verdict) -> bool {
    match verdict {
        Verdict::Run(launch) => slot.launch.as_ref().is_none_or(|l| !l.runs_same_as(launch)),
        Verdict::Excluded { .. } => slot
            .launch
            .as_ref()
            .is_none_or(|l| l.revision != target.revision),
        Verdict::Wait { .. } | Verdict::Unschedulable(_) => false,
    }
}

/// One step of a rolling update on one host: stop the old task; its STOPPED event starts the new
/// launch on the host (daemons often bind host ports, so never both at once). The slot already
/// holds the new launch and counts as pending for the deployment until that task is healthy. A
/// host the new revision leaves out is stopped the same way, within the same budget: a selector
/// that leaves every host out does not take every daemon down at once.
pub fn plan_replace(target: &Target, slot: &Slot, verdict: &Verdict) -> Transition {
    if !needs_replacement(target, slot, verdict) {
        return Transition::nothing();
    }
    let Some(old) = slot.task.task_arn().map(str::to_owned) else {
        return Transition::nothing();
    };
    let mut next = slot.clone();
    next.task = SlotTask::Stopping {
        task_arn: old.clone(),
    };
    replaced_for(target, verdict, &mut next);
    Transition::write_if_changed(
        Some(slot),
        next,
        Effect::Stop {
            task_arn: old,
            reason: stop_reason(&format!("replaced by deployment {}", target.deployment_id)),
        },
    )
}

/// One step of a surge rollout on one host (`maxSurge`): the new launch starts while the old task
/// keeps running (kept in `surge`); the old one is stopped once the new one is healthy
/// (`finish_surge`), and runs on alone if the new one fails. `verdict` is the decision with the
/// old task still there (both must fit; the caller falls back to `plan_replace` where they do
/// not).
pub fn plan_surge(
    target: &Target,
    slot: &Slot,
    verdict: &Verdict,
    now_ms: i64,
    claim_id: &str,
) -> Transition {
    let Verdict::Run(launch) = verdict else {
        return Transition::nothing();
    };
    if !needs_replacement(target, slot, verdict) || slot.surge.is_some() {
        return Transition::nothing();
    }
    let (SlotTask::Pending { task_arn, version }
    | SlotTask::Running {
        task_arn, version, ..
    }) = &slot.task
    else {
        return Transition::nothing();
    };
    let since_ms = match &slot.task {
        SlotTask::Running { since_ms, .. } => *since_ms,
        _ => now_ms,
    };
    let mut next = slot.clone();
    next.surge = Some(SurgedTask {
        task_arn: task_arn.clone(),
        version: *version,
        since_ms,
        launch: slot.launch.clone(),
    });
    next.task = SlotTask::Launching {
        claim_id: claim_id.to_owned(),
        since_ms: now_ms,
    };
    replaced_for(target, verdict, &mut next);
    Transition::write_if_changed(Some(slot), next, Effect::Start(launch.clone()))
}

/// The slot as the deployment's replacement leaves it, stop-then-start or surge alike: the new
/// revision's placement and launch, counted by the deployment, with a fresh record of failures.
fn replaced_for(target: &Target, verdict: &Verdict, next: &mut Slot) {
    next.placement = Placement::of(verdict, target.revision);
    if let Verdict::Run(launch) = verdict {
        next.launch = Some(launch.clone());
    }
    next.tracked_by = target.tracking.clone();
    next.bake_ms = target.bake_ms();
    next.baking = false;
    next.failures = 0;
    next.retry_at_ms = 0;
    next.last_failure = None;
}

/// The surge's new task is healthy: the old one it kept running stops now.
pub(super) fn finish_surge(next: &mut Slot) -> Effect {
    if !next.is_available() {
        return Effect::None;
    }
    let Some(old) = next.surge.take() else {
        return Effect::None;
    };
    next.retire(&old.task_arn);
    Effect::Stop {
        task_arn: old.task_arn,
        reason: stop_reason("replaced (its surge replacement is healthy)"),
    }
}

/// The surge's new task failed before it was healthy: the old one, still running, is the slot's
/// task again (no restart of the new one; its failure counts for the deployment).
pub(super) fn abandon_surge(next: &mut Slot) -> bool {
    let Some(old) = next.surge.take() else {
        return false;
    };
    next.task = SlotTask::Running {
        task_arn: old.task_arn,
        version: old.version,
        since_ms: old.since_ms,
    };
    next.launch = old.launch;
    next.baking = false;
    true
}

/// What a wake-up for this slot finds due: the end of its bake, or its restart now that its
/// backoff is over (nothing when neither is due yet).
pub fn plan_due(slot: &Slot, order: &Order, now_ms: i64, claim_id: &str) -> Transition {
    let baked = plan_baked(slot, now_ms);
    if baked.is_nothing() {
        super::plan_restart(slot, order, now_ms, claim_id)
    } else {
        baked
    }
}

/// A new task that has stayed RUNNING for its bake time now counts as healthy.
pub fn plan_baked(slot: &Slot, now_ms: i64) -> Transition {
    match &slot.task {
        SlotTask::Running { since_ms, .. } if slot.baking && now_ms - since_ms >= slot.bake_ms => {
            let mut next = slot.clone();
            next.baking = false;
            let effect = finish_surge(&mut next);
            Transition::write_if_changed(Some(slot), next, effect)
        }
        _ => Transition::nothing(),
    }
}
