//! Deleting an organization and cleaning up after it, against the
//! emulator: the deleting transaction's record, the purge (step by step,
//! redelivered, started by the sweep), the reports, and what is left
//! (nothing).

use std::io::Cursor;
use std::time::{Duration, Instant};

use cleanup::Progress;

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

/// Runs a purge step after step, as its messages would (the first as the
/// deletion's announcement), until it is done: the number of steps.
async fn purge_all(state: &AppState, project: uuid::Uuid, org: uuid::Uuid) -> usize {
    let mut step = None;
    for steps in 1..=1_000 {
        match cleanup::purge_step(state, project, org, step)
            .await
            .expect("a purge step")
        {
            Progress::Continued { next } => step = Some(next),
            Progress::Done => return steps,
            Progress::Stale => panic!("step {step:?} was stale"),
        }
    }
    panic!("the purge did not finish in 1,000 steps");
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

    // A step does a bounded part: the first releases the identifier, the
    // second deletes one page of the partition, and the rest is left.
    let before = partition(&state, p.project_id, &id).await;
    let first = cleanup::purge_step(&state, p.project_id, org, None)
        .await
        .unwrap();
    assert_eq!(first, Progress::Continued { next: 1 });
    let second = cleanup::purge_step(&state, p.project_id, org, Some(1))
        .await
        .unwrap();
    assert_eq!(second, Progress::Continued { next: 2 });
    let left = partition(&state, p.project_id, &id).await;
    assert!(
        left > 0 && left < before,
        "one step deleted some ({before} → {left})"
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
    assert!(purge_all(&state, p.project_id, org).await > 1);
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
    let again = cleanup::purge_step(&state, p.project_id, org, None)
        .await
        .unwrap();
    assert_eq!(again, Progress::Done);

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
    purge_all(&state, p.project_id, org).await;
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
    let refused = cleanup::purge_step(&state, p.project_id, org, None).await;
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
    let first =
        cleanup::handle_deletions(&state, event, Instant::now() + Duration::from_secs(60)).await;
    assert!(first.batch_item_failures.is_empty());
    integration_tests::delete_messages(&state, &queue_url, &messages).await;
    // Each step's message sends the next: the purge goes on by itself.
    let handled = drain(&state, &queue_url).await;
    assert!(handled >= 2, "the purge took {handled} more messages");
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

/// Hands the queue's messages to the cleanup function, as Lambda's event
/// source would (deleting those it did not fail), until none is left: the
/// number of messages handled.
async fn drain(state: &AppState, queue_url: &str) -> usize {
    let mut handled = 0;
    for _ in 0..1_000 {
        let messages = integration_tests::receive_all(state, queue_url, 30).await;
        if messages.is_empty() {
            return handled;
        }
        let event = integration_tests::sqs_event(&messages);
        let response =
            cleanup::handle_deletions(state, event, Instant::now() + Duration::from_secs(60)).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "a purge step failed"
        );
        integration_tests::delete_messages(state, queue_url, &messages).await;
        handled += messages.len();
    }
    panic!("the queue did not empty");
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

async fn item(
    state: &AppState,
    pk: String,
    sk: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    state
        .aws
        .dynamodb
        .get_item()
        .table_name(&state.config.table)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("reading an item")
        .item
}

/// The holder an identifier marker or a domain claim names, if it exists.
async fn holder(state: &AppState, pk: String, sk: &str) -> Option<String> {
    item(state, pk, sk)
        .await
        .and_then(|i| i.get("owner_id")?.as_s().ok().cloned())
}

fn marker_pk(project: uuid::Uuid, external_id: &str) -> String {
    shared::keys::org_identifier_pk(project, "default", external_id)
}

/// An organization at the limits (README "Limits"): 50 identifiers, 50
/// domains; with 200 members (one of them a session's user), settings and
/// notes.
struct AtTheLimits {
    id: String,
    org: uuid::Uuid,
    identifiers: Vec<String>,
    domains: Vec<String>,
    users: Vec<uuid::Uuid>,
    session: String,
}

const MEMBERS: usize = 200;
const WRITERS: usize = 4;

async fn at_the_limits(
    state: &AppState,
    p: &shared::store::CreatedProject,
    tag: &str,
) -> AtTheLimits {
    let client = client::router(state.clone());
    let key = p.secret_key.as_str();
    let identifiers: Vec<String> = (0..50).map(|k| format!("{tag}-id{k}")).collect();
    // At most 20 identifiers a request: the first names it, 19 more each.
    let mut id = String::new();
    for chunk in [1..20, 20..39, 39..50] {
        let named = std::iter::once(&identifiers[0]).chain(&identifiers[chunk]);
        let body = json!({
            "identifier": named.map(|e| json!({"external_id": e})).collect::<Vec<_>>(),
            "name": tag,
        });
        let made = call(
            &client,
            Method::POST,
            "/api/client/organizations",
            Some(key),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
        id = made.body["id"].as_str().unwrap().to_owned();
    }
    let org: uuid::Uuid = id.parse().unwrap();
    let session = format!("{tag}-session");
    // Added by a few writers at once (the emulator answers one at a time,
    // but the in-process work overlaps).
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (client, key, session) = (client.clone(), key.to_owned(), session.clone());
        let (tag, identifiers) = (tag.to_owned(), identifiers.clone());
        writers.spawn(async move {
            let mut users: Vec<uuid::Uuid> = Vec::new();
            for i in (writer..MEMBERS).step_by(WRITERS) {
                let user = if i == 0 {
                    json!({"identifier": [{"source": "session", "external_id": session}]})
                } else {
                    json!({"identifier": [{"external_id": format!("{tag}-user-{i}")}]})
                };
                let body = json!({"organization": {"identifier": [{"external_id": identifiers[i % 50]}]},
                                  "user": user});
                // One organization's member count is in every add: a
                // writer meeting another retries, as clients do on a 409.
                let mut added = None;
                for _ in 0..10 {
                    let answer = call(
                        &client,
                        Method::POST,
                        "/api/client/organizations/users",
                        Some(&key),
                        Some(&body.to_string()),
                    )
                    .await;
                    if answer.status != StatusCode::CONFLICT {
                        added = Some(answer);
                        break;
                    }
                }
                let added = added.expect("an add that kept meeting others");
                assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
                users.push(added.body["user_id"].as_str().unwrap().parse().unwrap());
            }
            users
        });
    }
    let mut users: Vec<uuid::Uuid> = Vec::new();
    while let Some(added) = writers.join_next().await {
        users.extend(added.expect("a writer"));
    }
    let domains: Vec<String> = (0..50).map(|k| format!("{tag}-{k}.example.com")).collect();
    for domain in &domains {
        state
            .store
            .add_domain(p.project_id, org, domain)
            .await
            .expect("a domain");
    }
    let tenant = tenant::router(state.clone());
    let setting = call(
        &tenant,
        Method::PUT,
        &format!("/v2/organization/{id}/settings/double_opt_in"),
        Some(key),
        Some("true"),
    )
    .await;
    assert_eq!(setting.status, StatusCode::OK);
    let crm = crm::router(state.clone());
    let note = call(
        &crm,
        Method::POST,
        &format!("/organizations/{id}/notes"),
        Some(key),
        Some(r#"{"description": "a note", "category": "/note_categories/1"}"#),
    )
    .await;
    assert_eq!(note.status, StatusCode::CREATED);
    AtTheLimits {
        id,
        org,
        identifiers,
        domains,
        users,
        session,
    }
}

/// Gone at once for every family: reads are 404, lists leave it out.
async fn gone_everywhere(state: &AppState, p: &shared::store::CreatedProject, large: &AtTheLimits) {
    let key = Some(p.secret_key.as_str());
    let id = &large.id;
    let accounts = accounts::router(state.clone());
    let tenant = tenant::router(state.clone());
    let crm = crm::router(state.clone());
    for (router, path) in [
        (&accounts, format!("/v1/organizations/{id}")),
        (&accounts, format!("/v1/organizations/{id}/memberships")),
        (&tenant, format!("/v2/organization/{id}")),
        (&tenant, format!("/v2/organization/{id}/settings")),
        (&crm, format!("/organizations/{id}")),
        (&crm, format!("/organizations/{id}/notes")),
    ] {
        let r = call(router, Method::GET, &path, key, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {:?}", r.body);
    }
    for (router, path) in [
        (&accounts, "/v1/organizations?limit=100"),
        (&crm, "/organizations?itemsPerPage=100"),
    ] {
        let r = call(router, Method::GET, path, key, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        assert!(!r.body.to_string().contains(id.as_str()), "{path} lists it");
    }
    // A member's session: its list leaves it out, and it reaches nothing.
    let session = integration_tests::session_token(p, &large.session, None);
    let mine = call(
        &accounts,
        Method::GET,
        "/v1/organizations",
        Some(&session),
        None,
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    assert_eq!(mine.body["items"], json!([]));
    let theirs = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{id}"),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    // Its identifiers name nothing; nothing can be added to it.
    let found = state
        .store
        .find_organization(
            p.project_id,
            &[shared::domain::IdentifierKey::parse(None, &large.identifiers[7]).unwrap()],
        )
        .await;
    assert!(
        matches!(found, Err(shared::Error::NotFound(_))),
        "{found:?}"
    );
    let client = client::router(state.clone());
    let body = json!({"organization": {"identifier": [{"external_id": large.identifiers[7]}]},
                      "user": {"identifier": [{"external_id": "latecomer"}]}});
    let added = call(
        &client,
        Method::POST,
        "/api/client/organizations/users",
        key,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(added.status, StatusCode::NOT_FOUND, "{:?}", added.body);
}

/// The deleted organization's identifiers and domains are free at once:
/// a new organization takes some over (created with two, a third added by
/// an update that also names its own, one domain); answers its id.
async fn take_over(
    state: &AppState,
    p: &shared::store::CreatedProject,
    large: &AtTheLimits,
) -> String {
    let client = client::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let ids = &large.identifiers;
    let body = json!({"identifier": [{"external_id": ids[0]}, {"external_id": ids[1]}], "name": "Successor"});
    let made = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        key,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    let successor = made.body["id"].as_str().unwrap().to_owned();
    assert_ne!(successor, large.id);
    let body = json!({"identifier": [{"external_id": ids[0]}, {"external_id": ids[2]}]});
    let updated = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        key,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(
        updated.body["id"],
        successor.as_str(),
        "an update, not a conflict"
    );
    for external_id in &ids[0..3] {
        assert_eq!(
            holder(state, marker_pk(p.project_id, external_id), "ORGID")
                .await
                .as_deref(),
            Some(successor.as_str())
        );
    }
    let domain = state
        .store
        .add_domain(p.project_id, successor.parse().unwrap(), &large.domains[0])
        .await;
    assert!(domain.is_ok(), "{domain:?}");
    // An event naming the successor and a deleted identifier goes to the
    // successor (the processor's batch resolution).
    let key = |k: usize| shared::domain::IdentifierKey::parse(None, &ids[k]).unwrap();
    let resolved = state
        .store
        .resolve_organizations(p.project_id, &[vec![key(0), key(5)], vec![key(6)]])
        .await
        .unwrap();
    assert_eq!(resolved[0], Some(successor.parse().unwrap()));
    assert_eq!(
        resolved[1],
        Some(large.org),
        "a deleted id: its events find no record"
    );
    successor
}

/// Runs the purge step by step, as its messages would: each step bounded,
/// a redelivered step changing nothing. Answers the number of steps.
async fn purge_in_steps(
    state: &AppState,
    p: &shared::store::CreatedProject,
    large: &AtTheLimits,
) -> usize {
    let mut step = None;
    let mut steps = 0;
    loop {
        match state
            .store
            .purge_step(p.project_id, large.org, step)
            .await
            .unwrap()
        {
            shared::store::PurgeStep::Advanced { next, items } => {
                steps += 1;
                assert!(items <= shared::store::PURGE_PAGE, "a step of {items}");
                if steps == 3 {
                    let before = partition(state, p.project_id, &large.id).await;
                    let again = cleanup::purge_step(state, p.project_id, large.org, Some(next - 1))
                        .await
                        .unwrap();
                    assert_eq!(again, Progress::Stale, "a redelivered step");
                    assert_eq!(partition(state, p.project_id, &large.id).await, before);
                }
                step = Some(next);
            }
            shared::store::PurgeStep::Emptied { .. } => break,
            other => panic!("the purge stopped: {other:?}"),
        }
    }
    let done = cleanup::purge_step(state, p.project_id, large.org, step)
        .await
        .unwrap();
    assert_eq!(done, Progress::Done);
    steps + 1
}

/// Nothing of it is left: its partition is empty, its claims are gone
/// (but those taken over, which name the successor), its members' lists
/// and counts no longer have it, its cleanup is complete.
async fn nothing_left(
    state: &AppState,
    p: &shared::store::CreatedProject,
    large: &AtTheLimits,
    successor: &str,
) {
    assert_eq!(partition(state, p.project_id, &large.id).await, 0);
    for (k, external_id) in large.identifiers.iter().enumerate() {
        let expected = (k < 3).then_some(successor);
        assert_eq!(
            holder(state, marker_pk(p.project_id, external_id), "ORGID")
                .await
                .as_deref(),
            expected,
            "{external_id}"
        );
    }
    for (k, domain) in large.domains.iter().enumerate() {
        let expected = (k == 0).then_some(successor);
        assert_eq!(
            holder(
                state,
                shared::keys::domain_pk(p.project_id, domain),
                "DOMAIN"
            )
            .await
            .as_deref(),
            expected,
            "{domain}"
        );
    }
    let mut readers = tokio::task::JoinSet::new();
    for chunk in large.users.chunks(MEMBERS / WRITERS) {
        let (state, project, chunk) = (state.clone(), p.project_id, chunk.to_vec());
        readers.spawn(async move {
            for user in chunk {
                assert_eq!(user_orgs(&state, project, &user.to_string()).await, 0);
                let count = state.store.user_organization_count(project, user).await;
                assert_eq!(count.unwrap(), 0, "{user}'s organization count");
            }
        });
    }
    while let Some(read) = readers.join_next().await {
        read.expect("a reader");
    }
    let job = item(
        state,
        shared::keys::cleanup_pk(p.project_id, large.org),
        "PURGE",
    )
    .await;
    assert!(job.is_none(), "the purge job is gone");
    let cleanup = cleanup::router(state.clone());
    let status = call(
        &cleanup,
        Method::GET,
        &format!("/v2/organization/cleanup/{}", large.id),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(status.body["complete"], true, "{:?}", status.body);
}

#[tokio::test]
async fn an_organization_at_the_limits_is_deleted_through_v1_at_once_and_purged_in_steps() {
    let state = integration_tests::state_with_bucket(None).await;
    let p = project(&state).await;
    let large = at_the_limits(&state, &p, "big").await;
    // The delete reads the record and writes one transaction of a fixed
    // size: nothing of what the organization holds is read or written.
    let log = integration_tests::OperationLog::default();
    let logged = AppState::new(
        state.config.clone(),
        shared::Aws {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                state
                    .aws
                    .dynamodb
                    .config()
                    .to_builder()
                    .interceptor(log.clone())
                    .build(),
            ),
            ..state.aws.clone()
        },
    );
    let deleted = call(
        &accounts::router(logged),
        Method::DELETE,
        &format!("/v1/organizations/{}", large.id),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let operations = log.take();
    assert_eq!(
        operations.iter().rev().take(2).collect::<Vec<_>>(),
        ["TransactWriteItems", "BatchGetItem"],
        "the record (with its event sequence), then one transaction: {operations:?}"
    );
    assert!(
        !operations.iter().any(|o| o == "Query" || o == "Scan"),
        "{operations:?}"
    );
    gone_everywhere(&state, &p, &large).await;
    let successor = take_over(&state, &p, &large).await;
    let steps = purge_in_steps(&state, &p, &large).await;
    // One release step, then pages of 100 of 200 memberships and their
    // 200+ events, then the report.
    assert!(steps >= 6, "{steps} steps");
    nothing_left(&state, &p, &large, &successor).await;
}

#[tokio::test]
async fn an_organization_at_the_limits_is_deleted_through_the_client_family_too() {
    let state = integration_tests::state_with_bucket(None).await;
    let p = project(&state).await;
    let large = at_the_limits(&state, &p, "huge").await;
    let client = client::router(state.clone());
    let body = json!({"identifier": [{"external_id": large.identifiers[49]}]});
    let deleted = call(
        &client,
        Method::DELETE,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    gone_everywhere(&state, &p, &large).await;
    let successor = take_over(&state, &p, &large).await;
    purge_in_steps(&state, &p, &large).await;
    nothing_left(&state, &p, &large, &successor).await;
}

#[tokio::test]
async fn a_purge_whose_announcement_was_never_sent_is_started_by_the_sweep() {
    let state = integration_tests::state_with_bucket(None).await;
    let p = project(&state).await;
    let (id, users) = populated(&state, &p).await;
    let org: uuid::Uuid = id.parse().unwrap();
    // The deleting request timed out before announcing: no message at all.
    let accounts = accounts::router(state.clone());
    let deleted = call(
        &accounts,
        Method::DELETE,
        &format!("/v1/organizations/{id}"),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let name = format!("cleanup-{}", uuid::Uuid::now_v7().simple());
    let (queue_url, _dlq) =
        shared::provision::create_queues(&state.aws.sqs, &name, shared::provision::CLEANUP_QUEUE)
            .await
            .expect("creating a test queue");
    let mut config = state.config.clone();
    config.cleanup_queue_url = Some(queue_url.clone());
    let state = AppState::new(config, state.aws.clone());
    let now = std::time::SystemTime::now();
    assert_eq!(
        cleanup::sweep(&state, now).await.unwrap(),
        0,
        "not due yet: the announcement may still come"
    );
    let later = now + Duration::from_secs(3 * 60);
    assert_eq!(cleanup::sweep(&state, later).await.unwrap(), 1);
    assert_eq!(
        cleanup::sweep(&state, later).await.unwrap(),
        0,
        "announced once: it has a new lease"
    );
    let handled = drain(&state, &queue_url).await;
    assert!(handled >= 2, "{handled} steps");
    assert_eq!(partition(&state, p.project_id, &id).await, 0);
    for user in &users {
        assert_eq!(user_orgs(&state, p.project_id, user).await, 0);
    }
    let job = item(&state, shared::keys::cleanup_pk(p.project_id, org), "PURGE").await;
    assert!(job.is_none(), "the purge is no longer pending");
    assert_eq!(
        cleanup::sweep(&state, now + Duration::from_secs(60 * 60))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_users_organization_count_is_exact_after_adds_removes_leaves_and_the_purge() {
    let state = integration_tests::state_with_bucket(None).await;
    let p = project(&state).await;
    let key = Some(p.secret_key.as_str());
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let session = integration_tests::session_token(&p, "counted", None);
    let count = |state: AppState| async move {
        let user = state
            .store
            .session_user_ref(p.project_id, "counted")
            .await
            .unwrap()
            .expect("the session's user");
        state
            .store
            .user_organization_count(p.project_id, user)
            .await
            .unwrap()
    };
    let owned = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&session),
        Some(r#"{"name": "Mine"}"#),
    )
    .await;
    assert_eq!(owned.status, StatusCode::OK, "{:?}", owned.body);
    let owned = owned.body["id"].as_str().unwrap().to_owned();
    assert_eq!(count(state.clone()).await, 1, "the creator owns it");
    let member = |org: &str| {
        json!({"organization": {"identifier": [{"external_id": org}]},
               "user": {"identifier": [{"source": "session", "external_id": "counted"}]}})
        .to_string()
    };
    let mut ids = std::collections::HashMap::new();
    for org in ["b", "c", "d", "e"] {
        let made = call(
            &client,
            Method::POST,
            "/api/client/organizations",
            key,
            Some(&json!({"identifier": [{"external_id": org}]}).to_string()),
        )
        .await;
        ids.insert(org, made.body["id"].as_str().unwrap().to_owned());
        let added = call(
            &client,
            Method::POST,
            "/api/client/organizations/users",
            key,
            Some(&member(org)),
        )
        .await;
        assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    }
    assert_eq!(count(state.clone()).await, 5);
    let again = call(
        &client,
        Method::POST,
        "/api/client/organizations/users",
        key,
        Some(&member("b")),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        count(state.clone()).await,
        5,
        "a member again is not counted twice"
    );
    let removed = call(
        &client,
        Method::DELETE,
        "/api/client/organizations/users",
        key,
        Some(&member("c")),
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    assert_eq!(count(state.clone()).await, 4);
    let left = call(
        &accounts,
        Method::POST,
        &format!("/v1/organizations/{}/leave", ids["b"]),
        Some(&session),
        None,
    )
    .await;
    assert!(left.status.is_success(), "{:?}", left.body);
    assert_eq!(count(state.clone()).await, 3);
    // Deleted: gone from the list at once, counted off by the purge; a
    // leave or a removal meanwhile finds nothing and changes nothing.
    for org in ["d", "e"] {
        let deleted = call(
            &accounts,
            Method::DELETE,
            &format!("/v1/organizations/{}", ids[org]),
            key,
            None,
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    }
    let late = call(
        &accounts,
        Method::POST,
        &format!("/v1/organizations/{}/leave", ids["d"]),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(late.status, StatusCode::NOT_FOUND, "{:?}", late.body);
    let late = call(
        &client,
        Method::DELETE,
        "/api/client/organizations/users",
        key,
        Some(&member("e")),
    )
    .await;
    assert_eq!(late.status, StatusCode::NOT_FOUND, "{:?}", late.body);
    let listed = call(
        &accounts,
        Method::GET,
        "/v1/organizations",
        Some(&session),
        None,
    )
    .await;
    let listed_ids: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(listed_ids, vec![owned.as_str()]);
    for org in ["d", "e"] {
        purge_all(&state, p.project_id, ids[org].parse().unwrap()).await;
    }
    assert_eq!(count(state.clone()).await, 1);
    let listed = call(
        &accounts,
        Method::GET,
        "/v1/organizations",
        Some(&session),
        None,
    )
    .await;
    assert_eq!(
        listed.body["pagination"]["total_count"], 1,
        "{:?}",
        listed.body
    );
}

/// The organization's CRM list entries: the per-project index items that
/// name it (a Scan, for the test only: entries live in many partitions).
async fn list_entries(
    state: &AppState,
    project: uuid::Uuid,
    org: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let out = state
            .aws
            .dynamodb
            .scan()
            .table_name(&state.config.table)
            .filter_expression("#org = :org AND begins_with(PK, :project)")
            .expression_attribute_names("#org", "org")
            .expression_attribute_values(":org", AttributeValue::S(org.to_owned()))
            .expression_attribute_values(":project", AttributeValue::S(format!("P#{project}#CRM")))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scanning");
        found.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return found;
        }
    }
}

#[tokio::test]
async fn list_entries_a_deletion_could_not_remove_in_its_transaction_go_with_the_purge() {
    let state = integration_tests::state_with_bucket(None).await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let key = Some(p.secret_key.as_str());
    // 100 tags (the CRM's list limit): more entries than fit in the
    // deleting transaction beside the record, the counts and the event.
    let tags: Vec<String> = (0..100).map(|k| format!("/tags/t{k}")).collect();
    let body = json!({"title": "Many Tags", "tags": tags});
    let made = call(
        &crm,
        Method::POST,
        "/organizations",
        key,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let id = made.body["@id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let org: uuid::Uuid = id.parse().unwrap();
    let entries = list_entries(&state, p.project_id, &id).await;
    assert!(entries.len() > 100, "{} entries", entries.len());
    let accounts = accounts::router(state.clone());
    let deleted = call(
        &accounts,
        Method::DELETE,
        &format!("/v1/organizations/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(
        list_entries(&state, p.project_id, &id).await.len(),
        0,
        "removed right after the transaction"
    );
    // The request that deleted it died before removing them (a Lambda
    // timeout between its transaction and the removal): they are back.
    for entry in &entries {
        state
            .aws
            .dynamodb
            .put_item()
            .table_name(&state.config.table)
            .set_item(Some(entry.clone()))
            .send()
            .await
            .expect("putting an entry back");
    }
    let listed = call(&crm, Method::GET, "/organizations?tags.id=t7", key, None).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(
        listed.body["member"],
        json!([]),
        "lists skip them meanwhile"
    );
    assert_eq!(listed.body["totalItems"], 0, "{:?}", listed.body);
    let steps = purge_all(&state, p.project_id, org).await;
    assert!(steps >= 3, "{steps} steps");
    let left = list_entries(&state, p.project_id, &id).await;
    assert_eq!(left.len(), 0, "the purge leaves none: {:?}", left.first());
}
