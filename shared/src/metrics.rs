//! CloudWatch metrics in the embedded metric format (EMF): the code counts what it does while an
//! invocation runs, and the runtime prints one JSON line per invocation, which CloudWatch Logs
//! turns into metrics. No PutMetricData calls, no extra latency, no extra IAM.
//!
//! Counters live in a task-local scope around one invocation (`scoped`); counting outside a scope
//! (unit tests, benches) does nothing. Lambda runs one invocation per process at a time, and the
//! executor never spawns, so everything an invocation does lands in its scope.
//!
//! What is about one environment (tasks, deployments, drift) is counted with its name
//! (`count_for`, `duration_ms_for`) and emitted twice over, by EMF's dimension sets: once without
//! dimensions (the stack's total, which the alarms read) and once by `Environment` (the
//! dashboard's per-environment graphs). The rest (the API's latency and 5xx) has no dimension.

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
/// Environments a reconcile could not repair (a deleted cluster, a denied call, AWS failing).
pub const RECONCILE_FAILURES: &str = "ReconcileFailures";
pub const API_LATENCY: &str = "ApiLatency";
pub const API_SERVER_ERRORS: &str = "ApiServerErrors";

/// The dimension of a metric about one environment: the environment's name.
pub const ENVIRONMENT: &str = "Environment";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
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

/// Values by metric name: counters add up, durations keep every value (EMF takes arrays).
type Values = BTreeMap<&'static str, (Unit, Vec<f64>)>;

fn add_to(values: &mut Values, name: &'static str, unit: Unit, value: f64) {
    let entry = values.entry(name).or_insert((unit, Vec::new()));
    match unit {
        Unit::Count => match entry.1.first_mut() {
            Some(total) => *total += value,
            None => entry.1.push(value),
        },
        Unit::Milliseconds => entry.1.push(value),
    }
}

/// What one invocation measured: counters add up, durations keep every value (EMF takes arrays).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metrics {
    /// Everything, whichever environment it was about.
    totals: Values,
    /// What was about no environment in particular.
    general: Values,
    /// What was about one environment, by its name.
    environments: BTreeMap<String, Values>,
}

impl Metrics {
    /// Counters add up; durations are kept one by one.
    pub fn add(&mut self, name: &'static str, unit: Unit, value: f64) {
        add_to(&mut self.totals, name, unit, value);
        add_to(&mut self.general, name, unit, value);
    }

    /// As `add`, about one environment.
    pub fn add_for(&mut self, environment: &str, name: &'static str, unit: Unit, value: f64) {
        add_to(&mut self.totals, name, unit, value);
        let values = self.environments.entry(environment.to_owned()).or_default();
        add_to(values, name, unit, value);
    }

    /// The invocation's values of a metric, whichever environments they were about.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.totals.get(name).map(|(_, v)| v.as_slice())
    }

    /// The values of a metric about one environment.
    pub fn get_for(&self, environment: &str, name: &str) -> Option<&[f64]> {
        self.environments
            .get(environment)?
            .get(name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }

    /// The EMF documents, one JSON line each: one per environment the invocation was about, its
    /// metrics under the dimension sets `[]` (the stack's total: one time series per metric,
    /// which the alarms read; CloudWatch adds up the documents) and `[Environment]`; one for the
    /// rest, without dimensions. The function's name is a plain property, for Logs Insights.
    pub fn to_emf(&self, function: &str, timestamp_ms: i64) -> Vec<Value> {
        let mut docs = Vec::new();
        for (environment, values) in &self.environments {
            let dimension = (ENVIRONMENT, environment.as_str());
            docs.extend(emf(values, Some(dimension), function, timestamp_ms));
        }
        docs.extend(emf(&self.general, None, function, timestamp_ms));
        docs
    }
}

/// One EMF document of `values`; with a dimension, also under that dimension.
fn emf(
    values: &Values,
    dimension: Option<(&str, &str)>,
    function: &str,
    timestamp_ms: i64,
) -> Option<Value> {
    if values.is_empty() {
        return None;
    }
    let mut doc = Map::new();
    let mut defs = Vec::new();
    for (name, (unit, values)) in values {
        defs.push(json!({ "Name": name, "Unit": unit.as_str() }));
        let value = match values.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        doc.insert((*name).to_owned(), value);
    }
    let dimension_sets = match dimension {
        Some((key, value)) => {
            doc.insert(key.to_owned(), json!(value));
            json!([[], [key]])
        }
        None => json!([[]]),
    };
    doc.insert("function".to_owned(), json!(function));
    doc.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": defs,
            }],
        }),
    );
    Some(Value::Object(doc))
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

fn record(environment: Option<&str>, name: &'static str, unit: Unit, value: f64) {
    let _ = CURRENT.try_with(|m| match environment {
        Some(e) => m.borrow_mut().add_for(e, name, unit, value),
        None => m.borrow_mut().add(name, unit, value),
    });
}

pub fn count(name: &'static str, n: usize) {
    if n > 0 {
        record(None, name, Unit::Count, n as f64);
    }
}

pub fn duration_ms(name: &'static str, ms: f64) {
    record(None, name, Unit::Milliseconds, ms.max(0.0));
}

/// Counts what happened to one environment (emitted in total and by `Environment`).
pub fn count_for(environment: &str, name: &'static str, n: usize) {
    if n > 0 {
        record(Some(environment), name, Unit::Count, n as f64);
    }
}

/// A duration about one environment (emitted in total and by `Environment`).
pub fn duration_ms_for(environment: &str, name: &'static str, ms: f64) {
    record(Some(environment), name, Unit::Milliseconds, ms.max(0.0));
}

/// Prints the invocation's EMF lines to stdout, where Lambda's log capture picks them up.
pub fn emit(metrics: &Metrics) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    for doc in metrics.to_emf(&function, crate::clock::system_now_ms()) {
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
        let docs = m.to_emf("daemon-deployer", 1_700_000_000_000);
        assert_eq!(docs.len(), 1, "{docs:?}");
        let doc = &docs[0];
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
        assert!(Metrics::default().to_emf("f", 0).is_empty());
    }

    #[tokio::test]
    async fn what_is_about_an_environment_is_emitted_in_total_and_by_environment() {
        let ((), m) = scoped(async {
            count_for("web", TASKS_STARTED, 2);
            count_for("db", TASKS_STARTED, 1);
            count_for("web", DEPLOYMENTS_FAILED, 1);
            duration_ms_for("web", DEPLOYMENT_DURATION, 5_000.0);
            duration_ms(API_LATENCY, 7.0);
        })
        .await;
        // the invocation's totals, and each environment's share
        assert_eq!(m.get(TASKS_STARTED), Some(&[3.0][..]));
        assert_eq!(m.get_for("web", TASKS_STARTED), Some(&[2.0][..]));
        assert_eq!(m.get_for("db", TASKS_STARTED), Some(&[1.0][..]));
        assert_eq!(m.get_for("db", DEPLOYMENTS_FAILED), None);
        // one document per environment (dimension sets [] and [Environment]), one for the rest
        let docs = m.to_emf("f", 0);
        assert_eq!(docs.len(), 3, "{docs:#?}");
        let (db, web, rest) = (&docs[0], &docs[1], &docs[2]);
        for (doc, env) in [(db, "db"), (web, "web")] {
            let cw = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(cw["Namespace"], NAMESPACE);
            assert_eq!(cw["Dimensions"], json!([[], [ENVIRONMENT]]));
            assert_eq!(doc[ENVIRONMENT], env);
        }
        assert_eq!(db[TASKS_STARTED], 1.0);
        assert_eq!(web[TASKS_STARTED], 2.0);
        assert_eq!(web[DEPLOYMENTS_FAILED], 1.0);
        assert_eq!(web[DEPLOYMENT_DURATION], 5_000.0);
        assert!(web.get(API_LATENCY).is_none());
        assert_eq!(
            rest["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert!(rest.get(ENVIRONMENT).is_none());
        assert_eq!(rest[API_LATENCY], 7.0);
        // summed over the documents, the dimensionless series is the invocation's total
        let total: f64 = docs.iter().filter_map(|d| d[TASKS_STARTED].as_f64()).sum();
        assert_eq!(total, 3.0);
    }
}
