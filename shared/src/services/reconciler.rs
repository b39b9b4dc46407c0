//! Scheduled convergence: for every deployed environment, compare its hosts in ECS with its slots
//! and repair what events missed (lost joins and drains, due restarts, claims of dead writers).

use std::collections::HashMap;

use crate::domain::{Host, Slot, SlotKey};
use crate::error::Result;
use crate::executor::{Executor, Live, Report, Work};
use crate::planner::{claim_expired, plan_expired_claim, plan_host, Target};
use crate::ports::{Cluster, Store};

/// Work for every ACTIVE host of the cluster (and its slot, if any).
pub fn converge_work(target: &Target, hosts: Vec<Host>, slots: Vec<Slot>) -> Vec<Work> {
    let mut by_host: HashMap<String, Slot> = slots
        .into_iter()
        .map(|s| (s.host.container_instance_arn.clone(), s))
        .collect();
    hosts
        .into_iter()
        .map(|host| {
            let target = target.clone();
            Work {
                key: SlotKey {
                    environment: target.environment.clone(),
                    container_instance_arn: host.container_instance_arn.clone(),
                },
                current: by_host.remove(&host.container_instance_arn),
                live: Live::Is(target.tracking.clone()),
                decide: Box::new(move |slot, claim, now| {
                    plan_host(Some(&target), slot, Some(&host), now, claim)
                }),
            }
        })
        .collect()
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub environments: usize,
    pub started: usize,
    pub stopped: usize,
    pub expired_claims: usize,
}

pub async fn reconcile_all<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    now_ms: i64,
) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut token: Option<String> = None;
    loop {
        let page = store.list_environments(None, 100, token.as_deref()).await?;
        for env in &page.items {
            let Some(target) = env.target() else { continue };
            summary.environments += 1;
            let (report, expired) = reconcile_environment(store, cluster, &target, now_ms).await?;
            summary.started += report.started.len();
            summary.stopped += report.stopped.len();
            summary.expired_claims += expired;
        }
        token = page.next_token;
        if token.is_none() {
            return Ok(summary);
        }
    }
}

pub async fn reconcile_environment<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    target: &Target,
    now_ms: i64,
) -> Result<(Report, usize)> {
    let mut slots = store.slots_of(&target.environment).await?;
    // A claim past its lease: its writer died around StartTask. Look in ECS before launching again.
    let expired: Vec<Slot> = slots
        .iter()
        .filter(|s| claim_expired(s, now_ms))
        .cloned()
        .collect();
    if !expired.is_empty() {
        let mut work = Vec::new();
        for slot in &expired {
            let found = match &slot.deployment_id {
                Some(dep) => cluster
                    .tasks_started_by(
                        &target.cluster_arn,
                        dep,
                        Some(&slot.host.container_instance_arn),
                    )
                    .await?
                    .into_iter()
                    .find(|t| t.environment == target.environment),
                None => None,
            };
            work.push(Work {
                key: slot.key(),
                current: Some(slot.clone()),
                live: Live::Unknown,
                decide: Box::new(move |cur, _, now| match cur {
                    Some(s) => plan_expired_claim(s, found.as_ref(), now),
                    None => crate::planner::Transition::nothing(),
                }),
            });
        }
        Executor::at(store, cluster, now_ms).run(work).await?;
        slots = store.slots_of(&target.environment).await?;
    }
    let hosts = cluster.active_hosts(&target.cluster_arn).await?;
    let report = Executor::at(store, cluster, now_ms)
        .run(converge_work(target, hosts, slots))
        .await?;
    Ok((report, expired.len()))
}
