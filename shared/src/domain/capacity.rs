//! What a host has free and what a task takes of it, in ECS's own resource names: CPU units,
//! MiB of memory, TCP and UDP host ports.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// ECS's resource names (`registeredResources` / `remainingResources`).
pub const CPU: &str = "CPU";
pub const MEMORY: &str = "MEMORY";
/// TCP host ports in use, a STRINGSET of port numbers.
pub const PORTS: &str = "PORTS";
/// UDP host ports in use.
pub const PORTS_UDP: &str = "PORTS_UDP";

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

/// One entry of ECS's resource list as JSON carries it (the EventBridge "ECS Container Instance
/// State Change" event's `remainingResources` / `registeredResources`):
/// `{"name": "CPU", "type": "INTEGER", "integerValue": 2048}`,
/// `{"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2376"]}`.
/// Fields other than these (`type`, `longValue`, `doubleValue`, …) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceEntry {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integer_value: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

impl Resources {
    /// From ECS's named resources, whatever carries them: `(name, integer value, string set)`.
    /// `CPU` and `MEMORY` take the integer (absent: 0); `PORTS` and `PORTS_UDP` take the string
    /// set of ports in use ("8080"; a range "8000-8010" counts each port). Other names (`GPU`, …)
    /// and strings that are no port are skipped.
    pub fn from_named<'a, I>(entries: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, Option<i64>, &'a [String])>,
    {
        let mut out = Self::default();
        for (name, integer, strings) in entries {
            match name {
                CPU => out.cpu = integer.unwrap_or(0),
                MEMORY => out.memory = integer.unwrap_or(0),
                PORTS => out.ports.extend(strings.iter().flat_map(|s| ports_of(s))),
                PORTS_UDP => out
                    .udp_ports
                    .extend(strings.iter().flat_map(|s| ports_of(s))),
                _ => {}
            }
        }
        out
    }

    /// From the entries of an event's JSON.
    pub fn from_entries(entries: &[ResourceEntry]) -> Self {
        Self::from_named(entries.iter().map(|e| {
            (
                e.name.as_str(),
                e.integer_value,
                e.string_set_value.as_deref().unwrap_or_default(),
            )
        }))
    }
}

/// "8080" → [8080]; "8000-8002" → [8000, 8001, 8002]; anything else → nothing.
fn ports_of(s: &str) -> impl Iterator<Item = u16> {
    let one = |p: &str| p.trim().parse::<u16>().ok();
    let range = match s.split_once('-') {
        Some((a, b)) => one(a).zip(one(b)),
        None => one(s).map(|p| (p, p)),
    };
    range.into_iter().flat_map(|(a, b)| a..=b)
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
    /// it is being replaced) gives up. Err: why not, as an operator reads it; the first reason in
    /// a fixed order: memory, CPU, TCP ports, UDP ports (each in ascending order).
    pub fn fits(&self, remaining: &Resources, freed: Option<&Reservation>) -> Result<(), String> {
        let none = Reservation::default();
        let freed = freed.unwrap_or(&none);
        let free_memory = remaining.memory.saturating_add(freed.memory);
        if self.memory > free_memory {
            return Err(format!(
                "needs {} MiB memory, {free_memory} free",
                self.memory
            ));
        }
        let free_cpu = remaining.cpu.saturating_add(freed.cpu);
        if self.cpu > free_cpu {
            return Err(format!("needs {} CPU units, {free_cpu} free", self.cpu));
        }
        for (needed, in_use, released, protocol) in [
            (&self.ports, &remaining.ports, &freed.ports, "tcp"),
            (
                &self.udp_ports,
                &remaining.udp_ports,
                &freed.udp_ports,
                "udp",
            ),
        ] {
            if let Some(port) = needed
                .iter()
                .find(|p| in_use.contains(p) && !released.contains(p))
            {
                return Err(format!("needs host port {port}/{protocol}, in use"));
            }
        }
        Ok(())
    }
}
