//! Carrying one deployment forward: claim the free hosts, replace old-revision tasks within
//! `maxUnavailable`, trip the circuit breaker, close, and roll back. `step` is idempotent and
//! re-reads what it decides on, so the stream (every change of the deployment's counters), the
//! wake-ups and the reconciler (a backstop) can all call it at any time, any number of times.
//!
//! A rollout goes in waves: a step reads the cluster (List + DescribeContainerInstances, 100 a
//! call) and replaces up to `maxUnavailable` hosts only when no host of the previous wave is still
//! on its way (`pendingCount` 0). The steps in between — one per batch of counter changes — cost
//! one read of the deployment and nothing else: at 5,000 hosts a read of the cluster is 100 ECS
//! calls, so reading it per counter change would be a storm against ECS's rate limits.

use crate::domain::{alarm_gate, Deployment, DeploymentStatus, DeploymentTransition, Slot};
use crate::error::Result;
use crate::executor::{Executor, Report};
use crate::metrics;
use crate::ports::{Alarms, Cluster, Store};
use crate::services::fleet::Fleet;
use crate::work::Work;

/// What a step did, for logs and tests.
#[derive(Debug, Default)]
pub struct Stepped {
    pub report: Report,
    /// Hosts whose old task this step began to replace.
    pub replacing: usize,
    pub halted: bool,
    pub finished: Option<DeploymentStatus>,
    /// The automatic rollback this step started.
    pub rollback: Option<String>,
    /// Its canary hosts were replaced and baked (it now waits for promotion, or promoted itself).
    pub canary_done: bool,
    /// Its alarm gates were read and passed, and it is still in progress: the next look at them
    /// is due (the deployer schedules it).
    pub gated: bool,
    /// Hosts that could not take the old and the new task at once, replaced stop-then-start
    /// instead, with why.
    pub surge_fallbacks: Vec<(String, String)>,
}

/// Moves deployment `id` of `environment` as far as it can go now, for a caller that reads no
/// alarms: a deployment its alarms gate halts (a gate that cannot be read is not ignored).
pub async fn step<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    environment: &str,
    id: &str,
    now_ms: i64,
) -> Result<Stepped> {
    step_with(store, cluster, None, environment, id, now_ms).await
}

/// Moves deployment `id` of `environment` as far as it can go now. First its alarm gates, if
/// its strategy names alarms (`Deployment::alarm_gated`): read once through `alarms`, one in
/// ALARM (or one that cannot be read) halts it, and the breaker's path takes over: no new host
/// is touched, it closes as failed once the hosts in flight settle, and rolls back.
#[tracing::instrument(skip_all, fields(environment = %environment, deployment = %id))]
pub async fn step_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    alarms: Option<&dyn Alarms>,
    environment: &str,
    id: &str,
    now_ms: i64,
) -> Result<Stepped> {
    let mut out = Stepped::default();
    let Some(mut dep) = store.get_deployment(environment, id).await? else {
        return Ok(out);
    };
    if dep.alarm_gated() {
        match gate(alarms, &dep).await? {
            Some(reason) => {
                out.halted = store.halt_deployment(environment, id, &reason).await?;
                tracing::warn!(environment, deployment = id, %reason, "deployment halted by its alarm gate");
                dep = store.get_deployment(environment, id).await?.unwrap_or(dep);
            }
            None => out.gated = true,
        }
    }
    match dep.status {
        // Paused: hosts in flight finish by their own events; no new host is touched.
        DeploymentStatus::Pending if dep.paused_at.is_some() => {}
        // A wave still in flight: its hosts settle first (their events step the deployment).
        DeploymentStatus::Pending if dep.pending_count > 0 => {}
        DeploymentStatus::Pending => advance(store, cluster, &dep, now_ms, &mut out).await?,
        // The canary baked: the rest waits for `promote` (or `cancel`).
        DeploymentStatus::AwaitingPromotion => {}
        DeploymentStatus::Running => {
            if dep.halted_reason.is_some() {
                release_failed_hosts(store, cluster, &dep, now_ms).await?;
            }
            let dep = store.get_deployment(environment, id).await?.unwrap_or(dep);
            out.finished = close(store, &dep).await?;
            if out.finished.is_some() {
                let closed = store.get_deployment(environment, id).await?.unwrap_or(dep);
                out.rollback = rollback_if_needed(store, &closed).await?;
            }
        }
        DeploymentStatus::Failed => out.rollback = rollback_if_needed(store, &dep).await?,
        DeploymentStatus::Completed | DeploymentStatus::Cancelled => {}
    }
    out.gated &= out.finished.is_none();
    Ok(out)
}

/// Why a deployment its alarms gate must halt now, if it must: its alarms read once (one
/// `DescribeAlarms`, a strategy names at most 10), the verdict the domain's. A read that will
/// not succeed by retrying (access denied) halts it too; one that may (throttling) fails the step,
/// which its trigger retries.
async fn gate(alarms: Option<&dyn Alarms>, dep: &Deployment) -> Result<Option<String>> {
    let names = &dep.spec.update_strategy.alarms;
    let Some(alarms) = alarms else {
        return Ok(Some(
            "alarm gates cannot be read: this caller has no CloudWatch client".to_owned(),
        ));
    };
    match alarms.states(names).await {
        Ok(states) => Ok(alarm_gate::halt_reason(names, &states)),
        Err(e) => match alarm_gate::unreadable_reason(&e) {
            Some(reason) => Ok(Some(reason)),
            None => Err(e),
        },
    }
}

/// A pending deployment between waves: claim every free eligible host and count those already on
/// the revision; mark bakes that are done; then, unless the breaker trips, replace the next wave:
/// as many old-revision hosts as the budget allows. The wave that leaves none to replace marks it
/// `running`; it closes when the last host is healthy.
async fn advance<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    dep: &Deployment,
    now_ms: i64,
    out: &mut Stepped,
) -> Result<()> {
    let target = dep.target();
    let hosts = cluster.active_hosts(&dep.cluster_arn).await?;
    let slots = store.slots_of(&dep.environment_name).await?;
    let neighbours = slots_of_all(store, &dep.spec.depends_on).await?;
    let fleet = Fleet::new(&target, hosts, slots, &neighbours);
    // The budget and the breaker count the hosts the revision places its daemon on.
    let eligible = fleet.desired(&target);
    // Not again where its surge already failed (the old task runs on; the breaker counted it).
    let candidates: Vec<_> = fleet
        .replacements(&target)
        .into_iter()
        .filter(|(slot, _)| {
            !(slot.failed_in.as_deref() == Some(dep.id.as_str()) && slot.last_failure.is_some())
        })
        .collect();
    // A canary replaces its few hosts only: free and joining hosts keep getting the revision
    // deployed before it (the environment's target, by events and the reconciler).
    let canary = dep.in_canary();
    if !canary {
        out.report = Executor::at(store, cluster, now_ms)
            .run(fleet.converge(&target, true))
            .await?;
    }

    if dep.breaker_tripped(eligible) {
        let reason = format!(
            "circuit breaker: {} of {eligible} hosts failed revision {} (threshold {})",
            dep.failed_hosts,
            dep.revision,
            dep.spec.update_strategy.failure_threshold.of(eligible)
        );
        out.halted = store
            .halt_deployment(&dep.environment_name, &dep.id, &reason)
            .await?;
        tracing::warn!(environment = %dep.environment_name, deployment = %dep.id, %reason, "deployment halted");
        release_failed_hosts(store, cluster, dep, now_ms).await?;
        return Ok(());
    }
    if candidates.is_empty() {
        // A launch of what this revision replaces may still be in flight (a restart, a join
        // just before the deployment): its task's first event nudges the deployment, which then
        // replaces it. Until then, the deployment is not done claiming its hosts.
        if fleet.launching_to_replace(&target) == 0 {
            store
                .mark_deployment_running(&dep.environment_name, &dep.id)
                .await?;
        }
        return Ok(());
    }
    // The budget, against the counters as the claims above left them: hosts on their way are
    // pending; those being replaced by surge still run their old task (not unavailable).
    let fresh = store
        .get_deployment(&dep.environment_name, &dep.id)
        .await?
        .unwrap_or_else(|| dep.clone());
    let strategy = &dep.spec.update_strategy;
    let surge_max = strategy.max_surge_of(eligible);
    let surging = fleet.surging(&dep.id);
    let down = (fresh.pending_count.max(0) as usize).saturating_sub(surging);
    // With surge, stop-then-start is the fallback for hosts that cannot take both tasks: one at
    // a time at least, or such a host could never be replaced.
    let unavailable_max = match surge_max {
        0 => strategy.max_unavailable_of(eligible),
        _ => strategy.max_unavailable_of(eligible).max(1),
    };
    let cap = (surge_max + unavailable_max) as i64;
    // Every candidate, before a canary holds some back: the wave that takes the last one ends it.
    let candidates_left = candidates.len();
    let mut candidates = candidates;
    if canary {
        let limit = dep.canary_hosts(eligible);
        let touched = fleet.tracked_by(&dep.id);
        if touched >= limit {
            // Its hosts replaced, and (this step runs once none is pending) baked.
            out.canary_done = true;
            return canary_done(store, dep).await;
        }
        candidates.truncate(limit - touched);
    }
    let (mut work, fallbacks) = fleet.replacement_work(
        &target,
        candidates,
        (surge_max > 0).then(|| surge_max.saturating_sub(surging)),
        unavailable_max.saturating_sub(down),
        Some(cap),
    );
    for (host, why) in &fallbacks {
        tracing::warn!(environment = %dep.environment_name, deployment = %dep.id, %host, %why,
            "cannot run both tasks on this host: replaced stop-then-start");
    }
    out.surge_fallbacks = fallbacks;
    for w in &mut work {
        w.live = crate::work::Live::Is(Some(dep.id.clone()));
    }
    let last_wave = work.len() == candidates_left && fleet.launching_to_replace(&target) == 0;
    out.replacing = work.len();
    if !work.is_empty() {
        let r = Executor::at(store, cluster, now_ms).run(work).await?;
        out.replacing = r.stopped.len() + r.started.len();
        out.report.stopped.extend(r.stopped);
        out.report.started.extend(r.started);
        out.report.written += r.written;
        out.report.over_budget += r.over_budget;
    }
    // Every host left is in this wave, and each replacement was made: no need to read the cluster
    // once more to find nothing; the deployment closes when the wave settles.
    if last_wave && out.replacing == candidates_left {
        store
            .mark_deployment_running(&dep.environment_name, &dep.id)
            .await?;
    }
    tracing::info!(
        environment = %dep.environment_name,
        deployment = %dep.id,
        eligible,
        max_unavailable = unavailable_max,
        max_surge = surge_max,
        pending = fresh.pending_count,
        replacing = out.replacing,
        started = out.report.started.len(),
        "deployment advanced"
    );
    Ok(())
}

/// The canary baked: promote it by itself (`autoPromote`) or wait for `promote`.
async fn canary_done<S: Store + ?Sized>(store: &S, dep: &Deployment) -> Result<()> {
    if dep.spec.update_strategy.auto_promote {
        match crate::services::deployments_api::promote(store, &dep.environment_name, &dep.id).await
        {
            Ok(_) | Err(crate::error::Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    } else if store
        .transition_deployment(
            &dep.environment_name,
            &dep.id,
            &DeploymentTransition::await_promotion(),
        )
        .await?
    {
        tracing::info!(environment = %dep.environment_name, deployment = %dep.id, "canary baked: awaiting promotion");
    }
    Ok(())
}

/// A halted deployment waits only for the hosts still on their way: the hosts that failed its
/// revision stop counting as pending (their failure is already in `failedHosts`).
async fn release_failed_hosts<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    dep: &Deployment,
    now_ms: i64,
) -> Result<()> {
    let work: Vec<Work> = store
        .slots_of(&dep.environment_name)
        .await?
        .iter()
        .filter(|s| s.tracked_by.as_deref() == Some(dep.id.as_str()) && s.failed_in == s.tracked_by)
        .map(|slot| Work::untrack(slot, &dep.id))
        .collect();
    if !work.is_empty() {
        Executor::at(store, cluster, now_ms).run(work).await?;
    }
    Ok(())
}

/// Every slot of these environments (the ones a daemon depends on: how they stand on each host).
pub async fn slots_of_all<S: Store + ?Sized>(
    store: &S,
    environments: &[String],
) -> Result<Vec<Slot>> {
    let mut out = Vec::new();
    for e in environments {
        out.extend(store.slots_of(e).await?);
    }
    Ok(out)
}

/// Closes a running deployment once no host is still on its way.
pub async fn close<S: Store + ?Sized>(
    store: &S,
    dep: &Deployment,
) -> Result<Option<DeploymentStatus>> {
    let Some(outcome) = dep.outcome() else {
        return Ok(None);
    };
    let closed = store
        .finish_deployment(dep, outcome, Deployment::health_after(outcome))
        .await?;
    if closed {
        tracing::info!(environment = %dep.environment_name, deployment = %dep.id, outcome = ?outcome, "deployment finished");
        // Once per deployment: only the writer whose conditional close succeeded gets here.
        metrics::count_for(
            &dep.environment_name,
            if outcome == DeploymentStatus::Failed {
                metrics::DEPLOYMENTS_FAILED
            } else {
                metrics::DEPLOYMENTS_COMPLETED
            },
            1,
        );
        if let Ok(created) = chrono::DateTime::parse_from_rfc3339(&dep.created_at) {
            let ms = chrono::Utc::now()
                .signed_duration_since(created)
                .num_milliseconds();
            metrics::duration_ms_for(
                &dep.environment_name,
                metrics::DEPLOYMENT_DURATION,
                ms as f64,
            );
        }
    }
    Ok(closed.then_some(outcome))
}

/// After the breaker failed a deployment: deploy the revision the environment ran before, unless
/// the operator said not to, it is a rollback itself, or something was deployed since.
pub async fn rollback_if_needed<S: Store + ?Sized>(
    store: &S,
    dep: &Deployment,
) -> Result<Option<String>> {
    let wanted = dep.status == DeploymentStatus::Failed
        && dep.halted_reason.is_some()
        && dep.spec.update_strategy.auto_rollback
        && dep.rollback_of.is_none();
    let (true, Some(previous)) = (wanted, dep.previous_revision) else {
        return Ok(None);
    };
    let Some(env) = store.get_environment(&dep.environment_name).await? else {
        return Ok(None);
    };
    let deployed = env.deployed.as_ref();
    let ours = deployed.map(|d| d.deployment_id.as_str()) == Some(dep.id.as_str());
    // A canary halted before its promotion: the environment still deploys what ran before it
    // (by a deployment older than the canary), and the canary's hosts go back to that.
    let canary = dep.in_canary()
        && deployed.is_some_and(|d| d.deployment_id < dep.id && d.revision == previous);
    if env.active_deployment_id.is_some() || !(ours || canary) {
        return Ok(None); // already rolled back, or the operator deployed something else
    }
    let Some(revision) = store.get_revision(&env.name, previous).await? else {
        return Ok(None);
    };
    match crate::services::deployments_api::begin(store, &env, &revision, Some(dep.id.clone()))
        .await
    {
        Ok(rollback) => {
            tracing::warn!(environment = %env.name, failed = %dep.id, rollback = %rollback.id, revision = previous, "automatic rollback started");
            Ok(Some(rollback.id))
        }
        // Someone else changed the environment first; whoever did decides what runs.
        Err(crate::error::Error::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
