//! A full rolling update, counted: 1,000 hosts on moto (the real adapters, every AWS call counted
//! on the wire) and 5,000 hosts modelled on the in-process fakes (the calls the adapters would
//! make, counted by `counted.rs`). Both drive the real use cases the way the triggers would: the
//! deployment's stream record steps it, the task events of what changed follow, the stream's next
//! batch steps it again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::Instant;

use integration_tests::shared::domain::{Host, HostState, HostStatus};
use integration_tests::shared::executor::system_now_ms;
use integration_tests::shared::fakes::{FakeCluster, FakeStore, FakeTask, FAKE_CLUSTER_ARN};
use integration_tests::shared::ports::Store;
use integration_tests::shared::services::{deployments_api, instance_events, rolling, task_events};
use integration_tests::shared::sim;
use integration_tests::{Pump, World};
use serde_json::json;

use crate::counted::{Counted, Latency, Tally};
use crate::rates;

/// Task events a stream batch of the deployer follows (its 1 s batching window gathers the
/// counter changes of many hosts; one step per 10 is a pessimistic stand-in).
const EVENTS_PER_STEP: usize = 10;

/// The time model (assumptions, not measurements): how long a call takes, by service.
pub const LATENCY: Latency = Latency {
    ecs_s: 0.050,
    dynamodb_s: 0.010,
    sqs_s: 0.020,
};
/// A task is STOPPED (and its event handled) this long after the StopTask call that ended it.
const STOPPED_AFTER_S: f64 = 10.0;
/// A new task is RUNNING (and its event handled) this long after its StartTask call.
const RUNNING_AFTER_S: f64 = 10.0;
/// The deployer's stream batching window: a counter change steps the deployment this much later.
const STREAM_S: f64 = 1.0;
/// The deployer's timeout (infra/template.yaml).
const DEPLOYER_TIMEOUT_S: f64 = 300.0;

/// The rollout on the model's clock.
pub struct Timing {
    pub latency: Latency,
    /// Every AWS call of the rollout (ECS's reports of the hosts included): when it began.
    pub log: Vec<(f64, String)>,
    /// When the last call ended, seconds after the deployment was created.
    pub span: f64,
    /// The deployer's steps: when each began and ended, and its StopTask calls.
    pub steps: Vec<(f64, f64, usize)>,
    /// The same rollout with ECS answering in 20 ms: the modify bucket's peak and throttled calls.
    pub faster: Option<(usize, usize)>,
}

pub struct Figures {
    pub hosts: usize,
    pub waves: usize,
    pub calls: BTreeMap<String, usize>,
    /// ECS's reports of the hosts (each task stopped or placed changes its host): 2 reads each.
    pub host_echo_calls: BTreeMap<String, usize>,
    pub took: std::time::Duration,
    /// The model's clock (the fakes only).
    pub timing: Option<Timing>,
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
        ) + &self.moto_pages(place)
            + &self.timing.as_ref().map_or(String::new(), |t| t.markdown(n))
    }

    /// moto lists every container instance in one page; ECS would take one page per 100.
    fn moto_pages(&self, place: &str) -> String {
        let (n, w) = (self.hosts, self.waves);
        let lists = get(&self.calls, "ECS.ListContainerInstances");
        if !place.contains("moto") || n <= 100 {
            return String::new();
        }
        let reads = lists * n.div_ceil(100) + get(&self.calls, "ECS.DescribeContainerInstances");
        let bound = 2 * w * n.div_ceil(100);
        format!(
            "- moto answers ListContainerInstances in one page whatever `maxResults` says; with \
             ECS's pages of 100 these {lists} listings would be {} calls, and the cluster reads \
             {reads} (target ≤ {bound}: {}).\n",
            lists * n.div_ceil(100),
            if reads <= bound { "met" } else { "**missed**" },
        )
    }
}

impl Timing {
    /// Peak ECS calls a second against ECS's buckets, and the deployer's longest step.
    fn markdown(&self, n: usize) -> String {
        let l = &self.latency;
        let waves: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.2 > 0)
            .map(|s| format!("{:.0} s", s.0))
            .collect();
        let longest = self
            .steps
            .iter()
            .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))
            .copied()
            .unwrap_or_default();
        let classes: [(&str, &[&str]); 4] = [
            (
                "cluster reads (List + DescribeContainerInstances)",
                &["ListContainerInstances", "DescribeContainerInstances"],
            ),
            ("StartTask", &["StartTask"]),
            ("StopTask", &["StopTask"]),
            ("StartTask + StopTask", &["StartTask", "StopTask"]),
        ];
        // The most StopTask calls one step can make before its timeout, at this latency.
        let stops_in_timeout = (DEPLOYER_TIMEOUT_S / l.ecs_s) as usize;
        let faster = self.faster.map_or(String::new(), |(peak, throttled)| {
            format!(
                "\n- The rates go with the latency: the same rollout with ECS answering in 20 ms \
                 makes StartTask + StopTask at up to {peak} a second, past the modify bucket's \
                 refill (40 a second): {throttled} of its calls would find the bucket empty and \
                 be throttled (the SDK retries a throttled call; a StartTask still throttled \
                 frees its claim for the next event or reconcile, a StopTask is asked for again \
                 by the reconciler a lease later)."
            )
        });
        format!(
            "\n**On a clock** (a time model, stated as assumptions; not measured): each invocation \
             makes its calls one after another (the adapters make none at once); an ECS call takes \
             {:.0} ms, a DynamoDB call {:.0} ms; the functions' own work takes no time (the whole \
             rollout computes in well under a second here); a task is STOPPED, and its event \
             handled, {STOPPED_AFTER_S:.0} s after the StopTask call that ended it, a new task \
             RUNNING {RUNNING_AFTER_S:.0} s after its StartTask; the deployer steps \
             {STREAM_S:.0} s (its stream's batching window) after the change that triggers it, \
             one step at a time (one stream shard, in order); task and instance events are each \
             handled by a Lambda of their own as they arrive (concurrently). On that clock the \
             rollout takes {:.0} s ({:.1} min); its waves begin at {}.\n\n{}\n\
             - ECS's buckets are those of the ECS Developer Guide (\"Request throttling for the \
             Amazon ECS API\", its table of bucket sizes and refill rates): List/Describe\
             ContainerInstances share the cluster resource read bucket with ListTasks and \
             DescribeTasks; StartTask and StopTask share the cluster resource modify bucket. The \
             buckets are per account and Region, shared with every other caller there (the \
             console, other deployments, the reconciler), so the rows are this rollout's share; \
             \"fewest tokens left\" is what the bucket would still hold at its lowest with this \
             rollout alone.\n\
             - The deployer's longest step (a wave's): {:.1} s, with {} StopTask calls made one \
             after another ({} × {:.0} ms = {:.1} s; the rest is the cluster read and the slot \
             writes), against its {DEPLOYER_TIMEOUT_S:.0} s timeout. At this latency a step has \
             room for about {stops_in_timeout} StopTask calls: a single wave of all {n} hosts \
             (`maxUnavailable` 100 %) would take {:.0} s of them.{faster}\n",
            l.ecs_s * 1e3,
            l.dynamodb_s * 1e3,
            self.span,
            self.span / 60.0,
            waves.join(", "),
            rates::tables(&self.log, &classes, self.span),
            longest.1 - longest.0,
            longest.2,
            longest.2,
            l.ecs_s * 1e3,
            longest.2 as f64 * l.ecs_s,
            n as f64 * l.ecs_s,
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
        timing: None,
    }
}

async fn api(
    store: &FakeStore,
    cluster: &FakeCluster,
    method: &str,
    path: &[&str],
    body: serde_json::Value,
) {
    sim::call_api(store, cluster, method, path, Some(body))
        .await
        .unwrap();
}

/// What happens next on the model's clock.
enum Ev {
    /// The deployer steps the deployment (a stream batch of its changes).
    Step,
    /// A task's change reaches task-events (and ECS's report of its host, instance-events).
    Task(Box<FakeTask>),
}

/// Events by time (then in the order they were scheduled).
#[derive(Default)]
struct Agenda {
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    events: HashMap<u64, Ev>,
    next: u64,
}

impl Agenda {
    fn push(&mut self, at_s: f64, ev: Ev) {
        self.next += 1;
        self.heap
            .push(Reverse(((at_s * 1e6).round() as i64, self.next)));
        self.events.insert(self.next, ev);
    }
    fn pop(&mut self) -> Option<(f64, Ev)> {
        let Reverse((at, id)) = self.heap.pop()?;
        Some((at as f64 / 1e6, self.events.remove(&id)?))
    }
}

/// Delivers every task change of the fake cluster as its event (and ECS's report of its host),
/// stepping the deployment as the stream's batches would; until nothing changes. Each event is
/// handled when the time model has it arrive (`STOPPED_AFTER_S`, `RUNNING_AFTER_S` after the
/// call that caused it), the deployer's steps one at a time.
async fn settle(
    store: &Counted<'_, FakeStore>,
    cluster: &Counted<'_, FakeCluster>,
    fake: &FakeCluster,
    echo: &Tally,
    id: &str,
) -> Timing {
    let tally = store.tally;
    let mut agenda = Agenda::default();
    let mut steps = Vec::new();
    let (mut deployer_free, mut last, mut events) = (0.0f64, 0.0f64, 0usize);
    // A step after the last change that changed nothing ends it.
    let mut closing = false;
    agenda.push(0.0, Ev::Step); // the deployment's INSERT
    loop {
        let Some((at, ev)) = agenda.pop() else {
            if closing {
                break;
            }
            closing = true;
            agenda.push(last + STREAM_S, Ev::Step);
            continue;
        };
        match ev {
            Ev::Step if at + 1e-6 < deployer_free => agenda.push(deployer_free, Ev::Step),
            Ev::Step => {
                let stops = tally.snapshot().get("ECS.StopTask").copied().unwrap_or(0);
                tally.begin(at);
                rolling::step(store, cluster, "roll", id, system_now_ms())
                    .await
                    .unwrap();
                deployer_free = tally.now();
                let stops = tally.snapshot().get("ECS.StopTask").copied().unwrap_or(0) - stops;
                steps.push((at, deployer_free, stops));
                last = last.max(deployer_free);
            }
            Ev::Task(t) => {
                closing = false;
                tally.begin(at);
                task_events::handle(store, cluster, &sim::task_detail(&t))
                    .await
                    .unwrap();
                let end = tally.now();
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
                echo.begin(at);
                instance_events::handle(&echo_store, &echo_cluster, &report)
                    .await
                    .unwrap();
                last = last.max(end).max(echo.now());
                events += 1;
                if events.is_multiple_of(EVENTS_PER_STEP) {
                    agenda.push(end + STREAM_S, Ev::Step);
                }
            }
        }
        for t in fake.take_changes() {
            let caused = tally
                .changed_at(&t.arn)
                .or_else(|| echo.changed_at(&t.arn))
                .unwrap_or(last);
            let after = if t.alive {
                RUNNING_AFTER_S
            } else {
                STOPPED_AFTER_S
            };
            agenda.push(caused + after, Ev::Task(Box::new(t)));
        }
    }
    let mut log = tally.log();
    log.extend(echo.log());
    Timing {
        latency: LATENCY,
        log,
        span: last,
        steps,
        faster: None,
    }
}

/// The rolling update of BENCH_MODEL_HOSTS (default 5,000) hosts, modelled on the fakes; with the
/// same rollout again at 20 ms an ECS call, for how the rates go with the latency.
pub async fn model() -> Figures {
    let mut f = model_at(LATENCY).await;
    let faster = model_at(Latency {
        ecs_s: 0.020,
        ..LATENCY
    })
    .await;
    if let (Some(t), Some(fast)) = (f.timing.as_mut(), faster.timing) {
        let modify = rates::times(&fast.log, rates::ECS_BUCKETS[1].actions);
        t.faster = Some((
            rates::peak(&modify).0,
            rates::against(&modify, &rates::ECS_BUCKETS[1]).1,
        ));
    }
    f
}

async fn model_at(latency: Latency) -> Figures {
    let hosts: usize = std::env::var("BENCH_MODEL_HOSTS")
        .ok()
        .map_or(5000, |n| n.parse().expect("BENCH_MODEL_HOSTS"));
    crate::calls::progress(&format!(
        "rolling update model: {hosts} hosts on the fakes, ECS calls of {:.0} ms",
        latency.ecs_s * 1e3
    ));
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
    let (tally, echo) = (Tally::timed(latency), Tally::timed(latency));
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
    let mut timing = settle(&store, &cluster, &fake, &echo, &second.id).await;
    timing.latency = latency;
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
        timing: Some(timing),
    }
}
