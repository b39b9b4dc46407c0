//! Per-host task overrides: ECS's `TaskOverride` shape, whose string values may hold placeholders
//! filled from each host at launch.
//!
//! Placeholders go in `command` elements and `environment[].value` (environment names are
//! literal):
//!
//! | placeholder | filled with |
//! | --- | --- |
//! | `${host.instanceType}` | attribute `ecs.instance-type` |
//! | `${host.availabilityZone}` | attribute `ecs.availability-zone` |
//! | `${host.instanceId}` | the EC2 instance id |
//! | `${host.containerInstanceArn}` | the container instance ARN |
//! | `${host.cpuArchitecture}` | attribute `ecs.cpu-architecture` (absent: `x86_64`) |
//! | `${host.osType}` | attribute `ecs.os-type` (absent: `linux`) |
//! | `${attribute:NAME}` | the value of attribute NAME |
//!
//! `$${` is a literal `${`; any other `$` is literal. Strings are read left to right, so `$$${x}`
//! is a literal `$` then a literal `${x}`. Anything else between `${` and `}` is refused when the
//! overrides are written, as is a `${` without its `}`.
//!
//! Sizes ECS takes, from the ECS API reference (RegisterTaskDefinition / TaskDefinition `cpu`,
//! `memory`; ContainerDefinition `memory`; RunTask `overrides`):
//! - task-level CPU on EC2 instances: 128 units (0.125 vCPU) to 196,608 units (192 vCPU);
//! - task-level memory on EC2 instances: no fixed bound but the host's; we take at least 6 MiB
//!   (no container runs in less) and at most 2^31 - 1 MiB;
//! - container `memory` / `memoryReservation`: at least 6 MiB (Docker 20.10's minimum);
//! - the whole overrides JSON: at most 8,192 characters.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::host::HostFacts;
use super::resources::{
    TaskNeeds, CPU_ARCHITECTURE_ATTRIBUTE, DEFAULT_CPU_ARCHITECTURE, DEFAULT_OS_TYPE,
    OS_TYPE_ATTRIBUTE,
};
use crate::error::{Error, Result};

/// ECS's limit on the overrides of one RunTask / StartTask, JSON formatting included.
pub const MAX_OVERRIDES_CHARS: usize = 8192;
/// Task-level CPU units ECS takes for a task on EC2 instances.
pub const TASK_CPU_MIN: i64 = 128;
pub const TASK_CPU_MAX: i64 = 196_608;
/// MiB: the least memory Docker (20.10 and later) gives a container.
pub const MEMORY_MIN: i64 = 6;
/// The largest size we take (CPU units or MiB): ECS's container sizes are 32-bit integers.
pub const SIZE_MAX: i64 = i32::MAX as i64;

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

const PLACEHOLDERS: &[&str] = &[
    "${host.instanceType}",
    "${host.availabilityZone}",
    "${host.instanceId}",
    "${host.containerInstanceArn}",
    "${host.cpuArchitecture}",
    "${host.osType}",
    "${attribute:NAME}",
];

/// The placeholders override values may hold (`${attribute:NAME}` stands for any attribute).
pub fn placeholders() -> &'static [&'static str] {
    PLACEHOLDERS
}

const TOP_LEVEL_KEYS: &[&str] = &["containerOverrides", "cpu", "memory"];
const CONTAINER_KEYS: &[&str] = &[
    "name",
    "command",
    "environment",
    "cpu",
    "memory",
    "memoryReservation",
];
const ENVIRONMENT_KEYS: &[&str] = &["name", "value"];

impl TaskOverride {
    /// From a request's value at `field` ("overrides"), checked against the task definition.
    /// Every error names the exact field (`overrides.containerOverrides[0].environment[1].value`).
    /// A task-level `cpu` / `memory` (a string, or a JSON number of units / MiB) is stored as
    /// ECS's plain number ("1 vCPU" → "1024").
    /// A `null` member counts as absent.
    pub fn parse(field: &str, value: &Value, needs: &TaskNeeds) -> Result<Self> {
        let map = object(
            field,
            value,
            "must be an object with containerOverrides, cpu and/or memory",
        )?;
        only_keys(field, map, TOP_LEVEL_KEYS)?;
        let mut out = Self::default();
        if let Some(v) = member(map, "containerOverrides") {
            let path = format!("{field}.containerOverrides");
            out.container_overrides = parse_container_overrides(&path, v, needs)?;
        }
        if let Some(v) = member(map, "cpu") {
            let path = format!("{field}.cpu");
            let units = task_size(&path, v, parse_cpu, "\"1024\" or \"1 vCPU\"")?;
            if !(TASK_CPU_MIN..=TASK_CPU_MAX).contains(&units) {
                return Err(Error::invalid(
                    &path,
                    format!(
                        "{units} CPU units is outside what ECS takes for a task on EC2 instances: \
                         {TASK_CPU_MIN} (0.125 vCPU) to {TASK_CPU_MAX} (192 vCPU)"
                    ),
                ));
            }
            out.cpu = Some(units.to_string());
        }
        if let Some(v) = member(map, "memory") {
            let path = format!("{field}.memory");
            let mib = task_size(&path, v, parse_memory, "\"2048\" or \"2 GB\"")?;
            if mib < MEMORY_MIN {
                return Err(Error::invalid(
                    &path,
                    format!("{mib} MiB is too little: a task needs at least {MEMORY_MIN} MiB"),
                ));
            }
            if mib > SIZE_MAX {
                return Err(Error::invalid(
                    &path,
                    format!("{mib} MiB is too much: at most {SIZE_MAX} MiB"),
                ));
            }
            out.memory = Some(mib.to_string());
        }
        out.check_size().map_err(|m| Error::invalid(field, m))?;
        Ok(out)
    }

    /// The placeholders filled from `host`; Err names the value the host lacks, or says the
    /// filled-in overrides are too long for ECS.
    pub fn resolve(&self, host: &dyn HostFacts) -> std::result::Result<Self, String> {
        let mut out = self.clone();
        for c in &mut out.container_overrides {
            for s in c.command.iter_mut().flatten() {
                *s = fill(s, |p| host_value(host, p))?;
            }
            for kv in c.environment.iter_mut().flatten() {
                kv.value = fill(&kv.value, |p| host_value(host, p))?;
            }
        }
        let n = out.json_chars();
        if n > MAX_OVERRIDES_CHARS {
            return Err(format!(
                "overrides are {n} characters once filled in for this host; ECS takes {MAX_OVERRIDES_CHARS}"
            ));
        }
        Ok(out)
    }

    /// The task-level size a sizing rule sets, replacing what the overrides said. A size that
    /// parses is stored as ECS's plain number ("2 GB" → "2048"); one that does not is kept as
    /// given.
    pub fn sized(mut self, cpu: Option<&str>, memory: Option<&str>) -> Self {
        if let Some(c) = cpu {
            self.cpu = Some(parse_cpu(c).map_or_else(|_| c.to_owned(), |u| u.to_string()));
        }
        if let Some(m) = memory {
            self.memory = Some(parse_memory(m).map_or_else(|_| m.to_owned(), |u| u.to_string()));
        }
        self
    }

    /// ECS takes at most 8,192 characters of overrides JSON (formatting included).
    pub fn check_size(&self) -> std::result::Result<(), String> {
        let n = self.json_chars();
        if n > MAX_OVERRIDES_CHARS {
            return Err(format!(
                "overrides are {n} characters; ECS takes {MAX_OVERRIDES_CHARS}"
            ));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Characters of the JSON sent to ECS (the same members, in the same shape).
    fn json_chars(&self) -> usize {
        serde_json::to_string(self).map_or(usize::MAX, |s| s.chars().count())
    }
}

fn parse_container_overrides(
    path: &str,
    value: &Value,
    needs: &TaskNeeds,
) -> Result<Vec<ContainerOverride>> {
    let items = value
        .as_array()
        .ok_or_else(|| Error::invalid(path, "must be an array of container overrides"))?;
    let mut out: Vec<ContainerOverride> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let map = object(
            &path,
            item,
            "must be an object naming a container: {\"name\": \"...\", ...}",
        )?;
        only_keys(&path, map, CONTAINER_KEYS)?;

        let name_path = format!("{path}.name");
        let name = match member(map, "name") {
            None => {
                return Err(Error::invalid(
                    &name_path,
                    "required: the container of the task definition to override",
                ))
            }
            Some(v) => string(&name_path, v)?,
        };
        let Some(container) = needs.containers.iter().find(|c| c.name == name) else {
            let known: Vec<&str> = needs.containers.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::invalid(
                &name_path,
                if known.is_empty() {
                    format!("the task definition has no container {name:?}: it lists none")
                } else {
                    format!(
                        "the task definition has no container {name:?}; its containers: {}",
                        known.join(", ")
                    )
                },
            ));
        };
        if let Some(j) = out.iter().position(|o| o.name == name) {
            return Err(Error::invalid(
                &name_path,
                format!("container {name} is overridden twice (also in containerOverrides[{j}])"),
            ));
        }
        let mut co = ContainerOverride {
            name: name.to_owned(),
            ..ContainerOverride::default()
        };

        if let Some(v) = member(map, "command") {
            let path = format!("{path}.command");
            let args = v
                .as_array()
                .ok_or_else(|| Error::invalid(&path, "must be an array of strings"))?;
            let mut command = Vec::with_capacity(args.len());
            for (j, arg) in args.iter().enumerate() {
                let path = format!("{path}[{j}]");
                let s = string(&path, arg)?;
                check_placeholders(s).map_err(|m| Error::invalid(&path, m))?;
                command.push(s.to_owned());
            }
            co.command = Some(command);
        }

        if let Some(v) = member(map, "environment") {
            let path = format!("{path}.environment");
            let vars = v.as_array().ok_or_else(|| {
                Error::invalid(&path, "must be an array of {\"name\": ..., \"value\": ...}")
            })?;
            let mut environment = Vec::with_capacity(vars.len());
            for (j, var) in vars.iter().enumerate() {
                let path = format!("{path}[{j}]");
                let map = object(
                    &path,
                    var,
                    "must be an object {\"name\": ..., \"value\": ...}",
                )?;
                only_keys(&path, map, ENVIRONMENT_KEYS)?;
                let name_path = format!("{path}.name");
                let name = match member(map, "name") {
                    None => return Err(Error::invalid(&name_path, "required")),
                    Some(v) => string(&name_path, v)?,
                };
                if name.is_empty() {
                    return Err(Error::invalid(&name_path, "must not be empty"));
                }
                let value_path = format!("{path}.value");
                let value = match member(map, "value") {
                    None => {
                        return Err(Error::invalid(
                            &value_path,
                            "required (\"\" for an empty value)",
                        ))
                    }
                    Some(v) => string(&value_path, v)?,
                };
                check_placeholders(value).map_err(|m| Error::invalid(&value_path, m))?;
                environment.push(KeyValuePair {
                    name: name.to_owned(),
                    value: value.to_owned(),
                });
            }
            co.environment = Some(environment);
        }

        if let Some(v) = member(map, "cpu") {
            co.cpu = Some(integer(&format!("{path}.cpu"), v, 0, "CPU units", "")?);
        }
        const DOCKER_MIN: &str = " (Docker's minimum for a container)";
        if let Some(v) = member(map, "memory") {
            co.memory = Some(integer(
                &format!("{path}.memory"),
                v,
                MEMORY_MIN,
                "MiB",
                DOCKER_MIN,
            )?);
        }
        if let Some(v) = member(map, "memoryReservation") {
            co.memory_reservation = Some(integer(
                &format!("{path}.memoryReservation"),
                v,
                MEMORY_MIN,
                "MiB",
                DOCKER_MIN,
            )?);
        }
        // The soft limit may not exceed the hard limit, whichever of the two the override sets
        // and the task definition keeps.
        let memory = co.memory.or(container.memory);
        let reservation = co.memory_reservation.or(container.memory_reservation);
        if let (Some(memory), Some(reservation)) = (memory, reservation) {
            if reservation > memory {
                return Err(if co.memory_reservation.is_some() {
                    let from = if co.memory.is_some() {
                        ""
                    } else {
                        ", from the task definition"
                    };
                    Error::invalid(
                        &format!("{path}.memoryReservation"),
                        format!(
                            "{reservation} MiB is more than the container's memory ({memory} MiB{from})"
                        ),
                    )
                } else {
                    Error::invalid(
                        &format!("{path}.memory"),
                        format!(
                            "{memory} MiB is less than the container's memoryReservation \
                             ({reservation} MiB, from the task definition)"
                        ),
                    )
                });
            }
        }
        out.push(co);
    }
    Ok(out)
}

/// A member that is present and not `null`.
fn member<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn object<'a>(path: &str, value: &'a Value, message: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| Error::invalid(path, message))
}

fn only_keys(path: &str, map: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Error::invalid(
            &format!("{path}.{k}"),
            format!("unknown field {k}; allowed here: {}", allowed.join(", ")),
        )),
    }
}

fn string<'a>(path: &str, value: &'a Value) -> Result<&'a str> {
    value
        .as_str()
        .ok_or_else(|| Error::invalid(path, "must be a string"))
}

fn integer(path: &str, value: &Value, min: i64, unit: &str, why_min: &str) -> Result<i64> {
    let n = match value.as_i64() {
        Some(n) => n,
        None if value.is_u64() => i64::MAX,
        None => {
            return Err(Error::invalid(
                path,
                format!("must be a whole number of {unit}"),
            ))
        }
    };
    if n < min {
        return Err(Error::invalid(
            path,
            format!("must be at least {min} {unit}{why_min}"),
        ));
    }
    if n > SIZE_MAX {
        return Err(Error::invalid(
            path,
            format!("must be at most {SIZE_MAX} {unit}"),
        ));
    }
    Ok(n)
}

fn task_size(
    path: &str,
    value: &Value,
    parse: fn(&str) -> std::result::Result<i64, String>,
    example: &str,
) -> Result<i64> {
    match value {
        Value::String(s) => parse(s),
        Value::Number(n) => parse(&n.to_string()),
        _ => {
            return Err(Error::invalid(
                path,
                format!("must be a size such as {example}"),
            ))
        }
    }
    .map_err(|m| Error::invalid(path, m))
}

/// A placeholder's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder<'a> {
    InstanceType,
    AvailabilityZone,
    InstanceId,
    ContainerInstanceArn,
    CpuArchitecture,
    OsType,
    Attribute(&'a str),
}

fn placeholder(name: &str) -> std::result::Result<Placeholder<'_>, String> {
    Ok(match name {
        "host.instanceType" => Placeholder::InstanceType,
        "host.availabilityZone" => Placeholder::AvailabilityZone,
        "host.instanceId" => Placeholder::InstanceId,
        "host.containerInstanceArn" => Placeholder::ContainerInstanceArn,
        "host.cpuArchitecture" => Placeholder::CpuArchitecture,
        "host.osType" => Placeholder::OsType,
        _ => match name.strip_prefix("attribute:") {
            Some(attribute) if is_attribute_name(attribute) => Placeholder::Attribute(attribute),
            Some(attribute) => {
                return Err(format!(
                    "${{attribute:{attribute}}} names no attribute: an attribute name is 1 to 128 \
                     letters, digits, hyphens, underscores, periods, slashes or back slashes; \
                     write $${{ for a literal ${{"
                ))
            }
            None => {
                return Err(format!(
                    "unknown placeholder ${{{name}}}; known: {}; write $${{ for a literal ${{",
                    PLACEHOLDERS.join(", ")
                ))
            }
        },
    })
}

/// ECS's rule for attribute names.
fn is_attribute_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./\\".contains(c))
}

/// `s` with each placeholder replaced by `value`'s answer and each `$${` by `${`.
fn fill(
    s: &str,
    mut value: impl FnMut(Placeholder<'_>) -> std::result::Result<String, String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body) = rest.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                return Err("${ without its closing }; write $${ for a literal ${".to_owned());
            };
            out.push_str(&value(placeholder(&body[..end])?)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Err: the first malformed or unknown placeholder of `s`.
fn check_placeholders(s: &str) -> std::result::Result<(), String> {
    fill(s, |_| Ok(String::new())).map(drop)
}

fn host_value(host: &dyn HostFacts, p: Placeholder<'_>) -> std::result::Result<String, String> {
    let attribute = |name: &str| match host.attribute(name) {
        Some(Some(v)) => Ok(v.to_owned()),
        Some(None) => Err(format!("attribute {name} has no value")),
        None => Err(format!("attribute {name} is not set on this host")),
    };
    let attribute_or =
        |name: &str, default: &str| host.attribute(name).flatten().unwrap_or(default).to_owned();
    match p {
        Placeholder::InstanceType => attribute("ecs.instance-type"),
        Placeholder::AvailabilityZone => attribute("ecs.availability-zone"),
        Placeholder::InstanceId => host
            .ec2_instance_id()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| "the host has no EC2 instance id".to_owned()),
        Placeholder::ContainerInstanceArn => Ok(host.container_instance_arn().to_owned()),
        Placeholder::CpuArchitecture => Ok(attribute_or(
            CPU_ARCHITECTURE_ATTRIBUTE,
            DEFAULT_CPU_ARCHITECTURE,
        )),
        Placeholder::OsType => Ok(attribute_or(OS_TYPE_ATTRIBUTE, DEFAULT_OS_TYPE)),
        Placeholder::Attribute(name) => attribute(name),
    }
}

/// Why a decimal could not be scaled to a whole number.
enum Scale {
    NotANumber,
    NotWhole,
    TooLarge,
}

/// `number × factor` for a plain decimal (`2`, `0.5`, `.25`), exact: Err unless whole.
fn scaled(number: &str, factor: i64) -> std::result::Result<i64, Scale> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(Scale::NotANumber);
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if int.len() > 18 {
        return Err(Scale::TooLarge);
    }
    // With more than 10 significant decimals, × 1,024 (2^10) is never whole.
    if frac.len() > 10 {
        return Err(Scale::NotWhole);
    }
    let parse = |s: &str| {
        if s.is_empty() {
            Ok(0)
        } else {
            s.parse::<i128>()
        }
    };
    let (Ok(i), Ok(f)) = (parse(int), parse(frac)) else {
        return Err(Scale::NotANumber);
    };
    let denominator = 10i128.pow(u32::try_from(frac.len()).unwrap_or(0));
    let numerator = (i * denominator + f) * i128::from(factor);
    if numerator % denominator != 0 {
        return Err(Scale::NotWhole);
    }
    i64::try_from(numerator / denominator).map_err(|_| Scale::TooLarge)
}

/// A size: a whole number of the base unit, or a decimal followed by `suffix` (any case, space
/// optional) times `factor`.
fn parse_size(
    s: &str,
    suffix: &str,
    factor: i64,
    what: &str,
    forms: &str,
    unit_note: &str,
) -> std::result::Result<i64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let result = match lower.strip_suffix(suffix) {
        Some(number) => scaled(number.trim_end(), factor),
        None => scaled(t, 1),
    };
    result.map_err(|e| match e {
        Scale::NotANumber => format!("{s:?} is not a {what} size: give {forms}"),
        Scale::NotWhole => format!("{s:?} is not a whole number of {unit_note}"),
        Scale::TooLarge => format!("{s:?} is too large a {what} size"),
    })
}

/// A task-level CPU size as ECS takes it, in units: "1024"; or vCPUs, "1 vCPU", "0.5 vcpu",
/// "2vCPU" (×1,024, which must come out whole).
pub fn parse_cpu(s: &str) -> std::result::Result<i64, String> {
    parse_size(
        s,
        "vcpu",
        1024,
        "CPU",
        "CPU units as a whole number (\"1024\") or vCPUs (\"1 vCPU\", \"0.5 vcpu\")",
        "CPU units (1 vCPU = 1024 units)",
    )
}

/// A task-level memory size as ECS takes it, in MiB: "2048"; or GB, "2 GB", "0.5GB" (×1,024,
/// which must come out whole).
pub fn parse_memory(s: &str) -> std::result::Result<i64, String> {
    parse_size(
        s,
        "gb",
        1024,
        "memory",
        "MiB as a whole number (\"2048\") or GB (\"2 GB\", \"0.5GB\")",
        "MiB (1 GB = 1024 MiB)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::host::Attributes;
    use crate::domain::resources::ContainerNeeds;
    use proptest::prelude::*;
    use serde_json::json;

    struct FakeHost {
        arn: String,
        instance_id: Option<String>,
        attributes: Attributes,
    }

    impl FakeHost {
        fn full() -> Self {
            Self {
                arn: "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/abc".into(),
                instance_id: Some("i-0123456789abcdef0".into()),
                attributes: [
                    ("ecs.instance-type", Some("m7g.large")),
                    ("ecs.availability-zone", Some("eu-west-1b")),
                    ("ecs.cpu-architecture", Some("arm64")),
                    ("ecs.os-type", Some("linux")),
                    ("team", Some("blue")),
                    ("flag", None),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
                .collect(),
            }
        }

        fn bare() -> Self {
            Self {
                arn: "arn:x".into(),
                instance_id: None,
                attributes: Attributes::new(),
            }
        }
    }

    impl HostFacts for FakeHost {
        fn container_instance_arn(&self) -> &str {
            &self.arn
        }
        fn attribute(&self, name: &str) -> Option<Option<&str>> {
            self.attributes.get(name).map(|v| v.as_deref())
        }
        fn ec2_instance_id(&self) -> Option<&str> {
            self.instance_id.as_deref()
        }
        fn agent_connected(&self) -> bool {
            true
        }
        fn agent_version(&self) -> Option<&str> {
            None
        }
    }

    fn needs() -> TaskNeeds {
        TaskNeeds {
            containers: vec![
                ContainerNeeds {
                    name: "app".into(),
                    memory: Some(512),
                    memory_reservation: Some(256),
                    ..ContainerNeeds::default()
                },
                ContainerNeeds {
                    name: "sidecar".into(),
                    memory: Some(128),
                    ..ContainerNeeds::default()
                },
            ],
            ..TaskNeeds::default()
        }
    }

    fn parse(v: Value) -> Result<TaskOverride> {
        TaskOverride::parse("overrides", &v, &needs())
    }

    /// The field and message of a parse error.
    fn refused(v: Value) -> (String, String) {
        match parse(v) {
            Err(Error::InvalidInput { field, message }) => (field, message),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    fn field_of(v: Value) -> String {
        refused(v).0
    }

    // --- sizes ---

    #[test]
    fn parse_cpu_forms() {
        assert_eq!(parse_cpu("1024"), Ok(1024));
        assert_eq!(parse_cpu(" 256 "), Ok(256));
        assert_eq!(parse_cpu("1 vCPU"), Ok(1024));
        assert_eq!(parse_cpu("0.5 vcpu"), Ok(512));
        assert_eq!(parse_cpu("2vCPU"), Ok(2048));
        assert_eq!(parse_cpu(".25 VCPU"), Ok(256));
        assert_eq!(parse_cpu("0.125 vCPU"), Ok(128));
        assert_eq!(parse_cpu("192 vCPU"), Ok(196_608));
        assert_eq!(parse_cpu("1.50 vcpu"), Ok(1536));
        assert_eq!(parse_cpu("0"), Ok(0));
    }

    #[test]
    fn parse_cpu_errors_say_the_accepted_forms() {
        for bad in [
            "", "abc", "-1", "1 cpu", "1e3", "vcpu", "1 2 vcpu", "+5", "0x10",
        ] {
            let e = parse_cpu(bad).unwrap_err();
            assert!(
                e.contains("\"1024\"") && e.contains("\"1 vCPU\""),
                "{bad}: {e}"
            );
        }
        let e = parse_cpu("0.1 vCPU").unwrap_err();
        assert_eq!(
            e,
            "\"0.1 vCPU\" is not a whole number of CPU units (1 vCPU = 1024 units)"
        );
        assert!(parse_cpu("1024.5").unwrap_err().contains("whole number"));
        assert!(parse_cpu("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_cpu("9999999999999999 vcpu")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn parse_memory_forms() {
        assert_eq!(parse_memory("2048"), Ok(2048));
        assert_eq!(parse_memory("2 GB"), Ok(2048));
        assert_eq!(parse_memory("0.5GB"), Ok(512));
        assert_eq!(parse_memory("1gb"), Ok(1024));
        assert_eq!(parse_memory("30 Gb"), Ok(30_720));
    }

    #[test]
    fn parse_memory_errors_say_the_accepted_forms() {
        for bad in ["", "2 TB", "2 GiB", "2 MB", "lots", "-2 GB"] {
            let e = parse_memory(bad).unwrap_err();
            assert!(
                e.contains("\"2048\"") && e.contains("\"2 GB\""),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            parse_memory("0.001GB").unwrap_err(),
            "\"0.001GB\" is not a whole number of MiB (1 GB = 1024 MiB)"
        );
    }

    // --- parse: accepted ---

    #[test]
    fn parses_a_full_override() {
        let o = parse(json!({
            "containerOverrides": [
                {
                    "name": "app",
                    "command": ["serve", "--zone=${host.availabilityZone}", "$${HOME}"],
                    "environment": [
                        {"name": "TEAM", "value": "${attribute:team}"},
                        {"name": "${LITERAL}", "value": "plain"}
                    ],
                    "cpu": 256,
                    "memory": 1024,
                    "memoryReservation": 512
                },
                {"name": "sidecar"}
            ],
            "cpu": "1 vCPU",
            "memory": "2 GB"
        }))
        .unwrap();
        assert_eq!(o.cpu.as_deref(), Some("1024"));
        assert_eq!(o.memory.as_deref(), Some("2048"));
        assert_eq!(o.container_overrides.len(), 2);
        let app = &o.container_overrides[0];
        assert_eq!(app.name, "app");
        assert_eq!(
            app.command.as_ref().unwrap()[1],
            "--zone=${host.availabilityZone}"
        );
        assert_eq!(app.environment.as_ref().unwrap()[1].name, "${LITERAL}");
        assert_eq!(
            (app.cpu, app.memory, app.memory_reservation),
            (Some(256), Some(1024), Some(512))
        );
        assert_eq!(
            o.container_overrides[1],
            ContainerOverride {
                name: "sidecar".into(),
                ..Default::default()
            }
        );
        // What is stored reads back the same.
        let again = parse(serde_json::to_value(&o).unwrap()).unwrap();
        assert_eq!(again, o);
    }

    #[test]
    fn empty_and_null_members_are_accepted() {
        assert!(parse(json!({})).unwrap().is_empty());
        assert!(
            parse(json!({"containerOverrides": [], "cpu": null, "memory": null}))
                .unwrap()
                .is_empty()
        );
        let o =
            parse(json!({"containerOverrides": [{"name": "app", "command": null, "cpu": null}]}))
                .unwrap();
        assert_eq!(
            o.container_overrides[0],
            ContainerOverride {
                name: "app".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn task_size_bounds() {
        assert_eq!(
            parse(json!({"cpu": "128"})).unwrap().cpu.as_deref(),
            Some("128")
        );
        assert_eq!(
            parse(json!({"cpu": "192 vCPU"})).unwrap().cpu.as_deref(),
            Some("196608")
        );
        assert_eq!(
            parse(json!({"memory": "6"})).unwrap().memory.as_deref(),
            Some("6")
        );
        assert_eq!(
            parse(json!({"memory": "0.5GB"})).unwrap().memory.as_deref(),
            Some("512")
        );
        // JSON numbers are units / MiB.
        let o = parse(json!({"cpu": 1024, "memory": 2048})).unwrap();
        assert_eq!(
            (o.cpu.as_deref(), o.memory.as_deref()),
            (Some("1024"), Some("2048"))
        );
    }

    // --- parse: refused, with the exact field ---

    #[test]
    fn refuses_what_is_not_an_object() {
        for v in [json!([]), json!("x"), json!(1), json!(null)] {
            assert_eq!(field_of(v), "overrides");
        }
    }

    #[test]
    fn refuses_unknown_members() {
        let (field, message) = refused(json!({"taskRoleArn": "arn:x"}));
        assert_eq!(field, "overrides.taskRoleArn");
        assert!(
            message.contains("containerOverrides, cpu, memory"),
            "{message}"
        );
        assert_eq!(
            field_of(json!({"containerOverrides": [{"name": "app", "image": "x"}]})),
            "overrides.containerOverrides[0].image"
        );
        assert_eq!(
            field_of(
                json!({"containerOverrides": [{"name": "app", "environment": [{"name": "A", "value": "b", "type": "x"}]}]})
            ),
            "overrides.containerOverrides[0].environment[0].type"
        );
    }

    #[test]
    fn uses_the_given_prefix() {
        let e = TaskOverride::parse(
            "body.environments[2].overrides",
            &json!({"cpu": 1}),
            &needs(),
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("body.environments[2].overrides.cpu"));
    }

    #[test]
    fn container_overrides_shape() {
        assert_eq!(
            field_of(json!({"containerOverrides": {}})),
            "overrides.containerOverrides"
        );
        assert_eq!(
            field_of(json!({"containerOverrides": ["app"]})),
            "overrides.containerOverrides[0]"
        );
        let (field, message) = refused(json!({"containerOverrides": [{"cpu": 1}]}));
        assert_eq!(field, "overrides.containerOverrides[0].name");
        assert!(message.starts_with("required"), "{message}");
        assert_eq!(
            field_of(json!({"containerOverrides": [{"name": 7}]})),
            "overrides.containerOverrides[0].name"
        );
    }

    #[test]
    fn container_names_must_be_of_the_task_definition_and_once() {
        let (field, message) =
            refused(json!({"containerOverrides": [{"name": "app"}, {"name": "web"}]}));
        assert_eq!(field, "overrides.containerOverrides[1].name");
        assert_eq!(
            message,
            "the task definition has no container \"web\"; its containers: app, sidecar"
        );
        let (field, message) = refused(
            json!({"containerOverrides": [{"name": "app"}, {"name": "sidecar"}, {"name": "app"}]}),
        );
        assert_eq!(field, "overrides.containerOverrides[2].name");
        assert_eq!(
            message,
            "container app is overridden twice (also in containerOverrides[0])"
        );
        let e = TaskOverride::parse(
            "overrides",
            &json!({"containerOverrides": [{"name": "app"}]}),
            &TaskNeeds::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("lists none"), "{e}");
    }

    #[test]
    fn command_shape() {
        assert_eq!(
            field_of(json!({"containerOverrides": [{"name": "app", "command": "serve"}]})),
            "overrides.containerOverrides[0].command"
        );
        assert_eq!(
            field_of(json!({"containerOverrides": [{"name": "app", "command": ["serve", 1]}]})),
            "overrides.containerOverrides[0].command[1]"
        );
    }

    #[test]
    fn environment_shape() {
        let env = |e: Value| json!({"containerOverrides": [{"name": "sidecar", "environment": e}]});
        assert_eq!(
            field_of(env(json!({}))),
            "overrides.containerOverrides[0].environment"
        );
        assert_eq!(
            field_of(env(json!(["A=b"]))),
            "overrides.containerOverrides[0].environment[0]"
        );
        assert_eq!(
            field_of(env(json!([{"value": "b"}]))),
            "overrides.containerOverrides[0].environment[0].name"
        );
        let (field, message) = refused(env(
            json!([{"name": "A", "value": "1"}, {"name": "", "value": "b"}]),
        ));
        assert_eq!(
            (field.as_str(), message.as_str()),
            (
                "overrides.containerOverrides[0].environment[1].name",
                "must not be empty"
            )
        );
        assert_eq!(
            field_of(env(json!([{"name": "A"}]))),
            "overrides.containerOverrides[0].environment[0].value"
        );
        assert_eq!(
            field_of(env(json!([{"name": "A", "value": 1}]))),
            "overrides.containerOverrides[0].environment[0].value"
        );
    }

    #[test]
    fn unknown_placeholder_names_the_field_and_the_known_ones() {
        let (field, message) = refused(
            json!({"containerOverrides": [{"name": "app", "environment": [
                {"name": "A", "value": "ok ${host.instanceId}"},
                {"name": "B", "value": "${host.az}"}
            ]}]}),
        );
        assert_eq!(
            field,
            "overrides.containerOverrides[0].environment[1].value"
        );
        assert!(
            message.starts_with("unknown placeholder ${host.az}; known: ${host.instanceType}, ${host.availabilityZone}, "),
            "{message}"
        );
        assert!(message.contains("${attribute:NAME}"), "{message}");

        let (field, message) =
            refused(json!({"containerOverrides": [{"name": "app", "command": ["a", "b", "${}"]}]}));
        assert_eq!(field, "overrides.containerOverrides[0].command[2]");
        assert!(message.starts_with("unknown placeholder ${};"), "{message}");
    }

    #[test]
    fn malformed_placeholders_are_refused() {
        for bad in [
            "${host.instanceId",
            "x ${",
            "${attribute:}",
            "${attribute:has space}",
            "${attribute:a=b}",
        ] {
            let (field, message) =
                refused(json!({"containerOverrides": [{"name": "app", "command": [bad]}]}));
            assert_eq!(field, "overrides.containerOverrides[0].command[0]", "{bad}");
            assert!(message.contains("$${"), "{bad}: {message}");
        }
        let long = format!("${{attribute:{}}}", "a".repeat(129));
        assert!(
            parse(json!({"containerOverrides": [{"name": "app", "command": [long]}]})).is_err()
        );
        let ok = format!("${{attribute:{}}}", "a".repeat(128));
        assert!(parse(json!({"containerOverrides": [{"name": "app", "command": [ok]}]})).is_ok());
        // Dollars that open no placeholder are literal.
        let o = parse(
            json!({"containerOverrides": [{"name": "app", "command": ["$", "$$", "a$b", "$}", "$$${attribute:x.y/z\\w_-}"]}]}),
        );
        assert!(o.is_ok(), "{o:?}");
    }

    #[test]
    fn container_sizes() {
        let co = |m: Value| json!({"containerOverrides": [m]});
        let (field, message) = refused(co(json!({"name": "sidecar", "cpu": -1})));
        assert_eq!(
            (field.as_str(), message.as_str()),
            (
                "overrides.containerOverrides[0].cpu",
                "must be at least 0 CPU units"
            )
        );
        assert_eq!(
            refused(co(json!({"name": "sidecar", "cpu": 1.5}))).1,
            "must be a whole number of CPU units"
        );
        assert_eq!(
            refused(co(json!({"name": "sidecar", "cpu": "512"}))).1,
            "must be a whole number of CPU units"
        );
        assert!(
            refused(co(json!({"name": "sidecar", "cpu": 3_000_000_000u64})))
                .1
                .contains("at most")
        );
        assert!(refused(co(json!({"name": "sidecar", "cpu": u64::MAX})))
            .1
            .contains("at most"));
        let (field, message) = refused(co(json!({"name": "sidecar", "memory": 5})));
        assert_eq!(field, "overrides.containerOverrides[0].memory");
        assert_eq!(
            message,
            "must be at least 6 MiB (Docker's minimum for a container)"
        );
        assert_eq!(
            field_of(co(json!({"name": "sidecar", "memoryReservation": 4}))),
            "overrides.containerOverrides[0].memoryReservation"
        );
        assert!(parse(co(
            json!({"name": "sidecar", "cpu": 0, "memory": 6, "memoryReservation": 6})
        ))
        .is_ok());
    }

    #[test]
    fn memory_reservation_may_not_exceed_memory() {
        let co = |m: Value| json!({"containerOverrides": [m]});
        // Both in the override.
        let (field, message) = refused(co(
            json!({"name": "sidecar", "memory": 100, "memoryReservation": 200}),
        ));
        assert_eq!(field, "overrides.containerOverrides[0].memoryReservation");
        assert_eq!(
            message,
            "200 MiB is more than the container's memory (100 MiB)"
        );
        assert!(parse(co(
            json!({"name": "sidecar", "memory": 200, "memoryReservation": 200})
        ))
        .is_ok());
        // Reservation overridden past the definition's memory (sidecar: 128).
        let (field, message) = refused(co(json!({"name": "sidecar", "memoryReservation": 200})));
        assert_eq!(field, "overrides.containerOverrides[0].memoryReservation");
        assert_eq!(
            message,
            "200 MiB is more than the container's memory (128 MiB, from the task definition)"
        );
        // Memory overridden below the definition's reservation (app: 256).
        let (field, message) = refused(co(json!({"name": "app", "memory": 100})));
        assert_eq!(field, "overrides.containerOverrides[0].memory");
        assert_eq!(message, "100 MiB is less than the container's memoryReservation (256 MiB, from the task definition)");
        // Both overridden consistently, whatever the definition says.
        assert!(parse(co(
            json!({"name": "app", "memory": 100, "memoryReservation": 64})
        ))
        .is_ok());
    }

    #[test]
    fn task_sizes_refused() {
        let (field, message) = refused(json!({"cpu": true}));
        assert_eq!(field, "overrides.cpu");
        assert_eq!(message, "must be a size such as \"1024\" or \"1 vCPU\"");
        assert!(refused(json!({"cpu": 1.5}))
            .1
            .contains("not a whole number"));
        assert_eq!(field_of(json!({"cpu": 64})), "overrides.cpu");
        let (field, message) = refused(json!({"cpu": "lots"}));
        assert_eq!(field, "overrides.cpu");
        assert!(message.contains("is not a CPU size"), "{message}");
        let (field, message) = refused(json!({"cpu": "64"}));
        assert_eq!(field, "overrides.cpu");
        assert_eq!(
            message,
            "64 CPU units is outside what ECS takes for a task on EC2 instances: 128 (0.125 vCPU) to 196608 (192 vCPU)"
        );
        assert_eq!(field_of(json!({"cpu": "193 vCPU"})), "overrides.cpu");
        let (field, message) = refused(json!({"memory": "2 TB"}));
        assert_eq!(field, "overrides.memory");
        assert!(message.contains("is not a memory size"), "{message}");
        assert_eq!(
            refused(json!({"memory": "5"})).1,
            "5 MiB is too little: a task needs at least 6 MiB"
        );
        assert!(refused(json!({"memory": "3000000 GB"}))
            .1
            .contains("too much"));
        assert_eq!(field_of(json!({"memory": [2048]})), "overrides.memory");
    }

    #[test]
    fn refuses_overrides_longer_than_ecs_takes() {
        let big = "x".repeat(MAX_OVERRIDES_CHARS);
        let (field, message) =
            refused(json!({"containerOverrides": [{"name": "app", "command": [big]}]}));
        assert_eq!(field, "overrides");
        assert!(message.starts_with("overrides are 82"), "{message}");
        assert!(message.ends_with("characters; ECS takes 8192"), "{message}");
    }

    // --- check_size, sized, is_empty ---

    fn with_command(args: &[&str]) -> TaskOverride {
        TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: "app".into(),
                command: Some(args.iter().map(|s| s.to_string()).collect()),
                ..ContainerOverride::default()
            }],
            ..TaskOverride::default()
        }
    }

    #[test]
    fn check_size_counts_the_json_characters() {
        // {"containerOverrides":[{"name":"app","command":["…"]}]} is 51 characters around the arg.
        let frame = serde_json::to_string(&with_command(&[""]))
            .unwrap()
            .chars()
            .count();
        let fits = "é".repeat(MAX_OVERRIDES_CHARS - frame);
        assert_eq!(with_command(&[&fits]).check_size(), Ok(()));
        let over = "é".repeat(MAX_OVERRIDES_CHARS - frame + 1);
        assert_eq!(
            with_command(&[&over]).check_size(),
            Err("overrides are 8193 characters; ECS takes 8192".into())
        );
    }

    #[test]
    fn sized_replaces_task_level_size() {
        let o = TaskOverride {
            cpu: Some("256".into()),
            memory: Some("512".into()),
            ..TaskOverride::default()
        };
        let s = o.clone().sized(Some("1 vCPU"), None);
        assert_eq!(
            (s.cpu.as_deref(), s.memory.as_deref()),
            (Some("1024"), Some("512"))
        );
        let s = o.clone().sized(None, Some("2 GB"));
        assert_eq!(
            (s.cpu.as_deref(), s.memory.as_deref()),
            (Some("256"), Some("2048"))
        );
        let s = o.sized(Some("odd"), Some("4096"));
        assert_eq!(
            (s.cpu.as_deref(), s.memory.as_deref()),
            (Some("odd"), Some("4096"))
        );
        assert!(TaskOverride::default().sized(None, None).is_empty());
        assert!(!TaskOverride::default().sized(Some("1024"), None).is_empty());
    }

    // --- resolve ---

    #[test]
    fn resolve_fills_every_placeholder() {
        let o = TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: "app".into(),
                command: Some(vec![
                    "${host.instanceType}/${host.availabilityZone}/${host.instanceId}".into(),
                    "${host.containerInstanceArn}".into(),
                    "${host.cpuArchitecture}-${host.osType}".into(),
                    "team=${attribute:team} cost=$$${attribute:team} $${HOME} $5".into(),
                ]),
                environment: Some(vec![KeyValuePair {
                    name: "${KEPT}".into(),
                    value: "${attribute:ecs.availability-zone}".into(),
                }]),
                ..ContainerOverride::default()
            }],
            cpu: Some("1024".into()),
            memory: None,
        };
        let r = o.resolve(&FakeHost::full()).unwrap();
        let c = &r.container_overrides[0];
        assert_eq!(
            c.command.as_deref().unwrap(),
            [
                "m7g.large/eu-west-1b/i-0123456789abcdef0",
                "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/abc",
                "arm64-linux",
                "team=blue cost=$${attribute:team} ${HOME} $5",
            ]
        );
        let env = c.environment.as_deref().unwrap();
        assert_eq!(
            (env[0].name.as_str(), env[0].value.as_str()),
            ("${KEPT}", "eu-west-1b")
        );
        assert_eq!(r.cpu.as_deref(), Some("1024"));
    }

    #[test]
    fn resolve_defaults_architecture_and_os_type() {
        let r =
            with_command(&["${host.cpuArchitecture} ${host.osType} ${host.containerInstanceArn}"])
                .resolve(&FakeHost::bare())
                .unwrap();
        assert_eq!(
            r.container_overrides[0].command.as_deref().unwrap(),
            ["x86_64 linux arn:x"]
        );
    }

    #[test]
    fn resolve_names_what_the_host_lacks() {
        let bare = FakeHost::bare();
        let full = FakeHost::full();
        let cases: [(&str, &FakeHost, &str); 6] = [
            (
                "${attribute:team}",
                &bare,
                "attribute team is not set on this host",
            ),
            ("${attribute:flag}", &full, "attribute flag has no value"),
            (
                "${host.instanceId}",
                &bare,
                "the host has no EC2 instance id",
            ),
            (
                "${host.instanceType}",
                &bare,
                "attribute ecs.instance-type is not set on this host",
            ),
            (
                "${host.availabilityZone}",
                &bare,
                "attribute ecs.availability-zone is not set on this host",
            ),
            ("${host.az}", &full, "unknown placeholder ${host.az}"),
        ];
        for (arg, host, expected) in cases {
            let e = with_command(&[arg]).resolve(host).unwrap_err();
            assert!(e.starts_with(expected), "{arg}: {e}");
            // Environment values too.
            let o = TaskOverride {
                container_overrides: vec![ContainerOverride {
                    name: "app".into(),
                    environment: Some(vec![KeyValuePair {
                        name: "A".into(),
                        value: arg.into(),
                    }]),
                    ..ContainerOverride::default()
                }],
                ..TaskOverride::default()
            };
            assert!(o.resolve(host).unwrap_err().starts_with(expected), "{arg}");
        }
    }

    #[test]
    fn resolve_refuses_what_grows_past_the_limit() {
        let args: Vec<String> = (0..200)
            .map(|_| "${host.containerInstanceArn}".to_owned())
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = with_command(&args);
        assert_eq!(o.check_size(), Ok(()));
        let e = o.resolve(&FakeHost::full()).unwrap_err();
        assert!(e.starts_with("overrides are "), "{e}");
        assert!(
            e.ends_with(" characters once filled in for this host; ECS takes 8192"),
            "{e}"
        );
    }

    #[test]
    fn placeholders_lists_the_known_ones() {
        assert_eq!(placeholders().len(), 7);
        for p in placeholders() {
            let name = &p[2..p.len() - 1];
            let name = name.replace("NAME", "custom.attr");
            assert!(placeholder(&name).is_ok(), "{p}");
        }
    }

    // --- properties ---

    fn literal() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ${}=/._-]{0,20}".prop_filter("no placeholder", |s| !s.contains("${"))
    }

    fn override_without_placeholders() -> impl Strategy<Value = TaskOverride> {
        let container = (
            "[a-z]{1,8}",
            prop::option::of(prop::collection::vec(literal(), 0..4)),
            prop::option::of(prop::collection::vec(
                (literal(), literal()).prop_map(|(name, value)| KeyValuePair { name, value }),
                0..4,
            )),
            prop::option::of(0i64..4096),
        )
            .prop_map(|(name, command, environment, cpu)| ContainerOverride {
                name,
                command,
                environment,
                cpu,
                ..ContainerOverride::default()
            });
        (
            prop::collection::vec(container, 0..4),
            prop::option::of(literal()),
        )
            .prop_map(|(container_overrides, cpu)| TaskOverride {
                container_overrides,
                cpu,
                memory: None,
            })
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("containerOverrides".to_owned()),
            Just("name".to_owned()),
            Just("command".to_owned()),
            Just("environment".to_owned()),
            Just("value".to_owned()),
            Just("cpu".to_owned()),
            Just("memory".to_owned()),
            Just("memoryReservation".to_owned()),
            "[a-z]{1,6}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            prop_oneof![
                Just("app".to_owned()),
                Just("sidecar".to_owned()),
                Just("1 vCPU".to_owned()),
                Just("${host.instanceId}".to_owned()),
                "[0-9]{1,6}",
                "[0-9.]{1,5} ?(vcpu|GB)",
                ".{0,12}",
                "[$a-z{}.:]{0,16}",
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kvs| Value::Object(kvs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn resolving_without_placeholders_changes_nothing(o in override_without_placeholders()) {
            prop_assert_eq!(o.resolve(&FakeHost::full()), Ok(o.clone()));
            prop_assert_eq!(o.resolve(&FakeHost::bare()), Ok(o.clone()));
        }

        #[test]
        fn parse_never_panics_and_what_it_accepts_reads_back(v in any_json()) {
            let top = TaskOverride::parse("overrides", &v, &needs());
            let wrapped = json!({"containerOverrides": [v.clone()]});
            let inner = TaskOverride::parse("overrides", &wrapped, &needs());
            for parsed in [top, inner].into_iter().flatten() {
                let again = TaskOverride::parse("overrides", &serde_json::to_value(&parsed).unwrap(), &needs());
                prop_assert_eq!(again.ok(), Some(parsed));
            }
        }

        #[test]
        fn parse_errors_name_a_field_under_the_prefix(v in any_json()) {
            if let Err(e) = TaskOverride::parse("overrides", &v, &needs()) {
                let field = e.field().unwrap_or_default();
                prop_assert!(field == "overrides" || field.starts_with("overrides."), "{}", field);
            }
        }

        #[test]
        fn size_parsers_never_panic(s in ".{0,24}") {
            let _ = parse_cpu(&s);
            let _ = parse_memory(&s);
        }
    }
}
