//! A deployment's per-host history against moto: a rolling update of four hosts where one host's
//! new task crashes at once, read back from `GET …/deployments/{id}/hosts` — each host with its
//! transitions in time order, ECS's stopped reason on the failing one, paged, and the 404s and
//! 400s of the route.

use integration_tests::{Pump, World};
use serde_json::{json, Value};
use shared::ports::Store;

async fn get(w: &World, path: &str) -> Value {
    let (status, body) = w.api("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The events of one host's history, in order.
fn events(host: &Value) -> Vec<&str> {
    host["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_update_with_one_crashing_host_is_told_host_by_host() {
    let w = World::new().await;
    let mut hosts = w.add_hosts(4).await;
    hosts.sort();
    w.create_environment("hist").await;
    let first = w.deploy("hist").await;
    assert_eq!(first["status"], "completed", "{first}");
    let v2 = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/hist",
            Some(json!({"taskDefinition": v2, "updateStrategy":
                {"maxUnavailable": 2, "failureThreshold": 1, "autoRollback": false}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Revision 2 everywhere, but on `bad` its task stops as soon as it starts (before ECS
    // reports it at all), every time.
    let bad = hosts[1].clone();
    let dep = w.create_deployment("hist").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    let mut pump = Pump::from_now(&w).await;
    let mut settled = false;
    for _ in 0..300 {
        for t in w.all_tasks().await {
            if t.host == bad && t.task_definition == v2 && t.status != "STOPPED" {
                w.stop_task_by_hand(&t.arn).await;
            }
        }
        if pump.round(&w, "hist", &hosts, None).await {
            continue;
        }
        let env = w.view.get_environment("hist").await.unwrap().unwrap();
        if env.active_deployment_id.is_none() {
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(settled, "the deployment did not end");
    let done = get(&w, &format!("/v1/environments/hist/deployments/{id}")).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["failedInstances"], json!([bad]), "{done}");

    let page = get(&w, &format!("/v1/environments/hist/deployments/{id}/hosts")).await;
    assert_eq!(page["nextToken"], Value::Null, "{page}");
    let items = page["items"].as_array().unwrap();
    let arns: Vec<&str> = items
        .iter()
        .map(|h| h["containerInstanceArn"].as_str().unwrap())
        .collect();
    assert_eq!(arns, hosts, "every host it touched, in ARN order");

    for h in items {
        let evs = h["events"].as_array().unwrap();
        let times: Vec<&str> = evs.iter().map(|e| e["at"].as_str().unwrap()).collect();
        assert!(times.windows(2).all(|t| t[0] <= t[1]), "in time order: {h}");
        assert!(evs.iter().all(|e| e["revision"] == 2), "{h}");
        if h["containerInstanceArn"] == bad.as_str() {
            // Replaced, claimed, then its task seen once (already STOPPED): started and failed
            // with ECS's reason; restarted, failed again, and so on with its backoff.
            assert_eq!(
                events(h)[..4],
                ["replaced", "claimed", "started", "failed"],
                "{h}"
            );
            assert_eq!(evs[3]["reason"], "stopped by an operator", "{h}");
            assert_eq!(evs[3]["taskArn"], evs[2]["taskArn"], "{h}");
            assert!(evs[2]["taskArn"]
                .as_str()
                .is_some_and(|t| t.starts_with("arn:aws:ecs:")));
            assert!(
                events(h).iter().filter(|e| **e == "failed").count() >= 2,
                "its restart failed too: {h}"
            );
            assert_eq!(h["available"], false, "{h}");
        } else {
            assert_eq!(
                events(h),
                ["replaced", "claimed", "started", "running", "healthy"],
                "{h}"
            );
            // The old task is the one replaced; the new one the one running now.
            assert_ne!(evs[0]["taskArn"], evs[2]["taskArn"], "{h}");
            assert_eq!(evs[2]["taskArn"], h["taskArn"], "{h}");
            assert_eq!(h["task"], "running");
            assert_eq!(h["available"], true);
            assert_eq!(h["revision"], 2);
        }
    }

    // The first deployment's own history of the same hosts: their first launch.
    let d1 = first["id"].as_str().unwrap();
    let before = get(&w, &format!("/v1/environments/hist/deployments/{d1}/hosts")).await;
    for h in before["items"].as_array().unwrap() {
        assert_eq!(
            events(h),
            ["claimed", "started", "running", "healthy"],
            "{h}"
        );
    }

    // Paged: two hosts a page, the token carries on where the page ended.
    let one = get(
        &w,
        &format!("/v1/environments/hist/deployments/{id}/hosts?limit=3"),
    )
    .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 3);
    let token = one["nextToken"].as_str().expect("a second page").to_owned();
    let two = get(
        &w,
        &format!("/v1/environments/hist/deployments/{id}/hosts?limit=3&nextToken={token}"),
    )
    .await;
    assert_eq!(two["nextToken"], Value::Null);
    let paged: Vec<&Value> = one["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(two["items"].as_array().unwrap())
        .collect();
    assert_eq!(paged, items.iter().collect::<Vec<_>>());

    // Unknown environment or deployment: 404; bad paging: 400 naming the field.
    for path in [
        "/v1/environments/nope/deployments/01JDQ3ZC9X8Q6M0W5Y7B2K4N1R/hosts".to_owned(),
        "/v1/environments/hist/deployments/01JDQ3ZC9X8Q6M0W5Y7B2K4N1R/hosts".to_owned(),
    ] {
        let (status, body) = w.api("GET", &path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("NotFound")),
            "{path}: {body}"
        );
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("nextToken=zzz", "nextToken"),
    ] {
        let path = format!("/v1/environments/hist/deployments/{id}/hosts?{query}");
        let (status, body) = w.api("GET", &path, None).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{path}: {body}"
        );
    }
}
