//! In-process fakes of the ports, for property tests and fault injection (never instead of the
//! moto tests). The store keeps the adapter's contract: compare-and-swap on `rev`, the counters
//! and failures each write carries applied with it, claims refused once the environment is
//! deleting. The cluster places tasks as ECS does: only on ACTIVE hosts, only where they fit
//! (refusing with `RESOURCE:*`), taking their reservation from the host's free resources. Every
//! call yields first, so concurrent handlers interleave at each await point.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::resources::{Reservation, TaskNeeds};
use crate::domain::{
    Deployment, DeploymentStatus, DeploymentTransition, Environment, EnvironmentStatus, Health,
    Host, HostStatus, Revision, Slot, SlotKey, TaskObservation, TaskStatus,
};
use crate::error::{Error, Result};
use crate::limits::START_TASK_INSTANCES;
use crate::ports::{
    Cluster, Page, ResourceStatus, SlotWrite, StartOutcome, StartRequest, Store,
    TaskDefinitionInfo, WriteOutcome,
};

#[derive(Default)]
struct StoreState {
    envs: BTreeMap<String, Environment>,
    deployments: BTreeMap<(String, String), Deployment>,
    revisions: BTreeMap<(String, u32), Revision>,
    slots: BTreeMap<SlotKey, Slot>,
    /// How often each deployment was nudged (each would be a stream record).
    nudges: BTreeMap<(String, String), u64>,
}

#[derive(Default)]
pub struct FakeStore {
    state: Mutex<StoreState>,
}

impl FakeStore {
    pub fn slots(&self) -> Vec<Slot> {
        self.state.lock().unwrap().slots.values().cloned().collect()
    }
    pub fn slot(&self, key: &SlotKey) -> Option<Slot> {
        self.state.lock().unwrap().slots.get(key).cloned()
    }
    pub fn deployment(&self, env: &str, id: &str) -> Option<Deployment> {
        let s = self.state.lock().unwrap();
        s.deployments.get(&(env.to_owned(), id.to_owned())).cloned()
    }
    /// How often a deployment was nudged.
    pub fn nudges(&self, env: &str, id: &str) -> u64 {
        let s = self.state.lock().unwrap();
        s.nudges
            .get(&(env.to_owned(), id.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

/// The environments a new revision depends on, each written if still at the version read.
fn write_dependencies(
    s: &mut StoreState,
    name: &str,
    dependencies: &[(Environment, u64)],
) -> Result<()> {
    let fresh = dependencies.iter().all(|(d, v)| {
        s.envs
            .get(&d.name)
            .is_some_and(|e| e.version == *v && e.status == EnvironmentStatus::Active)
    });
    if !fresh {
        return Err(Error::ConcurrentUpdate {
            what: name.to_owned(),
        });
    }
    for (d, _) in dependencies {
        s.envs.insert(d.name.clone(), d.clone());
    }
    Ok(())
}

fn page<T: Clone>(items: Vec<T>, limit: usize, token: Option<&str>) -> Result<Page<T>> {
    let start: usize = match token {
        Some(t) => t
            .parse()
            .map_err(|_| Error::invalid("nextToken", "bad token"))?,
        None => 0,
    };
    let end = (start + limit).min(items.len());
    Ok(Page {
        items: items.get(start..end).unwrap_or_default().to_vec(),
        next_token: (end < items.len()).then(|| end.to_string()),
    })
}

#[async_trait]
impl Store for FakeStore {
    async fn create_environment(
        &self,
        env: &Environment,
        first: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        if s.envs.contains_key(&env.name) {
            return Err(Error::conflict(Some("name"), "exists"));
        }
        write_dependencies(&mut s, &env.name, dependencies)?;
        s.envs.insert(env.name.clone(), env.clone());
        s.revisions
            .insert((env.name.clone(), first.number), first.clone());
        Ok(())
    }

    async fn add_revision(
        &self,
        env: &Environment,
        expected_version: u64,
        revision: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        let key = (env.name.clone(), revision.number);
        match s.envs.get(&env.name) {
            Some(e)
                if e.version == expected_version
                    && e.status == EnvironmentStatus::Active
                    && !s.revisions.contains_key(&key) =>
            {
                write_dependencies(&mut s, &env.name, dependencies)?;
                s.envs.insert(env.name.clone(), env.clone());
                s.revisions.insert(key, revision.clone());
                Ok(())
            }
            _ => Err(Error::ConcurrentUpdate {
                what: env.name.clone(),
            }),
        }
    }

    async fn get_revision(&self, environment: &str, number: u32) -> Result<Option<Revision>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(s.revisions.get(&(environment.to_owned(), number)).cloned())
    }

    async fn list_revisions(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Revision>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        let mut revs: Vec<Revision> = s
            .revisions
            .iter()
            .filter(|((e, _), _)| e == environment)
            .map(|(_, r)| r.clone())
            .collect();
        revs.reverse();
        page(revs, limit, next_token)
    }

    async fn halt_deployment(&self, environment: &str, id: &str, reason: &str) -> Result<bool> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        match s
            .deployments
            .get_mut(&(environment.to_owned(), id.to_owned()))
        {
            Some(d) if !d.status.is_finished() && d.halted_reason.is_none() => {
                d.status = DeploymentStatus::Running;
                d.halted_reason = Some(reason.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn cancel_deployment(&self, deployment: &Deployment) -> Result<bool> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        let key = (deployment.environment_name.clone(), deployment.id.clone());
        match s.deployments.get_mut(&key) {
            Some(d) if !d.status.is_finished() => d.status = DeploymentStatus::Cancelled,
            _ => return Ok(false),
        }
        if let Some(env) = s.envs.get_mut(&deployment.environment_name) {
            if env.active_deployment_id.as_deref() == Some(deployment.id.as_str()) {
                env.active_deployment_id = None;
                env.version += 1;
            }
        }
        Ok(true)
    }

    async fn get_environment(&self, name: &str) -> Result<Option<Environment>> {
        tokio::task::yield_now().await;
        Ok(self.state.lock().unwrap().envs.get(name).cloned())
    }

    async fn list_environments(
        &self,
        cluster_arn: Option<&str>,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Environment>> {
        tokio::task::yield_now().await;
        let envs: Vec<Environment> = self
            .state
            .lock()
            .unwrap()
            .envs
            .values()
            .filter(|e| cluster_arn.is_none_or(|c| e.cluster_arn() == c))
            .filter(|e| e.status == EnvironmentStatus::Active)
            .cloned()
            .collect();
        page(envs, limit, next_token)
    }

    async fn environments_of_cluster(&self, cluster_arn: &str) -> Result<Vec<Environment>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(s.envs
            .values()
            .filter(|e| e.cluster_arn() == cluster_arn)
            .cloned()
            .collect())
    }

    async fn update_environment(&self, env: &Environment, expected_version: u64) -> Result<()> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        match s.envs.get(&env.name) {
            Some(e) if e.version == expected_version => {
                s.envs.insert(env.name.clone(), env.clone());
                Ok(())
            }
            _ => Err(Error::ConcurrentUpdate {
                what: env.name.clone(),
            }),
        }
    }

    async fn create_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        deployment: &Deployment,
    ) -> Result<()> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        match s.envs.get(&env.name) {
            Some(e) if e.version == expected_version => {
                s.envs.insert(env.name.clone(), env.clone());
                s.deployments.insert(
                    (env.name.clone(), deployment.id.clone()),
                    deployment.clone(),
                );
                Ok(())
            }
            _ => Err(Error::ConcurrentUpdate {
                what: env.name.clone(),
            }),
        }
    }

    async fn get_deployment(&self, environment: &str, id: &str) -> Result<Option<Deployment>> {
        tokio::task::yield_now().await;
        Ok(self.deployment(environment, id))
    }

    async fn list_deployments(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Deployment>> {
        tokio::task::yield_now().await;
        let mut deps: Vec<Deployment> = self
            .state
            .lock()
            .unwrap()
            .deployments
            .iter()
            .filter(|((e, _), _)| e == environment)
            .map(|(_, d)| d.clone())
            .collect();
        deps.reverse();
        page(deps, limit, next_token)
    }

    async fn transition_deployment(
        &self,
        environment: &str,
        id: &str,
        change: &DeploymentTransition,
    ) -> Result<bool> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        match s
            .deployments
            .get_mut(&(environment.to_owned(), id.to_owned()))
        {
            Some(d)
                if change.from.contains(&d.status) && (!change.settled || d.pending_count == 0) =>
            {
                if let Some(to) = change.to {
                    d.status = to;
                }
                if let Some(paused) = &change.paused_at {
                    d.paused_at = paused.clone();
                }
                d.updated_at = crate::clock::now_rfc3339();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn promote_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        id: &str,
        at: &str,
    ) -> Result<bool> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        let key = (env.name.clone(), id.to_owned());
        let dep_ok = s.deployments.get(&key).is_some_and(|d| {
            matches!(
                d.status,
                DeploymentStatus::Pending | DeploymentStatus::AwaitingPromotion
            ) && d.promoted_at.is_none()
        });
        let env_ok = s
            .envs
            .get(&env.name)
            .is_some_and(|e| e.version == expected_version);
        if !(dep_ok && env_ok) {
            return Ok(false);
        }
        s.envs.insert(env.name.clone(), env.clone());
        if let Some(d) = s.deployments.get_mut(&key) {
            d.status = DeploymentStatus::Pending;
            d.promoted_at = Some(at.to_owned());
            d.updated_at = at.to_owned();
        }
        Ok(true)
    }

    async fn mark_deployment_running(&self, environment: &str, id: &str) -> Result<bool> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        match s
            .deployments
            .get_mut(&(environment.to_owned(), id.to_owned()))
        {
            Some(d) if d.status == DeploymentStatus::Pending => {
                d.status = DeploymentStatus::Running;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn nudge_deployment(&self, environment: &str, id: &str) -> Result<bool> {
        tokio::task::yield_now().await;
        let mut guard = self.state.lock().unwrap();
        let s = &mut *guard;
        let key = (environment.to_owned(), id.to_owned());
        match s.deployments.get_mut(&key) {
            Some(d) if !d.status.is_finished() => {
                d.updated_at = crate::clock::now_rfc3339();
                *s.nudges.entry(key).or_default() += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn finish_deployment(
        &self,
        deployment: &Deployment,
        outcome: DeploymentStatus,
        health: Health,
    ) -> Result<bool> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        let key = (deployment.environment_name.clone(), deployment.id.clone());
        match s.deployments.get_mut(&key) {
            Some(d) if d.status == DeploymentStatus::Running && d.pending_count == 0 => {
                d.status = outcome;
            }
            _ => return Ok(false),
        }
        if let Some(env) = s.envs.get_mut(&deployment.environment_name) {
            if env.active_deployment_id.as_deref() == Some(deployment.id.as_str()) {
                env.active_deployment_id = None;
                env.health = health;
                env.version += 1;
            }
        }
        Ok(true)
    }

    async fn get_slot(&self, key: &SlotKey) -> Result<Option<Slot>> {
        tokio::task::yield_now().await;
        Ok(self.state.lock().unwrap().slots.get(key).cloned())
    }

    async fn slot_and_environment(
        &self,
        key: &SlotKey,
    ) -> Result<(Option<Slot>, Option<Environment>)> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok((
            s.slots.get(key).cloned(),
            s.envs.get(&key.environment).cloned(),
        ))
    }

    async fn slots_on_host(&self, environments: &[&str], host: &str) -> Result<Vec<Slot>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(environments
            .iter()
            .filter_map(|e| {
                s.slots
                    .get(&SlotKey {
                        environment: (*e).to_owned(),
                        container_instance_arn: host.to_owned(),
                    })
                    .cloned()
            })
            .collect())
    }

    async fn slots_of(&self, environment: &str) -> Result<Vec<Slot>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(s.slots
            .values()
            .filter(|x| x.environment == environment)
            .cloned()
            .collect())
    }

    async fn write_slots(&self, writes: &[SlotWrite]) -> Result<Vec<WriteOutcome>> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            let key = w.after.key();
            let current = s.slots.get(&key).cloned();
            if current.as_ref().map(|c| c.rev) != w.before.as_ref().map(|b| b.rev) {
                out.push(WriteOutcome::Conflict(current));
                continue;
            }
            let env_active = s
                .envs
                .get(&w.after.environment)
                .is_some_and(|e| e.status == EnvironmentStatus::Active);
            if w.claims && !env_active {
                out.push(WriteOutcome::EnvironmentInactive);
                continue;
            }
            let dep_key = |dep: &str| (w.after.environment.clone(), dep.to_owned());
            let touched = w
                .counters
                .iter()
                .map(|(d, _)| d)
                .chain(w.failures.iter().map(|(d, _)| d));
            let closed = touched.clone().find(|dep| {
                s.deployments
                    .get(&dep_key(dep))
                    .is_none_or(|d| d.status.is_finished())
            });
            if let Some(dep) = closed {
                out.push(WriteOutcome::DeploymentClosed(dep.clone()));
                continue;
            }
            let over = w.pending_cap.is_some_and(|cap| {
                w.counters.iter().any(|(dep, c)| {
                    c.pending > 0
                        && s.deployments
                            .get(&dep_key(dep))
                            .is_some_and(|d| d.pending_count + c.pending > cap)
                })
            });
            if over {
                out.push(WriteOutcome::OverBudget);
                continue;
            }
            for (dep, c) in &w.counters {
                let d = s.deployments.get_mut(&dep_key(dep)).expect("checked above");
                d.desired_count += c.desired;
                d.pending_count += c.pending;
                d.running_count += c.running;
                d.failed_count += c.failed;
                d.failed_hosts += c.failed_hosts;
            }
            for (dep, failure) in &w.failures {
                let d = s.deployments.get_mut(&dep_key(dep)).expect("checked above");
                d.failed_instances
                    .push(failure.container_instance_arn.clone());
                d.failures.push(failure.clone());
            }
            let mut stored = w.after.clone();
            stored.rev = w.before.as_ref().map_or(1, |b| b.rev + 1);
            s.slots.insert(key, stored.clone());
            out.push(WriteOutcome::Written(stored));
        }
        Ok(out)
    }

    async fn delete_environment_records(&self, environment: &str) -> Result<()> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        s.slots.retain(|k, _| k.environment != environment);
        s.deployments.retain(|(e, _), _| e != environment);
        s.revisions.retain(|(e, _), _| e != environment);
        s.envs.remove(environment);
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTask {
    pub arn: String,
    pub host: String,
    pub group: String,
    pub started_by: String,
    pub task_definition: String,
    pub overrides: Option<crate::domain::overrides::TaskOverride>,
    pub reserves: Reservation,
    pub alive: bool,
    pub version: i64,
}

impl FakeTask {
    pub fn observation(&self) -> Option<TaskObservation> {
        let status = if self.alive {
            TaskStatus::Running
        } else {
            TaskStatus::Stopped
        };
        Some(TaskObservation {
            task_arn: self.arn.clone(),
            container_instance_arn: self.host.clone(),
            environment: crate::domain::task::environment_of_group(&self.group)?.to_owned(),
            started_by: Some(self.started_by.clone()),
            task_definition: Some(self.task_definition.clone()),
            last_status: status,
            desired_status: status,
            stopped_reason: (!self.alive).then(|| "stopped".to_owned()),
            version: self.version,
            ran_for_ms: None,
        })
    }
}

#[derive(Default)]
struct ClusterState {
    hosts: BTreeMap<String, Host>,
    tasks: BTreeMap<String, FakeTask>,
    /// What DescribeTaskDefinition says each task definition needs (default: nothing).
    needs: BTreeMap<String, TaskNeeds>,
    /// Every task state change, in order, for the test to deliver as events.
    changes: Vec<FakeTask>,
    start_calls: Vec<usize>,
    next_id: u64,
    /// StartTask calls still to refuse outright (fault injection).
    refuse_next_starts: usize,
    /// StartTask calls that start their tasks but whose answer is lost (a timeout, a dead Lambda).
    lose_next_start_answers: usize,
    /// How often the hosts were listed (each is List + Describe calls in ECS).
    active_hosts_calls: usize,
    /// Why each stopped task was stopped, when someone said (StopTask's reason).
    stop_reasons: BTreeMap<String, String>,
}

/// An ECS cluster in memory. StartTask refuses calls of more than 10 hosts (as ECS does, and
/// moto does not), hosts that are not ACTIVE, and hosts where the task does not fit
/// (`RESOURCE:CPU|MEMORY|PORTS`, when the host has resources set).
#[derive(Default)]
pub struct FakeCluster {
    state: Mutex<ClusterState>,
}

pub const FAKE_CLUSTER_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/fake";

impl FakeCluster {
    /// A host as ECS now has it. Its free resources stay as tasks left them unless given.
    pub fn set_host(&self, mut host: Host) {
        let mut s = self.state.lock().unwrap();
        if host.remaining.is_none() {
            host.remaining = s.hosts.get(host.arn()).and_then(|h| h.remaining.clone());
        }
        s.hosts.insert(host.arn().to_owned(), host);
    }
    pub fn host(&self, arn: &str) -> Option<Host> {
        self.state.lock().unwrap().hosts.get(arn).cloned()
    }
    /// What DescribeTaskDefinition answers for `task_definition`.
    pub fn set_task_definition(&self, task_definition: &str, needs: TaskNeeds) {
        let mut s = self.state.lock().unwrap();
        s.needs.insert(task_definition.to_owned(), needs);
    }
    pub fn live_tasks(&self) -> Vec<FakeTask> {
        let s = self.state.lock().unwrap();
        s.tasks.values().filter(|t| t.alive).cloned().collect()
    }
    pub fn take_changes(&self) -> Vec<FakeTask> {
        std::mem::take(&mut self.state.lock().unwrap().changes)
    }
    pub fn start_calls(&self) -> Vec<usize> {
        self.state.lock().unwrap().start_calls.clone()
    }
    pub fn active_hosts_calls(&self) -> usize {
        self.state.lock().unwrap().active_hosts_calls
    }
    pub fn refuse_next_starts(&self, n: usize) {
        self.state.lock().unwrap().refuse_next_starts = n;
    }
    pub fn lose_next_start_answers(&self, n: usize) {
        self.state.lock().unwrap().lose_next_start_answers = n;
    }
    /// Someone (an operator, an OOM kill) stops a task.
    pub fn kill(&self, arn: &str) -> bool {
        let mut s = self.state.lock().unwrap();
        stop(&mut s, arn)
    }
    /// A task stops, and ECS says why (an operator's StopTask reason, a container that exited).
    pub fn kill_because(&self, arn: &str, reason: &str) -> bool {
        let mut s = self.state.lock().unwrap();
        s.stop_reasons.insert(arn.to_owned(), reason.to_owned());
        stop(&mut s, arn)
    }
    /// The reason a stopped task was stopped for, if one was given.
    pub fn stop_reason(&self, arn: &str) -> Option<String> {
        self.state.lock().unwrap().stop_reasons.get(arn).cloned()
    }
    /// Another scheduler places a task of its own on a host (it takes resources; no event of ours).
    pub fn occupy(&self, host: &str, reserves: &Reservation) {
        let mut s = self.state.lock().unwrap();
        if let Some(free) = s.hosts.get_mut(host).and_then(|h| h.remaining.as_mut()) {
            take(free, reserves);
        }
    }
}

/// Stops a live task: it gives its resources back, and its change is reported.
fn stop(s: &mut ClusterState, arn: &str) -> bool {
    let Some(t) = s.tasks.get_mut(arn).filter(|t| t.alive) else {
        return false;
    };
    t.alive = false;
    t.version += 1;
    let t = t.clone();
    if let Some(free) = s.hosts.get_mut(&t.host).and_then(|h| h.remaining.as_mut()) {
        free.cpu += t.reserves.cpu;
        free.memory += t.reserves.memory;
        for p in &t.reserves.ports {
            free.ports.remove(p);
        }
        for p in &t.reserves.udp_ports {
            free.udp_ports.remove(p);
        }
    }
    s.changes.push(t);
    true
}

fn take(free: &mut crate::domain::resources::Resources, r: &Reservation) {
    free.cpu -= r.cpu;
    free.memory -= r.memory;
    free.ports.extend(r.ports.iter().copied());
    free.udp_ports.extend(r.udp_ports.iter().copied());
}

/// ECS's refusal reason for a task that does not fit.
fn resource_refusal(
    free: &crate::domain::resources::Resources,
    r: &Reservation,
) -> Option<&'static str> {
    if r.memory > free.memory {
        Some("RESOURCE:MEMORY")
    } else if r.cpu > free.cpu {
        Some("RESOURCE:CPU")
    } else if r.ports.iter().any(|p| free.ports.contains(p))
        || r.udp_ports.iter().any(|p| free.udp_ports.contains(p))
    {
        Some("RESOURCE:PORTS")
    } else {
        None
    }
}

#[async_trait]
impl Cluster for FakeCluster {
    async fn describe_cluster(&self, cluster: &str) -> Result<Option<ResourceStatus>> {
        Ok(
            (cluster == "fake" || cluster == FAKE_CLUSTER_ARN).then(|| ResourceStatus {
                arn: FAKE_CLUSTER_ARN.to_owned(),
                active: true,
            }),
        )
    }

    async fn describe_task_definition(&self, td: &str) -> Result<Option<TaskDefinitionInfo>> {
        let s = self.state.lock().unwrap();
        Ok(Some(TaskDefinitionInfo {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{td}"),
            active: true,
            needs: s.needs.get(td).cloned().unwrap_or_default(),
        }))
    }

    async fn active_hosts(&self, _cluster_arn: &str) -> Result<Vec<Host>> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        s.active_hosts_calls += 1;
        Ok(s.hosts
            .values()
            .filter(|h| h.state.status == HostStatus::Active)
            .cloned()
            .collect())
    }

    async fn describe_hosts(&self, _cluster_arn: &str, arns: &[String]) -> Result<Vec<Host>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(arns
            .iter()
            .filter_map(|a| s.hosts.get(a).cloned())
            .collect())
    }

    async fn start_tasks(&self, r: StartRequest<'_>) -> Result<StartOutcome> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        if r.container_instances.len() > START_TASK_INSTANCES {
            return Err(Error::Aws {
                service: "ECS".into(),
                code: "InvalidParameterException".into(),
                message: "InvalidParameterException: too many container instances".into(),
            });
        }
        s.start_calls.push(r.container_instances.len());
        let mut out = StartOutcome::default();
        if s.refuse_next_starts > 0 {
            s.refuse_next_starts -= 1;
            out.refused = r
                .container_instances
                .iter()
                .map(|h| (h.clone(), "ThrottlingException".to_owned()))
                .collect();
            return Ok(out);
        }
        let reserves = &r.launch.reserves;
        for h in r.container_instances {
            let refusal = match s.hosts.get(h) {
                None => Some("MISSING"),
                Some(x) if x.state.status != HostStatus::Active => Some("INACTIVE"),
                Some(x) if !x.state.agent_connected => Some("AGENT"),
                Some(x) => x
                    .remaining
                    .as_ref()
                    .and_then(|f| resource_refusal(f, reserves)),
            };
            if let Some(reason) = refusal {
                out.refused.push((h.clone(), reason.to_owned()));
                continue;
            }
            if let Some(free) = s.hosts.get_mut(h).and_then(|x| x.remaining.as_mut()) {
                take(free, reserves);
            }
            s.next_id += 1;
            let task = FakeTask {
                arn: format!(
                    "arn:aws:ecs:us-east-1:123456789012:task/fake/t{}",
                    s.next_id
                ),
                host: h.clone(),
                group: r.launch.group.clone(),
                started_by: r.launch.started_by.clone(),
                task_definition: r.launch.task_definition.clone(),
                overrides: r.launch.overrides.clone(),
                reserves: reserves.clone(),
                alive: true,
                version: 1,
            };
            out.started.push((h.clone(), task.arn.clone()));
            s.changes.push(task.clone());
            s.tasks.insert(task.arn.clone(), task);
        }
        if s.lose_next_start_answers > 0 {
            s.lose_next_start_answers -= 1;
            let reason = "StartTask failed: no response".to_owned();
            out.unknown = out
                .started
                .drain(..)
                .map(|(h, _)| (h, reason.clone()))
                .collect();
        }
        Ok(out)
    }

    async fn stop_task(&self, _cluster_arn: &str, task_arn: &str, reason: &str) -> Result<()> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        if s.tasks.get(task_arn).is_some_and(|t| t.alive) {
            s.stop_reasons
                .insert(task_arn.to_owned(), reason.to_owned());
        }
        stop(&mut s, task_arn);
        Ok(())
    }

    async fn other_tasks_on(&self, _cluster_arn: &str, _container_instance: &str) -> Result<usize> {
        tokio::task::yield_now().await;
        Ok(0) // the fake cluster runs only our tasks
    }

    async fn tasks_started_by(
        &self,
        _cluster_arn: &str,
        started_by: &str,
        container_instance: Option<&str>,
    ) -> Result<Vec<TaskObservation>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(s.tasks
            .values()
            .filter(|t| t.alive && t.started_by == started_by)
            .filter(|t| container_instance.is_none_or(|h| t.host == h))
            .filter_map(FakeTask::observation)
            .collect())
    }

    async fn tasks_of_family(
        &self,
        _cluster_arn: &str,
        family: &str,
    ) -> Result<Vec<TaskObservation>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(s.tasks
            .values()
            .filter(|t| t.alive)
            .filter(|t| crate::domain::task::family_of(&t.task_definition) == family)
            .filter_map(FakeTask::observation)
            .collect())
    }

    async fn describe_tasks(
        &self,
        _cluster_arn: &str,
        arns: &[String],
    ) -> Result<Vec<TaskObservation>> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(arns
            .iter()
            .filter_map(|a| s.tasks.get(a))
            .filter_map(FakeTask::observation)
            .collect())
    }
}

/// CloudWatch alarms in memory: their states, set by the test; every read counted (one
/// `DescribeAlarms` per 100 names, as the adapter calls it).
#[derive(Default)]
pub struct FakeAlarms {
    states: Mutex<BTreeMap<String, crate::domain::AlarmState>>,
    calls: Mutex<usize>,
}

impl FakeAlarms {
    /// Creates the alarm, or sets its state.
    pub fn set(&self, name: &str, state: crate::domain::AlarmState) {
        self.states.lock().unwrap().insert(name.to_owned(), state);
    }
    pub fn delete(&self, name: &str) {
        self.states.lock().unwrap().remove(name);
    }
    /// `DescribeAlarms` calls so far.
    pub fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

#[async_trait]
impl crate::ports::Alarms for FakeAlarms {
    async fn states(&self, names: &[String]) -> Result<Vec<(String, crate::domain::AlarmState)>> {
        tokio::task::yield_now().await;
        *self.calls.lock().unwrap() += names.len().div_ceil(crate::limits::DESCRIBE_ALARMS_NAMES);
        let s = self.states.lock().unwrap();
        Ok(names
            .iter()
            .filter_map(|n| s.get(n).map(|st| (n.clone(), *st)))
            .collect())
    }
}

/// The wake-up queue in memory: what was scheduled, and with what delay.
#[derive(Default)]
pub struct FakeWakeup {
    sent: Mutex<Vec<(crate::ports::WakeupMessage, u32)>>,
}

impl FakeWakeup {
    /// The messages scheduled so far, taken.
    pub fn take(&self) -> Vec<(crate::ports::WakeupMessage, u32)> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

#[async_trait]
impl crate::ports::Wakeup for FakeWakeup {
    async fn wake_later(
        &self,
        message: &crate::ports::WakeupMessage,
        delay_secs: u32,
    ) -> Result<()> {
        tokio::task::yield_now().await;
        self.sent
            .lock()
            .unwrap()
            .push((message.clone(), delay_secs));
        Ok(())
    }
}
