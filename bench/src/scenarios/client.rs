//! The client family (`/api/client/**`, seed 000).

use serde_json::json;

use super::{request, setup, Ctx, Family, Scenario};

pub async fn scenarios(ctx: &Ctx) -> Vec<Scenario> {
    let router = ::client::router(ctx.state.clone());
    let key = ctx.publishable();
    let org = |ext: &str| json!({"identifier": [{"external_id": ext}]});
    setup(
        &router,
        request(
            "POST",
            "/api/client/organizations",
            Some(&key),
            Some(json!({"identifier": [{"external_id": "acme"}], "name": "Acme"})),
        ),
    )
    .await;
    for i in 0..ctx.n {
        setup(
            &router,
            request(
                "POST",
                "/api/client/organizations",
                Some(&key),
                Some(json!({"identifier": [{"external_id": format!("gone{i}")}], "name": "Gone"})),
            ),
        )
        .await;
        setup(
            &router,
            request(
                "POST",
                "/api/client/organizations/users",
                Some(&key),
                Some(json!({"organization": org("acme"), "user": {"identifier": [{"external_id": format!("leaver{i}")}]}})),
            ),
        )
        .await;
        setup(
            &router,
            request(
                "POST",
                "/api/client/organizations/scheduled",
                Some(&key),
                Some(json!({"name": format!("job{i}"), "identifier": [{"external_id": "acme"}], "interval": "1 year"})),
            ),
        )
        .await;
    }

    let mut family = Family::new("client", &router);
    family.add(
        "GET",
        "/api/client/openapi.json",
        0,
        "no AWS call: the document is built once per container",
        Box::new(|_| request("GET", "/api/client/openapi.json", None, None)),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/api/client/organizations",
        3,
        "update: the API key; the identifier's marker and record in one BatchGetItem (the merge and the no-change check need the record); one transaction (record, timeline event, counter)",
        Box::new(move |i| {
            request(
                "POST",
                "/api/client/organizations",
                Some(&k),
                Some(json!({"identifier": [{"external_id": "acme"}], "name": "Acme", "data": {"seats": i}})),
            )
        }),
    );
    let k = key.clone();
    let run = uuid::Uuid::now_v7().simple().to_string();
    family.add(
        "POST",
        "/api/client/organizations",
        3,
        "create: the API key; one BatchGetItem finds no marker (an upsert must know whether the identifier exists); one transaction (record, marker, count, timeline event, counter)",
        Box::new(move |i| {
            request(
                "POST",
                "/api/client/organizations",
                Some(&k),
                Some(json!({"identifier": [{"external_id": format!("new-{run}-{i}")}], "name": "New", "data": {"plan": "free"}})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "DELETE",
        "/api/client/organizations",
        4,
        "the API key; the marker and record (BatchGetItem); the live partition (one Query: members, settings, schedules to remove); one transaction; then the cleanup announcement (SQS)",
        Box::new(move |i| {
            request(
                "DELETE",
                "/api/client/organizations",
                Some(&k),
                Some(json!({"identifier": [{"external_id": format!("gone{i}")}]})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/api/client/organizations/users",
        3,
        "the API key; both identifiers' markers and records in one BatchGetItem; one transaction (membership, counts, timeline event)",
        Box::new(move |i| {
            request(
                "POST",
                "/api/client/organizations/users",
                Some(&k),
                Some(json!({"organization": {"identifier": [{"external_id": "acme"}]},
                    "user": {"identifier": [{"external_id": format!("joiner{i}")}]}, "data": {"role": "member"}})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "DELETE",
        "/api/client/organizations/users",
        3,
        "the API key; both markers and records in one BatchGetItem; one transaction (membership, counts, timeline event)",
        Box::new(move |i| {
            request(
                "DELETE",
                "/api/client/organizations/users",
                Some(&k),
                Some(json!({"organization": {"identifier": [{"external_id": "acme"}]},
                    "user": {"identifier": [{"external_id": format!("leaver{i}")}]}})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/api/client/users",
        3,
        "the API key; the marker and record in one BatchGetItem; one transaction (record, markers)",
        Box::new(move |i| {
            request(
                "POST",
                "/api/client/users",
                Some(&k),
                Some(json!({"identifier": [{"external_id": "ada"}], "data": {"visits": i}})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/api/client/organizations/events",
        2,
        "the API key; the identifier resolved (BatchGetItem); the event queued (SQS) for the processor",
        Box::new(move |i| {
            request(
                "POST",
                "/api/client/organizations/events",
                Some(&k),
                Some(json!([{"identifier": [{"external_id": "acme"}], "name": "subscription_upgraded", "data": {"seats": i}}])),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/api/client/organizations/scheduled",
        3,
        "the API key; the identifier resolved (BatchGetItem); one transaction (schedule, due-index entry)",
        Box::new(move |i| {
            request(
                "POST",
                "/api/client/organizations/scheduled",
                Some(&k),
                Some(json!({"name": format!("digest{}", i % 5), "identifier": [{"external_id": "acme"}], "interval": "1h"})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "DELETE",
        "/api/client/organizations/scheduled",
        3,
        "the API key; the identifier resolved (BatchGetItem); one conditional delete",
        Box::new(move |i| {
            request(
                "DELETE",
                "/api/client/organizations/scheduled",
                Some(&k),
                Some(json!({"name": format!("job{i}"), "identifier": [{"external_id": "acme"}]})),
            )
        }),
    );
    family.done()
}
