//! Placement against moto (DynamoDB + ECS over the wire): which hosts a daemon belongs on
//! (selectors, relabelling), whether it fits (free resources, unschedulable with the reason), what
//! each host gets (placeholders, sizing), the order between daemons on a host, any capacity, and
//! the API's checks of it all. moto emits no events: the tests play ECS's from moto's state.

use integration_tests::shared::services::{instance_events, task_events};
use integration_tests::World;
use serde_json::{json, Value};

async fn get(w: &World, path: &str) -> Value {
    let (status, body) = w.api("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn create(w: &World, body: Value) -> Value {
    let (status, body) = w.api("POST", "/v1/environments", Some(body)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The hosts of the world's cluster where `environment` has a live task.
async fn hosts_running(w: &World, environment: &str) -> Vec<String> {
    let mut out: Vec<String> = w
        .all_tasks()
        .await
        .into_iter()
        .filter(|t| t.status != "STOPPED")
        .filter(|t| t.group == format!("daemon-scheduler:{environment}"))
        .map(|t| t.host)
        .collect();
    out.sort();
    out
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn host_row<'a>(status: &'a Value, host: &str) -> &'a Value {
    status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["containerInstanceArn"] == host)
        .unwrap_or_else(|| panic!("no row for {host}: {status}"))
}

async fn join(w: &World, host: &str, version: i64) {
    instance_events::handle(&w.store, &w.cluster, &w.host_event(host, version).await)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_selector_keeps_the_daemon_on_labelled_hosts_and_relabelling_moves_it() {
    // GIVEN three hosts, one labelled gpu=true, and an exporter for gpu hosts only
    let w = World::new().await;
    let hosts = w.add_hosts(3).await;
    w.label(&hosts[0], "gpu", Some("true")).await;
    create(
        &w,
        json!({"name": "exporter", "instanceGroup": {"cluster": w.cluster_name},
        "taskDefinition": w.family,
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:gpu == true"}]}),
    )
    .await;
    // WHEN it is deployed
    let dep = w.deploy("exporter").await;
    // THEN only the labelled host runs it; the others are not selected, and say why
    assert_eq!(hosts_running(&w, "exporter").await, vec![hosts[0].clone()]);
    assert_eq!(
        (dep["status"].as_str(), dep["desiredCount"].as_i64()),
        (Some("completed"), Some(1))
    );
    let status = get(&w, "/v1/environments/exporter/status?hosts=true").await;
    assert_eq!(status["counts"]["desired"], 1, "{status}");
    let other = host_row(&status, &hosts[1]);
    assert_eq!(other["placement"], "notSelected", "{other}");
    assert!(
        other["reason"]
            .as_str()
            .unwrap()
            .contains("attribute:gpu == true"),
        "{other}"
    );

    // WHEN the label moves from the first host to the second (PutAttributes: instance events)
    w.label(&hosts[0], "gpu", None).await;
    w.label(&hosts[1], "gpu", Some("true")).await;
    join(&w, &hosts[0], 1).await;
    join(&w, &hosts[1], 1).await;
    w.deliver_task_events().await;
    // THEN the daemon moved with it
    assert_eq!(hosts_running(&w, "exporter").await, vec![hosts[1].clone()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_without_room_is_unschedulable_with_the_reason_until_another_task_leaves_it() {
    // GIVEN two hosts; another workload takes nearly all memory of the second (7,300 of 7,482 MiB)
    let w = World::new().await;
    let hosts = w.add_hosts(2).await;
    let big = w
        .register_sized_task_definition("big-batch-job", 7300)
        .await;
    let other = w.start_other_task(&hosts[1], &big).await;
    let family = format!("{}-fat", w.family);
    w.register_sized_task_definition(&family, 512).await;
    create(
        &w,
        json!({"name": "fat", "instanceGroup": {"cluster": w.cluster_name},
        "taskDefinition": family}),
    )
    .await;
    // WHEN a daemon needing 512 MiB is deployed
    let dep = w.deploy("fat").await;
    // THEN the host with room runs it; the other is unschedulable with the reason — no failure,
    // and the deployment completes over the hosts that can run it
    assert_eq!(hosts_running(&w, "fat").await, vec![hosts[0].clone()]);
    assert_eq!(dep["status"], "completed", "{dep}");
    assert_eq!(
        (dep["desiredCount"].as_i64(), dep["failedHosts"].as_i64()),
        (Some(1), Some(0))
    );
    let status = get(&w, "/v1/environments/fat/status?hosts=true").await;
    assert_eq!(
        (
            status["counts"]["desired"].as_i64(),
            status["counts"]["unschedulable"].as_i64()
        ),
        (Some(1), Some(1)),
        "{status}"
    );
    assert_eq!(status["health"], "healthy", "{status}");
    let full = host_row(&status, &hosts[1]);
    assert_eq!(full["placement"], "unschedulable");
    assert_eq!(full["reason"], "needs 512 MiB memory, 182 free", "{full}");
    // AND no timer retries it: a reconcile an hour later starts nothing
    w.calls.reset();
    integration_tests::shared::services::reconciler::reconcile_all(
        &w.store,
        &w.cluster,
        integration_tests::shared::executor::system_now_ms() + 3_600_000,
    )
    .await
    .unwrap();
    assert_eq!(w.calls.get("ECS.StartTask"), 0, "{:?}", w.calls.snapshot());

    // WHEN the other task stops, ECS reports the host again (it has room now)
    w.stop_task_by_hand(&other).await;
    join(&w, &hosts[1], 1).await;
    w.deliver_task_events().await;
    // THEN the daemon starts there
    assert_eq!(hosts_running(&w, "fat").await, sorted(&hosts));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_host_gets_values_filled_from_it_and_a_size_for_its_instance_type() {
    let w = World::new().await;
    let big = w.add_hosts_of(1, "m5.large").await.remove(0);
    let small = w.add_hosts_of(1, "t3.small").await.remove(0);
    create(&w, json!({"name": "agent", "instanceGroup": {"cluster": w.cluster_name},
        "taskDefinition": w.family,
        "overrides": {"containerOverrides": [{"name": "agent", "environment": [
            {"name": "ZONE", "value": "${host.availabilityZone}"},
            {"name": "TYPE", "value": "${host.instanceType}"},
            {"name": "INSTANCE", "value": "${host.instanceId}"}]}]},
        "sizing": [
            {"expression": "attribute:ecs.instance-type =~ m5\\..*", "cpu": "512", "memory": "1 GB"},
            {"expression": "attribute:ecs.instance-type =~ t3\\..*", "cpu": 256, "memory": 256}]}))
    .await;
    w.deploy("agent").await;

    // Each task was started with its host's values and size (two launches: two StartTask calls).
    let arns: Vec<String> = w.tasks_by_host().await.into_values().flatten().collect();
    let tasks = w
        .ecs
        .describe_tasks()
        .cluster(&w.cluster_name)
        .set_tasks(Some(arns))
        .send()
        .await
        .unwrap()
        .tasks
        .unwrap();
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        let host = t.container_instance_arn().unwrap();
        let o = t.overrides().expect("overrides");
        let env: Vec<(String, String)> = o.container_overrides()[0]
            .environment()
            .iter()
            .map(|kv| {
                (
                    kv.name().unwrap().to_owned(),
                    kv.value().unwrap().to_owned(),
                )
            })
            .collect();
        let (ty, cpu, memory) = if host == big {
            ("m5.large", "512", "1024")
        } else {
            ("t3.small", "256", "256")
        };
        assert_eq!(env[0], ("ZONE".into(), "us-east-1a".into()));
        assert_eq!(env[1], ("TYPE".into(), ty.into()));
        assert!(env[2].1.starts_with("i-"), "{env:?}");
        assert_eq!((o.cpu(), o.memory()), (Some(cpu), Some(memory)), "{o:?}");
    }
    // The status shows what each host got.
    let status = get(&w, "/v1/environments/agent/status?hosts=true").await;
    let b = host_row(&status, &big);
    assert_eq!(
        (b["launch"]["cpu"].as_i64(), b["launch"]["memory"].as_i64()),
        (Some(512), Some(1024)),
        "{b}"
    );
    let s = host_row(&status, &small);
    assert_eq!(s["launch"]["memory"], 256, "{s}");
    assert_eq!(
        s["launch"]["overrides"]["containerOverrides"][0]["environment"][1]["value"],
        "t3.small"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_starts_on_each_host_only_after_the_one_it_depends_on_runs_there_and_stops_before_it(
) {
    let w = World::new().await;
    let hosts = w.add_hosts(2).await;
    let cluster = w.cluster_name.clone();
    create(&w, json!({"name": "router", "instanceGroup": {"cluster": cluster}, "taskDefinition": w.family})).await;
    create(&w, json!({"name": "exporter", "instanceGroup": {"cluster": cluster}, "taskDefinition": w.family,
        "dependsOn": ["router"]})).await;
    assert_eq!(
        get(&w, "/v1/environments/router").await["dependents"],
        json!(["exporter"])
    );

    // GIVEN the router's rollout launched (its tasks not seen RUNNING yet)
    let router = w.create_deployment("router").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.deliver_deployment("router", &router).await;
    // WHEN the exporter is deployed
    let exporter = w.create_deployment("exporter").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.deliver_deployment("exporter", &exporter).await;
    // THEN it waits on every host, and says for what
    assert!(hosts_running(&w, "exporter").await.is_empty());
    let status = get(&w, "/v1/environments/exporter/status?hosts=true").await;
    assert_eq!(status["counts"]["waiting"], 2, "{status}");
    assert!(host_row(&status, &hosts[0])["reason"]
        .as_str()
        .unwrap()
        .contains("waiting for router"));

    // WHEN the router's task on each host reports RUNNING, the exporter starts there — by that
    // event, no polling
    for (i, host) in hosts.iter().enumerate() {
        let arn = w.tasks_by_host().await[host][0].clone();
        let ev = w.task_event(&arn).await;
        task_events::handle(&w.store, &w.cluster, &ev)
            .await
            .unwrap();
        let running = hosts_running(&w, "exporter").await;
        assert_eq!(
            running,
            sorted(&hosts[..=i]),
            "after the router's RUNNING on host {i}"
        );
    }
    w.deliver_task_events().await;
    w.deliver_deployment("router", &router).await;
    w.deliver_deployment("exporter", &exporter).await;
    let dep = get(
        &w,
        &format!("/v1/environments/exporter/deployments/{exporter}"),
    )
    .await;
    assert_eq!(dep["status"], "completed", "{dep}");

    // WHEN a host drains: the exporter stops first, the router only once the exporter is gone
    w.drain(&hosts[0]).await;
    join(&w, &hosts[0], 5).await;
    assert_eq!(hosts_running(&w, "exporter").await, vec![hosts[1].clone()]);
    assert!(
        hosts_running(&w, "router").await.contains(&hosts[0]),
        "the router waits"
    );
    w.deliver_task_events().await;
    assert!(
        !hosts_running(&w, "router").await.contains(&hosts[0]),
        "then it stops"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_capacity_gets_daemons_and_selectors_tell_anywhere_and_capacity_providers_apart() {
    // GIVEN three daemons deployed before any host: one for ECS Anywhere hosts, one for a
    // capacity provider's hosts, one everywhere
    let w = World::new().await;
    let cluster = w.cluster_name.clone();
    for (name, expression) in [
        ("on-prem", Some("ec2InstanceId =~ mi-.*")),
        ("gpu-pool", Some("capacityProvider == gpu-asg")),
        ("everywhere", None),
    ] {
        let mut body = json!({"name": name, "instanceGroup": {"cluster": cluster}, "taskDefinition": w.family});
        if let Some(e) = expression {
            body["placementConstraints"] = json!([{"type": "memberOf", "expression": e}]);
        }
        create(&w, body).await;
        w.deploy(name).await;
    }
    // WHEN an ECS Anywhere host (an SSM managed instance id), a capacity provider's EC2 host and a
    // plain EC2 host join, as their events show them
    let hosts = w.add_hosts(3).await;
    for (i, host) in hosts.iter().enumerate() {
        let mut ev = w.host_event(host, 1).await;
        match i {
            0 => ev.ec2_instance_id = Some("mi-0f1e2d3c4b5a69788".into()),
            1 => ev.capacity_provider_name = Some("gpu-asg".into()),
            _ => {}
        }
        instance_events::handle(&w.store, &w.cluster, &ev)
            .await
            .unwrap();
    }
    // THEN each gets the daemons meant for it
    assert_eq!(hosts_running(&w, "on-prem").await, vec![hosts[0].clone()]);
    assert_eq!(hosts_running(&w, "gpu-pool").await, vec![hosts[1].clone()]);
    assert_eq!(hosts_running(&w, "everywhere").await, sorted(&hosts));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_selector_is_a_revision_rolled_out_within_max_unavailable() {
    // GIVEN 4 hosts running revision 1 everywhere, one of them labelled gpu=true
    let w = World::new().await;
    let hosts = w.add_hosts(4).await;
    w.create_environment("shrink").await;
    w.deploy("shrink").await;
    w.label(&hosts[0], "gpu", Some("true")).await;
    // WHEN revision 2 keeps it to gpu hosts, one host at a time
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/shrink",
            Some(json!({
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:gpu exists"}],
            "updateStrategy": {"maxUnavailable": 1}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        hosts_running(&w, "shrink").await.len() == 4,
        "a PUT touches nothing running"
    );
    let id = w.create_deployment("shrink").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.calls.reset();
    w.deliver_deployment("shrink", &id).await;
    // THEN the first step stops one host's daemon, not three (a selector that leaves most hosts
    // out does not take their daemons down at once)
    assert_eq!(w.calls.get("ECS.StopTask"), 1, "{:?}", w.calls.snapshot());
    let mut pump = integration_tests::Pump::new();
    pump.run(&w, "shrink", &hosts, None).await;
    assert_eq!(hosts_running(&w, "shrink").await, vec![hosts[0].clone()]);
    let dep = get(&w, &format!("/v1/environments/shrink/deployments/{id}")).await;
    assert_eq!(dep["status"], "completed", "{dep}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_with_selector_fit_and_overrides_costs_4_calls_and_the_echo_of_our_launch_costs_2_reads(
) {
    // GIVEN a daemon with a selector, sizing and a placeholder, deployed before the host joins
    let w = World::new().await;
    create(&w, json!({"name": "cheap", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family,
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "sizing": [{"expression": "attribute:ecs.instance-type exists", "cpu": 256, "memory": 256}],
        "overrides": {"containerOverrides": [{"name": "agent", "environment": [
            {"name": "HOST", "value": "${host.containerInstanceArn}"}]}]}}))
    .await;
    w.deploy("cheap").await;
    let host = w.add_hosts(1).await.remove(0);
    // WHEN it joins
    w.calls.reset();
    join(&w, &host, 1).await;
    // THEN one Query, one read of the slots, one claim, one StartTask
    assert_eq!(w.calls.total(), 4, "{:?}", w.calls.snapshot());
    assert_eq!(w.calls.get("ECS.StartTask"), 1);
    // WHEN ECS reports the host again because our task took its resources
    w.calls.reset();
    join(&w, &host, 2).await;
    // THEN it costs two reads and writes nothing
    assert_eq!(w.calls.total(), 2, "{:?}", w.calls.snapshot());
    for write in [
        "DynamoDB.TransactWriteItems",
        "DynamoDB.PutItem",
        "DynamoDB.UpdateItem",
    ] {
        assert_eq!(w.calls.get(write), 0, "{write}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn placement_input_is_checked_and_a_bad_field_is_a_400_naming_its_place() {
    let w = World::new().await;
    let cluster = w.cluster_name.clone();
    let env = |extra: Value| {
        let mut body = json!({"name": "checked", "instanceGroup": {"cluster": cluster}, "taskDefinition": w.family});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let constraint =
        |e: &str| json!({"placementConstraints": [{"type": "memberOf", "expression": e}]});
    for (extra, field, says) in [
        (
            constraint("attribute:gpu =="),
            "placementConstraints[0].expression",
            "at character",
        ),
        (
            constraint("task:group == web"),
            "placementConstraints[0].expression",
            "not supported",
        ),
        (
            constraint("attribute:ecs.instance-type =~ (?=m5)"),
            "placementConstraints[0].expression",
            "at character",
        ),
        (
            json!({"placementConstraints": [{"type": "distinctInstance"}]}),
            "placementConstraints[0].type",
            "implied",
        ),
        (
            json!({"sizing": [{"expression": "attribute:a exists"}]}),
            "sizing[0]",
            "cpu, memory or both",
        ),
        (
            json!({"sizing": [{"expression": "attribute:a exists", "memory": "lots"}]}),
            "sizing[0].memory",
            "",
        ),
        (
            json!({"overrides": {"containerOverrides": [{"name": "agent", "environment": [
            {"name": "A", "value": "${host.az}"}]}]}}),
            "overrides.containerOverrides[0].environment[0].value",
            "unknown placeholder",
        ),
        (
            json!({"overrides": {"containerOverrides": [{"name": "sidecar"}]}}),
            "overrides.containerOverrides[0].name",
            "sidecar",
        ),
        (
            json!({"dependsOn": ["nobody"]}),
            "dependsOn[0]",
            "no environment",
        ),
        (json!({"dependsOn": ["checked"]}), "dependsOn[0]", "itself"),
    ] {
        let (status, body) = w
            .api("POST", "/v1/environments", Some(env(extra.clone())))
            .await;
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["field"], field, "{extra}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{extra}: {body}"
        );
    }
    assert_eq!(
        w.api("GET", "/v1/environments/checked", None).await.0,
        404,
        "nothing half-written"
    );

    // A cycle, another cluster, and deleting what another depends on.
    create(
        &w,
        json!({"name": "a", "instanceGroup": {"cluster": cluster}, "taskDefinition": w.family}),
    )
    .await;
    create(&w, json!({"name": "b", "instanceGroup": {"cluster": cluster}, "taskDefinition": w.family, "dependsOn": ["a"]})).await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/a",
            Some(json!({"dependsOn": ["b"]})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("dependsOn[0]")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("cycle"),
        "{body}"
    );
    assert_eq!(
        get(&w, "/v1/environments/a").await["latestRevision"],
        1,
        "the PUT wrote nothing"
    );
    let other = w
        .ecs
        .create_cluster()
        .cluster_name(format!("{cluster}-other"))
        .send()
        .await
        .unwrap();
    let other = other.cluster.unwrap().cluster_name.unwrap();
    create(&w, json!({"name": "elsewhere", "instanceGroup": {"cluster": other}, "taskDefinition": w.family})).await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/b",
            Some(json!({"dependsOn": ["elsewhere"]})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("dependsOn[0]")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another cluster"),
        "{body}"
    );
    let (status, body) = w.api("DELETE", "/v1/environments/a", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("Conflict")),
        "{body}"
    );

    // PUT replaces a field, and null clears it.
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/b",
            Some(json!({
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:gpu exists"}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["placementConstraints"][0]["expression"],
        "attribute:gpu exists"
    );
    assert_eq!(body["dependsOn"], json!(["a"]), "kept");
    let (_, body) = w
        .api(
            "PUT",
            "/v1/environments/b",
            Some(json!({"placementConstraints": null, "dependsOn": null})),
        )
        .await;
    assert_eq!(
        (
            body["placementConstraints"].clone(),
            body["dependsOn"].clone()
        ),
        (json!([]), json!([]))
    );
    let rev = get(&w, "/v1/environments/b/revisions/2").await;
    assert_eq!(
        rev["placementConstraints"][0]["expression"], "attribute:gpu exists",
        "{rev}"
    );

    // The teardown of a deleted dependent frees the one it depended on.
    let (status, _) = w.api("DELETE", "/v1/environments/b", None).await;
    assert_eq!(status, 200);
    w.deliver_environment("b").await;
    assert!(get(&w, "/v1/environments/a")
        .await
        .get("dependents")
        .is_none());
    let (status, body) = w.api("DELETE", "/v1/environments/a", None).await;
    assert_eq!(status, 200, "{body}");
}
