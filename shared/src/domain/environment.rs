use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentStatus {
    Active,
    /// DELETE was accepted: nothing new starts; the deployer stops the tasks and removes the records.
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceGroup {
    /// Cluster ARN (resolved through ECS when the environment is created).
    pub cluster: String,
}

/// Desired state: one task of `task_definition` on every eligible host of the cluster.
/// Field names are Blox v0.3's, plus our superset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: String,
    pub instance_group: InstanceGroup,
    /// Task definition ARN.
    pub task_definition: String,
    /// The token the next deployment must present (optional for the caller); rotated by each one.
    pub deployment_token: String,
    pub health: Health,
    pub status: EnvironmentStatus,
    /// Latest deployment; its id is the `startedBy` of tasks started on hosts that join later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_deployment_id: Option<String>,
    /// Deployment still rolling out; none may start while it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deployment_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Optimistic version: every update is conditional on it.
    pub version: u64,
}

impl Environment {
    /// A new environment: healthy, active, not deployed yet, with a fresh deployment token.
    pub fn new(name: &str, cluster_arn: &str, task_definition_arn: &str, now: &str) -> Self {
        Self {
            name: name.to_owned(),
            instance_group: InstanceGroup {
                cluster: cluster_arn.to_owned(),
            },
            task_definition: task_definition_arn.to_owned(),
            deployment_token: uuid::Uuid::new_v4().to_string(),
            health: Health::Healthy,
            status: EnvironmentStatus::Active,
            current_deployment_id: None,
            active_deployment_id: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            version: 1,
        }
    }

    pub fn cluster_arn(&self) -> &str {
        &self.instance_group.cluster
    }

    /// What the environment asks of its hosts, once it has been deployed.
    pub fn target(&self) -> Option<crate::planner::Target> {
        if self.status != EnvironmentStatus::Active {
            return None;
        }
        Some(crate::planner::Target {
            environment: self.name.clone(),
            cluster_arn: self.cluster_arn().to_owned(),
            task_definition: self.task_definition.clone(),
            deployment_id: self.current_deployment_id.clone()?,
            tracking: self.active_deployment_id.clone(),
        })
    }
}
