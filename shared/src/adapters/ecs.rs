//! ECS adapter of the `Cluster` port. Chunks and pages by the real limits (moto enforces none).

use async_trait::async_trait;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::operation::start_task::{StartTaskError, StartTaskOutput};
use aws_sdk_ecs::types::{ContainerInstance, ContainerInstanceStatus, DesiredStatus, Task};
use aws_sdk_ecs::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::adapters::dynamo::sdk_error;
use crate::domain::overrides::TaskOverride;
use crate::domain::resources::{ResourceEntry, Resources};
use crate::domain::task::{environment_of_group, GROUP_PREFIX};
use crate::domain::{Host, HostState, HostStatus, TaskObservation, TaskStatus};
use crate::error::{Error, Result};
use crate::limits::{DESCRIBE_BATCH, LIST_PAGE, STARTED_BY_MAX, START_TASK_INSTANCES};
use crate::planner::{START_TASK_ATTEMPT_TIMEOUT_MS, START_TASK_THROTTLE_RETRIES};
use crate::ports::{Cluster, ResourceStatus, StartOutcome, StartRequest, TaskDefinitionInfo};

/// ECS caps the StopTask reason at 255 characters.
const STOP_REASON_MAX: usize = 255;

#[derive(Clone)]
pub struct EcsCluster {
    client: Client,
}

impl EcsCluster {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn ecs<E, R>(err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    sdk_error("ECS", err)
}

fn is_throttling<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    err.code()
        .is_some_and(|c| c.contains("Throttl") || c == "RequestLimitExceeded")
}

/// The call certainly did nothing: ECS rejected it (4xx: validation, access, throttling).
/// Timeouts and 5xx may have started tasks, so they are not "rejected".
fn certainly_rejected<E>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(e) => e.raw().status().is_client_error(),
        _ => false,
    }
}

/// A container instance ECS no longer knows: gone, and no later event can say otherwise.
fn gone_host(arn: &str) -> Host {
    Host::from_state(HostState {
        container_instance_arn: arn.to_owned(),
        status: HostStatus::Inactive,
        agent_connected: false,
        version: i64::MAX,
        other_tasks: None,
    })
}

/// A container instance as DescribeContainerInstances shows it, with its placement facts.
fn host_of(ci: &ContainerInstance) -> Option<Host> {
    let state = HostState {
        container_instance_arn: ci.container_instance_arn()?.to_owned(),
        status: ci.status().and_then(HostStatus::parse)?,
        agent_connected: ci.agent_connected(),
        version: ci.version(),
        other_tasks: None,
    };
    let remaining: Vec<ResourceEntry> = ci
        .remaining_resources()
        .iter()
        .map(|r| ResourceEntry {
            name: r.name().unwrap_or_default().to_owned(),
            integer_value: Some(i64::from(r.integer_value())),
            string_set_value: Some(r.string_set_value().to_vec()),
        })
        .collect();
    Some(Host {
        state,
        ec2_instance_id: ci.ec2_instance_id().map(str::to_owned),
        attributes: ci
            .attributes()
            .iter()
            .map(|a| (a.name().to_owned(), a.value().map(str::to_owned)))
            .collect(),
        remaining: (!remaining.is_empty()).then(|| Resources::from_entries(&remaining)),
        agent_version: ci
            .version_info()
            .and_then(|v| v.agent_version())
            .map(str::to_owned),
        capacity_provider: ci.capacity_provider_name().map(str::to_owned),
    })
}

/// Our overrides as the SDK sends them.
fn sdk_overrides(o: &TaskOverride) -> aws_sdk_ecs::types::TaskOverride {
    let containers = o
        .container_overrides
        .iter()
        .map(|c| {
            aws_sdk_ecs::types::ContainerOverride::builder()
                .name(&c.name)
                .set_command(c.command.clone())
                .set_environment(c.environment.as_ref().map(|env| {
                    env.iter()
                        .map(|kv| {
                            aws_sdk_ecs::types::KeyValuePair::builder()
                                .name(&kv.name)
                                .value(&kv.value)
                                .build()
                        })
                        .collect()
                }))
                .set_cpu(c.cpu.and_then(|n| i32::try_from(n).ok()))
                .set_memory(c.memory.and_then(|n| i32::try_from(n).ok()))
                .set_memory_reservation(c.memory_reservation.and_then(|n| i32::try_from(n).ok()))
                .build()
        })
        .collect();
    aws_sdk_ecs::types::TaskOverride::builder()
        .set_container_overrides(Some(containers))
        .set_cpu(o.cpu.clone())
        .set_memory(o.memory.clone())
        .build()
}

pub fn observe_task(task: &Task) -> Option<TaskObservation> {
    let environment = environment_of_group(task.group()?)?.to_owned();
    let ran_for_ms = match (task.started_at(), task.stopped_at()) {
        (Some(a), Some(b)) => Some((b.as_secs_f64() - a.as_secs_f64()) as i64 * 1000),
        _ => None,
    };
    Some(TaskObservation {
        task_arn: task.task_arn()?.to_owned(),
        container_instance_arn: task.container_instance_arn()?.to_owned(),
        environment,
        started_by: task.started_by().map(str::to_owned),
        task_definition: task.task_definition_arn().map(str::to_owned),
        last_status: TaskStatus::parse(task.last_status()?)?,
        desired_status: TaskStatus::parse(task.desired_status()?)?,
        stopped_reason: task.stopped_reason().map(str::to_owned),
        version: task.version(),
        ran_for_ms,
    })
}

#[async_trait]
impl Cluster for EcsCluster {
    async fn describe_cluster(&self, cluster: &str) -> Result<Option<ResourceStatus>> {
        let out = self
            .client
            .describe_clusters()
            .clusters(cluster)
            .send()
            .await
            .map_err(ecs)?;
        Ok(out.clusters().first().and_then(|c| {
            Some(ResourceStatus {
                arn: c.cluster_arn()?.to_owned(),
                active: c.status() == Some("ACTIVE"),
            })
        }))
    }

    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<Option<TaskDefinitionInfo>> {
        match self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
        {
            Ok(out) => Ok(out.task_definition().and_then(|td| {
                Some(TaskDefinitionInfo {
                    arn: td.task_definition_arn()?.to_owned(),
                    active: td.status().map(|s| s.as_str()) == Some("ACTIVE"),
                    needs: crate::adapters::ecs_task_definition::needs_of(td),
                })
            })),
            // ECS answers ClientException ("Unable to describe task definition") for unknown ones.
            Err(e) if e.code() == Some("ClientException") => Ok(None),
            Err(e) => Err(ecs(e)),
        }
    }

    async fn active_hosts(&self, cluster_arn: &str) -> Result<Vec<Host>> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_container_instances()
                .cluster(cluster_arn)
                .status(ContainerInstanceStatus::Active)
                .max_results(LIST_PAGE)
                .set_next_token(token)
                .send()
                .await
                .map_err(ecs)?;
            arns.extend(out.container_instance_arns().iter().cloned());
            token = out.next_token;
            if token.is_none() {
                break;
            }
        }
        self.describe_hosts(cluster_arn, &arns).await
    }

    async fn describe_hosts(&self, cluster_arn: &str, arns: &[String]) -> Result<Vec<Host>> {
        let mut hosts = Vec::with_capacity(arns.len());
        for chunk in arns.chunks(DESCRIBE_BATCH) {
            let out = self
                .client
                .describe_container_instances()
                .cluster(cluster_arn)
                .set_container_instances(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(ecs)?;
            hosts.extend(out.container_instances().iter().filter_map(host_of));
            for f in out.failures() {
                if let Some(arn) = f.arn() {
                    hosts.push(gone_host(arn));
                }
            }
        }
        Ok(hosts)
    }

    async fn start_tasks(&self, r: StartRequest<'_>) -> Result<StartOutcome> {
        if r.container_instances.len() > START_TASK_INSTANCES
            || r.launch.started_by.len() > STARTED_BY_MAX
        {
            return Err(Error::Internal(format!(
                "StartTask takes at most {START_TASK_INSTANCES} hosts and a startedBy of {STARTED_BY_MAX} chars"
            )));
        }
        let out = match self.start_task_once(&r).await {
            Ok(out) => out,
            Err(e) if is_throttling(&e) => {
                // Not started, certainly; no failure of the daemon either: try again soon.
                return Ok(StartOutcome {
                    throttled: r.container_instances.to_vec(),
                    ..Default::default()
                });
            }
            Err(e) => {
                let reason = format!("StartTask failed: {}", ecs_message(&e));
                let all: Vec<(String, String)> = r
                    .container_instances
                    .iter()
                    .map(|h| (h.clone(), reason.clone()))
                    .collect();
                return Ok(if certainly_rejected(&e) {
                    StartOutcome {
                        refused: all,
                        ..Default::default()
                    }
                } else {
                    StartOutcome {
                        unknown: all,
                        ..Default::default()
                    }
                });
            }
        };
        let mut outcome = StartOutcome::default();
        for t in out.tasks() {
            if let (Some(host), Some(arn)) = (t.container_instance_arn(), t.task_arn()) {
                outcome.started.push((host.to_owned(), arn.to_owned()));
            }
        }
        for f in out.failures() {
            let host = f.arn().unwrap_or_default().to_owned();
            let reason = match (f.reason(), f.detail()) {
                (Some(r), Some(d)) => format!("{r}: {d}"),
                (Some(r), None) => r.to_owned(),
                _ => "StartTask failure".to_owned(),
            };
            outcome.refused.push((host, reason));
        }
        // A host ECS said nothing about was not started.
        for h in r.container_instances {
            let known = outcome
                .started
                .iter()
                .chain(&outcome.refused)
                .any(|(x, _)| x == h);
            if !known {
                outcome
                    .refused
                    .push((h.clone(), "StartTask returned no task".to_owned()));
            }
        }
        Ok(outcome)
    }

    async fn stop_task(&self, cluster_arn: &str, task_arn: &str, reason: &str) -> Result<()> {
        let mut reason = reason.to_owned();
        reason.truncate(STOP_REASON_MAX);
        self.client
            .stop_task()
            .cluster(cluster_arn)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(ecs)?;
        Ok(())
    }

    async fn tasks_started_by(
        &self,
        cluster_arn: &str,
        started_by: &str,
        container_instance: Option<&str>,
    ) -> Result<Vec<TaskObservation>> {
        let arns = self
            .live_task_arns(cluster_arn, Some(started_by), None, container_instance)
            .await?;
        let tasks = self.describe_task_records(cluster_arn, &arns).await?;
        Ok(tasks.iter().filter_map(observe_task).collect())
    }

    async fn tasks_of_family(
        &self,
        cluster_arn: &str,
        family: &str,
    ) -> Result<Vec<TaskObservation>> {
        let arns = self
            .live_task_arns(cluster_arn, None, Some(family), None)
            .await?;
        let tasks = self.describe_task_records(cluster_arn, &arns).await?;
        Ok(tasks.iter().filter_map(observe_task).collect())
    }

    async fn describe_tasks(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<Vec<TaskObservation>> {
        let tasks = self.describe_task_records(cluster_arn, arns).await?;
        Ok(tasks.iter().filter_map(observe_task).collect())
    }

    async fn other_tasks_on(&self, cluster_arn: &str, container_instance: &str) -> Result<usize> {
        let arns = self
            .live_task_arns(cluster_arn, None, None, Some(container_instance))
            .await?;
        let tasks = self.describe_task_records(cluster_arn, &arns).await?;
        Ok(tasks
            .iter()
            .filter(|t| !t.group().is_some_and(|g| g.starts_with(GROUP_PREFIX)))
            .count())
    }
}

impl EcsCluster {
    /// StartTask is not idempotent: the SDK must never send it twice (a retry after an answer
    /// lost to a timeout or a 5xx would start a second task on every host of the call). Only
    /// throttling, which certainly started nothing, is retried, here, with backoff and jitter.
    async fn start_task_once(
        &self,
        r: &StartRequest<'_>,
    ) -> std::result::Result<StartTaskOutput, SdkError<StartTaskError, HttpResponse>> {
        let mut attempt = 0u32;
        loop {
            let res = self
                .client
                .start_task()
                .cluster(r.cluster_arn)
                .task_definition(&r.launch.task_definition)
                .set_container_instances(Some(r.container_instances.to_vec()))
                .started_by(&r.launch.started_by)
                .group(&r.launch.group)
                .set_overrides(r.launch.overrides.as_ref().map(sdk_overrides))
                .customize()
                .config_override(
                    aws_sdk_ecs::config::Builder::default()
                        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
                        // A timed-out call may have started tasks: its outcome is unknown and
                        // the claims stay for the lease check (planner::LAUNCH_DEADLINE_MS).
                        .timeout_config(
                            aws_sdk_ecs::config::timeout::TimeoutConfig::builder()
                                .operation_timeout(std::time::Duration::from_millis(
                                    START_TASK_ATTEMPT_TIMEOUT_MS as u64,
                                ))
                                .build(),
                        ),
                )
                .send()
                .await;
            match res {
                Err(e) if is_throttling(&e) && attempt < START_TASK_THROTTLE_RETRIES => {
                    attempt += 1;
                    let jitter = u64::from(ulid::Ulid::new().random() as u8);
                    let wait = (50u64 << attempt) + jitter;
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                other => return other,
            }
        }
    }

    /// Tasks whose desired status is RUNNING (pages of 100), by `startedBy`, family and/or host.
    async fn live_task_arns(
        &self,
        cluster_arn: &str,
        started_by: Option<&str>,
        family: Option<&str>,
        container_instance: Option<&str>,
    ) -> Result<Vec<String>> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_tasks()
                .cluster(cluster_arn)
                .set_started_by(started_by.map(str::to_owned))
                .set_family(family.map(str::to_owned))
                .set_container_instance(container_instance.map(str::to_owned))
                .desired_status(DesiredStatus::Running)
                .max_results(LIST_PAGE)
                .set_next_token(token)
                .send()
                .await
                .map_err(ecs)?;
            arns.extend(out.task_arns().iter().cloned());
            token = out.next_token;
            if token.is_none() {
                return Ok(arns);
            }
        }
    }

    /// DescribeTasks, 100 ARNs a call.
    async fn describe_task_records(&self, cluster_arn: &str, arns: &[String]) -> Result<Vec<Task>> {
        let mut tasks = Vec::new();
        for chunk in arns.chunks(DESCRIBE_BATCH) {
            let out = self
                .client
                .describe_tasks()
                .cluster(cluster_arn)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(ecs)?;
            tasks.extend(out.tasks().iter().cloned());
        }
        Ok(tasks)
    }
}

fn ecs_message<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        _ => "no response".to_owned(),
    }
}
