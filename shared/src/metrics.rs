//! CloudWatch metrics in the embedded metric format (EMF): the code counts what it does while an
//! invocation runs, and the runtime prints one JSON line per invocation, which CloudWatch Logs
//! turns into metrics. No PutMetricData calls, no extra latency, no extra IAM.
//!
//! Counters live in a task-local scope around one invocation (`scoped`); counting outside a scope
//! (unit tests, benches) does nothing. Lambda runs one invocation per process at a time, and the
//! executor never spawns, so everything an invocation does lands in its scope.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;

use serde_json::{json, Map, Value};

/// The namespace of every metric (the template's alarms read `DeploymentsFailed` from it).
pub const NAMESPACE: &str = "DaemonScheduler";

/// Daemon tasks ECS accepted to start.
pub const TASKS_STARTED: &str = "TasksStarted";
/// StopTask calls made (duplicates, drains, replacements, deletes).
pub const TASKS_STOPPED: &str = "TasksStopped";
/// Hosts ECS refused a StartTask for.
pub const TASK_START_FAILURES: &str = "TaskStartFailures";
pub const DEPLOYMENTS_COMPLETED: &str = "DeploymentsCompleted";
pub const DEPLOYMENTS_FAILED: &str = "DeploymentsFailed";
/// From the deployment's creation to its end (completed or failed).
pub const DEPLOYMENT_DURATION: &str = "DeploymentDuration";
/// What a scheduled reconcile had to repair: tasks started or stopped, stale claims expired.
pub const DRIFT_REPAIRED: &str = "DriftRepaired";
pub const API_LATENCY: &str = "ApiLatency";
pub const API_SERVER_ERRORS: &str = "ApiServerErrors";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
/// Environments a reconcile could not repair (a deleted cluster, a denied call, AWS failing).
pub const RECONCILE_FAILURES: &str = "ReconcileFailures";
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// What one invocation measured: counters add up, durations keep every value (EMF takes arrays).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metrics {
    values: BTreeMap<&'static str, (Unit, Vec<f64>)>,
}

impl Metrics {
    /// Counters add up; durations are kept one by one.
    pub fn add(&mut self, name: &'static str, unit: Unit, value: f64) {
        let entry = self.values.entry(name).or_insert((unit, Vec::new()));
        match unit {
            Unit::Count => match entry.1.first_mut() {
                Some(total) => *total += value,
                None => entry.1.push(value),
            },
            Unit::Milliseconds => entry.1.push(value),
        }
    }

    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.values.get(name).map(|(_, v)| v.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The EMF document: metrics without dimensions (one time series each, which the alarms
    /// read), the function's name as a plain property for Logs Insights.
    pub fn to_emf(&self, function: &str, timestamp_ms: i64) -> Option<Value> {
        if self.values.is_empty() {
            return None;
        }
        let mut doc = Map::new();
        let mut defs = Vec::new();
        for (name, (unit, values)) in &self.values {
            defs.push(json!({ "Name": name, "Unit": unit.as_str() }));
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            doc.insert((*name).to_owned(), value);
        }
        doc.insert("function".to_owned(), json!(function));
        doc.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[]],
                    "Metrics": defs,
                }],
            }),
        );
        Some(Value::Object(doc))
    }
}

tokio::task_local! {
    static CURRENT: RefCell<Metrics>;
}

/// Runs `fut` with a fresh set of counters and returns them with its output.
pub async fn scoped<F: Future>(fut: F) -> (F::Output, Metrics) {
    CURRENT
        .scope(RefCell::new(Metrics::default()), async move {
            let out = fut.await;
            let metrics = CURRENT.with(|m| m.take());
            (out, metrics)
        })
        .await
}

fn record(name: &'static str, unit: Unit, value: f64) {
    let _ = CURRENT.try_with(|m| m.borrow_mut().add(name, unit, value));
}

pub fn count(name: &'static str, n: usize) {
    if n > 0 {
        record(name, Unit::Count, n as f64);
    }
}

pub fn duration_ms(name: &'static str, ms: f64) {
    record(name, Unit::Milliseconds, ms.max(0.0));
}

/// Prints the invocation's EMF line to stdout, where Lambda's log capture picks it up.
pub fn emit(metrics: &Metrics) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    if let Some(doc) = metrics.to_emf(&function, crate::clock::system_now_ms()) {
        println!("{doc}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_add_up_and_durations_are_kept_within_the_scope_only() {
        count(TASKS_STARTED, 5); // outside any scope: dropped
        let ((), m) = scoped(async {
            count(TASKS_STARTED, 2);
            count(TASKS_STARTED, 3);
            count(TASKS_STOPPED, 0); // nothing happened: no metric at all
            duration_ms(API_LATENCY, 12.5);
            duration_ms(API_LATENCY, 3.0);
        })
        .await;
        assert_eq!(m.get(TASKS_STARTED), Some(&[5.0][..]));
        assert_eq!(m.get(TASKS_STOPPED), None);
        assert_eq!(m.get(API_LATENCY), Some(&[12.5, 3.0][..]));
        let ((), empty) = scoped(async {}).await;
        assert!(empty.is_empty(), "a new scope starts from zero");
    }

    #[tokio::test]
    async fn emf_document_declares_every_metric_in_the_namespace_without_dimensions() {
        let ((), m) = scoped(async {
            count(DEPLOYMENTS_FAILED, 1);
            duration_ms(DEPLOYMENT_DURATION, 61_000.0);
        })
        .await;
        let doc = m.to_emf("daemon-deployer", 1_700_000_000_000).unwrap();
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], NAMESPACE);
        assert_eq!(cw["Dimensions"], json!([[]]));
        let names: Vec<&str> = cw["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [DEPLOYMENT_DURATION, DEPLOYMENTS_FAILED]);
        assert_eq!(cw["Metrics"][0]["Unit"], "Milliseconds");
        // every declared metric has its value at the top level, as EMF requires
        assert_eq!(doc[DEPLOYMENTS_FAILED], 1.0);
        assert_eq!(doc[DEPLOYMENT_DURATION], 61_000.0);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(doc["function"], "daemon-deployer");
        assert!(Metrics::default().to_emf("f", 0).is_none());
    }
}
