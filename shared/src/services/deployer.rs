//! The table's stream → roll out a new deployment, close a finished one, tear down a deleted
//! environment. Idempotent: the stream redelivers a batch until it succeeds, so a Lambda that dies
//! half-way loses no work, and a repeated run finds its claims already written.

use std::collections::BTreeSet;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};

use crate::domain::{Deployment, DeploymentStatus, Environment, EnvironmentStatus};
use crate::error::Result;
use crate::executor::{Executor, Report};
use crate::planner::Target;
use crate::ports::{Cluster, Store};
use crate::services::reconciler::converge_work;

/// What one stream record asks of the deployer.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Rollout(Deployment),
    Close(Deployment),
    Teardown(Environment),
}

/// The jobs of a batch, in order, the latest image of each item only (a batch often carries
/// several counter updates of one deployment).
pub fn jobs(event: &Event) -> Result<Vec<Job>> {
    let mut out: Vec<(String, Job)> = Vec::new();
    for record in &event.records {
        let Some((key, job)) = job_of(record)? else {
            continue;
        };
        out.retain(|(k, j)| k != &key || matches!(j, Job::Rollout(_)));
        out.push((key, job));
    }
    Ok(out.into_iter().map(|(_, j)| j).collect())
}

fn job_of(record: &EventRecord) -> Result<Option<(String, Job)>> {
    let image = &record.change.new_image;
    let sk = match record.change.keys.get("sk") {
        Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
        _ => return Ok(None),
    };
    if image.is_empty() {
        return Ok(None); // REMOVE
    }
    let pk = match record.change.keys.get("pk") {
        Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
        _ => return Ok(None),
    };
    let key = format!("{pk}/{sk}");
    let parse = |what: &str, e: serde_dynamo::Error| {
        crate::error::Error::Internal(format!("stream record {what}: {e}"))
    };
    if sk.starts_with("DEP#") {
        let dep: Deployment =
            serde_dynamo::from_item(image.clone()).map_err(|e| parse("deployment", e))?;
        return Ok(Some(match dep.status {
            DeploymentStatus::Pending => (key, Job::Rollout(dep)),
            _ => (key, Job::Close(dep)),
        }));
    }
    if sk == "ENV" {
        let env: Environment =
            serde_dynamo::from_item(image.clone()).map_err(|e| parse("environment", e))?;
        if env.status == EnvironmentStatus::Deleting {
            return Ok(Some((key, Job::Teardown(env))));
        }
    }
    Ok(None)
}

pub async fn handle<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    event: &Event,
) -> Result<()> {
    for job in jobs(event)? {
        match job {
            Job::Rollout(dep) => {
                rollout(store, cluster, &dep).await?;
            }
            Job::Close(dep) => {
                close(store, &dep).await?;
            }
            Job::Teardown(env) => teardown(store, cluster, &env).await?,
        }
    }
    Ok(())
}

/// Claims every eligible host for the deployment and starts its task (≤ 10 hosts a StartTask),
/// then marks it running; task events carry it to completed.
pub async fn rollout<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    dep: &Deployment,
) -> Result<Report> {
    // A redelivered record may be old news: act only while the deployment is still pending.
    match store.get_deployment(&dep.environment_name, &dep.id).await? {
        Some(d) if d.status == DeploymentStatus::Pending => {}
        _ => return Ok(Report::default()),
    }
    let target = Target {
        environment: dep.environment_name.clone(),
        cluster_arn: dep.cluster_arn.clone(),
        task_definition: dep.task_definition.clone(),
        deployment_id: dep.id.clone(),
        tracking: Some(dep.id.clone()),
    };
    let hosts = cluster.active_hosts(&dep.cluster_arn).await?;
    let slots = store.slots_of(&dep.environment_name).await?;
    let report = Executor::new(store, cluster)
        .run(converge_work(&target, hosts, slots))
        .await?;
    store
        .mark_deployment_running(&dep.environment_name, &dep.id)
        .await?;
    tracing::info!(
        environment = %dep.environment_name,
        deployment = %dep.id,
        started = report.started.len(),
        refused = report.start_failures.len(),
        "deployment rolled out"
    );
    Ok(report)
}

/// Closes a running deployment once no host is still on its way.
pub async fn close<S: Store + ?Sized>(
    store: &S,
    dep: &Deployment,
) -> Result<Option<DeploymentStatus>> {
    let Some(outcome) = dep.outcome() else {
        return Ok(None);
    };
    let closed = store.finish_deployment(dep, outcome).await?;
    if closed {
        tracing::info!(environment = %dep.environment_name, deployment = %dep.id, outcome = ?outcome, "deployment finished");
    }
    Ok(closed.then_some(outcome))
}

/// Stops every task of a deleted environment (those its records name, and any its deployments
/// started that the records missed), then removes its records.
pub async fn teardown<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    env: &Environment,
) -> Result<()> {
    let mut tasks: BTreeSet<String> = store
        .slots_of(&env.name)
        .await?
        .iter()
        .filter_map(|s| s.task.task_arn().map(str::to_owned))
        .collect();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list_deployments(&env.name, 100, token.as_deref())
            .await?;
        for dep in &page.items {
            for t in cluster
                .tasks_started_by(env.cluster_arn(), &dep.id, None)
                .await?
            {
                if t.environment == env.name {
                    tasks.insert(t.task_arn);
                }
            }
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let reason = format!(
        "{}environment deleted",
        crate::domain::task::STOP_REASON_PREFIX
    );
    for task in &tasks {
        if let Err(e) = cluster.stop_task(env.cluster_arn(), task, &reason).await {
            // Already gone is fine; anything else fails the batch so the stream retries the teardown.
            if !matches!(e, crate::error::Error::Aws { ref message, .. } if message.contains("not found") || message.contains("InvalidParameter"))
            {
                return Err(e);
            }
        }
    }
    store.delete_environment_records(&env.name).await?;
    tracing::info!(environment = %env.name, stopped = tasks.len(), "environment torn down");
    Ok(())
}
