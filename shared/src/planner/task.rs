//! A task of ours observed (a Task State Change event, or what the reconciler found in ECS).

use crate::domain::{LaunchSpec, Order, Slot, SlotTask, TaskObservation, TaskStatus};

use super::host::{leave_if_ineligible, restart};
use super::rollout::{abandon_surge, finish_surge};
use super::{restart_delay_ms, stop_reason, Effect, Transition, BACKOFF_RESET_AFTER_MS};

/// Decide on one observation of a task of this slot's environment on this slot's host.
///
/// A launch is recorded by its task's first event, not by the launcher: a `Launching` slot adopts
/// the task that carries its `startedBy`. A stop we did not ask for frees the slot, counts a
/// failure and (when no backoff runs) claims the slot again at once, in the same write.
pub fn plan_task(
    slot: &Slot,
    task: &TaskObservation,
    order: &Order,
    now_ms: i64,
    claim_id: &str,
) -> Transition {
    let mut next = slot.clone();
    let alive = !task.last_status.is_stopping() && !task.desired_status.is_stopped();
    let ours = slot.task.task_arn() == Some(task.task_arn.as_str()) || is_our_launch(slot, task);

    // The task a surge replacement keeps running meanwhile: known, never a duplicate.
    if let Some(old) = slot.surge.as_ref().filter(|o| o.task_arn == task.task_arn) {
        if !task.last_status.is_stopped() {
            return Transition::nothing();
        }
        // It ended on its own: its replacement carries on alone.
        next.surge = None;
        next.retire(&old.task_arn);
        return Transition::write_if_changed(Some(slot), next, Effect::None);
    }

    if ours {
        let known_version = match &slot.task {
            SlotTask::Pending { version, .. } | SlotTask::Running { version, .. } => *version,
            _ => i64::MIN,
        };
        if task.version <= known_version {
            return Transition::nothing(); // duplicate or older event
        }
        if task.last_status.is_stopped() {
            let asked = matches!(slot.task, SlotTask::Stopping { .. }) || task.stopped_by_us();
            next.task = SlotTask::Vacant;
            next.baking = false;
            next.retire(&task.task_arn);
            if !asked {
                // Stopped before it proved healthy: the revision failed on this host.
                if !slot.is_available() && slot.tracked_by.is_some() {
                    next.failed_in = slot.tracked_by.clone();
                }
                let healthy_run = task.ran_for_ms.unwrap_or(0) >= BACKOFF_RESET_AFTER_MS;
                next.failures = if healthy_run { 1 } else { slot.failures + 1 };
                next.retry_at_ms = now_ms + restart_delay_ms(next.failures);
                next.last_failure = Some(
                    task.stopped_reason
                        .clone()
                        .unwrap_or_else(|| "task stopped".to_owned()),
                );
            }
            // A surge's new task failed: the old one, still running, carries on (no restart).
            if abandon_surge(&mut next) {
                return Transition::write_if_changed(Some(slot), next, Effect::None);
            }
            // Restart right away when the host still wants it and no backoff runs.
            let effect = restart(&mut next, order, now_ms, claim_id);
            return Transition::write_if_changed(Some(slot), next, effect);
        }
        if !alive {
            return Transition::nothing(); // on its way down: its STOPPED event decides
        }
        if matches!(slot.task, SlotTask::Stopping { .. }) {
            // We asked ECS to stop it: a late event that shows it running undoes nothing (the
            // slot may already carry its replacement's launch). Its STOPPED event decides; a stop
            // that did not take is asked for again by the reconciler.
            return Transition::nothing();
        }
        next.task = observed(task, &slot.task, now_ms);
        if task.last_status == TaskStatus::Running {
            // A daemon that reached RUNNING is no failure of this deployment.
            next.last_failure = None;
            if !matches!(slot.task, SlotTask::Running { .. }) {
                next.baking = slot.bake_ms > 0;
            }
        }
        // The host may have left while the launch was in flight; once healthy, a surge's new
        // task takes over from the old one.
        let effect = match leave_if_ineligible(&mut next, order, now_ms) {
            Effect::None => finish_surge(&mut next),
            leave => leave,
        };
        return Transition::write_if_changed(Some(slot), next, effect);
    }

    if !alive {
        // An old or duplicate task of ours ended.
        return Transition::nothing();
    }
    match &slot.task {
        // A late event of a task we saw stop, or one we asked to stop (a surge's old task, once
        // its replacement took over): never adopted, and ignored while the slot launches its own
        // (beside which it is then a duplicate). Elsewhere it is stopped like any other task of
        // ours the slot does not record (again, if it had stopped: a StopTask that failed leaves
        // it running otherwise).
        SlotTask::Launching { .. } if slot.retired.contains(&task.task_arn) => {
            Transition::nothing()
        }
        SlotTask::Vacant
            if slot.host.is_eligible()
                && slot.placement.is_desired()
                && slot.retired.contains(&task.task_arn) =>
        {
            Transition::nothing()
        }
        // A task of ours we lost track of (lost record, started by hand in our group), on a host
        // where the daemon belongs: keep it.
        SlotTask::Vacant if slot.host.is_eligible() && slot.placement.is_desired() => {
            next.task = observed(task, &slot.task, now_ms);
            let mut launch = slot
                .launch
                .clone()
                .filter(|l| {
                    task.task_definition
                        .as_deref()
                        .is_none_or(|td| td == l.task_definition)
                })
                .unwrap_or_else(|| adopted_launch(slot, task));
            if let Some(by) = &task.started_by {
                launch.started_by = by.clone();
            }
            next.launch = Some(launch);
            Transition::write_if_changed(Some(slot), next, Effect::None)
        }
        // The host already has its task (a duplicate), or the daemon does not belong here.
        _ => Transition::only(Effect::Stop {
            task_arn: task.task_arn.clone(),
            reason: stop_reason(if slot.task.is_occupied() {
                "duplicate daemon task on this host"
            } else {
                "daemon not placed on this host"
            }),
        }),
    }
}

/// The task carries the mark of the launch in flight on this slot (and is not one we saw stop).
fn is_our_launch(slot: &Slot, task: &TaskObservation) -> bool {
    matches!(slot.task, SlotTask::Launching { .. })
        && task.started_by.is_some()
        && task.started_by.as_deref() == slot.started_by()
        && !slot.retired.contains(&task.task_arn)
}

/// The slot's task as this observation shows it.
pub(super) fn observed(task: &TaskObservation, was: &SlotTask, now_ms: i64) -> SlotTask {
    if task.last_status == TaskStatus::Running {
        let since_ms = match was {
            SlotTask::Running { since_ms, .. } => *since_ms,
            _ => now_ms,
        };
        SlotTask::Running {
            task_arn: task.task_arn.clone(),
            version: task.version,
            since_ms,
        }
    } else {
        SlotTask::Pending {
            task_arn: task.task_arn.clone(),
            version: task.version,
        }
    }
}

/// The launch of a task we did not start ourselves, as far as the observation tells (revision
/// unknown: 0). A task that runs what the revision wants is then kept and counted for it; one that
/// does not is replaced like any other revision's task.
fn adopted_launch(slot: &Slot, task: &TaskObservation) -> LaunchSpec {
    LaunchSpec {
        task_definition: task
            .task_definition
            .clone()
            .or_else(|| slot.task_definition().map(str::to_owned))
            .unwrap_or_default(),
        revision: 0,
        started_by: task.started_by.clone().unwrap_or_default(),
        group: crate::domain::task::task_group(&slot.environment),
        overrides: None,
        reserves: Default::default(),
    }
}
