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

/// Queues each match's next step, once: a step delivered again finds its
/// next step's marker `sent` and queues nothing (no second chain); a send
/// that failed leaves it `sending`, so the redelivery sends again.
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
    let mut results = Vec::with_capacity(steps.len());
    let mut sending = Vec::new();
    for (position, step) in steps {
        let Some(after) = step.match_after else {
            sending.push((position, step));
            continue;
        };
        match state
            .store
            .claim_next_step(step.project_id, step.id, after)
            .await
        {
            Ok(true) => sending.push((position, step)),
            Ok(false) => {
                tracing::info!(event_id = %step.id, %after, "the next step was queued before; redelivery ignored");
                results.push((position, Ok(())));
            }
            Err(err) => results.push((position, Err(err.to_string()))),
        }
    }
    if sending.is_empty() {
        return results;
    }
    let (positions, events): (Vec<usize>, Vec<QueuedEvent>) = sending.into_iter().unzip();
    let sent = match shared::events::enqueue(&state.aws.sqs, queue_url, &events).await {
        Ok(sent) => sent.into_iter().map(|s| s.map(|_| ())).collect(),
        Err(err) => vec![Err(err.to_string()); events.len()],
    };
    for ((position, event), sent) in positions.into_iter().zip(&events).zip(sent) {
        if let (Ok(()), Some(after)) = (&sent, event.match_after) {
            // Not recorded: a later delivery sends it again (a duplicate
            // step, which records nothing twice).
            if let Err(err) = state
                .store
                .next_step_sent(event.project_id, event.id, after)
                .await
            {
                tracing::warn!(event_id = %event.id, %after, error = %err, "the next step's marker was not set");
            }
        }
        results.push((position, sent));
    }
    results
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
