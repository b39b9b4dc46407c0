//! `bench alarm-gated`: the AWS calls an alarm-gated rolling update adds. Modelled on the
//! in-process fakes at 1,000 and 5,000 hosts (the calls the adapters would make, counted by
//! `counted.rs`; `FakeAlarms` counts one DescribeAlarms per read, as the adapter calls it), then
//! measured on the wire on moto (BENCH_GATED_MOTO_HOSTS, default 100 hosts): the real adapters,
//! moto's CloudWatch, every call counted by the harness.

use integration_tests::shared::domain::{AlarmState, Host, HostState, HostStatus};
use integration_tests::shared::executor::system_now_ms;
use integration_tests::shared::fakes::{FakeAlarms, FakeCluster, FakeStore, FAKE_CLUSTER_ARN};
use integration_tests::shared::ports::Store;
use integration_tests::shared::services::{deployments_api, rolling, task_events};
use integration_tests::shared::sim::{call_api, task_detail};
use integration_tests::{Pump, World};
use serde_json::json;

use crate::counted::{Counted, Tally};

/// Task events a stream batch of the deployer follows (as `rollout.rs`: pessimistic).
const EVENTS_PER_STEP: usize = 10;

/// One gated rollout, counted.
struct Gated {
    hosts: usize,
    /// The deployer's steps of the deployment (each reads its gates while it is in progress);
    /// not counted on moto.
    steps: Option<usize>,
    describe_alarms: usize,
    /// Every other AWS call of the rollout (ECS, DynamoDB).
    others: usize,
}

async fn api(
    store: &FakeStore,
    cluster: &FakeCluster,
    method: &str,
    path: &[&str],
    body: serde_json::Value,
) {
    let r = call_api(store, cluster, method, path, Some(body))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Every task change delivered as its event, the deployment stepped every `EVENTS_PER_STEP`
/// events and when nothing changes (the stream's batches), until a step changes nothing.
async fn settle(
    store: &Counted<'_, FakeStore>,
    cluster: &Counted<'_, FakeCluster>,
    fake: &FakeCluster,
    alarms: &FakeAlarms,
    id: &str,
) -> usize {
    let mut steps = 0;
    let step = |steps: &mut usize| {
        *steps += 1;
        rolling::step_with(store, cluster, Some(alarms), "roll", id, system_now_ms())
    };
    let mut stepped = false;
    loop {
        let changes = fake.take_changes();
        if changes.is_empty() {
            if stepped {
                return steps;
            }
            step(&mut steps).await.unwrap();
            stepped = true;
            continue;
        }
        stepped = false;
        for (i, t) in changes.iter().enumerate() {
            task_events::handle(store, cluster, &task_detail(t))
                .await
                .unwrap();
            if (i + 1) % EVENTS_PER_STEP == 0 {
                step(&mut steps).await.unwrap();
            }
        }
    }
}

/// Revision 1 on `hosts` hosts, then revision 2 gated by one alarm (OK), 25 % at a time.
async fn model(hosts: usize) -> Gated {
    crate::calls::progress(&format!(
        "alarm-gated rollout model: {hosts} hosts on the fakes"
    ));
    let (fake_store, fake, alarms) = (
        FakeStore::default(),
        FakeCluster::default(),
        FakeAlarms::default(),
    );
    alarms.set("daemons-errors", AlarmState::Ok);
    for i in 0..hosts {
        fake.set_host(Host::from_state(HostState {
            container_instance_arn: format!(
                "arn:aws:ecs:us-east-1:123456789012:container-instance/fake/b{i}"
            ),
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
    let tally = Tally::default();
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
    settle(&store, &cluster, &fake, &alarms, &first.id).await;
    api(
        &fake_store,
        &fake,
        "PUT",
        &["environments", "roll"],
        json!({
            "taskDefinition": "agent:2",
            "updateStrategy": {"maxUnavailable": "25%", "alarms": ["daemons-errors"]}
        }),
    )
    .await;
    let second = deployments_api::create(&fake_store, "roll", None, None)
        .await
        .unwrap();
    tally.reset();
    let before = alarms.calls();
    let steps = settle(&store, &cluster, &fake, &alarms, &second.id).await;
    let done = fake_store
        .get_deployment("roll", &second.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status.as_str(), "completed", "{done:?}");
    Gated {
        hosts,
        steps: Some(steps),
        describe_alarms: alarms.calls() - before,
        others: tally.snapshot().values().sum(),
    }
}

/// The same on moto: the deployment's INSERT, then the triggers as `Pump` plays them.
async fn moto(hosts: usize) -> (Gated, usize) {
    crate::calls::progress(&format!("alarm-gated rollout on moto: {hosts} hosts"));
    let w = World::new().await;
    let all = w.add_hosts(hosts).await;
    let alarm = w.create_alarm("daemons-errors").await;
    w.create_environment("roll").await;
    w.deploy("roll").await;
    let v2 = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/roll",
            Some(json!({"taskDefinition": v2, "updateStrategy": {"maxUnavailable": "25%", "alarms": [alarm]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut pump = Pump::from_now(&w).await;
    let id = w.create_deployment("roll").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.calls.reset();
    w.deliver_deployment_insert("roll", &id).await;
    // The INSERT's step: the only one that schedules a re-check (task-events' bake wake-ups
    // are the rollout's own).
    let send = w.calls.get("SQS.SendMessage");
    pump.run(&w, "roll", &all, None).await;
    let calls = w.calls.snapshot();
    let describe_alarms = calls.get("CloudWatch.DescribeAlarms").copied().unwrap_or(0);
    let others = calls.values().sum::<usize>() - describe_alarms - send;
    (
        Gated {
            hosts,
            steps: None,
            describe_alarms,
            others,
        },
        send,
    )
}

pub async fn run() {
    let mut rows = String::from(
        "| hosts | where | deployer steps | DescribeAlarms | the rollout's other AWS calls | added |\n|---:|---|---:|---:|---:|---:|\n",
    );
    let row = |g: &Gated, place: &str| {
        format!(
            "| {} | {place} | {} | **{}** | {} | {:.1} % |\n",
            g.hosts,
            g.steps.map_or("–".to_owned(), |s| s.to_string()),
            g.describe_alarms,
            g.others,
            100.0 * g.describe_alarms as f64 / g.others as f64
        )
    };
    for hosts in [1000, 5000] {
        rows.push_str(&row(&model(hosts).await, "fakes (modelled)"));
    }
    let moto_hosts: usize = std::env::var("BENCH_GATED_MOTO_HOSTS")
        .ok()
        .map_or(100, |n| n.parse().expect("BENCH_GATED_MOTO_HOSTS"));
    let (m, sends) = moto(moto_hosts).await;
    rows.push_str(&row(&m, "moto (measured)"));
    println!(
        "#### An alarm-gated rolling update\n\n\
         `bench alarm-gated` (`bench/src/gates.rs`): revision 2 gated by one CloudWatch alarm (OK \
         throughout), 25 % of the hosts at a time, a deployer step per 10 task events (the stream's \
         batches) and when nothing changes. Each step of a gated deployment in progress reads its \
         alarms once: one `DescribeAlarms` (a revision names at most 10, one call takes 100).\n\n\
         {rows}\n\
         - On moto the deployment's INSERT also scheduled its first re-check of the alarms: {sends} \
         SQS SendMessage (on the wake-up queue, 60 s on).\n\
         - While a gated deployment is in progress (most of all while nothing steps it: a bake, a \
         canary awaiting promotion, a pause), one re-check a minute: 1 SQS SendMessage + the \
         deployer's step from the wake-up queue (1 DynamoDB GetItem + 1 DescribeAlarms; Lambda's \
         poller's ReceiveMessage and DeleteMessage besides), and each scheduled reconcile (5 min) \
         reads them once more: about 1.2 DescribeAlarms and 1 SendMessage a minute. Nothing is \
         read for ungated deployments, nor once a deployment has halted or finished.\n"
    );
}
