//! The scheduled reconcile, fanned out: the scheduled run only lists the environments and puts
//! one message per cluster on the reconcile queue; each message is one invocation that
//! reconciles that cluster (`reconciler::reconcile_cluster`), with the queue's retries and
//! dead-letter queue, at the concurrency the event source mapping allows. A deleted cluster or a
//! denied call stays with its own cluster (and within it, its own environment), so every other
//! one is repaired in the same period.
//!
//! The queue is FIFO with the cluster as message group: never two reconciles of one cluster at
//! once (the wrong-revision budget relies on it), and content-based deduplication with the
//! scheduled event's time in the body: a run delivered twice enqueues once.

use aws_lambda_events::sqs::SqsEvent;

use crate::error::{Error, Result};
use crate::ports::{Alarms, Cluster, ReconcileMessage, ReconcileQueue, Store};
use crate::services::reconciler::{self, Summary};

/// What invokes the reconciler: its schedule, or the reconcile queue.
#[derive(Debug)]
pub enum Trigger {
    /// The scheduled event; `time` is its scheduled time (RFC 3339).
    Schedule {
        time: String,
    },
    Clusters(SqsEvent),
}

impl<'de> serde::Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        if v["Records"][0]["eventSource"].as_str() == Some("aws:sqs") {
            return serde_json::from_value(v)
                .map(Trigger::Clusters)
                .map_err(D::Error::custom);
        }
        let time = v["time"].as_str().unwrap_or_default().to_owned();
        Ok(Trigger::Schedule { time })
    }
}

/// What one invocation did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// Clusters enqueued by a scheduled run.
    pub enqueued: usize,
    /// What the clusters reconciled here did.
    pub reconciled: Summary,
}

/// An invocation, for a caller that reads no alarms: a deployment its alarms gate halts
/// (`handle_trigger_with` reads them).
pub async fn handle_trigger<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    queue: Option<&dyn ReconcileQueue>,
    trigger: &Trigger,
    now_ms: i64,
) -> Result<Outcome> {
    handle_trigger_with(store, cluster, queue, None, trigger, now_ms).await
}

/// An invocation; `alarms`: where the alarm gates of the deployments it steps are read.
pub async fn handle_trigger_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    queue: Option<&dyn ReconcileQueue>,
    alarms: Option<&dyn Alarms>,
    trigger: &Trigger,
    now_ms: i64,
) -> Result<Outcome> {
    match (trigger, queue) {
        (Trigger::Schedule { time }, Some(queue)) => Ok(Outcome {
            enqueued: fan_out(store, queue, time).await?,
            ..Outcome::default()
        }),
        // No queue configured (a stack without one): the whole run here, as before the fan-out.
        (Trigger::Schedule { .. }, None) => Ok(Outcome {
            reconciled: reconciler::reconcile_all_with(store, cluster, alarms, now_ms).await?,
            ..Outcome::default()
        }),
        (Trigger::Clusters(event), _) => {
            let mut reconciled = Summary::default();
            for m in messages(event) {
                reconciled.absorb(reconcile_one(store, cluster, alarms, &m, now_ms).await?);
            }
            Ok(Outcome {
                reconciled,
                ..Outcome::default()
            })
        }
    }
}

/// One message per cluster that has environments; the number of clusters.
pub async fn fan_out<S: Store + ?Sized>(
    store: &S,
    queue: &dyn ReconcileQueue,
    period: &str,
) -> Result<usize> {
    let messages: Vec<ReconcileMessage> = reconciler::environments_by_cluster(store)
        .await?
        .into_keys()
        .map(|cluster_arn| ReconcileMessage {
            cluster_arn,
            period: period.to_owned(),
        })
        .collect();
    queue.enqueue(&messages).await?;
    tracing::info!(clusters = messages.len(), period, "reconcile fanned out");
    Ok(messages.len())
}

fn messages(event: &SqsEvent) -> Vec<ReconcileMessage> {
    let mut out: Vec<ReconcileMessage> = Vec::new();
    for r in &event.records {
        let body = r.body.as_deref().unwrap_or_default();
        match serde_json::from_str::<ReconcileMessage>(body) {
            Ok(m) if !out.iter().any(|o| o.cluster_arn == m.cluster_arn) => out.push(m),
            Ok(_) => {}
            // A malformed message can never succeed: dropped, not retried.
            Err(e) => tracing::error!(body, error = %e, "not a reconcile message"),
        }
    }
    out
}

/// Reconciles one cluster's environments as they are now. Fails (the queue retries it, then
/// dead-letters it) only when an environment failed for a reason that may pass; a lasting one
/// (deleted cluster, denied call) is recorded on the environment and retried next period.
async fn reconcile_one<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    alarms: Option<&dyn Alarms>,
    m: &ReconcileMessage,
    now_ms: i64,
) -> Result<Summary> {
    let envs = store.environments_of_cluster(&m.cluster_arn).await?;
    let summary = reconciler::reconcile_cluster(store, cluster, alarms, &envs, now_ms).await;
    tracing::info!(cluster = %m.cluster_arn, summary = ?summary, "cluster reconciled");
    if summary.worth_retrying() {
        let failed: Vec<&str> = summary
            .failed
            .iter()
            .map(|f| f.environment.as_str())
            .collect();
        return Err(Error::Unfinished(format!(
            "reconcile of {} failed for {} (retried by the queue)",
            m.cluster_arn,
            failed.join(", ")
        )));
    }
    Ok(summary)
}
