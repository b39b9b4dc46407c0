//! Scheduled convergence: for every deployed environment, compare its hosts in ECS with its slots
//! and repair what events missed (lost joins and drains, due restarts, claims of dead writers).

use std::collections::{BTreeSet, HashMap};

use crate::domain::task::{family_of, STOP_REASON_PREFIX};
use crate::domain::{
    Host, HostStatus, Slot, SlotKey, SlotTask, TaskObservation, TaskStatus, UpdateStrategy,
};
use crate::error::Result;
use crate::executor::{Executor, Live, Report, Work};
use crate::metrics;
use crate::planner::Effect;
use crate::planner::{
    claim_expired, needs_replacement, plan_baked, plan_expired_claim, plan_host, plan_replace,
    plan_task, Target, Transition, CLAIM_LEASE_MS,
};
use crate::ports::{Cluster, Store};
use crate::services::hosts_once::HostsReadOnce;
use crate::services::rolling;

/// Work for every ACTIVE host of the cluster (and its slot, if any).
pub fn converge_work(target: &Target, hosts: Vec<Host>, slots: Vec<Slot>) -> Vec<Work> {
    let mut by_host: HashMap<String, Slot> = slots
        .into_iter()
        .map(|s| (s.host.container_instance_arn.clone(), s))
        .collect();
    hosts
        .into_iter()
        .map(|host| {
            let target = target.clone();
            Work {
                key: SlotKey {
                    environment: target.environment.clone(),
                    container_instance_arn: host.container_instance_arn.clone(),
                },
                current: by_host.remove(&host.container_instance_arn),
                live: Live::Is(target.tracking.clone()),
                pending_cap: None,
                // Nothing to change about the host: maybe its new task has now baked long enough.
                decide: Box::new(move |slot, claim, now| {
                    let t = plan_host(Some(&target), slot, Some(&host), now, claim);
                    match slot {
                        Some(s) if t.is_nothing() => plan_baked(s, now),
                        _ => t,
                    }
                }),
            }
        })
        .collect()
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub environments: usize,
    pub started: usize,
    pub stopped: usize,
    pub expired_claims: usize,
    pub verified: usize,
    /// Deployments in progress it stepped (a backstop for lost or stalled stream records).
    pub deployments_stepped: usize,
}

pub async fn reconcile_all<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    now_ms: i64,
) -> Result<Summary> {
    let cluster = &HostsReadOnce::new(cluster);
    let mut summary = Summary::default();
    let mut token: Option<String> = None;
    loop {
        let page = store.list_environments(None, 100, token.as_deref()).await?;
        for env in &page.items {
            if let Some(id) = &env.active_deployment_id {
                rolling::step(store, cluster, &env.name, id, now_ms).await?;
                summary.deployments_stepped += 1;
            }
            let Some(target) = env.target() else { continue };
            summary.environments += 1;
            let r = reconcile_with(store, cluster, &target, &env.update_strategy, now_ms).await?;
            summary.started += r.report.started.len();
            summary.stopped += r.report.stopped.len();
            summary.expired_claims += r.expired_claims;
            summary.verified += r.verified;
        }
        token = page.next_token;
        if token.is_none() {
            metrics::count(
                metrics::DRIFT_REPAIRED,
                summary.started + summary.stopped + summary.expired_claims,
            );
            return Ok(summary);
        }
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

pub async fn reconcile_environment<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    target: &Target,
    now_ms: i64,
) -> Result<Reconciled> {
    reconcile_with(store, cluster, target, &UpdateStrategy::default(), now_ms).await
}

/// Reconciles one environment; `strategy` bounds the wrong-revision tasks it replaces at once.
#[tracing::instrument(skip_all, fields(environment = %target.environment))]
pub async fn reconcile_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    target: &Target,
    strategy: &UpdateStrategy,
    now_ms: i64,
) -> Result<Reconciled> {
    let mut out = Reconciled::default();
    let mut slots = store.slots_of(&target.environment).await?;

    // 1. What ECS runs for us: the live tasks of the task definition families our slots and
    //    the target name, whoever started them (ListTasks pages of 100 by family, DescribeTasks
    //    by 100; tasks of other groups are not ours and are left out).
    let families: BTreeSet<&str> = slots
        .iter()
        .filter_map(|s| s.task_definition.as_deref())
        .chain([target.task_definition.as_str()])
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
                let stop = Effect::Stop {
                    task_arn: task_arn.clone(),
                    reason: format!("{STOP_REASON_PREFIX}stop requested again"),
                };
                work.push(Work::on_slot(
                    slot,
                    Transition::nothing(),
                    move |_, _, _| Transition {
                        next: None,
                        effect: stop.clone(),
                    },
                ));
                continue;
            }
        }
        if claim_expired(slot, now_ms) {
            out.expired_claims += 1;
            let found = observations
                .iter()
                .find(|t| !t.last_status.is_stopping())
                .cloned();
            work.push(Work::on_slot(
                slot,
                Transition::nothing(),
                move |cur, _, now| plan_expired_claim(cur, found.as_ref(), now),
            ));
            continue;
        }
        out.verified += observations.len();
        for obs in observations {
            work.push(Work::on_slot(
                slot,
                Transition::nothing(),
                move |cur, claim, now| plan_task(cur, &obs, now, claim),
            ));
        }
    }
    // Live tasks on hosts we have no record of: adopt one, stop the rest.
    for (host, tasks) in live {
        if seen_hosts.contains(&host) {
            continue;
        }
        let unknown = Host {
            container_instance_arn: host.clone(),
            status: HostStatus::Active,
            agent_connected: true,
            version: i64::MIN,
            other_tasks: None,
        };
        let mut fresh = Slot::new(&target.environment, &target.cluster_arn, unknown);
        fresh.deployment_id = Some(target.deployment_id.clone());
        fresh.task_definition = Some(target.task_definition.clone());
        out.verified += tasks.len();
        for obs in tasks {
            let fresh = fresh.clone();
            work.push(Work {
                key: fresh.key(),
                current: None,
                live: Live::Unknown,
                pending_cap: None,
                decide: Box::new(move |cur, claim, now| {
                    plan_task(cur.unwrap_or(&fresh), &obs, now, claim)
                }),
            });
        }
    }
    if !work.is_empty() {
        // One decision per slot per run: further disagreements wait for the next run.
        let mut per_slot = BTreeSet::new();
        work.retain(|w| per_slot.insert(w.key.clone()));
        let r = Executor::at(store, cluster, now_ms).run(work).await?;
        merge(&mut out.report, r);
        slots = store.slots_of(&target.environment).await?;
    }

    // 3. Every ACTIVE host: claim and start where nothing runs (lost joins, due restarts); and
    //    the hosts we still think eligible, or still running our task, that left the ACTIVE list
    //    (lost drain or deregistration): described, so the daemon leaves them.
    let mut hosts = cluster.active_hosts(&target.cluster_arn).await?;
    let active: BTreeSet<&str> = hosts
        .iter()
        .map(|h| h.container_instance_arn.as_str())
        .collect();
    let left: Vec<String> = slots
        .iter()
        .filter(|s| s.host.is_eligible() || s.task.task_arn().is_some())
        .map(|s| s.host.container_instance_arn.clone())
        .filter(|h| !active.contains(h.as_str()))
        .collect();
    if !left.is_empty() {
        for mut h in cluster.describe_hosts(&target.cluster_arn, &left).await? {
            // Drain-last, as instance events do it: the daemon waits for the other tasks.
            if h.status == HostStatus::Draining {
                h.other_tasks = Some(
                    cluster
                        .other_tasks_on(&target.cluster_arn, &h.container_instance_arn)
                        .await?,
                );
            }
            hosts.push(h);
        }
    }
    let wrong = wrong_revision_work(target, strategy, &hosts, &slots);
    let r = Executor::at(store, cluster, now_ms)
        .run(converge_work(target, hosts, slots))
        .await?;
    merge(&mut out.report, r);

    // 4. Outside a deployment, tasks of another revision (a host that was away during the
    //    rollout, a task started by hand) are replaced like a rolling update would, a few per run.
    out.wrong_revision = wrong.len();
    if !wrong.is_empty() {
        let r = Executor::at(store, cluster, now_ms).run(wrong).await?;
        merge(&mut out.report, r);
    }
    Ok(out)
}

/// Replacements of wrong-revision tasks, at most `maxUnavailable` minus the hosts already without
/// a healthy daemon (the reconciler runs one at a time, so this budget needs no counter).
fn wrong_revision_work(
    target: &Target,
    strategy: &UpdateStrategy,
    hosts: &[Host],
    slots: &[Slot],
) -> Vec<Work> {
    if target.tracking.is_some() {
        return Vec::new(); // the deployment in progress does this, within its own budget
    }
    let eligible: BTreeSet<&str> = hosts
        .iter()
        .filter(|h| h.is_eligible())
        .map(|h| h.container_instance_arn.as_str())
        .collect();
    let on_eligible = |s: &&Slot| eligible.contains(s.host.container_instance_arn.as_str());
    let unavailable = eligible.len()
        - slots
            .iter()
            .filter(on_eligible)
            .filter(|s| s.is_available())
            .count();
    let room = strategy
        .max_unavailable_of(eligible.len())
        .saturating_sub(unavailable);
    slots
        .iter()
        .filter(on_eligible)
        .filter(|s| s.is_available() && needs_replacement(target, s))
        .take(room)
        .map(|slot| {
            let target = target.clone();
            Work::on_slot(slot, Transition::nothing(), move |cur, _, _| {
                plan_replace(&target, cur)
            })
        })
        .collect()
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
        started_by: slot.deployment_id.clone(),
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

fn merge(into: &mut Report, r: Report) {
    into.written += r.written;
    into.started.extend(r.started);
    into.start_failures.extend(r.start_failures);
    into.stopped.extend(r.stopped);
    into.conflicts += r.conflicts;
    into.gave_up += r.gave_up;
    into.over_budget += r.over_budget;
    into.throttled += r.throttled;
}
