//! The cleanup family (`/v2/organization/cleanup/**`).

use serde_json::json;

use super::{request, setup, Ctx, Family, Scenario};

/// Deleted organizations awaiting cleanup, for the list to show.
const DELETED: usize = 3;

pub async fn scenarios(ctx: &Ctx) -> Vec<Scenario> {
    let router = ::cleanup::router(ctx.state.clone());
    let client = ::client::router(ctx.state.clone());
    let key = ctx.secret();
    // Deleting an organization files its cleanup record.
    let mut deleted = Vec::new();
    for i in 0..DELETED {
        let org = json!({"identifier": [{"external_id": format!("cleanup-gone{i}")}]});
        let made = setup(
            &client,
            request(
                "POST",
                "/api/client/organizations",
                Some(&key),
                Some(json!({"identifier": org["identifier"], "name": "Gone"})),
            ),
        )
        .await;
        setup(
            &client,
            request("DELETE", "/api/client/organizations", Some(&key), Some(org)),
        )
        .await;
        let id = made["id"]
            .as_str()
            .unwrap_or_else(|| panic!("an organization without an id: {made}"));
        deleted.push(id.to_owned());
    }
    let org = deleted[0].clone();

    let mut family = Family::new("cleanup", &router);
    family.add(
        "GET",
        "/v2/organization/cleanup/openapi.json",
        0,
        "no AWS call: the document is built once per container",
        Box::new(|_| request("GET", "/v2/organization/cleanup/openapi.json", None, None)),
    );
    let k = key.clone();
    family.add(
        "GET",
        "/v2/organization/cleanup",
        2,
        "the key, then one Query of the pending index",
        Box::new(move |_| request("GET", "/v2/organization/cleanup", Some(&k), None)),
    );
    let (k, o) = (key.clone(), org.clone());
    family.add(
        "GET",
        "/v2/organization/cleanup/{org_id}",
        2,
        "the key, then one Query of the record's partition (the record and every report)",
        Box::new(move |_| {
            request(
                "GET",
                &format!("/v2/organization/cleanup/{o}"),
                Some(&k),
                None,
            )
        }),
    );
    let k = key.clone();
    family.add(
        "PUT",
        "/v2/organization/cleanup/{org_id}/{service_name}",
        3,
        "the key, one transaction (the report, held by the record existing), then one Query for the state it answers",
        Box::new(move |i| {
            request(
                "PUT",
                &format!("/v2/organization/cleanup/{org}/billing"),
                Some(&k),
                Some(json!({"operations": [{"action": "delete", "resource": "invoices", "extra_info": {"count": i}}]})),
            )
        }),
    );
    family.done()
}
