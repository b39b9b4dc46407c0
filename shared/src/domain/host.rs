use serde::{Deserialize, Serialize};

/// Container instance status as ECS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HostStatus {
    Registering,
    Active,
    Draining,
    Deregistering,
    Inactive,
    RegistrationFailed,
}

impl HostStatus {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).ok()
    }

    /// The host is leaving or gone: its records may expire.
    pub fn is_gone(self) -> bool {
        matches!(
            self,
            Self::Deregistering | Self::Inactive | Self::RegistrationFailed
        )
    }
}

/// What we know of one container instance at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub container_instance_arn: String,
    pub status: HostStatus,
    pub agent_connected: bool,
    /// ECS `version` of the container instance; grows with every change.
    pub version: i64,
    /// Live tasks on the host that are not daemons of ours, when the caller counted them (a
    /// DRAINING host keeps its daemons until this reaches 0: their logs and metrics still ship).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_tasks: Option<usize>,
}

impl Host {
    /// New tasks go only to ACTIVE hosts whose agent is connected.
    pub fn is_eligible(&self) -> bool {
        self.status == HostStatus::Active && self.agent_connected
    }
}

/// Attribute name → value (`None`: an attribute set without a value).
pub type Attributes = std::collections::BTreeMap<String, Option<String>>;

/// What placement reads of a host: the subjects of the cluster query language and the values of
/// override placeholders.
pub trait HostFacts {
    fn container_instance_arn(&self) -> &str;
    /// `Some(Some(v))`: set with a value; `Some(None)`: set without a value; `None`: not set.
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    fn ec2_instance_id(&self) -> Option<&str>;
    fn agent_connected(&self) -> bool;
    fn agent_version(&self) -> Option<&str>;
}
