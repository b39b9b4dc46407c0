use serde::{Deserialize, Serialize};

use super::spec::DaemonSpec;
use super::target::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeploymentStatus {
    /// Recorded; the deployer has not finished claiming its hosts.
    Pending,
    /// Its canary hosts run the revision and have baked: the rest waits for `promote` (or
    /// `cancel`, which rolls the canaries back). Joining hosts get the previous revision.
    AwaitingPromotion,
    /// Every eligible host has been claimed; waiting for the tasks to run.
    Running,
    /// Every host it tracked runs its task.
    Completed,
    /// Every host settled, and some failed (see `failures`), or the circuit breaker halted it.
    Failed,
    /// Cancelled by the operator: hosts keep what they run.
    Cancelled,
}

impl DeploymentStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// The statuses of a deployment still in progress.
    pub const IN_PROGRESS: [Self; 3] = [Self::Pending, Self::AwaitingPromotion, Self::Running];

    /// As stored and shown ("awaiting-promotion").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AwaitingPromotion => "awaiting-promotion",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A change of a deployment's status and controls, made only from the statuses it names (and,
/// with `settled`, only once no host is on its way): what the services decide, stored by one
/// conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentTransition {
    pub from: Vec<DeploymentStatus>,
    pub to: Option<DeploymentStatus>,
    /// `Some(Some(t))`: paused since `t`; `Some(None)`: resumed; `None`: unchanged.
    pub paused_at: Option<Option<String>>,
    pub settled: bool,
}

impl DeploymentTransition {
    /// No new host is touched until `resume`; hosts in flight finish.
    pub fn pause(now: &str) -> Self {
        Self {
            from: DeploymentStatus::IN_PROGRESS.to_vec(),
            to: None,
            paused_at: Some(Some(now.to_owned())),
            settled: false,
        }
    }

    pub fn resume() -> Self {
        Self {
            from: DeploymentStatus::IN_PROGRESS.to_vec(),
            to: None,
            paused_at: Some(None),
            settled: false,
        }
    }

    /// The canary hosts settled (they run the revision and baked): wait for promotion.
    pub fn await_promotion() -> Self {
        Self {
            from: vec![DeploymentStatus::Pending],
            to: Some(DeploymentStatus::AwaitingPromotion),
            paused_at: None,
            settled: true,
        }
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
    /// The revision it deploys, and that revision's desired state.
    #[serde(default = "first_revision")]
    pub revision: u32,
    pub spec: DaemonSpec,
    pub cluster_arn: String,
    /// What the environment ran before: the revision an automatic rollback returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<u32>,
    /// This deployment rolls back that one (a rollback is never rolled back itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    #[serde(default)]
    pub desired_count: i64,
    #[serde(default)]
    pub pending_count: i64,
    #[serde(default)]
    pub running_count: i64,
    #[serde(default)]
    pub failed_count: i64,
    /// Hosts that failed this deployment's revision at least once (the circuit breaker's count).
    #[serde(default)]
    pub failed_hosts: i64,
    /// Why the deployment stopped replacing hosts (circuit breaker), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted_reason: Option<String>,
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
    /// Paused since then (`pause`): no new host is touched until `resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<String>,
    /// Its canary was promoted then (by `promote`, or by itself with `autoPromote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<String>,
}

fn first_revision() -> u32 {
    1
}

impl Deployment {
    /// A new deployment of `revision` for `env`, pending until the deployer has claimed its hosts.
    pub fn new(
        env: &super::Environment,
        revision: &super::Revision,
        rollback_of: Option<String>,
        now: &str,
    ) -> Self {
        Self {
            id: ulid::Ulid::new().to_string(),
            environment_name: env.name.clone(),
            status: DeploymentStatus::Pending,
            revision: revision.number,
            spec: revision.spec.clone(),
            cluster_arn: env.cluster_arn().to_owned(),
            previous_revision: env.deployed.as_ref().map(|d| d.revision),
            rollback_of,
            desired_count: 0,
            pending_count: 0,
            running_count: 0,
            failed_count: 0,
            failed_hosts: 0,
            halted_reason: None,
            failed_instances: vec![],
            failures: vec![],
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            finished_at: None,
            paused_at: None,
            promoted_at: None,
        }
    }

    /// It replaces only its canary hosts for now: its strategy has a canary, it was not promoted,
    /// something ran before it (a first deployment has nothing to compare with), and it is no
    /// rollback (a rollback never waits).
    pub fn in_canary(&self) -> bool {
        self.spec.update_strategy.canary.is_some()
            && self.promoted_at.is_none()
            && self.previous_revision.is_some()
            && self.rollback_of.is_none()
    }

    /// How many of `eligible` hosts the canary replaces (at least one).
    pub fn canary_hosts(&self, eligible: usize) -> usize {
        self.spec
            .update_strategy
            .canary
            .map_or(eligible, |c| c.of(eligible).max(1))
    }

    /// Its alarms gate it now: its strategy names some, it is in progress (paused and awaiting
    /// promotion included) and not halted yet (a halted one only waits for its hosts in flight),
    /// and it is no rollback: as ECS, a rollback is not gated (the alarm that caused it is
    /// likely still in ALARM, and gating it would leave the hosts half rolled back).
    pub fn alarm_gated(&self) -> bool {
        !self.spec.update_strategy.alarms.is_empty()
            && !self.status.is_finished()
            && self.halted_reason.is_none()
            && self.rollback_of.is_none()
    }

    /// The circuit breaker trips when more hosts than the threshold (of `eligible`) failed.
    pub fn breaker_tripped(&self, eligible: usize) -> bool {
        self.failed_hosts > self.spec.update_strategy.failure_threshold.of(eligible) as i64
    }

    /// What it asks of the hosts: its revision, counted by itself while in progress.
    pub fn target(&self) -> Target {
        Target::new(
            &self.environment_name,
            &self.cluster_arn,
            self.revision,
            &self.spec,
            &self.id,
            Some(&self.id),
        )
    }

    /// The environment's health once it closes with `outcome`.
    pub fn health_after(outcome: DeploymentStatus) -> super::Health {
        if outcome == DeploymentStatus::Failed {
            super::Health::Unhealthy
        } else {
            super::Health::Healthy
        }
    }

    /// The deployment has claimed its hosts and none is still on its way: it can be closed.
    pub fn outcome(&self) -> Option<DeploymentStatus> {
        let outcome = if self.failed_count > 0 || self.halted_reason.is_some() {
            DeploymentStatus::Failed
        } else {
            DeploymentStatus::Completed
        };
        (self.status == DeploymentStatus::Running && self.pending_count <= 0).then_some(outcome)
    }
}
