//! /v2/organization (the tenant dialect, epilot's API) through the tenant
//! router, against the emulator; every answer checked against the
//! published spec.

use std::io::Cursor;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use integration_tests::{
    assert_matches_spec, call, http_get, project, send, session_token as session, state,
};
use serde_json::{json, Value};
use shared::AppState;

const SPEC: &str = "epilot-organization.openapi.json";

async fn create(router: &axum::Router, key: &str, name: &str, tier: &str) -> Value {
    let body = json!({
        "organization_detail": {"name": name, "type": "Vendor", "pricing_tier_id": tier,
                                 "email_address": "office@acme.example", "organization_use": "Production"},
        "owner_user": {"full_name": "Ada Owner", "email_address": "Ada@acme.example"}
    });
    let r = call(
        router,
        Method::POST,
        "/v2/organization",
        Some(key),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_matches_spec(SPEC, "Organization", &r.body);
    r.body
}

#[tokio::test]
async fn profiles_validate_and_patches_are_checked_by_type_and_enum() {
    let state = state().await;
    let p = project(&state).await;
    let tenant = tenant::router(state.clone());
    let accounts = accounts::router(state.clone());
    let key = p.secret_key.as_str();
    let created = create(&tenant, key, "Acme", "professional").await;
    assert_eq!(created["pricing_tier"], "professional");
    assert_eq!(created["type"], "Vendor");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v2/organization/{id}");

    // The owner is a user (by email) and the organization's owner.
    let members = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{id}/memberships"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(members.body["items"][0]["role"], "owner");
    let billed = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(
        billed.body["billing_email"], "Ada@acme.example",
        "the oldest owner's email"
    );

    let patch = json!({
        "name": "Acme GmbH", "email": "info@acme.example", "phone": "+49221123456",
        "website": "https://acme.example",
        "address": {"country": "Germany", "city": "Cologne", "postal_code": "50667", "street": "Im Mediapark", "street_number": "8a"},
        "organization_use": "Sandbox", "parent_production_org_id": "739224",
        "signature": "<p>Thanks</p>", "is_unlicensed_org": false, "style": {"font": "Inter"},
        "type": "Partner", "symbol": "ACM", "free_user_limit": 50, "tags": ["test org"],
        "id": "ignored", "created_date": "1970-01-01T00:00:00.000Z"
    });
    let r = call(
        &tenant,
        Method::PATCH,
        &path,
        Some(key),
        Some(&patch.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_matches_spec(SPEC, "Organization", &r.body);
    assert_eq!(r.body["address"]["street_number"], "8a");
    assert_eq!(r.body["id"], id.as_str());
    assert_ne!(r.body["created_date"], "1970-01-01T00:00:00.000Z");
    let cleared = call(
        &tenant,
        Method::PATCH,
        &path,
        Some(key),
        Some(r#"{"phone": null, "tags": null}"#),
    )
    .await;
    assert_eq!(cleared.body.get("phone"), None);
    assert_eq!(
        cleared.body["email"], "info@acme.example",
        "omitted fields stay"
    );
    let read = call(&tenant, Method::GET, &path, Some(key), None).await;
    assert_matches_spec(SPEC, "Organization", &read.body);
    assert_eq!(read.body, cleared.body);
    // One record: the name is the accounts name.
    let there = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(there.body["name"], "Acme GmbH");

    for (body, status) in [
        (
            r#"{"organization_use": "Staging"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"type": "Customer"}"#, StatusCode::BAD_REQUEST),
        (r#"{"free_user_limit": "fifty"}"#, StatusCode::BAD_REQUEST),
        (r#"{"free_user_limit": -3}"#, StatusCode::BAD_REQUEST),
        (r#"{"tags": "test"}"#, StatusCode::BAD_REQUEST),
        (r#"{"style": [1]}"#, StatusCode::BAD_REQUEST),
        (r#"{"email": "not-an-email"}"#, StatusCode::BAD_REQUEST),
        (r#"{"name": null}"#, StatusCode::BAD_REQUEST),
        (r#"{"address": {"city": 5}}"#, StatusCode::BAD_REQUEST),
    ] {
        let r = call(&tenant, Method::PATCH, &path, Some(key), Some(body)).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
    }
    let unchanged = call(&tenant, Method::GET, &path, Some(key), None).await;
    assert_eq!(
        unchanged.body, cleared.body,
        "a refused patch changes nothing"
    );

    let bad_create = call(
        &tenant,
        Method::POST,
        "/v2/organization",
        Some(key),
        Some(r#"{"organization_detail": {"name": "X", "type": "Vendor"}}"#),
    )
    .await;
    assert_eq!(
        bad_create.status,
        StatusCode::BAD_REQUEST,
        "pricing_tier_id is required"
    );
    let public = call(
        &tenant,
        Method::POST,
        "/v2/organization",
        Some(&p.publishable_key),
        Some("{}"),
    )
    .await;
    assert_eq!(public.status, StatusCode::FORBIDDEN);

    // Data points: members against the free user limit.
    let points = call(
        &tenant,
        Method::GET,
        &format!("{path}/data-points"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(points.status, StatusCode::OK, "{:?}", points.body);
    assert_matches_spec(SPEC, "DataPoint", &points.body);
    assert_eq!(
        points.body,
        json!({"max_customer": 50.0, "actual_customer": 1})
    );
}

#[tokio::test]
async fn the_current_organization_is_the_sessions() {
    let state = state().await;
    let p = project(&state).await;
    let tenant = tenant::router(state.clone());
    let accounts = accounts::router(state.clone());
    let ann = session(&p, "ann", None);
    let made = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&ann),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    let org = made.body["id"].as_str().unwrap().to_owned();

    let current = call(
        &tenant,
        Method::GET,
        "/v2/organization/current",
        Some(&session(&p, "ann", Some(&org))),
        None,
    )
    .await;
    assert_eq!(current.status, StatusCode::OK, "{:?}", current.body);
    assert_matches_spec(SPEC, "Organization", &current.body);
    assert_eq!(current.body["name"], "Acme");
    let bob = session(&p, "bob", Some(&org));
    let r = call(
        &tenant,
        Method::GET,
        "/v2/organization/current",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &tenant,
        Method::GET,
        &format!("/v2/organization/{org}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "not a member: as if it did not exist"
    );
    let r = call(
        &tenant,
        Method::GET,
        "/v2/organization/current",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no org_id in the session");
    let r = call(
        &tenant,
        Method::GET,
        "/v2/organization/current",
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&tenant, Method::GET, "/v2/organization/current", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn settings_of_every_json_type_round_trip() {
    let state = state().await;
    let p = project(&state).await;
    let tenant = tenant::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let org = create(&tenant, &p.secret_key, "Acme", "professional").await;
    let base = format!("/v2/organization/{}/settings", org["id"].as_str().unwrap());
    let values = json!({
        "default_language": "de",
        "max_seats": 12.5,
        "big": 12345678901234567u64,
        "double_opt_in": true,
        "email_tracking": {"enabled": true, "track_opens": true, "nested": {"a": [1, "x", null]}},
        "channels": [{"name": "email"}, {"name": "sms"}],
        "plain_list": ["email", "sms", "push"],
        "off": false,
        "zero": 0,
        "empty": {},
    });
    for (name, value) in values.as_object().unwrap() {
        let r = call(
            &tenant,
            Method::PUT,
            &format!("{base}/{name}"),
            key,
            Some(&value.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(&r.body, value, "{name}");
    }
    let all = call(&tenant, Method::GET, &base, key, None).await;
    assert_matches_spec(SPEC, "Settings", &all.body);
    assert_eq!(all.body, values, "every value comes back exactly");
    let replaced = call(
        &tenant,
        Method::PUT,
        &format!("{base}/default_language"),
        key,
        Some(r#""en""#),
    )
    .await;
    assert_matches_spec(SPEC, "SettingsValue", &replaced.body);
    let deleted = call(&tenant, Method::DELETE, &format!("{base}/off"), key, None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let again = call(&tenant, Method::DELETE, &format!("{base}/off"), key, None).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "deleting what is gone is no error"
    );
    let all = call(&tenant, Method::GET, &base, key, None).await;
    assert_eq!(all.body.get("off"), None);
    assert_eq!(all.body["default_language"], "en");

    let too_big = json!({"blob": "x".repeat(70_000)}).to_string();
    for (path, body, status) in [
        (
            format!("{base}/a%20b"),
            "1".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{base}/ok"),
            "null".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{base}/ok"),
            "{broken".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (format!("{base}/ok"), too_big, StatusCode::PAYLOAD_TOO_LARGE),
        (
            format!("/v2/organization/{}/settings/ok", uuid::Uuid::now_v7()),
            "1".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = call(&tenant, Method::PUT, &path, key, Some(&body)).await;
        assert_eq!(r.status, status, "{path}: {:?}", r.body);
    }
    let all = call(&tenant, Method::GET, &base, key, None).await;
    assert_eq!(all.body.get("ok"), None, "nothing refused was stored");
}

#[tokio::test]
async fn feature_visibility_follows_pricing_tier_and_settings() {
    let state = state().await;
    let p = project(&state).await;
    let tenant = tenant::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let document: shared::domain::features::FeatureDocument = serde_json::from_value(json!({
        "version": "2.1.0",
        "enabled_flags": ["platform-x"],
        "feature_flags": [
            {"feature_name": "canary", "title": {"key": "canary.title", "default_value": "Canary"},
             "badge": "beta", "visibility_rules": [{"type": "always"}]},
            {"feature_name": "pro_reports", "visibility_rules": [{"type": "pricing_tier", "setting_key": "professional,enterprise"}]},
            {"feature_name": "tracking_tuning", "visibility_rules": [
                {"type": "setting_enabled", "setting_key": "email_tracking"},
                {"type": "not", "rule": {"type": "pricing_tier", "setting_key": "starter"}}]},
            {"feature_name": "x_only", "visibility_rules": [{"type": "or", "rules": [
                {"type": "feature_flag", "flag_name": "platform-x"}, {"type": "never"}]}]},
            {"feature_name": "hidden", "visibility_rules": [{"type": "never"}]}
        ]
    }))
    .unwrap();
    state
        .store
        .put_feature_document(p.project_id, &document)
        .await
        .unwrap();
    let pro = create(&tenant, &p.secret_key, "Pro", "professional").await;
    let starter = create(&tenant, &p.secret_key, "Starter", "starter").await;
    let pro_id = pro["id"].as_str().unwrap();
    let starter_id = starter["id"].as_str().unwrap();

    let visible = |body: &Value| {
        body["feature_flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["feature_name"].as_str().unwrap().to_owned(),
                    f["enabled"].as_bool().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let ask = |org: &str| {
        let (tenant, path) = (
            tenant.clone(),
            format!("/v2/organization/feature-settings?org_id={org}"),
        );
        async move { call(&tenant, Method::GET, &path, key, None).await }
    };
    let r = ask(pro_id).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_matches_spec(SPEC, "FeatureSettings", &r.body);
    assert_eq!(r.body["version"], "2.1.0");
    assert_eq!(
        visible(&r.body),
        vec![
            ("canary".into(), false),
            ("pro_reports".into(), false),
            ("x_only".into(), false)
        ]
    );
    let r = ask(starter_id).await;
    assert_eq!(
        visible(&r.body),
        vec![("canary".into(), false), ("x_only".into(), false)]
    );

    // Settings turn features on and make others visible.
    for (org, name, value) in [
        (pro_id, "email_tracking", json!({"enabled": true})),
        (pro_id, "canary", json!(true)),
        (starter_id, "email_tracking", json!({"enabled": true})),
    ] {
        let r = call(
            &tenant,
            Method::PUT,
            &format!("/v2/organization/{org}/settings/{name}"),
            key,
            Some(&value.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = ask(pro_id).await;
    assert_eq!(
        visible(&r.body),
        vec![
            ("canary".into(), true),
            ("pro_reports".into(), false),
            ("tracking_tuning".into(), false),
            ("x_only".into(), false)
        ]
    );
    let r = ask(starter_id).await;
    assert_eq!(
        visible(&r.body),
        vec![("canary".into(), false), ("x_only".into(), false)],
        "not for starter"
    );
    // The session's own organization, with the cache header.
    let accounts = accounts::router(state.clone());
    let made = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&session(&p, "ann", None)),
        Some(r#"{"name": "Ann's"}"#),
    )
    .await;
    let ann_org = made.body["id"].as_str().unwrap().to_owned();
    let request = Request::builder()
        .uri("/v2/organization/feature-settings")
        .header(
            "authorization",
            format!("Bearer {}", session(&p, "ann", Some(&ann_org))),
        )
        .body(Body::empty())
        .unwrap();
    let r = send(&tenant, request).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        visible(&r.body),
        vec![("canary".into(), false), ("x_only".into(), false)]
    );
    let deprecated = call(&tenant, Method::GET, "/v2/feature-settings", key, None).await;
    assert_matches_spec(SPEC, "FeatureSettings", &deprecated.body);
}

#[tokio::test]
async fn feature_settings_answer_with_a_cache_header() {
    let state = state().await;
    let p = project(&state).await;
    let tenant = tenant::router(state.clone());
    let response = tower::ServiceExt::oneshot(
        tenant,
        Request::builder()
            .uri("/v2/organization/feature-settings")
            .header("x-api-key", &p.secret_key)
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("cache-control").unwrap(),
        "private, max-age=300"
    );
}

async fn objects(state: &AppState, prefix: &str) -> Vec<String> {
    let out = state
        .aws
        .s3
        .list_objects_v2()
        .bucket(state.config.logo_bucket.as_deref().unwrap())
        .prefix(prefix)
        .send()
        .await
        .expect("listing");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([x as u8, y as u8, 200, 255])
    });
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

async fn put_logo(
    router: &axum::Router,
    key: &str,
    path: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> integration_tests::Exchange {
    let request = Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(Body::from(bytes))
        .unwrap();
    send(router, request).await
}

#[tokio::test]
async fn a_logo_is_stored_with_a_thumbnail_and_served_byte_identical() {
    let state = integration_tests::state_with_bucket(None).await;
    let p = project(&state).await;
    let tenant = tenant::router(state.clone());
    let key = p.secret_key.as_str();
    let org = create(&tenant, key, "Acme", "professional").await;
    let id = org["id"].as_str().unwrap().to_owned();
    let path = format!("/v2/organization/{id}/logo");
    let prefix = format!("logos/{}/{id}/", p.project_id);

    // A text file labelled image/png is refused, and nothing is stored.
    let refused = put_logo(
        &tenant,
        key,
        &path,
        "image/png",
        b"just some text, honestly".to_vec(),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{:?}",
        refused.body
    );
    assert!(objects(&state, &prefix).await.is_empty());
    let unchanged = call(
        &tenant,
        Method::GET,
        &format!("/v2/organization/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(unchanged.body.get("logo_url"), None);

    let original = png(400, 200);
    let stored = put_logo(&tenant, key, &path, "image/png", original.clone()).await;
    assert_eq!(stored.status, StatusCode::OK, "{:?}", stored.body);
    assert_matches_spec(SPEC, "Organization", &stored.body);
    let (status, body) = http_get(stored.body["logo_url"].as_str().unwrap());
    assert_eq!(status, 200);
    assert!(body == original, "the logo comes back byte-identical");
    let (status, thumb) = http_get(stored.body["logo_thumbnail_url"].as_str().unwrap());
    assert_eq!(status, 200);
    let thumb = image::load_from_memory(&thumb).expect("the thumbnail decodes");
    assert_eq!((thumb.width(), thumb.height()), (128, 64));
    assert_eq!(objects(&state, &prefix).await.len(), 2);

    // A new logo replaces the old objects; DELETE removes both.
    let second = put_logo(&tenant, key, &path, "image/png", png(50, 100)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        objects(&state, &prefix).await.len(),
        2,
        "the previous logo's objects are gone"
    );
    let read = call(
        &tenant,
        Method::GET,
        &format!("/v2/organization/{id}"),
        Some(key),
        None,
    )
    .await;
    let (_, thumb) = http_get(read.body["logo_thumbnail_url"].as_str().unwrap());
    let thumb = image::load_from_memory(&thumb).unwrap();
    assert_eq!(
        (thumb.width(), thumb.height()),
        (50, 100),
        "small logos are not enlarged"
    );
    let deleted = call(&tenant, Method::DELETE, &path, Some(key), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(objects(&state, &prefix).await.is_empty());
    let read = call(
        &tenant,
        Method::GET,
        &format!("/v2/organization/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(read.body.get("logo_url"), None);
    let again = call(&tenant, Method::DELETE, &path, Some(key), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[test]
#[should_panic(expected = "not a valid Organization")]
fn the_spec_check_refuses_what_the_spec_refuses() {
    assert_matches_spec(
        SPEC,
        "Organization",
        &json!({"organization_use": "Staging"}),
    );
}

#[test]
fn the_spec_check_takes_nulls_where_the_spec_allows_them() {
    assert_matches_spec(
        SPEC,
        "Organization",
        &json!({"id": "1", "phone": null, "type": null}),
    );
}
