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

/// Lunogram's organization event rule: the event named in `value`.
fn updated_within(days: u32) -> Value {
    json!({"uuid": "0b0e0f00-0000-4000-8000-000000000001", "type": "wrapper", "group": "organization_event",
        "path": "", "value": "organization.updated",
        "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": days}},
        "children": [], "user_match": {"type": "all"}})
}

/// This service's earlier shape of the same rule (the event in `path`),
/// still accepted: a Lunogram path starts with `.`.
fn updated_within_by_path(days: u32) -> Value {
    json!({"type": "number", "group": "organization_event", "path": "organization.updated", "operator": "=",
        "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": days}}})
}

/// Lunogram's organization property rule, optionally narrowed to members.
fn organization_has(children: Vec<Value>, member_conditions: Option<Value>) -> Value {
    let user_match = match member_conditions {
        Some(c) => json!({"type": "conditions", "member_conditions": c}),
        None => json!({"type": "all"}),
    };
    json!({"uuid": "0b0e0f00-0000-4000-8000-000000000002", "type": "wrapper", "group": "organization",
        "operator": "and", "path": "", "children": children, "user_match": user_match})
}

fn member_rule(path: &str, value: &str) -> Value {
    json!({"type": "string", "group": "organization_user", "path": path, "operator": "=", "value": value})
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
            rule: organization_has(vec![org_rule(".plan", "enterprise")], None),
            orgs: Box::new(move |f, j| set(f, j, &|o, _| o.plan == "enterprise")),
            without_orgs: None,
        },
        Case {
            name: "plan = enterprise (a bare organization leaf, also Lunogram's)",
            seed: false,
            rule: org_rule(".plan", "enterprise"),
            orgs: Box::new(move |f, j| set(f, j, &|o, _| o.plan == "enterprise")),
            without_orgs: None,
        },
        Case {
            name: "plan = enterprise, members matching role = admin",
            seed: true,
            rule: organization_has(
                vec![org_rule(".plan", "enterprise")],
                Some(
                    json!({"type": "wrapper", "group": "parent", "operator": "and",
                    "children": [member_rule(".role", "admin")]}),
                ),
            ),
            orgs: Box::new(move |f, j| {
                set(f, j, &|o, role| o.plan == "enterprise" && role == "admin")
            }),
            without_orgs: None,
        },
        Case {
            name: "plan = enterprise and role = admin, one wrapper: the same membership",
            seed: false,
            rule: json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [
                org_rule(".data.plan", "enterprise"), member_rule(".data.role", "admin")]}),
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
            name: "... in the last 60 days (reaches the 45-day-old counter; the earlier shape)",
            seed: false,
            rule: updated_within_by_path(60),
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

/// Records one event in an organization's timeline as the processor does
/// (the event and its day's counter), at `at`, with an id made then.
async fn record(
    state: &AppState,
    project: Uuid,
    org: Uuid,
    name: &str,
    data: Value,
    at: time::OffsetDateTime,
) {
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap();
    let event = shared::store::timeline::TimelineEvent {
        id: uuid::Builder::from_unix_timestamp_millis(millis, &rand_bytes()).into_uuid(),
        name: name.into(),
        data: data.as_object().cloned().unwrap(),
        created_at: shared::ids::timestamp(at),
        origin: "custom".into(),
    };
    let recorded = state
        .store
        .record_event(project, org, &event)
        .await
        .unwrap();
    assert_eq!(recorded, shared::store::timeline::Recorded::Recorded);
}

fn rand_bytes() -> [u8; 10] {
    let mut out = [0; 10];
    out.copy_from_slice(&Uuid::new_v4().as_bytes()[..10]);
    out
}

/// The users a rule selects, by external id, through `evaluate` (all
/// pages) and through `match` for each of `everyone` — the two must agree.
async fn selected(
    segments: &Router,
    key: &str,
    rule: &Value,
    everyone: &[&str],
) -> BTreeSet<String> {
    let mut got = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = json!({"rule": rule, "limit": 2});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let r = evaluate(segments, key, body).await;
        assert_eq!(r.status, StatusCode::OK, "{rule}: {:?}", r.body);
        for u in r.body["users"].as_array().unwrap() {
            got.insert(
                u["identifier"][0]["external_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    for user in everyone {
        let body = json!({"user": {"identifier": [{"external_id": user}]}, "rule": rule});
        let r = call(
            segments,
            Method::POST,
            "/api/admin/segments/match",
            Some(key),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{rule}: {:?}", r.body);
        assert_eq!(
            r.body["match"],
            got.contains(*user),
            "{rule}: match for {user}"
        );
    }
    got
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// (organization, role) pairs of one user.
type Memberships = &'static [(&'static str, &'static str)];

/// Lunogram's rule JSON as Lunogram writes it, through the router: the
/// same-membership counter-example, events filtered by their data, paths,
/// `or` across groups, and the refusals.
#[tokio::test]
async fn lunogram_rules_as_lunogram_writes_them() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let segments = segments::router(state.clone());
    let key = p.secret_key.as_str();
    let post = |path: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let r = call(
                &client,
                Method::POST,
                path,
                Some(key),
                Some(&body.to_string()),
            )
            .await;
            assert!(r.status.is_success(), "{path}: {:?}", r.body);
            r.body
        }
    };
    let mut orgs = BTreeMap::new();
    for (name, display, data) in [
        (
            "acme",
            "Acme",
            json!({"plan": "enterprise", "purchase agreement": {"value": "signed"}}),
        ),
        ("freeco", "Free Co", json!({"plan": "free"})),
        ("bigco", "Big Co", json!({"plan": "enterprise"})),
    ] {
        let made = post(
            "/api/client/organizations",
            json!({"identifier": [{"external_id": name}], "name": display, "data": data}),
        )
        .await;
        orgs.insert(name, made["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    // admin_elsewhere: a viewer in the enterprise organization and an
    // admin in the free one — an admin, and in an enterprise organization,
    // but not an admin of one.
    let users: [(&str, &str, Memberships); 5] = [
        (
            "admin_elsewhere",
            "basic",
            &[("acme", "viewer"), ("freeco", "admin")],
        ),
        ("enterprise_admin", "basic", &[("acme", "admin")]),
        ("free_admin", "basic", &[("freeco", "admin")]),
        ("big_viewer", "basic", &[("bigco", "viewer")]),
        ("lonely", "premium", &[]),
    ];
    let everyone: Vec<&str> = users.iter().map(|u| u.0).collect();
    for (user, plan, memberships) in users {
        post(
            "/api/client/users",
            json!({"identifier": [{"external_id": user}], "data": {"plan": plan}}),
        )
        .await;
        for (org, role) in memberships {
            post(
                "/api/client/organizations/users",
                json!({
                "organization": {"identifier": [{"external_id": org}]},
                "user": {"identifier": [{"external_id": user}]},
                "data": {"role": role}}),
            )
            .await;
        }
    }
    let now = time::OffsetDateTime::now_utc();
    let paid = |amount: u64| json!({"amount": amount, "currency": "EUR"});
    record(
        &state,
        p.project_id,
        orgs["acme"],
        "invoice.paid",
        paid(300),
        now - time::Duration::hours(2),
    )
    .await;
    record(
        &state,
        p.project_id,
        orgs["acme"],
        "invoice.paid",
        paid(50),
        now - time::Duration::days(3),
    )
    .await;
    record(
        &state,
        p.project_id,
        orgs["freeco"],
        "invoice.paid",
        paid(500),
        now - time::Duration::days(40),
    )
    .await;
    record(
        &state,
        p.project_id,
        orgs["bigco"],
        "invoice.refunded",
        paid(500),
        now - time::Duration::hours(1),
    )
    .await;

    let enterprise = org_rule(".plan", "enterprise");
    let admin = member_rule(".role", "admin");
    let wrap = |op: &str, children: Vec<Value>| json!({"type": "wrapper", "group": "parent", "operator": op, "children": children});
    let paid_rule = |count: u64, days: u32, children: Vec<Value>, members: Option<Value>| {
        let mut r = json!({"type": "wrapper", "group": "organization_event", "path": "", "value": "invoice.paid",
            "frequency": {"count": count, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": days}},
            "children": children, "user_match": {"type": "all"}});
        if let Some(m) = members {
            r["user_match"] = json!({"type": "conditions", "member_conditions": m});
        }
        r
    };
    let amount = |op: &str, n: u64| json!({"type": "number", "group": "organization_event", "path": ".amount", "operator": op, "value": n});

    let cases: Vec<(&str, Value, &[&str])> = vec![
        // The seed's "Organization has plan = enterprise / Members
        // matching role = admin", in each of Lunogram's shapes.
        (
            "same membership",
            wrap("and", vec![enterprise.clone(), admin.clone()]),
            &["enterprise_admin"],
        ),
        (
            "property rule + user_match (one node)",
            organization_has(
                vec![enterprise.clone()],
                Some(wrap("and", vec![admin.clone()])),
            ),
            &["enterprise_admin"],
        ),
        (
            "property rule + user_match (a leaf)",
            organization_has(vec![enterprise.clone()], Some(admin.clone())),
            &["enterprise_admin"],
        ),
        (
            "the earlier list",
            json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise",
            "user_match": {"type": "conditions", "member_conditions": [admin.clone()]}}),
            &["enterprise_admin"],
        ),
        (
            "apart: any membership each",
            wrap(
                "and",
                vec![
                    wrap("and", vec![enterprise.clone()]),
                    wrap("and", vec![admin.clone()]),
                ],
            ),
            &["admin_elsewhere", "enterprise_admin"],
        ),
        (
            "organization has plan = enterprise",
            organization_has(vec![enterprise.clone()], None),
            &["admin_elsewhere", "enterprise_admin", "big_viewer"],
        ),
        // Events filtered by their own data (paths read the event's data).
        (
            "paid over 100 in 30 days",
            paid_rule(1, 30, vec![amount(">", 100)], None),
            &["admin_elsewhere", "enterprise_admin"],
        ),
        (
            "... by admins",
            paid_rule(
                1,
                30,
                vec![amount(">", 100)],
                Some(wrap("and", vec![admin.clone()])),
            ),
            &["enterprise_admin"],
        ),
        (
            "paid under 100 (.data.amount)",
            paid_rule(
                1,
                30,
                vec![
                    json!({"type": "number", "group": "organization_event", "path": ".data.amount", "operator": "<", "value": 100}),
                ],
                None,
            ),
            &["admin_elsewhere", "enterprise_admin"],
        ),
        (
            "paid over 100 twice in 30 days",
            paid_rule(2, 30, vec![amount(">", 100)], None),
            &[],
        ),
        (
            "paid over 400 in 60 days",
            paid_rule(1, 60, vec![amount(">", 400)], None),
            &["admin_elsewhere", "free_admin"],
        ),
        (
            "paid in 7 days (counters)",
            paid_rule(2, 7, vec![], None),
            &["admin_elsewhere", "enterprise_admin"],
        ),
        // Paths: record fields, custom data, brackets.
        (
            "name",
            org_rule(".name", "Acme"),
            &["admin_elsewhere", "enterprise_admin"],
        ),
        (
            "external_id",
            org_rule(".external_id", "bigco"),
            &["big_viewer"],
        ),
        (
            "brackets",
            org_rule(".data['purchase agreement'].value", "signed"),
            &["admin_elsewhere", "enterprise_admin"],
        ),
        (
            "double quotes",
            org_rule(r#".data["purchase agreement"].value"#, "signed"),
            &["admin_elsewhere", "enterprise_admin"],
        ),
        (
            "a custom `name` is data",
            org_rule(".data.name", "Acme"),
            &[],
        ),
        // `or` is a union across groups.
        (
            "user or organization",
            wrap(
                "or",
                vec![
                    json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"}),
                    org_rule(".plan", "free"),
                ],
            ),
            &["admin_elsewhere", "free_admin", "lonely"],
        ),
        (
            "user or organization event",
            wrap(
                "or",
                vec![
                    json!({"type": "string", "group": "user", "path": ".data.plan", "operator": "=", "value": "premium"}),
                    paid_rule(1, 60, vec![amount(">", 400)], None),
                ],
            ),
            &["admin_elsewhere", "free_admin", "lonely"],
        ),
    ];
    for (name, rule, want) in cases {
        assert_eq!(
            selected(&segments, key, &rule, &everyone).await,
            names(want),
            "{name}"
        );
    }

    // A user's own events are not here: refused, never false.
    let user_event = json!({"type": "wrapper", "group": "event", "value": "purchase",
        "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 7}}});
    let refusals = [
        (
            wrap("or", vec![enterprise.clone(), user_event.clone()]),
            "user's own events",
        ),
        (
            json!({"type": "wrapper", "group": "organization_event", "value": "invoice.paid",
            "frequency": {"count": 1, "operator": ">=", "period": {"type": "absolute", "unit": "day", "value": 7}}}),
            "rolling",
        ),
        (
            json!({"type": "wrapper", "group": "organization_event", "value": "invoice.paid"}),
            "frequency",
        ),
    ];
    for (rule, says) in refusals {
        let r = evaluate(&segments, key, json!({"rule": rule})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{rule}");
        assert!(
            r.body["detail"].as_str().unwrap().contains(says),
            "{rule}: {:?}",
            r.body
        );
        let body = json!({"user": {"identifier": [{"external_id": "lonely"}]}, "rule": rule});
        let r = call(
            &segments,
            Method::POST,
            "/api/admin/segments/match",
            Some(key),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{rule}");
        assert!(
            r.body["detail"].as_str().unwrap().contains(says),
            "{rule}: {:?}",
            r.body
        );
    }
}

/// Past MAX_RULE_EVENTS_PER_ORGANIZATION events of one name in a window,
/// a rule that reads their data sees the newest that many: a count they
/// decide is answered, one they cannot is a 422 naming the limit.
#[tokio::test]
async fn an_organizations_events_past_the_cap() {
    use shared::limits::MAX_RULE_EVENTS_PER_ORGANIZATION as CAP;
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let segments = segments::router(state.clone());
    let key = p.secret_key.as_str();
    let made = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(key),
        Some(&json!({"identifier": [{"external_id": "busy"}]}).to_string()),
    )
    .await;
    let org: Uuid = made.body["id"].as_str().unwrap().parse().unwrap();
    let r = call(
        &client,
        Method::POST,
        "/api/client/users",
        Some(key),
        Some(&json!({"identifier": [{"external_id": "u"}]}).to_string()),
    )
    .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let r = call(
        &client,
        Method::POST,
        "/api/client/organizations/users",
        Some(key),
        Some(
            &json!({
        "organization": {"identifier": [{"external_id": "busy"}]},
        "user": {"identifier": [{"external_id": "u"}]}})
            .to_string(),
        ),
    )
    .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    // CAP + 1 events in the last hour, written through the processor's
    // batched write (the store's own item shape, indexes included).
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let events: Vec<shared::store::timeline::TimelineEvent> = (0..=CAP)
        .map(|i| {
            let at = start + time::Duration::seconds(i as i64);
            let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap();
            shared::store::timeline::TimelineEvent {
                id: uuid::Builder::from_unix_timestamp_millis(millis, &rand_bytes()).into_uuid(),
                name: "seat.added".into(),
                data: serde_json::from_value(json!({"seats": 1})).unwrap(),
                created_at: shared::ids::timestamp(at),
                origin: "custom".into(),
            }
        })
        .collect();
    let deliveries: Vec<_> = events
        .iter()
        .map(|event| shared::store::timeline::Delivery {
            project: p.project_id,
            org,
            event,
        })
        .collect();
    for verdict in state.store.record_events(&deliveries).await {
        verdict.expect("an event recorded");
    }
    let seats = |count: usize, op: &str| {
        json!({"type": "wrapper", "group": "organization_event", "value": "seat.added",
            "frequency": {"count": count, "operator": op, "period": {"type": "rolling", "unit": "day", "value": 1}},
            "children": [{"type": "number", "group": "organization_event", "path": ".seats", "operator": "=", "value": 1}]})
    };
    for rule in [seats(CAP, ">="), seats(1, ">"), seats(CAP - 1, "<=")] {
        let want = rule["frequency"]["operator"] != "<=";
        let got = selected(&segments, key, &rule, &["u"]).await;
        assert_eq!(got.contains("u"), want, "{rule}");
    }
    for rule in [seats(CAP + 1, ">="), seats(CAP, "=")] {
        let r = evaluate(&segments, key, json!({"rule": rule})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rule}: {:?}",
            r.body
        );
        assert_eq!(r.body["code"], "limit_exceeded");
        let detail = r.body["detail"].as_str().unwrap().replace(',', "");
        assert!(
            detail.contains(&CAP.to_string()) && detail.contains(&org.to_string()),
            "{detail}"
        );
        let body = json!({"user": {"identifier": [{"external_id": "u"}]}, "rule": rule});
        let r = call(
            &segments,
            Method::POST,
            "/api/admin/segments/match",
            Some(key),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rule}: {:?}",
            r.body
        );
    }
}

/// Whether a user of [`scale_project`] is premium, and the plans of its
/// organizations.
type People = BTreeMap<String, (bool, BTreeSet<&'static str>)>;

/// A project for the scale tests, written through the store: `users`
/// users (every 37th by creation with `plan: premium`), and among the
/// users in id order, every 10th of the first 100 a member of the gold
/// organization `core`; beyond the first 100, `extra_orgs` more
/// organizations (gold and tin in turn), each with two of the later users.
async fn scale_project(
    state: &AppState,
    users: usize,
    extra_orgs: usize,
) -> (CreatedProject, People, String) {
    use shared::domain::{IdentifierKey, IdentifierSpec, ProfileUpsert, Scope};
    let p = project(state).await;
    let spec = |external: &str| IdentifierSpec {
        key: IdentifierKey::parse(None, external).unwrap(),
        metadata: None,
    };
    let data = |plan: &str| json!({"plan": plan}).as_object().cloned();
    let store = &state.store;
    let org = |name: String, plan: &'static str| {
        let upsert = ProfileUpsert::new(vec![spec(&name)], Some(name.clone()), data(plan)).unwrap();
        async move {
            store
                .upsert_organization(p.project_id, &upsert, Scope::Project)
                .await
                .unwrap();
        }
    };
    org("core".into(), "gold").await;
    let mut made = Vec::new();
    let mut writers = tokio::task::JoinSet::new();
    for j in 0..users {
        let external = format!("s{j}");
        let premium = j % 37 == 0;
        let upsert = ProfileUpsert::new(
            vec![spec(&external)],
            None,
            data(if premium { "premium" } else { "basic" }),
        )
        .unwrap();
        let (store, project) = (store.clone(), p.project_id);
        writers.spawn(async move {
            let user = store
                .upsert_user(project, &upsert, Scope::Project)
                .await
                .unwrap();
            (user.record.id, external, premium)
        });
        if writers.len() >= 16 {
            made.extend(writers.join_next().await.map(Result::unwrap));
        }
    }
    while let Some(done) = writers.join_next().await {
        made.push(done.unwrap());
    }
    made.sort();
    let mut people: People = made
        .iter()
        .map(|(_, external, premium)| (external.clone(), (*premium, BTreeSet::new())))
        .collect();
    let member = |org: String, external: String| async move {
        store
            .add_member(
                p.project_id,
                &[IdentifierKey::parse(None, &org).unwrap()],
                &[spec(&external)],
                None,
                Scope::Project,
            )
            .await
            .unwrap();
    };
    for (_, external, _) in made.iter().take(100).step_by(10) {
        member("core".into(), external.clone()).await;
        people.get_mut(external).unwrap().1.insert("gold");
    }
    let later = &made[100..];
    for i in 0..extra_orgs {
        let plan = if i % 2 == 0 { "gold" } else { "tin" };
        org(format!("extra{i}"), plan).await;
        for k in 0..2 {
            let (_, external, _) = &later[(i * 7 + k * 3) % later.len()];
            member(format!("extra{i}"), external.clone()).await;
            people.get_mut(external).unwrap().1.insert(plan);
        }
    }
    // The first user in id order: a member of `core` alone.
    let first = made[0].1.clone();
    (p, people, first)
}

/// Every page of `rule` (`limit` 3; only the first unless `whole`), with
/// the reads of each page and whether it came with a cursor.
async fn pages_of(
    segments: &Router,
    meter: &integration_tests::reads::ReadMeter,
    key: &str,
    rule: &Value,
    whole: bool,
) -> Vec<(Vec<String>, integration_tests::reads::Reads, bool)> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = json!({"rule": rule, "limit": 3});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        meter.take();
        let r = evaluate(segments, key, body).await;
        let reads = meter.take();
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let users = r.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                u["identifier"][0]["external_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        cursor = r.body["next_cursor"].as_str().map(str::to_owned);
        pages.push((users, reads, cursor.is_some()));
        if cursor.is_none() || !whole {
            return pages;
        }
    }
}

/// `evaluate` examines a bounded number of users per request: over two
/// project sizes (more users, ten times the organizations) a
/// first page reads the same, pages come short (even empty) with a cursor,
/// and the union of the pages is exactly what the fixture says, each user
/// once.
#[tokio::test]
async fn evaluate_reads_a_bounded_page_at_any_size_and_its_short_pages_add_up() {
    let base = state().await;
    let (state, meter) = integration_tests::reads::metered(&base);
    let segments = segments::router(state.clone());
    let rules: [(&str, Value); 3] = [
        (
            "premium",
            json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"}),
        ),
        (
            "gold",
            json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "gold"}),
        ),
        // None of the first 100 users: its first page examines them all.
        (
            "tin",
            json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "tin"}),
        ),
    ];
    let mut first_pages = Vec::new();
    // Both sizes past one request's 100 users; the union is checked at the
    // larger (the emulator's Queries are slow).
    for (users, extra_orgs, whole) in [(110, 2, false), (150, 20, true)] {
        let (p, people, core_member) = scale_project(&state, users, extra_orgs).await;
        let mut firsts = Vec::new();
        for (name, rule) in &rules {
            let expected: BTreeSet<String> = people
                .iter()
                .filter(|(_, (premium, plans))| match *name {
                    "premium" => *premium,
                    plan => plans.contains(plan),
                })
                .map(|(external, _)| external.clone())
                .collect();
            assert!(!expected.is_empty(), "{name}: the fixture selects someone");
            let pages = pages_of(&segments, &meter, &p.secret_key, rule, whole).await;
            firsts.push(pages[0].1);
            if !whole {
                continue;
            }
            let mut got = BTreeSet::new();
            for (users, _, _) in &pages {
                for u in users {
                    assert!(got.insert(u.clone()), "{name}: {u} twice");
                }
            }
            assert_eq!(got, expected, "{name}: the union of the pages");
            if *name == "tin" {
                assert!(
                    pages[0].0.is_empty() && pages[0].2,
                    "{name}: an empty first page with a cursor"
                );
            }
            for (_, reads, _) in &pages {
                assert!(reads.calls <= 120, "{name}: {reads:?}");
            }
        }
        // `match` for a member of `core`: the same few reads at both sizes.
        let body =
            json!({"user": {"identifier": [{"external_id": core_member}]}, "rule": rules[1].1});
        meter.take();
        let matched = call(
            &segments,
            Method::POST,
            "/api/admin/segments/match",
            Some(&p.secret_key),
            Some(&body.to_string()),
        )
        .await;
        firsts.push(meter.take());
        assert_eq!(matched.body["match"], true, "{:?}", matched.body);
        first_pages.push(firsts);
    }
    assert_eq!(
        first_pages[0], first_pages[1],
        "the first pages and match read the same at both sizes"
    );
    let [premium, gold, tin, matched] = first_pages[0][..] else {
        unreachable!()
    };
    assert!(
        matched.items <= 6 && matched.calls <= 5,
        "match reads the user, its membership and organization: {matched:?}"
    );
    assert!(
        premium.items <= 101 && premium.calls <= 3,
        "one round of the user index: {premium:?}"
    );
    assert!(
        gold.items < tin.items,
        "a dense page stops early: {gold:?} {tin:?}"
    );
    assert!(
        tin.items <= 100 + 10 + 1 + 5 && tin.calls <= 100 + 10,
        "100 users, their 10 memberships, one organization: {tin:?}"
    );
}
