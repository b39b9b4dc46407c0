//! A container instance: what ECS says of it at one version (`Host`, from an event or a
//! Describe call) and the part a slot records of it (`HostState`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::capacity::Resources;

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

/// What a slot records of its host: enough to order observations and to decide without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostState {
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

impl HostState {
    /// New tasks go only to ACTIVE hosts whose agent is connected.
    pub fn is_eligible(&self) -> bool {
        self.status == HostStatus::Active && self.agent_connected
    }

    /// Whether `other` says something a decision could depend on that this does not: the status,
    /// the agent, or whether other tasks still drain. (Resources and task counts change with every
    /// task placed on the host; those changes alone are not recorded.)
    pub fn differs_for_decisions(&self, other: &HostState) -> bool {
        self.status != other.status
            || self.agent_connected != other.agent_connected
            || self.other_tasks.map(|n| n > 0) != other.other_tasks.map(|n| n > 0)
    }
}

/// Attribute name → value (`None`: an attribute set without a value).
pub type Attributes = BTreeMap<String, Option<String>>;

/// A container instance as an event or DescribeContainerInstances shows it at one version: its
/// state, and the facts placement decides on (attributes, free resources, ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub state: HostState,
    /// EC2 instance id, or the SSM managed instance id (`mi-…`) of an ECS Anywhere host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: Attributes,
    /// `remainingResources`; `None` when the observation did not carry them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// The capacity provider the instance belongs to, if any (shown, not decided on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
}

impl Host {
    /// A host known by its state only (no placement facts).
    pub fn from_state(state: HostState) -> Self {
        Self {
            state,
            ec2_instance_id: None,
            attributes: Attributes::new(),
            remaining: None,
            agent_version: None,
            capacity_provider: None,
        }
    }

    pub fn arn(&self) -> &str {
        &self.state.container_instance_arn
    }

    pub fn is_eligible(&self) -> bool {
        self.state.is_eligible()
    }
}

/// What placement reads of a host: the subjects of the cluster query language and the values of
/// override placeholders.
pub trait HostFacts {
    fn container_instance_arn(&self) -> &str;
    /// `Some(Some(v))`: set with a value; `Some(None)`: set without a value; `None`: not set.
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    fn ec2_instance_id(&self) -> Option<&str>;
    fn agent_connected(&self) -> bool;
    fn agent_version(&self) -> Option<&str>;
    /// The capacity provider the instance belongs to, if any.
    fn capacity_provider(&self) -> Option<&str> {
        None
    }
}

impl HostFacts for Host {
    fn container_instance_arn(&self) -> &str {
        &self.state.container_instance_arn
    }
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(Option::as_deref)
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.ec2_instance_id.as_deref()
    }
    fn agent_connected(&self) -> bool {
        self.state.agent_connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.agent_version.as_deref()
    }
    fn capacity_provider(&self) -> Option<&str> {
        self.capacity_provider.as_deref()
    }
}
