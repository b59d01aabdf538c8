//! What the vendors' published clients rely on beyond status and body
//! (issue 20, part 2): Lunogram's js-sdk parses any answer labelled JSON,
//! so an empty answer carries no JSON content type; Stainless-generated
//! clients retry 408, 409, 429 and 5xx unless `x-should-retry` says
//! otherwise, so every refusal says whether a retry can help.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use integration_tests::{call, project, send, state, Exchange};

fn should_retry(answer: &Exchange) -> Option<&str> {
    answer
        .headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
}

fn assert_empty_and_untyped(answer: &Exchange, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::NO_CONTENT,
        "{what}: {:?}",
        answer.body
    );
    assert!(answer.body.is_null(), "{what}: a body {:?}", answer.body);
    assert_eq!(answer.content_type, None, "{what} is labelled");
}

// Every exchange of the suite (tests/common `send`) also fails on an empty
// answer with a content type and on a JSON label over a body that is not
// JSON, so every route the suite calls is checked; these are the empty
// answers of the clients' own flows, named.
#[tokio::test]
async fn empty_answers_carry_no_content_type_in_every_family() {
    let state = state().await;
    let p = project(&state).await;
    let key = Some(p.secret_key.as_str());

    // client: DELETE an organization, and a member.
    let client = client::router(state.clone());
    let org = r#"{"identifier": [{"external_id": "habits"}], "name": "Habits"}"#;
    let created = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        key,
        Some(org),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let member = r#"{"organization": {"identifier": [{"external_id": "habits"}]}, "user": {"identifier": [{"external_id": "u1"}]}}"#;
    let added = call(
        &client,
        Method::POST,
        "/api/client/organizations/users",
        key,
        Some(member),
    )
    .await;
    assert!(added.status.is_success(), "{:?}", added.body);
    let removed = call(
        &client,
        Method::DELETE,
        "/api/client/organizations/users",
        key,
        Some(member),
    )
    .await;
    assert_empty_and_untyped(&removed, "client remove member");
    let deleted = call(
        &client,
        Method::DELETE,
        "/api/client/organizations",
        key,
        Some(r#"{"identifier": [{"external_id": "habits"}]}"#),
    )
    .await;
    assert_empty_and_untyped(&deleted, "client delete organization");

    // accounts: DELETE an organization.
    let accounts = accounts::router(state.clone());
    let made = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        key,
        Some(r#"{"name": "Habits"}"#),
    )
    .await;
    assert!(made.status.is_success(), "{:?}", made.body);
    let id = made.body["id"].as_str().expect("an id").to_owned();
    let gone = call(
        &accounts,
        Method::DELETE,
        &format!("/v1/organizations/{id}"),
        key,
        None,
    )
    .await;
    assert_empty_and_untyped(&gone, "accounts delete organization");
}

#[tokio::test]
async fn refusals_say_whether_a_retry_can_help() {
    let state = state().await;
    let p = project(&state).await;
    let key = Some(p.secret_key.as_str());
    let accounts = accounts::router(state.clone());

    // The handler's own refusal.
    let missing = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{}", uuid::Uuid::now_v7()),
        key,
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(should_retry(&missing), Some("false"));

    // The credential check's.
    let unknown = call(
        &accounts,
        Method::GET,
        "/v1/organizations",
        Some("sk_nope"),
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(should_retry(&unknown), Some("false"));

    // axum's own (turned into a problem on the way out).
    let client = client::router(state.clone());
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/client/organizations")
        .header("authorization", format!("Bearer {}", p.secret_key))
        .header("content-type", "text/plain")
        .body(Body::from("name=x"))
        .expect("a request");
    let unsupported = send(&client, request).await;
    assert_eq!(unsupported.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(should_retry(&unsupported), Some("false"));
    let wrong_method = call(&client, Method::PUT, "/api/client/organizations", key, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(should_retry(&wrong_method), Some("false"));

    // A success says nothing.
    let listed = call(&accounts, Method::GET, "/v1/organizations", key, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(should_retry(&listed), None);
}

/// The last owner's 409 cannot be fixed by waiting; a replayed empty answer
/// (Idempotency-Key) is as untyped as the first.
#[tokio::test]
async fn a_leave_says_when_not_to_retry_and_its_replay_is_untyped() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let ann = integration_tests::session_token(&p, "ann", None);
    let created = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&ann),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let org = created.body["id"].as_str().expect("an id").to_owned();
    let refused = call(
        &accounts,
        Method::POST,
        &format!("/v1/organizations/{org}/leave"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(
        should_retry(&refused),
        Some("false"),
        "the last owner stays the last owner"
    );

    let named = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(r#"{"identifier": [{"external_id": "acme"}], "name": "Acme"}"#),
    )
    .await;
    assert_eq!(named.status, StatusCode::OK);
    let client_org = named.body["id"].as_str().expect("an id").to_owned();
    let added = call(&client, Method::POST, "/api/client/organizations/users", Some(&p.secret_key), Some(r#"{
        "organization": {"identifier": [{"external_id": "acme"}]}, "user": {"identifier": [{"source": "session", "external_id": "bob"}]}}"#)).await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    let bob = integration_tests::session_token(&p, "bob", None);
    let leave = || {
        Request::builder()
            .method(Method::POST)
            .uri(format!("/v1/organizations/{client_org}/leave"))
            .header("authorization", format!("Bearer {bob}"))
            .header("idempotency-key", "leave-once")
            .body(Body::empty())
            .expect("a request")
    };
    let left = send(&accounts, leave()).await;
    assert_empty_and_untyped(&left, "leave");
    let replayed = send(&accounts, leave()).await;
    assert_eq!(
        replayed
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_empty_and_untyped(&replayed, "the replayed leave");
}

/// epilot's `putSettingsValue({org_id, key}, 'de')`: axios sends a string as
/// raw text labelled `application/x-www-form-urlencoded`. The text is the
/// value; a JSON body means what it says, under any label.
#[tokio::test]
async fn a_setting_sent_as_axios_sends_a_string_is_that_string() {
    let state = state().await;
    let p = project(&state).await;
    let tenant = tenant::router(state.clone());
    let body = serde_json::json!({
        "organization_detail": {"name": "Acme", "type": "Vendor", "pricing_tier_id": "professional",
                                "email_address": "office@acme.example", "organization_use": "Production"},
        "owner_user": {"full_name": "Ada Owner", "email_address": "Ada@acme.example"}
    })
    .to_string();
    let made = call(
        &tenant,
        Method::POST,
        "/v2/organization",
        Some(&p.secret_key),
        Some(&body),
    )
    .await;
    assert!(made.status.is_success(), "{:?}", made.body);
    let org = made.body["id"].as_str().expect("an id").to_owned();
    let put = |key: &str, content_type: &str, body: &str| {
        Request::builder()
            .method(Method::PUT)
            .uri(format!("/v2/organization/{org}/settings/{key}"))
            .header("authorization", format!("Bearer {}", p.secret_key))
            .header("content-type", content_type)
            .body(Body::from(body.to_owned()))
            .expect("a request")
    };
    let form = "application/x-www-form-urlencoded";
    let language = send(&tenant, put("language", form, "de")).await;
    assert_eq!(language.status, StatusCode::OK, "{:?}", language.body);
    assert_eq!(language.body, serde_json::json!("de"));
    let spaced = send(
        &tenant,
        put("greeting", "text/plain; charset=utf-8", "hello world"),
    )
    .await;
    assert_eq!(spaced.body, serde_json::json!("hello world"));
    let number = send(&tenant, put("seats", form, "42")).await;
    assert_eq!(
        number.body,
        serde_json::json!(42),
        "a JSON body keeps its meaning"
    );
    let object = send(
        &tenant,
        put("theme", "application/json", r#"{"dark": true}"#),
    )
    .await;
    assert_eq!(object.body, serde_json::json!({"dark": true}));
    let broken = send(&tenant, put("theme", "application/json", r#"{"dark": tru"#)).await;
    assert_eq!(
        broken.status,
        StatusCode::BAD_REQUEST,
        "labelled JSON must be JSON"
    );

    let settings = call(
        &tenant,
        Method::GET,
        &format!("/v2/organization/{org}/settings"),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(settings.status, StatusCode::OK, "{:?}", settings.body);
    let text = settings.body.to_string();
    for stored in [
        r#""language":"de""#,
        r#""greeting":"hello world""#,
        r#""seats":42"#,
        r#""theme":{"dark":true}"#,
    ] {
        assert!(text.contains(stored), "{stored} in {text}");
    }
}

/// Holds the first `TransactWriteItems` a DynamoDB client sends until the
/// test releases it: a request caught inside its handler's write, its
/// Idempotency-Key claimed and not yet answered.
#[derive(Clone, Debug, Default)]
struct HoldFirstWrite(std::sync::Arc<Hold>);

#[derive(Debug, Default)]
struct Hold {
    taken: std::sync::atomic::AtomicBool,
    entered: (std::sync::Mutex<bool>, std::sync::Condvar),
    released: (std::sync::Mutex<bool>, std::sync::Condvar),
}

fn signal((flag, changed): &(std::sync::Mutex<bool>, std::sync::Condvar)) {
    *flag.lock().expect("the hold's lock") = true;
    changed.notify_all();
}

fn wait_for((flag, changed): &(std::sync::Mutex<bool>, std::sync::Condvar)) -> bool {
    let (done, _) = changed
        .wait_timeout_while(
            flag.lock().expect("the hold's lock"),
            std::time::Duration::from_secs(30),
            |done| !*done,
        )
        .expect("the hold's lock");
    *done
}

impl aws_sdk_dynamodb::config::Intercept for HoldFirstWrite {
    fn name(&self) -> &'static str {
        "HoldFirstWrite"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let is_write = context
            .request()
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.ends_with(".TransactWriteItems"));
        if is_write && !self.0.taken.swap(true, std::sync::atomic::Ordering::SeqCst) {
            signal(&self.0.entered);
            // The hook cannot await: block, handing this worker's queued
            // tasks to another thread (else they wait for the release too).
            tokio::task::block_in_place(|| wait_for(&self.0.released));
        }
        Ok(())
    }
}

/// A request with the same Idempotency-Key as one still running is refused
/// with a 409 that says a retry will help; once the first has answered, the
/// retry gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_still_in_progress_says_retry() {
    let base = state().await;
    // Made before the hold is in place: its own write is not the one held.
    let p = project(&base).await;
    let hold = HoldFirstWrite::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        base.aws
            .dynamodb
            .config()
            .to_builder()
            .interceptor(hold.clone())
            .build(),
    );
    let aws = shared::Aws {
        dynamodb,
        ..base.aws.clone()
    };
    let state = shared::AppState::new(base.config.clone(), aws);
    let accounts = accounts::router(state.clone());
    let create = || {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/organizations")
            .header("authorization", format!("Bearer {}", p.secret_key))
            .header("content-type", "application/json")
            .header("idempotency-key", "create-acme")
            .body(Body::from(r#"{"name": "Acme"}"#))
            .expect("a request")
    };

    let first = tokio::spawn({
        let (accounts, request) = (accounts.clone(), create());
        async move { send(&accounts, request).await }
    });
    let held = hold.clone();
    let entered = tokio::task::spawn_blocking(move || wait_for(&held.0.entered))
        .await
        .expect("the waiting thread");
    assert!(entered, "the first request never reached its write");

    let busy = send(&accounts, create()).await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "{:?}", busy.body);
    assert_eq!(should_retry(&busy), Some("true"), "{:?}", busy.body);
    assert!(
        busy.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("still in progress")),
        "{:?}",
        busy.body
    );

    signal(&hold.0.released);
    let answered = first.await.expect("the first request");
    assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);
    let retried = send(&accounts, create()).await;
    assert_eq!(retried.status, StatusCode::OK, "{:?}", retried.body);
    assert_eq!(
        retried
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(retried.body["id"], answered.body["id"], "one organization");
}
