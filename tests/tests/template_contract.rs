//! infra/template.yaml is the product's contract: every AWS call a function makes must be allowed by
//! that function's own policy, every HttpApi route must reach a handler, and the sample events must
//! parse into what each function takes. Each flow runs against moto with the call counter on.

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use integration_tests::shared::ports::Store;
use integration_tests::shared::services::{
    deployer, deployments_api, environments_api, instance_events, reconcile_queue, reconciler,
    task_events,
};
use integration_tests::World;

fn template() -> serde_yaml::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `!Tag value` (serde_yaml keeps CloudFormation's short-form intrinsics as tagged values).
fn untag(v: &serde_yaml::Value) -> &serde_yaml::Value {
    match v {
        serde_yaml::Value::Tagged(t) => &t.value,
        other => other,
    }
}

/// Each function's role statements, by crate name. A function must have a role of its own
/// (`Role: !GetAtt <Role>.Arn`); a statement under `!If [cond, st, AWS::NoValue]` counts as present.
fn role_statements() -> BTreeMap<String, Vec<serde_yaml::Value>> {
    let doc = template();
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut out = BTreeMap::new();
    let mut roles_seen = BTreeSet::new();
    for (_, res) in resources {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            res["Properties"]["Policies"].is_null(),
            "{binary}: SAM Policies would come with AWS managed policies; give it a role of its own"
        );
        let role_ref = untag(&res["Properties"]["Role"])
            .as_str()
            .unwrap_or_else(|| {
                panic!("{binary}: no Role: !GetAtt <Role>.Arn");
            });
        let role_id = role_ref
            .strip_suffix(".Arn")
            .expect("Role: !GetAtt <Role>.Arn");
        assert!(roles_seen.insert(role_id.to_owned()), "{role_id} is shared");
        let role = &doc["Resources"][role_id];
        assert_eq!(role["Type"].as_str(), Some("AWS::IAM::Role"), "{role_id}");
        assert!(
            role["Properties"]["ManagedPolicyArns"].is_null(),
            "{role_id}: managed policies"
        );
        let mut statements = Vec::new();
        for policy in role["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for st in policy["PolicyDocument"]["Statement"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                match untag(st) {
                    serde_yaml::Value::Sequence(branches) => statements.push(branches[1].clone()),
                    other => statements.push(other.clone()),
                }
            }
        }
        out.insert(binary, statements);
    }
    out
}

fn actions_of(st: &serde_yaml::Value) -> Vec<String> {
    match &st["Action"] {
        serde_yaml::Value::String(a) => vec![a.clone()],
        serde_yaml::Value::Sequence(list) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// The IAM actions each function's role allows, by crate name.
fn allowed_actions() -> BTreeMap<String, BTreeSet<String>> {
    role_statements()
        .into_iter()
        .map(|(f, sts)| (f, sts.iter().flat_map(actions_of).collect()))
        .collect()
}

/// The IAM actions an SDK operation needs. A transaction needs the actions of the items in it; ours
/// hold puts, updates and condition checks.
fn iam_actions(op: &str) -> Vec<String> {
    let (service, name) = op.split_once('.').unwrap();
    match (service, name) {
        ("DynamoDB", "TransactWriteItems") => vec![
            "dynamodb:PutItem".into(),
            "dynamodb:UpdateItem".into(),
            "dynamodb:ConditionCheckItem".into(),
        ],
        ("DynamoDB", n) => vec![format!("dynamodb:{n}")],
        ("ECS", n) => vec![format!("ecs:{n}")],
        // IAM authorises SendMessageBatch as SendMessage.
        ("SQS", "SendMessageBatch") => vec!["sqs:SendMessage".into()],
        (s, n) => vec![format!("{}:{n}", s.to_lowercase())],
    }
}

fn assert_allowed(function: &str, w: &World, allowed: &BTreeMap<String, BTreeSet<String>>) {
    let used = w.calls.snapshot();
    assert!(!used.is_empty(), "{function}: the flow made no AWS call");
    let policy = &allowed[function];
    for op in used.keys() {
        for action in iam_actions(op) {
            assert!(
                policy.contains(&action),
                "{function} calls {op}, but its template policy does not allow {action}: {policy:?}"
            );
        }
    }
    w.calls.reset();
}

/// Least privilege: no write action on `*` (only X-Ray's, which has no resource-level permissions
/// and is present only with Tracing=Active); ECS writes limited to the ManagedClusters; PassRole
/// only of TaskRoleArns and only to ECS tasks; DynamoDB actions on the table and its indexes only.
#[test]
fn every_role_is_least_privilege() {
    let read_only = |a: &str| {
        let name = a.split_once(':').unwrap().1;
        ["Describe", "List", "Get"]
            .iter()
            .any(|p| name.starts_with(p))
    };
    let text = |v: &serde_yaml::Value| serde_yaml::to_string(v).unwrap();
    for (function, statements) in role_statements() {
        for st in &statements {
            let sid = st["Sid"].as_str().unwrap_or("?");
            let actions = actions_of(st);
            assert!(!actions.is_empty(), "{function}/{sid}: no actions");
            assert!(
                actions.iter().all(|a| !a.contains('*')),
                "{function}/{sid}: wildcard action"
            );
            if st["Resource"].as_str() == Some("*") {
                for a in &actions {
                    assert!(
                        read_only(a) || a.starts_with("xray:"),
                        "{function}/{sid}: write action {a} on Resource \"*\""
                    );
                }
            }
            let condition = text(&st["Condition"]);
            for a in &actions {
                match a.as_str() {
                    a if a.starts_with("ecs:")
                        && a != "ecs:DescribeTaskDefinition"
                        && a != "ecs:DescribeClusters" =>
                    {
                        let scope = format!("{condition}{}", text(&st["Resource"]));
                        assert!(
                            scope.contains("ManagedClusters"),
                            "{function}/{sid}: {a} is not limited to the ManagedClusters"
                        )
                    }
                    "iam:PassRole" => {
                        assert!(
                            text(&st["Resource"]).contains("TaskRoleArns"),
                            "{function}/{sid}"
                        );
                        assert!(
                            condition.contains("ecs-tasks.amazonaws.com"),
                            "{function}/{sid}"
                        );
                    }
                    "cloudwatch:DescribeAlarms" => {
                        assert!(
                            text(&st["Resource"]).contains("GateAlarmNamePrefix"),
                            "{function}/{sid}: DescribeAlarms is not scoped by GateAlarmNamePrefix"
                        );
                    }
                    a if a.starts_with("dynamodb:") => {
                        let res = text(&st["Resource"]);
                        assert!(
                            res.contains("Table.") && !res.contains("'*'"),
                            "{function}/{sid}: {a} beyond the table: {res}"
                        );
                    }
                    _ => {}
                }
            }
        }
        // The XRay statement is conditional; every other write is unconditional and scoped.
        let xray: Vec<_> = statements
            .iter()
            .filter(|st| actions_of(st).iter().any(|a| a.starts_with("xray:")))
            .collect();
        assert_eq!(xray.len(), 1, "{function}: one X-Ray statement");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_of_every_function_is_allowed_by_its_template_policy() {
    let allowed = allowed_actions();
    assert_eq!(allowed.len(), 6, "{allowed:?}");
    let w = World::new().await;
    let hosts = w.add_hosts(3).await;

    // environments-api
    w.create_environment("contract").await;
    w.api(
        "GET",
        &format!("/v1/environments?cluster={}", w.cluster_name),
        None,
    )
    .await;
    w.api("GET", "/v1/environments/contract", None).await;
    w.api("GET", "/v1/environments/contract/status", None).await;
    assert_allowed("environments-api", &w, &allowed);

    // deployments-api
    let dep = w.create_deployment("contract").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    w.api("GET", "/v1/environments/contract/deployments", None)
        .await;
    w.api(
        "GET",
        &format!("/v1/environments/contract/deployments/{id}"),
        None,
    )
    .await;
    assert_allowed("deployments-api", &w, &allowed);

    // deployer: rollout, then (after the task events) close
    w.deliver_deployment("contract", &id).await;
    assert_allowed("deployer", &w, &allowed);
    w.deliver_task_events().await;
    assert_allowed("task-events", &w, &allowed);
    w.deliver_deployment("contract", &id).await;
    assert_allowed("deployer", &w, &allowed);

    // instance-events: a join and a drain
    let new = w.add_hosts(1).await.remove(0);
    instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&new, "ACTIVE", true, 1),
    )
    .await
    .unwrap();
    w.drain(&hosts[0]).await;
    instance_events::handle(
        &w.store,
        &w.cluster,
        &w.instance_event(&hosts[0], "DRAINING", true, 9),
    )
    .await
    .unwrap();
    assert_allowed("instance-events", &w, &allowed);

    // task-events: a stop we did not ask for (restart)
    let victim = w.tasks_by_host().await[&hosts[1]][0].clone();
    w.stop_task_by_hand(&victim).await;
    w.calls.reset();
    task_events::handle(&w.store, &w.cluster, &w.task_event(&victim).await)
        .await
        .unwrap();
    assert_allowed("task-events", &w, &allowed);

    // reconciler: a task stopped with its event lost, a host that left the ACTIVE list
    let victim = w.tasks_by_host().await[&hosts[2]][0].clone();
    w.stop_task_by_hand(&victim).await;
    w.calls.reset();
    let later = integration_tests::shared::executor::system_now_ms() + 3_600_000;
    // As scheduled: the fan-out puts the cluster on the reconcile queue, its message is reconciled.
    let summary = w.reconcile_via_queue("2026-12-01T18:00:00Z", later).await;
    assert_eq!(summary.started, 1, "{summary:?}");
    assert_allowed("reconciler", &w, &allowed);

    // environments-api PUT (a revision), then a rolling deployment of it: the deployer replaces,
    // the reconciler steps it, the operator cancels it
    let v2 = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/contract",
            Some(serde_json::json!({"taskDefinition": v2})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    w.api("GET", "/v1/environments/contract/revisions", None)
        .await;
    w.api("GET", "/v1/environments/contract/revisions/2", None)
        .await;
    assert_allowed("environments-api", &w, &allowed);
    let dep = w.create_deployment("contract").await;
    let id = dep["id"].as_str().unwrap().to_owned();
    assert_allowed("deployments-api", &w, &allowed);
    w.deliver_deployment("contract", &id).await;
    assert_allowed("deployer", &w, &allowed);
    reconciler::reconcile_all(&w.store, &w.cluster, later)
        .await
        .unwrap();
    assert_allowed("reconciler", &w, &allowed);
    let (status, body) = w
        .api(
            "POST",
            &format!("/v1/environments/contract/deployments/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_allowed("deployments-api", &w, &allowed);

    // task-events schedules the end of a bake (only it calls the wake-up port), the deployer takes
    // the wake-up from its queue
    use integration_tests::shared::ports::{Wakeup, WakeupMessage};
    let message = WakeupMessage {
        environment: "contract".into(),
        deployment_id: Some(id.clone()),
        host: None,
    };
    w.wakeup.wake_later(&message, 0).await.unwrap();
    assert_allowed("task-events", &w, &allowed);
    assert_eq!(w.deliver_wakeups().await, 1);
    assert_allowed("deployer", &w, &allowed);

    // environments-api DELETE, then the deployer's teardown
    w.api("DELETE", "/v1/environments/contract", None).await;
    assert_allowed("environments-api", &w, &allowed);
    w.deliver_environment("contract").await;
    assert_allowed("deployer", &w, &allowed);
    assert!(w.store.get_environment("contract").await.unwrap().is_none());
}

/// An alarm-gated rollout, flow by flow: the revision written with its alarms, the deployment's
/// INSERT (the gates read, their first re-check scheduled), a re-check from the wake-up queue,
/// the scheduled reconcile stepping it, and the step that halts it once the alarm is in ALARM.
#[tokio::test(flavor = "multi_thread")]
async fn every_call_of_an_alarm_gated_rollout_is_allowed_by_the_template_policies() {
    let allowed = allowed_actions();
    let w = World::new().await;
    let hosts = w.add_hosts(4).await;
    let alarm = w.create_alarm("contract-gate").await;
    w.create_environment("gated").await;
    w.deploy("gated").await;
    w.calls.reset();

    // environments-api: a revision gated by the alarm (it reads no alarm itself)
    let v2 = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/gated",
            Some(serde_json::json!({"taskDefinition": v2,
                "updateStrategy": {"maxUnavailable": 1, "alarms": [alarm]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_allowed("environments-api", &w, &allowed);
    let id = w.create_deployment("gated").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_allowed("deployments-api", &w, &allowed);

    // deployer: the INSERT reads the gates and schedules their re-check
    w.deliver_deployment_insert("gated", &id).await;
    let used = w.calls.snapshot();
    assert_eq!(used.get("CloudWatch.DescribeAlarms"), Some(&1), "{used:?}");
    assert_eq!(used.get("SQS.SendMessage"), Some(&1), "{used:?}");
    assert_allowed("deployer", &w, &allowed);

    // deployer: the re-check, as the wake-up queue delivers it a minute later
    let recheck = serde_json::json!({"Records": [{
        "messageId": "1", "receiptHandle": "r",
        "body": serde_json::json!({"environment": "gated", "deploymentId": id}).to_string(),
        "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:wakeups", "awsRegion": "us-east-1"
    }]});
    let trigger: deployer::Trigger = serde_json::from_value(recheck).unwrap();
    deployer::handle_trigger_with(&w.store, &w.cluster, w.gates(), &trigger)
        .await
        .unwrap();
    assert_eq!(w.calls.get("CloudWatch.DescribeAlarms"), 1);
    assert_allowed("deployer", &w, &allowed);

    // reconciler: the scheduled run steps the deployment in progress, reading its gates
    let later = integration_tests::shared::executor::system_now_ms() + 3_600_000;
    w.reconcile_via_queue("2026-12-01T19:00:00Z", later).await;
    assert_eq!(w.calls.get("CloudWatch.DescribeAlarms"), 1);
    assert_allowed("reconciler", &w, &allowed);

    // deployer: the alarm in ALARM halts it at the next step
    w.set_alarm_state(&alarm, "ALARM").await;
    w.deliver_deployment("gated", &id).await;
    assert_allowed("deployer", &w, &allowed);
    let (_, d) = w
        .api(
            "GET",
            &format!("/v1/environments/gated/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(
        d["haltedReason"],
        format!("alarm {alarm} is in ALARM"),
        "{d}"
    );
    assert_eq!(hosts.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_http_api_route_of_the_template_reaches_its_handler() {
    let doc = template();
    let w = World::new().await;
    w.create_environment("routes").await;
    let mut routes = 0;
    for (_, res) in doc["Resources"].as_mapping().unwrap() {
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        for (_, ev) in res["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            if ev["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            routes += 1;
            let method = ev["Properties"]["Method"].as_str().unwrap().to_uppercase();
            let path = ev["Properties"]["Path"]
                .as_str()
                .unwrap()
                .replace("{name}", "routes")
                .replace("{id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
                .replace("{number}", "1");
            let expected = if path.contains("/deployments") {
                "deployments-api"
            } else {
                "environments-api"
            };
            assert_eq!(binary, expected, "{method} {path} is served by {binary}");
            let (status, body) = w.api(&method, &path, None).await;
            let unrouted = body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("no route");
            assert!(!unrouted, "{method} {path}: {status} {body}");
        }
    }
    assert_eq!(
        routes, 17,
        "the eight Blox routes, PUT, the two revisions routes, status, a deployment's hosts, cancel, promote, pause and resume"
    );
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn sample_events_parse_into_what_each_function_takes() {
    for f in [
        "instance-active",
        "instance-draining",
        "instance-agent-disconnected",
        "instance-deregistered",
    ] {
        let ev: EventBridgeEvent<instance_events::InstanceDetail> =
            serde_json::from_str(&fixture(&format!("ecs/{f}.json"))).unwrap();
        assert_eq!(ev.detail_type, "ECS Container Instance State Change");
        ev.detail.host().unwrap();
    }
    for f in ["task-running", "task-stopped", "task-stopped-by-scheduler"] {
        let ev: EventBridgeEvent<task_events::TaskDetail> =
            serde_json::from_str(&fixture(&format!("ecs/{f}.json"))).unwrap();
        let obs = ev.detail.observation().expect("a task of ours");
        assert_eq!(obs.environment, "log-shipper");
        assert_eq!(obs.stopped_by_us(), f == "task-stopped-by-scheduler");
    }
    let created: StreamEvent =
        serde_json::from_str(&fixture("stream/deployment-created.json")).unwrap();
    assert!(matches!(
        deployer::jobs(&created).unwrap()[..],
        [deployer::Job::Deployment { .. }]
    ));
    let deleting: StreamEvent =
        serde_json::from_str(&fixture("stream/environment-deleting.json")).unwrap();
    assert!(matches!(
        deployer::jobs(&deleting).unwrap()[..],
        [deployer::Job::Teardown(_)]
    ));
    let scheduled: reconcile_queue::Trigger =
        serde_json::from_str(&fixture("schedule/reconcile.json")).unwrap();
    assert!(
        matches!(scheduled, reconcile_queue::Trigger::Schedule { ref time } if time == "2026-11-20T09:06:00Z")
    );
    let cluster: reconcile_queue::Trigger =
        serde_json::from_str(&fixture("sqs/reconcile-cluster.json")).unwrap();
    assert!(matches!(cluster, reconcile_queue::Trigger::Clusters(ref e) if e.records.len() == 1));
    let wakeup: deployer::Trigger = serde_json::from_str(&fixture("sqs/wakeup.json")).unwrap();
    assert!(matches!(wakeup, deployer::Trigger::Wakeups(ref e) if e.records.len() == 1));
    let stream: deployer::Trigger =
        serde_json::from_str(&fixture("stream/deployment-created.json")).unwrap();
    assert!(matches!(stream, deployer::Trigger::Stream(_)));
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_api_requests_route_as_api_gateway_sends_them() {
    let w = World::new().await;
    let expect = [
        ("ping", 200),
        ("create-environment-blank-name", 400),
        ("list-environments", 200),
        ("get-environment", 404),
        ("list-deployments", 404),
        ("get-deployment", 404),
        ("update-environment", 404),
        ("list-revisions", 404),
        ("get-status", 404),
        ("cancel-deployment", 404),
        ("delete-environment", 200),
    ];
    for (name, status) in expect {
        let req = lambda_http::request::from_str(&fixture(&format!("api/{name}.json")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let req = integration_tests::shared::http::ApiRequest::from_lambda(&req);
        // The template routes /deployments paths to deployments-api, the rest to environments-api.
        let result = if req.segments.iter().any(|s| s == "deployments") {
            deployments_api::route(&w.store, &req).await
        } else {
            environments_api::route(&w.store, &w.cluster, &req).await
        };
        if let Err(e) = &result {
            assert!(!e.to_string().starts_with("no route"), "{name}: {e}");
        }
        let got = result
            .map(|r| r.status)
            .unwrap_or_else(|e| e.status_and_code().0);
        assert_eq!(got, status, "{name}: {req:?}");
    }
}

// ------------------------------------------------------------------------------------------------
// The dashboard against the code: every metric it draws is one the functions emit.
// ------------------------------------------------------------------------------------------------

/// A metric as CloudWatch knows it: namespace, name and its exact set of dimension names.
type MetricId = (String, String, BTreeSet<String>);

/// One metric the dashboard draws: its id, and each dimension's value (`None` under a SEARCH,
/// which draws every value).
#[derive(Debug)]
struct Drawn {
    widget: String,
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, Option<String>>,
}

/// `Namespace Name [Dimension, ...]`.
fn show(m: &MetricId) -> String {
    let dimensions: Vec<&str> = m.2.iter().map(String::as_str).collect();
    format!("{} {} [{}]", m.0, m.1, dimensions.join(", "))
}

impl Drawn {
    fn id(&self) -> MetricId {
        (
            self.namespace.clone(),
            self.name.clone(),
            self.dimensions.keys().cloned().collect(),
        )
    }
}

/// The template's dashboard body (the JSON of its `!Sub`, `${...}` left as they are).
fn dashboard_body(doc: &serde_yaml::Value) -> serde_json::Value {
    let dashboards: Vec<&serde_yaml::Value> = doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Dashboard"))
        .collect();
    assert_eq!(dashboards.len(), 1, "one dashboard in the template");
    let body = untag(&dashboards[0]["Properties"]["DashboardBody"]);
    let text = match body {
        serde_yaml::Value::Sequence(sub) => sub[0].as_str(), // !Sub [text, variables]
        other => other.as_str(),
    };
    serde_json::from_str(text.expect("DashboardBody: !Sub of JSON")).expect("DashboardBody JSON")
}

/// `SEARCH('{Namespace,Dim1,Dim2} MetricName="Name"', ...)`, each search of an expression.
fn searches(expression: &str) -> Vec<(String, String, BTreeSet<String>)> {
    let mut out = Vec::new();
    for part in expression.split("SEARCH('").skip(1) {
        let query = part.split('\'').next().unwrap();
        let schema = query
            .strip_prefix('{')
            .and_then(|q| q.split_once('}'))
            .unwrap_or_else(|| panic!("SEARCH without a {{namespace,dimensions}} schema: {query}"));
        let mut names = schema.0.split(',').map(str::trim);
        let namespace = names.next().unwrap().to_owned();
        let dimensions = names.map(str::to_owned).collect();
        let metric = schema
            .1
            .split("MetricName=\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
            .unwrap_or_else(|| panic!("SEARCH without MetricName=\"...\": {query}"));
        out.push((namespace, metric.to_owned(), dimensions));
    }
    out
}

/// Every metric of every metric widget: `[namespace, name, dim, value, ..., {options}]` rows and
/// the SEARCH expressions of `{"expression": ...}` rows.
fn drawn_metrics(body: &serde_json::Value) -> Vec<Drawn> {
    let mut out = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        if widget["type"] != "metric" {
            continue;
        }
        let title = widget["properties"]["title"].as_str().unwrap().to_owned();
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            if let Some(expression) = row[0]["expression"].as_str() {
                let found = searches(expression);
                assert!(!found.is_empty(), "{title}: an expression without SEARCH");
                for (namespace, name, dimensions) in found {
                    out.push(Drawn {
                        widget: title.clone(),
                        namespace,
                        name,
                        dimensions: dimensions.into_iter().map(|d| (d, None)).collect(),
                    });
                }
                continue;
            }
            let parts: Vec<&str> = row.iter().filter_map(|v| v.as_str()).collect();
            assert!(
                parts.len() >= 2 && parts.len().is_multiple_of(2) && !parts.contains(&"."),
                "{title}: a row as [namespace, name, dimension, value, ...] without \".\": {row:?}"
            );
            out.push(Drawn {
                widget: title.clone(),
                namespace: parts[0].to_owned(),
                name: parts[1].to_owned(),
                dimensions: parts[2..]
                    .chunks(2)
                    .map(|kv| (kv[0].to_owned(), Some(kv[1].to_owned())))
                    .collect(),
            });
        }
    }
    out
}

/// The (namespace, name, dimension set) of every metric in these EMF documents.
fn emf_metrics(docs: &[serde_json::Value]) -> BTreeSet<MetricId> {
    let mut out = BTreeSet::new();
    for doc in docs {
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            let namespace = directive["Namespace"].as_str().unwrap();
            for set in directive["Dimensions"].as_array().unwrap() {
                let dimensions: BTreeSet<String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_owned())
                    .collect();
                for d in &dimensions {
                    assert!(
                        doc.get(d).is_some(),
                        "EMF: dimension {d} has no value: {doc}"
                    );
                }
                for m in directive["Metrics"].as_array().unwrap() {
                    let name = m["Name"].as_str().unwrap();
                    assert!(doc.get(name).is_some(), "EMF: {name} has no value: {doc}");
                    out.insert((namespace.to_owned(), name.to_owned(), dimensions.clone()));
                }
            }
        }
    }
    out
}

/// What the code emits, from the EMF lines of real flows against moto, each in a metrics scope
/// as the runtime runs an invocation: a rollout that completes, a task stopped behind our back
/// and repaired by the reconciler, a drain, a deployment ECS refuses (its task definition deleted
/// meanwhile), and API requests through the runtime's measuring, one of them a 5xx.
async fn emitted_metrics() -> BTreeSet<MetricId> {
    use integration_tests::shared::adapters::DynamoStore;
    use integration_tests::shared::http::ApiRequest;
    use integration_tests::shared::metrics::scoped;
    use integration_tests::shared::runtime::measure_api;

    let w = World::new().await;
    let mut docs = Vec::new();
    let hosts = w.add_hosts(3).await;

    // a rollout: started, then completed with its duration
    w.create_environment("web").await;
    let id = w.create_deployment("web").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ((), m) = scoped(w.deliver_deployment("web", &id)).await;
    docs.extend(m.to_emf("deployer", 0));
    let ((), m) = scoped(w.deliver_task_events()).await;
    docs.extend(m.to_emf("task-events", 0));
    let ((), m) = scoped(w.deliver_deployment("web", &id)).await;
    docs.extend(m.to_emf("deployer", 0));

    // drift: a task stopped with its event lost, restarted by the scheduled reconcile
    let victim = w.tasks_by_host().await[&hosts[0]][0].clone();
    w.stop_task_by_hand(&victim).await;
    let later = integration_tests::shared::executor::system_now_ms() + 3_600_000;
    let (summary, m) = scoped(reconciler::reconcile_all(&w.store, &w.cluster, later)).await;
    assert_eq!(summary.unwrap().started, 1);
    docs.extend(m.to_emf("reconciler", 0));

    // a drain: the host's daemon stopped
    w.drain(&hosts[1]).await;
    let draining = w.instance_event(&hosts[1], "DRAINING", true, 9);
    let (report, m) = scoped(instance_events::handle(&w.store, &w.cluster, &draining)).await;
    assert_eq!(report.unwrap().stopped.len(), 1);
    docs.extend(m.to_emf("instance-events", 0));

    // ECS refuses every start (the task definition was deleted since): the deployment fails
    let revision = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "POST",
            "/v1/environments",
            Some(
                serde_json::json!({"name": "refused", "taskDefinition": revision,
                "instanceGroup": {"cluster": w.cluster_name}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    w.ecs
        .deregister_task_definition()
        .task_definition(&revision)
        .send()
        .await
        .unwrap();
    w.ecs
        .delete_task_definitions()
        .task_definitions(&revision)
        .send()
        .await
        .unwrap();
    let id = w.create_deployment("refused").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let ((), m) = scoped(w.deliver_deployment("refused", &id)).await;
        docs.extend(m.to_emf("deployer", 0));
    }
    let (_, dep) = w
        .api(
            "GET",
            &format!("/v1/environments/refused/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(dep["status"], "failed", "{dep}");

    // the API, measured as the runtime measures every request: one answered, one 5xx (its table
    // is gone)
    let get = |name: &str| ApiRequest {
        method: "GET".into(),
        segments: vec!["environments".into(), name.into()],
        ..Default::default()
    };
    let (response, m) =
        measure_api(environments_api::route(&w.store, &w.cluster, &get("web"))).await;
    assert_eq!(response.status(), 200);
    docs.extend(m.to_emf("environments-api", 0));
    let gone = DynamoStore::new(w.ddb.clone(), "no-such-table");
    let (response, m) = measure_api(environments_api::route(&gone, &w.cluster, &get("web"))).await;
    assert_eq!(response.status(), 500);
    docs.extend(m.to_emf("environments-api", 0));

    emf_metrics(&docs)
}

/// The metric names shared/src/metrics.rs declares (`pub const X: &str = "Name";`, but the
/// namespace and the dimension's name).
fn declared_metric_names() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/src/metrics.rs");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .filter(|l| !l.starts_with("NAMESPACE:") && !l.starts_with("ENVIRONMENT:"))
        .filter_map(|l| l.split_once(": &str = \"")?.1.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// `${Name}` / `${Name.Attribute}` → (Name, Attribute).
fn reference(value: &str) -> (&str, Option<&str>) {
    let inner = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or_else(|| panic!("{value}: not a ${{...}} reference to a template resource"));
    match inner.split_once('.') {
        Some((name, attribute)) => (name, Some(attribute)),
        None => (inner, None),
    }
}

/// The queues something sends its failures to: SQS redrive, EventBridge dead-letter configs,
/// Lambda's on-failure destinations.
fn dead_letter_queues(doc: &serde_yaml::Value) -> BTreeSet<String> {
    fn walk(v: &serde_yaml::Value, parent: &str, out: &mut BTreeSet<String>) {
        match untag(v) {
            serde_yaml::Value::Mapping(m) => {
                for (k, x) in m {
                    let key = k.as_str().unwrap_or_default();
                    let target = matches!(
                        (parent, key),
                        (_, "deadLetterTargetArn")
                            | ("DeadLetterConfig", "Arn")
                            | ("OnFailure", "Destination")
                    );
                    match untag(x).as_str().and_then(|a| a.strip_suffix(".Arn")) {
                        Some(queue) if target => {
                            out.insert(queue.to_owned());
                        }
                        _ => walk(x, key, out),
                    }
                }
            }
            serde_yaml::Value::Sequence(s) => s.iter().for_each(|x| walk(x, parent, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(&doc["Resources"], "", &mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_draws_only_metrics_the_code_emits() {
    let doc = template();
    let body = dashboard_body(&doc);
    let drawn = drawn_metrics(&body);
    let emitted = emitted_metrics().await;
    let type_of = |name: &str| doc["Resources"][name]["Type"].as_str().map(str::to_owned);
    let namespace = integration_tests::shared::metrics::NAMESPACE;

    // The scheduler's own metrics: each (name, dimension set) drawn is one the code emits.
    let all: Vec<String> = emitted.iter().map(show).collect();
    for d in drawn.iter().filter(|d| d.namespace == namespace) {
        assert!(
            emitted.contains(&d.id()),
            "the dashboard's \"{}\" draws {}, which the code does not emit; it emits {all:?}",
            d.widget,
            show(&d.id())
        );
    }
    // ... and so does every alarm on one of them (a metric is its name and exact dimensions);
    // an alarm on a metric the flows above do not reach (a failure they do not provoke) must at
    // least read a name metrics.rs declares.
    let names: BTreeSet<&str> = emitted.iter().map(|m| m.1.as_str()).collect();
    let declared = declared_metric_names();
    for (id, r) in doc["Resources"].as_mapping().unwrap() {
        let p = &r["Properties"];
        if r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
            && p["Namespace"].as_str() == Some(namespace)
        {
            let dimensions = p["Dimensions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|d| d["Name"].as_str().unwrap().to_owned())
                .collect();
            let metric = (
                namespace.to_owned(),
                p["MetricName"].as_str().unwrap().to_owned(),
                dimensions,
            );
            if names.contains(metric.1.as_str()) {
                assert!(
                    emitted.contains(&metric),
                    "alarm {id:?} reads {}, which the code does not emit; it emits {all:?}",
                    show(&metric)
                );
            } else {
                assert!(
                    declared.contains(&metric.1),
                    "alarm {id:?} reads {}, which shared/src/metrics.rs does not declare: {declared:?}",
                    show(&metric)
                );
            }
        }
    }
    // Whatever the code emits by environment is drawn by environment.
    let environment = integration_tests::shared::metrics::ENVIRONMENT;
    for m in emitted.iter().filter(|m| m.2.contains(environment)) {
        assert!(
            drawn.iter().any(|d| &d.id() == m),
            "{} is emitted by {environment} and not on the dashboard",
            show(m)
        );
    }

    // AWS metrics: of this template's resources, and each function and dead-letter queue drawn.
    let mut lambda: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut queues = BTreeSet::new();
    for d in drawn.iter().filter(|d| d.namespace != namespace) {
        let only = |dimension: &str| {
            assert_eq!(d.dimensions.len(), 1, "{}: {d:?}", d.widget);
            let value = d.dimensions.get(dimension).cloned().flatten();
            value.unwrap_or_else(|| panic!("{}: {d:?} has no {dimension}", d.widget))
        };
        match d.namespace.as_str() {
            "AWS/Lambda" => {
                let value = only("FunctionName");
                let (function, attribute) = reference(&value);
                assert_eq!(attribute, None, "{value}");
                assert_eq!(
                    type_of(function).as_deref(),
                    Some("AWS::Serverless::Function"),
                    "{}: {value} is no function of the template",
                    d.widget
                );
                lambda
                    .entry(function.to_owned())
                    .or_default()
                    .insert(d.name.clone());
            }
            "AWS/SQS" => {
                let value = only("QueueName");
                let (queue, attribute) = reference(&value);
                assert_eq!(attribute, Some("QueueName"), "{value}");
                assert_eq!(
                    type_of(queue).as_deref(),
                    Some("AWS::SQS::Queue"),
                    "{}: {value} is no queue of the template",
                    d.widget
                );
                if d.name == "ApproximateNumberOfMessagesVisible" {
                    queues.insert(queue.to_owned());
                }
            }
            "AWS/ApiGateway" => {
                let value = only("ApiId");
                let (api, attribute) = reference(&value);
                assert_eq!(attribute, None, "{value}");
                assert_eq!(
                    type_of(api).as_deref(),
                    Some("AWS::Serverless::HttpApi"),
                    "{value}"
                );
            }
            other => panic!("{}: namespace {other} is not checked here", d.widget),
        }
    }
    let functions: BTreeMap<String, BTreeSet<String>> = doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, _)| {
            let all = ["Duration", "Errors", "Throttles"].map(str::to_owned);
            (id.as_str().unwrap().to_owned(), all.into())
        })
        .collect();
    assert_eq!(
        lambda, functions,
        "each function's errors, throttles and duration"
    );
    let dlqs = dead_letter_queues(&doc);
    assert!(
        dlqs.len() >= 5,
        "the template's dead-letter queues, found {dlqs:?}"
    );
    assert_eq!(queues, dlqs, "the depth of every dead-letter queue");

    // The alarms widget: every alarm of the template, and only those.
    let listed: BTreeSet<String> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| w["properties"]["alarms"].as_array().unwrap())
        .map(|a| {
            let (alarm, attribute) = reference(a.as_str().unwrap());
            assert_eq!(attribute, Some("Arn"), "{a}");
            alarm.to_owned()
        })
        .collect();
    let alarms: BTreeSet<String> = doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(id, _)| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, alarms, "the alarms widget shows every alarm");
}
