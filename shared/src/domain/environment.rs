use serde::{Deserialize, Serialize};

use super::revision::{Revision, UpdateStrategy};

fn first_revision() -> u32 {
    1
}

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
    /// Task definition ARN of the latest revision (what a deployment deploys by default).
    pub task_definition: String,
    /// Number of the latest revision; `PUT` adds one.
    #[serde(default = "first_revision")]
    pub latest_revision: u32,
    /// Update strategy of the latest revision.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    /// The token the next deployment must present (optional for the caller); rotated by each one.
    pub deployment_token: String,
    pub health: Health,
    pub status: EnvironmentStatus,
    /// Latest deployment; its id is the `startedBy` of tasks started on hosts that join later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_deployment_id: Option<String>,
    /// The revision that deployment deploys: what every host should run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_revision: Option<u32>,
    /// Its task definition ARN (hosts that join get this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_task_definition: Option<String>,
    /// Its `minHealthySeconds`: how long a new task must run before it counts as healthy.
    #[serde(default)]
    pub active_min_healthy_seconds: u32,
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
    pub fn new(
        name: &str,
        cluster_arn: &str,
        task_definition_arn: &str,
        update_strategy: UpdateStrategy,
        now: &str,
    ) -> Self {
        Self {
            name: name.to_owned(),
            instance_group: InstanceGroup {
                cluster: cluster_arn.to_owned(),
            },
            task_definition: task_definition_arn.to_owned(),
            latest_revision: 1,
            update_strategy,
            deployment_token: uuid::Uuid::new_v4().to_string(),
            health: Health::Healthy,
            status: EnvironmentStatus::Active,
            current_deployment_id: None,
            active_revision: None,
            active_task_definition: None,
            active_min_healthy_seconds: 0,
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
            task_definition: self.active_task_definition.clone()?,
            deployment_id: self.current_deployment_id.clone()?,
            tracking: self.active_deployment_id.clone(),
            bake_ms: i64::from(self.active_min_healthy_seconds) * 1000,
        })
    }

    /// The latest revision as a record of its own.
    pub fn latest(&self, now: &str) -> Revision {
        Revision {
            environment_name: self.name.clone(),
            number: self.latest_revision,
            task_definition: self.task_definition.clone(),
            update_strategy: self.update_strategy.clone(),
            created_at: now.to_owned(),
        }
    }
}
