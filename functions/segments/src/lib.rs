//! The segments family (`/api/admin/segments/**`, secret keys): whether a
//! rule tree selects one user, and why.

use axum::extract::State;
use axum::Router;
use serde::{Deserialize, Serialize};
use shared::auth::SecretCaller;
use shared::domain::segment::{Reason, Rule};
use shared::domain::IdentifierKey;
use shared::http::Json;
use shared::{AppState, Error};

/// Every route of the family.
pub const ROUTES: &[(&str, &str)] = &[("POST", "/api/admin/segments/match")];

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/admin/segments/match",
            axum::routing::post(matches).fallback(shared::http::wrong_method),
        )
        .fallback(shared::http::no_route)
        .with_state(state)
}

#[derive(Debug, Deserialize)]
pub struct ExternalId {
    #[serde(alias = "externalId")]
    pub external_id: String,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UserRef {
    pub identifier: Vec<ExternalId>,
}

#[derive(Debug, Deserialize)]
pub struct MatchRequest {
    pub user: UserRef,
    pub rule: Rule,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MatchResponse {
    #[serde(rename = "match")]
    pub matched: bool,
    pub reasons: Vec<Reason>,
}

/// `POST /api/admin/segments/match`: `{user: {identifier}, rule}` →
/// `{match, reasons}` (which organizations and nodes made it match).
async fn matches(
    State(state): State<AppState>,
    SecretCaller(caller): SecretCaller,
    Json(request): Json<MatchRequest>,
) -> Result<axum::Json<MatchResponse>, Error> {
    request.rule.validate()?;
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
            &request.rule,
            time::OffsetDateTime::now_utc(),
        )
        .await?;
    let (matched, reasons) = request.rule.evaluate(&facts);
    Ok(axum::Json(MatchResponse { matched, reasons }))
}
