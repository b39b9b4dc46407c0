//! A deployment's counters are the sum over the slots it tracks of where each stands; every slot
//! write carries the change it causes, decided here, so the store only encodes it (in the same
//! transaction as the slot: a duplicated event whose compare-and-swap fails never counts twice).
//! So does the host's history: the write appends the transitions it makes (`history::entries`).

use crate::domain::{HostFailure, Slot, SlotTask};

/// Where a tracked slot stands for its deployment's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Pending,
    Running,
    Failed,
}

/// `None`: not counted (untracked, or a host the revision does not run on and that runs nothing).
pub fn bucket(slot: &Slot) -> Option<(&str, Bucket)> {
    let deployment = slot.tracked_by.as_deref()?;
    if !slot.placement.is_desired() && !slot.task.is_occupied() {
        return None;
    }
    let bucket = match slot.task {
        // Running with a failure recorded: a surge's new task failed and the old one runs on.
        SlotTask::Running { .. } if !slot.baking && slot.last_failure.is_none() => Bucket::Running,
        SlotTask::Running { .. } if slot.last_failure.is_some() => Bucket::Failed,
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
    fn entry<'a>(out: &'a mut Vec<(String, Counts)>, dep: &str) -> &'a mut Counts {
        match out.iter().position(|(d, _)| d == dep) {
            Some(i) => &mut out[i].1,
            None => {
                out.push((dep.to_owned(), Counts::default()));
                &mut out.last_mut().expect("just pushed").1
            }
        }
    }
    let mut out: Vec<(String, Counts)> = Vec::new();
    if let Some((dep, b)) = before.and_then(bucket) {
        entry(&mut out, dep).add(b, -1);
    }
    if let Some((dep, b)) = bucket(after) {
        entry(&mut out, dep).add(b, 1);
    }
    if let Some(dep) = after.failed_in.as_deref() {
        if before.and_then(|b| b.failed_in.as_deref()) != Some(dep) {
            entry(&mut out, dep).failed_hosts += 1;
        }
    }
    out.retain(|(_, c)| !c.is_zero());
    out
}

/// A compare-and-swap of one slot (from `before`, `None`: it must not exist, to `after`) with what
/// the write must also do, decided here and only encoded by the store.
#[derive(Debug, Clone)]
pub struct SlotWrite {
    pub before: Option<Slot>,
    pub after: Slot,
    /// A rolling update's budget: the write must leave the deployment it joins with at most this
    /// many pending hosts, or it is not made (`OverBudget`).
    pub pending_cap: Option<i64>,
    /// The counter changes, per deployment (each conditional on the deployment being in progress).
    pub counters: Vec<(String, Counts)>,
    /// It takes the slot from free to claimed: the environment must still be active.
    pub claims: bool,
    /// Hosts to list on a deployment as failed, with ECS's reason.
    pub failures: Vec<(String, HostFailure)>,
}

impl SlotWrite {
    /// The write of `after` (stamped with the instant of the decision, `updated_at_ms`) over
    /// `before`; `after` gains the history entries of the transitions it makes.
    pub fn new(before: Option<Slot>, mut after: Slot, pending_cap: Option<i64>) -> Self {
        let happened = super::history::entries(before.as_ref(), &after, after.updated_at_ms);
        after.history.record(happened);
        let counters = counter_deltas(before.as_ref(), &after);
        let claims = matches!(after.task, SlotTask::Launching { .. })
            && !before
                .as_ref()
                .is_some_and(|b| matches!(b.task, SlotTask::Launching { .. }));
        let failures = newly_failed(before.as_ref(), &after)
            .map(|dep| {
                let failure = HostFailure {
                    container_instance_arn: after.host.container_instance_arn.clone(),
                    reason: after.last_failure.clone().unwrap_or_default(),
                };
                vec![(dep.to_owned(), failure)]
            })
            .unwrap_or_default();
        Self {
            before,
            after,
            pending_cap,
            counters,
            claims,
            failures,
        }
    }
}

/// The deployment on which this write records a failure: the slot turns failed, or the host
/// fails the deployment's revision for the first time (even when it restarts at once).
fn newly_failed<'a>(before: Option<&Slot>, after: &'a Slot) -> Option<&'a str> {
    let was = before.and_then(bucket).map(|(_, b)| b);
    if let Some((dep, Bucket::Failed)) = bucket(after) {
        if was != Some(Bucket::Failed) {
            return Some(dep);
        }
    }
    let first = after.failed_in.as_deref()?;
    (before.and_then(|b| b.failed_in.as_deref()) != Some(first)).then_some(first)
}
