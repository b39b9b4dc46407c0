//! One scheduled reconcile reads each cluster's hosts once. Stepping a deployment and converging
//! its environment both need them, and so does every other environment on the same cluster: at
//! 5,000 hosts each read is 100 ECS calls (List + Describe, 100 a call). A snapshot a few seconds
//! old is as good as a fresh one here: every decision is a conditional write on versioned records,
//! so a host that changed since is caught by its event or by the next run.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::{Host, TaskObservation};
use crate::error::Result;
use crate::ports::{Cluster, ResourceStatus, StartOutcome, StartRequest, TaskDefinitionInfo};

/// A `Cluster` whose `active_hosts` answers from the first read of each cluster.
pub struct HostsReadOnce<'a, C: ?Sized> {
    inner: &'a C,
    hosts: Mutex<HashMap<String, Vec<Host>>>,
}

impl<'a, C: Cluster + ?Sized> HostsReadOnce<'a, C> {
    pub fn new(inner: &'a C) -> Self {
        Self {
            inner,
            hosts: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl<C: Cluster + ?Sized> Cluster for HostsReadOnce<'_, C> {
    async fn describe_cluster(&self, cluster: &str) -> Result<Option<ResourceStatus>> {
        self.inner.describe_cluster(cluster).await
    }
    async fn describe_task_definition(&self, td: &str) -> Result<Option<TaskDefinitionInfo>> {
        self.inner.describe_task_definition(td).await
    }
    async fn active_hosts(&self, cluster_arn: &str) -> Result<Vec<Host>> {
        if let Some(hosts) = self.hosts.lock().unwrap().get(cluster_arn) {
            return Ok(hosts.clone());
        }
        let hosts = self.inner.active_hosts(cluster_arn).await?;
        self.hosts
            .lock()
            .unwrap()
            .insert(cluster_arn.to_owned(), hosts.clone());
        Ok(hosts)
    }
    async fn describe_hosts(&self, cluster_arn: &str, arns: &[String]) -> Result<Vec<Host>> {
        self.inner.describe_hosts(cluster_arn, arns).await
    }
    async fn start_tasks(&self, request: StartRequest<'_>) -> Result<StartOutcome> {
        self.inner.start_tasks(request).await
    }
    async fn stop_task(&self, cluster_arn: &str, task_arn: &str, reason: &str) -> Result<()> {
        self.inner.stop_task(cluster_arn, task_arn, reason).await
    }
    async fn other_tasks_on(&self, cluster_arn: &str, host: &str) -> Result<usize> {
        self.inner.other_tasks_on(cluster_arn, host).await
    }
    async fn tasks_of_family(
        &self,
        cluster_arn: &str,
        family: &str,
    ) -> Result<Vec<TaskObservation>> {
        self.inner.tasks_of_family(cluster_arn, family).await
    }
    async fn describe_tasks(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<Vec<TaskObservation>> {
        self.inner.describe_tasks(cluster_arn, arns).await
    }
    async fn tasks_started_by(
        &self,
        cluster_arn: &str,
        started_by: &str,
        host: Option<&str>,
    ) -> Result<Vec<TaskObservation>> {
        self.inner
            .tasks_started_by(cluster_arn, started_by, host)
            .await
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::now_rfc3339;
    use crate::domain::{DaemonSpec, Environment, Host, HostState, HostStatus};
    use crate::executor::system_now_ms;
    use crate::fakes::{FakeCluster, FakeStore, FAKE_CLUSTER_ARN};
    use crate::ports::Store;
    use crate::services::{deployments_api, reconciler, rolling};

    #[tokio::test]
    async fn a_reconcile_lists_the_hosts_of_a_cluster_once_for_all_its_work() {
        // GIVEN three hosts and two environments on one cluster: `logs` deployed, `metrics` with
        // its deployment recorded but never stepped (a lost stream record)
        let (store, cluster) = (FakeStore::default(), FakeCluster::default());
        for i in 0..3 {
            cluster.set_host(Host::from_state(HostState {
                container_instance_arn: format!("{FAKE_CLUSTER_ARN}/h{i}")
                    .replace("cluster/", "container-instance/"),
                status: HostStatus::Active,
                agent_connected: true,
                version: 1,
                other_tasks: None,
            }));
        }
        let now = now_rfc3339();
        for name in ["logs", "metrics"] {
            let spec = DaemonSpec::of_task_definition(&format!("{name}:1"), Default::default());
            let env = Environment::new(name, FAKE_CLUSTER_ARN, spec, &now);
            store
                .create_environment(&env, &env.latest(&now), &[])
                .await
                .unwrap();
        }
        let logs = deployments_api::create(&store, "logs", None, None)
            .await
            .unwrap();
        rolling::step(&store, &cluster, "logs", &logs.id, system_now_ms())
            .await
            .unwrap();
        deployments_api::create(&store, "metrics", None, None)
            .await
            .unwrap();
        let before = cluster.active_hosts_calls();

        // WHEN the scheduled reconcile runs (it steps `metrics` and converges both)
        reconciler::reconcile_all(&store, &cluster, system_now_ms() + 60_000)
            .await
            .unwrap();

        // THEN every host runs both daemons, and the hosts were read from ECS once
        let live = cluster.live_tasks();
        assert_eq!(live.len(), 6, "{live:?}");
        assert_eq!(cluster.active_hosts_calls() - before, 1);
    }
}
