use serde::{Deserialize, Serialize};

use super::revision::Revision;
use super::spec::DaemonSpec;
use super::target::Target;

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

/// Why the reconciler failed on an environment, and since when (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileFailure {
    pub reason: String,
    /// AWS's error code, when AWS answered with one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    pub since: String,
}

impl ReconcileFailure {
    /// What a run found: `None` when it succeeded. A failure that goes on keeps its `since`.
    pub fn after_run(
        previous: Option<&ReconcileFailure>,
        error: Option<&crate::error::Error>,
        now: &str,
    ) -> Option<ReconcileFailure> {
        let e = error?;
        let code = match e {
            crate::error::Error::Aws { code, .. } => code.clone(),
            crate::error::Error::Throttled { .. } => "Throttled".to_owned(),
            _ => String::new(),
        };
        let since = previous.map_or(now, |p| p.since.as_str()).to_owned();
        Some(ReconcileFailure {
            reason: e.to_string(),
            code,
            since,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceGroup {
    /// Cluster ARN (resolved through ECS when the environment is created).
    pub cluster: String,
}

/// The revision the latest deployment deploys: what every host should run (hosts that join get it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    /// The latest deployment; the `startedBy` of tasks started on hosts that join later.
    pub deployment_id: String,
    pub revision: u32,
    pub spec: DaemonSpec,
}

/// Desired state: one task on every eligible host of the cluster that the revision places it on.
/// The API shows it with Blox v0.3's field names (services/views.rs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: String,
    pub instance_group: InstanceGroup,
    /// Number of the latest revision; `PUT` adds one.
    #[serde(default = "first_revision")]
    pub latest_revision: u32,
    /// The latest revision's desired state (what a deployment deploys by default).
    pub spec: DaemonSpec,
    /// The token the next deployment must present (optional for the caller); rotated by each one.
    pub deployment_token: String,
    pub health: Health,
    pub status: EnvironmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<Deployed>,
    /// Deployment still rolling out; none may start while it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deployment_id: Option<String>,
    /// Environments whose `dependsOn` names this one: when this one's task turns healthy on a
    /// host, theirs may start there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<String>,
    /// The scheduled reconcile could not repair this environment (a deleted cluster, a denied
    /// call, AWS failing): why, and since when. Cleared by the next run that succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_failure: Option<ReconcileFailure>,
    pub created_at: String,
    pub updated_at: String,
    /// Optimistic version: every update is conditional on it.
    pub version: u64,
}

impl Environment {
    /// A new environment: healthy, active, not deployed yet, with a fresh deployment token.
    pub fn new(name: &str, cluster_arn: &str, spec: DaemonSpec, now: &str) -> Self {
        Self {
            name: name.to_owned(),
            instance_group: InstanceGroup {
                cluster: cluster_arn.to_owned(),
            },
            latest_revision: 1,
            spec,
            deployment_token: uuid::Uuid::new_v4().to_string(),
            health: Health::Healthy,
            status: EnvironmentStatus::Active,
            deployed: None,
            active_deployment_id: None,
            dependents: Vec::new(),
            reconcile_failure: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            version: 1,
        }
    }

    pub fn cluster_arn(&self) -> &str {
        &self.instance_group.cluster
    }

    /// What the environment asks of its hosts, once it has been deployed. The deployment in
    /// progress counts the hosts only when it is the one deployed (a canary waiting for promotion
    /// is not: joining hosts get the previous revision, uncounted).
    pub fn target(&self) -> Option<Target> {
        if self.status != EnvironmentStatus::Active {
            return None;
        }
        let d = self.deployed.as_ref()?;
        let active = self.active_deployment_id.as_deref();
        let tracking = active.filter(|id| *id == d.deployment_id);
        Some(
            Target::new(
                &self.name,
                self.cluster_arn(),
                d.revision,
                &d.spec,
                &d.deployment_id,
                tracking,
            )
            .in_rollout(active),
        )
    }

    /// The latest revision as a record of its own.
    pub fn latest(&self, now: &str) -> Revision {
        Revision {
            environment_name: self.name.clone(),
            number: self.latest_revision,
            spec: self.spec.clone(),
            created_at: now.to_owned(),
        }
    }
}
