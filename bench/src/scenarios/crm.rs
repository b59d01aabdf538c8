//! The crm family (`/organizations/**`, seed 002).

use axum::http::{header, HeaderValue};
use serde_json::json;

use super::{request, setup, Ctx, Family, Scenario};

pub async fn scenarios(ctx: &Ctx) -> Vec<Scenario> {
    let router = ::crm::router(ctx.state.clone());
    let key = ctx.secret();
    let id = |body: &serde_json::Value| {
        body["id"]
            .as_str()
            .map(str::to_owned)
            .expect("a created resource has an id")
    };
    let org = id(&setup(
        &router,
        request(
            "POST",
            "/organizations",
            Some(&key),
            Some(json!({"title": "Acme", "tags": ["/tags/1"], "emailAddresses": [{"email": "info@acme.example"}]})),
        ),
    )
    .await);
    let notes = format!("/organizations/{org}/notes");
    let note = id(&setup(
        &router,
        request(
            "POST",
            &notes,
            Some(&key),
            Some(json!({"description": "Called", "category": "/note_categories/1"})),
        ),
    )
    .await);
    let mut doomed = Vec::with_capacity(ctx.n);
    for i in 0..ctx.n {
        doomed.push(id(&setup(
            &router,
            request(
                "POST",
                &notes,
                Some(&key),
                Some(
                    json!({"description": format!("Doomed {i}"), "category": "/note_categories/2"}),
                ),
            ),
        )
        .await));
    }

    let mut family = Family::new("crm", &router);
    family.add(
        "GET",
        "/organizations/openapi.json",
        0,
        "no AWS call: the document is built once per container",
        Box::new(|_| request("GET", "/organizations/openapi.json", None, None)),
    );
    let k = key.clone();
    family.add(
        "GET",
        "/organizations",
        3,
        "the API key; one Query of the compact list index (filtered by DynamoDB, sorted here); the page's records in one BatchGetItem",
        Box::new(move |_| request("GET", "/organizations?itemsPerPage=15", Some(&k), None)),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/organizations",
        2,
        "the API key; one transaction (record, count, anniversary, timeline event)",
        Box::new(move |i| {
            request(
                "POST",
                "/organizations",
                Some(&k),
                Some(json!({"title": format!("New {i}"), "website": "https://new.example"})),
            )
        }),
    );
    let (k, path) = (key.clone(), format!("/organizations/{org}"));
    family.add(
        "GET",
        "/organizations/{id}",
        2,
        "the API key; one GetItem of the record",
        Box::new(move |_| request("GET", &path, Some(&k), None)),
    );
    let (k, path) = (key.clone(), format!("/organizations/{org}"));
    family.add(
        "PUT",
        "/organizations/{id}",
        3,
        "the API key; the record read (other dialects' fields stay, the list index is derived, the write is conditioned on its version); one transaction",
        Box::new(move |i| {
            request(
                "PUT",
                &path,
                Some(&k),
                Some(json!({"title": "Acme", "description": format!("Tools {i}"), "tags": ["/tags/1"]})),
            )
        }),
    );
    let (k, path) = (key.clone(), format!("/organizations/{org}"));
    family.add(
        "PATCH",
        "/organizations/{id}",
        3,
        "the API key; the record read (the patch merges into it, conditioned on its version); one transaction",
        Box::new(move |i| {
            let mut r = request(
                "PATCH",
                &path,
                Some(&k),
                Some(json!({"customerId": format!("C-{i}")})),
            );
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/merge-patch+json"),
            );
            r
        }),
    );
    let (k, path) = (key.clone(), notes.clone());
    family.add(
        "GET",
        "/organizations/{organizationId}/notes",
        2,
        "the API key; one Query of the organization's partition (its record and its notes)",
        Box::new(move |_| request("GET", &path, Some(&k), None)),
    );
    let (k, path) = (key.clone(), notes.clone());
    family.add(
        "POST",
        "/organizations/{organizationId}/notes",
        2,
        "the API key; one transaction (the note, held by the organization existing)",
        Box::new(move |i| {
            request(
                "POST",
                &path,
                Some(&k),
                Some(
                    json!({"description": format!("Call {i}"), "category": "/note_categories/1", "flagged": i % 2 == 0}),
                ),
            )
        }),
    );
    let (k, path) = (key.clone(), format!("{notes}/{note}"));
    family.add(
        "GET",
        "/organizations/{organizationId}/notes/{id}",
        2,
        "the API key; the note and its organization in one BatchGetItem",
        Box::new(move |_| request("GET", &path, Some(&k), None)),
    );
    let (k, path) = (key.clone(), format!("{notes}/{note}"));
    family.add(
        "PUT",
        "/organizations/{organizationId}/notes/{id}",
        3,
        "the API key; the note and its organization in one BatchGetItem (privacy, created time, version); one transaction conditioned on both",
        Box::new(move |i| {
            request(
                "PUT",
                &path,
                Some(&k),
                Some(json!({"description": format!("Called {i}"), "category": "/note_categories/1"})),
            )
        }),
    );
    let (k, path) = (key.clone(), format!("{notes}/{note}"));
    family.add(
        "PATCH",
        "/organizations/{organizationId}/notes/{id}",
        3,
        "the API key; the note and its organization in one BatchGetItem (privacy, created time, version); one transaction conditioned on both",
        Box::new(move |i| {
            request(
                "PATCH",
                &path,
                Some(&k),
                Some(json!({"description": format!("Patched {i}")})),
            )
        }),
    );
    let k = key.clone();
    family.add(
        "DELETE",
        "/organizations/{organizationId}/notes/{id}",
        2,
        "the API key; one conditional DeleteItem (privacy in the condition)",
        Box::new(move |i| request("DELETE", &format!("{notes}/{}", doomed[i]), Some(&k), None)),
    );
    family.done()
}
