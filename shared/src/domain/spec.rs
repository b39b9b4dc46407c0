//! A revision's desired state: what runs, where, with what on each host, after which other
//! daemons, and how a new revision replaces an old one. Embedded once in each record that needs
//! it: the revision itself, the environment (its latest and its deployed revision) and a
//! deployment — never copied field by field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::names::validate_environment_name;
use super::overrides::TaskOverride;
use super::placement::{PlacementConstraint, SizingRule};
use super::resources::TaskNeeds;
use super::update_strategy::UpdateStrategy;
use crate::error::{Error, Result};
use crate::limits::DEPENDS_ON_MAX;

/// The fields of a request (create or PUT) that change a revision's desired state; `None`: keep.
#[derive(Debug, Default, Clone)]
pub struct SpecChanges<'a> {
    /// A task definition ECS resolved: its ARN and what it needs of a host.
    pub task_definition: Option<(String, TaskNeeds)>,
    pub update_strategy: Option<&'a Value>,
    pub placement_constraints: Option<&'a Value>,
    pub sizing: Option<&'a Value>,
    pub overrides: Option<&'a Value>,
    pub depends_on: Option<&'a Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSpec {
    /// Task definition ARN (resolved through ECS when the revision was written).
    pub task_definition: String,
    /// What that task definition needs of a host (read from ECS with it).
    #[serde(default)]
    pub needs: TaskNeeds,
    /// Every one must hold for a host to get the daemon.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement_constraints: Vec<PlacementConstraint>,
    /// The first matching rule sets the task's size on a host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizing: Vec<SizingRule>,
    /// Overrides whose strings may hold placeholders filled from each host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TaskOverride>,
    /// Environments (same cluster) whose daemons must run on a host before this one starts there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
}

impl DaemonSpec {
    /// A task definition with no placement rules and the default strategy.
    pub fn of_task_definition(task_definition: &str, needs: TaskNeeds) -> Self {
        Self {
            task_definition: task_definition.to_owned(),
            needs,
            placement_constraints: Vec::new(),
            sizing: Vec::new(),
            overrides: None,
            depends_on: Vec::new(),
            update_strategy: UpdateStrategy::default(),
        }
    }

    /// This desired state with a request's changes, each checked (a 400 names the field). The
    /// overrides are checked against the task definition the result runs, so a new task
    /// definition without a container the overrides name is refused too.
    pub fn changed(&self, environment: &str, c: &SpecChanges) -> Result<Self> {
        let mut next = self.clone();
        if let Some((arn, needs)) = &c.task_definition {
            next.task_definition = arn.clone();
            next.needs = needs.clone();
        }
        match c.update_strategy {
            // null clears it, as for the placement fields: the defaults.
            Some(Value::Null) => next.update_strategy = UpdateStrategy::default(),
            Some(v) => next.update_strategy = UpdateStrategy::merged(&self.update_strategy, v)?,
            None => {}
        }
        if let Some(v) = c.placement_constraints {
            next.placement_constraints =
                PlacementConstraint::parse_list("placementConstraints", v)?;
        }
        if let Some(v) = c.sizing {
            next.sizing = SizingRule::parse_list("sizing", v)?;
        }
        match c.overrides {
            Some(Value::Null) => next.overrides = None,
            Some(v) => next.overrides = Some(TaskOverride::parse("overrides", v, &next.needs)?),
            None => {
                if let Some(kept) = &next.overrides {
                    let v = serde_json::to_value(kept)
                        .map_err(|e| Error::Internal(format!("overrides: {e}")))?;
                    TaskOverride::parse("overrides", &v, &next.needs)?;
                }
            }
        }
        if let Some(v) = c.depends_on {
            next.depends_on = depends_on(environment, v)?;
        }
        if !next.update_strategy.max_surge.is_zero() {
            if let Some(port) = next.port_shared_with(self) {
                return Err(Error::invalid(
                    "updateStrategy.maxSurge",
                    format!(
                        "maxSurge runs a host's old and new task side by side, but both bind host port {port}; use maxSurge 0 (stop, then start) or dynamic host ports"
                    ),
                ));
            }
        }
        Ok(next)
    }

    /// A fixed host port both this and `other`'s tasks bind ("8080/tcp"): the two cannot run on
    /// one host at once.
    pub fn port_shared_with(&self, other: &DaemonSpec) -> Option<String> {
        let mine = self.needs.reservation(self.overrides.as_ref());
        let theirs = other.needs.reservation(other.overrides.as_ref());
        let tcp = mine
            .ports
            .intersection(&theirs.ports)
            .next()
            .map(|p| format!("{p}/tcp"));
        tcp.or_else(|| {
            mine.udp_ports
                .intersection(&theirs.udp_ports)
                .next()
                .map(|p| format!("{p}/udp"))
        })
    }

    /// How long a new task must stay RUNNING to count as healthy.
    pub fn bake_ms(&self) -> i64 {
        i64::from(self.update_strategy.min_healthy_seconds) * 1000
    }
}

/// A request's `dependsOn`: distinct environment names, not the environment itself.
fn depends_on(environment: &str, value: &Value) -> Result<Vec<String>> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) if items.len() <= DEPENDS_ON_MAX => items,
        Value::Array(_) => {
            return Err(Error::invalid(
                "dependsOn",
                format!("at most {DEPENDS_ON_MAX} environments"),
            ))
        }
        _ => {
            return Err(Error::invalid(
                "dependsOn",
                "dependsOn must be a list of environment names",
            ))
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("dependsOn[{i}]");
        let name = item
            .as_str()
            .ok_or_else(|| Error::invalid(&field, "an environment name"))?;
        validate_environment_name(name).map_err(|e| Error::invalid(&field, e.to_string()))?;
        if name == environment {
            return Err(Error::invalid(
                &field,
                "an environment cannot depend on itself",
            ));
        }
        if out.iter().any(|n| n == name) {
            return Err(Error::invalid(&field, format!("{name} is listed twice")));
        }
        out.push(name.to_owned());
    }
    Ok(out)
}
