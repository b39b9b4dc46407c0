//! Property tests of the whole decision loop (planner + executor + services) on the in-process
//! fakes: for random hosts, task kills, deployments and event sequences delivered duplicated, out
//! of order and concurrently —
//! - never two live tasks of the environment on one host (checked after every step);
//! - never a task left on a host that is draining or gone, and
//! - every eligible host runs exactly one task once the events are processed and the reconciler ran;
//! - a deployment's counters always add up (desired = pending + running + failed).

use proptest::prelude::*;

use crate::clock::now_rfc3339;
use crate::domain::{DaemonSpec, Environment, Health, HostStatus};
use crate::executor::system_now_ms;
use crate::fakes::{FakeStore, FAKE_CLUSTER_ARN};
use crate::ports::Store;
use crate::services::deployments_api;
use crate::sim::{block_on, host_arn, Ev, Sim, HOSTS};

const ENV: &str = "env";

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Drain(usize),
    Disconnect(usize),
    Reconnect(usize),
    Deregister(usize),
    Kill(usize),
    Deploy,
    /// A new revision (another task definition, a random maxUnavailable): the next Deploy rolls it.
    Update(u32),
    /// Deliver the queued event at `pick` (mod queue length): out of order. `keep`: deliver it
    /// again later too (a duplicate).
    Deliver {
        pick: usize,
        keep: bool,
    },
    /// Deliver up to n queued events at once.
    DeliverConcurrently(usize),
    Reconcile,
    /// EventBridge never delivers the queued event at this index (mod queue length).
    Lose(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6usize).prop_map(Op::Join),
        1 => (0..6usize).prop_map(Op::Drain),
        1 => (0..6usize).prop_map(Op::Disconnect),
        1 => (0..6usize).prop_map(Op::Reconnect),
        1 => (0..6usize).prop_map(Op::Deregister),
        2 => (0..8usize).prop_map(Op::Kill),
        2 => Just(Op::Deploy),
        1 => (1..4u32).prop_map(Op::Update),
        6 => (0..16usize, any::<bool>()).prop_map(|(pick, keep)| Op::Deliver { pick, keep }),
        2 => (2..6usize).prop_map(Op::DeliverConcurrently),
        1 => Just(Op::Reconcile),
        1 => (0..16usize).prop_map(Op::Lose),
    ]
}

/// The classic simulation: one environment, no placement rules, hosts without tracked resources.
struct Classic {
    sim: Sim,
    /// Revisions added by `Update`.
    revisions: u32,
}

impl Classic {
    async fn new() -> Self {
        let store = FakeStore::default();
        let now = now_rfc3339();
        let spec = DaemonSpec::of_task_definition("agent:1", Default::default());
        let env = Environment::new(ENV, FAKE_CLUSTER_ARN, spec, &now);
        store
            .create_environment(&env, &env.latest(&now), &[])
            .await
            .unwrap();
        Self {
            sim: Sim::new(store, &[ENV], None),
            revisions: 0,
        }
    }

    /// A simulation with `n` hosts joined and every event delivered.
    async fn with_hosts(n: usize) -> Self {
        let mut c = Classic::new().await;
        for i in 0..n {
            c.apply(&Op::Join(i)).await;
        }
        c.sim.drain_queue().await;
        c
    }

    async fn apply(&mut self, op: &Op) {
        let sim = &mut self.sim;
        match op {
            Op::Join(i) => sim.set_host(*i, Some(HostStatus::Active), Some(true), None),
            Op::Drain(i) => sim.set_host(*i, Some(HostStatus::Draining), None, None),
            Op::Disconnect(i) => sim.set_host(*i, None, Some(false), None),
            Op::Reconnect(i) => sim.set_host(*i, None, Some(true), None),
            Op::Deregister(i) => sim.set_host(*i, Some(HostStatus::Inactive), Some(false), None),
            Op::Kill(i) => {
                let live = sim.cluster.live_tasks();
                if !live.is_empty() {
                    sim.cluster.kill(&live[i % live.len()].arn);
                }
            }
            Op::Update(max_unavailable) => {
                let body = serde_json::json!({
                    "taskDefinition": format!("agent:{}", self.revisions + 2),
                    "updateStrategy": {"maxUnavailable": max_unavailable},
                });
                let req = crate::http::ApiRequest {
                    method: "PUT".into(),
                    segments: vec!["environments".into(), ENV.into()],
                    body: Some(body.to_string().into_bytes()),
                    ..Default::default()
                };
                if crate::services::environments_api::route(&sim.store, &sim.cluster, &req)
                    .await
                    .is_ok()
                {
                    self.revisions += 1;
                }
            }
            Op::Deploy => {
                if let Ok(dep) = deployments_api::create(&sim.store, ENV, None, None).await {
                    sim.queue.push(Ev::Deployment(ENV.into(), dep.id));
                }
            }
            Op::Deliver { pick, keep } => sim.deliver_one(*pick, *keep).await,
            Op::DeliverConcurrently(n) => sim.deliver_concurrently(*n).await,
            Op::Reconcile => sim.reconcile(system_now_ms()).await,
            Op::Lose(i) => sim.lose(*i),
        }
        sim.settle().await;
    }
}

fn run(ops: Vec<Op>) {
    block_on(async {
        let mut c = Classic::new().await;
        for op in &ops {
            c.apply(op).await;
            c.sim.check_safety();
        }
        let sim = &mut c.sim;
        sim.quiesce().await;
        let env = sim.store.get_environment(ENV).await.unwrap().unwrap();
        let deployed = env.deployed.is_some();
        for i in 0..HOSTS {
            let Some(h) = sim.cluster.host(&host_arn(i)) else {
                continue;
            };
            let n = sim.tasks_on(ENV, i);
            let live = sim.cluster.live_tasks();
            if h.is_eligible() {
                assert_eq!(n, usize::from(deployed), "eligible host {h:?}: {live:?}");
            } else if h.state.status != HostStatus::Active {
                assert_eq!(n, 0, "host {h:?} keeps a daemon: {live:?}");
            }
        }
        // Every deployment ends once its hosts settled, and every eligible host runs the revision
        // it deployed (rolling updates under the same chaos).
        for slot in sim.store.slots() {
            let h = sim.cluster.host(&slot.host.container_instance_arn);
            if h.is_some_and(|h| h.is_eligible()) && deployed {
                let wanted = env
                    .deployed
                    .as_ref()
                    .map(|d| d.spec.task_definition.as_str());
                assert_eq!(slot.task_definition(), wanted, "{slot:?} / {env:?}");
                assert!(slot.is_available(), "{slot:?}");
            }
        }
        assert_eq!(
            env.active_deployment_id, None,
            "a deployment never finished"
        );
        assert!(sim.cluster.start_calls().iter().all(|n| *n <= 10));
    });
}

proptest! {
    // PROPTEST_CASES=20000 for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn exactly_one_daemon_per_eligible_host(ops in prop::collection::vec(op(), 1..60)) {
        run(ops);
    }
}

#[test]
fn a_deployment_racing_duplicated_joins_converges() {
    run(vec![
        Op::Join(0),
        Op::Join(1),
        Op::Deploy,
        Op::Deliver {
            pick: 0,
            keep: true,
        },
        Op::DeliverConcurrently(5),
        Op::Kill(0),
        Op::DeliverConcurrently(5),
        Op::Drain(1),
        Op::Join(2),
    ]);
}

/// StartTask started the tasks but its answer was lost (a timeout; a Lambda killed mid-call).
/// The claims stay (nothing may launch on those hosts), and the reconciler finds the tasks in ECS by
/// the claim's `startedBy` and adopts them: one task per host, one StartTask in all.
#[test]
fn a_launch_whose_answer_was_lost_is_adopted_not_repeated() {
    block_on(async {
        let mut c = Classic::with_hosts(3).await;
        c.sim.cluster.lose_next_start_answers(1);
        c.apply(&Op::Deploy).await;
        let sim = &mut c.sim;
        // The rollout only: its task events are "lost" with the answer.
        let Some(Ev::Deployment(env, id)) = sim.queue.pop() else {
            panic!("a deployment")
        };
        sim.deliver(&Ev::Deployment(env, id)).await;
        sim.cluster.take_changes();
        assert_eq!(sim.cluster.live_tasks().len(), 3);
        assert!(sim.store.slots().iter().all(crate::executor::is_launching));

        // Within the lease: another look starts nothing.
        sim.reconcile(system_now_ms()).await;
        sim.cluster.take_changes();
        assert_eq!(sim.cluster.start_calls().len(), 1);

        // After it: ECS is asked, the tasks are adopted, still one per host.
        sim.reconcile(system_now_ms() + crate::planner::CLAIM_LEASE_MS + 1)
            .await;
        sim.settle().await;
        sim.drain_queue().await;
        assert_eq!(sim.cluster.start_calls().len(), 1, "no second launch");
        assert_eq!(sim.cluster.live_tasks().len(), 3);
        assert!(sim.store.slots().iter().all(|s| matches!(
            s.task,
            crate::domain::SlotTask::Pending { .. } | crate::domain::SlotTask::Running { .. }
        )));
        assert!(sim.store.slots().iter().all(|s| s.failures == 0));
        sim.check_safety();
    });
}

/// ECS refuses the hosts of one StartTask call: the deployment settles as failed, names each host
/// with ECS's reason, and marks the environment unhealthy; the hosts are retried after a backoff.
#[test]
fn a_deployment_whose_hosts_are_refused_fails_with_their_reasons() {
    block_on(async {
        let mut c = Classic::with_hosts(2).await;
        c.sim.cluster.refuse_next_starts(1);
        c.apply(&Op::Deploy).await;
        let sim = &mut c.sim;
        sim.drain_queue().await;

        let env = sim.store.get_environment(ENV).await.unwrap().unwrap();
        let id = env.deployed.as_ref().unwrap().deployment_id.clone();
        let dep = sim.store.deployment(ENV, &id).unwrap();
        assert_eq!(
            dep.status,
            crate::domain::DeploymentStatus::Failed,
            "{dep:?}"
        );
        assert_eq!(
            (dep.desired_count, dep.failed_count, dep.pending_count),
            (2, 2, 0)
        );
        assert_eq!(env.health, Health::Unhealthy);
        assert_eq!(
            env.active_deployment_id, None,
            "the next deployment may start"
        );
        assert!(sim.cluster.live_tasks().is_empty());
        let failures = sim.store.slots();
        assert!(
            failures
                .iter()
                .all(|s| s.last_failure.as_deref() == Some("ThrottlingException")
                    && s.retry_at_ms > 0)
        );

        // The backoff over, the reconciler starts them.
        sim.reconcile(system_now_ms() + 60_000).await;
        sim.settle().await;
        sim.drain_queue().await;
        assert_eq!(sim.cluster.live_tasks().len(), 2);
    });
}
