//! Work: one slot to decide on, and how — the unit the executor writes and acts on. Every kind of
//! work the use cases hand the executor is built here, so each decision is wired to the planner
//! in one place: a decision is re-run on the slot as it is whenever a write loses a race.

use crate::domain::{Host, Order, Slot, SlotKey, Target, TaskObservation, Verdict};
use crate::planner::{
    plan_baked, plan_due, plan_expired_claim, plan_host, plan_replace, plan_restart,
    plan_start_refused, plan_start_throttled, plan_surge, plan_task, Effect, Transition,
};

/// A decision for one slot, re-run on whatever the slot turns out to be.
/// Arguments: the slot as it is, a fresh claim id, now (epoch ms).
pub type Decide = Box<dyn Fn(Option<&Slot>, &str, i64) -> Transition + Send + Sync>;

pub struct Work {
    pub key: SlotKey,
    /// The slot as read, or as assumed (`None`: assumed absent; a wrong guess costs a retry).
    pub current: Option<Slot>,
    pub decide: Decide,
    /// What the caller knows of the environment's in-progress deployment.
    pub live: Live,
    /// A rolling update's budget (see `SlotWrite::pending_cap`).
    pub pending_cap: Option<i64>,
}

/// An environment has at most one deployment in progress; when the caller knows which (from the
/// environment or the deployment itself), a slot still counted by any other one is counted by a
/// finished deployment, whose counters must not move any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    Unknown,
    Is(Option<String>),
}

impl Work {
    /// Work on a slot as read: `decide` on the slot as it is when written (re-read after a lost
    /// race), `if_gone` when it has disappeared meanwhile.
    pub fn on_slot(
        slot: &Slot,
        if_gone: Transition,
        decide: impl Fn(&Slot, &str, i64) -> Transition + Send + Sync + 'static,
    ) -> Self {
        Work {
            key: slot.key(),
            current: Some(slot.clone()),
            live: Live::Unknown,
            pending_cap: None,
            decide: Box::new(move |cur, claim, now| match cur {
                Some(s) => decide(s, claim, now),
                None => if_gone.clone(),
            }),
        }
    }

    /// One host of `target`'s environment, as `observed` (or from the record alone): claim,
    /// keep, wait or stop. `then_bake`: when nothing else changes, a new task's bake may be over.
    pub fn host(
        target: &Target,
        host_arn: &str,
        current: Option<Slot>,
        observed: Option<Host>,
        order: Order,
        then_bake: bool,
    ) -> Self {
        let target = target.clone();
        Work {
            key: SlotKey {
                environment: target.environment.clone(),
                container_instance_arn: host_arn.to_owned(),
            },
            current,
            // The environment's deployment in progress, even one that does not count this host
            // (a canary awaiting promotion): a slot it counts is not a finished deployment's.
            live: Live::Is(target.rollout.clone()),
            pending_cap: None,
            decide: Box::new(move |slot, claim, now| {
                let t = plan_host(Some(&target), slot, observed.as_ref(), &order, now, claim);
                match slot {
                    Some(s) if then_bake && t.is_nothing() => plan_baked(s, now),
                    _ => t,
                }
            }),
        }
    }

    /// A task of ours observed on this slot's host.
    pub fn task(slot: &Slot, task: TaskObservation, order: Order) -> Self {
        Self::on_slot(slot, Transition::nothing(), move |cur, claim, now| {
            plan_task(cur, &task, &order, now, claim)
        })
    }

    /// A task of ours observed where we have no record: decided as if on `fresh` (a vacant slot
    /// of the host).
    pub fn task_without_record(fresh: Slot, task: TaskObservation) -> Self {
        Work {
            key: fresh.key(),
            current: None,
            live: Live::Unknown,
            pending_cap: None,
            decide: Box::new(move |cur, claim, now| {
                plan_task(cur.unwrap_or(&fresh), &task, &Order::none(), now, claim)
            }),
        }
    }

    /// Launch the slot's own launch again if its record allows (a due restart, a release).
    pub fn restart(slot: &Slot, order: Order) -> Self {
        Self::on_slot(slot, Transition::nothing(), move |cur, claim, now| {
            plan_restart(cur, &order, now, claim)
        })
    }

    /// Replace this host's task for `target` by starting the new one beside it (`plan_surge`;
    /// `verdict` decided with the old one still there), within the deployment's budget.
    pub fn surge(target: &Target, slot: &Slot, verdict: Verdict, pending_cap: Option<i64>) -> Self {
        let target = target.clone();
        let mut w = Self::on_slot(slot, Transition::nothing(), move |cur, claim, now| {
            plan_surge(&target, cur, &verdict, now, claim)
        });
        w.pending_cap = pending_cap;
        w
    }

    /// Replace this host's task for `target` (its verdict there), within the deployment's budget.
    pub fn replace(
        target: &Target,
        slot: &Slot,
        verdict: Verdict,
        pending_cap: Option<i64>,
    ) -> Self {
        let target = target.clone();
        let mut w = Self::on_slot(slot, Transition::nothing(), move |cur, _, _| {
            plan_replace(&target, cur, &verdict)
        });
        w.pending_cap = pending_cap;
        w
    }

    /// A wake-up for this slot: its bake may be over, or its restart due (`plan_due`); `live` is
    /// the environment's deployment in progress.
    pub fn due(slot: &Slot, order: Order, live: Option<&str>) -> Self {
        let mut w = Self::on_slot(slot, Transition::nothing(), move |cur, claim, now| {
            plan_due(cur, &order, now, claim)
        });
        w.live = Live::Is(live.map(str::to_owned));
        w
    }

    /// The deployment no longer waits for this host (its breaker already counted the failure).
    pub fn untrack(slot: &Slot, deployment: &str) -> Self {
        let id = deployment.to_owned();
        let mut w = Self::on_slot(slot, Transition::nothing(), move |cur, _, _| {
            if cur.tracked_by.as_deref() != Some(id.as_str()) {
                return Transition::nothing();
            }
            let mut next = cur.clone();
            next.tracked_by = None;
            Transition {
                next: Some(next),
                effect: Effect::None,
            }
        });
        w.live = Live::Is(Some(deployment.to_owned()));
        w
    }

    /// A claim past its lease: adopt what ECS runs under its mark there, or free it.
    pub fn expired_claim(slot: &Slot, found: Option<TaskObservation>) -> Self {
        Self::on_slot(slot, Transition::nothing(), move |cur, _, now| {
            plan_expired_claim(cur, found.as_ref(), now)
        })
    }

    /// Ask ECS again to stop a task whose stop did not take.
    pub fn stop_again(slot: &Slot, task_arn: &str) -> Self {
        let stop = Effect::Stop {
            task_arn: task_arn.to_owned(),
            reason: format!(
                "{}stop requested again",
                crate::domain::task::STOP_REASON_PREFIX
            ),
        };
        Self::on_slot(slot, Transition::nothing(), move |_, _, _| {
            Transition::only(stop.clone())
        })
    }

    /// StartTask refused this claim (ECS's reason).
    pub fn start_refused(slot: &Slot, claim_id: &str, reason: &str) -> Self {
        let (claim, reason) = (claim_id.to_owned(), reason.to_owned());
        Self::on_slot(slot, Transition::nothing(), move |cur, _, now| {
            plan_start_refused(cur, &claim, &reason, now)
        })
    }

    /// StartTask was throttled for this claim.
    pub fn start_throttled(slot: &Slot, claim_id: &str) -> Self {
        let claim = claim_id.to_owned();
        Self::on_slot(slot, Transition::nothing(), move |cur, _, now| {
            plan_start_throttled(cur, &claim, now)
        })
    }
}
