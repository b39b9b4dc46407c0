//! The built binary against a fake API on loopback: what it sends (routes, queries, bodies,
//! SigV4 headers), what it prints and how it exits.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{daemonctl, daemonctl_with_stdin, stderr, stdout, Recorded, Reply, Server};
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

/// An environment as the API answers a create or update of it: the placement fields of the body
/// (a `null` one cleared).
fn echoed(name: &str, body: &Value) -> Value {
    let mut e = environment(name);
    for key in ["placementConstraints", "sizing", "dependsOn"] {
        e[key] = match &body[key] {
            Value::Null => json!([]),
            v => v.clone(),
        };
    }
    if !body["overrides"].is_null() {
        e["overrides"] = body["overrides"].clone();
    }
    e
}

/// The status of `agent`: placed on some hosts, waiting on one, unable to run on another.
fn agent_status() -> Value {
    json!({
        "name": "agent", "activeRevision": 2, "latestRevision": 2, "health": "healthy",
        "counts": {"desired": 2, "current": 1, "ready": 1, "updated": 1, "available": 1, "misscheduled": 0,
                   "unavailable": 1, "unschedulable": 1, "waiting": 1},
        "hosts": [
            {"containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/prod/ci-1", "hostStatus": "ACTIVE",
             "agentConnected": true, "placement": "runs", "task": "running",
             "taskArn": "arn:aws:ecs:us-east-1:1:task/prod/t1",
             "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/agent:7",
             "launch": {"revision": 2, "cpu": 1024, "memory": 2048, "overrides": {"containerOverrides": [
                 {"name": "agent", "environment": [{"name": "AZ", "value": "us-east-1a"}]}], "cpu": "1024", "memory": "2048"}},
             "updated": true, "available": true},
            {"containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/prod/ci-2", "hostStatus": "ACTIVE",
             "agentConnected": true, "placement": "waiting", "reason": "waits for base to run here", "task": "vacant",
             "launch": {"revision": 2, "cpu": 256, "memory": 512}, "updated": false, "available": false},
            {"containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/prod/ci-3", "hostStatus": "ACTIVE",
             "agentConnected": true, "placement": "unschedulable",
             "reason": "needs 2048 MiB memory, 1536 free on this host after the other daemons' reservations",
             "task": "vacant", "updated": false, "available": false},
            {"containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/prod/ci-4", "hostStatus": "ACTIVE",
             "agentConnected": true, "placement": "notSelected",
             "reason": "not selected by attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
             "task": "vacant", "updated": false, "available": false}
        ]
    })
}

/// The fake API: the answers the real one gives for these requests.
async fn fake_api() -> Server {
    let polls = Arc::new(AtomicUsize::new(0));
    Server::start(move |r: &Recorded| {
        let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
        match (r.method.as_str(), path) {
            ("GET", "/v1/ping") => Reply::json(200, json!({"status": "ok"})),
            ("POST", "/v1/environments")
                if r.json()["placementConstraints"][0]["expression"] == "attribute:a ==" =>
            {
                Reply::json(
                    400,
                    json!({"code": "InvalidParameter", "message": "expected a value after ==",
                           "field": "placementConstraints[0].expression"}),
                )
            }
            ("POST", "/v1/environments") if r.json()["name"] == "agent" => {
                Reply::json(200, echoed("agent", &r.json()))
            }
            ("PUT", "/v1/environments/agent") => Reply::json(200, echoed("agent", &r.json())),
            ("GET", "/v1/environments/agent/status") => Reply::json(200, agent_status()),
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
            ("GET", "/v1/environments/web/deployments/01DEP/hosts") => {
                let (host, next) = if query.contains("nextToken=h2") {
                    ("ci-2", Value::Null)
                } else {
                    ("ci-1", json!("h2"))
                };
                Reply::json(
                    200,
                    json!({"items": [{"containerInstanceArn": format!("arn:aws:ecs:us-east-1:1:container-instance/prod/{host}"),
                        "hostStatus": "ACTIVE", "task": "vacant", "available": false, "placement": "runs",
                        "events": [{"at": "2026-12-01T08:00:00.000Z", "event": "claimed", "revision": 2},
                                   {"at": "2026-12-01T08:00:01.000Z", "event": "failed", "revision": 2,
                                    "reason": "Essential container in task exited"}]}],
                        "nextToken": next}),
                )
            }
            ("POST", "/v1/environments/web/deployments/01DEP/cancel") => {
                Reply::json(200, deployment("cancelled", 1))
            }
            ("POST", "/v1/environments/canary/deployments") => {
                let mut d = deployment("pending", 0);
                d["updateStrategy"] = r.json()["updateStrategy"].clone();
                Reply::json(200, d)
            }
            ("GET", "/v1/environments/canary/status") => Reply::json(
                200,
                json!({"name": "canary", "activeRevision": 1, "latestRevision": 2, "health": "healthy",
                       "counts": {"desired": 2, "current": 2, "ready": 2, "updated": 1, "available": 2, "misscheduled": 0, "unavailable": 0},
                       "hosts": []}),
            ),
            ("GET", "/v1/environments/canary/deployments/01DEP") => {
                Reply::json(200, deployment("awaiting-promotion", 1))
            }
            ("POST", "/v1/environments/canary/deployments/01DEP/promote") => {
                let mut d = deployment("running", 1);
                d["promotedAt"] = json!("t2");
                Reply::json(200, d)
            }
            ("POST", "/v1/environments/canary/deployments/01DEP/pause") => {
                let mut d = deployment("paused", 1);
                d["pausedAt"] = json!("t3");
                Reply::json(200, d)
            }
            ("POST", "/v1/environments/canary/deployments/01DEP/resume") => {
                Reply::json(200, deployment("running", 1))
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

#[tokio::test]
async fn deployment_hosts_show_each_hosts_transitions_and_one_host_is_found_across_pages() {
    let api = fake_api().await;
    let ep = api.url.clone();
    let o = daemonctl(
        &["deployments", "hosts", "web", "01DEP", "--endpoint", &ep],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        api.requests().pop().unwrap().target,
        "/v1/environments/web/deployments/01DEP/hosts"
    );
    let out = stdout(&o);
    assert!(out.starts_with("ci-1 (ACTIVE): vacant\n"), "{out}");
    assert!(
        out.contains("2026-12-01T08:00:01.000Z  failed   2         -     Essential container in task exited\n"),
        "{out}"
    );
    assert!(
        out.ends_with("(more: --next-token h2, or --all)\n"),
        "{out}"
    );

    // --host reads every page and keeps that host (by id or ARN); -o json the API's shape.
    let before = api.requests().len();
    let o = daemonctl(
        &[
            "deployments",
            "hosts",
            "web",
            "01DEP",
            "--host",
            "ci-2",
            "--endpoint",
            &ep,
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(api.requests().len() - before, 2, "both pages");
    let out = stdout(&o);
    assert!(
        out.starts_with("ci-2 (ACTIVE)") && !out.contains("ci-1"),
        "{out}"
    );
    let o = daemonctl(
        &[
            "-o",
            "json",
            "deployments",
            "hosts",
            "web",
            "01DEP",
            "--host",
            "arn:aws:ecs:us-east-1:1:container-instance/prod/ci-1",
            "--endpoint",
            &ep,
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["items"][0]["events"][1]["event"], "failed");
    assert_eq!(v["nextToken"], Value::Null);
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
            // Each poll reads the hosts' counts after the deployment.
            "GET /v1/environments/web/status",
            "GET /v1/environments/web/deployments/01DEP",
            "GET /v1/environments/web/status",
            "GET /v1/environments/web/deployments/01DEP",
            "GET /v1/environments/web/status",
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

/// A canary (issue 11): `deploy` sends the deployment's own strategy, `--wait` returns once the
/// canary has baked (nothing moves until a promote), and promote / pause / resume post to their
/// routes.
#[tokio::test]
async fn a_canary_deploy_waits_until_it_awaits_promotion_then_promote_pause_resume_post() {
    let api = fake_api().await;
    let o = daemonctl(
        &[
            "deploy",
            "canary",
            "--canary",
            "1",
            "--max-surge",
            "25%",
            "--auto-promote",
            "false",
            "--alarm",
            "agent-errors",
            "--wait",
            "--interval",
            "1",
            "--wait-timeout",
            "30",
            "--endpoint",
            &api.url,
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("daemonctl deployments promote canary 01DEP"),
        "{}",
        stderr(&o)
    );
    let sent = api.requests();
    assert_eq!(sent[0].target, "/v1/environments/canary/deployments");
    assert_eq!(
        sent[0].json(),
        json!({"updateStrategy": {"canary": 1, "maxSurge": "25%", "autoPromote": false, "alarms": ["agent-errors"]}})
    );
    for (action, status) in [
        ("promote", "running"),
        ("pause", "paused"),
        ("resume", "running"),
    ] {
        let o = daemonctl(
            &[
                "deployments",
                action,
                "canary",
                "01DEP",
                "-o",
                "json",
                "--endpoint",
                &api.url,
            ],
            &[],
        )
        .await;
        assert_eq!(o.status.code(), Some(0), "{action}: {}", stderr(&o));
        let answer: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(answer["status"], status, "{action}");
        let last = api.requests().pop().unwrap();
        assert_eq!(
            (last.method.as_str(), last.target.as_str()),
            (
                "POST",
                format!("/v1/environments/canary/deployments/01DEP/{action}").as_str()
            )
        );
    }
}

/// The flags of issue 9, each as the JSON the API takes; the clear flags as `null`.
#[tokio::test]
async fn placement_flags_send_the_api_fields() {
    let api = fake_api().await;
    let ep = api.url.clone();
    let o = daemonctl(
        &[
            "env",
            "create",
            "agent",
            "--cluster",
            "prod",
            "--task-definition",
            "agent:7",
            "--placement-constraint",
            "attribute:ecs.instance-type =~ (m5|c5)\\..*",
            "--placement-constraint",
            "attribute:ecs.os-type == linux",
            "--size",
            "attribute:ecs.instance-type =~ m5\\..*=1024/2048",
            "--size",
            "attribute:ecs.instance-type == 'c5=big' = 2 vCPU/",
            "--overrides",
            r#"{"containerOverrides": [{"name": "agent", "command": ["run"]}], "memory": "2 GB"}"#,
            "--env",
            "agent:AZ=${host.availabilityZone}",
            "--env",
            "sidecar:ID=${host.instanceId}",
            "--depends-on",
            "base",
            "--depends-on",
            "logs",
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
    assert_eq!(
        r.json(),
        json!({
            "name": "agent", "instanceGroup": {"cluster": "prod"}, "taskDefinition": "agent:7",
            "placementConstraints": [
                {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ (m5|c5)\\..*"},
                {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}
            ],
            "sizing": [
                {"expression": "attribute:ecs.instance-type =~ m5\\..*", "cpu": "1024", "memory": "2048"},
                {"expression": "attribute:ecs.instance-type == 'c5=big'", "cpu": "2 vCPU"}
            ],
            "overrides": {"containerOverrides": [
                {"name": "agent", "command": ["run"], "environment": [{"name": "AZ", "value": "${host.availabilityZone}"}]},
                {"name": "sidecar", "environment": [{"name": "ID", "value": "${host.instanceId}"}]}
            ], "memory": "2 GB"},
            "dependsOn": ["base", "logs"]
        })
    );
    let out = stdout(&o);
    assert!(
        out.contains(
            "Placement:         attribute:ecs.instance-type =~ (m5|c5)\\..*\n\
             \x20                  attribute:ecs.os-type == linux\n\
             Sizing:            attribute:ecs.instance-type =~ m5\\..* → 1024/2048\n\
             \x20                  attribute:ecs.instance-type == 'c5=big' → 2 vCPU/-\n\
             Overrides:         agent:AZ=${host.availabilityZone}, agent:command=[\"run\"], sidecar:ID=${host.instanceId}, task memory=2 GB\n\
             Depends on:        base, logs\n"
        ),
        "{out}"
    );

    // Update: each clear flag sends null; other fields are left out (kept).
    let o = daemonctl(
        &[
            "env",
            "update",
            "agent",
            "--no-placement-constraints",
            "--no-sizing",
            "--no-overrides",
            "--no-depends-on",
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
        ("PUT", "/v1/environments/agent")
    );
    assert_eq!(
        r.json(),
        json!({"placementConstraints": null, "sizing": null, "overrides": null, "dependsOn": null})
    );
    assert!(!stdout(&o).contains("Placement:"), "{}", stdout(&o));

    // Update: one field given replaces it; overrides from stdin, with --env added.
    let o = daemonctl_with_stdin(
        &[
            "env",
            "update",
            "agent",
            "--size",
            "attribute:gpu exists=/4 GB",
            "--overrides",
            "-",
            "--env",
            "agent:AZ=${host.availabilityZone}",
            "--endpoint",
            &ep,
        ],
        &[],
        r#"{"containerOverrides": [{"name": "agent", "environment": [{"name": "AZ", "value": "x"}, {"name": "B", "value": "1"}]}]}"#,
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        api.requests().pop().unwrap().json(),
        json!({
            "sizing": [{"expression": "attribute:gpu exists", "memory": "4 GB"}],
            "overrides": {"containerOverrides": [{"name": "agent", "environment": [
                {"name": "AZ", "value": "${host.availabilityZone}"}, {"name": "B", "value": "1"}]}]}
        })
    );

    // Overrides from a file; --env alone makes a document of its own.
    let file = std::env::temp_dir().join(format!("daemonctl-api-{}.json", std::process::id()));
    std::fs::write(&file, r#"{"cpu": "512"}"#).unwrap();
    let o = daemonctl(
        &[
            "env",
            "update",
            "agent",
            "--overrides",
            file.to_str().unwrap(),
            "--placement-constraint",
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
            "--endpoint",
            &ep,
        ],
        &[],
    )
    .await;
    std::fs::remove_file(&file).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        api.requests().pop().unwrap().json(),
        json!({
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"}],
            "overrides": {"cpu": "512"}
        })
    );
    let o = daemonctl(
        &[
            "env",
            "update",
            "agent",
            "--env",
            "agent:MODE=a=b",
            "--depends-on",
            "base",
            "--endpoint",
            &ep,
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        api.requests().pop().unwrap().json(),
        json!({
            "overrides": {"containerOverrides": [{"name": "agent", "environment": [{"name": "MODE", "value": "a=b"}]}]},
            "dependsOn": ["base"]
        })
    );
}

#[tokio::test]
async fn placement_flag_mistakes_are_usage_errors_and_api_refusals_name_the_field() {
    let api = fake_api().await;
    let ep = api.url.clone();
    let update = |extra: &'static [&'static str]| {
        let ep = ep.clone();
        async move {
            let mut args = vec!["env", "update", "agent", "--endpoint", &ep];
            args.extend_from_slice(extra);
            daemonctl(&args, &[]).await
        }
    };
    for (args, message) in [
        (
            &["--size", "attribute:a == m5.large"][..],
            "no size after the expression",
        ),
        (&["--size", "attribute:a exists=1024"], "is not CPU/MEMORY"),
        (&["--env", "AZ=x"], "expected CONTAINER:NAME=VALUE"),
        (
            &["--overrides", "{nope"],
            "--overrides: the inline JSON is not JSON",
        ),
        (
            &["--overrides", "/nonexistent/daemonctl/o.json"],
            "--overrides /nonexistent/daemonctl/o.json: ",
        ),
        // Only what starts with `{` is inline JSON; anything else is a file name.
        (&["--overrides", "[]"], "--overrides []: "),
        (
            &["--no-sizing", "--size", "x exists=1/"],
            "cannot be used with",
        ),
        (&["--no-overrides", "--env", "a:B=c"], "cannot be used with"),
    ] {
        let o = update(args).await;
        let err = stderr(&o);
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    }
    let o = daemonctl_with_stdin(
        &[
            "env",
            "update",
            "agent",
            "--overrides",
            "-",
            "--env",
            "a:B=c",
            "--endpoint",
            &ep,
        ],
        &[],
        "[]",
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "daemonctl: error: --env a: the --overrides document is not a JSON object\n"
    );
    assert!(api.requests().is_empty());

    // What the API refuses comes back as it said it, with the field, exit 1.
    let o = daemonctl(
        &[
            "env",
            "create",
            "web",
            "--cluster",
            "prod",
            "--task-definition",
            "web:1",
            "--placement-constraint",
            "attribute:a ==",
            "--endpoint",
            &ep,
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "daemonctl: error: InvalidParameter (HTTP 400): expected a value after == \
         [field: placementConstraints[0].expression]\n"
    );
}

/// `env status --hosts`: each host's placement, why, and what it got; long reasons clipped so
/// the columns hold.
#[tokio::test]
async fn status_hosts_show_placement_reasons_and_launch_values() {
    let api = fake_api().await;
    let o = daemonctl(
        &["env", "status", "agent", "--hosts", "--endpoint", &api.url],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Environment:  agent\n\
         Health:       healthy\n\
         Revision:     deployed 2, latest 2\n\
         \n\
         DESIRED  CURRENT  READY  UPDATED  AVAILABLE  MISSCHEDULED  UNAVAILABLE  UNSCHEDULABLE  WAITING\n\
         2        1        1      1        1          0             1            1              1\n\
         \n\
         CONTAINER INSTANCE  HOST    AGENT  PLACEMENT      TASK     TASK DEFINITION  REVISION  CPU/MEMORY  OVERRIDES      UPDATED  AVAILABLE  REASON                                            LAST FAILURE\n\
         ci-1                ACTIVE  true   runs           running  agent:7          2         1024/2048   AZ=us-east-1a  true     true       -                                                 -\n\
         ci-2                ACTIVE  true   waiting        vacant   -                2         256/512     -              false    false      waits for base to run here                        -\n\
         ci-3                ACTIVE  true   unschedulable  vacant   -                -         -           -              false    false      needs 2048 MiB memory, 1536 free on this host a…  -\n\
         ci-4                ACTIVE  true   notSelected    vacant   -                -         -           -              false    false      not selected by attribute:ecs.availability-zone…  -\n"
    );
    // -o json: everything, as the API sent it.
    let o = daemonctl(
        &[
            "-o",
            "json",
            "env",
            "status",
            "agent",
            "--hosts",
            "--endpoint",
            &api.url,
        ],
        &[],
    )
    .await;
    assert_eq!(stdout(&o), format!("{}\n", agent_status()));
}
