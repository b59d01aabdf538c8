//! The tenant API family (`/v2/organization/**`, seed 003, epilot's
//! organization API): the current organization, profiles, settings,
//! feature settings evaluated for the caller, logos in S3, creation with an
//! owner, and member data points. A secret key reaches its whole project; a
//! session only its user's organizations (owners change them).

mod logo;
mod wire;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use serde_json::{Map, Value};
use shared::auth::organization_id as org_id;
use shared::auth::{OrgAccess, Own, Read};
use shared::auth::{Principal, SecretCaller};
use shared::domain::features::Context;
use shared::domain::tenant::{TenantChange, TenantProfile};
use shared::domain::Organization;
use shared::http::{IfMatch, Path, Query};
use shared::http::{Json, JsonOrText};
use shared::{AppState, Error};
use uuid::Uuid;

pub use logo::{MAX_LOGO_BYTES, MAX_LOGO_SIDE, THUMBNAIL_MAX};
pub use wire::{DataPoint, FeatureSettings, OrganizationResponse};

/// Every route of the family.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v2/organization"),
    ("GET", "/v2/organization/current"),
    ("GET", "/v2/organization/feature-settings"),
    ("GET", "/v2/feature-settings"),
    ("GET", "/v2/organization/{org_id}"),
    ("PATCH", "/v2/organization/{org_id}"),
    ("GET", "/v2/organization/{org_id}/settings"),
    ("PUT", "/v2/organization/{org_id}/settings/{key}"),
    ("DELETE", "/v2/organization/{org_id}/settings/{key}"),
    ("PUT", "/v2/organization/{org_id}/logo"),
    ("DELETE", "/v2/organization/{org_id}/logo"),
    ("GET", "/v2/organization/{org_id}/data-points"),
    ("GET", "/v2/openapi.json"),
];

/// The family's OpenAPI document, from its handlers and wire types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Organizations: tenant API",
        description = "The current organization, profiles, settings, feature settings, logos and data points (seed 003, compatible with epilot's organization API). A secret key reaches its whole project; a session token only its user's organizations, which their owners change."
    ),
    paths(
        create,
        current,
        feature_settings,
        deprecated_feature_settings,
        read,
        update,
        settings,
        put_setting,
        delete_setting,
        put_logo,
        delete_logo,
        data_points
    )
)]
struct Document;

/// The document as served at `/v2/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    shared::openapi::with_events(shared::openapi::with_idempotency(shared::openapi::finish(
        <Document as utoipa::OpenApi>::openapi(),
    )))
}

/// How long clients may keep feature settings (they are evaluated per
/// organization, so only the caller's own cache may hold them).
const FEATURES_CACHE: &str = "private, max-age=300";

pub fn router(state: AppState) -> Router {
    let state = state.serving("tenant");
    let routes = Router::new()
        .route(
            "/v2/organization",
            axum::routing::post(create).fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/current",
            get(current).fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/feature-settings",
            get(feature_settings).fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/feature-settings",
            get(deprecated_feature_settings).fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/{org_id}",
            get(read).patch(update).fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/{org_id}/settings",
            get(settings).fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/{org_id}/settings/{key}",
            put(put_setting)
                .delete(delete_setting)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/{org_id}/logo",
            put(put_logo)
                .delete(delete_logo)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/{org_id}/data-points",
            get(data_points).fallback(shared::http::wrong_method),
        )
        .route("/v2/openapi.json", shared::openapi::route(openapi))
        .fallback(shared::http::no_route);
    shared::auth::front_door(routes, state, shared::auth::Idempotency::OnPost)
}

/// The organization as the dialect shows it (an uploaded logo's URLs).
async fn present(state: &AppState, org: Organization) -> Result<OrganizationResponse, Error> {
    let logo = match org.tenant.as_ref().and_then(|t| t.logo.clone()) {
        Some(stored) => Some((
            logo::url(state, &stored.key).await?,
            logo::url(state, &stored.thumbnail_key).await?,
        )),
        None => None,
    };
    Ok(OrganizationResponse::new(org, logo))
}

async fn fetch(state: &AppState, project: Uuid, org: Uuid) -> Result<Organization, Error> {
    state
        .store
        .get_organization(project, org)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))
}

/// `GET /v2/organization/current`: the organization the session's `org_id`
/// names; 403 when the user is not one of its members.
#[utoipa::path(get, path = "/v2/organization/current", tag = "organization",
    responses((status = 200, description = "The organization the session's `org_id` names", body = OrganizationResponse)))]
async fn current(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<OrganizationResponse>, Error> {
    let Principal::Session(session) = &principal else {
        return Err(Error::Forbidden(
            "a secret key has no current organization: ask for /v2/organization/{org_id}".into(),
        ));
    };
    let claimed = session.org_id.as_deref().ok_or_else(|| {
        Error::Forbidden("the session names no current organization (`org_id`)".into())
    })?;
    let org = Uuid::parse_str(claimed)
        .map_err(|_| Error::not_found(format!("no organization has the id {claimed}")))?;
    let Some((_, found)) = state
        .store
        .session_membership_and_organization(session.project_id, org, &session.user)
        .await?
    else {
        return Err(Error::Forbidden(format!(
            "you are not a member of organization {claimed}"
        )));
    };
    let found =
        found.ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
    Ok(axum::Json(present(&state, found).await?))
}

/// `GET /v2/organization/{org_id}`: one read.
#[utoipa::path(get, path = "/v2/organization/{org_id}", tag = "organization",
    params(("org_id" = String, Path, description = "The organization's id")),
    responses((status = 200, description = "The organization", body = OrganizationResponse, headers(("ETag" = String, description = "The record's version, for If-Match")))))]
async fn read(State(state): State<AppState>, access: OrgAccess<Read>) -> Result<Response, Error> {
    let (org, project) = (access.id, access.project_id);
    let found = fetch(&state, project, org).await?;
    let tag = shared::http::etag(found.version);
    Ok(([tag], axum::Json(present(&state, found).await?)).into_response())
}

/// `PATCH /v2/organization/{org_id}`: only the fields given change; with
/// `If-Match`, only while the record is at that version (else 412).
#[utoipa::path(patch, path = "/v2/organization/{org_id}", tag = "organization",
    params(("org_id" = String, Path, description = "The organization's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change was made from")),
    request_body(content = wire::OrganizationPatch, description = "Only the fields given change; null clears one"),
    responses((status = 200, description = "The organization, updated", body = OrganizationResponse, headers(("ETag" = String, description = "The record's version, for If-Match")))))]
async fn update(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    if_match: IfMatch,
    Json(body): Json<wire::OrganizationPatch>,
) -> Result<Response, Error> {
    let (org, project) = (access.id, access.project_id);
    let change = TenantChange::from(body);
    change.validate()?;
    let entitlements = change.entitlement_fields();
    if matches!(access.principal, Principal::Session(_)) && !entitlements.is_empty() {
        return Err(Error::Forbidden(format!(
            "{} decide price or entitlement: only a secret key changes them",
            entitlements.join(", ")
        )));
    }
    let updated = state
        .store
        .modify_organization(project, org, |o| {
            if_match.check(o.version)?;
            Ok(change.apply(o))
        })
        .await?;
    let tag = shared::http::etag(updated.version);
    Ok(([tag], axum::Json(present(&state, updated).await?)).into_response())
}

/// `POST /v2/organization` (secret key): the organization and its owner,
/// 201.
#[utoipa::path(post, path = "/v2/organization", tag = "organization",
    request_body = wire::CreateOrganizationRequest,
    responses((status = 201, description = "The organization, with its owner", body = OrganizationResponse)))]
async fn create(
    State(state): State<AppState>,
    SecretCaller(caller): SecretCaller,
    Json(body): Json<wire::CreateOrganizationRequest>,
) -> Result<Response, Error> {
    let detail = body
        .organization_detail
        .ok_or_else(|| Error::invalid("organization_detail is required"))?;
    let change = TenantChange {
        email: detail.email_address.clone().map_or(
            shared::domain::address::Change::Keep,
            shared::domain::address::Change::Set,
        ),
        kind: shared::domain::address::Change::Set(detail.kind.clone()),
        organization_use: detail.organization_use.clone().map_or(
            shared::domain::address::Change::Keep,
            shared::domain::address::Change::Set,
        ),
        pricing_tier: shared::domain::address::Change::Set(detail.pricing_tier_id.clone()),
        name: shared::domain::address::Change::Set(detail.name.clone()),
        ..TenantChange::default()
    };
    change.validate()?;
    let owner = match &body.owner_user {
        Some(owner) => {
            shared::domain::organization::validate_email(
                "owner_user.email_address",
                &owner.email_address,
            )?;
            Some(shared::store::NewOwner {
                email: owner.email_address.clone(),
                full_name: owner.full_name.clone(),
            })
        }
        None => None,
    };
    let tenant = TenantProfile {
        email: detail.email_address,
        kind: Some(detail.kind),
        organization_use: detail.organization_use,
        pricing_tier: Some(detail.pricing_tier_id),
        ..TenantProfile::default()
    };
    let org = state
        .store
        .create_tenant_organization(caller.project_id, &detail.name, tenant, owner.as_ref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(present(&state, org).await?)).into_response())
}

/// `GET /v2/organization/{org_id}/settings`: one Query (the record and its
/// settings).
#[utoipa::path(get, path = "/v2/organization/{org_id}/settings", tag = "settings",
    params(("org_id" = String, Path, description = "The organization's id")),
    responses((status = 200, description = "Every setting of the organization", body = Object)))]
async fn settings(
    State(state): State<AppState>,
    access: OrgAccess<Read>,
) -> Result<axum::Json<Map<String, Value>>, Error> {
    let (org, project) = (access.id, access.project_id);
    let found = state
        .store
        .organization_with_settings(project, org)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
    Ok(axum::Json(found.settings))
}

/// `PUT /v2/organization/{org_id}/settings/{key}`: any JSON value but
/// null (under a non-JSON content type, a body that is not JSON is its
/// text: what epilot's client sends for a string); answers the value.
#[utoipa::path(put, path = "/v2/organization/{org_id}/settings/{key}", tag = "settings",
    params(("org_id" = String, Path, description = "The organization's id"), ("key" = String, Path, description = "The setting's key: 1 to 128 of `A-Z a-z 0-9 _ - . :`")), request_body(content = serde_json::Value, description = "Any JSON value but null, at most 64 KiB; under another content type (text/plain, application/x-www-form-urlencoded) a body that is not JSON is stored as its text, a JSON string"),
    responses((status = 200, description = "The value, as stored", body = serde_json::Value)))]
async fn put_setting(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Path((_, key)): Path<(String, String)>,
    JsonOrText(value): JsonOrText,
) -> Result<axum::Json<Value>, Error> {
    let (org, project) = (access.id, access.project_id);
    shared::domain::tenant::validate_setting_key(&key)?;
    shared::domain::tenant::validate_setting_value(&value)?;
    state.store.put_setting(project, org, &key, &value).await?;
    Ok(axum::Json(value))
}

/// `DELETE /v2/organization/{org_id}/settings/{key}`.
#[utoipa::path(delete, path = "/v2/organization/{org_id}/settings/{key}", tag = "settings",
    params(("org_id" = String, Path, description = "The organization's id"), ("key" = String, Path, description = "The setting's key: 1 to 128 of `A-Z a-z 0-9 _ - . :`")),
    responses((status = 200, description = "The setting is removed")))]
async fn delete_setting(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Path((_, key)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let (org, project) = (access.id, access.project_id);
    state.store.delete_setting(project, org, &key).await?;
    Ok(StatusCode::OK)
}

/// `GET /v2/feature-settings`: the deprecated name of
/// `/v2/organization/feature-settings`.
#[utoipa::path(get, path = "/v2/feature-settings", tag = "features",
    params(("org_id" = Option<String>, Query, description = "The organization (a session's `org_id` by default)")),
    responses((status = 200, description = "As /v2/organization/feature-settings", body = FeatureSettings)))]
async fn deprecated_feature_settings(
    state: State<AppState>,
    principal: Principal,
    query: Query<FeatureQuery>,
) -> Result<Response, Error> {
    feature_settings(state, principal, query).await
}

#[derive(Debug, serde::Deserialize)]
struct FeatureQuery {
    #[serde(default)]
    org_id: Option<String>,
}

/// `GET /v2/organization/feature-settings`: the project's flags that apply
/// to the caller's organization (the session's `org_id`, or `?org_id=`),
/// each with `enabled`.
#[utoipa::path(get, path = "/v2/organization/feature-settings", tag = "features",
    params(("org_id" = Option<String>, Query, description = "The organization (a session's `org_id` by default)")),
    responses((status = 200, description = "The flags that apply to the organization, each with `enabled`", body = FeatureSettings)))]
async fn feature_settings(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<FeatureQuery>,
) -> Result<Response, Error> {
    let project = principal.project_id();
    let org = match (&principal, &query.org_id) {
        (_, Some(org)) => Some(org.clone()),
        (Principal::Session(session), None) => session.org_id.clone(),
        (Principal::Secret(_), None) => None,
    };
    let org = org.map(|o| org_id(&o)).transpose()?;
    let (document, mut context) = match (&principal, org) {
        // The membership decides the permissions; the document joins the
        // batch that reads it.
        (Principal::Session(session), Some(org)) => {
            let (membership, document) = state
                .store
                .session_membership_and_features(project, org, &session.user)
                .await?;
            let membership = membership
                .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
            let permissions = Some(granted_permissions(&membership));
            let context = organization_context(&state, project, org, permissions).await?;
            (document, context)
        }
        (_, Some(org)) => {
            let (document, context) = tokio::join!(
                state.store.feature_document(project),
                organization_context(&state, project, org, None)
            );
            (document?, context?)
        }
        (_, None) => (
            state.store.feature_document(project).await?,
            Context::default(),
        ),
    };
    let document = document.unwrap_or_default();
    context.enabled_flags = document.enabled_flags.iter().cloned().collect();
    let body = FeatureSettings {
        version: if document.version.is_empty() {
            "1.0.0".into()
        } else {
            document.version.clone()
        },
        feature_flags: document.visible(&context),
    };
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(FEATURES_CACHE),
    );
    Ok(response)
}

/// What a membership may do: its `permissions`, everything for an owner.
fn granted_permissions(
    membership: &shared::domain::Membership,
) -> std::collections::HashSet<String> {
    let mut granted: std::collections::HashSet<String> = membership
        .data
        .get("permissions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if membership.is_owner() {
        granted.insert("*".into());
    }
    granted
}

/// The organization's side of a feature context: its tier, type and
/// settings (one Query).
async fn organization_context(
    state: &AppState,
    project: Uuid,
    org: Uuid,
    permissions: Option<std::collections::HashSet<String>>,
) -> Result<Context, Error> {
    let found = state
        .store
        .organization_with_settings(project, org)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
    let tenant = found.organization.tenant.unwrap_or_default();
    Ok(Context {
        pricing_tier: tenant.pricing_tier,
        organization_type: tenant.kind,
        settings: found.settings,
        enabled_flags: Default::default(),
        permissions,
    })
}

/// `PUT /v2/organization/{org_id}/logo`: the image as the body; stored
/// without its metadata, with its thumbnail, replacing the previous logo.
#[utoipa::path(put, path = "/v2/organization/{org_id}/logo", tag = "organization",
    params(("org_id" = String, Path, description = "The organization's id")),
    request_body(content = Vec<u8>, description = "PNG, JPEG or WebP (judged by its bytes; a Content-Type, if given, must agree), at most 5 MiB and 4096 × 4096 px. Stored without metadata (EXIF, XMP, text chunks, comments); an EXIF orientation is kept.", content_type = "image/*"),
    responses((status = 200, description = "The organization, with its logo's URLs", body = OrganizationResponse),
        (status = 413, description = "The body is larger than 5 MiB (`payload_too_large`)", body = shared::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a PNG, JPEG or WebP image, or labelled as another type (`unsupported_media_type`)", body = shared::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than 4096 px wide or high, or too large to decode (`image_too_large`)", body = shared::error::Problem, content_type = "application/problem+json")))]
async fn put_logo(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<OrganizationResponse>, Error> {
    let (org, project) = (access.id, access.project_id);
    // The right to change the organization (`OrgAccess<Own>`, read from the
    // request's head) and that it exists come before a byte of the body is
    // read: reading and decoding it is the costliest work this function
    // does. The update starts from this read.
    let read = fetch(&state, project, org).await?;
    let bytes = logo::read(&headers, body).await?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let prepared = logo::prepare(declared, &bytes)?;
    // What is stored is the stripped copy: one copy of the body in memory.
    drop(bytes);
    let stored = logo::store(&state, project, org, prepared).await?;
    let previous = std::sync::Mutex::new(None);
    let updated = state
        .store
        .modify_read_organization(read, |o| {
            let tenant = o.tenant.get_or_insert_with(Default::default);
            if let Ok(mut p) = previous.lock() {
                *p = tenant.logo.clone();
            }
            tenant.logo = Some(stored.clone());
            Ok(true)
        })
        .await;
    let updated = match updated {
        Ok(org) => org,
        Err(e) => {
            logo::remove(&state, &stored).await;
            return Err(e);
        }
    };
    if let Some(old) = previous.into_inner().ok().flatten() {
        logo::remove(&state, &old).await;
    }
    Ok(axum::Json(present(&state, updated).await?))
}

/// `DELETE /v2/organization/{org_id}/logo`: both objects go.
#[utoipa::path(delete, path = "/v2/organization/{org_id}/logo", tag = "organization",
    params(("org_id" = String, Path, description = "The organization's id")),
    responses((status = 204, description = "The logo and its thumbnail are removed")))]
async fn delete_logo(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
) -> Result<StatusCode, Error> {
    let (org, project) = (access.id, access.project_id);
    let removed = std::sync::Mutex::new(None);
    state
        .store
        .modify_organization(project, org, |o| {
            let logo = o.tenant.as_mut().and_then(|t| t.logo.take());
            let changed = logo.is_some();
            if let Ok(mut r) = removed.lock() {
                *r = logo;
            }
            Ok(changed)
        })
        .await?;
    match removed.into_inner().ok().flatten() {
        Some(old) => {
            logo::remove(&state, &old).await;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(Error::not_found("the organization has no uploaded logo")),
    }
}

/// `GET /v2/organization/{org_id}/data-points`: members counted against
/// `free_user_limit` (one read).
#[utoipa::path(get, path = "/v2/organization/{org_id}/data-points", tag = "organization",
    params(("org_id" = String, Path, description = "The organization's id")),
    responses((status = 200, description = "Members counted against `free_user_limit`", body = DataPoint)))]
async fn data_points(
    State(state): State<AppState>,
    access: OrgAccess<Read>,
) -> Result<axum::Json<DataPoint>, Error> {
    let (org, project) = (access.id, access.project_id);
    let (found, members) = state
        .store
        .organization_with_members(project, org)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
    Ok(axum::Json(DataPoint {
        max_customer: found.tenant.and_then(|t| t.free_user_limit),
        actual_customer: members,
    }))
}
