//! The table's stream → carry a deployment forward (`rolling::step`: roll out, replace, close,
//! roll back), tear down a deleted environment. Idempotent: the stream redelivers a batch until it succeeds, so a Lambda that dies
//! half-way loses no work, and a repeated run finds its claims already written.

use std::collections::BTreeSet;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::sqs::SqsEvent;

use crate::domain::{Deployment, DeploymentStatus, Environment, EnvironmentStatus, Order, SlotKey};
use crate::error::Result;
use crate::executor::{system_now_ms, Executor};
use crate::ports::{Cluster, Store, WakeupMessage};
use crate::services::on_host::{self, Look};
use crate::services::rolling;
use crate::work::Work;

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

/// Bakes that ended and restarts whose backoff ended: each slot named is looked at again (see
/// `due_on_host`), then each deployment named is stepped — once, however many wake-ups name it.
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
    for m in due.iter().filter(|m| m.host.is_some()) {
        let host = m.host.as_deref().unwrap_or_default();
        due_on_host(store, cluster, &m.environment, host).await?;
    }
    let mut stepped: BTreeSet<(&str, &str)> = BTreeSet::new();
    for m in &due {
        let Some(id) = m.deployment_id.as_deref() else {
            continue;
        };
        if stepped.insert((&m.environment, id)) {
            rolling::step(store, cluster, &m.environment, id, system_now_ms()).await?;
        }
    }
    Ok(())
}

/// Something on `host`'s slot was due: its bake is over (it counts as healthy, for its deployment
/// too, and those waiting for it there start), or its backoff ended (it restarts, once the
/// daemons it depends on run there).
async fn due_on_host<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    environment: &str,
    host: &str,
) -> Result<()> {
    let key = SlotKey {
        environment: environment.to_owned(),
        container_instance_arn: host.to_owned(),
    };
    let (Some(slot), Some(env)) = store.slot_and_environment(&key).await? else {
        return Ok(());
    };
    let order = if slot.depends_on.is_empty() {
        Order::none()
    } else {
        let deps: Vec<&str> = slot.depends_on.iter().map(String::as_str).collect();
        let neighbours = store.slots_on_host(&deps, host).await?;
        Order::on_host(environment, &slot.depends_on, &neighbours)
    };
    Executor::new(store, cluster)
        .run(vec![Work::due(
            &slot,
            order,
            env.active_deployment_id.as_deref(),
        )])
        .await?;
    if !env.dependents.is_empty() {
        let envs = store.environments_of_cluster(env.cluster_arn()).await?;
        on_host::plan(store, cluster, &envs, host, Look::Records).await?;
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
    forget_dependencies(store, env).await?;
    store.delete_environment_records(&env.name).await?;
    tracing::info!(environment = %env.name, stopped = tasks.len(), "environment torn down");
    Ok(())
}

/// No environment of the cluster lists a deleted one among its dependents any more (whatever its
/// revisions named over time: the cluster's environments are one Query).
async fn forget_dependencies<S: Store + ?Sized>(store: &S, env: &Environment) -> Result<()> {
    for mut other in store.environments_of_cluster(env.cluster_arn()).await? {
        for _ in 0..3 {
            if !other.dependents.contains(&env.name) {
                break;
            }
            let version = other.version;
            other.dependents.retain(|d| d != &env.name);
            other.version += 1;
            match store.update_environment(&other, version).await {
                Err(crate::error::Error::ConcurrentUpdate { .. }) => {
                    match store.get_environment(&other.name).await? {
                        Some(again) => other = again,
                        None => break,
                    }
                }
                r => {
                    r?;
                    break;
                }
            }
        }
    }
    Ok(())
}
