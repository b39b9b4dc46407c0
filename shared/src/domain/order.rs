//! The order between daemons on one host (`dependsOn`), and what a slot's own record says to do
//! once its dependencies are weighed.

use super::placement::{Placement, Verdict};
use super::slot::{Slot, SlotTask};

/// How one environment's dependencies and dependents stand on one host (`dependsOn`): a daemon
/// starts once those it depends on run there, and on a host that drains it stops before them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Order {
    /// Dependencies that will never run here, with why.
    pub never: Vec<String>,
    /// Dependencies that do not run (healthy) here yet, with why.
    pub not_yet: Vec<String>,
    /// A daemon that depends on this one still has a task here.
    pub dependents_live: bool,
}

impl Order {
    /// No daemon to wait for, and none waiting on this one.
    pub fn none() -> Self {
        Self::default()
    }

    /// From the other environments' slots on the same host (`neighbours` may include the
    /// environment's own slot; it is ignored).
    pub fn on_host<'a>(
        environment: &str,
        depends_on: &[String],
        neighbours: impl IntoIterator<Item = &'a Slot> + Clone,
    ) -> Self {
        let mut order = Self::default();
        for dep in depends_on {
            let slot = neighbours
                .clone()
                .into_iter()
                .find(|s| &s.environment == dep);
            match slot {
                Some(s) if s.is_available() => {}
                Some(s) if !s.placement.is_desired() && !s.task.is_occupied() => {
                    order.never.push(format!(
                        "{dep} does not run on this host ({})",
                        s.placement.reason().unwrap_or("not placed")
                    ))
                }
                Some(s) => order.not_yet.push(format!(
                    "waiting for {dep} to run here ({})",
                    phase_words(&s.task)
                )),
                None => order.not_yet.push(format!("waiting for {dep} to run here")),
            }
        }
        order.dependents_live = neighbours.into_iter().any(|s| {
            s.environment != environment
                && s.depends_on.iter().any(|d| d == environment)
                && s.task.is_occupied()
        });
        order
    }

    /// The verdict a slot's own record gives, without a fresh look at its host: what it was, with
    /// the dependencies re-checked (they may have come up, or gone, since). `None`: the record
    /// holds nothing to launch.
    pub fn verdict(&self, slot: &Slot) -> Option<Verdict> {
        match &slot.placement {
            // What another revision cannot run here does not stop this host's own launch from
            // running again (the host keeps the revision it has).
            Placement::Unschedulable { revision, .. }
                if slot
                    .launch
                    .as_ref()
                    .is_some_and(|l| l.revision != *revision) =>
            {
                self.launch_again(slot)
            }
            Placement::Unschedulable { reason, .. } => Some(Verdict::Unschedulable(reason.clone())),
            Placement::Excluded { reason } => Some(Verdict::Excluded {
                reason: reason.clone(),
                blocked: false,
            }),
            Placement::Runs | Placement::Waiting { .. } | Placement::Blocked { .. } => {
                self.launch_again(slot)
            }
        }
    }

    /// The slot's own launch, once the daemons it depends on run here.
    fn launch_again(&self, slot: &Slot) -> Option<Verdict> {
        if let Some(reason) = self.blocked() {
            return Some(Verdict::Excluded {
                reason,
                blocked: true,
            });
        }
        let launch = slot.launch.clone()?;
        Some(match self.waiting() {
            Some(reason) => Verdict::Wait { launch, reason },
            None => Verdict::Run(launch),
        })
    }

    pub fn blocked(&self) -> Option<String> {
        (!self.never.is_empty()).then(|| self.never.join("; "))
    }

    pub fn waiting(&self) -> Option<String> {
        (!self.not_yet.is_empty()).then(|| self.not_yet.join("; "))
    }
}

fn phase_words(task: &SlotTask) -> &'static str {
    match task {
        SlotTask::Vacant => "not started",
        SlotTask::Launching { .. } => "launching",
        SlotTask::Pending { .. } => "pending",
        SlotTask::Running { .. } => "not healthy yet",
        SlotTask::Stopping { .. } => "stopping",
    }
}
