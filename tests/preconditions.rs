//! `If-Match` on the updates whose dialects take it (accounts and tenant
//! organizations): GET answers the record's version as its ETag, an update
//! naming another version is refused with 412 and changes nothing, and of
//! updates racing from one version exactly one wins.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use integration_tests::{project, state};
use serde_json::Value;

struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

async fn request(
    router: &axum::Router,
    method: Method,
    path: &str,
    key: &str,
    if_match: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    if let Some(tag) = if_match {
        builder = builder.header("if-match", tag);
    }
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder
        .body(
            body.map(|b| Body::from(b.to_owned()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let answer = integration_tests::send(router, request).await;
    let etag = answer
        .headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Answer {
        status: answer.status,
        etag,
        body: answer.body,
    }
}

/// The update path and a body for each family, and the field it sets.
async fn exercise(
    router: axum::Router,
    path: String,
    key: &str,
    body: fn(usize) -> String,
    field: &str,
) {
    let read = request(&router, Method::GET, &path, key, None, None).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    let tag = read.etag.expect("GET answers an ETag");

    // A stale tag is refused and changes nothing.
    let stale = request(
        &router,
        Method::PATCH,
        &path,
        key,
        Some("\"999\""),
        Some(&body(0)),
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{:?}",
        stale.body
    );
    let again = request(&router, Method::GET, &path, key, None, None).await;
    assert_eq!(again.etag.as_deref(), Some(tag.as_str()), "nothing changed");
    assert_eq!(again.body[field], read.body[field]);

    // Ten updates racing from the same version: one wins, the rest get 412.
    let racers = (1..=10).map(|i| {
        let (router, path, tag) = (router.clone(), path.clone(), tag.clone());
        let key = key.to_owned();
        tokio::spawn(async move {
            request(
                &router,
                Method::PATCH,
                &path,
                &key,
                Some(&tag),
                Some(&body(i)),
            )
            .await
        })
    });
    let mut won = Vec::new();
    // Spawned all at once (an iterator's tasks would start one by one).
    for racer in racers.collect::<Vec<_>>() {
        let answer = racer.await.unwrap();
        match answer.status {
            StatusCode::OK => won.push(answer),
            StatusCode::PRECONDITION_FAILED => {}
            other => panic!("unexpected {other}: {:?}", answer.body),
        }
    }
    assert_eq!(won.len(), 1, "exactly one update from one version wins");
    let after = request(&router, Method::GET, &path, key, None, None).await;
    assert_eq!(
        after.body[field], won[0].body[field],
        "the winner's change is the one kept"
    );
    assert_eq!(after.etag, won[0].etag);
    assert_ne!(after.etag.as_deref(), Some(tag.as_str()));

    // `*` passes whatever the version; so does a list naming the current one.
    let any = request(
        &router,
        Method::PATCH,
        &path,
        key,
        Some("*"),
        Some(&body(42)),
    )
    .await;
    assert_eq!(any.status, StatusCode::OK, "{:?}", any.body);
    let listed = format!("\"0\", W/{}", any.etag.expect("an ETag"));
    let ok = request(
        &router,
        Method::PATCH,
        &path,
        key,
        Some(&listed),
        Some(&body(43)),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{listed}: {:?}", ok.body);
    let malformed = request(
        &router,
        Method::PATCH,
        &path,
        key,
        Some("7"),
        Some(&body(1)),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn accounts_updates_honour_if_match() {
    let state = state().await;
    let p = project(&state).await;
    let router = accounts::router(state);
    let created = integration_tests::call(
        &router,
        Method::POST,
        "/v1/organizations",
        Some(&p.secret_key),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    exercise(
        router,
        format!("/v1/organizations/{id}"),
        &p.secret_key,
        |i| format!(r#"{{"name": "Acme {i}"}}"#),
        "name",
    )
    .await;
}

#[tokio::test]
async fn tenant_updates_honour_if_match() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let created = integration_tests::call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&p.secret_key),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    exercise(
        tenant::router(state),
        format!("/v2/organization/{id}"),
        &p.secret_key,
        |i| format!(r#"{{"symbol": "S{i}"}}"#),
        "symbol",
    )
    .await;
}
