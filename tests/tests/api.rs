//! Every route of the API against moto, with the 400/404 cases Blox tested.

use integration_tests::World;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn ping_answers() {
    let w = World::new().await;
    let (status, body) = w.api("GET", "/v1/ping", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

#[tokio::test(flavor = "multi_thread")]
async fn create_environment_resolves_cluster_and_task_definition_to_arns() {
    let w = World::new().await;
    let env = w.create_environment("log-shipper").await;
    assert_eq!(env["name"], "log-shipper");
    assert_eq!(env["instanceGroup"]["cluster"], w.cluster_arn.as_str());
    let td = env["taskDefinition"].as_str().unwrap();
    assert!(
        td.starts_with("arn:aws:ecs:") && td.ends_with(&format!("task-definition/{}:1", w.family)),
        "{td}"
    );
    assert_eq!(env["health"], "healthy");
    assert!(env["deploymentToken"].as_str().unwrap().len() >= 32);
    assert!(env["createdAt"].as_str().is_some() && env["updatedAt"].as_str().is_some());

    let (status, got) = w.api("GET", "/v1/environments/log-shipper", None).await;
    assert_eq!(status, 200);
    assert_eq!(got["deploymentToken"], env["deploymentToken"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_environments_get_400_naming_the_field() {
    let w = World::new().await;
    let cases = [
        (
            json!({"name": "", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family}),
            "name",
        ),
        (
            json!({"name": "  ", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family}),
            "name",
        ),
        (
            json!({"instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family}),
            "name",
        ),
        (
            json!({"name": "bad name!", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family}),
            "name",
        ),
        (
            json!({"name": "x".repeat(31), "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family}),
            "name",
        ),
        (
            json!({"name": "ok", "taskDefinition": w.family}),
            "instanceGroup.cluster",
        ),
        (
            json!({"name": "ok", "instanceGroup": {}, "taskDefinition": w.family}),
            "instanceGroup.cluster",
        ),
        (
            json!({"name": "ok", "instanceGroup": {"cluster": w.cluster_name}}),
            "taskDefinition",
        ),
        (
            json!({"name": 7, "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family}),
            "name",
        ),
        (
            json!({"name": "ok", "instanceGroup": {"cluster": 5}, "taskDefinition": w.family}),
            "instanceGroup.cluster",
        ),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (body, field) in cases {
        let (status, err) = w.api("POST", "/v1/environments", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {err}");
        assert_eq!(err["code"], "InvalidParameter", "{err}");
        assert_eq!(err["field"], field, "{body} → {err}");
        assert!(err["message"].as_str().unwrap().len() > 5);
    }
    let (status, err) = w.api("POST", "/v1/environments", None).await;
    assert_eq!((status, err["field"].as_str()), (400, Some("body")));
    // Nothing was written by any of them.
    let (_, list) = w.api("GET", "/v1/environments", None).await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["name"] != "ok"));
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_name_gets_400() {
    let w = World::new().await;
    w.create_environment("dup").await;
    let (status, err) = w
        .api("POST", "/v1/environments", Some(json!({"name": "dup", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family})))
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["field"], "name");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_inactive_cluster_gets_404() {
    let w = World::new().await;
    let body = json!({"name": "e", "instanceGroup": {"cluster": "no-such-cluster"}, "taskDefinition": w.family});
    let (status, err) = w.api("POST", "/v1/environments", Some(body)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("NotFound")),
        "{err}"
    );

    w.ecs
        .delete_cluster()
        .cluster(&w.cluster_name)
        .send()
        .await
        .unwrap();
    let body = json!({"name": "e", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family});
    let (status, err) = w.api("POST", "/v1/environments", Some(body)).await;
    assert_eq!(status, 404, "inactive cluster: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_or_deregistered_task_definition_gets_404() {
    let w = World::new().await;
    let body = json!({"name": "e", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": "nope:1"});
    assert_eq!(w.api("POST", "/v1/environments", Some(body)).await.0, 404);

    w.ecs
        .deregister_task_definition()
        .task_definition(format!("{}:1", w.family))
        .send()
        .await
        .unwrap();
    let body = json!({"name": "e", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": format!("{}:1", w.family)});
    let (status, err) = w.api("POST", "/v1/environments", Some(body)).await;
    assert_eq!(status, 404, "{err}");
    assert!(err["message"].as_str().unwrap().contains("INACTIVE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_delete_of_unknown_environment() {
    let w = World::new().await;
    assert_eq!(w.api("GET", "/v1/environments/ghost", None).await.0, 404);
    assert_eq!(
        w.api("GET", "/v1/environments/ghost/deployments", None)
            .await
            .0,
        404
    );
    assert_eq!(
        w.api("POST", "/v1/environments/ghost/deployments", None)
            .await
            .0,
        404
    );
    assert_eq!(
        w.api("DELETE", "/v1/environments/ghost", None).await.0,
        200,
        "deleting what is gone is harmless"
    );
    assert_eq!(w.api("GET", "/v1/nothing-here", None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn environments_page_with_limit_and_next_token_and_filter_by_cluster() {
    let w = World::new().await;
    for i in 0..5 {
        w.create_environment(&format!("env-{i}")).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!(
                "/v1/environments?cluster={}&limit=2&nextToken={t}",
                w.cluster_name
            ),
            None => format!("/v1/environments?cluster={}&limit=2", w.cluster_name),
        };
        let (status, page) = w.api("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e["name"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["env-0", "env-1", "env-2", "env-3", "env-4"]);
    assert!(pages >= 3);
    // By ARN too, and another cluster sees none of them.
    let (_, by_arn) = w
        .api(
            "GET",
            &format!("/v1/environments?cluster={}", w.cluster_arn),
            None,
        )
        .await;
    assert_eq!(by_arn["items"].as_array().unwrap().len(), 5);
    let (_, other) = w
        .api("GET", "/v1/environments?cluster=unknown-cluster", None)
        .await;
    assert_eq!(other["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        w.api("GET", "/v1/environments?limit=0", None).await.1["field"],
        "limit"
    );
    assert_eq!(
        w.api("GET", "/v1/environments?nextToken=garbage", None)
            .await
            .1["field"],
        "nextToken"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_tokens_rotate_and_a_reused_token_gets_400() {
    let w = World::new().await;
    w.add_hosts(1).await;
    let env = w.create_environment("tok").await;
    let token = env["deploymentToken"].as_str().unwrap().to_owned();

    let (status, err) = w
        .api(
            "POST",
            "/v1/environments/tok/deployments?deploymentToken=wrong",
            None,
        )
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("deploymentToken")),
        "{err}"
    );

    let (status, dep) = w
        .api(
            "POST",
            &format!("/v1/environments/tok/deployments?deploymentToken={token}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{dep}");
    assert_eq!(dep["status"], "pending");
    assert_eq!(dep["environmentName"], "tok");
    assert_eq!(dep["taskDefinition"], env["taskDefinition"]);
    let id = dep["id"].as_str().unwrap().to_owned();

    // While it is in progress, another deployment (even with the fresh token) is refused.
    let (_, env2) = w.api("GET", "/v1/environments/tok", None).await;
    let fresh = env2["deploymentToken"].as_str().unwrap().to_owned();
    assert_ne!(fresh, token, "each deployment rotates the token");
    let (status, err) = w
        .api(
            "POST",
            &format!("/v1/environments/tok/deployments?deploymentToken={fresh}"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("in progress"));

    // Carry it to completion; then the old token is stale and the fresh one works.
    w.deliver_deployment("tok", &id).await;
    w.deliver_task_events().await;
    w.deliver_deployment("tok", &id).await;
    let (status, err) = w
        .api(
            "POST",
            &format!("/v1/environments/tok/deployments?deploymentToken={token}"),
            None,
        )
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("deploymentToken")),
        "reused token: {err}"
    );
    let (status, _) = w
        .api(
            "POST",
            &format!("/v1/environments/tok/deployments?deploymentToken={fresh}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn deployments_list_newest_first_and_get_by_id() {
    let w = World::new().await;
    w.add_hosts(1).await;
    w.create_environment("hist").await;
    let first = w.deploy("hist").await;
    let second = w.deploy("hist").await;
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(second["status"], "completed", "{second}");
    let (status, list) = w
        .api("GET", "/v1/environments/hist/deployments?limit=1", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["id"], second["id"]);
    let token = list["nextToken"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, page2) = w
        .api(
            "GET",
            &format!("/v1/environments/hist/deployments?limit=1&nextToken={token}"),
            None,
        )
        .await;
    assert_eq!(page2["items"][0]["id"], first["id"]);
    assert_eq!(
        w.api(
            "GET",
            "/v1/environments/hist/deployments/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn environments_are_created_only_on_the_managed_clusters() {
    use integration_tests::shared::domain::{AllowedAlarms, ManagedClusters};
    use integration_tests::shared::http::ApiRequest;
    use integration_tests::shared::services::environments_api;
    let w = World::new().await;
    let create = |name: &str| {
        ApiRequest {
        method: "POST".into(),
        segments: vec!["environments".into()],
        body: Some(
            json!({"name": name, "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family})
                .to_string()
                .into_bytes(),
        ),
        ..Default::default()
    }
    };
    // GIVEN a stack that manages other clusters only, WHEN an environment is created on this one
    let others = ManagedClusters::parse("arn:aws:ecs:us-east-1:123456789012:cluster/prod-*");
    let any = AllowedAlarms::any();
    let err = environments_api::route_with(&w.store, &w.cluster, &others, &any, &create("refused"))
        .await
        .unwrap_err();
    // THEN it is refused naming the field, and nothing is written
    assert_eq!(err.field(), Some("instanceGroup.cluster"), "{err}");
    let (status, _) = w.api("GET", "/v1/environments/refused", None).await;
    assert_eq!(status, 404);
    // AND a pattern that covers the cluster's ARN lets it through
    let pattern = format!("{}*", &w.cluster_arn[..w.cluster_arn.len() - 2]);
    let ours = ManagedClusters::parse(&format!("{}, {pattern}", others.patterns()[0]));
    let created =
        environments_api::route_with(&w.store, &w.cluster, &ours, &any, &create("allowed"))
            .await
            .unwrap();
    assert_eq!(created.status, 200, "{}", created.body);
}
