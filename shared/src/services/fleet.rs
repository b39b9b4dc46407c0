//! A cluster's hosts as one environment sees them: each host with its slot and how the daemons it
//! depends on (and those depending on it) stand there. What a deployment step and a reconcile
//! decide from, read once.

use std::collections::HashMap;

use crate::domain::{Host, Order, Slot, Target, Verdict};
use crate::planner::{launch_to_replace, needs_replacement};
use crate::work::Work;

/// One host, its slot, its neighbours' order.
#[derive(Debug, Clone)]
pub struct Seat {
    pub host: Host,
    /// The slot as read.
    pub slot: Option<Slot>,
    pub order: Order,
}

impl Seat {
    /// The slot with the host as ECS shows it now (when that is newer than its record): what a
    /// replacement is decided on. The slot as read stays what writes compare against.
    fn slot_now(&self) -> Option<Slot> {
        let mut slot = self.slot.clone()?;
        if self.host.state.version > slot.host.version {
            slot.host = self.host.state.clone();
        }
        Some(slot)
    }

    /// `Target::wants` with the environment's task on the host still running: what a surge
    /// replacement (both tasks at once) is decided on.
    pub fn verdict_alongside(&self, target: &Target) -> Verdict {
        target.wants(&self.host, &self.order, None)
    }

    /// `Target::wants` here; what the environment's task on the host already holds counts as free.
    pub fn verdict(&self, target: &Target) -> Verdict {
        let own = self
            .slot
            .as_ref()
            .filter(|s| s.task.is_occupied())
            .and_then(|s| s.launch.as_ref())
            .map(|l| &l.reserves);
        target.wants(&self.host, &self.order, own)
    }
}

pub struct Fleet {
    pub seats: Vec<Seat>,
}

impl Fleet {
    /// `hosts` as ECS lists them, `slots` the environment's, `neighbours` the slots of the other
    /// environments on the cluster (only those its ordering involves are needed).
    pub fn new(target: &Target, hosts: Vec<Host>, slots: Vec<Slot>, neighbours: &[Slot]) -> Self {
        let mut by_host: HashMap<String, Slot> = slots
            .into_iter()
            .map(|s| (s.host.container_instance_arn.clone(), s))
            .collect();
        let mut around: HashMap<&str, Vec<&Slot>> = HashMap::new();
        for s in neighbours {
            around
                .entry(s.host.container_instance_arn.as_str())
                .or_default()
                .push(s);
        }
        let seats = hosts
            .into_iter()
            .map(|host| {
                let slot = by_host.remove(host.arn());
                let others = around.get(host.arn()).cloned().unwrap_or_default();
                let order = Order::on_host(&target.environment, &target.spec.depends_on, others);
                Seat { host, slot, order }
            })
            .collect();
        Self { seats }
    }

    /// Hosts the revision places its daemon on (selected and able to run it, eligible): the base
    /// of `maxUnavailable` and of the circuit breaker's threshold.
    pub fn desired(&self, target: &Target) -> usize {
        self.seats
            .iter()
            .filter(|s| s.host.is_eligible())
            .filter(|s| matches!(s.verdict(target), Verdict::Run(_) | Verdict::Wait { .. }))
            .count()
    }

    /// Every host planned for `target` as ECS shows it now (claims where nothing runs, stops
    /// where the daemon does not belong or the host left). `then_bake`: where nothing else
    /// changes, a new task's bake may be over.
    pub fn converge(&self, target: &Target, then_bake: bool) -> Vec<Work> {
        self.seats
            .iter()
            .map(|s| {
                Work::host(
                    target,
                    s.host.arn(),
                    s.slot.clone(),
                    Some(s.host.clone()),
                    s.order.clone(),
                    then_bake,
                )
            })
            .collect()
    }

    /// Hosts where a launch of something `target` would replace is in flight: once its task shows
    /// up, it is a replacement like any other.
    pub fn launching_to_replace(&self, target: &Target) -> usize {
        self.seats
            .iter()
            .filter(|seat| {
                seat.slot_now()
                    .is_some_and(|slot| launch_to_replace(target, &slot, &seat.verdict(target)))
            })
            .count()
    }

    /// Hosts deployment `id` is replacing by surge (a second task on them).
    pub fn surging(&self, id: &str) -> usize {
        self.seats
            .iter()
            .filter_map(|s| s.slot.as_ref())
            .filter(|s| s.tracked_by.as_deref() == Some(id) && s.surge.is_some())
            .count()
    }

    /// The next replacements of `target` among `candidates` (from `replacements`). Without
    /// surge (`surge` None), the old task stops first, while `unavailable` allows. With it, a
    /// host's new task starts beside the old one, while `surge` allows; a host that cannot take
    /// both falls back to stop-then-start, while `unavailable` allows (the caller gives it at
    /// least one: such a host could never be replaced otherwise), and is reported. Each write
    /// keeps the deployment's pending hosts within `cap`.
    pub fn replacement_work(
        &self,
        target: &Target,
        candidates: Vec<(Slot, Verdict)>,
        surge: Option<usize>,
        mut unavailable: usize,
        cap: Option<i64>,
    ) -> (Vec<Work>, Vec<(String, String)>) {
        let mut work = Vec::new();
        let mut fallbacks = Vec::new();
        let Some(mut surge) = surge else {
            for (slot, verdict) in candidates.into_iter().take(unavailable) {
                work.push(Work::replace(target, &slot, verdict, cap));
            }
            return (work, fallbacks);
        };
        for (slot, verdict) in candidates {
            let host = slot.host.container_instance_arn.clone();
            let alongside = self
                .seats
                .iter()
                .find(|s| s.host.arn() == host)
                .map(|s| s.verdict_alongside(target));
            match (alongside, &verdict) {
                (Some(v @ Verdict::Run(_)), Verdict::Run(_)) => {
                    if surge > 0 {
                        work.push(Work::surge(target, &slot, v, cap));
                        surge -= 1;
                    }
                }
                (alongside, _) => {
                    if unavailable > 0 {
                        if let Some(Verdict::Unschedulable(why)) = alongside {
                            fallbacks.push((host, why));
                        }
                        work.push(Work::replace(target, &slot, verdict, cap));
                        unavailable -= 1;
                    }
                }
            }
        }
        (work, fallbacks)
    }

    /// Hosts whose slot deployment `id` counts (a canary's hosts so far).
    pub fn tracked_by(&self, id: &str) -> usize {
        self.seats
            .iter()
            .filter(|s| s.host.is_eligible())
            .filter(|s| {
                s.slot
                    .as_ref()
                    .is_some_and(|slot| slot.tracked_by.as_deref() == Some(id))
            })
            .count()
    }

    /// Hosts whose task `target` still has to replace, with the verdict there: the least
    /// available first (replacing them costs the least), then by host for a stable order.
    pub fn replacements(&self, target: &Target) -> Vec<(Slot, Verdict)> {
        let mut out: Vec<(Slot, Verdict)> = self
            .seats
            .iter()
            .filter_map(|seat| {
                let verdict = seat.verdict(target);
                let now = seat.slot_now()?;
                let read = seat.slot.clone()?;
                needs_replacement(target, &now, &verdict).then_some((read, verdict))
            })
            .collect();
        out.sort_by_key(|(s, _)| (s.is_available(), s.host.container_instance_arn.clone()));
        out
    }
}
