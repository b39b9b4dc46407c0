//! Property tests of the whole decision loop (planner + executor + services) on the in-process
//! fakes: for random hosts, task kills, deployments and event sequences delivered duplicated, out
//! of order and concurrently —
//! - never two live tasks of the environment on one host (checked after every step);
//! - never a task left on a host that is draining or gone, and
//! - every eligible host runs exactly one task once the events are processed and the reconciler ran;
//! - a deployment's counters always add up (desired = pending + running + failed).

use proptest::prelude::*;

use crate::clock::now_rfc3339;
use crate::domain::{DaemonSpec, Environment, Health, Host, HostState, HostStatus};
use crate::executor::system_now_ms;
use crate::fakes::{FakeCluster, FakeStore, FakeTask, FAKE_CLUSTER_ARN};
use crate::ports::Store;
use crate::services::{deployments_api, instance_events, reconciler, rolling, task_events};

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

#[derive(Debug, Clone)]
enum Ev {
    Instance(instance_events::InstanceDetail),
    Task(task_events::TaskDetail),
    Deployment(String),
}

struct Sim {
    store: FakeStore,
    cluster: FakeCluster,
    queue: Vec<Ev>,
    versions: Vec<i64>,
    /// Revisions added by `Update`.
    revisions: u32,
    /// The deployment as the stream last showed it: every change emits a record, as DynamoDB's does.
    streamed: Option<crate::domain::Deployment>,
    nudges: u64,
}

fn host_arn(i: usize) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:container-instance/fake/h{i}")
}

fn task_detail(t: &FakeTask) -> task_events::TaskDetail {
    let status = if t.alive { "RUNNING" } else { "STOPPED" };
    task_events::TaskDetail {
        task_arn: t.arn.clone(),
        cluster_arn: FAKE_CLUSTER_ARN.into(),
        container_instance_arn: Some(t.host.clone()),
        group: Some(t.group.clone()),
        started_by: Some(t.started_by.clone()),
        task_definition_arn: Some(t.task_definition.clone()),
        last_status: status.into(),
        desired_status: status.into(),
        stopped_reason: (!t.alive).then(|| "Essential container in task exited".into()),
        version: t.version,
        started_at: None,
        stopped_at: None,
    }
}

/// The event ECS sends for a host as it is now.
fn instance_detail(host: &Host) -> instance_events::InstanceDetail {
    serde_json::from_value(serde_json::json!({
        "clusterArn": FAKE_CLUSTER_ARN,
        "containerInstanceArn": host.arn(),
        "status": format!("{:?}", host.state.status).to_uppercase(),
        "agentConnected": host.state.agent_connected,
        "version": host.state.version,
        "ec2InstanceId": host.ec2_instance_id,
        "attributes": host.attributes.iter().map(|(k, v)| serde_json::json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "remainingResources": host.remaining.as_ref().map(|r| serde_json::json!([
            {"name": "CPU", "integerValue": r.cpu},
            {"name": "MEMORY", "integerValue": r.memory},
            {"name": "PORTS", "stringSetValue": r.ports.iter().map(u16::to_string).collect::<Vec<_>>()},
        ])).unwrap_or_else(|| serde_json::json!([])),
    }))
    .unwrap()
}

impl Sim {
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
            store,
            cluster: FakeCluster::default(),
            queue: Vec::new(),
            versions: vec![0; 6],
            revisions: 0,
            streamed: None,
            nudges: 0,
        }
    }

    /// ECS changes a host; its event joins the queue.
    fn set_host(&mut self, i: usize, status: Option<HostStatus>, agent: Option<bool>) {
        let arn = host_arn(i);
        let current = self.cluster.host(&arn);
        if current.is_none() && status != Some(HostStatus::Active) {
            return; // a host that never joined cannot drain or disconnect
        }
        if current.as_ref().is_some_and(|h| h.state.status.is_gone()) {
            return; // deregistered hosts do not come back
        }
        self.versions[i] += 1;
        let host = Host::from_state(HostState {
            container_instance_arn: arn.clone(),
            status: status.unwrap_or_else(|| current.as_ref().unwrap().state.status),
            agent_connected: agent
                .unwrap_or_else(|| current.as_ref().is_none_or(|h| h.state.agent_connected)),
            version: self.versions[i],
            other_tasks: None,
        });
        self.cluster.set_host(host.clone());
        self.queue.push(Ev::Instance(instance_detail(&host)));
    }

    fn collect_task_changes(&mut self) {
        for t in self.cluster.take_changes() {
            self.queue.push(Ev::Task(task_detail(&t)));
        }
    }

    async fn deliver(&self, ev: &Ev) {
        match ev {
            Ev::Instance(d) => {
                instance_events::handle(&self.store, &self.cluster, d)
                    .await
                    .unwrap();
            }
            Ev::Task(d) => {
                task_events::handle(&self.store, &self.cluster, d)
                    .await
                    .unwrap();
            }
            Ev::Deployment(id) => {
                // The stream delivers the deployment's change; the deployer steps it.
                rolling::step(&self.store, &self.cluster, ENV, id, system_now_ms())
                    .await
                    .unwrap();
            }
        }
    }

    async fn reconcile(&mut self, at_ms: i64) {
        reconciler::reconcile_all(&self.store, &self.cluster, at_ms)
            .await
            .unwrap();
        self.stream_deployment().await;
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::Join(i) => self.set_host(*i, Some(HostStatus::Active), Some(true)),
            Op::Drain(i) => self.set_host(*i, Some(HostStatus::Draining), None),
            Op::Disconnect(i) => self.set_host(*i, None, Some(false)),
            Op::Reconnect(i) => self.set_host(*i, None, Some(true)),
            Op::Deregister(i) => self.set_host(*i, Some(HostStatus::Inactive), Some(false)),
            Op::Kill(i) => {
                let live = self.cluster.live_tasks();
                if !live.is_empty() {
                    self.cluster.kill(&live[i % live.len()].arn);
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
                if crate::services::environments_api::route(&self.store, &self.cluster, &req)
                    .await
                    .is_ok()
                {
                    self.revisions += 1;
                }
            }
            Op::Deploy => {
                if let Ok(dep) = deployments_api::create(&self.store, ENV, None, None).await {
                    self.queue.push(Ev::Deployment(dep.id));
                }
            }
            Op::Deliver { pick, keep } => {
                if !self.queue.is_empty() {
                    let i = pick % self.queue.len();
                    let ev = if *keep {
                        self.queue[i].clone()
                    } else {
                        self.queue.remove(i)
                    };
                    self.deliver(&ev).await;
                }
            }
            Op::DeliverConcurrently(n) => {
                let n = (*n).min(self.queue.len());
                let batch: Vec<Ev> = self.queue.drain(..n).collect();
                futures::future::join_all(batch.iter().map(|e| self.deliver(e))).await;
            }
            Op::Reconcile => self.reconcile(system_now_ms()).await,
            Op::Lose(i) => {
                if !self.queue.is_empty() {
                    let i = i % self.queue.len();
                    // The stream never loses a record; only EventBridge events go missing.
                    if !matches!(self.queue[i], Ev::Deployment(_)) {
                        self.queue.remove(i);
                    }
                }
            }
        }
        self.collect_task_changes();
        self.stream_deployment().await;
    }

    /// Queues a stream record of the active deployment when its item changed since the last one.
    async fn stream_deployment(&mut self) {
        let env = self.store.get_environment(ENV).await.unwrap().unwrap();
        let Some(id) = env.active_deployment_id else {
            return;
        };
        let now = self.store.deployment(ENV, &id);
        let nudges = self.store.nudges(ENV, &id);
        if now != self.streamed || nudges != self.nudges {
            self.streamed = now;
            self.nudges = nudges;
            self.queue.push(Ev::Deployment(id));
        }
    }

    async fn drain_queue(&mut self) {
        for _ in 0..200 {
            if self.queue.is_empty() {
                return;
            }
            let ev = self.queue.remove(0);
            self.deliver(&ev).await;
            self.collect_task_changes();
            self.stream_deployment().await;
        }
        panic!("events keep coming: {:?}", self.queue);
    }

    fn check_safety(&self) {
        let mut per_host = std::collections::BTreeMap::<String, usize>::new();
        for t in self.cluster.live_tasks() {
            *per_host.entry(t.host.clone()).or_default() += 1;
        }
        for (h, n) in &per_host {
            assert!(
                *n <= 1,
                "{n} live tasks on {h}: {:?}",
                self.cluster.live_tasks()
            );
        }
        for s in self.store.slots() {
            if let Some(id) = &s.tracked_by {
                let d = self.store.deployment(ENV, id).unwrap();
                assert_eq!(
                    d.desired_count,
                    d.pending_count + d.running_count + d.failed_count,
                    "{d:?}"
                );
            }
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl Sim {
    /// A simulation with `n` hosts joined and every event delivered.
    async fn with_hosts(n: usize) -> Self {
        let mut sim = Sim::new().await;
        for i in 0..n {
            sim.apply(&Op::Join(i)).await;
        }
        sim.drain_queue().await;
        sim
    }
}

fn run(ops: Vec<Op>) {
    block_on(async {
        let mut sim = Sim::new().await;
        for op in &ops {
            sim.apply(op).await;
            sim.check_safety();
        }
        // Quiesce: every event delivered, then two reconciler runs past every backoff.
        sim.drain_queue().await;
        let deployed = sim
            .store
            .get_environment(ENV)
            .await
            .unwrap()
            .unwrap()
            .deployed
            .is_some();
        for minutes in [20, 40] {
            sim.reconcile(system_now_ms() + minutes * 60_000).await;
            sim.collect_task_changes();
            sim.drain_queue().await;
            sim.check_safety();
        }
        let live = sim.cluster.live_tasks();
        for i in 0..6 {
            let Some(h) = sim.cluster.host(&host_arn(i)) else {
                continue;
            };
            let n = live.iter().filter(|t| t.host == h.arn()).count();
            if h.is_eligible() {
                assert_eq!(n, usize::from(deployed), "eligible host {h:?}: {live:?}");
            } else if h.state.status != HostStatus::Active {
                assert_eq!(n, 0, "host {h:?} keeps a daemon: {live:?}");
            }
        }
        // Every deployment ends once its hosts settled, and every eligible host runs the revision
        // it deployed (rolling updates under the same chaos).
        let env = sim.store.get_environment(ENV).await.unwrap().unwrap();
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
        let mut sim = Sim::with_hosts(3).await;
        sim.cluster.lose_next_start_answers(1);
        sim.apply(&Op::Deploy).await;
        // The rollout only: its task events are "lost" with the answer.
        let Ev::Deployment(id) = sim.queue.pop().unwrap() else {
            panic!("a deployment")
        };
        sim.deliver(&Ev::Deployment(id.clone())).await;
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
        sim.collect_task_changes();
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
        let mut sim = Sim::with_hosts(2).await;
        sim.cluster.refuse_next_starts(1);
        sim.apply(&Op::Deploy).await;
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
        sim.collect_task_changes();
        sim.drain_queue().await;
        assert_eq!(sim.cluster.live_tasks().len(), 2);
    });
}
