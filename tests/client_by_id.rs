//! The client family reaches organizations made by the other families
//! (issue 20, part 3): `{"source": "id", "external_id": "<organization
//! id>"}` names an existing organization by its id — matching only, never
//! stored, unknown ids 404 — and an upsert that names one that way with
//! other identifiers attaches them (uniqueness and limits as for any
//! identifier; a publishable key only where it may change the organization).

use axum::http::{Method, StatusCode};
use integration_tests::{
    call, delete_messages, project, project_items, receive_all, session_token, sqs_event, state,
    state_with_queue, Exchange,
};
use serde_json::{json, Value};
use shared::AppState;

const ORGS: &str = "/api/client/organizations";
const MEMBERS: &str = "/api/client/organizations/users";
const USERS: &str = "/api/client/users";
const EVENTS: &str = "/api/client/organizations/events";
const SCHEDULED: &str = "/api/client/organizations/scheduled";

/// An organization made through accounts (/v1): no identifier at all.
async fn made_by_accounts(accounts: &axum::Router, credential: &str, name: &str) -> String {
    let made = call(
        accounts,
        Method::POST,
        "/v1/organizations",
        Some(credential),
        Some(&json!({"name": name}).to_string()),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    made.body["id"].as_str().expect("an id").to_owned()
}

fn by_id(org: &str) -> Value {
    json!({"source": "id", "external_id": org})
}

async fn upsert(client: &axum::Router, key: &str, body: Value) -> Exchange {
    call(
        client,
        Method::POST,
        ORGS,
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

/// The identifiers an organization holds, as `source/external_id`.
fn held(body: &Value) -> Vec<String> {
    body["identifier"]
        .as_array()
        .expect("identifiers")
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["source"].as_str().unwrap_or(""),
                i["external_id"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn should_retry(answer: &Exchange) -> Option<&str> {
    answer
        .headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
}

/// No identifier of source `id` is ever stored: no marker names one.
async fn assert_no_id_markers(state: &AppState, project: uuid::Uuid) {
    let prefix = format!("P#{project}#ORGID#id#");
    let user_prefix = format!("P#{project}#USERID#id#");
    let markers: Vec<String> = project_items(state, project)
        .await
        .iter()
        .filter_map(|item| item.get("PK").and_then(|v| v.as_s().ok()).cloned())
        .filter(|pk| pk.starts_with(&prefix) || pk.starts_with(&user_prefix))
        .collect();
    assert!(markers.is_empty(), "markers of source id: {markers:?}");
}

/// Drains the events queue through the processor, as the event source would.
async fn drain(state: &AppState) {
    let url = state.config.events_queue_url.clone().expect("a queue");
    loop {
        let messages = receive_all(state, &url, 30).await;
        if messages.is_empty() {
            return;
        }
        for chunk in messages.chunks(10) {
            let response = processor::handle(state, sqs_event(chunk)).await;
            assert!(response.batch_item_failures.is_empty());
        }
        delete_messages(state, &url, &messages).await;
    }
}

#[tokio::test]
async fn an_organization_made_through_v1_takes_identifiers_by_its_id() {
    let state = state_with_queue().await;
    let p = project(&state).await;
    let sk = p.secret_key.as_str();
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let org = made_by_accounts(&accounts, sk, "Acme").await;

    let attached = upsert(
        &client,
        sk,
        json!({"identifier": [by_id(&org), {"external_id": "acme"}, {"source": "crm", "external_id": "A-1"}],
               "data": {"plan": "pro"}}),
    )
    .await;
    assert_eq!(attached.status, StatusCode::OK, "{:?}", attached.body);
    assert_eq!(attached.body["id"], org.as_str(), "the same organization");
    assert_eq!(attached.body["name"], "Acme", "kept when omitted");
    assert_eq!(attached.body["data"]["plan"], "pro");
    let mut identifiers = held(&attached.body);
    identifiers.sort();
    assert_eq!(
        identifiers,
        ["crm/A-1", "default/acme"],
        "the id names, it is not held"
    );
    assert_no_id_markers(&state, p.project_id).await;
    // Naming it again by id alone changes nothing.
    let again = upsert(&client, sk, json!({"identifier": [by_id(&org)]})).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["version"], attached.body["version"]);

    // The new identifiers now name it everywhere in the client family.
    let member = call(
        &client,
        Method::POST,
        MEMBERS,
        Some(sk),
        Some(
            &json!({"organization": {"identifier": [{"external_id": "acme"}]},
                    "user": {"identifier": [{"external_id": "u1"}]}, "data": {"role": "admin"}})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(member.status, StatusCode::OK, "{:?}", member.body);
    let members = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{org}/memberships"),
        Some(sk),
        None,
    )
    .await;
    assert_eq!(members.status, StatusCode::OK, "{:?}", members.body);
    assert_eq!(
        members.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        members.body
    );
    // Users are named by their id the same way.
    let user = call(
        &client,
        Method::POST,
        USERS,
        Some(sk),
        Some(&json!({"identifier": [{"external_id": "u1"}]}).to_string()),
    )
    .await;
    assert_eq!(user.status, StatusCode::OK, "{:?}", user.body);
    let user_id = user.body["id"].as_str().expect("a user id").to_owned();
    let linked = call(
        &client,
        Method::POST,
        USERS,
        Some(sk),
        Some(
            &json!({"identifier": [by_id(&user_id), {"source": "crm", "external_id": "U-1"}]})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(linked.status, StatusCode::OK, "{:?}", linked.body);
    assert_eq!(linked.body["id"], user_id.as_str());
    let mut user_identifiers = held(&linked.body);
    user_identifiers.sort();
    assert_eq!(user_identifiers, ["crm/U-1", "default/u1"]);

    let posted = call(
        &client,
        Method::POST,
        EVENTS,
        Some(sk),
        Some(
            &json!([{"identifier": [{"source": "crm", "external_id": "A-1"}], "name": "renewed",
                     "data": {"seats": 12}}])
            .to_string(),
        ),
    )
    .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{:?}", posted.body);
    assert_eq!(posted.body["accepted"], 1, "{:?}", posted.body);
    drain(&state).await;
    let timeline = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{org}/events?name=renewed"),
        Some(sk),
        None,
    )
    .await;
    assert_eq!(timeline.status, StatusCode::OK, "{:?}", timeline.body);
    assert_eq!(
        timeline.body["items"][0]["data"]["seats"], 12,
        "{:?}",
        timeline.body
    );
    let scheduled = call(
        &client,
        Method::POST,
        SCHEDULED,
        Some(sk),
        Some(
            &json!({"identifier": [{"external_id": "acme"}], "name": "trial_ends",
                    "scheduled_at": "2030-01-01T00:00:00Z"})
            .to_string(),
        ),
    )
    .await;
    assert!(scheduled.status.is_success(), "{:?}", scheduled.body);
    // And the organization read through /v1 is the one that changed.
    let read = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{org}"),
        Some(sk),
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(read.body["name"], "Acme");
}

#[tokio::test]
async fn an_unknown_id_is_404_and_creates_nothing() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let before = project_items(&state, p.project_id).await.len();
    for named in [
        by_id(&uuid::Uuid::now_v7().to_string()),
        by_id("not-a-uuid"),
    ] {
        let refused = upsert(
            &client,
            &p.secret_key,
            json!({"identifier": [named, {"external_id": "fresh"}], "name": "Fresh"}),
        )
        .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
        assert_eq!(should_retry(&refused), Some("false"));
        // A user is named the same way, and is never created by it either.
        let user = call(
            &client,
            Method::POST,
            USERS,
            Some(&p.secret_key),
            Some(&json!({"identifier": [named, {"external_id": "someone"}]}).to_string()),
        )
        .await;
        assert_eq!(user.status, StatusCode::NOT_FOUND, "{:?}", user.body);
        let member = call(
            &client,
            Method::POST,
            MEMBERS,
            Some(&p.secret_key),
            Some(
                &json!({"organization": {"identifier": [named]},
                        "user": {"identifier": [{"external_id": "someone"}]}})
                .to_string(),
            ),
        )
        .await;
        assert_eq!(member.status, StatusCode::NOT_FOUND, "{:?}", member.body);
    }
    assert_eq!(
        project_items(&state, p.project_id).await.len(),
        before,
        "nothing written"
    );
}

#[tokio::test]
async fn an_identifier_of_another_organization_is_the_usual_conflict() {
    let state = state().await;
    let p = project(&state).await;
    let sk = p.secret_key.as_str();
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let org = made_by_accounts(&accounts, sk, "Acme").await;
    let other = upsert(
        &client,
        sk,
        json!({"identifier": [{"external_id": "beta"}], "name": "Beta"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK, "{:?}", other.body);

    // What an upsert naming two organizations by plain identifiers answers…
    let gamma = upsert(
        &client,
        sk,
        json!({"identifier": [{"external_id": "gamma"}]}),
    )
    .await;
    assert_eq!(gamma.status, StatusCode::OK, "{:?}", gamma.body);
    let usual = upsert(
        &client,
        sk,
        json!({"identifier": [{"external_id": "beta"}, {"external_id": "gamma"}]}),
    )
    .await;
    assert_eq!(usual.status, StatusCode::CONFLICT, "{:?}", usual.body);
    // …is what naming one by id and another's identifier answers.
    let before = project_items(&state, p.project_id).await;
    let refused = upsert(
        &client,
        sk,
        json!({"identifier": [by_id(&org), {"external_id": "beta"}, {"external_id": "delta"}]}),
    )
    .await;
    assert_eq!(refused.status, usual.status, "{:?}", refused.body);
    assert_eq!(refused.body["code"], usual.body["code"]);
    assert_eq!(refused.body["detail"], usual.body["detail"]);
    assert_eq!(
        should_retry(&refused),
        Some("false"),
        "a retry cannot fix it"
    );
    assert_eq!(
        project_items(&state, p.project_id).await,
        before,
        "nothing attached"
    );
    let read = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{org}"),
        Some(sk),
        None,
    )
    .await;
    assert_eq!(read.body["name"], "Acme");
}

#[tokio::test]
async fn attaching_by_id_counts_against_the_identifier_limit() {
    let state = state().await;
    let p = project(&state).await;
    let sk = p.secret_key.as_str();
    let client = client::router(state.clone());
    let org = made_by_accounts(&accounts::router(state.clone()), sk, "Full").await;
    let limit = shared::limits::MAX_IDENTIFIERS_PER_RECORD;
    let per_request = shared::domain::identifier::MAX_IDENTIFIERS_PER_REQUEST - 1;
    let mut attached = 0;
    while attached < limit {
        let batch = per_request.min(limit - attached);
        let mut identifier = vec![by_id(&org)];
        identifier
            .extend((attached..attached + batch).map(|i| json!({"external_id": format!("n{i}")})));
        let answer = upsert(&client, sk, json!({"identifier": identifier})).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        attached += batch;
        assert_eq!(held(&answer.body).len(), attached);
    }
    let one_more = upsert(
        &client,
        sk,
        json!({"identifier": [by_id(&org), {"external_id": "one more"}]}),
    )
    .await;
    assert_eq!(
        one_more.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        one_more.body
    );
    assert_eq!(one_more.body["code"], "limit_exceeded");
}

/// A publishable key changes only organizations without an owner (DESIGN,
/// "Auth and tenancy"): naming one by id changes nothing about that.
#[tokio::test]
async fn a_publishable_key_attaches_only_where_it_may_change_the_organization() {
    let state = state().await;
    let p = project(&state).await;
    let pk = p.publishable_key.as_str();
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());

    // Made by a backend with the secret key: no owner.
    let ownerless = made_by_accounts(&accounts, &p.secret_key, "Backend Made").await;
    let attached = upsert(
        &client,
        pk,
        json!({"identifier": [by_id(&ownerless), {"external_id": "backend-made"}]}),
    )
    .await;
    assert_eq!(attached.status, StatusCode::OK, "{:?}", attached.body);
    assert_eq!(held(&attached.body), ["default/backend-made"]);

    // Made by a session: its owner decides, a publishable key is refused.
    let ann = session_token(&p, "ann", None);
    let owned = made_by_accounts(&accounts, &ann, "Ann's").await;
    let before = project_items(&state, p.project_id).await;
    for identifier in [
        json!([by_id(&owned), {"external_id": "anns"}]),
        json!([by_id(&owned)]),
    ] {
        let refused = upsert(
            &client,
            pk,
            json!({"identifier": identifier, "name": "pwned"}),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    }
    let session = upsert(
        &client,
        pk,
        json!({"identifier": [by_id(&ownerless), {"source": "session", "external_id": "mallory"}]}),
    )
    .await;
    assert_eq!(session.status, StatusCode::FORBIDDEN, "{:?}", session.body);
    assert_eq!(
        project_items(&state, p.project_id).await,
        before,
        "nothing written"
    );
    // The secret key attaches to the owned one.
    let by_secret = upsert(
        &client,
        &p.secret_key,
        json!({"identifier": [by_id(&owned), {"external_id": "anns"}]}),
    )
    .await;
    assert_eq!(by_secret.status, StatusCode::OK, "{:?}", by_secret.body);
    assert_eq!(by_secret.body["id"], owned.as_str());
    assert_no_id_markers(&state, p.project_id).await;
}
