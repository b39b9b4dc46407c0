//! Which transitions a slot write is, for the host's history (`domain::history`): decided here,
//! once, from the slot before and after the write, so every writer records them alike
//! (`SlotWrite::new` appends them to the slot it writes: no call of their own).
//!
//! In the order they happened within the write: a task seen for the first time (`started`, even
//! when its first event is already STOPPED), `running`, `healthy`; a task that ended (`failed`
//! when a failure was counted, else `stopped` — a stop we asked for was recorded when asked);
//! a stop decided (`replaced` for another launch, else `stopped`: the host leaves or no longer
//! selects the daemon); a claim that ended without a task (`failed`: StartTask refused the
//! revision; else `released`); `unschedulable`; `claimed`. A write that changes nothing of
//! these (a host's version, a counter, the deployment tracking the slot) records nothing.

use crate::domain::history::{Entry, Event};
use crate::domain::{Placement, Slot, SlotTask};

/// The entries a write from `before` (`None`: a new slot) to `after` at `now_ms` adds.
pub fn entries(before: Option<&Slot>, after: &Slot, now_ms: i64) -> Vec<Entry> {
    let mut out = Vec::new();
    let cluster = after.cluster_arn.as_str();
    let before_task = before.map(|b| &b.task);
    let before_arn = before.and_then(|b| b.task.task_arn());
    let after_arn = after.task.task_arn();
    let rev_after = after.launch.as_ref().map_or(0, |l| l.revision);
    let rev_before = before
        .and_then(|b| b.launch.as_ref())
        .map_or(rev_after, |l| l.revision);

    // Unschedulable belongs to the deployment that judged the host; the rest to the one that
    // tracks the slot, else to the one whose launch the slot holds.
    let unschedulable = match &after.placement {
        Placement::Unschedulable {
            reason,
            revision,
            deployment,
        } if !before.is_some_and(|b| same_judgment(&b.placement, &after.placement)) => {
            Some((reason, *revision, deployment.as_deref()))
        }
        _ => None,
    };
    let tracking = after
        .tracked_by
        .as_deref()
        .or(before.and_then(|b| b.tracked_by.as_deref()))
        .or(after.started_by())
        .or(before.and_then(|b| b.started_by()))
        .filter(|d| !d.is_empty());
    let entry =
        |event: Event, revision: u32| tracking.map(|d| Entry::new(d, now_ms, event, revision));

    // Tasks seen for the first time: the slot's new task, or the launch's task that stopped at
    // its first event (retired in this same write).
    let retired_now = |arn: &str| {
        after.retired.iter().any(|r| r == arn)
            && before.is_none_or(|b| !b.retired.iter().any(|r| r == arn))
    };
    let appeared = after_arn.filter(|a| Some(*a) != before_arn);
    let launching = matches!(before_task, Some(SlotTask::Launching { .. }));
    let flashed: Vec<&str> = after
        .retired
        .iter()
        .map(String::as_str)
        .filter(|r| launching && retired_now(r))
        .collect();
    for task in flashed.iter().copied().chain(appeared) {
        out.extend(entry(Event::Started, rev_after).map(|e| e.of_task(cluster, task)));
    }
    if let Some(arn) = running(after) {
        if before.and_then(running) != Some(arn) {
            out.extend(entry(Event::Running, rev_after));
        }
        let was_available = before.is_some_and(|b| b.is_available() && running(b) == Some(arn));
        if after.is_available() && !was_available {
            out.extend(entry(Event::Healthy, rev_after));
        }
    }

    // A failure was counted: ECS stopped the task or refused the launch (`last_failure` says why).
    let failure_counted = |task_ended: bool| {
        before.is_some_and(|b| {
            after.last_failure.is_some()
                && (b.failures != after.failures
                    || b.last_failure != after.last_failure
                    || (task_ended && b.retry_at_ms != after.retry_at_ms))
        })
    };
    let failed = |task: Option<&str>| {
        entry(Event::Failed, rev_before).map(|e| {
            let e = e.because(after.last_failure.as_deref().unwrap_or_default());
            match task {
                Some(t) => e.of_task(cluster, t),
                None => e,
            }
        })
    };
    // A task that left the slot is retired by the write that saw it stop.
    let ended = before_arn
        .filter(|b| Some(*b) != after_arn && retired_now(b))
        .into_iter()
        .chain(flashed.iter().copied());
    for task in ended {
        if failure_counted(true) {
            out.extend(failed(Some(task)));
        } else if !matches!(before_task, Some(SlotTask::Stopping { task_arn }) if task_arn == task)
        {
            out.extend(entry(Event::Stopped, rev_before).map(|e| e.of_task(cluster, task)));
        }
    }

    if let SlotTask::Stopping { task_arn } = &after.task {
        if !matches!(before_task, Some(SlotTask::Stopping { task_arn: b }) if b == task_arn) {
            let relaunch = match (before.and_then(|b| b.launch.as_ref()), &after.launch) {
                (Some(b), Some(a)) => !b.runs_same_as(a),
                _ => false,
            };
            let e = if !after.host.is_eligible() {
                entry(Event::Stopped, rev_before).map(|e| e.because(&leaving(after)))
            } else if relaunch {
                entry(Event::Replaced, rev_after)
            } else {
                entry(Event::Stopped, rev_before).map(|e| match after.placement.reason() {
                    Some(r) => e.because(r),
                    None => e,
                })
            };
            out.extend(e.map(|e| e.of_task(cluster, task_arn)));
        }
    }

    let claim = |s: &SlotTask| match s {
        SlotTask::Launching { claim_id, .. } => Some(claim_id.clone()),
        _ => None,
    };
    let claim_before = before_task.and_then(claim);
    let claim_after = claim(&after.task);
    if claim_before.is_some()
        && claim_before != claim_after
        && appeared.is_none()
        && flashed.is_empty()
    {
        if failure_counted(false) {
            out.extend(failed(None));
        } else if unschedulable.is_none() {
            out.extend(entry(Event::Released, rev_before));
        }
    }
    if let Some((reason, revision, judged_by)) = unschedulable {
        if let Some(d) = judged_by.or(tracking) {
            out.push(Entry::new(d, now_ms, Event::Unschedulable, revision).because(reason));
        }
    }
    if claim_after.is_some() && claim_before != claim_after {
        out.extend(entry(Event::Claimed, rev_after));
    }
    out
}

/// The task of the slot, when it runs.
fn running(s: &Slot) -> Option<&str> {
    match &s.task {
        SlotTask::Running { task_arn, .. } => Some(task_arn),
        _ => None,
    }
}

/// Unschedulable before for the same revision and deployment: only the reason's figures moved
/// (the free memory of a busy host changes with every task placed there).
fn same_judgment(before: &Placement, after: &Placement) -> bool {
    match (before, after) {
        (
            Placement::Unschedulable {
                revision: r1,
                deployment: d1,
                ..
            },
            Placement::Unschedulable {
                revision: r2,
                deployment: d2,
                ..
            },
        ) => r1 == r2 && d1 == d2,
        _ => false,
    }
}

/// Why a host's task is stopped when it is no longer eligible.
fn leaving(slot: &Slot) -> String {
    if slot.host.status == crate::domain::HostStatus::Active {
        return "agent disconnected".to_owned();
    }
    let status = serde_json::to_value(slot.host.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("host is {status}")
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
