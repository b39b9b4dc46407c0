//! `daemonctl dlq replay`: the events a dead-letter queue holds, invoked again (synchronously, so
//! a failure is seen) and deleted only once their invocation succeeded.
//!
//! Message shapes:
//! - the event itself: an EventBridge target's DLQ, a function's own async DLQ (`DeadLetterConfig`);
//! - a Lambda on-failure destination record: `{"requestContext", "requestPayload": <event>,
//!   "responseContext", "responsePayload"}` (asynchronous invocations);
//! - an on-failure record of a stream or queue event source (`DDBStreamBatchInfo`, …) holds only
//!   a pointer to the batch, no event: reported and left in the queue.
//!
//! With `--as-sqs-event` each message body is wrapped into an SQS event of one record, for a
//! function fed by an SQS queue whose redrive policy moved the message (the deployer's wake-ups).

use std::collections::{HashMap, HashSet};

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use aws_smithy_types::Blob;
use serde_json::{json, Value};

use crate::client::error_chain;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Event,
    OnFailureRecord,
    SqsWrapped,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::OnFailureRecord => "on-failure record",
            Self::SqsWrapped => "queue message",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Replayable {
    pub shape: Shape,
    pub event: Value,
    /// Why it failed before, when the message says (shown by `--dry-run`).
    pub reason: Option<String>,
}

/// The event a DLQ message body carries, or why it carries none.
pub fn parse_body(body: &str) -> Result<Replayable, String> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| format!("the body is not JSON ({e}); nothing to replay"))?;
    let Some(obj) = v.as_object() else {
        return Ok(Replayable {
            shape: Shape::Event,
            event: v,
            reason: None,
        });
    };
    if obj.get("requestContext").is_some_and(Value::is_object) {
        if let Some(payload) = obj.get("requestPayload") {
            let ctx = &v["requestContext"];
            let condition = ctx["condition"].as_str().unwrap_or("failed");
            let error = v["responsePayload"]["errorMessage"]
                .as_str()
                .or_else(|| v["responseContext"]["functionError"].as_str());
            return Ok(Replayable {
                shape: Shape::OnFailureRecord,
                event: payload.clone(),
                reason: Some(match error {
                    Some(e) => format!("{condition}: {e}"),
                    None => condition.to_owned(),
                }),
            });
        }
        if let Some(key) = obj.keys().find(|k| k.ends_with("BatchInfo")) {
            return Err(format!(
                "an event source's on-failure record ({key}) points at a batch and holds no event; \
                 the reconciler repairs what the batch missed"
            ));
        }
    }
    Ok(Replayable {
        shape: Shape::Event,
        event: v,
        reason: None,
    })
}

/// `source / detail-type` of an EventBridge event, the records of a batch event, or nothing.
pub fn describe(event: &Value) -> Option<String> {
    match (event["source"].as_str(), event["detail-type"].as_str()) {
        (Some(s), Some(t)) => Some(format!("{s} / {t}")),
        _ => event["Records"]
            .as_array()
            .map(|r| format!("{} record(s)", r.len())),
    }
}

/// An SQS event of one record, as Lambda's SQS event source would have delivered the message.
pub fn sqs_event(msg: &Message, queue_arn: &str, region: &str) -> Value {
    let attributes: serde_json::Map<String, Value> = msg
        .attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
        .collect();
    json!({
        "Records": [{
            "messageId": msg.message_id().unwrap_or_default(),
            "receiptHandle": msg.receipt_handle().unwrap_or_default(),
            "body": msg.body().unwrap_or_default(),
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": msg.md5_of_body().unwrap_or_default(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }]
    })
}

/// The error a DLQ message's attributes name (EventBridge: `ERROR_MESSAGE`/`ERROR_CODE`, Lambda's
/// async DLQ: `ErrorMessage`/`ErrorCode`).
fn attribute_reason(msg: &Message) -> Option<String> {
    let attrs = msg.message_attributes()?;
    ["ERROR_MESSAGE", "ErrorMessage", "ERROR_CODE", "ErrorCode"]
        .iter()
        .find_map(|k| {
            attrs
                .get(*k)
                .and_then(|a| a.string_value())
                .map(str::to_owned)
        })
}

pub struct Options {
    pub queue_url: String,
    pub function: String,
    pub max: Option<usize>,
    pub dry_run: bool,
    pub as_sqs_event: bool,
    /// How long received messages stay hidden (one invocation each, one batch of 10 at most).
    pub visibility_timeout: i32,
    pub wait_seconds: i32,
    pub region: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub replayed: usize,
    pub failed: usize,
    /// Messages with nothing to replay (not JSON, batch pointers): left in the queue.
    pub unreplayable: usize,
    /// `--dry-run`: messages that would be replayed.
    pub would_replay: usize,
}

impl Summary {
    pub fn line(&self, dry_run: bool) -> String {
        if dry_run {
            format!(
                "dry run: {} would be replayed, {} cannot be replayed; nothing invoked or deleted",
                self.would_replay, self.unreplayable
            )
        } else {
            format!(
                "replayed {}, failed {}, cannot be replayed {}",
                self.replayed, self.failed, self.unreplayable
            )
        }
    }

    pub fn ok(&self) -> bool {
        self.failed == 0 && self.unreplayable == 0
    }
}

/// Receives until the queue answers no new message (or `max` were handled). A message that was
/// not deleted is made visible again at the end, not during the run, so it is handled once.
pub async fn run(
    sqs: &aws_sdk_sqs::Client,
    lambda: &aws_sdk_lambda::Client,
    opts: &Options,
    out: &mut dyn FnMut(String),
) -> Result<Summary, String> {
    let aws = |what: &str, e: &dyn std::error::Error| format!("{what}: {}", error_chain(e));
    let queue_arn = if opts.as_sqs_event {
        sqs.get_queue_attributes()
            .queue_url(&opts.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws("GetQueueAttributes", &e))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default()
    } else {
        String::new()
    };

    let mut summary = Summary::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut to_release: HashMap<String, String> = HashMap::new(); // message id -> receipt handle
    let mut handled = 0usize;
    let result: Result<(), String> = async {
        loop {
            let want = match opts.max {
                Some(max) if handled >= max => break,
                Some(max) => (max - handled).min(10),
                None => 10,
            };
            let received = sqs
                .receive_message()
                .queue_url(&opts.queue_url)
                .max_number_of_messages(want as i32)
                .visibility_timeout(opts.visibility_timeout)
                .wait_time_seconds(opts.wait_seconds)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| aws("ReceiveMessage", &e))?;
            let mut fresh = 0;
            for msg in received.messages() {
                let id = msg.message_id().unwrap_or_default().to_owned();
                let handle = msg.receipt_handle().unwrap_or_default().to_owned();
                if !seen.insert(id.clone()) {
                    // Back after its visibility timeout: already handled in this run.
                    continue;
                }
                fresh += 1;
                handled += 1;
                let parsed = if opts.as_sqs_event {
                    Ok(Replayable {
                        shape: Shape::SqsWrapped,
                        event: sqs_event(msg, &queue_arn, &opts.region),
                        reason: None,
                    })
                } else {
                    parse_body(msg.body().unwrap_or_default())
                };
                let item = match parsed {
                    Ok(p) => p,
                    Err(why) => {
                        summary.unreplayable += 1;
                        out(format!("cannot replay {id}: {why}"));
                        to_release.insert(id, handle);
                        continue;
                    }
                };
                let reason = item.reason.clone().or_else(|| attribute_reason(msg));
                let what = match describe(&item.event) {
                    Some(d) => format!("{id} ({}: {d})", item.shape.label()),
                    None => format!("{id} ({})", item.shape.label()),
                };
                if opts.dry_run {
                    summary.would_replay += 1;
                    match reason {
                        Some(r) => out(format!("would replay {what}; it failed with: {r}")),
                        None => out(format!("would replay {what}")),
                    }
                    to_release.insert(id, handle);
                    continue;
                }
                match invoke(lambda, &opts.function, &item.event).await {
                    Ok(()) => {
                        // Deleted only now: a crash before this line leaves the message queued.
                        match sqs
                            .delete_message()
                            .queue_url(&opts.queue_url)
                            .receipt_handle(&handle)
                            .send()
                            .await
                        {
                            Ok(_) => {
                                summary.replayed += 1;
                                out(format!("replayed {what}"));
                            }
                            Err(e) => {
                                // Invoked but still queued: a later replay repeats it, which the
                                // functions tolerate (events are at least once anyway).
                                summary.failed += 1;
                                out(format!(
                                    "replayed {what} but could not delete it: {}",
                                    error_chain(&e)
                                ));
                            }
                        }
                    }
                    Err(e) => {
                        summary.failed += 1;
                        out(format!("failed {what}: {e}"));
                        to_release.insert(id, handle);
                    }
                }
            }
            if fresh == 0 {
                break;
            }
        }
        Ok(())
    }
    .await;

    // What stays in the queue is visible again at once (for the next replay or a look).
    for (id, handle) in &to_release {
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(&opts.queue_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
        {
            out(format!(
                "note: {id} stays hidden until its visibility timeout ends: {}",
                error_chain(&e)
            ));
        }
    }
    result.map(|()| summary)
}

/// One synchronous invocation; a function error (AWS: 200 with `X-Amz-Function-Error`; cargo
/// lambda watch: HTTP 500) is a failure.
async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &Value,
) -> Result<(), String> {
    let out = lambda
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            // cargo lambda watch answers a function error with HTTP 500 and the error as body.
            Some(s) => {
                let raw = e.raw_response();
                let body = raw
                    .and_then(|r| r.body().bytes())
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let message = s
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| error_message(&body));
                format!(
                    "Invoke answered{}{}: {message}",
                    raw.map(|r| format!(" HTTP {}", r.status().as_u16()))
                        .unwrap_or_default(),
                    s.code().map(|c| format!(" {c}")).unwrap_or_default(),
                )
            }
            None => format!("Invoke: {}", error_chain(&e)),
        })?;
    if let Some(kind) = out.function_error() {
        let payload = out
            .payload()
            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
            .unwrap_or_default();
        return Err(format!(
            "function error ({kind}): {}",
            error_message(&payload)
        ));
    }
    Ok(())
}

/// The `errorMessage` of a Lambda error payload, else the payload as it is.
fn error_message(payload: &str) -> String {
    serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_owned))
        .unwrap_or_else(|| payload.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn ecs_event() -> Value {
        json!({
            "version": "0", "id": "e1", "source": "aws.ecs",
            "detail-type": "ECS Task State Change",
            "detail": {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/t1", "lastStatus": "STOPPED"}
        })
    }

    #[test]
    fn a_raw_event_is_replayed_as_it_is() {
        let p = parse_body(&ecs_event().to_string()).unwrap();
        assert_eq!(p.shape, Shape::Event);
        assert_eq!(p.event, ecs_event());
        assert_eq!(
            describe(&p.event).as_deref(),
            Some("aws.ecs / ECS Task State Change")
        );
    }

    #[test]
    fn an_on_failure_record_gives_back_its_request_payload() {
        let record = json!({
            "version": "1.0",
            "timestamp": "2026-12-01T10:00:00.000Z",
            "requestContext": {
                "requestId": "r1",
                "functionArn": "arn:aws:lambda:us-east-1:1:function:task-events:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": ecs_event(),
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": "Throttled", "errorMessage": "ECS throttled StartTask"}
        });
        let p = parse_body(&record.to_string()).unwrap();
        assert_eq!(p.shape, Shape::OnFailureRecord);
        assert_eq!(p.event, ecs_event());
        assert_eq!(
            p.reason.as_deref(),
            Some("RetriesExhausted: ECS throttled StartTask")
        );
    }

    #[test]
    fn an_event_that_merely_has_a_request_context_is_an_event() {
        // An API Gateway payload has a requestContext but no requestPayload.
        let api = json!({"version": "2.0", "rawPath": "/v1/ping", "requestContext": {"http": {"method": "GET"}}});
        let p = parse_body(&api.to_string()).unwrap();
        assert_eq!(p.shape, Shape::Event);
        assert_eq!(p.event, api);
    }

    #[test]
    fn batch_pointers_and_non_json_bodies_cannot_be_replayed() {
        let pointer = json!({
            "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:1:function:deployer", "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "version": "1.0", "timestamp": "t",
            "DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "2", "batchSize": 2, "streamArn": "arn:..."}
        });
        let err = parse_body(&pointer.to_string()).unwrap_err();
        assert!(err.contains("DDBStreamBatchInfo"), "{err}");
        let err = parse_body("not json").unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
    }

    #[test]
    fn a_queue_message_wrapped_as_the_sqs_event_a_function_receives() {
        let msg = Message::builder()
            .message_id("m1")
            .receipt_handle("h1")
            .body(r#"{"environment":"web","deploymentId":"01D"}"#)
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "6")
            .build();
        let ev = sqs_event(&msg, "arn:aws:sqs:us-east-1:1:wakeups-dlq", "us-east-1");
        let r = &ev["Records"][0];
        assert_eq!(ev["Records"].as_array().unwrap().len(), 1);
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:1:wakeups-dlq");
        assert_eq!(r["messageId"], "m1");
        assert_eq!(r["body"], r#"{"environment":"web","deploymentId":"01D"}"#);
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "6");
        assert_eq!(describe(&ev).as_deref(), Some("1 record(s)"));
        assert_eq!(describe(&json!({"detail": {}})), None);
    }

    #[test]
    fn reasons_come_from_eventbridge_or_lambda_dlq_attributes() {
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .unwrap()
        };
        let eb = Message::builder()
            .message_attributes("ERROR_CODE", attr("SDK_CLIENT_ERROR"))
            .message_attributes("ERROR_MESSAGE", attr("Lambda was throttled"))
            .build();
        assert_eq!(
            attribute_reason(&eb).as_deref(),
            Some("Lambda was throttled")
        );
        let lambda = Message::builder()
            .message_attributes("ErrorMessage", attr("task timed out"))
            .build();
        assert_eq!(attribute_reason(&lambda).as_deref(), Some("task timed out"));
        assert_eq!(attribute_reason(&Message::builder().build()), None);
    }
}
