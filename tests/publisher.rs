//! Events out: changes made through the routers and the processor, read
//! back from the emulator's table stream as Lambda's event source would
//! hand them to the publisher, put on an EventBridge bus of the emulator,
//! and received from the SQS queue a rule on that bus feeds — a
//! subscriber's view.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use aws_lambda_events::dynamodb::Event;
use integration_tests::aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::events;
use integration_tests::{project, state_with_bucket};
use publisher::stream_source::StreamReader;
use publisher::{Bus, Detail, Entry, EventBridge, Publisher};
use serde_json::{json, Value};
use shared::domain::event;
use shared::store::timeline::{Delivery, TimelineEvent};
use shared::AppState;
use uuid::Uuid;

/// A bus of the emulator with a rule feeding every event to a queue, and
/// a failure queue: what the template makes, plus a subscriber.
struct Feed {
    publisher: Publisher<Refusing>,
    subscriber: String,
    failures: String,
    reader: StreamReader,
}

/// The emulator's bus, refusing chosen entries (by event id) as many times
/// as asked and putting the rest; it logs what it put, in order.
struct Refusing {
    bus: EventBridge,
    refuse: Mutex<HashMap<Uuid, u32>>,
    put: Mutex<Vec<Detail>>,
}

impl Bus for Refusing {
    async fn put(&self, entries: &[&Entry]) -> Vec<Option<String>> {
        let refused: Vec<bool> = {
            let mut refuse = self.refuse.lock().unwrap();
            entries
                .iter()
                .map(|e| match refuse.get_mut(&e.detail.event_id) {
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        true
                    }
                    _ => false,
                })
                .collect()
        };
        let sent: Vec<&Entry> = entries
            .iter()
            .zip(&refused)
            .filter(|(_, r)| !**r)
            .map(|(e, _)| *e)
            .collect();
        let mut answers = self.bus.put(&sent).await.into_iter();
        let mut log = self.put.lock().unwrap();
        entries
            .iter()
            .zip(refused)
            .map(|(e, refused)| {
                if refused {
                    return Some("InternalFailure: refused by the test".into());
                }
                let answer = answers.next().flatten();
                if answer.is_none() {
                    log.push(e.detail.clone());
                }
                answer
            })
            .collect()
    }
}

async fn queue(state: &AppState, name: &str) -> String {
    state
        .aws
        .sqs
        .create_queue()
        .queue_name(format!("{name}-{}", Uuid::now_v7().simple()))
        .send()
        .await
        .expect("a queue")
        .queue_url
        .expect("its url")
}

async fn feed(state: &AppState) -> Feed {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let (name, subscriber) = publisher::stream_source::subscribed_bus(&sdk)
        .await
        .expect("a bus with a subscriber");
    let failures = queue(state, "publish-failures").await;
    // The publisher as its Lambda makes it (its calls are recorded for the
    // least-privilege check), its bus wrapped to refuse chosen entries.
    let made = Publisher::new(&sdk, name, Some(failures.clone()));
    Feed {
        publisher: Publisher {
            bus: Refusing {
                bus: made.bus,
                refuse: Mutex::default(),
                put: Mutex::default(),
            },
            sqs: made.sqs,
            failures_queue_url: made.failures_queue_url,
            retry_pause: std::time::Duration::from_millis(1),
        },
        subscriber,
        failures,
        reader: StreamReader::open(&state.aws.dynamodb, &state.config.table)
            .await
            .expect("the table's stream"),
    }
}

/// Every message on the queue, in the order the queue gives them, as JSON.
async fn drain(state: &AppState, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let got = state
            .aws
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receiving");
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("a JSON body"));
            state
                .aws
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("deleting");
        }
    }
}

impl Feed {
    /// Hands the stream to the publisher batch by batch, as the event
    /// source would: a batch that reports a failure is delivered again from
    /// the record it names (`again` times at most). Answers the failures.
    async fn run(&mut self, batch: usize) -> Vec<String> {
        let mut failures = Vec::new();
        for event in self.reader.batches(batch).await.expect("the stream") {
            let mut records = event.records;
            for _ in 0..3 {
                let mut delivered = Event::default();
                delivered.records = records.clone();
                let response = self.publisher.handle(delivered).await;
                let Some(first) = response.batch_item_failures.first() else {
                    break;
                };
                let from = first.item_identifier.clone().unwrap_or_default();
                failures.push(from.clone());
                let at = records
                    .iter()
                    .position(|r| r.change.sequence_number.as_deref() == Some(from.as_str()))
                    .expect("a failure names a record of the batch");
                records = records.split_off(at);
            }
        }
        failures
    }
}

/// The organization's timeline as the table holds it: event id → (name,
/// sequence, data).
async fn timeline(
    state: &AppState,
    project: Uuid,
    org: Uuid,
) -> HashMap<Uuid, (String, u64, Value)> {
    events::timeline(state, project, org)
        .await
        .into_iter()
        .map(|r| {
            let data = serde_json::to_value(&r.event.data).unwrap();
            (
                r.event.id,
                (r.event.name, r.sequence.expect("a sequence"), data),
            )
        })
        .collect()
}

fn custom(name: &str) -> TimelineEvent {
    events::custom(name, json!({"n": 1}))
}

#[tokio::test]
async fn a_change_through_each_family_reaches_the_subscriber_once_with_its_payload_and_sequence() {
    let state = state_with_bucket(None).await;
    let mut feed = feed(&state).await;
    let p = project(&state).await;
    let org = events::changed_through_every_family(&state, &p, "Feed").await;
    let id = org.to_string();
    let posted = custom("feed.custom");
    let recorded = state
        .store
        .record_events(&[Delivery {
            project: p.project_id,
            org,
            event: &posted,
        }])
        .await;
    assert!(recorded[0].is_ok(), "{recorded:?}");
    events::delete_through_accounts(&state, &p, org).await;

    assert_eq!(feed.run(100).await, Vec::<String>::new(), "no batch failed");
    let received = drain(&state, &feed.subscriber).await;
    let recorded = timeline(&state, p.project_id, org).await;
    assert_eq!(
        received.len(),
        recorded.len(),
        "each event once: {received:#?}"
    );
    let mut seen = HashSet::new();
    let mut sequences = Vec::new();
    for message in &received {
        assert_eq!(message["source"], "organizations");
        let detail: Detail = serde_json::from_value(message["detail"].clone()).expect("a detail");
        assert_eq!(message["detail-type"], detail.name.as_str());
        assert_eq!(
            (detail.project_id, detail.organization_id),
            (p.project_id, org)
        );
        assert!(seen.insert(detail.event_id), "{} twice", detail.event_id);
        let (name, sequence, data) = &recorded[&detail.event_id];
        assert_eq!(
            (&detail.name, detail.sequence, &detail.data),
            (name, *sequence, data)
        );
        sequences.push(detail.sequence);
    }
    assert_eq!(
        sequences,
        (1..=recorded.len() as u64).collect::<Vec<_>>(),
        "in sequence order"
    );
    let names: Vec<&str> = received
        .iter()
        .filter_map(|m| m["detail-type"].as_str())
        .collect();
    for name in [
        event::ORGANIZATION_CREATED,
        event::MEMBER_ADDED,
        event::ORGANIZATION_UPDATED,
        event::MEMBER_REMOVED,
        "feed.custom",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let last = received.last().unwrap();
    assert_eq!(last["detail-type"], event::ORGANIZATION_DELETED);
    assert_eq!(last["detail"]["data"]["id"], id.as_str(), "{last}");
    assert!(drain(&state, &feed.failures).await.is_empty());
}

#[tokio::test]
async fn five_hundred_changes_to_one_organization_arrive_in_sequence_order() {
    let state = state_with_bucket(None).await;
    let mut feed = feed(&state).await;
    let p = project(&state).await;
    let org = events::organizations(&state, p.project_id, &["Busy"]).await[0];
    let events: Vec<TimelineEvent> = (0..500).map(|_| custom("busy.tick")).collect();
    for chunk in events.chunks(10) {
        let deliveries: Vec<Delivery<'_>> = chunk
            .iter()
            .map(|event| Delivery {
                project: p.project_id,
                org,
                event,
            })
            .collect();
        assert!(state
            .store
            .record_events(&deliveries)
            .await
            .iter()
            .all(|v| v.is_ok()));
    }
    assert!(feed.run(100).await.is_empty());
    let received = drain(&state, &feed.subscriber).await;
    let sequences: Vec<u64> = received
        .iter()
        .map(|m| m["detail"]["sequence"].as_u64().expect("a sequence"))
        .collect();
    assert_eq!(sequences, (1..=501).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_refused_entry_is_retried_before_its_organizations_later_events_and_nothing_is_lost() {
    let state = state_with_bucket(None).await;
    let mut feed = feed(&state).await;
    let p = project(&state).await;
    let orgs = events::organizations(&state, p.project_id, &["A", "B"]).await;
    // Interleaved: A1 B1 A2 B2 … (each org's creation is its event 1).
    let events: Vec<(Uuid, TimelineEvent)> =
        (0..20).map(|k| (orgs[k % 2], custom("tick"))).collect();
    for (org, event) in &events {
        let recorded = state
            .store
            .record_events(&[Delivery {
                project: p.project_id,
                org: *org,
                event,
            }])
            .await;
        assert!(recorded[0].is_ok());
    }
    // A's third tick is refused twice (within the publisher's tries); B's
    // fifth so often that the batch goes back to Lambda once.
    let a3 = events
        .iter()
        .filter(|(o, _)| *o == orgs[0])
        .nth(2)
        .unwrap()
        .1
        .id;
    let b5 = events
        .iter()
        .filter(|(o, _)| *o == orgs[1])
        .nth(4)
        .unwrap()
        .1
        .id;
    feed.publisher
        .bus
        .refuse
        .lock()
        .unwrap()
        .extend([(a3, 2), (b5, publisher::MAX_TRIES)]);
    let failures = feed.run(100).await;
    assert_eq!(failures.len(), 1, "the batch came back once: {failures:?}");
    // What reached the bus: each organization's events in sequence order,
    // every one of them (a redelivered batch puts some twice).
    let put = feed.publisher.bus.put.lock().unwrap().clone();
    for org in &orgs {
        let mut first_seen = Vec::new();
        for detail in put.iter().filter(|d| d.organization_id == *org) {
            if !first_seen.contains(&detail.sequence) {
                assert_eq!(
                    detail.sequence,
                    first_seen.len() as u64 + 1,
                    "{org}: {put:?}"
                );
                first_seen.push(detail.sequence);
            }
        }
        assert_eq!(first_seen.len(), 11, "{org}: its creation and 10 ticks");
    }
    let received = drain(&state, &feed.subscriber).await;
    let ids: HashSet<&str> = received
        .iter()
        .filter_map(|m| m["detail"]["event_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 22, "every event reached the subscriber");
}

#[tokio::test]
async fn a_record_that_cannot_be_published_goes_to_the_failure_queue_and_the_rest_flow() {
    let state = state_with_bucket(None).await;
    let mut feed = feed(&state).await;
    let p = project(&state).await;
    let org = events::organizations(&state, p.project_id, &["Poisoned"]).await[0];
    // A timeline item no writer of this service makes (no sequence, no
    // name): what a hand-made or foreign write would leave.
    let poison = Uuid::now_v7();
    state
        .aws
        .dynamodb
        .put_item()
        .table_name(&state.config.table)
        .item(
            "PK",
            AttributeValue::S(shared::keys::org_pk(p.project_id, org)),
        )
        .item("SK", AttributeValue::S(shared::keys::event_sk(poison)))
        .item("id", AttributeValue::S(poison.to_string()))
        .send()
        .await
        .expect("a foreign item");
    let after = custom("after.poison");
    assert!(state
        .store
        .record_events(&[Delivery {
            project: p.project_id,
            org,
            event: &after
        }])
        .await[0]
        .is_ok());
    assert!(feed.run(100).await.is_empty(), "no batch held back");
    let failed = drain(&state, &feed.failures).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]["why"]
            .as_str()
            .unwrap()
            .contains("not a timeline event"),
        "{}",
        failed[0]
    );
    assert_eq!(
        failed[0]["record"]["dynamodb"]["Keys"]["SK"]["S"],
        shared::keys::event_sk(poison)
    );
    let names: Vec<String> = drain(&state, &feed.subscriber)
        .await
        .iter()
        .filter_map(|m| m["detail-type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, [event::ORGANIZATION_CREATED, "after.poison"]);
}

/// Records `n` custom events for the organization, one delivery each.
async fn ticks(state: &AppState, project: Uuid, org: Uuid, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let event = custom("tick");
        let recorded = state
            .store
            .record_events(&[Delivery {
                project,
                org,
                event: &event,
            }])
            .await;
        assert!(recorded[0].is_ok());
        ids.push(event.id);
    }
    ids
}

/// Unix milliseconds now, between two events' milliseconds.
async fn instant() -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let at = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    at as u64
}

#[tokio::test]
async fn a_replay_republishes_the_timelines_in_sequence_order_with_their_ids() {
    let state = state_with_bucket(None).await;
    let mut feed = feed(&state).await;
    let p = project(&state).await;
    let orgs = events::organizations(&state, p.project_id, &["Long", "Short"]).await;
    // Long's timeline spans three pages of a replay's reads.
    ticks(&state, p.project_id, orgs[0], 150).await;
    ticks(&state, p.project_id, orgs[1], 3).await;
    let since = instant().await;
    let late = ticks(&state, p.project_id, orgs[0], 110).await;
    ticks(&state, p.project_id, orgs[1], 2).await;
    assert!(feed.run(100).await.is_empty());
    let published: HashMap<String, Value> = drain(&state, &feed.subscriber)
        .await
        .into_iter()
        .map(|m| {
            (
                m["detail"]["event_id"].as_str().unwrap().to_owned(),
                m["detail"].clone(),
            )
        })
        .collect();
    assert_eq!(published.len(), 2 + 260 + 5);

    // The project since the beginning: every event again, the stream's
    // detail exactly, each organization's in sequence order.
    feed.publisher.bus.put.lock().unwrap().clear();
    let replayed = feed
        .publisher
        .replay(&state.store, p.project_id, None, 0)
        .await
        .expect("a replay");
    assert_eq!(
        (
            replayed.organizations,
            replayed.published,
            replayed.unnumbered
        ),
        (2, 267, 0)
    );
    let again = drain(&state, &feed.subscriber).await;
    assert_eq!(again.len(), 267, "each event once");
    for message in &again {
        let id = message["detail"]["event_id"].as_str().unwrap();
        assert_eq!(
            message["detail"], published[id],
            "as the stream published it"
        );
        assert_eq!(message["source"], "organizations");
        assert_eq!(message["detail-type"], message["detail"]["name"]);
    }
    let put = feed.publisher.bus.put.lock().unwrap().clone();
    for (org, count) in [(orgs[0], 261), (orgs[1], 6)] {
        let sequences: Vec<u64> = put
            .iter()
            .filter(|d| d.organization_id == org)
            .map(|d| d.sequence)
            .collect();
        assert_eq!(sequences, (1..=count).collect::<Vec<u64>>(), "{org}");
    }

    // One organization since a time: only its events recorded from then.
    feed.publisher.bus.put.lock().unwrap().clear();
    let replayed = feed
        .publisher
        .replay(&state.store, p.project_id, Some(orgs[0]), since)
        .await
        .expect("a replay");
    assert_eq!((replayed.organizations, replayed.published), (1, 110));
    let ids: Vec<Uuid> = drain(&state, &feed.subscriber)
        .await
        .iter()
        .map(|m| m["detail"]["event_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>(),
        late.iter().collect::<HashSet<_>>()
    );

    // A refused event stops the replay, naming it; its organization's
    // later events were not put (the others' may have been).
    let stuck = late[40];
    feed.publisher.bus.put.lock().unwrap().clear();
    feed.publisher
        .bus
        .refuse
        .lock()
        .unwrap()
        .insert(stuck, publisher::MAX_TRIES);
    let refused = feed
        .publisher
        .replay(&state.store, p.project_id, None, since)
        .await
        .expect_err("the bus refused an event past the tries");
    assert!(
        refused.to_string().contains(&stuck.to_string()),
        "{refused}"
    );
    let put: Vec<Uuid> = feed
        .publisher
        .bus
        .put
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.organization_id == orgs[0])
        .map(|d| d.event_id)
        .collect();
    assert_eq!(
        put,
        late[..40],
        "Long's events before the refused one, in order"
    );
}

#[tokio::test]
async fn a_replay_passes_over_events_it_cannot_place_and_reads_a_deleted_organization() {
    let state = state_with_bucket(None).await;
    let feed = feed(&state).await;
    let p = project(&state).await;
    let org = events::organizations(&state, p.project_id, &["Old"]).await[0];
    // An event recorded before events were numbered, and a foreign item.
    let pk = AttributeValue::S(shared::keys::org_pk(p.project_id, org));
    let old = Uuid::now_v7();
    let foreign = Uuid::now_v7();
    for (id, name) in [(old, Some("organization.updated")), (foreign, None)] {
        let mut put = state
            .aws
            .dynamodb
            .put_item()
            .table_name(&state.config.table)
            .item("PK", pk.clone())
            .item("SK", AttributeValue::S(shared::keys::event_sk(id)))
            .item("id", AttributeValue::S(id.to_string()))
            .item("created_at", AttributeValue::S(shared::ids::now()));
        if let Some(name) = name {
            put = put.item("name", AttributeValue::S(name.into()));
        }
        put.send().await.expect("an old item");
    }
    ticks(&state, p.project_id, org, 2).await;
    events::delete_through_accounts(&state, &p, org).await;
    let replayed = feed
        .publisher
        .replay(&state.store, p.project_id, Some(org), 0)
        .await
        .expect("a replay");
    assert_eq!(
        (replayed.published, replayed.unnumbered, replayed.unreadable),
        (4, 1, 1),
        "created, 2 ticks, deleted; the old and the foreign item passed over"
    );
    let names: Vec<String> = drain(&state, &feed.subscriber)
        .await
        .iter()
        .filter_map(|m| m["detail-type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some(event::ORGANIZATION_DELETED),
        "{names:?}"
    );
}
