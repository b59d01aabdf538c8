//! The publisher's figures (`make bench`, or `bench publisher` for this
//! section alone): events put per second by one publisher fed from the
//! emulator's table stream, and the lag from a committed write to a
//! subscriber's queue, through the emulator's bus and a rule to SQS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use publisher::stream_source::StreamReader;
use publisher::{Bus, Entry, EventBridge, Publisher};
use shared::store::timeline::{Delivery, TimelineEvent};
use shared::Store;
use uuid::Uuid;

use crate::{percentiles, Percentiles};

/// Organizations written side by side in the throughput runs.
const ORGANIZATIONS: usize = 10;
/// Events per throughput run.
const EVENTS: usize = 1_000;
/// Writes whose lag is measured, one at a time.
const LAG_WRITES: usize = 200;
/// The stream batch (the template's BatchSize).
const BATCH: usize = 100;

/// One throughput run: events through `handle`, batch by batch.
pub struct Run {
    pub label: &'static str,
    pub events: usize,
    pub seconds: f64,
    pub calls: usize,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(f64::EPSILON)
    }

    /// Wall time of `handle` per batch of [`BATCH`] events.
    pub fn seconds_per_batch(&self) -> f64 {
        self.seconds / (self.events as f64 / BATCH as f64).max(1.0)
    }
}

pub struct Figures {
    pub runs: Vec<Run>,
    pub lag: Percentiles,
    pub lag_samples: usize,
}

/// The emulator's bus, counting `PutEvents` calls.
struct Counted {
    bus: EventBridge,
    calls: Arc<AtomicUsize>,
}

impl Bus for Counted {
    async fn put(&self, entries: &[&Entry]) -> Vec<Option<String>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.bus.put(entries).await
    }
}

struct Rig {
    store: Store,
    project: Uuid,
    orgs: Vec<Uuid>,
    publisher: Publisher<Counted>,
    calls: Arc<AtomicUsize>,
    reader: StreamReader,
    sqs: aws_sdk_sqs::Client,
    subscriber: String,
}

fn custom(name: &str) -> TimelineEvent {
    TimelineEvent {
        id: shared::ids::new_id(),
        name: name.into(),
        data: serde_json::from_value(serde_json::json!({"seats": 3, "plan": "pro"}))
            .unwrap_or_default(),
        created_at: shared::ids::now(),
        origin: "custom".into(),
    }
}

/// A table with its stream, organizations in it, a bus with a rule to a
/// subscriber queue, and a publisher onto the bus.
async fn rig() -> Rig {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let table = format!("bench-publisher-{}", Uuid::now_v7().simple());
    shared::provision::create_table_streaming(&db, &table, true)
        .await
        .expect("a table with its stream");
    let store = Store::new(
        db.clone(),
        table.clone(),
        shared::cursor::CursorKey::random().expect("a cursor key"),
    );
    let project = Uuid::now_v7();
    let mut orgs = Vec::new();
    for k in 0..ORGANIZATIONS {
        let made = store
            .create_organization(project, &format!("Org {k}"), Default::default(), None)
            .await
            .expect("an organization");
        orgs.push(made.id);
    }
    let (bus, subscriber) = publisher::stream_source::subscribed_bus(&sdk)
        .await
        .expect("a bus with a subscriber");
    let made = Publisher::new(&sdk, bus, None);
    let calls = Arc::new(AtomicUsize::new(0));
    let publisher = Publisher {
        bus: Counted {
            bus: made.bus,
            calls: calls.clone(),
        },
        sqs: made.sqs,
        failures_queue_url: None,
        retry_pause: made.retry_pause,
    };
    let reader = StreamReader::open(&db, &table)
        .await
        .expect("the table's stream");
    Rig {
        store,
        project,
        orgs,
        publisher,
        calls,
        reader,
        sqs,
        subscriber,
    }
}

impl Rig {
    /// Records `count` events of `orgs`, ten of one organization per
    /// transaction (the processor's batches), the organizations taking turns.
    async fn record(&self, orgs: &[Uuid], count: usize) {
        let events: Vec<TimelineEvent> = (0..count).map(|_| custom("seat.added")).collect();
        for (turn, chunk) in events.chunks(10).enumerate() {
            let org = orgs[turn % orgs.len()];
            let deliveries: Vec<Delivery<'_>> = chunk
                .iter()
                .map(|event| Delivery {
                    project: self.project,
                    org,
                    event,
                })
                .collect();
            let recorded = self.store.record_events(&deliveries).await;
            assert!(recorded.iter().all(|r| r.is_ok()), "{recorded:?}");
        }
    }

    /// Hands what the stream holds to the publisher batch by batch: the
    /// time spent in `handle`, and the events it was handed.
    async fn drain_stream(&mut self) -> (Duration, usize) {
        let batches = self.reader.batches(BATCH).await.expect("the stream");
        let mut took = Duration::ZERO;
        let mut events = 0;
        for batch in batches {
            events += batch.records.iter().filter(|r| is_event(r)).count();
            let started = Instant::now();
            let response = self.publisher.handle(batch).await;
            took += started.elapsed();
            assert!(response.batch_item_failures.is_empty(), "the bus refused");
        }
        (took, events)
    }

    /// Empties the subscriber queue; answers how many messages it held.
    async fn drain_subscriber(&self) -> usize {
        let mut count = 0;
        loop {
            let messages = self.receive(0).await;
            if messages.is_empty() {
                return count;
            }
            count += messages.len();
        }
    }

    /// One receive from the subscriber queue (deleting what it got): the
    /// event ids received.
    async fn receive(&self, wait: i32) -> Vec<Uuid> {
        let got = self
            .sqs
            .receive_message()
            .queue_url(&self.subscriber)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .send()
            .await
            .expect("receiving");
        let mut ids = Vec::new();
        let mut entries = Vec::new();
        for (k, m) in got.messages.unwrap_or_default().into_iter().enumerate() {
            let body: serde_json::Value =
                serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default();
            if let Some(id) = body["detail"]["event_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
            {
                ids.push(id);
            }
            entries.push(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(k.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("a delete entry"),
            );
        }
        if !entries.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.subscriber)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("deleting");
        }
        ids
    }
}

fn is_event(record: &aws_lambda_events::dynamodb::EventRecord) -> bool {
    matches!(publisher::read(record), publisher::Read::Event(_))
}

/// Throughput: `EVENTS` events of `orgs` recorded first, then the stream
/// handed to the publisher and timed.
async fn throughput(rig: &mut Rig, label: &'static str, orgs: usize) -> Run {
    let orgs: Vec<Uuid> = rig.orgs[..orgs].to_vec();
    rig.record(&orgs, EVENTS).await;
    let before = rig.calls.load(Ordering::Relaxed);
    let (took, events) = rig.drain_stream().await;
    let calls = rig.calls.load(Ordering::Relaxed) - before;
    let received = rig.drain_subscriber().await;
    assert_eq!(received, events, "every event reached the subscriber once");
    Run {
        label,
        events,
        seconds: took.as_secs_f64(),
        calls,
    }
}

/// Lag: one write at a time while the stream is handed to the publisher
/// as soon as it has records and the subscriber queue is read; from each
/// write's commit to its receipt.
async fn lag(mut rig: Rig) -> (Percentiles, usize) {
    let rig_store = rig.store.clone();
    let (project, orgs) = (rig.project, rig.orgs.clone());
    let written: Arc<tokio::sync::Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let writer = {
        let written = written.clone();
        tokio::spawn(async move {
            for k in 0..LAG_WRITES {
                let event = custom("seat.added");
                let recorded = rig_store
                    .record_events(&[Delivery {
                        project,
                        org: orgs[k % orgs.len()],
                        event: &event,
                    }])
                    .await;
                assert!(recorded[0].is_ok(), "{recorded:?}");
                written.lock().await.insert(event.id, Instant::now());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut received: HashMap<Uuid, Instant> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while received.len() < LAG_WRITES && Instant::now() < deadline {
        let batch = rig.reader.next(BATCH).await.expect("the stream");
        let idle = batch.records.is_empty();
        if !idle {
            let response = rig.publisher.handle(batch).await;
            assert!(response.batch_item_failures.is_empty(), "the bus refused");
        }
        let got = rig.receive(0).await;
        for id in &got {
            received.entry(*id).or_insert_with(Instant::now);
        }
        if idle && got.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    writer.await.expect("the writer");
    let written = written.lock().await;
    let samples: Vec<Duration> = received
        .iter()
        .filter_map(|(id, at)| Some(at.saturating_duration_since(*written.get(id)?)))
        .collect();
    let count = samples.len();
    (percentiles(samples), count)
}

pub async fn measure() -> Figures {
    let mut rig = rig().await;
    // The stream holds the organizations' creations: published first.
    rig.drain_stream().await;
    rig.drain_subscriber().await;
    let mut runs = Vec::new();
    runs.push(throughput(&mut rig, "10 organizations taking turns", ORGANIZATIONS).await);
    runs.push(throughput(&mut rig, "one organization", 1).await);
    let (lag, lag_samples) = lag(rig).await;
    Figures {
        runs,
        lag,
        lag_samples,
    }
}
