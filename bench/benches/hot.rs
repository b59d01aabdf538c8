//! Micro-benchmarks of the hot pure code every request runs: the shallow
//! `data` merge, segment rule evaluation, key building, and the
//! organization record's (de)serialisation to a DynamoDB item and to JSON.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use shared::domain::segment::{Activity, Facts, OrgFacts, Rule};
use shared::domain::{Data, Membership, Organization, User};
use uuid::Uuid;

const NOW: &str = "2026-11-23T12:00:00.000Z";

fn data(v: Value) -> Data {
    v.as_object().cloned().unwrap_or_default()
}

fn organization(plan: &str) -> Organization {
    let (mut org, _) =
        Organization::create_named(Uuid::now_v7(), "Acme Inc", Default::default(), NOW)
            .expect("a valid organization");
    org.data = data(json!({
        "plan": plan, "industry": "technology", "employee_count": 250, "arr": 120000,
        "region": "north_america", "features": ["sso", "audit", "api"],
        "billing": {"cycle": "annual", "currency": "USD"}
    }));
    org
}

fn merge(c: &mut Criterion) {
    let base = organization("free").data;
    let patch = data(json!({"plan": "enterprise", "arr": 150000, "region": null, "csm": "ada"}));
    c.bench_function("merge/shallow data merge (7 keys + 4-key patch)", |b| {
        b.iter(|| {
            let mut target = base.clone();
            black_box(shared::domain::merge_data(&mut target, black_box(&patch)))
        })
    });
}

fn facts(organizations: usize) -> Facts {
    let user = User {
        id: Uuid::now_v7(),
        project_id: Uuid::nil(),
        identifiers: Vec::new(),
        data: data(json!({"plan": "premium", "first_name": "Ada"})),
        version: 1,
        created_at: NOW.into(),
        updated_at: NOW.into(),
    };
    let organizations = (0..organizations)
        .map(|i| {
            let organization = organization(if i % 2 == 0 { "enterprise" } else { "free" });
            OrgFacts {
                membership: Membership {
                    project_id: Uuid::nil(),
                    organization_id: organization.id,
                    user_id: user.id,
                    data: data(
                        json!({"role": if i == organizations - 1 { "admin" } else { "viewer" }}),
                    ),
                    role: None,
                    version: 1,
                    created_at: NOW.into(),
                    updated_at: NOW.into(),
                },
                activity: std::sync::Arc::new(Activity {
                    counters: vec![("organization.updated".into(), "2026-11-20".into(), 2)],
                    ..Activity::default()
                }),
                organization,
            }
        })
        .collect();
    Facts {
        user,
        organizations,
        now: time::OffsetDateTime::now_utc(),
    }
}

fn segments(c: &mut Criterion) {
    let rule: Rule = serde_json::from_value(json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [
        {"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"},
        {"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise",
         "user_match": {"type": "conditions", "member_conditions": [
            {"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": "admin"}]}},
        {"type": "wrapper", "group": "organization_event", "value": "organization.updated",
         "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 30}}}]}))
    .expect("a rule");
    let segment = rule.compile().expect("a valid rule");
    let facts = facts(5);
    c.bench_function("segments/evaluate (3 conditions, 5 organizations)", |b| {
        b.iter(|| black_box(segment.evaluate(black_box(&facts)).is_ok()))
    });
    let raw = serde_json::to_string(&rule).expect("json");
    c.bench_function("segments/parse and validate a rule", |b| {
        b.iter(|| {
            let r: Rule = serde_json::from_str(black_box(&raw)).expect("a rule");
            black_box(r.validate().is_ok())
        })
    });
}

fn keys(c: &mut Criterion) {
    let (p, o, u) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    c.bench_function("keys/organization, membership and marker keys", |b| {
        b.iter(|| {
            black_box(shared::keys::org_pk(black_box(p), black_box(o)));
            black_box(shared::keys::membership_sk(black_box(u)));
            black_box(shared::keys::user_orgs_pk(black_box(p), black_box(u)));
            black_box(shared::keys::counter_sk(
                "organization.updated",
                "2026-11-23",
            ));
        })
    });
}

fn serialisation(c: &mut Criterion) {
    let org = organization("enterprise");
    let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo::to_item(&org).expect("an item");
    c.bench_function("serde/organization to DynamoDB item", |b| {
        b.iter(|| {
            let i: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
                serde_dynamo::to_item(black_box(&org)).expect("an item");
            black_box(i)
        })
    });
    c.bench_function("serde/organization from DynamoDB item", |b| {
        b.iter(|| {
            let o: Organization =
                serde_dynamo::from_item(black_box(item.clone())).expect("a record");
            black_box(o)
        })
    });
    let body = json!({"identifier": [{"external_id": "acme_inc"}], "name": "Acme Inc",
        "data": {"plan": "enterprise", "industry": "technology", "employee_count": 250, "arr": 120000}})
    .to_string();
    c.bench_function("serde/upsert body from JSON", |b| {
        b.iter(|| black_box(serde_json::from_str::<Value>(black_box(&body)).expect("json")))
    });
}

criterion_group!(hot, merge, segments, keys, serialisation);
criterion_main!(hot);
