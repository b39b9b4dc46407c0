//! What one poll of a rollout saw, from the API's JSON: the phase and the host counts the bar and
//! the progress lines show.

use serde_json::Value;

use crate::phase::Phase;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub phase: Phase,
    /// Hosts that should run the daemon (status `counts.desired`, else the deployment's).
    pub desired: Option<u64>,
    /// Of them, on the deployed revision.
    pub updated: Option<u64>,
    /// Of them, RUNNING for at least `minHealthySeconds`.
    pub available: Option<u64>,
    /// Hosts that failed the revision (the breaker's count, `failedHosts`).
    pub failed: Option<u64>,
    /// Hosts the revision selects that cannot run it: neither desired nor failed.
    pub unschedulable: Option<u64>,
    pub halted_reason: Option<String>,
}

fn count(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

impl Snapshot {
    /// `deployment`: the one followed; `status`: the environment's status answer, whose counts
    /// are the hosts' (without it, the deployment's own counters stand in where they can).
    pub fn of(deployment: Option<&Value>, status: Option<&Value>) -> Self {
        let counts = status
            .and_then(|s| s.get("counts"))
            .filter(|c| c.is_object());
        let d = deployment.filter(|d| d.is_object());
        let from_deployment = |key| d.and_then(|d| count(d, key));
        Self {
            phase: Phase::of(d, counts),
            desired: counts
                .and_then(|c| count(c, "desired"))
                .or_else(|| from_deployment("desiredCount")),
            updated: counts.and_then(|c| count(c, "updated")),
            // The deployment's running hosts have baked: available, as far as it knows.
            available: counts
                .and_then(|c| count(c, "available"))
                .or_else(|| from_deployment("runningCount")),
            failed: from_deployment("failedHosts"),
            unschedulable: counts.and_then(|c| count(c, "unschedulable")),
            halted_reason: d
                .and_then(|d| d.get("haltedReason"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    /// The phase, with the breaker's reason once it tripped.
    pub fn phase_text(&self) -> String {
        match (&self.phase, &self.halted_reason) {
            (Phase::Halted | Phase::Failed, Some(r)) => format!("{} ({r})", self.phase),
            (phase, _) => phase.to_string(),
        }
    }

    /// `updated 1/2, available 1, failed 0, unschedulable 1` (`-`: not known).
    pub fn counts_text(&self) -> String {
        let n = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!(
            "updated {}/{}, available {}, failed {}, unschedulable {}",
            n(self.updated),
            n(self.desired),
            n(self.available),
            n(self.failed),
            n(self.unschedulable)
        )
    }

    /// `baking: updated 1/2, available 1, failed 0, unschedulable 1`
    pub fn line(&self) -> String {
        format!("{}: {}", self.phase_text(), self.counts_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"id": "01DEP", "status": "running", "desiredCount": 3, "runningCount": 1,
               "pendingCount": 2, "failedHosts": 1})
    }

    #[test]
    fn counts_come_from_the_status_and_failures_from_the_deployment() {
        let status = json!({"counts": {"desired": 4, "current": 4, "ready": 4, "available": 3,
                                       "updated": 2, "unschedulable": 1, "waiting": 0}});
        let s = Snapshot::of(Some(&deployment()), Some(&status));
        assert_eq!(s.phase, Phase::Baking);
        assert_eq!(
            s.line(),
            "baking: updated 2/4, available 3, failed 1, unschedulable 1"
        );
    }

    #[test]
    fn without_status_counts_the_deployment_stands_in_and_the_rest_is_a_dash() {
        let s = Snapshot::of(Some(&deployment()), None);
        assert_eq!(
            s.line(),
            "replacing: updated -/3, available 1, failed 1, unschedulable -"
        );
        // An older API's counts without unschedulable.
        let status = json!({"counts": {"desired": 1, "updated": 1, "available": 1}});
        assert_eq!(
            Snapshot::of(Some(&deployment()), Some(&status)).counts_text(),
            "updated 1/1, available 1, failed 1, unschedulable -"
        );
    }

    #[test]
    fn the_breakers_reason_goes_with_halted_and_failed() {
        let mut d = deployment();
        d["haltedReason"] = json!("2 host(s) failed, threshold 1");
        let s = Snapshot::of(Some(&d), None);
        assert_eq!(
            s.phase_text(),
            "halted by the breaker (2 host(s) failed, threshold 1)"
        );
        d["status"] = json!("failed");
        assert_eq!(
            Snapshot::of(Some(&d), None).phase_text(),
            "failed (2 host(s) failed, threshold 1)"
        );
    }

    #[test]
    fn an_environment_never_deployed() {
        let status =
            json!({"counts": {"desired": 2, "updated": 0, "available": 0, "unschedulable": 0}});
        assert_eq!(
            Snapshot::of(None, Some(&status)).line(),
            "not deployed: updated 0/2, available 0, failed -, unschedulable 0"
        );
    }
}
