//! Carries out what the planner decides: compare-and-swap writes first (batched), then the effects
//! (StartTask ≤ 10 hosts a call for one launch, StopTask), then what ECS refused. A lost race
//! re-plans from the slot as it now is, so concurrent writers converge instead of duplicating.
//!
//! A launch ECS accepted is not recorded here: its task's first event (or the reconciler, by the
//! claim's `startedBy`) turns the claim into the task. One write fewer per launch, and the slot
//! already refuses a second launch while it is claimed.

use std::collections::{BTreeMap, HashSet};

use crate::domain::{LaunchSpec, Slot, SlotTask};
use crate::error::Result;
use crate::limits::{START_TASK_INSTANCES, TRANSACT_ITEMS};
use crate::metrics;
use crate::planner::{may_launch, Effect, SlotWrite};
use crate::ports::{Cluster, StartRequest, Store, WriteOutcome};
use crate::work::{Live, Work};

/// How often one slot is re-planned after losing a race before we give up (the trigger retries).
const MAX_ROUNDS: usize = 6;
/// Slots decided, written and launched together: one transaction's worth. Each batch's claims are
/// launched before the next batch is claimed, so a claim is seconds old when its StartTask goes
/// out, however many hosts a run has (the launch deadline, `planner::LAUNCH_DEADLINE_MS`).
const BATCH: usize = TRANSACT_ITEMS;

/// What the executor did, for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub written: usize,
    pub started: Vec<(String, String)>,
    pub start_failures: Vec<(String, String)>,
    pub stopped: Vec<String>,
    pub conflicts: usize,
    pub gave_up: usize,
    /// Writes left for later: they would have exceeded a rolling update's budget.
    pub over_budget: usize,
    /// Launches ECS throttled (freed for a later try, not counted as failures).
    pub throttled: usize,
    /// Claims let go unlaunched: their launch deadline had passed (freed for a later try).
    pub fenced: usize,
    /// Tasks that just reached RUNNING and now bake.
    pub bakes: Vec<Bake>,
    /// Daemons that stopped and restart once their backoff ends.
    pub restarts: Vec<Restart>,
}

impl Report {
    /// Adds what another run did.
    pub fn absorb(&mut self, r: Report) {
        self.written += r.written;
        self.started.extend(r.started);
        self.start_failures.extend(r.start_failures);
        self.stopped.extend(r.stopped);
        self.conflicts += r.conflicts;
        self.gave_up += r.gave_up;
        self.over_budget += r.over_budget;
        self.throttled += r.throttled;
        self.fenced += r.fenced;
        self.bakes.extend(r.bakes);
        self.restarts.extend(r.restarts);
    }
}

/// A daemon whose restart waits for its backoff: nothing in ECS marks the backoff's end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Restart {
    pub environment: String,
    pub host: String,
    /// When it is due (epoch ms).
    pub at_ms: i64,
}

/// A new task that started its bake (`minHealthySeconds`): nothing in ECS marks its end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bake {
    pub environment: String,
    pub host: String,
    /// The deployment that counts it, if any.
    pub deployment: Option<String>,
    pub bake_ms: i64,
}

pub struct Executor<'a, S: ?Sized, C: ?Sized> {
    pub store: &'a S,
    pub cluster: &'a C,
    /// The instant decisions are taken at; `None`: the system clock.
    pub now_ms: Option<i64>,
    /// The system clock when it was made: time passes for `now_ms` too (launch deadlines).
    made_ms: i64,
}

pub fn new_claim_id() -> String {
    ulid::Ulid::new().to_string()
}

pub use crate::clock::system_now_ms;

struct Launch {
    slot: Slot,
    claim_id: String,
    launch: LaunchSpec,
}

/// A StopTask owed, and the environment whose task it is (for its metrics).
struct Stop {
    environment: String,
    cluster: String,
    task_arn: String,
    reason: String,
}

impl Stop {
    fn of(slot: &Slot, task_arn: String, reason: String) -> Self {
        Self {
            environment: slot.environment.clone(),
            cluster: slot.cluster_arn.clone(),
            task_arn,
            reason,
        }
    }
}

impl<'a, S: Store + ?Sized, C: Cluster + ?Sized> Executor<'a, S, C> {
    pub fn new(store: &'a S, cluster: &'a C) -> Self {
        Self {
            store,
            cluster,
            now_ms: None,
            made_ms: system_now_ms(),
        }
    }

    /// Decides as of `now_ms` (the reconciler's run time, or a test's clock).
    pub fn at(store: &'a S, cluster: &'a C, now_ms: i64) -> Self {
        Self {
            store,
            cluster,
            now_ms: Some(now_ms),
            made_ms: system_now_ms(),
        }
    }

    /// Plan, write and act for every piece of work, a batch at a time (`BATCH`); returns what
    /// happened.
    pub async fn run(&self, mut work: Vec<Work>) -> Result<Report> {
        let mut report = Report::default();
        while !work.is_empty() {
            let rest = work.split_off(work.len().min(BATCH));
            let (launches, stops) = self.settle(work, &mut report).await?;
            self.launch(launches, &mut report).await?;
            self.stop(stops, &mut report).await;
            work = rest;
        }
        Ok(report)
    }

    /// Now, by the clock decisions are taken on, time having passed since this executor was made.
    fn clock_ms(&self) -> i64 {
        let elapsed = system_now_ms() - self.made_ms;
        self.now_ms.unwrap_or(self.made_ms) + elapsed
    }

    /// Writes every decision (re-deciding on conflicts) and returns the effects now owed.
    async fn settle(
        &self,
        mut work: Vec<Work>,
        report: &mut Report,
    ) -> Result<(Vec<Launch>, Vec<Stop>)> {
        let mut launches = Vec::new();
        let mut stops = Vec::new();
        let mut closed: HashSet<String> = HashSet::new();
        for _round in 0..MAX_ROUNDS {
            if work.is_empty() {
                break;
            }
            let now = self.clock_ms();
            let mut writes = Vec::new();
            let mut pending = Vec::new();
            for w in work.drain(..) {
                if let (Live::Is(live), Some(tracked)) = (
                    &w.live,
                    w.current.as_ref().and_then(|c| c.tracked_by.as_ref()),
                ) {
                    if Some(tracked) != live.as_ref() {
                        closed.insert(tracked.clone());
                    }
                }
                let claim_id = new_claim_id();
                let mut t = (w.decide)(w.current.as_ref(), &claim_id, now);
                if let Some(next) = t.next.as_mut() {
                    if next.tracked_by.as_ref().is_some_and(|d| closed.contains(d)) {
                        next.tracked_by = None;
                    }
                    next.updated_at_ms = now;
                }
                match t.next.clone() {
                    Some(after) => {
                        // A finished deployment's counters stay as they were.
                        let mut before = w.current.clone();
                        if let Some(b) = before.as_mut() {
                            if b.tracked_by.as_ref().is_some_and(|d| closed.contains(d)) {
                                b.tracked_by = None;
                            }
                        }
                        writes.push(SlotWrite::new(before, after, w.pending_cap));
                        pending.push((w, t, claim_id));
                    }
                    None => {
                        if let Effect::Stop { task_arn, reason } = t.effect {
                            let cluster = w
                                .current
                                .as_ref()
                                .map(|s| s.cluster_arn.clone())
                                .unwrap_or_default();
                            stops.push(Stop {
                                environment: w.key.environment.clone(),
                                cluster,
                                task_arn,
                                reason,
                            });
                        }
                    }
                }
            }
            if writes.is_empty() {
                break;
            }
            let outcomes = self.store.write_slots(&writes).await?;
            for ((mut w, t, claim_id), outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    WriteOutcome::Written(slot) => {
                        report.written += 1;
                        let was_baking = w.current.as_ref().is_some_and(|c| c.baking);
                        if let Some(at_ms) = slot.restart_due_after(now) {
                            report.restarts.push(Restart {
                                environment: slot.environment.clone(),
                                host: slot.host.container_instance_arn.clone(),
                                at_ms,
                            });
                        }
                        if slot.baking && !was_baking {
                            report.bakes.push(Bake {
                                environment: slot.environment.clone(),
                                host: slot.host.container_instance_arn.clone(),
                                deployment: slot.tracked_by.clone(),
                                bake_ms: slot.bake_ms,
                            });
                        }
                        match t.effect {
                            Effect::Start(launch) => launches.push(Launch {
                                slot,
                                claim_id,
                                launch,
                            }),
                            Effect::Stop { task_arn, reason } => {
                                stops.push(Stop::of(&slot, task_arn, reason))
                            }
                            Effect::None => {}
                        }
                    }
                    // Our own write, already made: a retry of a call whose answer was lost.
                    WriteOutcome::Conflict(Some(current))
                        if t.next
                            .as_ref()
                            .is_some_and(|after| is_same_record(after, &current)) =>
                    {
                        report.written += 1;
                        match t.effect {
                            Effect::Start(launch) => launches.push(Launch {
                                slot: current,
                                claim_id,
                                launch,
                            }),
                            Effect::Stop { task_arn, reason } => {
                                stops.push(Stop::of(&current, task_arn, reason))
                            }
                            Effect::None => {}
                        }
                    }
                    WriteOutcome::Conflict(current) => {
                        report.conflicts += 1;
                        w.current = current;
                        work.push(w);
                    }
                    WriteOutcome::DeploymentClosed(dep) => {
                        closed.insert(dep);
                        work.push(w);
                    }
                    WriteOutcome::NotAttempted => work.push(w),
                    WriteOutcome::OverBudget => report.over_budget += 1,
                    WriteOutcome::EnvironmentInactive => {}
                }
            }
        }
        report.gave_up += work.len();
        if !work.is_empty() {
            tracing::warn!(
                slots = work.len(),
                "gave up after repeated conflicts; the next event or reconcile retries"
            );
        }
        Ok((launches, stops))
    }

    /// StartTask for every claimed slot, one call per launch and up to 10 hosts; then what ECS
    /// refused or throttled is recorded (a refusal frees the slot; what started is left to its
    /// task's events).
    async fn launch(&self, launches: Vec<Launch>, report: &mut Report) -> Result<()> {
        let mut groups: BTreeMap<(String, String), (LaunchSpec, Vec<Launch>)> = BTreeMap::new();
        for l in launches {
            let key = serde_json::to_string(&l.launch).unwrap_or_default();
            groups
                .entry((l.slot.cluster_arn.clone(), key))
                .or_insert_with(|| (l.launch.clone(), Vec::new()))
                .1
                .push(l);
        }
        let mut follow_up: Vec<Work> = Vec::new();
        for ((cluster, _), (launch, group)) in groups {
            for chunk in group.chunks(START_TASK_INSTANCES) {
                // A claim past its launch deadline is let go, not launched: by the time the call
                // ended, another writer could have taken the host over.
                let now = self.clock_ms();
                let (chunk, late): (Vec<&Launch>, Vec<&Launch>) =
                    chunk.iter().partition(|l| may_launch(&l.slot, now));
                for l in late {
                    tracing::warn!(host = %l.slot.host.container_instance_arn,
                        "claim past its launch deadline: let go, not launched");
                    report.fenced += 1;
                    follow_up.push(Work::start_throttled(&l.slot, &l.claim_id));
                }
                if chunk.is_empty() {
                    continue;
                }
                let hosts: Vec<String> = chunk
                    .iter()
                    .map(|l| l.slot.host.container_instance_arn.clone())
                    .collect();
                let outcome = self
                    .cluster
                    .start_tasks(StartRequest {
                        cluster_arn: &cluster,
                        launch: &launch,
                        container_instances: &hosts,
                    })
                    .await?;
                for l in chunk {
                    let host = &l.slot.host.container_instance_arn;
                    if let Some((_, task_arn)) = outcome.started.iter().find(|(h, _)| h == host) {
                        metrics::count_for(&l.slot.environment, metrics::TASKS_STARTED, 1);
                        report.started.push((host.clone(), task_arn.clone()));
                    } else if let Some((_, reason)) =
                        outcome.refused.iter().find(|(h, _)| h == host)
                    {
                        metrics::count_for(&l.slot.environment, metrics::TASK_START_FAILURES, 1);
                        report.start_failures.push((host.clone(), reason.clone()));
                        follow_up.push(Work::start_refused(&l.slot, &l.claim_id, reason));
                    } else if outcome.throttled.contains(host) {
                        report.throttled += 1;
                        follow_up.push(Work::start_throttled(&l.slot, &l.claim_id));
                    } else {
                        // Unknown outcome: the claim stays until its lease expires and ECS is checked.
                        tracing::warn!(host = %host, "StartTask outcome unknown; claim kept for the lease check");
                    }
                }
            }
        }
        if !follow_up.is_empty() {
            let (more_launches, stops) = self.settle(follow_up, report).await?;
            debug_assert!(
                more_launches.is_empty(),
                "recording a refusal never launches"
            );
            self.stop(stops, report).await;
        }
        Ok(())
    }

    async fn stop(&self, stops: Vec<Stop>, report: &mut Report) {
        for stop in stops {
            let Stop {
                environment,
                cluster,
                task_arn,
                reason,
            } = stop;
            let cluster = if cluster.is_empty() {
                cluster_of_task(&task_arn)
            } else {
                cluster
            };
            match self.cluster.stop_task(&cluster, &task_arn, &reason).await {
                Ok(()) => {
                    metrics::count_for(&environment, metrics::TASKS_STOPPED, 1);
                    report.stopped.push(task_arn)
                }
                // The task stays listed as Stopping; the reconciler asks again.
                Err(e) => tracing::warn!(task = %task_arn, error = %e, "StopTask failed"),
            }
        }
    }
}

/// The stored slot is the one we meant to write (the SDK retried a call that had succeeded).
/// Claims carry a fresh id, so a claim is never mistaken for another writer's. (The history
/// the write appended, like its instant, follows from the rest.)
fn is_same_record(after: &Slot, stored: &Slot) -> bool {
    let mut a = after.clone();
    a.rev = stored.rev;
    a.updated_at_ms = stored.updated_at_ms;
    a.history = stored.history.clone();
    &a == stored
}

/// `arn:aws:ecs:region:account:task/<cluster>/<id>` → the cluster ARN.
pub fn cluster_of_task(task_arn: &str) -> String {
    let Some((prefix, rest)) = task_arn.split_once(":task/") else {
        return String::new();
    };
    match rest.split_once('/') {
        Some((cluster, _)) => format!("{prefix}:cluster/{cluster}"),
        None => String::new(),
    }
}

/// Whether a slot still waits for a launch to be recorded (used by tests and the reconciler).
pub fn is_launching(slot: &Slot) -> bool {
    matches!(slot.task, SlotTask::Launching { .. })
}
