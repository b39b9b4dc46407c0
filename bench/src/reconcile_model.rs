//! The reconcile fan-out at fleet scale, modelled on the in-process fakes (one per cluster) with
//! every port call counted as the adapters would make it (`counted.rs`): the scheduled run puts
//! one message per cluster on the queue, and each message is one invocation of
//! `reconcile_queue::handle_trigger`, as the queue delivers it. (a) one cluster of 5,000 hosts
//! with 5 environments, converged and with drift; (b) five clusters of 1,000 hosts, one deleted
//! and one whose calls are denied, at `ReconcileConcurrency` at once. On a stated time model
//! (`rates::replay`), each invocation's duration and the period's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use integration_tests::shared::domain::{
    Host, HostState, HostStatus, Slot, SlotKey, TaskObservation,
};
use integration_tests::shared::executor::system_now_ms;
use integration_tests::shared::fakes::{FakeCluster, FakeStore};
use integration_tests::shared::http::ApiRequest;
use integration_tests::shared::planner::CLAIM_LEASE_MS;
use integration_tests::shared::ports::{
    Cluster, ReconcileMessage, ReconcileQueue, ResourceStatus, StartOutcome, StartRequest, Store,
    TaskDefinitionInfo,
};
use integration_tests::shared::services::reconcile_queue::{self, Trigger};
use integration_tests::shared::services::views::EnvironmentView;
use integration_tests::shared::services::{
    deployments_api, environments_api, rolling, task_events,
};
use integration_tests::shared::{sim, Error, Result};
use serde_json::json;

use crate::counted::{Counted, Latency, Tally};
use crate::rates;
use crate::rollout::LATENCY;

const ACCOUNT: &str = "arn:aws:ecs:us-east-1:123456789012";
/// The reconciler's timeout and the schedule's period (infra/template.yaml), seconds.
const TIMEOUT_S: f64 = 300.0;
const PERIOD_S: f64 = 300.0;
/// `ReconcileConcurrency`'s default: invocations at once.
const CONCURRENCY: usize = 5;
/// The template's `FunctionMemorySize` default, and the memory at which Lambda gives a function
/// one full vCPU (Lambda allocates CPU in proportion to memory).
const MEMORY_MB: f64 = 128.0;
const FULL_VCPU_MB: f64 = 1769.0;
/// Tasks gone without an event, a fraction of each environment's.
const DRIFT: f64 = 0.01;

fn cluster_arn(name: &str) -> String {
    format!("{ACCOUNT}:cluster/{name}")
}

/// ECS for several clusters: each cluster ARN routed to a fake of its own; a deleted cluster is
/// unknown to DescribeClusters and lists nothing; every call on a denied one is refused
/// (`AccessDeniedException`, as IAM answers a call the role may not make).
#[derive(Default)]
pub struct Clusters {
    live: BTreeMap<String, FakeCluster>,
    deleted: Mutex<BTreeSet<String>>,
    denied: Mutex<BTreeSet<String>>,
    /// What a deleted cluster lists: nothing.
    nothing: FakeCluster,
}

impl Clusters {
    /// A cluster of `hosts` ACTIVE hosts; its ARN.
    fn add(&mut self, name: &str, hosts: usize) -> String {
        let arn = cluster_arn(name);
        let fake = FakeCluster::default();
        for i in 0..hosts {
            fake.set_host(Host::from_state(HostState {
                container_instance_arn: format!("{ACCOUNT}:container-instance/{name}/h{i}"),
                status: HostStatus::Active,
                agent_connected: true,
                version: 1,
                other_tasks: None,
            }));
        }
        self.live.insert(arn.clone(), fake);
        arn
    }
    fn fake(&self, arn: &str) -> &FakeCluster {
        &self.live[arn]
    }
    fn delete(&self, arn: &str) {
        self.deleted.lock().unwrap().insert(arn.to_owned());
    }
    fn deny(&self, arn: &str) {
        self.denied.lock().unwrap().insert(arn.to_owned());
    }
    fn route(&self, arn: &str, action: &str) -> Result<&FakeCluster> {
        if self.denied.lock().unwrap().contains(arn) {
            return Err(Error::Aws {
                service: "ECS".into(),
                code: "AccessDeniedException".into(),
                message: format!(
                    "AccessDeniedException: User: {}:assumed-role/reconciler/reconciler is not \
                     authorized to perform: ecs:{action} on resource: {arn} because no \
                     identity-based policy allows the ecs:{action} action",
                    ACCOUNT.replace(":ecs:us-east-1:", ":sts::")
                ),
            });
        }
        if self.deleted.lock().unwrap().contains(arn) {
            return Ok(&self.nothing);
        }
        self.live.get(arn).ok_or_else(|| Error::Aws {
            service: "ECS".into(),
            code: "ClusterNotFoundException".into(),
            message: "ClusterNotFoundException: Cluster not found.".into(),
        })
    }
}

#[async_trait::async_trait]
impl Cluster for Clusters {
    async fn describe_cluster(&self, cluster: &str) -> Result<Option<ResourceStatus>> {
        let arn = if cluster.starts_with("arn:") {
            cluster.to_owned()
        } else {
            cluster_arn(cluster)
        };
        self.route(&arn, "DescribeClusters")?;
        let known = self.live.contains_key(&arn) && !self.deleted.lock().unwrap().contains(&arn);
        Ok(known.then_some(ResourceStatus { arn, active: true }))
    }
    async fn describe_task_definition(&self, td: &str) -> Result<Option<TaskDefinitionInfo>> {
        self.nothing.describe_task_definition(td).await
    }
    async fn active_hosts(&self, cluster_arn: &str) -> Result<Vec<Host>> {
        let c = self.route(cluster_arn, "ListContainerInstances")?;
        c.active_hosts(cluster_arn).await
    }
    async fn describe_hosts(&self, cluster_arn: &str, arns: &[String]) -> Result<Vec<Host>> {
        let c = self.route(cluster_arn, "DescribeContainerInstances")?;
        c.describe_hosts(cluster_arn, arns).await
    }
    async fn start_tasks(&self, request: StartRequest<'_>) -> Result<StartOutcome> {
        let c = self.route(request.cluster_arn, "StartTask")?;
        c.start_tasks(request).await
    }
    async fn stop_task(&self, cluster_arn: &str, task_arn: &str, reason: &str) -> Result<()> {
        let c = self.route(cluster_arn, "StopTask")?;
        c.stop_task(cluster_arn, task_arn, reason).await
    }
    async fn other_tasks_on(&self, cluster_arn: &str, host: &str) -> Result<usize> {
        let c = self.route(cluster_arn, "ListTasks")?;
        c.other_tasks_on(cluster_arn, host).await
    }
    async fn tasks_of_family(
        &self,
        cluster_arn: &str,
        family: &str,
    ) -> Result<Vec<TaskObservation>> {
        let c = self.route(cluster_arn, "ListTasks")?;
        c.tasks_of_family(cluster_arn, family).await
    }
    async fn describe_tasks(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<Vec<TaskObservation>> {
        let c = self.route(cluster_arn, "DescribeTasks")?;
        c.describe_tasks(cluster_arn, arns).await
    }
    async fn tasks_started_by(
        &self,
        cluster_arn: &str,
        started_by: &str,
        host: Option<&str>,
    ) -> Result<Vec<TaskObservation>> {
        let c = self.route(cluster_arn, "ListTasks")?;
        c.tasks_started_by(cluster_arn, started_by, host).await
    }
}

/// The reconcile queue: what the scheduled run enqueued (SendMessageBatch, 10 a call).
struct Queue<'a> {
    sent: Mutex<Vec<ReconcileMessage>>,
    tally: &'a Tally,
}

#[async_trait::async_trait]
impl ReconcileQueue for Queue<'_> {
    async fn enqueue(&self, messages: &[ReconcileMessage]) -> Result<()> {
        self.tally.add(
            "SQS.SendMessageBatch",
            messages
                .len()
                .div_ceil(integration_tests::shared::limits::SQS_SEND_BATCH),
        );
        self.sent.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }
}

/// An environment `name` of daemon family `name` on `cluster`, deployed and converged (every
/// task RUNNING and recorded).
async fn deployed(store: &FakeStore, clusters: &Clusters, name: &str, cluster: &str) {
    let req = ApiRequest {
        method: "POST".into(),
        segments: vec!["environments".into()],
        body: Some(
            json!({"name": name, "instanceGroup": {"cluster": cluster},
                "taskDefinition": format!("{name}:1")})
            .to_string()
            .into_bytes(),
        ),
        ..Default::default()
    };
    environments_api::route(store, clusters, &req)
        .await
        .unwrap();
    let d = deployments_api::create(store, name, None, None)
        .await
        .unwrap();
    let fake = clusters.fake(cluster);
    loop {
        rolling::step(store, clusters, name, &d.id, system_now_ms())
            .await
            .unwrap();
        let changes = fake.take_changes();
        if changes.is_empty() {
            break;
        }
        for t in &changes {
            let mut detail = sim::task_detail(t);
            detail.cluster_arn = cluster.to_owned();
            task_events::handle(store, clusters, &detail).await.unwrap();
        }
    }
    let env = store.get_environment(name).await.unwrap().unwrap();
    assert!(env.active_deployment_id.is_none(), "{name} deployed");
}

/// `DRIFT` of the environment's tasks stop and ECS's events of it are lost; how many.
fn drift(store: &FakeStore, fake: &FakeCluster, env: &str) -> usize {
    let mut slots: Vec<Slot> = store
        .slots()
        .into_iter()
        .filter(|s| s.environment == env)
        .collect();
    slots.sort_by(|a, b| {
        a.host
            .container_instance_arn
            .cmp(&b.host.container_instance_arn)
    });
    let every = (1.0 / DRIFT).round() as usize;
    let gone = slots
        .iter()
        .step_by(every)
        .filter_map(|s| s.task.task_arn())
        .filter(|arn| fake.kill(arn))
        .count();
    fake.take_changes(); // their events are lost
    gone
}

/// One invocation, counted on a tally of its own.
struct Run {
    cluster: String,
    calls: BTreeMap<String, usize>,
    /// Its calls, in the order made.
    ops: Vec<String>,
    /// Its own work on this machine (the fakes' included).
    took: Duration,
    outcome: std::result::Result<reconcile_queue::Outcome, Error>,
}

impl Run {
    fn total(&self, service: &str) -> usize {
        self.calls
            .iter()
            .filter(|(op, _)| op.starts_with(service))
            .map(|(_, n)| n)
            .sum()
    }
    fn modelled(&self, latency: &Latency) -> f64 {
        self.ops.iter().map(|op| latency.of(op)).sum()
    }
}

async fn invoke(
    store: &FakeStore,
    clusters: &Clusters,
    queue: Option<&dyn ReconcileQueue>,
    tally: &Tally,
    trigger: &Trigger,
    cluster: &str,
    now_ms: i64,
) -> Run {
    tally.reset();
    tally.begin(0.0);
    let counted_store = Counted {
        inner: store,
        tally,
    };
    let counted_cluster = Counted {
        inner: clusters,
        tally,
    };
    let t = Instant::now();
    let outcome =
        reconcile_queue::handle_trigger(&counted_store, &counted_cluster, queue, trigger, now_ms)
            .await;
    Run {
        cluster: cluster.to_owned(),
        calls: tally.snapshot(),
        ops: tally.log().into_iter().map(|(_, op)| op).collect(),
        took: t.elapsed(),
        outcome,
    }
}

fn scheduled(time: &str) -> Trigger {
    serde_json::from_value(json!({
        "source": "aws.events", "detail-type": "Scheduled Event", "time": time
    }))
    .expect("a scheduled event")
}

fn delivered(m: &ReconcileMessage) -> Trigger {
    serde_json::from_value(json!({"Records": [{
        "eventSource": "aws:sqs", "messageId": "m-1", "receiptHandle": "r",
        "body": serde_json::to_string(m).unwrap(),
        "attributes": {}, "messageAttributes": {}
    }]}))
    .expect("an SQS event")
}

/// Lambda's CPU at `MEMORY_MB` is this fraction of a vCPU.
fn cpu_share() -> f64 {
    MEMORY_MB / FULL_VCPU_MB
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Calls by operation side by side for several runs.
fn table(headers: &[&str], runs: &[&BTreeMap<String, usize>]) -> String {
    let ops: BTreeSet<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    let mut out = format!("| operation | {} |\n|---|", headers.join(" | "));
    out.push_str(&"---:|".repeat(headers.len()));
    out.push('\n');
    for op in ops {
        out.push_str(&format!("| {op} |"));
        for r in runs {
            out.push_str(&format!(" {} |", r.get(op).copied().unwrap_or(0)));
        }
        out.push('\n');
    }
    out.push_str("| **total** |");
    for r in runs {
        out.push_str(&format!(" **{}** |", r.values().sum::<usize>()));
    }
    out.push('\n');
    out
}

fn summary(run: &Run) -> String {
    match &run.outcome {
        Ok(o) => {
            let r = &o.reconciled;
            let mut s = format!(
                "{} environment(s) reconciled, {} task(s) started, {} stopped, {} verified",
                r.environments, r.started, r.stopped, r.verified
            );
            for f in &r.failed {
                s.push_str(&format!(
                    "; **{}** failed ({}): {}",
                    f.environment,
                    if f.lasting {
                        "lasting: recorded, not retried"
                    } else {
                        "may pass: the message is retried"
                    },
                    f.error.chars().take(90).collect::<String>()
                ));
            }
            s
        }
        Err(e) => format!("**failed**: {e}"),
    }
}

const CLASSES: [(&str, &[&str]); 4] = [
    (
        "cluster reads (List + DescribeContainerInstances)",
        &["ListContainerInstances", "DescribeContainerInstances"],
    ),
    (
        "task reads (ListTasks + DescribeTasks)",
        &["ListTasks", "DescribeTasks"],
    ),
    ("StartTask + StopTask", &["StartTask", "StopTask"]),
    ("DescribeClusters", &["DescribeClusters"]),
];

pub async fn run() -> String {
    let lat = LATENCY;
    let mut out = format!(
        "### Modelled: the reconcile fan-out at fleet scale\n\n\
         `bench reconcile-model` (`bench/src/reconcile_model.rs`): the in-process fakes, one \
         `FakeCluster` per cluster behind a router that answers DescribeClusters for the \
         clusters it knows, nothing for a deleted one and `AccessDeniedException` for every \
         call on a denied one; every port call counted as the adapters would make it \
         (`bench/src/counted.rs`: ECS Lists and Describes by 100, StartTask by 10, slot pages \
         of ~1,000). Each invocation is `reconcile_queue::handle_trigger` as Lambda would call \
         it: the scheduled event (the fan-out), then each message the fan-out enqueued, one \
         invocation per message. Each environment is a daemon of its own task definition family; \
         \"drift\" is {:.0} % of each environment's tasks stopped with their events lost, the \
         runs after them dated a claim lease ({} s) later so that the reconciler takes them for \
         lost (it leaves younger records to their events).\n\n\
         **Time model** (assumptions, not measurements): an invocation makes its calls one \
         after another (the adapters make none at once); an ECS call takes {:.0} ms, a DynamoDB \
         call {:.0} ms, an SQS call {:.0} ms; `ReconcileConcurrency` ({CONCURRENCY}) \
         invocations at once, the queue handing a message to the next free one at once. \
         \"Modelled\" is the sum of an invocation's call latencies. The functions' own work is \
         not in it: it is measured here on the fakes (their work included) and, since Lambda \
         gives a {MEMORY_MB:.0} MB function (the template's default) {:.1} % of a vCPU (CPU in \
         proportion to memory, one vCPU at {FULL_VCPU_MB:.0} MB), shown also scaled by {:.1} as \
         a pessimistic bound (this machine's core taken as one vCPU). ECS's buckets as in \
         [benchmarks.md](benchmarks.md#rolling-updates-at-fleet-scale) (ECS Developer Guide, \
         \"Request throttling for the Amazon ECS API\"); \"paced\" replays the invocations with \
         each call that finds its bucket empty waiting for the next token.\n\n",
        DRIFT * 100.0,
        CLAIM_LEASE_MS / 1000,
        lat.ecs_s * 1e3,
        lat.dynamodb_s * 1e3,
        lat.sqs_s * 1e3,
        cpu_share() * 100.0,
        1.0 / cpu_share(),
    );
    out.push_str(&one_big_cluster(&lat).await);
    out.push_str(&many_clusters(&lat).await);
    out
}

/// (a) One cluster of 5,000 hosts with 5 environments.
async fn one_big_cluster(lat: &Latency) -> String {
    let hosts: usize = std::env::var("BENCH_MODEL_HOSTS")
        .ok()
        .map_or(5000, |n| n.parse().expect("BENCH_MODEL_HOSTS"));
    let envs = 5;
    crate::calls::progress(&format!(
        "reconcile model: one cluster of {hosts} hosts, {envs} environments"
    ));
    let store = FakeStore::default();
    let mut clusters = Clusters::default();
    let arn = clusters.add("big", hosts);
    let names: Vec<String> = (0..envs).map(|i| format!("daemon-{i}")).collect();
    for name in &names {
        deployed(&store, &clusters, name, &arn).await;
    }
    let tally = Tally::timed(*lat);
    let queue = Queue {
        sent: Mutex::default(),
        tally: &tally,
    };
    let now = system_now_ms();
    let fan = invoke(
        &store,
        &clusters,
        Some(&queue),
        &tally,
        &scheduled("2026-12-01T19:00:00Z"),
        "(all)",
        now,
    )
    .await;
    let sent = queue.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one message: one cluster");
    let message = delivered(&sent[0]);
    let converged = invoke(&store, &clusters, None, &tally, &message, &arn, now).await;
    let gone: usize = names
        .iter()
        .map(|e| drift(&store, clusters.fake(&arn), e))
        .sum();
    let later = now + CLAIM_LEASE_MS + 60_000;
    let drifted = invoke(&store, &clusters, None, &tally, &message, &arn, later).await;
    // ECS's events of the restarted tasks arrive.
    for t in clusters.fake(&arn).take_changes() {
        let mut detail = sim::task_detail(&t);
        detail.cluster_arn = arn.clone();
        task_events::handle(&store, &clusters, &detail)
            .await
            .unwrap();
    }
    let after = invoke(&store, &clusters, None, &tally, &message, &arn, later + 1).await;
    let fake = clusters.fake(&arn);
    assert_eq!(
        fake.live_tasks().len(),
        hosts * envs,
        "every host runs each daemon"
    );
    for name in &names {
        let env = store.get_environment(name).await.unwrap().unwrap();
        assert!(env.reconcile_failure.is_none(), "{name} reconciled");
    }
    let mut slots_ok = 0;
    for name in &names {
        for i in 0..hosts {
            let key = SlotKey {
                environment: name.clone(),
                container_instance_arn: format!("{ACCOUNT}:container-instance/big/h{i}"),
            };
            slots_ok += usize::from(store.get_slot(&key).await.unwrap().is_some());
        }
    }
    assert_eq!(slots_ok, hosts * envs);

    // The floor of a converged run: the hosts once (List + Describe by 100), each environment's
    // tasks (ListTasks + DescribeTasks by 100) and slots (a Query page per ~1,000), the
    // environments (one Query) and DescribeClusters.
    let per100 = hosts.div_ceil(100);
    let floor = 2 * per100 + envs * (2 * per100 + hosts.div_ceil(1000)) + 2;
    let total: usize = converged.calls.values().sum();
    let row = |what: &str, r: &Run| {
        let t = r.modelled(lat);
        format!(
            "| {what} | {} | {} | {} | {t:.1} s | {} | {:.1} s | {:.1} s |\n",
            r.total("ECS."),
            r.total("DynamoDB."),
            r.total("SQS."),
            secs(r.took),
            r.took.as_secs_f64() / cpu_share(),
            t + r.took.as_secs_f64() / cpu_share(),
        )
    };
    let mut s = format!(
        "#### One cluster of {hosts} hosts, {envs} environments\n\n\
         {envs} environments (`daemon-0` … `daemon-{}`) deployed on all {hosts} hosts of one \
         cluster ({} tasks, every one RUNNING and recorded). The scheduled run enqueues {} \
         message(s); the cluster's invocation reconciles all {envs} environments with one read \
         of the hosts.\n\n\
         | invocation | ECS calls | DynamoDB calls | SQS calls | modelled (calls) | work here | work at {MEMORY_MB:.0} MB (×{:.1}) | modelled + work at {MEMORY_MB:.0} MB |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        envs - 1,
        hosts * envs,
        sent.len(),
        1.0 / cpu_share(),
    );
    s.push_str(&row("scheduled run (fan-out)", &fan));
    s.push_str(&row("the cluster, converged", &converged));
    s.push_str(&row(
        &format!("the cluster, {gone} tasks gone (drift)"),
        &drifted,
    ));
    s.push_str(&row(
        "the cluster, the period after (the restarts' events delivered)",
        &after,
    ));
    s.push_str(&format!(
        "\nWhat they did: converged: {}. Drift: {}. The period after: {}.\n\n",
        summary(&converged),
        summary(&drifted),
        summary(&after),
    ));
    s.push_str(&table(
        &[
            "scheduled run",
            "converged",
            &format!("drift ({gone} tasks)"),
        ],
        &[&fan.calls, &converged.calls, &drifted.calls],
    ));
    let worst = drifted.modelled(lat) + drifted.took.as_secs_f64() / cpu_share();
    s.push_str(&format!(
        "\n- Floor of a converged run: {floor} calls (the hosts once: 2 × {per100}; per \
         environment its tasks, 2 × {per100}, and its slots, {} Query page(s); the environments' \
         Query and DescribeClusters); measured {total}: ratio {:.3} (the rest: each \
         environment's slots read again after its repair, so the next environment sees them as \
         they now are).\n\
         - The whole period: the fan-out ({:.2} s modelled) and then this cluster's one \
         invocation; at most {worst:.0} s (the drift run, with its work scaled to \
         {MEMORY_MB:.0} MB), against the {TIMEOUT_S:.0} s timeout and the {PERIOD_S:.0} s \
         period: {}.\n\n",
        hosts.div_ceil(1000),
        total as f64 / floor as f64,
        fan.modelled(lat),
        if fan.modelled(lat) + worst <= PERIOD_S && worst <= TIMEOUT_S {
            "fits"
        } else {
            "**does not fit**"
        },
    ));
    let (_, log) = rates::replay(std::slice::from_ref(&drifted.ops), 1, 0.0, lat, false);
    s.push_str(&format!(
        "ECS calls of the drift run on the model's clock ({:.1} s):\n\n{}\n",
        drifted.modelled(lat),
        rates::tables(&log, &CLASSES, drifted.modelled(lat)),
    ));
    // Five such clusters in one account, reconciled 5 at once: the read bucket sets the pace.
    let five: Vec<Vec<String>> = (0..CONCURRENCY).map(|_| drifted.ops.clone()).collect();
    let (free, _) = rates::replay(&five, CONCURRENCY, 0.0, lat, false);
    let (paced, _) = rates::replay(&five, CONCURRENCY, 0.0, lat, true);
    let end = |spans: &[(f64, f64)]| spans.iter().map(|s| s.1).fold(0.0, f64::max);
    let reads = rates::times(
        &five
            .iter()
            .flatten()
            .map(|op| (0.0, op.clone()))
            .collect::<Vec<_>>(),
        rates::ECS_BUCKETS[0].actions,
    )
    .len();
    let bucket = &rates::ECS_BUCKETS[0];
    s.push_str(&format!(
        "- {CONCURRENCY} such clusters in one account (the drift run's calls {CONCURRENCY} \
         times, {CONCURRENCY} at once): {reads} cluster resource reads, {:.0} a second while \
         they run unpaced, which ECS's read bucket ({} burst, {} a second) does not allow: paced \
         by it, the last invocation ends at {:.0} s instead of {:.0} s, inside the period. The \
         read bucket's refill is the account's ceiling for the reconciler and everything else \
         that reads clusters and tasks: {:.0} List/Describe calls a {PERIOD_S:.0} s period, \
         about {:.0} converged runs of 5,000 hosts × 5 environments (a run that the SDK's \
         retries do not get through fails as worth retrying: the queue retries its message \
         after the visibility timeout, 1,800 s, and the FIFO group holds that cluster's next \
         messages until then).\n\n",
        reads as f64 / end(&free),
        bucket.burst,
        bucket.refill,
        end(&paced),
        end(&free),
        bucket.refill * PERIOD_S,
        bucket.refill * PERIOD_S
            / rates::times(
                &converged
                    .ops
                    .iter()
                    .map(|op| (0.0, op.clone()))
                    .collect::<Vec<_>>(),
                bucket.actions,
            )
            .len() as f64,
    ));
    s
}

/// (b) Five clusters of 1,000 hosts, one environment each, a deleted cluster and a denied one.
async fn many_clusters(lat: &Latency) -> String {
    let (n, hosts) = (5, 1000);
    crate::calls::progress(&format!(
        "reconcile model: {n} clusters of {hosts} hosts, one deleted, one denied"
    ));
    let store = FakeStore::default();
    let mut clusters = Clusters::default();
    let mut arns = Vec::new();
    for i in 0..n {
        arns.push(clusters.add(&format!("fleet-{i}"), hosts));
    }
    let retired = clusters.add("retired", 100);
    let locked = clusters.add("locked", 100);
    for (i, arn) in arns.iter().enumerate() {
        deployed(&store, &clusters, &format!("agent-{i}"), arn).await;
    }
    deployed(&store, &clusters, "retired-agent", &retired).await;
    deployed(&store, &clusters, "locked-agent", &locked).await;
    // Later: one cluster is deleted, and the reconciler's role loses its rights on another.
    clusters.delete(&retired);
    clusters.deny(&locked);
    let mut gone = 0;
    for (i, arn) in arns.iter().enumerate() {
        gone += drift(&store, clusters.fake(arn), &format!("agent-{i}"));
    }

    let tally = Tally::timed(*lat);
    let queue = Queue {
        sent: Mutex::default(),
        tally: &tally,
    };
    let now = system_now_ms() + CLAIM_LEASE_MS + 60_000;
    let fan = invoke(
        &store,
        &clusters,
        Some(&queue),
        &tally,
        &scheduled("2026-12-01T19:05:00Z"),
        "(all)",
        now,
    )
    .await;
    let sent = queue.sent.lock().unwrap().clone();
    let mut runs = Vec::new();
    for m in &sent {
        runs.push(
            invoke(
                &store,
                &clusters,
                None,
                &tally,
                &delivered(m),
                &m.cluster_arn,
                now,
            )
            .await,
        );
    }
    // Every environment on a live cluster repaired; the two others say why not.
    for (i, arn) in arns.iter().enumerate() {
        assert_eq!(clusters.fake(arn).live_tasks().len(), hosts, "agent-{i}");
    }
    let mut recorded = String::new();
    for name in ["retired-agent", "locked-agent"] {
        let env = store.get_environment(name).await.unwrap().unwrap();
        let f = env
            .reconcile_failure
            .clone()
            .unwrap_or_else(|| panic!("{name}: failure recorded"));
        recorded.push_str(&format!(
            "- `{name}`: `reconcileFailure` = {{code `{}`, reason \"{}\", since {}}}, \
             health (as the API shows it) {:?}.\n",
            f.code,
            f.reason.chars().take(160).collect::<String>(),
            f.since,
            EnvironmentView::from(&env).health,
        ));
    }
    for i in 0..n {
        let env = store
            .get_environment(&format!("agent-{i}"))
            .await
            .unwrap()
            .unwrap();
        assert!(env.reconcile_failure.is_none(), "agent-{i} reconciled");
    }

    let ops: Vec<Vec<String>> = runs.iter().map(|r| r.ops.clone()).collect();
    let start = fan.modelled(lat);
    let (spans, log) = rates::replay(&ops, CONCURRENCY, start, lat, false);
    let (paced, _) = rates::replay(&ops, CONCURRENCY, start, lat, true);
    let end = spans.iter().map(|s| s.1).fold(start, f64::max);
    let paced_end = paced.iter().map(|s| s.1).fold(start, f64::max);
    let work_max = runs
        .iter()
        .map(|r| r.took.as_secs_f64() / cpu_share())
        .fold(0.0, f64::max);
    let mut s = format!(
        "#### {n} clusters of {hosts} hosts, a deleted cluster and a denied one\n\n\
         {n} clusters of {hosts} hosts with one environment each (`agent-0` … `agent-{}`), \
         {gone} of their tasks gone without events; `retired-agent` on a cluster of 100 hosts \
         deleted since (DescribeClusters no longer knows it), `locked-agent` on one where the \
         reconciler's role lost its rights since (every call `AccessDeniedException`). The \
         scheduled run enqueues {} messages, one per cluster; each is its own invocation, \
         {CONCURRENCY} at once, in the order enqueued.\n\n\
         | invocation | ECS calls | DynamoDB calls | modelled (calls) | work here | starts – ends (modelled) | paced by ECS's buckets | what it did |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n\
         | scheduled run (fan-out) | {} | {} + {} SQS | {:.2} s | {} | 0 – {start:.2} s | 0 – {start:.2} s | {} message(s) |\n",
        n - 1,
        sent.len(),
        fan.total("ECS."),
        fan.total("DynamoDB."),
        fan.total("SQS."),
        start,
        secs(fan.took),
        sent.len(),
    );
    for ((r, span), p) in runs.iter().zip(&spans).zip(&paced) {
        s.push_str(&format!(
            "| `{}` | {} | {} | {:.1} s | {} | {:.1} – {:.1} s | {:.1} – {:.1} s | {} |\n",
            r.cluster.rsplit('/').next().unwrap_or(&r.cluster),
            r.total("ECS."),
            r.total("DynamoDB."),
            r.modelled(lat),
            secs(r.took),
            span.0,
            span.1,
            p.0,
            p.1,
            summary(r),
        ));
    }
    let longest = runs.iter().map(|r| r.modelled(lat)).fold(0.0, f64::max);
    s.push_str(&format!(
        "\nRecorded on the failing environments (every other one was repaired in the same \
         period; neither message fails, so neither is retried or dead-lettered: the next period \
         tries again):\n\n{recorded}\n\
         - The period: every cluster reconciled {end:.1} s after the schedule fired ({:.1} s \
         paced by ECS's buckets), within the {PERIOD_S:.0} s period; the longest invocation \
         {longest:.1} s of calls plus at most {work_max:.1} s of work scaled to \
         {MEMORY_MB:.0} MB, against its {TIMEOUT_S:.0} s timeout: {}.\n\n\
         ECS calls of the {} invocations on the model's clock, {CONCURRENCY} at once (not \
         paced):\n\n{}\n",
        paced_end,
        if paced_end + work_max <= PERIOD_S && longest + work_max <= TIMEOUT_S {
            "fits"
        } else {
            "**does not fit**"
        },
        runs.len(),
        rates::tables(&log, &CLASSES, end - start),
    ));
    s
}
