//! AWS calls the product makes, counted by the integration harness's `CallCounter` against moto.
//! Harness calls (reading moto's state to build events) happen before the counter is reset, so
//! only the product's own calls are counted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use integration_tests::shared::services::{deployer, instance_events, task_events};
use integration_tests::{moto_endpoint, stream_event, World};
use serde_json::json;

use crate::runtime_api;

/// The table `name` exists (empty) and moto has loaded its ECS backend (its first ECS call takes
/// ~1.5 s, which would otherwise land in the measured invocation).
pub async fn prepare_moto(name: &str) {
    let config = integration_tests::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    if ddb.describe_table().table_name(name).send().await.is_err() {
        integration_tests::create_table_from_template(&ddb, name).await;
    }
    aws_sdk_ecs::Client::new(&config)
        .list_clusters()
        .send()
        .await
        .expect("moto ECS");
}

pub async fn run(deployer_bin: Option<PathBuf>) {
    join(1).await;
    join(3).await;
    fleet(deployer_bin).await;
}

/// Calls by operation, as a Markdown list.
fn table(calls: &BTreeMap<String, usize>, per: usize) -> String {
    let mut out = String::from("| operation | calls |");
    if per > 1 {
        out.push_str(" per environment |");
    }
    out.push_str(if per > 1 {
        "\n|---|---:|---:|\n"
    } else {
        "\n|---|---:|\n"
    });
    let mut row = |op: &str, n: usize| {
        out.push_str(&format!("| {op} | {n} |"));
        if per > 1 {
            out.push_str(&format!(" {:.2} |", n as f64 / per as f64));
        }
        out.push('\n');
    };
    for (op, n) in calls {
        row(op, *n);
    }
    row("**total**", calls.values().sum());
    out
}

/// A host joins a cluster where `envs` environments are deployed on 3 hosts, each with a
/// selector, a sizing rule and an overrides placeholder (placement decided from the event); then
/// ECS reports the host again, as it does after every task placed on it.
async fn join(envs: usize) {
    progress(&format!("join with {envs} environment(s)"));
    let w = World::new().await;
    w.add_hosts(3).await;
    for i in 0..envs {
        let name = format!("join-{i}");
        let (status, body) = w
            .api(
                "POST",
                "/v1/environments",
                Some(json!({"name": name, "instanceGroup": {"cluster": w.cluster_name},
                    "taskDefinition": w.family,
                    "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
                    "sizing": [{"expression": "attribute:ecs.instance-type =~ t3\\..*", "cpu": 256, "memory": 256}],
                    "overrides": {"containerOverrides": [{"name": "agent", "environment": [
                        {"name": "ZONE", "value": "${host.availabilityZone}"}]}]}})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let dep = w.deploy(&name).await;
        assert_eq!(dep["status"], "completed", "{dep}");
    }
    let host = w.add_hosts(1).await.remove(0);
    let event = w.host_event(&host, 1).await;
    w.calls.reset();
    let t = Instant::now();
    let report = instance_events::handle(&w.store, &w.cluster, &event)
        .await
        .expect("instance event");
    let took = t.elapsed();
    assert_eq!(report.started.len(), envs, "one task per environment");
    let join_calls = w.calls.snapshot();
    let per_env = w.calls.total() as f64 / envs as f64;
    // ECS's next report of the host (its free resources changed with our tasks): nothing to do.
    let echo = w.host_event(&host, 2).await;
    w.calls.reset();
    let again = instance_events::handle(&w.store, &w.cluster, &echo)
        .await
        .expect("instance event");
    assert!(again.started.is_empty() && again.stopped.is_empty());
    let echo_calls = w.calls.snapshot();
    let echo_writes: usize = echo_calls
        .iter()
        .filter(|(op, _)| {
            [
                "PutItem",
                "UpdateItem",
                "TransactWriteItems",
                "BatchWriteItem",
                "DeleteItem",
            ]
            .iter()
            .any(|w| op.ends_with(w))
        })
        .map(|(_, n)| n)
        .sum();
    let echo_total: usize = echo_calls.values().sum();
    println!(
        "\n#### A host joins a cluster with {envs} deployed environment{} (3 hosts each)\n\n\
         Each environment has a placement constraint, a sizing rule and an overrides placeholder: \
         all decided from the event. One `ECS Container Instance State Change` (ACTIVE, agent \
         connected, with its attributes and free resources) to `instance_events::handle`; {} \
         task(s) started, {} ms on moto.\n\n{}\n\
         Target ≤ 4 calls per environment: {} ({per_env:.2}).\n\n\
         Then ECS reports the host again (our task{} took its resources):\n\n{}\n\
         Target ≤ 2 calls and no DynamoDB write: {} ({echo_total} calls, {echo_writes} writes). \
         The whole join, both events: {} calls{}.",
        if envs == 1 { "" } else { "s" },
        report.started.len(),
        took.as_millis(),
        table(&join_calls, envs),
        if per_env <= 4.0 { "met" } else { "**missed**" },
        if envs == 1 { "" } else { "s" },
        table(&echo_calls, 1),
        if echo_total <= 2 && echo_writes == 0 {
            "met"
        } else {
            "**missed**"
        },
        join_calls.values().sum::<usize>() + echo_total,
        if envs == 1 {
            " (the floor: Query + BatchGetItem + the claim + StartTask, then Query + BatchGetItem = 6)"
        } else {
            ""
        },
    );
}

/// A fleet of BENCH_HOSTS (or `default`) container instances with environment `fleet` on it, and
/// how long registering them took (the harness's time, not counted).
async fn fleet_world(default: usize) -> (World, usize, std::time::Duration) {
    let hosts: usize = std::env::var("BENCH_HOSTS")
        .ok()
        .map_or(default, |n| n.parse().expect("BENCH_HOSTS"));
    let w = World::new().await;
    progress(&format!("registering {hosts} container instances in moto"));
    let t = Instant::now();
    w.add_hosts(hosts).await;
    let registering = t.elapsed();
    w.create_environment("fleet").await;
    (w, hosts, registering)
}

/// A deployment over 1,000 hosts (BENCH_HOSTS): the rollout, the 1,000 RUNNING task events, the close.
async fn fleet(deployer_bin: Option<PathBuf>) {
    let (w, hosts, registering) = fleet_world(1000).await;
    let dep = w.create_deployment("fleet").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    let (pk, sk) = ("ENV#fleet".to_owned(), format!("DEP#{id}"));

    // 1. the rollout (the deployment's stream INSERT)
    let record = w.stream_record(&pk, &sk, "INSERT").await;
    progress("rollout");
    w.calls.reset();
    let t = Instant::now();
    deployer::handle(&w.store, &w.cluster, &stream_event(vec![record]))
        .await
        .expect("rollout");
    let rollout = t.elapsed();
    let rollout_calls = w.calls.snapshot();
    let sizes = w.calls.start_task_sizes();

    // 2. the RUNNING event of every task (built first: the harness reads them from moto)
    let mut events = Vec::new();
    for (_, tasks) in w.tasks_by_host().await {
        for task in tasks {
            events.push(w.task_event(&task).await);
        }
    }
    let tasks = events.len();
    progress(&format!("{tasks} task events"));
    w.calls.reset();
    let t = Instant::now();
    for e in &events {
        task_events::handle(&w.store, &w.cluster, e)
            .await
            .expect("task event");
    }
    let events_took = t.elapsed();
    let event_calls = w.calls.snapshot();

    // 3. the close (the deployment's stream MODIFY once its counters say done)
    let record = w.stream_record(&pk, &sk, "MODIFY").await;
    w.calls.reset();
    deployer::handle(&w.store, &w.cluster, &stream_event(vec![record]))
        .await
        .expect("close");
    let close_calls = w.calls.snapshot();
    let (_, done) = w
        .api(
            "GET",
            &format!("/v1/environments/fleet/deployments/{id}"),
            None,
        )
        .await;

    // 4. a scheduled reconcile of the converged fleet: nothing to repair, every host verified
    w.calls.reset();
    let t = Instant::now();
    let later = integration_tests::shared::executor::system_now_ms() + 3_600_000;
    let summary =
        integration_tests::shared::services::reconciler::reconcile_all(&w.store, &w.cluster, later)
            .await
            .expect("reconcile");
    let reconcile_took = t.elapsed();
    let reconcile_calls = w.calls.snapshot();

    let get = |op: &str| rollout_calls.get(op).copied().unwrap_or(0);
    let check = |ok: bool| if ok { "met" } else { "**missed**" };
    let ddb_writes = |calls: &BTreeMap<String, usize>| -> usize {
        [
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactWriteItems",
        ]
        .iter()
        .map(|op| calls.get(&format!("DynamoDB.{op}")).copied().unwrap_or(0))
        .sum()
    };
    let verdicts = format!(
        "Targets: ListContainerInstances {} ≤ 10: {} (moto: one page, see above); \
         DescribeContainerInstances {} ≤ 10: {}; StartTask {} ≤ 100: {}; \
         DynamoDB slot-write calls {} for {hosts} claims ({:.0} slots a call; batched = at least 25 a call; a launch is recorded by its task's first event): {}.",
        get("ECS.ListContainerInstances"),
        check(get("ECS.ListContainerInstances") <= 10),
        get("ECS.DescribeContainerInstances"),
        check(get("ECS.DescribeContainerInstances") <= 10),
        get("ECS.StartTask"),
        check(get("ECS.StartTask") <= 100),
        ddb_writes(&rollout_calls),
        hosts as f64 / ddb_writes(&rollout_calls).max(1) as f64,
        check(ddb_writes(&rollout_calls) <= 2 + hosts.div_ceil(25)),
    );
    let mut size_counts: BTreeMap<usize, usize> = BTreeMap::new();
    for s in &sizes {
        *size_counts.entry(*s).or_default() += 1;
    }
    let sizes_text = size_counts
        .iter()
        .map(|(size, n)| format!("{n} × {size} hosts"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "\n#### A deployment over {hosts} hosts\n\n\
         Registering the {hosts} container instances in moto took {:.1} s (harness, not counted).\n\n\
         **Rollout** (`deployer::handle` on the deployment's stream INSERT): {:.2} s wall clock on moto \
         (loopback; informational). StartTask calls: {} ({sizes_text}).\n\n{}\n\
         moto ignores `maxResults` on ListContainerInstances and returns all {hosts} ARNs in one page; \
         the adapter asks for pages of 100, so real ECS would take {} List call(s).\n\n\
         {verdicts}\n\n\
         **{tasks} RUNNING task events** (`task_events::handle`, one at a time): {:.2} s on moto, \
         {:.2} calls per event.\n\n{}\n\
         **Close** (the deployment's stream MODIFY): deployment `{}`, running {} / desired {}.\n\n{}",
        registering.as_secs_f64(),
        rollout.as_secs_f64(),
        sizes.len(),
        table(&rollout_calls, 1),
        hosts.div_ceil(100),
        events_took.as_secs_f64(),
        event_calls.values().sum::<usize>() as f64 / tasks.max(1) as f64,
        table(&event_calls, 1),
        done["status"].as_str().unwrap_or("?"),
        done["runningCount"],
        done["desiredCount"],
        table(&close_calls, 1),
    );

    // The floor for one environment over n hosts with nothing to repair: the hosts (List + Describe,
    // 100 a call), our tasks (ListTasks by startedBy + DescribeTasks, 100 a call), the slots (Query
    // pages of 1 MB), the environment list.
    let rc = |op: &str| reconcile_calls.get(op).copied().unwrap_or(0);
    let floor = |n: usize| 4 * n.div_ceil(100) + 1 + 1;
    let moto_pages = rc("ECS.ListContainerInstances") + rc("ECS.ListTasks");
    let real_lists = 2 * hosts.div_ceil(100);
    let ours_real = reconcile_calls.values().sum::<usize>() - moto_pages + real_lists;
    println!(
        "\n**Scheduled reconcile** of the converged fleet (`reconciler::reconcile_all`, nothing to repair, \
         {} environment(s), {} verified): {:.2} s on moto.\n\n{}\n\
         moto returns each List in one page; with real ECS's pages of 100 this run makes {ours_real} calls \
         against a floor of {} (List + Describe of the hosts and of our tasks, 100 a call, one Query \
         page of slots, one of environments). The same formula gives {} calls for 5,000 hosts \
         (the ECS maximum): about {} s at 50 ms a call, well inside one 300 s run.\n",
        summary.environments,
        summary.verified,
        reconcile_took.as_secs_f64(),
        table(&reconcile_calls, 1),
        floor(hosts),
        floor(5000) + 4, // five 1 MB pages of slots instead of one
        (floor(5000) + 4) / 20,
    );

    if let Some(bin) = deployer_bin {
        deployer_binary(&w, &bin, hosts).await;
    }
}

/// The release `deployer` binary rolls out a second environment over the same hosts behind the
/// fake Runtime API: its peak RSS under the biggest job it has. The environment lives in a table of
/// its own (a second world's), since moto's TransactWriteItems slows down with the table's size.
async fn deployer_binary(w: &World, bin: &std::path::Path, hosts: usize) {
    let b = World::new().await;
    let (status, body) = b
        .api(
            "POST",
            "/v1/environments",
            Some(json!({"name": "fleet-b", "instanceGroup": {"cluster": w.cluster_name}, "taskDefinition": w.family})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let dep = b.create_deployment("fleet-b").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    let record = b
        .stream_record("ENV#fleet-b", &format!("DEP#{id}"), "INSERT")
        .await;
    let event = serde_json::to_vec(&stream_event(vec![record])).unwrap();
    let env = crate::lambda_env("deployer", &b.table, Some(&moto_endpoint()));
    let log = crate::log_path("deployer-fleet");
    let bin = bin.to_owned();
    progress(&format!(
        "the deployer binary rolls out a second environment over {hosts} hosts"
    ));
    let run = tokio::task::spawn_blocking(move || {
        runtime_api::run(&bin, "deployer", &env, Some(&event), &log)
    })
    .await
    .unwrap()
    .expect("deployer binary");
    let inv = run.invocation.unwrap();
    let (_, state) = b
        .api(
            "GET",
            &format!("/v1/environments/fleet-b/deployments/{id}"),
            None,
        )
        .await;
    println!(
        "\n**The release `deployer` binary** rolling out a second environment over the same {} hosts \
         (fake Runtime API, moto, log `target/bench/logs/deployer-fleet.log`): result `{}`, {:.1} s, \
         deployment now `{}` with {} pending; peak RSS (VmHWM) {} (at init {}).\n",
        hosts,
        inv.result.chars().take(60).collect::<String>(),
        inv.took.as_secs_f64(),
        state["status"].as_str().unwrap_or("?"),
        state["pendingCount"],
        crate::mb(inv.peak_hwm_kb),
        crate::mb(run.init_hwm_kb),
    );
}

pub fn progress(what: &str) {
    eprintln!("bench: {what}");
}

/// The scheduled reconcile on the ECS maximum (BENCH_HOSTS, default 5,000 hosts): a first run that
/// finds a recorded deployment and every host without its task (so it does the whole rollout),
/// then a run over the converged fleet. Counted against the floor of pages of 100.
pub async fn reconcile_fleet() {
    use integration_tests::shared::executor::system_now_ms;
    use integration_tests::shared::services::reconciler::reconcile_all;
    let (w, hosts, registering) = fleet_world(5000).await;
    let dep = w.create_deployment("fleet").await; // recorded; its stream record is never delivered
    let dep_path = format!(
        "/v1/environments/fleet/deployments/{}",
        dep["id"].as_str().unwrap()
    );

    let mut runs = Vec::new();
    for (i, what) in [
        "a deployment recorded, no host has its task yet (its stream record was lost)",
        "every task RUNNING (moto's tasks start RUNNING; the first run recorded them): the deployment is closed",
        "the converged fleet: nothing to repair",
    ]
    .iter()
    .enumerate()
    {
        progress(&format!("reconcile {}", i + 1));
        w.calls.reset();
        let t = Instant::now();
        let at = system_now_ms() + 60_000 * (i as i64 + 1);
        let summary = reconcile_all(&w.store, &w.cluster, at)
            .await
            .expect("reconcile");
        let (took, calls, sizes) = (t.elapsed(), w.calls.snapshot(), w.calls.start_task_sizes());
        let (_, d) = w.api("GET", &dep_path, None).await;
        let after = format!(
            "deployment `{}`, {} running / {} pending of {} desired",
            d["status"].as_str().unwrap_or("?"),
            d["runningCount"],
            d["pendingCount"],
            d["desiredCount"]
        );
        runs.push((*what, took, calls, summary, sizes, after));
    }
    let tasks: usize = w.tasks_by_host().await.values().map(Vec::len).sum();
    let per_host_max = w
        .tasks_by_host()
        .await
        .values()
        .map(Vec::len)
        .max()
        .unwrap_or(0);

    println!(
        "### Scheduled reconcile over {hosts} hosts\n\n`bench reconcile-fleet` \
         (`bench/src/calls.rs`, `make bench-reconcile`): {hosts} container instances registered in moto \
         ({:.0} s, harness, not counted), one environment with a recorded deployment whose stream record \
         is never delivered, then three scheduled runs of `reconciler::reconcile_all`. After them ECS \
         runs {tasks} tasks of the environment, at most {per_host_max} per host.\n",
        registering.as_secs_f64()
    );
    for (i, (what, took, calls, summary, sizes, after)) in runs.iter().enumerate() {
        let c = |op: &str| calls.get(op).copied().unwrap_or(0);
        // moto answers every List in one page; real ECS pages by 100.
        let moto_pages = c("ECS.ListContainerInstances") + c("ECS.ListTasks");
        let real_lists = 2 * hosts.div_ceil(100);
        let total: usize = calls.values().sum();
        let real = total - moto_pages + real_lists;
        let max_start = sizes.iter().max().copied().unwrap_or(0);
        println!(
            "**Run {}**: {what}. {:.1} s on moto; {} environment(s), {} deployment(s) stepped, \
             {} started, {} stopped, {} verified; StartTask calls {} (largest {max_start} hosts); \
             after it: {after}.\n\n{}\n\
             With real ECS's pages of 100 (moto answers each List in one page): **{real} calls**.\n",
            i + 1,
            took.as_secs_f64(),
            summary.environments,
            summary.deployments_stepped,
            summary.started,
            summary.stopped,
            summary.verified,
            sizes.len(),
            table(calls, 1),
        );
    }
    let floor = 4 * hosts.div_ceil(100) + 2;
    println!(
        "Floor of a run with nothing to repair: {floor} calls (List and Describe of the hosts and of \
         our tasks, 100 a call: 4 × {}; the environment list and the slots, one Query each, more \
         only past 1 MB of slots); a rollout from nothing adds at least {} StartTask calls (10 hosts \
         a call) and the slot writes. At ECS's default 20 TPS for reads and a ~50 ms round trip both \
         fit in one run of the reconciler's 300 s timeout.\n",
        hosts.div_ceil(100),
        hosts.div_ceil(10),
    );
}
