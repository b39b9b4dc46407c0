//! The update strategy a deployment follows: how many hosts at once, surge, bake, breaker, canary, alarm gates.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A number of hosts, or a percent of the eligible hosts (`3` or `"25%"` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Hosts(u32),
    Percent(u32),
}

impl Amount {
    pub fn is_zero(self) -> bool {
        matches!(self, Self::Hosts(0) | Self::Percent(0))
    }

    /// Hosts out of `eligible`; a percent rounds down (Kubernetes' rounding of maxUnavailable).
    pub fn of(self, eligible: usize) -> usize {
        match self {
            Self::Hosts(n) => n as usize,
            Self::Percent(p) => eligible * p as usize / 100,
        }
    }

    fn parse(field: &str, v: &serde_json::Value) -> Result<Self> {
        let bad = || {
            Error::invalid(
                field,
                format!("{field} must be a whole number of hosts or a percent such as \"25%\""),
            )
        };
        match v {
            serde_json::Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Self::Hosts)
                .ok_or_else(bad),
            serde_json::Value::String(s) => {
                let s = s.trim();
                let amount = match s.strip_suffix('%') {
                    Some(p) => Self::Percent(p.trim().parse().map_err(|_| bad())?),
                    None => Self::Hosts(s.parse().map_err(|_| bad())?),
                };
                match amount {
                    Self::Percent(p) if p > 100 => Err(bad()),
                    a => Ok(a),
                }
            }
            _ => Err(bad()),
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Hosts(n) => s.serialize_u32(*n),
            Self::Percent(p) => s.serialize_str(&format!("{p}%")),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Self::parse("amount", &v).map_err(serde::de::Error::custom)
    }
}

/// How a deployment replaces the tasks of an older revision (Kubernetes' RollingUpdate, plus a
/// circuit breaker as ECS deployments have).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    /// Hosts that may be without a healthy daemon at once (at least 1 whatever the percent).
    pub max_unavailable: Amount,
    /// A new task counts as healthy once it has stayed RUNNING this long.
    pub min_healthy_seconds: u32,
    /// More hosts than this failing the new revision halts the deployment.
    pub failure_threshold: Amount,
    /// A halted deployment starts a deployment of the previous revision by itself.
    pub auto_rollback: bool,
    /// CloudWatch alarms that gate a deployment of this revision: one in ALARM while it runs
    /// (until the last hosts' bake ends) halts it, as the circuit breaker does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// Replace only this many hosts (count or percent of the eligible, at least one), bake them,
    /// then wait for `promote`; hosts that join meanwhile get the previous revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Amount>,
    /// Promote the canary by itself once its hosts have baked.
    #[serde(default)]
    pub auto_promote: bool,
    /// Hosts that may run a second task at once (count or percent, rounded up): each host's new
    /// task starts first and its old one stops once the new one is healthy (Kubernetes'
    /// DaemonSet `maxSurge`). 0: stop, then start.
    #[serde(default = "no_surge", skip_serializing_if = "is_no_surge")]
    pub max_surge: Amount,
}

fn no_surge() -> Amount {
    Amount::Hosts(0)
}

fn is_no_surge(a: &Amount) -> bool {
    a.is_zero()
}

impl Default for UpdateStrategy {
    fn default() -> Self {
        Self {
            max_unavailable: Amount::Percent(25),
            min_healthy_seconds: 0,
            failure_threshold: Amount::Percent(20),
            auto_rollback: true,
            alarms: Vec::new(),
            canary: None,
            auto_promote: false,
            max_surge: Amount::Hosts(0),
        }
    }
}

/// A longest bake a host may be asked for: the wake-up after it is one SQS delay (15 min at most).
pub const MIN_HEALTHY_SECONDS_MAX: u32 = 900;

impl UpdateStrategy {
    /// `base` with the fields of a request's `updateStrategy` object applied, each checked.
    pub fn merged(base: &Self, patch: &serde_json::Value) -> Result<Self> {
        let field = |name: &str| format!("updateStrategy.{name}");
        let obj = patch
            .as_object()
            .ok_or_else(|| Error::invalid("updateStrategy", "updateStrategy must be an object"))?;
        let mut out = base.clone();
        for (k, v) in obj {
            match k.as_str() {
                "maxUnavailable" => out.max_unavailable = Amount::parse(&field(k), v)?,
                "maxSurge" => out.max_surge = Amount::parse(&field(k), v)?,
                "minHealthySeconds" => {
                    out.min_healthy_seconds = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n <= MIN_HEALTHY_SECONDS_MAX)
                        .ok_or_else(|| {
                            Error::invalid(
                                &field(k),
                                format!(
                                    "minHealthySeconds must be a whole number from 0 to {MIN_HEALTHY_SECONDS_MAX}"
                                ),
                            )
                        })?
                }
                "failureThreshold" => out.failure_threshold = Amount::parse(&field(k), v)?,
                "autoRollback" => {
                    out.auto_rollback = v.as_bool().ok_or_else(|| {
                        Error::invalid(&field(k), "autoRollback must be true or false")
                    })?
                }
                "alarms" => out.alarms = super::alarm_gate::parse_alarms(&field(k), v)?,
                "canary" if v.is_null() => out.canary = None,
                "canary" => {
                    let c = Amount::parse(&field(k), v)?;
                    if matches!(c, Amount::Hosts(0) | Amount::Percent(0)) {
                        return Err(Error::invalid(
                            &field(k),
                            "canary must be at least one host (or null for none)",
                        ));
                    }
                    out.canary = Some(c);
                }
                "autoPromote" => {
                    out.auto_promote = v.as_bool().ok_or_else(|| {
                        Error::invalid(&field(k), "autoPromote must be true or false")
                    })?
                }
                other => {
                    return Err(Error::invalid(
                        &field(other),
                        format!(
                            "unknown field {other}; expected maxUnavailable, maxSurge, minHealthySeconds, failureThreshold, autoRollback, canary, autoPromote or alarms"
                        ),
                    ))
                }
            }
        }
        if out.max_unavailable.is_zero() && out.max_surge.is_zero() {
            let which = if obj.contains_key("maxSurge") {
                "maxSurge"
            } else {
                "maxUnavailable"
            };
            return Err(Error::invalid(
                &field(which),
                "maxUnavailable and maxSurge cannot both be 0: no host could be replaced",
            ));
        }
        Ok(out)
    }

    /// Hosts that may be unavailable at once among `eligible` (a percent rounds down, but to at
    /// least one host unless it is 0).
    pub fn max_unavailable_of(&self, eligible: usize) -> usize {
        match self.max_unavailable.is_zero() {
            true => 0,
            false => self.max_unavailable.of(eligible).max(1),
        }
    }

    /// Hosts that may run a second task at once among `eligible` (a percent rounds up).
    pub fn max_surge_of(&self, eligible: usize) -> usize {
        match self.max_surge {
            Amount::Hosts(n) => n as usize,
            Amount::Percent(p) => (eligible * p as usize).div_ceil(100),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_counts_or_percents_and_round_down() {
        let p: Amount = serde_json::from_value(json!("25%")).unwrap();
        assert_eq!(p, Amount::Percent(25));
        assert_eq!(p.of(20), 5);
        assert_eq!(p.of(3), 0);
        assert_eq!(serde_json::to_value(p).unwrap(), json!("25%"));
        let n: Amount = serde_json::from_value(json!(3)).unwrap();
        assert_eq!((n, n.of(100)), (Amount::Hosts(3), 3));
        for bad in [json!("x%"), json!(-1), json!("101%"), json!(true)] {
            assert!(
                serde_json::from_value::<Amount>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn max_unavailable_is_at_least_one_host() {
        let s = UpdateStrategy::default();
        assert_eq!(s.max_unavailable_of(3), 1);
        assert_eq!(s.max_unavailable_of(20), 5);
    }

    #[test]
    fn a_patch_changes_only_its_fields_and_names_the_bad_one() {
        let base = UpdateStrategy::default();
        let s = UpdateStrategy::merged(
            &base,
            &json!({"maxUnavailable": 2, "minHealthySeconds": 30}),
        )
        .unwrap();
        assert_eq!(s.max_unavailable, Amount::Hosts(2));
        assert_eq!(s.min_healthy_seconds, 30);
        assert_eq!(s.failure_threshold, base.failure_threshold);
        for (patch, field) in [
            (
                json!({"maxUnavailable": 0}),
                "updateStrategy.maxUnavailable",
            ),
            (
                json!({"minHealthySeconds": 901}),
                "updateStrategy.minHealthySeconds",
            ),
            (
                json!({"autoRollback": "yes"}),
                "updateStrategy.autoRollback",
            ),
            (json!({"surge": 1}), "updateStrategy.surge"),
            (json!([1]), "updateStrategy"),
        ] {
            let e = UpdateStrategy::merged(&base, &patch).unwrap_err();
            assert_eq!(e.field(), Some(field), "{patch}");
        }
    }

    #[test]
    fn alarms_are_set_kept_and_cleared_and_old_items_have_none() {
        let base = UpdateStrategy::default();
        let gated = UpdateStrategy::merged(&base, &json!({"alarms": ["errors", "p99"]})).unwrap();
        assert_eq!(gated.alarms, ["errors", "p99"]);
        let kept = UpdateStrategy::merged(&gated, &json!({"minHealthySeconds": 5})).unwrap();
        assert_eq!(kept.alarms, gated.alarms);
        for clear in [json!({"alarms": null}), json!({"alarms": []})] {
            assert!(UpdateStrategy::merged(&gated, &clear)
                .unwrap()
                .alarms
                .is_empty());
        }
        let e = UpdateStrategy::merged(&base, &json!({"alarms": ["a", "a"]})).unwrap_err();
        assert_eq!(e.field(), Some("updateStrategy.alarms[1]"));
        let e = UpdateStrategy::merged(&base, &json!({"alarm": ["a"]})).unwrap_err();
        assert!(e.to_string().contains("alarms"), "{e}");
        // Stored revisions from before alarm gates read as ungated; ungated ones store no field.
        let old: UpdateStrategy = serde_json::from_value(json!({
            "maxUnavailable": "25%", "minHealthySeconds": 0, "failureThreshold": "20%",
            "autoRollback": true
        }))
        .unwrap();
        assert!(old.alarms.is_empty());
        assert!(serde_json::to_value(&base).unwrap().get("alarms").is_none());
        assert_eq!(
            serde_json::to_value(&gated).unwrap()["alarms"],
            json!(["errors", "p99"])
        );
    }
}
