//! The limits of DESIGN.md "Limits" (README "Limits") through the routers,
//! against the emulator: identifiers per record, domains and settings per
//! organization, and the size of any stored item. Each refusal is a 4xx
//! problem that writes nothing. (Schedules: tests/schedules.rs.)

use axum::http::{Method, StatusCode};
use integration_tests::{call, project, project_items, state, Exchange};
use serde_json::{json, Value};
use shared::limits::{
    MAX_DOMAINS, MAX_IDENTIFIERS_PER_RECORD, MAX_ITEM_BYTES, MAX_RULE_EVENTS_PER_ORGANIZATION,
    MAX_SCHEDULES_PER_ORGANIZATION, MAX_SETTINGS_BYTES, MAX_SETTINGS_PER_ORGANIZATION,
    SCHEDULER_FIRINGS_PER_TICK, SCHEDULER_PROJECT_SHARE, SCHEDULER_QUERIES_PER_TICK,
    SCHEDULER_TICK_SECS,
};

const ORGS: &str = "/api/client/organizations";
const USERS: &str = "/api/client/users";

fn identifiers(from: usize, count: usize) -> Value {
    (from..from + count)
        .map(|i| json!({"source": "crm", "external_id": format!("id-{i}")}))
        .collect()
}

/// What README's limits table publishes is what the code enforces.
#[test]
fn the_readme_publishes_these_limits() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let row = |label: &str| {
        readme
            .lines()
            .find(|line| line.starts_with(&format!("| {label}")))
            .unwrap_or_else(|| panic!("README has no limits row for {label}"))
            .replace(',', "")
    };
    let has = |label: &str, numbers: &[String]| {
        let row = row(label);
        for number in numbers {
            assert!(row.contains(number.as_str()), "{label}: {number} in {row}");
        }
    };
    has(
        "schedules per organization",
        &[MAX_SCHEDULES_PER_ORGANIZATION.to_string()],
    );
    has(
        "scheduler's share per project",
        &[
            SCHEDULER_PROJECT_SHARE.to_string(),
            SCHEDULER_FIRINGS_PER_TICK.to_string(),
            SCHEDULER_QUERIES_PER_TICK.to_string(),
            format!("{SCHEDULER_TICK_SECS} s"),
        ],
    );
    has(
        "identifiers per organization or user",
        &[MAX_IDENTIFIERS_PER_RECORD.to_string()],
    );
    has("domains per organization", &[MAX_DOMAINS.to_string()]);
    has(
        "CRM page numbers",
        &[shared::limits::MAX_PAGE_OFFSET.to_string()],
    );
    has(
        "settings per organization",
        &[
            MAX_SETTINGS_PER_ORGANIZATION.to_string(),
            MAX_SETTINGS_BYTES.to_string(),
        ],
    );
    has("any stored item", &[MAX_ITEM_BYTES.to_string()]);
    has(
        "system event `changes`",
        &[shared::limits::MAX_EVENT_CHANGES_BYTES.to_string()],
    );
    has(
        "events one organization contributes to a segment rule",
        &[MAX_RULE_EVENTS_PER_ORGANIZATION.to_string()],
    );
}

async fn post(router: &axum::Router, key: &str, path: &str, body: Value) -> Exchange {
    call(
        router,
        Method::POST,
        path,
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

fn assert_limit(answer: &Exchange, limit: impl ToString) {
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        answer.body
    );
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(answer.body["code"], "limit_exceeded");
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&limit.to_string()), "{detail}");
}

#[tokio::test]
async fn a_record_holds_at_most_50_identifiers_over_all_its_requests() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    for path in [ORGS, USERS] {
        // Each request within its own cap, merged up to the record's.
        let mut held = 0;
        while held < MAX_IDENTIFIERS_PER_RECORD {
            let per_request = shared::domain::identifier::MAX_IDENTIFIERS_PER_REQUEST;
            let room = if held == 0 {
                per_request
            } else {
                per_request - 1
            };
            let count = (MAX_IDENTIFIERS_PER_RECORD - held).min(room);
            // Every request names the record by its first identifier too.
            let mut ids = identifiers(held, count);
            if held > 0 {
                ids.as_array_mut()
                    .unwrap()
                    .push(identifiers(0, 1)[0].clone());
            }
            let answer = post(&router, &p.secret_key, path, json!({"identifier": ids})).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
            held += count;
        }
        let before = project_items(&state, p.project_id).await.len();
        let one_more = json!({"identifier": [identifiers(0, 1)[0], identifiers(held, 1)[0]],
                              "data": {"plan": "pro"}});
        let refused = post(&router, &p.secret_key, path, one_more).await;
        assert_limit(&refused, MAX_IDENTIFIERS_PER_RECORD);
        assert_eq!(
            project_items(&state, p.project_id).await.len(),
            before,
            "{path}: nothing written"
        );
        // The record is as it was, and a request that adds nothing passes.
        let same = post(
            &router,
            &p.secret_key,
            path,
            json!({"identifier": identifiers(0, 1), "data": {"plan": "pro"}}),
        )
        .await;
        assert_eq!(same.status, StatusCode::OK, "{:?}", same.body);
        assert_eq!(
            same.body["identifier"]
                .as_array()
                .or(same.body["identifiers"].as_array())
                .map(Vec::len),
            Some(MAX_IDENTIFIERS_PER_RECORD),
            "{:?}",
            same.body
        );
    }
}

#[tokio::test]
async fn an_organization_holds_at_most_50_domains() {
    let state = state().await;
    let p = project(&state).await;
    let router = accounts::router(state.clone());
    let created = post(
        &router,
        &p.secret_key,
        "/v1/organizations",
        json!({"name": "Acme"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let domains = format!(
        "/v1/organizations/{}/domains",
        created.body["id"].as_str().unwrap()
    );
    for i in 0..MAX_DOMAINS {
        let added = post(
            &router,
            &p.secret_key,
            &domains,
            json!({"domain": format!("d{i}.acme.example")}),
        )
        .await;
        assert!(added.status.is_success(), "{i}: {:?}", added.body);
    }
    let before = project_items(&state, p.project_id).await.len();
    let refused = post(
        &router,
        &p.secret_key,
        &domains,
        json!({"domain": "one-more.acme.example"}),
    )
    .await;
    assert_limit(&refused, MAX_DOMAINS);
    assert_eq!(project_items(&state, p.project_id).await.len(), before);
}

async fn tenant_organization(router: &axum::Router, key: &str) -> String {
    let body = json!({"organization_detail": {"name": "Acme", "type": "Vendor", "pricing_tier_id": "free",
                                              "organization_use": "Production"}});
    let created = post(router, key, "/v2/organization", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

async fn put(router: &axum::Router, key: &str, path: &str, value: &Value) -> Exchange {
    call(
        router,
        Method::PUT,
        path,
        Some(key),
        Some(&value.to_string()),
    )
    .await
}

#[tokio::test]
async fn an_organization_holds_at_most_200_settings() {
    let state = state().await;
    let p = project(&state).await;
    let router = tenant::router(state.clone());
    let org = tenant_organization(&router, &p.secret_key).await;
    let setting = |name: &str| format!("/v2/organization/{org}/settings/{name}");
    for i in 0..MAX_SETTINGS_PER_ORGANIZATION {
        let answer = put(
            &router,
            &p.secret_key,
            &setting(&format!("k{i}")),
            &json!(i),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{i}: {:?}", answer.body);
    }
    let before = project_items(&state, p.project_id).await.len();
    let refused = put(&router, &p.secret_key, &setting("one_more"), &json!(true)).await;
    assert_limit(&refused, MAX_SETTINGS_PER_ORGANIZATION);
    assert_eq!(project_items(&state, p.project_id).await.len(), before);
    // Replacing one keeps the count; deleting one frees room.
    let replaced = put(&router, &p.secret_key, &setting("k0"), &json!("new")).await;
    assert_eq!(replaced.status, StatusCode::OK);
    let deleted = call(
        &router,
        Method::DELETE,
        &setting("k1"),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK);
    let room = put(&router, &p.secret_key, &setting("one_more"), &json!(true)).await;
    assert_eq!(room.status, StatusCode::OK, "{:?}", room.body);
}

#[tokio::test]
async fn an_organizations_settings_hold_at_most_400_kb_in_all() {
    let state = state().await;
    let p = project(&state).await;
    let router = tenant::router(state.clone());
    let org = tenant_organization(&router, &p.secret_key).await;
    let setting = |name: &str| format!("/v2/organization/{org}/settings/{name}");
    // Each value under the per-setting cap (64 KiB), together over 400 KB.
    let big = json!("x".repeat(60 * 1024));
    let fits = (MAX_SETTINGS_BYTES as usize) / (60 * 1024 + 16);
    for i in 0..fits {
        let answer = put(&router, &p.secret_key, &setting(&format!("big{i}")), &big).await;
        assert_eq!(answer.status, StatusCode::OK, "{i}: {:?}", answer.body);
    }
    let before = project_items(&state, p.project_id).await;
    let refused = put(&router, &p.secret_key, &setting("too_much"), &big).await;
    assert_limit(&refused, MAX_SETTINGS_BYTES);
    assert_eq!(
        project_items(&state, p.project_id).await.len(),
        before.len()
    );
    // Shrinking one makes room.
    let shrunk = put(&router, &p.secret_key, &setting("big0"), &json!("small")).await;
    assert_eq!(shrunk.status, StatusCode::OK);
    let room = put(&router, &p.secret_key, &setting("too_much"), &big).await;
    assert_eq!(room.status, StatusCode::OK, "{:?}", room.body);
    let all = call(
        &router,
        Method::GET,
        &format!("/v2/organization/{org}/settings"),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body.as_object().map(|o| o.len()), Some(fits + 1));
}

/// An organization grown by merges, each request under the body limit,
/// past what one DynamoDB item holds: refused before the write (413, never
/// a 5xx from DynamoDB), the record unchanged. It grows through two
/// families and three of its attributes (identifier metadata, the tenant
/// profile, `data`).
#[tokio::test]
async fn an_organization_cannot_grow_past_what_one_item_holds() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let tenant = tenant::router(state.clone());
    let under_body_limit = |body: &Value| {
        assert!(body.to_string().len() < 256 * 1024, "under the body limit");
        body.clone()
    };
    let name_it = json!({"source": "crm", "external_id": "acme"});
    let created = post(
        &client,
        &p.secret_key,
        ORGS,
        under_body_limit(
            &json!({"identifier": [{"source": "crm", "external_id": "acme",
            "metadata": {"notes": "m".repeat(230_000)}}]}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();

    let tags: Vec<String> = (0..100)
        .map(|i| format!("{i:03}{}", "t".repeat(250)))
        .collect();
    let profile = json!({"signature": "s".repeat(10_000), "style": {"css": "c".repeat(16_000)},
                         "tags": tags});
    let patched = call(
        &tenant,
        Method::PATCH,
        &format!("/v2/organization/{id}"),
        Some(&p.secret_key),
        Some(&under_body_limit(&profile).to_string()),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);

    let data = json!({"identifier": [name_it], "data": {"blob": "d".repeat(30_000)}});
    let merged = post(&client, &p.secret_key, ORGS, under_body_limit(&data)).await;
    assert_eq!(merged.status, StatusCode::OK, "{:?}", merged.body);

    let items_before = project_items(&state, p.project_id).await;
    let one_more = json!({"identifier": [name_it, {"source": "crm", "external_id": "acme-2",
        "metadata": {"notes": "n".repeat(100_000)}}]});
    let refused = post(&client, &p.secret_key, ORGS, under_body_limit(&one_more)).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{:?}",
        refused.body
    );
    assert_eq!(
        refused.content_type.as_deref(),
        Some("application/problem+json")
    );
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("organization") && detail.contains(&MAX_ITEM_BYTES.to_string()),
        "{detail}"
    );
    assert_eq!(
        project_items(&state, p.project_id).await,
        items_before,
        "nothing written"
    );
    let same = post(
        &client,
        &p.secret_key,
        ORGS,
        json!({"identifier": [name_it]}),
    )
    .await;
    assert_eq!(same.body, merged.body, "the record is unchanged");
}
