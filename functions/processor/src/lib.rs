//! The SQS consumer of organization events: each message is one event for
//! one organization (or for every organization a `match` selects), recorded
//! once in each timeline — redelivery writes nothing twice. Failed messages
//! are reported back individually so SQS retries only those, and
//! dead-letters them after repeated failure.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::events::QueuedEvent;
use shared::store::timeline::{Recorded, TimelineEvent};
use shared::{AppState, Error};
use tokio::task::JoinSet;

/// Handles one batch, its messages concurrently; the response lists only
/// the messages that failed.
pub async fn handle(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let mut tasks = JoinSet::new();
    for message in event.records {
        let state = state.clone();
        tasks.spawn(async move {
            let id = message.message_id.clone().unwrap_or_default();
            let result = process(&state, message).await;
            (id, result)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (id, result) = match joined {
            Ok(done) => done,
            Err(err) => {
                // A panicked task cannot name its message: fail the batch
                // the safe way, by reporting nothing as done.
                tracing::error!(error = %err, "processing task failed");
                continue;
            }
        };
        if let Err(err) = result {
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
    let organizations = match (&queued.organization_id, &queued.matcher) {
        (Some(org), None) => vec![*org],
        (None, Some(pairs)) => {
            state
                .store
                .organizations_matching(queued.project_id, pairs)
                .await?
        }
        _ => {
            return Err(Error::invalid(
                "the event names no organization, or names it twice",
            ))
        }
    };
    let event = TimelineEvent {
        id: queued.id,
        name: queued.name,
        data: queued.data,
        created_at: queued.created_at,
        origin: "custom".into(),
    };
    for org in organizations {
        match state
            .store
            .record_event(queued.project_id, org, &event)
            .await?
        {
            Recorded::Recorded => {}
            Recorded::Duplicate => {
                tracing::info!(event_id = %event.id, %org, "already recorded; redelivery ignored")
            }
            Recorded::NoOrganization => {
                tracing::info!(event_id = %event.id, %org, "organization is gone; event dropped")
            }
        }
    }
    Ok(())
}
