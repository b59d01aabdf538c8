//! /api/admin/segments/match through the segments router, against the
//! emulator: the seed's four examples over a small fixture, each answer
//! compared with what the test computes from the fixture itself.

use axum::http::{Method, StatusCode};
use integration_tests::{call, project, state};
use serde_json::{json, Value};

struct Member {
    org: usize,
    role: &'static str,
}

#[tokio::test]
async fn the_seeds_examples_match_exactly_the_expected_users() {
    let state = state().await;
    let p = project(&state).await;
    let client = client::router(state.clone());
    let segments = segments::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let post = |path: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let r = call(&client, Method::POST, path, key, Some(&body.to_string())).await;
            assert!(r.status.is_success(), "{path}: {:?}", r.body);
        }
    };

    let plan = |i: usize| {
        if i.is_multiple_of(2) {
            "enterprise"
        } else {
            "free"
        }
    };
    let industry = |i: usize| {
        if i.is_multiple_of(3) {
            "technology"
        } else {
            "retail"
        }
    };
    for i in 0..6 {
        post(
            "/api/client/organizations",
            json!({"identifier": [{"external_id": format!("o{i}")}],
            "name": format!("Org {i}"), "data": {"plan": plan(i), "industry": industry(i)}}),
        )
        .await;
    }
    // Updated (not only created) organizations: 0, 1, 2.
    for i in 0..3 {
        post(
            "/api/client/organizations",
            json!({"identifier": [{"external_id": format!("o{i}")}],
            "data": {"seats": 10}}),
        )
        .await;
    }
    let updated = |i: usize| i < 3;
    let user_plan = |j: usize| {
        if j.is_multiple_of(2) {
            "premium"
        } else {
            "basic"
        }
    };
    let mut members: Vec<Vec<Member>> = Vec::new();
    for j in 0..12 {
        post(
            "/api/client/users",
            json!({"identifier": [{"external_id": format!("u{j}")}],
            "data": {"plan": user_plan(j)}}),
        )
        .await;
        let mut mine = Vec::new();
        if j != 11 {
            mine.push(Member {
                org: j % 6,
                role: if j % 4 == 0 { "admin" } else { "viewer" },
            });
        }
        if j == 10 {
            mine.push(Member {
                org: 1,
                role: "admin",
            });
        }
        for m in &mine {
            post(
                "/api/client/organizations/users",
                json!({
                "organization": {"identifier": [{"external_id": format!("o{}", m.org)}]},
                "user": {"identifier": [{"external_id": format!("u{j}")}]},
                "data": {"role": m.role}}),
            )
            .await;
        }
        members.push(mine);
    }

    let enterprise = json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise"});
    let enterprise_admin = json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise",
        "user_match": {"type": "conditions", "member_conditions": [
            {"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": "admin"}]}});
    let recently_updated = json!({"type": "number", "group": "organization_event", "path": "organization.updated", "operator": "=",
        "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 30}}});
    let combined = json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [
        {"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"},
        {"type": "string", "group": "organization", "path": ".industry", "operator": "=", "value": "technology"},
        {"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": "admin"}]});
    type Expect = Box<dyn Fn(usize, &[Member]) -> bool>;
    let cases: Vec<(Value, Expect)> = vec![
        (
            enterprise,
            Box::new(move |_, ms: &[Member]| ms.iter().any(|m| plan(m.org) == "enterprise")),
        ),
        (
            enterprise_admin,
            Box::new(move |_, ms: &[Member]| {
                ms.iter()
                    .any(|m| plan(m.org) == "enterprise" && m.role == "admin")
            }),
        ),
        (
            recently_updated,
            Box::new(move |_, ms: &[Member]| ms.iter().any(|m| updated(m.org))),
        ),
        (
            combined,
            Box::new(move |j, ms: &[Member]| {
                user_plan(j) == "premium"
                    && ms.iter().any(|m| industry(m.org) == "technology")
                    && ms.iter().any(|m| m.role == "admin")
            }),
        ),
    ];
    for (rule, expected) in cases {
        let mut hits = 0;
        for (j, mine) in members.iter().enumerate() {
            let body =
                json!({"user": {"identifier": [{"external_id": format!("u{j}")}]}, "rule": rule});
            let r = call(
                &segments,
                Method::POST,
                "/api/admin/segments/match",
                key,
                Some(&body.to_string()),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            let want = expected(j, mine);
            assert_eq!(r.body["match"], want, "u{j} for {rule}");
            if want {
                hits += 1;
                assert!(!r.body["reasons"].as_array().unwrap().is_empty());
            }
        }
        assert!(
            hits > 0 && hits < 12,
            "the fixture separates users for {rule}"
        );
    }

    // A bad tree is a 400 naming the node; an unknown user a 404.
    let bad = json!({"user": {"identifier": [{"external_id": "u0"}]}, "rule": {"type": "wrapper", "group": "parent", "operator": "and",
        "children": [{"type": "number", "group": "user", "path": ".n", "operator": "starts with", "value": 1}]}});
    let r = call(
        &segments,
        Method::POST,
        "/api/admin/segments/match",
        key,
        Some(&bad.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("rule.children[0]"),
        "{:?}",
        r.body
    );
    let nobody = json!({"user": {"identifier": [{"external_id": "nobody"}]}, "rule": {"type": "string", "group": "user", "path": ".plan", "operator": "is set"}});
    let r = call(
        &segments,
        Method::POST,
        "/api/admin/segments/match",
        key,
        Some(&nobody.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let public = call(
        &segments,
        Method::POST,
        "/api/admin/segments/match",
        Some(&p.publishable_key),
        Some(&nobody.to_string()),
    )
    .await;
    assert_eq!(public.status, StatusCode::FORBIDDEN);
}
