//! The attacks of the security issue, each as a client would send it, each
//! refused and leaving the records as they were. (The image bomb is in
//! tests/logos.rs, altered cursors in tests/cursors.rs, identity-provider
//! tokens in tests/issuers.rs, credentials in logs in tests/logs.rs.)

use axum::http::{Method, StatusCode};
use integration_tests::{call, project, session_token, state};
use serde_json::{json, Value};

const ORGS: &str = "/v1/organizations";

fn session(p: &shared::store::CreatedProject, user: &str) -> String {
    session_token(p, user, None)
}

/// Alice's session creates an organization: she is its owner.
async fn alices_organization(accounts: &axum::Router, p: &shared::store::CreatedProject) -> String {
    let created = call(
        accounts,
        Method::POST,
        ORGS,
        Some(&session(p, "alice")),
        Some(r#"{"name": "Alice Inc"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

fn assert_forbidden(exchange: &integration_tests::Exchange, what: &str) {
    assert_eq!(
        exchange.status,
        StatusCode::FORBIDDEN,
        "{what}: {:?}",
        exchange.body
    );
    assert_eq!(
        exchange.content_type.as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(exchange.body["code"], "forbidden", "{what}");
}

#[tokio::test]
async fn a_publishable_key_cannot_take_over_a_session_user() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let org = alices_organization(&accounts, &p).await;
    let pk = Some(p.publishable_key.as_str());
    let before = integration_tests::project_items(&state, p.project_id).await;

    // Attach Mallory's identifier to Alice's user: session identifiers are
    // not a publishable key's to write, in any of the client's writes.
    let takeover = call(&client, Method::POST, "/api/client/users", pk, Some(r#"{"identifier": [{"source": "session", "external_id": "alice"}, {"source": "session", "external_id": "mallory"}]}"#)).await;
    assert_forbidden(&takeover, "attaching a session identifier");
    let rewrite = call(&client, Method::POST, "/api/client/users", pk, Some(r#"{"identifier": [{"source": "session", "external_id": "alice"}], "data": {"email": "mallory@evil.test"}}"#)).await;
    assert_forbidden(&rewrite, "rewriting a session user's data");

    // Named by another identifier the backend linked (secret key), Alice's
    // user is still hers: the publishable key cannot touch it.
    let linked = call(&client, Method::POST, "/api/client/users", Some(&p.secret_key), Some(r#"{"identifier": [{"source": "session", "external_id": "alice"}, {"external_id": "user_1"}]}"#)).await;
    assert_eq!(linked.status, StatusCode::OK, "{:?}", linked.body);
    let before_linked = integration_tests::project_items(&state, p.project_id).await;
    let by_backend_id = call(&client, Method::POST, "/api/client/users", pk, Some(r#"{"identifier": [{"external_id": "user_1"}, {"external_id": "mallory"}], "data": {"email": "mallory@evil.test"}}"#)).await;
    assert_forbidden(&by_backend_id, "a session user named by a backend id");
    assert_eq!(
        integration_tests::project_items(&state, p.project_id).await,
        before_linked,
        "nothing written"
    );

    // Mallory's session does not reach Alice's organization.
    let mallory = session(&p, "mallory");
    let rename = call(
        &accounts,
        Method::PATCH,
        &format!("{ORGS}/{org}"),
        Some(&mallory),
        Some(r#"{"name": "Mallory's now"}"#),
    )
    .await;
    assert_eq!(rename.status, StatusCode::NOT_FOUND, "{:?}", rename.body);
    let read = call(
        &accounts,
        Method::GET,
        &format!("{ORGS}/{org}"),
        Some(&session(&p, "alice")),
        None,
    )
    .await;
    assert_eq!(read.body["name"], "Alice Inc");
    assert_ne!(read.body["billing_email"], "mallory@evil.test");
    assert!(before.len() <= before_linked.len());
}

#[tokio::test]
async fn a_publishable_key_cannot_join_or_change_an_owned_organization() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let org = alices_organization(&accounts, &p).await;
    let pk = Some(p.publishable_key.as_str());
    let by_id = json!({"identifier": [{"source": "id", "external_id": org}]});
    let before = integration_tests::project_items(&state, p.project_id).await;

    let join = call(&client, Method::POST, "/api/client/organizations/users", pk, Some(&json!({"organization": by_id, "user": {"identifier": [{"source": "session", "external_id": "mallory"}]}}).to_string())).await;
    assert_forbidden(&join, "joining with a session identifier");
    let join_plain = call(
        &client,
        Method::POST,
        "/api/client/organizations/users",
        pk,
        Some(
            &json!({"organization": by_id, "user": {"identifier": [{"external_id": "mallory"}]}})
                .to_string(),
        ),
    )
    .await;
    assert_forbidden(&join_plain, "adding any user to an owned organization");
    let rename = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        pk,
        Some(&json!({"identifier": by_id["identifier"], "name": "pwned"}).to_string()),
    )
    .await;
    assert_forbidden(&rename, "renaming an owned organization");
    let remove = call(&client, Method::DELETE, "/api/client/organizations/users", pk, Some(&json!({"organization": by_id, "user": {"identifier": [{"source": "session", "external_id": "alice"}]}}).to_string())).await;
    assert_forbidden(&remove, "removing its owner");
    let schedule = call(&client, Method::POST, "/api/client/organizations/scheduled", pk, Some(&json!({"identifier": by_id["identifier"], "name": "x", "scheduled_at": "2030-01-01T00:00:00Z"}).to_string())).await;
    assert_forbidden(&schedule, "scheduling on an owned organization");
    let delete = call(
        &client,
        Method::DELETE,
        "/api/client/organizations",
        pk,
        Some(&by_id.to_string()),
    )
    .await;
    assert_forbidden(&delete, "deleting an owned organization");
    assert_eq!(
        integration_tests::project_items(&state, p.project_id).await,
        before,
        "nothing written"
    );

    // Unowned organizations and plain users stay the publishable key's.
    let mine = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        pk,
        Some(r#"{"identifier": [{"external_id": "acme"}], "name": "Acme"}"#),
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    let member = call(&client, Method::POST, "/api/client/organizations/users", pk, Some(r#"{"organization": {"identifier": [{"external_id": "acme"}]}, "user": {"identifier": [{"external_id": "bob"}]}}"#)).await;
    assert_eq!(member.status, StatusCode::OK, "{:?}", member.body);
    let removed = call(&client, Method::DELETE, "/api/client/organizations/users", pk, Some(r#"{"organization": {"identifier": [{"external_id": "acme"}]}, "user": {"identifier": [{"external_id": "bob"}]}}"#)).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    // A user a session signs in as cannot be added, even to an unowned one.
    let session_user = call(
        &accounts,
        Method::GET,
        ORGS,
        Some(&session(&p, "carol")),
        None,
    )
    .await;
    assert_eq!(session_user.status, StatusCode::OK);
    let linked = call(&client, Method::POST, "/api/client/users", Some(&p.secret_key), Some(r#"{"identifier": [{"source": "session", "external_id": "carol"}, {"external_id": "carol_backend"}]}"#)).await;
    assert_eq!(linked.status, StatusCode::OK);
    let add_carol = call(&client, Method::POST, "/api/client/organizations/users", pk, Some(r#"{"organization": {"identifier": [{"external_id": "acme"}]}, "user": {"identifier": [{"external_id": "carol_backend"}]}}"#)).await;
    assert_forbidden(&add_carol, "adding a session user by its backend id");
    // Nor can the organization go while a session is its member: that
    // would take the session's access away.
    let by_secret = call(&client, Method::POST, "/api/client/organizations/users", Some(&p.secret_key), Some(r#"{"organization": {"identifier": [{"external_id": "acme"}]}, "user": {"identifier": [{"external_id": "carol_backend"}]}}"#)).await;
    assert_eq!(by_secret.status, StatusCode::OK, "{:?}", by_secret.body);
    let delete_with_session = call(
        &client,
        Method::DELETE,
        "/api/client/organizations",
        pk,
        Some(r#"{"identifier": [{"external_id": "acme"}]}"#),
    )
    .await;
    assert_forbidden(
        &delete_with_session,
        "deleting an organization a session is a member of",
    );
    let removed_carol = call(&client, Method::DELETE, "/api/client/organizations/users", Some(&p.secret_key), Some(r#"{"organization": {"identifier": [{"external_id": "acme"}]}, "user": {"identifier": [{"external_id": "carol_backend"}]}}"#)).await;
    assert_eq!(removed_carol.status, StatusCode::NO_CONTENT);
    let deleted = call(
        &client,
        Method::DELETE,
        "/api/client/organizations",
        pk,
        Some(r#"{"identifier": [{"external_id": "acme"}]}"#),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
}

#[tokio::test]
async fn a_publishable_key_posts_events_only_to_unowned_organizations() {
    let state = integration_tests::state_with_queue().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let org = alices_organization(&accounts, &p).await;
    let pk = Some(p.publishable_key.as_str());
    call(
        &client,
        Method::POST,
        "/api/client/organizations",
        pk,
        Some(r#"{"identifier": [{"external_id": "free"}]}"#),
    )
    .await;
    let owned = json!([
        {"name": "visit", "identifier": [{"external_id": "free"}]},
        {"name": "visit", "identifier": [{"source": "id", "external_id": org}]},
    ]);
    let refused = call(
        &client,
        Method::POST,
        "/api/client/organizations/events",
        pk,
        Some(&owned.to_string()),
    )
    .await;
    assert_forbidden(&refused, "an event for an owned organization");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("event 1:"),
        "{:?}",
        refused.body
    );
    let matched = call(
        &client,
        Method::POST,
        "/api/client/organizations/events",
        pk,
        Some(r#"[{"name": "visit", "match": {"plan": "pro"}}]"#),
    )
    .await;
    assert_forbidden(&matched, "a match event");
    let fine = call(
        &client,
        Method::POST,
        "/api/client/organizations/events",
        pk,
        Some(r#"[{"name": "visit", "identifier": [{"external_id": "free"}]}]"#),
    )
    .await;
    assert_eq!(fine.status, StatusCode::ACCEPTED, "{:?}", fine.body);
    let with_secret = call(
        &client,
        Method::POST,
        "/api/client/organizations/events",
        Some(&p.secret_key),
        Some(&owned.to_string()),
    )
    .await;
    assert_eq!(
        with_secret.status,
        StatusCode::ACCEPTED,
        "{:?}",
        with_secret.body
    );
}

#[tokio::test]
async fn members_read_and_owners_change_in_the_crm() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let crm = crm::router(state.clone());
    let org = alices_organization(&accounts, &p).await;
    // The backend makes Bob a plain member (secret key).
    let added = call(&client, Method::POST, "/api/client/organizations/users", Some(&p.secret_key), Some(&json!({"organization": {"identifier": [{"source": "id", "external_id": org}]}, "user": {"identifier": [{"source": "session", "external_id": "bob"}]}}).to_string())).await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    let bob = session(&p, "bob");
    let alice = session(&p, "alice");
    let path = format!("/organizations/{org}");

    let read = call(&crm, Method::GET, &path, Some(&bob), None).await;
    assert_eq!(read.status, StatusCode::OK, "members read");
    let replace = call(
        &crm,
        Method::PUT,
        &path,
        Some(&bob),
        Some(r#"{"title": "Bob's"}"#),
    )
    .await;
    assert_forbidden(&replace, "a member's PUT");
    let patch = call(
        &crm,
        Method::PATCH,
        &path,
        Some(&bob),
        Some(r#"{"title": "Bob's"}"#),
    )
    .await;
    assert_forbidden(&patch, "a member's PATCH");
    let note = call(
        &crm,
        Method::POST,
        &format!("{path}/notes"),
        Some(&bob),
        Some(r#"{"description": "mine", "category": "/note_categories/1"}"#),
    )
    .await;
    assert_forbidden(&note, "a member's note");
    assert_eq!(
        call(&crm, Method::GET, &path, Some(&alice), None)
            .await
            .body["title"],
        "Alice Inc"
    );

    // The owner's note is hers whatever author the body names; a note of
    // another author is not the session's to change or delete.
    let hers = call(&crm, Method::POST, &format!("{path}/notes"), Some(&alice), Some(r#"{"description": "call back", "category": "/note_categories/1", "author": "/users/someone-else"}"#)).await;
    assert_eq!(hers.status, StatusCode::CREATED, "{:?}", hers.body);
    let alice_id = hers.body["author"].clone();
    assert_ne!(alice_id, json!("/users/someone-else"));
    let theirs = call(&crm, Method::POST, &format!("{path}/notes"), Some(&p.secret_key), Some(r#"{"description": "theirs", "category": "/note_categories/1", "author": "/users/carol"}"#)).await;
    let theirs_path = format!("{path}/notes/{}", theirs.body["id"].as_str().unwrap());
    let takeover = call(
        &crm,
        Method::PATCH,
        &theirs_path,
        Some(&alice),
        Some(r#"{"description": "now mine", "author": "/users/x"}"#),
    )
    .await;
    assert_forbidden(&takeover, "changing another author's note");
    let delete = call(&crm, Method::DELETE, &theirs_path, Some(&alice), None).await;
    assert_forbidden(&delete, "deleting another author's note");
    let kept = call(&crm, Method::GET, &theirs_path, Some(&p.secret_key), None).await;
    assert_eq!(
        (
            kept.body["description"].clone(),
            kept.body["author"].clone()
        ),
        (json!("theirs"), json!("/users/carol"))
    );
    let own_path = format!("{path}/notes/{}", hers.body["id"].as_str().unwrap());
    let own = call(
        &crm,
        Method::PATCH,
        &own_path,
        Some(&alice),
        Some(r#"{"description": "called"}"#),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{:?}", own.body);
    assert_eq!(own.body["author"], alice_id);
}

#[tokio::test]
async fn entitlements_need_a_secret_key_and_profile_urls_are_http() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let tenant = tenant::router(state.clone());
    let org = alices_organization(&accounts, &p).await;
    let alice = session(&p, "alice");
    let path = format!("/v2/organization/{org}");
    for (body, field) in [
        (json!({"pricing_tier": "enterprise"}), "pricing_tier"),
        (json!({"type": "Partner"}), "type"),
        (json!({"free_user_limit": 1000000}), "free_user_limit"),
        (json!({"is_unlicensed_org": true}), "is_unlicensed_org"),
        (
            json!({"name": "ok", "organization_use": "Production"}),
            "organization_use",
        ),
        (
            json!({"parent_production_org_id": "x"}),
            "parent_production_org_id",
        ),
    ] {
        let refused = call(
            &tenant,
            Method::PATCH,
            &path,
            Some(&alice),
            Some(&body.to_string()),
        )
        .await;
        assert_forbidden(&refused, field);
        assert!(
            refused.body["detail"].as_str().unwrap().contains(field),
            "{:?}",
            refused.body
        );
    }
    let read: Value = call(&tenant, Method::GET, &path, Some(&alice), None)
        .await
        .body;
    assert_ne!(read["pricing_tier"], "enterprise");
    for field in ["logo_url", "logo_thumbnail_url", "website"] {
        for url in [
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
        ] {
            let bad = call(
                &tenant,
                Method::PATCH,
                &path,
                Some(&p.secret_key),
                Some(&json!({field: url}).to_string()),
            )
            .await;
            assert_eq!(
                bad.status,
                StatusCode::BAD_REQUEST,
                "{field} {url}: {:?}",
                bad.body
            );
        }
    }
    let owner_ok = call(
        &tenant,
        Method::PATCH,
        &path,
        Some(&alice),
        Some(r#"{"name": "Alice GmbH", "website": "https://alice.example"}"#),
    )
    .await;
    assert_eq!(owner_ok.status, StatusCode::OK, "{:?}", owner_ok.body);
    let secret_ok = call(
        &tenant,
        Method::PATCH,
        &path,
        Some(&p.secret_key),
        Some(r#"{"pricing_tier": "enterprise", "free_user_limit": 50}"#),
    )
    .await;
    assert_eq!(secret_ok.status, StatusCode::OK, "{:?}", secret_ok.body);
    assert_eq!(secret_ok.body["pricing_tier"], "enterprise");
}

#[tokio::test]
async fn a_revoked_key_gets_no_idempotent_replay() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let send = |key: String| {
        let client = client.clone();
        async move {
            let request = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/api/client/organizations")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .header("idempotency-key", "retry-1")
                .body(axum::body::Body::from(
                    r#"{"identifier": [{"external_id": "acme"}]}"#,
                ))
                .unwrap();
            integration_tests::send(&client, request).await
        }
    };
    let first = send(p.secret_key.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let replay = send(p.secret_key.clone()).await;
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let key = shared::auth::ApiKey::parse(&p.secret_key).unwrap();
    state.store.revoke_key(&key).await.unwrap();
    let revoked = send(p.secret_key.clone()).await;
    assert_eq!(
        revoked.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        revoked.body
    );
    assert!(revoked.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_publishable_delete_never_races_a_session_members_access_away() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let pk = p.publishable_key.clone();
    let sk = p.secret_key.clone();
    // A session user the backend adds while the publishable key deletes:
    // never may both succeed (the session would lose an access it was given).
    call(&client, Method::POST, "/api/client/users", Some(&sk), Some(r#"{"identifier": [{"source": "session", "external_id": "dora"}, {"external_id": "dora_backend"}]}"#)).await;
    for round in 0..12 {
        let name = format!("race_{round}");
        let created = call(
            &client,
            Method::POST,
            "/api/client/organizations",
            Some(&pk),
            Some(&json!({"identifier": [{"external_id": name}]}).to_string()),
        )
        .await;
        assert_eq!(created.status, StatusCode::OK);
        let add_body = json!({"organization": {"identifier": [{"external_id": name}]}, "user": {"identifier": [{"external_id": "dora_backend"}]}}).to_string();
        let delete_body = json!({"identifier": [{"external_id": name}]}).to_string();
        let (added, deleted) = tokio::join!(
            call(
                &client,
                Method::POST,
                "/api/client/organizations/users",
                Some(&sk),
                Some(&add_body)
            ),
            call(
                &client,
                Method::DELETE,
                "/api/client/organizations",
                Some(&pk),
                Some(&delete_body)
            ),
        );
        assert!(
            !(added.status == StatusCode::OK && deleted.status == StatusCode::NO_CONTENT),
            "round {round}: the member was added and the organization deleted"
        );
        assert!(
            matches!(added.status, StatusCode::OK | StatusCode::NOT_FOUND),
            "{:?}",
            added.body
        );
        assert!(
            matches!(
                deleted.status,
                StatusCode::NO_CONTENT | StatusCode::FORBIDDEN
            ),
            "{:?}",
            deleted.body
        );
    }
}
