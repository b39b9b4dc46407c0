//! The table's stream → carry a deployment forward (`rolling::step`: roll out, replace, close,
//! roll back), tear down a deleted environment. Idempotent: the stream redelivers a batch until it succeeds, so a Lambda that dies
//! half-way loses no work, and a repeated run finds its claims already written.

use std::collections::BTreeSet;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::sqs::SqsEvent;

use crate::domain::{Deployment, DeploymentStatus, Environment, EnvironmentStatus};
use crate::error::Result;
use crate::executor::system_now_ms;
use crate::ports::{Cluster, Store, WakeupMessage};
use crate::services::rolling;

/// What one stream record asks of the deployer.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// A deployment was recorded or changed (status, counters): carry it forward.
    Deployment {
        environment: String,
        id: String,
    },
    Teardown(Box<Environment>),
}

/// The jobs of a batch, once each, in order (a batch often carries many counter updates of one
/// deployment; each step re-reads the deployment, so one step per batch sees them all).
pub fn jobs(event: &Event) -> Result<Vec<Job>> {
    let mut out: Vec<Job> = Vec::new();
    for record in &event.records {
        if let Some(job) = job_of(record)? {
            out.retain(|j| j != &job);
            out.push(job);
        }
    }
    Ok(out)
}

fn job_of(record: &EventRecord) -> Result<Option<Job>> {
    let image = &record.change.new_image;
    let sk = match record.change.keys.get("sk") {
        Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
        _ => return Ok(None),
    };
    if image.is_empty() {
        return Ok(None); // REMOVE
    }
    let parse = |what: &str, e: serde_dynamo::Error| {
        crate::error::Error::Internal(format!("stream record {what}: {e}"))
    };
    if sk.starts_with("DEP#") {
        let dep: Deployment =
            serde_dynamo::from_item(image.clone()).map_err(|e| parse("deployment", e))?;
        if dep.status == DeploymentStatus::Completed || dep.status == DeploymentStatus::Cancelled {
            return Ok(None);
        }
        return Ok(Some(Job::Deployment {
            environment: dep.environment_name,
            id: dep.id,
        }));
    }
    if sk == "ENV" {
        let env: Environment =
            serde_dynamo::from_item(image.clone()).map_err(|e| parse("environment", e))?;
        if env.status == EnvironmentStatus::Deleting {
            return Ok(Some(Job::Teardown(Box::new(env))));
        }
    }
    Ok(None)
}

/// What invokes the deployer: its table's stream, or the wake-up queue.
#[derive(Debug)]
pub enum Trigger {
    Stream(Event),
    Wakeups(SqsEvent),
}

impl<'de> serde::Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        let source = v["Records"][0]["eventSource"].as_str().unwrap_or_default();
        if source == "aws:sqs" {
            serde_json::from_value(v)
                .map(Trigger::Wakeups)
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(v)
                .map(Trigger::Stream)
                .map_err(D::Error::custom)
        }
    }
}

pub async fn handle_trigger<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    trigger: &Trigger,
) -> Result<()> {
    match trigger {
        Trigger::Stream(event) => handle(store, cluster, event).await,
        Trigger::Wakeups(event) => handle_wakeups(store, cluster, event).await,
    }
}

/// Bakes that ended: step each deployment named (once, however many wake-ups name it).
pub async fn handle_wakeups<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    event: &SqsEvent,
) -> Result<()> {
    let mut due: Vec<WakeupMessage> = Vec::new();
    for record in &event.records {
        let body = record.body.as_deref().unwrap_or_default();
        match serde_json::from_str::<WakeupMessage>(body) {
            Ok(m) if !due.contains(&m) => due.push(m),
            Ok(_) => {}
            // A malformed message can never succeed: drop it rather than block the queue.
            Err(e) => tracing::error!(body, error = %e, "not a wake-up message"),
        }
    }
    for m in due {
        rolling::step(
            store,
            cluster,
            &m.environment,
            &m.deployment_id,
            system_now_ms(),
        )
        .await?;
    }
    Ok(())
}

pub async fn handle<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    event: &Event,
) -> Result<()> {
    for job in jobs(event)? {
        match job {
            Job::Deployment { environment, id } => {
                rolling::step(store, cluster, &environment, &id, system_now_ms()).await?;
            }
            Job::Teardown(env) => teardown(store, cluster, &env).await?,
        }
    }
    Ok(())
}

/// Stops every task of a deleted environment (those its records name, and any its deployments
/// started that the records missed), then removes its records.
#[tracing::instrument(skip_all, fields(environment = %env.name))]
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
