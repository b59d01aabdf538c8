//! Every answer is a problem document (DESIGN.md "Errors and bad input"),
//! the refusals nobody writes by hand included: unknown routes (404), wrong
//! methods (405) and bodies over a route's limit (413), in every HTTP
//! family, and whatever axum or a tower layer answers on its own.

use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use integration_tests::{project, send, state, Exchange};
use serde_json::{json, Value};

/// A request as lambda_http hands it to a router: built from an API
/// Gateway (HTTP API, payload 2.0) event.
fn gateway_request(method: &Method, path: &str, key: &str, body: Option<&str>) -> Request<Body> {
    let mut headers = json!({"authorization": format!("Bearer {key}")});
    if let Some(body) = body {
        headers["content-type"] = json!("application/json");
        headers["content-length"] = json!(body.len().to_string());
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "example.com",
            "domainPrefix": "example", "requestId": "id", "routeKey": "$default",
            "stage": "$default", "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 1795000000000u64,
            "http": {"method": method.as_str(), "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "errors-test"}
        },
        "body": body,
        "isBase64Encoded": false
    });
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_value(event).expect("an API Gateway event");
    let request: lambda_http::Request = request.into();
    let (parts, body) = request.into_parts();
    Request::from_parts(parts, Body::from(body.to_vec()))
}

fn assert_problem(answer: &Exchange, status: StatusCode, code: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {:?}", answer.body);
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    let body = &answer.body;
    assert_eq!(body["type"], "about:blank", "{what}: {body}");
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
    assert_eq!(body["code"], code, "{what}: {body}");
    assert_eq!(
        body["title"].as_str(),
        status.canonical_reason(),
        "{what}: {body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: {body}"
    );
}

/// A JSON body one byte per character, well over the 256 KiB every JSON
/// route accepts.
fn oversize_body() -> String {
    json!({"identifier": [{"external_id": "a"}], "data": {"blob": "x".repeat(300 * 1024)}})
        .to_string()
}

struct Family {
    name: &'static str,
    router: Router,
    unknown_path: String,
    /// A known path and a method it does not serve.
    wrong_method: (Method, String),
    /// A route that takes a JSON body.
    body_route: (Method, String),
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_oversize_bodies_are_problems_in_every_family() {
    let state = state().await;
    let p = project(&state).await;
    let org = uuid::Uuid::now_v7();
    let families = [
        Family {
            name: "client",
            router: client::router(state.clone()),
            unknown_path: "/api/client/nothing-here".into(),
            wrong_method: (Method::GET, "/api/client/organizations".into()),
            body_route: (Method::POST, "/api/client/organizations".into()),
        },
        Family {
            name: "accounts",
            router: accounts::router(state.clone()),
            unknown_path: format!("/v1/organizations/{org}/nothing-here"),
            wrong_method: (Method::PUT, "/v1/organizations".into()),
            body_route: (Method::POST, "/v1/organizations".into()),
        },
        Family {
            name: "crm",
            router: crm::router(state.clone()),
            unknown_path: format!("/organizations/{org}/notes/x/nothing-here"),
            wrong_method: (Method::DELETE, "/organizations".into()),
            body_route: (Method::POST, "/organizations".into()),
        },
        Family {
            name: "tenant",
            router: tenant::router(state.clone()),
            unknown_path: format!("/v2/organization/{org}/nothing-here"),
            wrong_method: (Method::DELETE, "/v2/organization".into()),
            body_route: (Method::POST, "/v2/organization".into()),
        },
        Family {
            name: "segments",
            router: segments::router(state.clone()),
            unknown_path: "/api/admin/segments/nothing-here".into(),
            wrong_method: (Method::GET, "/api/admin/segments/evaluate".into()),
            body_route: (Method::POST, "/api/admin/segments/evaluate".into()),
        },
        Family {
            name: "cleanup",
            router: cleanup::router(state.clone()),
            unknown_path: format!("/v2/organization/cleanup/{org}/billing/nothing-here"),
            wrong_method: (Method::POST, "/v2/organization/cleanup".into()),
            body_route: (
                Method::PUT,
                format!("/v2/organization/cleanup/{org}/billing"),
            ),
        },
    ];
    let oversize = oversize_body();
    for family in families {
        let name = family.name;
        let key = p.secret_key.as_str();

        let path = &family.unknown_path;
        for method in [Method::GET, Method::POST] {
            let answer = send(&family.router, gateway_request(&method, path, key, None)).await;
            let what = format!("{name}: {method} {path}");
            assert_problem(&answer, StatusCode::NOT_FOUND, "not_found", &what);
        }

        let (method, path) = &family.wrong_method;
        let answer = send(&family.router, gateway_request(method, path, key, None)).await;
        let what = format!("{name}: {method} {path}");
        assert_problem(
            &answer,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &what,
        );

        let (method, path) = &family.body_route;
        let answer = send(
            &family.router,
            gateway_request(method, path, key, Some(&oversize)),
        )
        .await;
        let what = format!("{name}: {method} {path} with {} bytes", oversize.len());
        assert_problem(
            &answer,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &what,
        );
    }
}

/// axum's own refusals are plain text (or empty): the layer every router
/// ends with turns each into a problem with the same status and headers.
#[tokio::test]
async fn refusals_axum_writes_itself_become_problems() {
    async fn upload(body: Bytes) -> String {
        body.len().to_string()
    }
    async fn typed(axum::Json(value): axum::Json<Vec<u32>>) -> String {
        value.len().to_string()
    }
    // No fallbacks: axum answers unknown paths and methods itself.
    let router = Router::new()
        .route("/upload", post(upload).layer(DefaultBodyLimit::max(16)))
        .route("/typed", post(typed))
        .layer(axum::middleware::from_fn(shared::http::problem_responses));
    let request = |method: Method, path: &str, content_type: Option<&str>, body: &str| {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request
            .body(Body::from(body.to_owned()))
            .expect("a request")
    };

    let ok = send(&router, request(Method::POST, "/upload", None, "small")).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, json!(5));

    let cases = [
        (
            request(Method::POST, "/upload", None, &"x".repeat(17)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            request(Method::GET, "/nothing", None, ""),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            request(Method::DELETE, "/upload", None, ""),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            request(Method::POST, "/typed", Some("text/plain"), "[1]"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            request(Method::POST, "/typed", Some("application/json"), "[1"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            request(
                Method::POST,
                "/typed",
                Some("application/json"),
                "[\"one\"]",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
    ];
    for (request, status, code) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = send(&router, request).await;
        assert_problem(&answer, status, code, &what);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(
                answer.headers.get("allow").and_then(|v| v.to_str().ok()),
                Some("POST"),
                "{what} keeps axum's Allow header"
            );
        }
    }

    // A HEAD is answered without a body, as HTTP wants, but labelled alike.
    let head = send(&router, request(Method::HEAD, "/nothing", None, "")).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(head.body, Value::Null);
}
