//! POST/DELETE /api/client/organizations through the client router, against
//! the emulator.

use axum::http::{Method, StatusCode};
use integration_tests::{call, count_kind, count_sk, project, project_items, state, Exchange};
use serde_json::{json, Value};

const PATH: &str = "/api/client/organizations";

async fn upsert(router: &axum::Router, key: &str, body: Value) -> Exchange {
    call(
        router,
        Method::POST,
        PATH,
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn seed_000_shallow_merge_keeps_unmentioned_keys_and_name() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());

    let first = upsert(
        &router,
        &p.publishable_key,
        json!({
            "identifier": [{"external_id": "acme_inc"}],
            "name": "Acme Inc",
            "data": {"plan": "free", "region": "north_america"}
        }),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(
        first.body["data"],
        json!({"plan": "free", "region": "north_america"})
    );
    assert_eq!(first.body["version"], 1);
    assert_eq!(first.body["project_id"], json!(p.project_id));
    assert_eq!(first.body["identifier"][0]["source"], "default");
    assert_eq!(first.body["identifier"][0]["external_id"], "acme_inc");
    let id = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);

    let second = upsert(
        &router,
        &p.publishable_key,
        json!({
            "identifier": [{"externalId": "acme_inc"}],
            "data": {"plan": "enterprise", "arr": 120000}
        }),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    assert_eq!(second.body["id"], id.as_str());
    assert_eq!(second.body["name"], "Acme Inc", "name is kept when omitted");
    assert_eq!(
        second.body["data"],
        json!({"plan": "enterprise", "region": "north_america", "arr": 120000})
    );
    assert_eq!(second.body["version"], 2);
    assert_eq!(count_sk(&state, p.project_id, "ORG").await, 1);
    assert_eq!(
        count_kind(&state, p.project_id, "EVT#").await,
        2,
        "created + updated events"
    );
}

#[tokio::test]
async fn nested_objects_are_replaced_and_null_removes_a_key() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    upsert(&router, &p.secret_key, json!({
        "identifier": [{"external_id": "acme_inc"}],
        "data": {"features": ["sso", "audit_log"], "billing": {"cycle": "annual", "currency": "USD"}, "csm": "ann"}
    })).await;
    let updated = upsert(
        &router,
        &p.secret_key,
        json!({
            "identifier": [{"external_id": "acme_inc"}],
            "data": {"billing": {"cycle": "monthly"}, "csm": null}
        }),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        updated.body["data"],
        json!({"features": ["sso", "audit_log"], "billing": {"cycle": "monthly"}})
    );
}

#[tokio::test]
async fn an_upsert_that_changes_nothing_writes_nothing() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let body =
        json!({"identifier": [{"external_id": "same"}], "name": "Same", "data": {"plan": "free"}});
    upsert(&router, &p.secret_key, body.clone()).await;
    let before = project_items(&state, p.project_id).await.len();
    let again = upsert(&router, &p.secret_key, body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["version"], 1);
    assert_eq!(project_items(&state, p.project_id).await.len(), before);
}

#[tokio::test]
async fn identifiers_with_other_sources_are_distinct_and_can_be_attached() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let a = upsert(
        &router,
        &p.secret_key,
        json!({"identifier": [{"external_id": "x"}]}),
    )
    .await;
    let b = upsert(
        &router,
        &p.secret_key,
        json!({"identifier": [{"external_id": "x", "source": "stripe"}]}),
    )
    .await;
    assert_ne!(a.body["id"], b.body["id"]);
    // Attaching a new identifier to a known organization.
    let attached = upsert(&router, &p.secret_key, json!({
        "identifier": [{"external_id": "x"}, {"externalId": "cus_1", "source": "crm", "metadata": {"k": 1}}]
    })).await;
    assert_eq!(attached.status, StatusCode::OK);
    assert_eq!(attached.body["id"], a.body["id"]);
    assert_eq!(attached.body["identifier"].as_array().unwrap().len(), 2);
    let by_new = upsert(
        &router,
        &p.secret_key,
        json!({"identifier": [{"externalId": "cus_1", "source": "crm"}], "name": "X"}),
    )
    .await;
    assert_eq!(by_new.body["id"], a.body["id"]);
}

#[tokio::test]
async fn identifiers_of_two_organizations_conflict_and_write_nothing() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    upsert(
        &router,
        &p.secret_key,
        json!({"identifier": [{"external_id": "a"}]}),
    )
    .await;
    upsert(
        &router,
        &p.secret_key,
        json!({"identifier": [{"external_id": "b"}]}),
    )
    .await;
    let before = project_items(&state, p.project_id).await;
    let conflict = upsert(
        &router,
        &p.secret_key,
        json!({
            "identifier": [{"external_id": "a"}, {"external_id": "b"}], "data": {"plan": "x"}
        }),
    )
    .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(
        conflict.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(conflict.body["status"], 409);
    assert!(conflict.body["title"].is_string() && conflict.body["detail"].is_string());
    assert_eq!(project_items(&state, p.project_id).await, before);
}

#[tokio::test]
async fn fifty_concurrent_upserts_of_a_new_identifier_make_one_organization() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let calls = (0..50).map(|i| {
        let router = router.clone();
        let key = p.secret_key.clone();
        tokio::spawn(async move {
            upsert(
                &router,
                &key,
                json!({"identifier": [{"external_id": "race"}], "data": {format!("k{i}"): i}}),
            )
            .await
        })
    });
    let mut ids = std::collections::HashSet::new();
    let mut acknowledged = 0;
    // Spawned all at once (an iterator's tasks would start one by one).
    for call in calls.collect::<Vec<_>>() {
        let exchange = call.await.unwrap();
        // A writer that keeps losing the race is told so (409) after its
        // retries; it is never silently dropped.
        match exchange.status {
            StatusCode::OK => {
                acknowledged += 1;
                ids.insert(exchange.body["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {:?}", exchange.body),
        }
    }
    assert!(acknowledged >= 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(count_sk(&state, p.project_id, "ORG").await, 1);
    assert_eq!(count_sk(&state, p.project_id, "ORGID").await, 1);
    // No lost update: every acknowledged writer's key is in the merged
    // data, and only theirs.
    let last = upsert(
        &router,
        &p.secret_key,
        json!({"identifier": [{"external_id": "race"}]}),
    )
    .await;
    assert_eq!(
        last.body["data"].as_object().unwrap().len(),
        acknowledged,
        "{:?}",
        last.body["data"]
    );
    assert_eq!(last.body["version"], acknowledged);
}

#[tokio::test]
async fn another_projects_key_cannot_touch_the_organization() {
    let state = state().await;
    let a = project(&state).await;
    let b = project(&state).await;
    let router = client::router(state.clone());
    let mine = upsert(
        &router,
        &a.secret_key,
        json!({"identifier": [{"external_id": "acme"}], "data": {"plan": "free"}}),
    )
    .await;
    let deleted = call(
        &router,
        Method::DELETE,
        PATH,
        Some(&b.secret_key),
        Some(r#"{"identifier":[{"external_id":"acme"}]}"#),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NOT_FOUND);
    let theirs = upsert(
        &router,
        &b.secret_key,
        json!({"identifier": [{"external_id": "acme"}], "data": {"plan": "hacked"}}),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_ne!(theirs.body["id"], mine.body["id"]);
    assert_eq!(theirs.body["project_id"], json!(b.project_id));
    let still = upsert(
        &router,
        &a.secret_key,
        json!({"identifier": [{"external_id": "acme"}]}),
    )
    .await;
    assert_eq!(still.body["data"], json!({"plan": "free"}));
    assert_eq!(still.body["version"], 1);
}

#[tokio::test]
async fn bad_input_is_a_4xx_problem_and_writes_nothing() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let cases: &[(&str, StatusCode)] = &[
        ("{not json", StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
        ("[]", StatusCode::BAD_REQUEST),
        (r#"{"name":"no identifier"}"#, StatusCode::BAD_REQUEST),
        (r#"{"identifier":[]}"#, StatusCode::BAD_REQUEST),
        (r#"{"identifier":"acme"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"identifier":[{"external_id":""}]}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"identifier":[{"external_id":5}]}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"identifier":[{"source":"x"}]}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"identifier":[{"external_id":"a","source":""}]}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"identifier":[{"external_id":"a"}],"data":"plan"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"identifier":[{"external_id":"a"}],"data":[1]}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"identifier":[{"external_id":"a"}],"name":7}"#,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, expected) in cases {
        let exchange = call(&router, Method::POST, PATH, Some(&p.secret_key), Some(body)).await;
        assert_eq!(
            exchange.status, *expected,
            "body {body}: {:?}",
            exchange.body
        );
        assert_eq!(
            exchange.content_type.as_deref(),
            Some("application/problem+json"),
            "body {body}"
        );
        assert!(
            exchange.body["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "body {body}"
        );
    }
    let long = json!({"identifier": [{"external_id": "x".repeat(256)}]}).to_string();
    assert_eq!(
        call(
            &router,
            Method::POST,
            PATH,
            Some(&p.secret_key),
            Some(&long)
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    let huge =
        json!({"identifier": [{"external_id": "a"}], "data": {"blob": "x".repeat(300 * 1024)}})
            .to_string();
    assert_eq!(
        call(
            &router,
            Method::POST,
            PATH,
            Some(&p.secret_key),
            Some(&huge)
        )
        .await
        .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let big_data =
        json!({"identifier": [{"external_id": "a"}], "data": {"blob": "x".repeat(40 * 1024)}})
            .to_string();
    assert_eq!(
        call(
            &router,
            Method::POST,
            PATH,
            Some(&p.secret_key),
            Some(&big_data)
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert!(project_items(&state, p.project_id).await.is_empty());
}

#[tokio::test]
async fn a_non_json_content_type_is_415() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(PATH)
        .header("authorization", format!("Bearer {}", p.secret_key))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(
            r#"{"identifier":[{"external_id":"a"}]}"#,
        ))
        .unwrap();
    let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn delete_removes_the_organization_and_frees_its_identifiers() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let created = upsert(&router, &p.publishable_key, json!({
        "identifier": [{"external_id": "acme_inc"}, {"external_id": "acme", "source": "crm"}], "data": {"plan": "free"}
    })).await;
    let deleted = call(
        &router,
        Method::DELETE,
        PATH,
        Some(&p.publishable_key),
        Some(r#"{"identifier":[{"externalId":"acme_inc"}]}"#),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(
        integration_tests::count_sk(&state, p.project_id, "ORG").await,
        0,
        "the record is gone"
    );
    // Its markers wait for the purge; its identifiers are free at once.
    let again = call(
        &router,
        Method::DELETE,
        PATH,
        Some(&p.publishable_key),
        Some(r#"{"identifier":[{"external_id":"acme_inc"}]}"#),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let recreated = upsert(
        &router,
        &p.publishable_key,
        json!({"identifier": [{"external_id": "acme", "source": "crm"}]}),
    )
    .await;
    assert_eq!(recreated.status, StatusCode::OK);
    assert_ne!(recreated.body["id"], created.body["id"]);
    let org = created.body["id"].as_str().unwrap().parse().unwrap();
    integration_tests::purge(&state, p.project_id, org).await;
    assert_eq!(
        count_kind(&state, p.project_id, "ORG").await,
        2,
        "the purge released the marker not taken over"
    );
    assert_eq!(recreated.body["data"], json!({}));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let state = state().await;
    let router = client::router(state);
    let missing = call(&router, Method::GET, "/api/client/nothing", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.content_type.as_deref(),
        Some("application/problem+json")
    );
    let method = call(&router, Method::GET, PATH, None, None).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn every_declared_route_is_served() {
    let state = state().await;
    let router = client::router(state);
    for (method, path) in client::ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let exchange = call(&router, method.clone(), path, None, Some("{}")).await;
        // The OpenAPI document is public; everything else asks for a key.
        let expected = if path.ends_with("/openapi.json") {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(exchange.status, expected, "{method} {path} is routed");
    }
}
