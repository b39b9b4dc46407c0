//! Property tests of the rollout controls (issue 11) over the whole decision loop on the fakes
//! (the deployer's steps, task and instance events, the reconciler), with events delivered out of
//! order, twice and concurrently, and hosts joining mid-rollout:
//! - a canary never has more hosts on its revision than it asked for before it is promoted, waits
//!   in `awaiting-promotion` once they baked, and its promotion then takes every host;
//! - a deployment's counters are always those of the slots it tracks (a canary's included, which
//!   the environment's target does not track);
//! - a paused deployment replaces no host that still ran the previous revision when it was
//!   paused (hosts in flight finish), and a resumed one completes.
//! - with `maxSurge` and `maxUnavailable: 0`, a host runs at most two tasks, two only while its
//!   slot records the surge, never none, and exactly one (of the revision) once it completed.
//!
//! Surge's per-host properties (a failed new task leaves the old one) are in
//! planner/surge_tests.rs.

use proptest::prelude::*;

use crate::clock::now_rfc3339;
use crate::domain::{DaemonSpec, DeploymentStatus, Environment, HostStatus};
use crate::executor::system_now_ms;
use crate::fakes::{FakeStore, FakeTask, FAKE_CLUSTER_ARN};
use crate::ports::Store;
use crate::services::deployments_api;
use crate::sim::{block_on, call_api, host_arn, Ev, Sim, HOSTS};

const ENV: &str = "env";
const OLD: &str = "agent:1";
const NEW: &str = "agent:2";

#[derive(Debug, Clone)]
enum Op {
    /// Deliver the queued event at `pick` (mod queue length); `keep`: again later too.
    Deliver {
        pick: usize,
        keep: bool,
    },
    DeliverConcurrently(usize),
    Reconcile,
    /// Host `i` joins (a no-op if it is there).
    Join(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..16usize, any::<bool>()).prop_map(|(pick, keep)| Op::Deliver { pick, keep }),
        2 => (2..5usize).prop_map(Op::DeliverConcurrently),
        1 => Just(Op::Reconcile),
        1 => (0..HOSTS).prop_map(Op::Join),
    ]
}

async fn api(sim: &Sim, method: &str, segments: &[&str], body: Option<serde_json::Value>) {
    try_api(sim, method, segments, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {segments:?}: {e}"));
}

async fn try_api(
    sim: &Sim,
    method: &str,
    segments: &[&str],
    body: Option<serde_json::Value>,
) -> crate::error::Result<()> {
    call_api(&sim.store, &sim.cluster, method, segments, body)
        .await
        .map(drop)
}

/// `hosts` hosts running revision 1 of `env`, then revision 2 (`strategy`) deployed: the
/// simulation and the deployment's id.
async fn rolling_out(hosts: usize, strategy: serde_json::Value) -> (Sim, String) {
    let store = FakeStore::default();
    let now = now_rfc3339();
    let env = Environment::new(
        ENV,
        FAKE_CLUSTER_ARN,
        DaemonSpec::of_task_definition(OLD, Default::default()),
        &now,
    );
    store
        .create_environment(&env, &env.latest(&now), &[])
        .await
        .unwrap();
    let mut sim = Sim::new(store, &[ENV], None);
    for i in 0..hosts {
        sim.set_host(i, Some(HostStatus::Active), Some(true), None);
    }
    let first = deployments_api::create(&sim.store, ENV, None, None)
        .await
        .unwrap();
    sim.queue.push(Ev::Deployment(ENV.into(), first.id));
    sim.settle().await;
    sim.quiesce().await;
    api(
        &sim,
        "PUT",
        &["environments", ENV],
        Some(serde_json::json!({"taskDefinition": NEW, "updateStrategy": strategy})),
    )
    .await;
    let dep = deployments_api::create(&sim.store, ENV, None, None)
        .await
        .unwrap();
    sim.queue.push(Ev::Deployment(ENV.into(), dep.id.clone()));
    sim.settle().await;
    (sim, dep.id)
}

async fn apply(sim: &mut Sim, op: &Op) {
    match op {
        Op::Deliver { pick, keep } => sim.deliver_one(*pick, *keep).await,
        Op::DeliverConcurrently(n) => sim.deliver_concurrently(*n).await,
        Op::Reconcile => sim.reconcile(system_now_ms()).await,
        Op::Join(i) => {
            if sim.cluster.host(&host_arn(*i)).is_none() {
                sim.set_host(*i, Some(HostStatus::Active), Some(true), None);
            }
        }
    }
    sim.settle().await;
    sim.check_safety();
}

fn live_of(sim: &Sim, task_definition: &str) -> Vec<FakeTask> {
    sim.cluster
        .live_tasks()
        .into_iter()
        .filter(|t| t.task_definition.ends_with(task_definition))
        .collect()
}

fn hosts_on(sim: &Sim, task_definition: &str) -> usize {
    live_of(sim, task_definition).len()
}

async fn status(sim: &Sim, id: &str) -> DeploymentStatus {
    sim.store
        .get_deployment(ENV, id)
        .await
        .unwrap()
        .unwrap()
        .status
}

/// Events delivered and reconciles run (20 minutes apart) until the deployment is `done` (at
/// most a round per host): the simulation has no wake-up queue, so each wave's bake ends at a
/// reconcile.
async fn run_out(sim: &mut Sim, id: &str, done: fn(DeploymentStatus) -> bool) {
    for _ in 0..HOSTS {
        sim.quiesce().await;
        if done(status(sim, id).await) {
            return;
        }
    }
}

/// Every eligible host runs `NEW`, and the deployment completed.
async fn all_on_new(sim: &Sim, id: &str) {
    let eligible = (0..HOSTS)
        .filter_map(|i| sim.cluster.host(&host_arn(i)))
        .filter(|h| h.is_eligible())
        .count();
    assert_eq!(
        hosts_on(sim, NEW),
        eligible,
        "{:?}",
        sim.cluster.live_tasks()
    );
    assert_eq!(hosts_on(sim, OLD), 0, "{:?}", sim.cluster.live_tasks());
    counters_match_slots(sim, id).await;
    assert_eq!(
        status(sim, id).await,
        DeploymentStatus::Completed,
        "{:?}",
        sim.store.get_deployment(ENV, id).await.unwrap()
    );
}

/// The deployment's counters are those of the slots it tracks (each in one bucket).
async fn counters_match_slots(sim: &Sim, id: &str) {
    use crate::planner::{bucket, Bucket};
    let d = sim.store.get_deployment(ENV, id).await.unwrap().unwrap();
    let mut want = (0, 0, 0);
    for s in sim.store.slots() {
        match bucket(&s) {
            Some((dep, b)) if dep == id => match b {
                Bucket::Pending => want.0 += 1,
                Bucket::Running => want.1 += 1,
                Bucket::Failed => want.2 += 1,
            },
            _ => {}
        }
    }
    assert_eq!(
        (d.pending_count, d.running_count, d.failed_count),
        want,
        "counters (pending, running, failed) of {d:?} against the slots {:?}",
        sim.store.slots()
    );
}

fn canary(hosts: usize, canary: usize, max_unavailable: usize, bake: u32, ops: Vec<Op>) {
    block_on(async {
        let strategy = serde_json::json!({"canary": canary, "maxUnavailable": max_unavailable,
                                          "minHealthySeconds": bake});
        let (mut sim, id) = rolling_out(hosts, strategy).await;
        for op in &ops {
            apply(&mut sim, op).await;
            assert!(
                hosts_on(&sim, NEW) <= canary,
                "more than the canary's {canary} hosts on the new revision before promotion: {:?}",
                sim.cluster.live_tasks()
            );
        }
        run_out(&mut sim, &id, |s| s != DeploymentStatus::Pending).await;
        counters_match_slots(&sim, &id).await;
        assert_eq!(
            status(&sim, &id).await,
            DeploymentStatus::AwaitingPromotion,
            "{:?}\n{:#?}",
            sim.store.get_deployment(ENV, &id).await.unwrap(),
            sim.store.slots()
        );
        assert_eq!(
            hosts_on(&sim, NEW),
            canary,
            "{:?}",
            sim.cluster.live_tasks()
        );
        // Every other host, those that joined meanwhile included, runs the previous revision.
        let eligible = (0..HOSTS)
            .filter_map(|i| sim.cluster.host(&host_arn(i)))
            .filter(|h| h.is_eligible())
            .count();
        assert_eq!(
            hosts_on(&sim, OLD),
            eligible - canary,
            "{:?}",
            sim.cluster.live_tasks()
        );
        api(
            &sim,
            "POST",
            &["environments", ENV, "deployments", &id, "promote"],
            None,
        )
        .await;
        sim.queue.push(Ev::Deployment(ENV.into(), id.clone()));
        run_out(&mut sim, &id, DeploymentStatus::is_finished).await;
        all_on_new(&sim, &id).await;
    });
}

fn pause(hosts: usize, max_unavailable: usize, before: Vec<Op>, during: Vec<Op>) {
    block_on(async {
        let strategy = serde_json::json!({"maxUnavailable": max_unavailable});
        let (mut sim, id) = rolling_out(hosts, strategy).await;
        for op in &before {
            apply(&mut sim, op).await;
        }
        let paused = try_api(
            &sim,
            "POST",
            &["environments", ENV, "deployments", &id, "pause"],
            None,
        )
        .await;
        if paused.is_err() {
            // Only a deployment that has finished refuses a pause.
            return assert_eq!(status(&sim, &id).await, DeploymentStatus::Completed);
        }
        sim.settle().await;
        // Hosts not in flight, still on the previous revision: the pause keeps them there.
        let untouched: Vec<FakeTask> = live_of(&sim, OLD)
            .into_iter()
            .filter(|t| {
                sim.store.slots().iter().any(|s| {
                    s.host.container_instance_arn == t.host
                        && s.tracked_by.as_deref() != Some(id.as_str())
                })
            })
            .collect();
        for op in &during {
            apply(&mut sim, op).await;
        }
        sim.quiesce().await;
        let live = sim.cluster.live_tasks();
        for t in &untouched {
            assert!(
                live.iter().any(|l| l.arn == t.arn),
                "a paused deployment replaced {} on {}: {live:?}",
                t.arn,
                t.host
            );
        }
        if untouched.is_empty() {
            // Every host was in flight when it paused: they finished, and so did the deployment.
            return all_on_new(&sim, &id).await;
        }
        assert_ne!(status(&sim, &id).await, DeploymentStatus::Completed);
        api(
            &sim,
            "POST",
            &["environments", ENV, "deployments", &id, "resume"],
            None,
        )
        .await;
        sim.queue.push(Ev::Deployment(ENV.into(), id.clone()));
        sim.quiesce().await;
        all_on_new(&sim, &id).await;
    });
}

fn surge(hosts: usize, max_surge: usize, ops: Vec<Op>) {
    block_on(async {
        let strategy = serde_json::json!({"maxSurge": max_surge, "maxUnavailable": 0});
        let (mut sim, id) = rolling_out(hosts, strategy).await;
        for op in &ops {
            match op {
                Op::Deliver { pick, keep } => sim.deliver_one(*pick, *keep).await,
                Op::DeliverConcurrently(n) => sim.deliver_concurrently(*n).await,
                Op::Reconcile => sim.reconcile(system_now_ms()).await,
                // Joiners start with no task: they would say nothing about the surge.
                Op::Join(_) => continue,
            }
            sim.settle().await;
            let live = sim.cluster.live_tasks();
            for i in 0..hosts {
                let on: Vec<_> = live.iter().filter(|t| t.host == host_arn(i)).collect();
                let surging = sim
                    .store
                    .slots()
                    .iter()
                    .any(|s| s.host.container_instance_arn == host_arn(i) && s.surge.is_some());
                assert!(!on.is_empty(), "host {i} without a daemon: {live:?}");
                assert!(on.len() <= 2, "host {i}: {on:?}");
                assert!(
                    on.len() == 1 || surging,
                    "two tasks on host {i} outside a surge: {on:?}"
                );
            }
        }
        sim.queue.push(Ev::Deployment(ENV.into(), id.clone()));
        sim.quiesce().await;
        for i in 0..hosts {
            assert_eq!(sim.tasks_on(ENV, i), 1, "{:?}", sim.cluster.live_tasks());
        }
        all_on_new(&sim, &id).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_canary_replaces_only_its_hosts_waits_then_its_promotion_takes_every_host(
        (hosts, canary_hosts, max_unavailable) in
            (3..=4usize).prop_flat_map(|n| (Just(n), 1..n, 1..=n)),
        bake in prop_oneof![Just(0u32), Just(2u32)],
        ops in prop::collection::vec(op(), 0..40),
    ) {
        canary(hosts, canary_hosts, max_unavailable, bake, ops);
    }

    #[test]
    fn a_surge_keeps_one_or_two_tasks_per_host_and_ends_with_exactly_one(
        (hosts, max_surge) in (3..=5usize).prop_flat_map(|n| (Just(n), 1..=n)),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        surge(hosts, max_surge, ops);
    }

    #[test]
    fn a_paused_deployment_replaces_no_host_until_resumed(
        (hosts, max_unavailable) in (3..=4usize).prop_flat_map(|n| (Just(n), 1..=n)),
        before in prop::collection::vec(op(), 0..12),
        during in prop::collection::vec(op(), 0..30),
    ) {
        pause(hosts, max_unavailable, before, during);
    }
}

#[test]
fn a_baked_canary_with_a_host_joining_waits_then_completes_with_counters_matching_its_hosts() {
    canary(3, 1, 1, 2, vec![Op::Join(3)]);
}

#[test]
fn a_deployment_paused_before_its_first_wave_touches_nothing() {
    pause(4, 2, vec![], vec![Op::Reconcile, Op::Join(5)]);
}
