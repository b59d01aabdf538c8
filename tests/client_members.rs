//! Members and users through the client router, against the emulator.

use axum::http::{Method, StatusCode};
use integration_tests::{call, count_kind, project, project_items, state, Exchange};
use serde_json::{json, Value};

async fn post(router: &axum::Router, key: &str, path: &str, body: Value) -> Exchange {
    call(
        router,
        Method::POST,
        path,
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

async fn delete(router: &axum::Router, key: &str, path: &str, body: Value) -> Exchange {
    call(
        router,
        Method::DELETE,
        path,
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

const ORGS: &str = "/api/client/organizations";
const MEMBERS: &str = "/api/client/organizations/users";
const USERS: &str = "/api/client/users";

fn timeline_names(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> Vec<String> {
    let mut events: Vec<(String, String)> = items
        .iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|sk| sk.starts_with("EVT#")))
        .map(|i| {
            (
                i["SK"].as_s().unwrap().clone(),
                i["name"].as_s().unwrap().clone(),
            )
        })
        .collect();
    events.sort();
    events.into_iter().map(|(_, name)| name).collect()
}

#[tokio::test]
async fn seed_000_member_add_merge_and_remove_with_their_events() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let org = post(
        &router,
        &p.publishable_key,
        ORGS,
        json!({"identifier": [{"externalId": "acme_inc"}], "name": "Acme"}),
    )
    .await;
    assert_eq!(org.status, StatusCode::OK);

    let added = post(
        &router,
        &p.publishable_key,
        MEMBERS,
        json!({
            "organization": {"identifier": [{"external_id": "acme_inc"}]},
            "user": {"identifier": [{"external_id": "user_123"}]},
            "data": {"role": "admin", "department": "engineering", "joined_org": "2025-01-15"}
        }),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    assert_eq!(added.body["organization_id"], org.body["id"]);
    assert_eq!(
        added.body["data"],
        json!({"role": "admin", "department": "engineering", "joined_org": "2025-01-15"})
    );

    // The unknown user was created.
    let user = post(
        &router,
        &p.publishable_key,
        USERS,
        json!({"identifier": [{"externalId": "user_123"}]}),
    )
    .await;
    assert_eq!(user.body["id"], added.body["user_id"]);

    let merged = post(
        &router,
        &p.publishable_key,
        MEMBERS,
        json!({
            "organization": {"identifier": [{"externalId": "acme_inc"}]},
            "user": {"identifier": [{"externalId": "user_123"}]},
            "data": {"role": "viewer"}
        }),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK);
    assert_eq!(
        merged.body["data"],
        json!({"role": "viewer", "department": "engineering", "joined_org": "2025-01-15"})
    );

    let memberships = state
        .store
        .user_memberships(
            p.project_id,
            user.body["id"].as_str().unwrap().parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        memberships.len(),
        1,
        "the inverted index finds the user's organization"
    );

    let removed = delete(
        &router,
        &p.publishable_key,
        MEMBERS,
        json!({
            "organization": {"identifier": [{"external_id": "acme_inc"}]},
            "user": {"identifier": [{"external_id": "user_123"}]}
        }),
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    let again = delete(
        &router,
        &p.publishable_key,
        MEMBERS,
        json!({
            "organization": {"identifier": [{"external_id": "acme_inc"}]},
            "user": {"identifier": [{"external_id": "user_123"}]}
        }),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let items = project_items(&state, p.project_id).await;
    assert_eq!(
        timeline_names(&items),
        [
            "organization.created",
            "organization.user.added",
            "organization.user.updated",
            "organization.user.removed"
        ]
    );
    assert_eq!(
        count_kind(&state, p.project_id, "MEM#").await,
        0,
        "only the association is gone"
    );
    assert_eq!(
        count_kind(&state, p.project_id, "USER").await,
        2,
        "the user and its identifier stay"
    );
}

#[tokio::test]
async fn membership_needs_a_known_organization_and_writes_nothing_otherwise() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let missing = post(
        &router,
        &p.secret_key,
        MEMBERS,
        json!({
            "organization": {"identifier": [{"external_id": "nope"}]},
            "user": {"identifier": [{"external_id": "u"}]}
        }),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for body in [
        json!({"user": {"identifier": [{"external_id": "u"}]}}),
        json!({"organization": {"identifier": []}, "user": {"identifier": [{"external_id": "u"}]}}),
        json!({"organization": {"identifier": [{"external_id": "o"}]}, "user": {"identifier": [{"external_id": "u"}]}, "data": 3}),
    ] {
        let bad = post(&router, &p.secret_key, MEMBERS, body.clone()).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{body}");
    }
    assert!(project_items(&state, p.project_id).await.is_empty());
}

#[tokio::test]
async fn a_member_of_a_deleted_organization_is_gone_with_it() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let made = post(
        &router,
        &p.secret_key,
        ORGS,
        json!({"identifier": [{"external_id": "o"}]}),
    )
    .await;
    let org: uuid::Uuid = made.body["id"].as_str().unwrap().parse().unwrap();
    for u in ["u1", "u2"] {
        let added = post(&router, &p.secret_key, MEMBERS, json!({
            "organization": {"identifier": [{"external_id": "o"}]}, "user": {"identifier": [{"external_id": u}]}
        })).await;
        assert_eq!(added.status, StatusCode::OK);
    }
    assert_eq!(count_kind(&state, p.project_id, "MEM#").await, 2);
    let deleted = delete(
        &router,
        &p.secret_key,
        ORGS,
        json!({"identifier": [{"external_id": "o"}]}),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // Gone at once for its members; the membership items wait for the
    // purge, which removes them (with their users' counts).
    let readd = post(&router, &p.secret_key, MEMBERS, json!({
        "organization": {"identifier": [{"external_id": "o"}]}, "user": {"identifier": [{"external_id": "u1"}]}
    })).await;
    assert_eq!(readd.status, StatusCode::NOT_FOUND);
    integration_tests::purge(&state, p.project_id, org).await;
    assert_eq!(count_kind(&state, p.project_id, "MEM#").await, 0);
}

#[tokio::test]
async fn users_upsert_with_the_organization_merge_rules() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let first = post(&router, &p.publishable_key, USERS, json!({
        "identifier": [{"external_id": "user_1"}], "data": {"first_name": "Ann", "timezone": "UTC", "prefs": {"a": 1, "b": 2}}
    })).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["identifier"][0]["source"], "default");
    let second = post(&router, &p.publishable_key, USERS, json!({
        "identifier": [{"externalId": "user_1"}], "data": {"timezone": null, "prefs": {"a": 3}, "email": "ann@example.com"}
    })).await;
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(
        second.body["data"],
        json!({"first_name": "Ann", "prefs": {"a": 3}, "email": "ann@example.com"})
    );
    // A user identifier is not an organization identifier.
    let org = post(
        &router,
        &p.publishable_key,
        ORGS,
        json!({"identifier": [{"external_id": "user_1"}]}),
    )
    .await;
    assert_ne!(org.body["id"], first.body["id"]);
    let bad = post(
        &router,
        &p.publishable_key,
        USERS,
        json!({"identifier": [{"external_id": ""}]}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn fifty_parallel_adds_of_one_member_make_one_membership_and_no_lost_update() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    post(
        &router,
        &p.secret_key,
        ORGS,
        json!({"identifier": [{"external_id": "o"}]}),
    )
    .await;
    let calls = (0..50).map(|i| {
        let router = router.clone();
        let key = p.secret_key.clone();
        tokio::spawn(async move {
            // A writer that kept losing the race is told to retry (409,
            // `x-should-retry: true`), and does, as a client would.
            for _ in 0..10 {
                let exchange = post(
                    &router,
                    &key,
                    MEMBERS,
                    json!({
                        "organization": {"identifier": [{"external_id": "o"}]},
                        "user": {"identifier": [{"external_id": "new_user"}]},
                        "data": {format!("k{i}"): i}
                    }),
                )
                .await;
                let retry = exchange.headers.get(shared::error::SHOULD_RETRY);
                if exchange.status != StatusCode::CONFLICT
                    || retry.and_then(|v| v.to_str().ok()) != Some("true")
                {
                    return exchange;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("still told to retry after 10 attempts");
        })
    });
    // Spawned all at once (an iterator's tasks would start one by one).
    for call in calls.collect::<Vec<_>>() {
        let exchange = call.await.unwrap();
        assert_eq!(exchange.status, StatusCode::OK, "{:?}", exchange.body);
    }
    assert_eq!(count_kind(&state, p.project_id, "MEM#").await, 1);
    assert_eq!(
        integration_tests::count_sk(&state, p.project_id, "USER").await,
        1,
        "one user created"
    );
    let last = post(&router, &p.secret_key, MEMBERS, json!({
        "organization": {"identifier": [{"external_id": "o"}]}, "user": {"identifier": [{"external_id": "new_user"}]}
    })).await;
    assert_eq!(last.body["data"].as_object().unwrap().len(), 50);
}
