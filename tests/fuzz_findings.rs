//! What `make fuzz` (schemathesis against the local stack) found, kept as
//! regression tests: each case is a request it sent, and what the service
//! must answer.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use base64::Engine;
use integration_tests::{project, send, state};
use serde_json::json;

/// An API Gateway (HTTP API, payload 2.0) event as AWS sends it: a body
/// that is not UTF-8 arrives base64-encoded.
fn gateway_request(method: &str, path: &str, key: &str, body: &[u8]) -> lambda_http::Request {
    let event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {key}"), "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "example.com",
            "domainPrefix": "example", "requestId": "id", "routeKey": format!("{method} {path}"),
            "stage": "$default", "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 1795000000000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "fuzz"}
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    });
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_value(event).expect("an API Gateway event");
    request.into()
}

#[tokio::test]
async fn bodies_that_are_not_utf8_are_400_problems_in_every_family() {
    let state = state().await;
    let p = project(&state).await;
    let org = uuid::Uuid::now_v7();
    let routers = [
        (
            client::router(state.clone()),
            "POST",
            "/api/client/organizations".to_owned(),
        ),
        (
            client::router(state.clone()),
            "DELETE",
            "/api/client/organizations/users".into(),
        ),
        (
            accounts::router(state.clone()),
            "POST",
            "/v1/organizations".into(),
        ),
        (crm::router(state.clone()), "POST", "/organizations".into()),
        (
            tenant::router(state.clone()),
            "PATCH",
            format!("/v2/organization/{org}"),
        ),
        (
            segments::router(state.clone()),
            "POST",
            "/api/admin/segments/evaluate".into(),
        ),
        (
            cleanup::router(state.clone()),
            "PUT",
            format!("/v2/organization/cleanup/{org}/billing"),
        ),
    ];
    for (router, method, path) in routers {
        let request = gateway_request(method, &path, &p.secret_key, b"\xff\xfe\x0e\xaa\x1c");
        let (parts, body) = request.into_parts();
        let request = axum::http::Request::from_parts(parts, Body::from(body.to_vec()));
        let answer = send(&router, request).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {:?}",
            answer.body
        );
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_schedule_of_empty_strings_is_refused_at_once() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state);
    let body = json!({"data": {}, "identifier": [{"external_id": "0"}], "interval": "",
        "name": "", "scheduled_at": "", "start_at": ""});
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        integration_tests::call(
            &router,
            axum::http::Method::POST,
            "/api/client/organizations/scheduled",
            Some(&p.secret_key),
            Some(&body.to_string()),
        ),
    )
    .await
    .expect("an answer within 10 s");
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
}

#[tokio::test]
async fn malformed_query_strings_and_paths_are_400_problems() {
    let state = state().await;
    let p = project(&state).await;
    let key = Some(p.secret_key.as_str());
    let org = uuid::Uuid::now_v7();
    let cases = [
        (
            accounts::router(state.clone()),
            format!("/v1/organizations/{org}/events?limit=null&limit=null"),
        ),
        (
            accounts::router(state.clone()),
            format!("/v1/organizations/{org}/memberships?limit=1&limit=2"),
        ),
        (
            cleanup::router(state.clone()),
            "/v2/organization/cleanup?limit=null&limit=null".into(),
        ),
        (
            tenant::router(state.clone()),
            "/v2/feature-settings?org_id=a&org_id=b".into(),
        ),
        (
            accounts::router(state.clone()),
            "/v1/organizations/%FF%FE".into(),
        ),
        (
            tenant::router(state.clone()),
            "/v2/organization/%C3%28".into(),
        ),
    ];
    for (router, path) in cases {
        let answer =
            integration_tests::call(&router, axum::http::Method::GET, &path, key, None).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {:?}",
            answer.body
        );
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json"),
            "{path}"
        );
    }
}

/// DynamoDB refuses a number beyond its range (magnitude 1e-130 to 1e126)
/// and fails the whole write; moto stored it and then could not read the
/// project's organizations back. Such numbers are refused on the way in.
#[tokio::test]
async fn numbers_dynamodb_cannot_store_are_refused_and_nothing_is_written() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let tenant = tenant::router(state.clone());
    for number in ["1e-200", "-3.5e130", "1e126"] {
        let body = format!(
            r#"{{"identifier": [{{"external_id": "n"}}], "data": {{"x": [{{"y": {number}}}]}}}}"#
        );
        let answer = integration_tests::call(
            &client,
            axum::http::Method::POST,
            "/api/client/organizations",
            Some(&p.secret_key),
            Some(&body),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{number}: {:?}",
            answer.body
        );
        assert!(
            answer.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(number),
            "{:?}",
            answer.body
        );
    }
    assert!(
        integration_tests::project_items(&state, p.project_id)
            .await
            .is_empty(),
        "nothing written"
    );
    let created = integration_tests::call(
        &client,
        axum::http::Method::POST,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(
            r#"{"identifier": [{"external_id": "n"}], "data": {"small": 1e-130, "big": 9.9e125}}"#,
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let org = created.body["id"].as_str().unwrap();
    let setting = integration_tests::call(
        &tenant,
        axum::http::Method::PUT,
        &format!("/v2/organization/{org}/settings/limit"),
        Some(&p.secret_key),
        Some("5e-324"),
    )
    .await;
    assert_eq!(
        setting.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        setting.body
    );
    let listed = integration_tests::call(
        &accounts::router(state.clone()),
        axum::http::Method::GET,
        "/v1/organizations",
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
}

/// An object key that is empty ({"": false} in identifier metadata or
/// data) was stored and then could not be read back (moto; DynamoDB refuses
/// empty attribute names). Such bodies are refused; odd characters in
/// identifiers are not.
#[tokio::test]
async fn empty_object_keys_are_refused_and_odd_characters_are_kept() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    for body in [
        r#"{"identifier": [{"external_id": "a", "metadata": {"": false}}]}"#,
        r#"{"identifier": [{"external_id": "b"}], "data": {"x": {"": 1}}}"#,
    ] {
        let answer = integration_tests::call(
            &client,
            axum::http::Method::POST,
            "/api/client/users",
            Some(&p.secret_key),
            Some(body),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            answer.body
        );
    }
    assert!(integration_tests::project_items(&state, p.project_id)
        .await
        .is_empty());
    let odd = r#"{"identifier": [{"external_id": "\u0013c\u0000d", "source": "\ud850\udfe6)}\b\u0095\n"}], "data": {"k": "\u2028"}}"#;
    for _ in 0..2 {
        let answer = integration_tests::call(
            &client,
            axum::http::Method::POST,
            "/api/client/users",
            Some(&p.secret_key),
            Some(odd),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_eq!(answer.body["identifier"][0]["external_id"], "\u{13}c\u{0}d");
    }
}

/// Idempotency keys the fuzzer draws outside the documented pattern (not
/// visible ASCII, too long, empty) are 400 problems, and write nothing.
#[tokio::test]
async fn malformed_idempotency_keys_are_400_problems() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let long = "k".repeat(256);
    let keys: [&[u8]; 4] = [b"caf\xc3\xa9", b"a b", long.as_bytes(), b""];
    for key in keys {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/api/client/organizations")
            .header("authorization", format!("Bearer {}", p.secret_key))
            .header("content-type", "application/json")
            .header(
                "idempotency-key",
                axum::http::HeaderValue::from_bytes(key).expect("a header value"),
            )
            .body(Body::from(r#"{"identifier": [{"external_id": "k"}]}"#))
            .unwrap();
        let answer = send(&router, request).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{key:?}: {:?}",
            answer.body
        );
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json")
        );
    }
    assert!(integration_tests::project_items(&state, p.project_id)
        .await
        .is_empty());
}
