//! The SQS consumer of organization events: each message is one event for
//! one organization (or for every organization a `match` selects), recorded
//! once in each timeline — redelivery writes nothing twice. A `match` runs
//! in steps: each message reads one page of the organization index
//! ([`shared::store::FAN_OUT_STEP`] organizations), records the event in
//! those that match, and queues the next step as a message of its own.
//! Failed messages are reported back individually so SQS retries only
//! those, and dead-letters them after repeated failure.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::events::QueuedEvent;
use shared::store::timeline::{Delivery, Recorded, TimelineEvent};
use shared::{AppState, Error};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Handles one batch: reads its messages (resolving one step of each
/// `match` event) concurrently, then records every delivery in as few
/// transactions as DynamoDB allows (one for a batch of 10
/// single-organization events), then queues the next step of each `match`
/// whose deliveries were all recorded. The response lists only the
/// messages that failed. A redelivered step records nothing twice (the
/// timeline is idempotent per event and organization) and queues its next
/// step again, which is as harmless.
pub async fn handle(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    handle_with(state, event, shared::store::FAN_OUT_STEP).await
}

/// [`handle`], each `match` step reading `fan_out_step` organizations of
/// the index at most.
pub async fn handle_with(
    state: &AppState,
    event: SqsEvent,
    fan_out_step: usize,
) -> SqsBatchResponse {
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
        tasks.spawn(async move { (position, read(&state, message, fan_out_step).await) });
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
    let next_steps: Vec<(usize, QueuedEvent)> = read_events
        .into_iter()
        .filter_map(|(position, read)| read.next_step.map(|next| (position, next)))
        .filter(|(position, _)| !failed[*position])
        .collect();
    if !next_steps.is_empty() {
        for (position, queued) in queue_next_steps(state, next_steps).await {
            if let Err(reason) = queued {
                tracing::error!(message_id = %ids[position], reason, "the next step of a match was not queued");
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

/// A message read: its event and the organizations it is for, and for a
/// `match` with organizations left, the message of its next step.
struct ReadEvent {
    project: Uuid,
    organizations: Vec<Uuid>,
    event: TimelineEvent,
    next_step: Option<QueuedEvent>,
}

/// Sends the next steps of `match` fan-outs to the events queue; for each,
/// its message's position and whether SQS took it.
async fn queue_next_steps(
    state: &AppState,
    steps: Vec<(usize, QueuedEvent)>,
) -> Vec<(usize, Result<(), String>)> {
    let Some(queue_url) = state.config.events_queue_url.as_deref() else {
        let reason = "EVENTS_QUEUE_URL is not set: a match cannot go on to its next step";
        return steps
            .into_iter()
            .map(|(position, _)| (position, Err(reason.to_owned())))
            .collect();
    };
    let (positions, events): (Vec<usize>, Vec<QueuedEvent>) = steps.into_iter().unzip();
    match shared::events::enqueue(&state.aws.sqs, queue_url, &events).await {
        Ok(sent) => positions
            .into_iter()
            .zip(sent)
            .map(|(position, sent)| (position, sent.map(|_| ())))
            .collect(),
        Err(err) => positions
            .into_iter()
            .map(|position| (position, Err(err.to_string())))
            .collect(),
    }
}

async fn read(
    state: &AppState,
    message: SqsMessage,
    fan_out_step: usize,
) -> Result<ReadEvent, Error> {
    let body = message
        .body
        .ok_or_else(|| Error::invalid("the message has no body"))?;
    let queued: QueuedEvent = serde_json::from_str(&body)
        .map_err(|e| Error::invalid(format!("the message is not an organization event: {e}")))?;
    let (organizations, next_step) = match (&queued.organization_id, &queued.matcher) {
        (Some(org), None) => (vec![*org], None),
        (None, Some(pairs)) => {
            let step = state
                .store
                .organizations_matching(queued.project_id, pairs, queued.match_after, fan_out_step)
                .await?;
            let next_step = step.next_after.map(|after| QueuedEvent {
                match_after: Some(after),
                ..queued.clone()
            });
            (step.organizations, next_step)
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
        next_step,
    })
}
