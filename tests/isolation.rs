//! Tenant isolation in every family: project B's secret key, B's session
//! tokens and cursors issued to A never reach project A's records — every
//! attempt is refused or finds nothing, leaks nothing, and changes nothing.

use axum::http::{Method, StatusCode};
use integration_tests::{call, project, project_items, session_token, state, Exchange};
use serde_json::json;

fn refused(what: &str, answer: &Exchange) {
    assert!(
        matches!(
            answer.status,
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST
        ),
        "{what}: {} {:?}",
        answer.status,
        answer.body
    );
    assert!(
        !answer.body.to_string().contains("Secret Corp"),
        "{what} leaked A's record: {:?}",
        answer.body
    );
}

#[tokio::test]
async fn another_projects_credentials_and_cursors_reach_nothing_in_any_family() {
    let state = state().await;
    let a = project(&state).await;
    let b = project(&state).await;
    let accounts = accounts::router(state.clone());
    let tenant = tenant::router(state.clone());
    let crm = crm::router(state.clone());
    let client = client::router(state.clone());
    let segments = segments::router(state.clone());
    let cleanup = cleanup::router(state.clone());

    // A's world: two organizations (for a cursor) and a note.
    let mut ids = Vec::new();
    for name in ["Secret Corp", "Secret Corp Two"] {
        let made = call(
            &accounts,
            Method::POST,
            "/v1/organizations",
            Some(&a.secret_key),
            Some(&json!({"name": name}).to_string()),
        )
        .await;
        assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
        ids.push(made.body["id"].as_str().unwrap().to_owned());
    }
    let org = ids[0].clone();
    let by_identifier = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&a.secret_key),
        Some(r#"{"identifier": [{"external_id": "secret"}], "name": "Secret Corp Three"}"#),
    )
    .await;
    assert_eq!(
        by_identifier.status,
        StatusCode::OK,
        "{:?}",
        by_identifier.body
    );
    let note = call(
        &crm,
        Method::POST,
        &format!("/organizations/{org}/notes"),
        Some(&a.secret_key),
        Some(r#"{"description": "Secret Corp's private note", "category": "/note_categories/1"}"#),
    )
    .await;
    assert_eq!(note.status, StatusCode::CREATED, "{:?}", note.body);
    let note_id = note.body["id"].as_str().unwrap().to_owned();
    let page = call(
        &accounts,
        Method::GET,
        "/v1/organizations?limit=1",
        Some(&a.secret_key),
        None,
    )
    .await;
    let cursor = page.body["pagination"]["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let before = project_items(&state, a.project_id).await;

    let key = Some(b.secret_key.as_str());
    let patch = r#"{"name": "Hacked"}"#;
    let cases: Vec<(&str, &axum::Router, Method, String, Option<String>)> = vec![
        (
            "accounts get",
            &accounts,
            Method::GET,
            format!("/v1/organizations/{org}"),
            None,
        ),
        (
            "accounts patch",
            &accounts,
            Method::PATCH,
            format!("/v1/organizations/{org}"),
            Some(patch.into()),
        ),
        (
            "accounts delete",
            &accounts,
            Method::DELETE,
            format!("/v1/organizations/{org}"),
            None,
        ),
        (
            "accounts members",
            &accounts,
            Method::GET,
            format!("/v1/organizations/{org}/memberships"),
            None,
        ),
        (
            "accounts events",
            &accounts,
            Method::GET,
            format!("/v1/organizations/{org}/events"),
            None,
        ),
        (
            "accounts address",
            &accounts,
            Method::POST,
            format!("/v1/organizations/{org}/address"),
            Some(r#"{"city": "X", "country": "DE", "line1": "1", "postal_code": "1"}"#.into()),
        ),
        (
            "accounts domain",
            &accounts,
            Method::POST,
            format!("/v1/organizations/{org}/domains"),
            Some(r#"{"domain": "secret-corp.example"}"#.into()),
        ),
        (
            "accounts cursor",
            &accounts,
            Method::GET,
            format!("/v1/organizations?cursor={cursor}"),
            None,
        ),
        (
            "tenant get",
            &tenant,
            Method::GET,
            format!("/v2/organization/{org}"),
            None,
        ),
        (
            "tenant patch",
            &tenant,
            Method::PATCH,
            format!("/v2/organization/{org}"),
            Some(patch.into()),
        ),
        (
            "tenant settings",
            &tenant,
            Method::GET,
            format!("/v2/organization/{org}/settings"),
            None,
        ),
        (
            "tenant put setting",
            &tenant,
            Method::PUT,
            format!("/v2/organization/{org}/settings/x"),
            Some("true".into()),
        ),
        (
            "tenant data points",
            &tenant,
            Method::GET,
            format!("/v2/organization/{org}/data-points"),
            None,
        ),
        (
            "tenant features",
            &tenant,
            Method::GET,
            format!("/v2/organization/feature-settings?org_id={org}"),
            None,
        ),
        (
            "crm get",
            &crm,
            Method::GET,
            format!("/organizations/{org}"),
            None,
        ),
        (
            "crm put",
            &crm,
            Method::PUT,
            format!("/organizations/{org}"),
            Some(r#"{"title": "Hacked"}"#.into()),
        ),
        (
            "crm notes",
            &crm,
            Method::GET,
            format!("/organizations/{org}/notes"),
            None,
        ),
        (
            "crm note",
            &crm,
            Method::GET,
            format!("/organizations/{org}/notes/{note_id}"),
            None,
        ),
        (
            "crm delete note",
            &crm,
            Method::DELETE,
            format!("/organizations/{org}/notes/{note_id}"),
            None,
        ),
        (
            "client delete",
            &client,
            Method::DELETE,
            "/api/client/organizations".into(),
            Some(r#"{"identifier": [{"external_id": "secret"}]}"#.into()),
        ),
        (
            "client add member",
            &client,
            Method::POST,
            "/api/client/organizations/users".into(),
            Some(r#"{"organization": {"identifier": [{"external_id": "secret"}]}, "user": {"identifier": [{"external_id": "mallory"}]}}"#.into()),
        ),
        (
            "cleanup status",
            &cleanup,
            Method::GET,
            format!("/v2/organization/cleanup/{org}"),
            None,
        ),
    ];
    for (what, router, method, path, body) in &cases {
        let answer = call(router, method.clone(), path, key, body.as_deref()).await;
        refused(what, &answer);
    }

    // B's lists show none of A's records.
    let listed = call(&accounts, Method::GET, "/v1/organizations", key, None).await;
    assert_eq!(listed.body["items"], json!([]));
    let crm_list = call(&crm, Method::GET, "/organizations", key, None).await;
    assert_eq!(crm_list.body["totalItems"], 0, "{:?}", crm_list.body);
    let evaluated = call(&segments, Method::POST, "/api/admin/segments/evaluate", key,
        Some(r#"{"rule": {"type": "wrapper", "group": "parent", "operator": "and", "children": []}}"#)).await;
    assert_eq!(evaluated.status, StatusCode::OK, "{:?}", evaluated.body);
    assert_eq!(evaluated.body["users"], json!([]));

    // B's session token naming A's organization reaches nothing either.
    let token = session_token(&b, "ann", Some(&org));
    for (what, router, path) in [
        (
            "session current",
            &tenant,
            "/v2/organization/current".to_owned(),
        ),
        (
            "session accounts get",
            &accounts,
            format!("/v1/organizations/{org}"),
        ),
        ("session crm get", &crm, format!("/organizations/{org}")),
    ] {
        let answer = call(router, Method::GET, &path, Some(&token), None).await;
        refused(what, &answer);
    }
    // A token signed with B's secret but claiming A's project is not valid.
    let forged = {
        let claims = shared::auth::SessionClaims {
            sub: "ann".into(),
            project_id: a.project_id,
            org_id: Some(org.clone()),
            exp: time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 600,
        };
        shared::auth::issue_session_token(&claims, b.dev_token_secret.as_deref().unwrap()).unwrap()
    };
    let answer = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{org}"),
        Some(&forged),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);

    assert_eq!(
        project_items(&state, a.project_id).await,
        before,
        "A's items are exactly as they were"
    );
}
