//! Deleting an organization and cleaning up after it, against the
//! emulator: the deleting transaction's record, the purge (also cut short
//! and run again), the reports, and what is left (nothing).

use std::io::Cursor;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use integration_tests::{call, project, send, Exchange};
use serde_json::json;
use shared::AppState;

async fn partition(state: &AppState, project: uuid::Uuid, org: &str) -> usize {
    let out = state
        .aws
        .dynamodb
        .query()
        .table_name(&state.config.table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("P#{project}#ORG#{org}")),
        )
        .consistent_read(true)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("querying");
    out.count as usize
}

async fn user_orgs(state: &AppState, project: uuid::Uuid, user: &str) -> usize {
    let out = state
        .aws
        .dynamodb
        .query()
        .table_name(&state.config.table)
        .index_name("GSI1")
        .key_condition_expression("GSI1PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("P#{project}#USER#{user}#ORGS")),
        )
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("querying");
    out.count as usize
}

async fn logos(state: &AppState, prefix: &str) -> usize {
    state
        .aws
        .s3
        .list_objects_v2()
        .bucket(state.config.logo_bucket.as_deref().unwrap())
        .prefix(prefix)
        .send()
        .await
        .expect("listing")
        .contents()
        .len()
}

fn png() -> Vec<u8> {
    let image = image::RgbaImage::from_fn(300, 300, |x, y| image::Rgba([x as u8, y as u8, 9, 255]));
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// An organization with 50 members, settings, notes, events, a schedule
/// and a logo; answers its id and its members' user ids.
async fn populated(state: &AppState, p: &shared::store::CreatedProject) -> (String, Vec<String>) {
    let client = client::router(state.clone());
    let tenant = tenant::router(state.clone());
    let crm = crm::router(state.clone());
    let key = p.secret_key.as_str();
    let org = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(key),
        Some(
            r#"{"identifier": [{"external_id": "acme"}], "name": "Acme", "data": {"plan": "pro"}}"#,
        ),
    )
    .await;
    assert_eq!(org.status, StatusCode::OK, "{:?}", org.body);
    let id = org.body["id"].as_str().unwrap().to_owned();
    let mut users = Vec::new();
    for i in 0..50 {
        let body = json!({"organization": {"identifier": [{"external_id": "acme"}]},
                          "user": {"identifier": [{"external_id": format!("user-{i}")}]}, "data": {"n": i}});
        let added = call(
            &client,
            Method::POST,
            "/api/client/organizations/users",
            Some(key),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
        users.push(added.body["user_id"].as_str().unwrap().to_owned());
    }
    for (name, value) in [
        ("double_opt_in", json!(true)),
        ("default_language", json!("de")),
    ] {
        let r = call(
            &tenant,
            Method::PUT,
            &format!("/v2/organization/{id}/settings/{name}"),
            Some(key),
            Some(&value.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    for i in 0..3 {
        let body = json!({"description": format!("note {i}"), "category": "/note_categories/1"});
        let r = call(
            &crm,
            Method::POST,
            &format!("/organizations/{id}/notes"),
            Some(key),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let schedule = call(
        &client,
        Method::POST,
        "/api/client/organizations/scheduled",
        Some(key),
        Some(
            r#"{"name": "renewal", "identifier": [{"external_id": "acme"}], "interval": "1 year"}"#,
        ),
    )
    .await;
    assert!(schedule.status.is_success(), "{:?}", schedule.body);
    let request = Request::builder()
        .method(Method::PUT)
        .uri(format!("/v2/organization/{id}/logo"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "image/png")
        .body(Body::from(png()))
        .unwrap();
    let logo: Exchange = send(&tenant, request).await;
    assert_eq!(logo.status, StatusCode::OK, "{:?}", logo.body);
    (id, users)
}

#[tokio::test]
async fn nothing_of_a_deleted_organization_is_left_after_the_purge() {
    let state = integration_tests::state_with_bucket(None).await;
    let p = project(&state).await;
    let (id, users) = populated(&state, &p).await;
    let key = Some(p.secret_key.as_str());
    let org: uuid::Uuid = id.parse().unwrap();
    assert!(partition(&state, p.project_id, &id).await > 60);
    let prefix = format!("logos/{}/{id}/", p.project_id);
    assert_eq!(logos(&state, &prefix).await, 2);

    let accounts = accounts::router(state.clone());
    let deleted = call(
        &accounts,
        Method::DELETE,
        &format!("/v1/organizations/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // Unreachable at once, in every family.
    let tenant = tenant::router(state.clone());
    let crm = crm::router(state.clone());
    for (router, path) in [
        (&accounts, format!("/v1/organizations/{id}")),
        (&tenant, format!("/v2/organization/{id}")),
        (&crm, format!("/organizations/{id}")),
        (&tenant, format!("/v2/organization/{id}/settings")),
        (&crm, format!("/organizations/{id}/notes")),
    ] {
        let r = call(router, Method::GET, &path, key, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }

    // The record is pending, and shows who deleted it.
    let cleanup = cleanup::router(state.clone());
    let pending = call(&cleanup, Method::GET, "/v2/organization/cleanup", key, None).await;
    assert_eq!(pending.status, StatusCode::OK, "{:?}", pending.body);
    assert_eq!(pending.body["items"][0]["org_id"], id.as_str());
    assert_eq!(
        pending.body["items"][0]["deleted_by"],
        "accounts:secret-key"
    );
    let status = call(
        &cleanup,
        Method::GET,
        &format!("/v2/organization/cleanup/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(status.body["complete"], false);

    // A purge cut short leaves the rest for the next run.
    let before = partition(&state, p.project_id, &id).await;
    let first = state
        .store
        .purge_organization(
            p.project_id,
            org,
            Instant::now() + Duration::from_millis(1),
            10,
        )
        .await
        .unwrap();
    assert!(!first.done, "cut short");
    let left = partition(&state, p.project_id, &id).await;
    assert!(
        left > 0 && left < before,
        "one round deleted some ({before} → {left})"
    );
    let status = call(
        &cleanup,
        Method::GET,
        &format!("/v2/organization/cleanup/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(
        status.body["complete"], false,
        "no report before the purge is done"
    );
    let done = cleanup::purge(
        &state,
        p.project_id,
        org,
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(done, cleanup::Progress::Done);
    assert_eq!(
        partition(&state, p.project_id, &id).await,
        0,
        "the partition is empty"
    );
    assert_eq!(logos(&state, &prefix).await, 0, "the logo prefix is empty");
    for user in &users {
        assert_eq!(
            user_orgs(&state, p.project_id, user).await,
            0,
            "user → org entries gone"
        );
    }
    let still = state
        .store
        .find_user(
            p.project_id,
            &[shared::domain::IdentifierKey::parse(None, "user-7").unwrap()],
        )
        .await;
    assert!(still.is_ok(), "the users themselves remain");
    // Running again changes nothing and still answers done.
    let again = cleanup::purge(
        &state,
        p.project_id,
        org,
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(again, cleanup::Progress::Done);

    let status = call(
        &cleanup,
        Method::GET,
        &format!("/v2/organization/cleanup/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(status.body["complete"], true, "{:?}", status.body);
    assert_eq!(status.body["services"][0]["service_name"], "organizations");
    let pending = call(&cleanup, Method::GET, "/v2/organization/cleanup", key, None).await;
    assert_eq!(
        pending.body["items"],
        json!([]),
        "complete records are not pending"
    );

    // The old identifier is free: upserting it makes a new organization.
    let client = client::router(state.clone());
    let again = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.publishable_key),
        Some(r#"{"identifier": [{"external_id": "acme"}], "name": "Acme again"}"#),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_ne!(again.body["id"], id.as_str());
}

#[tokio::test]
async fn only_configured_services_count_toward_completeness() {
    let state = integration_tests::state_with_bucket(Some("billing")).await;
    let p = project(&state).await;
    let key = Some(p.secret_key.as_str());
    let client = client::router(state.clone());
    let made = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        key,
        Some(r#"{"identifier": [{"external_id": "gone"}], "name": "Gone"}"#),
    )
    .await;
    let id = made.body["id"].as_str().unwrap().to_owned();
    let deleted = call(
        &client,
        Method::DELETE,
        "/api/client/organizations",
        key,
        Some(r#"{"identifier": [{"external_id": "gone"}]}"#),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let cleanup = cleanup::router(state.clone());
    let org: uuid::Uuid = id.parse().unwrap();
    let done = cleanup::purge(
        &state,
        p.project_id,
        org,
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(done, cleanup::Progress::Done);
    let path = |service: &str| format!("/v2/organization/cleanup/{id}/{service}");
    let status = call(
        &cleanup,
        Method::GET,
        &format!("/v2/organization/cleanup/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(status.body["complete"], false, "billing has not reported");
    assert_eq!(
        status.body["expected_services"],
        json!(["billing", "organizations"])
    );
    assert_eq!(status.body["deleted_by"], "client:secret-key");

    let report = json!({"operations": [{"action": "delete", "resource": "invoices", "extra_info": {"count": 3}}]});
    let other = call(
        &cleanup,
        Method::PUT,
        &path("mailer"),
        key,
        Some(&report.to_string()),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK, "{:?}", other.body);
    assert_eq!(
        other.body["complete"], false,
        "an unconfigured service does not count"
    );
    assert_eq!(
        other.body["services"].as_array().unwrap().len(),
        2,
        "but its report is kept"
    );
    let billing = call(
        &cleanup,
        Method::PUT,
        &path("billing"),
        key,
        Some(&report.to_string()),
    )
    .await;
    assert_eq!(billing.body["complete"], true);
    assert!(billing.body["completed_at"].is_string());
    let again = call(
        &cleanup,
        Method::PUT,
        &path("billing"),
        key,
        Some(r#"{"operations": []}"#),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "a service may update its report"
    );

    for (p_, body, status) in [
        (path("bad%20name"), "{}".to_owned(), StatusCode::BAD_REQUEST),
        (
            path("billing"),
            r#"{"service_name": "other"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/v2/organization/cleanup/{}/billing", uuid::Uuid::now_v7()),
            "{}".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = call(&cleanup, Method::PUT, &p_, key, Some(&body)).await;
        assert_eq!(r.status, status, "{p_}: {:?}", r.body);
    }
    let public = call(
        &cleanup,
        Method::GET,
        "/v2/organization/cleanup",
        Some(&p.publishable_key),
        None,
    )
    .await;
    assert_eq!(public.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_purge_refuses_an_organization_that_exists() {
    let state = integration_tests::state_with_bucket(None).await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let made = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(r#"{"identifier": [{"external_id": "alive"}]}"#),
    )
    .await;
    let org: uuid::Uuid = made.body["id"].as_str().unwrap().parse().unwrap();
    let refused = cleanup::purge(
        &state,
        p.project_id,
        org,
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    assert!(refused.is_err());
    let alive = state
        .store
        .get_organization(p.project_id, org)
        .await
        .unwrap();
    assert!(alive.is_some(), "nothing of a live organization is purged");
}

#[tokio::test]
async fn a_deletion_goes_out_through_the_queue_and_its_message_drives_the_purge() {
    let mut state = integration_tests::state_with_bucket(None).await;
    let name = format!("cleanup-{}", uuid::Uuid::now_v7().simple());
    let (queue_url, _dlq) =
        shared::provision::create_queues(&state.aws.sqs, &name, shared::provision::CLEANUP_QUEUE)
            .await
            .expect("creating a test queue");
    state.config.cleanup_queue_url = Some(queue_url.clone());
    let state = AppState::new(state.config.clone(), state.aws.clone());
    let p = project(&state).await;
    let key = Some(p.secret_key.as_str());
    let (id, _) = populated(&state, &p).await;
    let accounts = accounts::router(state.clone());
    let deleted = call(
        &accounts,
        Method::DELETE,
        &format!("/v1/organizations/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let messages = integration_tests::receive_all(&state, &queue_url, 30).await;
    assert_eq!(messages.len(), 1, "one announcement per deletion");
    let announced: serde_json::Value =
        serde_json::from_str(messages[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(announced["name"], "organization.deleted");
    assert_eq!(announced["org_id"], id.as_str());
    assert_eq!(announced["deleted_by"], "accounts:secret-key");

    // Out of time: the message is handed back for redelivery.
    let event = integration_tests::sqs_event(&messages);
    let late = cleanup::handle_deletions(&state, event.clone(), Instant::now()).await;
    assert_eq!(late.batch_item_failures.len(), 1);
    let done =
        cleanup::handle_deletions(&state, event, Instant::now() + Duration::from_secs(60)).await;
    assert!(done.batch_item_failures.is_empty());
    assert_eq!(partition(&state, p.project_id, &id).await, 0);
    let cleanup = cleanup::router(state.clone());
    let status = call(
        &cleanup,
        Method::GET,
        &format!("/v2/organization/cleanup/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(status.body["complete"], true);
}

#[tokio::test]
async fn a_client_deletion_is_announced_on_the_cleanup_queue_too() {
    let mut state = integration_tests::state().await;
    let name = format!("cleanup-{}", uuid::Uuid::now_v7().simple());
    let (queue_url, _dlq) =
        shared::provision::create_queues(&state.aws.sqs, &name, shared::provision::CLEANUP_QUEUE)
            .await
            .expect("creating a test queue");
    state.config.cleanup_queue_url = Some(queue_url.clone());
    let state = AppState::new(state.config.clone(), state.aws.clone());
    let p = project(&state).await;
    let client = client::router(state.clone());
    let identifier = r#"{"identifier":[{"external_id":"acme"}]}"#;
    let created = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(identifier),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let deleted = call(
        &client,
        Method::DELETE,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(identifier),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);

    let messages = integration_tests::receive_all(&state, &queue_url, 30).await;
    assert_eq!(messages.len(), 1, "one announcement per deletion");
    let announced: serde_json::Value =
        serde_json::from_str(messages[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(announced["name"], "organization.deleted");
    assert_eq!(announced["org_id"], created.body["id"]);
    assert_eq!(announced["deleted_by"], "client:secret-key");
}
