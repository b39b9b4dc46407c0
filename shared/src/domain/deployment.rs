use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// Recorded; the deployer has not finished claiming its hosts.
    Pending,
    /// Every eligible host has been claimed; waiting for the tasks to run.
    Running,
    /// Every host it tracked runs its task.
    Completed,
    /// Every host settled, and some failed (see `failures`).
    Failed,
}

impl DeploymentStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFailure {
    pub container_instance_arn: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// ULID: sorts by creation time, and fits ECS `startedBy` (36 chars).
    pub id: String,
    pub environment_name: String,
    pub status: DeploymentStatus,
    pub task_definition: String,
    pub cluster_arn: String,
    #[serde(default)]
    pub desired_count: i64,
    #[serde(default)]
    pub pending_count: i64,
    #[serde(default)]
    pub running_count: i64,
    #[serde(default)]
    pub failed_count: i64,
    /// Blox v0.3: the container instance ARNs that failed.
    #[serde(default)]
    pub failed_instances: Vec<String>,
    /// Why each of them failed, as ECS said.
    #[serde(default)]
    pub failures: Vec<HostFailure>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl Deployment {
    /// The deployment has claimed its hosts and none is still on its way: it can be closed.
    pub fn outcome(&self) -> Option<DeploymentStatus> {
        let outcome = if self.failed_count > 0 {
            DeploymentStatus::Failed
        } else {
            DeploymentStatus::Completed
        };
        (self.status == DeploymentStatus::Running && self.pending_count <= 0).then_some(outcome)
    }
}
