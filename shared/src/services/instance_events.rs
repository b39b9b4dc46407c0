//! ECS Container Instance State Change → start on join, stop on drain, record the host's state.

use serde::{Deserialize, Serialize};

use crate::domain::resources::{ResourceEntry, Resources};
use crate::domain::{Host, HostState, HostStatus};
use crate::error::{Error, Result};
use crate::executor::Report;
use crate::ports::{Cluster, Store};
use crate::services::on_host::{self, Look};

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
    #[serde(default)]
    pub ec2_instance_id: Option<String>,
    #[serde(default)]
    pub attributes: Vec<AttributeEntry>,
    #[serde(default)]
    pub remaining_resources: Vec<ResourceEntry>,
    #[serde(default)]
    pub version_info: Option<VersionInfo>,
    #[serde(default)]
    pub capacity_provider_name: Option<String>,
}

/// A container instance attribute as the event lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttributeEntry {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    #[serde(default)]
    pub agent_version: Option<String>,
}

impl InstanceDetail {
    pub fn host(&self) -> Result<Host> {
        let status = HostStatus::parse(&self.status).ok_or_else(|| {
            Error::invalid("detail.status", format!("unknown status {}", self.status))
        })?;
        Ok(Host {
            state: HostState {
                container_instance_arn: self.container_instance_arn.clone(),
                status,
                agent_connected: self.agent_connected,
                version: self.version,
                other_tasks: None,
            },
            ec2_instance_id: self.ec2_instance_id.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
            remaining: (!self.remaining_resources.is_empty())
                .then(|| Resources::from_entries(&self.remaining_resources)),
            agent_version: self
                .version_info
                .as_ref()
                .and_then(|v| v.agent_version.clone()),
            capacity_provider: self.capacity_provider_name.clone(),
        })
    }
}

/// Plans the host for every deployed environment of its cluster. The event carries the host
/// (its attributes and free resources too), so nothing is re-read from ECS: one Query for the
/// environments, one read of their slots on this host, then per environment what its placement
/// decides — a claim and StartTask on a join, nothing at all (no write) when the event changes
/// nothing for anyone, as the one ECS sends right after our task is placed.
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
    if host.state.status == HostStatus::Draining && envs.iter().any(|e| e.target().is_some()) {
        host.state.other_tasks = Some(if tasks_left > 0 {
            cluster
                .other_tasks_on(&detail.cluster_arn, &detail.container_instance_arn)
                .await?
        } else {
            0
        });
    }
    let report = on_host::plan(
        store,
        cluster,
        &envs,
        &detail.container_instance_arn,
        Look::Host(&host),
    )
    .await?;
    tracing::info!(
        environments = envs.len(),
        started = report.started.len(),
        stopped = report.stopped.len(),
        "instance event handled"
    );
    Ok(report)
}
