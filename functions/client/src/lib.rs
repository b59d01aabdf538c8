//! The client API family (`/api/client/**`), wire-compatible with the
//! Lunogram client API: organizations upserted and deleted by external
//! identifiers, with publishable or secret keys.

mod wire;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use shared::auth::Caller;
use shared::domain::ProfileUpsert;
use shared::http::Json;
use shared::{AppState, Error};

pub use wire::{
    DeleteOrganizationRequest, MembershipResponse, OrganizationRequest, OrganizationResponse,
    OrganizationUserRequest, RemoveOrganizationUserRequest, UserRequest, UserResponse,
};

/// Every route of the family, as served behind `/api/client`.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/client/organizations"),
    ("DELETE", "/api/client/organizations"),
    ("POST", "/api/client/organizations/users"),
    ("DELETE", "/api/client/organizations/users"),
    ("POST", "/api/client/users"),
];

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/client/organizations",
            post(upsert_organization)
                .delete(delete_organization)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/api/client/organizations/users",
            post(add_member)
                .delete(remove_member)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/api/client/users",
            post(upsert_user).fallback(shared::http::wrong_method),
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
    let upsert = ProfileUpsert::new(request.identifier_specs()?, request.name, request.data)?;
    let upserted = state
        .store
        .upsert_organization(caller.project_id, &upsert)
        .await?;
    Ok(axum::Json(upserted.record.into()))
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

/// `POST /api/client/organizations/users`: add a member, or merge the
/// membership's `data` if they are one already; an unknown user is created.
async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<OrganizationUserRequest>,
) -> Result<axum::Json<MembershipResponse>, Error> {
    let org = request.organization.identifier_keys()?;
    let user = request.user.identifier_specs()?;
    let membership = state
        .store
        .add_member(caller.project_id, &org, &user, request.data.as_ref())
        .await?;
    Ok(axum::Json(membership.record.into()))
}

/// `DELETE /api/client/organizations/users`: remove only the association.
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<RemoveOrganizationUserRequest>,
) -> Result<StatusCode, Error> {
    let org = request.organization.identifier_keys()?;
    let user = request.user.identifier_keys()?;
    state
        .store
        .remove_member(caller.project_id, &org, &user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/client/users`: create or update a user profile.
async fn upsert_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<UserRequest>,
) -> Result<axum::Json<UserResponse>, Error> {
    let specs = wire::specs(request.identifier)?;
    let upsert = ProfileUpsert::new(specs, None, request.data)?;
    let upserted = state.store.upsert_user(caller.project_id, &upsert).await?;
    Ok(axum::Json(upserted.record.into()))
}
