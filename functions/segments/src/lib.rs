//! The segments family (`/api/admin/segments/**`, secret keys): whether a
//! rule tree selects one user, and why; and every user it selects.

use axum::extract::State;
use axum::Router;
use serde::{Deserialize, Serialize};
use shared::auth::SecretCaller;
use shared::domain::segment::{Reason, Rule};
use shared::domain::IdentifierKey;
use shared::http::Json;
use shared::{AppState, Error};
use utoipa::ToSchema;
use uuid::Uuid;

/// Every route of the family.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/admin/segments/match"),
    ("POST", "/api/admin/segments/evaluate"),
    ("GET", "/api/admin/segments/openapi.json"),
];

/// The family's OpenAPI document, from its handlers and wire types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Organizations: segments API",
        description = "Rule trees in Lunogram's format (README \"Segment rules\") over user, organization, membership and organization-event facts: whether one user matches and why, and every user a rule selects (secret keys). A rule reading a user's own events (group `event`) is a 400: this service holds none."
    ),
    paths(matches, evaluate)
)]
struct Document;

/// The document as served at `/api/admin/segments/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    shared::openapi::finish(<Document as utoipa::OpenApi>::openapi())
}

/// Users per page unless the request asks for another number.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

pub fn router(state: AppState) -> Router {
    let state = state.serving("segments");
    let routes = Router::new()
        .route(
            "/api/admin/segments/match",
            axum::routing::post(matches).fallback(shared::http::wrong_method),
        )
        .route(
            "/api/admin/segments/evaluate",
            axum::routing::post(evaluate).fallback(shared::http::wrong_method),
        )
        .route(
            "/api/admin/segments/openapi.json",
            shared::openapi::route(openapi),
        )
        .fallback(shared::http::no_route);
    shared::auth::front_door(routes, state, shared::auth::Idempotency::Off)
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ExternalID)]
pub struct ExternalId {
    /// Also accepted as `externalId`.
    #[serde(alias = "externalId")]
    #[schema(min_length = 1, max_length = 255)]
    pub external_id: String,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserRef {
    #[schema(min_items = 1, max_items = 20)]
    pub identifier: Vec<ExternalId>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MatchRequest {
    pub user: UserRef,
    pub rule: Rule,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct MatchResponse {
    #[serde(rename = "match")]
    pub matched: bool,
    pub reasons: Vec<Reason>,
}

/// `POST /api/admin/segments/match`: `{user: {identifier}, rule}` →
/// `{match, reasons}` (which organizations and nodes made it match).
#[utoipa::path(post, path = "/api/admin/segments/match", tag = "segments",
    request_body = MatchRequest,
    responses((status = 200, description = "Whether the rule selects the user, and which organizations and nodes made it", body = MatchResponse),
        (status = 422, description = "An organization's events past the per-rule cap would decide (`limit_exceeded`)", body = shared::error::Problem, content_type = "application/problem+json")))]
async fn matches(
    State(state): State<AppState>,
    SecretCaller(caller): SecretCaller,
    Json(request): Json<MatchRequest>,
) -> Result<axum::Json<MatchResponse>, Error> {
    let segment = request.rule.compile()?;
    if request.user.identifier.is_empty() {
        return Err(Error::invalid(
            "user.identifier needs at least one identifier",
        ));
    }
    let keys = request
        .user
        .identifier
        .iter()
        .map(|i| IdentifierKey::parse(i.source.as_deref(), &i.external_id))
        .collect::<Result<Vec<_>, _>>()?;
    let facts = state
        .store
        .user_facts(
            caller.project_id,
            &keys,
            &segment,
            time::OffsetDateTime::now_utc(),
        )
        .await?;
    let (matched, reasons) = segment.evaluate(&facts)?;
    Ok(axum::Json(MatchResponse { matched, reasons }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    pub rule: Rule,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Users per page, 1 to 100 (50 by default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Identifier {
    pub external_id: String,
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SelectedUser {
    pub id: Uuid,
    pub identifier: Vec<Identifier>,
    /// The organizations through which the rule selected the user (none
    /// when only user conditions decided).
    pub organizations: Vec<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct EvaluateResponse {
    pub users: Vec<SelectedUser>,
    /// Present while users may follow; a page can hold fewer than `limit`
    /// users, even none, and still have a `next_cursor` (one request
    /// examines at most 100 users): only a page without one is the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `POST /api/admin/segments/evaluate`: `{rule, cursor?, limit?}` → the
/// users the rule selects, in user id order, `{users, next_cursor}`.
#[utoipa::path(post, path = "/api/admin/segments/evaluate", tag = "segments",
    request_body = EvaluateRequest,
    responses((status = 200, description = "A page of the users the rule selects, in user id order", body = EvaluateResponse),
        (status = 422, description = "An organization's events past the per-rule cap would decide (`limit_exceeded`)", body = shared::error::Problem, content_type = "application/problem+json")))]
async fn evaluate(
    State(state): State<AppState>,
    SecretCaller(caller): SecretCaller,
    Json(request): Json<EvaluateRequest>,
) -> Result<axum::Json<EvaluateResponse>, Error> {
    let segment = request.rule.compile()?;
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(format!(
            "limit must be a whole number from 1 to {MAX_LIMIT}"
        )));
    }
    let project = caller.project_id;
    let after = request
        .cursor
        .as_deref()
        .map(|c| state.store.cursors().decode_user_position(project, c))
        .transpose()?;
    let page = state
        .store
        .evaluate_segment(
            project,
            &segment,
            after,
            limit,
            time::OffsetDateTime::now_utc(),
        )
        .await?;
    Ok(axum::Json(EvaluateResponse {
        users: page
            .users
            .into_iter()
            .map(|s| SelectedUser {
                id: s.user.id,
                identifier: s
                    .user
                    .identifiers
                    .into_iter()
                    .map(|i| Identifier {
                        external_id: i.external_id,
                        source: i.source,
                    })
                    .collect(),
                organizations: s.organizations,
            })
            .collect(),
        next_cursor: page
            .next_after
            .map(|a| state.store.cursors().encode_user_position(project, a)),
    }))
}
