//! The pure planner: what one slot (environment × host) should become, given what we just learnt.
//! No I/O and no clock: callers pass `now_ms` and a fresh `claim_id`. Every trigger (API, instance
//! and task events, the deployer, the reconciler) feeds these functions and carries out the result.

use crate::domain::{Host, HostStatus, Slot, SlotTask, TaskObservation};

/// A claim older than this belongs to a writer that died between StartTask and recording it.
pub const CLAIM_LEASE_MS: i64 = 120_000;
/// A task that ran this long before stopping was healthy: its stop starts the backoff afresh.
pub const BACKOFF_RESET_AFTER_MS: i64 = 600_000;
/// Kubernetes DaemonSet: per-node backoff from 1 s doubling to 15 min.
pub const BACKOFF_MAX_MS: i64 = 900_000;
/// Records of a host that left the cluster expire after a day (the version guard outlives stragglers).
pub const GONE_HOST_TTL_SECS: i64 = 86_400;

/// What an environment asks of its hosts right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub environment: String,
    pub cluster_arn: String,
    pub task_definition: String,
    /// `startedBy` of the tasks it launches.
    pub deployment_id: String,
    /// In-progress deployment that counts the slots it claims.
    pub tracking: Option<String>,
    /// How long a new task must stay RUNNING to count as healthy (`minHealthySeconds`).
    pub bake_ms: i64,
}

/// What the caller must do: write `next` (compare-and-swap on the slot's current `rev`), then the effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `None`: the record stays as it is.
    pub next: Option<Slot>,
    pub effect: Effect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// StartTask on this slot's host, once `next` (a `Launching` claim) is written.
    Start,
    /// StopTask, after `next` is written.
    Stop {
        task_arn: String,
        reason: String,
    },
}

/// Delay before the restart after `failures` consecutive unasked stops: none for the first,
/// then 1 s, 2 s, 4 s … up to 15 min.
pub fn restart_delay_ms(failures: u32) -> i64 {
    if failures <= 1 {
        return 0;
    }
    let exp = (failures - 2).min(20);
    (1_000i64 << exp).min(BACKOFF_MAX_MS)
}

/// The newer of what the record knows and what was observed; stale or duplicate observations lose.
fn freshest(known: Option<&Host>, observed: Option<&Host>) -> Option<Host> {
    match (known, observed) {
        (Some(k), Some(o)) if o.version > k.version => Some(o.clone()),
        (Some(k), _) => Some(k.clone()),
        (None, o) => o.cloned(),
    }
}

fn stop_reason(why: &str) -> String {
    format!("{}{why}", crate::domain::task::STOP_REASON_PREFIX)
}

/// Decide for one host of `target`'s environment.
///
/// `slot` is the record as read (`None`: we never saw this host), `observed` the host as an event
/// or ECS just described it (`None`: nothing new). `target: None` means the environment wants
/// nothing new started (not deployed yet, or being deleted).
pub fn plan_host(
    target: Option<&Target>,
    slot: Option<&Slot>,
    observed: Option<&Host>,
    now_ms: i64,
    claim_id: &str,
) -> Transition {
    let Some(host) = freshest(slot.map(|s| &s.host), observed) else {
        return Transition::nothing();
    };
    let mut next = match (slot, target) {
        (Some(s), _) => s.clone(),
        (None, Some(t)) => Slot::new(&t.environment, &t.cluster_arn, host.clone()),
        (None, None) => return Transition::nothing(),
    };
    next.host = host;
    let mut effect = Effect::None;

    if next.host.is_eligible() {
        next.expires_at = None;
        if let Some(t) = target {
            // The backoff was earned by another revision: a new one gets its own chances.
            let new_revision = next.task_definition.as_deref() != Some(t.task_definition.as_str());
            match &next.task {
                SlotTask::Vacant if now_ms >= next.retry_at_ms || new_revision => {
                    if new_revision {
                        next.failures = 0;
                        next.retry_at_ms = 0;
                    }
                    next.task = SlotTask::Launching {
                        claim_id: claim_id.to_owned(),
                        since_ms: now_ms,
                    };
                    next.deployment_id = Some(t.deployment_id.clone());
                    next.task_definition = Some(t.task_definition.clone());
                    next.tracked_by = t.tracking.clone();
                    next.bake_ms = t.bake_ms;
                    next.baking = false;
                    effect = Effect::Start;
                }
                // Running the wanted task definition: an in-progress deployment counts it as it is.
                _ if t.tracking.is_some()
                    && next.tracked_by != t.tracking
                    && (next.task == SlotTask::Vacant
                        || next.task_definition.as_deref() == Some(t.task_definition.as_str())) =>
                {
                    next.tracked_by = t.tracking.clone();
                }
                _ => {}
            }
        }
    } else {
        // Not eligible: nothing new, and an in-progress deployment no longer waits for this host.
        next.tracked_by = None;
        // Drain-last: the daemon stays while the host's other tasks drain (unless nobody counted).
        let draining_others = next.host.status == HostStatus::Draining
            && next.host.other_tasks.is_some_and(|n| n > 0);
        let leaving = next.host.status == HostStatus::Draining || next.host.status.is_gone();
        if leaving && !draining_others {
            if let SlotTask::Pending { task_arn, .. } | SlotTask::Running { task_arn, .. } =
                &next.task
            {
                effect = Effect::Stop {
                    task_arn: task_arn.clone(),
                    reason: stop_reason(&format!("host is {:?}", next.host.status)),
                };
                next.task = SlotTask::Stopping {
                    task_arn: task_arn.clone(),
                };
            }
        }
        if next.host.status.is_gone() && next.task == SlotTask::Vacant {
            next.expires_at = Some(now_ms / 1000 + GONE_HOST_TTL_SECS);
        }
    }
    Transition::write_if_changed(slot, next, effect)
}

/// Decide on one observation of a task of this slot's environment on this slot's host.
/// A stop we did not ask for frees the slot, counts a failure and (when no backoff runs) claims the
/// slot again at once, in the same write.
pub fn plan_task(slot: &Slot, task: &TaskObservation, now_ms: i64, claim_id: &str) -> Transition {
    let mut next = slot.clone();
    let alive = !task.last_status.is_stopping() && !task.desired_status.is_stopped();
    let ours = slot.task.task_arn() == Some(task.task_arn.as_str());

    if ours {
        let known_version = match &slot.task {
            SlotTask::Pending { version, .. } | SlotTask::Running { version, .. } => *version,
            _ => i64::MIN,
        };
        if task.version <= known_version {
            return Transition::nothing(); // duplicate or older event
        }
        if task.last_status.is_stopped() {
            let asked = matches!(slot.task, SlotTask::Stopping { .. }) || task.stopped_by_us();
            next.task = SlotTask::Vacant;
            next.baking = false;
            next.retire(&task.task_arn);
            if !asked {
                // Stopped before it proved healthy: the revision failed on this host.
                if !slot.is_available() && slot.tracked_by.is_some() {
                    next.failed_in = slot.tracked_by.clone();
                }
                let healthy_run = task.ran_for_ms.unwrap_or(0) >= BACKOFF_RESET_AFTER_MS;
                next.failures = if healthy_run { 1 } else { slot.failures + 1 };
                next.retry_at_ms = now_ms + restart_delay_ms(next.failures);
                next.last_failure = Some(
                    task.stopped_reason
                        .clone()
                        .unwrap_or_else(|| "task stopped".to_owned()),
                );
            }
            // Restart right away when the host still wants it and no backoff runs.
            let target = target_of(&next);
            let restart = plan_host(target.as_ref(), Some(&next), None, now_ms, claim_id);
            if let Some(restarted) = restart.next {
                return Transition::write_if_changed(Some(slot), restarted, restart.effect);
            }
            return Transition::write_if_changed(Some(slot), next, Effect::None);
        }
        match &slot.task {
            SlotTask::Pending { task_arn, .. } | SlotTask::Running { task_arn, .. } if alive => {
                next.task = if task.last_status == crate::domain::TaskStatus::Running {
                    let since_ms = match &slot.task {
                        SlotTask::Running { since_ms, .. } => *since_ms,
                        _ => now_ms,
                    };
                    // A daemon that reached RUNNING is no failure of this deployment.
                    next.last_failure = None;
                    if !matches!(slot.task, SlotTask::Running { .. }) {
                        next.baking = slot.bake_ms > 0;
                    }
                    SlotTask::Running {
                        task_arn: task_arn.clone(),
                        version: task.version,
                        since_ms,
                    }
                } else {
                    SlotTask::Pending {
                        task_arn: task_arn.clone(),
                        version: task.version,
                    }
                };
            }
            _ => return Transition::nothing(),
        }
        return Transition::write_if_changed(Some(slot), next, Effect::None);
    }

    if !alive || slot.retired.contains(&task.task_arn) {
        // An old or duplicate task of ours ended, or a late event of a task we saw stop.
        return Transition::nothing();
    }
    match &slot.task {
        // Our launch is in flight and this task carries its mark: it is that launch (or the orphan of
        // an earlier attempt). Adopt it; the launcher stops its own if it gets another.
        SlotTask::Launching { .. } if task.started_by == slot.deployment_id => {
            next.task = adopted(task, now_ms);
            next.baking = next.bake_ms > 0 && matches!(next.task, SlotTask::Running { .. });
            Transition::write_if_changed(Some(slot), next, Effect::None)
        }
        // A task of ours we lost track of (lost record, started by hand in our group): keep it.
        SlotTask::Vacant if slot.host.is_eligible() => {
            next.task = adopted(task, now_ms);
            next.deployment_id = task.started_by.clone().or(next.deployment_id);
            Transition::write_if_changed(Some(slot), next, Effect::None)
        }
        // The host already has its task: this one is a duplicate (or the host is leaving).
        _ => Transition {
            next: None,
            effect: Effect::Stop {
                task_arn: task.task_arn.clone(),
                reason: stop_reason(if slot.task.is_occupied() {
                    "duplicate daemon task on this host"
                } else {
                    "host is not eligible"
                }),
            },
        },
    }
}

/// After StartTask returned `task_arn` for this claim: record it, and stop it again at once if the
/// host turned ineligible meanwhile.
pub fn plan_started(slot: &Slot, claim_id: &str, task_arn: &str, now_ms: i64) -> Transition {
    match &slot.task {
        SlotTask::Launching { claim_id: c, .. } if c == claim_id => {
            let mut next = slot.clone();
            next.task = SlotTask::Pending {
                task_arn: task_arn.to_owned(),
                version: 0,
            };
            let follow = plan_host(None, Some(&next), None, now_ms, claim_id);
            Transition::write_if_changed(Some(slot), follow.next.unwrap_or(next), follow.effect)
        }
        // The slot already names this task (its event came first): nothing to record.
        _ if slot.task.task_arn() == Some(task_arn) => Transition::nothing(),
        // The claim was superseded (adopted another task, environment deleted): ours is a duplicate.
        _ => Transition {
            next: None,
            effect: Effect::Stop {
                task_arn: task_arn.to_owned(),
                reason: stop_reason("superseded launch"),
            },
        },
    }
}

/// StartTask refused this host (ECS's reason): free the slot with a failure and a backoff.
pub fn plan_start_failed(slot: &Slot, claim_id: &str, reason: &str, now_ms: i64) -> Transition {
    match &slot.task {
        SlotTask::Launching { claim_id: c, .. } if c == claim_id => {
            let mut next = slot.clone();
            next.task = SlotTask::Vacant;
            next.failures = slot.failures + 1;
            next.retry_at_ms = now_ms + restart_delay_ms(next.failures).max(1_000);
            next.last_failure = Some(reason.to_owned());
            if slot.tracked_by.is_some() {
                next.failed_in = slot.tracked_by.clone();
            }
            Transition::write_if_changed(Some(slot), next, Effect::None)
        }
        _ => Transition::nothing(),
    }
}

/// StartTask was throttled: nothing started and nothing failed; free the claim so the next event
/// or reconcile launches again (not before a second has passed).
pub fn plan_start_throttled(slot: &Slot, claim_id: &str, now_ms: i64) -> Transition {
    match &slot.task {
        SlotTask::Launching { claim_id: c, .. } if c == claim_id => {
            let mut next = slot.clone();
            next.task = SlotTask::Vacant;
            next.retry_at_ms = next.retry_at_ms.max(now_ms + 1_000);
            Transition::write_if_changed(Some(slot), next, Effect::None)
        }
        _ => Transition::nothing(),
    }
}

/// A claim whose writer went quiet past the lease. The caller has looked the host's tasks up in
/// ECS: `found` is a live task of ours there (adopt it), or none (free the slot to launch again).
pub fn plan_expired_claim(slot: &Slot, found: Option<&TaskObservation>, now_ms: i64) -> Transition {
    match &slot.task {
        SlotTask::Launching { since_ms, .. } if now_ms - since_ms >= CLAIM_LEASE_MS => {
            let mut next = slot.clone();
            next.task = match found {
                Some(task) => adopted(task, now_ms),
                None => SlotTask::Vacant,
            };
            Transition::write_if_changed(Some(slot), next, Effect::None)
        }
        _ => Transition::nothing(),
    }
}

/// A new task that has stayed RUNNING for its bake time now counts as healthy.
pub fn plan_baked(slot: &Slot, now_ms: i64) -> Transition {
    match &slot.task {
        SlotTask::Running { since_ms, .. } if slot.baking && now_ms - since_ms >= slot.bake_ms => {
            let mut next = slot.clone();
            next.baking = false;
            Transition::write_if_changed(Some(slot), next, Effect::None)
        }
        _ => Transition::nothing(),
    }
}

/// Whether a rolling deployment to `target` still has to replace this host's task: an eligible
/// host whose live task runs another task definition.
pub fn needs_replacement(target: &Target, slot: &Slot) -> bool {
    slot.host.is_eligible()
        && matches!(
            slot.task,
            SlotTask::Pending { .. } | SlotTask::Running { .. }
        )
        && slot.task_definition.as_deref() != Some(target.task_definition.as_str())
}

/// One step of a rolling update on one host: stop the old task; its STOPPED event starts the new
/// revision on the host (daemons often bind host ports, so never both at once). The slot already
/// points at the new revision and counts as pending for the deployment until that task is healthy.
pub fn plan_replace(target: &Target, slot: &Slot) -> Transition {
    if !needs_replacement(target, slot) {
        return Transition::nothing();
    }
    let Some(old) = slot.task.task_arn().map(str::to_owned) else {
        return Transition::nothing();
    };
    let mut next = slot.clone();
    next.task = SlotTask::Stopping {
        task_arn: old.clone(),
    };
    next.deployment_id = Some(target.deployment_id.clone());
    next.task_definition = Some(target.task_definition.clone());
    next.tracked_by = target.tracking.clone();
    next.bake_ms = target.bake_ms;
    next.baking = false;
    next.failures = 0;
    next.retry_at_ms = 0;
    next.last_failure = None;
    Transition::write_if_changed(
        Some(slot),
        next,
        Effect::Stop {
            task_arn: old,
            reason: stop_reason(&format!("replaced by deployment {}", target.deployment_id)),
        },
    )
}

pub fn claim_expired(slot: &Slot, now_ms: i64) -> bool {
    matches!(slot.task, SlotTask::Launching { since_ms, .. } if now_ms - since_ms >= CLAIM_LEASE_MS)
}

fn adopted(task: &TaskObservation, now_ms: i64) -> SlotTask {
    if task.last_status == crate::domain::TaskStatus::Running {
        SlotTask::Running {
            task_arn: task.task_arn.clone(),
            version: task.version,
            since_ms: now_ms,
        }
    } else {
        SlotTask::Pending {
            task_arn: task.task_arn.clone(),
            version: task.version,
        }
    }
}

/// The target a slot restarts toward: the task definition and deployment it last launched.
fn target_of(slot: &Slot) -> Option<Target> {
    Some(Target {
        environment: slot.environment.clone(),
        cluster_arn: slot.cluster_arn.clone(),
        task_definition: slot.task_definition.clone()?,
        deployment_id: slot.deployment_id.clone()?,
        tracking: slot.tracked_by.clone(),
        bake_ms: slot.bake_ms,
    })
}

impl Transition {
    pub fn nothing() -> Self {
        Self {
            next: None,
            effect: Effect::None,
        }
    }

    fn write_if_changed(before: Option<&Slot>, next: Slot, effect: Effect) -> Self {
        let changed = before != Some(&next);
        Self {
            next: changed.then_some(next),
            effect,
        }
    }

    pub fn is_nothing(&self) -> bool {
        self.next.is_none() && self.effect == Effect::None
    }
}

/// Where a tracked slot stands for its deployment's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Pending,
    Running,
    Failed,
}

pub fn bucket(slot: &Slot) -> Option<(&str, Bucket)> {
    let deployment = slot.tracked_by.as_deref()?;
    let bucket = match slot.task {
        SlotTask::Running { .. } if !slot.baking => Bucket::Running,
        SlotTask::Vacant if slot.last_failure.is_some() => Bucket::Failed,
        _ => Bucket::Pending,
    };
    Some((deployment, bucket))
}

/// Change of one deployment's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: i64,
    pub pending: i64,
    pub running: i64,
    pub failed: i64,
    /// Hosts newly failing the deployment's revision (never decreases).
    pub failed_hosts: i64,
}

impl Counts {
    fn add(&mut self, bucket: Bucket, by: i64) {
        self.desired += by;
        match bucket {
            Bucket::Pending => self.pending += by,
            Bucket::Running => self.running += by,
            Bucket::Failed => self.failed += by,
        }
    }
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
    pub fn absorb(&mut self, other: &Counts) {
        self.desired += other.desired;
        self.pending += other.pending;
        self.running += other.running;
        self.failed += other.failed;
        self.failed_hosts += other.failed_hosts;
    }
}

/// The counter changes a slot write carries, per deployment (at most two: the one it leaves and the
/// one it joins). Counters always equal the sum of `bucket` over the slots a deployment tracks.
pub fn counter_deltas(before: Option<&Slot>, after: &Slot) -> Vec<(String, Counts)> {
    let mut out: Vec<(String, Counts)> = Vec::new();
    let mut add = |slot: Option<&Slot>, by: i64| {
        if let Some((dep, b)) = slot.and_then(bucket) {
            match out.iter_mut().find(|(d, _)| d == dep) {
                Some((_, c)) => c.add(b, by),
                None => {
                    let mut c = Counts::default();
                    c.add(b, by);
                    out.push((dep.to_owned(), c));
                }
            }
        }
    };
    add(before, -1);
    add(Some(after), 1);
    if let Some(dep) = after.failed_in.as_deref() {
        if before.and_then(|b| b.failed_in.as_deref()) != Some(dep) {
            match out.iter_mut().find(|(d, _)| d == dep) {
                Some((_, c)) => c.failed_hosts += 1,
                None => out.push((
                    dep.to_owned(),
                    Counts {
                        failed_hosts: 1,
                        ..Counts::default()
                    },
                )),
            }
        }
    }
    out.retain(|(_, c)| !c.is_zero());
    out
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
