//! /v1/organizations through the accounts router, against the emulator.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use integration_tests::{call, logged_state, project, state};
use serde_json::{json, Value};

const ORGS: &str = "/v1/organizations";

#[tokio::test]
async fn create_read_update_delete_in_the_seed_001_shape() {
    let state = state().await;
    let p = project(&state).await;
    let router = accounts::router(state.clone());
    let created = call(
        &router,
        Method::POST,
        ORGS,
        Some(&p.secret_key),
        Some(r#"{"name": "Acme", "billing_email": "billing@acme.com"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let org = &created.body;
    for field in [
        "id",
        "created_at",
        "updated_at",
        "name",
        "billing_email",
        "domains",
        "personal",
        "services",
        "type",
        "metronome_customer_id",
        "stripe_customer_id",
    ] {
        assert!(org.get(field).is_some(), "{field} in {org}");
    }
    assert_eq!(org["type"], "company");
    assert_eq!(org["domains"], json!([]));
    assert_eq!(
        org["services"],
        json!({"cloud": false, "jit_provisioning": false, "scim": false, "siem": false, "sso": false})
    );
    let path = format!("{ORGS}/{}", org["id"].as_str().unwrap());

    let read = call(&router, Method::GET, &path, Some(&p.secret_key), None).await;
    assert_eq!(read.body, created.body);

    let renamed = call(
        &router,
        Method::PATCH,
        &path,
        Some(&p.secret_key),
        Some(r#"{"name": "Acme Inc"}"#),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(renamed.body["name"], "Acme Inc");
    assert_eq!(
        renamed.body["billing_email"], "billing@acme.com",
        "unmentioned fields are kept"
    );
    let cleared = call(
        &router,
        Method::PATCH,
        &path,
        Some(&p.secret_key),
        Some(r#"{"billing_email": null}"#),
    )
    .await;
    assert_eq!(cleared.body["billing_email"], Value::Null);
    assert_eq!(cleared.body["name"], "Acme Inc");

    for (body, status) in [
        (
            r#"{"billing_email": "not-an-email"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"name": null}"#, StatusCode::BAD_REQUEST),
        (r#"{"name": ""}"#, StatusCode::BAD_REQUEST),
        (r#"{"name": 5}"#, StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            call(
                &router,
                Method::PATCH,
                &path,
                Some(&p.secret_key),
                Some(body)
            )
            .await
            .status,
            status,
            "{body}"
        );
    }
    assert_eq!(
        call(
            &router,
            Method::POST,
            ORGS,
            Some(&p.secret_key),
            Some(r#"{"billing_email": "a@b.co"}"#)
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&router, Method::GET, &path, Some(&p.publishable_key), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let other = project(&state).await;
    assert_eq!(
        call(&router, Method::GET, &path, Some(&other.secret_key), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        call(&router, Method::DELETE, &path, Some(&p.secret_key), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&router, Method::GET, &path, Some(&p.secret_key), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &router,
            Method::GET,
            &format!("{ORGS}/not-a-uuid"),
            Some(&p.secret_key),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn one_record_two_dialects() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let accounts = accounts::router(state.clone());
    let upserted = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.publishable_key),
        Some(
            r#"{"identifier": [{"external_id": "acme"}], "name": "Acme", "data": {"plan": "pro"}}"#,
        ),
    )
    .await;
    let path = format!("{ORGS}/{}", upserted.body["id"].as_str().unwrap());
    let seen = call(&accounts, Method::GET, &path, Some(&p.secret_key), None).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.body["name"], "Acme");
    let patched = call(
        &accounts,
        Method::PATCH,
        &path,
        Some(&p.secret_key),
        Some(r#"{"name": "Acme Corp", "billing_email": "b@acme.com"}"#),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    // The client dialect sees the new name and keeps its own data; its next
    // upsert keeps the accounts fields.
    let again = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.publishable_key),
        Some(r#"{"identifier": [{"external_id": "acme"}], "data": {"seats": 5}}"#),
    )
    .await;
    assert_eq!(again.body["name"], "Acme Corp");
    assert_eq!(again.body["data"], json!({"plan": "pro", "seats": 5}));
    let after = call(&accounts, Method::GET, &path, Some(&p.secret_key), None).await;
    assert_eq!(after.body["billing_email"], "b@acme.com");
}

#[tokio::test]
async fn a_250_organization_list_at_limit_7_shows_each_exactly_once() {
    let state = state().await;
    let p = project(&state).await;
    let other = project(&state).await;
    for i in 0..250 {
        state
            .store
            .create_organization(p.project_id, &format!("org {i}"), Default::default(), None)
            .await
            .unwrap();
    }
    let router = accounts::router(state.clone());
    let mut seen = Vec::new();
    let mut pages: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{ORGS}?limit=7&cursor={c}"),
            None => format!("{ORGS}?limit=7"),
        };
        let page = call(&router, Method::GET, &url, Some(&p.secret_key), None).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let expected_total = if pages.len() > 3 { 251 } else { 250 };
        assert_eq!(page.body["pagination"]["total_count"], expected_total);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        seen.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        if pages.len() == 3 {
            // Creating more while walking never repeats or skips the earlier ones.
            state
                .store
                .create_organization(p.project_id, "late", Default::default(), None)
                .await
                .unwrap();
        }
        pages.push(page.body.clone());
        match page.body["pagination"]["next_cursor"].as_str() {
            Some(next) => {
                let stolen = call(
                    &router,
                    Method::GET,
                    &format!("{ORGS}?cursor={next}"),
                    Some(&other.secret_key),
                    None,
                )
                .await;
                assert_eq!(
                    stolen.status,
                    StatusCode::BAD_REQUEST,
                    "a cursor from another project is refused"
                );
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no organization twice");
    assert_eq!(seen.len(), 251, "the 250 and the one created while walking");
    assert_eq!(pages[0]["pagination"]["previous_cursor"], Value::Null);

    // previous_cursor of page 3 gives page 2 again.
    let previous = pages[2]["pagination"]["previous_cursor"].as_str().unwrap();
    let back = call(
        &router,
        Method::GET,
        &format!("{ORGS}?limit=7&cursor={previous}"),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(back.body["items"], pages[1]["items"]);

    for bad in [
        "limit=0",
        "limit=101",
        "limit=seven",
        "cursor=abc",
        "cursor=",
    ] {
        let answer = call(
            &router,
            Method::GET,
            &format!("{ORGS}?{bad}"),
            Some(&p.secret_key),
            None,
        )
        .await;
        assert!(
            answer.status == StatusCode::BAD_REQUEST
                || (bad == "cursor=" && answer.status == StatusCode::OK),
            "{bad}: {}",
            answer.status
        );
    }
}

#[tokio::test]
async fn a_get_is_one_read_and_a_list_page_one_query() {
    let (state, log) = logged_state().await;
    let p = project(&state).await;
    let org = state
        .store
        .create_organization(p.project_id, "Acme", Default::default(), None)
        .await
        .unwrap();
    let router = accounts::router(state.clone());
    log.take();
    call(
        &router,
        Method::GET,
        &format!("{ORGS}/{}", org.id),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(
        log.take(),
        ["GetItem", "GetItem"],
        "the key, then the organization"
    );
    call(&router, Method::GET, ORGS, Some(&p.secret_key), None).await;
    let mut ops = log.take();
    ops.sort();
    assert_eq!(
        ops,
        ["GetItem", "Query", "Query"],
        "the key; the page and the count's shards (one Query), concurrently"
    );
    call(
        &router,
        Method::PATCH,
        &format!("{ORGS}/{}", org.id),
        Some(&p.secret_key),
        Some(r#"{"name": "B"}"#),
    )
    .await;
    assert_eq!(
        log.take(),
        ["GetItem", "BatchGetItem", "TransactWriteItems"],
        "the key, one read (the record and its event sequence), one transaction"
    );
}

fn session(p: &shared::store::CreatedProject, user: &str) -> String {
    integration_tests::session_token(p, user, None)
}

#[tokio::test]
async fn memberships_made_by_the_client_show_here_and_the_last_owner_cannot_leave() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let owner = session(&p, "ann");
    let created = call(
        &accounts,
        Method::POST,
        ORGS,
        Some(&owner),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let org = created.body["id"].as_str().unwrap().to_owned();
    // An organization made in the accounts family has no external
    // identifier, so the client family works on one it names itself.
    let ident = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(r#"{"identifier": [{"external_id": "acme"}], "name": "Acme"}"#),
    )
    .await;
    assert_eq!(ident.status, StatusCode::OK);
    let members_path = |org: &str| format!("{ORGS}/{org}/memberships");

    let listed = call(
        &accounts,
        Method::GET,
        &members_path(&org),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["pagination"]["total_count"], 1);
    assert_eq!(listed.body["items"][0]["role"], "owner");

    let client_org = ident.body["id"].as_str().unwrap().to_owned();
    let added = call(&client, Method::POST, "/api/client/organizations/users", Some(&p.secret_key), Some(r#"{
        "organization": {"identifier": [{"external_id": "acme"}]}, "user": {"identifier": [{"source": "session", "external_id": "bob"}]}, "data": {"role": "admin"}
    }"#)).await;
    assert_eq!(added.status, StatusCode::OK);
    let listed = call(
        &accounts,
        Method::GET,
        &members_path(&client_org),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(listed.body["pagination"]["total_count"], 1);
    let member = &listed.body["items"][0];
    assert_eq!(
        member["role"], "member",
        "client data's `role` is membership data, not the accounts role"
    );
    assert_eq!(member["user_id"], added.body["user_id"]);
    let one = call(
        &accounts,
        Method::GET,
        &format!(
            "{}/{}",
            members_path(&client_org),
            member["id"].as_str().unwrap()
        ),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(one.body, *member);

    // Leave: the last owner is refused; a member leaves; then they are gone.
    let refused = call(
        &accounts,
        Method::POST,
        &format!("{ORGS}/{org}/leave"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("last owner"));
    let bob = session(&p, "bob");
    let left = call(
        &accounts,
        Method::POST,
        &format!("{ORGS}/{client_org}/leave"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{:?}", left.body);
    assert_eq!(
        call(
            &accounts,
            Method::POST,
            &format!("{ORGS}/{client_org}/leave"),
            Some(&bob),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let after = call(
        &accounts,
        Method::GET,
        &members_path(&client_org),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(after.body["pagination"]["total_count"], 0);
    assert_eq!(after.body["items"], json!([]));
    // Leave needs a session; creating needs a secret key or a session.
    assert_eq!(
        call(
            &accounts,
            Method::POST,
            &format!("{ORGS}/{org}/leave"),
            Some(&p.secret_key),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &accounts,
            Method::POST,
            ORGS,
            Some(&p.publishable_key),
            Some(r#"{"name": "x"}"#)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &accounts,
            Method::GET,
            &members_path(&uuid::Uuid::now_v7().to_string()),
            Some(&p.secret_key),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_address_needs_its_fields_takes_iso_countries_and_null_clears() {
    let state = state().await;
    let p = project(&state).await;
    let router = accounts::router(state.clone());
    let org = state
        .store
        .create_organization(p.project_id, "Acme", Default::default(), None)
        .await
        .unwrap();
    let path = format!("{ORGS}/{}/address", org.id);
    assert_eq!(
        call(&router, Method::GET, &path, Some(&p.secret_key), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &router,
            Method::PATCH,
            &path,
            Some(&p.secret_key),
            Some(r#"{"city": "Paris"}"#)
        )
        .await
        .status,
        StatusCode::NOT_FOUND,
        "nothing to patch yet"
    );
    for body in [
        r#"{"city": "Berlin", "line1": "1 Main St", "postal_code": "10115"}"#,
        r#"{"city": "Berlin", "country": "Germany", "line1": "1 Main St", "postal_code": "10115"}"#,
        r#"{"city": "", "country": "DE", "line1": "1 Main St", "postal_code": "10115"}"#,
    ] {
        assert_eq!(
            call(
                &router,
                Method::POST,
                &path,
                Some(&p.secret_key),
                Some(body)
            )
            .await
            .status,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    let created = call(&router, Method::POST, &path, Some(&p.secret_key), Some(
        r#"{"city": "Berlin", "country": "de", "line1": "1 Main St", "line2": "Floor 2", "postal_code": "10115", "state": "BE", "tax_id": "DE123", "tax_id_type": "eu_vat"}"#,
    )).await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    assert_eq!(created.body["country"], "DE");
    assert_eq!(created.body["organization_id"], org.id.to_string());
    let patched = call(
        &router,
        Method::PATCH,
        &path,
        Some(&p.secret_key),
        Some(r#"{"line2": null, "tax_id": null, "tax_id_type": null, "city": "Hamburg"}"#),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["line2"], Value::Null);
    assert_eq!(patched.body["tax_id"], Value::Null);
    assert_eq!(patched.body["tax_id_type"], Value::Null);
    assert_eq!(patched.body["state"], "BE", "omitted fields stay");
    assert_eq!(patched.body["city"], "Hamburg");
    assert_eq!(
        call(
            &router,
            Method::PATCH,
            &path,
            Some(&p.secret_key),
            Some(r#"{"city": null}"#)
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(
            &router,
            Method::PATCH,
            &path,
            Some(&p.secret_key),
            Some(r#"{"country": "ZZ"}"#)
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    let read = call(&router, Method::GET, &path, Some(&p.secret_key), None).await;
    assert_eq!(read.body, patched.body);
    let unknown = format!("{ORGS}/{}/address", uuid::Uuid::now_v7());
    assert_eq!(
        call(&router, Method::GET, &unknown, Some(&p.secret_key), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_session_reaches_only_its_users_organizations() {
    let state = state().await;
    let p = project(&state).await;
    let router = accounts::router(state.clone());
    let ann = session(&p, "ann");
    let cid = session(&p, "cid");
    let mine = call(
        &router,
        Method::POST,
        ORGS,
        Some(&ann),
        Some(r#"{"name": "Ann's"}"#),
    )
    .await;
    let theirs = call(
        &router,
        Method::POST,
        ORGS,
        Some(&cid),
        Some(r#"{"name": "Cid's"}"#),
    )
    .await;
    let (mine, theirs) = (
        mine.body["id"].as_str().unwrap().to_owned(),
        theirs.body["id"].as_str().unwrap().to_owned(),
    );
    state
        .store
        .create_organization(p.project_id, "nobody's", Default::default(), None)
        .await
        .unwrap();

    assert_eq!(
        call(
            &router,
            Method::GET,
            &format!("{ORGS}/{mine}"),
            Some(&ann),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    for path in [
        format!("{ORGS}/{theirs}"),
        format!("{ORGS}/{theirs}/memberships"),
        format!("{ORGS}/{theirs}/address"),
        format!("{ORGS}/{theirs}/events"),
    ] {
        assert_eq!(
            call(&router, Method::GET, &path, Some(&ann), None)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        call(
            &router,
            Method::PATCH,
            &format!("{ORGS}/{theirs}"),
            Some(&ann),
            Some(r#"{"name": "mine now"}"#)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let listed = call(&router, Method::GET, ORGS, Some(&ann), None).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    assert_eq!(listed.body["pagination"]["total_count"], 1);
    let all = call(&router, Method::GET, ORGS, Some(&p.secret_key), None).await;
    assert_eq!(
        all.body["pagination"]["total_count"], 3,
        "a secret key sees the whole project"
    );

    // A plain member may read but not change; the owner may change.
    let client = client::router(state.clone());
    call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.secret_key),
        Some(r#"{"identifier": [{"external_id": "shared"}]}"#),
    )
    .await;
    let shared_org = call(&client, Method::POST, "/api/client/organizations/users", Some(&p.secret_key), Some(
        r#"{"organization": {"identifier": [{"external_id": "shared"}]}, "user": {"identifier": [{"source": "session", "external_id": "ann"}]}}"#,
    )).await;
    let shared_id = shared_org.body["organization_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        call(
            &router,
            Method::GET,
            &format!("{ORGS}/{shared_id}"),
            Some(&ann),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &router,
            Method::PATCH,
            &format!("{ORGS}/{shared_id}"),
            Some(&ann),
            Some(r#"{"name": "x"}"#)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &router,
            Method::PATCH,
            &format!("{ORGS}/{mine}"),
            Some(&ann),
            Some(r#"{"name": "Ann's Co"}"#)
        )
        .await
        .status,
        StatusCode::OK
    );
    // Another project's session token is not valid here at all.
    let other = project(&state).await;
    let stranger = session(&other, "ann");
    assert_eq!(
        call(
            &router,
            Method::GET,
            &format!("{ORGS}/{mine}"),
            Some(&stranger),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

/// Method, path, key or token, body, and the DynamoDB operations expected.
type Case<'a> = (
    Method,
    String,
    Option<&'a str>,
    Option<&'a str>,
    Vec<&'static str>,
);

#[tokio::test]
async fn every_accounts_operation_uses_its_fewest_round_trips() {
    let (state, log) = logged_state().await;
    let p = project(&state).await;
    let router = accounts::router(state.clone());
    let ann = session(&p, "ann");
    let created = call(
        &router,
        Method::POST,
        ORGS,
        Some(&ann),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    let org = created.body["id"].as_str().unwrap().to_owned();
    let user = state.store.session_user(p.project_id, "ann").await.unwrap();
    let sk = Some(p.secret_key.as_str());
    let billed = call(
        &router,
        Method::POST,
        ORGS,
        sk,
        Some(r#"{"name": "Billed", "billing_email": "ap@billed.example"}"#),
    )
    .await;
    let billed = billed.body["id"].as_str().unwrap().to_owned();
    let address =
        r#"{"city": "Berlin", "country": "DE", "line1": "1 Main St", "postal_code": "10115"}"#;
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            ORGS.into(),
            sk,
            Some(r#"{"name": "B"}"#),
            vec!["GetItem", "TransactWriteItems"],
        ),
        (
            Method::GET,
            format!("{ORGS}/{org}/memberships"),
            sk,
            None,
            vec!["GetItem", "BatchGetItem", "Query"],
        ),
        (
            Method::GET,
            format!("{ORGS}/{org}/memberships/{user}"),
            sk,
            None,
            vec!["GetItem", "GetItem"],
        ),
        (
            Method::POST,
            format!("{ORGS}/{org}/address"),
            sk,
            Some(address),
            vec!["GetItem", "BatchGetItem", "TransactWriteItems"],
        ),
        (
            Method::GET,
            format!("{ORGS}/{org}/address"),
            sk,
            None,
            vec!["GetItem", "BatchGetItem"],
        ),
        (
            Method::PATCH,
            format!("{ORGS}/{org}/address"),
            sk,
            Some(r#"{"city": "Hamburg"}"#),
            vec!["GetItem", "BatchGetItem", "TransactWriteItems"],
        ),
        (
            Method::GET,
            format!("{ORGS}/{org}/events"),
            sk,
            None,
            vec!["GetItem", "GetItem", "Query"],
        ),
        // A session: its project, then its membership (user marker and
        // membership in one batch once known), the record, and — its
        // billing email unset — its oldest owner.
        (
            Method::GET,
            format!("{ORGS}/{org}"),
            Some(ann.as_str()),
            None,
            vec!["GetItem", "BatchGetItem", "GetItem", "BatchGetItem"],
        ),
        // With its own billing email: the key, the record.
        (
            Method::GET,
            format!("{ORGS}/{billed}"),
            sk,
            None,
            vec!["GetItem", "GetItem"],
        ),
        (
            Method::POST,
            format!("{ORGS}/{billed}/domains"),
            sk,
            Some(r#"{"domain": "billed.example"}"#),
            // The key, the record with its event sequence, the claim.
            vec!["GetItem", "BatchGetItem", "TransactWriteItems"],
        ),
    ];
    log.take();
    for (method, path, key, body, expected) in cases {
        let answer = call(&router, method.clone(), &path, key, body).await;
        assert!(
            answer.status.is_success(),
            "{method} {path}: {:?}",
            answer.body
        );
        let mut ops = log.take();
        ops.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(ops, expected, "{method} {path}");
    }
}

#[tokio::test]
async fn a_domain_verifies_against_a_real_dns_server_and_belongs_to_one_organization() {
    // No DNS server listens here (the "down" case); each DNS server below
    // takes a port of its own, asked through a router configured for it.
    let port = integration_tests::LocalDns::reserve_port();
    let mut state = state().await;
    state.config.dns_resolver = Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let asking = |dns: &integration_tests::LocalDns| {
        let mut state = state.clone();
        state.config.dns_resolver = Some(dns.addr);
        accounts::router(state)
    };
    let key = Some(p.secret_key.as_str());
    let create = |name: &'static str| {
        let accounts = accounts.clone();
        async move {
            let body = format!(r#"{{"name": "{name}"}}"#);
            let r = call(&accounts, Method::POST, ORGS, key, Some(&body)).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let (a, b) = (create("Acme").await, create("Beta").await);
    let domain = format!("acme-{}.example", uuid::Uuid::now_v7().simple());
    let claim = |org: &str, domain: &str| {
        let (accounts, path, body) = (
            accounts.clone(),
            format!("{ORGS}/{org}/domains"),
            json!({ "domain": domain }).to_string(),
        );
        async move { call(&accounts, Method::POST, &path, key, Some(&body)).await }
    };

    let claimed = claim(&a, &domain.to_uppercase()).await;
    assert_eq!(claimed.status, StatusCode::CREATED, "{:?}", claimed.body);
    assert_eq!(claimed.body["domain"], domain.as_str(), "normalised");
    assert_eq!(claimed.body["verified"], false);
    let record = claimed.body["verification"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = claimed.body["verification"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(record, format!("_organizations-verification.{domain}"));
    assert_eq!(claimed.body["verification"]["type"], "TXT");
    let domain_id = claimed.body["id"].as_str().unwrap().to_owned();
    let verify_path = format!("{ORGS}/{a}/domains/{domain_id}/verify");

    // Unclaimable: the same domain again, another organization, consumer
    // mail, nonsense. None of them changes anything.
    for (org, name, status) in [
        (&a, domain.as_str(), StatusCode::CONFLICT),
        (&b, domain.as_str(), StatusCode::CONFLICT),
        (&b, "gmail.com", StatusCode::BAD_REQUEST),
        (&b, "mail.outlook.com", StatusCode::BAD_REQUEST),
        (&b, "not a domain", StatusCode::BAD_REQUEST),
    ] {
        let r = claim(org, name).await;
        assert_eq!(r.status, status, "{name}: {:?}", r.body);
    }
    let beta = call(&accounts, Method::GET, &format!("{ORGS}/{b}"), key, None).await;
    assert_eq!(beta.body["domains"], json!([]));

    // No DNS server answering at all: the lookup fails, 503, nothing set.
    let down = call(&accounts, Method::POST, &verify_path, key, None).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        down.body
    );

    // The server answers, but without the token (a record for another
    // claim): 422, still unverified.
    {
        let dns =
            integration_tests::LocalDns::start(&[(&record, "organizations-verification=0000")]);
        let wrong = call(&asking(&dns), Method::POST, &verify_path, key, None).await;
        assert_eq!(
            wrong.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            wrong.body
        );
        assert!(wrong.body["detail"].as_str().unwrap().contains(&record));
    }
    // No record at all (NXDOMAIN): 422 too.
    {
        let dns = integration_tests::LocalDns::start(&[]);
        let none = call(&asking(&dns), Method::POST, &verify_path, key, None).await;
        assert_eq!(
            none.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            none.body
        );
    }
    let org = call(&accounts, Method::GET, &format!("{ORGS}/{a}"), key, None).await;
    assert_eq!(org.body["domains"][0]["verified"], false);

    // The record carries the token: verified, and the organization shows it.
    let dns = integration_tests::LocalDns::start(&[(&record, &token)]);
    let verified = call(&asking(&dns), Method::POST, &verify_path, key, None).await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
    assert_eq!(verified.body["verified"], true);
    assert!(verified.body["verified_at"].is_string());
    drop(dns);
    let again = call(&accounts, Method::POST, &verify_path, key, None).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "verifying twice is no error, and asks no DNS"
    );
    let org = call(&accounts, Method::GET, &format!("{ORGS}/{a}"), key, None).await;
    assert_eq!(
        org.body["domains"],
        json!([{"id": domain_id, "domain": domain, "verified": true}])
    );
    let read = call(
        &accounts,
        Method::GET,
        &format!("{ORGS}/{a}/domains/{domain_id}"),
        key,
        None,
    )
    .await;
    assert_eq!(read.body["verified"], true);
    assert_eq!(claim(&b, &domain).await.status, StatusCode::CONFLICT);

    // Removed from A, the domain is free for B; deleting B frees it again.
    let path = format!("{ORGS}/{a}/domains/{domain_id}");
    let removed = call(&accounts, Method::DELETE, &path, key, None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    let gone = call(&accounts, Method::DELETE, &path, key, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let org = call(&accounts, Method::GET, &format!("{ORGS}/{a}"), key, None).await;
    assert_eq!(org.body["domains"], json!([]));
    assert_eq!(claim(&b, &domain).await.status, StatusCode::CREATED);
    let deleted = call(&accounts, Method::DELETE, &format!("{ORGS}/{b}"), key, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(claim(&a, &domain).await.status, StatusCode::CREATED);
    assert_eq!(
        integration_tests::count_kind(&state, p.project_id, "DOMAIN").await,
        1,
        "one claim item, A's"
    );
}

#[tokio::test]
async fn an_unset_billing_email_shows_the_oldest_owners() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let user = call(
        &client,
        Method::POST,
        "/api/client/users",
        Some(&p.secret_key),
        Some(r#"{"identifier": [{"source": "session", "external_id": "ann"}], "data": {"email": "ann@acme.test"}}"#),
    )
    .await;
    assert_eq!(user.status, StatusCode::OK, "{:?}", user.body);
    let ann = session(&p, "ann");
    let created = call(
        &accounts,
        Method::POST,
        ORGS,
        Some(&ann),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    assert_eq!(
        created.body["billing_email"], "ann@acme.test",
        "{:?}",
        created.body
    );
    let org = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("{ORGS}/{org}");
    let set = call(
        &accounts,
        Method::PATCH,
        &path,
        Some(&ann),
        Some(r#"{"billing_email": "billing@acme.test"}"#),
    )
    .await;
    assert_eq!(set.body["billing_email"], "billing@acme.test");
    let cleared = call(
        &accounts,
        Method::PATCH,
        &path,
        Some(&ann),
        Some(r#"{"billing_email": null}"#),
    )
    .await;
    assert_eq!(cleared.body["billing_email"], "ann@acme.test");
    let listed = call(&accounts, Method::GET, ORGS, Some(&p.secret_key), None).await;
    assert_eq!(listed.body["items"][0]["billing_email"], "ann@acme.test");
    // An organization without owners has no one to fall back to.
    let ownerless = call(
        &accounts,
        Method::POST,
        ORGS,
        Some(&p.secret_key),
        Some(r#"{"name": "Beta"}"#),
    )
    .await;
    assert_eq!(ownerless.body["billing_email"], Value::Null);
}
