//! Alarm gates on the in-process fakes: a gated rolling update halts at the first step after
//! one of its alarms goes to ALARM (no new host touched), closes failed and rolls back; an alarm
//! that does not exist, a denied read, or a caller that reads no alarms halts it too, a throttled
//! read fails the step; a rollback is not gated; and the deployer keeps exactly one re-check of a
//! gated deployment's alarms pending (begun by its INSERT, continued by each re-check).

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::json;

use crate::domain::{AlarmState, Deployment, DeploymentStatus, Host, HostState, HostStatus};
use crate::error::{Error, Result};
use crate::fakes::{FakeAlarms, FakeCluster, FakeStore, FakeWakeup, FAKE_CLUSTER_ARN};
use crate::ports::{Alarms, Store, WakeupMessage};
use crate::services::deployer::{self, Gates, GATE_RECHECK_SECS};
use crate::services::{deployments_api, rolling, task_events};
use crate::sim::{call_api, host_arn, task_detail};

const HOSTS: usize = 8;

async fn api(
    store: &FakeStore,
    cluster: &FakeCluster,
    method: &str,
    path: &[&str],
    body: serde_json::Value,
) {
    let r = call_api(store, cluster, method, path, Some(body))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

struct World {
    store: FakeStore,
    cluster: FakeCluster,
    alarms: FakeAlarms,
    wakeup: FakeWakeup,
}

impl World {
    /// `HOSTS` hosts running revision 1 of `agent` (gated by `first`, alarms created OK);
    /// revision 2 (latest, not deployed) replaces one host at a time and is gated by `alarms`.
    async fn new(first: &[&str], alarms: &[&str], auto_rollback: bool) -> Self {
        let w = Self {
            store: FakeStore::default(),
            cluster: FakeCluster::default(),
            alarms: FakeAlarms::default(),
            wakeup: FakeWakeup::default(),
        };
        for i in 0..HOSTS {
            w.cluster.set_host(Host::from_state(HostState {
                container_instance_arn: host_arn(i),
                status: HostStatus::Active,
                agent_connected: true,
                version: 1,
                other_tasks: None,
            }));
        }
        for a in first {
            w.alarms.set(a, AlarmState::Ok);
        }
        api(&w.store, &w.cluster, "POST", &["environments"], json!({
            "name": "agent", "instanceGroup": {"cluster": FAKE_CLUSTER_ARN}, "taskDefinition": "agent:1",
            "updateStrategy": {"alarms": first}
        }))
        .await;
        let first = deployments_api::create(&w.store, "agent", None, None)
            .await
            .unwrap();
        w.settle(&first.id).await;
        assert_eq!(w.on("agent:1"), HOSTS);
        api(&w.store, &w.cluster, "PUT", &["environments", "agent"], json!({
            "taskDefinition": "agent:2",
            "updateStrategy": {"maxUnavailable": 1, "alarms": alarms, "autoRollback": auto_rollback}
        }))
        .await;
        w
    }

    fn gates(&self) -> Gates<'_> {
        Gates {
            alarms: Some(&self.alarms),
            wakeup: Some(&self.wakeup),
        }
    }

    async fn step(&self, id: &str) -> Result<rolling::Stepped> {
        rolling::step_with(
            &self.store,
            &self.cluster,
            Some(&self.alarms),
            "agent",
            id,
            crate::clock::system_now_ms(),
        )
        .await
    }

    /// Delivers every task change as its event, stepping the deployment in progress after each
    /// batch (as the stream would: a rollback's INSERT steps it), until nothing changes.
    async fn settle(&self, id: &str) {
        let mut id = id.to_owned();
        for _ in 0..200 {
            let changes = self.cluster.take_changes();
            for t in &changes {
                task_events::handle(&self.store, &self.cluster, &task_detail(t))
                    .await
                    .unwrap();
            }
            self.step(&id).await.unwrap();
            match self.live_deployment().await {
                Some(live) => id = live,
                None if changes.is_empty() => return,
                None => {}
            }
        }
        panic!("did not settle: {:?}", self.live_deployment().await);
    }

    async fn live_deployment(&self) -> Option<String> {
        let env = self.store.get_environment("agent").await.unwrap().unwrap();
        env.active_deployment_id
    }

    async fn deployment(&self, id: &str) -> Deployment {
        self.store
            .get_deployment("agent", id)
            .await
            .unwrap()
            .unwrap()
    }

    fn on(&self, task_definition: &str) -> usize {
        self.cluster
            .live_tasks()
            .iter()
            .filter(|t| t.task_definition.ends_with(task_definition))
            .count()
    }

    /// The first host's replacement: a step, its old task's stop and the new task's start.
    async fn first_wave(&self, id: &str) {
        let s = self.step(id).await.unwrap();
        assert_eq!(s.replacing, 1, "one host at a time");
        assert!(s.gated, "the gates passed");
        for _ in 0..3 {
            for t in self.cluster.take_changes() {
                task_events::handle(&self.store, &self.cluster, &task_detail(&t))
                    .await
                    .unwrap();
            }
        }
        assert_eq!(self.on("agent:2"), 1);
    }
}

#[tokio::test]
async fn an_alarm_in_alarm_halts_the_rollout_and_the_rollback_restores_revision_1() {
    let w = World::new(&[], &["errors"], true).await;
    w.alarms.set("errors", AlarmState::Ok);
    let dep = deployments_api::create(&w.store, "agent", None, None)
        .await
        .unwrap();
    w.first_wave(&dep.id).await;
    let reads = w.alarms.calls();

    w.alarms.set("errors", AlarmState::Alarm);
    let s = w.step(&dep.id).await.unwrap();
    assert!(s.halted && !s.gated, "{s:?}");
    assert_eq!(s.replacing, 0, "no new host is touched");
    assert_eq!(w.alarms.calls(), reads + 1, "one DescribeAlarms a step");
    let d = w.deployment(&dep.id).await;
    assert_eq!(d.halted_reason.as_deref(), Some("alarm errors is in ALARM"));
    assert_eq!(
        w.on("agent:2"),
        1,
        "only the host replaced before the alarm"
    );

    // The breaker's path: closed as failed once the host in flight settled, and rolled back.
    w.settle(&dep.id).await;
    assert_eq!(w.deployment(&dep.id).await.status, DeploymentStatus::Failed);
    assert_eq!(w.on("agent:1"), HOSTS, "revision 1 everywhere again");
    assert_eq!(
        w.alarms.calls(),
        reads + 1,
        "a halted deployment's gates are not read again"
    );
}

#[tokio::test]
async fn without_auto_rollback_it_halts_and_stays_halted() {
    let w = World::new(&[], &["errors"], false).await;
    w.alarms.set("errors", AlarmState::Ok);
    let dep = deployments_api::create(&w.store, "agent", None, None)
        .await
        .unwrap();
    w.first_wave(&dep.id).await;
    w.alarms.set("errors", AlarmState::Alarm);
    w.settle(&dep.id).await;
    let d = w.deployment(&dep.id).await;
    assert_eq!(d.status, DeploymentStatus::Failed);
    assert_eq!(d.halted_reason.as_deref(), Some("alarm errors is in ALARM"));
    assert_eq!(
        (w.on("agent:2"), w.on("agent:1")),
        (1, HOSTS - 1),
        "no rollback"
    );
}

#[tokio::test]
async fn an_alarm_back_to_ok_and_one_without_data_let_it_complete() {
    let w = World::new(&[], &["errors", "latency"], true).await;
    w.alarms.set("errors", AlarmState::Alarm);
    w.alarms.set("errors", AlarmState::Ok);
    w.alarms.set("latency", AlarmState::InsufficientData);
    let dep = deployments_api::create(&w.store, "agent", None, None)
        .await
        .unwrap();
    w.settle(&dep.id).await;
    let d = w.deployment(&dep.id).await;
    assert_eq!(d.status, DeploymentStatus::Completed, "{d:?}");
    assert_eq!(w.on("agent:2"), HOSTS);
    assert!(w.alarms.calls() >= 2, "read at each step of the rollout");
}

#[tokio::test]
async fn a_gate_that_cannot_be_read_halts_before_any_host_is_touched() {
    // An alarm that does not exist.
    let w = World::new(&[], &["gone"], false).await;
    let dep = deployments_api::create(&w.store, "agent", None, None)
        .await
        .unwrap();
    let s = w.step(&dep.id).await.unwrap();
    assert!(s.halted && s.replacing == 0, "{s:?}");
    let reason = w.deployment(&dep.id).await.halted_reason.unwrap();
    assert!(reason.starts_with("alarm gone does not exist"), "{reason}");

    // A caller that reads no alarms.
    let w = World::new(&[], &["errors"], false).await;
    w.alarms.set("errors", AlarmState::Ok);
    let dep = deployments_api::create(&w.store, "agent", None, None)
        .await
        .unwrap();
    let s = rolling::step(
        &w.store,
        &w.cluster,
        "agent",
        &dep.id,
        crate::clock::system_now_ms(),
    )
    .await
    .unwrap();
    assert!(s.halted && s.replacing == 0, "{s:?}");
    assert_eq!(w.on("agent:1"), HOSTS);
}

/// CloudWatch answering with an error, for the reads that fail.
struct Failing(Error);

#[async_trait::async_trait]
impl Alarms for Failing {
    async fn states(&self, _names: &[String]) -> Result<Vec<(String, AlarmState)>> {
        Err(self.0.clone())
    }
}

#[tokio::test]
async fn a_denied_read_halts_a_throttled_one_fails_the_step_for_a_retry() {
    let w = World::new(&[], &["errors"], false).await;
    let dep = deployments_api::create(&w.store, "agent", None, None)
        .await
        .unwrap();
    let throttled = Failing(Error::Throttled {
        service: "CloudWatch".into(),
        message: "Rate exceeded".into(),
    });
    let r = rolling::step_with(
        &w.store,
        &w.cluster,
        Some(&throttled),
        "agent",
        &dep.id,
        crate::clock::system_now_ms(),
    )
    .await;
    assert!(matches!(r, Err(Error::Throttled { .. })), "{r:?}");
    assert!(w.deployment(&dep.id).await.halted_reason.is_none());
    let denied = Failing(Error::Aws {
        service: "CloudWatch".into(),
        code: "AccessDenied".into(),
        message: "AccessDenied: not authorized to perform cloudwatch:DescribeAlarms".into(),
    });
    let s = rolling::step_with(
        &w.store,
        &w.cluster,
        Some(&denied),
        "agent",
        &dep.id,
        crate::clock::system_now_ms(),
    )
    .await;
    assert!(s.unwrap().halted);
    let reason = w.deployment(&dep.id).await.halted_reason.unwrap();
    assert!(reason.starts_with("alarm gates cannot be read"), "{reason}");
}

fn stream(dep: &Deployment, event_name: &str) -> Event {
    let image: serde_dynamo::Item = serde_dynamo::to_item(dep).unwrap();
    let record: EventRecord = serde_json::from_value(json!({
        "eventID": "1", "eventName": event_name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_700_000_000,
            "Keys": {"pk": {"S": format!("ENV#{}", dep.environment_name)}, "sk": {"S": format!("DEP#{}", dep.id)}},
            "NewImage": serde_json::to_value(&image).unwrap(),
            "SequenceNumber": "1", "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    }))
    .unwrap();
    let mut e = Event::default();
    e.records = vec![record];
    e
}

fn wakeups(messages: &[WakeupMessage]) -> SqsEvent {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| json!({"messageId": "1", "body": serde_json::to_string(m).unwrap(), "eventSource": "aws:sqs"}))
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn one_recheck_a_deployment_begun_by_its_insert_continued_by_each_recheck() {
    // Both revisions gated by the same alarm.
    let w = World::new(&["errors"], &["errors"], true).await;
    let dep = deployments_api::create(&w.store, "agent", None, None)
        .await
        .unwrap();
    let recheck = WakeupMessage {
        environment: "agent".into(),
        deployment_id: Some(dep.id.clone()),
        host: None,
    };

    // Its INSERT (the same batch holding its first MODIFY too): one re-check, a minute later.
    let mut batch = stream(&dep, "INSERT");
    batch.records.extend(stream(&dep, "MODIFY").records);
    deployer::handle_with(&w.store, &w.cluster, w.gates(), &batch)
        .await
        .unwrap();
    assert_eq!(w.wakeup.take(), vec![(recheck.clone(), GATE_RECHECK_SECS)]);
    // Its other changes step it and schedule nothing.
    let now = w.deployment(&dep.id).await;
    deployer::handle_with(&w.store, &w.cluster, w.gates(), &stream(&now, "MODIFY"))
        .await
        .unwrap();
    assert!(w.wakeup.take().is_empty());
    // A bake's wake-up of one of its hosts: stepped, nothing scheduled.
    let bake = WakeupMessage {
        host: Some(host_arn(0)),
        ..recheck.clone()
    };
    deployer::handle_wakeups(
        &w.store,
        &w.cluster,
        w.gates(),
        &wakeups(std::slice::from_ref(&bake)),
    )
    .await
    .unwrap();
    assert!(w.wakeup.take().is_empty());
    // The re-check (delivered twice in one batch, and with the bake's): the next one, once.
    deployer::handle_wakeups(
        &w.store,
        &w.cluster,
        w.gates(),
        &wakeups(&[recheck.clone(), bake, recheck.clone()]),
    )
    .await
    .unwrap();
    assert_eq!(w.wakeup.take(), vec![(recheck.clone(), GATE_RECHECK_SECS)]);

    // In ALARM: the re-check halts it, and the chain ends.
    w.alarms.set("errors", AlarmState::Alarm);
    deployer::handle_wakeups(
        &w.store,
        &w.cluster,
        w.gates(),
        &wakeups(std::slice::from_ref(&recheck)),
    )
    .await
    .unwrap();
    assert!(w.wakeup.take().is_empty());
    assert!(w.deployment(&dep.id).await.halted_reason.is_some());

    // Its rollback (to revision 1, gated by `errors` too, still in ALARM) is not gated: none of
    // its steps reads an alarm, its INSERT schedules nothing, and it completes.
    let reads = w.alarms.calls();
    w.settle(&dep.id).await;
    assert_eq!(w.alarms.calls(), reads);
    let rollback = w
        .store
        .list_deployments("agent", 10, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|d| d.rollback_of.as_deref() == Some(dep.id.as_str()))
        .expect("a rollback");
    assert!(!rollback.spec.update_strategy.alarms.is_empty());
    assert!(!rollback.alarm_gated());
    deployer::handle_with(
        &w.store,
        &w.cluster,
        w.gates(),
        &stream(&rollback, "INSERT"),
    )
    .await
    .unwrap();
    assert_eq!(w.alarms.calls(), reads);
    assert!(w.wakeup.take().is_empty());
    assert_eq!(
        w.deployment(&rollback.id).await.status,
        DeploymentStatus::Completed
    );
    assert_eq!(w.on("agent:1"), HOSTS);
}

#[tokio::test]
async fn an_ungated_deployment_reads_no_alarm_and_schedules_no_recheck() {
    let w = World::new(&[], &[], true).await;
    let dep = deployments_api::create(&w.store, "agent", None, None)
        .await
        .unwrap();
    deployer::handle_with(&w.store, &w.cluster, w.gates(), &stream(&dep, "INSERT"))
        .await
        .unwrap();
    w.settle(&dep.id).await;
    assert_eq!(w.alarms.calls(), 0);
    assert!(w.wakeup.take().is_empty());
    assert_eq!(w.on("agent:2"), HOSTS);
}
