//! Ports: what the core needs from the outside world. Adapters (DynamoDB, ECS) implement them;
//! unit tests use in-process fakes.

use async_trait::async_trait;

use crate::domain::resources::TaskNeeds;
use crate::domain::{
    AlarmState, Deployment, DeploymentStatus, DeploymentTransition, Environment, Health, Host,
    LaunchSpec, Revision, Slot, SlotKey, TaskObservation,
};
use crate::error::Result;

/// One page of a list, with the opaque token for the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

pub use crate::planner::SlotWrite;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; the slot as stored (with its new `rev`).
    Written(Slot),
    /// Someone else wrote first: the slot as it is now (`None`: it is gone).
    Conflict(Option<Slot>),
    /// The deployment whose counters this write carried has finished; write it untracked.
    DeploymentClosed(String),
    /// The environment is being deleted (or is gone): no new claim may be written.
    EnvironmentInactive,
    /// Not attempted because another write of its batch failed; try again as it was.
    NotAttempted,
    /// Not made: it would take its deployment past `pending_cap` (a later step retries it).
    OverBudget,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// The environment and its first revision, together with `dependencies`: the environments it
    /// depends on, as they must be written (listing it among their `dependents`), each conditional
    /// on the version it was read at (`ConcurrentUpdate` otherwise). Fails with `Conflict` naming
    /// `name` when it exists.
    async fn create_environment(
        &self,
        env: &Environment,
        first: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()>;
    async fn get_environment(&self, name: &str) -> Result<Option<Environment>>;
    /// Every environment, or those of one cluster ARN, by name.
    async fn list_environments(
        &self,
        cluster_arn: Option<&str>,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Environment>>;
    /// Every environment of a cluster, all pages (the instance-events hot path: usually one Query).
    async fn environments_of_cluster(&self, cluster_arn: &str) -> Result<Vec<Environment>>;
    /// Conditional on `expected_version`; fails with `ConcurrentUpdate` otherwise.
    async fn update_environment(&self, env: &Environment, expected_version: u64) -> Result<()>;
    /// A new revision and the environment pointing at it, in one transaction conditional on
    /// `expected_version` (`ConcurrentUpdate` otherwise); `dependencies` as in
    /// `create_environment`.
    async fn add_revision(
        &self,
        env: &Environment,
        expected_version: u64,
        revision: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()>;
    async fn get_revision(&self, environment: &str, number: u32) -> Result<Option<Revision>>;
    /// Newest first.
    async fn list_revisions(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Revision>>;
    /// Records the deployment and the environment's new token/pointers in one transaction.
    async fn create_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        deployment: &Deployment,
    ) -> Result<()>;
    async fn get_deployment(&self, environment: &str, id: &str) -> Result<Option<Deployment>>;
    /// Newest first.
    async fn list_deployments(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Deployment>>;
    /// pending → running, once its hosts are claimed. False when it had already moved on.
    async fn mark_deployment_running(&self, environment: &str, id: &str) -> Result<bool>;
    /// Touches a deployment in progress (its stream record steps it again). False when it had
    /// finished.
    async fn nudge_deployment(&self, environment: &str, id: &str) -> Result<bool>;
    /// The circuit breaker: no more hosts are taken (pending/running → running with the reason).
    /// False when it was already halted or finished.
    async fn halt_deployment(&self, environment: &str, id: &str, reason: &str) -> Result<bool>;
    /// pending/awaiting-promotion/running → cancelled and the environment released, in one
    /// transaction. False when it had already finished.
    async fn cancel_deployment(&self, deployment: &Deployment) -> Result<bool>;
    /// The change, made only from the statuses it names (see `DeploymentTransition`). False when
    /// the deployment was not in one of them (or, with `settled`, still had hosts on their way).
    async fn transition_deployment(
        &self,
        environment: &str,
        id: &str,
        change: &DeploymentTransition,
    ) -> Result<bool>;
    /// awaiting-promotion (or pending, in its canary) → pending, promoted at `at`, and the
    /// environment (`env`, at `expected_version`) deploying its revision, in one transaction.
    /// False when either had moved on.
    async fn promote_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        id: &str,
        at: &str,
    ) -> Result<bool>;
    /// running → completed/failed and the environment released with `health`, in one
    /// transaction. False when another writer closed it first (or its counters moved meanwhile).
    async fn finish_deployment(
        &self,
        deployment: &Deployment,
        outcome: DeploymentStatus,
        health: Health,
    ) -> Result<bool>;

    async fn get_slot(&self, key: &SlotKey) -> Result<Option<Slot>>;
    /// A slot and its environment, in one read (the task-events hot path).
    async fn slot_and_environment(
        &self,
        key: &SlotKey,
    ) -> Result<(Option<Slot>, Option<Environment>)>;
    /// The slots of these environments on one host (strongly consistent, 100 keys a call).
    async fn slots_on_host(&self, environments: &[&str], host: &str) -> Result<Vec<Slot>>;
    /// Every slot of an environment (strongly consistent, all pages).
    async fn slots_of(&self, environment: &str) -> Result<Vec<Slot>>;
    /// Compare-and-swap slots in as few calls as the limits allow, each write together with the
    /// counter changes it causes; claims also check that the environment is still active.
    /// One outcome per write, in order.
    async fn write_slots(&self, writes: &[SlotWrite]) -> Result<Vec<WriteOutcome>>;
    /// Removes every record of an environment (slots, deployments, then the environment itself).
    async fn delete_environment_records(&self, environment: &str) -> Result<()>;
}

/// What a wake-up asks of the deployer once its delay is over: step a deployment (a new task's
/// bake ended), and/or look at one slot again (its bake ended: the daemons that depend on it may
/// start there).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WakeupMessage {
    pub environment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A delayed call back into the deployer: the end of a new task's bake (`minHealthySeconds`)
/// comes with no ECS event of its own.
#[async_trait]
pub trait Wakeup: Send + Sync {
    async fn wake_later(&self, message: &WakeupMessage, delay_secs: u32) -> Result<()>;
}

/// CloudWatch alarms, read for the alarm gates of a deployment (`updateStrategy.alarms`).
#[async_trait]
pub trait Alarms: Send + Sync {
    /// The state of each of `names` that exists (metric and composite alarms), in one call per
    /// 100 names; a name CloudWatch does not know is left out.
    async fn states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>>;
}

/// One cluster to reconcile, as the scheduled run asks for it. `period`: the scheduled event's
/// time, so the same run sent twice is one message (the queue deduplicates by content).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileMessage {
    pub cluster_arn: String,
    pub period: String,
}

/// Where the scheduled run puts one message per cluster; each is reconciled by an invocation of
/// its own (bounded concurrency, retries, a dead-letter queue), never two at once per cluster.
#[async_trait]
pub trait ReconcileQueue: Send + Sync {
    async fn enqueue(&self, messages: &[ReconcileMessage]) -> Result<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceStatus {
    pub arn: String,
    pub active: bool,
}

/// A task definition as ECS describes it: its ARN, whether it is ACTIVE, what it needs of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinitionInfo {
    pub arn: String,
    pub active: bool,
    pub needs: TaskNeeds,
}

/// What StartTask did for each host of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOutcome {
    /// (container instance ARN, task ARN)
    pub started: Vec<(String, String)>,
    /// (container instance ARN, ECS's reason): certainly not started.
    pub refused: Vec<(String, String)>,
    /// The call failed in a way that may or may not have started tasks (timeout, 5xx): the claims
    /// stay, and the lease-expiry path looks in ECS before launching again.
    pub unknown: Vec<(String, String)>,
    /// ECS throttled the call (even after retries): nothing started, and it is no failure of the
    /// daemon; the claims are freed for the next event or reconcile.
    pub throttled: Vec<String>,
}

/// One StartTask call: one launch on up to 10 hosts.
pub struct StartRequest<'a> {
    pub cluster_arn: &'a str,
    pub launch: &'a LaunchSpec,
    /// At most `limits::START_TASK_INSTANCES`.
    pub container_instances: &'a [String],
}

#[async_trait]
pub trait Cluster: Send + Sync {
    /// `None` when ECS does not know it.
    async fn describe_cluster(&self, cluster: &str) -> Result<Option<ResourceStatus>>;
    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<Option<TaskDefinitionInfo>>;
    /// ACTIVE container instances with their placement facts (List pages of 100, Describe 100).
    async fn active_hosts(&self, cluster_arn: &str) -> Result<Vec<Host>>;
    /// These container instances as ECS has them now (Describe, 100 a call). One ECS no longer
    /// knows comes back INACTIVE at the highest version: it is gone for good.
    async fn describe_hosts(&self, cluster_arn: &str, arns: &[String]) -> Result<Vec<Host>>;
    async fn start_tasks(&self, request: StartRequest<'_>) -> Result<StartOutcome>;
    async fn stop_task(&self, cluster_arn: &str, task_arn: &str, reason: &str) -> Result<()>;
    /// Live tasks on a host that are not ours (any group but `daemon-scheduler:*`).
    async fn other_tasks_on(&self, cluster_arn: &str, container_instance: &str) -> Result<usize>;
    /// Live tasks of ours (group `daemon-scheduler:*`) of a task definition family, whoever
    /// started them (ListTasks by family, pages of 100; DescribeTasks by 100).
    async fn tasks_of_family(
        &self,
        cluster_arn: &str,
        family: &str,
    ) -> Result<Vec<TaskObservation>>;
    /// These tasks of ours as ECS has them now (100 a call); ECS may have forgotten stopped ones.
    async fn describe_tasks(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<Vec<TaskObservation>>;
    /// Live tasks of ours (group `daemon-scheduler:*`) started by `started_by`, optionally on one host.
    async fn tasks_started_by(
        &self,
        cluster_arn: &str,
        started_by: &str,
        container_instance: Option<&str>,
    ) -> Result<Vec<TaskObservation>>;
}
