//! The built binary against a fake API on loopback: what it sends (routes, queries, bodies,
//! SigV4 headers), what it prints and how it exits.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{daemonctl, stderr, stdout, Recorded, Reply, Server};
use serde_json::{json, Value};

fn environment(name: &str) -> Value {
    json!({
        "name": name,
        "instanceGroup": {"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"},
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
        "latestRevision": 1,
        "updateStrategy": {"maxUnavailable": 1, "minHealthySeconds": 0, "failureThreshold": "20%", "autoRollback": false},
        "deploymentToken": "tok-1",
        "health": "healthy",
        "status": "active",
        "createdAt": "2026-12-01T00:00:00Z",
        "updatedAt": "2026-12-01T00:00:00Z",
        "version": 1
    })
}

fn deployment(status: &str, running: i64) -> Value {
    json!({
        "id": "01DEP", "environmentName": "web", "status": status, "revision": 2,
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        "desiredCount": 2, "pendingCount": 2 - running, "runningCount": running,
        "failedCount": 0, "failedHosts": if status == "failed" { 1 } else { 0 },
        "failedInstances": [], "failures": [],
        "createdAt": "t0", "updatedAt": "t1"
    })
}

/// The fake API: the answers the real one gives for these requests.
async fn fake_api() -> Server {
    let polls = Arc::new(AtomicUsize::new(0));
    Server::start(move |r: &Recorded| {
        let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
        match (r.method.as_str(), path) {
            ("GET", "/v1/ping") => Reply::json(200, json!({"status": "ok"})),
            ("POST", "/v1/environments") => {
                let mut e = environment(r.json()["name"].as_str().unwrap_or("?"));
                e["updateStrategy"]["maxUnavailable"] = r.json()["updateStrategy"]["maxUnavailable"].clone();
                Reply::json(200, e)
            }
            ("GET", "/v1/environments") if !query.contains("nextToken") => {
                Reply::json(200, json!({"items": [environment("api")], "nextToken": "p2"}))
            }
            ("GET", "/v1/environments") => {
                Reply::json(200, json!({"items": [environment("web")], "nextToken": null}))
            }
            ("GET", "/v1/environments/web") => Reply::json(200, environment("web")),
            ("PUT", "/v1/environments/web") => {
                let mut e = environment("web");
                e["latestRevision"] = json!(2);
                Reply::json(200, e)
            }
            ("GET", "/v1/environments/web/status") => Reply::json(
                200,
                json!({"name": "web", "activeRevision": 1, "latestRevision": 1, "health": "healthy",
                       "counts": {"desired": 1, "current": 1, "ready": 1, "updated": 1, "available": 1, "misscheduled": 0, "unavailable": 0},
                       "hosts": [{"containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/prod/ci-1", "hostStatus": "ACTIVE",
                                  "agentConnected": true, "task": "running", "updated": true, "available": true}]}),
            ),
            ("POST", "/v1/environments/web/deployments") => {
                Reply::json(200, deployment("pending", 0))
            }
            ("GET", "/v1/environments/web/deployments/01DEP") => {
                match polls.fetch_add(1, Ordering::SeqCst) {
                    0 => Reply::json(200, deployment("running", 1)),
                    _ => Reply::json(200, deployment("failed", 1)),
                }
            }
            ("POST", "/v1/environments/web/deployments/01DEP/cancel") => {
                Reply::json(200, deployment("cancelled", 1))
            }
            (_, p) if p.starts_with("/v1/environments/") => Reply::json(
                404,
                json!({"code": "NotFound", "message": "environment 'missing' not found"}),
            ),
            _ => Reply::json(404, json!({"message": "Not Found"})),
        }
    })
    .await
}

#[tokio::test]
async fn requests_are_signed_routed_and_rendered() {
    let api = fake_api().await;
    let ep = api.url.clone();

    let o = daemonctl(&["--endpoint", &ep, "ping"], &[]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok\n");
    let r = &api.requests()[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/v1/ping"));
    let auth = r.header("authorization");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
            && auth.contains("/us-east-1/execute-api/aws4_request, SignedHeaders=")
            && auth.contains("host;")
            && auth.contains("x-amz-content-sha256;x-amz-date, Signature="),
        "{auth}"
    );
    assert_eq!(r.header("host"), ep.trim_start_matches("http://"));
    assert_eq!(
        r.header("x-amz-content-sha256"),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );

    // Create: the body the API expects, strategy flags as typed values.
    let o = daemonctl(
        &[
            "env",
            "create",
            "web",
            "--cluster",
            "prod",
            "--task-definition",
            "web:1",
            "--max-unavailable",
            "2",
            "--failure-threshold",
            "20%",
            "--auto-rollback",
            "false",
            "--endpoint",
            &ep,
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let r = api.requests().pop().unwrap();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/v1/environments")
    );
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(
        r.json(),
        json!({"name": "web", "instanceGroup": {"cluster": "prod"}, "taskDefinition": "web:1",
               "updateStrategy": {"maxUnavailable": 2, "failureThreshold": "20%", "autoRollback": false}})
    );
    assert!(
        auth_signs(&r, "content-type"),
        "{}",
        r.header("authorization")
    );
    assert!(
        stdout(&o).contains("Update strategy:   maxUnavailable 2, minHealthySeconds 0"),
        "{}",
        stdout(&o)
    );

    // List --all follows nextToken; the cluster ARN is one encoded query value.
    let before = api.requests().len();
    let o = daemonctl(
        &[
            "env",
            "list",
            "--all",
            "--cluster",
            "arn:aws:ecs:us-east-1:1:cluster/prod",
        ],
        &[("DAEMONCTL_ENDPOINT", &ep)],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let pages: Vec<String> = api.requests()[before..]
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        pages,
        [
            "/v1/environments?cluster=arn%3Aaws%3Aecs%3Aus-east-1%3A1%3Acluster%2Fprod",
            "/v1/environments?cluster=arn%3Aaws%3Aecs%3Aus-east-1%3A1%3Acluster%2Fprod&nextToken=p2",
        ]
    );
    let out = stdout(&o);
    assert!(out.starts_with("NAME  CLUSTER  TASK DEFINITION"), "{out}");
    assert!(
        out.contains("\napi   prod     web:1") && out.contains("\nweb   prod     web:1"),
        "{out}"
    );
    assert!(!out.contains("--next-token"), "{out}");

    // --output json: the API's body as it came.
    let o = daemonctl(&["-o", "json", "env", "get", "web", "--endpoint", &ep], &[]).await;
    assert!(o.status.success());
    assert_eq!(stdout(&o), format!("{}\n", environment("web")));

    // Update sends only what was given.
    let o = daemonctl(
        &[
            "env",
            "update",
            "web",
            "--task-definition",
            "web:2",
            "--endpoint",
            &ep,
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let r = api.requests().pop().unwrap();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("PUT", "/v1/environments/web")
    );
    assert_eq!(r.json(), json!({"taskDefinition": "web:2"}));

    // Status with hosts.
    let o = daemonctl(&["env", "status", "web", "--hosts", "--endpoint", &ep], &[]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        api.requests().pop().unwrap().target,
        "/v1/environments/web/status?hosts=true"
    );
    assert!(stdout(&o).contains("\nci-1 "), "{}", stdout(&o));

    // Cancel is a POST to .../cancel.
    let o = daemonctl(
        &["deployments", "cancel", "web", "01DEP", "--endpoint", &ep],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let r = api.requests().pop().unwrap();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/v1/environments/web/deployments/01DEP/cancel")
    );
    assert!(
        stdout(&o).contains("Status:           cancelled\n"),
        "{}",
        stdout(&o)
    );
}

fn auth_signs(r: &Recorded, header: &str) -> bool {
    r.header("authorization")
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .is_some_and(|list| list.split(';').any(|h| h == header))
}

#[tokio::test]
async fn api_errors_go_to_stderr_with_exit_code_1() {
    let api = fake_api().await;
    let o = daemonctl(&["env", "get", "missing", "--endpoint", &api.url], &[]).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        "daemonctl: error: NotFound (HTTP 404): environment 'missing' not found\n"
    );
    // Nothing listens: a network error, also 1.
    let o = daemonctl(&["ping", "--endpoint", "http://127.0.0.1:9"], &[]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("GET http://127.0.0.1:9/v1/ping"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn usage_errors_send_nothing_and_exit_2() {
    let api = fake_api().await;
    let o = daemonctl(&["env", "update", "web", "--endpoint", &api.url], &[]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nothing to update"), "{}", stderr(&o));
    assert!(api.requests().is_empty());

    let o = daemonctl(&["ping"], &[]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no API endpoint"), "{}", stderr(&o));
}

#[tokio::test]
async fn deploy_wait_polls_until_the_deployment_ends_and_exits_3_when_it_failed() {
    let api = fake_api().await;
    let o = daemonctl(
        &[
            "deploy",
            "web",
            "--revision",
            "2",
            "--token",
            "tok-1",
            "--wait",
            "--interval",
            "1",
            "--endpoint",
            &api.url,
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let targets: Vec<String> = api
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        targets,
        [
            "POST /v1/environments/web/deployments?revision=2&deploymentToken=tok-1",
            "GET /v1/environments/web/deployments/01DEP",
            "GET /v1/environments/web/deployments/01DEP",
        ]
    );
    let progress = stderr(&o);
    for line in [
        "pending: running 0, pending 2, failed 0 of 2 hosts",
        "running: running 1, pending 1, failed 0 of 2 hosts",
        "failed: running 1, pending 1, failed 1 of 2 hosts",
    ] {
        assert!(progress.contains(line), "{progress}");
    }
    assert!(
        stdout(&o).contains("Status:           failed\n"),
        "{}",
        stdout(&o)
    );
}
