//! Surge replacements (`maxSurge`): the new task starts beside the old one, which stops only once
//! the new one is healthy, and runs on when the new one fails.

use proptest::prelude::*;

use super::*;
use crate::domain::resources::TaskNeeds;
use crate::domain::{
    DaemonSpec, Host, HostState, HostStatus, LaunchSpec, Order, Slot, SlotTask, Target,
    TaskObservation, TaskStatus, Verdict,
};

const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/c";
const HOST: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/c/h1";
const NOW: i64 = 1_000_000;

fn host(status: HostStatus, version: i64) -> Host {
    Host::from_state(HostState {
        container_instance_arn: HOST.into(),
        status,
        agent_connected: true,
        version,
        other_tasks: Some(0),
    })
}

fn v2(bake_s: u32) -> Target {
    let mut spec = DaemonSpec::of_task_definition("agent:2", TaskNeeds::default());
    spec.update_strategy.min_healthy_seconds = bake_s;
    Target::new("env", CLUSTER, 2, &spec, "D2", Some("D2"))
}

/// A host running revision 1's task T0.
fn old_slot() -> Slot {
    let mut s = Slot::new("env", CLUSTER, host(HostStatus::Active, 1).state);
    s.task = SlotTask::Running {
        task_arn: "T0".into(),
        version: 2,
        since_ms: 0,
    };
    s.launch = Some(LaunchSpec {
        task_definition: "agent:1".into(),
        revision: 1,
        started_by: "D1".into(),
        group: crate::domain::task::task_group("env"),
        overrides: None,
        reserves: Default::default(),
    });
    s.rev = 1;
    s
}

fn observation(arn: &str, started_by: &str, status: TaskStatus, version: i64) -> TaskObservation {
    TaskObservation {
        task_arn: arn.into(),
        container_instance_arn: HOST.into(),
        environment: "env".into(),
        started_by: Some(started_by.into()),
        task_definition: None,
        last_status: status,
        desired_status: status,
        stopped_reason: Some("Essential container in task exited".into()),
        version,
        ran_for_ms: Some(1_000),
    }
}

fn surged(bake_s: u32) -> (Target, Slot) {
    let t = v2(bake_s);
    let verdict = t.wants(&host(HostStatus::Active, 1), &Order::none(), None);
    assert!(matches!(verdict, Verdict::Run(_)));
    let tr = plan_surge(&t, &old_slot(), &verdict, NOW, "C1");
    assert!(matches!(tr.effect, Effect::Start(ref l) if l.revision == 2));
    (t, tr.next.unwrap())
}

fn started_by(slot: &Slot) -> String {
    slot.started_by().unwrap().to_owned()
}

#[test]
fn a_surge_starts_the_new_task_beside_the_old_one() {
    let (_, s) = surged(0);
    assert!(matches!(s.task, SlotTask::Launching { .. }));
    assert_eq!(s.surge.as_ref().unwrap().task_arn, "T0");
    assert!(s.has_healthy_daemon(), "the old task still serves the host");
    assert_eq!(s.tracked_by.as_deref(), Some("D2"));
    assert_eq!(bucket(&s), Some(("D2", Bucket::Pending)));
}

#[test]
fn the_old_task_stops_once_the_new_one_is_healthy_not_before() {
    let (_, s) = surged(30);
    let by = started_by(&s);
    let pending = plan_task(
        &s,
        &observation("T1", &by, TaskStatus::Pending, 1),
        &Order::none(),
        NOW,
        "C2",
    );
    assert_eq!(pending.effect, Effect::None);
    let s = pending.next.unwrap();
    let running = plan_task(
        &s,
        &observation("T1", &by, TaskStatus::Running, 2),
        &Order::none(),
        NOW,
        "C3",
    );
    assert_eq!(
        running.effect,
        Effect::None,
        "baking: the old one keeps serving"
    );
    let s = running.next.unwrap();
    assert!(s.baking && s.surge.is_some());
    assert!(plan_baked(&s, NOW + 29_999).is_nothing());
    let baked = plan_baked(&s, NOW + 30_000);
    assert!(matches!(baked.effect, Effect::Stop { ref task_arn, .. } if task_arn == "T0"));
    let s = baked.next.unwrap();
    assert!(s.surge.is_none() && s.is_available() && s.retired.contains(&"T0".to_owned()));
    assert_eq!(bucket(&s), Some(("D2", Bucket::Running)));
    // The old task's STOPPED event changes nothing.
    let late = plan_task(
        &s,
        &observation("T0", "D1", TaskStatus::Stopped, 3),
        &Order::none(),
        NOW,
        "C4",
    );
    assert!(late.is_nothing());
}

#[test]
fn a_new_task_that_fails_leaves_the_old_one_running_and_counts_a_failure() {
    let (_, s) = surged(0);
    let by = started_by(&s);
    let s = plan_task(
        &s,
        &observation("T1", &by, TaskStatus::Pending, 1),
        &Order::none(),
        NOW,
        "C2",
    )
    .next
    .unwrap();
    let failed = plan_task(
        &s,
        &observation("T1", &by, TaskStatus::Stopped, 2),
        &Order::none(),
        NOW,
        "C3",
    );
    assert_eq!(
        failed.effect,
        Effect::None,
        "no restart of the new, no stop of the old"
    );
    let s = failed.next.unwrap();
    assert!(matches!(s.task, SlotTask::Running { ref task_arn, .. } if task_arn == "T0"));
    assert_eq!(s.launch.as_ref().unwrap().revision, 1);
    assert!(s.surge.is_none() && s.is_available());
    assert_eq!(s.failed_in.as_deref(), Some("D2"));
    assert_eq!(bucket(&s), Some(("D2", Bucket::Failed)));
}

#[test]
fn the_old_task_is_never_taken_for_a_duplicate_while_it_is_replaced() {
    let (_, s) = surged(0);
    let again = plan_task(
        &s,
        &observation("T0", "D1", TaskStatus::Running, 3),
        &Order::none(),
        NOW,
        "C2",
    );
    assert!(again.is_nothing(), "{again:?}");
    // It crashes on its own: the new one carries on alone.
    let crashed = plan_task(
        &s,
        &observation("T0", "D1", TaskStatus::Stopped, 4),
        &Order::none(),
        NOW,
        "C3",
    );
    let s = crashed.next.unwrap();
    assert!(s.surge.is_none() && matches!(s.task, SlotTask::Launching { .. }));
}

#[test]
fn a_host_that_drains_during_a_surge_stops_the_old_task_first() {
    let (t, s) = surged(0);
    let left = plan_host(
        Some(&t),
        Some(&s),
        Some(&host(HostStatus::Draining, 2)),
        &Order::none(),
        NOW,
        "C2",
    );
    assert!(matches!(left.effect, Effect::Stop { ref task_arn, .. } if task_arn == "T0"));
    assert!(left.next.unwrap().surge.is_none());
}

#[derive(Debug, Clone)]
enum Step {
    /// ECS's next event of the new task is delivered.
    NewEvent,
    /// The new task crashes in ECS.
    NewCrashes,
    /// The old task crashes in ECS.
    OldCrashes,
    /// Time passes past the bake.
    BakeEnds,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::NewEvent),
        1 => Just(Step::NewCrashes),
        1 => Just(Step::OldCrashes),
        2 => Just(Step::BakeEnds),
    ]
}

proptest! {
    /// Whatever happens to the two tasks, the old one is stopped by us only once the new one is
    /// healthy; and while the host has not lost both tasks to crashes of their own, it is never
    /// left without a live task by what the planner decides.
    #[test]
    fn surge_never_leaves_a_host_without_a_healthy_task(steps in proptest::collection::vec(step(), 1..20)) {
        let (_, mut slot) = surged(10);
        let by = started_by(&slot);
        // ECS: each task's status (None once gone).
        let mut old = Some(TaskStatus::Running);
        let mut new: Option<TaskStatus> = Some(TaskStatus::Pending);
        let mut new_version = 0;
        let mut now = NOW;
        let mut old_crashed = false;
        let mut replaced = false;
        for s in steps {
            let t = match s {
                Step::NewEvent => {
                    let Some(st) = new else { continue };
                    new_version += 1;
                    if st == TaskStatus::Pending && new_version > 1 {
                        new = Some(TaskStatus::Running);
                    }
                    let st = new.unwrap();
                    plan_task(&slot, &observation("T1", &by, st, new_version), &Order::none(), now, "C")
                }
                Step::NewCrashes => {
                    if new.is_none() { continue; }
                    new = Some(TaskStatus::Stopped);
                    new_version += 1;
                    plan_task(&slot, &observation("T1", &by, TaskStatus::Stopped, new_version), &Order::none(), now, "C")
                }
                Step::OldCrashes => {
                    if old != Some(TaskStatus::Running) { continue; }
                    old = None;
                    old_crashed = true;
                    plan_task(&slot, &observation("T0", "D1", TaskStatus::Stopped, 9), &Order::none(), now, "C")
                }
                Step::BakeEnds => {
                    now += 10_000;
                    plan_baked(&slot, now)
                }
            };
            if let Effect::Stop { task_arn, .. } = &t.effect {
                prop_assert_eq!(task_arn.as_str(), "T0", "only the old task is ever stopped");
                prop_assert!(t.next.as_ref().is_some_and(|n| n.is_available()),
                    "the old task stopped before the new one was healthy: {:?}", t);
                old = None;
                replaced = true;
            }
            if let Some(next) = t.next { slot = next; }
            if new == Some(TaskStatus::Stopped) && !old_crashed && !replaced {
                prop_assert_eq!(old, Some(TaskStatus::Running), "the new one failed: the old one runs on");
                let old_is_the_task =
                    matches!(&slot.task, SlotTask::Running { task_arn, .. } if task_arn == "T0");
                prop_assert!(old_is_the_task || slot.surge.is_some(), "slot: {:?}", slot);
                new = None;
            }
        }
    }
}
