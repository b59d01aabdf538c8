//! Every timeline event's `sequence`: its place among its organization's
//! events, given in the transaction that records it — one more than the
//! last, whichever family, the processor or the scheduler writes it, and
//! whichever writes race (what the publisher orders the feed by).

use axum::http::{Method, StatusCode};
use integration_tests::aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::events::{self, timeline};
use integration_tests::{call, project, state_with_bucket};
use serde_json::json;
use shared::domain::event;
use shared::store::timeline::{Delivery, Recorded, TimelineEvent};
use shared::AppState;
use uuid::Uuid;

/// The organization's events as the table holds them, in timeline order:
/// (name, sequence).
async fn numbered(state: &AppState, project: Uuid, org: Uuid) -> Vec<(String, u64)> {
    timeline(state, project, org)
        .await
        .into_iter()
        .map(|r| {
            let sequence = r
                .sequence
                .unwrap_or_else(|| panic!("{} has no sequence", r.event.name));
            (r.event.name, sequence)
        })
        .collect()
}

/// The organization's sequence item: the last number given.
async fn last_given(state: &AppState, project: Uuid, org: Uuid) -> u64 {
    let out = state
        .aws
        .dynamodb
        .get_item()
        .table_name(&state.config.table)
        .key("PK", AttributeValue::S(shared::keys::org_pk(project, org)))
        .key(
            "SK",
            AttributeValue::S(shared::keys::EVENT_SEQUENCE_SK.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("reading the sequence");
    out.item
        .and_then(|i| {
            i.get("n")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The numbers are 1…n, each once, and the sequence item says n.
async fn assert_gap_free(state: &AppState, project: Uuid, org: Uuid) -> Vec<(String, u64)> {
    let events = numbered(state, project, org).await;
    let mut numbers: Vec<u64> = events.iter().map(|(_, n)| *n).collect();
    numbers.sort_unstable();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(numbers, expected, "{events:?}");
    assert_eq!(last_given(state, project, org).await, events.len() as u64);
    events
}

fn custom(name: &str) -> TimelineEvent {
    events::custom(name, json!({}))
}

#[tokio::test]
async fn every_family_the_processor_and_a_deletion_number_events_one_after_another() {
    let state = state_with_bucket(None).await;
    let p = project(&state).await;
    // A session's creation (`organization.created` and its owner's
    // `organization.user.added` in one transaction, 1 and 2), then a
    // change through every family.
    let org = events::changed_through_every_family(&state, &p, "Seq").await;
    // A client's event, alone and in a processor batch (twice: the
    // redelivered one takes no number).
    let alone = custom("seq.alone");
    assert_eq!(
        state
            .store
            .record_event(p.project_id, org, &alone)
            .await
            .unwrap(),
        Recorded::Recorded
    );
    let batch: Vec<TimelineEvent> = (0..5).map(|_| custom("seq.batch")).collect();
    let deliveries: Vec<Delivery<'_>> = batch
        .iter()
        .chain(std::iter::once(&batch[0]))
        .map(|event| Delivery {
            project: p.project_id,
            org,
            event,
        })
        .collect();
    let verdicts = state.store.record_events(&deliveries).await;
    assert!(verdicts.iter().all(|v| v.is_ok()), "{verdicts:?}");
    let again = state.store.record_events(&deliveries[..2]).await;
    assert!(
        again.iter().all(|v| matches!(v, Ok(Recorded::Duplicate))),
        "{again:?}"
    );
    events::delete_through_accounts(&state, &p, org).await;

    let events = assert_gap_free(&state, p.project_id, org).await;
    // Written one after another: timeline order is number order.
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let mut by_number = events.clone();
    by_number.sort_by_key(|(_, n)| *n);
    assert_eq!(
        by_number
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        names
    );
    assert_eq!(
        names[..2],
        [event::ORGANIZATION_CREATED, event::MEMBER_ADDED]
    );
    assert_eq!(names.last(), Some(&event::ORGANIZATION_DELETED));
    for name in [
        event::ORGANIZATION_UPDATED,
        event::MEMBER_REMOVED,
        "seq.alone",
        "seq.batch",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_eq!(names.iter().filter(|n| **n == "seq.batch").count(), 5);
}

#[tokio::test]
async fn racing_writes_to_one_organization_never_share_or_skip_a_number() {
    let state = state_with_bucket(None).await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let tenant = tenant::router(state.clone());
    let made = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(r#"{"identifier": [{"external_id": "raced"}], "name": "Raced"}"#),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    let org: Uuid = made.body["id"].as_str().unwrap().parse().unwrap();
    // Settings through the tenant family, members through the client
    // family and clients' events through the store, all at once; a writer
    // told to retry (409/503) retries, as clients do.
    const WRITERS: usize = 8;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (state, client, tenant) = (state.clone(), client.clone(), tenant.clone());
        let (key, project) = (p.secret_key.clone(), p.project_id);
        writers.spawn(async move {
            for round in 0..3 {
                let (router, method, path, body) = match w % 3 {
                    0 => (
                        &tenant,
                        Method::PUT,
                        format!("/v2/organization/{org}/settings/s{w}_{round}"),
                        json!(round),
                    ),
                    1 => (
                        &client,
                        Method::POST,
                        "/api/client/organizations/users".to_owned(),
                        json!({
                            "organization": {"identifier": [{"external_id": "raced"}]},
                            "user": {"identifier": [{"external_id": format!("u{w}-{round}")}]},
                        }),
                    ),
                    _ => {
                        // The processor's batched path (its group retried
                        // when another write numbered first).
                        let event = custom("raced.custom");
                        let delivery = [Delivery {
                            project,
                            org,
                            event: &event,
                        }];
                        let mut tries = 0;
                        while !matches!(
                            state.store.record_events(&delivery).await[..],
                            [Ok(Recorded::Recorded)]
                        ) {
                            tries += 1;
                            assert!(tries < 20, "an event that never got through");
                        }
                        continue;
                    }
                };
                let mut tries = 0;
                loop {
                    let answer = call(
                        router,
                        method.clone(),
                        &path,
                        Some(&key),
                        Some(&body.to_string()),
                    )
                    .await;
                    if answer.status.is_success() {
                        break;
                    }
                    assert!(
                        matches!(
                            answer.status,
                            StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE
                        ),
                        "{path}: {:?}",
                        answer.body
                    );
                    tries += 1;
                    assert!(tries < 20, "{path} never got through");
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a writer");
    }
    let events = assert_gap_free(&state, p.project_id, org).await;
    // The creation, then 3 writes by each of the 8 writers.
    assert_eq!(events.len(), 1 + WRITERS * 3, "{events:?}");
}
