//! The in-process fakes with the AWS calls the real adapters would make for each port call
//! counted (same chunking: shared::limits), for models at sizes moto cannot take (5,000 hosts).
//! Slot pages assume ~1 KB slots (1 MB Query pages of 1,000).
//!
//! A tally can also keep time (`Tally::timed`): each AWS call it counts then takes its latency,
//! one after another (the adapters make no two calls at once), from the moment the invocation
//! began (`Tally::begin`); the log of when each call was made gives the calls per second.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use integration_tests::shared::domain::{
    Deployment, DeploymentStatus, Environment, Health, Host, Revision, Slot, SlotKey,
    TaskObservation,
};
use integration_tests::shared::faulty::{pages, SLOTS_PER_PAGE};
use integration_tests::shared::limits::{
    BATCH_GET_ITEMS, BATCH_WRITE_ITEMS, DESCRIBE_BATCH, LIST_PAGE, TRANSACT_ITEMS,
};
use integration_tests::shared::ports::{
    Cluster, Page, ResourceStatus, SlotWrite, StartOutcome, StartRequest, Store,
    TaskDefinitionInfo, WriteOutcome,
};
use integration_tests::shared::Result;

/// How long one AWS call takes, by service (the time model's assumption).
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub ecs_s: f64,
    pub dynamodb_s: f64,
    pub sqs_s: f64,
}

impl Latency {
    pub fn of(&self, op: &str) -> f64 {
        match op.split('.').next() {
            Some("ECS") => self.ecs_s,
            Some("DynamoDB") => self.dynamodb_s,
            _ => self.sqs_s,
        }
    }
}

#[derive(Default)]
struct Clock {
    latency: Option<Latency>,
    /// Seconds on the model's clock.
    now: f64,
    /// When each call began, and what it was.
    log: Vec<(f64, String)>,
    /// Task ARN → when the StartTask or StopTask call that changed it ended.
    changed: HashMap<String, f64>,
}

#[derive(Default)]
pub struct Tally {
    calls: Mutex<BTreeMap<String, usize>>,
    clock: Mutex<Clock>,
}

impl Tally {
    /// A tally that also keeps time: each call takes `latency`, one after another.
    pub fn timed(latency: Latency) -> Self {
        let t = Self::default();
        t.clock.lock().unwrap().latency = Some(latency);
        t
    }
    /// `n` calls of `op` (as the adapter makes them, one after another).
    pub fn add(&self, op: &str, n: usize) {
        if n == 0 {
            return;
        }
        *self.calls.lock().unwrap().entry(op.to_owned()).or_default() += n;
        let mut c = self.clock.lock().unwrap();
        if let Some(latency) = c.latency {
            for _ in 0..n {
                let at = c.now;
                c.log.push((at, op.to_owned()));
                c.now += latency.of(op);
            }
        }
    }
    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.calls.lock().unwrap().clone()
    }
    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
        let mut c = self.clock.lock().unwrap();
        c.log.clear();
        c.changed.clear();
    }
    /// An invocation begins at `at` (seconds on the model's clock).
    pub fn begin(&self, at: f64) {
        self.clock.lock().unwrap().now = at;
    }
    /// The model's clock: when the calls made so far by this invocation have ended.
    pub fn now(&self) -> f64 {
        self.clock.lock().unwrap().now
    }
    /// Every call made since the last reset: when it began, and what it was.
    pub fn log(&self) -> Vec<(f64, String)> {
        self.clock.lock().unwrap().log.clone()
    }
    /// When the call that started or stopped this task ended.
    pub fn changed_at(&self, task_arn: &str) -> Option<f64> {
        self.clock.lock().unwrap().changed.get(task_arn).copied()
    }
    fn changed(&self, task_arn: &str) {
        let mut c = self.clock.lock().unwrap();
        let now = c.now;
        c.changed.insert(task_arn.to_owned(), now);
    }
}

pub struct Counted<'a, T> {
    pub inner: &'a T,
    pub tally: &'a Tally,
}

#[async_trait::async_trait]
impl<S: Store> Store for Counted<'_, S> {
    async fn create_environment(
        &self,
        env: &Environment,
        first: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()> {
        self.tally.add("DynamoDB.TransactWriteItems", 1);
        self.inner
            .create_environment(env, first, dependencies)
            .await
    }
    async fn get_environment(&self, name: &str) -> Result<Option<Environment>> {
        self.tally.add("DynamoDB.GetItem", 1);
        self.inner.get_environment(name).await
    }
    async fn list_environments(
        &self,
        cluster_arn: Option<&str>,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Environment>> {
        self.tally.add("DynamoDB.Query", 1);
        self.inner
            .list_environments(cluster_arn, limit, next_token)
            .await
    }
    async fn environments_of_cluster(&self, cluster_arn: &str) -> Result<Vec<Environment>> {
        self.tally.add("DynamoDB.Query", 1);
        self.inner.environments_of_cluster(cluster_arn).await
    }
    async fn update_environment(&self, env: &Environment, expected_version: u64) -> Result<()> {
        self.tally.add("DynamoDB.PutItem", 1);
        self.inner.update_environment(env, expected_version).await
    }
    async fn add_revision(
        &self,
        env: &Environment,
        expected_version: u64,
        revision: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()> {
        self.tally.add("DynamoDB.TransactWriteItems", 1);
        self.inner
            .add_revision(env, expected_version, revision, dependencies)
            .await
    }
    async fn get_revision(&self, environment: &str, number: u32) -> Result<Option<Revision>> {
        self.tally.add("DynamoDB.GetItem", 1);
        self.inner.get_revision(environment, number).await
    }
    async fn list_revisions(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Revision>> {
        self.tally.add("DynamoDB.Query", 1);
        self.inner
            .list_revisions(environment, limit, next_token)
            .await
    }
    async fn create_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        deployment: &Deployment,
    ) -> Result<()> {
        self.tally.add("DynamoDB.TransactWriteItems", 1);
        self.inner
            .create_deployment(env, expected_version, deployment)
            .await
    }
    async fn get_deployment(&self, environment: &str, id: &str) -> Result<Option<Deployment>> {
        self.tally.add("DynamoDB.GetItem", 1);
        self.inner.get_deployment(environment, id).await
    }
    async fn list_deployments(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Deployment>> {
        self.tally.add("DynamoDB.Query", 1);
        self.inner
            .list_deployments(environment, limit, next_token)
            .await
    }
    async fn mark_deployment_running(&self, environment: &str, id: &str) -> Result<bool> {
        self.tally.add("DynamoDB.UpdateItem", 1);
        self.inner.mark_deployment_running(environment, id).await
    }
    async fn transition_deployment(
        &self,
        environment: &str,
        id: &str,
        change: &integration_tests::shared::domain::DeploymentTransition,
    ) -> Result<bool> {
        self.tally.add("DynamoDB.UpdateItem", 1);
        self.inner
            .transition_deployment(environment, id, change)
            .await
    }
    async fn promote_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        id: &str,
        at: &str,
    ) -> Result<bool> {
        self.tally.add("DynamoDB.TransactWriteItems", 1);
        self.inner
            .promote_deployment(env, expected_version, id, at)
            .await
    }
    async fn nudge_deployment(&self, environment: &str, id: &str) -> Result<bool> {
        self.tally.add("DynamoDB.UpdateItem", 1);
        self.inner.nudge_deployment(environment, id).await
    }
    async fn halt_deployment(&self, environment: &str, id: &str, reason: &str) -> Result<bool> {
        self.tally.add("DynamoDB.UpdateItem", 1);
        self.inner.halt_deployment(environment, id, reason).await
    }
    async fn cancel_deployment(&self, deployment: &Deployment) -> Result<bool> {
        self.tally.add("DynamoDB.TransactWriteItems", 1);
        self.inner.cancel_deployment(deployment).await
    }
    async fn finish_deployment(
        &self,
        deployment: &Deployment,
        outcome: DeploymentStatus,
        health: Health,
    ) -> Result<bool> {
        self.tally.add("DynamoDB.TransactWriteItems", 1);
        self.inner
            .finish_deployment(deployment, outcome, health)
            .await
    }
    async fn get_slot(&self, key: &SlotKey) -> Result<Option<Slot>> {
        self.tally.add("DynamoDB.GetItem", 1);
        self.inner.get_slot(key).await
    }
    async fn slot_and_environment(
        &self,
        key: &SlotKey,
    ) -> Result<(Option<Slot>, Option<Environment>)> {
        self.tally.add("DynamoDB.BatchGetItem", 1);
        self.inner.slot_and_environment(key).await
    }
    async fn slots_on_host(&self, environments: &[&str], host: &str) -> Result<Vec<Slot>> {
        self.tally.add(
            "DynamoDB.BatchGetItem",
            pages(environments.len(), BATCH_GET_ITEMS),
        );
        self.inner.slots_on_host(environments, host).await
    }
    async fn slots_of(&self, environment: &str) -> Result<Vec<Slot>> {
        let slots = self.inner.slots_of(environment).await?;
        self.tally
            .add("DynamoDB.Query", pages(slots.len(), SLOTS_PER_PAGE));
        Ok(slots)
    }
    async fn write_slots(&self, writes: &[SlotWrite]) -> Result<Vec<WriteOutcome>> {
        let mut per_env: BTreeMap<&str, usize> = BTreeMap::new();
        for w in writes {
            *per_env.entry(&w.after.environment).or_default() += 1;
        }
        let calls: usize = per_env
            .values()
            .map(|n| n.div_ceil(TRANSACT_ITEMS - 4))
            .sum();
        self.tally.add("DynamoDB.TransactWriteItems", calls);
        self.inner.write_slots(writes).await
    }
    async fn delete_environment_records(&self, environment: &str) -> Result<()> {
        let n = self.inner.slots_of(environment).await?.len();
        self.tally.add("DynamoDB.Query", pages(n, SLOTS_PER_PAGE));
        self.tally
            .add("DynamoDB.BatchWriteItem", n.div_ceil(BATCH_WRITE_ITEMS));
        self.tally.add("DynamoDB.DeleteItem", 1);
        self.inner.delete_environment_records(environment).await
    }
}

#[async_trait::async_trait]
impl<C: Cluster> Cluster for Counted<'_, C> {
    async fn describe_cluster(&self, cluster: &str) -> Result<Option<ResourceStatus>> {
        self.tally.add("ECS.DescribeClusters", 1);
        self.inner.describe_cluster(cluster).await
    }
    async fn describe_task_definition(&self, td: &str) -> Result<Option<TaskDefinitionInfo>> {
        self.tally.add("ECS.DescribeTaskDefinition", 1);
        self.inner.describe_task_definition(td).await
    }
    async fn active_hosts(&self, cluster_arn: &str) -> Result<Vec<Host>> {
        let hosts = self.inner.active_hosts(cluster_arn).await?;
        let n = hosts.len();
        self.tally
            .add("ECS.ListContainerInstances", pages(n, LIST_PAGE as usize));
        self.tally
            .add("ECS.DescribeContainerInstances", n.div_ceil(DESCRIBE_BATCH));
        Ok(hosts)
    }
    async fn describe_hosts(&self, cluster_arn: &str, arns: &[String]) -> Result<Vec<Host>> {
        self.tally.add(
            "ECS.DescribeContainerInstances",
            arns.len().div_ceil(DESCRIBE_BATCH),
        );
        self.inner.describe_hosts(cluster_arn, arns).await
    }
    async fn start_tasks(&self, request: StartRequest<'_>) -> Result<StartOutcome> {
        self.tally.add("ECS.StartTask", 1);
        let out = self.inner.start_tasks(request).await?;
        for (_, task) in &out.started {
            self.tally.changed(task);
        }
        Ok(out)
    }
    async fn stop_task(&self, cluster_arn: &str, task_arn: &str, reason: &str) -> Result<()> {
        self.tally.add("ECS.StopTask", 1);
        self.inner.stop_task(cluster_arn, task_arn, reason).await?;
        self.tally.changed(task_arn);
        Ok(())
    }
    async fn other_tasks_on(&self, cluster_arn: &str, host: &str) -> Result<usize> {
        self.tally.add("ECS.ListTasks", 1);
        self.inner.other_tasks_on(cluster_arn, host).await
    }
    async fn tasks_of_family(
        &self,
        cluster_arn: &str,
        family: &str,
    ) -> Result<Vec<TaskObservation>> {
        let tasks = self.inner.tasks_of_family(cluster_arn, family).await?;
        self.tally
            .add("ECS.ListTasks", pages(tasks.len(), LIST_PAGE as usize));
        self.tally
            .add("ECS.DescribeTasks", tasks.len().div_ceil(DESCRIBE_BATCH));
        Ok(tasks)
    }
    async fn describe_tasks(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<Vec<TaskObservation>> {
        self.tally
            .add("ECS.DescribeTasks", arns.len().div_ceil(DESCRIBE_BATCH));
        self.inner.describe_tasks(cluster_arn, arns).await
    }
    async fn tasks_started_by(
        &self,
        cluster_arn: &str,
        started_by: &str,
        host: Option<&str>,
    ) -> Result<Vec<TaskObservation>> {
        let tasks = self
            .inner
            .tasks_started_by(cluster_arn, started_by, host)
            .await?;
        self.tally.add("ECS.ListTasks", 1);
        self.tally
            .add("ECS.DescribeTasks", tasks.len().div_ceil(DESCRIBE_BATCH));
        Ok(tasks)
    }
}
