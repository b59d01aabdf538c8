//! The SQS consumer of organization events: each message is one event for
//! one organization (or for every organization a `match` selects), recorded
//! once in each timeline — redelivery writes nothing twice. Failed messages
//! are reported back individually so SQS retries only those, and
//! dead-letters them after repeated failure.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::events::QueuedEvent;
use shared::store::timeline::{Delivery, Recorded, TimelineEvent};
use shared::{AppState, Error};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Handles one batch: reads its messages (resolving `match` events)
/// concurrently, then records every delivery in as few transactions as
/// DynamoDB allows (one for a batch of 10 single-organization events). The
/// response lists only the messages that failed.
pub async fn handle(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let state = state.serving_ref("processor");
    let state: &AppState = &state;
    let ids: Vec<String> = event
        .records
        .iter()
        .map(|m| m.message_id.clone().unwrap_or_default())
        .collect();
    let mut tasks = JoinSet::new();
    for (position, message) in event.records.into_iter().enumerate() {
        let state = state.clone();
        tasks.spawn(async move { (position, read(&state, message).await) });
    }
    // A message whose task never reports back (it panicked) stays failed.
    let mut failed = vec![true; ids.len()];
    let mut read_events = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((position, Ok(read))) => {
                failed[position] = false;
                read_events.push((position, read));
            }
            Ok((position, Err(err))) => {
                tracing::error!(message_id = %ids[position], error = %err, "event not recorded")
            }
            Err(err) => tracing::error!(error = %err, "reading a message failed"),
        }
    }
    let mut deliveries = Vec::new();
    let mut owners = Vec::new();
    for (position, read) in &read_events {
        for &org in &read.organizations {
            deliveries.push(Delivery {
                project: read.project,
                org,
                event: &read.event,
            });
            owners.push(*position);
        }
    }
    let verdicts = state.store.record_events(&deliveries).await;
    for ((delivery, position), verdict) in deliveries.iter().zip(owners).zip(verdicts) {
        let (event_id, org) = (delivery.event.id, delivery.org);
        match verdict {
            Ok(Recorded::Recorded) => {}
            Ok(Recorded::Duplicate) => {
                tracing::info!(%event_id, %org, "already recorded; redelivery ignored")
            }
            Ok(Recorded::NoOrganization) => {
                tracing::info!(%event_id, %org, "organization is gone; event dropped")
            }
            Err(err) => {
                tracing::error!(message_id = %ids[position], %event_id, %org, error = %err, "event not recorded");
                failed[position] = true;
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = ids
        .into_iter()
        .zip(failed)
        .filter(|(_, failed)| *failed)
        .map(|(id, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// A message read: its event and the organizations it is for.
struct ReadEvent {
    project: Uuid,
    organizations: Vec<Uuid>,
    event: TimelineEvent,
}

async fn read(state: &AppState, message: SqsMessage) -> Result<ReadEvent, Error> {
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
    Ok(ReadEvent {
        project: queued.project_id,
        organizations,
        event: TimelineEvent {
            id: queued.id,
            name: queued.name,
            data: queued.data,
            created_at: queued.created_at,
            origin: "custom".into(),
        },
    })
}
