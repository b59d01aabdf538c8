//! The tenant family (`/v2/organization/**`, epilot's API).

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

use super::{request, setup, Ctx, Family, Scenario};

/// A 2x2 RGB PNG (a valid image, so the logo is decoded and thumbnailed).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a,
    0x73, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60, 0x60, 0x38, 0x91,
    0xc2, 0x70, 0x82, 0x81, 0x21, 0xe5, 0x44, 0x4a, 0xca, 0x09, 0x00, 0x1a, 0x9e, 0x04, 0xb1, 0xec,
    0xaa, 0xa9, 0x33, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The logo upload: the image bytes as the body.
fn logo(path: &str, key: &str) -> Request<Body> {
    Request::builder()
        .method("PUT")
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "image/png")
        .body(Body::from(PNG))
        .expect("a valid request")
}

fn organization(name: &str) -> Value {
    json!({
        "organization_detail": {"name": name, "type": "Vendor", "pricing_tier_id": "professional",
                                "email_address": "office@acme.example", "organization_use": "Production"},
        "owner_user": {"full_name": "Ada Owner", "email_address": "ada@acme.example"}
    })
}

pub async fn scenarios(ctx: &Ctx) -> Vec<Scenario> {
    let router = ::tenant::router(ctx.state.clone());
    let key = ctx.secret();
    let id = |body: &Value| {
        body["id"]
            .as_str()
            .map(str::to_owned)
            .expect("a created organization has an id")
    };
    let document: shared::domain::features::FeatureDocument = serde_json::from_value(json!({
        "version": "2.1.0",
        "enabled_flags": ["platform-x"],
        "feature_flags": [
            {"feature_name": "canary", "visibility_rules": [{"type": "always"}]},
            {"feature_name": "pro_reports", "visibility_rules": [{"type": "pricing_tier", "setting_key": "professional,enterprise"}]},
            {"feature_name": "tracking_tuning", "visibility_rules": [{"type": "setting_enabled", "setting_key": "email_tracking"}]}
        ]
    }))
    .expect("a feature document");
    ctx.state
        .store
        .put_feature_document(ctx.project.project_id, &document)
        .await
        .expect("importing the feature document");
    let org = id(&setup(
        &router,
        request(
            "POST",
            "/v2/organization",
            Some(&key),
            Some(organization("Acme")),
        ),
    )
    .await);
    let base = format!("/v2/organization/{org}");
    for (name, value) in [
        ("email_tracking", json!({"enabled": true})),
        ("default_language", json!("de")),
    ] {
        setup(
            &router,
            request(
                "PUT",
                &format!("{base}/settings/{name}"),
                Some(&key),
                Some(value),
            ),
        )
        .await;
    }
    // A session's own organization (its user is the owner): made through
    // the crm family, which makes a session's user the owner.
    let ann = ctx.session("ann", None);
    let mine = id(&setup(
        &::crm::router(ctx.state.clone()),
        request(
            "POST",
            "/organizations",
            Some(&ann),
            Some(json!({"title": "Ann's"})),
        ),
    )
    .await);
    let ann = ctx.session("ann", Some(&mine));
    let mut logos = Vec::with_capacity(ctx.n);
    for i in 0..ctx.n {
        setup(
            &router,
            request(
                "PUT",
                &format!("{base}/settings/gone{i}"),
                Some(&key),
                Some(json!(i)),
            ),
        )
        .await;
        let with_logo = id(&setup(
            &router,
            request(
                "POST",
                "/v2/organization",
                Some(&key),
                Some(organization(&format!("Logo {i}"))),
            ),
        )
        .await);
        let path = format!("/v2/organization/{with_logo}/logo");
        setup(&router, logo(&path, &key)).await;
        logos.push(path);
    }

    let mut family = Family::new("tenant", &router);
    family.add(
        "GET",
        "/v2/openapi.json",
        0,
        "no AWS call: the document is built once per container",
        Box::new(|_| request("GET", "/v2/openapi.json", None, None)),
    );
    let k = key.clone();
    family.add(
        "POST",
        "/v2/organization",
        3,
        "the API key; the owner's email identifier resolved (BatchGetItem; an owner not yet a user adds that user's own write); one transaction (record, owner membership, counts, timeline event)",
        Box::new(move |i| {
            request(
                "POST",
                "/v2/organization",
                Some(&k),
                Some(organization(&format!("New {i}"))),
            )
        }),
    );
    let token = ann.clone();
    family.add(
        "GET",
        "/v2/organization/current",
        1,
        "the session user's marker, the membership and the record in one BatchGetItem (when the container knows the user's id); locally the token's project is read for its secret too (API Gateway verifies tokens in AWS)",
        Box::new(move |_| request("GET", "/v2/organization/current", Some(&token), None)),
    );
    let token = ann.clone();
    family.add(
        "GET",
        "/v2/organization/feature-settings",
        2,
        "the session user's marker, the membership (permissions) and the feature document in one BatchGetItem (when the container knows the user's id); then one Query of the record and its settings; 3 because a local session token reads its project for the signing secret (API Gateway verifies tokens in AWS)",
        Box::new(move |_| {
            request(
                "GET",
                "/v2/organization/feature-settings",
                Some(&token),
                None,
            )
        }),
    );
    let (k, path) = (key.clone(), format!("/v2/feature-settings?org_id={org}"));
    family.add(
        "GET",
        "/v2/feature-settings",
        3,
        "the API key; the feature document (GetItem) and, concurrently, one Query of the record and its settings",
        Box::new(move |_| request("GET", &path, Some(&k), None)),
    );
    let (k, path) = (key.clone(), base.clone());
    family.add(
        "GET",
        "/v2/organization/{org_id}",
        2,
        "the API key; one GetItem of the record",
        Box::new(move |_| request("GET", &path, Some(&k), None)),
    );
    let (k, path) = (key.clone(), base.clone());
    family.add(
        "PATCH",
        "/v2/organization/{org_id}",
        3,
        "the API key; the record read (the patch merges into it, conditioned on its version); one transaction",
        Box::new(move |i| {
            request(
                "PATCH",
                &path,
                Some(&k),
                Some(json!({"phone": format!("+4922112345{i:02}"), "free_user_limit": 50})),
            )
        }),
    );
    let (k, path) = (key.clone(), format!("{base}/settings"));
    family.add(
        "GET",
        "/v2/organization/{org_id}/settings",
        2,
        "the API key; one Query of the organization's partition (its record and settings)",
        Box::new(move |_| request("GET", &path, Some(&k), None)),
    );
    let (k, path) = (key.clone(), format!("{base}/settings/max_seats"));
    family.add(
        "PUT",
        "/v2/organization/{org_id}/settings/{key}",
        2,
        "the API key; one transaction (the setting, held by the organization existing, and its timeline event)",
        Box::new(move |i| request("PUT", &path, Some(&k), Some(json!(i)))),
    );
    let (k, settings) = (key.clone(), format!("{base}/settings"));
    family.add(
        "DELETE",
        "/v2/organization/{org_id}/settings/{key}",
        2,
        "the API key; one transaction (the delete, held by the organization existing, and its timeline event)",
        Box::new(move |i| request("DELETE", &format!("{settings}/gone{i}"), Some(&k), None)),
    );
    let (k, path) = (key.clone(), format!("{base}/logo"));
    family.add(
        "PUT",
        "/v2/organization/{org_id}/logo",
        3,
        "the API key; the record, read before the upload (so a missing organization stores no objects) and the start of the versioned update; one transaction; S3: the image and its thumbnail, then the previous logo's objects removed",
        Box::new(move |_| logo(&path, &k)),
    );
    let k = key.clone();
    family.add(
        "DELETE",
        "/v2/organization/{org_id}/logo",
        3,
        "the API key; the record read (which objects to remove, conditioned on its version); one transaction; then the objects deleted (S3)",
        Box::new(move |i| request("DELETE", &logos[i], Some(&k), None)),
    );
    let (k, path) = (key.clone(), format!("{base}/data-points"));
    family.add(
        "GET",
        "/v2/organization/{org_id}/data-points",
        2,
        "the API key; the record and its member count in one BatchGetItem",
        Box::new(move |_| request("GET", &path, Some(&k), None)),
    );
    family.done()
}
