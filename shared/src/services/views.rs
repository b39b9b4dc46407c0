//! What the API shows: Blox v0.3's field names and shapes (plus ours), built from the stored
//! records — which keep a revision's desired state in one place (`spec`) and may change shape
//! without the API changing. One view per noun.

use serde::Serialize;

use crate::domain::overrides::TaskOverride;
use crate::domain::{
    DaemonSpec, Deployment, Environment, EnvironmentStatus, Health, HostFailure, InstanceGroup,
    PlacementConstraint, ReconcileFailure, Revision, SizingRule, UpdateStrategy,
};

/// A revision's desired state as the API shows it (inside an environment, a revision, a
/// deployment).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecView {
    /// Task definition ARN.
    pub task_definition: String,
    pub update_strategy: UpdateStrategy,
    pub placement_constraints: Vec<PlacementConstraint>,
    pub sizing: Vec<SizingRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TaskOverride>,
    pub depends_on: Vec<String>,
}

impl From<&DaemonSpec> for SpecView {
    fn from(s: &DaemonSpec) -> Self {
        Self {
            task_definition: s.task_definition.clone(),
            update_strategy: s.update_strategy.clone(),
            placement_constraints: s.placement_constraints.clone(),
            sizing: s.sizing.clone(),
            overrides: s.overrides.clone(),
            depends_on: s.depends_on.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    pub name: String,
    pub instance_group: InstanceGroup,
    /// The latest revision's desired state.
    #[serde(flatten)]
    pub latest: SpecView,
    pub latest_revision: u32,
    pub deployment_token: String,
    pub health: Health,
    pub status: EnvironmentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_deployment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_revision: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_task_definition: Option<String>,
    pub active_min_healthy_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deployment_id: Option<String>,
    /// Environments whose `dependsOn` names this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<String>,
    /// The scheduled reconcile cannot repair it (then `health` is unhealthy): why, since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile_failure: Option<ReconcileFailure>,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl From<&Environment> for EnvironmentView {
    fn from(e: &Environment) -> Self {
        let deployed = e.deployed.as_ref();
        Self {
            name: e.name.clone(),
            instance_group: e.instance_group.clone(),
            latest: (&e.spec).into(),
            latest_revision: e.latest_revision,
            deployment_token: e.deployment_token.clone(),
            health: if e.reconcile_failure.is_some() {
                Health::Unhealthy
            } else {
                e.health
            },
            status: e.status,
            current_deployment_id: deployed.map(|d| d.deployment_id.clone()),
            active_revision: deployed.map(|d| d.revision),
            active_task_definition: deployed.map(|d| d.spec.task_definition.clone()),
            active_min_healthy_seconds: deployed
                .map_or(0, |d| d.spec.update_strategy.min_healthy_seconds),
            active_deployment_id: e.active_deployment_id.clone(),
            dependents: e.dependents.clone(),
            reconcile_failure: e.reconcile_failure.clone(),
            created_at: e.created_at.clone(),
            updated_at: e.updated_at.clone(),
            version: e.version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionView {
    pub environment_name: String,
    pub number: u32,
    #[serde(flatten)]
    pub spec: SpecView,
    pub created_at: String,
}

impl From<&Revision> for RevisionView {
    fn from(r: &Revision) -> Self {
        Self {
            environment_name: r.environment_name.clone(),
            number: r.number,
            spec: (&r.spec).into(),
            created_at: r.created_at.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub id: String,
    pub environment_name: String,
    /// Its status, or `paused` while it is paused and in progress.
    pub status: &'static str,
    pub revision: u32,
    pub task_definition: String,
    pub update_strategy: UpdateStrategy,
    pub cluster_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    pub desired_count: i64,
    pub pending_count: i64,
    pub running_count: i64,
    pub failed_count: i64,
    pub failed_hosts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted_reason: Option<String>,
    /// Blox v0.3: the container instance ARNs that failed.
    pub failed_instances: Vec<String>,
    /// Each failed host once, with its latest reason.
    pub failures: Vec<HostFailure>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<String>,
}

impl From<&Deployment> for DeploymentView {
    fn from(d: &Deployment) -> Self {
        // A host that failed, retried and failed again is listed once, with its latest reason.
        let mut seen = std::collections::HashSet::new();
        let mut failures: Vec<HostFailure> = d
            .failures
            .iter()
            .rev()
            .filter(|f| seen.insert(f.container_instance_arn.clone()))
            .cloned()
            .collect();
        failures.reverse();
        Self {
            id: d.id.clone(),
            environment_name: d.environment_name.clone(),
            status: match d.paused_at {
                Some(_) if !d.status.is_finished() => "paused",
                _ => d.status.as_str(),
            },
            revision: d.revision,
            task_definition: d.spec.task_definition.clone(),
            update_strategy: d.spec.update_strategy.clone(),
            cluster_arn: d.cluster_arn.clone(),
            previous_revision: d.previous_revision,
            rollback_of: d.rollback_of.clone(),
            desired_count: d.desired_count,
            pending_count: d.pending_count,
            running_count: d.running_count,
            failed_count: d.failed_count,
            failed_hosts: d.failed_hosts,
            halted_reason: d.halted_reason.clone(),
            failed_instances: failures
                .iter()
                .map(|f| f.container_instance_arn.clone())
                .collect(),
            failures,
            created_at: d.created_at.clone(),
            updated_at: d.updated_at.clone(),
            finished_at: d.finished_at.clone(),
            paused_at: d.paused_at.clone(),
            promoted_at: d.promoted_at.clone(),
        }
    }
}
