//! ECS Task State Change (our group only) → record the task (a launch is recorded by its task's
//! first event), restart a stopped one, stop duplicates; release the daemons that wait for this
//! one on its host.

use serde::{Deserialize, Serialize};

use crate::domain::task::environment_of_group;
use crate::domain::{
    Environment, EnvironmentStatus, Order, Slot, SlotKey, SlotTask, TaskObservation, TaskStatus,
};
use crate::error::Result;
use crate::executor::{Executor, Report};
use crate::ports::{Cluster, Store, Wakeup, WakeupMessage};
use crate::services::on_host::{self, Look};
use crate::work::Work;

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
    #[serde(default)]
    pub task_definition_arn: Option<String>,
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
            task_definition: self.task_definition_arn.clone(),
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

/// As `handle`; a task that starts baking asks `wakeup` to come back when the bake is over (to
/// step its deployment, and to release the daemons waiting for it); without one, the reconciler
/// does it on its next run.
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
    let (slot, env) = store.slot_and_environment(&key).await?;
    let alive = !task.last_status.is_stopping() && !task.desired_status.is_stopped();
    let Some(slot) = slot else {
        // No record of this host: the environment is gone or going (stop the orphan), or the host
        // was never planned (the reconciler adopts it with the host's state).
        if alive && env.is_none_or(|e| e.status == EnvironmentStatus::Deleting) {
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
        return Ok(Report::default());
    };
    let has_dependents = env.as_ref().is_some_and(|e| !e.dependents.is_empty());
    let report = if task.last_status.is_stopped() && !slot.depends_on.is_empty() {
        // Its restart waits for the daemons it depends on; on a host that drains, its stop may
        // let them stop: the whole host is planned.
        let envs = store.environments_of_cluster(&detail.cluster_arn).await?;
        on_host::plan(
            store,
            cluster,
            &envs,
            &key.container_instance_arn,
            Look::Task(&task),
        )
        .await?
    } else {
        let was_available = slot.is_available();
        let mut report = Executor::new(store, cluster)
            .run(vec![Work::task(&slot, task.clone(), Order::none())])
            .await?;
        // A launch of another revision turned into a task while a deployment is in progress:
        // that deployment may not have seen it to replace; its stream record steps it again.
        if let Some(id) = env.as_ref().and_then(|e| rollout_to_nudge(e, &slot)) {
            if alive && report.written > 0 {
                store.nudge_deployment(&task.environment, id).await?;
            }
        }
        // Healthy now (no bake to wait for): the daemons waiting for it here may start.
        let now_available = task.last_status == TaskStatus::Running && slot.bake_ms == 0;
        if has_dependents && now_available && !was_available && report.written > 0 {
            let envs = store.environments_of_cluster(&detail.cluster_arn).await?;
            let released = on_host::plan(
                store,
                cluster,
                &envs,
                &key.container_instance_arn,
                Look::Records,
            )
            .await?;
            report.absorb(released);
        }
        report
    };
    if let Some(wakeup) = wakeup {
        for bake in &report.bakes {
            if bake.deployment.is_none() && !has_dependents {
                continue; // nobody waits for the end of this bake; the reconciler marks it
            }
            // A second more than the bake: the step must find it over, whatever the clocks say.
            let message = WakeupMessage {
                environment: bake.environment.clone(),
                deployment_id: bake.deployment.clone(),
                host: Some(bake.host.clone()),
            };
            wake(wakeup, &message, bake.bake_ms).await;
        }
        // A crashed daemon restarts when its backoff ends, not at the next reconcile.
        for r in &report.restarts {
            let message = WakeupMessage {
                environment: r.environment.clone(),
                deployment_id: None,
                host: Some(r.host.clone()),
            };
            wake(wakeup, &message, r.at_ms - crate::clock::system_now_ms()).await;
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

/// Asks for `message` in `in_ms` and a second more (SQS counts whole seconds; the deployer must
/// find it due whatever the clocks say). Not fatal when it fails: the reconciler does it later.
async fn wake(wakeup: &dyn Wakeup, message: &WakeupMessage, in_ms: i64) {
    let delay = u32::try_from((in_ms.max(0) + 999) / 1000 + 1).unwrap_or(u32::MAX);
    if let Err(e) = wakeup.wake_later(message, delay).await {
        tracing::warn!(environment = %message.environment, error = %e, "wake-up not scheduled");
    }
}

/// The deployment in progress that must replace what this launching slot is about to run.
fn rollout_to_nudge<'a>(env: &'a Environment, slot: &Slot) -> Option<&'a str> {
    let id = env.active_deployment_id.as_deref()?;
    let deployed = env.deployed.as_ref()?;
    let launching = matches!(slot.task, SlotTask::Launching { .. });
    let other = slot
        .launch
        .as_ref()
        .is_some_and(|l| l.revision != deployed.revision);
    (launching && other).then_some(id)
}
