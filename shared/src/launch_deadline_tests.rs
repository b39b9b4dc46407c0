//! Claims cannot outlive their launcher. A deployment claims 60 hosts and launches them 10 a
//! StartTask call; each call takes 25 s (a throttled call's retries: within what the ECS adapter
//! allows one call, `START_TASK_MAX_MS`), so the last calls would go out long after the claims'
//! lease (120 s) ended — and a reconcile runs meanwhile, finds those claims expired with nothing in
//! ECS, and launches on those hosts itself. The launcher lets the claims past their launch deadline
//! go instead of launching them: every host ends with exactly one task.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use crate::clock::{skew_for_tests, system_now_ms};
use crate::domain::{Host, HostState, HostStatus, TaskObservation};
use crate::error::Result;
use crate::fakes::{FakeCluster, FakeStore, FAKE_CLUSTER_ARN};
use crate::planner::{CLAIM_LEASE_MS, LAUNCH_DEADLINE_MS, START_TASK_MAX_MS};
use crate::ports::{
    Cluster, ResourceStatus, StartOutcome, StartRequest, Store, TaskDefinitionInfo,
};
use crate::services::{deployments_api, environments_api, reconciler, rolling};
use crate::sim::host_arn;

const HOSTS: usize = 60;
const CALL_MS: i64 = 25_000;
// A call no slower than the adapter allows.
const _: () = assert!(CALL_MS <= START_TASK_MAX_MS);

/// FakeCluster whose StartTask calls each take `CALL_MS` (the clock moves on); the first call
/// that ends after the claims' lease has the reconciler run while it is in flight.
struct SlowStarts<'a> {
    inner: &'a FakeCluster,
    store: &'a FakeStore,
    race_at_ms: i64,
    raced: AtomicBool,
}

#[async_trait]
impl Cluster for SlowStarts<'_> {
    async fn describe_cluster(&self, c: &str) -> Result<Option<ResourceStatus>> {
        self.inner.describe_cluster(c).await
    }
    async fn describe_task_definition(&self, td: &str) -> Result<Option<TaskDefinitionInfo>> {
        self.inner.describe_task_definition(td).await
    }
    async fn active_hosts(&self, c: &str) -> Result<Vec<Host>> {
        self.inner.active_hosts(c).await
    }
    async fn describe_hosts(&self, c: &str, arns: &[String]) -> Result<Vec<Host>> {
        self.inner.describe_hosts(c, arns).await
    }
    async fn start_tasks(&self, request: StartRequest<'_>) -> Result<StartOutcome> {
        skew_for_tests(Some(CALL_MS));
        if system_now_ms() >= self.race_at_ms && !self.raced.swap(true, Ordering::SeqCst) {
            // Meanwhile the scheduled reconcile, straight to ECS.
            reconciler::reconcile_all(self.store, self.inner, system_now_ms())
                .await
                .unwrap();
        }
        self.inner.start_tasks(request).await
    }
    async fn stop_task(&self, c: &str, task: &str, reason: &str) -> Result<()> {
        self.inner.stop_task(c, task, reason).await
    }
    async fn other_tasks_on(&self, c: &str, host: &str) -> Result<usize> {
        self.inner.other_tasks_on(c, host).await
    }
    async fn tasks_of_family(&self, c: &str, family: &str) -> Result<Vec<TaskObservation>> {
        self.inner.tasks_of_family(c, family).await
    }
    async fn describe_tasks(&self, c: &str, arns: &[String]) -> Result<Vec<TaskObservation>> {
        self.inner.describe_tasks(c, arns).await
    }
    async fn tasks_started_by(
        &self,
        c: &str,
        started_by: &str,
        host: Option<&str>,
    ) -> Result<Vec<TaskObservation>> {
        self.inner.tasks_started_by(c, started_by, host).await
    }
}

#[tokio::test]
async fn a_launch_slower_than_the_lease_racing_a_reconcile_leaves_one_task_per_host() {
    skew_for_tests(None);
    let (store, fake) = (FakeStore::default(), FakeCluster::default());
    for i in 0..HOSTS {
        fake.set_host(Host::from_state(HostState {
            container_instance_arn: host_arn(i),
            status: HostStatus::Active,
            agent_connected: true,
            version: 1,
            other_tasks: None,
        }));
    }
    let body = serde_json::json!({
        "name": "agent", "instanceGroup": {"cluster": FAKE_CLUSTER_ARN}, "taskDefinition": "agent:1"
    });
    let req = crate::http::ApiRequest {
        method: "POST".into(),
        segments: vec!["environments".into()],
        body: Some(body.to_string().into_bytes()),
        ..Default::default()
    };
    environments_api::route(&store, &fake, &req).await.unwrap();
    let dep = deployments_api::create(&store, "agent", None, None)
        .await
        .unwrap();
    let slow = SlowStarts {
        inner: &fake,
        store: &store,
        race_at_ms: system_now_ms() + CLAIM_LEASE_MS + 1_000,
        raced: AtomicBool::new(false),
    };
    let report = rolling::step(&store, &slow, "agent", &dep.id, system_now_ms())
        .await
        .unwrap()
        .report;
    // Calls go out at 0, 25, 50 and 75 s; the one at 100 s would be past the deadline.
    let expected_calls = (LAUNCH_DEADLINE_MS / CALL_MS + 1) as usize;
    assert!(
        expected_calls * 10 < HOSTS,
        "the test must reach past the deadline"
    );
    if !slow.raced.load(Ordering::SeqCst) {
        skew_for_tests(Some(CLAIM_LEASE_MS));
        reconciler::reconcile_all(&store, &fake, system_now_ms())
            .await
            .unwrap();
    }
    // What the reconciler and the events do next cannot create a second task either.
    skew_for_tests(Some(CLAIM_LEASE_MS));
    reconciler::reconcile_all(&store, &fake, system_now_ms())
        .await
        .unwrap();
    let live = fake.live_tasks();
    let mut per_host = std::collections::BTreeMap::<&str, usize>::new();
    for t in &live {
        *per_host.entry(t.host.as_str()).or_default() += 1;
    }
    skew_for_tests(None);
    assert!(
        per_host.values().all(|n| *n == 1) && per_host.len() == HOSTS,
        "one task per host: {per_host:?}"
    );
    assert_eq!(
        report.fenced,
        HOSTS - 10 * expected_calls,
        "the claims past the deadline were let go: {report:?}"
    );
    let env = store.get_environment("agent").await.unwrap().unwrap();
    assert!(env.deployed.is_some());
}
