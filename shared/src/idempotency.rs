//! `Idempotency-Key` for POST requests: a retried request with the same
//! key and the same body gets the first response again and writes nothing;
//! the same key with another body is refused (422). Keys are scoped to the
//! credential that sent them (its hash is part of the record's key), so a
//! key never replays another caller's response, and kept for 24 hours.
//!
//! One conditional PutItem claims the key before the handler runs (a lost
//! claim returns the stored record in the same round trip); one UpdateItem
//! stores a successful response. A failed request releases the key, so it
//! can be retried. A claim whose request never finished (the function was
//! stopped) can be taken over after `LEASE_SECS`.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Credential;
use crate::error::Error;
use crate::http::MAX_BODY_BYTES;
use crate::store::{key, n, s, storage, text, Item};
use crate::{keys, AppState};

pub const HEADER: &str = "idempotency-key";
/// How long a key is remembered.
pub const RETENTION_SECS: i64 = 24 * 3600;
/// A claim older than this (longer than any function runs) is abandoned.
pub const LEASE_SECS: i64 = 120;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// Largest response kept for replay (DynamoDB items hold 400 KB).
const MAX_STORED_BODY: usize = 300 * 1024;

/// What a key's records are scoped by: the verified credential — an API
/// key, or a session's user (not its token, which is refreshed).
fn scope_of(credential: &Credential) -> (Uuid, String) {
    let subject = match credential {
        Credential::Key(caller) => format!("key:{}", hex::encode(caller.key_digest)),
        Credential::Session(session) => format!("session:{}", session.user),
    };
    (
        credential.project_id(),
        hex::encode(&Sha256::digest(subject.as_bytes())[..16]),
    )
}

/// The middleware: requests without the header, or other than POST, pass.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match handle(&state, request, next).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(state: &AppState, request: Request, next: Next) -> Result<Response, Error> {
    let Some(key) = request.headers().get(HEADER) else {
        return Ok(next.run(request).await);
    };
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let key = key
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            Error::invalid(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))
        })?
        .to_owned();
    // Runs inside `auth::layer`: the credential is verified (a revoked key
    // never reaches a replay). Unauthenticated requests get the handler's 401.
    let Some((project, scope)) = Credential::verified(request.extensions()).map(scope_of) else {
        return Ok(next.run(request).await);
    };
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            Error::PayloadTooLarge(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
        })?;
    let fingerprint = {
        let mut hash = Sha256::new();
        hash.update(parts.method.as_str());
        hash.update([0]);
        hash.update(parts.uri.to_string());
        hash.update([0]);
        hash.update(&bytes);
        hex::encode(hash.finalize())
    };
    let pk = keys::idempotency_pk(project, &scope, &key);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let claim = state
        .store
        .client()
        .put_item()
        .table_name(state.store.table())
        .set_item(Some(item_key(&pk)))
        .item("fingerprint", s(&fingerprint))
        .item("state", s("pending"))
        .item("lease_until", n(now + LEASE_SECS))
        .item(keys::TTL, n(now + RETENTION_SECS))
        .condition_expression(
            "attribute_not_exists(PK) OR (#state = :pending AND lease_until < :now)",
        )
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":pending", s("pending"))
        .expression_attribute_values(":now", n(now))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    if let Err(err) = claim {
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(storage("PutItem", err));
        };
        let stored = failed.item().cloned().unwrap_or_default();
        return replay(&stored, &fingerprint);
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let delete = || async {
        let _ = state
            .store
            .client()
            .delete_item()
            .table_name(state.store.table())
            .set_key(Some(item_key(&pk)))
            .send()
            .await;
    };
    if !response.status().is_success() {
        // Nothing was written: the key is free for a retry.
        delete().await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(_) => {
            delete().await;
            return Err(Error::Internal(
                "the response body could not be read".into(),
            ));
        }
    };
    if body.len() <= MAX_STORED_BODY {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let stored = state
            .store
            .client()
            .update_item()
            .table_name(state.store.table())
            .set_key(Some(item_key(&pk)))
            .update_expression(
                "SET #state = :done, #status = :status, content_type = :ct, body = :body",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":status", n(parts.status.as_u16()))
            .expression_attribute_values(":ct", s(content_type))
            .expression_attribute_values(
                ":body",
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(body.to_vec())),
            )
            .send()
            .await;
        if let Err(err) = stored {
            // The write happened; only the replay is lost. Say so in the log.
            tracing::error!(error = %err, "an idempotent response could not be stored");
        }
    } else {
        tracing::warn!(
            bytes = body.len(),
            "response too large to keep for idempotent replay"
        );
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// The claim item's primary key.
fn item_key(pk: &str) -> Item {
    key(pk, keys::IDEMPOTENCY_SK)
}

/// The answer to a key seen before.
fn replay(stored: &Item, fingerprint: &str) -> Result<Response, Error> {
    if text(stored, "fingerprint") != fingerprint {
        return Err(Error::Unprocessable(
            "this Idempotency-Key was used with another request; use a new key for a new request"
                .into(),
        ));
    }
    if text(stored, "state") != "done" {
        return Err(Error::Busy(
            "a request with this Idempotency-Key is still in progress; retry later".into(),
        ));
    }
    let status = stored
        .get("status")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u16>().ok())
        .and_then(|n| StatusCode::from_u16(n).ok())
        .unwrap_or(StatusCode::OK);
    let body = stored
        .get("body")
        .and_then(|v| v.as_b().ok())
        .map(|b| Bytes::copy_from_slice(b.as_ref()))
        .unwrap_or_default();
    let mut response = (status, Body::from(body)).into_response();
    // A stored answer without a type (a 204) is replayed without one.
    if let Ok(content_type) = HeaderValue::from_str(text(stored, "content_type")) {
        if !content_type.is_empty() {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}
