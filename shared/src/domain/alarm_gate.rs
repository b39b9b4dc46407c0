//! Alarm gates (ECS Managed Daemons' deployment alarms): a deployment whose update strategy names
//! CloudWatch alarms halts as soon as one of them is in ALARM, from its first step to the end of
//! the bake of its last hosts; with `autoRollback` the breaker's path then rolls it back. The
//! rules are here; the alarms are read through the `Alarms` port.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::limits::{ALARM_NAME_MAX, GATE_ALARMS_MAX};

/// A CloudWatch alarm's state (`StateValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    /// Not enough data yet (a new alarm, a metric that stopped): no verdict, so no halt (as ECS).
    InsufficientData,
}

impl AlarmState {
    /// CloudWatch's `StateValue`; anything else reads as no verdict.
    pub fn parse(value: &str) -> Self {
        match value {
            "OK" => Self::Ok,
            "ALARM" => Self::Alarm,
            _ => Self::InsufficientData,
        }
    }
}

/// Why a deployment gated by `names` must halt, given the alarms CloudWatch returned for them:
/// the first (in the order named) in ALARM; else the first CloudWatch did not return — a gate
/// that cannot be read is not ignored (a deleted or renamed alarm, or a composite alarm that the
/// role may not read: composite alarms are shown only to `DescribeAlarms` on every alarm).
/// `None`: none halts (OK and INSUFFICIENT_DATA pass).
pub fn halt_reason(names: &[String], states: &[(String, AlarmState)]) -> Option<String> {
    let state = |n: &String| states.iter().find(|(s, _)| s == n).map(|(_, st)| *st);
    if let Some(n) = names.iter().find(|n| state(n) == Some(AlarmState::Alarm)) {
        return Some(format!("alarm {n} is in ALARM"));
    }
    names.iter().find(|n| state(n).is_none()).map(|n| {
        format!(
            "alarm {n} does not exist or cannot be read (a gate that cannot be read halts the deployment)"
        )
    })
}

/// A failure to read the gates that retrying will not cure (access denied, a bad name) halts the
/// deployment too, with this reason; one that may pass (throttling, AWS's own faults) does not:
/// the step fails and its trigger retries it.
pub fn unreadable_reason(error: &Error) -> Option<String> {
    error
        .is_lasting()
        .then(|| format!("alarm gates cannot be read: {error}"))
}

/// An `updateStrategy.alarms` of a request: distinct CloudWatch alarm names (1–255 characters, no
/// control characters), at most `GATE_ALARMS_MAX`; `null` or `[]` clears it.
pub fn parse_alarms(field: &str, value: &Value) -> Result<Vec<String>> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) if items.len() <= GATE_ALARMS_MAX => items,
        Value::Array(_) => {
            return Err(Error::invalid(
                field,
                format!("at most {GATE_ALARMS_MAX} alarms"),
            ))
        }
        _ => {
            return Err(Error::invalid(
                field,
                "alarms must be a list of CloudWatch alarm names (or null)",
            ))
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let name = item
            .as_str()
            .ok_or_else(|| Error::invalid(&f, "a CloudWatch alarm name"))?;
        if name.is_empty() || name.chars().count() > ALARM_NAME_MAX {
            return Err(Error::invalid(
                &f,
                format!("an alarm name has 1 to {ALARM_NAME_MAX} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                &f,
                "an alarm name has no control characters",
            ));
        }
        if out.iter().any(|n| n == name) {
            return Err(Error::invalid(&f, format!("{name} is listed twice")));
        }
        out.push(name.to_owned());
    }
    Ok(out)
}

/// The alarms a stack may gate on: the template's `GateAlarmNamePrefix`, which also scopes the
/// deployer's and the reconciler's `cloudwatch:DescribeAlarms`. Checking it when a revision is
/// written turns what would later halt every deployment (access denied) into a 400.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedAlarms {
    /// Empty: every alarm of the account and Region.
    prefix: String,
}

impl AllowedAlarms {
    pub fn any() -> Self {
        Self::default()
    }

    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim().to_owned(),
        }
    }

    /// `GATE_ALARM_NAME_PREFIX`, as the template passes it to environments-api.
    pub fn from_env() -> Self {
        Self::with_prefix(&std::env::var("GATE_ALARM_NAME_PREFIX").unwrap_or_default())
    }

    pub fn allows(&self, name: &str) -> bool {
        name.starts_with(&self.prefix)
    }

    /// Each of `names` is allowed; else a 400 naming `updateStrategy.alarms[i]`.
    pub fn check(&self, names: &[String]) -> Result<()> {
        match names.iter().position(|n| !self.allows(n)) {
            None => Ok(()),
            Some(i) => Err(Error::invalid(
                &format!("updateStrategy.alarms[{i}]"),
                format!(
                    "alarm {} is not one this stack may read (GateAlarmNamePrefix: {}*)",
                    names[i], self.prefix
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn an_alarm_in_alarm_halts_ok_and_insufficient_data_do_not() {
        let gates = names(&["errors", "latency"]);
        let ok = [
            ("errors".to_owned(), AlarmState::Ok),
            ("latency".to_owned(), AlarmState::InsufficientData),
        ];
        assert_eq!(halt_reason(&gates, &ok), None);
        let firing = [
            ("latency".to_owned(), AlarmState::Alarm),
            ("errors".to_owned(), AlarmState::Ok),
        ];
        assert_eq!(
            halt_reason(&gates, &firing).as_deref(),
            Some("alarm latency is in ALARM")
        );
        assert_eq!(halt_reason(&[], &[]), None);
    }

    #[test]
    fn an_alarm_that_cannot_be_read_halts_after_one_in_alarm() {
        let gates = names(&["gone", "errors"]);
        let missing = [("errors".to_owned(), AlarmState::Ok)];
        assert!(halt_reason(&gates, &missing)
            .unwrap()
            .starts_with("alarm gone does not exist"));
        let both = [("errors".to_owned(), AlarmState::Alarm)];
        assert_eq!(
            halt_reason(&gates, &both).as_deref(),
            Some("alarm errors is in ALARM")
        );
    }

    #[test]
    fn a_lasting_read_failure_halts_a_passing_one_is_retried() {
        let denied = Error::Aws {
            service: "CloudWatch".into(),
            code: "AccessDenied".into(),
            message: "AccessDenied: not authorized".into(),
        };
        assert!(unreadable_reason(&denied)
            .unwrap()
            .starts_with("alarm gates cannot be read"));
        let throttled = Error::Throttled {
            service: "CloudWatch".into(),
            message: "Rate exceeded".into(),
        };
        assert_eq!(unreadable_reason(&throttled), None);
    }

    #[test]
    fn alarm_lists_are_distinct_names_of_1_to_255_characters_at_most_10() {
        let f = "updateStrategy.alarms";
        assert_eq!(
            parse_alarms(f, &json!(["a", "b"])).unwrap(),
            names(&["a", "b"])
        );
        assert!(parse_alarms(f, &json!(null)).unwrap().is_empty());
        assert!(parse_alarms(f, &json!([])).unwrap().is_empty());
        let long = "x".repeat(256);
        let eleven: Vec<String> = (0..11).map(|i| format!("a{i}")).collect();
        for (bad, field) in [
            (json!("a"), f.to_owned()),
            (json!(eleven), f.to_owned()),
            (json!(["a", 3]), format!("{f}[1]")),
            (json!([""]), format!("{f}[0]")),
            (json!(["ok", long]), format!("{f}[1]")),
            (json!(["a\nb"]), format!("{f}[0]")),
            (json!(["a", "b", "a"]), format!("{f}[2]")),
        ] {
            let e = parse_alarms(f, &bad).unwrap_err();
            assert_eq!(e.field(), Some(field.as_str()), "{bad}");
        }
        assert_eq!(parse_alarms(f, &json!(["x".repeat(255)])).unwrap().len(), 1);
    }

    #[test]
    fn the_prefix_bounds_the_names_a_revision_may_gate_on() {
        assert!(AllowedAlarms::any().check(&names(&["anything"])).is_ok());
        let ours = AllowedAlarms::with_prefix("daemons-");
        assert!(ours.check(&names(&["daemons-errors"])).is_ok());
        let e = ours
            .check(&names(&["daemons-errors", "billing"]))
            .unwrap_err();
        assert_eq!(e.field(), Some("updateStrategy.alarms[1]"));
        assert!(e.to_string().contains("daemons-*"), "{e}");
    }
}
