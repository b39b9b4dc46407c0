//! SQS adapter of the `Wakeup` port: one delayed message per bake that has to end.

use async_trait::async_trait;
use aws_sdk_sqs::Client;

use crate::adapters::dynamo::sdk_error;
use crate::error::{Error, Result};
use crate::ports::{Wakeup, WakeupMessage};

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
