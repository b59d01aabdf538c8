//! The SQS consumer of organization events: each message is one event for
//! one organization, recorded once in its timeline (redelivery writes
//! nothing twice). Failed messages are reported back individually so SQS
//! retries only those, and dead-letters them after repeated failure.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::events::QueuedEvent;
use shared::store::timeline::TimelineEvent;
use shared::{AppState, Error};

/// Handles one batch; the response lists only the messages that failed.
pub async fn handle(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if let Err(err) = process(state, message).await {
            tracing::error!(message_id = %id, error = %err, "event not recorded");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

async fn process(state: &AppState, message: SqsMessage) -> Result<(), Error> {
    let body = message
        .body
        .ok_or_else(|| Error::invalid("the message has no body"))?;
    let queued: QueuedEvent = serde_json::from_str(&body)
        .map_err(|e| Error::invalid(format!("the message is not an organization event: {e}")))?;
    let event = TimelineEvent {
        id: queued.id,
        name: queued.name,
        data: queued.data,
        created_at: queued.created_at,
        origin: "custom".into(),
    };
    let recorded = state
        .store
        .record_event(queued.project_id, queued.organization_id, &event)
        .await?;
    if !recorded {
        tracing::info!(event_id = %event.id, "event already recorded; redelivery ignored");
    }
    Ok(())
}
