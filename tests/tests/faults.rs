//! Fault injection against moto: 20 % of the product's ECS and DynamoDB calls are throttled or
//! lose their answer (see `integration_tests::Faults`) during a rolling update and a burst of 50
//! joins. Once the faults stop, two reconciler runs (with the events they cause) converge: one task
//! per host, on the deployed revision, no duplicate at any point, no lost deployment.

use integration_tests::shared::executor::system_now_ms;
use integration_tests::shared::planner::CLAIM_LEASE_MS;
use integration_tests::shared::ports::Store;
use integration_tests::shared::services::{instance_events, reconciler};
use integration_tests::{most_per_host, Pump, World};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn with_20_percent_of_calls_failing_a_rolling_update_and_50_joins_converge_in_2_reconciles() {
    let w = World::new().await;
    let mut hosts = w.add_hosts(12).await;
    w.create_environment("chaos").await;
    assert_eq!(w.deploy("chaos").await["status"], "completed");
    let v2 = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/chaos",
            Some(json!({"taskDefinition": v2, "updateStrategy": {"maxUnavailable": "25%"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    w.faults.set_per_mille(200);
    // The operator asks for the deployment until the API answers; an answer lost after the
    // deployment was recorded comes back as an error, and the recorded one still goes ahead.
    let mut answered = None;
    for _ in 0..10 {
        let (status, body) = w
            .api("POST", "/v1/environments/chaos/deployments", None)
            .await;
        if status == 200 {
            answered = body["id"].as_str().map(str::to_owned);
            break;
        }
        if w.view
            .get_environment("chaos")
            .await
            .unwrap()
            .unwrap()
            .active_deployment_id
            .is_some()
        {
            break;
        }
    }
    let env = w.view.get_environment("chaos").await.unwrap().unwrap();
    let id = env
        .active_deployment_id
        .clone()
        .expect("a deployment was recorded");
    if let Some(a) = answered {
        assert_eq!(a, id);
    }

    // A burst of 50 joins, delivered concurrently; a failed invocation is retried twice (Lambda's
    // asynchronous retries), then the event is lost.
    let joined = w.add_hosts(50).await;
    let deliveries = joined.iter().map(|h| {
        let event = w.instance_event(h, "ACTIVE", true, 1);
        let w = &w;
        async move {
            for _ in 0..3 {
                if instance_events::handle(&w.store, &w.cluster, &event)
                    .await
                    .is_ok()
                {
                    return true;
                }
            }
            false
        }
    });
    let delivered = futures::future::join_all(deliveries).await;
    hosts.extend(joined);

    // The rolling update under faults, as far as the events take it.
    let mut pump = Pump::new();
    for _ in 0..12 {
        pump.round(&w, "chaos", &hosts, None).await;
        assert!(pump.max_per_host <= 1, "a host ran two tasks at once");
    }
    let injected = w.faults.injected();
    assert!(
        injected.get("throttled").copied().unwrap_or(0) > 20
            && injected.get("answer lost").copied().unwrap_or(0) > 20,
        "{injected:?}"
    );

    // Faults stop. Two reconciler runs, each followed by the events it causes.
    w.faults.set_per_mille(0);
    let mut at = system_now_ms();
    let mut repaired = Vec::new();
    for _ in 0..2 {
        at += CLAIM_LEASE_MS + 1_000;
        repaired.push(
            reconciler::reconcile_all(&w.store, &w.cluster, at)
                .await
                .unwrap(),
        );
        pump.run(&w, "chaos", &hosts, None).await;
    }
    assert_eq!(pump.max_per_host, 1, "never two tasks on a host");

    let tasks = w.all_tasks().await;
    assert_eq!(most_per_host(&tasks), 1);
    for h in &hosts {
        let live: Vec<_> = tasks
            .iter()
            .filter(|t| &t.host == h && t.status != "STOPPED")
            .collect();
        assert_eq!(live.len(), 1, "host {h}: {live:?}");
        assert_eq!(live[0].task_definition, v2, "host {h}: {live:?}");
    }
    let dep = w.view.get_deployment("chaos", &id).await.unwrap().unwrap();
    assert_eq!(
        format!("{:?}", dep.status),
        "Completed",
        "the deployment was not lost: {dep:?}"
    );
    eprintln!(
        "faults injected {injected:?}; joins delivered {}/50; failed deliveries {}; events {}; \
         reconciler runs {repaired:?}",
        delivered.iter().filter(|d| **d).count(),
        pump.failed,
        pump.events
    );
}
