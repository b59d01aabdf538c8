//! The segments family through its router, against the emulator: the
//! seed's four examples (and a few more shapes) over a fixture of 30
//! organizations and 120 users, every answer compared with the set the test
//! computes from the fixture's own description.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Method, StatusCode};
use axum::Router;
use integration_tests::aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{call, logged_state, project, state};
use serde_json::{json, Value};
use shared::store::CreatedProject;
use shared::AppState;
use uuid::Uuid;

const ORGS: usize = 30;
const USERS: usize = 120;

struct Org {
    plan: &'static str,
    industry: &'static str,
    /// Upserted again after creation: `organization.updated` today.
    updated: bool,
    /// An `organization.updated` counter 45 days old (written directly).
    updated_long_ago: bool,
}

struct User {
    plan: &'static str,
    memberships: Vec<(usize, &'static str)>,
}

/// The fixture, described in plain data: what every expectation reads.
fn describe() -> (Vec<Org>, Vec<User>) {
    let orgs = (0..ORGS)
        .map(|i| Org {
            plan: ["enterprise", "free", "pro"][i % 3],
            industry: if i % 4 == 0 { "technology" } else { "retail" },
            updated: i % 5 == 0,
            updated_long_ago: i % 7 == 0 && i % 5 != 0,
        })
        .collect();
    let users = (0..USERS)
        .map(|j| {
            let mut memberships = Vec::new();
            if j % 10 != 9 {
                memberships.push((j % ORGS, if j % 4 == 0 { "admin" } else { "viewer" }));
            }
            if j % 6 == 1 {
                memberships.push(((j * 7 + 3) % ORGS, "admin"));
            }
            if j % 11 == 0 {
                memberships.push(((j + 15) % ORGS, "billing"));
            }
            memberships.sort();
            memberships.dedup_by_key(|m| m.0);
            User {
                plan: if j % 3 == 0 { "premium" } else { "basic" },
                memberships,
            }
        })
        .collect();
    (orgs, users)
}

struct Fixture {
    orgs: Vec<Org>,
    users: Vec<User>,
    org_ids: Vec<Uuid>,
}

async fn build(state: &AppState, p: &CreatedProject) -> Fixture {
    let client = client::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let post = |path: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let r = call(&client, Method::POST, path, key, Some(&body.to_string())).await;
            assert!(r.status.is_success(), "{path}: {:?}", r.body);
            r.body
        }
    };
    let (orgs, users) = describe();
    let mut org_ids = Vec::new();
    for (i, o) in orgs.iter().enumerate() {
        let made = post(
            "/api/client/organizations",
            json!({"identifier": [{"external_id": format!("o{i}")}], "name": format!("Org {i}"),
                "data": {"plan": o.plan, "industry": o.industry}}),
        )
        .await;
        let id: Uuid = made["id"].as_str().unwrap().parse().unwrap();
        org_ids.push(id);
        if o.updated {
            post(
                "/api/client/organizations",
                json!({"identifier": [{"external_id": format!("o{i}")}], "data": {"seats": 10}}),
            )
            .await;
        }
        if o.updated_long_ago {
            let day = (time::OffsetDateTime::now_utc() - time::Duration::days(45))
                .date()
                .to_string();
            state
                .aws
                .dynamodb
                .put_item()
                .table_name(&state.config.table)
                .item(
                    "PK",
                    AttributeValue::S(shared::keys::org_pk(p.project_id, id)),
                )
                .item(
                    "SK",
                    AttributeValue::S(shared::keys::counter_sk("organization.updated", &day)),
                )
                .item("name", AttributeValue::S("organization.updated".into()))
                .item("day", AttributeValue::S(day))
                .item("count", AttributeValue::N("3".into()))
                .send()
                .await
                .unwrap();
        }
    }
    for (j, u) in users.iter().enumerate() {
        post(
            "/api/client/users",
            json!({"identifier": [{"external_id": format!("u{j}")}], "data": {"plan": u.plan}}),
        )
        .await;
        for (org, role) in &u.memberships {
            post(
                "/api/client/organizations/users",
                json!({
                    "organization": {"identifier": [{"external_id": format!("o{org}")}]},
                    "user": {"identifier": [{"external_id": format!("u{j}")}]},
                    "data": {"role": role}}),
            )
            .await;
        }
    }
    Fixture {
        orgs,
        users,
        org_ids,
    }
}

fn org_rule(path: &str, value: &str) -> Value {
    json!({"type": "string", "group": "organization", "path": path, "operator": "=", "value": value})
}

fn updated_within(days: u32) -> Value {
    json!({"type": "number", "group": "organization_event", "path": "organization.updated", "operator": "=",
        "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": days}}})
}

type Expect = Box<dyn Fn(&Fixture, usize) -> BTreeSet<usize>>;
type Decide = Box<dyn Fn(&Fixture, usize) -> bool>;

/// Each case: the rule, and for user `j` the organizations (fixture
/// indexes) through which it selects them — selected when there are any,
/// unless `without_orgs` decides (rules that user conditions can satisfy).
struct Case {
    name: &'static str,
    /// One of seed 000's own examples.
    seed: bool,
    rule: Value,
    orgs: Expect,
    without_orgs: Option<Decide>,
}

impl Case {
    fn selects(&self, f: &Fixture, j: usize) -> bool {
        match &self.without_orgs {
            Some(decides) => decides(f, j),
            None => !(self.orgs)(f, j).is_empty(),
        }
    }
}

fn memberships<'a>(
    f: &'a Fixture,
    j: usize,
) -> impl Iterator<Item = (usize, &'a Org, &'static str)> + 'a {
    f.users[j]
        .memberships
        .iter()
        .map(move |(o, role)| (*o, &f.orgs[*o], *role))
}

fn cases() -> Vec<Case> {
    let set = |f: &Fixture, j: usize, keep: &dyn Fn(&Org, &str) -> bool| -> BTreeSet<usize> {
        memberships(f, j)
            .filter(|(_, o, role)| keep(o, role))
            .map(|(i, _, _)| i)
            .collect()
    };
    vec![
        Case {
            name: "plan = enterprise",
            seed: true,
            rule: org_rule(".plan", "enterprise"),
            orgs: Box::new(move |f, j| set(f, j, &|o, _| o.plan == "enterprise")),
            without_orgs: None,
        },
        Case {
            name: "plan = enterprise, members matching role = admin",
            seed: true,
            rule: json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise",
                "user_match": {"type": "conditions", "member_conditions": [
                    {"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": "admin"}]}}),
            orgs: Box::new(move |f, j| {
                set(f, j, &|o, role| o.plan == "enterprise" && role == "admin")
            }),
            without_orgs: None,
        },
        Case {
            name: "did organization.updated at least once in the last 30 days",
            seed: true,
            rule: updated_within(30),
            orgs: Box::new(move |f, j| set(f, j, &|o, _| o.updated)),
            without_orgs: None,
        },
        Case {
            name: "... in the last 60 days (reaches the 45-day-old counter)",
            seed: false,
            rule: updated_within(60),
            orgs: Box::new(move |f, j| set(f, j, &|o, _| o.updated || o.updated_long_ago)),
            without_orgs: None,
        },
        Case {
            name: "user plan = premium and industry = technology and role = admin",
            seed: true,
            rule: json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [
                {"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"},
                org_rule(".industry", "technology"),
                {"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": "admin"}]}),
            orgs: Box::new(move |f, j| {
                if f.users[j].plan != "premium" {
                    return BTreeSet::new();
                }
                let tech = set(f, j, &|o, _| o.industry == "technology");
                let admin = set(f, j, &|_, role| role == "admin");
                if tech.is_empty() || admin.is_empty() {
                    return BTreeSet::new();
                }
                tech.union(&admin).copied().collect()
            }),
            without_orgs: None,
        },
        Case {
            name: "user plan = premium (users without organizations too)",
            seed: false,
            rule: json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"}),
            orgs: Box::new(|_, _| BTreeSet::new()),
            without_orgs: Some(Box::new(|f, j| f.users[j].plan == "premium")),
        },
        Case {
            name: "user plan = premium or plan = free",
            seed: false,
            rule: json!({"type": "wrapper", "group": "parent", "operator": "or", "children": [
                {"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"},
                org_rule(".plan", "free")]}),
            orgs: Box::new(move |f, j| {
                if f.users[j].plan == "premium" {
                    BTreeSet::new()
                } else {
                    set(f, j, &|o, _| o.plan == "free")
                }
            }),
            without_orgs: Some(Box::new(move |f, j| {
                f.users[j].plan == "premium" || memberships(f, j).any(|(_, o, _)| o.plan == "free")
            })),
        },
    ]
}

async fn evaluate(segments: &Router, key: &str, body: Value) -> integration_tests::Exchange {
    call(
        segments,
        Method::POST,
        "/api/admin/segments/evaluate",
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

/// One fixture, two questions: `evaluate` lists exactly the users each rule
/// selects, page by page; `match` answers each user alike.
#[tokio::test]
async fn the_seeds_examples_over_30_organizations_and_120_users() {
    let (state, log) = logged_state().await;
    let p = project(&state).await;
    let f = build(&state, &p).await;
    let segments = segments::router(state.clone());
    let key = p.secret_key.as_str();
    let index_of: BTreeMap<Uuid, usize> = f
        .org_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();

    for case in cases() {
        log.take();
        let mut got: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut body = json!({"rule": case.rule, "limit": 10});
            if let Some(c) = &cursor {
                body["cursor"] = json!(c);
            }
            let r = evaluate(&segments, key, body).await;
            assert_eq!(r.status, StatusCode::OK, "{}: {:?}", case.name, r.body);
            pages += 1;
            let users = r.body["users"].as_array().unwrap();
            assert!(users.len() <= 10);
            for u in users {
                let external = u["identifier"][0]["external_id"].as_str().unwrap();
                assert_eq!(u["identifier"][0]["source"], "default");
                let j: usize = external.trim_start_matches('u').parse().unwrap();
                let orgs = u["organizations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| index_of[&o.as_str().unwrap().parse::<Uuid>().unwrap()])
                    .collect();
                assert!(got.insert(j, orgs).is_none(), "{}: u{j} twice", case.name);
                ids.push(u["id"].as_str().unwrap().parse::<Uuid>().unwrap());
            }
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{}: pages in user id order",
            case.name
        );
        let expected: BTreeMap<usize, BTreeSet<usize>> = (0..USERS)
            .filter(|j| case.selects(&f, *j))
            .map(|j| (j, (case.orgs)(&f, j)))
            .collect();
        assert!(
            !expected.is_empty() && expected.len() < USERS,
            "{}: the fixture separates users",
            case.name
        );
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{}: the selected users",
            case.name
        );
        assert_eq!(got, expected, "{}: the organizations of each", case.name);
        assert!(
            pages >= expected.len().div_ceil(10),
            "{}: {pages} pages",
            case.name
        );
        let operations = log.take();
        assert!(
            operations
                .iter()
                .all(|o| o == "Query" || o == "BatchGetItem" || o == "GetItem"),
            "{}: no Scan on the request path: {operations:?}",
            case.name
        );
    }
    match_answers_each_user_as_the_fixture_says(&segments, key, f).await;
}

/// `match` for every user, on the seed's examples.
async fn match_answers_each_user_as_the_fixture_says(segments: &Router, key: &str, f: Fixture) {
    let f = std::sync::Arc::new(f);
    for case in cases().into_iter().filter(|c| c.seed) {
        // The users' questions in parallel, the answers checked in order.
        let mut asked = tokio::task::JoinSet::new();
        for j in 0..USERS {
            let body = json!({"user": {"identifier": [{"external_id": format!("u{j}")}]}, "rule": case.rule});
            let (segments, key) = (segments.clone(), key.to_owned());
            asked.spawn(async move {
                let r = call(
                    &segments,
                    Method::POST,
                    "/api/admin/segments/match",
                    Some(&key),
                    Some(&body.to_string()),
                )
                .await;
                (j, r)
            });
        }
        let mut answers: Vec<_> = asked.join_all().await;
        answers.sort_by_key(|(j, _)| *j);
        for (j, r) in answers {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            let want = case.selects(&f, j);
            assert_eq!(r.body["match"], want, "{}: u{j}", case.name);
            let reasons = r.body["reasons"].as_array().unwrap();
            assert_eq!(!reasons.is_empty(), want, "{}: u{j}", case.name);
            let named: BTreeSet<usize> = reasons
                .iter()
                .filter_map(|r| r["organization_id"].as_str())
                .map(|id| {
                    let id: Uuid = id.parse().unwrap();
                    f.org_ids.iter().position(|o| *o == id).unwrap()
                })
                .collect();
            if want {
                assert_eq!(named, (case.orgs)(&f, j), "{}: u{j}", case.name);
            }
        }
    }
}

#[tokio::test]
async fn bad_requests_are_refused_and_keys_are_checked() {
    let state = state().await;
    let p = project(&state).await;
    let other = project(&state).await;
    let segments = segments::router(state.clone());
    let client = client::router(state.clone());
    let key = p.secret_key.as_str();
    for j in 0..3 {
        let body =
            json!({"identifier": [{"external_id": format!("u{j}")}], "data": {"plan": "premium"}});
        let r = call(
            &client,
            Method::POST,
            "/api/client/users",
            Some(key),
            Some(&body.to_string()),
        )
        .await;
        assert!(r.status.is_success());
    }
    let premium = json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"});

    let first = evaluate(&segments, key, json!({"rule": premium, "limit": 2})).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["users"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = evaluate(
        &segments,
        key,
        json!({"rule": premium, "limit": 2, "cursor": cursor}),
    )
    .await;
    assert_eq!(rest.body["users"].as_array().unwrap().len(), 1);
    assert!(rest.body["next_cursor"].is_null());

    // Another project's cursor, a damaged one, a limit out of range, an
    // unknown field, a bad tree: 400, each saying what.
    let foreign = evaluate(
        &segments,
        &other.secret_key,
        json!({"rule": premium, "cursor": cursor}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    for (body, says) in [
        (json!({"rule": premium, "cursor": "garbage"}), "cursor"),
        (json!({"rule": premium, "limit": 0}), "limit"),
        (json!({"rule": premium, "limit": 101}), "limit"),
        (json!({"rule": premium, "limit": -1}), "limit"),
        (json!({"rule": premium, "page": 2}), "page"),
        (
            json!({"rule": {"type": "wrapper", "group": "parent", "operator": "and", "children": [
                {"type": "number", "group": "user", "path": ".n", "operator": "starts with", "value": 1}]}}),
            "rule.children[0]",
        ),
    ] {
        let r = evaluate(&segments, key, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{body}: {detail}");
    }
    // Another project sees none of these users.
    let theirs = evaluate(&segments, &other.secret_key, json!({"rule": premium})).await;
    assert_eq!(theirs.body["users"], json!([]));

    let bad = json!({"user": {"identifier": [{"external_id": "u0"}]}, "rule": {"type": "wrapper", "group": "parent", "operator": "and",
        "children": [{"type": "number", "group": "user", "path": ".n", "operator": "starts with", "value": 1}]}});
    let r = call(
        &segments,
        Method::POST,
        "/api/admin/segments/match",
        Some(key),
        Some(&bad.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("rule.children[0]"));
    let nobody = json!({"user": {"identifier": [{"external_id": "nobody"}]}, "rule": premium});
    let r = call(
        &segments,
        Method::POST,
        "/api/admin/segments/match",
        Some(key),
        Some(&nobody.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for path in ["/api/admin/segments/match", "/api/admin/segments/evaluate"] {
        let r = call(
            &segments,
            Method::POST,
            path,
            Some(&p.publishable_key),
            Some(&nobody.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        let r = call(
            &segments,
            Method::POST,
            path,
            None,
            Some(&nobody.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}
