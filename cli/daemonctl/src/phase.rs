//! The phase a deployment is in, derived from what the API answers: the deployment's `status`,
//! `haltedReason` and `rollbackOf`, and the environment's status counts. The API has no phase
//! field; this is the one place that reads it out of the rest.

use std::fmt;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The environment has no deployment yet.
    NotDeployed,
    /// Tasks of the revision on their way (launching, pending), or the next wave about to go.
    Replacing,
    /// Every task RUNNING, some not yet for the revision's `minHealthySeconds`.
    Baking,
    /// The circuit breaker tripped: no host is replaced any more; the deployment will fail.
    Halted,
    /// A deployment that rolls back a halted one (`rollbackOf`).
    RollingBack,
    Paused,
    AwaitingPromotion,
    Completed,
    Failed,
    Cancelled,
    /// A status this daemonctl does not know (a newer API): shown by its name.
    Other(String),
}

impl Phase {
    /// The phase of `deployment` (absent: none yet), with the environment's status `counts` when
    /// known (they tell baking from replacing).
    pub fn of(deployment: Option<&Value>, counts: Option<&Value>) -> Self {
        let Some(d) = deployment.filter(|d| d.is_object()) else {
            return Self::NotDeployed;
        };
        let has = |key: &str| d.get(key).is_some_and(|v| !v.is_null());
        match d.get("status").and_then(Value::as_str).unwrap_or("") {
            "pending" | "running" if has("haltedReason") => Self::Halted,
            "pending" | "running" if has("rollbackOf") => Self::RollingBack,
            "pending" | "running" if counts.is_some_and(baking) => Self::Baking,
            "pending" | "running" => Self::Replacing,
            "paused" => Self::Paused,
            "awaiting-promotion" => Self::AwaitingPromotion,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "" => Self::Other("unknown".into()),
            other => Self::Other(other.to_owned()),
        }
    }

    /// Nothing more will happen to the deployment by itself.
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// No task on its way (`current` = `ready`: every occupied host RUNNING) and some RUNNING for
/// less than `minHealthySeconds` (`ready` > `available`, which the API counts as baking).
fn baking(counts: &Value) -> bool {
    let n = |key: &str| counts.get(key).and_then(Value::as_i64);
    match (n("current"), n("ready"), n("available")) {
        (Some(current), Some(ready), Some(available)) => current <= ready && ready > available,
        _ => false,
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotDeployed => "not deployed",
            Self::Replacing => "replacing",
            Self::Baking => "baking",
            Self::Halted => "halted by the breaker",
            Self::RollingBack => "rolling back",
            Self::Paused => "paused",
            Self::AwaitingPromotion => "awaiting promotion",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Other(status) => status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn counts(current: i64, ready: i64, available: i64) -> Value {
        json!({"desired": 4, "current": current, "ready": ready, "available": available,
               "updated": 2, "unschedulable": 0, "waiting": 0})
    }

    fn of(d: Value, c: Option<Value>) -> Phase {
        Phase::of(Some(&d), c.as_ref())
    }

    #[test]
    fn a_deployment_in_progress_is_replacing_until_every_task_runs_then_baking() {
        let running = json!({"status": "running"});
        // Two tasks launching.
        assert_eq!(of(running.clone(), Some(counts(4, 2, 2))), Phase::Replacing);
        // One launching, one RUNNING and baking: a task is still on its way.
        assert_eq!(of(running.clone(), Some(counts(4, 3, 2))), Phase::Replacing);
        // Every task RUNNING, two not yet healthy long enough.
        assert_eq!(of(running.clone(), Some(counts(4, 4, 2))), Phase::Baking);
        assert_eq!(
            of(json!({"status": "pending"}), Some(counts(4, 4, 3))),
            Phase::Baking
        );
        // Every task healthy: between waves, or about to close.
        assert_eq!(of(running.clone(), Some(counts(4, 4, 4))), Phase::Replacing);
        // Without the counts (or an API without them) baking cannot be told apart.
        assert_eq!(of(running.clone(), None), Phase::Replacing);
        assert_eq!(of(running, Some(json!({"desired": 4}))), Phase::Replacing);
    }

    #[test]
    fn the_breaker_and_a_rollback_come_before_replacing_and_baking() {
        let halted = json!({"status": "running", "haltedReason": "2 host(s) failed, threshold 1"});
        assert_eq!(of(halted, Some(counts(4, 4, 2))), Phase::Halted);
        let rollback = json!({"status": "pending", "rollbackOf": "01OLD"});
        assert_eq!(
            of(rollback.clone(), Some(counts(4, 4, 2))),
            Phase::RollingBack
        );
        assert_eq!(of(rollback, None), Phase::RollingBack);
        // A rollback the breaker halted too: halted is what happens now.
        let both = json!({"status": "running", "rollbackOf": "01OLD", "haltedReason": "x"});
        assert_eq!(of(both, None), Phase::Halted);
        // A null field is an absent one.
        let nulls = json!({"status": "running", "rollbackOf": null, "haltedReason": null});
        assert_eq!(of(nulls, None), Phase::Replacing);
    }

    #[test]
    fn finished_statuses_are_final_whatever_else_the_deployment_says() {
        let failed = json!({"status": "failed", "haltedReason": "x", "rollbackOf": "01OLD"});
        assert_eq!(of(failed, None), Phase::Failed);
        assert_eq!(of(json!({"status": "completed"}), None), Phase::Completed);
        assert_eq!(of(json!({"status": "cancelled"}), None), Phase::Cancelled);
        for p in [Phase::Completed, Phase::Failed, Phase::Cancelled] {
            assert!(p.is_finished(), "{p}");
        }
        for p in [
            Phase::Replacing,
            Phase::Baking,
            Phase::Halted,
            Phase::RollingBack,
            Phase::Paused,
            Phase::AwaitingPromotion,
            Phase::Other("x".into()),
        ] {
            assert!(!p.is_finished(), "{p}");
        }
    }

    #[test]
    fn canary_statuses_and_unknown_ones_render_by_name() {
        assert_eq!(of(json!({"status": "paused"}), None), Phase::Paused);
        assert_eq!(
            of(json!({"status": "awaiting-promotion"}), None),
            Phase::AwaitingPromotion
        );
        assert_eq!(Phase::AwaitingPromotion.to_string(), "awaiting promotion");
        let future = of(json!({"status": "verifying"}), Some(counts(4, 4, 2)));
        assert_eq!(future, Phase::Other("verifying".into()));
        assert_eq!(future.to_string(), "verifying");
        assert_eq!(of(json!({}), None).to_string(), "unknown");
    }

    #[test]
    fn no_deployment_is_not_deployed() {
        assert_eq!(Phase::of(None, None), Phase::NotDeployed);
        assert_eq!(Phase::of(Some(&Value::Null), None), Phase::NotDeployed);
        assert_eq!(Phase::NotDeployed.to_string(), "not deployed");
        assert_eq!(Phase::Halted.to_string(), "halted by the breaker");
        assert_eq!(Phase::RollingBack.to_string(), "rolling back");
    }
}
