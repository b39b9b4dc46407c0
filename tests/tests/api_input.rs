//! Input found while fuzzing the API (scripts/schemathesis.sh) that was answered with a 500 or
//! accepted although invalid; now a 400 naming the field.

use integration_tests::World;
use serde_json::json;

fn token(json: &str) -> String {
    aws_smithy_types::base64::encode(json.as_bytes())
}

/// Page tokens the API did not hand out for that list: DynamoDB answers a start key that does not
/// fit the query with ValidationException.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_is_not_one_of_this_lists_is_refused_with_400() {
    let w = World::new().await;
    w.create_environment("web").await;
    w.create_environment("api").await;
    let (status, page) = w.api("GET", "/v1/environments?limit=1", None).await;
    assert_eq!(status, 200, "{page}");
    let environments_token = page["nextToken"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (status, page) = w.api("GET", "/v1/environments/web/revisions", None).await;
    assert_eq!(status, 200, "{page}");

    let forged = [
        token("{}"),
        token(r#"{"pk":"ENV#web"}"#),
        token(r#"{"pk":"ENV#web","sk":"REV#0000000001","extra":"x"}"#),
        token(r#"{"pk":"ENV#api","sk":"REV#0000000001"}"#),
    ];
    for (path, tokens) in [
        ("/v1/environments", forged.to_vec()),
        (
            "/v1/environments/web/revisions",
            [forged.to_vec(), vec![environments_token.clone()]].concat(),
        ),
        (
            "/v1/environments/web/deployments",
            [forged.to_vec(), vec![environments_token.clone()]].concat(),
        ),
    ] {
        for t in tokens {
            let (status, body) = w.api("GET", &format!("{path}?nextToken={t}"), None).await;
            assert_eq!(
                (status, body["field"].as_str()),
                (400, Some("nextToken")),
                "GET {path} with {t}: {body}"
            );
        }
    }
    // The token the list itself returned still pages on.
    let (status, page) = w
        .api(
            "GET",
            &format!("/v1/environments?limit=1&nextToken={environments_token}"),
            None,
        )
        .await;
    assert_eq!(
        (status, page["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{page}"
    );
}

/// Task definitions ECS cannot parse (moto even answers some with HTTP 500): refused before ECS.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_task_definition_is_refused_with_400() {
    let w = World::new().await;
    w.create_environment("web").await;
    for td in ["a:b", "a:", ":", "arn:x", "log:0"] {
        let (status, body) = w
            .api(
                "POST",
                "/v1/environments",
                Some(json!({"name": "new", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": td})),
            )
            .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some("taskDefinition")),
            "create {td}: {body}"
        );
        let (status, body) = w
            .api(
                "PUT",
                "/v1/environments/web",
                Some(json!({"taskDefinition": td})),
            )
            .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some("taskDefinition")),
            "update {td}: {body}"
        );
    }
    // family:revision still resolves to the revision's ARN.
    let (status, env) = w
        .api(
            "PUT",
            "/v1/environments/web",
            Some(json!({"taskDefinition": format!("{}:1", w.family)})),
        )
        .await;
    assert_eq!(status, 200, "{env}");
    assert!(
        env["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{}:1", w.family)),
        "{env}"
    );
}

/// schemathesis: `?revision=1` with the body `{"revision": 4294967296}` was accepted (the body was
/// not read once the query named the revision); and serde read the body `[1]` as `{"revision": 1}`.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_deployment_body_is_refused_even_when_the_query_names_the_revision() {
    let w = World::new().await;
    w.create_environment("web").await;
    for body in [
        json!({"revision": 4_294_967_296_u64}),
        json!({"revision": 0}),
        json!({"other": 1}),
        json!([1]),
    ] {
        let (status, err) = w
            .api(
                "POST",
                "/v1/environments/web/deployments?revision=1",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}: {err}");
        assert!(
            matches!(err["field"].as_str(), Some("revision" | "body" | "other")),
            "{body}: {err}"
        );
    }
    // The query wins over a valid body.
    let (status, dep) = w
        .api(
            "POST",
            "/v1/environments/web/deployments?revision=1",
            Some(json!({"revision": 7})),
        )
        .await;
    assert_eq!((status, dep["revision"].as_u64()), (200, Some(1)), "{dep}");
}

/// schemathesis: `?hosts=` (empty) was taken for `false`, and `?revision=` for no revision.
#[tokio::test(flavor = "multi_thread")]
async fn empty_boolean_and_number_parameters_are_refused() {
    let w = World::new().await;
    w.create_environment("web").await;
    for (method, path, field) in [
        ("GET", "/v1/environments/web/status?hosts=", "hosts"),
        ("GET", "/v1/environments/web/status?hosts=1", "hosts"),
        (
            "POST",
            "/v1/environments/web/deployments?revision=",
            "revision",
        ),
    ] {
        let (status, err) = w.api(method, path, None).await;
        assert_eq!(
            (status, err["field"].as_str()),
            (400, Some(field)),
            "{method} {path}: {err}"
        );
    }
    let (status, st) = w
        .api("GET", "/v1/environments/web/status?hosts=true", None)
        .await;
    assert_eq!((status, st["hosts"].is_array()), (200, true), "{st}");
}
