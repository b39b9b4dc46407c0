//! Alarm gates against moto: a rolling update of 8 hosts gated by a CloudWatch alarm (moto's
//! CloudWatch, read with DescribeAlarms by the product's adapter). Set to ALARM mid-rollout, the
//! next step halts it (no new host touched) and, with `autoRollback`, the rollback restores
//! revision 1 everywhere; without it, it stays halted; an alarm back to OK before the deployment
//! lets it complete; a canary waiting for promotion (no step comes) is halted by its re-check.

use std::collections::BTreeMap;

use integration_tests::shared::services::deployer;
use integration_tests::{Pump, World};
use serde_json::{json, Value};

/// The newest deployment of `env` (a rollback, after a halt).
async fn newest(w: &World, env: &str) -> Value {
    let (_, list) = w
        .api("GET", &format!("/v1/environments/{env}/deployments"), None)
        .await;
    list["items"][0].clone()
}

/// `env` on `n` hosts at revision 1; revision 2 registered with `strategy`, gated by a new
/// CloudWatch alarm (OK). Returns (hosts, revision 1, revision 2, the alarm).
async fn gated(
    w: &World,
    env: &str,
    n: usize,
    strategy: Value,
) -> (Vec<String>, String, String, String) {
    let hosts = w.add_hosts(n).await;
    let alarm = w.create_alarm("gate").await;
    w.create_environment(env).await;
    let first = w.deploy(env).await;
    assert_eq!(first["status"], "completed", "{first}");
    let v1 = first["taskDefinition"].as_str().unwrap().to_owned();
    let v2 = w.register_task_definition().await;
    let mut strategy = strategy;
    strategy["alarms"] = json!([alarm]);
    let (status, body) = w
        .api(
            "PUT",
            &format!("/v1/environments/{env}"),
            Some(json!({"taskDefinition": v2, "updateStrategy": strategy})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updateStrategy"]["alarms"], json!([alarm]), "{body}");
    (hosts, v1, v2, alarm)
}

/// Starts a deployment as its INSERT would (the first step; its gates' first re-check scheduled),
/// then plays rounds until `replaced` hosts run `v2`.
async fn rollout_until(
    w: &World,
    pump: &mut Pump,
    env: &str,
    hosts: &[String],
    v2: &str,
    replaced: usize,
) -> String {
    let dep = w.create_deployment(env).await;
    let id = dep["id"].as_str().unwrap().to_owned();
    w.deliver_deployment_insert(env, &id).await;
    for _ in 0..100 {
        if w.live_tasks_by_definition()
            .await
            .get(v2)
            .copied()
            .unwrap_or(0)
            >= replaced
        {
            return id;
        }
        pump.round(w, env, hosts, None).await;
    }
    panic!(
        "{replaced} hosts never ran {v2}: {:?}",
        w.live_tasks_by_definition().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_mid_rollout_halts_it_and_the_rollback_restores_revision_1_everywhere() {
    let w = World::new().await;
    let (hosts, v1, v2, alarm) = gated(&w, "gated", 8, json!({"maxUnavailable": 1})).await;
    let mut pump = Pump::from_now(&w).await;
    w.calls.reset();
    let id = rollout_until(&w, &mut pump, "gated", &hosts, &v2, 2).await;
    assert!(
        w.calls.get("CloudWatch.DescribeAlarms") >= 2,
        "the gates are read at each step: {:?}",
        w.calls.snapshot()
    );
    assert_eq!(w.get_deployment("gated", &id).await["status"], "pending");

    // CloudWatch's evaluation puts the alarm in ALARM: the next step halts the deployment.
    w.set_alarm_state(&alarm, "ALARM").await;
    let replaced = w.live_tasks_by_definition().await[&v2];
    pump.round(&w, "gated", &hosts, None).await;
    pump.round(&w, "gated", &hosts, None).await;
    let d = w.get_deployment("gated", &id).await;
    assert_eq!(
        d["haltedReason"],
        format!("alarm {alarm} is in ALARM"),
        "{d}"
    );
    // No new host was touched: at most the one in flight when the alarm came finished.
    let touched = w
        .live_tasks_by_definition()
        .await
        .get(&v2)
        .copied()
        .unwrap_or(0);
    assert!(
        touched <= replaced + 1,
        "{touched} hosts on revision 2, {replaced} before the alarm"
    );

    // The breaker's path: failed once the hosts in flight settled, then the automatic rollback,
    // which is not gated (the alarm is still in ALARM).
    pump.run(&w, "gated", &hosts, None).await;
    let d = w.get_deployment("gated", &id).await;
    assert_eq!(d["status"], "failed", "{d}");
    let rollback = newest(&w, "gated").await;
    assert_eq!(rollback["rollbackOf"], id.as_str(), "{rollback}");
    assert_eq!(rollback["revision"], 1);
    assert_eq!(rollback["status"], "completed", "{rollback}");
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v1, 8)])
    );
    assert_eq!(pump.max_per_host, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_auto_rollback_an_alarm_halts_it_and_nothing_rolls_back() {
    let w = World::new().await;
    let (hosts, v1, v2, alarm) = gated(
        &w,
        "norollback",
        8,
        json!({"maxUnavailable": 1, "autoRollback": false}),
    )
    .await;
    let mut pump = Pump::from_now(&w).await;
    let id = rollout_until(&w, &mut pump, "norollback", &hosts, &v2, 2).await;
    w.set_alarm_state(&alarm, "ALARM").await;
    let replaced = w.live_tasks_by_definition().await[&v2];
    pump.run(&w, "norollback", &hosts, None).await;
    let d = w.get_deployment("norollback", &id).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["haltedReason"], format!("alarm {alarm} is in ALARM"));
    assert_eq!(
        newest(&w, "norollback").await["id"],
        id.as_str(),
        "no rollback"
    );
    let now = w.live_tasks_by_definition().await;
    let on_v2 = now[&v2];
    assert!(on_v2 == replaced || on_v2 == replaced + 1, "{now:?}");
    assert_eq!(now[&v1] + on_v2, 8, "{now:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_back_to_ok_before_the_deployment_lets_it_complete() {
    let w = World::new().await;
    let (hosts, _, v2, alarm) = gated(&w, "recovered", 8, json!({"maxUnavailable": 2})).await;
    w.set_alarm_state(&alarm, "ALARM").await;
    w.set_alarm_state(&alarm, "OK").await;
    let mut pump = Pump::from_now(&w).await;
    w.calls.reset();
    let dep = w.create_deployment("recovered").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    w.deliver_deployment_insert("recovered", &id).await;
    pump.run(&w, "recovered", &hosts, None).await;
    let d = w.get_deployment("recovered", &id).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert!(d["haltedReason"].is_null(), "{d}");
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v2, 8)])
    );
    assert!(w.calls.get("CloudWatch.DescribeAlarms") >= 1);
    // Its INSERT scheduled the first re-check of its alarms, a minute on (still delayed).
    assert_eq!(w.delayed_wakeups().await, 1, "one re-check pending");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_awaiting_promotion_is_halted_by_its_recheck_and_rolled_back() {
    let w = World::new().await;
    let (hosts, v1, v2, alarm) =
        gated(&w, "waiting", 6, json!({"maxUnavailable": 1, "canary": 2})).await;
    let mut pump = Pump::from_now(&w).await;
    let dep = w.create_deployment("waiting").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    w.deliver_deployment_insert("waiting", &id).await;
    pump.until_quiet(&w, "waiting", &hosts).await;
    assert_eq!(
        w.get_deployment("waiting", &id).await["status"],
        "awaiting-promotion"
    );
    // The alarm fires while the canary waits: no event, no step, until the re-check comes.
    w.set_alarm_state(&alarm, "ALARM").await;
    pump.until_quiet(&w, "waiting", &hosts).await;
    assert_eq!(
        w.get_deployment("waiting", &id).await["status"],
        "awaiting-promotion"
    );
    // The re-check as the wake-up queue delivers it a minute after the last one.
    let recheck = json!({"Records": [{
        "messageId": "1", "receiptHandle": "r",
        "body": json!({"environment": "waiting", "deploymentId": id}).to_string(),
        "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:wakeups", "awsRegion": "us-east-1"
    }]});
    let trigger: deployer::Trigger = serde_json::from_value(recheck).unwrap();
    deployer::handle_trigger_with(&w.store, &w.cluster, w.gates(), &trigger)
        .await
        .unwrap();
    let d = w.get_deployment("waiting", &id).await;
    assert_eq!(
        d["haltedReason"],
        format!("alarm {alarm} is in ALARM"),
        "{d}"
    );
    pump.run(&w, "waiting", &hosts, None).await;
    assert_eq!(w.get_deployment("waiting", &id).await["status"], "failed");
    let rollback = newest(&w, "waiting").await;
    assert_eq!(rollback["rollbackOf"], id.as_str(), "{rollback}");
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v1, 6)])
    );
    assert!(!w.live_tasks_by_definition().await.contains_key(&v2));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_refuses_alarm_lists_it_cannot_take() {
    let w = World::new().await;
    w.add_hosts(1).await;
    w.create_environment("refused").await;
    for (strategy, field) in [
        (json!({"alarms": ["a", "a"]}), "updateStrategy.alarms[1]"),
        (json!({"alarms": "a"}), "updateStrategy.alarms"),
        (json!({"alarms": [""]}), "updateStrategy.alarms[0]"),
        (
            json!({"alarms": (0..11).map(|i| format!("a{i}")).collect::<Vec<_>>()}),
            "updateStrategy.alarms",
        ),
    ] {
        let (status, body) = w
            .api(
                "PUT",
                "/v1/environments/refused",
                Some(json!({"updateStrategy": strategy})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
    // null clears it.
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/refused",
            Some(json!({"updateStrategy": {"alarms": ["x"]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/refused",
            Some(json!({"updateStrategy": {"alarms": null}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["updateStrategy"].get("alarms").is_none(), "{body}");

    // A stack whose GateAlarmNamePrefix is `ours-` refuses other names, naming the field.
    use integration_tests::shared::domain::{AllowedAlarms, ManagedClusters};
    use integration_tests::shared::http::ApiRequest;
    use integration_tests::shared::services::environments_api;
    let put = |alarms: Value| ApiRequest {
        method: "PUT".into(),
        segments: vec!["environments".into(), "refused".into()],
        body: Some(
            json!({"updateStrategy": {"alarms": alarms}})
                .to_string()
                .into_bytes(),
        ),
        ..Default::default()
    };
    let ours = AllowedAlarms::with_prefix("ours-");
    let any = ManagedClusters::any();
    let err = environments_api::route_with(
        &w.store,
        &w.cluster,
        &any,
        &ours,
        &put(json!(["ours-a", "theirs"])),
    )
    .await
    .unwrap_err();
    assert_eq!(err.field(), Some("updateStrategy.alarms[1]"), "{err}");
    let ok =
        environments_api::route_with(&w.store, &w.cluster, &any, &ours, &put(json!(["ours-a"])))
            .await
            .unwrap();
    assert_eq!(ok.status, 200);
}
