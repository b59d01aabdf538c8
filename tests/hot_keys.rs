//! Writes that all land in one project at once. Every organization create
//! and delete also adds to the project's organization count; DynamoDB
//! cancels a transaction that meets another one in flight on an item
//! (`TransactionConflict`), which the emulator models (infra/local/
//! emulator.py), so a single count item would turn concurrent creates
//! into failures. Each request here must end 2xx, or 409 with
//! `x-should-retry: true` that the caller then retries to success; and the
//! count the lists report must be exact.

use std::collections::HashSet;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::Router;
use integration_tests::{call, project, state, Exchange};
use serde_json::json;
use shared::error::SHOULD_RETRY;

const CONCURRENT: usize = 200;

/// Times a caller sends a request that was answered "busy, retry".
const CALLER_ATTEMPTS: usize = 10;

/// What a caller the service told to retry does: sends the same request
/// again, a moment later. Any 5xx, or a 4xx not marked as passing by
/// itself, fails the test. Returns the final answer and the retries.
async fn until_done(
    router: &Router,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> (Exchange, usize) {
    for attempt in 0..CALLER_ATTEMPTS {
        let answer = call(router, method.clone(), path, Some(key), body).await;
        if answer.status.is_success() {
            return (answer, attempt);
        }
        let retry = answer
            .headers
            .get(SHOULD_RETRY)
            .and_then(|v| v.to_str().ok());
        assert!(
            answer.status == StatusCode::CONFLICT && retry == Some("true"),
            "{method} {path}: {} (x-should-retry {retry:?}): {:?}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(20 * (attempt as u64 + 1))).await;
    }
    panic!("{method} {path} was still busy after {CALLER_ATTEMPTS} attempts");
}

/// The project's organization count as both list families report it.
async fn reported_counts(accounts: &Router, crm: &Router, key: &str) -> (u64, u64) {
    let listed = call(
        accounts,
        Method::GET,
        "/v1/organizations?limit=1",
        Some(key),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let crm_listed = call(crm, Method::GET, "/organizations?page=1", Some(key), None).await;
    assert_eq!(crm_listed.status, StatusCode::OK, "{:?}", crm_listed.body);
    (
        listed.body["pagination"]["total_count"]
            .as_u64()
            .expect("a total_count"),
        crm_listed.body["totalItems"]
            .as_u64()
            .expect("a totalItems"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_creates_then_deletes_in_one_project_keep_an_exact_count() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let accounts = accounts::router(state.clone());
    let crm = crm::router(state.clone());

    // Half through the client family's upsert, half through /v1's create.
    let creates = (0..CONCURRENT).map(|i| {
        let (client, accounts, key) = (client.clone(), accounts.clone(), p.secret_key.clone());
        tokio::spawn(async move {
            let (answer, retries) = if i % 2 == 0 {
                let body = json!({"identifier": [{"external_id": format!("org-{i}")}]});
                until_done(
                    &client,
                    Method::POST,
                    "/api/client/organizations",
                    &key,
                    Some(&body.to_string()),
                )
                .await
            } else {
                let body = json!({"name": format!("Org {i}")});
                until_done(
                    &accounts,
                    Method::POST,
                    "/v1/organizations",
                    &key,
                    Some(&body.to_string()),
                )
                .await
            };
            let id = answer.body["id"].as_str().expect("an id").to_owned();
            (i, id, retries)
        })
    });
    // Spawned all at once (an iterator's tasks would start one by one).
    let creates: Vec<_> = creates.collect();
    let mut created = Vec::new();
    let mut retried = 0;
    for create in creates {
        let (i, id, retries) = create.await.expect("the create task");
        retried += retries;
        created.push((i, id));
    }
    let ids: HashSet<&str> = created.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        ids.len(),
        CONCURRENT,
        "every create made its own organization"
    );
    assert_eq!(
        reported_counts(&accounts, &crm, &p.secret_key).await,
        (CONCURRENT as u64, CONCURRENT as u64),
        "after {CONCURRENT} creates ({retried} retried by the caller)"
    );

    // Half through the client family (by identifier), half through /v1.
    let deletes = created.into_iter().map(|(i, id)| {
        let (client, accounts, key) = (client.clone(), accounts.clone(), p.secret_key.clone());
        tokio::spawn(async move {
            if i % 2 == 0 {
                let body = json!({"identifier": [{"external_id": format!("org-{i}")}]});
                until_done(
                    &client,
                    Method::DELETE,
                    "/api/client/organizations",
                    &key,
                    Some(&body.to_string()),
                )
                .await
                .1
            } else {
                let path = format!("/v1/organizations/{id}");
                until_done(&accounts, Method::DELETE, &path, &key, None)
                    .await
                    .1
            }
        })
    });
    let deletes: Vec<_> = deletes.collect();
    let mut retried = 0;
    for delete in deletes {
        retried += delete.await.expect("the delete task");
    }
    assert_eq!(
        reported_counts(&accounts, &crm, &p.secret_key).await,
        (0, 0),
        "after {CONCURRENT} deletes ({retried} retried by the caller)"
    );
}
