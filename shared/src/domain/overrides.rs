//! Per-host task overrides: ECS's `TaskOverride` shape, whose string values may hold placeholders
//! filled from each host at launch. (Stub: being written.)

use serde::{Deserialize, Serialize};

use super::host::HostFacts;
use super::resources::TaskNeeds;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_overrides: Vec<ContainerOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValuePair {
    pub name: String,
    pub value: String,
}

impl TaskOverride {
    /// From a request's value at `field` ("overrides"), checked against the task definition.
    pub fn parse(field: &str, value: &serde_json::Value, _needs: &TaskNeeds) -> Result<Self> {
        serde_json::from_value(value.clone()).map_err(|e| Error::invalid(field, e.to_string()))
    }

    /// The placeholders filled from `host`; Err names the value the host lacks.
    pub fn resolve(&self, _host: &dyn HostFacts) -> std::result::Result<Self, String> {
        Ok(self.clone())
    }

    /// The task-level size a sizing rule sets, replacing what the overrides said.
    pub fn sized(mut self, cpu: Option<&str>, memory: Option<&str>) -> Self {
        if let Some(c) = cpu {
            self.cpu = Some(c.to_owned());
        }
        if let Some(m) = memory {
            self.memory = Some(m.to_owned());
        }
        self
    }

    /// ECS takes at most 8 KiB of overrides JSON.
    pub fn check_size(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A task-level CPU size as ECS takes it ("1024", "1 vCPU") in units.
pub fn parse_cpu(s: &str) -> std::result::Result<i64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s} is not a CPU size"))
}

/// A task-level memory size as ECS takes it ("2048", "2 GB") in MiB.
pub fn parse_memory(s: &str) -> std::result::Result<i64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s} is not a memory size"))
}
