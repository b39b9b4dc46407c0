//! What happened on one host: each slot keeps the last `History::KEPT` transitions of its task,
//! each attributed to a deployment (`GET …/deployments/{id}/hosts`). The entries are written by
//! the same conditional write that changes the slot (no call of their own); which transition a
//! write is, is decided once, in `planner::history`.
//!
//! Stored compactly, because every slot is read by each reconcile (a Query page holds 1 MB): one
//! letter per field and per event, an entry's deployment and revision only when they differ from
//! the entry before, its instant as the milliseconds since the entry before, and a task as its id
//! when its ARN is the cluster's (`arn:…:task/<cluster>/<id>`). A host's first launch adds about
//! 100 bytes to its slot, a rollout about 130.

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// A transition of a slot's task, as the history names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Event {
    /// The host was claimed for a launch (StartTask follows).
    Claimed,
    /// The launch's task showed up (its first event; PENDING, or already RUNNING).
    Started,
    /// ECS reports the task RUNNING.
    Running,
    /// It counts as healthy: RUNNING with no bake, or its bake (`minHealthySeconds`) is over.
    Healthy,
    /// The task stopped without being asked to, or StartTask refused the revision (ECS's reason).
    Failed,
    /// The host cannot run the revision (the reason); not a failure.
    Unschedulable,
    /// Its task is stopped for the deployment's revision (the entry names the old task).
    Replaced,
    /// Its task is stopped because the host drains or leaves, or no longer selects the daemon.
    Stopped,
    /// A claim let go without a launch (StartTask throttled, or the launch deadline passed).
    Released,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Started => "started",
            Self::Running => "running",
            Self::Healthy => "healthy",
            Self::Failed => "failed",
            Self::Unschedulable => "unschedulable",
            Self::Replaced => "replaced",
            Self::Stopped => "stopped",
            Self::Released => "released",
        }
    }

    /// Its letter in the stored history.
    fn code(self) -> &'static str {
        match self {
            Self::Claimed => "c",
            Self::Started => "s",
            Self::Running => "r",
            Self::Healthy => "h",
            Self::Failed => "f",
            Self::Unschedulable => "u",
            Self::Replaced => "x",
            Self::Stopped => "p",
            Self::Released => "l",
        }
    }

    fn of_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }

    pub const ALL: [Event; 9] = [
        Self::Claimed,
        Self::Started,
        Self::Running,
        Self::Healthy,
        Self::Failed,
        Self::Unschedulable,
        Self::Replaced,
        Self::Stopped,
        Self::Released,
    ];
}

/// One transition of a host's slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The deployment it belongs to: the one that tracks the slot, or whose revision the host
    /// runs, launches or was judged for.
    pub deployment: String,
    /// When it was written (epoch ms).
    pub at_ms: i64,
    pub event: Event,
    /// ECS's reason of a failure, why the host cannot run the revision, why a task was stopped.
    pub reason: Option<String>,
    /// The task it is about, as stored: its id when its ARN is the cluster's, else its ARN
    /// (`task_arn` gives the ARN).
    pub task: Option<String>,
    /// The revision it concerns (0: not known, a task we did not start).
    pub revision: u32,
}

/// Characters of a reason kept in an entry (ECS's reasons are at most 255).
pub const REASON_MAX: usize = 256;

impl Entry {
    pub fn new(deployment: &str, at_ms: i64, event: Event, revision: u32) -> Self {
        Self {
            deployment: deployment.to_owned(),
            at_ms,
            event,
            reason: None,
            task: None,
            revision,
        }
    }

    /// With this reason, cut to `REASON_MAX` characters.
    pub fn because(mut self, reason: &str) -> Self {
        self.reason = Some(match reason.char_indices().nth(REASON_MAX) {
            Some((cut, _)) => {
                let mut r = reason[..cut].to_owned();
                r.pop();
                r.push('…');
                r
            }
            None => reason.to_owned(),
        });
        self
    }

    /// About this task of the cluster (kept as its id when its ARN is the cluster's).
    pub fn of_task(mut self, cluster_arn: &str, task_arn: &str) -> Self {
        self.task = Some(match task_id_in(cluster_arn, task_arn) {
            Some(id) => id.to_owned(),
            None => task_arn.to_owned(),
        });
        self
    }

    /// The ARN of the task it is about, on the slot's cluster.
    pub fn task_arn(&self, cluster_arn: &str) -> Option<String> {
        let task = self.task.as_deref()?;
        if task.contains(':') {
            return Some(task.to_owned());
        }
        let (prefix, name) = cluster_arn.split_once(":cluster/")?;
        Some(format!("{prefix}:task/{name}/{task}"))
    }
}

/// The id of `task_arn` when it is a task of `cluster_arn` in ECS's ARN format
/// (`arn:aws:ecs:<region>:<account>:task/<cluster name>/<id>`).
fn task_id_in<'a>(cluster_arn: &str, task_arn: &'a str) -> Option<&'a str> {
    let (prefix, name) = cluster_arn.split_once(":cluster/")?;
    let id = task_arn
        .strip_prefix(prefix)?
        .strip_prefix(":task/")?
        .strip_prefix(name)?
        .strip_prefix('/')?;
    (!id.is_empty() && !id.contains([':', '/'])).then_some(id)
}

/// The last transitions of one slot, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History(Vec<Entry>);

impl History {
    /// Entries a slot keeps; older ones are dropped. With reasons cut to `REASON_MAX`
    /// characters, a full history stays under 40 KB even in 4-byte characters (an item may hold
    /// 400 KB); a typical one is about 1 KB.
    pub const KEPT: usize = 32;

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.0
    }

    /// Appends what a write did, dropping the oldest entries past `KEPT`.
    pub fn record(&mut self, entries: impl IntoIterator<Item = Entry>) {
        self.0.extend(entries);
        let excess = self.0.len().saturating_sub(Self::KEPT);
        self.0.drain(..excess);
    }

    /// The entries of one deployment, oldest first.
    pub fn of<'a>(&'a self, deployment: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.0.iter().filter(move |e| e.deployment == deployment)
    }
}

/// An entry as stored: a field left out is the entry before's (deployment, revision); `at` is
/// the milliseconds since the entry before (the first one's: since the epoch).
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    deployment: Option<String>,
    #[serde(rename = "a")]
    at: i64,
    #[serde(rename = "e")]
    event: String,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    task: Option<String>,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    revision: Option<u32>,
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut prev: Option<&Entry> = None;
        let stored: Vec<Stored> = self
            .0
            .iter()
            .map(|e| {
                let out = Stored {
                    deployment: (prev.map(|p| &p.deployment) != Some(&e.deployment))
                        .then(|| e.deployment.clone()),
                    at: e.at_ms - prev.map_or(0, |p| p.at_ms),
                    event: e.event.code().to_owned(),
                    reason: e.reason.clone(),
                    task: e.task.clone(),
                    revision: (prev.map_or(0, |p| p.revision) != e.revision).then_some(e.revision),
                };
                prev = Some(e);
                out
            })
            .collect();
        stored.serialize(s)
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = Vec::<Stored>::deserialize(d)?;
        let mut out: Vec<Entry> = Vec::with_capacity(stored.len());
        for s in stored {
            let prev = out.last();
            let entry = Entry {
                deployment: s
                    .deployment
                    .or_else(|| prev.map(|p| p.deployment.clone()))
                    .unwrap_or_default(),
                at_ms: s.at + prev.map_or(0, |p| p.at_ms),
                event: Event::of_code(&s.event).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown history event {:?}", s.event))
                })?,
                reason: s.reason,
                task: s.task,
                revision: s.revision.unwrap_or_else(|| prev.map_or(0, |p| p.revision)),
            };
            out.push(entry);
        }
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
    const TASK: &str =
        "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef";

    fn sample() -> History {
        let mut h = History::default();
        h.record([
            Entry::new(
                "01JDQ3ZC9X8Q6M0W5Y7B2K4N1R",
                1_764_000_000_000,
                Event::Claimed,
                2,
            ),
            Entry::new(
                "01JDQ3ZC9X8Q6M0W5Y7B2K4N1R",
                1_764_000_000_250,
                Event::Started,
                2,
            )
            .of_task(CLUSTER, TASK),
            Entry::new(
                "01JDQ3ZC9X8Q6M0W5Y7B2K4N1R",
                1_764_000_003_000,
                Event::Failed,
                2,
            )
            .of_task(CLUSTER, TASK)
            .because("Essential container in task exited"),
            Entry::new(
                "01JDQ40000000000000000000A",
                1_764_000_009_000,
                Event::Unschedulable,
                3,
            )
            .because("needs 512 MiB memory, 300 free"),
            Entry::new(
                "01JDQ40000000000000000000A",
                1_764_000_010_000,
                Event::Stopped,
                0,
            )
            .of_task(CLUSTER, "arn:aws:ecs:us-east-1:123456789012:task/other/abc"),
        ]);
        h
    }

    #[test]
    fn stored_compactly_and_read_back_as_it_was() {
        let h = sample();
        let stored = serde_json::to_value(&h).unwrap();
        assert_eq!(
            stored,
            serde_json::json!([
                {"d": "01JDQ3ZC9X8Q6M0W5Y7B2K4N1R", "a": 1_764_000_000_000_i64, "e": "c", "v": 2},
                {"a": 250, "e": "s", "t": "0123456789abcdef0123456789abcdef"},
                {"a": 2750, "e": "f", "t": "0123456789abcdef0123456789abcdef",
                 "r": "Essential container in task exited"},
                {"d": "01JDQ40000000000000000000A", "a": 6000, "e": "u", "v": 3,
                 "r": "needs 512 MiB memory, 300 free"},
                {"a": 1000, "e": "p", "v": 0, "t": "arn:aws:ecs:us-east-1:123456789012:task/other/abc"},
            ])
        );
        let back: History = serde_json::from_value(stored).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.entries()[1].task_arn(CLUSTER).as_deref(), Some(TASK));
        assert_eq!(
            back.entries()[4].task_arn(CLUSTER).as_deref(),
            Some("arn:aws:ecs:us-east-1:123456789012:task/other/abc"),
            "a task ARN of another form is kept whole"
        );
        assert_eq!(back.of("01JDQ40000000000000000000A").count(), 2);
        for e in Event::ALL {
            assert_eq!(Event::of_code(e.code()), Some(e), "{e:?}");
        }
        let corrupt = serde_json::json!([{"a": 1, "e": "claimed"}]);
        assert!(serde_json::from_value::<History>(corrupt).is_err());
    }

    #[test]
    fn keeps_the_last_entries_and_reasons_are_bounded() {
        let mut h = sample();
        let long = "x".repeat(5_000);
        for i in 0..100 {
            h.record([Entry::new(
                "01JDQ40000000000000000000A",
                1_764_000_100_000 + i,
                Event::Failed,
                3,
            )
            .of_task(CLUSTER, TASK)
            .because(&long)]);
        }
        assert_eq!(h.entries().len(), History::KEPT);
        assert_eq!(
            h.entries()[0].at_ms,
            1_764_000_100_000 + 100 - History::KEPT as i64
        );
        let reason = h.entries()[0].reason.as_deref().unwrap();
        assert_eq!(reason.chars().count(), REASON_MAX);
        assert!(reason.ends_with('…'));
        // Read back after the oldest were dropped: the first entry carries what it needs.
        let back: History = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert!(
            serde_json::to_string(&h).unwrap().len() < 12_000,
            "a full history stays small"
        );
    }
}
