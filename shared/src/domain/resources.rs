//! Host resources and what a task needs of a host: CPU, memory, host ports, platform.
//! (Stub: being written.)

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::host::HostFacts;
use super::overrides::TaskOverride;

/// Resources of a host as ECS lists them (`registeredResources` / `remainingResources`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// CPU units (1,024 per vCPU).
    pub cpu: i64,
    /// MiB.
    pub memory: i64,
    /// TCP host ports in use (ECS's `PORTS` string set).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub ports: BTreeSet<u16>,
    /// UDP host ports in use (`PORTS_UDP`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub udp_ports: BTreeSet<u16>,
}

/// What one task takes from its host once placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub cpu: i64,
    pub memory: i64,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub ports: BTreeSet<u16>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub udp_ports: BTreeSet<u16>,
}

impl Reservation {
    /// Whether it fits in `remaining`, counting back what `freed` (our own task on the host, when
    /// it is being replaced) gives up. Err: why not, as an operator reads it.
    pub fn fits(&self, _remaining: &Resources, _freed: Option<&Reservation>) -> Result<(), String> {
        Ok(())
    }
}

/// A host port a container maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortNeed {
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// What one container of a task definition reserves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerNeeds {
    pub name: String,
    #[serde(default)]
    pub cpu: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<PortNeed>,
}

/// A container instance attribute a task definition requires (`requiresAttributes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredAttribute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a task definition needs of a host (read from DescribeTaskDefinition when a revision is
/// written, so placement decides without calling ECS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskNeeds {
    /// Task-level CPU units, when the task definition sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Task-level memory (MiB), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerNeeds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// `runtimePlatform.operatingSystemFamily` (LINUX, WINDOWS_SERVER_2022_CORE, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_family: Option<String>,
    /// `runtimePlatform.cpuArchitecture` (X86_64, ARM64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_attributes: Vec<RequiredAttribute>,
}

impl TaskNeeds {
    /// What one task takes with `overrides` applied.
    pub fn reservation(&self, _overrides: Option<&TaskOverride>) -> Reservation {
        Reservation::default()
    }

    /// Operating system, CPU architecture and required attributes against the host.
    pub fn platform_fit(&self, _host: &dyn HostFacts) -> Result<(), String> {
        Ok(())
    }
}
