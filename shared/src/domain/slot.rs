use serde::{Deserialize, Serialize};

use super::history::History;
use super::host::HostState;
use super::launch::LaunchSpec;
use super::placement::Placement;

/// Our task on one host, as far as our records go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "phase",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SlotTask {
    /// No task of ours: one may be claimed (when the host is eligible and no backoff runs).
    Vacant,
    /// A writer claimed the slot and is calling StartTask; nobody else may launch.
    Launching { claim_id: String, since_ms: i64 },
    /// StartTask returned this task; it has not been seen RUNNING yet.
    Pending { task_arn: String, version: i64 },
    Running {
        task_arn: String,
        version: i64,
        since_ms: i64,
    },
    /// We asked ECS to stop it; its STOPPED event frees the slot without counting a failure.
    Stopping { task_arn: String },
}

impl SlotTask {
    pub fn task_arn(&self) -> Option<&str> {
        match self {
            Self::Pending { task_arn, .. }
            | Self::Running { task_arn, .. }
            | Self::Stopping { task_arn } => Some(task_arn),
            Self::Vacant | Self::Launching { .. } => None,
        }
    }

    /// A task is (or is about to be) on the host: launching another would duplicate it.
    pub fn is_occupied(&self) -> bool {
        !matches!(self, Self::Vacant)
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// One environment × one host. The unit of exactly-once: every write is a compare-and-swap on `rev`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub environment: String,
    pub cluster_arn: String,
    pub host: HostState,
    pub task: SlotTask,
    /// What the task here runs, is launching, or will launch once it may (a waiting slot): the
    /// planner's launch for this host. A restart launches it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<LaunchSpec>,
    /// The last verdict on this host: runs here, waits, cannot run, or does not belong.
    #[serde(default)]
    pub placement: Placement,
    /// The environments this one depends on, as of its last plan (on a host that drains, they
    /// stop after it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// In-progress deployment whose counters include this slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_by: Option<String>,
    /// How long a new task must stay RUNNING before it counts as healthy (its deployment's
    /// `minHealthySeconds`); while it has not, the task is `baking`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bake_ms: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baking: bool,
    /// The deployment whose revision failed here (counted once per host by its circuit breaker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_in: Option<String>,
    /// Consecutive stops we did not ask for (restart backoff).
    #[serde(default)]
    pub failures: u32,
    /// No launch before this instant (epoch ms).
    #[serde(default)]
    pub retry_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Version of this record: writes are conditional on it.
    #[serde(default)]
    pub rev: u64,
    #[serde(default)]
    pub updated_at_ms: i64,
    /// The last tasks of ours seen stopped here: a late event of one of them is never adopted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
    /// TTL (epoch seconds) once the host is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// A surge replacement in progress (`maxSurge`): the task being replaced, kept running until
    /// `task` (its replacement) is healthy, and running again if the replacement fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surge: Option<SurgedTask>,
    /// Its last transitions, each with its deployment (`planner::history` decides them; every
    /// write appends its own).
    #[serde(default, skip_serializing_if = "History::is_empty")]
    pub history: History,
}

/// The task a surge replacement keeps running meanwhile, as it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurgedTask {
    pub task_arn: String,
    pub version: i64,
    pub since_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<LaunchSpec>,
}

impl Slot {
    pub fn new(environment: &str, cluster_arn: &str, host: HostState) -> Self {
        Self {
            environment: environment.to_owned(),
            cluster_arn: cluster_arn.to_owned(),
            host,
            task: SlotTask::Vacant,
            launch: None,
            placement: Placement::Runs,
            depends_on: Vec::new(),
            tracked_by: None,
            bake_ms: 0,
            baking: false,
            failed_in: None,
            failures: 0,
            retry_at_ms: 0,
            last_failure: None,
            rev: 0,
            updated_at_ms: 0,
            retired: Vec::new(),
            expires_at: None,
            surge: None,
            history: History::default(),
        }
    }

    /// How many stopped task ARNs a slot remembers (events arrive at most minutes late).
    pub const RETIRED_KEPT: usize = 4;

    /// Remember that this task stopped.
    pub fn retire(&mut self, task_arn: &str) {
        if !self.retired.iter().any(|t| t == task_arn) {
            self.retired.push(task_arn.to_owned());
        }
        let excess = self.retired.len().saturating_sub(Self::RETIRED_KEPT);
        self.retired.drain(..excess);
    }

    /// Its task runs and has run long enough to count as healthy.
    pub fn is_available(&self) -> bool {
        matches!(self.task, SlotTask::Running { .. }) && !self.baking
    }

    /// The host has a healthy daemon: its task, or the one a surge replacement keeps running.
    pub fn has_healthy_daemon(&self) -> bool {
        self.is_available() || self.surge.is_some()
    }

    /// When this slot's restart is due, if it waits for its backoff: nothing runs, the host still
    /// wants the daemon, and the backoff ends after `now_ms`. (A refusal or a wait for another
    /// daemon is no backoff: a change of the host or of that daemon brings it back.)
    pub fn restart_due_after(&self, now_ms: i64) -> Option<i64> {
        let waits = self.task == SlotTask::Vacant
            && self.host.is_eligible()
            && self.placement == Placement::Runs
            && self.retry_at_ms > now_ms;
        waits.then_some(self.retry_at_ms)
    }

    /// The task definition its task runs (or launches).
    pub fn task_definition(&self) -> Option<&str> {
        self.launch.as_ref().map(|l| l.task_definition.as_str())
    }

    /// The `startedBy` of its launch.
    pub fn started_by(&self) -> Option<&str> {
        self.launch.as_ref().map(|l| l.started_by.as_str())
    }

    pub fn key(&self) -> SlotKey {
        SlotKey {
            environment: self.environment.clone(),
            container_instance_arn: self.host.container_instance_arn.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotKey {
    pub environment: String,
    pub container_instance_arn: String,
}
