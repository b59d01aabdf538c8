//! Request plumbing shared by the HTTP functions: the JSON body extractor
//! (size cap, content type, errors as problem documents) and limits.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::Error;

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
        if let Some(content_type) = req.headers().get(CONTENT_TYPE) {
            let content_type = content_type
                .to_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(Error::UnsupportedMediaType(format!(
                    "the body must be JSON (Content-Type: application/json), not {essence}"
                )));
            }
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                Error::PayloadTooLarge(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
            })?;
        parse(&bytes).map(Json)
    }
}

/// Parses a JSON body (pure, for unit tests and non-axum callers).
pub fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::MalformedBody(
            "the request body is empty; JSON is required".into(),
        ));
    }
    check_depth(bytes)?;
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

/// Refuses deeply nested JSON before parsing it (serde_json's own limit of
/// 128 protects the stack; this keeps stored documents reasonable).
fn check_depth(bytes: &[u8]) -> Result<(), Error> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Error::invalid(format!(
                        "the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The answer for paths no route matches, in the problem shape.
pub async fn no_route(uri: axum::http::Uri) -> Error {
    Error::not_found(format!("no operation at {}", uri.path()))
}

/// The answer for a known path with an unsupported method.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Error {
    Error::MethodNotAllowed(format!("{method} is not supported on {}", uri.path()))
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
    fn errors_name_the_field() {
        let err = parse::<Body>(&Bytes::from_static(b"{\"identifier\": 3}")).unwrap_err();
        assert!(err.to_string().contains("identifier"), "{err}");
        let err = parse::<Body>(&Bytes::from_static(b"{\"identifier\": [")).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        assert!(parse::<Body>(&Bytes::from_static(b"  ")).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_but_brackets_in_strings_are_not_counted() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(check_depth(deep.as_bytes()).is_err());
        let quoted = format!("\"{}\"", "[".repeat(40));
        assert!(check_depth(quoted.as_bytes()).is_ok());
    }
}
