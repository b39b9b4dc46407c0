//! Page tokens the API did not hand out for that list: 400 naming `nextToken`, never a 500 from a
//! DynamoDB query given a start key that does not fit it.

use integration_tests::World;

fn token(json: &str) -> String {
    aws_smithy_types::base64::encode(json.as_bytes())
}

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
