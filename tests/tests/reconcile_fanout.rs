//! The scheduled reconcile fanned out on a real (moto) FIFO queue: one message per cluster, each
//! reconciled by its own invocation; a deleted cluster and a denied one are reported on their
//! environments (and in the status) while the healthy cluster's drift is repaired in the same
//! period; a transient failure fails only its own message, which the queue then retries.

use integration_tests::shared::executor::system_now_ms;
use integration_tests::shared::ports::{ReconcileMessage, ReconcileQueue, Store};
use integration_tests::shared::services::reconcile_queue::{self, Trigger};
use integration_tests::World;
use serde_json::{json, Value};

fn scheduled(time: &str) -> Trigger {
    serde_json::from_value(json!({
        "version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": time, "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/reconcile"], "detail": {}
    }))
    .unwrap()
}

async fn other_cluster(w: &World, name: &str) -> String {
    w.ecs
        .create_cluster()
        .cluster_name(name)
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap()
        .cluster_arn
        .unwrap()
}

async fn create_env_on(w: &World, name: &str, cluster: &str) {
    let (status, body) = w
        .api(
            "POST",
            "/v1/environments",
            Some(json!({"name": name, "instanceGroup": {"cluster": cluster}, "taskDefinition": w.family})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn env_view(w: &World, name: &str) -> Value {
    let (status, body) = w
        .api("GET", &format!("/v1/environments/{name}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn status_of(w: &World, name: &str) -> Value {
    let (status, body) = w
        .api("GET", &format!("/v1/environments/{name}/status"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_deleted_and_a_denied_cluster_are_reported_while_the_healthy_one_is_repaired() {
    let w = World::new().await;
    let hosts = w.add_hosts(3).await;
    w.create_environment("healthy").await;
    w.deploy("healthy").await;
    let suffix = w.cluster_name.clone();
    let gone = other_cluster(&w, &format!("{suffix}-gone")).await;
    let denied = other_cluster(&w, &format!("{suffix}-denied")).await;
    create_env_on(&w, "on-gone", &gone).await;
    create_env_on(&w, "on-denied", &denied).await;
    for env in ["on-gone", "on-denied"] {
        w.deploy(env).await; // no hosts yet: deployed on none
    }
    // Drift on the healthy cluster: a daemon stopped by hand, its event lost.
    let victim = w.tasks_by_host().await[&hosts[0]][0].clone();
    w.stop_task_by_hand(&victim).await;
    // One cluster deleted, one outside the functions' permissions.
    w.ecs.delete_cluster().cluster(&gone).send().await.unwrap();
    w.deny.deny(&denied);

    let period = "2026-12-01T18:00:00Z";
    let now = system_now_ms() + 600_000; // the stop is older than the claim lease
    let out = reconcile_queue::handle_trigger(
        &w.store,
        &w.cluster,
        Some(&w.reconcile_queue as &dyn ReconcileQueue),
        &scheduled(period),
        now,
    )
    .await
    .unwrap();
    assert_eq!(out.enqueued, 3, "one message per cluster");
    // EventBridge delivers the same scheduled event again: nothing more is queued.
    reconcile_queue::handle_trigger(
        &w.store,
        &w.cluster,
        Some(&w.reconcile_queue as &dyn ReconcileQueue),
        &scheduled(period),
        now,
    )
    .await
    .unwrap();
    let messages = w.take_reconcile_messages().await;
    let clusters: Vec<String> = messages
        .iter()
        .map(|m| {
            serde_json::from_str::<ReconcileMessage>(m.body().unwrap())
                .unwrap()
                .cluster_arn
        })
        .collect();
    assert_eq!(messages.len(), 3, "deduplicated by content: {clusters:?}");

    // Each message its own invocation, in whatever order the queue hands them out.
    for m in &messages {
        let out = reconcile_queue::handle_trigger(
            &w.store,
            &w.cluster,
            None,
            &World::reconcile_trigger(m),
            now,
        )
        .await
        .expect("a lasting failure is reported, not retried");
        w.delete_reconcile_message(m).await;
        let failed: Vec<&str> = out
            .reconciled
            .failed
            .iter()
            .map(|f| f.environment.as_str())
            .collect();
        let cluster = &serde_json::from_str::<ReconcileMessage>(m.body().unwrap())
            .unwrap()
            .cluster_arn;
        if cluster == &w.cluster_arn {
            assert!(failed.is_empty(), "{out:?}");
            assert_eq!(out.reconciled.started, 1, "the stopped daemon restarted");
        } else if cluster == &gone {
            assert_eq!(failed, ["on-gone"]);
        } else {
            assert_eq!(failed, ["on-denied"]);
        }
    }

    let live = w.tasks_by_host().await;
    assert!(
        live[&hosts[0]].iter().any(|t| t != &victim),
        "host 0 runs a daemon again: {live:?}"
    );
    let gone_env = env_view(&w, "on-gone").await;
    assert_eq!(gone_env["health"], "unhealthy");
    assert_eq!(
        gone_env["reconcileFailure"]["code"], "ClusterNotFoundException",
        "{gone_env}"
    );
    let denied_env = env_view(&w, "on-denied").await;
    assert_eq!(
        denied_env["reconcileFailure"]["code"], "AccessDeniedException",
        "{denied_env}"
    );
    let status = status_of(&w, "on-denied").await;
    assert_eq!(status["health"], "unhealthy");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains("AccessDeniedException"),
        "{status}"
    );
    let healthy = env_view(&w, "healthy").await;
    assert!(healthy.get("reconcileFailure").is_none(), "{healthy}");
    let since = denied_env["reconcileFailure"]["since"].clone();

    // The next period: still denied (the record is not rewritten: the same failure, the same
    // `since`), then the permission comes back and the failure clears.
    let versions = w
        .store
        .get_environment("on-denied")
        .await
        .unwrap()
        .unwrap()
        .version;
    let again = reconcile_queue::handle_trigger(
        &w.store,
        &w.cluster,
        None,
        &World::reconcile_trigger(
            messages
                .iter()
                .find(|m| m.body().unwrap().contains(&denied))
                .unwrap(),
        ),
        now + 300_000,
    )
    .await
    .unwrap();
    assert_eq!(again.reconciled.failed.len(), 1);
    let after = w.store.get_environment("on-denied").await.unwrap().unwrap();
    assert_eq!(
        after.version, versions,
        "an unchanged failure costs no write"
    );
    assert_eq!(
        env_view(&w, "on-denied").await["reconcileFailure"]["since"],
        since
    );
    w.deny.allow_all();
    reconcile_queue::handle_trigger(
        &w.store,
        &w.cluster,
        None,
        &World::reconcile_trigger(
            messages
                .iter()
                .find(|m| m.body().unwrap().contains(&denied))
                .unwrap(),
        ),
        now + 600_000,
    )
    .await
    .unwrap();
    let recovered = env_view(&w, "on-denied").await;
    assert!(recovered.get("reconcileFailure").is_none(), "{recovered}");
    assert_eq!(recovered["health"], "healthy");
}

#[tokio::test]
async fn a_transient_failure_fails_only_its_own_message_for_the_queue_to_retry() {
    let w = World::new().await;
    w.add_hosts(2).await;
    w.create_environment("flaky").await;
    w.deploy("flaky").await;
    reconcile_queue::fan_out(&w.store, &w.reconcile_queue, "2026-12-01T18:05:00Z")
        .await
        .unwrap();
    let messages = w.take_reconcile_messages().await;
    assert_eq!(messages.len(), 1);
    // Every call throttled, whatever the SDK retries: the invocation fails, the message stays.
    w.faults.set_per_mille(1000);
    let failed = reconcile_queue::handle_trigger(
        &w.store,
        &w.cluster,
        None,
        &World::reconcile_trigger(&messages[0]),
        system_now_ms(),
    )
    .await;
    w.faults.set_per_mille(0);
    assert!(failed.is_err(), "{failed:?}");
    // The retry (the same message, once visible again) succeeds.
    let ok = reconcile_queue::handle_trigger(
        &w.store,
        &w.cluster,
        None,
        &World::reconcile_trigger(&messages[0]),
        system_now_ms(),
    )
    .await
    .unwrap();
    assert!(ok.reconciled.failed.is_empty(), "{ok:?}");
    assert_eq!(ok.reconciled.environments, 1);
}
