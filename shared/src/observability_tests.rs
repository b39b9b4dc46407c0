//! What on-call sees of one invocation: JSON log lines that carry the ids of what was handled, and
//! the metrics it counted (printed as one EMF line by the runtime).

use std::sync::{Arc, Mutex};

use tracing::instrument::WithSubscriber;

use crate::clock::now_rfc3339;
use crate::domain::{Environment, Host, HostStatus};
use crate::executor::system_now_ms;
use crate::fakes::{FakeCluster, FakeStore, FAKE_CLUSTER_ARN};
use crate::metrics::{self, scoped};
use crate::ports::Store;
use crate::services::{deployments_api, instance_events, rolling};

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

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

#[tokio::test]
async fn a_join_logs_json_with_the_host_and_counts_the_task_it_started() {
    // GIVEN a deployed environment and a host that just joined
    let (store, cluster) = (FakeStore::default(), FakeCluster::default());
    let now = now_rfc3339();
    let env = Environment::new(
        "agent",
        FAKE_CLUSTER_ARN,
        "agent:1",
        Default::default(),
        &now,
    );
    store
        .create_environment(&env, &env.latest(&now))
        .await
        .unwrap();
    let dep = deployments_api::create(&store, "agent", None, None)
        .await
        .unwrap();
    rolling::step(&store, &cluster, "agent", &dep.id, system_now_ms())
        .await
        .unwrap();
    let host = "arn:aws:ecs:us-east-1:123456789012:container-instance/demo/h1";
    cluster.set_host(Host {
        container_instance_arn: host.into(),
        status: HostStatus::Active,
        agent_connected: true,
        version: 1,
        other_tasks: None,
    });
    let event = instance_events::InstanceDetail {
        cluster_arn: FAKE_CLUSTER_ARN.into(),
        container_instance_arn: host.into(),
        status: "ACTIVE".into(),
        agent_connected: true,
        version: 1,
        running_tasks_count: 0,
        pending_tasks_count: 0,
    };

    // WHEN its event is handled under the functions' JSON subscriber, in a metrics scope
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    let (report, measured) =
        scoped(instance_events::handle(&store, &cluster, &event).with_subscriber(subscriber)).await;

    // THEN one task started, counted once
    assert_eq!(report.unwrap().started.len(), 1);
    assert_eq!(measured.get(metrics::TASKS_STARTED), Some(&[1.0][..]));
    let emf = measured.to_emf("instance-events", 0).unwrap();
    assert_eq!(emf[metrics::TASKS_STARTED], 1.0);
    // AND the log line says what was handled, with the host's ids from the span
    let lines = logs.lines();
    let handled = lines
        .iter()
        .find(|l| l["message"] == "instance event handled")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(handled["level"], "INFO");
    assert_eq!(handled["started"], 1);
    let span = &handled["spans"][0];
    assert_eq!(span["host"], host);
    assert_eq!(span["cluster"], FAKE_CLUSTER_ARN);
    assert_eq!(span["status"], "ACTIVE");
}
