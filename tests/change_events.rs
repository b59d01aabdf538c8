//! System events say what changed, whichever dialect made the change
//! (README "Events"): an update through each of the four families, read
//! back from the organization's timeline as a user reads it
//! (`GET /v1/organizations/{id}/events`), members added, updated and
//! removed, and a deletion.

use std::io::Cursor;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use integration_tests::aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{call, project, project_items, send, session_token, state_with_bucket};
use serde_json::{json, Value};
use shared::domain::event;

const CLIENT_ORGS: &str = "/api/client/organizations";
const MEMBERS: &str = "/api/client/organizations/users";

/// The organization's events of one name, oldest first, as the accounts
/// family lists them.
async fn timeline(accounts: &axum::Router, key: &str, org: &str, name: &str) -> Vec<Value> {
    let page = call(
        accounts,
        Method::GET,
        &format!("/v1/organizations/{org}/events?name={name}&limit=100"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    page.body["items"].as_array().cloned().unwrap_or_default()
}

/// The data of the organization's latest `organization.updated`, and how
/// many there are.
async fn last_update(accounts: &axum::Router, key: &str, org: &str) -> (usize, Value) {
    let events = timeline(accounts, key, org, event::ORGANIZATION_UPDATED).await;
    let last = events.last().map(|e| e["data"].clone()).unwrap_or_default();
    (events.len(), last)
}

/// A stored attribute as JSON (tests read the table directly only where
/// no route shows the item).
fn json_of(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => json!(text),
        AttributeValue::N(number) => serde_json::from_str(number).unwrap_or(Value::Null),
        AttributeValue::Bool(flag) => json!(flag),
        AttributeValue::L(list) => list.iter().map(json_of).collect(),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(name, value)| (name.clone(), json_of(value)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn png() -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbaImage::from_pixel(3, 2, image::Rgba([10, 20, 30, 255]))
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("a PNG");
    out
}

#[tokio::test]
async fn an_update_through_each_dialect_says_what_changed() {
    let state = state_with_bucket(None).await;
    let p = project(&state).await;
    let sk = p.secret_key.as_str();
    let client = client::router(state.clone());
    let accounts = accounts::router(state.clone());
    let crm = crm::router(state.clone());
    let tenant = tenant::router(state.clone());

    let made = call(
        &client,
        Method::POST,
        CLIENT_ORGS,
        Some(sk),
        Some(
            r#"{"identifier": [{"external_id": "acme"}], "name": "Acme", "data": {"plan": "free", "region": "eu"}}"#,
        ),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    let org = made.body["id"].as_str().unwrap().to_owned();
    let created = timeline(&accounts, sk, &org, event::ORGANIZATION_CREATED).await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0]["data"]["changes"],
        json!({
            "name": {"from": null, "to": "Acme"},
            "identifiers": {"from": null, "to": [{"source": "default", "external_id": "acme"}]},
            "data.plan": {"from": null, "to": "free"},
            "data.region": {"from": null, "to": "eu"},
            "accounts.personal": {"from": null, "to": false},
            "accounts.services": {"from": null, "to": {"cloud": false, "jit_provisioning": false, "scim": false, "siem": false, "sso": false}},
        }),
        "a creation is every field from null"
    );

    // The client family: a shallow merge of data, a key removed by null.
    let upsert = call(
        &client,
        Method::POST,
        CLIENT_ORGS,
        Some(sk),
        Some(
            r#"{"identifier": [{"external_id": "acme"}], "data": {"plan": "enterprise", "region": null, "seats": 10}}"#,
        ),
    )
    .await;
    assert_eq!(upsert.status, StatusCode::OK, "{:?}", upsert.body);
    assert_eq!(
        last_update(&accounts, sk, &org).await,
        (
            1,
            json!({"changes": {
                "data.plan": {"from": "free", "to": "enterprise"},
                "data.region": {"from": "eu", "to": null},
                "data.seats": {"from": null, "to": 10},
            }})
        )
    );

    // The accounts family (/v1 PATCH): the shared name and its own field.
    let patch = r#"{"name": "Acme Inc", "billing_email": "billing@acme.example"}"#;
    let path = format!("/v1/organizations/{org}");
    let patched = call(&accounts, Method::PATCH, &path, Some(sk), Some(patch)).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(
        last_update(&accounts, sk, &org).await,
        (
            2,
            json!({"changes": {
                "name": {"from": "Acme", "to": "Acme Inc"},
                "accounts.billing_email": {"from": null, "to": "billing@acme.example"},
            }})
        )
    );
    let again = call(&accounts, Method::PATCH, &path, Some(sk), Some(patch)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.body["version"], patched.body["version"],
        "the same values again change nothing"
    );
    assert_eq!(
        last_update(&accounts, sk, &org).await.0,
        2,
        "and record nothing"
    );

    // The CRM: a PATCH of its own fields, then a PUT that replaces them
    // (and the title, which is the shared name).
    let path = format!("/organizations/{org}");
    let r = call(
        &crm,
        Method::PATCH,
        &path,
        Some(sk),
        Some(r#"{"description": "Tools", "tags": ["/tags/1"]}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        last_update(&accounts, sk, &org).await,
        (
            3,
            json!({"changes": {
                "crm.description": {"from": null, "to": "Tools"},
                "crm.tags": {"from": null, "to": ["1"]},
            }})
        )
    );
    let r = call(
        &crm,
        Method::PUT,
        &path,
        Some(sk),
        Some(r#"{"title": "Acme BV", "website": "https://acme.example"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        last_update(&accounts, sk, &org).await,
        (
            4,
            json!({"changes": {
                "name": {"from": "Acme Inc", "to": "Acme BV"},
                "crm.description": {"from": "Tools", "to": null},
                "crm.tags": {"from": ["1"], "to": null},
                "crm.website": {"from": null, "to": "https://acme.example"},
            }})
        )
    );

    // The tenant family: its profile, a setting, the logo.
    let r = call(
        &tenant,
        Method::PATCH,
        &format!("/v2/organization/{org}"),
        Some(sk),
        Some(r#"{"symbol": "ACME", "phone": "+49 30 1234"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        last_update(&accounts, sk, &org).await,
        (
            5,
            json!({"changes": {
                "tenant.symbol": {"from": null, "to": "ACME"},
                "tenant.phone": {"from": null, "to": "+49 30 1234"},
            }})
        )
    );
    let setting = format!("/v2/organization/{org}/settings/default_language");
    for _ in 0..2 {
        let r = call(&tenant, Method::PUT, &setting, Some(sk), Some(r#""de""#)).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    assert_eq!(
        last_update(&accounts, sk, &org).await,
        (
            6,
            json!({"changes": {"settings.default_language": {"from": null, "to": "de"}}})
        ),
        "the same value put again is no change"
    );
    let r = call(&tenant, Method::PUT, &setting, Some(sk), Some(r#""en""#)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        last_update(&accounts, sk, &org).await.1,
        json!({"changes": {"settings.default_language": {"from": "de", "to": "en"}}})
    );
    for _ in 0..2 {
        let r = call(&tenant, Method::DELETE, &setting, Some(sk), None).await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    assert_eq!(
        last_update(&accounts, sk, &org).await,
        (
            8,
            json!({"changes": {"settings.default_language": {"from": "en", "to": null}}})
        ),
        "deleting what is not there records nothing"
    );
    let logo = send(
        &tenant,
        Request::builder()
            .method(Method::PUT)
            .uri(format!("/v2/organization/{org}/logo"))
            .header("authorization", format!("Bearer {sk}"))
            .header("content-type", "image/png")
            .body(Body::from(png()))
            .unwrap(),
    )
    .await;
    assert_eq!(logo.status, StatusCode::OK, "{:?}", logo.body);
    let (count, data) = last_update(&accounts, sk, &org).await;
    assert_eq!(count, 9);
    let uploaded = &data["changes"]["tenant.logo"];
    assert_eq!(uploaded["from"], Value::Null);
    assert_eq!(uploaded["to"]["content_type"], "image/png");
    assert!(
        uploaded["to"]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with(&format!("logos/{}/{org}/", p.project_id))),
        "{uploaded}"
    );
    assert_eq!(data["changes"].as_object().map(|c| c.len()), Some(1));
    let r = call(
        &tenant,
        Method::DELETE,
        &format!("/v2/organization/{org}/logo"),
        Some(sk),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        last_update(&accounts, sk, &org).await.1["changes"]["tenant.logo"],
        json!({"from": uploaded["to"], "to": null})
    );

    // The accounts family's postal address lives beside the record.
    let address = format!("/v1/organizations/{org}/address");
    let r = call(
        &accounts,
        Method::POST,
        &address,
        Some(sk),
        Some(
            r#"{"line1": "Main St 1", "city": "Berlin", "postal_code": "10115", "country": "de"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        last_update(&accounts, sk, &org).await.1,
        json!({"changes": {
            "address.line1": {"from": null, "to": "Main St 1"},
            "address.city": {"from": null, "to": "Berlin"},
            "address.postal_code": {"from": null, "to": "10115"},
            "address.country": {"from": null, "to": "DE"},
        }})
    );
    let r = call(
        &accounts,
        Method::PATCH,
        &address,
        Some(sk),
        Some(r#"{"city": "Hamburg"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        last_update(&accounts, sk, &org).await,
        (
            12,
            json!({"changes": {"address.city": {"from": "Berlin", "to": "Hamburg"}}})
        )
    );
}

#[tokio::test]
async fn large_values_are_truncated_so_the_event_stays_small() {
    let state = state_with_bucket(None).await;
    let p = project(&state).await;
    let sk = p.secret_key.as_str();
    let tenant = tenant::router(state.clone());
    let accounts = accounts::router(state.clone());
    let made = call(
        &tenant,
        Method::POST,
        "/v2/organization",
        Some(sk),
        Some(r#"{"organization_detail": {"name": "Big", "type": "Vendor", "pricing_tier_id": "professional"}}"#),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let org = made.body["id"].as_str().unwrap().to_owned();
    // A setting of ~40 KB replaced by another: both sides together are more
    // than one event carries.
    let setting = format!("/v2/organization/{org}/settings/template");
    for fill in ["a", "b"] {
        let value = json!(fill.repeat(40_000)).to_string();
        let r = call(&tenant, Method::PUT, &setting, Some(sk), Some(&value)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let events = timeline(&accounts, sk, &org, event::ORGANIZATION_UPDATED).await;
    let sizes: Vec<usize> = events.iter().map(|e| e["data"].to_string().len()).collect();
    assert_eq!(events.len(), 2, "{sizes:?}");
    assert_eq!(
        events[0]["data"]["changes"]["settings.template"]["to"]
            .as_str()
            .map(str::len),
        Some(40_000),
        "what fits comes whole"
    );
    assert_eq!(
        events[1]["data"]["changes"]["settings.template"],
        json!({"truncated": true, "from_bytes": 40_002, "to_bytes": 40_002}),
        "too large to carry whole: the sizes (read the value from the organization)"
    );
    assert!(sizes
        .iter()
        .all(|size| *size <= shared::limits::MAX_EVENT_CHANGES_BYTES + 100));
}

#[tokio::test]
async fn member_events_say_who_and_what_changed() {
    let state = state_with_bucket(None).await;
    let p = project(&state).await;
    let sk = p.secret_key.as_str();
    let client = client::router(state.clone());
    let accounts = accounts::router(state.clone());
    let made = call(
        &client,
        Method::POST,
        CLIENT_ORGS,
        Some(sk),
        Some(r#"{"identifier": [{"external_id": "acme"}]}"#),
    )
    .await;
    let org = made.body["id"].as_str().unwrap().to_owned();
    let member = |data: Value| {
        json!({
            "organization": {"identifier": [{"external_id": "acme"}]},
            "user": {"identifier": [{"external_id": "user_1", "source": "app"}]},
            "data": data,
        })
        .to_string()
    };
    let added = call(
        &client,
        Method::POST,
        MEMBERS,
        Some(sk),
        Some(&member(json!({"role": "admin", "team": "eng"}))),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    let user = added.body["user_id"].as_str().unwrap().to_owned();
    let identifiers = json!([{"source": "app", "external_id": "user_1"}]);
    let events = timeline(&accounts, sk, &org, event::MEMBER_ADDED).await;
    assert_eq!(
        events.iter().map(|e| e["data"].clone()).collect::<Vec<_>>(),
        [
            json!({"user_id": user, "identifiers": identifiers, "role": "member",
                "data": {"role": "admin", "team": "eng"}})
        ]
    );
    for _ in 0..2 {
        let r = call(
            &client,
            Method::POST,
            MEMBERS,
            Some(sk),
            Some(&member(json!({"role": "viewer", "team": null}))),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let events = timeline(&accounts, sk, &org, event::MEMBER_UPDATED).await;
    assert_eq!(
        events.iter().map(|e| e["data"].clone()).collect::<Vec<_>>(),
        [json!({"user_id": user, "changes": {
            "data.role": {"from": "admin", "to": "viewer"},
            "data.team": {"from": "eng", "to": null},
        }})],
        "one event: the second merge changed nothing"
    );
    let r = call(
        &client,
        Method::DELETE,
        MEMBERS,
        Some(sk),
        Some(
            &json!({
                "organization": {"identifier": [{"external_id": "acme"}]},
                "user": {"identifier": [{"external_id": "user_1", "source": "app"}]},
            })
            .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let events = timeline(&accounts, sk, &org, event::MEMBER_REMOVED).await;
    assert_eq!(
        events.iter().map(|e| e["data"].clone()).collect::<Vec<_>>(),
        [
            json!({"user_id": user, "identifiers": identifiers, "role": "member",
                "data": {"role": "viewer"}})
        ],
        "the membership as it was"
    );
}

#[tokio::test]
async fn a_deletion_says_what_was_deleted_and_by_whom() {
    let state = state_with_bucket(None).await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let accounts = accounts::router(state.clone());
    let sk = p.secret_key.as_str();

    let made = call(
        &client,
        Method::POST,
        CLIENT_ORGS,
        Some(&p.publishable_key),
        Some(r#"{"identifier": [{"external_id": "acme", "source": "crm"}], "name": "Acme"}"#),
    )
    .await;
    let org = made.body["id"].as_str().unwrap().to_owned();
    let r = call(
        &accounts,
        Method::POST,
        &format!("/v1/organizations/{org}/domains"),
        Some(sk),
        Some(r#"{"domain": "acme.example"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let (_, claimed) = last_update(&accounts, sk, &org).await;
    let domains = &claimed["changes"]["accounts.domains"];
    assert_eq!(domains["from"], Value::Null);
    assert_eq!(domains["to"][0]["domain"], "acme.example");
    assert_eq!(domains["to"][0]["verified"], false);
    let r = call(
        &client,
        Method::DELETE,
        CLIENT_ORGS,
        Some(&p.publishable_key),
        Some(r#"{"identifier": [{"external_id": "acme", "source": "crm"}]}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    // The timeline route answers 404 for a deleted organization; its
    // events stay in the table until the purge (and go out on the stream).
    let deleted: Vec<Value> = project_items(&state, p.project_id)
        .await
        .into_iter()
        .filter(|item| {
            item.get("name")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(event::ORGANIZATION_DELETED)
                && item.contains_key("origin")
        })
        .map(|item| json_of(&item["data"]))
        .collect();
    assert_eq!(
        deleted,
        [json!({
            "id": org,
            "name": "Acme",
            "identifiers": [{"source": "crm", "external_id": "acme"}],
            "domains": ["acme.example"],
            "deleted_by": {"family": "client", "credential": "publishable_key"},
        })]
    );
}

#[tokio::test]
async fn the_owner_joins_with_the_creation_and_a_member_who_leaves_is_removed() {
    let state = state_with_bucket(None).await;
    let p = project(&state).await;
    let sk = p.secret_key.as_str();
    let client = client::router(state.clone());
    let accounts = accounts::router(state.clone());
    let ann = session_token(&p, "ann", None);
    let made = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&ann),
        Some(r#"{"name": "Ann's"}"#),
    )
    .await;
    assert!(made.status.is_success(), "{:?}", made.body);
    let org = made.body["id"].as_str().unwrap().to_owned();
    let page = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{org}/events"),
        Some(sk),
        None,
    )
    .await;
    let names: Vec<&str> = page.body["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, [event::ORGANIZATION_CREATED, event::MEMBER_ADDED]);
    let owner = &page.body["items"][1]["data"];
    assert_eq!(owner["role"], "owner");
    assert_eq!(owner["data"], json!({}));
    assert!(owner["user_id"].is_string(), "{owner}");

    let joined = call(
        &client,
        Method::POST,
        MEMBERS,
        Some(sk),
        Some(
            &json!({
                "organization": {"identifier": [{"source": "id", "external_id": org}]},
                "user": {"identifier": [{"source": "session", "external_id": "bob"}]},
            })
            .to_string(),
        ),
    )
    .await;
    assert_eq!(joined.status, StatusCode::OK, "{:?}", joined.body);
    let bob = session_token(&p, "bob", None);
    let left = call(
        &accounts,
        Method::POST,
        &format!("/v1/organizations/{org}/leave"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{:?}", left.body);
    let removed = timeline(&accounts, sk, &org, event::MEMBER_REMOVED).await;
    assert_eq!(removed.len(), 1);
    assert_eq!(
        removed[0]["data"]["identifiers"],
        json!([{"source": "session", "external_id": "bob"}])
    );
    assert_eq!(removed[0]["data"]["role"], "member");
}

/// README's "Events" documents every event the service emits.
#[test]
fn the_readme_documents_every_system_event() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Events\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has an Events section");
    for name in event::SYSTEM_EVENTS
        .iter()
        .map(|n| (*n).to_owned())
        .chain([event::scheduled("<name>")])
    {
        assert!(
            section.contains(&format!("| `{name}` |")),
            "README's Events table has a row for {name}"
        );
    }
}
