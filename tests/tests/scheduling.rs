//! Scheduling against moto: deployments, joins, stops, drains, and exactly-one-task-per-host under
//! duplicated, reordered and concurrent delivery.

use std::sync::Arc;

use integration_tests::shared::domain::{SlotKey, SlotTask};
use integration_tests::shared::ports::Store;
use integration_tests::shared::services::{deployer, instance_events, reconciler, task_events};
use integration_tests::World;

fn assert_one_task_per_host(
    tasks: &std::collections::BTreeMap<String, Vec<String>>,
    hosts: &[String],
) {
    for h in hosts {
        let n = tasks.get(h).map_or(0, Vec::len);
        assert_eq!(n, 1, "host {h} runs {n} tasks: {tasks:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_25_host_deployment_uses_3_start_task_calls_and_completes() {
    let w = World::new().await;
    let hosts = w.add_hosts(25).await;
    w.create_environment("agents").await;
    let dep = w.create_deployment("agents").await;
    let id = dep["id"].as_str().unwrap().to_owned();

    w.calls.reset();
    w.deliver_deployment("agents", &id).await;
    assert_eq!(w.calls.get("ECS.StartTask"), 3, "{:?}", w.calls.snapshot());
    assert_eq!(w.calls.start_task_sizes(), vec![10, 10, 5]);
    assert_eq!(w.calls.get("ECS.ListContainerInstances"), 1);
    assert_eq!(w.calls.get("ECS.DescribeContainerInstances"), 1);
    // The claims are batched: one transaction for all 25. The launches are recorded by their
    // tasks' first events, not by a second write.
    assert_eq!(
        w.calls.get("DynamoDB.TransactWriteItems"),
        1,
        "{:?}",
        w.calls.snapshot()
    );

    let tasks = w.tasks_by_host().await;
    assert_one_task_per_host(&tasks, &hosts);

    let (_, running) = w
        .api(
            "GET",
            &format!("/v1/environments/agents/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(running["status"], "running");
    assert_eq!(
        (
            running["desiredCount"].as_i64(),
            running["pendingCount"].as_i64()
        ),
        (Some(25), Some(25))
    );

    w.deliver_task_events().await;
    w.deliver_deployment("agents", &id).await;
    let (_, done) = w
        .api(
            "GET",
            &format!("/v1/environments/agents/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["runningCount"], 25);
    assert_eq!(done["pendingCount"], 0);
    assert_eq!(done["failedInstances"].as_array().unwrap().len(), 0);
    // Every task carries its marks back to the environment and deployment.
    let t = w.task_event(&tasks[&hosts[0]][0]).await;
    assert_eq!(t.group.as_deref(), Some("daemon-scheduler:agents"));
    assert_eq!(t.started_by.as_deref(), Some(id.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_with_no_hosts_completes_and_a_redelivered_rollout_starts_nothing() {
    let w = World::new().await;
    w.create_environment("empty").await;
    let dep = w.deploy("empty").await;
    assert_eq!(dep["status"], "completed", "{dep}");
    assert_eq!(dep["desiredCount"], 0);

    let hosts = w.add_hosts(3).await;
    let dep = w.deploy("empty").await;
    assert_eq!(dep["desiredCount"], 3, "{dep}");
    // The stream redelivers the (old) INSERT record: nothing new starts.
    w.calls.reset();
    w.deliver_deployment("empty", dep["id"].as_str().unwrap())
        .await;
    assert_eq!(w.calls.get("ECS.StartTask"), 0);
    assert_one_task_per_host(&w.tasks_by_host().await, &hosts);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_joining_host_gets_its_task_in_at_most_4_calls() {
    let w = World::new().await;
    let hosts = w.add_hosts(2).await;
    w.create_environment("join").await;
    w.deploy("join").await;

    let new = w.add_hosts(1).await.remove(0);
    w.calls.reset();
    let report = instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&new, "ACTIVE", true, 1),
    )
    .await
    .unwrap();
    assert_eq!(report.started.len(), 1);
    assert!(w.calls.total() <= 4, "{:?}", w.calls.snapshot());
    let tasks = w.tasks_by_host().await;
    assert_one_task_per_host(&tasks, &[hosts, vec![new]].concat());
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_join_before_any_deployment_get_nothing_until_it_runs() {
    let w = World::new().await;
    w.create_environment("later").await;
    let host = w.add_hosts(1).await.remove(0);
    let report = instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&host, "ACTIVE", true, 1),
    )
    .await
    .unwrap();
    assert!(report.started.is_empty());
    assert!(w.tasks_by_host().await.is_empty());
    w.deploy("later").await;
    assert_one_task_per_host(&w.tasks_by_host().await, &[host]);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicated_and_reordered_instance_events_start_nothing_twice() {
    let w = World::new().await;
    w.create_environment("order").await;
    w.deploy("order").await;
    let host = w.add_hosts(1).await.remove(0);

    let join = w.instance_event(&host, "ACTIVE", true, 2);
    for _ in 0..3 {
        instance_events::handle(&w.store, &w.cluster, &join)
            .await
            .unwrap();
    }
    assert_one_task_per_host(&w.tasks_by_host().await, std::slice::from_ref(&host));
    // Its task's first event records the launch.
    w.deliver_task_events().await;

    // The host drains (v5); an older ACTIVE (v3) and the duplicate join (v2) arrive afterwards.
    w.drain(&host).await;
    instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&host, "DRAINING", true, 5),
    )
    .await
    .unwrap();
    assert!(
        !w.tasks_by_host().await.contains_key(&host),
        "the daemon leaves a draining host"
    );
    for stale in [w.instance_event(&host, "ACTIVE", true, 3), join.clone()] {
        let r = instance_events::handle(&w.store, &w.cluster, &stale)
            .await
            .unwrap();
        assert!(r.started.is_empty(), "stale event started a task");
    }
    assert!(!w.tasks_by_host().await.contains_key(&host));

    // A host that joins in the wrong order: DRAINING (v2) arrives before its ACTIVE (v1).
    let other = w.add_hosts(1).await.remove(0);
    instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&other, "DRAINING", true, 2),
    )
    .await
    .unwrap();
    let r = instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&other, "ACTIVE", true, 1),
    )
    .await
    .unwrap();
    assert!(r.started.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_deliveries_of_one_join_start_exactly_one_task() {
    let w = Arc::new(World::new().await);
    w.create_environment("race").await;
    w.deploy("race").await;
    let host = w.add_hosts(1).await.remove(0);
    let event = w.instance_event(&host, "ACTIVE", true, 7);

    let runs = (0..20).map(|_| {
        let w = w.clone();
        let event = event.clone();
        tokio::spawn(async move { instance_events::handle(&w.store, &w.cluster, &event).await })
    });
    let reports: Vec<_> = futures::future::join_all(runs).await;
    let started: usize = reports
        .into_iter()
        .map(|r| r.unwrap().unwrap().started.len())
        .sum();
    assert_eq!(started, 1, "exactly one delivery launches");
    assert_eq!(w.calls.get("ECS.StartTask"), 1);
    assert_one_task_per_host(&w.tasks_by_host().await, &[host]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_racing_join_events_leaves_one_task_per_host() {
    let w = Arc::new(World::new().await);
    let hosts = w.add_hosts(12).await;
    w.create_environment("racing").await;
    let dep = w.create_deployment("racing").await;
    let id = dep["id"].as_str().unwrap().to_owned();

    let mut jobs = Vec::new();
    for h in &hosts {
        let w = w.clone();
        let e = w.instance_event(h, "ACTIVE", true, 1);
        jobs.push(tokio::spawn(async move {
            instance_events::handle(&w.store, &w.cluster, &e)
                .await
                .map(|_| ())
        }));
    }
    let w2 = w.clone();
    let id2 = id.clone();
    jobs.push(tokio::spawn(async move {
        w2.deliver_deployment("racing", &id2).await;
        Ok(())
    }));
    for j in futures::future::join_all(jobs).await {
        j.unwrap().unwrap();
    }
    assert_one_task_per_host(&w.tasks_by_host().await, &hosts);
    w.deliver_task_events().await;
    w.deliver_deployment("racing", &id).await;
    let (_, done) = w
        .api(
            "GET",
            &format!("/v1/environments/racing/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["runningCount"], 12, "{done}");
    assert_eq!(done["desiredCount"], 12, "{done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_daemon_restarts_on_its_host_with_backoff_for_repeats() {
    let w = World::new().await;
    let hosts = w.add_hosts(2).await;
    w.create_environment("heal").await;
    w.deploy("heal").await;
    let victim = w.tasks_by_host().await[&hosts[0]][0].clone();

    // First unasked stop: restarted at once on the same host.
    w.stop_task_by_hand(&victim).await;
    let stopped = w.task_event(&victim).await;
    let report = task_events::handle(&w.store, &w.cluster, &stopped)
        .await
        .unwrap();
    assert_eq!(report.started.len(), 1);
    let tasks = w.tasks_by_host().await;
    assert_one_task_per_host(&tasks, &hosts);
    let second = tasks[&hosts[0]][0].clone();
    assert_ne!(second, victim);

    // The duplicate of that STOPPED event changes nothing.
    let again = task_events::handle(&w.store, &w.cluster, &stopped)
        .await
        .unwrap();
    assert!(again.started.is_empty());
    assert_one_task_per_host(&w.tasks_by_host().await, &hosts);

    // It crashes again at once: the restart waits out the backoff, then the reconciler starts it.
    w.deliver_task_events().await; // RUNNING of the restarted task
    w.stop_task_by_hand(&second).await;
    let report = task_events::handle(&w.store, &w.cluster, &w.task_event(&second).await)
        .await
        .unwrap();
    assert!(report.started.is_empty(), "second crash in a row backs off");
    let slot = w
        .store
        .get_slot(&SlotKey {
            environment: "heal".into(),
            container_instance_arn: hosts[0].clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(slot.task, SlotTask::Vacant);
    assert_eq!(slot.failures, 2);
    assert!(slot.retry_at_ms > shared_now());
    assert!(!w.tasks_by_host().await.contains_key(&hosts[0]));

    let env = w.store.get_environment("heal").await.unwrap().unwrap();
    let target = env.target().unwrap();
    let early = reconciler::reconcile_environment(&w.store, &w.cluster, &target, shared_now())
        .await
        .unwrap()
        .report;
    assert!(early.started.is_empty(), "not before the backoff ends");
    let later = slot.retry_at_ms + 1;
    let due = reconciler::reconcile_environment(&w.store, &w.cluster, &target, later)
        .await
        .unwrap()
        .report;
    assert_eq!(due.started.len(), 1, "restarted once the backoff is over");
    assert_one_task_per_host(&w.tasks_by_host().await, &hosts);
}

fn shared_now() -> i64 {
    integration_tests::shared::executor::system_now_ms()
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_stops_the_daemon_and_deregistration_lets_the_record_expire() {
    let w = World::new().await;
    let hosts = w.add_hosts(3).await;
    w.create_environment("drain").await;
    w.deploy("drain").await;
    let task = w.tasks_by_host().await[&hosts[1]][0].clone();

    w.drain(&hosts[1]).await;
    let report = instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&hosts[1], "DRAINING", true, 3),
    )
    .await
    .unwrap();
    assert_eq!(report.stopped, vec![task.clone()]);
    // Its STOPPED event (our own stop) frees the slot without a failure or a restart.
    let ev = w.task_event(&task).await;
    let r = task_events::handle(&w.store, &w.cluster, &ev)
        .await
        .unwrap();
    assert!(r.started.is_empty());
    let key = SlotKey {
        environment: "drain".into(),
        container_instance_arn: hosts[1].clone(),
    };
    let slot = w.store.get_slot(&key).await.unwrap().unwrap();
    assert_eq!((slot.task.clone(), slot.failures), (SlotTask::Vacant, 0));
    let tasks = w.tasks_by_host().await;
    assert_one_task_per_host(&tasks, &[hosts[0].clone(), hosts[2].clone()]);
    assert!(!tasks.contains_key(&hosts[1]));

    // A reconcile does not put it back on the draining host.
    let target = w
        .store
        .get_environment("drain")
        .await
        .unwrap()
        .unwrap()
        .target()
        .unwrap();
    reconciler::reconcile_environment(&w.store, &w.cluster, &target, shared_now())
        .await
        .unwrap();
    assert!(!w.tasks_by_host().await.contains_key(&hosts[1]));

    instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&hosts[1], "INACTIVE", false, 4),
    )
    .await
    .unwrap();
    let slot = w.store.get_slot(&key).await.unwrap().unwrap();
    assert!(slot.expires_at.is_some(), "a gone host's record gets a TTL");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_disconnect_keeps_the_daemon_and_starts_nothing() {
    let w = World::new().await;
    let hosts = w.add_hosts(1).await;
    w.create_environment("flap").await;
    w.deploy("flap").await;
    let before = w.tasks_by_host().await;
    let r = instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&hosts[0], "ACTIVE", false, 4),
    )
    .await
    .unwrap();
    assert!(r.started.is_empty() && r.stopped.is_empty());
    let r = instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&hosts[0], "ACTIVE", true, 5),
    )
    .await
    .unwrap();
    assert!(r.started.is_empty() && r.stopped.is_empty());
    assert_eq!(w.tasks_by_host().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_task_in_our_group_is_stopped() {
    let w = World::new().await;
    let hosts = w.add_hosts(1).await;
    w.create_environment("dupe").await;
    w.deploy("dupe").await;
    let env = w.store.get_environment("dupe").await.unwrap().unwrap();
    let extra = w
        .ecs
        .start_task()
        .cluster(&w.cluster_name)
        .task_definition(&env.spec.task_definition)
        .container_instances(&hosts[0])
        .group("daemon-scheduler:dupe")
        .started_by("someone")
        .send()
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0)
        .task_arn
        .unwrap();
    let r = task_events::handle(&w.store, &w.cluster, &w.task_event(&extra).await)
        .await
        .unwrap();
    assert_eq!(r.stopped, vec![extra]);
    assert_one_task_per_host(&w.tasks_by_host().await, &hosts);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_stops_every_task_and_removes_the_records_and_twice_is_harmless() {
    let w = World::new().await;
    let hosts = w.add_hosts(4).await;
    w.create_environment("gone").await;
    w.deploy("gone").await;
    assert_eq!(w.tasks_by_host().await.len(), 4);

    let (status, body) = w.api("DELETE", "/v1/environments/gone", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("deleting")));
    assert_eq!(w.api("GET", "/v1/environments/gone", None).await.0, 404);
    // Nothing new starts meanwhile, even for a host that joins.
    let late = w.add_hosts(1).await.remove(0);
    let r = instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&late, "ACTIVE", true, 1),
    )
    .await
    .unwrap();
    assert!(r.started.is_empty());

    w.deliver_environment("gone").await; // the stream record of the deleting environment
    assert!(w.tasks_by_host().await.is_empty(), "every daemon stopped");
    assert!(w.store.get_environment("gone").await.unwrap().is_none());
    assert!(w.store.slots_of("gone").await.unwrap().is_empty());
    assert_eq!(w.api("DELETE", "/v1/environments/gone", None).await.0, 200);
    // The name is free again.
    w.create_environment("gone").await;
    let _ = hosts;
}

/// The real ECS adapter, except that StartTask refuses the listed hosts (ECS's `failures`).
/// A refusal about the revision itself (what ECS says when the task's role cannot be passed).
const REVISION_REFUSED: &str =
    "StartTask failed: ClientException: ECS was unable to assume the role that was provided";

/// ECS refusing some hosts of every StartTask call with `reason` (fault injection around the real
/// adapter on moto, which refuses nothing).
struct Refusing<'a> {
    inner: &'a integration_tests::shared::adapters::EcsCluster,
    refuse: Vec<String>,
    reason: &'static str,
}

#[async_trait::async_trait]
impl integration_tests::shared::ports::Cluster for Refusing<'_> {
    async fn describe_cluster(
        &self,
        c: &str,
    ) -> integration_tests::shared::Result<Option<integration_tests::shared::ports::ResourceStatus>>
    {
        self.inner.describe_cluster(c).await
    }
    async fn describe_task_definition(
        &self,
        t: &str,
    ) -> integration_tests::shared::Result<
        Option<integration_tests::shared::ports::TaskDefinitionInfo>,
    > {
        self.inner.describe_task_definition(t).await
    }
    async fn active_hosts(
        &self,
        c: &str,
    ) -> integration_tests::shared::Result<Vec<integration_tests::shared::domain::Host>> {
        self.inner.active_hosts(c).await
    }
    async fn describe_hosts(
        &self,
        c: &str,
        arns: &[String],
    ) -> integration_tests::shared::Result<Vec<integration_tests::shared::domain::Host>> {
        self.inner.describe_hosts(c, arns).await
    }
    async fn start_tasks(
        &self,
        r: integration_tests::shared::ports::StartRequest<'_>,
    ) -> integration_tests::shared::Result<integration_tests::shared::ports::StartOutcome> {
        let (refused, rest): (Vec<String>, Vec<String>) = r
            .container_instances
            .iter()
            .cloned()
            .partition(|h| self.refuse.contains(h));
        let mut out = self
            .inner
            .start_tasks(integration_tests::shared::ports::StartRequest {
                container_instances: &rest,
                ..r
            })
            .await?;
        out.refused
            .extend(refused.into_iter().map(|h| (h, self.reason.to_owned())));
        Ok(out)
    }
    async fn stop_task(
        &self,
        c: &str,
        t: &str,
        why: &str,
    ) -> integration_tests::shared::Result<()> {
        self.inner.stop_task(c, t, why).await
    }
    async fn tasks_started_by(
        &self,
        c: &str,
        s: &str,
        h: Option<&str>,
    ) -> integration_tests::shared::Result<Vec<integration_tests::shared::domain::TaskObservation>>
    {
        self.inner.tasks_started_by(c, s, h).await
    }
    async fn describe_tasks(
        &self,
        c: &str,
        arns: &[String],
    ) -> integration_tests::shared::Result<Vec<integration_tests::shared::domain::TaskObservation>>
    {
        self.inner.describe_tasks(c, arns).await
    }
    async fn tasks_of_family(
        &self,
        c: &str,
        f: &str,
    ) -> integration_tests::shared::Result<Vec<integration_tests::shared::domain::TaskObservation>>
    {
        self.inner.tasks_of_family(c, f).await
    }
    async fn other_tasks_on(&self, c: &str, h: &str) -> integration_tests::shared::Result<usize> {
        self.inner.other_tasks_on(c, h).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_with_refused_hosts_fails_with_each_host_and_reason() {
    let w = World::new().await;
    let hosts = w.add_hosts(4).await;
    w.create_environment("refused").await;
    let dep = w.create_deployment("refused").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    let refusing = Refusing {
        inner: &w.cluster,
        refuse: hosts[..2].to_vec(),
        reason: REVISION_REFUSED,
    };
    let record = w
        .stream_record("ENV#refused", &format!("DEP#{id}"), "INSERT")
        .await;
    deployer::handle(
        &w.store,
        &refusing,
        &integration_tests::stream_event(vec![record]),
    )
    .await
    .unwrap();
    w.deliver_task_events().await;
    w.deliver_deployment("refused", &id).await;

    let (_, dep) = w
        .api(
            "GET",
            &format!("/v1/environments/refused/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(dep["status"], "failed", "{dep}");
    assert_eq!(
        (
            dep["desiredCount"].as_i64(),
            dep["runningCount"].as_i64(),
            dep["failedCount"].as_i64()
        ),
        (Some(4), Some(2), Some(2))
    );
    let mut failed: Vec<String> = dep["failedInstances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    failed.sort();
    let mut expected = hosts[..2].to_vec();
    expected.sort();
    assert_eq!(failed, expected);
    assert!(
        dep["failures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["reason"] == REVISION_REFUSED),
        "{dep}"
    );
    let (_, env) = w.api("GET", "/v1/environments/refused", None).await;
    assert_eq!(env["health"], "unhealthy");
    assert!(env.get("activeDeploymentId").is_none(), "{env}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_refused_for_resources_are_unschedulable_not_failures_of_the_deployment() {
    // GIVEN 4 hosts, 2 of which ECS refuses with RESOURCE:MEMORY (another placement took the room)
    let w = World::new().await;
    let hosts = w.add_hosts(4).await;
    w.create_environment("full").await;
    let dep = w.create_deployment("full").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    let refusing = Refusing {
        inner: &w.cluster,
        refuse: hosts[..2].to_vec(),
        reason: "RESOURCE:MEMORY",
    };
    let record = w
        .stream_record("ENV#full", &format!("DEP#{id}"), "INSERT")
        .await;
    deployer::handle(
        &w.store,
        &refusing,
        &integration_tests::stream_event(vec![record]),
    )
    .await
    .unwrap();
    w.deliver_task_events().await;
    w.deliver_deployment("full", &id).await;

    // THEN the deployment completes on the 2 hosts that could run it: the refused ones are no
    // failure, do not count toward the breaker, and are not desired
    let (_, dep) = w
        .api(
            "GET",
            &format!("/v1/environments/full/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(dep["status"], "completed", "{dep}");
    assert_eq!(
        (
            dep["desiredCount"].as_i64(),
            dep["runningCount"].as_i64(),
            dep["failedCount"].as_i64(),
            dep["failedHosts"].as_i64()
        ),
        (Some(2), Some(2), Some(0), Some(0))
    );
    let (_, status) = w
        .api("GET", "/v1/environments/full/status?hosts=true", None)
        .await;
    assert_eq!(status["health"], "healthy", "{status}");
    assert_eq!(status["counts"]["unschedulable"], 2, "{status}");
    assert_eq!(status["counts"]["desired"], 2, "{status}");
    for h in status["hosts"].as_array().unwrap() {
        let refused = hosts[..2].contains(&h["containerInstanceArn"].as_str().unwrap().to_owned());
        if refused {
            assert_eq!(h["placement"], "unschedulable", "{h}");
            assert_eq!(h["reason"], "RESOURCE:MEMORY", "{h}");
            assert!(
                h.get("lastFailure").is_none() && h.get("retryAtMs").is_none(),
                "{h}"
            );
        } else {
            assert_eq!(h["placement"], "runs", "{h}");
        }
    }
    // AND a reconcile of the same hosts (unchanged: the same versions) does not retry them
    w.calls.reset();
    integration_tests::shared::services::reconciler::reconcile_all(
        &w.store,
        &refusing,
        integration_tests::shared::executor::system_now_ms() + 3_600_000,
    )
    .await
    .unwrap();
    assert_eq!(w.calls.get("ECS.StartTask"), 0, "{:?}", w.calls.snapshot());
}

/// Three crashes in a row: the first restarts at once, the next two when their backoff (1 s, then
/// 2 s) ends — through a wake-up that task-events puts on the queue, delivered to the deployer —
/// never waiting for the reconciler.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_looping_daemon_restarts_on_its_backoff_through_wakeups() {
    use integration_tests::shared::ports::Wakeup;
    let w = World::new().await;
    let hosts = w.add_hosts(1).await;
    w.create_environment("loop").await;
    w.deploy("loop").await;
    let mut task = w.tasks_by_host().await[&hosts[0]][0].clone();
    let mut restarted_after = Vec::new();
    for (crash, backoff_ms) in [(1, 0_u64), (2, 1_000), (3, 2_000)] {
        w.deliver_task_events().await; // the running task's RUNNING: the launch is recorded
        w.stop_task_by_hand(&task).await;
        let crashed = std::time::Instant::now();
        let report = task_events::handle_with(
            &w.store,
            &w.cluster,
            Some(&w.wakeup as &dyn Wakeup),
            &w.task_event(&task).await,
        )
        .await
        .unwrap();
        if backoff_ms == 0 {
            assert_eq!(report.started.len(), 1, "crash {crash}: restarted at once");
            assert!(report.restarts.is_empty());
        } else {
            assert!(report.started.is_empty(), "crash {crash}: backs off");
            assert_eq!(report.restarts.len(), 1, "crash {crash}: a wake-up is due");
            // Lambda's poller: the wake-up arrives once SQS's delay is over.
            let mut delivered = 0;
            while delivered == 0 {
                assert!(
                    crashed.elapsed().as_millis() < u128::from(backoff_ms) + 5_000,
                    "crash {crash}: no wake-up within the backoff + 5 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                delivered = w.deliver_wakeups().await;
            }
        }
        let now = w.tasks_by_host().await;
        let next = now[&hosts[0]]
            .iter()
            .find(|t| **t != task)
            .unwrap_or_else(|| panic!("crash {crash}: no new task: {now:?}"))
            .clone();
        let took = crashed.elapsed();
        assert!(
            took.as_millis() >= u128::from(backoff_ms),
            "crash {crash}: restarted after {took:?}, before its backoff of {backoff_ms} ms"
        );
        restarted_after.push(took);
        task = next;
    }
    let slot = w
        .store
        .get_slot(&SlotKey {
            environment: "loop".into(),
            container_instance_arn: hosts[0].clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(slot.failures, 3, "{restarted_after:?}");
}
