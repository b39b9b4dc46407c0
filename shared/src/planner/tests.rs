//! Unit tests of the pure planner: one decision per case, GIVEN / WHEN / THEN.

use super::*;
use crate::domain::resources::{Resources, TaskNeeds};
use crate::domain::{
    DaemonSpec, Host, HostState, HostStatus, LaunchSpec, Order, Placement, Slot, SlotTask, Target,
    TaskObservation, TaskStatus,
};

const HOST: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/demo/h1";
const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/demo";
const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/agent:1";
const NOW: i64 = 1_000_000;

fn spec(td: &str) -> DaemonSpec {
    DaemonSpec::of_task_definition(td, TaskNeeds::default())
}

fn target(tracking: Option<&str>) -> Target {
    Target::new("env", CLUSTER, 1, &spec(TD), "D1", tracking)
}

fn host(status: HostStatus, agent: bool, version: i64) -> Host {
    Host::from_state(HostState {
        container_instance_arn: HOST.into(),
        status,
        agent_connected: agent,
        version,
        other_tasks: None,
    })
}

fn active(version: i64) -> Host {
    host(HostStatus::Active, true, version)
}

fn launch(td: &str, revision: u32, started_by: &str) -> LaunchSpec {
    LaunchSpec {
        task_definition: td.into(),
        revision,
        started_by: started_by.into(),
        group: crate::domain::task::task_group("env"),
        overrides: None,
        reserves: Default::default(),
    }
}

fn slot_with(task: SlotTask, h: Host) -> Slot {
    let mut s = Slot::new("env", CLUSTER, h.state);
    s.task = task;
    s.launch = Some(launch(TD, 1, "D1"));
    s.rev = 3;
    s
}

fn running(arn: &str, version: i64) -> SlotTask {
    SlotTask::Running {
        task_arn: arn.into(),
        version,
        since_ms: 0,
    }
}

fn launching(claim: &str) -> SlotTask {
    SlotTask::Launching {
        claim_id: claim.into(),
        since_ms: NOW,
    }
}

fn task(arn: &str, last: TaskStatus, desired: TaskStatus, version: i64) -> TaskObservation {
    TaskObservation {
        task_arn: arn.into(),
        container_instance_arn: HOST.into(),
        environment: "env".into(),
        started_by: Some("D1".into()),
        task_definition: Some(TD.into()),
        last_status: last,
        desired_status: desired,
        stopped_reason: Some("Essential container in task exited".into()),
        version,
        ran_for_ms: Some(5_000),
    }
}

fn none() -> Order {
    Order::none()
}

fn is_start(e: &Effect) -> bool {
    matches!(e, Effect::Start(_))
}

#[test]
fn a_new_eligible_host_is_claimed_and_started() {
    // GIVEN a deployed environment and a host we never saw
    // WHEN the host is observed ACTIVE with its agent connected
    let t = plan_host(
        Some(&target(Some("D1"))),
        None,
        Some(&active(1)),
        &none(),
        NOW,
        "C1",
    );
    // THEN the slot is claimed for this launch and the task is started
    let next = t.next.expect("a write");
    assert_eq!(t.effect, Effect::Start(launch(TD, 1, "D1")));
    assert_eq!(next.task, launching("C1"));
    assert_eq!(next.launch, Some(launch(TD, 1, "D1")));
    assert_eq!(next.tracked_by.as_deref(), Some("D1"));
}

#[test]
fn nothing_starts_before_the_environment_is_deployed() {
    let t = plan_host(None, None, Some(&active(1)), &none(), NOW, "C1");
    assert!(t.is_nothing());
}

#[test]
fn ineligible_hosts_get_nothing_new() {
    for h in [
        host(HostStatus::Active, false, 1),
        host(HostStatus::Draining, true, 1),
        host(HostStatus::Registering, true, 1),
        host(HostStatus::Inactive, false, 1),
        host(HostStatus::Deregistering, false, 1),
    ] {
        let t = plan_host(Some(&target(None)), None, Some(&h), &none(), NOW, "C1");
        assert!(!is_start(&t.effect), "{h:?}");
        if let Some(next) = t.next {
            assert_eq!(next.task, SlotTask::Vacant, "{h:?}");
        }
    }
}

#[test]
fn an_occupied_slot_is_never_claimed_again() {
    for task in [
        launching("other"),
        SlotTask::Pending {
            task_arn: "t1".into(),
            version: 1,
        },
        running("t1", 2),
        SlotTask::Stopping {
            task_arn: "t1".into(),
        },
    ] {
        let s = slot_with(task.clone(), active(1));
        let t = plan_host(
            Some(&target(None)),
            Some(&s),
            Some(&active(2)),
            &none(),
            NOW,
            "C2",
        );
        assert!(!is_start(&t.effect), "{task:?}");
    }
}

#[test]
fn stale_and_duplicate_host_observations_are_ignored() {
    // GIVEN a slot that knows the host DRAINING at version 5
    let s = slot_with(SlotTask::Vacant, host(HostStatus::Draining, true, 5));
    // WHEN an older ACTIVE (v3) arrives, or the draining state again at the same version
    for old in [active(3), host(HostStatus::Draining, true, 5)] {
        let t = plan_host(
            Some(&target(None)),
            Some(&s),
            Some(&old),
            &none(),
            NOW,
            "C1",
        );
        // THEN nothing changes and nothing starts
        assert!(t.is_nothing(), "{old:?}");
    }
}

#[test]
fn a_host_event_that_changes_nothing_for_the_daemon_writes_nothing() {
    // GIVEN a host running our daemon, recorded at version 2
    let mut s = slot_with(running("t1", 2), active(2));
    s.placement = Placement::Runs;
    // WHEN ECS reports the host again (our task was placed: its free resources changed)
    let mut changed = active(7);
    changed.remaining = Some(Resources {
        cpu: 1024,
        memory: 300,
        ..Default::default()
    });
    let t = plan_host(
        Some(&target(None)),
        Some(&s),
        Some(&changed),
        &none(),
        NOW,
        "C1",
    );
    // THEN there is nothing to write and nothing to do
    assert!(t.is_nothing(), "{t:?}");
}

#[test]
fn a_draining_host_has_its_daemon_stopped_and_leaves_the_deployment() {
    let mut s = slot_with(running("t1", 2), active(1));
    s.tracked_by = Some("D1".into());
    let t = plan_host(
        Some(&target(Some("D1"))),
        Some(&s),
        Some(&host(HostStatus::Draining, true, 2)),
        &none(),
        NOW,
        "C1",
    );
    let next = t.next.expect("write");
    assert_eq!(
        next.task,
        SlotTask::Stopping {
            task_arn: "t1".into()
        }
    );
    assert_eq!(next.tracked_by, None);
    match t.effect {
        Effect::Stop { task_arn, reason } => {
            assert_eq!(task_arn, "t1");
            assert!(reason.starts_with(crate::domain::task::STOP_REASON_PREFIX));
        }
        e => panic!("expected a stop, got {e:?}"),
    }
}

#[test]
fn an_agent_disconnect_keeps_the_running_daemon() {
    let s = slot_with(running("t1", 2), active(1));
    let t = plan_host(
        Some(&target(None)),
        Some(&s),
        Some(&host(HostStatus::Active, false, 2)),
        &none(),
        NOW,
        "C1",
    );
    assert_eq!(t.effect, Effect::None);
    let next = t.next.expect("the disconnect is recorded");
    assert_eq!(next.task, running("t1", 2));
    assert!(!next.host.agent_connected);
}

#[test]
fn a_gone_host_record_expires() {
    let s = slot_with(SlotTask::Vacant, host(HostStatus::Draining, true, 2));
    let t = plan_host(
        Some(&target(None)),
        Some(&s),
        Some(&host(HostStatus::Inactive, false, 3)),
        &none(),
        NOW,
        "C1",
    );
    let next = t.next.expect("write");
    assert_eq!(next.expires_at, Some(NOW / 1000 + GONE_HOST_TTL_SECS));
}

#[test]
fn a_vacant_slot_in_backoff_waits_then_starts() {
    let mut s = slot_with(SlotTask::Vacant, active(1));
    s.failures = 3;
    s.retry_at_ms = NOW + 10;
    let early = plan_host(Some(&target(None)), Some(&s), None, &none(), NOW, "C1");
    assert!(!is_start(&early.effect));
    let due = plan_host(Some(&target(None)), Some(&s), None, &none(), NOW + 10, "C1");
    assert!(is_start(&due.effect));
    // The restart path (no target: the record's own launch) waits the same way.
    assert!(!is_start(&plan_restart(&s, &none(), NOW, "C1").effect));
    assert!(is_start(&plan_restart(&s, &none(), NOW + 10, "C1").effect));
}

#[test]
fn a_crashed_daemon_says_when_its_restart_is_due_and_a_wakeup_then_restarts_it() {
    let mut s = slot_with(SlotTask::Vacant, active(1));
    s.failures = 2;
    s.retry_at_ms = NOW + 1_000;
    assert_eq!(s.restart_due_after(NOW), Some(NOW + 1_000));
    assert_eq!(s.restart_due_after(NOW + 1_000), None, "due now: no wait");
    // The wake-up: nothing before its time, the restart at it.
    assert!(plan_due(&s, &none(), NOW + 999, "C1").is_nothing());
    assert!(is_start(&plan_due(&s, &none(), NOW + 1_000, "C1").effect));
    // Nothing to wait for where the daemon does not belong, or while it waits for another.
    let mut gone = s.clone();
    gone.host.status = HostStatus::Draining;
    assert_eq!(gone.restart_due_after(NOW), None);
    let mut waiting = s.clone();
    waiting.placement = Placement::Waiting {
        reason: "waiting for logs to run here".into(),
    };
    assert_eq!(waiting.restart_due_after(NOW), None);
}

#[test]
fn a_wakeup_ends_a_bake_that_is_over() {
    let mut s = slot_with(
        SlotTask::Running {
            task_arn: "T1".into(),
            version: 2,
            since_ms: NOW,
        },
        active(1),
    );
    s.baking = true;
    s.bake_ms = 30_000;
    assert!(plan_due(&s, &none(), NOW + 29_999, "C1").is_nothing());
    let done = plan_due(&s, &none(), NOW + 30_000, "C1").next.unwrap();
    assert!(done.is_available());
}

#[test]
fn backoff_is_immediate_first_then_doubles_to_fifteen_minutes() {
    assert_eq!(restart_delay_ms(0), 0);
    assert_eq!(restart_delay_ms(1), 0);
    assert_eq!(restart_delay_ms(2), 1_000);
    assert_eq!(restart_delay_ms(3), 2_000);
    assert_eq!(restart_delay_ms(4), 4_000);
    assert_eq!(restart_delay_ms(11), 512_000);
    assert_eq!(restart_delay_ms(12), BACKOFF_MAX_MS);
    assert_eq!(restart_delay_ms(u32::MAX), BACKOFF_MAX_MS);
}

#[test]
fn a_running_event_moves_pending_to_running_once() {
    let s = slot_with(
        SlotTask::Pending {
            task_arn: "t1".into(),
            version: 0,
        },
        active(1),
    );
    let ev = task("t1", TaskStatus::Running, TaskStatus::Running, 2);
    let t = plan_task(&s, &ev, &none(), NOW, "C1");
    let next = t.next.expect("write");
    assert_eq!(
        next.task,
        SlotTask::Running {
            task_arn: "t1".into(),
            version: 2,
            since_ms: NOW
        }
    );
    // The same event again, or an older one: nothing.
    assert!(plan_task(&next, &ev, &none(), NOW, "C1").is_nothing());
    let older = task("t1", TaskStatus::Pending, TaskStatus::Running, 1);
    assert!(plan_task(&next, &older, &none(), NOW, "C1").is_nothing());
}

#[test]
fn an_unasked_stop_counts_a_failure_and_restarts_at_once_the_first_time() {
    let s = slot_with(running("t1", 2), active(1));
    let ev = task("t1", TaskStatus::Stopped, TaskStatus::Stopped, 3);
    let t = plan_task(&s, &ev, &none(), NOW, "C9");
    let next = t.next.expect("write");
    assert_eq!(t.effect, Effect::Start(launch(TD, 1, "D1")));
    assert_eq!(next.failures, 1);
    assert!(matches!(next.task, SlotTask::Launching { ref claim_id, .. } if claim_id == "C9"));
    assert_eq!(
        next.last_failure.as_deref(),
        Some("Essential container in task exited")
    );
}

#[test]
fn a_second_quick_stop_backs_off() {
    let mut s = slot_with(running("t2", 2), active(1));
    s.failures = 1;
    let ev = task("t2", TaskStatus::Stopped, TaskStatus::Stopped, 3);
    let t = plan_task(&s, &ev, &none(), NOW, "C1");
    let next = t.next.expect("write");
    assert_eq!(t.effect, Effect::None);
    assert_eq!(next.task, SlotTask::Vacant);
    assert_eq!((next.failures, next.retry_at_ms), (2, NOW + 1_000));
}

#[test]
fn a_stop_after_a_long_healthy_run_resets_the_backoff() {
    let mut s = slot_with(running("t2", 2), active(1));
    s.failures = 7;
    let mut ev = task("t2", TaskStatus::Stopped, TaskStatus::Stopped, 3);
    ev.ran_for_ms = Some(BACKOFF_RESET_AFTER_MS);
    let t = plan_task(&s, &ev, &none(), NOW, "C1");
    assert!(is_start(&t.effect));
    assert_eq!(t.next.unwrap().failures, 1);
}

#[test]
fn a_stop_we_asked_for_is_no_failure_and_is_not_restarted_on_a_draining_host() {
    let s = slot_with(
        SlotTask::Stopping {
            task_arn: "t1".into(),
        },
        host(HostStatus::Draining, true, 2),
    );
    let mut ev = task("t1", TaskStatus::Stopped, TaskStatus::Stopped, 4);
    ev.stopped_reason = Some("daemon-scheduler:host is Draining".into());
    let t = plan_task(&s, &ev, &none(), NOW, "C1");
    let next = t.next.expect("write");
    assert_eq!(t.effect, Effect::None);
    assert_eq!((next.task, next.failures), (SlotTask::Vacant, 0));
}

#[test]
fn a_second_live_task_on_an_occupied_host_is_stopped() {
    let s = slot_with(running("t1", 2), active(1));
    let dup = task("t2", TaskStatus::Running, TaskStatus::Running, 1);
    let t = plan_task(&s, &dup, &none(), NOW, "C1");
    assert!(t.next.is_none());
    assert!(matches!(t.effect, Effect::Stop { ref task_arn, .. } if task_arn == "t2"));
}

#[test]
fn a_launch_is_recorded_by_its_tasks_first_event() {
    // GIVEN a claim whose StartTask went through (nothing recorded it: the launcher writes once)
    let s = slot_with(launching("C1"), active(1));
    // WHEN the task's first event comes, carrying the launch's startedBy
    let ev = task("t1", TaskStatus::Pending, TaskStatus::Running, 1);
    let t = plan_task(&s, &ev, &none(), NOW, "C2");
    // THEN the slot names the task
    assert_eq!(t.effect, Effect::None);
    let adopted = t.next.expect("write");
    assert_eq!(
        adopted.task,
        SlotTask::Pending {
            task_arn: "t1".into(),
            version: 1
        }
    );
    // AND a second task with the same mark (a launch retried blind) is a duplicate
    let other = task("t9", TaskStatus::Running, TaskStatus::Running, 1);
    let t = plan_task(&adopted, &other, &none(), NOW, "C3");
    assert!(matches!(t.effect, Effect::Stop { ref task_arn, .. } if task_arn == "t9"));
    // AND a task of another deployment's mark is not this launch
    let mut stranger = task("t7", TaskStatus::Running, TaskStatus::Running, 1);
    stranger.started_by = Some("D0".into());
    assert!(matches!(
        plan_task(&s, &stranger, &none(), NOW, "C4").effect,
        Effect::Stop { .. }
    ));
}

#[test]
fn a_launch_whose_task_stops_before_it_is_seen_running_is_a_failure() {
    let mut s = slot_with(launching("C1"), active(1));
    s.tracked_by = Some("D1".into());
    // CannotPullContainerError: PENDING → STOPPED, never RUNNING
    let ev = task("t1", TaskStatus::Stopped, TaskStatus::Stopped, 2);
    let t = plan_task(&s, &ev, &none(), NOW, "C2");
    let next = t.next.expect("write");
    assert_eq!(next.failures, 1);
    assert_eq!(next.failed_in.as_deref(), Some("D1"));
    assert!(next.retired.contains(&"t1".to_owned()));
    // restarted at once the first time, as any first failure
    assert!(is_start(&t.effect));
}

#[test]
fn a_launch_whose_host_started_draining_meanwhile_is_stopped_at_its_first_event() {
    let s = slot_with(launching("C1"), host(HostStatus::Draining, true, 2));
    let t = plan_task(
        &s,
        &task("t1", TaskStatus::Running, TaskStatus::Running, 1),
        &none(),
        NOW,
        "C2",
    );
    assert!(matches!(t.effect, Effect::Stop { ref task_arn, .. } if task_arn == "t1"));
    assert!(matches!(t.next.unwrap().task, SlotTask::Stopping { .. }));
}

#[test]
fn a_refusal_about_the_revision_frees_the_slot_with_a_failure_and_a_backoff() {
    let mut s = slot_with(launching("C1"), active(1));
    s.tracked_by = Some("D1".into());
    let reason = "StartTask failed: ClientException: role cannot be assumed";
    let t = plan_start_refused(&s, "C1", reason, NOW);
    let next = t.next.expect("write");
    assert_eq!(next.task, SlotTask::Vacant);
    assert_eq!(next.last_failure.as_deref(), Some(reason));
    assert_eq!(next.failed_in.as_deref(), Some("D1"));
    assert!(next.retry_at_ms > NOW);
    assert!(plan_start_refused(&s, "OTHER", "x", NOW).is_nothing());
}

#[test]
fn a_refusal_for_resources_makes_the_host_unschedulable_not_failed() {
    // GIVEN a tracked launch ECS refuses with RESOURCE:MEMORY (another placement took the room)
    let mut s = slot_with(launching("C1"), active(4));
    s.tracked_by = Some("D1".into());
    let t = plan_start_refused(&s, "C1", "RESOURCE:MEMORY", NOW);
    let next = t.next.expect("write");
    // THEN no failure, no retry timer, out of the deployment's counts, with ECS's reason
    assert_eq!((next.failures, next.retry_at_ms), (0, 0));
    assert_eq!(
        (next.failed_in.clone(), next.last_failure.clone()),
        (None, None)
    );
    assert_eq!(bucket(&next), None);
    assert_eq!(
        next.placement,
        Placement::Unschedulable {
            reason: "RESOURCE:MEMORY".into(),
            revision: 1,
            deployment: Some("D1".into()),
        }
    );
    // AND the same host seen again at the same version is not retried (no timer)…
    let again = plan_host(
        Some(&target(None)),
        Some(&next),
        Some(&active(4)),
        &none(),
        NOW,
        "C2",
    );
    assert!(!is_start(&again.effect));
    // …but once the host changes, it is
    let changed = plan_host(
        Some(&target(None)),
        Some(&next),
        Some(&active(5)),
        &none(),
        NOW,
        "C3",
    );
    assert!(is_start(&changed.effect));
}

#[test]
fn an_expired_claim_adopts_what_ecs_has_or_frees_the_slot() {
    let s = slot_with(launching("C1"), active(1));
    assert!(!claim_expired(&s, NOW + CLAIM_LEASE_MS - 1));
    assert!(plan_expired_claim(&s, None, NOW + 1).is_nothing());
    let later = NOW + CLAIM_LEASE_MS;
    assert!(claim_expired(&s, later));
    let found = task("t1", TaskStatus::Pending, TaskStatus::Running, 1);
    let adopt = plan_expired_claim(&s, Some(&found), later).next.unwrap();
    assert!(matches!(adopt.task, SlotTask::Pending { ref task_arn, .. } if task_arn == "t1"));
    let free = plan_expired_claim(&s, None, later).next.unwrap();
    assert_eq!(free.task, SlotTask::Vacant);
}

#[test]
fn a_new_deployment_counts_hosts_already_running_its_revision() {
    let s = slot_with(running("t1", 2), active(1));
    let t = plan_host(
        Some(&target(Some("D2"))),
        Some(&s),
        None,
        &none(),
        NOW,
        "C1",
    );
    assert_eq!(t.effect, Effect::None);
    let next = t.next.expect("retagged");
    assert_eq!(next.tracked_by.as_deref(), Some("D2"));
    // And the counters move from nobody to D2's running bucket.
    assert_eq!(
        counter_deltas(Some(&s), &next),
        vec![(
            "D2".to_owned(),
            Counts {
                desired: 1,
                running: 1,
                ..Default::default()
            }
        )]
    );
}

#[test]
fn counter_deltas_follow_a_slot_through_its_life() {
    let base = slot_with(SlotTask::Vacant, active(1));
    let mut claimed = base.clone();
    claimed.tracked_by = Some("D1".into());
    claimed.task = SlotTask::Launching {
        claim_id: "C".into(),
        since_ms: 0,
    };
    let d = counter_deltas(Some(&base), &claimed);
    assert_eq!(
        d[0].1,
        Counts {
            desired: 1,
            pending: 1,
            ..Default::default()
        }
    );
    let mut run = claimed.clone();
    run.task = running("t", 1);
    let d = counter_deltas(Some(&claimed), &run);
    assert_eq!(
        d[0].1,
        Counts {
            pending: -1,
            running: 1,
            ..Default::default()
        }
    );
    let mut failed = run.clone();
    failed.task = SlotTask::Vacant;
    failed.last_failure = Some("boom".into());
    let d = counter_deltas(Some(&run), &failed);
    assert_eq!(
        d[0].1,
        Counts {
            running: -1,
            failed: 1,
            ..Default::default()
        }
    );
    // Same bucket, no delta.
    let mut run2 = run.clone();
    run2.rev += 1;
    assert!(counter_deltas(Some(&run), &run2).is_empty());
    // A host the revision cannot run on leaves the counts altogether.
    let mut unschedulable = claimed.clone();
    unschedulable.task = SlotTask::Vacant;
    unschedulable.placement = Placement::Unschedulable {
        reason: "needs 512 MiB memory, 300 free".into(),
        revision: 1,
        deployment: None,
    };
    let d = counter_deltas(Some(&claimed), &unschedulable);
    assert_eq!(
        d[0].1,
        Counts {
            desired: -1,
            pending: -1,
            ..Default::default()
        }
    );
}

#[test]
fn a_slot_write_decides_its_counters_claim_and_failure_itself() {
    let base = slot_with(running("t", 1), active(1));
    let mut tracked = base.clone();
    tracked.tracked_by = Some("D1".into());
    tracked.task = SlotTask::Vacant;
    tracked.last_failure = Some("OutOfMemoryError".into());
    tracked.failed_in = Some("D1".into());
    let w = SlotWrite::new(Some(base.clone()), tracked.clone(), None);
    assert!(!w.claims);
    assert_eq!(w.failures.len(), 1);
    assert_eq!(w.failures[0].0, "D1");
    assert_eq!(w.failures[0].1.reason, "OutOfMemoryError");
    assert_eq!(w.counters[0].1.failed_hosts, 1);
    let mut claim = tracked.clone();
    claim.task = launching("C");
    let w = SlotWrite::new(Some(tracked), claim, None);
    assert!(w.claims);
    assert!(w.failures.is_empty());
}

#[test]
fn a_late_running_event_of_a_stopped_task_is_never_adopted() {
    // GIVEN a task that was seen STOPPED (its RUNNING event delayed) and the slot relaunching
    let s = slot_with(running("t1", 0), active(1));
    let stopped = task("t1", TaskStatus::Stopped, TaskStatus::Stopped, 2);
    let relaunching = plan_task(&s, &stopped, &none(), NOW, "C2")
        .next
        .expect("write");
    assert!(matches!(relaunching.task, SlotTask::Launching { .. }));
    // WHEN the old RUNNING event finally arrives
    let late = task("t1", TaskStatus::Running, TaskStatus::Running, 1);
    // THEN it is ignored: the slot waits for its own launch
    assert!(plan_task(&relaunching, &late, &none(), NOW, "C3").is_nothing());
}

// ---- rolling updates -------------------------------------------------------------------------

const TD2: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/agent:2";
const STOP: &str = crate::domain::task::STOP_REASON_PREFIX;

fn rolling_target(bake_seconds: u32) -> Target {
    let mut spec = spec(TD2);
    spec.update_strategy.min_healthy_seconds = bake_seconds;
    Target::new("env", CLUSTER, 2, &spec, "D2", Some("D2"))
}

#[test]
fn an_old_revision_task_is_stopped_first_and_its_stop_starts_the_new_one() {
    // GIVEN a host running revision 1, and a rolling deployment D2 of revision 2
    let old = slot_with(running("T1", 4), active(1));
    let d2 = rolling_target(30);
    let verdict = d2.wants(&active(1), &none(), None);
    assert!(needs_replacement(&d2, &old, &verdict));
    // WHEN D2 replaces it
    let t = plan_replace(&d2, &old, &verdict);
    // THEN the old task is stopped, and the slot already holds revision 2 and counts for D2
    let next = t.next.expect("a write");
    assert_eq!(
        t.effect,
        Effect::Stop {
            task_arn: "T1".into(),
            reason: format!("{STOP}replaced by deployment D2")
        }
    );
    assert_eq!(
        next.task,
        SlotTask::Stopping {
            task_arn: "T1".into()
        }
    );
    assert_eq!(next.task_definition(), Some(TD2));
    assert_eq!(next.tracked_by.as_deref(), Some("D2"));
    assert_eq!(bucket(&next), Some(("D2", Bucket::Pending)));
    // AND when the old task's STOPPED event comes, the new revision is launched at once
    let stopped = task("T1", TaskStatus::Stopped, TaskStatus::Stopped, 5);
    let t = plan_task(&next, &stopped, &none(), NOW, "C2");
    assert_eq!(t.effect, Effect::Start(launch(TD2, 2, "D2")));
    let launching = t.next.unwrap();
    assert_eq!(launching.failures, 0, "a stop we asked for is no failure");
    // AND a host already on revision 2, or without a task, is no candidate
    let mut on_two = launching.clone();
    on_two.task = running("T2", 1);
    assert!(!needs_replacement(&d2, &on_two, &verdict));
    let vacant = slot_with(SlotTask::Vacant, active(1));
    assert!(plan_replace(&d2, &vacant, &verdict).is_nothing());
}

#[test]
fn a_strategy_only_revision_replaces_nothing() {
    // GIVEN revision 2 differs from revision 1 only by its update strategy
    let mut spec2 = spec(TD);
    spec2.update_strategy.max_unavailable = crate::domain::Amount::Hosts(3);
    let d2 = Target::new("env", CLUSTER, 2, &spec2, "D2", Some("D2"));
    let s = slot_with(running("T1", 4), active(1));
    // THEN the host's task runs what revision 2 launches: no replacement, just counted for D2
    let verdict = d2.wants(&active(1), &none(), None);
    assert!(!needs_replacement(&d2, &s, &verdict));
    let next = plan_host(Some(&d2), Some(&s), Some(&active(1)), &none(), NOW, "C")
        .next
        .expect("retag");
    assert_eq!(next.task, running("T1", 4));
    assert_eq!(next.launch.as_ref().map(|l| l.revision), Some(2));
    assert_eq!(next.tracked_by.as_deref(), Some("D2"));
}

#[test]
fn a_new_task_counts_as_healthy_only_after_its_bake_time() {
    // GIVEN the new revision's task, launched with a 30 s bake, reported RUNNING at NOW
    let d2 = rolling_target(30);
    let mut s = slot_with(
        SlotTask::Pending {
            task_arn: "T2".into(),
            version: 1,
        },
        active(1),
    );
    s.launch = Some(launch(TD2, 2, "D2"));
    s.tracked_by = Some("D2".into());
    s.bake_ms = d2.bake_ms();
    let running = plan_task(
        &s,
        &task("T2", TaskStatus::Running, TaskStatus::Running, 2),
        &none(),
        NOW,
        "C",
    )
    .next
    .unwrap();
    // THEN it is RUNNING but not available: the deployment still counts it pending
    assert!(running.baking && !running.is_available());
    assert_eq!(bucket(&running), Some(("D2", Bucket::Pending)));
    // WHEN less than the bake time has passed, nothing changes; after it, it is available
    assert!(plan_baked(&running, NOW + 29_999).is_nothing());
    let baked = plan_baked(&running, NOW + 30_000).next.unwrap();
    assert!(baked.is_available());
    let deltas = counter_deltas(Some(&running), &baked);
    assert_eq!(
        deltas,
        vec![(
            "D2".to_owned(),
            Counts {
                pending: -1,
                running: 1,
                ..Counts::default()
            }
        )]
    );
}

#[test]
fn a_task_that_stops_before_it_is_healthy_fails_its_deployment_once_per_host() {
    // GIVEN a new-revision task still baking for D2
    let mut s = slot_with(running("T2", 2), active(1));
    s.launch = Some(launch(TD2, 2, "D2"));
    s.tracked_by = Some("D2".into());
    s.bake_ms = 30_000;
    s.baking = true;
    // WHEN it crashes
    let t = plan_task(
        &s,
        &task("T2", TaskStatus::Stopped, TaskStatus::Stopped, 3),
        &none(),
        NOW,
        "C",
    );
    let next = t.next.unwrap();
    // THEN the host counts once among D2's failed hosts (and restarts at once, the first time)
    assert_eq!(next.failed_in.as_deref(), Some("D2"));
    assert!(is_start(&t.effect));
    let deltas = counter_deltas(Some(&s), &next);
    assert_eq!(deltas[0].1.failed_hosts, 1);
    // AND its second crash counts no further host
    let mut again = next.clone();
    again.task = running("T3", 1);
    again.baking = true;
    let t2 = plan_task(
        &again,
        &task("T3", TaskStatus::Stopped, TaskStatus::Stopped, 2),
        &none(),
        NOW,
        "C",
    );
    let deltas = counter_deltas(Some(&again), t2.next.as_ref().unwrap());
    assert!(
        deltas.iter().all(|(_, c)| c.failed_hosts == 0),
        "{deltas:?}"
    );
    // AND a healthy task that crashes later is no failure of the deployment
    let mut healthy = s.clone();
    healthy.baking = false;
    let later = plan_task(
        &healthy,
        &task("T2", TaskStatus::Stopped, TaskStatus::Stopped, 3),
        &none(),
        NOW,
        "C",
    );
    assert_eq!(later.next.unwrap().failed_in, None);
}

#[test]
fn a_new_revision_is_not_held_back_by_the_old_ones_backoff() {
    // GIVEN a host backing off after crashes of revision 2
    let mut s = slot_with(SlotTask::Vacant, active(1));
    s.launch = Some(launch(TD2, 2, "D2"));
    s.failures = 6;
    s.retry_at_ms = NOW + 600_000;
    // WHEN revision 2 is wanted, it waits; WHEN revision 1 is wanted (a rollback), it starts now
    let same = Target::new("env", CLUSTER, 2, &spec(TD2), "D2", Some("D2"));
    let observed = active(2);
    assert_eq!(
        plan_host(Some(&same), Some(&s), Some(&observed), &none(), NOW, "C").effect,
        Effect::None
    );
    let back = plan_host(
        Some(&target(Some("D3"))),
        Some(&s),
        Some(&observed),
        &none(),
        NOW,
        "C",
    );
    assert!(is_start(&back.effect));
    let next = back.next.unwrap();
    assert_eq!((next.failures, next.retry_at_ms), (0, 0));
    assert_eq!(next.task_definition(), Some(TD));
}

#[test]
fn a_draining_host_keeps_its_daemon_until_its_other_tasks_are_gone() {
    // GIVEN a host running our daemon
    let s = slot_with(running("T1", 2), active(1));
    let mut draining = host(HostStatus::Draining, true, 2);
    // WHEN it drains with 3 other tasks still on it: the daemon stays, nothing new starts
    draining.state.other_tasks = Some(3);
    let t = plan_host(
        Some(&target(None)),
        Some(&s),
        Some(&draining),
        &none(),
        NOW,
        "C",
    );
    assert_eq!(t.effect, Effect::None);
    let kept = t.next.expect("the host's new state is recorded");
    assert_eq!(kept.task, running("T1", 2));
    // WHEN the other tasks are gone: the daemon is stopped, last
    let mut empty = host(HostStatus::Draining, true, 3);
    empty.state.other_tasks = Some(0);
    let t = plan_host(
        Some(&target(None)),
        Some(&kept),
        Some(&empty),
        &none(),
        NOW,
        "C",
    );
    assert!(matches!(t.effect, Effect::Stop { .. }), "{t:?}");
    // AND an older event that still counted tasks changes nothing any more
    let stopping = t.next.unwrap();
    assert!(plan_host(
        Some(&target(None)),
        Some(&stopping),
        Some(&draining),
        &none(),
        NOW,
        "C"
    )
    .is_nothing());
}
