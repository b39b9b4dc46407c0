//! Scheduled convergence, a cluster at a time: step its deployments in progress, then for every
//! deployed environment on it compare its hosts and tasks in ECS with its slots and repair what
//! events missed (lost joins and drains, due restarts, claims of dead writers, tasks started by
//! hand, hosts whose placement changed unseen).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::clock;
use crate::domain::task::family_of;
use crate::domain::{
    Environment, HostState, HostStatus, Order, ReconcileFailure, Slot, SlotTask, Target,
    TaskObservation, TaskStatus, UpdateStrategy,
};
use crate::error::{Error, Result};
use crate::executor::{Executor, Report};
use crate::metrics;
use crate::planner::{claim_expired, CLAIM_LEASE_MS};
use crate::ports::{Alarms, Cluster, Store};
use crate::services::fleet::Fleet;
use crate::services::hosts_once::HostsReadOnce;
use crate::services::rolling;
use crate::work::Work;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub environments: usize,
    pub started: usize,
    pub stopped: usize,
    pub expired_claims: usize,
    pub verified: usize,
    /// Deployments in progress it stepped (a backstop for lost or stalled stream records).
    pub deployments_stepped: usize,
    /// Environments it could not repair, and why; every other one was repaired all the same.
    pub failed: Vec<Failed>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failed {
    pub environment: String,
    pub error: String,
    /// Retrying soon would fail the same way (a deleted cluster, a denied call).
    pub lasting: bool,
}

impl Summary {
    pub fn absorb(&mut self, s: Summary) {
        self.environments += s.environments;
        self.started += s.started;
        self.stopped += s.stopped;
        self.expired_claims += s.expired_claims;
        self.verified += s.verified;
        self.deployments_stepped += s.deployments_stepped;
        self.failed.extend(s.failed);
    }

    /// Some environment failed for a reason that may pass: the run is worth retrying.
    pub fn worth_retrying(&self) -> bool {
        self.failed.iter().any(|f| !f.lasting)
    }
}

/// Every cluster in turn, in this one invocation (the scheduled run fans out one message per
/// cluster instead: `reconcile_queue`); a cluster that fails does not stop the others. Reads no
/// alarms: a deployment its alarms gate halts (`reconcile_all_with` reads them).
pub async fn reconcile_all<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    now_ms: i64,
) -> Result<Summary> {
    reconcile_all_with(store, cluster, None, now_ms).await
}

/// `reconcile_all`, reading the alarms that gate the deployments it steps through `alarms`.
pub async fn reconcile_all_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    alarms: Option<&dyn Alarms>,
    now_ms: i64,
) -> Result<Summary> {
    let mut summary = Summary::default();
    for envs in environments_by_cluster(store).await?.values() {
        summary.absorb(reconcile_cluster(store, cluster, alarms, envs, now_ms).await);
    }
    Ok(summary)
}

/// Every environment, by cluster ARN.
pub async fn environments_by_cluster<S: Store + ?Sized>(
    store: &S,
) -> Result<BTreeMap<String, Vec<Environment>>> {
    let mut by_cluster: BTreeMap<String, Vec<Environment>> = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list_environments(None, 100, token.as_deref()).await?;
        for env in page.items {
            by_cluster
                .entry(env.cluster_arn().to_owned())
                .or_default()
                .push(env);
        }
        token = page.next_token;
        if token.is_none() {
            return Ok(by_cluster);
        }
    }
}

/// One cluster's environments: the hosts are read from ECS once for all of them, and each sees
/// the others' slots (the order between daemons on a host). Each environment fails alone: its
/// error is recorded on it (`reconcile_failure`), logged and counted, and the others go on.
pub async fn reconcile_cluster<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    alarms: Option<&dyn Alarms>,
    envs: &[Environment],
    now_ms: i64,
) -> Summary {
    let cluster = &HostsReadOnce::new(cluster);
    let mut summary = Summary::default();
    let mut errors: BTreeMap<String, Error> = BTreeMap::new();
    // A deleted cluster lists no hosts and no tasks (as good as empty) until it is gone for
    // good; one read tells it apart, and every environment on it is reported.
    if let Some(arn) = envs.first().map(Environment::cluster_arn) {
        if let Err(e) = cluster_is_active(cluster, arn).await {
            for env in envs {
                errors.insert(env.name.clone(), e.clone());
            }
        }
    }
    for env in envs {
        if errors.contains_key(&env.name) {
            continue;
        }
        if let Some(id) = &env.active_deployment_id {
            match rolling::step_with(store, cluster, alarms, &env.name, id, now_ms).await {
                Ok(_) => summary.deployments_stepped += 1,
                Err(e) => {
                    errors.insert(env.name.clone(), e);
                }
            }
        }
    }
    let deployed: Vec<(Target, UpdateStrategy)> = envs
        .iter()
        .filter(|e| !errors.contains_key(&e.name))
        .filter_map(|e| Some((e.target()?, e.spec.update_strategy.clone())))
        .collect();
    let mut slots: HashMap<String, Vec<Slot>> = HashMap::new();
    for (t, _) in &deployed {
        match store.slots_of(&t.environment).await {
            Ok(s) => {
                slots.insert(t.environment.clone(), s);
            }
            Err(e) => {
                errors.insert(t.environment.clone(), e);
            }
        }
    }
    for (target, strategy) in &deployed {
        let Some(own) = slots.remove(&target.environment) else {
            continue;
        };
        summary.environments += 1;
        let neighbours: Vec<Slot> = slots.values().flatten().cloned().collect();
        let r = reconcile_with(
            store,
            cluster,
            target,
            strategy,
            own.clone(),
            &neighbours,
            now_ms,
        )
        .await;
        let now = match r {
            Ok(r) => {
                summary.started += r.report.started.len();
                summary.stopped += r.report.stopped.len();
                summary.expired_claims += r.expired_claims;
                summary.verified += r.verified;
                store.slots_of(&target.environment).await
            }
            Err(e) => {
                errors.insert(target.environment.clone(), e);
                Ok(own)
            }
        };
        // The others see this one's slots as they now are (or as read, when it failed).
        slots.insert(target.environment.clone(), now.unwrap_or_default());
    }
    // DriftRepaired is counted by environment in reconcile_with.
    metrics::count(metrics::RECONCILE_FAILURES, errors.len());
    record_outcomes(store, envs, &errors).await;
    summary.failed = errors
        .into_iter()
        .map(|(environment, e)| Failed {
            environment,
            lasting: e.is_lasting(),
            error: e.to_string(),
        })
        .collect();
    summary
}

async fn cluster_is_active<C: Cluster + ?Sized>(cluster: &C, arn: &str) -> Result<()> {
    match cluster.describe_cluster(arn).await? {
        Some(c) if c.active => Ok(()),
        found => Err(Error::Aws {
            service: "ECS".into(),
            code: "ClusterNotFoundException".into(),
            message: format!(
                "ClusterNotFoundException: cluster {arn} is {}",
                if found.is_some() {
                    "INACTIVE (deleted)"
                } else {
                    "not found"
                }
            ),
        }),
    }
}

/// Each environment's record says whether this run could repair it; written only when that
/// changed (a new failure, another reason, a recovery), so a steady state costs no write.
async fn record_outcomes<S: Store + ?Sized>(
    store: &S,
    envs: &[Environment],
    errors: &BTreeMap<String, Error>,
) {
    let now = clock::now_rfc3339();
    for env in envs {
        let error = errors.get(&env.name);
        if let Some(e) = error {
            tracing::error!(environment = %env.name, cluster = %env.cluster_arn(), error = %e,
                lasting = e.is_lasting(), "reconcile failed for this environment");
        }
        let next = ReconcileFailure::after_run(env.reconcile_failure.as_ref(), error, &now);
        if same_failure(next.as_ref(), env.reconcile_failure.as_ref()) {
            continue;
        }
        // Re-read: the run itself may have changed the record (a deployment it stepped).
        let write = async {
            let Some(mut fresh) = store.get_environment(&env.name).await? else {
                return Ok(());
            };
            let version = fresh.version;
            fresh.reconcile_failure =
                ReconcileFailure::after_run(fresh.reconcile_failure.as_ref(), error, &now);
            store.update_environment(&fresh, version).await
        };
        if let Err(e) = write.await {
            // The next run records it again.
            tracing::warn!(environment = %env.name, error = %e, "reconcile outcome not recorded");
        }
    }
}

fn same_failure(a: Option<&ReconcileFailure>, b: Option<&ReconcileFailure>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.code == b.code && a.reason == b.reason,
        (None, None) => true,
        _ => false,
    }
}

/// What one environment's reconcile did.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub report: Report,
    pub expired_claims: usize,
    /// Slots whose task record disagreed with ECS (a lost event, a task started by hand).
    pub verified: usize,
    /// Wrong-revision tasks it began to replace.
    pub wrong_revision: usize,
}

/// One environment alone (its dependencies' slots read for the order on each host).
pub async fn reconcile_environment<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    target: &Target,
    now_ms: i64,
) -> Result<Reconciled> {
    let slots = store.slots_of(&target.environment).await?;
    let neighbours = rolling::slots_of_all(store, &target.spec.depends_on).await?;
    let strategy = target.spec.update_strategy.clone();
    reconcile_with(
        store,
        cluster,
        target,
        &strategy,
        slots,
        &neighbours,
        now_ms,
    )
    .await
}

/// Reconciles one environment from its `slots` as read; `neighbours` are the other environments'
/// slots on the cluster; `strategy` bounds the wrong-revision tasks it replaces at once.
#[tracing::instrument(skip_all, fields(environment = %target.environment))]
pub async fn reconcile_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    target: &Target,
    strategy: &UpdateStrategy,
    mut slots: Vec<Slot>,
    neighbours: &[Slot],
    now_ms: i64,
) -> Result<Reconciled> {
    let mut out = Reconciled::default();
    let order_at = |host: &str| {
        Order::on_host(
            &target.environment,
            &target.spec.depends_on,
            neighbours
                .iter()
                .filter(|s| s.host.container_instance_arn == host),
        )
    };

    // 1. What ECS runs for us: the live tasks of the task definition families our slots and
    //    the target name, whoever started them (ListTasks pages of 100 by family, DescribeTasks
    //    by 100; tasks of other groups are not ours and are left out).
    let families: BTreeSet<&str> = slots
        .iter()
        .filter_map(|s| s.task_definition())
        .chain([target.spec.task_definition.as_str()])
        .map(family_of)
        .collect();
    let mut live: HashMap<String, Vec<TaskObservation>> = HashMap::new();
    for family in families {
        for t in cluster.tasks_of_family(&target.cluster_arn, family).await? {
            if t.environment == target.environment {
                live.entry(t.container_instance_arn.clone())
                    .or_default()
                    .push(t);
            }
        }
    }

    // Slot tasks those lists did not show (started by an older deployment, or gone): asked for by
    // ARN, so that only a task ECS says has stopped (or forgot) counts as stopped.
    let listed: BTreeSet<&str> = live
        .values()
        .flatten()
        .map(|t| t.task_arn.as_str())
        .collect();
    let unlisted: Vec<String> = slots
        .iter()
        .filter_map(|s| s.task.task_arn())
        .filter(|a| !listed.contains(a))
        .map(str::to_owned)
        .collect();
    if !unlisted.is_empty() {
        for t in cluster
            .describe_tasks(&target.cluster_arn, &unlisted)
            .await?
        {
            if !t.last_status.is_stopped() && !t.desired_status.is_stopped() {
                live.entry(t.container_instance_arn.clone())
                    .or_default()
                    .push(t);
            }
        }
    }

    // 2. Where records and ECS disagree, feed the planner what the lost events would have said.
    let mut work = Vec::new();
    let mut seen_hosts = BTreeSet::new();
    for slot in &slots {
        let host = slot.host.container_instance_arn.clone();
        seen_hosts.insert(host.clone());
        let tasks = live.remove(&host).unwrap_or_default();
        let own_task_runs = slot
            .task
            .task_arn()
            .is_some_and(|arn| tasks.iter().any(|t| t.task_arn == arn));
        let mut observations = lost_stop(slot, &tasks, now_ms)
            .into_iter()
            .chain(lost_running(slot, &tasks))
            .collect::<Vec<_>>();
        observations.extend(
            tasks
                .into_iter()
                .filter(|t| slot.task.task_arn() != Some(t.task_arn.as_str())),
        );
        // We asked ECS to stop it a while ago and it still runs (the StopTask was lost): again.
        if let SlotTask::Stopping { task_arn } = &slot.task {
            if now_ms - slot.updated_at_ms >= CLAIM_LEASE_MS && own_task_runs {
                out.verified += 1;
                work.push(Work::stop_again(slot, task_arn));
                continue;
            }
        }
        if claim_expired(slot, now_ms) {
            out.expired_claims += 1;
            let found = observations
                .iter()
                .find(|t| !t.last_status.is_stopping())
                .cloned();
            work.push(Work::expired_claim(slot, found));
            continue;
        }
        out.verified += observations.len();
        for obs in observations {
            work.push(Work::task(slot, obs, order_at(&host)));
        }
    }
    // Live tasks on hosts we have no record of: adopt one, stop the rest.
    for (host, tasks) in live {
        if seen_hosts.contains(&host) {
            continue;
        }
        let unknown = HostState {
            container_instance_arn: host.clone(),
            status: HostStatus::Active,
            agent_connected: true,
            version: i64::MIN,
            other_tasks: None,
        };
        let fresh = Slot::new(&target.environment, &target.cluster_arn, unknown);
        out.verified += tasks.len();
        for obs in tasks {
            work.push(Work::task_without_record(fresh.clone(), obs));
        }
    }
    if !work.is_empty() {
        // One decision per slot per run: further disagreements wait for the next run.
        let mut per_slot = BTreeSet::new();
        work.retain(|w| per_slot.insert(w.key.clone()));
        let r = Executor::at(store, cluster, now_ms).run(work).await?;
        out.report.absorb(r);
        slots = store.slots_of(&target.environment).await?;
    }

    // 3. Every ACTIVE host as ECS shows it: claim and start where nothing runs (lost joins, due
    //    restarts), stop where the daemon no longer belongs; and the hosts we still think
    //    eligible, or still running our task, that left the ACTIVE list (lost drain or
    //    deregistration): described, so the daemon leaves them.
    let mut hosts = cluster.active_hosts(&target.cluster_arn).await?;
    let active: BTreeSet<String> = hosts.iter().map(|h| h.arn().to_owned()).collect();
    let left: Vec<String> = slots
        .iter()
        .filter(|s| s.host.is_eligible() || s.task.task_arn().is_some())
        .map(|s| s.host.container_instance_arn.clone())
        .filter(|h| !active.contains(h))
        .collect();
    if !left.is_empty() {
        for mut h in cluster.describe_hosts(&target.cluster_arn, &left).await? {
            // Drain-last, as instance events do it: the daemon waits for the other tasks.
            if h.state.status == HostStatus::Draining {
                h.state.other_tasks =
                    Some(cluster.other_tasks_on(&target.cluster_arn, h.arn()).await?);
            }
            hosts.push(h);
        }
    }
    let fleet = Fleet::new(target, hosts, slots, neighbours);
    let wrong = wrong_revision_work(target, strategy, &fleet);
    let r = Executor::at(store, cluster, now_ms)
        .run(fleet.converge(target, true))
        .await?;
    out.report.absorb(r);

    // 4. Outside a deployment, tasks that are not what the revision runs on their host (a host
    //    that was away during the rollout, a task started by hand, a host whose attributes
    //    changed) are replaced like a rolling update would, a few per run.
    out.wrong_revision = wrong.len();
    if !wrong.is_empty() {
        let r = Executor::at(store, cluster, now_ms).run(wrong).await?;
        out.report.absorb(r);
    }
    // What the run repaired, by environment (and in total: metrics::count_for).
    metrics::count_for(
        &target.environment,
        metrics::DRIFT_REPAIRED,
        out.report.started.len() + out.report.stopped.len() + out.expired_claims,
    );
    Ok(out)
}

/// Replacements of wrong-revision tasks, at most `maxUnavailable` minus the hosts already without
/// a healthy daemon (one reconcile at a time per cluster: the queue's message group is the
/// cluster, so this budget needs no counter).
fn wrong_revision_work(target: &Target, strategy: &UpdateStrategy, fleet: &Fleet) -> Vec<Work> {
    if target.rollout.is_some() {
        return Vec::new(); // the deployment in progress does this, within its own budget
    }
    let desired = fleet.desired(target);
    let healthy = fleet
        .seats
        .iter()
        .filter(|s| s.host.is_eligible())
        .filter(|s| s.slot.as_ref().is_some_and(Slot::has_healthy_daemon))
        .count();
    let surge_max = strategy.max_surge_of(desired);
    let surging = fleet
        .seats
        .iter()
        .filter(|s| s.slot.as_ref().is_some_and(|s| s.surge.is_some()))
        .count();
    let unavailable_max = match surge_max {
        0 => strategy.max_unavailable_of(desired),
        _ => strategy.max_unavailable_of(desired).max(1),
    };
    let room = unavailable_max.saturating_sub(desired.saturating_sub(healthy));
    let candidates: Vec<_> = fleet
        .replacements(target)
        .into_iter()
        .filter(|(s, _)| s.is_available())
        .collect();
    let surge = (surge_max > 0).then(|| surge_max.saturating_sub(surging));
    fleet
        .replacement_work(target, candidates, surge, room, None)
        .0
}

/// A slot whose recorded task ECS no longer runs, long enough after we recorded it that ECS's
/// list is not just lagging: the STOPPED event was lost. What that event would have said.
fn lost_stop(slot: &Slot, live: &[TaskObservation], now_ms: i64) -> Option<TaskObservation> {
    let arn = slot.task.task_arn()?;
    if live.iter().any(|t| t.task_arn == arn) || now_ms - slot.updated_at_ms < CLAIM_LEASE_MS {
        return None;
    }
    let version = match &slot.task {
        SlotTask::Pending { version, .. } | SlotTask::Running { version, .. } => version + 1,
        _ => 1,
    };
    Some(TaskObservation {
        task_arn: arn.to_owned(),
        container_instance_arn: slot.host.container_instance_arn.clone(),
        environment: slot.environment.clone(),
        started_by: slot.started_by().map(str::to_owned),
        task_definition: slot.task_definition().map(str::to_owned),
        last_status: TaskStatus::Stopped,
        desired_status: TaskStatus::Stopped,
        stopped_reason: Some("task no longer running (found by the reconciler)".to_owned()),
        version,
        ran_for_ms: None,
    })
}

/// A slot still waiting for its task to run while ECS already runs it: the RUNNING event was lost.
fn lost_running(slot: &Slot, live: &[TaskObservation]) -> Option<TaskObservation> {
    let SlotTask::Pending { task_arn, version } = &slot.task else {
        return None;
    };
    let t = live
        .iter()
        .find(|t| &t.task_arn == task_arn && t.last_status == TaskStatus::Running)?;
    // ECS's view now is newer than the PENDING we recorded, whatever version it reports.
    Some(TaskObservation {
        version: t.version.max(version + 1),
        ..t.clone()
    })
}
