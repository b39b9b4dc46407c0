//! The history a slot write records, decision by decision: each transition kind, attributed to
//! its deployment, and nothing when nothing meaningful changed. Every case goes through the
//! planner's own decisions and `SlotWrite::new`, as the executor writes them.

use serde_json::json;

use crate::domain::history::{Entry, Event};
use crate::domain::resources::Resources;
use crate::domain::{
    DaemonSpec, Host, HostState, HostStatus, Order, PlacementConstraint, Slot, SlotTask, Target,
    TaskObservation, TaskStatus,
};
use crate::planner::{
    plan_baked, plan_host, plan_replace, plan_start_refused, plan_start_throttled, plan_task,
    SlotWrite, Transition,
};

use crate::planner::placement_tests::needs;

const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/demo";
const HOST: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/demo/h1";
const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task/demo/0ld0000000000000000000000000000a";
const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task/demo/9e90000000000000000000000000000b";
const NOW: i64 = 1_764_000_000_000;

fn spec(revision: u32) -> DaemonSpec {
    DaemonSpec::of_task_definition(
        &format!("arn:aws:ecs:us-east-1:123456789012:task-definition/agent:{revision}"),
        needs(256),
    )
}

/// Revision `revision` deployed by `deployment`, which tracks the slots while in progress.
fn target(revision: u32, deployment: &str, in_progress: bool) -> Target {
    Target::new(
        "env",
        CLUSTER,
        revision,
        &spec(revision),
        deployment,
        in_progress.then_some(deployment),
    )
}

fn host(status: HostStatus, version: i64, free: i64) -> Host {
    let mut h = Host::from_state(HostState {
        container_instance_arn: HOST.into(),
        status,
        agent_connected: true,
        version,
        other_tasks: None,
    });
    h.remaining = Some(Resources {
        cpu: 4096,
        memory: free,
        ..Default::default()
    });
    h
}

fn active(version: i64) -> Host {
    host(HostStatus::Active, version, 2048)
}

fn observed(arn: &str, last: TaskStatus, version: i64, started_by: &str) -> TaskObservation {
    TaskObservation {
        task_arn: arn.into(),
        container_instance_arn: HOST.into(),
        environment: "env".into(),
        started_by: Some(started_by.into()),
        task_definition: None,
        last_status: last,
        desired_status: if last == TaskStatus::Stopped {
            TaskStatus::Stopped
        } else {
            TaskStatus::Running
        },
        stopped_reason: Some("Essential container in task exited".into()),
        version,
        ran_for_ms: Some(2_000),
    }
}

/// Writes the decision as the executor does (stamped `at`, through `SlotWrite::new`); the slot
/// as written and the entries this write added.
fn write(before: Option<&Slot>, t: Transition, at: i64) -> (Slot, Vec<Entry>) {
    let mut after = t.next.expect("a write");
    after.updated_at_ms = at;
    let w = SlotWrite::new(before.cloned(), after, None);
    let had = before.map_or(0, |b| b.history.entries().len());
    let added = w.after.history.entries()[had..].to_vec();
    let mut slot = w.after;
    slot.rev += 1;
    (slot, added)
}

fn events(entries: &[Entry]) -> Vec<(Event, &str)> {
    entries
        .iter()
        .map(|e| (e.event, e.deployment.as_str()))
        .collect()
}

/// A host joined during deployment D1 of revision 1 and was claimed.
fn claimed() -> Slot {
    let t = plan_host(
        Some(&target(1, "D1", true)),
        None,
        Some(&active(1)),
        &Order::none(),
        NOW,
        "C1",
    );
    write(None, t, NOW).0
}

/// Revision 1's task RUNNING and healthy on the host, D1 finished.
fn running_v1() -> Slot {
    let s = claimed();
    let t = plan_task(
        &s,
        &observed(OLD, TaskStatus::Running, 1, "D1"),
        &Order::none(),
        NOW + 1_000,
        "C2",
    );
    write(Some(&s), t, NOW + 1_000).0
}

#[test]
fn a_join_is_claimed_for_the_deployment_in_progress() {
    let t = plan_host(
        Some(&target(1, "D1", true)),
        None,
        Some(&active(1)),
        &Order::none(),
        NOW,
        "C1",
    );
    let (slot, added) = write(None, t, NOW);
    assert_eq!(events(&added), [(Event::Claimed, "D1")]);
    assert_eq!((added[0].at_ms, added[0].revision), (NOW, 1));
    assert_eq!(slot.history.entries(), added.as_slice());
}

#[test]
fn a_join_after_the_deployment_ended_belongs_to_the_deployment_whose_revision_it_gets() {
    let t = plan_host(
        Some(&target(1, "D1", false)),
        None,
        Some(&active(1)),
        &Order::none(),
        NOW,
        "C1",
    );
    let (slot, added) = write(None, t, NOW);
    assert_eq!(slot.tracked_by, None);
    assert_eq!(events(&added), [(Event::Claimed, "D1")]);
}

#[test]
fn the_first_event_pending_is_started_then_running_with_no_bake_is_running_and_healthy() {
    let s = claimed();
    let t = plan_task(
        &s,
        &observed(NEW, TaskStatus::Pending, 1, "D1"),
        &Order::none(),
        NOW + 500,
        "C2",
    );
    let (s, added) = write(Some(&s), t, NOW + 500);
    assert_eq!(events(&added), [(Event::Started, "D1")]);
    assert_eq!(added[0].task_arn(CLUSTER).as_deref(), Some(NEW));
    assert_eq!(
        added[0].task.as_deref(),
        Some("9e90000000000000000000000000000b"),
        "stored as its id"
    );

    let t = plan_task(
        &s,
        &observed(NEW, TaskStatus::Running, 2, "D1"),
        &Order::none(),
        NOW + 900,
        "C3",
    );
    let (s, added) = write(Some(&s), t, NOW + 900);
    assert_eq!(
        events(&added),
        [(Event::Running, "D1"), (Event::Healthy, "D1")]
    );
    assert!(added
        .iter()
        .all(|e| e.at_ms == NOW + 900 && e.task.is_none()));
    assert_eq!(
        s.history
            .entries()
            .iter()
            .map(|e| e.event)
            .collect::<Vec<_>>(),
        [
            Event::Claimed,
            Event::Started,
            Event::Running,
            Event::Healthy
        ]
    );
}

#[test]
fn a_first_event_running_is_started_and_running_and_healthy_only_once_the_bake_is_over() {
    let mut s = claimed();
    s.bake_ms = 30_000;
    let t = plan_task(
        &s,
        &observed(NEW, TaskStatus::Running, 1, "D1"),
        &Order::none(),
        NOW + 500,
        "C2",
    );
    let (s, added) = write(Some(&s), t, NOW + 500);
    assert!(s.baking);
    assert_eq!(
        events(&added),
        [(Event::Started, "D1"), (Event::Running, "D1")]
    );

    let t = plan_baked(&s, NOW + 31_000);
    let (_, added) = write(Some(&s), t, NOW + 31_000);
    assert_eq!(events(&added), [(Event::Healthy, "D1")]);
    assert_eq!(added[0].at_ms, NOW + 31_000);
}

#[test]
fn a_task_stopped_at_its_first_event_is_started_then_failed_with_ecs_reason_then_claimed_again() {
    let s = claimed();
    let t = plan_task(
        &s,
        &observed(NEW, TaskStatus::Stopped, 3, "D1"),
        &Order::none(),
        NOW + 700,
        "C2",
    );
    let (s, added) = write(Some(&s), t, NOW + 700);
    assert_eq!(s.failed_in.as_deref(), Some("D1"), "the breaker counts it");
    assert_eq!(
        events(&added),
        [
            (Event::Started, "D1"),
            (Event::Failed, "D1"),
            (Event::Claimed, "D1")
        ],
        "the first failure restarts at once, in the same write"
    );
    assert_eq!(
        added[1].reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(added[1].task_arn(CLUSTER).as_deref(), Some(NEW));
    assert_eq!(added[0].task, added[1].task);
}

#[test]
fn a_running_task_that_crashes_is_failed_and_its_restart_waits_for_its_backoff() {
    let mut s = running_v1();
    s.failures = 3; // its fourth crash in a row: the restart waits 4 s
    let t = plan_task(
        &s,
        &observed(OLD, TaskStatus::Stopped, 9, "D1"),
        &Order::none(),
        NOW + 60_000,
        "C9",
    );
    let (s, added) = write(Some(&s), t, NOW + 60_000);
    assert_eq!(s.task, SlotTask::Vacant);
    assert_eq!(events(&added), [(Event::Failed, "D1")]);
    assert_eq!(added[0].task_arn(CLUSTER).as_deref(), Some(OLD));
}

#[test]
fn start_task_refusals_are_failed_or_unschedulable_with_the_reason_and_a_throttle_releases() {
    let s = claimed();
    let refused = |reason| {
        write(
            Some(&s),
            plan_start_refused(&s, "C1", reason, NOW + 200),
            NOW + 200,
        )
        .1
    };

    let added = refused("CannotPullContainerError: image not found");
    assert_eq!(events(&added), [(Event::Failed, "D1")]);
    assert_eq!(
        added[0].reason.as_deref(),
        Some("CannotPullContainerError: image not found")
    );
    assert_eq!(added[0].task, None);

    let added = refused("RESOURCE:MEMORY");
    assert_eq!(events(&added), [(Event::Unschedulable, "D1")]);
    assert_eq!(added[0].reason.as_deref(), Some("RESOURCE:MEMORY"));

    let (_, added) = write(
        Some(&s),
        plan_start_throttled(&s, "C1", NOW + 200),
        NOW + 200,
    );
    assert_eq!(events(&added), [(Event::Released, "D1")]);
}

#[test]
fn a_host_without_room_is_unschedulable_for_the_deployment_that_judged_it() {
    // A new host, never tracked (an unschedulable host leaves the counts): the entry still
    // names the deployment in progress.
    let small = host(HostStatus::Active, 1, 100);
    let t = plan_host(
        Some(&target(1, "D1", true)),
        None,
        Some(&small),
        &Order::none(),
        NOW,
        "C1",
    );
    let (s, added) = write(None, t, NOW);
    assert_eq!(s.tracked_by, None);
    assert_eq!(events(&added), [(Event::Unschedulable, "D1")]);
    assert_eq!(
        added[0].reason.as_deref(),
        Some("needs 256 MiB memory, 100 free")
    );

    // Seen again with other figures: the same judgment, nothing new.
    let smaller = host(HostStatus::Active, 2, 50);
    let t = plan_host(
        Some(&target(1, "D1", true)),
        Some(&s),
        Some(&smaller),
        &Order::none(),
        NOW + 1,
        "C2",
    );
    let (_, added) = write(Some(&s), t, NOW + 1);
    assert!(added.is_empty(), "{added:?}");
}

#[test]
fn a_rollout_replaces_the_old_task_then_the_host_is_claimed_started_running_and_healthy() {
    let s = running_v1();
    let t2 = target(2, "D2", true);
    let verdict = t2.wants(&active(1), &Order::none(), None);
    let (s, added) = write(Some(&s), plan_replace(&t2, &s, &verdict), NOW + 10_000);
    assert_eq!(events(&added), [(Event::Replaced, "D2")]);
    assert_eq!(
        added[0].task_arn(CLUSTER).as_deref(),
        Some(OLD),
        "the task it replaces"
    );
    assert_eq!(added[0].revision, 2, "for revision 2");

    // The old task's STOPPED event frees the slot and claims it: the stop was asked for, so the
    // write records the claim only.
    let stopped = TaskObservation {
        stopped_reason: Some("daemon-scheduler: replaced by deployment D2".into()),
        ..observed(OLD, TaskStatus::Stopped, 5, "D1")
    };
    let (s, added) = write(
        Some(&s),
        plan_task(&s, &stopped, &Order::none(), NOW + 11_000, "C5"),
        NOW + 11_000,
    );
    assert_eq!(events(&added), [(Event::Claimed, "D2")]);

    let t = plan_task(
        &s,
        &observed(NEW, TaskStatus::Running, 1, "D2"),
        &Order::none(),
        NOW + 12_000,
        "C6",
    );
    let (s, added) = write(Some(&s), t, NOW + 12_000);
    assert_eq!(
        events(&added),
        [
            (Event::Started, "D2"),
            (Event::Running, "D2"),
            (Event::Healthy, "D2")
        ]
    );
    let d2: Vec<Event> = s.history.of("D2").map(|e| e.event).collect();
    assert_eq!(
        d2,
        [
            Event::Replaced,
            Event::Claimed,
            Event::Started,
            Event::Running,
            Event::Healthy
        ]
    );
    let d1: Vec<Event> = s.history.of("D1").map(|e| e.event).collect();
    assert_eq!(
        d1,
        [
            Event::Claimed,
            Event::Started,
            Event::Running,
            Event::Healthy
        ]
    );
    let times: Vec<i64> = s.history.entries().iter().map(|e| e.at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn a_draining_host_and_a_host_no_longer_selected_have_their_task_stopped_with_the_reason() {
    let s = running_v1();
    let draining = host(HostStatus::Draining, 2, 2048);
    let t = plan_host(
        Some(&target(1, "D1", false)),
        Some(&s),
        Some(&draining),
        &Order::none(),
        NOW + 5_000,
        "C7",
    );
    let (_, added) = write(Some(&s), t, NOW + 5_000);
    assert_eq!(events(&added), [(Event::Stopped, "D1")]);
    assert_eq!(added[0].reason.as_deref(), Some("host is DRAINING"));
    assert_eq!(added[0].task_arn(CLUSTER).as_deref(), Some(OLD));

    let mut only_gpu = target(1, "D1", false);
    let mut selective = spec(1);
    selective.placement_constraints = PlacementConstraint::parse_list(
        "placementConstraints",
        &json!([{"type": "memberOf", "expression": "attribute:gpu == true"}]),
    )
    .unwrap();
    only_gpu.spec = std::sync::Arc::new(selective);
    let t = plan_host(
        Some(&only_gpu),
        Some(&s),
        Some(&active(2)),
        &Order::none(),
        NOW + 5_000,
        "C8",
    );
    let (_, added) = write(Some(&s), t, NOW + 5_000);
    assert_eq!(events(&added), [(Event::Stopped, "D1")]);
    assert_eq!(
        added[0].reason.as_deref(),
        Some("not selected by attribute:gpu == true")
    );
}

#[test]
fn a_write_that_changes_nothing_of_the_task_records_nothing() {
    let s = running_v1();
    // A newer host version, another deployment tracking it, its counters moving: no transition.
    let mut next = s.clone();
    next.host.version += 7;
    next.tracked_by = Some("D9".into());
    let t = Transition {
        next: Some(next),
        effect: crate::planner::Effect::None,
    };
    let (_, added) = write(Some(&s), t, NOW + 3_000);
    assert!(added.is_empty(), "{added:?}");
    // A duplicate RUNNING event is no write at all.
    assert!(plan_task(
        &s,
        &observed(OLD, TaskStatus::Running, 1, "D1"),
        &Order::none(),
        NOW,
        "C"
    )
    .is_nothing());
    // A new deployment of what the host already runs counts it without touching it.
    let t = plan_host(
        Some(&target(1, "D3", true)),
        Some(&s),
        Some(&active(2)),
        &Order::none(),
        NOW + 4_000,
        "C4",
    );
    let (s3, added) = write(Some(&s), t, NOW + 4_000);
    assert_eq!(s3.tracked_by.as_deref(), Some("D3"));
    assert!(added.is_empty(), "{added:?}");
}
