//! The events processor: recorded once, failures reported per message.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use integration_tests::{count_kind, project, state};
use serde_json::json;
use shared::events::QueuedEvent;

fn message(id: &str, body: String) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.into());
    message.body = Some(body);
    message
}

#[tokio::test]
async fn redelivery_records_an_event_once_and_bad_messages_fail_alone() {
    let state = state().await;
    let p = project(&state).await;
    let event = QueuedEvent {
        id: shared::ids::new_id(),
        project_id: p.project_id,
        organization_id: shared::ids::new_id(),
        name: "subscription_upgraded".into(),
        data: json!({"seats": 100}).as_object().cloned().unwrap(),
        created_at: shared::ids::now(),
    };
    let body = serde_json::to_string(&event).unwrap();
    let mut batch = SqsEvent::default();
    batch.records = vec![
        message("m1", body.clone()),
        message("m2", "not json".into()),
        message("m3", body),
    ];
    let response = processor::handle(&state, batch).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec!["m2".to_owned()]);
    assert_eq!(count_kind(&state, p.project_id, "EVT#").await, 1);
    let counters = integration_tests::project_items(&state, p.project_id).await;
    let counter = counters
        .iter()
        .find(|i| {
            i["SK"]
                .as_s()
                .is_ok_and(|sk| sk.starts_with("CNT#subscription_upgraded#"))
        })
        .expect("a day counter");
    assert_eq!(counter["count"].as_n().unwrap(), "1");
}
