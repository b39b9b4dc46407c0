//! A simulated cluster for the property tests: the real use cases (instance events, task events,
//! the deployer's steps, the reconciler) over the in-process fakes, with ECS's events queued as
//! ECS would emit them — including the instance event every task placed or stopped on a host
//! causes — and delivered out of order, twice, concurrently or never, as the tests choose. With
//! `faults` set, the product's calls go through `Faulty` (throttling, 5xx, latency); the
//! simulation's own looks at the fakes never do.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::resources::Resources;
use crate::domain::{Deployment, Host, HostState, HostStatus};
use crate::error::Result;
use crate::executor::system_now_ms;
use crate::fakes::{FakeCluster, FakeStore, FakeTask, FAKE_CLUSTER_ARN};
use crate::faulty::{Faults, Faulty};
use crate::http::{ApiRequest, ApiResponse};
use crate::ports::{Cluster, Store};
use crate::services::{
    deployments_api, environments_api, instance_events, reconciler, rolling, task_events,
};

/// Hosts of the property tests' clusters (`Sim::new`); `Sim::with_hosts` takes any number.
pub const HOSTS: usize = 6;
/// What ECS says of a task whose container exited by itself.
pub const CRASHED: &str = "Essential container in task exited";

#[derive(Debug, Clone)]
pub enum Ev {
    Instance(instance_events::InstanceDetail),
    Task(task_events::TaskDetail),
    /// A deployment's stream record: (environment, deployment id).
    Deployment(String, String),
}

pub struct Sim {
    pub store: FakeStore,
    pub cluster: FakeCluster,
    pub queue: Vec<Ev>,
    /// The environments whose deployments the stream reports.
    pub envs: Vec<String>,
    /// Each host's last ECS version (hosts `0..versions.len()`).
    versions: Vec<i64>,
    /// Each host's free resources when it joins (`None`: not tracked).
    capacity: Option<Resources>,
    /// Per deployment, its item as the stream last showed it (and how often it was nudged):
    /// every change emits a record, as DynamoDB's does.
    streamed: BTreeMap<String, (Option<Deployment>, u64)>,
    /// Task definitions whose tasks exit as soon as they start: ECS reports them STOPPED only.
    pub crashing: BTreeSet<String>,
    /// Live tasks per (group, host) as their events reported them (kept by `collect_changes`).
    pub live: BTreeMap<(String, String), BTreeSet<String>>,
    /// Faults injected into the product's calls on delivery and reconcile (`None`: none).
    pub faults: Option<Faults>,
    /// Events queued by the simulation so far (ECS's and the stream's).
    pub emitted: usize,
}

const HOST_ARN_PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/fake/h";

pub fn host_arn(i: usize) -> String {
    format!("{HOST_ARN_PREFIX}{i}")
}

/// The index of a simulated host's ARN.
pub fn host_index(arn: &str) -> Option<usize> {
    arn.strip_prefix(HOST_ARN_PREFIX)?.parse().ok()
}

pub use crate::clock::pin_clock;

pub fn task_detail(t: &FakeTask) -> task_events::TaskDetail {
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

/// A request to the API on the fakes, routed as the template routes it (`…/deployments…` to
/// deployments-api, the rest to environments-api).
pub async fn call_api(
    store: &FakeStore,
    cluster: &FakeCluster,
    method: &str,
    segments: &[&str],
    body: Option<serde_json::Value>,
) -> Result<ApiResponse> {
    let req = ApiRequest {
        method: method.into(),
        segments: segments.iter().map(|s| (*s).to_owned()).collect(),
        body: body.map(|b| b.to_string().into_bytes()),
        ..Default::default()
    };
    if segments.contains(&"deployments") {
        deployments_api::route(store, &req).await
    } else {
        environments_api::route(store, cluster, &req).await
    }
}

/// The event ECS sends for a host as it is now.
pub fn instance_detail(host: &Host) -> instance_events::InstanceDetail {
    let attributes: Vec<serde_json::Value> = host
        .attributes
        .iter()
        .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
        .collect();
    let remaining = match &host.remaining {
        Some(r) => serde_json::json!([
            {"name": "CPU", "integerValue": r.cpu},
            {"name": "MEMORY", "integerValue": r.memory},
            {"name": "PORTS", "stringSetValue": r.ports.iter().map(u16::to_string).collect::<Vec<_>>()},
        ]),
        None => serde_json::json!([]),
    };
    serde_json::from_value(serde_json::json!({
        "clusterArn": FAKE_CLUSTER_ARN,
        "containerInstanceArn": host.arn(),
        "status": format!("{:?}", host.state.status).to_uppercase(),
        "agentConnected": host.state.agent_connected,
        "version": host.state.version,
        "ec2InstanceId": host.ec2_instance_id,
        "attributes": attributes,
        "remainingResources": remaining,
    }))
    .unwrap()
}

impl Sim {
    /// An empty cluster for these environments (created by the caller); hosts that join get
    /// `capacity` free (None: resources not tracked).
    pub fn new(store: FakeStore, envs: &[&str], capacity: Option<Resources>) -> Self {
        Self::with_hosts(store, envs, capacity, HOSTS)
    }

    /// As `new`, with hosts `0..hosts`.
    pub fn with_hosts(
        store: FakeStore,
        envs: &[&str],
        capacity: Option<Resources>,
        hosts: usize,
    ) -> Self {
        crate::clock::skew_for_tests(None);
        Self {
            store,
            cluster: FakeCluster::default(),
            queue: Vec::new(),
            envs: envs.iter().map(|e| (*e).to_owned()).collect(),
            versions: vec![0; hosts],
            capacity,
            streamed: BTreeMap::new(),
            crashing: BTreeSet::new(),
            live: BTreeMap::new(),
            faults: None,
            emitted: 0,
        }
    }

    /// Hosts `0..hosts()` may join.
    pub fn hosts(&self) -> usize {
        self.versions.len()
    }

    /// ECS changes a host (status, agent, attributes); its event joins the queue.
    pub fn set_host(
        &mut self,
        i: usize,
        status: Option<HostStatus>,
        agent: Option<bool>,
        attribute: Option<(&str, Option<&str>)>,
    ) {
        let arn = host_arn(i);
        let current = self.cluster.host(&arn);
        if current.is_none() && status != Some(HostStatus::Active) {
            return; // a host that never joined cannot drain, disconnect or be labelled
        }
        if current.as_ref().is_some_and(|h| h.state.status.is_gone()) {
            return; // deregistered hosts do not come back
        }
        self.versions[i] += 1;
        let mut host = current.clone().unwrap_or_else(|| {
            let mut h = Host::from_state(HostState {
                container_instance_arn: arn.clone(),
                status: HostStatus::Active,
                agent_connected: true,
                version: 0,
                other_tasks: None,
            });
            h.remaining = self.capacity.clone();
            h
        });
        host.state.version = self.versions[i];
        if let Some(s) = status {
            host.state.status = s;
        }
        if let Some(a) = agent {
            host.state.agent_connected = a;
        }
        match attribute {
            Some((name, Some(value))) => {
                host.attributes.insert(name.into(), Some(value.into()));
            }
            Some((name, None)) => {
                host.attributes.remove(name);
            }
            None => {}
        }
        self.cluster.set_host(host);
        self.report_host(i);
    }

    fn emit(&mut self, ev: Ev) {
        self.emitted += 1;
        self.queue.push(ev);
    }

    /// Queues the instance event of host `i` as ECS has it now.
    fn report_host(&mut self, i: usize) {
        if let Some(host) = self.cluster.host(&host_arn(i)) {
            self.emit(Ev::Instance(instance_detail(&host)));
        }
    }

    /// Another scheduler's task takes (or gives back) memory on host `i`: an instance event.
    pub fn take_memory(&mut self, i: usize, mib: i64) {
        let arn = host_arn(i);
        let Some(mut host) = self.cluster.host(&arn) else {
            return;
        };
        if host.state.status.is_gone() {
            return;
        }
        if let Some(free) = host.remaining.as_mut() {
            free.memory -= mib;
        }
        self.versions[i] += 1;
        host.state.version = self.versions[i];
        self.cluster.set_host(host);
        self.report_host(i);
    }

    /// Every task state change not reported yet becomes its event, and its host's change too
    /// (a task placed or stopped changes the host's free resources: ECS reports the host). A
    /// task of a `crashing` task definition exits at once: ECS reports it STOPPED, never RUNNING.
    pub fn collect_changes(&mut self) {
        loop {
            let changes = self.cluster.take_changes();
            if changes.is_empty() {
                return;
            }
            for t in changes {
                let key = (t.group.clone(), t.host.clone());
                if t.alive && self.crashing.contains(&t.task_definition) {
                    self.cluster.kill_because(&t.arn, CRASHED); // its STOPPED change comes next
                } else {
                    self.emit(Ev::Task(self.task_event(&t)));
                    let live = self.live.entry(key.clone()).or_default();
                    if t.alive {
                        live.insert(t.arn.clone());
                    } else {
                        live.remove(&t.arn);
                        if live.is_empty() {
                            self.live.remove(&key);
                        }
                    }
                }
                if let Some(i) = host_index(&t.host).filter(|i| *i < self.versions.len()) {
                    if let Some(mut host) = self.cluster.host(&t.host) {
                        self.versions[i] += 1;
                        host.state.version = self.versions[i];
                        self.cluster.set_host(host);
                        self.report_host(i);
                    }
                }
            }
        }
    }

    /// The Task State Change event of `t` as it is now, with the reason it was stopped for.
    pub fn task_event(&self, t: &FakeTask) -> task_events::TaskDetail {
        let mut d = task_detail(t);
        if !t.alive {
            d.stopped_reason = Some(self.cluster.stop_reason(&t.arn).unwrap_or(CRASHED.into()));
        }
        d
    }

    pub async fn deliver(&self, ev: &Ev) {
        self.try_deliver(ev).await.unwrap();
    }

    /// Delivers one event to its function, through the faults if any.
    pub async fn try_deliver(&self, ev: &Ev) -> Result<()> {
        match &self.faults {
            Some(f) => {
                let (store, cluster) = (Faulty::new(&self.store, f), Faulty::new(&self.cluster, f));
                deliver_to(&store, &cluster, ev).await
            }
            None => deliver_to(&self.store, &self.cluster, ev).await,
        }
    }

    pub async fn reconcile(&mut self, at_ms: i64) {
        self.try_reconcile(at_ms).await.unwrap();
        self.stream_deployments().await;
    }

    /// One run of the reconciler, through the faults if any (what it causes is not queued).
    pub async fn try_reconcile(&self, at_ms: i64) -> Result<reconciler::Summary> {
        match &self.faults {
            Some(f) => {
                let (store, cluster) = (Faulty::new(&self.store, f), Faulty::new(&self.cluster, f));
                reconciler::reconcile_all(&store, &cluster, at_ms).await
            }
            None => reconciler::reconcile_all(&self.store, &self.cluster, at_ms).await,
        }
    }

    /// Queues a stream record of each deployment in progress whose item changed since the last.
    pub async fn stream_deployments(&mut self) {
        for env in self.envs.clone() {
            let Some(e) = self.store.get_environment(&env).await.unwrap() else {
                continue;
            };
            let Some(id) = e.active_deployment_id else {
                continue;
            };
            let now = (
                self.store.deployment(&env, &id),
                self.store.nudges(&env, &id),
            );
            if self.streamed.get(&id) != Some(&now) {
                self.streamed.insert(id.clone(), now);
                self.emit(Ev::Deployment(env.clone(), id));
            }
        }
    }

    /// Delivers the queued event at `pick` (mod its length); `keep`: it comes again later too.
    pub async fn deliver_one(&mut self, pick: usize, keep: bool) {
        if self.queue.is_empty() {
            return;
        }
        let i = pick % self.queue.len();
        let ev = if keep {
            self.queue[i].clone()
        } else {
            self.queue.remove(i)
        };
        self.deliver(&ev).await;
    }

    pub async fn deliver_concurrently(&mut self, n: usize) {
        let n = n.min(self.queue.len());
        let batch: Vec<Ev> = self.queue.drain(..n).collect();
        futures::future::join_all(batch.iter().map(|e| self.deliver(e))).await;
    }

    /// EventBridge never delivers the queued event at `i` (the stream never loses a record).
    pub fn lose(&mut self, i: usize) {
        if !self.queue.is_empty() {
            let i = i % self.queue.len();
            if !matches!(self.queue[i], Ev::Deployment(..)) {
                self.queue.remove(i);
            }
        }
    }

    /// After any step: what changed becomes events.
    pub async fn settle(&mut self) {
        self.collect_changes();
        self.stream_deployments().await;
    }

    pub async fn drain_queue(&mut self) {
        for _ in 0..2000 {
            if self.queue.is_empty() {
                return;
            }
            let ev = self.queue.remove(0);
            self.deliver(&ev).await;
            self.settle().await;
        }
        panic!("events keep coming: {:?}", self.queue);
    }

    /// Quiesce: every event delivered, then twice 20 minutes pass (every backoff ends) and the
    /// reconciler runs, and what it causes is delivered.
    pub async fn quiesce(&mut self) {
        self.drain_queue().await;
        for _ in 0..2 {
            crate::clock::skew_for_tests(Some(20 * 60_000));
            self.reconcile(system_now_ms()).await;
            self.settle().await;
            self.drain_queue().await;
            self.check_safety();
        }
    }

    /// Never two live tasks of one environment on a host; every deployment's counters add up.
    pub fn check_safety(&self) {
        let mut per_host = BTreeMap::<(String, String), usize>::new();
        for t in self.cluster.live_tasks() {
            *per_host
                .entry((t.group.clone(), t.host.clone()))
                .or_default() += 1;
        }
        for ((g, h), n) in &per_host {
            assert!(
                *n <= 1,
                "{n} live tasks of {g} on {h}: {:?}",
                self.cluster.live_tasks()
            );
        }
        for s in self.store.slots() {
            if let Some(id) = &s.tracked_by {
                let d = self.store.deployment(&s.environment, id).unwrap();
                assert_eq!(
                    d.desired_count,
                    d.pending_count + d.running_count + d.failed_count,
                    "{d:?}"
                );
            }
        }
    }

    /// Live tasks of `environment` on host `i`.
    pub fn tasks_on(&self, environment: &str, i: usize) -> usize {
        let group = crate::domain::task::task_group(environment);
        self.cluster
            .live_tasks()
            .iter()
            .filter(|t| t.group == group && t.host == host_arn(i))
            .count()
    }
}

/// One event delivered to the function its trigger invokes.
async fn deliver_to<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    ev: &Ev,
) -> Result<()> {
    match ev {
        Ev::Instance(d) => instance_events::handle(store, cluster, d).await.map(drop),
        Ev::Task(d) => task_events::handle(store, cluster, d).await.map(drop),
        // The stream delivers the deployment's change; the deployer steps it.
        Ev::Deployment(env, id) => rolling::step(store, cluster, env, id, system_now_ms())
            .await
            .map(drop),
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
