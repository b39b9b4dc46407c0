use serde::{Deserialize, Serialize};

/// Prefix of the ECS task `group` we set; the task-events rule matches on it.
pub const GROUP_PREFIX: &str = "daemon-scheduler:";
/// Prefix of the `reason` we give StopTask, so our own stops are not counted as failures.
pub const STOP_REASON_PREFIX: &str = "daemon-scheduler:";

pub fn task_group(environment: &str) -> String {
    format!("{GROUP_PREFIX}{environment}")
}

/// The family of a task definition ARN or `family:revision` ("arn:…:task-definition/agent:3" → "agent").
pub fn family_of(task_definition: &str) -> &str {
    let name = task_definition
        .rsplit_once(":task-definition/")
        .map_or(task_definition, |(_, n)| n);
    name.split_once(':').map_or(name, |(f, _)| f)
}

/// The environment a task belongs to, from its `group`.
pub fn environment_of_group(group: &str) -> Option<&str> {
    group.strip_prefix(GROUP_PREFIX).filter(|s| !s.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
    Deleted,
}

impl TaskStatus {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).ok()
    }
    pub fn is_stopped(self) -> bool {
        matches!(self, Self::Stopped | Self::Deleted)
    }
    /// Past the point of no return: it will not run again.
    pub fn is_stopping(self) -> bool {
        matches!(
            self,
            Self::Deactivating
                | Self::Stopping
                | Self::Deprovisioning
                | Self::Stopped
                | Self::Deleted
        )
    }
}

/// One observation of a task of ours (from a Task State Change event or DescribeTasks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskObservation {
    pub task_arn: String,
    pub container_instance_arn: String,
    pub environment: String,
    pub started_by: Option<String>,
    /// Task definition ARN, when the observation carries it.
    pub task_definition: Option<String>,
    pub last_status: TaskStatus,
    pub desired_status: TaskStatus,
    pub stopped_reason: Option<String>,
    pub version: i64,
    /// How long it ran, when it ran and stopped (stoppedAt - startedAt).
    pub ran_for_ms: Option<i64>,
}

impl TaskObservation {
    /// We asked for this stop (our reason), so it is no failure of the daemon.
    pub fn stopped_by_us(&self) -> bool {
        self.stopped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(STOP_REASON_PREFIX))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn family_of_an_arn_or_a_family_revision() {
        for (td, family) in [
            (
                "arn:aws:ecs:us-east-1:123456789012:task-definition/log-shipper:3",
                "log-shipper",
            ),
            ("log-shipper:3", "log-shipper"),
            ("log-shipper", "log-shipper"),
        ] {
            assert_eq!(super::family_of(td), family, "{td}");
        }
    }
}
