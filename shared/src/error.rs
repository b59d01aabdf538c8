//! The one error type, and the one place an error becomes an HTTP response:
//! an RFC 9457 problem document (`type`, `title`, `status`, `detail`, `code`),
//! which is also the client spec's `Problem {title, detail}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON, or not the JSON the operation takes.
    #[error("{0}")]
    MalformedBody(String),
    /// Well-formed input that breaks a rule (a missing identifier, a bad value).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the stored state (identifiers of two
    /// organizations, a concurrent change that kept winning).
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// Also a 409, but one that goes away by itself: a concurrent change
    /// kept winning, or a request with the same Idempotency-Key is still
    /// running. The same request may succeed later (`x-should-retry: true`).
    #[error("{0}")]
    Busy(String),
    /// Understood, but the world is not yet as the request needs it (a
    /// DNS record that does not carry the token).
    #[error("{0}")]
    Unprocessable(String),
    /// `If-Match` named another version than the stored one.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A published limit (`shared::limits`) would be exceeded: the request
    /// is fine, but the organization or record already holds the most it may.
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An image whose pixels exceed what is decoded (its bytes may be few).
    #[error("{0}")]
    ImageTooLarge(String),
    /// Misconfiguration of the deployment (a missing variable).
    #[error("configuration: {0}")]
    Config(String),
    /// DynamoDB, SQS or S3 failed in a way the caller cannot fix (or an
    /// identity provider's JWKS could not be fetched): 503.
    #[error("storage: {0}")]
    Storage(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::MalformedBody(_) | Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) | Error::Busy(_) => StatusCode::CONFLICT,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::LimitExceeded(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            // Not 413: that is about the body's bytes, and a client that
            // compresses harder or sends fewer bytes would not be helped.
            Error::ImageTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Config(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code; clients branch on this, not on `detail`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MalformedBody(_) => "malformed_body",
            Error::Invalid(_) => "invalid_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::Conflict(_) | Error::Busy(_) => "conflict",
            Error::Unprocessable(_) => "unprocessable",
            Error::PreconditionFailed(_) => "precondition_failed",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::LimitExceeded(_) => "limit_exceeded",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::ImageTooLarge(_) => "image_too_large",
            Error::Storage(_) => "service_unavailable",
            Error::Config(_) | Error::Internal(_) => "internal_error",
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Error::Invalid(detail.into())
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Error::NotFound(detail.into())
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Error::Conflict(detail.into())
    }

    pub fn busy(detail: impl Into<String>) -> Self {
        Error::Busy(detail.into())
    }

    /// Whether the same request may succeed if sent again, as the answer's
    /// `x-should-retry` says (clients generated by Stainless retry 408, 409,
    /// 429 and 5xx unless told otherwise): yes for what passes by itself,
    /// no for every other refusal, unsaid for internal errors.
    pub fn should_retry(&self) -> Option<bool> {
        match self {
            Error::Busy(_) | Error::Storage(_) => Some(true),
            Error::Config(_) | Error::Internal(_) => None,
            _ => Some(false),
        }
    }
}

/// The header that tells a client whether to send the request again.
pub const SHOULD_RETRY: &str = "x-should-retry";

/// `x-should-retry` on `response` as `error` says, unless it is there.
pub fn mark_retry(response: &mut Response, error: &Error) {
    if let Some(retry) = error.should_retry() {
        response
            .headers_mut()
            .entry(SHOULD_RETRY)
            .or_insert(HeaderValue::from_static(if retry {
                "true"
            } else {
                "false"
            }));
    }
}

/// RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person to act on.
    pub detail: String,
    /// A stable machine-readable code (`invalid_request`, `not_found`, …).
    pub code: &'static str,
}

impl From<&Error> for Problem {
    fn from(error: &Error) -> Self {
        let status = error.status();
        let detail = match error {
            // Internal causes are logged, never sent.
            Error::Storage(_) => {
                "The service is temporarily unavailable; retry the request.".into()
            }
            Error::Config(_) | Error::Internal(_) => "An internal error occurred.".into(),
            other => other.to_string(),
        };
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail,
            code: error.code(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let problem = Problem::from(&self);
        if problem.status >= 500 {
            tracing::error!(error = %self, code = problem.code, "request failed");
        } else {
            tracing::debug!(error = %self, code = problem.code, "request rejected");
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        mark_retry(&mut response, &self);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_leaked() {
        let problem = Problem::from(&Error::Storage("ThrottlingException at table x".into()));
        assert_eq!(problem.status, 503);
        assert!(!problem.detail.contains("table x"));
        let problem = Problem::from(&Error::invalid("identifier is required"));
        assert_eq!(problem.status, 400);
        assert_eq!(problem.detail, "identifier is required");
        assert_eq!(problem.title, "Bad Request");
        assert_eq!(problem.code, "invalid_request");
    }

    #[test]
    fn only_what_passes_by_itself_is_worth_retrying() {
        let retry = |error: Error| {
            error
                .into_response()
                .headers()
                .get(SHOULD_RETRY)
                .map(|v| v.to_str().unwrap_or_default().to_owned())
        };
        assert_eq!(
            retry(Error::busy("changed concurrently")).as_deref(),
            Some("true")
        );
        assert_eq!(
            retry(Error::Storage("throttled".into())).as_deref(),
            Some("true")
        );
        assert_eq!(
            retry(Error::conflict("the last owner")).as_deref(),
            Some("false")
        );
        assert_eq!(retry(Error::invalid("bad")).as_deref(), Some("false"));
        assert_eq!(retry(Error::not_found("gone")).as_deref(), Some("false"));
        assert_eq!(retry(Error::Internal("bug".into())), None);
        assert_eq!(Error::busy("x").status(), Error::conflict("y").status());
        assert_eq!(Error::busy("x").code(), "conflict");
    }
}
