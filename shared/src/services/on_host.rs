//! Every deployed environment of a cluster, planned on one host in one go: what an instance event
//! does, and what a task event does when daemons on the host depend on each other (one turning
//! healthy releases those waiting for it; on a host that drains, the last dependent to stop lets
//! the daemons it depended on stop).
//!
//! One read for the slots of all environments on the host (BatchGetItem), one decision each.

use crate::domain::{Environment, Host, Order, Target, TaskObservation};
use crate::error::Result;
use crate::executor::{Executor, Report};
use crate::ports::{Cluster, Store};
use crate::work::Work;

/// What the caller just learnt about the host.
#[derive(Debug, Clone, Copy)]
pub enum Look<'a> {
    /// The host itself, as an event or ECS shows it now.
    Host(&'a Host),
    /// A task of one of the environments there.
    Task(&'a TaskObservation),
    /// Nothing new: decide from the records (a dependency's state changed).
    Records,
}

pub async fn plan<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    envs: &[Environment],
    host_arn: &str,
    look: Look<'_>,
) -> Result<Report> {
    let targets: Vec<Target> = envs.iter().filter_map(Environment::target).collect();
    if targets.is_empty() {
        return Ok(Report::default());
    }
    let names: Vec<&str> = targets.iter().map(|t| t.environment.as_str()).collect();
    let slots = store.slots_on_host(&names, host_arn).await?;
    let work = targets
        .iter()
        .map(|t| {
            let current = slots
                .iter()
                .find(|s| s.environment == t.environment)
                .cloned();
            let order = Order::on_host(&t.environment, &t.spec.depends_on, &slots);
            match (look, current) {
                (Look::Task(task), Some(slot)) if task.environment == t.environment => {
                    Work::task(&slot, task.clone(), order)
                }
                (Look::Host(host), current) => {
                    Work::host(t, host_arn, current, Some(host.clone()), order, false)
                }
                (_, current) => Work::host(t, host_arn, current, None, order, false),
            }
        })
        .collect();
    Executor::new(store, cluster).run(work).await
}
