//! Against moto (MOTO_ENDPOINT, started by `make test`): `daemonctl dlq replay` with the queue in
//! moto and the function a fake Lambda Invoke API on loopback (the path aws-sdk-lambda and cargo
//! lambda watch use), messages deleted only when their invocation succeeded; and `--stack`, the
//! endpoint read from a CloudFormation stack's ApiUrl output.

mod common;

use aws_config::{BehaviorVersion, Region};
use common::{daemonctl, stdout, Recorded, Reply, Server};
use serde_json::{json, Value};

fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect(
        "MOTO_ENDPOINT is not set: run the integration tests through `make test`, which starts moto",
    )
}

async fn moto_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .load()
        .await
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&moto_config().await)
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str, bodies: &[String]) -> String {
    let url = sqs
        .create_queue()
        .queue_name(unique(name))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for b in bodies {
        sqs.send_message()
            .queue_url(&url)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
    url
}

/// The bodies visible in the queue now (each received once and made visible again).
async fn bodies_in(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut handles = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            out.push(m.body().unwrap().to_owned());
            handles.push(m.receipt_handle().unwrap().to_owned());
        }
    }
    for h in handles {
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(h)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    out.sort();
    out
}

fn task_event(id: &str, fail: Option<&str>) -> Value {
    json!({
        "version": "0", "id": id, "source": "aws.ecs", "detail-type": "ECS Task State Change",
        "account": "123456789012", "region": "us-east-1", "time": "2026-12-01T00:00:00Z",
        "resources": [], "detail": {"taskArn": format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}"),
        "lastStatus": "STOPPED", "fail": fail}
    })
}

fn on_failure_record(event: &Value) -> Value {
    json!({
        "version": "1.0", "timestamp": "2026-12-01T00:00:00.000Z",
        "requestContext": {"requestId": "r-1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:task-events:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Throttled", "errorMessage": "throttled"}
    })
}

/// AWS's Invoke answers: 200 with the result, 200 + X-Amz-Function-Error for a function error;
/// cargo lambda watch answers a function error with HTTP 500.
async fn fake_lambda() -> Server {
    Server::start(|r: &Recorded| {
        let fail = r.json()["detail"]["fail"].as_str().map(str::to_owned);
        match fail.as_deref() {
            Some("function") => Reply {
                status: 200,
                headers: vec![("x-amz-function-error".into(), "Unhandled".into())],
                body: json!({"errorType": "Boom", "errorMessage": "boom"}).to_string(),
            },
            Some("http500") => {
                Reply::json(500, json!({"errorType": "Boom", "errorMessage": "boom"}))
            }
            _ => Reply::json(200, Value::Null),
        }
    })
    .await
}

fn invoked(lambda: &Server) -> Vec<Value> {
    invoked_fn(lambda, "task-events")
}

fn invoked_fn(lambda: &Server, function: &str) -> Vec<Value> {
    lambda
        .requests()
        .iter()
        .map(|r| {
            assert_eq!(r.method, "POST");
            assert_eq!(
                r.target,
                format!("/2015-03-31/functions/{function}/invocations")
            );
            assert!(r.header("authorization").starts_with("AWS4-HMAC-SHA256"));
            r.json()
        })
        .collect()
}

#[tokio::test]
async fn replay_deletes_only_what_was_invoked_successfully() {
    let sqs = sqs().await;
    let ok_raw = task_event("ok-raw", None);
    let ok_wrapped = task_event("ok-wrapped", None);
    let fails = task_event("fails", Some("function"));
    let fails_500 = task_event("fails-500", Some("http500"));
    let bodies = vec![
        ok_raw.to_string(),
        on_failure_record(&ok_wrapped).to_string(),
        fails.to_string(),
        fails_500.to_string(),
        "not json".to_owned(),
    ];
    let url = queue(&sqs, "daemonctl-replay", &bodies).await;
    let lambda = fake_lambda().await;
    let moto = moto_endpoint();
    let env = [
        ("AWS_ENDPOINT_URL_SQS", moto.as_str()),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda.url.as_str()),
    ];
    let args = [
        "dlq",
        "replay",
        "--queue",
        &url,
        "--function",
        "task-events",
        "--wait-seconds",
        "1",
    ];

    // Dry run: nothing invoked, nothing deleted, everything visible again afterwards.
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let o = daemonctl(&dry, &env).await;
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", common::stderr(&o));
    assert!(
        out.contains("dry run: 4 would be replayed, 1 cannot be replayed"),
        "{out}"
    );
    assert!(out.contains("(on-failure record: aws.ecs / ECS Task State Change); it failed with: RetriesExhausted: throttled"), "{out}");
    assert!(lambda.requests().is_empty());
    let mut all = bodies.clone();
    all.sort();
    assert_eq!(bodies_in(&sqs, &url).await, all);

    // The replay: the two good events are invoked (the record unwrapped) and deleted; the
    // failures and the unreadable message stay, visible again.
    let o = daemonctl(&args, &env).await;
    assert_eq!(o.status.code(), Some(3), "{}", common::stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("replayed 2, failed 2, cannot be replayed 1"),
        "{out}"
    );
    assert!(out.contains("function error (Unhandled): boom"), "{out}");
    assert!(out.contains("Invoke answered HTTP 500: boom"), "{out}");
    let mut got = invoked(&lambda);
    got.sort_by_key(|e| e["id"].as_str().unwrap().to_owned());
    let mut want = vec![ok_raw, ok_wrapped, fails.clone(), fails_500.clone()];
    want.sort_by_key(|e| e["id"].as_str().unwrap().to_owned());
    assert_eq!(
        got, want,
        "each message invoked once, on-failure records unwrapped"
    );
    let mut left = vec![
        fails.to_string(),
        fails_500.to_string(),
        "not json".to_owned(),
    ];
    left.sort();
    assert_eq!(bodies_in(&sqs, &url).await, left);

    // --max bounds a run: one message handled.
    let mut one = args.to_vec();
    one.extend(["--max", "1"]);
    let before = lambda.requests().len();
    let o = daemonctl(&one, &env).await;
    let handled = lambda.requests().len() - before;
    let out = stdout(&o);
    assert!(
        out.contains("replayed 0, failed 1, cannot be replayed 0") && handled == 1
            || out.contains("replayed 0, failed 0, cannot be replayed 1") && handled == 0,
        "{out}"
    );
    assert_eq!(bodies_in(&sqs, &url).await, left);
}

#[tokio::test]
async fn queue_messages_are_replayed_as_an_sqs_event() {
    let sqs = sqs().await;
    let body = json!({"environment": "web", "deploymentId": "01DEP"}).to_string();
    let url = queue(&sqs, "daemonctl-wakeups", std::slice::from_ref(&body)).await;
    let lambda = fake_lambda().await;
    let moto = moto_endpoint();
    let o = daemonctl(
        &[
            "dlq",
            "replay",
            "--queue",
            &url,
            "--function",
            "task-events",
            "--as-sqs-event",
            "--wait-seconds",
            "0",
            "-o",
            "json",
        ],
        &[
            ("AWS_ENDPOINT_URL_SQS", moto.as_str()),
            ("AWS_ENDPOINT_URL_LAMBDA", lambda.url.as_str()),
        ],
    )
    .await;
    assert!(o.status.success(), "{}", common::stderr(&o));
    let summary: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(summary["replayed"], 1);
    let events = invoked(&lambda);
    assert_eq!(events.len(), 1);
    let record = &events[0]["Records"][0];
    assert_eq!(record["eventSource"], "aws:sqs");
    assert_eq!(record["body"], body);
    assert!(
        record["eventSourceARN"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sqs:us-east-1:"),
        "{record}"
    );
    assert!(bodies_in(&sqs, &url).await.is_empty());
}

#[tokio::test]
async fn the_endpoint_of_a_stack_is_its_api_url_output() {
    let api = Server::start(|_r: &Recorded| Reply::json(200, json!({"status": "ok"}))).await;
    let cfn = aws_sdk_cloudformation::Client::new(&moto_config().await);
    let with_url = unique("daemonctl-stack");
    let without = unique("daemonctl-bare");
    for (name, outputs) in [
        (
            &with_url,
            json!({"ApiUrl": {"Value": format!("{}/", api.url)}}),
        ),
        (&without, json!({})),
    ] {
        let template = json!({
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": outputs,
        });
        cfn.create_stack()
            .stack_name(name.as_str())
            .template_body(template.to_string())
            .send()
            .await
            .unwrap();
    }
    let moto = moto_endpoint();
    let env = [("AWS_ENDPOINT_URL_CLOUDFORMATION", moto.as_str())];

    let o = daemonctl(&["ping", "--stack", &with_url], &env).await;
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(stdout(&o), "ok\n");
    let o = daemonctl(&["ping"], &[env[0], ("DAEMONCTL_STACK", with_url.as_str())]).await;
    assert!(o.status.success(), "{}", common::stderr(&o));
    let sent: Vec<String> = api.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(sent, ["/v1/ping", "/v1/ping"]);

    let o = daemonctl(&["ping", "--stack", &without], &env).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains(&format!("stack {without} has no ApiUrl output")),
        "{}",
        common::stderr(&o)
    );
}

#[tokio::test]
async fn a_stack_dlq_is_replayed_to_its_function_from_the_stack_outputs() {
    let sqs = sqs().await;
    let body = json!({"environment": "web", "deploymentId": "01DEP"}).to_string();
    let url = queue(&sqs, "daemonctl-stack-wakeups", std::slice::from_ref(&body)).await;
    let cfn = aws_sdk_cloudformation::Client::new(&moto_config().await);
    let stack = unique("daemonctl-dlqs");
    let template = json!({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "WakeupDeadLetterQueueUrl": {"Value": url},
            "DeployerFunctionName": {"Value": "deployer"},
        },
    });
    cfn.create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let lambda = fake_lambda().await;
    let moto = moto_endpoint();
    let env = [
        ("AWS_ENDPOINT_URL_CLOUDFORMATION", moto.as_str()),
        ("AWS_ENDPOINT_URL_SQS", moto.as_str()),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda.url.as_str()),
        ("DAEMONCTL_STACK", stack.as_str()),
    ];
    let o = daemonctl(
        &["dlq", "replay", "--dlq", "wakeups", "--wait-seconds", "0"],
        &env,
    )
    .await;
    assert!(o.status.success(), "{}{}", stdout(&o), common::stderr(&o));
    // The deployer gets the wake-up as its SQS event source would have delivered it.
    let events = invoked_fn(&lambda, "deployer");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["Records"][0]["body"], body);
    assert!(bodies_in(&sqs, &url).await.is_empty());

    // A stack without the queue's output: said so, nothing invoked.
    let o = daemonctl(&["dlq", "replay", "--dlq", "task-events"], &env).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("has no TaskEventsDeadLetterQueueUrl output"),
        "{}",
        common::stderr(&o)
    );
    assert_eq!(lambda.requests().len(), 1);
}
