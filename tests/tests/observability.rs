//! What on-call sees of one invocation against moto: JSON log lines carrying the ids of what was
//! handled, and the metrics it counted (the runtime prints them as EMF lines).
//! Its own test binary: the subscriber is the process-wide default, as in a Lambda.

use std::sync::{Arc, Mutex};

use integration_tests::shared::metrics::{self, scoped};
use integration_tests::shared::services::instance_events;
use integration_tests::World;

/// Collects what the JSON subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_logs_json_with_the_host_and_counts_the_task_it_started() {
    // The functions' subscriber (runtime::init_tracing with AWS_LAMBDA_LOG_FORMAT=JSON).
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .init();

    // GIVEN a deployed environment and a host that just joined
    let w = World::new().await;
    w.add_hosts(2).await;
    w.create_environment("agent").await;
    let dep = w.create_deployment("agent").await;
    w.deliver_deployment("agent", dep["id"].as_str().unwrap())
        .await;
    let host = w.add_hosts(1).await.remove(0);

    // WHEN its event is handled in a metrics scope
    let event = w.instance_event(&host, "ACTIVE", true, 1);
    let (report, measured) = scoped(instance_events::handle(&w.store, &w.cluster, &event)).await;

    // THEN one task started, counted once
    assert_eq!(report.unwrap().started.len(), 1);
    assert_eq!(measured.get(metrics::TASKS_STARTED), Some(&[1.0][..]));
    assert_eq!(
        measured.get_for("agent", metrics::TASKS_STARTED),
        Some(&[1.0][..])
    );
    // one EMF line, about `agent`: in total and by environment
    let emf = measured.to_emf("instance-events", 0);
    assert_eq!(emf.len(), 1, "{emf:?}");
    assert_eq!(emf[0][metrics::TASKS_STARTED], 1.0);
    assert_eq!(emf[0][metrics::ENVIRONMENT], "agent");
    assert_eq!(
        emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([[], [metrics::ENVIRONMENT]])
    );
    // AND its log line says what was handled, with the host's ids from the span
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let handled = lines
        .iter()
        .find(|l| {
            l["message"] == "instance event handled" && l["spans"][0]["host"] == host.as_str()
        })
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(handled["level"], "INFO");
    assert_eq!(handled["started"], 1);
    let span = &handled["spans"][0];
    assert_eq!(span["cluster"], w.cluster_arn.as_str());
    assert_eq!(span["status"], "ACTIVE");
}
