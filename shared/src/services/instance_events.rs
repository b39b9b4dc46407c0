//! ECS Container Instance State Change → start on join, stop on drain, record the host's state.

use serde::{Deserialize, Serialize};

use crate::domain::{Host, HostStatus, SlotKey};
use crate::error::{Error, Result};
use crate::executor::{Executor, Live, Report, Work};
use crate::planner::plan_host;
use crate::ports::{Cluster, Store};

/// The part of the event's `detail` (a ContainerInstance) we use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetail {
    pub cluster_arn: String,
    pub container_instance_arn: String,
    pub status: String,
    #[serde(default)]
    pub agent_connected: bool,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub running_tasks_count: i64,
    #[serde(default)]
    pub pending_tasks_count: i64,
}

impl InstanceDetail {
    pub fn host(&self) -> Result<Host> {
        let status = HostStatus::parse(&self.status).ok_or_else(|| {
            Error::invalid("detail.status", format!("unknown status {}", self.status))
        })?;
        Ok(Host {
            container_instance_arn: self.container_instance_arn.clone(),
            status,
            agent_connected: self.agent_connected,
            version: self.version,
            other_tasks: None,
        })
    }
}

/// Plans the host for every deployed environment of its cluster. The event carries the host, so
/// nothing is re-read from ECS: one Query for the environments, then per environment one claim
/// write (assuming a new host; a wrong guess returns the record and re-plans), StartTask, record.
#[tracing::instrument(skip_all, fields(
    cluster = %detail.cluster_arn,
    host = %detail.container_instance_arn,
    status = %detail.status,
    version = detail.version,
))]
pub async fn handle<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    detail: &InstanceDetail,
) -> Result<Report> {
    let mut host = detail.host()?;
    let envs = store.environments_of_cluster(&detail.cluster_arn).await?;
    // A draining host keeps its daemons until its other tasks are gone: count them (only then,
    // and only when the event says any task is left; ListTasks + DescribeTasks).
    let tasks_left = detail.running_tasks_count + detail.pending_tasks_count;
    if host.status == HostStatus::Draining && !envs.is_empty() {
        host.other_tasks = Some(if tasks_left > 0 {
            cluster
                .other_tasks_on(&detail.cluster_arn, &detail.container_instance_arn)
                .await?
        } else {
            0
        });
    }
    let work: Vec<Work> = envs
        .iter()
        .filter_map(|env| env.target())
        .map(|target| {
            let host = host.clone();
            Work {
                key: SlotKey {
                    environment: target.environment.clone(),
                    container_instance_arn: host.container_instance_arn.clone(),
                },
                current: None,
                live: Live::Is(target.tracking.clone()),
                pending_cap: None,
                decide: Box::new(move |slot, claim, now| {
                    plan_host(Some(&target), slot, Some(&host), now, claim)
                }),
            }
        })
        .collect();
    let report = Executor::new(store, cluster).run(work).await?;
    tracing::info!(
        environments = envs.len(),
        started = report.started.len(),
        stopped = report.stopped.len(),
        "instance event handled"
    );
    Ok(report)
}
