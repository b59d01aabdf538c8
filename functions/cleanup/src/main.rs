//! Lambda entry point of the cleanup function: one function, three
//! triggers. SQS batches (purge steps), the minute's schedule (the sweep of
//! purges that lost their message, then renamed owners' refreshes) and API
//! Gateway HTTP requests (the cleanup routes) are told apart by their
//! shape.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::SqsEvent;
use http_body_util::BodyExt;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tower::ServiceExt;

fn is_sqs(payload: &Value) -> bool {
    payload["Records"]
        .as_array()
        .and_then(|r| r.first())
        .is_some_and(|r| r["eventSource"] == "aws:sqs")
}

/// EventBridge's scheduled event (and the local bridge's tick): the sweep
/// of purges that lost their message, then the owner-name refreshes.
fn is_schedule(payload: &Value) -> bool {
    payload["detail-type"] == "Scheduled Event"
}

/// Deadlines before this (2001) are not epoch times: `cargo lambda watch`
/// sends the function's timeout itself (600000), measured here.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// The invocation's deadline, less a margin to answer in.
fn deadline(context: &lambda_runtime::Context) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = if context.deadline < EPOCH_MS_FLOOR {
        Duration::from_millis(context.deadline)
    } else {
        Duration::from_millis(context.deadline.saturating_sub(now_ms))
    };
    Instant::now() + left.saturating_sub(cleanup::SAFETY_MARGIN)
}

async fn http(router: axum::Router, payload: Value) -> Result<Value, lambda_runtime::Error> {
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(payload)?;
    let request: lambda_http::Request = request.into();
    let response = router.oneshot(request).await?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await?.to_bytes();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    if !bytes.is_empty() {
        out.body = Some(match String::from_utf8(bytes.to_vec()) {
            Ok(text) => lambda_http::Body::Text(text),
            Err(binary) => {
                out.is_base64_encoded = true;
                lambda_http::Body::Binary(binary.into_bytes())
            }
        });
    }
    Ok(serde_json::to_value(out)?)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env("cleanup").await?;
    let router = cleanup::router(state.clone());
    let state = &state;
    let router = &router;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if is_schedule(&event.payload) {
            let announced = cleanup::sweep(state, SystemTime::now()).await?;
            let deadline = deadline(&event.context);
            let renamed = cleanup::refresh_owner_names(state, SystemTime::now(), deadline).await?;
            return Ok(serde_json::json!({ "announced": announced, "owner_names": renamed }));
        }
        if is_sqs(&event.payload) {
            let deadline = deadline(&event.context);
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            let response = cleanup::handle_deletions(state, batch, deadline).await;
            return Ok::<_, lambda_runtime::Error>(serde_json::to_value(response)?);
        }
        http(router.clone(), event.payload).await
    }))
    .await
}
