//! Signed cursors in every family that lists (issue 18, attack 6: a cursor
//! altered inside the caller's own project used to be accepted). For each
//! list, a real `next_cursor` is taken from a first page and altered as a
//! caller could: its JSON pointed at another position of the same list
//! (another page's position, the other direction, the bare JSON without
//! what follows it), a changed character. Each is a 400 problem document;
//! the untouched cursor still reads the next page.
//!
//! The alterations are made on the wire format alone (base64url of a JSON
//! object, then whatever the service appends), so the same test runs
//! against a service that appends nothing.

use axum::http::{Method, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use integration_tests::{call, project, session_token, state, Exchange};
use serde_json::{json, Value};

/// A cursor's JSON and the bytes that follow it (its signature).
fn open(cursor: &str) -> (Value, Vec<u8>) {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .expect("a cursor is base64url");
    let mut stream = serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>();
    let json = stream
        .next()
        .expect("a cursor starts with JSON")
        .expect("a cursor starts with JSON");
    let end = stream.byte_offset();
    (json, bytes[end..].to_vec())
}

fn seal(json: &Value, rest: &[u8]) -> String {
    let mut bytes = serde_json::to_vec(json).unwrap();
    bytes.extend_from_slice(rest);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `first`'s signature on `second`'s position: a position of the same list
/// that the service never signed for this cursor.
fn transplant(first: &str, second: &str) -> String {
    let (mut json, rest) = open(first);
    json["k"] = open(second).0["k"].clone();
    seal(&json, &rest)
}

/// The cursor read the other way (a next page turned into a previous one).
fn reversed(cursor: &str) -> String {
    let (mut json, rest) = open(cursor);
    let backwards = json.get("b").and_then(Value::as_bool).unwrap_or(false);
    json["b"] = json!(!backwards);
    seal(&json, &rest)
}

/// The cursor's JSON with nothing after it: the unsigned format.
fn bare(cursor: &str) -> String {
    seal(&open(cursor).0, &[])
}

/// One character in the middle replaced by another of the alphabet.
fn one_character_changed(cursor: &str) -> String {
    let at = cursor.len() / 2;
    let was = cursor.as_bytes()[at];
    let now = if was == b'A' { 'B' } else { 'A' };
    let mut changed = cursor.to_owned();
    changed.replace_range(at..at + 1, &now.to_string());
    changed
}

/// Every alteration of `cursor` (with `later`, a cursor further on in the
/// same list) that `read` must refuse.
fn alterations(cursor: &str, later: &str) -> Vec<(&'static str, String)> {
    let mut altered = vec![
        ("pointed at a later page", transplant(cursor, later)),
        ("one character changed", one_character_changed(cursor)),
        ("reversed", reversed(cursor)),
        ("one character added", format!("{cursor}A")),
        (
            "one character removed",
            cursor[..cursor.len() - 1].to_owned(),
        ),
    ];
    if bare(cursor) != cursor {
        altered.push(("without its signature", bare(cursor)));
    }
    altered
}

fn refused_as_invalid(what: &str, answer: &Exchange) {
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "{what}: {:?}",
        answer.body
    );
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(answer.body["status"], 400, "{what}: {:?}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("the cursor is not valid")),
        "{what}: {:?}",
        answer.body
    );
}

/// A list read a page at a time: `read(cursor)` returns the page's items and
/// its next cursor.
struct List<'a> {
    name: &'a str,
    router: &'a Router,
    key: &'a str,
    /// The GET path the cursor is appended to, or a POST body the cursor is
    /// put into.
    request: Request<'a>,
}

enum Request<'a> {
    Get(&'a str),
    Post(&'a str, Value),
}

impl List<'_> {
    async fn read(&self, cursor: Option<&str>) -> Exchange {
        match &self.request {
            Request::Get(path) => {
                let url = match cursor {
                    Some(c) => format!("{path}&cursor={c}"),
                    None => (*path).to_owned(),
                };
                call(self.router, Method::GET, &url, Some(self.key), None).await
            }
            Request::Post(path, body) => {
                let mut body = body.clone();
                if let Some(c) = cursor {
                    body["cursor"] = json!(c);
                }
                call(
                    self.router,
                    Method::POST,
                    path,
                    Some(self.key),
                    Some(&body.to_string()),
                )
                .await
            }
        }
    }

    /// Reads three pages, then every alteration of the first page's cursor.
    async fn refuses_altered_cursors(&self, next: fn(&Value) -> &Value, items: &str) {
        let name = self.name;
        let first = self.read(None).await;
        assert_eq!(first.status, StatusCode::OK, "{name}: {:?}", first.body);
        let cursor = next(&first.body)
            .as_str()
            .unwrap_or_else(|| panic!("{name}: a next cursor: {:?}", first.body))
            .to_owned();
        let second = self.read(Some(&cursor)).await;
        assert_eq!(second.status, StatusCode::OK, "{name}: {:?}", second.body);
        let later = next(&second.body)
            .as_str()
            .unwrap_or_else(|| panic!("{name}: a second cursor: {:?}", second.body))
            .to_owned();
        assert_ne!(
            first.body[items], second.body[items],
            "{name}: the cursor moves on"
        );
        for (how, altered) in alterations(&cursor, &later) {
            refused_as_invalid(&format!("{name}, {how}"), &self.read(Some(&altered)).await);
        }
        // The untouched cursor still reads the second page.
        let again = self.read(Some(&cursor)).await;
        assert_eq!(again.status, StatusCode::OK, "{name}: {:?}", again.body);
        assert_eq!(again.body[items], second.body[items], "{name}");
    }
}

fn pagination_next(body: &Value) -> &Value {
    &body["pagination"]["next_cursor"]
}

fn top_next(body: &Value) -> &Value {
    &body["next_cursor"]
}

async fn created(router: &Router, key: &str, path: &str, body: Value) -> Value {
    let made = call(
        router,
        Method::POST,
        path,
        Some(key),
        Some(&body.to_string()),
    )
    .await;
    assert!(made.status.is_success(), "{path}: {:?}", made.body);
    made.body
}

#[tokio::test]
async fn altered_organization_list_cursors_are_refused() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    for n in 0..4 {
        created(
            &accounts,
            &p.secret_key,
            "/v1/organizations",
            json!({"name": format!("org {n}")}),
        )
        .await;
    }
    List {
        name: "accounts organizations",
        router: &accounts,
        key: &p.secret_key,
        request: Request::Get("/v1/organizations?limit=1"),
    }
    .refuses_altered_cursors(pagination_next, "items")
    .await;
}

#[tokio::test]
async fn altered_cursors_of_a_sessions_organizations_are_refused() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let ann = session_token(&p, "ann", None);
    let bob = session_token(&p, "bob", None);
    for n in 0..3 {
        for token in [&ann, &bob] {
            created(
                &accounts,
                token,
                "/v1/organizations",
                json!({"name": format!("org {n}")}),
            )
            .await;
        }
    }
    let list = List {
        name: "a session's organizations",
        router: &accounts,
        key: &ann,
        request: Request::Get("/v1/organizations?limit=1"),
    };
    list.refuses_altered_cursors(pagination_next, "items").await;

    // Ann's cursor pointed into Bob's index of the same project.
    let theirs = call(
        &accounts,
        Method::GET,
        "/v1/organizations?limit=1",
        Some(&bob),
        None,
    )
    .await;
    let mine = list.read(None).await;
    let into_bobs = transplant(
        pagination_next(&mine.body).as_str().unwrap(),
        pagination_next(&theirs.body).as_str().unwrap(),
    );
    refused_as_invalid(
        "ann's cursor pointed at bob's index",
        &list.read(Some(&into_bobs)).await,
    );
}

#[tokio::test]
async fn altered_membership_and_timeline_cursors_are_refused() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let mut orgs = Vec::new();
    for org in ["acme", "globex"] {
        let made = created(
            &client,
            &p.secret_key,
            "/api/client/organizations",
            json!({"identifier": [{"external_id": org}], "name": org}),
        )
        .await;
        orgs.push(made["id"].as_str().unwrap().to_owned());
        for user in ["u1", "u2", "u3"] {
            created(
                &client,
                &p.secret_key,
                "/api/client/organizations/users",
                json!({"organization": {"identifier": [{"external_id": org}]},
                       "user": {"identifier": [{"external_id": format!("{org}-{user}")}]}}),
            )
            .await;
        }
    }
    let members = |org: &str| format!("/v1/organizations/{org}/memberships?limit=1");
    let (acme, globex) = (members(&orgs[0]), members(&orgs[1]));
    let list = List {
        name: "memberships",
        router: &accounts,
        key: &p.secret_key,
        request: Request::Get(&acme),
    };
    list.refuses_altered_cursors(pagination_next, "items").await;

    // Acme's cursor pointed into Globex's membership partition.
    let theirs = call(&accounts, Method::GET, &globex, Some(&p.secret_key), None).await;
    let mine = list.read(None).await;
    let into_globex = transplant(
        pagination_next(&mine.body).as_str().unwrap(),
        pagination_next(&theirs.body).as_str().unwrap(),
    );
    refused_as_invalid(
        "acme's cursor pointed at globex's memberships",
        &list.read(Some(&into_globex)).await,
    );

    // The timeline: the creation and three renames.
    for n in 1..=3 {
        let renamed = call(
            &accounts,
            Method::PATCH,
            &format!("/v1/organizations/{}", orgs[0]),
            Some(&p.secret_key),
            Some(&json!({"name": format!("acme {n}")}).to_string()),
        )
        .await;
        assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    }
    let events = format!("/v1/organizations/{}/events?limit=1", orgs[0]);
    List {
        name: "timeline",
        router: &accounts,
        key: &p.secret_key,
        request: Request::Get(&events),
    }
    .refuses_altered_cursors(pagination_next, "items")
    .await;
}

#[tokio::test]
async fn altered_cleanup_cursors_are_refused() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let cleanup = cleanup::router(state.clone());
    for n in 0..3 {
        let made = created(
            &accounts,
            &p.secret_key,
            "/v1/organizations",
            json!({"name": format!("gone {n}")}),
        )
        .await;
        let id = made["id"].as_str().unwrap();
        let deleted = call(
            &accounts,
            Method::DELETE,
            &format!("/v1/organizations/{id}"),
            Some(&p.secret_key),
            None,
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    }
    List {
        name: "pending cleanups",
        router: &cleanup,
        key: &p.secret_key,
        request: Request::Get("/v2/organization/cleanup?limit=1"),
    }
    .refuses_altered_cursors(top_next, "items")
    .await;
}

#[tokio::test]
async fn altered_segment_cursors_are_refused() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let segments = segments::router(state.clone());
    for j in 0..4 {
        created(
            &client,
            &p.secret_key,
            "/api/client/users",
            json!({"identifier": [{"external_id": format!("u{j}")}], "data": {"plan": "premium"}}),
        )
        .await;
    }
    let premium = json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"});
    List {
        name: "segment evaluation",
        router: &segments,
        key: &p.secret_key,
        request: Request::Post(
            "/api/admin/segments/evaluate",
            json!({"rule": premium, "limit": 1}),
        ),
    }
    .refuses_altered_cursors(top_next, "users")
    .await;
}
