//! The organization events pipeline: what a client posts, what travels
//! through SQS, sending in batches, and the dead-letter replay.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::data::check_limits;
use crate::domain::event::RESERVED_PREFIXES;
use crate::domain::{Data, IdentifierKey};
use crate::error::Error;
use crate::store::storage;

/// Most events one request may post.
pub const MAX_EVENTS_PER_REQUEST: usize = 500;
pub const MAX_EVENT_NAME_LEN: usize = 255;
/// Most pairs one `match` may hold.
pub const MAX_MATCH_PAIRS: usize = 20;
/// SQS takes at most this many messages in one `SendMessageBatch`.
const SQS_BATCH: usize = 10;

/// Which organizations an event is for.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The one organization these identifiers name.
    Identifiers(Vec<IdentifierKey>),
    /// Every organization whose `data` holds all these top-level pairs.
    Match(Data),
}

/// A posted event, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct PostedEvent {
    pub target: Target,
    pub name: String,
    pub data: Data,
}

impl PostedEvent {
    pub fn new(
        identifiers: Option<Vec<IdentifierKey>>,
        matcher: Option<Data>,
        name: String,
        data: Option<Data>,
    ) -> Result<Self, Error> {
        let target = match (identifiers, matcher) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "an event names its organization by `identifier` or by `match`, not both",
                ))
            }
            (None, None) => return Err(Error::invalid("an event needs `identifier` or `match`")),
            (Some(ids), None) => {
                if ids.is_empty() {
                    return Err(Error::invalid("at least one identifier is required"));
                }
                Target::Identifiers(ids)
            }
            (None, Some(pairs)) => {
                if pairs.is_empty() {
                    return Err(Error::invalid("`match` needs at least one key/value pair"));
                }
                if pairs.len() > MAX_MATCH_PAIRS {
                    return Err(Error::invalid(format!(
                        "`match` may hold at most {MAX_MATCH_PAIRS} pairs"
                    )));
                }
                if pairs.values().any(serde_json::Value::is_null) {
                    return Err(Error::invalid("`match` values must not be null"));
                }
                Target::Match(pairs)
            }
        };
        validate_name(&name)?;
        let data = data.unwrap_or_default();
        check_limits("event data", &data)?;
        Ok(Self { target, name, data })
    }
}

pub fn validate_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid("an event needs a non-empty `name`"));
    }
    if name.chars().count() > MAX_EVENT_NAME_LEN {
        return Err(Error::invalid(format!(
            "an event name is at most {MAX_EVENT_NAME_LEN} characters"
        )));
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Err(Error::invalid(format!(
            "event names starting with `{prefix}` are the service's own; choose another name"
        )));
    }
    Ok(())
}

/// One event for one organization (or a `match`), as queued for the
/// processor. The id is given at intake, so redelivery records it once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub id: Uuid,
    pub project_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matcher: Option<Data>,
    /// A `match` fan-out runs in steps, one message each: where in the
    /// project's organization index this step starts (after this
    /// organization; from the start when absent). Only the processor sets
    /// it, on the message that queues the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_after: Option<Uuid>,
    pub name: String,
    #[serde(default)]
    pub data: Data,
    pub created_at: String,
}

/// What SQS took: for each event, in order, its id or why it was not queued.
pub type Enqueued = Vec<Result<Uuid, String>>;

/// Sends events in batches of 10; entries SQS refuses are retried once,
/// then reported (never dropped silently).
pub async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    events: &[QueuedEvent],
) -> Result<Enqueued, Error> {
    let mut results: Enqueued = events.iter().map(|e| Ok(e.id)).collect();
    for (chunk_index, chunk) in events.chunks(SQS_BATCH).enumerate() {
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        for attempt in 0..2 {
            let entries = pending
                .iter()
                .map(|&i| {
                    let body = serde_json::to_string(&chunk[i])
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| Error::Internal(e.to_string()))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let sent = sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            let failed: Vec<(usize, String)> = match sent {
                Ok(out) => out
                    .failed
                    .iter()
                    .filter_map(|f| {
                        f.id.parse::<usize>()
                            .ok()
                            .map(|i| (i, f.message.clone().unwrap_or_else(|| f.code.clone())))
                    })
                    .collect(),
                Err(err) => {
                    let err = storage("SendMessageBatch", err);
                    tracing::warn!(error = %err, attempt, "sending events failed");
                    pending
                        .iter()
                        .map(|&i| (i, "the events queue could not be reached".to_owned()))
                        .collect()
                }
            };
            pending = failed.iter().map(|(i, _)| *i).collect();
            if pending.is_empty() {
                break;
            }
            if attempt == 1 {
                for (i, reason) in failed {
                    results[chunk_index * SQS_BATCH + i] = Err(reason);
                }
            }
        }
    }
    Ok(results)
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

/// Announces a deletion on the cleanup queue (`CLEANUP_QUEUE_URL`), after
/// the deleting transaction committed. A lost announcement loses nothing:
/// the cleanup record stays pending, and `orgctl cleanup resume` sends it
/// again.
pub async fn announce_deletion(
    sqs: &aws_sdk_sqs::Client,
    queue_url: Option<&str>,
    deletion: &crate::domain::cleanup::Deletion,
) {
    let Some(queue_url) = queue_url else {
        tracing::debug!("CLEANUP_QUEUE_URL is not set; the deletion is not announced");
        return;
    };
    let body = match serde_json::to_string(deletion) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "serialising a deletion");
            return;
        }
    };
    if let Err(e) = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
    {
        tracing::error!(org = %deletion.org_id, error = %storage("SendMessage", e),
            "the deletion was not announced; its cleanup record stays pending");
    }
}

/// Sends a purge step's message on the cleanup queue: the continuation
/// of a step, or the sweep's announcement of a purge that lost its own.
pub async fn send_purge_step(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    message: &crate::domain::cleanup::PurgeMessage,
) -> Result<(), Error> {
    let body = serde_json::to_string(message)
        .map_err(|e| Error::Internal(format!("serialising a purge step: {e}")))?;
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| storage("SendMessage", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids() -> Option<Vec<IdentifierKey>> {
        Some(vec![IdentifierKey::parse(None, "acme").unwrap()])
    }

    fn pairs(v: serde_json::Value) -> Option<Data> {
        v.as_object().cloned()
    }

    #[test]
    fn an_event_names_its_organization_one_way() {
        assert!(PostedEvent::new(ids(), None, "x".into(), None).is_ok());
        assert!(PostedEvent::new(None, pairs(json!({"plan": "pro"})), "x".into(), None).is_ok());
        assert!(PostedEvent::new(ids(), pairs(json!({"plan": "pro"})), "x".into(), None).is_err());
        assert!(PostedEvent::new(None, None, "x".into(), None).is_err());
        assert!(PostedEvent::new(None, pairs(json!({})), "x".into(), None).is_err());
        assert!(PostedEvent::new(Some(vec![]), None, "x".into(), None).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("subscription_upgraded").is_ok());
        assert!(validate_name(" ").is_err());
        assert!(validate_name(&"x".repeat(256)).is_err());
        assert!(validate_name("organization.updated").is_err());
        assert!(validate_name("scheduled.renewal").is_err());
    }

    #[test]
    fn queued_events_round_trip_with_the_spec_field_name() {
        let event = QueuedEvent {
            id: Uuid::now_v7(),
            project_id: Uuid::now_v7(),
            organization_id: None,
            matcher: pairs(json!({"plan": "pro"})),
            match_after: None,
            name: "x".into(),
            data: Data::new(),
            created_at: crate::ids::now(),
        };
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.contains("\"match\""));
        assert_eq!(serde_json::from_str::<QueuedEvent>(&text).unwrap(), event);
    }
}
