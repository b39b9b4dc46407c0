//! Rollout controls against moto: a canary replaces only its hosts, bakes them and waits for
//! promotion (hosts joining meanwhile get the previous revision, and the new one on promotion);
//! cancelling it rolls its hosts back; `autoPromote` goes on by itself; a paused deployment
//! touches no new host until it is resumed.

use std::collections::BTreeMap;

use integration_tests::{Pump, World};
use serde_json::{json, Value};

/// Live tasks by task definition ARN.
async fn by_revision(w: &World) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in w.all_tasks().await {
        if t.status != "STOPPED" {
            *out.entry(t.task_definition.clone()).or_default() += 1;
        }
    }
    out
}

async fn deployment(w: &World, env: &str, id: &str) -> Value {
    let (status, body) = w
        .api(
            "GET",
            &format!("/v1/environments/{env}/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn post(w: &World, env: &str, id: &str, verb: &str) -> (u16, Value) {
    w.api(
        "POST",
        &format!("/v1/environments/{env}/deployments/{id}/{verb}"),
        None,
    )
    .await
}

/// `env` deployed at revision 1 on `n` hosts, revision 2 registered with `strategy`; returns
/// (hosts, revision 1's and revision 2's task definitions).
async fn two_revisions(
    w: &World,
    env: &str,
    n: usize,
    strategy: Value,
) -> (Vec<String>, String, String) {
    let hosts = w.add_hosts(n).await;
    w.create_environment(env).await;
    let first = w.deploy(env).await;
    assert_eq!(first["status"], "completed", "{first}");
    let v1 = first["taskDefinition"].as_str().unwrap().to_owned();
    let v2 = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "PUT",
            &format!("/v1/environments/{env}"),
            Some(json!({"taskDefinition": v2, "updateStrategy": strategy})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (hosts, v1, v2)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_waits_for_promotion_joins_get_the_old_revision_then_all_get_the_new() {
    let w = World::new().await;
    let (mut hosts, v1, v2) =
        two_revisions(&w, "canary", 8, json!({"maxUnavailable": 1, "canary": 2})).await;
    let mut pump = Pump::from_now(&w).await;
    let dep = w.create_deployment("canary").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    pump.until_quiet(&w, "canary", &hosts).await;
    let d = deployment(&w, "canary", &id).await;
    assert_eq!(d["status"], "awaiting-promotion", "{d}");
    assert_eq!(
        by_revision(&w).await,
        BTreeMap::from([(v1.clone(), 6), (v2.clone(), 2)])
    );
    assert!(pump.max_down <= 1, "one host at a time (maxUnavailable 1)");

    // A host joins while the canary waits: it gets revision 1.
    let joined = w.add_hosts(1).await;
    let ev = w.host_event(&joined[0], 1).await;
    integration_tests::shared::services::instance_events::handle(&w.store, &w.cluster, &ev)
        .await
        .unwrap();
    hosts.extend(joined);
    pump.until_quiet(&w, "canary", &hosts).await;
    assert_eq!(
        by_revision(&w).await,
        BTreeMap::from([(v1.clone(), 7), (v2.clone(), 2)])
    );
    let (status, env) = w.api("GET", "/v1/environments/canary", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        env["activeRevision"], 1,
        "joins get the previous revision: {env}"
    );

    // Promotion: the environment deploys revision 2 and every other host follows, in waves.
    let (status, promoted) = post(&w, "canary", &id, "promote").await;
    assert_eq!(status, 200, "{promoted}");
    assert!(promoted["promotedAt"].is_string(), "{promoted}");
    pump.run(&w, "canary", &hosts, None).await;
    let d = deployment(&w, "canary", &id).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert_eq!(by_revision(&w).await, BTreeMap::from([(v2.clone(), 9)]));
    assert!(pump.max_down <= 1);
    assert_eq!(pump.max_per_host, 1);
    // Promoting twice, or what is no canary, is refused.
    let (status, body) = post(&w, "canary", &id, "promote").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_canary_rolls_its_hosts_back() {
    let w = World::new().await;
    let (hosts, v1, v2) = two_revisions(
        &w,
        "cancel",
        6,
        json!({"maxUnavailable": 2, "canary": "34%"}),
    )
    .await;
    let mut pump = Pump::from_now(&w).await;
    let dep = w.create_deployment("cancel").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    pump.until_quiet(&w, "cancel", &hosts).await;
    assert_eq!(
        deployment(&w, "cancel", &id).await["status"],
        "awaiting-promotion"
    );
    assert_eq!(
        by_revision(&w).await,
        BTreeMap::from([(v1.clone(), 4), (v2.clone(), 2)])
    );

    let (status, cancelled) = post(&w, "cancel", &id, "cancel").await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    pump.run(&w, "cancel", &hosts, None).await;
    assert_eq!(by_revision(&w).await, BTreeMap::from([(v1.clone(), 6)]));
    let (_, list) = w
        .api("GET", "/v1/environments/cancel/deployments", None)
        .await;
    let rollback = &list["items"][0];
    assert_eq!(rollback["rollbackOf"], id.as_str(), "{list}");
    assert_eq!(rollback["status"], "completed", "{rollback}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_promoted_canary_goes_on_by_itself() {
    let w = World::new().await;
    let (hosts, _, v2) = two_revisions(
        &w,
        "auto",
        4,
        json!({"maxUnavailable": 1, "canary": 1, "autoPromote": true}),
    )
    .await;
    let mut pump = Pump::from_now(&w).await;
    let dep = w.create_deployment("auto").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    pump.run(&w, "auto", &hosts, None).await;
    let d = deployment(&w, "auto", &id).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert!(d["promotedAt"].is_string(), "{d}");
    assert_eq!(by_revision(&w).await, BTreeMap::from([(v2, 4)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_deployment_touches_no_new_host_until_resumed() {
    let w = World::new().await;
    let (hosts, v1, v2) = two_revisions(&w, "pause", 6, json!({"maxUnavailable": 2})).await;
    let mut pump = Pump::from_now(&w).await;
    let dep = w.create_deployment("pause").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    // The first wave goes out, then the operator pauses.
    assert!(pump.round(&w, "pause", &hosts, None).await);
    let (status, paused) = post(&w, "pause", &id, "pause").await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["status"], "paused", "{paused}");
    pump.until_quiet(&w, "pause", &hosts).await;
    // The wave in flight finished; no other host was touched, even by the reconciler.
    assert_eq!(
        by_revision(&w).await,
        BTreeMap::from([(v1.clone(), 4), (v2.clone(), 2)])
    );
    let later = integration_tests::shared::executor::system_now_ms() + 600_000;
    integration_tests::shared::services::reconciler::reconcile_all(&w.store, &w.cluster, later)
        .await
        .unwrap();
    pump.until_quiet(&w, "pause", &hosts).await;
    assert_eq!(
        by_revision(&w).await,
        BTreeMap::from([(v1.clone(), 4), (v2.clone(), 2)])
    );
    assert_eq!(deployment(&w, "pause", &id).await["status"], "paused");

    let (status, resumed) = post(&w, "pause", &id, "resume").await;
    assert_eq!(status, 200, "{resumed}");
    assert_ne!(resumed["status"], "paused");
    pump.run(&w, "pause", &hosts, None).await;
    assert_eq!(deployment(&w, "pause", &id).await["status"], "completed");
    assert_eq!(by_revision(&w).await, BTreeMap::from([(v2, 6)]));
    // A finished deployment can be paused no more.
    let (status, body) = post(&w, "pause", &id, "pause").await;
    assert_eq!(status, 400, "{body}");
}
