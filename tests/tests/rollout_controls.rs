//! Rollout controls against moto: a canary replaces only its hosts, bakes them and waits for
//! promotion (hosts joining meanwhile get the previous revision, and the new one on promotion);
//! cancelling it rolls its hosts back; `autoPromote` goes on by itself; a paused deployment
//! touches no new host until it is resumed.

use std::collections::BTreeMap;

use integration_tests::{Pump, World};
use serde_json::{json, Value};

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
    let d = w.get_deployment("canary", &id).await;
    assert_eq!(d["status"], "awaiting-promotion", "{d}");
    assert_eq!(
        w.live_tasks_by_definition().await,
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
        w.live_tasks_by_definition().await,
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
    let d = w.get_deployment("canary", &id).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v2.clone(), 9)])
    );
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
        w.get_deployment("cancel", &id).await["status"],
        "awaiting-promotion"
    );
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v1.clone(), 4), (v2.clone(), 2)])
    );

    let (status, cancelled) = post(&w, "cancel", &id, "cancel").await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    pump.run(&w, "cancel", &hosts, None).await;
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v1.clone(), 6)])
    );
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
    let d = w.get_deployment("auto", &id).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert!(d["promotedAt"].is_string(), "{d}");
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v2, 4)])
    );
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
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v1.clone(), 4), (v2.clone(), 2)])
    );
    let later = integration_tests::shared::executor::system_now_ms() + 600_000;
    integration_tests::shared::services::reconciler::reconcile_all(&w.store, &w.cluster, later)
        .await
        .unwrap();
    pump.until_quiet(&w, "pause", &hosts).await;
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v1.clone(), 4), (v2.clone(), 2)])
    );
    assert_eq!(w.get_deployment("pause", &id).await["status"], "paused");

    let (status, resumed) = post(&w, "pause", &id, "resume").await;
    assert_eq!(status, 200, "{resumed}");
    assert_ne!(resumed["status"], "paused");
    pump.run(&w, "pause", &hosts, None).await;
    assert_eq!(w.get_deployment("pause", &id).await["status"], "completed");
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v2, 6)])
    );
    // A finished deployment can be paused no more.
    let (status, body) = post(&w, "pause", &id, "pause").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_surge_rollout_never_leaves_a_host_without_a_running_daemon() {
    let w = World::new().await;
    let (hosts, _, v2) = two_revisions(
        &w,
        "surge",
        20,
        json!({"maxSurge": "25%", "maxUnavailable": 0}),
    )
    .await;
    let mut pump = Pump::from_now(&w).await;
    let dep = w.create_deployment("surge").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    pump.run(&w, "surge", &hosts, None).await;
    assert_eq!(w.get_deployment("surge", &id).await["status"], "completed");
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v2, 20)])
    );
    // Sampled after every event: never a host without a RUNNING daemon, at most two on one.
    assert_eq!(pump.max_down, 0, "a host was without a running daemon");
    assert_eq!(
        pump.max_per_host, 2,
        "the new task started beside the old one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_surge_whose_new_task_fails_keeps_the_old_one_running() {
    let w = World::new().await;
    let (hosts, v1, v2) = two_revisions(
        &w,
        "keep",
        6,
        json!({"maxSurge": 2, "maxUnavailable": 0, "failureThreshold": 1, "autoRollback": false}),
    )
    .await;
    let mut pump = Pump::from_now(&w).await;
    let dep = w.create_deployment("keep").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    pump.run(&w, "keep", &hosts, Some(&v2)).await;
    let d = w.get_deployment("keep", &id).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["haltedReason"]
            .as_str()
            .unwrap()
            .contains("circuit breaker"),
        "{d}"
    );
    // Every host still runs revision 1: the failing new tasks never took an old one down.
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v1, 6)])
    );
    assert_eq!(pump.max_down, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn surge_is_refused_where_both_tasks_would_bind_the_same_host_port() {
    let w = World::new().await;
    w.add_hosts(1).await;
    let td = w
        .ecs
        .register_task_definition()
        .family(format!("{}-ports", w.family))
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("agent")
                .image("busybox")
                .memory(64)
                .port_mappings(
                    aws_sdk_ecs::types::PortMapping::builder()
                        .container_port(8080)
                        .host_port(8080)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap();
    let (status, body) = w
        .api(
            "POST",
            "/v1/environments",
            Some(
                json!({"name": "ports", "instanceGroup": {"cluster": w.cluster_name},
                        "taskDefinition": td, "updateStrategy": {"maxSurge": 1}}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "updateStrategy.maxSurge", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("8080/tcp"),
        "{body}"
    );
    // maxUnavailable and maxSurge cannot both be 0.
    let (status, body) = w
        .api(
            "POST",
            "/v1/environments",
            Some(
                json!({"name": "zero", "instanceGroup": {"cluster": w.cluster_name},
                        "taskDefinition": w.family, "updateStrategy": {"maxUnavailable": 0}}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "updateStrategy.maxUnavailable", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_cannot_take_both_tasks_is_replaced_stop_then_start() {
    let w = World::new().await;
    let hosts = w.add_hosts(3).await;
    let big1 = w.register_sized_task_definition(&w.family, 4000).await;
    let (status, body) = w
        .api(
            "POST",
            "/v1/environments",
            Some(
                json!({"name": "big", "instanceGroup": {"cluster": w.cluster_name},
                        "taskDefinition": big1,
                        "updateStrategy": {"maxSurge": 1, "maxUnavailable": 0}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    w.deploy("big").await;
    let big2 = w.register_sized_task_definition(&w.family, 4000).await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/big",
            Some(json!({"taskDefinition": big2})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut pump = Pump::from_now(&w).await;
    w.create_deployment("big").await;
    pump.run(&w, "big", &hosts, None).await;
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(big2, 3)])
    );
    // Two 4,000 MiB tasks never shared a 7,482 MiB host: each went stop, then start.
    assert_eq!(pump.max_per_host, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_may_carry_its_own_canary() {
    let w = World::new().await;
    let (hosts, v1, v2) = two_revisions(&w, "own", 4, json!({"maxUnavailable": 1})).await;
    let mut pump = Pump::from_now(&w).await;
    let (status, dep) = w
        .api(
            "POST",
            "/v1/environments/own/deployments",
            Some(json!({"updateStrategy": {"canary": 1}})),
        )
        .await;
    assert_eq!(status, 200, "{dep}");
    let id = dep["id"].as_str().unwrap().to_owned();
    pump.until_quiet(&w, "own", &hosts).await;
    assert_eq!(
        w.get_deployment("own", &id).await["status"],
        "awaiting-promotion"
    );
    assert_eq!(
        w.live_tasks_by_definition().await,
        BTreeMap::from([(v1, 3), (v2, 1)])
    );
    // The revision itself is unchanged: its strategy has no canary.
    let (_, rev) = w.api("GET", "/v1/environments/own/revisions/2", None).await;
    assert!(rev["updateStrategy"].get("canary").is_none(), "{rev}");
    let (status, body) = w
        .api(
            "POST",
            "/v1/environments/own/deployments",
            Some(json!({"updateStrategy": {"canary": 0}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}
