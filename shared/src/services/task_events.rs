//! ECS Task State Change (our group only) → record the task, restart a stopped one, stop duplicates.

use serde::{Deserialize, Serialize};

use crate::domain::task::environment_of_group;
use crate::domain::{EnvironmentStatus, SlotKey, TaskObservation, TaskStatus};
use crate::error::Result;
use crate::executor::{Executor, Live, Report, Work};
use crate::planner::{plan_task, Effect, Transition};
use crate::ports::{Cluster, Store, Wakeup};

/// The part of the event's `detail` (a Task) we use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDetail {
    pub task_arn: String,
    pub cluster_arn: String,
    #[serde(default)]
    pub container_instance_arn: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub started_by: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub stopped_at: Option<String>,
}

impl TaskDetail {
    /// `None` for tasks that are not ours or have no host (Fargate).
    pub fn observation(&self) -> Option<TaskObservation> {
        Some(TaskObservation {
            task_arn: self.task_arn.clone(),
            container_instance_arn: self.container_instance_arn.clone()?,
            environment: environment_of_group(self.group.as_deref()?)?.to_owned(),
            started_by: self.started_by.clone(),
            last_status: TaskStatus::parse(&self.last_status)?,
            desired_status: TaskStatus::parse(&self.desired_status)?,
            stopped_reason: self.stopped_reason.clone(),
            version: self.version,
            ran_for_ms: match (&self.started_at, &self.stopped_at) {
                (Some(a), Some(b)) => crate::clock::millis_between(a, b),
                _ => None,
            },
        })
    }
}

pub async fn handle<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    detail: &TaskDetail,
) -> Result<Report> {
    handle_with(store, cluster, None, detail).await
}

/// As `handle`; a task that starts baking asks `wakeup` to step its deployment when the bake is
/// over (without one, the reconciler does it on its next run).
#[tracing::instrument(skip_all, fields(
    environment = detail.group.as_deref().unwrap_or_default(),
    host = detail.container_instance_arn.as_deref().unwrap_or_default(),
    task = %detail.task_arn,
    status = %detail.last_status,
))]
pub async fn handle_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    wakeup: Option<&dyn Wakeup>,
    detail: &TaskDetail,
) -> Result<Report> {
    let Some(task) = detail.observation() else {
        tracing::debug!(task = %detail.task_arn, "not a task of ours");
        return Ok(Report::default());
    };
    let key = SlotKey {
        environment: task.environment.clone(),
        container_instance_arn: task.container_instance_arn.clone(),
    };
    let slot = store.get_slot(&key).await?;
    let alive = !task.last_status.is_stopping() && !task.desired_status.is_stopped();
    if slot.is_none() && alive {
        // No record of this host: the environment is gone or going (stop the orphan), or the host
        // was never planned (the reconciler adopts it with the host's state).
        let env = store.get_environment(&task.environment).await?;
        if env.is_none_or(|e| e.status == EnvironmentStatus::Deleting) {
            let reason = format!(
                "{}environment deleted",
                crate::domain::task::STOP_REASON_PREFIX
            );
            cluster
                .stop_task(&detail.cluster_arn, &task.task_arn, &reason)
                .await?;
            return Ok(Report {
                stopped: vec![task.task_arn],
                ..Default::default()
            });
        }
    }
    let observed = task.clone();
    let work = vec![Work {
        key,
        current: slot,
        live: Live::Unknown,
        pending_cap: None,
        decide: Box::new(move |slot, claim, now| match slot {
            Some(s) => plan_task(s, &observed, now, claim),
            None => Transition {
                next: None,
                effect: Effect::None,
            },
        }),
    }];
    let report = Executor::new(store, cluster).run(work).await?;
    if let Some(wakeup) = wakeup {
        for (environment, deployment, bake_ms) in &report.bakes {
            // A second more than the bake: the step must find it over, whatever the clocks say.
            let delay = u32::try_from((bake_ms + 999) / 1000 + 1).unwrap_or(u32::MAX);
            if let Err(e) = wakeup.step_later(environment, deployment, delay).await {
                // Not fatal: the reconciler steps every deployment in progress.
                tracing::warn!(%environment, %deployment, error = %e, "wake-up not scheduled");
            }
        }
    }
    tracing::info!(
        environment = %task.environment,
        task = %task.task_arn,
        host = %task.container_instance_arn,
        last_status = ?task.last_status,
        version = task.version,
        restarted = report.started.len(),
        stopped = report.stopped.len(),
        "task event handled"
    );
    Ok(report)
}
