//! `env status --watch`: the environment's status polled until Ctrl-C, as a bar (terminal),
//! timestamped lines, or with `-o json` each new status document on a line of its own.

use std::time::Duration;

use serde_json::Value;

use crate::cli::Output;
use crate::client::ApiClient;
use crate::progress::Snapshot;
use crate::report::{Reporter, Sink};
use crate::{Error, Outcome};

/// `baking: updated 1/2, ... | deployment 01DEP running, revision 2`
pub fn line(status: &Value, s: &Snapshot) -> String {
    let d = &status["deployment"];
    let text = |key: &str| match d.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => "-".into(),
    };
    if !d.is_object() {
        return s.line();
    }
    format!(
        "{} | deployment {} {}, revision {}",
        s.line(),
        text("id"),
        text("status"),
        text("revision")
    )
}

pub async fn status(
    api: &ApiClient,
    output: Output,
    name: &str,
    interval: Duration,
) -> Result<Outcome, Error> {
    eprintln!(
        "{name}: its status every {}s until Ctrl-C",
        interval.as_secs()
    );
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut report = Reporter::new(Sink::Stdout);
    let mut last_json = String::new();
    let poll = async {
        loop {
            let a = api.get(&["environments", name, "status"], &[]).await?;
            match output {
                Output::Json => {
                    // One document a line, printed when something in it changed.
                    let doc = a.json.to_string();
                    if doc != last_json {
                        println!("{doc}");
                        last_json = doc;
                    }
                }
                Output::Table => {
                    let s = Snapshot::of(a.json.get("deployment"), Some(&a.json));
                    report.show(&s, &line(&a.json, &s));
                }
            }
            tokio::time::sleep(interval).await;
        }
    };
    let ended: Result<(), Error> = tokio::select! {
        r = poll => r,
        _ = &mut stop => Ok(()),
    };
    report.finish();
    ended.map(|()| Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_names_the_deployment_it_shows() {
        let status = json!({
            "counts": {"desired": 2, "current": 2, "ready": 2, "available": 1, "updated": 2, "unschedulable": 1},
            "deployment": {"id": "01DEP", "status": "running", "revision": 2, "failedHosts": 0}
        });
        let s = Snapshot::of(status.get("deployment"), Some(&status));
        assert_eq!(
            line(&status, &s),
            "baking: updated 2/2, available 1, failed 0, unschedulable 1 | deployment 01DEP running, revision 2"
        );
        let never =
            json!({"counts": {"desired": 1, "updated": 0, "available": 0, "unschedulable": 0}});
        let s = Snapshot::of(never.get("deployment"), Some(&never));
        assert_eq!(
            line(&never, &s),
            "not deployed: updated 0/1, available 0, failed -, unschedulable 0"
        );
    }
}
