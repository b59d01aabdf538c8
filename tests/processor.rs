//! Organization events end to end: intake through the client router into a
//! real (emulated) SQS queue, the processor, the timeline read.

use axum::http::{Method, StatusCode};
use integration_tests::{
    call, count_kind, delete_messages, project, project_items, receive_all, sqs_event,
    state_with_queue,
};
use serde_json::{json, Value};
use shared::AppState;

const ORGS: &str = "/api/client/organizations";
const EVENTS: &str = "/api/client/organizations/events";

fn queue(state: &AppState) -> String {
    state.config.events_queue_url.clone().unwrap()
}

async fn org(router: &axum::Router, key: &str, ext: &str, data: Value) -> String {
    let body = json!({"identifier": [{"external_id": ext}], "data": data}).to_string();
    let created = call(router, Method::POST, ORGS, Some(key), Some(&body)).await;
    assert_eq!(created.status, StatusCode::OK);
    created.body["id"].as_str().unwrap().to_owned()
}

/// Custom events in a project's timelines (system events excluded).
async fn custom_events(state: &AppState, project: uuid::Uuid) -> Vec<String> {
    project_items(state, project)
        .await
        .iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|sk| sk.starts_with("EVT#")))
        .filter(|i| i["origin"].as_s().is_ok_and(|o| o == "custom"))
        .map(|i| i["PK"].as_s().unwrap().clone())
        .collect()
}

/// Drains the queue through the processor like the event source would.
async fn drain(state: &AppState, times: usize) {
    let url = queue(state);
    loop {
        let messages = receive_all(state, &url, 30).await;
        if messages.is_empty() {
            return;
        }
        for chunk in messages.chunks(10) {
            for _ in 0..times {
                let response = processor::handle(state, sqs_event(chunk)).await;
                assert!(response.batch_item_failures.is_empty());
            }
        }
        delete_messages(state, &url, &messages).await;
    }
}

#[tokio::test]
async fn seed_000_event_is_queued_processed_and_in_the_timeline() {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let id = org(&router, &p.publishable_key, "acme_inc", json!({})).await;
    let posted = call(
        &router,
        Method::POST,
        EVENTS,
        Some(&p.publishable_key),
        Some(
            &json!([
                {"identifier": [{"external_id": "acme_inc"}], "name": "subscription_upgraded",
                 "data": {"previous_plan": "pro", "new_plan": "enterprise", "seats": 100}}
            ])
            .to_string(),
        ),
    )
    .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{:?}", posted.body);
    assert_eq!(posted.body["accepted"], 1);
    let event_id = posted.body["events"][0]["id"].clone();
    assert!(
        custom_events(&state, p.project_id).await.is_empty(),
        "asynchronous: nothing recorded before processing"
    );
    drain(&state, 1).await;

    let path = format!("/v1/organizations/{id}/events");
    let timeline = call(
        &accounts::router(state.clone()),
        Method::GET,
        &path,
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(timeline.status, StatusCode::OK, "{:?}", timeline.body);
    let names: Vec<&str> = timeline.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["organization.created", "subscription_upgraded"],
        "oldest first"
    );
    assert_eq!(timeline.body["items"][1]["id"], event_id);
    assert_eq!(timeline.body["items"][1]["data"]["seats"], 100);
    let only = call(
        &accounts::router(state.clone()),
        Method::GET,
        &format!("{path}?name=subscription_upgraded"),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(only.body["items"].as_array().unwrap().len(), 1);
    // Secret key only; unknown organizations are 404.
    assert_eq!(
        call(
            &accounts::router(state.clone()),
            Method::GET,
            &path,
            Some(&p.publishable_key),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let unknown = format!("/v1/organizations/{}/events", uuid::Uuid::now_v7());
    assert_eq!(
        call(
            &accounts::router(state.clone()),
            Method::GET,
            &unknown,
            Some(&p.secret_key),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &accounts::router(state.clone()),
            Method::GET,
            "/v1/organizations/nope/events",
            Some(&p.secret_key),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_thousand_events_seen_twice_each_are_recorded_exactly_once() {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    org(&router, &p.secret_key, "a", json!({})).await;
    org(&router, &p.secret_key, "b", json!({})).await;
    // Ten requests of 100, each drained before the next: the emulator's
    // SQS receive slows down with the queue's length; AWS's does not.
    for request in 0..10 {
        let events: Vec<Value> = (0..100)
            .map(|i| json!({"identifier": [{"external_id": if i % 2 == 0 { "a" } else { "b" }}], "name": "tick", "data": {"n": request * 100 + i}}))
            .collect();
        let body = Value::Array(events).to_string();
        let posted = call(
            &router,
            Method::POST,
            EVENTS,
            Some(&p.secret_key),
            Some(&body),
        )
        .await;
        assert_eq!(posted.status, StatusCode::ACCEPTED);
        assert_eq!(posted.body["accepted"], 100);
        drain(&state, 2).await;
    }
    assert_eq!(custom_events(&state, p.project_id).await.len(), 1000);
    let counters: u64 = project_items(&state, p.project_id)
        .await
        .iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|sk| sk.starts_with("CNT#tick#")))
        .map(|i| i["count"].as_n().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counters, 1000, "day counters count each event once");
}

#[tokio::test]
async fn match_fans_out_to_exactly_the_matching_organizations() {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let other = project(&state).await;
    let router = client::router(state.clone());
    let ent_tech = org(
        &router,
        &p.secret_key,
        "a",
        json!({"plan": "enterprise", "industry": "tech", "seats": 10}),
    )
    .await;
    let ent_retail = org(
        &router,
        &p.secret_key,
        "b",
        json!({"plan": "enterprise", "industry": "retail", "seats": 10}),
    )
    .await;
    org(
        &router,
        &p.secret_key,
        "c",
        json!({"plan": "free", "industry": "tech", "seats": 10}),
    )
    .await;
    org(
        &router,
        &other.secret_key,
        "d",
        json!({"plan": "enterprise", "industry": "tech", "seats": 10}),
    )
    .await;
    let posted = call(
        &router,
        Method::POST,
        EVENTS,
        Some(&p.secret_key),
        Some(
            &json!([
                {"match": {"plan": "enterprise", "seats": 10}, "name": "price_change"},
                {"match": {"plan": "enterprise", "industry": "tech"}, "name": "tech_news"}
            ])
            .to_string(),
        ),
    )
    .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED);
    drain(&state, 1).await;
    let mut got = custom_events(&state, p.project_id).await;
    got.sort();
    let mut expected: Vec<String> = [&ent_tech, &ent_retail, &ent_tech]
        .iter()
        .map(|id| format!("P#{}#ORG#{id}", p.project_id))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    assert!(
        custom_events(&state, other.project_id).await.is_empty(),
        "never another project's organizations"
    );
}

#[tokio::test]
async fn bad_event_requests_queue_nothing() {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    org(&router, &p.secret_key, "a", json!({})).await;
    let cases = [
        (json!([]), StatusCode::BAD_REQUEST),
        (json!({"name": "x"}), StatusCode::BAD_REQUEST),
        (json!([{"name": "x"}]), StatusCode::BAD_REQUEST),
        (
            json!([{"identifier": [{"external_id": "a"}], "match": {"plan": "x"}, "name": "x"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"identifier": [{"external_id": "a"}]}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"identifier": [{"external_id": "a"}], "name": "organization.updated"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"identifier": [{"external_id": "a"}], "name": "ok"}, {"identifier": [{"external_id": "missing"}], "name": "ok"}]),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (body, status) in cases {
        let answer = call(
            &router,
            Method::POST,
            EVENTS,
            Some(&p.secret_key),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(answer.status, status, "{body}: {:?}", answer.body);
    }
    assert!(
        receive_all(&state, &queue(&state), 0).await.is_empty(),
        "nothing was queued"
    );
}

#[tokio::test]
async fn one_failing_message_is_retried_alone_and_poison_reaches_the_dlq_and_replays() {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    org(&router, &p.secret_key, "a", json!({})).await;
    let url = queue(&state);
    let good = json!([{"identifier": [{"external_id": "a"}], "name": "good"}]).to_string();
    call(
        &router,
        Method::POST,
        EVENTS,
        Some(&p.secret_key),
        Some(&good),
    )
    .await;
    state
        .aws
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body("poison")
        .send()
        .await
        .unwrap();

    // First delivery: only the poison message is reported failed.
    let messages = receive_all(&state, &url, 0).await;
    assert_eq!(messages.len(), 2);
    let response = processor::handle(&state, sqs_event(&messages)).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    let poison = messages
        .iter()
        .find(|m| m.body.as_deref() == Some("poison"))
        .unwrap();
    assert_eq!(failed, vec![poison.message_id.clone().unwrap()]);
    let done: Vec<_> = messages
        .iter()
        .filter(|m| m.body.as_deref() != Some("poison"))
        .cloned()
        .collect();
    delete_messages(&state, &url, &done).await;

    // Redelivered until maxReceiveCount, then it is dead-lettered.
    for _ in 0..shared::provision::EVENTS_QUEUE.max_receive_count + 1 {
        let again = receive_all(&state, &url, 0).await;
        if again.is_empty() {
            break;
        }
        let response = processor::handle(&state, sqs_event(&again)).await;
        assert_eq!(response.batch_item_failures.len(), again.len());
    }
    assert!(receive_all(&state, &url, 0).await.is_empty());
    let dlq = shared::events::dead_letter_queue_url(&state.aws.sqs, &url)
        .await
        .unwrap();
    assert_eq!(
        receive_all(&state, &dlq, 0).await.len(),
        1,
        "the poison message is in the DLQ"
    );

    let replayed = shared::events::replay_dead_letters(&state.aws.sqs, &url)
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    let back = receive_all(&state, &url, 30).await;
    assert_eq!(
        back.iter()
            .map(|m| m.body.clone().unwrap())
            .collect::<Vec<_>>(),
        ["poison"]
    );
    assert_eq!(custom_events(&state, p.project_id).await.len(), 1);
}

#[tokio::test]
async fn an_event_for_a_deleted_organization_writes_nothing() {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    org(&router, &p.secret_key, "a", json!({})).await;
    let posted = call(
        &router,
        Method::POST,
        EVENTS,
        Some(&p.secret_key),
        Some(&json!([{"identifier": [{"external_id": "a"}], "name": "late"}]).to_string()),
    )
    .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED);
    let deleted = call(
        &router,
        Method::DELETE,
        ORGS,
        Some(&p.secret_key),
        Some(r#"{"identifier":[{"external_id":"a"}]}"#),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    drain(&state, 1).await;
    assert!(custom_events(&state, p.project_id).await.is_empty());
    assert_eq!(count_kind(&state, p.project_id, "CNT#late").await, 0);
}

#[tokio::test]
async fn the_timeline_pages_with_cursors_bound_to_the_project() {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let other = project(&state).await;
    let router = client::router(state.clone());
    let id = org(&router, &p.secret_key, "a", json!({"n": 0})).await;
    for n in 1..=4 {
        let body = json!({"identifier": [{"external_id": "a"}], "data": {"n": n}}).to_string();
        call(
            &router,
            Method::POST,
            ORGS,
            Some(&p.secret_key),
            Some(&body),
        )
        .await;
    }
    let path = format!("/v1/organizations/{id}/events");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=2&cursor={c}"),
            None => format!("{path}?limit=2"),
        };
        let page = call(
            &accounts::router(state.clone()),
            Method::GET,
            &url,
            Some(&p.secret_key),
            None,
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page.body["pagination"]["next_cursor"].as_str() {
            Some(next) => {
                let stolen = call(
                    &accounts::router(state.clone()),
                    Method::GET,
                    &format!("{path}?cursor={next}"),
                    Some(&other.secret_key),
                    None,
                )
                .await;
                assert!(stolen.status.is_client_error());
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "every event exactly once");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "oldest first");
    for bad in ["limit=0", "limit=101", "limit=x", "cursor=garbage"] {
        let answer = call(
            &accounts::router(state.clone()),
            Method::GET,
            &format!("{path}?{bad}"),
            Some(&p.secret_key),
            None,
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// A queued event as the intake would write it, for batches built by hand.
fn message(id: &str, event: Value) -> aws_lambda_events::sqs::SqsMessage {
    let mut message = aws_lambda_events::sqs::SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.body = Some(event.to_string());
    message
}

#[tokio::test]
async fn a_mixed_batch_is_one_transaction_and_settles_every_message_on_its_own() {
    let (state, log) = integration_tests::logged_state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let a = org(&router, &p.secret_key, "a", json!({"plan": "pro"})).await;
    let b = org(&router, &p.secret_key, "b", json!({"plan": "pro"})).await;
    let gone = org(&router, &p.secret_key, "gone", json!({})).await;
    let deleted = call(
        &router,
        Method::DELETE,
        ORGS,
        Some(&p.secret_key),
        Some(r#"{"identifier":[{"external_id":"gone"}]}"#),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let project_id = p.project_id.to_string();
    let event = |org: Option<&str>, name: &str| {
        let mut event = json!({"id": uuid::Uuid::now_v7(), "project_id": project_id, "name": name, "created_at": "2026-11-23T10:00:00Z"});
        match org {
            Some(org) => event["organization_id"] = json!(org),
            None => event["match"] = json!({"plan": "pro"}),
        }
        event
    };
    let earlier = event(Some(&a), "seat");
    let once = event(Some(&a), "seat");
    let mut first = aws_lambda_events::sqs::SqsEvent::default();
    first.records = vec![message("earlier", earlier.clone())];
    assert!(processor::handle(&state, first)
        .await
        .batch_item_failures
        .is_empty());

    let mut batch = aws_lambda_events::sqs::SqsEvent::default();
    batch.records = vec![
        message("redelivered", earlier),
        message("once", once.clone()),
        message("same-counter", event(Some(&a), "seat")),
        message("other-org", event(Some(&b), "seat")),
        message("org-gone", event(Some(&gone), "seat")),
        message("twice-in-batch", once),
        message("fan-out", event(None, "upgrade")),
        {
            let mut poison = message("poison", json!({}));
            poison.body = Some("not json".into());
            poison
        },
    ];
    log.take();
    let response = processor::handle(&state, batch).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["poison"], "only the unreadable message fails");
    let transactions = log
        .take()
        .iter()
        .filter(|op| *op == "TransactWriteItems")
        .count();
    assert_eq!(
        transactions, 2,
        "one transaction, and one retry without the settled duplicate and orphan"
    );

    let timelines = custom_events(&state, p.project_id).await;
    let in_timeline = |org: &str| {
        timelines
            .iter()
            .filter(|pk| pk.ends_with(&format!("#ORG#{org}")))
            .count()
    };
    assert_eq!(in_timeline(&a), 4, "earlier, once, same-counter, fan-out");
    assert_eq!(in_timeline(&b), 2, "other-org, fan-out");
    assert_eq!(in_timeline(&gone), 0);
    let items = project_items(&state, p.project_id).await;
    let count = |org: &str, name: &str| -> u64 {
        items
            .iter()
            .filter(|i| {
                i["PK"]
                    .as_s()
                    .is_ok_and(|pk| pk.ends_with(&format!("#ORG#{org}")))
            })
            .filter(|i| {
                i["SK"]
                    .as_s()
                    .is_ok_and(|sk| *sk == format!("CNT#{name}#2026-11-23"))
            })
            .map(|i| i["count"].as_n().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(count(&a, "seat"), 3, "each of a's seat events counted once");
    assert_eq!(count(&b, "seat"), 1);
    assert_eq!(count(&a, "upgrade"), 1);
    assert_eq!(count(&b, "upgrade"), 1);
    assert_eq!(count(&gone, "seat"), 0);
}

/// Drains the queue through the processor with `match` steps of `step`
/// organizations, handing each batch over `times` times (a redelivered
/// step); returns how many messages were handled (each once).
async fn drain_in_steps(state: &AppState, step: usize, times: usize) -> usize {
    let url = queue(state);
    let mut handled = 0;
    loop {
        let messages = receive_all(state, &url, 30).await;
        if messages.is_empty() {
            return handled;
        }
        for chunk in messages.chunks(10) {
            for _ in 0..times {
                let response = processor::handle_with(state, sqs_event(chunk), step).await;
                assert!(response.batch_item_failures.is_empty());
            }
        }
        handled += messages.len();
        delete_messages(state, &url, &messages).await;
    }
}

#[tokio::test]
async fn a_match_fans_out_in_steps_and_records_each_match_once_and_queues_each_step_once_even_when_a_step_is_redelivered(
) {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let mut matching = Vec::new();
    for i in 0..7 {
        let tier = if i % 2 == 0 { "gold" } else { "silver" };
        let id = org(
            &router,
            &p.secret_key,
            &format!("o{i}"),
            json!({"tier": tier}),
        )
        .await;
        if tier == "gold" {
            matching.push(format!("P#{}#ORG#{id}", p.project_id));
        }
    }
    let posted = call(
        &router,
        Method::POST,
        EVENTS,
        Some(&p.secret_key),
        Some(&json!([{"match": {"tier": "gold"}, "name": "gold_news"}]).to_string()),
    )
    .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED);
    // Steps of 2 over 7 organizations: 4 steps, each handed over twice,
    // and each queues its next step once (a second chain would walk the
    // rest again, and double at each redelivery).
    let handled = drain_in_steps(&state, 2, 2).await;
    assert_eq!(handled, 4, "the fan-out ran in 4 steps, each queued once");
    let mut got = custom_events(&state, p.project_id).await;
    got.sort();
    matching.sort();
    assert_eq!(got, matching, "every matching organization once, no other");
}

#[tokio::test]
async fn one_fan_out_step_reads_the_same_at_two_project_sizes() {
    let base = state_with_queue().await;
    let (state, meter) = integration_tests::reads::metered(&base);
    let router = client::router(base.clone());
    let mut reads = Vec::new();
    for size in [6, 18] {
        let p = project(&state).await;
        for i in 0..size {
            org(
                &router,
                &p.secret_key,
                &format!("o{i}"),
                json!({"tier": "gold"}),
            )
            .await;
        }
        let queued = json!({"id": uuid::Uuid::now_v7(), "project_id": p.project_id, "match": {"tier": "gold"}, "name": "gold_news", "created_at": "2026-11-23T10:00:00Z"});
        let mut first = aws_lambda_events::sqs::SqsEvent::default();
        first.records = vec![message("step", queued)];
        meter.take();
        let response = processor::handle_with(&state, first, 3).await;
        assert!(response.batch_item_failures.is_empty());
        reads.push(meter.take());
        assert_eq!(
            custom_events(&state, p.project_id).await.len(),
            3,
            "one step records its page's matches"
        );
    }
    assert_eq!(reads[0].items, reads[1].items, "{reads:?}");
    assert!(
        reads[0].items <= 6,
        "a step reads about its page: {reads:?}"
    );
}

/// A next step whose send failed (or whose step died before marking it
/// sent) is queued again by the redelivery; one marked sent is not.
#[tokio::test]
async fn a_next_step_is_claimed_again_until_it_is_marked_sent() {
    let state = state_with_queue().await;
    let (project, event, after) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    let claim = || state.store.claim_next_step(project, event, after);
    assert!(claim().await.unwrap(), "the first delivery sends it");
    assert!(
        claim().await.unwrap(),
        "not sent yet: the next delivery sends it"
    );
    state
        .store
        .next_step_sent(project, event, after)
        .await
        .unwrap();
    assert!(!claim().await.unwrap(), "sent: a redelivery sends nothing");
    let other = uuid::Uuid::now_v7();
    assert!(
        state
            .store
            .claim_next_step(project, event, other)
            .await
            .unwrap(),
        "another step of the chain is its own"
    );
}
