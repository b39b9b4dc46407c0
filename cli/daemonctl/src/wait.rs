//! `deploy --wait`: poll a deployment until it ends, its progress on a bar (terminal) or in
//! timestamped lines; a deployment the breaker halted is followed through its automatic
//! rollback, so that the command returns once the hosts are back on the previous revision. A
//! canary that has baked ends the wait too (exit 0): only a promote or a cancel moves it on.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::Output;
use crate::client::{Answer, ApiClient};
use crate::progress::Snapshot;
use crate::report::{Reporter, Sink};
use crate::{emit, output, Error, Outcome};

pub struct Wait<'a> {
    pub name: &'a str,
    pub id: &'a str,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Polls after a failure with no rollback in sight yet: the deployer starts it right after
/// closing the failed one, so it may not be there at the first look.
const ROLLBACK_LOOKS: u32 = 3;

pub fn finished(status: &str) -> Option<Outcome> {
    match status {
        "completed" => Some(Outcome::Success),
        "failed" | "cancelled" => Some(Outcome::Unsuccessful),
        _ => None,
    }
}

fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A halted deployment that the deployer rolls back by itself (see rolling::rollback_if_needed).
fn rolls_back(d: &Value) -> bool {
    text(d, "status") == "failed"
        && d.get("haltedReason").is_some_and(|r| !r.is_null())
        && d["updateStrategy"]["autoRollback"].as_bool() == Some(true)
        && d.get("rollbackOf").is_none_or(Value::is_null)
        && d.get("previousRevision").is_some_and(|r| !r.is_null())
}

pub async fn deployment(
    api: &ApiClient,
    output: Output,
    wait: Wait<'_>,
    created: Answer,
) -> Result<Outcome, Error> {
    let Wait { name, id, .. } = wait;
    eprintln!("deployment {id} of {name}: waiting for it to finish");
    let deadline = Instant::now() + wait.timeout;
    let mut report = Reporter::new(Sink::Stderr);
    let mut current = created;
    let mut looks_for_rollback = 0;
    loop {
        // The hosts' counts; a status that cannot be read leaves the deployment's own.
        let status = api
            .get(&["environments", name, "status"], &[])
            .await
            .ok()
            .map(|a| a.json);
        let ours = &current.json;
        let state = text(ours, "status").to_owned();
        let outcome = finished(&state);
        let rollback = status
            .as_ref()
            .map(|s| &s["deployment"])
            .filter(|d| text(d, "rollbackOf") == id);
        // Once ours failed, its rollback is what moves the hosts.
        let followed = rollback.filter(|_| outcome.is_some()).unwrap_or(ours);
        let snapshot = Snapshot::of(Some(followed), status.as_ref());
        let line = format!(
            "{state}: {} | {}",
            output::deployment_progress(ours),
            snapshot.line()
        );
        report.show(&snapshot, &line);
        if let Some(outcome) = outcome {
            let rollback_done = rollback.map(|r| finished(text(r, "status")).is_some());
            let done = match rollback_done {
                Some(done) => done,
                None if rolls_back(ours) && looks_for_rollback < ROLLBACK_LOOKS => {
                    looks_for_rollback += 1;
                    false
                }
                None => true,
            };
            if done || Instant::now() >= deadline {
                report.finish();
                if let Some(r) = rollback {
                    report.note(&format!(
                        "rollback {} of {id}: {}",
                        text(r, "id"),
                        text(r, "status")
                    ));
                }
                emit(output, &current, output::deployment);
                return Ok(outcome);
            }
        } else if state == "awaiting-promotion" {
            // Nothing more happens until someone promotes or cancels it: as far as a wait goes.
            report.finish();
            report.note(&format!(
                "canary baked; promote it: daemonctl deployments promote {name} {id} (or cancel it to roll its hosts back)"
            ));
            emit(output, &current, output::deployment);
            return Ok(Outcome::Success);
        } else if Instant::now() >= deadline {
            report.finish();
            return Err(Error::Other(format!(
                "deployment {id} is still {state} after {}s (it goes on; see `daemonctl deployments get {name} {id}`)",
                wait.timeout.as_secs()
            )));
        }
        tokio::time::sleep(wait.interval).await;
        if outcome.is_none() {
            current = api
                .get(&["environments", name, "deployments", id], &[])
                .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_finished_statuses_end_a_wait() {
        assert_eq!(finished("completed"), Some(Outcome::Success));
        assert_eq!(finished("failed"), Some(Outcome::Unsuccessful));
        assert_eq!(finished("cancelled"), Some(Outcome::Unsuccessful));
        for going_on in ["running", "pending", "paused", "awaiting-promotion", "new"] {
            assert_eq!(finished(going_on), None, "{going_on}");
        }
    }

    #[test]
    fn a_rollback_is_looked_for_only_after_a_halt_with_auto_rollback() {
        let halted = json!({"status": "failed", "haltedReason": "2 host(s) failed, threshold 1",
                            "previousRevision": 1, "updateStrategy": {"autoRollback": true}});
        assert!(rolls_back(&halted));
        let mut off = halted.clone();
        off["updateStrategy"]["autoRollback"] = json!(false);
        assert!(!rolls_back(&off));
        let mut first = halted.clone();
        first.as_object_mut().unwrap().remove("previousRevision");
        assert!(!rolls_back(&first), "nothing to roll back to");
        let mut itself = halted.clone();
        itself["rollbackOf"] = json!("01OLD");
        assert!(!rolls_back(&itself), "a rollback is not rolled back");
        let mut failed_hosts = halted;
        failed_hosts["haltedReason"] = Value::Null;
        assert!(!rolls_back(&failed_hosts), "failed hosts without a halt");
    }
}
