//! DynamoDB round trips per client operation, counted at the SDK: an upsert
//! is one transaction plus the identifier read (and the key check), and
//! nothing scans.

use axum::http::Method;
use integration_tests::{call, logged_state, project};
use serde_json::json;

const PATH: &str = "/api/client/organizations";

#[tokio::test]
async fn upsert_and_delete_use_the_fewest_round_trips() {
    let (state, log) = logged_state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let body = |data: serde_json::Value| {
        json!({"identifier": [{"external_id": "acme"}], "data": data}).to_string()
    };
    log.take();

    call(
        &router,
        Method::POST,
        PATH,
        Some(&p.secret_key),
        Some(&body(json!({"plan": "free"}))),
    )
    .await;
    assert_eq!(
        log.take(),
        ["GetItem", "BatchGetItem", "TransactWriteItems"],
        "create: key, markers, one transaction"
    );

    call(
        &router,
        Method::POST,
        PATH,
        Some(&p.secret_key),
        Some(&body(json!({"plan": "pro"}))),
    )
    .await;
    assert_eq!(
        log.take(),
        ["GetItem", "BatchGetItem", "TransactWriteItems"],
        "warm update: markers and record in one read, then one transaction"
    );

    call(
        &router,
        Method::POST,
        PATH,
        Some(&p.secret_key),
        Some(&body(json!({"plan": "pro"}))),
    )
    .await;
    assert_eq!(
        log.take(),
        ["GetItem", "BatchGetItem"],
        "an upsert that changes nothing writes nothing"
    );

    // A container that has not seen the identifier reads the record (with
    // its event sequence) once more.
    let cold = client::router(shared::AppState::new(
        state.config.clone(),
        state.aws.clone(),
    ));
    call(
        &cold,
        Method::POST,
        PATH,
        Some(&p.secret_key),
        Some(&body(json!({"plan": "team"}))),
    )
    .await;
    assert_eq!(
        log.take(),
        [
            "GetItem",
            "BatchGetItem",
            "BatchGetItem",
            "TransactWriteItems"
        ]
    );

    call(
        &router,
        Method::DELETE,
        PATH,
        Some(&p.secret_key),
        Some(&body(json!({}))),
    )
    .await;
    let delete = log.take();
    assert_eq!(
        delete,
        [
            "GetItem",
            "BatchGetItem",
            "BatchGetItem",
            "TransactWriteItems"
        ],
        "delete: key, markers, the record with its event sequence, one transaction of a fixed size"
    );
    assert!(!delete.iter().any(|op| op == "Scan"));
}

#[tokio::test]
async fn session_feature_settings_read_the_document_in_the_membership_batch() {
    let (state, log) = logged_state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let tenant = tenant::router(state.clone());
    let made = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&integration_tests::session_token(&p, "ann", None)),
        Some(r#"{"name": "Ann's"}"#),
    )
    .await;
    let org = made.body["id"].as_str().unwrap().to_owned();
    let token = integration_tests::session_token(&p, "ann", Some(&org));
    let path = "/v2/organization/feature-settings";
    let document = |version: &str| -> shared::domain::features::FeatureDocument {
        serde_json::from_value(serde_json::json!({"version": version, "feature_flags": []}))
            .unwrap()
    };
    state
        .store
        .put_feature_document(p.project_id, &document("1.0.0"))
        .await
        .unwrap();
    // The first request teaches this container the user's id and the
    // document's revision.
    call(&tenant, Method::GET, path, Some(&token), None).await;
    log.take();
    let answer = call(&tenant, Method::GET, path, Some(&token), None).await;
    assert_eq!(
        answer.status,
        axum::http::StatusCode::OK,
        "{:?}",
        answer.body
    );
    assert_eq!(
        log.take(),
        ["GetItem", "BatchGetItem", "Query"],
        "the token's project (local signing secret); marker, membership and the document's revision; the record and its settings"
    );
    // A new revision: the document is read once more, on the next request.
    state
        .store
        .put_feature_document(p.project_id, &document("2.0.0"))
        .await
        .unwrap();
    log.take();
    let changed = call(&tenant, Method::GET, path, Some(&token), None).await;
    assert_eq!(changed.body["version"], "2.0.0", "{:?}", changed.body);
    assert_eq!(
        log.take(),
        ["GetItem", "BatchGetItem", "GetItem", "Query"],
        "the revision changed: the document, then the record and its settings"
    );
}
