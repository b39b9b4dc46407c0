//! The table's stream → carry a deployment forward (`rolling::step`: roll out, replace, close,
//! roll back), tear down a deleted environment. Idempotent: the stream redelivers a batch until it succeeds, so a Lambda that dies
//! half-way loses no work, and a repeated run finds its claims already written.

use std::collections::BTreeSet;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::sqs::SqsEvent;

use crate::domain::{Deployment, DeploymentStatus, Environment, EnvironmentStatus, Order, SlotKey};
use crate::error::Result;
use crate::executor::{system_now_ms, Executor};
use crate::ports::{Alarms, Cluster, Store, Wakeup, WakeupMessage};
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
        /// The batch holds its INSERT: the step that starts it (and its alarm gates' re-checks).
        inserted: bool,
    },
    Teardown(Box<Environment>),
}

impl Job {
    /// The same deployment, or the same teardown.
    fn same_as(&self, other: &Job) -> bool {
        match (self, other) {
            (
                Job::Deployment {
                    environment: a,
                    id: i,
                    ..
                },
                Job::Deployment {
                    environment: b,
                    id: j,
                    ..
                },
            ) => a == b && i == j,
            (a, b) => a == b,
        }
    }
}

/// What gates the deployments the deployer steps: the alarms it reads (`updateStrategy.alarms`),
/// and the wake-up queue on which it schedules the next look at a gated deployment's alarms.
#[derive(Clone, Copy, Default)]
pub struct Gates<'a> {
    pub alarms: Option<&'a dyn Alarms>,
    pub wakeup: Option<&'a dyn Wakeup>,
}

/// How long after one look at a gated deployment's alarms the next is due. Steps come with the
/// deployment's changes; this look comes while nothing changes (a bake, a canary awaiting
/// promotion, a pause), so an alarm is noticed within a minute then too.
pub const GATE_RECHECK_SECS: u32 = 60;

/// The jobs of a batch, once each, in order (a batch often carries many counter updates of one
/// deployment; each step re-reads the deployment, so one step per batch sees them all).
pub fn jobs(event: &Event) -> Result<Vec<Job>> {
    let mut out: Vec<Job> = Vec::new();
    for record in &event.records {
        if let Some(mut job) = job_of(record)? {
            if let Some(i) = out.iter().position(|j| j.same_as(&job)) {
                let earlier = out.remove(i);
                if let (
                    Job::Deployment { inserted, .. },
                    Job::Deployment {
                        inserted: before, ..
                    },
                ) = (&mut job, &earlier)
                {
                    *inserted |= *before;
                }
            }
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
            inserted: record.event_name == "INSERT",
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

/// An invocation, for a caller without alarm gates (a gated deployment halts).
pub async fn handle_trigger<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    trigger: &Trigger,
) -> Result<()> {
    handle_trigger_with(store, cluster, Gates::default(), trigger).await
}

/// An invocation: its alarm gates read, and re-checked on the wake-up queue, through `gates`.
pub async fn handle_trigger_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    gates: Gates<'_>,
    trigger: &Trigger,
) -> Result<()> {
    match trigger {
        Trigger::Stream(event) => handle_with(store, cluster, gates, event).await,
        Trigger::Wakeups(event) => handle_wakeups(store, cluster, gates, event).await,
    }
}

/// Bakes that ended and restarts whose backoff ended: each slot named is looked at again (see
/// `due_on_host`), then each deployment named is stepped — once, however many wake-ups name it.
/// A wake-up that names a deployment and no host is its alarm gates' re-check: while the step
/// finds them passing and the deployment in progress, the next re-check is scheduled (one chain
/// per deployment, begun by the step of its INSERT: see `handle_with`).
pub async fn handle_wakeups<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    gates: Gates<'_>,
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
    let rechecks: BTreeSet<(&str, &str)> = due
        .iter()
        .filter(|m| m.host.is_none())
        .filter_map(|m| Some((m.environment.as_str(), m.deployment_id.as_deref()?)))
        .collect();
    let mut stepped: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut next = Vec::new();
    for m in &due {
        let Some(id) = m.deployment_id.as_deref() else {
            continue;
        };
        if stepped.insert((&m.environment, id)) {
            let s = rolling::step_with(
                store,
                cluster,
                gates.alarms,
                &m.environment,
                id,
                system_now_ms(),
            )
            .await?;
            if s.gated && rechecks.contains(&(m.environment.as_str(), id)) {
                next.push(gate_recheck(&m.environment, id));
            }
        }
    }
    schedule_rechecks(gates.wakeup, &next).await
}

fn gate_recheck(environment: &str, id: &str) -> WakeupMessage {
    WakeupMessage {
        environment: environment.to_owned(),
        deployment_id: Some(id.to_owned()),
        host: None,
    }
}

/// The next look at these gated deployments' alarms, `GATE_RECHECK_SECS` from now; sent last, once
/// the rest of the batch succeeded, so a batch retried for another reason does not start a
/// second chain. A failed send fails the batch (its trigger retries it): a chain that is not
/// continued leaves the reconciler's period as the only re-check.
async fn schedule_rechecks(wakeup: Option<&dyn Wakeup>, due: &[WakeupMessage]) -> Result<()> {
    let Some(wakeup) = wakeup else {
        return Ok(()); // no queue here: the reconciler's steps re-check the gates
    };
    for m in due {
        wakeup.wake_later(m, GATE_RECHECK_SECS).await?;
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

/// The stream's records, for a caller without alarm gates (a gated deployment halts: see
/// `rolling::step`).
pub async fn handle<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    event: &Event,
) -> Result<()> {
    handle_with(store, cluster, Gates::default(), event).await
}

/// The stream's records: each deployment stepped once, environments being deleted torn down.
/// The step of a gated deployment's INSERT, when its gates pass, schedules the first re-check of
/// its alarms; each re-check schedules the next (`handle_wakeups`): one pending re-check per
/// deployment, whatever the number of its steps in between.
pub async fn handle_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    gates: Gates<'_>,
    event: &Event,
) -> Result<()> {
    let mut next = Vec::new();
    for job in jobs(event)? {
        match job {
            Job::Deployment {
                environment,
                id,
                inserted,
            } => {
                let s = rolling::step_with(
                    store,
                    cluster,
                    gates.alarms,
                    &environment,
                    &id,
                    system_now_ms(),
                )
                .await?;
                if inserted && s.gated {
                    next.push(gate_recheck(&environment, &id));
                }
            }
            Job::Teardown(env) => teardown(store, cluster, &env).await?,
        }
    }
    schedule_rechecks(gates.wakeup, &next).await
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
