//! The segments family (`/api/admin/segments/**`).

use serde_json::{json, Value};

use super::{request, setup, Ctx, Family, Scenario};

/// Organizations of the fixture, their plans in turn.
const ORGS: usize = 6;
const PLANS: [&str; 3] = ["enterprise", "free", "pro"];
/// Users of the fixture, each a member of one organization.
const USERS: usize = 12;

fn plan_is(plan: &str) -> Value {
    json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": plan})
}

pub async fn scenarios(ctx: &Ctx) -> Vec<Scenario> {
    let router = ::segments::router(ctx.state.clone());
    let client = ::client::router(ctx.state.clone());
    let key = ctx.secret();
    let org = |i: usize| json!([{"external_id": format!("segments-o{i}")}]);
    let user = |j: usize| json!([{"external_id": format!("segments-u{j}")}]);
    for i in 0..ORGS {
        setup(
            &client,
            request(
                "POST",
                "/api/client/organizations",
                Some(&key),
                Some(json!({"identifier": org(i), "name": format!("Org {i}"),
                    "data": {"plan": PLANS[i % PLANS.len()]}})),
            ),
        )
        .await;
    }
    for j in 0..USERS {
        setup(
            &client,
            request(
                "POST",
                "/api/client/users",
                Some(&key),
                Some(json!({"identifier": user(j), "data": {"plan": if j % 2 == 0 { "premium" } else { "basic" }}})),
            ),
        )
        .await;
        setup(
            &client,
            request(
                "POST",
                "/api/client/organizations/users",
                Some(&key),
                Some(json!({"organization": {"identifier": org(j % ORGS)}, "user": {"identifier": user(j)},
                    "data": {"role": if j % 4 == 0 { "admin" } else { "viewer" }}})),
            ),
        )
        .await;
    }
    let updated_within_30_days = json!({"type": "wrapper", "group": "organization_event",
        "value": "organization.updated",
        "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 30}}});

    let mut family = Family::new("segments", &router);
    family.add(
        "GET",
        "/api/admin/segments/openapi.json",
        0,
        "no AWS call: the document is built once per container",
        Box::new(|_| request("GET", "/api/admin/segments/openapi.json", None, None)),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/api/admin/segments/match",
        4,
        "the key, the user's marker and record in one batch (the container remembers the user), its memberships (one Query), their organizations (one BatchGetItem)",
        Box::new(move |i| {
            request(
                "POST",
                "/api/admin/segments/match",
                Some(&k),
                Some(json!({"user": {"identifier": user(i % USERS)}, "rule": plan_is("enterprise")})),
            )
        }),
    );
    let (k, rule) = (key.clone(), updated_within_30_days.clone());
    family.add(
        "POST",
        "/api/admin/segments/match",
        5,
        "counting events: as above, then the organization's daily counters in the window (one Query per organization and event)",
        Box::new(move |i| {
            request(
                "POST",
                "/api/admin/segments/match",
                Some(&k),
                Some(json!({"user": {"identifier": user(i % USERS)}, "rule": rule})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/api/admin/segments/evaluate",
        5,
        "the key, the project's organizations (one Query of the organization index), the members of the organizations that pass (one Query each), the candidates (one BatchGetItem); the rule's only organization leaf is the gate, so no candidate's memberships are read again",
        Box::new(move |_| {
            request(
                "POST",
                "/api/admin/segments/evaluate",
                Some(&k),
                Some(json!({"rule": plan_is("enterprise"), "limit": 10})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/api/admin/segments/evaluate",
        2,
        "a rule on users only: the key and one Query of the user index per 100 users examined (no memberships or organizations are read); a page of a sparse segment in a project of a few hundred users takes a second round",
        Box::new(move |_| {
            request(
                "POST",
                "/api/admin/segments/evaluate",
                Some(&k),
                Some(
                    json!({"rule": {"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"}, "limit": 10}),
                ),
            )
        }),
    );
    family.done()
}
