//! The organization events pipeline: what travels through SQS, and the
//! dead-letter replay.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Data;
use crate::error::Error;
use crate::store::storage;

/// One event for one organization, as queued for the processor. The id is
/// given at intake, so redelivery records it once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub id: Uuid,
    pub project_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub data: Data,
    pub created_at: String,
}

/// The dead-letter queue's URL, next to the events queue (`<name>-dlq`).
pub async fn dead_letter_queue_url(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<String, Error> {
    let name = queue_url.rsplit('/').next().unwrap_or_default();
    sqs.get_queue_url()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(|e| storage("GetQueueUrl", e))?
        .queue_url
        .ok_or_else(|| Error::Config("the dead-letter queue has no URL".into()))
}

/// Moves every message of the dead-letter queue back to the events queue.
/// A message is deleted from the DLQ only after it was sent.
pub async fn replay_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<usize, Error> {
    let dlq = dead_letter_queue_url(sqs, queue_url).await?;
    let mut moved = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| storage("ReceiveMessage", e))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for message in messages {
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(message.body.unwrap_or_default())
                .send()
                .await
                .map_err(|e| storage("SendMessage", e))?;
            if let Some(handle) = message.receipt_handle {
                sqs.delete_message()
                    .queue_url(&dlq)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| storage("DeleteMessage", e))?;
            }
            moved += 1;
        }
    }
}
