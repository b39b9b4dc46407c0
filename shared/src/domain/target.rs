//! What an environment asks of its hosts right now, and the one decision per host (Kubernetes'
//! `NodeShouldRunDaemonPod`): does the daemon belong on this host, can it run here, with what,
//! and may it start yet. A new placement rule is a new step in `wants` and a planner case.

use std::sync::Arc;

use super::host::Host;
use super::launch::LaunchSpec;
use super::order::Order;
use super::placement::{SizingRule, Verdict};
use super::resources::Reservation;
use super::spec::DaemonSpec;
use super::task::task_group;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub environment: String,
    pub cluster_arn: String,
    /// The revision being run.
    pub revision: u32,
    pub spec: Arc<DaemonSpec>,
    /// `startedBy` of the tasks it launches.
    pub deployment_id: String,
    /// The deployment in progress that counts the slots it claims, if any.
    pub tracking: Option<String>,
    /// The environment's deployment in progress, whether or not it counts these slots (a canary
    /// waiting for promotion does not): outside one, the reconciler replaces other revisions.
    pub rollout: Option<String>,
}

impl Target {
    pub fn new(
        environment: &str,
        cluster_arn: &str,
        revision: u32,
        spec: &DaemonSpec,
        deployment_id: &str,
        tracking: Option<&str>,
    ) -> Self {
        Self {
            environment: environment.to_owned(),
            cluster_arn: cluster_arn.to_owned(),
            revision,
            spec: Arc::new(spec.clone()),
            deployment_id: deployment_id.to_owned(),
            tracking: tracking.map(str::to_owned),
            rollout: tracking.map(str::to_owned),
        }
    }

    /// The same, while `rollout` (the environment's deployment in progress) is under way.
    pub fn in_rollout(mut self, rollout: Option<&str>) -> Self {
        self.rollout = rollout.map(str::to_owned);
        self
    }

    pub fn bake_ms(&self) -> i64 {
        self.spec.bake_ms()
    }

    /// The decision for one host. `order` says how its dependencies stand there; `own` is what
    /// the environment's task already on the host reserves (a replacement gets it back).
    ///
    /// In order: selected by every placement constraint; no dependency that will never run here;
    /// the launch filled in for the host (placeholders, sizing); the platform (OS, architecture,
    /// required attributes); room (CPU, memory, ports); dependencies running here yet.
    pub fn wants(&self, host: &Host, order: &Order, own: Option<&Reservation>) -> Verdict {
        if let Some(c) = self
            .spec
            .placement_constraints
            .iter()
            .find(|c| !c.expression.matches(host))
        {
            return Verdict::Excluded {
                reason: format!("not selected by {}", c.expression),
                blocked: false,
            };
        }
        if let Some(reason) = order.blocked() {
            return Verdict::Excluded {
                reason,
                blocked: true,
            };
        }
        let launch = match self.launch_for(host) {
            Ok(l) => l,
            Err(reason) => return Verdict::Unschedulable(reason),
        };
        if let Err(reason) = self.spec.needs.platform_fit(host) {
            return Verdict::Unschedulable(reason);
        }
        if let Some(remaining) = &host.remaining {
            if let Err(reason) = launch.reserves.fits(remaining, own) {
                return Verdict::Unschedulable(reason);
            }
        }
        match order.waiting() {
            Some(reason) => Verdict::Wait { launch, reason },
            None => Verdict::Run(launch),
        }
    }

    /// The launch on `host`: the overrides with its values filled in, then its size.
    fn launch_for(&self, host: &Host) -> Result<LaunchSpec, String> {
        let mut overrides = match &self.spec.overrides {
            Some(o) => o.resolve(host)?,
            None => Default::default(),
        };
        if let Some(rule) = SizingRule::first_match(&self.spec.sizing, host) {
            overrides = overrides.sized(rule.cpu.as_deref(), rule.memory.as_deref());
            overrides.check_size()?;
        }
        let overrides = (!overrides.is_empty()).then_some(overrides);
        Ok(LaunchSpec {
            task_definition: self.spec.task_definition.clone(),
            revision: self.revision,
            started_by: self.deployment_id.clone(),
            group: task_group(&self.environment),
            reserves: self.spec.needs.reservation(overrides.as_ref()),
            overrides,
        })
    }
}
