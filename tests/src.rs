//! Test harness for the integration tests: a "world" on a real moto server (DynamoDB + ECS on
//! 127.0.0.1, started by the test command), the table created from infra/template.yaml, the real
//! adapters with an SDK interceptor that counts every AWS call, and helpers that play EventBridge
//! and DynamoDB Streams (moto emits no events) from moto's own state.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{json, Value};
use shared::adapters::{DynamoStore, EcsCluster};
use shared::http::ApiRequest;
use shared::ports::Store;
use shared::services::{
    deployer, deployments_api, environments_api, instance_events, reconcile_queue, reconciler,
    task_events,
};

pub use shared;

/// Chaos at volume against moto (tests/tests/chaos.rs, `bench chaos`).
pub mod moto_chaos;

/// moto's address, exported by the test command (`make test`) which starts and stops it.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect(
        "MOTO_ENDPOINT is not set: run the integration tests through `make test`, which starts moto",
    )
}

/// Counts AWS calls per operation ("ECS.StartTask"), and the hosts of every StartTask call.
#[derive(Debug, Default, Clone)]
pub struct CallCounter {
    calls: Arc<Mutex<BTreeMap<String, usize>>>,
    start_task_sizes: Arc<Mutex<Vec<usize>>>,
}

impl CallCounter {
    pub fn get(&self, op: &str) -> usize {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }
    pub fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }
    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.calls.lock().unwrap().clone()
    }
    pub fn start_task_sizes(&self) -> Vec<usize> {
        self.start_task_sizes.lock().unwrap().clone()
    }
    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
        self.start_task_sizes.lock().unwrap().clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }
    // Metadata is in the bag from serialization on (not yet at `read_before_execution`).
    fn read_before_serialization(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let key = format!("{}.{}", m.service(), m.name());
            *self.calls.lock().unwrap().entry(key).or_default() += 1;
        }
        if let Some(input) = ctx
            .input()
            .downcast_ref::<aws_sdk_ecs::operation::start_task::StartTaskInput>()
        {
            let n = input.container_instances().len();
            self.start_task_sizes.lock().unwrap().push(n);
        }
        Ok(())
    }
}

/// Fault injection at the SDK's edge, for the product's clients only: each call, with the
/// probability set (per mille), is either throttled before it reaches moto (answered with 400
/// ThrottlingException by a loopback server that does nothing: the call did not happen) or has its
/// answer lost after moto executed it (500 InternalFailure: the call happened, the caller cannot
/// know) — on every attempt of that call, so the failure reaches the product whatever its SDK
/// retries. The draws are a deterministic sequence. With `set_rates`, the throttles, the 5xx (half
/// of them before moto executes the call, half with the answer lost after) and the latency (the
/// thread sleeps before the call is sent) each have their own rate.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    per_mille: Arc<AtomicU64>,
    seq: Arc<AtomicU64>,
    throttle_endpoint: Arc<Mutex<String>>,
    injected: Arc<Mutex<BTreeMap<String, usize>>>,
    /// (throttled, 5xx, delayed per mille, longest delay in ms), when set by `set_rates`.
    rates: Arc<Mutex<Option<Rates>>>,
}

/// (throttled, 5xx, delayed per mille, longest delay in ms).
type Rates = (u64, u64, u64, u64);

/// What a fault did to one call, decided once per attempt before it is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Throttle,
    LoseAnswer,
    /// 500 before moto saw the call: never executed.
    ServerError,
}

impl aws_smithy_types::config_bag::Storable for Fault {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// How long a call waits before it is sent (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Delay(u64);

impl aws_smithy_types::config_bag::Storable for Delay {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Faults {
    pub fn set_per_mille(&self, n: u64) {
        self.per_mille.store(n, Ordering::SeqCst);
    }
    /// Per mille of calls throttled, answered 5xx (half executed: the answer lost) and delayed by
    /// up to `latency_max_ms`; all 0: off.
    pub fn set_rates(&self, throttle: u64, server_error: u64, latency: u64, latency_max_ms: u64) {
        let on = throttle + server_error + latency > 0;
        *self.rates.lock().unwrap() =
            on.then_some((throttle, server_error, latency, latency_max_ms));
    }
    /// Faults injected so far, by kind ("throttled", "answer lost", "5xx", "delayed").
    pub fn injected(&self) -> BTreeMap<String, usize> {
        self.injected.lock().unwrap().clone()
    }
    /// Faults that failed a call (all but delays).
    pub fn failures(&self) -> usize {
        let i = self.injected.lock().unwrap();
        ["throttled", "answer lost", "5xx"]
            .iter()
            .map(|k| i.get(*k).copied().unwrap_or(0))
            .sum()
    }
    /// splitmix64 of the next sequence number.
    fn next(&self) -> u64 {
        let mut z = self
            .seq
            .fetch_add(1, Ordering::SeqCst)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// With rates set: the call's fault and its delay.
    fn draw_rates(
        &self,
        (throttle, server, latency, max_ms): (u64, u64, u64, u64),
    ) -> (Option<Fault>, u64) {
        let roll = self.next() % 1000;
        let fault = if roll < throttle {
            Some(Fault::Throttle)
        } else if roll < throttle + server {
            Some(if self.next().is_multiple_of(2) {
                Fault::ServerError
            } else {
                Fault::LoseAnswer
            })
        } else {
            None
        };
        let delay = if self.next() % 1000 < latency {
            1 + self.next() % max_ms.max(1)
        } else {
            0
        };
        (fault, delay)
    }
    fn draw(&self) -> Option<Fault> {
        let rate = self.per_mille.load(Ordering::SeqCst);
        if rate == 0 {
            return None;
        }
        let roll = self.next() % 1000;
        let kind = if roll.is_multiple_of(2) {
            Fault::Throttle
        } else {
            Fault::LoseAnswer
        };
        (roll < rate).then_some(kind)
    }
    fn count(&self, what: &str) {
        *self
            .injected
            .lock()
            .unwrap()
            .entry(what.into())
            .or_default() += 1;
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "Faults"
    }
    // Drawn once per call: a faulted call fails on every attempt the SDK makes, so the product
    // sees the failure (its retries do not hide it).
    fn read_before_execution(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let rates = *self.rates.lock().unwrap();
        let (fault, delay) = match rates {
            Some(r) => self.draw_rates(r),
            None => (self.draw(), 0),
        };
        match fault {
            Some(f) => {
                self.count(match f {
                    Fault::Throttle => "throttled",
                    Fault::LoseAnswer => "answer lost",
                    Fault::ServerError => "5xx",
                });
                cfg.interceptor_state().store_put(f);
            }
            None => {
                cfg.interceptor_state().unset::<Fault>();
            }
        }
        if delay > 0 {
            self.count("delayed");
            cfg.interceptor_state().store_put(Delay(delay));
        } else {
            cfg.interceptor_state().unset::<Delay>();
        }
        Ok(())
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The interceptor's hooks are synchronous: the delay blocks this worker thread (the
        // tests' runtimes have others), once per call.
        if let Some(Delay(ms)) = cfg.load::<Delay>().copied() {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            cfg.interceptor_state().unset::<Delay>();
        }
        // A throttle, or a 5xx before execution: the call never reaches moto (the loopback
        // server's answer is replaced by a 500 for the latter).
        if matches!(
            cfg.load::<Fault>(),
            Some(Fault::Throttle | Fault::ServerError)
        ) {
            let endpoint = self.throttle_endpoint.lock().unwrap().clone();
            ctx.request_mut().set_uri(endpoint.as_str())?;
        }
        Ok(())
    }
    fn modify_before_deserialization(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let message = match cfg.load::<Fault>() {
            Some(Fault::LoseAnswer) => "injected: answer lost",
            Some(Fault::ServerError) => "injected: 5xx",
            _ => return Ok(()),
        };
        {
            let mut lost = aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(500u16)?,
                aws_smithy_types::body::SdkBody::from(format!(
                    r#"{{"__type":"InternalFailure","message":"{message}"}}"#
                )),
            );
            lost.headers_mut()
                .insert("content-type", "application/x-amz-json-1.1");
            lost.headers_mut()
                .insert("x-amzn-errortype", "InternalFailure");
            *ctx.response_mut() = lost;
        }
        Ok(())
    }
}

/// A loopback HTTP server that answers every request with a 400 of `error_type` and does nothing.
async fn error_server(error_type: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = sock.read(&mut buf).await; // the request; never executed
                let body =
                    format!(r#"{{"__type":"{error_type}","message":"injected: {error_type}"}}"#);
                let resp = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     x-amzn-ErrorType: {error_type}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/")
}

/// What IAM does to a call outside a function's policy: the product's calls whose request names
/// one of the denied strings (a cluster ARN, say) are answered 400 AccessDeniedException by a
/// loopback server and never reach moto.
#[derive(Debug, Clone, Default)]
pub struct Deny {
    names: Arc<Mutex<Vec<String>>>,
    endpoint: Arc<Mutex<String>>,
}

impl Deny {
    pub fn deny(&self, name: &str) {
        self.names.lock().unwrap().push(name.to_owned());
    }
    pub fn allow_all(&self) {
        self.names.lock().unwrap().clear();
    }
}

impl Intercept for Deny {
    fn name(&self) -> &'static str {
        "Deny"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let names = self.names.lock().unwrap().clone();
        let body = ctx.request().body().bytes().unwrap_or_default();
        let body = String::from_utf8_lossy(body);
        if names.iter().any(|n| body.contains(n.as_str())) {
            let endpoint = self.endpoint.lock().unwrap().clone();
            ctx.request_mut().set_uri(endpoint.as_str())?;
        }
        Ok(())
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

/// The table as infra/template.yaml declares it (one source of truth for keys and indexes).
pub async fn create_table_from_template(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("read infra/template.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("parse template");
    let props = &doc["Resources"]["Table"]["Properties"];
    let attrs = props["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().unwrap())
                .attribute_type(ScalarAttributeType::from(
                    a["AttributeType"].as_str().unwrap(),
                ))
                .build()
                .unwrap()
        });
    let keys = |v: &serde_yaml::Value| -> Vec<KeySchemaElement> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(k["AttributeName"].as_str().unwrap())
                    .key_type(KeyType::from(k["KeyType"].as_str().unwrap()))
                    .build()
                    .unwrap()
            })
            .collect()
    };
    let mut req = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attrs.collect()))
        .set_key_schema(Some(keys(&props["KeySchema"])))
        .stream_specification(
            StreamSpecification::builder()
                // WORLD_TABLE_STREAM=off (make bench): no stream. The harness builds stream
                // records from the items itself, and moto keeps every stream record in memory and
                // deep-copies it with the tables on every transaction: at 1,000 hosts that grew past
                // 20 GB here.
                .stream_enabled(std::env::var("WORLD_TABLE_STREAM").as_deref() != Ok("off"))
                .stream_view_type(StreamViewType::from(
                    props["StreamSpecification"]["StreamViewType"]
                        .as_str()
                        .unwrap(),
                ))
                .build()
                .unwrap(),
        );
    for gsi in props["GlobalSecondaryIndexes"].as_sequence().unwrap() {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(gsi["IndexName"].as_str().unwrap())
                .set_key_schema(Some(keys(&gsi["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            gsi["Projection"]["ProjectionType"].as_str().unwrap(),
                        ))
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    req.send().await.expect("create table");
}

/// One isolated world: its own table and ECS cluster on the shared moto server.
pub struct World {
    /// Uncounted clients for the harness itself (set-up and inspection).
    pub ddb: aws_sdk_dynamodb::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub ec2_ami: String,
    pub store: DynamoStore,
    pub cluster: EcsCluster,
    /// The same table through the harness's client: reads that are neither counted nor faulted.
    pub view: DynamoStore,
    pub calls: CallCounter,
    /// Off (0) unless a test turns it on.
    pub faults: Faults,
    /// ECS calls denied as IAM would (none unless a test says so).
    pub deny: Deny,
    /// The wake-up queue (in moto) and the product's adapter on it (counted, faulted).
    pub wakeup: shared::adapters::SqsWakeup,
    pub queue_url: String,
    /// The reconcile queue (in moto) and the product's adapter on it (counted, faulted).
    pub reconcile_queue: shared::adapters::SqsReconcileQueue,
    pub reconcile_queue_url: String,
    /// CloudWatch alarms in moto: the product's adapter (counted, faulted), and the harness's
    /// client (put_metric_alarm, set_alarm_state; not counted).
    pub alarms: shared::adapters::CloudWatchAlarms,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub cluster_name: String,
    pub cluster_arn: String,
    pub family: String,
    task_versions: Mutex<HashMap<String, i64>>,
    http: reqwest_like::Client,
}

impl World {
    pub async fn new() -> Self {
        let config = sdk_config().await;
        let calls = CallCounter::default();
        let faults = Faults::default();
        *faults.throttle_endpoint.lock().unwrap() = error_server("ThrottlingException").await;
        let deny = Deny::default();
        *deny.endpoint.lock().unwrap() = error_server("AccessDeniedException").await;
        // The product's retry settings (shared::runtime::App::from_env), with short waits: faulted
        // calls fail every attempt, and real backoff (seconds) would only slow the tests down.
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(5)
            .with_initial_backoff(std::time::Duration::from_millis(5))
            .with_max_backoff(std::time::Duration::from_millis(50));
        let ddb_conf = aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(calls.clone())
            .interceptor(faults.clone())
            .retry_config(retry.clone())
            .build();
        let ecs_conf = aws_sdk_ecs::config::Builder::from(&config)
            .interceptor(calls.clone())
            .interceptor(faults.clone())
            .interceptor(deny.clone())
            .retry_config(retry)
            .build();
        // The adapters' clients count their calls; the harness inspects moto with its own.
        let sqs_conf = aws_sdk_sqs::config::Builder::from(&config)
            .interceptor(calls.clone())
            .interceptor(faults.clone())
            .build();
        let cloudwatch_conf = aws_sdk_cloudwatch::config::Builder::from(&config)
            .interceptor(calls.clone())
            .interceptor(faults.clone())
            .build();
        let alarms = shared::adapters::CloudWatchAlarms::new(
            aws_sdk_cloudwatch::Client::from_conf(cloudwatch_conf),
        );
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("wakeups"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let wakeup = shared::adapters::SqsWakeup::new(
            aws_sdk_sqs::Client::from_conf(sqs_conf.clone()),
            queue_url.clone(),
        );
        // The reconcile queue as the template makes it: FIFO, deduplicated by content.
        let reconcile_queue_url = sqs
            .create_queue()
            .queue_name(format!("{}.fifo", unique("reconcile")))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::ContentBasedDeduplication,
                "true",
            )
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let reconcile_queue = shared::adapters::SqsReconcileQueue::new(
            aws_sdk_sqs::Client::from_conf(sqs_conf),
            reconcile_queue_url.clone(),
        );
        let counted_ddb = aws_sdk_dynamodb::Client::from_conf(ddb_conf);
        let counted_ecs = aws_sdk_ecs::Client::from_conf(ecs_conf);
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let ecs = aws_sdk_ecs::Client::new(&config);
        let http = reqwest_like::Client::new(moto_endpoint());
        // Tasks stay as StartTask left them unless we say otherwise (moto walks them to STOPPED
        // one state per DescribeTasks by default).
        http.post_json(
            "/moto-api/state-manager/set-transition",
            &json!({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000_000}}),
        )
        .await;
        let table = unique("table");
        create_table_from_template(&ddb, &table).await;
        let cluster_name = unique("cluster");
        let cluster_arn = ecs
            .create_cluster()
            .cluster_name(&cluster_name)
            .send()
            .await
            .unwrap()
            .cluster
            .unwrap()
            .cluster_arn
            .unwrap();
        let family = unique("daemon");
        ecs.register_task_definition()
            .family(&family)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("agent")
                    .image("public.ecr.aws/docker/library/busybox:latest")
                    .memory(64)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        // Amazon Linux (moto makes a Windows AMI's hosts `ecs.os-type` windows).
        let ec2_ami = "ami-760aaa0f".to_owned();
        let world = Self {
            store: DynamoStore::new(counted_ddb, &table),
            view: DynamoStore::new(ddb.clone(), &table),
            cluster: EcsCluster::new(counted_ecs),
            ddb,
            ecs,
            ec2_ami,
            calls,
            faults,
            deny,
            wakeup,
            queue_url,
            reconcile_queue,
            reconcile_queue_url,
            alarms,
            cloudwatch,
            sqs,
            table,
            cluster_name,
            cluster_arn,
            family,
            task_versions: Mutex::new(HashMap::new()),
            http,
        };
        world.calls.reset();
        world
    }

    /// Registers `n` container instances (each backed by an EC2 instance, as moto requires).
    pub async fn add_hosts(&self, n: usize) -> Vec<String> {
        self.add_hosts_of(n, "t3.micro").await
    }

    /// Registers `n` container instances of an EC2 instance type (moto makes it the host's
    /// `ecs.instance-type` attribute).
    pub async fn add_hosts_of(&self, n: usize, instance_type: &str) -> Vec<String> {
        let mut arns = Vec::new();
        for _ in 0..n {
            let instance_id = self.http.run_instance(&self.ec2_ami, instance_type).await;
            let doc = json!({
                "instanceId": instance_id, "region": "us-east-1", "availabilityZone": "us-east-1a",
                "instanceType": instance_type, "accountId": "123456789012"
            });
            let ci = self
                .ecs
                .register_container_instance()
                .cluster(&self.cluster_name)
                .instance_identity_document(doc.to_string())
                .send()
                .await
                .unwrap()
                .container_instance
                .unwrap();
            arns.push(ci.container_instance_arn.unwrap());
        }
        self.calls.reset();
        arns
    }

    /// The Container Instance State Change event ECS would send for a host as moto has it now
    /// (status, agent, attributes, free resources, EC2 id), at `version` or the version moto has now, whichever is higher.
    pub async fn host_event(&self, host: &str, version: i64) -> instance_events::InstanceDetail {
        let ci = self
            .ecs
            .describe_container_instances()
            .cluster(&self.cluster_name)
            .container_instances(host)
            .send()
            .await
            .unwrap()
            .container_instances
            .unwrap()
            .remove(0);
        let attributes: Vec<Value> = ci
            .attributes()
            .iter()
            .map(|a| json!({"name": a.name(), "value": a.value()}))
            .collect();
        let remaining: Vec<Value> = ci
            .remaining_resources()
            .iter()
            .map(|r| {
                json!({"name": r.name(), "type": r.r#type(), "integerValue": r.integer_value(),
                       "stringSetValue": r.string_set_value()})
            })
            .collect();
        serde_json::from_value(json!({
            "clusterArn": self.cluster_arn, "containerInstanceArn": host,
            // ECS's event carries the host's version at that moment: never below what a
            // Describe of it shows now (scripts/moto_server.py numbers moto's hosts' changes).
            "status": ci.status(), "agentConnected": ci.agent_connected(),
            "version": version.max(ci.version()),
            "ec2InstanceId": ci.ec2_instance_id(), "attributes": attributes,
            "remainingResources": remaining,
            "runningTasksCount": ci.running_tasks_count(), "pendingTasksCount": ci.pending_tasks_count(),
        }))
        .unwrap()
    }

    /// The host's ECS agent disconnects (`false`) or comes back (`true`); moto's stays connected
    /// otherwise (the switch scripts/moto_server.py adds for tests).
    pub async fn set_agent_connected(&self, host: &str, connected: bool) {
        let body = json!({"cluster": self.cluster_name, "containerInstance": host, "connected": connected});
        self.http.post_json("/_harness/agent", &body).await;
    }

    /// PutAttributes (`Some` value) or DeleteAttributes (`None`) of a custom attribute on a host.
    pub async fn label(&self, host: &str, name: &str, value: Option<&str>) {
        match value {
            Some(v) => {
                self.ecs
                    .put_attributes()
                    .cluster(&self.cluster_name)
                    .attributes(
                        aws_sdk_ecs::types::Attribute::builder()
                            .name(name)
                            .value(v)
                            .target_id(host)
                            .build()
                            .unwrap(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
            None => {
                // moto deletes a named attribute only with the value it has: read it first.
                let ci = self
                    .ecs
                    .describe_container_instances()
                    .cluster(&self.cluster_name)
                    .container_instances(host)
                    .send()
                    .await
                    .unwrap()
                    .container_instances
                    .unwrap()
                    .remove(0);
                let Some(old) = ci.attributes().iter().find(|a| a.name() == name).cloned() else {
                    return;
                };
                self.ecs
                    .delete_attributes()
                    .cluster(&self.cluster_name)
                    .attributes(
                        aws_sdk_ecs::types::Attribute::builder()
                            .name(name)
                            .set_value(old.value().map(str::to_owned))
                            .target_id(host)
                            .build()
                            .unwrap(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Registers a task definition of the world's family whose one container reserves `memory`
    /// MiB (and maps `host_port`, if given); returns its ARN.
    pub async fn register_sized_task_definition(&self, family: &str, memory: i32) -> String {
        self.ecs
            .register_task_definition()
            .family(family)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("agent")
                    .image("public.ecr.aws/docker/library/busybox:latest")
                    .memory(memory)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap()
            .task_definition_arn
            .unwrap()
    }

    /// Another workload's task on a host (not ours: another group); returns its ARN.
    pub async fn start_other_task(&self, host: &str, task_definition: &str) -> String {
        self.ecs
            .start_task()
            .cluster(&self.cluster_name)
            .task_definition(task_definition)
            .container_instances(host)
            .group("service:web")
            .send()
            .await
            .unwrap()
            .tasks
            .unwrap()
            .remove(0)
            .task_arn
            .unwrap()
    }

    pub fn instance_event(
        &self,
        host: &str,
        status: &str,
        agent_connected: bool,
        version: i64,
    ) -> instance_events::InstanceDetail {
        serde_json::from_value(json!({
            "clusterArn": self.cluster_arn, "containerInstanceArn": host, "status": status,
            "agentConnected": agent_connected, "version": version,
        }))
        .unwrap()
    }

    /// The Task State Change event ECS would send for this task now (versions grow per task).
    pub async fn task_event(&self, task_arn: &str) -> task_events::TaskDetail {
        let task = self
            .ecs
            .describe_tasks()
            .cluster(&self.cluster_name)
            .tasks(task_arn)
            .send()
            .await
            .unwrap()
            .tasks
            .unwrap()
            .remove(0);
        let version = {
            let mut v = self.task_versions.lock().unwrap();
            let e = v.entry(task_arn.to_owned()).or_insert(0);
            *e += 1;
            *e
        };
        // moto is pinned (no state walks), so a stop it accepted is reported as ECS's final
        // STOPPED event would be.
        let last_status = if task.desired_status() == Some("STOPPED") {
            Some("STOPPED")
        } else {
            task.last_status()
        };
        serde_json::from_value(json!({
            "taskArn": task_arn,
            "clusterArn": self.cluster_arn,
            "containerInstanceArn": task.container_instance_arn(),
            "group": task.group(),
            "startedBy": task.started_by(),
            "lastStatus": last_status,
            "desiredStatus": task.desired_status(),
            "stoppedReason": task.stopped_reason(),
            "version": version,
        }))
        .unwrap()
    }

    /// Delivers the wake-ups that are due to the deployer, as Lambda's SQS poller would (a
    /// batch of up to 10; deleted once the deployer succeeded). Returns how many it delivered.
    pub async fn deliver_wakeups(&self) -> usize {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(2)
            .send()
            .await
            .unwrap();
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            return 0;
        }
        let records: Vec<Value> = msgs
            .iter()
            .map(|m| {
                json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                       "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                       "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:wakeups", "awsRegion": "us-east-1"})
            })
            .collect();
        let trigger: deployer::Trigger =
            serde_json::from_value(json!({ "Records": records })).unwrap();
        if deployer::handle_trigger_with(&self.store, &self.cluster, self.gates(), &trigger)
            .await
            .is_ok()
        {
            for m in &msgs {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        msgs.len()
    }

    /// The reconcile queue's messages, all that it hands out now (a FIFO queue gives each
    /// cluster's next message only once the previous one is deleted).
    pub async fn take_reconcile_messages(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.reconcile_queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                return all;
            }
            all.extend(got);
        }
    }

    /// Lambda's SQS poller with batch size 1: the reconciler's event for one message.
    pub fn reconcile_trigger(m: &aws_sdk_sqs::types::Message) -> reconcile_queue::Trigger {
        serde_json::from_value(json!({"Records": [{
            "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
            "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:reconcile.fifo",
            "awsRegion": "us-east-1"
        }]}))
        .unwrap()
    }

    /// A message handled: deleted, as the poller does when the invocation succeeds.
    pub async fn delete_reconcile_message(&self, m: &aws_sdk_sqs::types::Message) {
        self.sqs
            .delete_message()
            .queue_url(&self.reconcile_queue_url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }

    /// The scheduled reconcile as the template runs it: the fan-out, then each cluster's message
    /// in its own invocation (deleted when it succeeds). What the clusters' reconciles did.
    pub async fn reconcile_via_queue(&self, period: &str, now_ms: i64) -> reconciler::Summary {
        reconcile_queue::fan_out(&self.store, &self.reconcile_queue, period)
            .await
            .unwrap();
        let mut summary = reconciler::Summary::default();
        for m in self.take_reconcile_messages().await {
            let trigger = Self::reconcile_trigger(&m);
            let alarms = Some(&self.alarms as &dyn shared::ports::Alarms);
            if let Ok(out) = reconcile_queue::handle_trigger_with(
                &self.store,
                &self.cluster,
                None,
                alarms,
                &trigger,
                now_ms,
            )
            .await
            {
                self.delete_reconcile_message(&m).await;
                summary.absorb(out.reconciled);
            }
        }
        summary
    }

    /// Registers another revision of the world's task definition family; returns its ARN.
    pub async fn register_task_definition(&self) -> String {
        self.ecs
            .register_task_definition()
            .family(&self.family)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("agent")
                    .image("public.ecr.aws/docker/library/busybox:latest")
                    .memory(64)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap()
            .task_definition_arn
            .unwrap()
    }

    /// Every task of the cluster, live or stopped, as its next event would report it.
    pub async fn all_tasks(&self) -> Vec<TaskInfo> {
        let mut arns = Vec::new();
        for desired in [
            aws_sdk_ecs::types::DesiredStatus::Running,
            aws_sdk_ecs::types::DesiredStatus::Stopped,
        ] {
            arns.extend(
                self.ecs
                    .list_tasks()
                    .cluster(&self.cluster_name)
                    .desired_status(desired)
                    .send()
                    .await
                    .unwrap()
                    .task_arns
                    .unwrap_or_default(),
            );
        }
        let mut out = Vec::new();
        for chunk in arns.chunks(100) {
            let tasks = self
                .ecs
                .describe_tasks()
                .cluster(&self.cluster_name)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap()
                .tasks
                .unwrap_or_default();
            for t in tasks {
                let stopped = t.desired_status() == Some("STOPPED");
                out.push(TaskInfo {
                    arn: t.task_arn().unwrap().to_owned(),
                    host: t.container_instance_arn().unwrap_or_default().to_owned(),
                    group: t.group().unwrap_or_default().to_owned(),
                    task_definition: t.task_definition_arn().unwrap_or_default().to_owned(),
                    status: if stopped {
                        "STOPPED".to_owned()
                    } else {
                        t.last_status().unwrap_or_default().to_owned()
                    },
                });
            }
        }
        out.sort_by(|a, b| a.arn.cmp(&b.arn));
        out.dedup_by(|a, b| a.arn == b.arn);
        out
    }

    /// Live tasks (not stopped, nor asked to stop) of the cluster, by host.
    /// Live tasks (not STOPPED) by task definition ARN.
    pub async fn live_tasks_by_definition(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for t in self.all_tasks().await {
            if t.status != "STOPPED" {
                *out.entry(t.task_definition.clone()).or_default() += 1;
            }
        }
        out
    }

    /// GET …/deployments/{id} through the API (200 asserted).
    pub async fn get_deployment(&self, env: &str, id: &str) -> Value {
        let path = format!("/v1/environments/{env}/deployments/{id}");
        let (status, body) = self.api("GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn tasks_by_host(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.all_tasks().await {
            if t.status != "STOPPED" {
                out.entry(t.host).or_default().push(t.arn);
            }
        }
        out
    }

    /// Calls an API function's router the way API Gateway would route the request.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let segments: Vec<String> = path
            .trim_start_matches("/v1/")
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let query = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let req = ApiRequest {
            method: method.to_owned(),
            segments,
            query,
            body: body.map(|b| b.to_string().into_bytes()),
        };
        let result = if path.contains("/deployments") {
            deployments_api::route(&self.store, &req).await
        } else {
            environments_api::route(&self.store, &self.cluster, &req).await
        };
        match result {
            Ok(r) => (r.status, r.body),
            Err(e) => shared::http::error_body(&e),
        }
    }

    pub async fn create_environment(&self, name: &str) -> Value {
        let (status, body) = self
            .api(
                "POST",
                "/v1/environments",
                Some(json!({"name": name, "instanceGroup": {"cluster": self.cluster_name}, "taskDefinition": self.family})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn create_deployment(&self, env: &str) -> Value {
        let (status, body) = self
            .api("POST", &format!("/v1/environments/{env}/deployments"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A stream record of the item as it is now, as DynamoDB Streams would deliver it.
    pub async fn stream_record(&self, pk: &str, sk: &str, event_name: &str) -> EventRecord {
        let item = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_default();
        let image: serde_dynamo::Item = item.into();
        let keys: serde_dynamo::Item = json_item(json!({"pk": {"S": pk}, "sk": {"S": sk}}));
        serde_json::from_value(json!({
            "eventID": "1", "eventName": event_name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000,
                "Keys": serde_json::to_value(&keys).unwrap(),
                "NewImage": serde_json::to_value(&image).unwrap(),
                "SequenceNumber": "1", "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        }))
        .unwrap()
    }

    /// What the deployer gates deployments with, as the template wires it: the world's alarms
    /// (moto's CloudWatch) and its wake-up queue.
    pub fn gates(&self) -> deployer::Gates<'_> {
        deployer::Gates {
            alarms: Some(&self.alarms),
            wakeup: Some(&self.wakeup),
        }
    }

    /// Delivers the deployment's current item to the deployer, as its stream would.
    pub async fn deliver_deployment(&self, env: &str, id: &str) {
        let record = self
            .stream_record(&format!("ENV#{env}"), &format!("DEP#{id}"), "MODIFY")
            .await;
        deployer::handle_with(
            &self.store,
            &self.cluster,
            self.gates(),
            &stream_event(vec![record]),
        )
        .await
        .expect("deployer");
    }

    /// Delivers the deployment's INSERT to the deployer, as its stream does once per deployment.
    pub async fn deliver_deployment_insert(&self, env: &str, id: &str) {
        let record = self
            .stream_record(&format!("ENV#{env}"), &format!("DEP#{id}"), "INSERT")
            .await;
        deployer::handle_with(
            &self.store,
            &self.cluster,
            self.gates(),
            &stream_event(vec![record]),
        )
        .await
        .expect("deployer");
    }

    /// A CloudWatch metric alarm in moto (OK until `set_alarm_state` says otherwise); its name,
    /// unique on the shared moto server.
    pub async fn create_alarm(&self, prefix: &str) -> String {
        let name = unique(prefix);
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(&name)
            .namespace("DaemonSchedulerTests")
            .metric_name("Errors")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .expect("put_metric_alarm");
        self.set_alarm_state(&name, "OK").await;
        name
    }

    /// Wake-ups scheduled and not yet due (SQS's ApproximateNumberOfMessagesDelayed).
    pub async fn delayed_wakeups(&self) -> usize {
        let attribute = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed;
        self.sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(attribute.clone())
            .send()
            .await
            .unwrap()
            .attributes
            .and_then(|a| a.get(&attribute).and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    /// SetAlarmState, as CloudWatch's evaluation (or an operator testing a gate) would.
    pub async fn set_alarm_state(&self, name: &str, state: &str) {
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(aws_sdk_cloudwatch::types::StateValue::from(state))
            .state_reason("set by the test")
            .send()
            .await
            .expect("set_alarm_state");
    }

    pub async fn deliver_environment(&self, env: &str) {
        let record = self
            .stream_record(&format!("ENV#{env}"), "ENV", "MODIFY")
            .await;
        deployer::handle(&self.store, &self.cluster, &stream_event(vec![record]))
            .await
            .expect("deployer");
    }

    /// Delivers a RUNNING/STOPPED Task State Change event for every task of the cluster.
    pub async fn deliver_task_events(&self) {
        for (_, tasks) in self.tasks_by_host().await {
            for t in tasks {
                let ev = self.task_event(&t).await;
                task_events::handle(&self.store, &self.cluster, &ev)
                    .await
                    .expect("task event");
            }
        }
    }

    /// Deploys and carries the deployment to its end the way the triggers would: the stream rolls it
    /// out, task events report RUNNING, the stream closes it. Returns the deployment as the API shows it.
    pub async fn deploy(&self, env: &str) -> Value {
        let dep = self.create_deployment(env).await;
        let id = dep["id"].as_str().unwrap().to_owned();
        self.deliver_deployment(env, &id).await;
        self.deliver_task_events().await;
        self.deliver_deployment(env, &id).await;
        let (status, body) = self
            .api(
                "GET",
                &format!("/v1/environments/{env}/deployments/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        body
    }

    pub async fn stop_task_by_hand(&self, task_arn: &str) {
        self.ecs
            .stop_task()
            .cluster(&self.cluster_name)
            .task(task_arn)
            .reason("stopped by an operator")
            .send()
            .await
            .unwrap();
    }

    pub async fn drain(&self, host: &str) {
        self.ecs
            .update_container_instances_state()
            .cluster(&self.cluster_name)
            .container_instances(host)
            .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
            .send()
            .await
            .unwrap();
    }
}

/// Plays ECS and the table's stream until nothing moves: every task state change not reported
/// yet goes to task-events, one event at a time, then the environment's deployment in progress
/// to the deployer. Tasks of `crashing` (a task definition ARN) stop as soon as they start, before
/// they ever report RUNNING. A failed delivery is retried as its trigger would (an event up to 3
/// times, then it is lost; a stream record until it succeeds, here up to 10 times).
#[derive(Default)]
pub struct Pump {
    reported: HashMap<String, String>,
    /// The most hosts seen without a RUNNING daemon after any event.
    pub max_down: usize,
    /// The most live tasks seen on one host after any event.
    pub max_per_host: usize,
    pub events: usize,
    /// Deliveries that failed (and were retried or lost).
    pub failed: usize,
    /// Wake-ups delivered to the deployer.
    pub wakeups: usize,
    /// The last image of each deployment delivered as a stream record.
    streamed: HashMap<String, Value>,
}

impl Pump {
    pub fn new() -> Self {
        Self::default()
    }

    /// A pump for which the tasks as they are now were already reported: it delivers what changes
    /// from here on, as ECS would (a task's RUNNING event comes once).
    pub async fn from_now(w: &World) -> Self {
        let mut pump = Self::default();
        for t in w.all_tasks().await {
            pump.reported.insert(t.arn, t.status);
        }
        pump
    }

    /// Rounds until nothing moves and no deployment is in progress (at most 300; a round in which
    /// nothing happened waits 100 ms, for a delayed wake-up to come due).
    pub async fn run(&mut self, w: &World, env: &str, hosts: &[String], crashing: Option<&str>) {
        for _ in 0..300 {
            if self.round(w, env, hosts, crashing).await {
                continue;
            }
            let e = w.view.get_environment(env).await.unwrap();
            if e.is_none_or(|e| e.active_deployment_id.is_none()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let e = w.view.get_environment(env).await.unwrap();
        let d = match e.as_ref().and_then(|e| e.active_deployment_id.clone()) {
            Some(id) => w.view.get_deployment(env, &id).await.unwrap(),
            None => None,
        };
        panic!("the lifecycle did not settle in 300 rounds: {e:?} {d:?}");
    }

    /// Rounds until one moves nothing (twice, 100 ms apart: a wake-up may come due), whether or
    /// not a deployment is in progress (one waiting for promotion, or paused, stays so).
    pub async fn until_quiet(&mut self, w: &World, env: &str, hosts: &[String]) {
        let mut quiet = 0;
        for _ in 0..300 {
            if self.round(w, env, hosts, None).await {
                quiet = 0;
                continue;
            }
            quiet += 1;
            if quiet == 2 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("still moving after 300 rounds");
    }

    /// One round: the task events, the due wake-ups, and the deployment's stream record when its
    /// item changed since the last one delivered (as DynamoDB Streams only emits changes). True
    /// when anything was delivered.
    pub async fn round(
        &mut self,
        w: &World,
        env: &str,
        hosts: &[String],
        crashing: Option<&str>,
    ) -> bool {
        let mut moved = false;
        for mut t in w.all_tasks().await {
            if crashing == Some(t.task_definition.as_str()) && t.status != "STOPPED" {
                w.stop_task_by_hand(&t.arn).await;
                t.status = "STOPPED".into();
            }
            if self.reported.get(&t.arn) == Some(&t.status) {
                continue;
            }
            self.reported.insert(t.arn.clone(), t.status.clone());
            moved = true;
            self.events += 1;
            let event = w.task_event(&t.arn).await;
            let wakeup = &w.wakeup as &dyn shared::ports::Wakeup;
            for _ in 0..3 {
                match task_events::handle_with(&w.store, &w.cluster, Some(wakeup), &event).await {
                    Ok(_) => break,
                    Err(_) => self.failed += 1,
                }
            }
            let tasks = w.all_tasks().await;
            self.max_down = self.max_down.max(down(&tasks, hosts));
            self.max_per_host = self.max_per_host.max(most_per_host(&tasks));
        }
        let woken = w.deliver_wakeups().await;
        self.wakeups += woken;
        moved |= woken > 0;
        let e = w.view.get_environment(env).await.unwrap();
        // The deployments that may have changed: the one in progress, and the one just finished
        // (its last change, to failed, is what starts a rollback).
        let ids: Vec<String> = e
            .into_iter()
            .flat_map(|e| [e.active_deployment_id, e.deployed.map(|d| d.deployment_id)])
            .flatten()
            .collect();
        for id in ids {
            let record = w
                .stream_record(&format!("ENV#{env}"), &format!("DEP#{id}"), "MODIFY")
                .await;
            let image = serde_json::to_value(&record.change.new_image).unwrap();
            if self.streamed.get(&id) == Some(&image) {
                continue;
            }
            self.streamed.insert(id.clone(), image);
            moved = true;
            let batch = stream_event(vec![record]);
            for _ in 0..10 {
                match deployer::handle_with(&w.store, &w.cluster, w.gates(), &batch).await {
                    Ok(()) => break,
                    Err(_) => self.failed += 1,
                }
            }
        }
        moved
    }
}

/// Hosts without a RUNNING task.
pub fn down(tasks: &[TaskInfo], hosts: &[String]) -> usize {
    let up: std::collections::BTreeSet<&str> = tasks
        .iter()
        .filter(|t| t.status == "RUNNING")
        .map(|t| t.host.as_str())
        .collect();
    hosts.iter().filter(|h| !up.contains(h.as_str())).count()
}

/// The most live tasks on any one host.
pub fn most_per_host(tasks: &[TaskInfo]) -> usize {
    let mut per: HashMap<&str, usize> = HashMap::new();
    for t in tasks.iter().filter(|t| t.status != "STOPPED") {
        *per.entry(t.host.as_str()).or_default() += 1;
    }
    per.into_values().max().unwrap_or(0)
}

/// One task of the cluster as the harness sees it in moto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub arn: String,
    pub host: String,
    /// ECS `group` (`daemon-scheduler:<environment>` for ours).
    pub group: String,
    pub task_definition: String,
    /// RUNNING/PENDING as moto has it, STOPPED once a stop was accepted.
    pub status: String,
}

/// A stream batch as Lambda receives it.
pub fn stream_event(records: Vec<EventRecord>) -> Event {
    let mut e = Event::default();
    e.records = records;
    e
}

fn json_item(v: Value) -> serde_dynamo::Item {
    serde_json::from_value(v).unwrap()
}

/// Plain HTTP to moto's control API and EC2 (no extra SDK for two calls).
mod reqwest_like {
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Client {
        endpoint: String,
    }

    impl Client {
        pub fn new(endpoint: String) -> Self {
            Self { endpoint }
        }

        async fn request(
            &self,
            method: &str,
            path: &str,
            content_type: &str,
            body: &str,
        ) -> String {
            let authority = self
                .endpoint
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            let mut stream = tokio::net::TcpStream::connect(&authority)
                .await
                .expect("connect moto");
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n\
                 Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            stream.read_to_string(&mut out).await.unwrap();
            assert!(
                out.starts_with("HTTP/1.1 20") || out.starts_with("HTTP/1.0 20"),
                "{out}"
            );
            out
        }

        pub async fn post_json(&self, path: &str, body: &Value) {
            self.request("POST", path, "application/json", &body.to_string())
                .await;
        }

        /// EC2 RunInstances (query protocol); returns the instance id.
        pub async fn run_instance(&self, ami: &str, instance_type: &str) -> String {
            let body = format!(
                "Action=RunInstances&Version=2016-11-15&ImageId={ami}&MinCount=1&MaxCount=1&InstanceType={instance_type}"
            );
            let out = self
                .request("POST", "/", "application/x-www-form-urlencoded", &body)
                .await;
            let start = out.find("<instanceId>").expect("instanceId") + "<instanceId>".len();
            let end = out[start..].find('<').unwrap() + start;
            out[start..end].to_owned()
        }
    }
}
