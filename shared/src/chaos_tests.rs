//! Chaos at volume on the in-process fakes, at the full size (`chaos::Config::full`):
//! 10,000 deliveries over 300 hosts and 3 environments with 20 % of the product's AWS calls
//! throttled, 5 % answered 5xx and a third delayed; then the faults stop and at most 2 reconciles
//! must leave exactly the desired set. The invariants are checked by `chaos::run` itself (see
//! chaos.rs). Seeded: `CHAOS_SEED=<n> cargo test -p shared chaos` replays a run; the seed of a
//! failed run is printed.

use crate::chaos::{run, seed_from_env, Cause, Config, Crowd, Figures, Watch};
use crate::sim::block_on;

/// Runs `cfg`, printing what reproduces it if it fails.
fn run_reporting_seed(cfg: Config) -> Figures {
    match std::panic::catch_unwind(|| block_on(run(cfg))) {
        Ok(figures) => figures,
        Err(panic) => {
            eprintln!("chaos run failed: reproduce with CHAOS_SEED={}", cfg.seed);
            std::panic::resume_unwind(panic)
        }
    }
}

#[test]
fn ten_thousand_chaotic_events_over_300_hosts_end_in_exactly_the_desired_set() {
    let f = run_reporting_seed(Config::full(seed_from_env()));
    eprintln!("{}", f.markdown("Chaos at volume on the in-process fakes"));
    let seed = f.seed;
    assert!(
        f.delivered >= 10_000 && f.hosts >= 300 && f.environments >= 3,
        "seed {seed}: {f:?}"
    );
    // Every kind of chaos happened, every kind of fault was injected, and delivery was chaotic.
    for kind in [
        "joins",
        "drains",
        "deregistrations",
        "agent disconnects",
        "relabellings",
        "manual stops",
        "crashes",
        "rolling updates",
        "deployments of a crashing revision",
    ] {
        assert!(
            f.chaos.get(kind).copied().unwrap_or(0) > 0,
            "seed {seed}: no {kind}: {:?}",
            f.chaos
        );
    }
    let i = f.faults;
    assert!(
        i.throttled > 0 && i.server_errors > 0 && i.answers_lost > 0 && i.delayed > 0,
        "seed {seed}: {i:?}"
    );
    assert!(
        f.duplicated > 0 && f.reordered > 0 && f.concurrent > 0,
        "seed {seed}: {f:?}"
    );
    // The faults were heavy enough to leave work to the reconciles, which were at most 2.
    assert!(
        f.dead_lettered > 0 && f.reconciles_failed > 0,
        "seed {seed}: {f:?}"
    );
    assert!(
        (1..=2).contains(&f.final_reconciles.len()),
        "seed {seed}: {f:?}"
    );
    assert!(
        f.end.exact() && f.end.desired > 0 && f.end.running == f.end.desired,
        "{:?}",
        f.end
    );
}

/// Found by the chaos run (CHAOS_SEED=16): a rolling update's replacement asked ECS to stop the old
/// task, the StopTask was throttled, and a late copy of the old task's RUNNING event then turned
/// the `Stopping` slot back into `Running` — with the new revision's launch already recorded on it,
/// so the slot said the host ran the new revision while it ran the old one, and nothing ever
/// replaced it. A task we asked to stop stays stopping whatever its late events say: its STOPPED
/// event decides, or the reconciler asks again.
#[test]
fn a_late_running_event_of_a_task_being_stopped_does_not_undo_the_stop() {
    use crate::domain::{HostState, HostStatus, LaunchSpec, Order, Slot, SlotTask};
    use crate::domain::{TaskObservation, TaskStatus};
    const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/metrics:1";
    const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/metrics:2";
    let host = HostState {
        container_instance_arn: crate::sim::host_arn(1),
        status: HostStatus::Active,
        agent_connected: true,
        version: 3,
        other_tasks: None,
    };
    let mut slot = Slot::new("metrics", crate::fakes::FAKE_CLUSTER_ARN, host);
    slot.task = SlotTask::Stopping {
        task_arn: "t-old".into(),
    };
    slot.launch = Some(LaunchSpec {
        task_definition: NEW.into(),
        revision: 2,
        started_by: "D2".into(),
        group: crate::domain::task::task_group("metrics"),
        overrides: None,
        reserves: Default::default(),
    });
    slot.tracked_by = Some("D2".into());
    let late_running = TaskObservation {
        task_arn: "t-old".into(),
        container_instance_arn: crate::sim::host_arn(1),
        environment: "metrics".into(),
        started_by: Some("D1".into()),
        task_definition: Some(OLD.into()),
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        stopped_reason: None,
        version: 1,
        ran_for_ms: None,
    };
    let t = crate::planner::plan_task(&slot, &late_running, &Order::none(), 1_000_000, "claim");
    assert!(t.is_nothing(), "the stop was undone: {t:?}");
}

/// Found by the chaos run (CHAOS_SEED=16): a restart's claim outlived its lease (its launcher's
/// StartTask never got through) and the reconciler found on the host a task of ours that someone
/// had started by hand with revision 1. The expired claim adopted it as its own launch: the slot
/// said the host ran revision 2 while it ran revision 1, and nothing ever replaced it. Only a task
/// carrying the claim's `startedBy` is the claim's launch; another is recorded as what it is.
#[test]
fn an_expired_claim_adopts_only_its_own_launch_as_its_launch() {
    use crate::domain::{HostState, HostStatus, LaunchSpec, Slot, SlotTask};
    use crate::domain::{TaskObservation, TaskStatus};
    use crate::planner::{plan_expired_claim, CLAIM_LEASE_MS};
    const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/metrics:1";
    const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/metrics:2";
    let host = HostState {
        container_instance_arn: crate::sim::host_arn(1),
        status: HostStatus::Active,
        agent_connected: true,
        version: 3,
        other_tasks: None,
    };
    let mut slot = Slot::new("metrics", crate::fakes::FAKE_CLUSTER_ARN, host);
    slot.task = SlotTask::Launching {
        claim_id: "claim".into(),
        since_ms: 0,
    };
    slot.launch = Some(LaunchSpec {
        task_definition: NEW.into(),
        revision: 2,
        started_by: "D2".into(),
        group: crate::domain::task::task_group("metrics"),
        overrides: None,
        reserves: Default::default(),
    });
    let found = |started_by: &str, td: &str| TaskObservation {
        task_arn: format!("t-{started_by}"),
        container_instance_arn: crate::sim::host_arn(1),
        environment: "metrics".into(),
        started_by: Some(started_by.into()),
        task_definition: Some(td.into()),
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        stopped_reason: None,
        version: 1,
        ran_for_ms: None,
    };
    let after = CLAIM_LEASE_MS + 1;
    let recorded = |t: crate::planner::Transition| {
        let next = t.next.expect("a write");
        let launch = next.launch.expect("a launch");
        (
            next.task.task_arn().map(str::to_owned),
            launch.task_definition,
            launch.revision,
        )
    };
    // The claim's own launch (its answer was lost): adopted as revision 2.
    let own = plan_expired_claim(&slot, Some(&found("D2", NEW)), after);
    assert_eq!(recorded(own), (Some("t-D2".into()), NEW.into(), 2));
    // A task started by hand with revision 1: recorded as what it runs, for a rollout to replace.
    let by_hand = plan_expired_claim(&slot, Some(&found("an-operator", OLD)), after);
    let (task, td, revision) = recorded(by_hand);
    assert_eq!((task.as_deref(), td.as_str()), (Some("t-an-operator"), OLD));
    assert_ne!(revision, 2, "an old task recorded as the new revision");
}

/// Found by the chaos run on moto with surge (issue 11; CHAOS_SEED=13263546961802472955): a
/// surge's new task became healthy, the slot stopped the old one and retired it in the same
/// write, and the StopTask was throttled. The old task ran on beside the new one, unrecorded, and
/// every later event of it was ignored as a retired task's: only the reconciler could stop it.
/// A retired task is never adopted, but one ECS says runs beside the slot's own task is a
/// duplicate, and one where the daemon does not belong is misplaced: its event stops it (again).
#[test]
fn a_surge_old_task_whose_stop_failed_is_stopped_by_its_own_event() {
    use crate::domain::{HostState, HostStatus, LaunchSpec, Order, Slot, SlotTask, SurgedTask};
    use crate::domain::{TaskObservation, TaskStatus};
    use crate::planner::{plan_task, Effect};
    const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/metrics:1";
    const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/metrics:2";
    let launch = |td: &str, by: &str| LaunchSpec {
        task_definition: td.into(),
        revision: if td == NEW { 2 } else { 1 },
        started_by: by.into(),
        group: crate::domain::task::task_group("metrics"),
        overrides: None,
        reserves: Default::default(),
    };
    let host = HostState {
        container_instance_arn: crate::sim::host_arn(1),
        status: HostStatus::Active,
        agent_connected: true,
        version: 3,
        other_tasks: None,
    };
    let mut slot = Slot::new("metrics", crate::fakes::FAKE_CLUSTER_ARN, host);
    slot.task = SlotTask::Pending {
        task_arn: "t-new".into(),
        version: 1,
    };
    slot.launch = Some(launch(NEW, "D2"));
    slot.tracked_by = Some("D2".into());
    slot.surge = Some(SurgedTask {
        task_arn: "t-old".into(),
        version: 2,
        since_ms: 0,
        launch: Some(launch(OLD, "D1")),
    });
    let seen = |arn: &str, td: &str, by: &str, version| TaskObservation {
        task_arn: arn.into(),
        container_instance_arn: crate::sim::host_arn(1),
        environment: "metrics".into(),
        started_by: Some(by.into()),
        task_definition: Some(td.into()),
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        stopped_reason: None,
        version,
        ran_for_ms: None,
    };
    // The new task is healthy: the old one is asked to stop (and retired).
    let t = plan_task(
        &slot,
        &seen("t-new", NEW, "D2", 2),
        &Order::none(),
        1_000,
        "c",
    );
    assert!(
        matches!(&t.effect, Effect::Stop { task_arn, .. } if task_arn == "t-old"),
        "{t:?}"
    );
    let after = t.next.expect("a write");
    assert_eq!(after.surge, None);
    // That StopTask failed: a (late) event of the old task, still running, stops it again.
    let late = plan_task(
        &after,
        &seen("t-old", OLD, "D1", 2),
        &Order::none(),
        2_000,
        "c",
    );
    assert!(
        matches!(&late.effect, Effect::Stop { task_arn, .. } if task_arn == "t-old"),
        "the old task runs on beside the new one: {late:?}"
    );
    assert!(late.next.is_none(), "{late:?}");
    // On a slot with no task of its own, a retired task is still never adopted (the slot launches
    // its own; the old one is then a duplicate beside it).
    let mut vacant = after.clone();
    vacant.task = SlotTask::Vacant;
    let t = plan_task(
        &vacant,
        &seen("t-old", OLD, "D1", 3),
        &Order::none(),
        3_000,
        "c",
    );
    assert!(t.is_nothing(), "a retired task adopted: {t:?}");
    // Where the daemon no longer belongs (CHAOS_SEED=9: the host was relabelled after the surge
    // and its new task stopped), it is stopped, as any task of ours there would be.
    vacant.placement = crate::domain::Placement::Excluded {
        reason: "not selected".into(),
    };
    let t = plan_task(
        &vacant,
        &seen("t-old", OLD, "D1", 3),
        &Order::none(),
        3_000,
        "c",
    );
    assert!(
        matches!(&t.effect, Effect::Stop { task_arn, .. } if task_arn == "t-old"),
        "left running where it does not belong: {t:?}"
    );
}

/// Found by the chaos run with surge (issue 11; CHAOS_SEED=16): a surge's claim outlived its
/// lease (its StartTask never got through) and the reconciler freed the slot — but kept its surge
/// record. The old task then counted as the surge's ("known, never a duplicate") on a slot with
/// no task, and ran on where the host had meanwhile been relabelled out of the environment. An
/// expired surge claim gives the slot back to the old task, as a refused or throttled StartTask
/// does.
#[test]
fn an_expired_surge_claim_gives_the_slot_back_to_the_old_task() {
    use crate::domain::{HostState, HostStatus, LaunchSpec, Slot, SlotTask, SurgedTask};
    use crate::planner::{plan_expired_claim, CLAIM_LEASE_MS};
    let launch = |td: &str, by: &str| LaunchSpec {
        task_definition: td.into(),
        revision: if td.ends_with(":2") { 2 } else { 1 },
        started_by: by.into(),
        group: crate::domain::task::task_group("metrics"),
        overrides: None,
        reserves: Default::default(),
    };
    let host = HostState {
        container_instance_arn: crate::sim::host_arn(1),
        status: HostStatus::Active,
        agent_connected: true,
        version: 3,
        other_tasks: None,
    };
    let mut slot = Slot::new("metrics", crate::fakes::FAKE_CLUSTER_ARN, host);
    slot.task = SlotTask::Launching {
        claim_id: "claim".into(),
        since_ms: 0,
    };
    slot.launch = Some(launch("metrics:2", "D2"));
    slot.tracked_by = Some("D2".into());
    slot.surge = Some(SurgedTask {
        task_arn: "t-old".into(),
        version: 2,
        since_ms: 0,
        launch: Some(launch("metrics:1", "D1")),
    });
    let t = plan_expired_claim(&slot, None, CLAIM_LEASE_MS + 1);
    let next = t.next.expect("a write");
    assert_eq!(next.surge, None, "{next:?}");
    assert!(
        matches!(&next.task, SlotTask::Running { task_arn, version: 2, .. } if task_arn == "t-old"),
        "{next:?}"
    );
    assert_eq!(next.task_definition(), Some("metrics:1"));
    assert_eq!(next.tracked_by, None);
}

fn crowd(host: &str, live: &[&str], named: Option<&str>) -> Crowd {
    Crowd {
        environment: "logs".into(),
        host: host.into(),
        live: live.iter().map(|t| (*t).to_owned()).collect(),
        named: named.map(str::to_owned),
        surged: None,
        has_slot: true,
    }
}

/// `crowd` whose slot records a surge replacing `old`.
fn surging(host: &str, live: &[&str], named: Option<&str>, old: &str) -> Crowd {
    Crowd {
        surged: Some(old.to_owned()),
        ..crowd(host, live, named)
    }
}

/// On a host the environment has no slot for, task-events has no record to decide by: extra
/// tasks there are the reconciler's, whatever events were heard.
#[test]
fn the_watch_leaves_tasks_on_a_host_without_a_slot_to_the_reconciler() {
    let mut w = Watch::default();
    let alive = |_: &str, _: &str, _: &str| true;
    let crowds = [Crowd {
        has_slot: false,
        ..crowd("h1", &["t1", "t2"], None)
    }];
    w.check(1, Cause::Chaos, &crowds, alive).unwrap();
    w.heard("t1");
    w.heard("t2");
    w.check(2, Cause::Events, &crowds, alive).unwrap();
    // Once a slot appears (a host event), what was heard before it does not count (CHAOS_SEED=39)…
    let recorded = [crowd("h1", &["t1", "t2"], None)];
    w.check(3, Cause::Events, &recorded, alive).unwrap();
    // …but an event heard with the slot there does: the duplicate outlived it.
    w.heard("t2");
    assert!(w.check(4, Cause::Events, &recorded, alive).is_err());
}

/// The continuous invariant: a duplicate may live until an event of it reaches task-events with
/// no fault in the way while it is one; then it must be gone.
#[test]
fn the_watch_allows_a_duplicate_only_until_its_own_event_is_handled() {
    let mut w = Watch::default();
    let alive = |_: &str, _: &str, _: &str| true;
    let crowds = [crowd("h1", &["t1", "t2"], Some("t1"))];
    // Heard before it was a duplicate: there was nothing to stop then.
    w.heard("t2");
    assert!(w.check(1, Cause::Chaos, &crowds, alive).is_ok());
    assert_eq!((w.figures.seen, w.open()), (1, 1));
    // Its event not delivered yet (or delivered with a fault in the way): still allowed.
    assert!(w.check(2, Cause::Events, &crowds, alive).is_ok());
    // Handled cleanly while it is one, and still live: the invariant is broken.
    w.heard("t2");
    let err = w.check(3, Cause::Events, &crowds, alive).unwrap_err();
    assert!(err.contains("t2") && err.contains("since step 1"), "{err}");
    // The task the slot records is never the duplicate, whatever was heard of it.
    let mut w = Watch::default();
    w.check(1, Cause::Chaos, &crowds, alive).unwrap();
    w.heard("t1");
    assert!(w.check(2, Cause::Events, &crowds, alive).is_ok());
}

/// Issue 11: two live tasks on a host without a surge record are not a surge. The second is a
/// duplicate like any other: once its own event was handled cleanly and it still runs, the watch
/// fails — whatever else the slot records, on that host or another.
#[test]
fn the_watch_does_not_take_two_tasks_without_a_surge_record_for_a_surge() {
    let alive = |_: &str, _: &str, _: &str| true;
    // The slot names t1 and records no surge: t2 is a duplicate, not a surge's old task.
    let mut w = Watch::default();
    let two = [crowd("h1", &["t1", "t2"], Some("t1"))];
    w.check(1, Cause::Events, &two, alive).unwrap();
    assert_eq!((w.figures.seen, w.surge.seen), (1, 0));
    w.heard("t2");
    let err = w.check(2, Cause::Events, &two, alive).unwrap_err();
    assert!(err.contains("duplicate t2"), "{err}");
    // A surge recorded on another host covers nothing here.
    let mut w = Watch::default();
    let crowds = [
        crowd("h1", &["t1", "t2"], Some("t1")),
        surging("h2", &["t3", "t4"], Some("t4"), "t3"),
    ];
    w.check(1, Cause::Events, &crowds, alive).unwrap();
    w.heard("t2");
    assert!(w.check(2, Cause::Events, &crowds, alive).is_err());
    // A surge recorded for a task that is not live here does not make two live tasks a surge.
    let mut w = Watch::default();
    let stale = [surging("h1", &["t1", "t2"], Some("t1"), "t0")];
    w.check(1, Cause::Events, &stale, alive).unwrap();
    w.heard("t2");
    assert!(w.check(2, Cause::Events, &stale, alive).is_err());
    assert_eq!(w.surge.seen, 0);
    // Three live tasks under a surge: the third is a duplicate.
    let mut w = Watch::default();
    let three = [surging("h1", &["t1", "t2", "t3"], Some("t2"), "t1")];
    w.check(1, Cause::Events, &three, alive).unwrap();
    for t in ["t1", "t2", "t3"] {
        w.heard(t);
    }
    let err = w.check(2, Cause::Events, &three, alive).unwrap_err();
    assert!(err.contains("duplicate t3"), "{err}");
    // A slot that records its own task as the one its surge replaces is broken.
    let mut w = Watch::default();
    let same = [surging("h1", &["t1", "t2"], Some("t1"), "t1")];
    assert!(w.check(1, Cause::Events, &same, alive).is_err());
}

/// Issue 11: a recorded surge — its old task and its new one, exactly those two — is accepted
/// however often their events are handled; the new task seen before its first event (the slot
/// still launching) is held to the duplicates' rule: its own event must make it the slot's task.
#[test]
fn the_watch_accepts_a_recorded_surge_and_counts_it() {
    let alive = |_: &str, _: &str, _: &str| true;
    let mut w = Watch::default();
    // The new task t2 started; the slot is still launching (names nothing), t1 is the surge's.
    let launching = [surging("h1", &["t1", "t2"], None, "t1")];
    w.check(1, Cause::Events, &launching, alive).unwrap();
    assert_eq!(w.surge.launches_before_their_event, 1);
    assert_eq!(w.figures.seen, 0, "a surge launch is no duplicate");
    // Its first event recorded it; both tasks' events handled again and again: accepted.
    let recorded = [
        surging("h1", &["t1", "t2"], Some("t2"), "t1"),
        surging("h2", &["t3", "t4"], Some("t4"), "t3"),
    ];
    for step in 2..6 {
        for t in ["t1", "t2", "t3", "t4"] {
            w.heard(t);
        }
        w.check(step, Cause::Events, &recorded, alive).unwrap();
    }
    assert_eq!(w.open(), 0);
    assert_eq!(
        (w.surge.seen, w.surge.most_at_once, w.surge.checks_with_two),
        (2, 2, 5)
    );
    assert_eq!(w.figures.seen, 0);
    // The surge finished on h1 (its old task stopped): one task, no crowd; on h2 the new task
    // failed and the slot went back to the old one, which runs on.
    w.check(6, Cause::Events, &recorded[1..], alive).unwrap();
    assert_eq!((w.surge.seen, w.surge.most_at_once), (2, 2));
    assert_eq!(w.surges_to_follow().len(), 2);
    w.follow(&[
        crowd("h1", &["t2"], Some("t2")),
        surging("h2", &["t3", "t4"], Some("t4"), "t3"),
    ]);
    assert_eq!((w.surge.finished, w.surge.abandoned), (1, 0));
    w.follow(&[crowd("h2", &["t3"], Some("t3"))]);
    let s = &w.surge;
    assert_eq!(
        (s.finished, s.abandoned, s.abandoned_old_running),
        (1, 1, 1)
    );
    assert!(w.surges_to_follow().is_empty());

    // A surge launch whose own event was handled cleanly and that is still not the slot's task
    // (nor stopped) breaks the rule.
    let mut w = Watch::default();
    w.check(1, Cause::Events, &launching, alive).unwrap();
    w.heard("t2");
    let err = w.check(2, Cause::Events, &launching, alive).unwrap_err();
    assert!(err.contains("surge launch t2"), "{err}");
}

/// Each duplicate is counted once, by what it became: stopped while events were delivered,
/// stopped by the reconciler, or no longer a duplicate for another reason.
#[test]
fn the_watch_counts_how_each_duplicate_ended() {
    let mut w = Watch::default();
    let live = std::cell::RefCell::new(vec!["t1", "t2", "t3", "t4"]);
    let alive = |_: &str, _: &str, t: &str| live.borrow().contains(&t);
    let both = [
        crowd("h1", &["t1", "t2"], Some("t1")),
        crowd("h2", &["t3", "t4"], None),
    ];
    w.check(1, Cause::Chaos, &both, alive).unwrap();
    assert_eq!((w.figures.seen, w.figures.most_at_once), (3, 3));
    live.borrow_mut().retain(|t| *t != "t2");
    w.check(2, Cause::Events, &both[1..], alive).unwrap();
    live.borrow_mut().retain(|t| *t != "t3");
    // t4 is alone now: no longer a duplicate, though nobody stopped it.
    w.check(5, Cause::Reconciler, &[], alive).unwrap();
    let f = &w.figures;
    assert_eq!(
        (
            f.stopped_by_events,
            f.stopped_by_reconciler,
            f.resolved_otherwise
        ),
        (1, 1, 1)
    );
    assert_eq!((w.open(), f.longest_steps, f.seen), (0, 4, 3));
}

/// The simulation, the product and the watch together: a task someone starts by hand beside the
/// daemon is stopped by the delivery of its own event, and counted so.
#[test]
fn a_task_started_by_hand_beside_the_daemon_is_stopped_by_its_own_event() {
    use crate::domain::{HostStatus, LaunchSpec};
    use crate::fakes::{FakeStore, FAKE_CLUSTER_ARN};
    use crate::ports::{Cluster, StartRequest, Store};
    use crate::sim::{host_arn, Ev, Sim};
    block_on(async {
        let mut sim = Sim::new(FakeStore::default(), &["logs"], None);
        let now = crate::clock::now_rfc3339();
        let spec = crate::domain::DaemonSpec::of_task_definition("logs:1", Default::default());
        let env = crate::domain::Environment::new("logs", FAKE_CLUSTER_ARN, spec, &now);
        sim.store
            .create_environment(&env, &env.latest(&now), &[])
            .await
            .unwrap();
        let dep = crate::services::deployments_api::create(&sim.store, "logs", None, None)
            .await
            .unwrap();
        sim.queue
            .push(Ev::Deployment("logs".into(), dep.id.clone()));
        sim.set_host(0, Some(HostStatus::Active), Some(true), None);
        sim.drain_queue().await;
        assert_eq!(sim.tasks_on("logs", 0), 1);

        let launch = LaunchSpec {
            task_definition: "logs:1".into(),
            revision: 0,
            started_by: "an-operator".into(),
            group: crate::domain::task::task_group("logs"),
            overrides: None,
            reserves: Default::default(),
        };
        let hosts = [host_arn(0)];
        let request = StartRequest {
            cluster_arn: FAKE_CLUSTER_ARN,
            launch: &launch,
            container_instances: &hosts,
        };
        let by_hand = sim.cluster.start_tasks(request).await.unwrap().started[0]
            .1
            .clone();
        sim.collect_changes();
        let mut w = Watch::default();
        let check = |sim: &Sim, w: &mut Watch, step, cause| {
            let key = crate::domain::SlotKey {
                environment: "logs".into(),
                container_instance_arn: host_arn(0),
            };
            let live = sim.live.get(&("daemon-scheduler:logs".into(), host_arn(0)));
            let crowds: Vec<Crowd> = live
                .filter(|t| t.len() > 1)
                .map(|t| Crowd {
                    environment: "logs".into(),
                    host: host_arn(0),
                    live: t.iter().cloned().collect(),
                    named: sim
                        .store
                        .slot(&key)
                        .and_then(|s| s.task.task_arn().map(str::to_owned)),
                    surged: None,
                    has_slot: sim.store.slot(&key).is_some(),
                })
                .into_iter()
                .collect();
            let alive = |_: &str, _: &str, t: &str| live.is_some_and(|l| l.contains(t));
            w.check(step, cause, &crowds, alive)
        };
        check(&sim, &mut w, 1, Cause::Chaos).unwrap();
        assert_eq!(w.open(), 1, "the task started by hand is a duplicate");
        // Its event, delivered with no fault: task-events stops it.
        let Some(Ev::Task(d)) = sim
            .queue
            .iter()
            .find(|e| matches!(e, Ev::Task(d) if d.task_arn == by_hand))
            .cloned()
        else {
            panic!("its event is queued")
        };
        sim.deliver(&Ev::Task(d)).await;
        w.heard(&by_hand);
        sim.settle().await;
        check(&sim, &mut w, 2, Cause::Events).unwrap();
        assert_eq!((w.open(), w.figures.stopped_by_events), (0, 1));
        assert_eq!(sim.tasks_on("logs", 0), 1);
        assert!(sim
            .cluster
            .stop_reason(&by_hand)
            .is_some_and(|r| r.contains("duplicate daemon task on this host")));
    });
}
