//! What one host is launched with: the task definition, the overrides filled in for that host,
//! the marks ECS keeps on the task, and what the task takes from the host. The planner decides it
//! (`Target::wants`), the slot records it, the executor groups hosts by it and the ECS adapter
//! sends it as one StartTask call.

use serde::{Deserialize, Serialize};

use super::overrides::TaskOverride;
use super::resources::Reservation;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchSpec {
    /// Task definition ARN.
    pub task_definition: String,
    /// The environment revision this launch carries out.
    pub revision: u32,
    /// ECS `startedBy`: the deployment that launches it (a ULID, within ECS's 36 characters).
    pub started_by: String,
    /// ECS `group`: `daemon-scheduler:<environment>` (the task-events rule matches the prefix).
    pub group: String,
    /// The revision's overrides as filled in for this host (placeholders, sizing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TaskOverride>,
    /// What the task takes from the host: checked against its free resources before a launch,
    /// and given back when the task is replaced.
    #[serde(default)]
    pub reserves: Reservation,
}

impl LaunchSpec {
    /// Runs the same task as `other` on a host (task definition and overrides): replacing one by
    /// the other would change nothing there, whatever revision or deployment asked for it.
    pub fn runs_same_as(&self, other: &LaunchSpec) -> bool {
        self.task_definition == other.task_definition && self.overrides == other.overrides
    }
}

/// Why StartTask refused a host, as ECS's `failures[].reason` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The host cannot take the task now (resources, attributes, agent, the host itself is gone):
    /// nothing is wrong with the revision; the host is tried again when it changes.
    HostCannot(String),
    /// The revision cannot be launched (bad task definition, role, overrides…): a failure of the
    /// revision on this host, counted by the circuit breaker and retried with backoff.
    Failure(String),
}

impl Refusal {
    /// ECS's StartTask failure reasons `RESOURCE:*`, `ATTRIBUTE`, `AGENT`, `MISSING`, `INACTIVE`
    /// are about the host; anything else (a ClientException about the task) about the revision.
    pub fn classify(reason: &str) -> Self {
        let code = reason.split(':').next().unwrap_or_default().trim();
        let host = matches!(code, "ATTRIBUTE" | "AGENT" | "MISSING" | "INACTIVE")
            || reason.starts_with("RESOURCE");
        if host {
            Self::HostCannot(reason.to_owned())
        } else {
            Self::Failure(reason.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_about_the_host_are_not_failures_of_the_revision() {
        for host in [
            "RESOURCE:MEMORY",
            "RESOURCE:PORTS",
            "RESOURCE:CPU: not enough",
            "ATTRIBUTE",
            "AGENT",
            "MISSING",
            "INACTIVE",
        ] {
            assert!(
                matches!(Refusal::classify(host), Refusal::HostCannot(_)),
                "{host}"
            );
        }
        for revision in [
            "StartTask failed: ClientException: No Container Instances were found",
            "StartTask returned no task",
            "ThrottlingException",
        ] {
            assert!(
                matches!(Refusal::classify(revision), Refusal::Failure(_)),
                "{revision}"
            );
        }
    }
}
