//! Request plumbing shared by the HTTP functions: the JSON body extractor
//! (size cap, content type, errors as problem documents) and limits.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{Error, Problem};

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Deepest nesting of JSON accepted in a body.
pub const MAX_JSON_DEPTH: usize = 32;

/// A JSON body, parsed into `T`. Oversize bodies are 413, other content
/// types 415, invalid JSON and wrong types 400 with the path of the field.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(essence) = content_essence(&req).filter(|e| !is_json(e)) {
            return Err(Error::UnsupportedMediaType(format!(
                "the body must be JSON (Content-Type: application/json), not {essence}"
            )));
        }
        parse(&read_body(req).await?).map(Json)
    }
}

/// A JSON value, or, under a content type that is not JSON, the body's
/// text when it is not JSON: axios (epilot's client) sends a string as raw
/// text labelled `application/x-www-form-urlencoded`, so `de` arrives as
/// `de`, not `"de"`. A JSON body means what it says under any type.
pub struct JsonOrText(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonOrText {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let labelled_json = content_essence(&req).is_none_or(|e| is_json(&e));
        let bytes = read_body(req).await?;
        if labelled_json {
            return parse(&bytes).map(JsonOrText);
        }
        match parse(&bytes) {
            Ok(value) => Ok(JsonOrText(value)),
            Err(Error::MalformedBody(_)) => String::from_utf8(bytes.to_vec())
                .map(|text| JsonOrText(serde_json::Value::String(text)))
                .map_err(|_| {
                    Error::MalformedBody("the body is neither JSON nor UTF-8 text".into())
                }),
            Err(other) => Err(other),
        }
    }
}

/// The media type a request labels its body with, lower-cased, without
/// parameters (`application/json; charset=utf-8` → `application/json`).
fn content_essence(req: &Request) -> Option<String> {
    let value = req.headers().get(CONTENT_TYPE)?;
    let lowered = value.to_str().unwrap_or_default().to_ascii_lowercase();
    Some(
        lowered
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
    )
}

fn is_json(essence: &str) -> bool {
    essence == "application/json" || essence.ends_with("+json")
}

async fn read_body(req: Request) -> Result<Bytes, Error> {
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            Error::PayloadTooLarge(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
        })
}

/// A query string, parsed into `T`; a malformed one (a repeated field, a
/// wrong type) is a 400 problem like every other bad input.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(raw)
            .map(Query)
            .map_err(|e| Error::invalid(format!("the query string is malformed: {e}")))
    }
}

/// Path parameters, parsed into `T`; a segment that cannot be read (bad
/// percent-encoding, not UTF-8) is a 400 problem.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| Error::invalid(format!("the path is malformed: {}", e.body_text())))
    }
}

/// A record's entity tag: its version, quoted (`"3"`).
pub fn etag(version: u64) -> (axum::http::HeaderName, axum::http::HeaderValue) {
    (
        axum::http::header::ETAG,
        axum::http::HeaderValue::from_str(&format!("\"{version}\""))
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("\"0\"")),
    )
}

/// The `If-Match` precondition of an update: absent or `*` allows any
/// version; otherwise the stored version must be one of the tags given
/// (`"3"`, `W/"3"`, or a list of them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IfMatch(Option<Vec<String>>);

impl IfMatch {
    /// Refuses the change (412) unless the stored `version` is allowed.
    pub fn check(&self, version: u64) -> Result<(), Error> {
        let Some(tags) = &self.0 else {
            return Ok(());
        };
        let current = version.to_string();
        if tags.contains(&current) {
            return Ok(());
        }
        Err(Error::PreconditionFailed(format!(
            "If-Match does not name the current version (ETag \"{version}\"); read the record again"
        )))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let value = value
            .to_str()
            .map_err(|_| Error::invalid("If-Match is not readable text"))?;
        if value.trim() == "*" {
            return Ok(IfMatch(None));
        }
        let tags = value
            .split(',')
            .map(|t| {
                let t = t.trim();
                let t = t.strip_prefix("W/").unwrap_or(t);
                t.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::invalid(format!("If-Match holds {t:?}, not a quoted entity tag"))
                    })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(IfMatch(Some(tags)))
    }
}

/// Parses a JSON body (pure, for unit tests and non-axum callers).
pub fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::MalformedBody(
            "the request body is empty; JSON is required".into(),
        ));
    }
    check_storable(bytes)?;
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let what = if inner.is_syntax() || inner.is_eof() {
            "is not valid JSON"
        } else {
            "does not match the operation"
        };
        if path == "." || path == "?" || path.is_empty() || inner.is_syntax() || inner.is_eof() {
            Error::MalformedBody(format!("the body {what}: {inner}"))
        } else {
            Error::MalformedBody(format!("the body {what} at `{path}`: {inner}"))
        }
    })
}

/// Smallest and largest magnitude DynamoDB stores in a number (it refuses
/// the whole write otherwise, which would be a 5xx after the fact).
pub const MIN_NUMBER_MAGNITUDE: f64 = 1e-130;
pub const MAX_NUMBER_MAGNITUDE: f64 = 1e126;

/// Checks what the body may hold before parsing it: nesting at most
/// `MAX_JSON_DEPTH` deep (serde_json's own limit of 128 protects the stack;
/// this keeps stored documents reasonable), and only what a stored document
/// can hold: numbers that are 0 or from 1e-130 up to 1e126 in magnitude,
/// and no empty object keys (DynamoDB refuses both, failing the write).
fn check_storable(bytes: &[u8]) -> Result<(), Error> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    // Where the last string started, and whether nothing followed it yet.
    let (mut string_start, mut after_string) = (0usize, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    after_string = true;
                }
                _ => {}
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if b == b':' && after_string && i - 1 > string_start && bytes[string_start + 1] == b'"' {
            return Err(Error::invalid(
                "the JSON body has an object with an empty key; keys must not be empty",
            ));
        }
        after_string = false;
        match b {
            b'"' => {
                in_string = true;
                string_start = i - 1;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Error::invalid(format!(
                        "the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i - 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                check_number(&bytes[start..i])?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_number(token: &[u8]) -> Result<(), Error> {
    // A malformed token is left to the parser, which names it.
    let Some(value) = std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
    else {
        return Ok(());
    };
    let magnitude = value.abs();
    if magnitude == 0.0 || (MIN_NUMBER_MAGNITUDE..MAX_NUMBER_MAGNITUDE).contains(&magnitude) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "the number {} is out of range: numbers are 0 or between 1e-130 and 1e126 in magnitude",
        String::from_utf8_lossy(token)
    )))
}

/// The answer for paths no route matches, in the problem shape.
pub async fn no_route(uri: axum::http::Uri) -> Error {
    Error::not_found(format!("no operation at {}", uri.path()))
}

/// The answer for a known path with an unsupported method.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Error {
    Error::MethodNotAllowed(format!("{method} is not supported on {}", uri.path()))
}

/// The outermost layer of every router: an error answer that is not a
/// problem document yet — a refusal written by axum or a tower layer (a body
/// over a `DefaultBodyLimit`, an extractor's rejection, the router's own 404
/// or 405) — becomes one, with the same status, its stable `code`, and the
/// original headers (`Allow`, `Retry-After`) kept.
pub async fn problem_responses(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_CONTENT_TYPE));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return without_type_when_empty(response);
    }
    let (mut parts, body) = response.into_parts();
    // What the refusal said, when it is short text (axum's rejections are).
    let said = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    let detail = |fallback: &str| said.clone().unwrap_or_else(|| fallback.to_owned());
    let error = match status {
        StatusCode::NOT_FOUND => Error::not_found(format!("no operation at {path}")),
        StatusCode::METHOD_NOT_ALLOWED => {
            Error::MethodNotAllowed(format!("{method} is not supported on {path}"))
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            Error::PayloadTooLarge(format!("the body is larger than {method} {path} accepts"))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            Error::UnsupportedMediaType(detail("the body's Content-Type is not accepted here"))
        }
        StatusCode::UNAUTHORIZED => Error::Unauthorized(detail("credentials are required")),
        StatusCode::FORBIDDEN => Error::Forbidden(detail("this operation is not allowed")),
        StatusCode::CONFLICT => Error::conflict(detail("the request conflicts with the record")),
        StatusCode::PRECONDITION_FAILED => {
            Error::PreconditionFailed(detail("a precondition failed"))
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            Error::Unprocessable(detail("the body does not match the operation"))
        }
        StatusCode::SERVICE_UNAVAILABLE => Error::Storage(detail("unavailable")),
        status if status.is_server_error() => Error::Internal(detail("no detail")),
        // Any other refusal keeps its status; 400 is the nearest code.
        _ => Error::invalid(detail("the request is not valid")),
    };
    let mut problem = Problem::from(&error);
    if problem.status != status.as_u16() {
        problem.status = status.as_u16();
        problem.title = status.canonical_reason().unwrap_or("Error").into();
    }
    if status.is_server_error() {
        tracing::error!(error = %error, code = problem.code, "request failed");
    } else {
        tracing::debug!(error = %error, code = problem.code, "request rejected");
    }
    let body = if method == Method::HEAD {
        Vec::new()
    } else {
        serde_json::to_vec(&problem).unwrap_or_default()
    };
    let mut answer = (status, body).into_response();
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(CONTENT_LENGTH);
    for name in parts.headers.keys() {
        if answer.headers().contains_key(name) {
            continue;
        }
        for value in parts.headers.get_all(name) {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    crate::error::mark_retry(&mut answer, &error);
    answer
}

/// An answer without a body (204, a 202 that says nothing, a HEAD) carries
/// no Content-Type: clients that parse whatever is labelled JSON (Lunogram's
/// js-sdk) would fail on the empty text.
fn without_type_when_empty(mut response: Response) -> Response {
    use axum::body::HttpBody as _;
    let empty = response.status() == StatusCode::NO_CONTENT
        || response.body().size_hint().exact() == Some(0);
    if empty {
        response.headers_mut().remove(CONTENT_TYPE);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        identifier: Vec<String>,
    }

    #[test]
    fn if_match_allows_listed_versions_only() {
        let tags = |v: &[&str]| IfMatch(Some(v.iter().map(|t| t.to_string()).collect()));
        assert!(IfMatch::default().check(7).is_ok());
        assert!(tags(&["7"]).check(7).is_ok());
        assert!(tags(&["6", "7"]).check(7).is_ok());
        let refused = tags(&["6"]).check(7).unwrap_err();
        assert_eq!(
            refused.status(),
            axum::http::StatusCode::PRECONDITION_FAILED
        );
        assert!(tags(&["x"]).check(7).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse::<Body>(&Bytes::from_static(b"{\"identifier\": 3}")).unwrap_err();
        assert!(err.to_string().contains("identifier"), "{err}");
        let err = parse::<Body>(&Bytes::from_static(b"{\"identifier\": [")).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        assert!(parse::<Body>(&Bytes::from_static(b"  ")).is_err());
    }

    #[test]
    fn numbers_a_stored_document_cannot_hold_are_refused() {
        for bad in [
            "1e-200",
            "-1e-131",
            "1e126",
            "-2.5e200",
            "[1, {\"a\": 1e130}]",
        ] {
            assert!(check_storable(bad.as_bytes()).is_err(), "{bad}");
        }
        for good in [
            "0",
            "-0.0",
            "1e-130",
            "9.99e125",
            "12345678901234567890",
            "-3.5",
            "[1e-5, 2]",
        ] {
            assert!(check_storable(good.as_bytes()).is_ok(), "{good}");
        }
        assert!(check_storable(br#"{"a": {"": 1}}"#).is_err());
        assert!(check_storable(br#"{"a" : {"" : 1}}"#).is_err());
        assert!(check_storable(br#"{"a": "", "b": [""]}"#).is_ok());
        assert!(check_storable(br#"{"\"": 1}"#).is_ok());
        // Digits inside strings are not numbers.
        assert!(check_storable(b"{\"a\": \"1e-200\"}").is_ok());
        // 1e-400 reads as 0 (as serde_json reads it), and 0 is storable.
        assert!(check_storable(b"1e-400").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_but_brackets_in_strings_are_not_counted() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(check_storable(deep.as_bytes()).is_err());
        let quoted = format!("\"{}\"", "[".repeat(40));
        assert!(check_storable(quoted.as_bytes()).is_ok());
    }
}
