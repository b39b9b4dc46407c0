//! Placement: which hosts an environment's daemon belongs on (placement constraints), what size
//! it gets on each (sizing rules), the answer for one host (`Verdict`), what a slot records of it
//! (`Placement`), and the order between daemons on a host (`Order`, from `dependsOn`).
//!
//! The one decision per host is `Target::wants` (domain/target.rs); these are its parts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::host::HostFacts;
use super::launch::LaunchSpec;
use super::overrides::TaskOverride;
use super::query::Query;
use super::resources::TaskNeeds;
use crate::error::{Error, Result};
use crate::limits::{EXPRESSION_MAX, PLACEMENT_CONSTRAINTS_MAX, SIZING_RULES_MAX};

/// ECS's placement constraint shape; `memberOf` is the one type a daemon can use
/// (`distinctInstance` is what a daemon is by construction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementConstraint {
    #[serde(rename = "type")]
    pub kind: String,
    pub expression: Query,
}

impl PlacementConstraint {
    /// A request's `placementConstraints` (null or [] means none); every one must hold.
    pub fn parse_list(field: &str, value: &Value) -> Result<Vec<Self>> {
        let items = list(field, value, PLACEMENT_CONSTRAINTS_MAX)?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{field}[{i}]");
                let obj = object(&at, item, &["type", "expression"])?;
                match obj.get("type").and_then(Value::as_str) {
                    Some("memberOf") => {}
                    Some("distinctInstance") => {
                        return Err(Error::invalid(
                            &format!("{at}.type"),
                            "distinctInstance is implied: a daemon runs one task per host",
                        ))
                    }
                    _ => {
                        return Err(Error::invalid(
                            &format!("{at}.type"),
                            "type must be memberOf",
                        ))
                    }
                }
                Ok(Self {
                    kind: "memberOf".to_owned(),
                    expression: expression(&format!("{at}.expression"), obj.get("expression"))?,
                })
            })
            .collect()
    }
}

/// The first rule whose expression matches a host sets the task's CPU and/or memory there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SizingRule {
    pub expression: Query,
    /// Task-level CPU units, as a string as ECS's overrides take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task-level memory in MiB, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

impl SizingRule {
    /// A request's `sizing` (null or [] means none). Sizes are normalised to units and MiB, and
    /// must be what ECS takes as a task's size: they become the task-level `cpu` / `memory` of
    /// the launch's overrides, so they are checked as those are.
    pub fn parse_list(field: &str, value: &Value) -> Result<Vec<Self>> {
        let items = list(field, value, SIZING_RULES_MAX)?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{field}[{i}]");
                let obj = object(&at, item, &["expression", "cpu", "memory"])?;
                let expression = expression(&format!("{at}.expression"), obj.get("expression"))?;
                let sizes =
                    serde_json::json!({ "cpu": obj.get("cpu"), "memory": obj.get("memory") });
                let sizes = TaskOverride::parse(&at, &sizes, &TaskNeeds::default())?;
                let rule = Self {
                    expression,
                    cpu: sizes.cpu,
                    memory: sizes.memory,
                };
                if rule.cpu.is_none() && rule.memory.is_none() {
                    return Err(Error::invalid(
                        &at,
                        "a sizing rule sets cpu, memory or both",
                    ));
                }
                Ok(rule)
            })
            .collect()
    }

    /// The first rule that matches `host`.
    pub fn first_match<'a>(rules: &'a [Self], host: &dyn HostFacts) -> Option<&'a Self> {
        rules.iter().find(|r| r.expression.matches(host))
    }
}

fn list<'a>(field: &str, value: &'a Value, max: usize) -> Result<&'a [Value]> {
    match value {
        Value::Null => Ok(&[]),
        Value::Array(items) if items.len() <= max => Ok(items),
        Value::Array(_) => Err(Error::invalid(field, format!("at most {max} entries"))),
        _ => Err(Error::invalid(field, format!("{field} must be a list"))),
    }
}

fn object<'a>(
    field: &str,
    value: &'a Value,
    known: &[&str],
) -> Result<&'a serde_json::Map<String, Value>> {
    let obj = value
        .as_object()
        .ok_or_else(|| Error::invalid(field, "must be an object"))?;
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::invalid(
            &format!("{field}.{k}"),
            format!("unknown field {k}; expected {}", known.join(", ")),
        ));
    }
    Ok(obj)
}

fn expression(field: &str, value: Option<&Value>) -> Result<Query> {
    let text = value
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Error::invalid(field, "expression is required"))?;
    if text.chars().count() > EXPRESSION_MAX {
        return Err(Error::invalid(
            field,
            format!("at most {EXPRESSION_MAX} characters"),
        ));
    }
    Query::parse(text).map_err(|e| Error::invalid(field, e.to_string()))
}

/// The answer of `Target::wants` for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It belongs here and can run here: launch this (or keep the task that runs it).
    Run(LaunchSpec),
    /// It belongs here, but a daemon it depends on does not run here yet; that one's RUNNING
    /// releases it. A task already here keeps running.
    Wait { launch: LaunchSpec, reason: String },
    /// It belongs here but cannot run here (resources, platform, a value the host lacks). Tried
    /// again when the host changes; never counted as a failure. A task already here stays.
    Unschedulable(String),
    /// It does not belong here: the placement constraints leave the host out, or (`blocked`) a
    /// daemon it depends on will not run here. A task here is stopped.
    Excluded { reason: String, blocked: bool },
}

/// What a slot records of the last verdict on its host (shown by `status?hosts=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Placement {
    #[default]
    Runs,
    Waiting {
        reason: String,
    },
    /// Waits for a dependency that will not run here (shown as waiting, not desired).
    Blocked {
        reason: String,
    },
    /// `revision`: the revision it was decided for (a refusal is retried only when the host
    /// changes or another revision is deployed, never on a timer); `deployment`: the one that
    /// judged it (the host's history names it, though the host is no longer tracked).
    Unschedulable {
        reason: String,
        revision: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment: Option<String>,
    },
    Excluded {
        reason: String,
    },
}

impl Placement {
    /// The host counts toward the environment's desired hosts (DaemonSet's desiredNumberScheduled).
    pub fn is_desired(&self) -> bool {
        matches!(self, Self::Runs | Self::Waiting { .. })
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Runs => None,
            Self::Waiting { reason }
            | Self::Blocked { reason }
            | Self::Unschedulable { reason, .. }
            | Self::Excluded { reason } => Some(reason),
        }
    }

    /// `runs`, `waiting` (also when blocked), `unschedulable`, `notSelected`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Runs => "runs",
            Self::Waiting { .. } | Self::Blocked { .. } => "waiting",
            Self::Unschedulable { .. } => "unschedulable",
            Self::Excluded { .. } => "notSelected",
        }
    }

    pub fn of(verdict: &Verdict, revision: u32) -> Self {
        match verdict {
            Verdict::Run(_) => Self::Runs,
            Verdict::Wait { reason, .. } => Self::Waiting {
                reason: reason.clone(),
            },
            Verdict::Unschedulable(reason) => Self::Unschedulable {
                reason: reason.clone(),
                revision,
                deployment: None,
            },
            Verdict::Excluded { reason, blocked } if *blocked => Self::Blocked {
                reason: reason.clone(),
            },
            Verdict::Excluded { reason, .. } => Self::Excluded {
                reason: reason.clone(),
            },
        }
    }

    /// As judged for `deployment` (an unschedulable host remembers which one judged it).
    pub fn judged_by(mut self, deployment: &str) -> Self {
        if let Self::Unschedulable { deployment: d, .. } = &mut self {
            *d = Some(deployment.to_owned());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn constraints_are_ecs_member_of_and_a_bad_one_names_its_place() {
        let ok = PlacementConstraint::parse_list(
            "placementConstraints",
            &json!([{"type": "memberOf", "expression": "attribute:gpu == true"}]),
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].expression.text(), "attribute:gpu == true");
        assert!(PlacementConstraint::parse_list("p", &Value::Null)
            .unwrap()
            .is_empty());
        for (value, field) in [
            (json!({}), "placementConstraints"),
            (
                json!([{"type": "spread", "expression": "x"}]),
                "placementConstraints[0].type",
            ),
            (
                json!([{"type": "memberOf"}]),
                "placementConstraints[0].expression",
            ),
            (
                json!([{"type": "memberOf", "expression": "a", "x": 1}]),
                "placementConstraints[0].x",
            ),
        ] {
            let e = PlacementConstraint::parse_list("placementConstraints", &value).unwrap_err();
            assert_eq!(e.field(), Some(field), "{value}");
        }
    }

    #[test]
    fn sizing_rules_take_ecs_sizes_and_need_a_size() {
        let rules = SizingRule::parse_list(
            "sizing",
            &json!([{"expression": "attribute:ecs.instance-type =~ m5.*", "cpu": 512, "memory": "1024"}]),
        )
        .unwrap();
        assert_eq!(rules[0].cpu.as_deref(), Some("512"));
        assert_eq!(rules[0].memory.as_deref(), Some("1024"));
        let e = SizingRule::parse_list("sizing", &json!([{"expression": "ec2InstanceId == i-1"}]))
            .unwrap_err();
        assert_eq!(e.field(), Some("sizing[0]"));
    }

    /// Found by schemathesis: `"memory": 0` was stored, and every launch it matched would have
    /// asked ECS for a task of 0 MiB. A rule's sizes are a task's, as ECS takes them on EC2.
    #[test]
    fn sizing_rules_take_only_sizes_ecs_takes_for_a_task() {
        let rule = |cpu: Value, memory: Value| {
            SizingRule::parse_list(
                "sizing",
                &json!([
                    {"expression": "attribute:a == b", "memory": 512},
                    {"expression": "attribute:a == b", "cpu": cpu, "memory": memory},
                ]),
            )
        };
        let ok = rule(json!("0.125 vCPU"), json!("2 GB")).unwrap();
        assert_eq!(
            (ok[1].cpu.as_deref(), ok[1].memory.as_deref()),
            (Some("128"), Some("2048"))
        );
        let ok = rule(json!(196_608), json!(6)).unwrap();
        assert_eq!(
            (ok[1].cpu.as_deref(), ok[1].memory.as_deref()),
            (Some("196608"), Some("6"))
        );
        for (cpu, memory, field) in [
            (json!(0), Value::Null, "sizing[1].cpu"),
            (json!("127"), Value::Null, "sizing[1].cpu"),
            (json!(196_609), Value::Null, "sizing[1].cpu"),
            (json!("0.1 vCPU"), Value::Null, "sizing[1].cpu"),
            (json!(true), Value::Null, "sizing[1].cpu"),
            (Value::Null, json!(0), "sizing[1].memory"),
            (Value::Null, json!("5"), "sizing[1].memory"),
            (Value::Null, json!(2_147_483_648_i64), "sizing[1].memory"),
            (Value::Null, json!([]), "sizing[1].memory"),
        ] {
            let e = rule(cpu.clone(), memory.clone()).unwrap_err();
            assert_eq!(e.field(), Some(field), "cpu {cpu}, memory {memory}: {e}");
        }
    }
}
