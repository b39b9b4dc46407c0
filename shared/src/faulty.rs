//! Fault injection over the ports, for chaos runs on the in-process fakes: `Faulty` wraps a
//! `Store` or a `Cluster` and makes each AWS call the real adapter would make for a port call fail
//! as AWS fails — throttled (not executed), 5xx before executing, or 5xx after executing (the
//! answer lost: a write that was made, the caller cannot know) — with the errors the adapters turn
//! those into after the SDK's retries (`Error::Throttled`, `Error::Aws`; a faulted call fails on
//! every attempt, as `integration_tests::Faults` does on the wire). StartTask is answered as the
//! ECS adapter answers it: throttles retried 4 times, then the hosts `throttled`; a 5xx makes them
//! `unknown`. Latency yields to the other handlers in flight, so concurrent deliveries interleave
//! differently. The draws are one seeded sequence: a run on one thread replays from its seed.
//!
//! Wrap only the product's ports: the harness inspects the fakes directly, unfaulted.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::{
    Deployment, DeploymentStatus, Environment, Health, Host, Revision, Slot, SlotKey,
    TaskObservation,
};
use crate::error::{Error, Result};
use crate::limits::{BATCH_GET_ITEMS, DESCRIBE_BATCH, LIST_PAGE, TRANSACT_ITEMS};
// The ECS adapter's own retries of a throttled StartTask, which `Faulty` plays as it does.
use crate::planner::START_TASK_THROTTLE_RETRIES;
use crate::ports::{
    Cluster, Page, ResourceStatus, SlotWrite, StartOutcome, StartRequest, Store,
    TaskDefinitionInfo, WriteOutcome,
};

/// Slots a 1 MB Query page holds (~1 KB a slot): the call model `Faulty` and the bench's
/// counting share.
pub const SLOTS_PER_PAGE: usize = 1000;

/// How often AWS calls fail, per mille of calls, and how long they take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Throttled: not executed.
    pub throttle: u64,
    /// 5xx: half of them before the call is executed, half after (the answer lost).
    pub server_error: u64,
    /// Port calls delayed, each by 1..=`latency_max` yields to the other handlers in flight.
    pub latency: u64,
    pub latency_max: u32,
}

impl Rates {
    /// The chaos: 20 % throttled, 5 % 5xx, a third of the calls delayed.
    pub const CHAOS: Rates = Rates {
        throttle: 200,
        server_error: 50,
        latency: 333,
        latency_max: 8,
    };
}

/// What was injected so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Injected {
    /// AWS calls the product made while faults were on.
    pub calls: usize,
    /// Calls that failed throttled (after the SDK's or the adapter's retries).
    pub throttled: usize,
    /// Throttled StartTask attempts the adapter retried (no failure reached the product).
    pub throttles_retried: usize,
    /// 5xx before the call was executed.
    pub server_errors: usize,
    /// 5xx after it was executed: the answer lost.
    pub answers_lost: usize,
    /// Port calls delayed.
    pub delayed: usize,
}

impl Injected {
    /// Faults that reached the product (a call that failed).
    pub fn failures(&self) -> usize {
        self.throttled + self.server_errors + self.answers_lost
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Throttle,
    ServerError,
    AnswerLost,
}

/// The fault plan shared by the wrapped ports: rates, the seeded draws, the counts.
pub struct Faults {
    state: Mutex<State>,
}

struct State {
    rates: Rates,
    rng: u64,
    injected: Injected,
    /// The simulated time the product's clock is held at, set again at every call.
    pin: Option<i64>,
}

impl Faults {
    /// Off until `set` gives it rates.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Mutex::new(State {
                rates: Rates::default(),
                rng: seed,
                injected: Injected::default(),
                pin: None,
            }),
        }
    }

    pub fn set(&self, rates: Rates) {
        self.state.lock().unwrap().rates = rates;
    }

    pub fn rates(&self) -> Rates {
        self.state.lock().unwrap().rates
    }

    pub fn injected(&self) -> Injected {
        self.state.lock().unwrap().injected
    }

    /// Holds the product's clock (`system_now_ms`) at `at_ms`, set again at the start of every
    /// call: however slowly a handler runs, it reads the simulated time (`None`: let it run).
    pub fn pin_clock(&self, at_ms: Option<i64>) {
        self.state.lock().unwrap().pin = at_ms;
    }

    /// One AWS call: its fault, if any.
    fn draw(&self) -> Option<Fault> {
        let mut s = self.state.lock().unwrap();
        let rates = s.rates;
        if rates.throttle + rates.server_error == 0 {
            return None;
        }
        s.injected.calls += 1;
        let roll = splitmix(&mut s.rng) % 1000;
        let fault = if roll < rates.throttle {
            Fault::Throttle
        } else if roll < rates.throttle + rates.server_error {
            if splitmix(&mut s.rng).is_multiple_of(2) {
                Fault::ServerError
            } else {
                Fault::AnswerLost
            }
        } else {
            return None;
        };
        let n = &mut s.injected;
        match fault {
            Fault::Throttle => n.throttled += 1,
            Fault::ServerError => n.server_errors += 1,
            Fault::AnswerLost => n.answers_lost += 1,
        }
        Some(fault)
    }

    /// A throttled StartTask attempt the adapter will retry: counted as retried, not failed.
    fn retried_throttle(&self) {
        let mut s = self.state.lock().unwrap();
        s.injected.throttled -= 1;
        s.injected.throttles_retried += 1;
    }

    /// The port call's latency: a few yields, or none.
    async fn delay(&self) {
        let yields = {
            let mut s = self.state.lock().unwrap();
            if let Some(at) = s.pin {
                crate::clock::pin_clock(at);
            }
            let rates = s.rates;
            if rates.latency == 0 || splitmix(&mut s.rng) % 1000 >= rates.latency {
                0
            } else {
                s.injected.delayed += 1;
                1 + splitmix(&mut s.rng) % u64::from(rates.latency_max.max(1))
            }
        };
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
    }
}

/// splitmix64: a small, good, seedable sequence.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What the adapters make of a fault, after the SDK's retries (which a fault outlasts).
fn error(service: &str, fault: Fault) -> Error {
    match fault {
        Fault::Throttle => Error::Throttled {
            service: service.to_owned(),
            message: "injected: rate exceeded".to_owned(),
        },
        Fault::ServerError => Error::Aws {
            service: service.to_owned(),
            code: "InternalFailure".to_owned(),
            message: "InternalFailure: injected: 5xx".to_owned(),
        },
        Fault::AnswerLost => Error::Aws {
            service: service.to_owned(),
            code: "InternalFailure".to_owned(),
            message: "InternalFailure: injected: answer lost".to_owned(),
        },
    }
}

const DDB: &str = "DynamoDB";
const ECS: &str = "ECS";

/// A port with faults injected into the AWS calls its real adapter would make.
pub struct Faulty<'a, P: ?Sized> {
    pub inner: &'a P,
    pub faults: &'a Faults,
}

impl<'a, P: ?Sized> Faulty<'a, P> {
    pub fn new(inner: &'a P, faults: &'a Faults) -> Self {
        Self { inner, faults }
    }

    /// One AWS call that changes something: not executed when throttled or failed before, and
    /// executed with its answer lost.
    async fn write<T>(
        &self,
        service: &str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.faults.delay().await;
        match self.faults.draw() {
            None => call.await,
            Some(Fault::AnswerLost) => {
                let _ = call.await;
                Err(error(service, Fault::AnswerLost))
            }
            Some(f) => Err(error(service, f)),
        }
    }

    /// A read the adapter makes in `calls(result)` AWS calls (pages, batches): fails if any does.
    async fn read<T>(
        &self,
        service: &str,
        call: impl std::future::Future<Output = Result<T>>,
        calls: impl Fn(&T) -> usize,
    ) -> Result<T> {
        self.faults.delay().await;
        let out = call.await?;
        for _ in 0..calls(&out).max(1) {
            if let Some(f) = self.faults.draw() {
                return Err(error(service, f));
            }
        }
        Ok(out)
    }
}

fn one<T>(_: &T) -> usize {
    1
}

/// Calls to read `n` items `per` call (at least one).
pub fn pages(n: usize, per: usize) -> usize {
    n.div_ceil(per).max(1)
}

#[async_trait]
impl<S: Store + ?Sized> Store for Faulty<'_, S> {
    async fn create_environment(
        &self,
        env: &Environment,
        first: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()> {
        let call = self.inner.create_environment(env, first, dependencies);
        self.write(DDB, call).await
    }
    async fn get_environment(&self, name: &str) -> Result<Option<Environment>> {
        self.read(DDB, self.inner.get_environment(name), one).await
    }
    async fn list_environments(
        &self,
        cluster_arn: Option<&str>,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Environment>> {
        let call = self.inner.list_environments(cluster_arn, limit, next_token);
        self.read(DDB, call, one).await
    }
    async fn environments_of_cluster(&self, cluster_arn: &str) -> Result<Vec<Environment>> {
        let call = self.inner.environments_of_cluster(cluster_arn);
        self.read(DDB, call, one).await
    }
    async fn update_environment(&self, env: &Environment, expected_version: u64) -> Result<()> {
        let call = self.inner.update_environment(env, expected_version);
        self.write(DDB, call).await
    }
    async fn add_revision(
        &self,
        env: &Environment,
        expected_version: u64,
        revision: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()> {
        let call = self
            .inner
            .add_revision(env, expected_version, revision, dependencies);
        self.write(DDB, call).await
    }
    async fn get_revision(&self, environment: &str, number: u32) -> Result<Option<Revision>> {
        let call = self.inner.get_revision(environment, number);
        self.read(DDB, call, one).await
    }
    async fn list_revisions(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Revision>> {
        let call = self.inner.list_revisions(environment, limit, next_token);
        self.read(DDB, call, one).await
    }
    async fn create_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        deployment: &Deployment,
    ) -> Result<()> {
        let call = self
            .inner
            .create_deployment(env, expected_version, deployment);
        self.write(DDB, call).await
    }
    async fn get_deployment(&self, environment: &str, id: &str) -> Result<Option<Deployment>> {
        let call = self.inner.get_deployment(environment, id);
        self.read(DDB, call, one).await
    }
    async fn list_deployments(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Deployment>> {
        let call = self.inner.list_deployments(environment, limit, next_token);
        self.read(DDB, call, one).await
    }
    async fn mark_deployment_running(&self, environment: &str, id: &str) -> Result<bool> {
        let call = self.inner.mark_deployment_running(environment, id);
        self.write(DDB, call).await
    }
    async fn transition_deployment(
        &self,
        environment: &str,
        id: &str,
        change: &crate::domain::DeploymentTransition,
    ) -> Result<bool> {
        let call = self.inner.transition_deployment(environment, id, change);
        self.write(DDB, call).await
    }
    async fn promote_deployment(
        &self,
        env: &crate::domain::Environment,
        expected_version: u64,
        id: &str,
        at: &str,
    ) -> Result<bool> {
        let call = self.inner.promote_deployment(env, expected_version, id, at);
        self.write(DDB, call).await
    }
    async fn nudge_deployment(&self, environment: &str, id: &str) -> Result<bool> {
        let call = self.inner.nudge_deployment(environment, id);
        self.write(DDB, call).await
    }
    async fn halt_deployment(&self, environment: &str, id: &str, reason: &str) -> Result<bool> {
        let call = self.inner.halt_deployment(environment, id, reason);
        self.write(DDB, call).await
    }
    async fn cancel_deployment(&self, deployment: &Deployment) -> Result<bool> {
        self.write(DDB, self.inner.cancel_deployment(deployment))
            .await
    }
    async fn finish_deployment(
        &self,
        deployment: &Deployment,
        outcome: DeploymentStatus,
        health: Health,
    ) -> Result<bool> {
        let call = self.inner.finish_deployment(deployment, outcome, health);
        self.write(DDB, call).await
    }
    async fn get_slot(&self, key: &SlotKey) -> Result<Option<Slot>> {
        self.read(DDB, self.inner.get_slot(key), one).await
    }
    async fn slot_and_environment(
        &self,
        key: &SlotKey,
    ) -> Result<(Option<Slot>, Option<Environment>)> {
        self.read(DDB, self.inner.slot_and_environment(key), one)
            .await
    }
    async fn slots_on_host(&self, environments: &[&str], host: &str) -> Result<Vec<Slot>> {
        let calls = pages(environments.len(), BATCH_GET_ITEMS);
        let call = self.inner.slots_on_host(environments, host);
        self.read(DDB, call, |_| calls).await
    }
    async fn slots_of(&self, environment: &str) -> Result<Vec<Slot>> {
        let call = self.inner.slots_of(environment);
        self.read(DDB, call, |s| pages(s.len(), SLOTS_PER_PAGE))
            .await
    }
    /// As the adapter: one transaction per environment and per 96 slots, in order; a failed one
    /// fails the call, the transactions before it made.
    async fn write_slots(&self, writes: &[SlotWrite]) -> Result<Vec<WriteOutcome>> {
        let mut order: Vec<&str> = Vec::new();
        for w in writes {
            if !order.contains(&w.after.environment.as_str()) {
                order.push(&w.after.environment);
            }
        }
        let mut outcomes = vec![WriteOutcome::NotAttempted; writes.len()];
        for env in order {
            let idx: Vec<usize> = (0..writes.len())
                .filter(|&i| writes[i].after.environment == env)
                .collect();
            for chunk in idx.chunks(TRANSACT_ITEMS - 4) {
                let batch: Vec<SlotWrite> = chunk.iter().map(|&i| writes[i].clone()).collect();
                let done = self.write(DDB, self.inner.write_slots(&batch)).await?;
                for (&i, o) in chunk.iter().zip(done) {
                    outcomes[i] = o;
                }
            }
        }
        Ok(outcomes)
    }
    async fn delete_environment_records(&self, environment: &str) -> Result<()> {
        // Several calls in the adapter (Query, BatchWriteItem by 25, DeleteItem); one draw here.
        let call = self.inner.delete_environment_records(environment);
        self.write(DDB, call).await
    }
}

#[async_trait]
impl<C: Cluster + ?Sized> Cluster for Faulty<'_, C> {
    async fn describe_cluster(&self, cluster: &str) -> Result<Option<ResourceStatus>> {
        self.read(ECS, self.inner.describe_cluster(cluster), one)
            .await
    }
    async fn describe_task_definition(&self, td: &str) -> Result<Option<TaskDefinitionInfo>> {
        self.read(ECS, self.inner.describe_task_definition(td), one)
            .await
    }
    async fn active_hosts(&self, cluster_arn: &str) -> Result<Vec<Host>> {
        // ListContainerInstances pages of 100, DescribeContainerInstances by 100.
        let call = self.inner.active_hosts(cluster_arn);
        self.read(ECS, call, |h| {
            pages(h.len(), LIST_PAGE as usize) + h.len().div_ceil(DESCRIBE_BATCH)
        })
        .await
    }
    async fn describe_hosts(&self, cluster_arn: &str, arns: &[String]) -> Result<Vec<Host>> {
        let calls = pages(arns.len(), DESCRIBE_BATCH);
        let call = self.inner.describe_hosts(cluster_arn, arns);
        self.read(ECS, call, |_| calls).await
    }
    /// As the ECS adapter: sent once (never retried on a 5xx, which may have started tasks: the
    /// hosts' outcome is unknown), throttles retried 4 times and then reported as such.
    async fn start_tasks(&self, request: StartRequest<'_>) -> Result<StartOutcome> {
        self.faults.delay().await;
        let hosts = request.container_instances.to_vec();
        let unknown = |why: &str| StartOutcome {
            unknown: hosts
                .iter()
                .map(|h| (h.clone(), format!("StartTask failed: {why}")))
                .collect(),
            ..Default::default()
        };
        for attempt in 0..=START_TASK_THROTTLE_RETRIES {
            match self.faults.draw() {
                None => return self.inner.start_tasks(request).await,
                Some(Fault::Throttle) if attempt < START_TASK_THROTTLE_RETRIES => {
                    self.faults.retried_throttle();
                }
                Some(Fault::Throttle) => {
                    return Ok(StartOutcome {
                        throttled: hosts.clone(),
                        ..Default::default()
                    })
                }
                Some(Fault::ServerError) => return Ok(unknown("injected: 5xx")),
                Some(Fault::AnswerLost) => {
                    let _ = self.inner.start_tasks(request).await;
                    return Ok(unknown("injected: answer lost"));
                }
            }
        }
        unreachable!("the last attempt returns")
    }
    async fn stop_task(&self, cluster_arn: &str, task_arn: &str, reason: &str) -> Result<()> {
        let call = self.inner.stop_task(cluster_arn, task_arn, reason);
        self.write(ECS, call).await
    }
    async fn other_tasks_on(&self, cluster_arn: &str, host: &str) -> Result<usize> {
        // ListTasks by host, DescribeTasks of what it lists.
        let call = self.inner.other_tasks_on(cluster_arn, host);
        self.read(ECS, call, |_| 2).await
    }
    async fn tasks_of_family(
        &self,
        cluster_arn: &str,
        family: &str,
    ) -> Result<Vec<TaskObservation>> {
        let call = self.inner.tasks_of_family(cluster_arn, family);
        self.read(ECS, call, |t| {
            pages(t.len(), LIST_PAGE as usize) + t.len().div_ceil(DESCRIBE_BATCH)
        })
        .await
    }
    async fn describe_tasks(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<Vec<TaskObservation>> {
        let calls = pages(arns.len(), DESCRIBE_BATCH);
        let call = self.inner.describe_tasks(cluster_arn, arns);
        self.read(ECS, call, |_| calls).await
    }
    async fn tasks_started_by(
        &self,
        cluster_arn: &str,
        started_by: &str,
        host: Option<&str>,
    ) -> Result<Vec<TaskObservation>> {
        let call = self.inner.tasks_started_by(cluster_arn, started_by, host);
        self.read(ECS, call, |t| 1 + t.len().div_ceil(DESCRIBE_BATCH))
            .await
    }
}

/// Faults injected so far by kind, for reports.
pub fn by_kind(i: &Injected) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("throttled", i.throttled),
        ("throttles retried by the adapter", i.throttles_retried),
        ("5xx", i.server_errors),
        ("answer lost", i.answers_lost),
        ("delayed", i.delayed),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DaemonSpec, HostState, HostStatus, LaunchSpec};
    use crate::fakes::{FakeCluster, FakeStore, FAKE_CLUSTER_ARN};
    use crate::sim::block_on;

    fn faults(rates: Rates) -> Faults {
        let f = Faults::new(7);
        f.set(rates);
        f
    }

    fn only(throttle: u64, server_error: u64) -> Rates {
        Rates {
            throttle,
            server_error,
            ..Rates::default()
        }
    }

    async fn store_with_env() -> FakeStore {
        let store = FakeStore::default();
        let now = crate::clock::now_rfc3339();
        let spec = DaemonSpec::of_task_definition("agent:1", Default::default());
        let env = Environment::new("env", FAKE_CLUSTER_ARN, spec, &now);
        store
            .create_environment(&env, &env.latest(&now), &[])
            .await
            .unwrap();
        store
    }

    fn slot_write(host: usize) -> SlotWrite {
        let state = HostState {
            container_instance_arn: crate::sim::host_arn(host),
            status: HostStatus::Active,
            agent_connected: true,
            version: 1,
            other_tasks: None,
        };
        SlotWrite::new(None, Slot::new("env", FAKE_CLUSTER_ARN, state), None)
    }

    #[test]
    fn off_it_passes_every_call_through() {
        block_on(async {
            let store = store_with_env().await;
            let f = Faults::new(1);
            let faulty = Faulty::new(&store, &f);
            for _ in 0..100 {
                assert!(faulty.get_environment("env").await.unwrap().is_some());
            }
            assert_eq!(f.injected(), Injected::default());
        });
    }

    /// Throttling and 5xx come back as the adapters' errors; a throttled or failed write is not
    /// made, one whose answer was lost is.
    #[test]
    fn a_faulted_write_is_made_only_when_its_answer_was_lost() {
        block_on(async {
            let store = store_with_env().await;
            let f = faults(only(500, 500));
            let faulty = Faulty::new(&store, &f);
            let mut made_by_failures = 0;
            for i in 0..400 {
                let before = store.slots().len();
                match faulty.write_slots(&[slot_write(i)]).await {
                    Ok(out) => assert!(matches!(out[0], WriteOutcome::Written(_))),
                    Err(Error::Throttled { service, .. }) => {
                        assert_eq!(service, "DynamoDB");
                        assert_eq!(store.slots().len(), before, "a throttled write was made");
                    }
                    Err(Error::Aws {
                        service, message, ..
                    }) => {
                        assert_eq!(service, "DynamoDB");
                        let made = store.slots().len() > before;
                        assert_eq!(made, message.contains("answer lost"), "{message}");
                        made_by_failures += usize::from(made);
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            let n = f.injected();
            assert_eq!(n.answers_lost, made_by_failures);
            assert_eq!(n.calls, 400);
            assert!(
                n.throttled > 150 && n.server_errors > 50 && n.answers_lost > 50,
                "{n:?}"
            );
        });
    }

    /// The rates hold over many calls, and a read of many pages fails when any page does.
    #[test]
    fn rates_hold_and_each_page_of_a_read_can_fail() {
        block_on(async {
            let cluster = FakeCluster::default();
            for i in 0..250 {
                cluster.set_host(Host::from_state(HostState {
                    container_instance_arn: crate::sim::host_arn(i),
                    status: HostStatus::Active,
                    agent_connected: true,
                    version: 1,
                    other_tasks: None,
                }));
            }
            let f = faults(only(200, 50));
            let faulty = Faulty::new(&cluster, &f);
            let mut failed = 0;
            for _ in 0..1000 {
                failed += usize::from(faulty.active_hosts(FAKE_CLUSTER_ARN).await.is_err());
            }
            // 250 hosts: 3 List pages + 3 Describe calls, each failing 25 %: 1 - 0.75^6 = 82 %.
            assert!((770..=870).contains(&failed), "{failed}");
            let n = f.injected();
            let rate = n.failures() as f64 / n.calls as f64;
            assert!((0.22..0.28).contains(&rate), "{n:?}");
        });
    }

    fn launch() -> LaunchSpec {
        LaunchSpec {
            task_definition: "agent:1".into(),
            revision: 1,
            started_by: "dep".into(),
            group: "daemon-scheduler:env".into(),
            overrides: None,
            reserves: Default::default(),
        }
    }

    /// StartTask as the ECS adapter answers: a 5xx leaves the hosts unknown — with the tasks
    /// started when only the answer was lost — and a throttle that outlasts the adapter's 4
    /// retries leaves them throttled, nothing started.
    #[test]
    fn start_task_answers_as_the_ecs_adapter_does() {
        block_on(async {
            let cluster = FakeCluster::default();
            let hosts: Vec<String> = (0..3).map(crate::sim::host_arn).collect();
            for h in &hosts {
                cluster.set_host(Host::from_state(HostState {
                    container_instance_arn: h.clone(),
                    status: HostStatus::Active,
                    agent_connected: true,
                    version: 1,
                    other_tasks: None,
                }));
            }
            let launch = launch();
            let (mut started, mut unknown, mut lost, mut throttled) = (0, 0, 0, 0);
            for rates in [only(0, 1000), only(1000, 0), only(600, 200)] {
                let f = faults(rates);
                let faulty = Faulty::new(&cluster, &f);
                let lost_before = lost;
                for _ in 0..50 {
                    let live = cluster.live_tasks().len();
                    let out = faulty
                        .start_tasks(StartRequest {
                            cluster_arn: FAKE_CLUSTER_ARN,
                            launch: &launch,
                            container_instances: &hosts,
                        })
                        .await
                        .unwrap();
                    let made = cluster.live_tasks().len() - live;
                    if !out.unknown.is_empty() {
                        unknown += 1;
                        assert!(made == 0 || made == 3);
                        lost += usize::from(made == 3);
                    } else if !out.throttled.is_empty() {
                        throttled += 1;
                        assert_eq!((made, out.throttled.len()), (0, 3));
                    } else {
                        started += 1;
                        assert_eq!((made, out.started.len()), (3, 3));
                    }
                }
                assert_eq!(f.injected().answers_lost, lost - lost_before);
            }
            // All 5xx: 50 unknown, about half of them started. All throttled: 50 throttled after
            // 5 attempts each. 60 % throttled, 20 % 5xx: most calls get through on a retry.
            assert!(
                unknown >= 50 && (10..=40).contains(&lost),
                "{unknown} {lost}"
            );
            assert!(throttled >= 50, "{throttled}");
            assert!(started > 10, "{started}");
        });
    }

    /// Writes are sent as the adapter sends them, one transaction per environment and 96 slots:
    /// a fault in the second leaves the first made.
    #[test]
    fn writes_go_in_the_adapters_transactions() {
        block_on(async {
            let store = store_with_env().await;
            let f = faults(only(0, 0));
            let faulty = Faulty::new(&store, &f);
            let writes: Vec<SlotWrite> = (0..150).map(slot_write).collect();
            f.set(only(0, 1000));
            // Every transaction fails: the first one's answer may be lost (made), the second is
            // never tried.
            for _ in 0..20 {
                let before = store.slots().len();
                assert!(faulty.write_slots(&writes).await.is_err());
                let made = store.slots().len() - before;
                assert!(made == 0 || made == 96, "{made}");
                if made == 96 {
                    break;
                }
            }
            assert_eq!(store.slots().len(), 96, "one transaction made");
        });
    }
}
