//! Chaos at volume against moto (issue 10), with the real adapters and the `Faults` interceptor:
//! the run of `shared::chaos` (same environments, same chaos, same `Watch`, same `Figures`) on a
//! `World`. The harness plays ECS and the table's stream from moto's state: after a step that may
//! have changed anything (the product called StartTask or StopTask, or the chaos acted) it lists
//! the tasks and emits what changed — each task placed or stopped re-reporting its host at the
//! version moto now gives it (scripts/moto_server.py numbers a host's changes) — and after a step
//! in which the product wrote to the table, a record of each deployment whose item changed. Used
//! by tests/tests/chaos.rs and `bench chaos`.
//!
//! Where moto differs (and the harness stands in):
//! - its agents never disconnect: the harness switches one off and on (scripts/moto_server.py);
//! - a host deregistered with tasks on it makes StopTask fail there: only a drained host whose
//!   tasks are gone is deregistered;
//! - time is real: the choices are seeded, the interleavings are not reproducible.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::DesiredStatus;
use serde_json::{json, Value};
use shared::chaos::{
    environment_bodies, fail, revision_body, selects, Cause, Crowd, End, Figures, Repairs, Rng,
    Watch, ENVIRONMENTS, LOGS, METRICS, ROLES, STOPPED_BY_HAND,
};
use shared::domain::task::{environment_of_group, task_group};
use shared::domain::{DeploymentStatus, SlotKey};
use shared::executor::system_now_ms;
use shared::ports::Store;
use shared::services::{deployer, instance_events, reconciler, task_events};
use shared::sim::CRASHED;

use crate::{stream_event, World};

/// A run's size and faults.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub seed: u64,
    pub hosts: usize,
    /// Deliveries to make before the faults stop.
    pub events: usize,
    /// Per mille of the product's calls throttled, answered 5xx, delayed; the longest delay.
    pub throttle: u64,
    pub server_error: u64,
    pub latency: u64,
    pub latency_max_ms: u64,
    /// The wall-clock bound of a run of 1,000 events (scaled with `events`): past it the run
    /// fails, naming its seed, where it stands and what it was doing, instead of hanging.
    pub time_limit: Duration,
}

impl Config {
    /// The moto size: at least 1,000 events, 20 % throttled, 5 % 5xx, latency.
    pub fn standard(seed: u64) -> Self {
        Self {
            seed,
            hosts: 24,
            events: 1_000,
            throttle: 200,
            server_error: 50,
            latency: 200,
            latency_max_ms: 20,
            time_limit: Duration::from_secs(360),
        }
    }
}

#[derive(Debug, Clone)]
enum Ev {
    Instance(instance_events::InstanceDetail),
    Task(task_events::TaskDetail),
    /// A deployment's item changed: (environment, id); delivered as it is when delivered.
    Stream(String, String),
}

/// A host as the harness keeps it.
#[derive(Debug, Clone)]
struct HostModel {
    arn: String,
    role: &'static str,
    connected: bool,
    /// The version of its last event (moto's).
    version: i64,
    /// Deregistered: moto forgot it.
    gone: bool,
}

#[derive(Debug, Clone)]
struct TaskModel {
    host: String,
    started_by: Option<String>,
    version: i64,
}

const EVENT_ATTEMPTS: usize = 3;
const STREAM_ATTEMPTS: usize = 11;

struct Run<'w> {
    cfg: Config,
    w: &'w World,
    rng: Rng,
    step: usize,
    hosts: Vec<HostModel>,
    tasks: BTreeMap<String, TaskModel>,
    live: BTreeMap<(String, String), BTreeSet<String>>,
    queue: Vec<Ev>,
    /// The product's calls that change tasks (StartTask, StopTask) and the table (writes) as of
    /// the last look: no new ones, nothing to look at.
    seen_task_calls: usize,
    seen_table_writes: usize,
    /// The chaos changed tasks since the last look.
    tasks_touched: bool,
    /// The product's AWS calls counted before the world's counter was last reset.
    product_calls: usize,
    /// Each deployment's item as it was when last queued as a stream record: (environment, id)
    /// → item. Those the environments point at are looked at again (in progress, just finished).
    streamed: BTreeMap<(String, String), Item>,
    /// Task definition ARN per environment (revision 1), and the two later ones.
    task_definitions: BTreeMap<&'static str, String>,
    metrics_v2: String,
    crashing: String,
    milestone: u8,
    watch: Watch,
    fig: Figures,
    /// When the run must be over (`Config::time_limit`).
    deadline: Instant,
}

/// The whole run on `w`: chaos with faults, then the faults stop, the dead-lettered host events
/// are replayed and at most 2 reconciles run. Panics (naming the seed) when an invariant breaks,
/// and when the run outlives its time limit: every loop checks it, and a call to moto that
/// never returns is cut off a minute later.
pub async fn run(w: &World, cfg: Config) -> Figures {
    let limit = time_limit(&cfg);
    let whole = async {
        let wall = Instant::now();
        let mut r = Run::new(w, cfg).await;
        r.chaos().await;
        r.settle_after_faults().await;
        r.fig.wall = wall.elapsed();
        r.fig
    };
    match tokio::time::timeout(limit + Duration::from_secs(60), whole).await {
        Ok(fig) => fig,
        Err(_) => fail(
            cfg.seed,
            format!("no answer for a minute past the time limit ({limit:?})"),
        ),
    }
}

/// `Config::time_limit`, for the run's number of events.
fn time_limit(cfg: &Config) -> Duration {
    cfg.time_limit
        .mul_f64((cfg.events as f64 / 1_000.0).max(1.0))
}

impl<'w> Run<'w> {
    async fn new(w: &'w World, cfg: Config) -> Self {
        let mut task_definitions = BTreeMap::new();
        for env in ENVIRONMENTS {
            task_definitions.insert(env, register(w, &format!("{}-{env}", w.family)).await);
        }
        let metrics_v2 = register(w, &format!("{}-{METRICS}", w.family)).await;
        let crashing = register(w, &format!("{}-{LOGS}", w.family)).await;
        let mut run = Self {
            cfg,
            w,
            rng: Rng::new(cfg.seed),
            step: 0,
            hosts: Vec::new(),
            tasks: BTreeMap::new(),
            live: BTreeMap::new(),
            queue: Vec::new(),
            seen_task_calls: usize::MAX,
            seen_table_writes: usize::MAX,
            tasks_touched: true,
            product_calls: 0,
            streamed: BTreeMap::new(),
            task_definitions,
            metrics_v2,
            crashing,
            milestone: 0,
            watch: Watch::default(),
            deadline: Instant::now() + time_limit(&cfg),
            fig: Figures {
                seed: cfg.seed,
                environments: ENVIRONMENTS.len(),
                ..Figures::default()
            },
        };
        let tds = run.task_definitions.clone();
        for body in environment_bodies(&w.cluster_name, |e| tds[e].clone()) {
            run.operator("POST", "/v1/environments", Some(body)).await;
        }
        for env in ENVIRONMENTS {
            run.deploy(env).await;
        }
        run.stream_changes().await;
        run.deliver_all().await;
        run.fig.emitted = 0;
        w.faults.set_rates(
            cfg.throttle,
            cfg.server_error,
            cfg.latency,
            cfg.latency_max_ms,
        );
        run
    }

    fn seed(&self) -> u64 {
        self.cfg.seed
    }

    /// Fails the run, with where it stands, once it is past its time limit.
    fn in_time(&self, doing: &str) {
        if Instant::now() > self.deadline {
            fail(
                self.seed(),
                format!(
                    "out of time ({:?}) {doing}: step {}, {} delivered, milestone {}, {} events queued",
                    time_limit(&self.cfg),
                    self.step,
                    self.fig.delivered,
                    self.milestone,
                    self.queue.len()
                ),
            );
        }
    }

    /// An API call as an operator makes it: again until it is answered (a POST that finds what it
    /// made by a lost answer is done).
    async fn operator(&mut self, method: &str, path: &str, body: Option<Value>) {
        for _ in 0..100 {
            self.in_time(&format!("asking {method} {path}"));
            let (status, answer) = self.w.api(method, path, body.clone()).await;
            match status {
                200..=299 => return,
                400 if method == "POST" && answer["code"] == "Conflict" => return,
                500.. => {}
                _ => fail(self.seed(), format!("{method} {path}: {status} {answer}")),
            }
        }
        fail(self.seed(), format!("{method} {path} never got through"))
    }

    /// Deploys the latest revision, as an operator (false while another deployment runs).
    async fn deploy(&mut self, env: &str) -> bool {
        for _ in 0..20 {
            let Some(e) = self.w.view.get_environment(env).await.unwrap() else {
                return false;
            };
            if e.deployed
                .as_ref()
                .is_some_and(|d| d.revision == e.latest_revision)
            {
                return true;
            }
            if e.active_deployment_id.is_some() {
                return false;
            }
            let path = format!("/v1/environments/{env}/deployments");
            if self.w.api("POST", &path, None).await.0 == 200 {
                return true;
            }
        }
        false
    }

    /// A rolling update of `metrics` a fifth of the way in, a crashing revision of `logs` a third
    /// of the way in.
    async fn operate(&mut self) {
        let progress = self.fig.delivered * 100 / self.cfg.events.max(1);
        if self.milestone == 0 && progress >= 20 {
            let body = revision_body(&self.metrics_v2);
            self.operator("PUT", &format!("/v1/environments/{METRICS}"), Some(body))
                .await;
            self.milestone = 1;
        }
        if self.milestone == 1 && self.step.is_multiple_of(5) && self.deploy(METRICS).await {
            self.fig.chaos.insert("rolling updates", 1);
            self.milestone = 2;
        }
        if self.milestone == 2 && progress >= 35 {
            let body = revision_body(&self.crashing);
            self.operator("PUT", &format!("/v1/environments/{LOGS}"), Some(body))
                .await;
            self.milestone = 3;
        }
        if self.milestone == 3 && self.step.is_multiple_of(5) && self.deploy(LOGS).await {
            self.fig
                .chaos
                .insert("deployments of a crashing revision", 1);
            self.milestone = 4;
        }
    }

    async fn chaos(&mut self) {
        let limit = self.cfg.events * 3;
        while self.fig.delivered < self.cfg.events || self.milestone < 4 {
            self.in_time("making chaos");
            // Steps that deliver nothing (an empty queue, chaos that changes nothing) are bounded too.
            if self.fig.delivered >= limit || self.step >= limit * 4 {
                fail(
                    self.seed(),
                    format!(
                        "the operator never got through (milestone {}, {} delivered in {} steps)",
                        self.milestone, self.fig.delivered, self.step
                    ),
                );
            }
            self.step += 1;
            self.operate().await;
            let world_rate = match self.queue.len() {
                0..10 => 450,
                10..60 => 200,
                _ => 50,
            };
            let cause = if self.step.is_multiple_of(150) {
                self.reconcile_under_faults().await;
                Cause::Reconciler
            } else if self.rng.chance(world_rate) {
                self.world().await;
                Cause::Chaos
            } else {
                self.deliveries().await;
                Cause::Events
            };
            self.observe().await;
            self.stream_changes().await;
            self.check(cause).await;
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.fig.chaos.entry(what).or_default() += 1;
    }

    fn pick_host(&mut self, pred: impl Fn(&HostModel) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.hosts.len())
            .filter(|i| !self.hosts[*i].gone && pred(&self.hosts[*i]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[self.rng.below(candidates.len())])
    }

    /// One change of the world.
    async fn world(&mut self) {
        let w = self.w;
        if self.hosts.len() < self.cfg.hosts && self.rng.chance(450) {
            // Registering resets the world's call counter: keep its count, look again after.
            self.product_calls += w.calls.total();
            let arn = w.add_hosts(1).await.remove(0);
            self.seen_task_calls = usize::MAX;
            self.seen_table_writes = usize::MAX;
            let role = ROLES[self.rng.below(ROLES.len())];
            w.label(&arn, "role", Some(role)).await;
            self.hosts.push(HostModel {
                arn,
                role,
                connected: true,
                version: 0,
                gone: false,
            });
            self.fig.hosts = self.hosts.len();
            self.report_hosts(&[self.hosts.len() - 1]).await;
            return self.count("joins");
        }
        let roll = self.rng.below(1000);
        match roll {
            0..250 => {
                if let Some(i) = self.pick_host(|_| true) {
                    let role = ROLES[self.rng.below(ROLES.len())];
                    if role != self.hosts[i].role {
                        w.label(&self.hosts[i].arn.clone(), "role", Some(role))
                            .await;
                        self.hosts[i].role = role;
                        self.report_hosts(&[i]).await;
                        self.count("relabellings");
                    }
                }
            }
            250..450 => {
                let by_hand = roll >= 380;
                let live: Vec<String> = self.live.values().flatten().cloned().collect();
                if !live.is_empty() {
                    let t = live[self.rng.below(live.len())].clone();
                    let reason = if by_hand { STOPPED_BY_HAND } else { CRASHED };
                    stop(w, &t, reason).await;
                    self.tasks_touched = true;
                    self.count(if by_hand { "manual stops" } else { "crashes" });
                }
            }
            450..500 => {
                // A task started by hand in an environment's group (at most one beside the
                // daemon: see shared::chaos).
                if let Some(i) = self.pick_host(|_| true) {
                    let env = ENVIRONMENTS[self.rng.below(ENVIRONMENTS.len())];
                    let key = (task_group(env), self.hosts[i].arn.clone());
                    if self.live.get(&key).is_some_and(|t| t.len() > 1) {
                        return;
                    }
                    let deployed = w
                        .view
                        .get_environment(env)
                        .await
                        .unwrap()
                        .and_then(|e| e.deployed);
                    if let Some(d) = deployed {
                        let ok = w
                            .ecs
                            .start_task()
                            .cluster(&w.cluster_name)
                            .task_definition(&d.spec.task_definition)
                            .container_instances(&self.hosts[i].arn)
                            .group(task_group(env))
                            .started_by("an-operator")
                            .send()
                            .await
                            .is_ok_and(|o| !o.tasks().is_empty());
                        if ok {
                            self.tasks_touched = true;
                            self.count("tasks started by hand");
                        }
                    }
                }
            }
            500..600 => {
                if let Some(i) = self.pick_host(|h| h.connected) {
                    self.hosts[i].connected = false;
                    w.set_agent_connected(&self.hosts[i].arn, false).await;
                    self.report_hosts(&[i]).await;
                    self.count("agent disconnects");
                }
            }
            600..750 => {
                if let Some(i) = self.pick_host(|h| !h.connected) {
                    self.hosts[i].connected = true;
                    w.set_agent_connected(&self.hosts[i].arn, true).await;
                    self.report_hosts(&[i]).await;
                    self.count("agent reconnects");
                }
            }
            750..900 => {
                let drain = roll < 790;
                let want = if drain { "ACTIVE" } else { "DRAINING" };
                let statuses = self.statuses().await;
                if let Some(i) =
                    self.pick_host(|h| statuses.get(&h.arn).map(String::as_str) == Some(want))
                {
                    let to = if drain {
                        aws_sdk_ecs::types::ContainerInstanceStatus::Draining
                    } else {
                        aws_sdk_ecs::types::ContainerInstanceStatus::Active
                    };
                    w.ecs
                        .update_container_instances_state()
                        .cluster(&w.cluster_name)
                        .container_instances(&self.hosts[i].arn)
                        .status(to)
                        .send()
                        .await
                        .unwrap();
                    self.report_hosts(&[i]).await;
                    self.count(if drain { "drains" } else { "drains undone" });
                }
            }
            900..930 => {
                // Only a drained host none of our tasks still runs on (see the module's notes).
                let statuses = self.statuses().await;
                let busy: BTreeSet<String> = self.tasks.values().map(|t| t.host.clone()).collect();
                let cap = self.cfg.hosts / 10;
                let done = self.fig.chaos.get("deregistrations").copied().unwrap_or(0);
                let candidate = self.pick_host(|h| {
                    statuses.get(&h.arn).map(String::as_str) == Some("DRAINING")
                        && !busy.contains(h.arn.as_str())
                });
                if let (Some(i), true) = (candidate, done < cap.max(1)) {
                    w.ecs
                        .deregister_container_instance()
                        .cluster(&w.cluster_name)
                        .container_instance(&self.hosts[i].arn)
                        .force(true)
                        .send()
                        .await
                        .unwrap();
                    self.report_hosts(&[i]).await;
                    self.hosts[i].gone = true;
                    self.count("deregistrations");
                }
            }
            _ => {}
        }
    }

    /// moto's status of every registered host.
    async fn statuses(&self) -> BTreeMap<String, String> {
        let all = self.describe_all().await;
        all.into_iter().map(|(a, (s, _))| (a, s)).collect()
    }

    /// moto's status and agent of every registered host.
    async fn describe_all(&self) -> BTreeMap<String, (String, bool)> {
        let arns: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| !h.gone)
            .map(|h| h.arn.clone())
            .collect();
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(100) {
            let d = self
                .w
                .ecs
                .describe_container_instances()
                .cluster(&self.w.cluster_name)
                .set_container_instances(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            for ci in d.container_instances() {
                if let (Some(a), Some(s)) = (ci.container_instance_arn(), ci.status()) {
                    out.insert(a.to_owned(), (s.to_owned(), ci.agent_connected()));
                }
            }
        }
        out
    }

    /// Queues the instance event of these hosts as moto has them now, each at its next version.
    async fn report_hosts(&mut self, idx: &[usize]) {
        let arns: Vec<String> = idx.iter().map(|i| self.hosts[*i].arn.clone()).collect();
        let described = self
            .w
            .ecs
            .describe_container_instances()
            .cluster(&self.w.cluster_name)
            .set_container_instances(Some(arns))
            .send()
            .await
            .unwrap();
        for &i in idx {
            let ci = described
                .container_instances()
                .iter()
                .find(|c| c.container_instance_arn() == Some(self.hosts[i].arn.as_str()));
            // moto's version of the host (it goes up as it changes); a host it forgot: one more.
            let h = &mut self.hosts[i];
            h.version = ci.map_or(h.version + 1, |ci| ci.version().max(h.version));
            let h = &self.hosts[i];
            let detail = match ci {
                Some(ci) => json!({
                    "clusterArn": self.w.cluster_arn, "containerInstanceArn": h.arn,
                    "status": ci.status(), "agentConnected": ci.agent_connected(), "version": h.version,
                    "ec2InstanceId": ci.ec2_instance_id(),
                    "attributes": ci.attributes().iter().map(|a| json!({"name": a.name(), "value": a.value()})).collect::<Vec<_>>(),
                    "remainingResources": ci.remaining_resources().iter().map(|r| json!({
                        "name": r.name(), "type": r.r#type(), "integerValue": r.integer_value(),
                        "stringSetValue": r.string_set_value()})).collect::<Vec<_>>(),
                    "runningTasksCount": ci.running_tasks_count(), "pendingTasksCount": ci.pending_tasks_count(),
                }),
                // Deregistered: moto no longer knows it.
                None => json!({
                    "clusterArn": self.w.cluster_arn, "containerInstanceArn": h.arn,
                    "status": "INACTIVE", "agentConnected": false, "version": h.version,
                }),
            };
            self.emit(Ev::Instance(serde_json::from_value(detail).unwrap()));
        }
    }

    fn emit(&mut self, ev: Ev) {
        self.fig.emitted += 1;
        self.queue.push(ev);
    }

    /// ECS's events of what changed in moto since the last look: a task placed (RUNNING), a task
    /// stopped (STOPPED, with its reason), each re-reporting its host. A task of the crashing
    /// revision exits at once: STOPPED only.
    async fn observe(&mut self) {
        let w = self.w;
        let calls = w.calls.get("ECS.StartTask") + w.calls.get("ECS.StopTask");
        if calls == self.seen_task_calls && !self.tasks_touched {
            return;
        }
        self.seen_task_calls = calls;
        self.tasks_touched = false;
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = w
                .ecs
                .list_tasks()
                .cluster(&w.cluster_name)
                .desired_status(DesiredStatus::Running)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            arns.extend(page.task_arns().iter().cloned());
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let now: BTreeSet<String> = arns.into_iter().collect();
        let known: BTreeSet<String> = self.tasks.keys().cloned().collect();
        let changed: Vec<String> = now.symmetric_difference(&known).cloned().collect();
        if changed.is_empty() {
            return;
        }
        let mut described = Vec::new();
        for chunk in changed.chunks(100) {
            let d = w
                .ecs
                .describe_tasks()
                .cluster(&w.cluster_name)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            described.extend(d.tasks().iter().cloned());
        }
        let mut hosts_changed = BTreeSet::new();
        for t in described {
            let arn = t.task_arn().unwrap_or_default().to_owned();
            let group = t.group().unwrap_or_default().to_owned();
            if environment_of_group(&group).is_none() {
                continue;
            }
            let host = t.container_instance_arn().unwrap_or_default().to_owned();
            hosts_changed.insert(host.clone());
            let td = t.task_definition_arn().unwrap_or_default().to_owned();
            let mut model = self.tasks.remove(&arn).unwrap_or(TaskModel {
                host: host.clone(),
                started_by: t.started_by().map(str::to_owned),
                version: 0,
            });
            let key = (group.clone(), host.clone());
            let mut stopped_reason = t.stopped_reason().map(str::to_owned);
            let alive = now.contains(&arn) && td != self.crashing;
            if now.contains(&arn) && td == self.crashing {
                stop(w, &arn, CRASHED).await;
                stopped_reason = Some(CRASHED.to_owned());
            }
            model.version += 1;
            let status = if alive {
                t.last_status().unwrap_or("RUNNING")
            } else {
                "STOPPED"
            };
            let detail = json!({
                "taskArn": arn, "clusterArn": w.cluster_arn, "containerInstanceArn": host,
                "group": group, "startedBy": model.started_by, "taskDefinitionArn": td,
                "lastStatus": status, "desiredStatus": if alive { "RUNNING" } else { "STOPPED" },
                "stoppedReason": if alive { None } else { stopped_reason }, "version": model.version,
            });
            self.emit(Ev::Task(serde_json::from_value(detail).unwrap()));
            let set = self.live.entry(key.clone()).or_default();
            if alive {
                set.insert(arn.clone());
                self.tasks.insert(arn, model);
            } else {
                set.remove(&arn);
                if set.is_empty() {
                    self.live.remove(&key);
                }
            }
        }
        let idx: Vec<usize> = (0..self.hosts.len())
            .filter(|i| hosts_changed.contains(&self.hosts[*i].arn) && !self.hosts[*i].gone)
            .collect();
        if !idx.is_empty() {
            self.report_hosts(&idx).await;
        }
    }

    /// A stream record of each deployment (in progress, or just finished) whose item changed.
    async fn stream_changes(&mut self) {
        let writes: usize = ["TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem"]
            .iter()
            .map(|op| self.w.calls.get(&format!("DynamoDB.{op}")))
            .sum();
        if writes == self.seen_table_writes {
            return;
        }
        self.seen_table_writes = writes;
        // One BatchGetItem: the environments and the deployments they point at (a second one
        // for a deployment not looked at before).
        let mut keys: Vec<(String, String)> = ENVIRONMENTS
            .iter()
            .map(|e| (format!("ENV#{e}"), "ENV".to_owned()))
            .collect();
        keys.extend(
            self.streamed
                .keys()
                .map(|(e, id)| (format!("ENV#{e}"), format!("DEP#{id}"))),
        );
        let mut items = batch_get(self.w, &keys).await;
        let mut pointed = Vec::new();
        for env in ENVIRONMENTS {
            let Some(item) = items.get(&(format!("ENV#{env}"), "ENV".to_owned())) else {
                continue;
            };
            let e: shared::domain::Environment = serde_dynamo::from_item(item.clone()).unwrap();
            for id in [e.active_deployment_id, e.deployed.map(|d| d.deployment_id)]
                .into_iter()
                .flatten()
            {
                pointed.push((env.to_owned(), id));
            }
        }
        pointed.sort();
        pointed.dedup(); // the deployment in progress is usually the one deployed
        let missing: Vec<(String, String)> = pointed
            .iter()
            .map(|(e, id)| (format!("ENV#{e}"), format!("DEP#{id}")))
            .filter(|k| !items.contains_key(k))
            .collect();
        if !missing.is_empty() {
            items.extend(batch_get(self.w, &missing).await);
        }
        let mut watched = BTreeMap::new();
        for (env, id) in pointed {
            let Some(item) = items.remove(&(format!("ENV#{env}"), format!("DEP#{id}"))) else {
                continue;
            };
            let key = (env.clone(), id.clone());
            if self.streamed.get(&key) != Some(&item) {
                self.emit(Ev::Stream(env, id));
            }
            watched.insert(key, item);
        }
        self.streamed = watched;
    }

    /// Takes a queued event at a random place, leaving a copy a quarter of the time.
    fn take_event(&mut self) -> Option<Ev> {
        if self.queue.is_empty() {
            return None;
        }
        let n = self.queue.len();
        let i = if self.rng.chance(300) {
            0
        } else {
            self.rng.below(n)
        };
        let ev = if self.rng.chance(250) {
            self.fig.duplicated += 1;
            self.queue[i].clone()
        } else {
            self.queue.remove(i)
        };
        self.fig.reordered += usize::from(i > 0);
        self.fig.delivered += 1;
        Some(ev)
    }

    async fn deliveries(&mut self) {
        let k = if self.rng.chance(300) {
            2 + self.rng.below(5)
        } else {
            1
        };
        let batch: Vec<Ev> = (0..k).filter_map(|_| self.take_event()).collect();
        if batch.len() > 1 {
            self.fig.concurrent += batch.len();
        }
        self.note_surges(&batch).await;
        let before = self.w.faults.failures();
        let outcomes = futures::future::join_all(batch.iter().map(|ev| attempts(self.w, ev))).await;
        let clean_batch = self.w.faults.failures() == before;
        self.absorb(&batch, &outcomes, clean_batch);
    }

    /// Before `batch` is delivered: the surges recorded on the hosts of its STOPPED task events
    /// (a surge's new task that fails) are followed to their end (`Watch::surge_recorded`).
    async fn note_surges(&mut self, batch: &[Ev]) {
        for ev in batch {
            let Ev::Task(d) = ev else { continue };
            let (Some(host), Some(group)) = (&d.container_instance_arn, &d.group) else {
                continue;
            };
            if d.last_status != "STOPPED" {
                continue;
            }
            let env = environment_of_group(group).unwrap_or_default();
            if let Some(old) = self.slot(env, host).await.and_then(|s| s.surge) {
                self.watch.surge_recorded(env, host, &old.task_arn);
            }
        }
    }

    fn absorb(&mut self, batch: &[Ev], outcomes: &[Attempts], clean_batch: bool) {
        for (ev, o) in batch.iter().zip(outcomes) {
            self.fig.failed_invocations += o.failed;
            self.fig.dead_lettered += usize::from(!o.ok);
            let clean = o.ok
                && (if batch.len() > 1 {
                    clean_batch
                } else {
                    o.clean
                });
            if let (true, Ev::Task(d)) = (clean, ev) {
                self.watch.heard(&d.task_arn);
            }
        }
    }

    async fn reconcile_under_faults(&mut self) {
        self.fig.reconciles_during += 1;
        let k = if self.rng.chance(500) {
            2 + self.rng.below(5)
        } else {
            0
        };
        let batch: Vec<Ev> = (0..k).filter_map(|_| self.take_event()).collect();
        self.fig.concurrent += batch.len();
        self.note_surges(&batch).await;
        let before = self.w.faults.failures();
        let (summary, outcomes) = futures::future::join(
            reconciler::reconcile_all(&self.w.store, &self.w.cluster, system_now_ms()),
            futures::future::join_all(batch.iter().map(|ev| attempts(self.w, ev))),
        )
        .await;
        let clean = self.w.faults.failures() == before;
        self.fig.reconciles_failed += usize::from(summary.is_err() || !clean);
        self.absorb(&batch, &outcomes, clean);
    }

    /// The continuous invariant (shared::chaos::Watch) over what the harness saw of moto.
    async fn check(&mut self, cause: Cause) {
        let mut crowds = Vec::new();
        for ((group, host), tasks) in self.live.iter().filter(|(_, t)| t.len() > 1) {
            let environment = environment_of_group(group).unwrap_or_default().to_owned();
            let key = SlotKey {
                environment: environment.clone(),
                container_instance_arn: host.clone(),
            };
            let slot = self.w.view.get_slot(&key).await.unwrap();
            crowds.push(Crowd {
                environment,
                host: host.clone(),
                live: tasks.iter().cloned().collect(),
                named: slot
                    .as_ref()
                    .and_then(|s| s.task.task_arn().map(str::to_owned)),
                has_slot: slot.is_some(),
                surged: slot.and_then(|s| s.surge.map(|o| o.task_arn)),
            });
        }
        let live = &self.live;
        let alive = |env: &str, host: &str, task: &str| {
            live.get(&(task_group(env), host.to_owned()))
                .is_some_and(|t| t.contains(task))
        };
        if let Err(e) = self.watch.check(self.step, cause, &crowds, alive) {
            fail(self.seed(), e);
        }
        let mut views = Vec::new();
        for (environment, host) in self.watch.surges_to_follow() {
            let slot = self.slot(&environment, &host).await;
            views.push(Crowd {
                live: live
                    .get(&(task_group(&environment), host.clone()))
                    .map(|t| t.iter().cloned().collect())
                    .unwrap_or_default(),
                named: slot
                    .as_ref()
                    .and_then(|s| s.task.task_arn().map(str::to_owned)),
                has_slot: slot.is_some(),
                surged: slot.and_then(|s| s.surge.map(|o| o.task_arn)),
                environment,
                host,
            });
        }
        self.watch.follow(&views);
    }

    /// Every queued event, in random order, until none is left (faults off: each must succeed).
    async fn deliver_all(&mut self) {
        for _ in 0..self.cfg.events.max(1_000) * 5 {
            self.in_time("delivering what is left");
            self.observe().await;
            self.stream_changes().await;
            if self.queue.is_empty() {
                return;
            }
            self.step += 1;
            let i = self.rng.below(self.queue.len());
            let ev = self.queue.remove(i);
            self.fig.reordered += usize::from(i > 0);
            self.fig.delivered += 1;
            self.note_surges(std::slice::from_ref(&ev)).await;
            let o = attempts(self.w, &ev).await;
            if !o.ok {
                fail(self.seed(), format!("{ev:?} failed with the faults off"));
            }
            self.absorb(&[ev], &[o], true);
            self.check(Cause::Events).await;
        }
        fail(self.seed(), "events keep coming");
    }

    /// Faults off; the events in flight are delivered; then at most 2 reconciles with what they
    /// cause.
    async fn settle_after_faults(&mut self) {
        self.w.faults.set_rates(0, 0, 0, 0);
        self.fig.faults = injected(self.w);
        self.fig.faults.calls += self.product_calls;
        self.deliver_all().await;
        for _ in 0..2 {
            let at = system_now_ms() + 20 * 60_000;
            let summary = reconciler::reconcile_all(&self.w.store, &self.w.cluster, at)
                .await
                .unwrap_or_else(|e| {
                    fail(
                        self.seed(),
                        format!("a reconcile without faults failed: {e}"),
                    )
                });
            self.fig.final_reconciles.push(Repairs::from(&summary));
            self.deliver_all().await;
            if self.end_state().await.exact() {
                break;
            }
        }
        let end = self.end_state().await;
        self.fig.end = end.clone();
        self.fig.duplicates = self.watch.figures.clone();
        self.fig.surges = self.watch.surge.clone();
        self.fig.deployments = self.deployments().await;
        if !end.exact() {
            fail(
                self.seed(),
                format!(
                    "after {} reconciles the end state is not the desired one: {end:#?}",
                    self.fig.final_reconciles.len()
                ),
            );
        }
        self.check_deployments().await;
    }

    /// moto's live tasks against the desired set.
    async fn end_state(&self) -> End {
        let w = self.w;
        let mut end = End::default();
        let mut by_key: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for t in w.all_tasks().await {
            if t.status != "STOPPED" && environment_of_group(&t.group).is_some() {
                by_key
                    .entry((t.group, t.host))
                    .or_default()
                    .push((t.arn, t.task_definition));
            }
        }
        let hosts = self.describe_all().await;
        let mut deployed = BTreeMap::new();
        for env in ENVIRONMENTS {
            let e = w.view.get_environment(env).await.unwrap();
            deployed.insert(
                env,
                e.and_then(|e| e.deployed).map(|d| d.spec.task_definition),
            );
        }
        for (i, h) in self.hosts.iter().enumerate() {
            let (status, connected) = hosts
                .get(&h.arn)
                .map_or(("INACTIVE", false), |(s, c)| (s.as_str(), *c));
            let held = status == "ACTIVE" && !connected;
            for env in ENVIRONMENTS {
                let tasks = by_key
                    .remove(&(task_group(env), h.arn.clone()))
                    .unwrap_or_default();
                let desired = status == "ACTIVE" && connected && selects(env, Some(h.role));
                if tasks.len() > 1 {
                    end.duplicates += tasks.len() - 1;
                    end.problems.push(format!("{env} on host {i}: {tasks:?}"));
                }
                if desired {
                    end.desired += 1;
                    match tasks.first() {
                        None => {
                            end.missing += 1;
                            end.problems.push(format!(
                                "{env} missing on host {i}: {:?}",
                                self.slot(env, &h.arn).await
                            ));
                        }
                        Some((_, td)) if Some(td) != deployed[env].as_ref() => {
                            end.misplaced += 1;
                            end.problems.push(format!(
                                "{env} on host {i} runs {td}: {:?}",
                                self.slot(env, &h.arn).await
                            ));
                        }
                        Some(_) => end.running += 1,
                    }
                } else if held {
                    end.held += tasks.len().min(1);
                } else if !tasks.is_empty() {
                    end.misplaced += tasks.len();
                    end.problems.push(format!(
                        "{env} on host {i} ({status}, role {}) where it does not belong: {:?}",
                        h.role,
                        self.slot(env, &h.arn).await
                    ));
                }
            }
        }
        for ((group, host), tasks) in by_key {
            end.misplaced += tasks.len();
            end.problems
                .push(format!("{group} on an unknown host {host}"));
        }
        end
    }

    async fn slot(&self, env: &str, host: &str) -> Option<shared::domain::Slot> {
        let key = SlotKey {
            environment: env.to_owned(),
            container_instance_arn: host.to_owned(),
        };
        self.w.view.get_slot(&key).await.unwrap()
    }

    async fn deployments(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for env in ENVIRONMENTS {
            let page = self.w.view.list_deployments(env, 100, None).await.unwrap();
            let ds = page
                .items
                .iter()
                .rev()
                .map(|d| {
                    let td = d
                        .spec
                        .task_definition
                        .rsplit(':')
                        .next()
                        .unwrap_or_default();
                    let rollback = if d.rollback_of.is_some() {
                        " (rollback)"
                    } else {
                        ""
                    };
                    format!("{env}:{td} {:?}{rollback}", d.status).to_lowercase()
                })
                .collect();
            out.insert(env.to_owned(), ds);
        }
        out
    }

    /// Nothing in progress; `logs` rolled its crashing revision back to revision 1; `metrics`
    /// went to revision 2 (or, its breaker tripped by the chaos, was rolled back).
    async fn check_deployments(&self) {
        let w = self.w;
        for env in ENVIRONMENTS {
            let e = w.view.get_environment(env).await.unwrap().unwrap();
            if let Some(id) = e.active_deployment_id {
                fail(
                    self.seed(),
                    format!("{env}: deployment {id} never finished"),
                );
            }
        }
        let logs = w
            .view
            .list_deployments(LOGS, 100, None)
            .await
            .unwrap()
            .items;
        let crashed = logs
            .iter()
            .find(|d| d.spec.task_definition == self.crashing)
            .unwrap_or_else(|| fail(self.seed(), "no deployment of the crashing revision"));
        // Finished (failed too, when a host crashed before its RUNNING event got through): the
        // end state checked every host runs revision 1.
        let rolled_back = logs.iter().any(|d| {
            d.rollback_of.as_deref() == Some(crashed.id.as_str())
                && d.status.is_finished()
                && d.spec.task_definition == self.task_definitions[LOGS]
        });
        let metrics = w
            .view
            .list_deployments(METRICS, 100, None)
            .await
            .unwrap()
            .items;
        let v2 = metrics
            .iter()
            .find(|d| d.spec.task_definition == self.metrics_v2)
            .unwrap_or_else(|| fail(self.seed(), "no deployment of metrics revision 2"));
        let v2_ok = match v2.halted_reason {
            None => v2.status.is_finished(),
            Some(_) => metrics.iter().any(|d| {
                d.rollback_of.as_deref() == Some(v2.id.as_str()) && d.status.is_finished()
            }),
        };
        if crashed.status != DeploymentStatus::Failed
            || crashed.halted_reason.is_none()
            || !rolled_back
            || !v2_ok
        {
            fail(
                self.seed(),
                format!(
                    "the deployments did not end as they should: {:?}",
                    self.fig.deployments
                ),
            );
        }
    }
}

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Items of the world's table by (pk, sk), read consistently in one call (the harness's client:
/// neither counted nor faulted).
async fn batch_get(w: &World, keys: &[(String, String)]) -> BTreeMap<(String, String), Item> {
    use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(100) {
        let mut ask = KeysAndAttributes::builder().consistent_read(true);
        for (pk, sk) in chunk {
            ask = ask.keys(Item::from([
                ("pk".to_owned(), AttributeValue::S(pk.clone())),
                ("sk".to_owned(), AttributeValue::S(sk.clone())),
            ]));
        }
        let got = w
            .ddb
            .batch_get_item()
            .request_items(&w.table, ask.build().unwrap())
            .send()
            .await
            .unwrap();
        for item in got
            .responses
            .unwrap_or_default()
            .remove(&w.table)
            .unwrap_or_default()
        {
            let key = |k: &str| {
                item.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            out.insert((key("pk"), key("sk")), item);
        }
    }
    out
}

/// A revision of `family` (one small container); its ARN.
async fn register(w: &World, family: &str) -> String {
    w.register_sized_task_definition(family, 64).await
}

async fn stop(w: &World, task: &str, reason: &str) {
    let _ = w
        .ecs
        .stop_task()
        .cluster(&w.cluster_name)
        .task(task)
        .reason(reason)
        .send()
        .await;
}

/// The faults injected so far, as the fakes count them.
fn injected(w: &World) -> shared::faulty::Injected {
    let i = w.faults.injected();
    let get = |k: &str| i.get(k).copied().unwrap_or(0);
    shared::faulty::Injected {
        calls: w.calls.total(),
        throttled: get("throttled"),
        throttles_retried: 0,
        server_errors: get("5xx"),
        answers_lost: get("answer lost"),
        delayed: get("delayed"),
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Attempts {
    ok: bool,
    failed: usize,
    clean: bool,
}

/// One event delivered as its trigger would: tried, and retried on failure.
async fn attempts(w: &World, ev: &Ev) -> Attempts {
    let tries = match ev {
        Ev::Stream(..) => STREAM_ATTEMPTS,
        _ => EVENT_ATTEMPTS,
    };
    let mut out = Attempts::default();
    for _ in 0..tries {
        let before = w.faults.failures();
        let result = match ev {
            Ev::Instance(d) => instance_events::handle(&w.store, &w.cluster, d)
                .await
                .map(drop),
            Ev::Task(d) => task_events::handle(&w.store, &w.cluster, d).await.map(drop),
            Ev::Stream(env, id) => {
                let record = w
                    .stream_record(&format!("ENV#{env}"), &format!("DEP#{id}"), "MODIFY")
                    .await;
                deployer::handle(&w.store, &w.cluster, &stream_event(vec![record])).await
            }
        };
        match result {
            Ok(()) => {
                out.ok = true;
                out.clean = w.faults.failures() == before;
                return out;
            }
            Err(_) => out.failed += 1,
        }
    }
    out
}
