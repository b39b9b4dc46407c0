//! The progress of a rollout as the built binary shows it against a scripted fake API: without a
//! terminal (timestamped lines), and on a pseudo-terminal (the bar).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{stderr, stdout, Recorded, Reply, Server};
use serde_json::{json, Value};

fn deployment(status: &str, extra: Value) -> Value {
    let mut d = json!({
        "id": "01DEP", "environmentName": "web", "status": status, "revision": 2,
        "previousRevision": 1,
        "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/web:2",
        "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod",
        "updateStrategy": {"maxUnavailable": 1, "minHealthySeconds": 30, "failureThreshold": 0, "autoRollback": true},
        "desiredCount": 2, "pendingCount": 2, "runningCount": 0, "failedCount": 0, "failedHosts": 0,
        "failedInstances": [], "failures": [], "createdAt": "t0", "updatedAt": "t1"
    });
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

/// The status of `web`: counts (desired 2, 1 host unschedulable) and the deployment it shows.
fn status(current: u64, ready: u64, available: u64, updated: u64, deployment: Value) -> Value {
    json!({
        "name": "web", "activeRevision": 2, "latestRevision": 2, "health": "healthy",
        "counts": {"desired": 2, "current": current, "ready": ready, "available": available,
                   "updated": updated, "misscheduled": 0, "unavailable": 2 - available,
                   "unschedulable": 1, "waiting": 0},
        "deployment": deployment
    })
}

/// A fake API that plays a rollout: the POST answers `deployments[0]`, the n-th GET of the
/// deployment `deployments[n + 1]`, the n-th GET of the status `statuses[n]` (each list's last
/// answer repeats).
async fn rollout(deployments: Vec<Value>, statuses: Vec<Value>) -> Server {
    let (gets, status_gets) = (Arc::new(AtomicUsize::new(1)), Arc::new(AtomicUsize::new(0)));
    let pick = |list: &[Value], n: &AtomicUsize| {
        list[n.fetch_add(1, Ordering::SeqCst).min(list.len() - 1)].clone()
    };
    Server::start(move |r: &Recorded| {
        let path = r
            .target
            .split_once('?')
            .map_or(r.target.as_str(), |(p, _)| p);
        match (r.method.as_str(), path) {
            ("POST", "/v1/environments/web/deployments") => {
                Reply::json(200, deployments[0].clone())
            }
            ("GET", "/v1/environments/web/deployments/01DEP") => {
                Reply::json(200, pick(&deployments, &gets))
            }
            ("GET", "/v1/environments/web/status") => {
                Reply::json(200, pick(&statuses, &status_gets))
            }
            _ => Reply::json(404, json!({"code": "NotFound", "message": "no such thing"})),
        }
    })
    .await
}

/// Two hosts replaced one at a time: the first launching, then baking, the second, done.
async fn rolling_update() -> Server {
    let running = |n: u64, extra: Value| {
        let mut extra = extra;
        extra["runningCount"] = json!(n);
        extra["pendingCount"] = json!(2 - n);
        deployment("running", extra)
    };
    let d = [
        deployment("pending", json!({})),
        running(0, json!({})),
        running(1, json!({})),
        deployment(
            "completed",
            json!({"runningCount": 2, "pendingCount": 0, "finishedAt": "t9"}),
        ),
    ];
    rollout(
        d.to_vec(),
        vec![
            status(2, 1, 1, 1, d[0].clone()),
            status(2, 2, 1, 1, d[1].clone()),
            status(2, 2, 1, 2, d[2].clone()),
            status(2, 2, 2, 2, d[3].clone()),
        ],
    )
    .await
}

fn deploy_wait(api: &Server) -> Vec<String> {
    [
        "deploy",
        "web",
        "--wait",
        "--interval",
        "1",
        "--endpoint",
        &api.url,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `line` with its `[  12s]` timestamp as `[t]` (how many seconds a poll takes varies).
fn untimed(line: &str) -> String {
    match line.split_once("s] ") {
        Some((stamp, rest))
            if stamp.starts_with('[') && stamp[1..].trim_start().parse::<u64>().is_ok() =>
        {
            format!("[t] {rest}")
        }
        _ => line.to_owned(),
    }
}

async fn run(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::daemonctl(&args, &[]).await
}

#[tokio::test]
async fn deploy_wait_without_a_terminal_prints_a_timestamped_line_per_change_with_the_phase() {
    let api = rolling_update().await;
    let o = run(&deploy_wait(&api)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<String> = err.lines().skip(1).map(untimed).collect();
    assert_eq!(
        lines,
        [
            "[t] pending: running 0, pending 2, failed 0 of 2 hosts | replacing: updated 1/2, available 1, failed 0, unschedulable 1",
            "[t] running: running 0, pending 2, failed 0 of 2 hosts | baking: updated 1/2, available 1, failed 0, unschedulable 1",
            "[t] running: running 1, pending 1, failed 0 of 2 hosts | baking: updated 2/2, available 1, failed 0, unschedulable 1",
            "[t] completed: running 2, pending 0, failed 0 of 2 hosts | completed: updated 2/2, available 2, failed 0, unschedulable 1",
        ][..],
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).starts_with("deployment 01DEP of web: waiting for it to finish\n[   0s] "));
    assert!(!stderr(&o).contains('\x1b'), "no terminal, no escape codes");
    assert!(
        stdout(&o).contains("Status:           completed\n"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test]
async fn a_halted_deployment_is_followed_through_its_automatic_rollback_and_exits_3() {
    let reason = "1 host(s) failed, threshold 0";
    let halted =
        json!({"haltedReason": reason, "failedHosts": 1, "runningCount": 0, "pendingCount": 1});
    let failed = deployment("failed", halted.clone());
    let rollback = |status: &str| {
        let mut r = deployment(status, json!({"rollbackOf": "01DEP", "revision": 1}));
        r["id"] = json!("01RB");
        r
    };
    let api = rollout(
        vec![
            deployment("pending", json!({})),
            deployment("running", halted),
            failed.clone(),
        ],
        vec![
            status(2, 1, 1, 1, deployment("pending", json!({}))),
            status(2, 1, 1, 1, failed.clone()),
            // The rollback starts a moment after the halted deployment closed.
            status(2, 1, 1, 1, failed.clone()),
            status(2, 2, 1, 1, rollback("running")),
            status(2, 2, 2, 2, rollback("completed")),
        ],
    )
    .await;
    let o = run(&deploy_wait(&api)).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    for line in [
        "] running: running 0, pending 1, failed 1 of 2 hosts | halted by the breaker (1 host(s) failed, threshold 0): updated 1/2",
        "] failed: running 0, pending 1, failed 1 of 2 hosts | failed (1 host(s) failed, threshold 0): updated 1/2",
        "] failed: running 0, pending 1, failed 1 of 2 hosts | rolling back: updated 1/2, available 1, failed 0, unschedulable 1\n",
        "] failed: running 0, pending 1, failed 1 of 2 hosts | completed: updated 2/2, available 2, failed 0, unschedulable 1\n",
        "] rollback 01RB of 01DEP: completed\n",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
    // The deployment waited for is the one printed.
    assert!(
        stdout(&o).contains("Deployment:       01DEP\n"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("Status:           failed\n"),
        "{}",
        stdout(&o)
    );
    let polls = api
        .requests()
        .iter()
        .filter(|r| r.target.ends_with("/status"))
        .count();
    assert_eq!(polls, 5, "polled until the rollback completed");
}

/// `env status --watch` until SIGINT (Ctrl-C): the output so far and the exit code.
async fn watch(api: &Server, extra: &[&str], polls: usize) -> std::process::Output {
    let mut args = vec![
        "env",
        "status",
        "web",
        "--watch",
        "--interval",
        "1",
        "--endpoint",
        &api.url,
    ];
    args.extend_from_slice(extra);
    let child = common::command(&args, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let statuses = || {
        api.requests()
            .iter()
            .filter(|r| r.target.ends_with("/status"))
            .count()
    };
    let started = std::time::Instant::now();
    while statuses() < polls && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the last poll's output, then Ctrl-C.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    child.wait_with_output().await.unwrap()
}

#[tokio::test]
async fn status_watch_prints_a_line_per_change_until_ctrl_c_and_exits_0() {
    let api = rolling_update().await;
    let o = watch(&api, &[], 5).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "web: its status every 1s until Ctrl-C\n");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "one line per change, the repeated last status none: {out}"
    );
    assert!(lines[0].starts_with("[   0s] replacing: updated 1/2, available 1, failed 0, unschedulable 1 | deployment 01DEP pending, revision 2"), "{out}");
    assert!(lines[1].ends_with("] baking: updated 1/2, available 1, failed 0, unschedulable 1 | deployment 01DEP running, revision 2"), "{out}");
    assert!(lines[3].ends_with("] completed: updated 2/2, available 2, failed 0, unschedulable 1 | deployment 01DEP completed, revision 2"), "{out}");
}

#[tokio::test]
async fn status_watch_as_json_prints_each_new_status_on_a_line() {
    let api = rolling_update().await;
    let o = watch(&api, &["-o", "json"], 5).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let docs: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 4, "{}", stdout(&o));
    assert_eq!(docs[0]["deployment"]["status"], "pending");
    assert_eq!(docs[3]["counts"]["available"], 2);
}

#[tokio::test]
async fn status_watch_of_a_missing_environment_is_an_api_error() {
    let api = rollout(vec![json!({})], vec![json!({})]).await;
    let o =
        run(&["env", "status", "nope", "--watch", "--endpoint", &api.url].map(str::to_owned)).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
}

/// On a pseudo-terminal of 100 columns: the bar redrawn in place, each phase a line above it;
/// what is left on the screen once the command returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_wait_on_a_terminal_draws_the_bar() {
    let api = rolling_update().await;
    let args = deploy_wait(&api);
    let output = tokio::task::spawn_blocking(move || {
        // stty sizes the terminal as a terminal emulator would.
        let mut sh = std::process::Command::new("sh");
        common::isolate(&mut sh);
        sh.env("TERM", "xterm")
            .args(["-c", "stty rows 30 cols 100 && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_daemonctl"))
            .args(&args);
        let mut session = rexpect::session::spawn_command(sh, Some(30_000)).unwrap();
        session.exp_eof().unwrap()
    })
    .await
    .unwrap();
    assert!(output.contains("\x1b["), "redrawn in place: {output:?}");
    let mut term = vt100::Parser::new(30, 100, 0);
    term.process(output.as_bytes());
    let rows: Vec<String> = term.screen().rows(0, 100).collect();
    let screen = rows.join("\n");
    let lines: Vec<String> = rows.iter().map(|r| untimed(r.trim_end())).collect();
    let elapsed = lines[4].get(13..21).unwrap_or_default();
    assert!(elapsed.starts_with("00:00:0"), "{screen}");
    let counts = format!("  completed  {elapsed}  2 available, 0 failed, 1 unschedulable");
    let bar = format!("  [{}] 2/2 updated", "=".repeat(84));
    assert_eq!(
        lines[..8],
        [
            "deployment 01DEP of web: waiting for it to finish",
            "[t] replacing: updated 1/2, available 1, failed 0, unschedulable 1",
            "[t] baking: updated 1/2, available 1, failed 0, unschedulable 1",
            "[t] completed: updated 2/2, available 2, failed 0, unschedulable 1",
            &counts,
            &bar,
            "Deployment:       01DEP",
            "Environment:      web",
        ],
        "{screen}"
    );
}
