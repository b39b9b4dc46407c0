//! A full rolling update, counted: 1,000 hosts on moto (the real adapters, every AWS call counted
//! on the wire) and 5,000 hosts modelled on the in-process fakes (the calls the adapters would
//! make, counted by `counted.rs`). Both drive the real use cases the way the triggers would: the
//! deployment's stream record steps it, the task events of what changed follow, the stream's next
//! batch steps it again.

use std::collections::BTreeMap;
use std::time::Instant;

use integration_tests::shared::domain::{Host, HostState, HostStatus};
use integration_tests::shared::executor::system_now_ms;
use integration_tests::shared::fakes::{FakeCluster, FakeStore, FAKE_CLUSTER_ARN};
use integration_tests::shared::http::ApiRequest;
use integration_tests::shared::ports::Store;
use integration_tests::shared::services::{
    deployments_api, environments_api, instance_events, rolling, task_events,
};
use integration_tests::shared::sim;
use integration_tests::{Pump, World};
use serde_json::json;

use crate::counted::{Counted, Tally};

/// Task events a stream batch of the deployer follows (its 1 s batching window gathers the
/// counter changes of many hosts; one step per 10 is a pessimistic stand-in).
const EVENTS_PER_STEP: usize = 10;

pub struct Figures {
    pub hosts: usize,
    pub waves: usize,
    pub calls: BTreeMap<String, usize>,
    /// ECS's reports of the hosts (each task stopped or placed changes its host): 2 reads each.
    pub host_echo_calls: BTreeMap<String, usize>,
    pub took: std::time::Duration,
}

fn total(calls: &BTreeMap<String, usize>) -> usize {
    calls.values().sum()
}

fn get(calls: &BTreeMap<String, usize>, op: &str) -> usize {
    calls.get(op).copied().unwrap_or(0)
}

impl Figures {
    /// The figures as a section of docs/benchmarks.md; `place`: where the calls were counted.
    pub fn markdown(&self, place: &str) -> String {
        let n = self.hosts;
        let w = self.waves;
        let reads = get(&self.calls, "ECS.ListContainerInstances")
            + get(&self.calls, "ECS.DescribeContainerInstances");
        let read_bound = 2 * w * n.div_ceil(100);
        let all = total(&self.calls);
        let echo = total(&self.host_echo_calls);
        // The floor: per host StopTask, StartTask, its claim, the STOPPED event's read, the RUNNING
        // event's read and write (6); per wave one read of the deployment, the cluster (2 per 100
        // hosts), the slots (1 per 1,000) and one transaction of replacements per 96.
        let floor = 6 * n + w * (1 + 2 * n.div_ceil(100) + n.div_ceil(1000) + (n / w).div_ceil(96));
        let mut rows = String::from("| operation | calls | per host |\n|---|---:|---:|\n");
        for (op, c) in &self.calls {
            rows.push_str(&format!("| {op} | {c} | {:.2} |\n", *c as f64 / n as f64));
        }
        rows.push_str(&format!(
            "| **total** | **{all}** | **{:.2}** |\n",
            all as f64 / n as f64
        ));
        format!(
            "#### A rolling update of {n} hosts, {place}\n\n\
             {n} hosts replaced in {w} waves of 25 % ({:.1} s on this machine).\n\n{rows}\n\
             - ECS cluster reads (List + DescribeContainerInstances): **{reads}**, target ≤ 2 × {w} \
             waves × {} = {read_bound}: {}.\n\
             - AWS calls per host replaced, all in: **{:.2}**, target ≤ 8: {}. The floor \
             (StopTask, StartTask, the claim, the STOPPED event's read, the RUNNING event's read and \
             write a host; a read of the deployment, the cluster and the slots and one batched write \
             a wave) is {floor}: ratio {:.3}.\n\
             - Besides: ECS reports each host again when a task stops or is placed on it (here {} \
             reports of the hosts: {echo} calls, {:.2} a host, two reads and no write each); with \
             them, {:.2} calls a host.\n",
            self.took.as_secs_f64(),
            n.div_ceil(100),
            if reads <= read_bound { "met" } else { "**missed**" },
            all as f64 / n as f64,
            if all <= 8 * n { "met" } else { "**missed**" },
            all as f64 / floor as f64,
            echo / 2,
            echo as f64 / n as f64,
            (all + echo) as f64 / n as f64,
        )
    }
}

/// The rolling update of BENCH_ROLL_HOSTS (default 1,000) hosts on moto.
pub async fn moto() -> Figures {
    let hosts: usize = std::env::var("BENCH_ROLL_HOSTS")
        .ok()
        .map_or(1000, |n| n.parse().expect("BENCH_ROLL_HOSTS"));
    crate::calls::progress(&format!(
        "rolling update: registering {hosts} hosts in moto"
    ));
    let w = World::new().await;
    let all = w.add_hosts(hosts).await;
    w.create_environment("roll").await;
    crate::calls::progress("rolling update: revision 1 everywhere");
    w.deploy("roll").await;
    let v2 = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/roll",
            Some(json!({"taskDefinition": v2, "updateStrategy": {"maxUnavailable": "25%"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut pump = Pump::from_now(&w).await;
    w.create_deployment("roll").await;
    crate::calls::progress("rolling update: revision 2, 25 % at a time");
    w.calls.reset();
    let t = Instant::now();
    pump.run(&w, "roll", &all, None).await;
    let took = t.elapsed();
    let calls = w.calls.snapshot();
    // ECS's reports of the hosts, 2 per host (the old task stopped, the new one placed): measured
    // on a sample of hosts, each report as the instance event ECS would send.
    let sample = all.len().min(20);
    w.calls.reset();
    for (i, host) in all.iter().take(sample).enumerate() {
        let ev = w.host_event(host, 1_000 + i as i64).await;
        instance_events::handle(&w.store, &w.cluster, &ev)
            .await
            .expect("instance event");
    }
    let per_report = w.calls.snapshot();
    let host_echo_calls = per_report
        .into_iter()
        .map(|(op, c)| (op, c * 2 * hosts / sample))
        .collect();
    Figures {
        hosts,
        waves: 4,
        calls,
        host_echo_calls,
        took,
    }
}

async fn api(
    store: &FakeStore,
    cluster: &FakeCluster,
    method: &str,
    path: &[&str],
    body: serde_json::Value,
) {
    let req = ApiRequest {
        method: method.into(),
        segments: path.iter().map(|s| (*s).to_owned()).collect(),
        body: Some(body.to_string().into_bytes()),
        ..Default::default()
    };
    environments_api::route(store, cluster, &req).await.unwrap();
}

/// Delivers every task change of the fake cluster as its event (and ECS's report of its host),
/// stepping the deployment as the stream's batches would; until nothing changes.
async fn settle(
    store: &Counted<'_, FakeStore>,
    cluster: &Counted<'_, FakeCluster>,
    fake: &FakeCluster,
    echo: &Tally,
    id: &str,
) {
    let mut stepped = false;
    loop {
        let changes = fake.take_changes();
        if changes.is_empty() {
            if stepped {
                return; // a step after the last change changed nothing
            }
            rolling::step(store, cluster, "roll", id, system_now_ms())
                .await
                .unwrap();
            stepped = true;
            continue;
        }
        stepped = false;
        for (i, t) in changes.iter().enumerate() {
            let detail = sim::task_detail(t);
            task_events::handle(store, cluster, &detail).await.unwrap();
            // ECS reports the host: its free resources changed.
            let mut host = fake.host(&t.host).expect("the task's host");
            host.state.version += 1;
            fake.set_host(host.clone());
            let report = sim::instance_detail(&host);
            let echo_store = Counted {
                inner: store.inner,
                tally: echo,
            };
            let echo_cluster = Counted {
                inner: cluster.inner,
                tally: echo,
            };
            instance_events::handle(&echo_store, &echo_cluster, &report)
                .await
                .unwrap();
            if (i + 1) % EVENTS_PER_STEP == 0 {
                rolling::step(store, cluster, "roll", id, system_now_ms())
                    .await
                    .unwrap();
            }
        }
    }
}

/// The rolling update of BENCH_MODEL_HOSTS (default 5,000) hosts, modelled on the fakes.
pub async fn model() -> Figures {
    let hosts: usize = std::env::var("BENCH_MODEL_HOSTS")
        .ok()
        .map_or(5000, |n| n.parse().expect("BENCH_MODEL_HOSTS"));
    crate::calls::progress(&format!("rolling update model: {hosts} hosts on the fakes"));
    let (fake_store, fake) = (FakeStore::default(), FakeCluster::default());
    for i in 0..hosts {
        let arn = sim::host_arn(i);
        fake.set_host(Host::from_state(HostState {
            container_instance_arn: arn,
            status: HostStatus::Active,
            agent_connected: true,
            version: 1,
            other_tasks: None,
        }));
    }
    api(&fake_store, &fake, "POST", &["environments"], json!({
        "name": "roll", "instanceGroup": {"cluster": FAKE_CLUSTER_ARN}, "taskDefinition": "agent:1"
    }))
    .await;
    let (tally, echo) = (Tally::default(), Tally::default());
    let store = Counted {
        inner: &fake_store,
        tally: &tally,
    };
    let cluster = Counted {
        inner: &fake,
        tally: &tally,
    };
    let first = deployments_api::create(&fake_store, "roll", None, None)
        .await
        .unwrap();
    settle(&store, &cluster, &fake, &echo, &first.id).await;
    let env = fake_store.get_environment("roll").await.unwrap().unwrap();
    let d = fake_store.get_deployment("roll", &first.id).await.unwrap();
    assert!(
        env.active_deployment_id.is_none(),
        "revision 1 everywhere: {d:?} live {}",
        fake.live_tasks().len()
    );
    api(
        &fake_store,
        &fake,
        "PUT",
        &["environments", "roll"],
        json!({
            "taskDefinition": "agent:2", "updateStrategy": {"maxUnavailable": "25%"}
        }),
    )
    .await;
    let second = deployments_api::create(&fake_store, "roll", None, None)
        .await
        .unwrap();
    tally.reset();
    echo.reset();
    let t = Instant::now();
    settle(&store, &cluster, &fake, &echo, &second.id).await;
    let took = t.elapsed();
    let env = fake_store.get_environment("roll").await.unwrap().unwrap();
    assert!(env.active_deployment_id.is_none(), "the rollout finished");
    let on_two = fake
        .live_tasks()
        .iter()
        .filter(|t| t.task_definition.ends_with("agent:2"))
        .count();
    assert_eq!(on_two, hosts, "every host on revision 2");
    Figures {
        hosts,
        waves: 4,
        calls: tally.snapshot(),
        host_echo_calls: echo.snapshot(),
        took,
    }
}
