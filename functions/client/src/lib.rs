//! The client API family (`/api/client/**`), wire-compatible with the
//! Lunogram client API: organizations upserted and deleted by external
//! identifiers, with publishable or secret keys.

mod wire;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use shared::auth::Caller;
use shared::domain::OrganizationUpsert;
use shared::http::Json;
use shared::{AppState, Error};

pub use wire::{DeleteOrganizationRequest, OrganizationRequest, OrganizationResponse};

/// Every route of the family, as served behind `/api/client`.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/client/organizations"),
    ("DELETE", "/api/client/organizations"),
];

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/client/organizations",
            post(upsert_organization)
                .delete(delete_organization)
                .fallback(shared::http::wrong_method),
        )
        .fallback(shared::http::no_route)
        .with_state(state)
}

/// `POST /api/client/organizations`: create or update by identifier.
async fn upsert_organization(
    State(state): State<AppState>,
    caller: Caller,
    Json(mut request): Json<OrganizationRequest>,
) -> Result<axum::Json<OrganizationResponse>, Error> {
    let upsert = OrganizationUpsert::new(request.identifier_specs()?, request.name, request.data)?;
    let upserted = state
        .store
        .upsert_organization(caller.project_id, &upsert)
        .await?;
    Ok(axum::Json(upserted.organization.into()))
}

/// `DELETE /api/client/organizations`: delete by identifier, with its
/// memberships.
async fn delete_organization(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<DeleteOrganizationRequest>,
) -> Result<StatusCode, Error> {
    let keys = request.identifier_keys()?;
    state
        .store
        .delete_organization(caller.project_id, &keys)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
