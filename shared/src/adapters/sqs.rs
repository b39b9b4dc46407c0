//! SQS adapters: the `Wakeup` port (one delayed message per bake that has to end or restart that
//! is due) and the `ReconcileQueue` port (a FIFO queue, one message group per cluster).

use async_trait::async_trait;
use aws_sdk_sqs::Client;

use crate::adapters::dynamo::sdk_error;
use crate::error::{Error, Result};
use crate::limits::{SQS_GROUP_ID_MAX, SQS_SEND_BATCH};
use crate::ports::{ReconcileMessage, ReconcileQueue, Wakeup, WakeupMessage};

/// SQS delays a message by 15 minutes at most (`minHealthySeconds` is capped to match).
pub const MAX_DELAY_SECS: u32 = 900;

#[derive(Clone)]
pub struct SqsWakeup {
    client: Client,
    queue_url: String,
}

impl SqsWakeup {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl Wakeup for SqsWakeup {
    async fn wake_later(&self, message: &WakeupMessage, delay_secs: u32) -> Result<()> {
        let body = serde_json::to_string(message)
            .map_err(|e| Error::Internal(format!("wake-up message: {e}")))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay_secs.min(MAX_DELAY_SECS) as i32)
            .send()
            .await
            .map_err(|e| sdk_error("SQS", e))?;
        Ok(())
    }
}

/// The reconcile queue: FIFO with content-based deduplication (the template sets both), so a
/// cluster's messages are handled one at a time and a scheduled run delivered twice sends once.
#[derive(Clone)]
pub struct SqsReconcileQueue {
    client: Client,
    queue_url: String,
}

impl SqsReconcileQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

/// A cluster's message group: its ARN, or a digest of it when the ARN is longer than SQS allows
/// (a cluster name may have 255 characters).
pub fn group_id(cluster_arn: &str) -> String {
    if cluster_arn.len() <= SQS_GROUP_ID_MAX {
        return cluster_arn.to_owned();
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cluster_arn.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl ReconcileQueue for SqsReconcileQueue {
    async fn enqueue(&self, messages: &[ReconcileMessage]) -> Result<()> {
        for chunk in messages.chunks(SQS_SEND_BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, m) in chunk.iter().enumerate() {
                let body = serde_json::to_string(m)
                    .map_err(|e| Error::Internal(format!("reconcile message: {e}")))?;
                entries.push(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_group_id(group_id(&m.cluster_arn))
                        .build()
                        .map_err(|e| Error::Internal(format!("reconcile message: {e}")))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error("SQS", e))?;
            if let Some(f) = out.failed().first() {
                // The scheduled run fails and is retried; what was sent is deduplicated.
                return Err(Error::Aws {
                    service: "SQS".into(),
                    code: f.code().to_owned(),
                    message: format!(
                        "{}: {} of {} messages not sent",
                        f.code(),
                        out.failed().len(),
                        chunk.len()
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_arn_is_its_group_unless_too_long_then_a_stable_digest() {
        let short = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
        assert_eq!(group_id(short), short);
        let long = format!(
            "arn:aws:ecs:us-east-1:123456789012:cluster/{}",
            "x".repeat(200)
        );
        let g = group_id(&long);
        assert_eq!(g.len(), 64);
        assert_eq!(g, group_id(&long));
        assert_ne!(g, group_id(&format!("{long}y")));
    }
}
