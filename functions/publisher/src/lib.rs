//! The table's stream out: the publisher reads the DynamoDB stream and puts
//! every timeline event — a new `EVT#` item, written in the transaction of
//! the change it records, so only committed changes ever appear — on the
//! EventBridge bus: `source` [`SOURCE`], `detail-type` the event's name,
//! `detail` a [`Detail`].
//!
//! Order: the stream gives an organization's items in commit order (they
//! share its partition key), and a `PutEvents` call carries at most one
//! entry per organization, so an organization's events reach the bus in
//! `sequence` order even when an entry fails: its later events wait until
//! it is retried. Delivery is at least once (a retried batch publishes
//! again what it had published; `event_id` tells the copies apart).
//!
//! Failure: an entry the bus refuses is retried in this invocation a few
//! times; after that the invocation reports the first record it could not
//! publish, so Lambda retries the batch from there (bisecting, up to the
//! retry limit, then its on-failure destination). A record that can never
//! be published (not an event, or too large for the bus) goes to the
//! failure queue at once, so it never holds back the records after it.

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod replay;
pub mod stream_source;

/// Every entry's `source`.
pub const SOURCE: &str = "organizations";

/// `PutEvents` takes at most this many entries a call.
pub const MAX_ENTRIES: usize = 10;

/// ... and at most this many bytes of entries a call (an entry counts its
/// source, detail-type and detail).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Tries of one entry within an invocation before the batch is handed
/// back to Lambda.
pub const MAX_TRIES: u32 = 4;

/// What subscribers receive as an entry's `detail`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    pub project_id: Uuid,
    pub organization_id: Uuid,
    pub event_id: Uuid,
    /// The event's place among its organization's events: 1, 2, … without
    /// gaps, in commit order.
    pub sequence: u64,
    pub name: String,
    pub data: serde_json::Value,
    pub occurred_at: String,
}

/// A timeline event item as the stream shows it (new image).
#[derive(Deserialize)]
struct EventImage {
    #[serde(rename = "PK")]
    pk: String,
    id: Uuid,
    name: String,
    sequence: u64,
    #[serde(default)]
    data: serde_json::Value,
    created_at: String,
}

/// What one stream record is to the publisher.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// Not a new timeline event (another item, a change, a removal).
    Skip,
    /// An event to publish.
    Event(Entry),
    /// A new timeline event that can never be published: why.
    Poison(String),
}

/// One entry to put, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub detail: Detail,
    /// The detail as sent.
    pub json: String,
    /// The stream record's sequence number (what a batch failure names).
    pub record: String,
}

impl Entry {
    /// The entry of `detail`, from `record`; why not when the bus could
    /// never take it.
    pub fn new(detail: Detail, record: String) -> Result<Self, String> {
        let json =
            serde_json::to_string(&detail).map_err(|err| format!("unserialisable: {err}"))?;
        let entry = Entry {
            detail,
            json,
            record,
        };
        if entry.bytes() > MAX_REQUEST_BYTES {
            return Err(format!(
                "{} bytes: more than an EventBridge entry may hold ({MAX_REQUEST_BYTES})",
                entry.bytes()
            ));
        }
        Ok(entry)
    }

    fn organization(&self) -> (Uuid, Uuid) {
        (self.detail.project_id, self.detail.organization_id)
    }

    /// What the entry counts toward [`MAX_REQUEST_BYTES`].
    pub fn bytes(&self) -> usize {
        SOURCE.len() + self.detail.name.len() + self.json.len()
    }
}

/// The project and organization of a timeline partition key
/// (`P#<project>#ORG#<org>`).
fn partition(pk: &str) -> Option<(Uuid, Uuid)> {
    let (project, org) = pk.strip_prefix("P#")?.split_once("#ORG#")?;
    Some((project.parse().ok()?, org.parse().ok()?))
}

/// Reads one stream record.
pub fn read(record: &EventRecord) -> Read {
    let sk = record
        .change
        .keys
        .get(shared::keys::SK)
        .and_then(|v| match v {
            serde_dynamo::AttributeValue::S(s) => Some(s.as_str()),
            _ => None,
        });
    if record.event_name != "INSERT"
        || !sk.is_some_and(|sk| sk.starts_with(shared::keys::EVENT_PREFIX))
    {
        return Read::Skip;
    }
    let image: EventImage = match serde_dynamo::from_item(record.change.new_image.clone()) {
        Ok(image) => image,
        Err(err) => return Read::Poison(format!("not a timeline event: {err}")),
    };
    let Some((project_id, organization_id)) = partition(&image.pk) else {
        return Read::Poison(format!("not an organization's partition: {}", image.pk));
    };
    let detail = Detail {
        project_id,
        organization_id,
        event_id: image.id,
        sequence: image.sequence,
        name: image.name,
        data: image.data,
        occurred_at: image.created_at,
    };
    let record = record.change.sequence_number.clone().unwrap_or_default();
    match Entry::new(detail, record) {
        Ok(entry) => Read::Event(entry),
        Err(why) => Read::Poison(why),
    }
}

/// The next call's entries, as positions in `pending` (stream order): the
/// first pending entry of each organization, oldest first, up to
/// [`MAX_ENTRIES`] and [`MAX_REQUEST_BYTES`]. An organization's later
/// entries wait for its first: one that failed is retried before them.
pub fn next_call(pending: &[Entry]) -> Vec<usize> {
    let mut call = Vec::new();
    let mut seen = HashSet::new();
    let mut bytes = 0;
    for (position, entry) in pending.iter().enumerate() {
        if !seen.insert(entry.organization()) {
            continue;
        }
        if call.len() == MAX_ENTRIES || bytes + entry.bytes() > MAX_REQUEST_BYTES {
            break;
        }
        bytes += entry.bytes();
        call.push(position);
    }
    call
}

/// Where entries go: [`EventBridge`] (tests wrap it to refuse entries).
pub trait Bus: Send + Sync {
    /// One `PutEvents` call of at most [`MAX_ENTRIES`] entries: per entry,
    /// `None` when it was put, else why not (a call that failed whole fails
    /// every entry).
    fn put(
        &self,
        entries: &[&Entry],
    ) -> impl std::future::Future<Output = Vec<Option<String>>> + Send;
}

/// The stack's EventBridge bus.
#[derive(Clone)]
pub struct EventBridge {
    pub client: aws_sdk_eventbridge::Client,
    /// The bus's name (`EVENT_BUS_NAME`).
    pub name: String,
}

impl Bus for EventBridge {
    async fn put(&self, entries: &[&Entry]) -> Vec<Option<String>> {
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.name)
                    .source(SOURCE)
                    .detail_type(&e.detail.name)
                    .detail(&e.json)
                    .build()
            })
            .collect();
        match self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
        {
            Ok(out) => {
                let mut results: Vec<Option<String>> = out
                    .entries()
                    .iter()
                    .map(|r| {
                        r.error_code().map(|code| {
                            format!("{code}: {}", r.error_message().unwrap_or_default())
                        })
                    })
                    .collect();
                results.resize(entries.len(), Some("no result for the entry".into()));
                results
            }
            Err(err) => {
                let why = format!(
                    "PutEvents failed: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&err)
                );
                vec![Some(why); entries.len()]
            }
        }
    }
}

/// Puts stream records on the bus.
#[derive(Clone)]
pub struct Publisher<B = EventBridge> {
    pub bus: B,
    pub sqs: aws_sdk_sqs::Client,
    /// `PUBLISH_FAILURES_QUEUE_URL`: where records that can never be
    /// published go.
    pub failures_queue_url: Option<String>,
    /// The pause before an entry's next try (doubled each try).
    pub retry_pause: Duration,
}

impl Publisher<EventBridge> {
    pub async fn from_env() -> Result<Self, lambda_runtime::Error> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Ok(name) = aws_config::AppName::new("publisher") {
            loader = loader.app_name(name);
        }
        let sdk = loader.load().await;
        let name = std::env::var("EVENT_BUS_NAME")
            .map_err(|_| "EVENT_BUS_NAME is not set: the bus the publisher puts events on")?;
        let failures = std::env::var("PUBLISH_FAILURES_QUEUE_URL")
            .ok()
            .filter(|u| !u.is_empty());
        Ok(Self::new(&sdk, name, failures))
    }

    /// The publisher onto bus `name`; with `AWS_CALL_LOG` set, its clients
    /// record their calls (see `shared::call_log`).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        name: String,
        failures_queue_url: Option<String>,
    ) -> Self {
        let mut events = aws_sdk_eventbridge::config::Builder::from(sdk);
        let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
        if let Some(file) = shared::call_log::file() {
            use shared::call_log::{Recorder, Service};
            let recorder = Recorder::publisher(file, &name, failures_queue_url.as_deref());
            events = events.interceptor(recorder.on(Service::Events));
            sqs = sqs.interceptor(recorder.on(Service::Sqs));
        }
        Self {
            bus: EventBridge {
                client: aws_sdk_eventbridge::Client::from_conf(events.build()),
                name,
            },
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            failures_queue_url,
            retry_pause: Duration::from_millis(100),
        }
    }
}

impl<B: Bus> Publisher<B> {
    /// Publishes one stream batch: the response names the first record
    /// not published (nothing when every record was), from which Lambda
    /// delivers the batch again.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let mut pending = Vec::new();
        for record in &event.records {
            match read(record) {
                Read::Skip => {}
                Read::Event(entry) => pending.push(entry),
                Read::Poison(why) => {
                    if let Err(err) = self.set_aside(record, &why).await {
                        tracing::error!(error = %err, %why, "a record that cannot be published could not be set aside");
                        return failed_from(&pending, record);
                    }
                }
            }
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(first) = self.publish(pending).await {
            response.batch_item_failures.push(failure(first));
        }
        response
    }

    /// Puts entries until none is left (`None`) or one has failed
    /// [`MAX_TRIES`] times: then the stream record of the oldest entry not
    /// put, from which everything after it is delivered again.
    pub async fn publish(&self, mut pending: Vec<Entry>) -> Option<String> {
        let mut tries = vec![0u32; pending.len()];
        while !pending.is_empty() {
            let call = next_call(&pending);
            let entries: Vec<&Entry> = call.iter().map(|&i| &pending[i]).collect();
            let put = self.bus.put(&entries).await;
            let mut done = HashSet::new();
            let mut exhausted = false;
            for (&position, result) in call.iter().zip(&put) {
                match result {
                    None => {
                        done.insert(position);
                    }
                    Some(error) => {
                        tries[position] += 1;
                        tracing::warn!(event_id = %pending[position].detail.event_id, %error, try_ = tries[position], "the bus refused an event");
                        exhausted |= tries[position] >= MAX_TRIES;
                    }
                }
            }
            let retrying = done.len() < call.len();
            let kept: Vec<(Entry, u32)> = pending
                .into_iter()
                .zip(tries)
                .enumerate()
                .filter(|(position, _)| !done.contains(position))
                .map(|(_, kept)| kept)
                .collect();
            (pending, tries) = kept.into_iter().unzip();
            if exhausted {
                tracing::error!("the bus kept refusing an event; the batch goes back to Lambda from the oldest event not put");
                return pending.first().map(|e| e.record.clone());
            }
            if retrying {
                let worst = tries.iter().copied().max().unwrap_or(1);
                tokio::time::sleep(self.retry_pause * 2u32.saturating_pow(worst.saturating_sub(1)))
                    .await;
            }
        }
        None
    }

    /// Sends a record that can never be published to the failure queue.
    async fn set_aside(&self, record: &EventRecord, why: &str) -> Result<(), String> {
        let Some(queue) = &self.failures_queue_url else {
            tracing::error!(%why, record = ?record.change.sequence_number, "a record that cannot be published was dropped: no failure queue is configured");
            return Ok(());
        };
        let body = serde_json::json!({"why": why, "record": record}).to_string();
        self.sqs
            .send_message()
            .queue_url(queue)
            .message_body(body)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
        tracing::warn!(%why, record = ?record.change.sequence_number, "a record that cannot be published was set aside");
        Ok(())
    }
}

fn failure(record: String) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(record);
    failure
}

/// The response when `record` (after `before`) could not be handled: the
/// batch again from the first of them, nothing of it published yet.
fn failed_from(before: &[Entry], record: &EventRecord) -> DynamoDbEventResponse {
    let first = before
        .first()
        .map(|e| e.record.clone())
        .or_else(|| record.change.sequence_number.clone())
        .unwrap_or_default();
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure(first));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(org: u128, sequence: u64, bytes: usize) -> Entry {
        let detail = Detail {
            project_id: Uuid::from_u128(1),
            organization_id: Uuid::from_u128(org),
            event_id: Uuid::from_u128(sequence as u128),
            sequence,
            name: "organization.updated".into(),
            data: serde_json::Value::Null,
            occurred_at: "2026-12-01T00:00:00Z".into(),
        };
        Entry {
            detail,
            json: "x".repeat(bytes),
            record: format!("{org}-{sequence}"),
        }
    }

    #[test]
    fn a_call_takes_the_first_pending_entry_of_each_organization() {
        let pending = vec![
            entry(1, 1, 10),
            entry(1, 2, 10),
            entry(2, 1, 10),
            entry(1, 3, 10),
            entry(3, 7, 10),
        ];
        assert_eq!(next_call(&pending), [0, 2, 4]);
    }

    #[test]
    fn a_call_holds_at_most_ten_entries_and_256_kib() {
        let many: Vec<Entry> = (0..25).map(|org| entry(org, 1, 10)).collect();
        assert_eq!(next_call(&many), (0..10).collect::<Vec<_>>());
        let large: Vec<Entry> = (0..5).map(|org| entry(org, 1, 100 * 1024)).collect();
        assert_eq!(next_call(&large), [0, 1]);
    }

    #[test]
    fn partition_keys_name_project_and_organization() {
        let (p, o) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(partition(&shared::keys::org_pk(p, o)), Some((p, o)));
        assert_eq!(partition("P#x#ORG#y"), None);
        assert_eq!(partition(&format!("P#{p}#USER#{o}")), None);
    }
}
