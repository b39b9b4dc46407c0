//! The daemon lifecycle against moto: revisions, rolling updates within `maxUnavailable`, the
//! circuit breaker with its automatic rollback, cancel, and the status counts.

use std::collections::BTreeMap;

use integration_tests::{down, Pump, TaskInfo, World};
use serde_json::{json, Value};

/// Live tasks by host: (task ARN, task definition ARN).
fn live_by_host(tasks: &[TaskInfo]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.status != "STOPPED") {
        out.entry(t.host.clone())
            .or_default()
            .push((t.arn.clone(), t.task_definition.clone()));
    }
    out
}

fn assert_every_host_runs_one(tasks: &[TaskInfo], hosts: &[String], td: &str) {
    let live = live_by_host(tasks);
    for h in hosts {
        let on = live.get(h).cloned().unwrap_or_default();
        assert_eq!(on.len(), 1, "host {h} runs {on:?}");
        assert_eq!(on[0].1, td, "host {h} runs {on:?}");
    }
}

async fn get(w: &World, path: &str) -> Value {
    let (status, body) = w.api("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// A world with `n` hosts all running revision 1 of environment `env`, and revision 2 (a new task
/// definition of the family, with `strategy`) recorded but not deployed.
async fn deployed_with_new_revision(
    n: usize,
    env: &str,
    strategy: Value,
) -> (World, Vec<String>, String, String) {
    let w = World::new().await;
    let hosts = w.add_hosts(n).await;
    let created = w.create_environment(env).await;
    let v1 = created["taskDefinition"].as_str().unwrap().to_owned();
    let first = w.deploy(env).await;
    assert_eq!(first["status"], "completed", "{first}");
    let v2 = w.register_task_definition().await;
    let (status, updated) = w
        .api(
            "PUT",
            &format!("/v1/environments/{env}"),
            Some(json!({"taskDefinition": v2, "updateStrategy": strategy})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["latestRevision"], 2);
    assert_eq!(updated["activeRevision"], 1);
    (w, hosts, v1, v2)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_update_of_20_hosts_never_has_more_than_5_without_a_running_daemon() {
    let (w, hosts, v1, v2) =
        deployed_with_new_revision(20, "roll", json!({"maxUnavailable": "25%"})).await;
    // A new revision touches nothing until it is deployed.
    assert_every_host_runs_one(&w.all_tasks().await, &hosts, &v1);

    let dep = w.create_deployment("roll").await;
    assert_eq!(dep["revision"], 2, "{dep}");
    assert_eq!(dep["taskDefinition"], v2.as_str());
    let id = dep["id"].as_str().unwrap().to_owned();

    let mut pump = Pump::new();
    w.deliver_deployment("roll", &id).await;
    assert_eq!(
        down(&w.all_tasks().await, &hosts),
        5,
        "the first step stops exactly maxUnavailable old tasks"
    );
    pump.max_down = 5;
    pump.run(&w, "roll", &hosts, None).await;

    assert!(
        pump.max_down <= 5,
        "{} hosts were down at once",
        pump.max_down
    );
    let tasks = w.all_tasks().await;
    assert_every_host_runs_one(&tasks, &hosts, &v2);
    let done = get(&w, &format!("/v1/environments/roll/deployments/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["failedHosts"], 0);

    let status = get(&w, "/v1/environments/roll/status?hosts=true").await;
    assert_eq!(
        status["counts"],
        json!({"desired": 20, "current": 20, "ready": 20, "updated": 20, "available": 20,
               "misscheduled": 0, "unavailable": 0, "unschedulable": 0, "waiting": 0}),
        "{status}"
    );
    assert_eq!(status["health"], "healthy");
    assert_eq!(status["activeRevision"], 2);
    assert_eq!(status["hosts"].as_array().unwrap().len(), 20);
    assert!(status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["taskDefinition"] == v2.as_str() && h["available"] == true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_revision_trips_the_breaker_and_the_rollback_restores_the_old_one_everywhere() {
    let (w, hosts, v1, v2) = deployed_with_new_revision(
        20,
        "breaker",
        json!({"maxUnavailable": "25%", "failureThreshold": "20%"}),
    )
    .await;
    let before = live_by_host(&w.all_tasks().await);
    let dep = w.create_deployment("breaker").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    w.deliver_deployment("breaker", &id).await;
    let mut pump = Pump::new();
    pump.run(&w, "breaker", &hosts, Some(&v2)).await;

    let failed = get(&w, &format!("/v1/environments/breaker/deployments/{id}")).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["haltedReason"]
            .as_str()
            .is_some_and(|r| r.starts_with("circuit breaker")),
        "{failed}"
    );
    // 20 % of 20 hosts is 4: the fifth failing host trips it, and nothing beyond the first
    // wave (5 hosts) was touched.
    assert_eq!(failed["failedHosts"], 5, "{failed}");
    let reasons = failed["failures"].as_array().unwrap();
    assert_eq!(reasons.len(), 5, "each failed host, once: {failed}");
    assert!(
        reasons
            .iter()
            .all(|f| f["reason"] == "stopped by an operator"),
        "{failed}"
    );
    assert_eq!(failed["failedInstances"].as_array().unwrap().len(), 5);
    let after = live_by_host(&w.all_tasks().await);
    let untouched = hosts
        .iter()
        .filter(|h| before.get(*h) == after.get(*h))
        .count();
    assert_eq!(
        untouched, 15,
        "hosts outside the first wave keep their task"
    );

    let list = get(&w, "/v1/environments/breaker/deployments").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{list}");
    let rollback = &items[0];
    assert_eq!(rollback["rollbackOf"], id.as_str(), "{rollback}");
    assert_eq!(rollback["revision"], 1);
    assert_eq!(rollback["status"], "completed", "{rollback}");
    assert_every_host_runs_one(&w.all_tasks().await, &hosts, &v1);

    let status = get(&w, "/v1/environments/breaker/status").await;
    assert_eq!(status["activeRevision"], 1, "{status}");
    assert_eq!(status["counts"]["available"], 20, "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revisions_are_listed_deployed_by_number_and_a_rolling_deployment_can_be_cancelled() {
    let (w, hosts, v1, v2) =
        deployed_with_new_revision(8, "revs", json!({"maxUnavailable": 2})).await;

    let list = get(&w, "/v1/environments/revs/revisions").await;
    let numbers: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    let r1 = get(&w, "/v1/environments/revs/revisions/1").await;
    assert_eq!(r1["taskDefinition"], v1.as_str());
    assert_eq!(r1["updateStrategy"]["maxUnavailable"], "25%");
    let r2 = get(&w, "/v1/environments/revs/revisions/2").await;
    assert_eq!(r2["updateStrategy"]["maxUnavailable"], 2);
    let (status, body) = w
        .api("GET", "/v1/environments/revs/revisions/9", None)
        .await;
    assert_eq!(status, 404, "{body}");

    // Bad updates: nothing is written.
    for (body, code, field) in [
        (json!({}), 400, Some("taskDefinition")),
        (json!({"taskDefinition": "no-such-family:1"}), 404, None),
        (
            json!({"updateStrategy": {"maxUnavailable": "0%"}}),
            400,
            Some("updateStrategy.maxUnavailable"),
        ),
        (json!({"image": "x"}), 400, Some("image")),
    ] {
        let (status, err) = w
            .api("PUT", "/v1/environments/revs", Some(body.clone()))
            .await;
        assert_eq!(status, code, "{body}: {err}");
        if let Some(f) = field {
            assert_eq!(err["field"], f, "{body}: {err}");
        }
    }
    assert_eq!(get(&w, "/v1/environments/revs").await["latestRevision"], 2);
    let (status, err) = w
        .api("POST", "/v1/environments/revs/deployments?revision=7", None)
        .await;
    assert_eq!(status, 404, "{err}");

    // Deploy revision 2, take one step (2 hosts replaced), cancel: the rest keep revision 1.
    let dep = w.create_deployment("revs").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    w.deliver_deployment("revs", &id).await;
    let (status, cancelled) = w
        .api(
            "POST",
            &format!("/v1/environments/revs/deployments/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, again) = w
        .api(
            "POST",
            &format!("/v1/environments/revs/deployments/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{again}");
    Pump::new().run(&w, "revs", &hosts, None).await;
    let live = live_by_host(&w.all_tasks().await);
    let on = |td: &str| {
        live.values()
            .filter(|t| t.len() == 1 && t[0].1 == td)
            .count()
    };
    assert_eq!((on(&v2), on(&v1)), (2, 6), "{live:?}");

    // Deploying revision 1 by number is a rollback: the two replaced hosts go back.
    let (status, back) = w
        .api("POST", "/v1/environments/revs/deployments?revision=1", None)
        .await;
    assert_eq!(status, 200, "{back}");
    let back_id = back["id"].as_str().unwrap().to_owned();
    w.deliver_deployment("revs", &back_id).await;
    Pump::new().run(&w, "revs", &hosts, None).await;
    assert_every_host_runs_one(&w.all_tasks().await, &hosts, &v1);
    let done = get(&w, &format!("/v1/environments/revs/deployments/{back_id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
}

async fn tasks_on(w: &World, host: &str) -> usize {
    w.tasks_by_host().await.get(host).map_or(0, Vec::len)
}

/// Starts a task that is not ours (another group) on `host`.
async fn start_other_task(w: &World, host: &str) -> String {
    w.ecs
        .start_task()
        .cluster(&w.cluster_name)
        .task_definition(&w.family)
        .group("service:web")
        .container_instances(host)
        .send()
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0)
        .task_arn
        .unwrap()
}

fn draining_event(
    w: &World,
    host: &str,
    version: i64,
    tasks_left: i64,
) -> integration_tests::shared::services::instance_events::InstanceDetail {
    let mut e = w.instance_event(host, "DRAINING", true, version);
    e.running_tasks_count = tasks_left;
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draining_host_keeps_its_daemon_until_its_other_tasks_are_gone() {
    use integration_tests::shared::services::instance_events;
    let w = World::new().await;
    let hosts = w.add_hosts(3).await;
    w.create_environment("drain").await;
    assert_eq!(w.deploy("drain").await["status"], "completed");
    let web0 = start_other_task(&w, &hosts[0]).await;
    let web1 = start_other_task(&w, &hosts[1]).await;
    w.drain(&hosts[0]).await;
    w.drain(&hosts[1]).await;

    // GIVEN a draining host still running a web task: the daemon stays (its logs still ship)
    w.calls.reset();
    instance_events::handle(&w.store, &w.cluster, &draining_event(&w, &hosts[0], 5, 2))
        .await
        .unwrap();
    assert_eq!(
        tasks_on(&w, &hosts[0]).await,
        2,
        "web task and daemon both run"
    );
    assert_eq!(w.calls.get("ECS.StopTask"), 0);
    assert_eq!(w.calls.get("ECS.ListTasks"), 1, "{:?}", w.calls.snapshot());
    // WHEN the web task is gone, the next event stops the daemon
    w.stop_task_by_hand(&web0).await;
    instance_events::handle(&w.store, &w.cluster, &draining_event(&w, &hosts[0], 6, 1))
        .await
        .unwrap();
    assert_eq!(tasks_on(&w, &hosts[0]).await, 0, "the daemon left last");

    // AND a host whose web task stopped before the drain event says so at once
    w.stop_task_by_hand(&web1).await;
    instance_events::handle(&w.store, &w.cluster, &draining_event(&w, &hosts[1], 5, 1))
        .await
        .unwrap();
    assert_eq!(tasks_on(&w, &hosts[1]).await, 0);
    // The ACTIVE host was never touched.
    assert_eq!(tasks_on(&w, &hosts[2]).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bake_holds_the_next_host_until_its_wakeup_steps_the_deployment() {
    let (w, hosts, _v1, v2) = deployed_with_new_revision(
        3,
        "bake",
        json!({"maxUnavailable": 1, "minHealthySeconds": 3}),
    )
    .await;
    let dep = w.create_deployment("bake").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    w.deliver_deployment("bake", &id).await;
    // The first host's old task stopped; its STOPPED event starts revision 2, whose RUNNING event
    // starts the bake and schedules a wake-up 4 s later (the bake, plus a second).
    let mut pump = Pump::new();
    pump.round(&w, "bake", &hosts, None).await;
    pump.round(&w, "bake", &hosts, None).await;
    w.calls.reset();
    pump.round(&w, "bake", &hosts, None).await;
    let on_v2 = |tasks: &[TaskInfo]| {
        tasks
            .iter()
            .filter(|t| t.status == "RUNNING" && t.task_definition == v2)
            .count()
    };
    assert_eq!(on_v2(&w.all_tasks().await), 1, "one host replaced so far");
    let status = get(&w, "/v1/environments/bake/status").await;
    assert_eq!(status["counts"]["ready"], 3, "{status}");
    assert_eq!(
        status["counts"]["available"], 2,
        "the new task bakes: {status}"
    );
    // Steps before the bake is over replace nothing more: the baking host holds the budget.
    w.deliver_deployment("bake", &id).await;
    assert_eq!(down(&w.all_tasks().await, &hosts), 0);
    assert_eq!(w.calls.get("ECS.StopTask"), 0, "{:?}", w.calls.snapshot());

    // The wake-ups alone carry the rollout to its end: no reconciler runs here.
    pump.run(&w, "bake", &hosts, None).await;
    assert_eq!(pump.wakeups, 3, "one wake-up per replaced host");
    assert_every_host_runs_one(&w.all_tasks().await, &hosts, &v2);
    let done = get(&w, &format!("/v1/environments/bake/deployments/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(pump.max_down <= 1, "{}", pump.max_down);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_reconcile_repairs_a_lost_stop_a_duplicate_started_by_hand_and_a_lost_join() {
    use integration_tests::shared::services::reconciler;
    let w = World::new().await;
    let mut hosts = w.add_hosts(3).await;
    let created = w.create_environment("drift").await;
    let td = created["taskDefinition"].as_str().unwrap().to_owned();
    assert_eq!(w.deploy("drift").await["status"], "completed");
    let before = w.tasks_by_host().await;
    // No event reaches us for any of this:
    w.stop_task_by_hand(&before[&hosts[0]][0]).await;
    let duplicate = w
        .ecs
        .start_task()
        .cluster(&w.cluster_name)
        .task_definition(&td)
        .container_instances(&hosts[1])
        .group("daemon-scheduler:drift")
        .started_by("an-operator")
        .send()
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0)
        .task_arn
        .unwrap();
    hosts.extend(w.add_hosts(1).await);

    let later = integration_tests::shared::executor::system_now_ms() + 600_000;
    let summary = reconciler::reconcile_all(&w.store, &w.cluster, later)
        .await
        .unwrap();
    assert_eq!((summary.started, summary.stopped), (2, 1), "{summary:?}");
    let tasks = w.all_tasks().await;
    assert_every_host_runs_one(&tasks, &hosts, &td);
    assert!(
        tasks
            .iter()
            .any(|t| t.arn == duplicate && t.status == "STOPPED"),
        "the duplicate was stopped"
    );
    assert!(
        tasks
            .iter()
            .any(|t| t.arn == before[&hosts[1]][0] && t.status != "STOPPED"),
        "the original daemon on that host kept running"
    );
}
