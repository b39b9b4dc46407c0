//! Chaos at volume (issue 10): a seeded, randomised run of the whole product over the simulated
//! cluster (`sim`) with faults on every AWS call (`faulty`): hosts join, drain, leave, lose and
//! regain their agent and are relabelled (placement selectors); tasks are stopped and started by
//! hand and crash; one environment rolls a new revision out, another a revision that crashes,
//! which the circuit breaker rolls back — both by surge (`maxSurge`, issue 11: a host's new task
//! starts beside the old one, which stops once the new one is healthy, and runs on alone if the
//! new one fails);
//! every event may come twice, out of order and concurrently with others; the reconciler runs on
//! its schedule, sometimes concurrently with deliveries. Then the faults stop, the events in
//! flight are delivered, and at most 2 reconciles (with the events they cause) must leave exactly
//! the desired set.
//!
//! Checked continuously (`Watch`): a second live task of an environment on a host is allowed only
//! until an event of it reaches task-events without a fault in the way — that delivery must stop
//! it (the launch that lost its race). The slot records at most two tasks, its own and the one its
//! surge keeps running: two live only under a surge, exactly those two. Checked at the end (`end_state`): on every host each
//! environment selects and that is eligible, exactly one live task, of the revision deployed;
//! none on any other host (an ACTIVE host whose agent is away keeps what it runs: at most one).
//!
//! The moto version (tests/tests/chaos.rs) uses the same `Watch` and `Figures`. A run here replays
//! from its seed (`CHAOS_SEED`): simulated time, faults drawn from the seed, one thread;
//! `CHAOS_TRACE=<environment>@<host index>` follows one slot through it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::domain::task::task_group;
use crate::domain::{DeploymentStatus, Host, HostStatus, LaunchSpec, SlotKey};
use crate::error::Error;
use crate::fakes::{FakeStore, FAKE_CLUSTER_ARN};
use crate::faulty::{splitmix, Faults, Faulty, Injected, Rates};
use crate::http::ApiRequest;
use crate::ports::{Cluster, StartRequest, Store};
use crate::services::{deployments_api, environments_api};
use crate::sim::{host_arn, pin_clock, Ev, Sim, CRASHED};

/// The three environments: `logs` everywhere (its revision 2 crashes: the breaker rolls it
/// back), `agent` on hosts labelled `role=agent`, `metrics` on `role` web or agent (rolled out to
/// revision 2).
pub const LOGS: &str = "logs";
pub const AGENT: &str = "agent";
pub const METRICS: &str = "metrics";
pub const ENVIRONMENTS: [&str; 3] = [LOGS, AGENT, METRICS];
pub const ROLES: [&str; 3] = ["web", "agent", "batch"];
/// The revision rolled out, and the one that crashes (rolled back to revision 1).
pub const METRICS_V2: &str = "metrics:2";
pub const LOGS_CRASHING: &str = "logs:2";
/// What an operator's StopTask says.
pub const STOPPED_BY_HAND: &str = "Task stopped by an operator";

/// Whether `environment` selects a host labelled `role` (the environments' constraints, read
/// independently of the product's query language).
pub fn selects(environment: &str, role: Option<&str>) -> bool {
    match environment {
        AGENT => role == Some("agent"),
        METRICS => matches!(role, Some("web" | "agent")),
        _ => true,
    }
}

/// The update strategy the environments are created with: stop, then start, a quarter of the
/// hosts at a time.
pub fn strategy() -> serde_json::Value {
    json!({"maxUnavailable": "25%", "failureThreshold": "20%", "autoRollback": true})
}

/// The update strategy of the revisions the chaos rolls out (issue 11): surge — a host's new
/// task starts beside the old one, which stops once the new one is healthy (and runs on alone if
/// the new one fails); a quarter of the hosts at a time, none of them without its daemon (a host
/// that cannot take both falls back to stop-then-start, one at a time).
pub fn surge_strategy() -> serde_json::Value {
    json!({"maxSurge": "25%", "maxUnavailable": 0, "failureThreshold": "20%", "autoRollback": true})
}

/// The `PUT` that writes a revision the chaos rolls out: `task_definition` under surge.
pub fn revision_body(task_definition: &str) -> serde_json::Value {
    json!({"taskDefinition": task_definition, "updateStrategy": surge_strategy()})
}

/// The environments as the API creates them.
pub fn environment_bodies(
    cluster: &str,
    task_definition: impl Fn(&str) -> String,
) -> Vec<serde_json::Value> {
    let strategy = strategy();
    vec![
        json!({"name": LOGS, "instanceGroup": {"cluster": cluster}, "taskDefinition": task_definition(LOGS),
               "updateStrategy": strategy}),
        json!({"name": AGENT, "instanceGroup": {"cluster": cluster}, "taskDefinition": task_definition(AGENT),
               "updateStrategy": strategy,
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:role == agent"}]}),
        json!({"name": METRICS, "instanceGroup": {"cluster": cluster}, "taskDefinition": task_definition(METRICS),
               "updateStrategy": strategy,
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:role in [web, agent]"}]}),
    ]
}

/// A seeded sequence of choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        splitmix(&mut self.0)
    }
    /// 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// True `per_mille` times in a thousand.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.next_u64() % 1000 < per_mille
    }
}

/// A seed: `CHAOS_SEED` if set (`random`: a fresh one), else `DEFAULT_SEED`.
pub fn seed_from_env() -> u64 {
    match std::env::var("CHAOS_SEED").ok().as_deref() {
        Some("random") => ulid::Ulid::new().random() as u64,
        Some(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("CHAOS_SEED={s}: a number, or random")),
        None => DEFAULT_SEED,
    }
}

/// The seed of a run that names none: `cargo test` and CI replay the same run every time (a
/// failure is the code's, not the draw's). `CHAOS_SEED=random` draws one (soaks, `make bench`).
pub const DEFAULT_SEED: u64 = 1;

/// What a continuous check sees of one environment on one host with more than one live task.
#[derive(Debug, Clone)]
pub struct Crowd {
    pub environment: String,
    pub host: String,
    pub live: Vec<String>,
    /// The task its slot records (`None`: none, or a launch not yet seen).
    pub named: Option<String>,
    /// The task its slot's surge keeps running beside its replacement (`Slot::surge`; `None`: no
    /// surge in progress).
    pub surged: Option<String>,
    /// The environment has a slot for the host. Without one, task-events leaves extra tasks there
    /// to the reconciler (it has no record to decide by), so they are not held to their events.
    pub has_slot: bool,
}

impl Crowd {
    /// A task the slot records: its own, or the one its surge keeps running.
    fn records(&self, task: &str) -> bool {
        self.named.as_deref() == Some(task) || self.surged.as_deref() == Some(task)
    }
}

/// Who was acting when a duplicate stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Events were being delivered.
    Events,
    /// The reconciler ran (maybe with deliveries alongside).
    Reconciler,
    /// The chaos itself (a crash, an operator, a host that left).
    Chaos,
}

#[derive(Debug, Clone)]
struct Duplicate {
    environment: String,
    host: String,
    since_step: usize,
    /// Seen as a surge's new task before its first event: beside the surge's old task, the slot
    /// still launching (named nothing), the only task it does not record. Counted in
    /// `SurgeFigures`, not as a duplicate; held to the same rule.
    surge_launch: bool,
}

/// The continuous invariant: every duplicate (a live task of an environment on a host beside
/// another, that the host's slot does not record) is watched from the step it became visible; once
/// an event of it was delivered with no fault in the way while it was one, it must be gone. (An
/// event handled before there was a second task had nothing to stop: a task started by hand on a
/// host the product has no record of yet is left to the reconciler, by design.)
///
/// Surge (issue 11): the slot records at most two tasks — its own, and the old one its surge
/// keeps running (`Crowd::surged`) — so a host runs at most two tasks of an environment, two only
/// while its slot records a surge whose old and new task are exactly those two; any other task
/// is a duplicate under the rule above. A surge's new task seen before its first event (the slot
/// still launching) is one too: its own event must make it the slot's task, or stop it.
#[derive(Debug, Default)]
pub struct Watch {
    /// Duplicates an event of which reached task-events with no fault injected during the
    /// delivery.
    heard: BTreeSet<String>,
    open: BTreeMap<String, Duplicate>,
    /// The surges seen with both tasks live: (environment, host, old task).
    surges: BTreeSet<(String, String, String)>,
    /// Those not seen ended yet: (environment, host) → old task.
    following: BTreeMap<(String, String), String>,
    pub figures: DuplicateFigures,
    pub surge: SurgeFigures,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DuplicateFigures {
    /// Duplicates seen (second live tasks of an environment on a host).
    pub seen: usize,
    pub stopped_by_events: usize,
    pub stopped_by_reconciler: usize,
    /// Gone by the chaos (a crash, an operator's stop, the host left) or no longer beside another.
    pub resolved_otherwise: usize,
    /// Most duplicates alive at once, and the most steps one lived.
    pub most_at_once: usize,
    pub longest_steps: usize,
}

/// What the watch saw of surge replacements (issue 11).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SurgeFigures {
    /// Surges seen with both tasks live on their host (each old task once).
    pub seen: usize,
    /// Most hosts (environment × host) running two tasks under a surge at once.
    pub most_at_once: usize,
    /// Checks that found an environment running two tasks on a host under a surge.
    pub checks_with_two: usize,
    /// Surge launches seen before their first event was handled (held to the duplicates' rule).
    pub launches_before_their_event: usize,
    /// Surges seen by environment.
    pub by_environment: BTreeMap<String, usize>,
    /// Surges seen ended: the new task took over (the old one stopped), or the new one failed
    /// and the slot went back to the old one — `abandoned_old_running` of them with the old task
    /// live when seen (the others: the chaos had stopped it too).
    pub finished: usize,
    pub abandoned: usize,
    pub abandoned_old_running: usize,
}

impl Watch {
    /// An event of `task` was delivered and handled with no fault injected meanwhile.
    pub fn heard(&mut self, task: &str) {
        if self.open.contains_key(task) {
            self.heard.insert(task.to_owned());
        }
    }

    /// After a step: closes the duplicates that are gone, opens the new ones, and fails when one
    /// survived a clean delivery of its own event, or when a slot's surge record names its own
    /// task as the old one.
    pub fn check(
        &mut self,
        step: usize,
        cause: Cause,
        crowds: &[Crowd],
        alive: impl Fn(&str, &str, &str) -> bool,
    ) -> Result<(), String> {
        for c in crowds {
            if c.surged.is_some() && c.surged == c.named {
                return Err(format!(
                    "step {step}: {} on {}: the slot records {:?} both as its task and as the one \
                     its surge replaces; live there: {:?}",
                    c.environment, c.host, c.named, c.live
                ));
            }
        }
        // Events handled while the host had no slot had no record to decide by: they do not count
        // once a slot appears.
        for c in crowds.iter().filter(|c| !c.has_slot) {
            for t in &c.live {
                self.heard.remove(t);
            }
        }
        let unnamed: BTreeMap<&str, &Crowd> = crowds
            .iter()
            .flat_map(|c| {
                c.live
                    .iter()
                    .filter(|t| !c.records(t))
                    .map(move |t| (t.as_str(), c))
            })
            .collect();
        let closed: Vec<String> = self
            .open
            .keys()
            .filter(|t| !unnamed.contains_key(t.as_str()))
            .cloned()
            .collect();
        for t in closed {
            let d = self.open.remove(&t).expect("listed above");
            self.heard.remove(&t);
            if d.surge_launch {
                continue;
            }
            let f = &mut self.figures;
            f.longest_steps = f.longest_steps.max(step - d.since_step);
            match (alive(&d.environment, &d.host, &t), cause) {
                (false, Cause::Events) => f.stopped_by_events += 1,
                (false, Cause::Reconciler) => f.stopped_by_reconciler += 1,
                _ => f.resolved_otherwise += 1,
            }
        }
        for (t, c) in unnamed {
            if !self.open.contains_key(t) {
                let surge_launch = c.named.is_none()
                    && c.surged.as_ref().is_some_and(|o| c.live.contains(o))
                    && c.live.iter().filter(|t| !c.records(t)).count() == 1;
                if surge_launch {
                    self.surge.launches_before_their_event += 1;
                } else {
                    self.figures.seen += 1;
                }
                self.open.insert(
                    t.to_owned(),
                    Duplicate {
                        environment: c.environment.clone(),
                        host: c.host.clone(),
                        since_step: step,
                        surge_launch,
                    },
                );
            }
            if self.heard.contains(t) && c.has_slot {
                let d = &self.open[t];
                let what = if d.surge_launch {
                    "surge launch"
                } else {
                    "duplicate"
                };
                return Err(format!(
                    "step {step}: {what} {t} of {} on {} (visible since step {}) is still live and \
                     unrecorded after an event of it was delivered without a fault; live there: \
                     {:?}, the slot records {:?} (surge replacing {:?})",
                    d.environment, d.host, d.since_step, c.live, c.named, c.surged
                ));
            }
        }
        let duplicates = self.open.values().filter(|d| !d.surge_launch).count();
        self.figures.most_at_once = self.figures.most_at_once.max(duplicates);
        // Hosts with two tasks under a surge: its old task live beside another.
        let surging: Vec<&Crowd> = crowds
            .iter()
            .filter(|c| c.surged.as_ref().is_some_and(|o| c.live.contains(o)))
            .collect();
        for c in &surging {
            let old = c.surged.clone().expect("filtered");
            let key = (c.environment.clone(), c.host.clone());
            if self
                .surges
                .insert((key.0.clone(), key.1.clone(), old.clone()))
            {
                *self
                    .surge
                    .by_environment
                    .entry(c.environment.clone())
                    .or_default() += 1;
            }
            self.following.insert(key, old);
        }
        let s = &mut self.surge;
        s.seen = self.surges.len();
        s.most_at_once = s.most_at_once.max(surging.len());
        s.checks_with_two += usize::from(!surging.is_empty());
        Ok(())
    }

    /// The (environment, host) pairs of the surges seen and not seen ended: the harness reads
    /// their slots for `follow`.
    pub fn surges_to_follow(&self) -> Vec<(String, String)> {
        self.following.keys().cloned().collect()
    }

    /// A slot records a surge replacing `old` (read before a task's STOPPED event was delivered:
    /// a surge whose new task fails at once is never seen with two tasks live). Followed to its
    /// end like the surges seen.
    pub fn surge_recorded(&mut self, environment: &str, host: &str, old: &str) {
        self.following
            .entry((environment.to_owned(), host.to_owned()))
            .or_insert_with(|| old.to_owned());
    }

    /// What the slots of `surges_to_follow` record now (`live`: the environment's live tasks on
    /// the host, however many): a surge whose record is gone ended, by its new task taking over,
    /// or by the slot going back to the old task (the new one failed).
    pub fn follow(&mut self, views: &[Crowd]) {
        for v in views {
            let key = (v.environment.clone(), v.host.clone());
            let Some(old) = self.following.get(&key) else {
                continue;
            };
            if v.surged.as_ref() == Some(old) {
                continue;
            }
            let s = &mut self.surge;
            if v.named.as_ref() == Some(old) {
                s.abandoned += 1;
                s.abandoned_old_running += usize::from(v.live.contains(old));
            } else {
                s.finished += 1;
            }
            self.following.remove(&key);
        }
    }

    /// Duplicates (and surge launches not yet recorded) still open.
    pub fn open(&self) -> usize {
        self.open.len()
    }
}

/// What one reconcile repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Repairs {
    pub started: usize,
    pub stopped: usize,
    pub expired_claims: usize,
    /// Slots whose record disagreed with ECS.
    pub verified: usize,
    pub deployments_stepped: usize,
}

impl From<&crate::services::reconciler::Summary> for Repairs {
    fn from(s: &crate::services::reconciler::Summary) -> Self {
        Self {
            started: s.started,
            stopped: s.stopped,
            expired_claims: s.expired_claims,
            verified: s.verified,
            deployments_stepped: s.deployments_stepped,
        }
    }
}

/// The end state against the desired set.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct End {
    /// (environment, host) pairs that must run one task: eligible, selected.
    pub desired: usize,
    pub running: usize,
    pub duplicates: usize,
    pub missing: usize,
    /// Tasks where none belongs, or of another revision.
    pub misplaced: usize,
    /// Tasks kept on ACTIVE hosts whose agent is away (allowed: nothing can be done there).
    pub held: usize,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

impl End {
    pub fn exact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The figures of one run, as docs/benchmarks.md shows them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    pub seed: u64,
    /// Hosts that joined, and how many were still registered at the end.
    pub hosts: usize,
    pub environments: usize,
    /// What the chaos did, by kind.
    pub chaos: BTreeMap<&'static str, usize>,
    /// Events ECS and the table's stream emitted.
    pub emitted: usize,
    /// Deliveries to the functions (an event delivered twice counts twice; retries do not).
    pub delivered: usize,
    pub duplicated: usize,
    /// Delivered while an older event was still waiting.
    pub reordered: usize,
    /// Delivered in a batch of concurrent deliveries.
    pub concurrent: usize,
    /// Invocations that failed (and were retried as Lambda would).
    pub failed_invocations: usize,
    /// Deliveries whose every retry failed (left in a dead-letter queue).
    pub dead_lettered: usize,
    pub faults: Injected,
    /// Reconciles while the faults were on (on the schedule), and how many of them failed.
    pub reconciles_during: usize,
    pub reconciles_failed: usize,
    /// The reconciles after the faults stopped (at most 2), and what each repaired.
    pub final_reconciles: Vec<Repairs>,
    pub duplicates: DuplicateFigures,
    pub surges: SurgeFigures,
    pub end: End,
    /// Deployments of each environment: (revision, status, rollback of).
    pub deployments: BTreeMap<String, Vec<String>>,
    /// Simulated time the run covered.
    pub simulated: Duration,
    pub wall: Duration,
}

impl Figures {
    /// One Markdown table (for docs/benchmarks.md and the bench).
    pub fn markdown(&self, title: &str) -> String {
        let f = &self.faults;
        let d = &self.duplicates;
        let e = &self.end;
        let chaos = self
            .chaos
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let reconciles = self
            .final_reconciles
            .iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "#{}: {} started, {} stopped, {} claims expired, {} records corrected, {} deployments stepped",
                    i + 1,
                    r.started,
                    r.stopped,
                    r.expired_claims,
                    r.verified,
                    r.deployments_stepped
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let deployments = self
            .deployments
            .iter()
            .map(|(env, ds)| format!("{env}: {}", ds.join(" → ")))
            .collect::<Vec<_>>()
            .join("; ");
        let rows = [
            ("seed", format!("`{}`", self.seed)),
            (
                "hosts, environments",
                format!("{} hosts, {} environments", self.hosts, self.environments),
            ),
            ("chaos", chaos),
            (
                "events",
                format!(
                    "{} emitted, **{} delivered**: {} duplicated, {} out of order, {} concurrently",
                    self.emitted, self.delivered, self.duplicated, self.reordered, self.concurrent
                ),
            ),
            (
                "faults injected",
                format!(
                    "{} AWS calls: {} throttled (+{} StartTask throttles retried by the adapter), {} 5xx, \
                     {} answers lost (executed), {} calls delayed",
                    f.calls, f.throttled, f.throttles_retried, f.server_errors, f.answers_lost, f.delayed
                ),
            ),
            (
                "failed invocations",
                format!(
                    "{} (retried as Lambda would), {} dead-lettered",
                    self.failed_invocations, self.dead_lettered
                ),
            ),
            (
                "reconciles under faults",
                format!("{} ({} failed)", self.reconciles_during, self.reconciles_failed),
            ),
            (
                "repairs after the faults stopped",
                format!("{} reconciles: {reconciles}", self.final_reconciles.len()),
            ),
            (
                "duplicates",
                format!(
                    "{} seen, {} stopped by their events, {} by the reconciler, {} gone otherwise; \
                     at most {} at once, the longest-lived {} steps",
                    d.seen,
                    d.stopped_by_events,
                    d.stopped_by_reconciler,
                    d.resolved_otherwise,
                    d.most_at_once,
                    d.longest_steps
                ),
            ),
            (
                "surges",
                format!(
                    "**{} surges** (a host's new task beside its old one), at most {} hosts with \
                     two tasks at once ({} checks saw some), {} new tasks seen before their first \
                     event; followed to their end (with those recorded when a task of their host \
                     stopped): {} finished (the new task took over), {} abandoned (the new task \
                     failed: the slot went back to the old one, {} of them seen running); seen by \
                     environment: {}",
                    self.surges.seen,
                    self.surges.most_at_once,
                    self.surges.checks_with_two,
                    self.surges.launches_before_their_event,
                    self.surges.finished,
                    self.surges.abandoned,
                    self.surges.abandoned_old_running,
                    self.surges
                        .by_environment
                        .iter()
                        .map(|(e, n)| format!("{e} {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ),
            (
                "end state",
                format!(
                    "{} desired, {} running: **{} duplicates, {} missing, {} misplaced** \
                     ({} kept on hosts whose agent is away)",
                    e.desired, e.running, e.duplicates, e.missing, e.misplaced, e.held
                ),
            ),
            ("deployments", deployments),
            (
                "time",
                format!(
                    "{:.1} s wall, {:.0} min simulated",
                    self.wall.as_secs_f64(),
                    self.simulated.as_secs_f64() / 60.0
                ),
            ),
        ];
        let mut out = format!("#### {title}\n\n| figure | value |\n|---|---|\n");
        for (k, v) in rows {
            out.push_str(&format!("| {k} | {} |\n", v.replace('|', "\\|")));
        }
        out
    }
}

/// A run's size and faults.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub seed: u64,
    pub hosts: usize,
    /// Deliveries to make before the faults stop.
    pub events: usize,
    pub rates: Rates,
}

impl Config {
    /// The minimum: 10,000 events over 300 hosts.
    pub fn full(seed: u64) -> Self {
        Self {
            seed,
            hosts: 300,
            events: 10_000,
            rates: Rates::CHAOS,
        }
    }
}

/// Simulated time moves in steps of 97 ms: no sum of steps is within a millisecond of the
/// product's thresholds (backoffs of 1 s·2^n, the 2-minute lease, the 10-minute reset), so what
/// the clock reads inside a step never tips a decision, and a seed replays the same run.
const TICK_MS: i64 = 97;
/// The reconciler's schedule (`ReconcileSchedule`'s default).
const RECONCILE_EVERY_MS: i64 = 5 * 60_000;
/// EventBridge → Lambda (asynchronous): the first try and two retries. The table's stream:
/// the first try and the template's 10 retries.
const EVENT_ATTEMPTS: usize = 3;
const STREAM_ATTEMPTS: usize = 11;

/// A failure of the run, with what reproduces it.
pub fn fail(seed: u64, what: impl std::fmt::Display) -> ! {
    panic!("chaos run failed (reproduce with CHAOS_SEED={seed}): {what}")
}

struct Run {
    cfg: Config,
    sim: Sim,
    rng: Rng,
    now: i64,
    start_ms: i64,
    step: usize,
    joined: usize,
    watch: Watch,
    fig: Figures,
    next_reconcile: i64,
    /// How far the operator got: 1 revision 2 written, 2 deployed, 3 the crashing revision
    /// written, 4 deployed.
    milestone: u8,
    /// The slot `CHAOS_TRACE` follows: (environment, host ARN), and what was printed of it last.
    trace: Option<(String, String)>,
    last_trace: Option<String>,
}

/// The full run: chaos with faults, then the faults stop, the events in flight are delivered and
/// at most 2 reconciles run. Panics (naming the seed) when an invariant breaks.
pub async fn run(cfg: Config) -> Figures {
    let wall = Instant::now();
    let mut r = Run::new(cfg).await;
    r.chaos().await;
    r.settle_after_faults().await;
    r.fig.wall = wall.elapsed();
    r.fig.simulated = Duration::from_millis((r.now - r.start_ms) as u64);
    r.fig
}

impl Run {
    async fn new(cfg: Config) -> Self {
        let mut sim = Sim::with_hosts(FakeStore::default(), &ENVIRONMENTS, None, cfg.hosts);
        sim.faults = Some(Faults::new(cfg.seed ^ 0x5EED));
        sim.crashing.insert(fake_task_definition(LOGS_CRASHING));
        let now = crate::executor::system_now_ms() / 1000 * 1000;
        let mut run = Self {
            cfg,
            sim,
            rng: Rng::new(cfg.seed),
            now,
            start_ms: now,
            step: 0,
            joined: 0,
            watch: Watch::default(),
            fig: Figures {
                seed: cfg.seed,
                environments: ENVIRONMENTS.len(),
                ..Figures::default()
            },
            next_reconcile: now + RECONCILE_EVERY_MS,
            milestone: 0,
            trace: std::env::var("CHAOS_TRACE").ok().and_then(|t| {
                let (env, i) = t.split_once('@')?;
                Some((env.to_owned(), host_arn(i.parse().ok()?)))
            }),
            last_trace: None,
        };
        run.tick();
        // Set up before the chaos: the environments, deployed before any host joins.
        run.faults().set(Rates::default());
        for body in environment_bodies(FAKE_CLUSTER_ARN, |e| format!("{e}:1")) {
            run.operator("POST", &["environments"], Some(body)).await;
        }
        for env in ENVIRONMENTS {
            run.deploy(env).await;
        }
        run.sim.settle().await;
        run.sim.drain_queue().await;
        run.fig.emitted = 0;
        run.faults().set(cfg.rates);
        run
    }

    fn tick(&mut self) {
        self.now += TICK_MS * (1 + self.rng.below(3) as i64);
        self.pin();
    }

    /// The product's clock reads `now` (re-pinned at every call it makes through the faults).
    fn pin(&self) {
        pin_clock(self.now);
        if let Some(f) = &self.sim.faults {
            f.pin_clock(Some(self.now));
        }
    }

    fn faults(&self) -> &Faults {
        self.sim.faults.as_ref().expect("set in new")
    }

    /// An API call as an operator makes it: again until it is answered. A call whose answer was
    /// lost may have been made: a POST that finds its environment made is done.
    async fn operator(&mut self, method: &str, path: &[&str], body: Option<serde_json::Value>) {
        let req = ApiRequest {
            method: method.into(),
            segments: path.iter().map(|s| (*s).to_owned()).collect(),
            body: body.map(|b| b.to_string().into_bytes()),
            ..Default::default()
        };
        for _ in 0..100 {
            let f = self.faults();
            let (store, cluster) = (
                Faulty::new(&self.sim.store, f),
                Faulty::new(&self.sim.cluster, f),
            );
            match environments_api::route(&store, &cluster, &req).await {
                Ok(_) => return,
                Err(Error::Conflict { .. }) if method == "POST" => return, // made by a lost answer
                Err(e) if e.is_lasting() => fail(self.cfg.seed, format!("{method} {path:?}: {e}")),
                Err(_) => {}
            }
        }
        fail(
            self.cfg.seed,
            format!("{method} {path:?} never got through"),
        )
    }

    /// Deploys the environment's latest revision, as an operator: asks until a deployment of it
    /// is recorded (an answer lost after it was recorded comes back as an error). False while
    /// another deployment is in progress (one at a time: the operator comes back later).
    async fn deploy(&mut self, env: &str) -> bool {
        for _ in 0..20 {
            let e = self.sim.store.get_environment(env).await.unwrap();
            let Some(e) = e else { return false };
            if e.deployed
                .as_ref()
                .is_some_and(|d| d.revision == e.latest_revision)
            {
                return true;
            }
            if e.active_deployment_id.is_some() {
                return false;
            }
            let store = Faulty::new(&self.sim.store, self.faults());
            if deployments_api::create(&store, env, None, None)
                .await
                .is_ok()
            {
                return true;
            }
        }
        false
    }

    /// The operator's part: a rolling update of `metrics` a fifth of the way in, and a revision
    /// of `logs` that crashes a third of the way in (its breaker rolls it back).
    async fn operate(&mut self) {
        let progress = self.fig.delivered * 100 / self.cfg.events.max(1);
        if self.milestone == 0 && progress >= 20 {
            let body = revision_body(METRICS_V2);
            self.operator("PUT", &["environments", METRICS], Some(body))
                .await;
            self.milestone = 1;
        }
        if self.milestone == 1 && self.step.is_multiple_of(10) && self.deploy(METRICS).await {
            self.fig.chaos.insert("rolling updates", 1);
            self.milestone = 2;
        }
        if self.milestone == 2 && progress >= 35 {
            let body = revision_body(LOGS_CRASHING);
            self.operator("PUT", &["environments", LOGS], Some(body))
                .await;
            self.milestone = 3;
        }
        if self.milestone == 3 && self.step.is_multiple_of(10) && self.deploy(LOGS).await {
            self.fig
                .chaos
                .insert("deployments of a crashing revision", 1);
            self.milestone = 4;
        }
    }

    async fn chaos(&mut self) {
        let limit = self.cfg.events * 2;
        while self.fig.delivered < self.cfg.events || self.milestone < 4 {
            if self.fig.delivered >= limit {
                fail(
                    self.cfg.seed,
                    format!(
                        "the operator never got through (milestone {})",
                        self.milestone
                    ),
                );
            }
            self.step += 1;
            self.tick();
            self.operate().await;
            let cause = if self.now >= self.next_reconcile {
                self.next_reconcile += RECONCILE_EVERY_MS;
                self.reconcile_under_faults().await;
                Cause::Reconciler
            } else if self.rng.chance(self.world_rate()) {
                self.world().await;
                Cause::Chaos
            } else {
                self.deliveries().await;
                Cause::Events
            };
            self.sim.settle().await;
            self.check(cause);
            if self.step.is_multiple_of(500) {
                self.check_counters();
            }
        }
    }

    /// Per mille of steps that change the world: fewer as the queue of events grows.
    fn world_rate(&self) -> u64 {
        match self.sim.queue.len() {
            0..30 => 450,
            30..150 => 250,
            150..500 => 80,
            _ => 0,
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.fig.chaos.entry(what).or_default() += 1;
    }

    /// One change of the world, as ECS (or an operator outside the product) makes it.
    async fn world(&mut self) {
        let hosts = self.cfg.hosts;
        if self.joined < hosts && self.rng.chance(550) {
            let i = self.joined;
            self.joined += 1;
            let role = ROLES[self.rng.below(ROLES.len())];
            self.sim.set_host(
                i,
                Some(HostStatus::Active),
                Some(true),
                Some(("role", Some(role))),
            );
            self.fig.hosts = self.joined;
            return self.count("joins");
        }
        let roll = self.rng.below(1000);
        let active = |h: &Host| h.state.status == HostStatus::Active;
        match roll {
            0..250 => {
                if let Some((i, h)) = self.find_host(|h| !h.state.status.is_gone()) {
                    let role = ROLES[self.rng.below(ROLES.len())];
                    if h.attributes.get("role").cloned().flatten().as_deref() != Some(role) {
                        self.sim.set_host(i, None, None, Some(("role", Some(role))));
                        self.count("relabellings");
                    }
                }
            }
            250..450 => {
                let by_hand = roll >= 380;
                if let Some(task) = self.random_live_task() {
                    let reason = if by_hand { STOPPED_BY_HAND } else { CRASHED };
                    self.sim.cluster.kill_because(&task, reason);
                    self.count(if by_hand { "manual stops" } else { "crashes" });
                }
            }
            450..500 => self.start_by_hand().await,
            500..600 => {
                if let Some((i, _)) = self.find_host(|h| active(h) && h.state.agent_connected) {
                    self.sim.set_host(i, None, Some(false), None);
                    self.count("agent disconnects");
                }
            }
            600..750 => {
                let away = |h: &Host| !h.state.status.is_gone() && !h.state.agent_connected;
                if let Some((i, _)) = self.find_host(away) {
                    self.sim.set_host(i, None, Some(true), None);
                    self.count("agent reconnects");
                }
            }
            750..790 => {
                if let Some((i, _)) = self.find_host(active) {
                    self.sim.set_host(i, Some(HostStatus::Draining), None, None);
                    self.count("drains");
                }
            }
            790..900 => {
                let draining = |h: &Host| h.state.status == HostStatus::Draining;
                if let Some((i, _)) = self.find_host(draining) {
                    self.sim.set_host(i, Some(HostStatus::Active), None, None);
                    self.count("drains undone");
                }
            }
            900..915
                if self.fig.chaos.get("deregistrations").copied().unwrap_or(0) < hosts / 20 =>
            {
                if let Some((i, _)) = self.find_host(|h| !h.state.status.is_gone()) {
                    self.sim
                        .set_host(i, Some(HostStatus::Inactive), Some(false), None);
                    self.count("deregistrations");
                }
            }
            _ => {}
        }
    }

    /// A joined host that `pred` holds for, if a few random looks find one.
    fn find_host(&mut self, pred: impl Fn(&Host) -> bool) -> Option<(usize, Host)> {
        for _ in 0..20 {
            let i = self.rng.below(self.joined.max(1));
            if let Some(h) = self.sim.cluster.host(&host_arn(i)).filter(|h| pred(h)) {
                return Some((i, h));
            }
        }
        None
    }

    /// Someone starts a task in an environment's group by hand (RunTask from a console): a
    /// second task where the daemon runs, one where it does not belong, or the daemon itself where
    /// it was missing. The product keeps one and stops the others. At most one such task at a time
    /// beside the daemon: the reconciler settles one disagreement per host and run, by design, so
    /// a pile of them would take more than the 2 reconciles the end allows.
    async fn start_by_hand(&mut self) {
        let Some((i, _)) = self.find_host(|h| h.state.status == HostStatus::Active) else {
            return;
        };
        let env = ENVIRONMENTS[self.rng.below(ENVIRONMENTS.len())];
        let here = self.sim.live.get(&(task_group(env), host_arn(i)));
        if here.is_some_and(|t| t.len() > 1) {
            return;
        }
        let deployed = self
            .sim
            .store
            .get_environment(env)
            .await
            .unwrap()
            .and_then(|e| e.deployed);
        let Some(d) = deployed else { return };
        let launch = LaunchSpec {
            task_definition: d.spec.task_definition.clone(),
            revision: 0,
            started_by: "an-operator".to_owned(),
            group: task_group(env),
            overrides: None,
            reserves: Default::default(),
        };
        let hosts = [host_arn(i)];
        let request = StartRequest {
            cluster_arn: FAKE_CLUSTER_ARN,
            launch: &launch,
            container_instances: &hosts,
        };
        if self
            .sim
            .cluster
            .start_tasks(request)
            .await
            .is_ok_and(|o| !o.started.is_empty())
        {
            self.count("tasks started by hand");
        }
    }

    fn random_live_task(&mut self) -> Option<String> {
        let n = self.sim.live.len();
        if n == 0 {
            return None;
        }
        let tasks = self.sim.live.values().nth(self.rng.below(n))?;
        tasks.iter().nth(self.rng.below(tasks.len())).cloned()
    }

    /// Takes the queued event at a random place (`reordered` when older ones wait), leaving a
    /// copy behind a quarter of the time (delivered twice).
    fn take_event(&mut self) -> Option<Ev> {
        if self.sim.queue.is_empty() {
            return None;
        }
        let n = self.sim.queue.len();
        let i = if self.rng.chance(300) {
            0
        } else {
            self.rng.below(n)
        };
        let ev = if self.rng.chance(250) {
            self.fig.duplicated += 1;
            self.sim.queue[i].clone()
        } else {
            self.sim.queue.remove(i)
        };
        self.fig.reordered += usize::from(i > 0);
        self.fig.delivered += 1;
        self.trace_event(&ev);
        Some(ev)
    }

    /// One event, or a batch of 2 to 6 delivered concurrently.
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
        self.note_surges(&batch);
        let failures = self.faults().injected().failures();
        let outcomes =
            futures::future::join_all(batch.iter().map(|ev| attempts(&self.sim, ev))).await;
        let clean_batch = self.faults().injected().failures() == failures;
        self.absorb(&batch, &outcomes, clean_batch);
    }

    /// Before `batch` is delivered: the surges recorded on the hosts of its STOPPED task events
    /// (a surge's new task that fails) are followed to their end.
    fn note_surges(&mut self, batch: &[Ev]) {
        for ev in batch {
            let Ev::Task(d) = ev else { continue };
            let (Some(host), Some(group)) = (&d.container_instance_arn, &d.group) else {
                continue;
            };
            if d.last_status != "STOPPED" {
                continue;
            }
            let env = crate::domain::task::environment_of_group(group).unwrap_or_default();
            if let Some(old) = self.slot(env, host).and_then(|s| s.surge) {
                self.watch.surge_recorded(env, host, &old.task_arn);
            }
        }
    }

    /// What the deliveries' attempts did: failed invocations, dead letters, and the tasks whose
    /// event was handled with no fault in the way.
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

    /// The scheduled reconciler, under faults; half the time while events are being delivered.
    async fn reconcile_under_faults(&mut self) {
        self.fig.reconciles_during += 1;
        let k = if self.rng.chance(500) {
            2 + self.rng.below(5)
        } else {
            0
        };
        let batch: Vec<Ev> = (0..k).filter_map(|_| self.take_event()).collect();
        self.fig.concurrent += batch.len();
        self.note_surges(&batch);
        let failures = self.faults().injected().failures();
        let (summary, outcomes) = futures::future::join(
            self.sim.try_reconcile(self.now),
            futures::future::join_all(batch.iter().map(|ev| attempts(&self.sim, ev))),
        )
        .await;
        let clean = self.faults().injected().failures() == failures;
        self.fig.reconciles_failed += usize::from(summary.is_err() || !clean);
        self.absorb(&batch, &outcomes, clean);
    }

    /// `CHAOS_TRACE=<environment>@<host index>`: the events delivered about one slot, and the
    /// slot and its host's live tasks whenever they change (to follow a failed seed).
    fn trace_event(&self, ev: &Ev) {
        let Some((env, host)) = &self.trace else {
            return;
        };
        let line = match ev {
            Ev::Task(d)
                if d.container_instance_arn.as_ref() == Some(host)
                    && d.group.as_deref() == Some(task_group(env).as_str()) =>
            {
                let by = d.started_by.as_deref().unwrap_or_default();
                format!(
                    "task {} {} v{} by {by}",
                    d.task_arn, d.last_status, d.version
                )
            }
            Ev::Instance(d) if &d.container_instance_arn == host => {
                format!(
                    "host {} v{} agent {}",
                    d.status, d.version, d.agent_connected
                )
            }
            _ => return,
        };
        eprintln!("trace step {}: deliver {line}", self.step);
    }

    fn trace_slot(&mut self, what: &str) {
        let Some((env, host)) = self.trace.clone() else {
            return;
        };
        let slot = self.slot(&env, &host);
        let line = format!(
            "{:?}; live {:?}",
            slot.map(|s| (
                s.task,
                s.launch.map(|l| (l.task_definition, l.started_by)),
                s.retired,
                s.surge.map(|o| o.task_arn)
            )),
            self.sim.live.get(&(task_group(&env), host.clone()))
        );
        if self.last_trace.as_deref() != Some(line.as_str()) {
            eprintln!("trace step {} after {what}: {line}", self.step);
            self.last_trace = Some(line);
        }
    }

    /// The continuous invariant over the (environment, host) pairs with more than one live task.
    fn check(&mut self, cause: Cause) {
        self.trace_slot(&format!("{cause:?}"));
        let crowds: Vec<Crowd> = self
            .sim
            .live
            .iter()
            .filter(|(_, tasks)| tasks.len() > 1)
            .map(|((group, host), tasks)| {
                let environment = crate::domain::task::environment_of_group(group)
                    .unwrap_or_default()
                    .to_owned();
                let key = SlotKey {
                    environment: environment.clone(),
                    container_instance_arn: host.clone(),
                };
                let slot = self.sim.store.slot(&key);
                let named = slot
                    .as_ref()
                    .and_then(|s| s.task.task_arn().map(str::to_owned));
                Crowd {
                    environment,
                    host: host.clone(),
                    live: tasks.iter().cloned().collect(),
                    named,
                    has_slot: slot.is_some(),
                    surged: slot.and_then(|s| s.surge.map(|o| o.task_arn)),
                }
            })
            .collect();
        let live = &self.sim.live;
        let alive = |env: &str, host: &str, task: &str| {
            live.get(&(task_group(env), host.to_owned()))
                .is_some_and(|t| t.contains(task))
        };
        if let Err(e) = self.watch.check(self.step, cause, &crowds, alive) {
            fail(self.cfg.seed, e);
        }
        let views: Vec<Crowd> = self
            .watch
            .surges_to_follow()
            .into_iter()
            .map(|(environment, host)| {
                let slot = self.slot(&environment, &host);
                Crowd {
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
                }
            })
            .collect();
        self.watch.follow(&views);
    }

    /// Every deployment's counters add up over the slots it tracks.
    fn check_counters(&self) {
        for s in self.sim.store.slots() {
            if let Some(id) = &s.tracked_by {
                let Some(d) = self.sim.store.deployment(&s.environment, id) else {
                    fail(
                        self.cfg.seed,
                        format!("{s:?} tracked by a deployment that does not exist"),
                    );
                };
                if d.desired_count != d.pending_count + d.running_count + d.failed_count {
                    fail(self.cfg.seed, format!("counters do not add up: {d:?}"));
                }
            }
        }
    }

    /// Faults off: the events in flight are delivered, then at most 2 reconciles (each after 20
    /// minutes: every backoff and lease is over) with the events they cause, until the end state
    /// is exactly the desired one.
    async fn settle_after_faults(&mut self) {
        self.faults().set(Rates::default());
        self.deliver_all().await;
        for _ in 0..2 {
            self.now += 20 * 60_000;
            self.pin();
            let summary = match self.sim.try_reconcile(self.now).await {
                Ok(s) => s,
                Err(e) => fail(
                    self.cfg.seed,
                    format!("a reconcile without faults failed: {e}"),
                ),
            };
            self.fig.final_reconciles.push(Repairs::from(&summary));
            if self.trace.is_some() {
                eprintln!("trace step {}: final reconcile {summary:?}", self.step);
            }
            self.sim.settle().await;
            self.check(Cause::Reconciler);
            self.deliver_all().await;
            if self.end_state().await.exact() {
                break;
            }
        }
        self.check_counters();
        let end = self.end_state().await;
        self.fig.end = end.clone();
        self.fig.duplicates = self.watch.figures.clone();
        self.fig.surges = self.watch.surge.clone();
        self.fig.faults = self.faults().injected();
        self.fig.emitted = self.sim.emitted;
        self.fig.deployments = self.deployments().await;
        if !end.exact() {
            fail(
                self.cfg.seed,
                format!(
                    "after {} reconciles the end state is not the desired one: {:#?}",
                    self.fig.final_reconciles.len(),
                    end
                ),
            );
        }
        self.check_deployments().await;
    }

    /// Every queued event, in random order, until none is left (no faults: each must succeed).
    async fn deliver_all(&mut self) {
        for _ in 0..1_000_000 {
            if self.sim.queue.is_empty() {
                return;
            }
            self.step += 1;
            let i = self.rng.below(self.sim.queue.len());
            let ev = self.sim.queue.remove(i);
            self.fig.reordered += usize::from(i > 0);
            self.fig.delivered += 1;
            self.note_surges(std::slice::from_ref(&ev));
            let o = attempts(&self.sim, &ev).await;
            if !o.ok {
                fail(self.cfg.seed, format!("{ev:?} failed with the faults off"));
            }
            self.absorb(&[ev], &[o], true);
            self.sim.settle().await;
            self.check(Cause::Events);
        }
        fail(self.cfg.seed, "events keep coming");
    }

    /// The live tasks against the desired set.
    async fn end_state(&self) -> End {
        let mut end = End::default();
        let mut by_key: BTreeMap<(String, String), Vec<crate::fakes::FakeTask>> = BTreeMap::new();
        for t in self.sim.cluster.live_tasks() {
            by_key
                .entry((t.group.clone(), t.host.clone()))
                .or_default()
                .push(t);
        }
        let mut deployed = BTreeMap::new();
        for env in ENVIRONMENTS {
            let e = self.sim.store.get_environment(env).await.unwrap();
            deployed.insert(
                env,
                e.and_then(|e| e.deployed).map(|d| d.spec.task_definition),
            );
        }
        for i in 0..self.joined {
            let arn = host_arn(i);
            let Some(h) = self.sim.cluster.host(&arn) else {
                continue;
            };
            let role = h.attributes.get("role").cloned().flatten();
            for env in ENVIRONMENTS {
                let tasks = by_key
                    .remove(&(task_group(env), arn.clone()))
                    .unwrap_or_default();
                let wanted = deployed[env].as_deref();
                let desired = h.is_eligible() && selects(env, role.as_deref());
                let held = h.state.status == HostStatus::Active && !h.state.agent_connected;
                if tasks.len() > 1 {
                    end.duplicates += tasks.len() - 1;
                    end.problems
                        .push(format!("{env} on h{i}: {} live tasks", tasks.len()));
                }
                if desired {
                    end.desired += 1;
                    match tasks.first() {
                        None => {
                            end.missing += 1;
                            end.problems
                                .push(format!("{env} missing on h{i}: {:?}", self.slot(env, &arn)));
                        }
                        Some(t) if Some(t.task_definition.as_str()) != wanted => {
                            end.misplaced += 1;
                            end.problems.push(format!(
                                "{env} on h{i} runs {} not {wanted:?}: {:?}",
                                t.task_definition,
                                self.slot(env, &arn)
                            ));
                        }
                        Some(_) => end.running += 1,
                    }
                } else if held {
                    end.held += tasks.len().min(1);
                } else if !tasks.is_empty() {
                    end.misplaced += tasks.len();
                    end.problems.push(format!(
                        "{env} on h{i} ({:?}, agent {}, role {role:?}) where it does not belong: {:?}",
                        h.state.status, h.state.agent_connected, self.slot(env, &arn)
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

    fn slot(&self, env: &str, host: &str) -> Option<crate::domain::Slot> {
        self.sim.store.slot(&SlotKey {
            environment: env.to_owned(),
            container_instance_arn: host.to_owned(),
        })
    }

    /// Each environment's deployments, oldest first: "revision N status".
    async fn deployments(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for env in ENVIRONMENTS {
            let page = self
                .sim
                .store
                .list_deployments(env, 100, None)
                .await
                .unwrap();
            let mut ds: Vec<String> = page
                .items
                .iter()
                .rev()
                .map(|d| {
                    let rollback = if d.rollback_of.is_some() {
                        " (rollback)"
                    } else {
                        ""
                    };
                    let td = d
                        .spec
                        .task_definition
                        .rsplit('/')
                        .next()
                        .unwrap_or_default();
                    format!("{td} {:?}{rollback}", d.status).to_lowercase()
                })
                .collect();
            ds.dedup();
            out.insert(env.to_owned(), ds);
        }
        out
    }

    /// Nothing in progress; `metrics` rolled out; `logs` rolled its crashing revision back.
    async fn check_deployments(&self) {
        for env in ENVIRONMENTS {
            let e = self.sim.store.get_environment(env).await.unwrap().unwrap();
            if let Some(id) = e.active_deployment_id {
                fail(
                    self.cfg.seed,
                    format!("{env}: deployment {id} never finished"),
                );
            }
        }
        let logs = self
            .sim
            .store
            .list_deployments(LOGS, 100, None)
            .await
            .unwrap()
            .items;
        let crashed = logs
            .iter()
            .find(|d| d.spec.task_definition == fake_task_definition(LOGS_CRASHING))
            .unwrap_or_else(|| fail(self.cfg.seed, "no deployment of the crashing revision"));
        // The rollback ran to its end; under the chaos some of its hosts may have failed it (a
        // crash before its RUNNING event got through), which makes it `failed`, not undone: the
        // end state checked every host runs revision 1.
        let rolled_back = logs.iter().any(|d| {
            d.rollback_of.as_deref() == Some(crashed.id.as_str())
                && d.status.is_finished()
                && d.spec.task_definition == fake_task_definition("logs:1")
        });
        // metrics: its revision 2 went out; under the chaos some hosts may have failed it (a
        // crash before its RUNNING event got through) and even tripped its breaker — then it
        // must have been rolled back. The end state checked that every host runs what is deployed.
        let metrics = self
            .sim
            .store
            .list_deployments(METRICS, 100, None)
            .await
            .unwrap()
            .items;
        let v2 = metrics
            .iter()
            .find(|d| d.spec.task_definition == fake_task_definition(METRICS_V2))
            .unwrap_or_else(|| fail(self.cfg.seed, "no deployment of metrics:2"));
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
                self.cfg.seed,
                format!(
                    "the deployments did not end as they should: {:?}",
                    self.fig.deployments
                ),
            );
        }
    }
}

/// The ARN the fake cluster gives a task definition.
fn fake_task_definition(name: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{name}")
}

/// What the deliveries of one event (the first try and the trigger's retries) did.
#[derive(Debug, Clone, Copy, Default)]
struct Attempts {
    ok: bool,
    failed: usize,
    /// The attempt that succeeded ran with no fault injected (as far as one delivery can tell).
    clean: bool,
}

async fn attempts(sim: &Sim, ev: &Ev) -> Attempts {
    let tries = match ev {
        Ev::Deployment(..) => STREAM_ATTEMPTS,
        _ => EVENT_ATTEMPTS,
    };
    let failures = || sim.faults.as_ref().map_or(0, |f| f.injected().failures());
    let mut out = Attempts::default();
    for _ in 0..tries {
        let before = failures();
        match sim.try_deliver(ev).await {
            Ok(()) => {
                out.ok = true;
                out.clean = failures() == before;
                return out;
            }
            Err(_) => out.failed += 1,
        }
    }
    out
}
