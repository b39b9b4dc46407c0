//! `GET /v1/environments/{name}/status`: DaemonSet-grade counts from the environment's records
//! (no ECS call: the slots are what events and the reconciler last saw).

use serde::Serialize;

use crate::domain::overrides::TaskOverride;
use crate::domain::{Deployment, Environment, Health, Placement, Slot, SlotTask};
use crate::services::views::DeploymentView;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Eligible hosts (ACTIVE, agent connected) the revision places its daemon on and that can
    /// run it (or wait for a daemon it depends on): each should run one task.
    pub desired: usize,
    /// Eligible hosts with a task of ours (launching, pending, running or being replaced).
    pub current: usize,
    /// Eligible hosts whose task is RUNNING.
    pub ready: usize,
    /// Eligible hosts on the active revision's task definition.
    pub updated: usize,
    /// RUNNING for at least the revision's `minHealthySeconds`.
    pub available: usize,
    /// Tasks of ours on hosts that should not run one (draining, gone, agent disconnected).
    pub misscheduled: usize,
    /// desired − available.
    pub unavailable: usize,
    /// Eligible hosts the revision places its daemon on that cannot run it (resources, platform,
    /// a value the host lacks); not desired, not failed.
    pub unschedulable: usize,
    /// Eligible hosts where it waits for a daemon it depends on.
    pub waiting: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostView {
    pub container_instance_arn: String,
    pub host_status: crate::domain::HostStatus,
    pub agent_connected: bool,
    /// runs, waiting, unschedulable or notSelected.
    pub placement: &'static str,
    /// Why it waits, cannot run, or is not selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// vacant, launching, pending, running or stopping.
    pub task: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// What this host got: the revision, the overrides filled in for it, the size it reserves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<LaunchView>,
    pub updated: bool,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Restarts wait for this instant (epoch ms) after repeated failures.
    #[serde(skip_serializing_if = "is_zero")]
    pub retry_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchView {
    pub revision: u32,
    /// CPU units and MiB the task reserves on the host.
    pub cpu: i64,
    pub memory: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TaskOverride>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub active_revision: Option<u32>,
    pub latest_revision: u32,
    pub counts: Counts,
    pub health: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deployment in progress, or else the latest one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<HostView>>,
}

/// The task's phase as the API names it.
pub(crate) fn phase(task: &SlotTask) -> &'static str {
    match task {
        SlotTask::Vacant => "vacant",
        SlotTask::Launching { .. } => "launching",
        SlotTask::Pending { .. } => "pending",
        SlotTask::Running { .. } => "running",
        SlotTask::Stopping { .. } => "stopping",
    }
}

/// The status of `env` from its slots and its latest deployment.
pub fn status(
    env: &Environment,
    slots: &[Slot],
    deployment: Option<Deployment>,
    with_hosts: bool,
) -> Status {
    let active = env.deployed.as_ref().map(|d| d.revision);
    let mut c = Counts::default();
    let mut hosts = Vec::new();
    for s in slots {
        let launch = s.launch.as_ref();
        let updated = active.is_some()
            && launch.map(|l| l.revision) == active
            && s.task.is_occupied()
            && !matches!(s.task, SlotTask::Stopping { .. });
        let available = s.has_healthy_daemon();
        let eligible = s.host.is_eligible();
        if eligible && s.placement.is_desired() {
            c.desired += 1;
            c.current += usize::from(s.task.is_occupied());
            c.ready += usize::from(matches!(s.task, SlotTask::Running { .. }));
            c.updated += usize::from(updated);
            c.available += usize::from(available);
        }
        let misplaced = matches!(
            s.placement,
            Placement::Excluded { .. } | Placement::Blocked { .. }
        );
        if s.task.task_arn().is_some() && (!eligible || misplaced) {
            c.misscheduled += 1;
        }
        if eligible {
            c.unschedulable += usize::from(matches!(s.placement, Placement::Unschedulable { .. }));
            c.waiting += usize::from(matches!(
                s.placement,
                Placement::Waiting { .. } | Placement::Blocked { .. }
            ));
        }
        if with_hosts {
            hosts.push(HostView {
                container_instance_arn: s.host.container_instance_arn.clone(),
                host_status: s.host.status,
                agent_connected: s.host.agent_connected,
                placement: s.placement.label(),
                reason: s.placement.reason().map(str::to_owned),
                task: phase(&s.task),
                task_arn: s.task.task_arn().map(str::to_owned),
                task_definition: s.task_definition().map(str::to_owned),
                launch: launch.map(|l| LaunchView {
                    revision: l.revision,
                    cpu: l.reserves.cpu,
                    memory: l.reserves.memory,
                    overrides: l.overrides.clone(),
                }),
                updated,
                available,
                last_failure: s.last_failure.clone(),
                retry_at_ms: s.retry_at_ms,
            });
        }
    }
    c.unavailable = c.desired - c.available;

    let (health, reason) = match (&deployment, &env.reconcile_failure) {
        (_, Some(f)) => (
            Health::Unhealthy,
            Some(format!(
                "the reconciler cannot repair it since {}: {}",
                f.since, f.reason
            )),
        ),
        (Some(d), _) if d.status == crate::domain::DeploymentStatus::Failed => (
            Health::Unhealthy,
            Some(d.halted_reason.clone().unwrap_or_else(|| {
                format!(
                    "deployment {} failed on {} host(s)",
                    d.id,
                    d.failures.len().max(d.failed_count as usize)
                )
            })),
        ),
        (Some(d), _) if d.halted_reason.is_some() => (Health::Unhealthy, d.halted_reason.clone()),
        _ if env.deployed.is_some() && c.unavailable > 0 && env.active_deployment_id.is_none() => (
            Health::Unhealthy,
            Some(format!(
                "{} of {} hosts have no healthy task",
                c.unavailable, c.desired
            )),
        ),
        _ => (env.health, None),
    };
    Status {
        name: env.name.clone(),
        active_revision: env.deployed.as_ref().map(|d| d.revision),
        latest_revision: env.latest_revision,
        counts: c,
        health,
        reason,
        deployment: deployment.as_ref().map(DeploymentView::from),
        hosts: with_hosts.then_some(hosts),
    }
}
