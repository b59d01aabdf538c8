//! `Idempotency-Key` on POST: a retry with the same key and body answers
//! the first response and writes nothing; another body is 422; a failed
//! request frees the key; keys never cross callers; concurrent retries make
//! one write.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use integration_tests::{project, project_items, state};
use serde_json::Value;

struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

async fn post(router: &axum::Router, path: &str, key: &str, idem: &str, body: &str) -> Answer {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("idempotency-key", idem)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let answer = integration_tests::send(router, request).await;
    Answer {
        status: answer.status,
        replayed: answer.headers.contains_key("idempotent-replayed"),
        body: answer.body,
    }
}

async fn organizations(state: &shared::AppState, project: uuid::Uuid) -> usize {
    project_items(state, project)
        .await
        .iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|sk| sk == "ORG"))
        .count()
}

#[tokio::test]
async fn a_retry_answers_the_first_response_and_writes_nothing() {
    let state = state().await;
    let p = project(&state).await;
    let router = accounts::router(state.clone());
    let first = post(
        &router,
        "/v1/organizations",
        &p.secret_key,
        "create-1",
        r#"{"name": "Acme"}"#,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert!(!first.replayed);
    let items = project_items(&state, p.project_id).await.len();
    let again = post(
        &router,
        "/v1/organizations",
        &p.secret_key,
        "create-1",
        r#"{"name": "Acme"}"#,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.replayed, "the stored response");
    assert_eq!(again.body, first.body);
    assert_eq!(
        project_items(&state, p.project_id).await.len(),
        items,
        "nothing written again"
    );
    assert_eq!(organizations(&state, p.project_id).await, 1);

    // The same key with another body is refused, and changes nothing.
    let other = post(
        &router,
        "/v1/organizations",
        &p.secret_key,
        "create-1",
        r#"{"name": "Other"}"#,
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        other.body
    );
    assert_eq!(organizations(&state, p.project_id).await, 1);

    // A new key is a new request.
    let second = post(
        &router,
        "/v1/organizations",
        &p.secret_key,
        "create-2",
        r#"{"name": "Acme"}"#,
    )
    .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_ne!(second.body["id"], first.body["id"]);
}

#[tokio::test]
async fn a_failed_request_frees_its_key_and_keys_never_cross_callers() {
    let state = state().await;
    let p = project(&state).await;
    let q = project(&state).await;
    let router = client::router(state.clone());
    let path = "/api/client/organizations";
    let bad = post(&router, path, &p.secret_key, "k", r#"{"identifier": []}"#).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let body = r#"{"identifier": [{"external_id": "acme"}], "data": {"plan": "pro"}}"#;
    let good = post(&router, path, &p.secret_key, "k", body).await;
    assert_eq!(
        good.status,
        StatusCode::OK,
        "the failed attempt did not keep the key: {:?}",
        good.body
    );
    assert!(!good.replayed);
    // Another project using the same key and body gets its own organization.
    let theirs = post(&router, path, &q.secret_key, "k", body).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(!theirs.replayed, "never another caller's response");
    assert_ne!(theirs.body["id"], good.body["id"]);
    assert_eq!(theirs.body["project_id"], q.project_id.to_string());
    // So does another key of the same project (keys are per credential).
    let key2 = state
        .store
        .create_key(p.project_id, shared::auth::KeyKind::Secret)
        .await
        .unwrap();
    let mine = post(&router, path, &key2.key, "k", body).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(!mine.replayed);
    let long = "x".repeat(256);
    let refused = post(&router, path, &p.secret_key, &long, body).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn concurrent_retries_make_one_write() {
    let state = state().await;
    let p = project(&state).await;
    let router = accounts::router(state.clone());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (router, key) = (router.clone(), p.secret_key.clone());
            tokio::spawn(async move {
                post(
                    &router,
                    "/v1/organizations",
                    &key,
                    "burst",
                    r#"{"name": "Burst"}"#,
                )
                .await
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::OK => {
                ids.insert(answer.body["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {:?}", answer.body),
        }
    }
    assert_eq!(ids.len(), 1, "every success is the one organization");
    assert_eq!(organizations(&state, p.project_id).await, 1);
}
