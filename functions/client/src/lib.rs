//! The client API family (`/api/client/**`), wire-compatible with the
//! Lunogram client API: organizations upserted and deleted by external
//! identifiers, with publishable or secret keys.

mod wire;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use shared::auth::Caller;
use shared::domain::event::{Actor, Credential};
use shared::domain::ProfileUpsert;
use shared::http::Json;
use shared::{AppState, Error};

pub use wire::{AcceptedEvent, EventsAccepted, FailedEvent, OrganizationEventRequest};
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
    ("POST", "/api/client/organizations/events"),
    ("POST", "/api/client/organizations/scheduled"),
    ("DELETE", "/api/client/organizations/scheduled"),
    ("GET", "/api/client/openapi.json"),
];

/// The family's OpenAPI document, from its handlers and wire types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Organizations: client API",
        description = "Organizations, users and memberships by external identifiers; events and schedules. Compatible with the Lunogram client API."
    ),
    paths(
        upsert_organization,
        delete_organization,
        add_member,
        remove_member,
        upsert_user,
        post_events,
        upsert_scheduled,
        delete_scheduled
    )
)]
struct Document;

/// The document as served at `/api/client/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    shared::openapi::with_events(shared::openapi::with_idempotency(shared::openapi::finish(
        <Document as utoipa::OpenApi>::openapi(),
    )))
}

pub fn router(state: AppState) -> Router {
    let state = state.serving("client");
    let routes = Router::new()
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
        .route(
            "/api/client/organizations/events",
            post(post_events).fallback(shared::http::wrong_method),
        )
        .route(
            "/api/client/organizations/scheduled",
            post(upsert_scheduled)
                .delete(delete_scheduled)
                .fallback(shared::http::wrong_method),
        )
        .route("/api/client/openapi.json", shared::openapi::route(openapi))
        .fallback(shared::http::no_route);
    shared::auth::front_door(routes, state, shared::auth::Idempotency::OnPost)
}

/// `POST /api/client/organizations`: create or update by identifier.
#[utoipa::path(post, path = "/api/client/organizations", tag = "organizations",
    request_body = OrganizationRequest,
    responses((status = 200, description = "The organization, created or updated", body = OrganizationResponse)))]
async fn upsert_organization(
    State(state): State<AppState>,
    caller: Caller,
    Json(mut request): Json<OrganizationRequest>,
) -> Result<axum::Json<OrganizationResponse>, Error> {
    let upsert = ProfileUpsert::new(request.identifier_specs()?, request.name, request.data)?;
    let upserted = state
        .store
        .upsert_organization(caller.project_id, &upsert, caller.scope())
        .await?;
    Ok(axum::Json(upserted.record.into()))
}

/// `DELETE /api/client/organizations`: delete by identifier, with its
/// memberships.
#[utoipa::path(delete, path = "/api/client/organizations", tag = "organizations",
    request_body(content = DeleteOrganizationRequest, description = "The organization's identifiers"),
    responses((status = 204, description = "Deleted, with its memberships")))]
async fn delete_organization(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<DeleteOrganizationRequest>,
) -> Result<StatusCode, Error> {
    let keys = request.identifier_keys()?;
    let deletion = state
        .store
        .delete_organization(
            caller.project_id,
            &keys,
            &Actor::key(
                "client",
                match caller.kind {
                    shared::auth::KeyKind::Publishable => Credential::PublishableKey,
                    shared::auth::KeyKind::Secret => Credential::SecretKey,
                },
            ),
            caller.scope(),
        )
        .await?;
    shared::events::announce_deletion(
        &state.aws.sqs,
        state.config.cleanup_queue_url.as_deref(),
        &deletion,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/client/organizations/users`: add a member, or merge the
/// membership's `data` if they are one already; an unknown user is created.
#[utoipa::path(post, path = "/api/client/organizations/users", tag = "memberships",
    request_body = OrganizationUserRequest,
    responses((status = 200, description = "The membership, added or updated", body = MembershipResponse)))]
async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<OrganizationUserRequest>,
) -> Result<axum::Json<MembershipResponse>, Error> {
    let org = request.organization.identifier_keys()?;
    let user = request.user.identifier_specs()?;
    let membership = state
        .store
        .add_member(
            caller.project_id,
            &org,
            &user,
            request.data.as_ref(),
            caller.scope(),
        )
        .await?;
    Ok(axum::Json(membership.record.into()))
}

/// `DELETE /api/client/organizations/users`: remove only the association.
#[utoipa::path(delete, path = "/api/client/organizations/users", tag = "memberships",
    request_body = RemoveOrganizationUserRequest,
    responses((status = 204, description = "The membership is removed")))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<RemoveOrganizationUserRequest>,
) -> Result<StatusCode, Error> {
    let org = request.organization.identifier_keys()?;
    let user = request.user.identifier_keys()?;
    state
        .store
        .remove_member(caller.project_id, &org, &user, caller.scope())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/client/users`: create or update a user profile.
#[utoipa::path(post, path = "/api/client/users", tag = "users",
    request_body = UserRequest,
    responses((status = 200, description = "The user, created or updated", body = UserResponse)))]
async fn upsert_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<UserRequest>,
) -> Result<axum::Json<UserResponse>, Error> {
    let specs = wire::specs(request.identifier)?;
    let upsert = ProfileUpsert::new(specs, None, request.data)?;
    let upserted = state
        .store
        .upsert_user(caller.project_id, &upsert, caller.scope())
        .await?;
    Ok(axum::Json(upserted.record.into()))
}

/// `POST /api/client/organizations/events`: validate every event, resolve
/// the organizations they name (all or nothing: an unknown organization
/// fails the request before anything is queued), queue them in batches of
/// 10, and answer 202 with what SQS accepted and what it did not.
#[utoipa::path(post, path = "/api/client/organizations/events", tag = "events",
    request_body(content = Vec<OrganizationEventRequest>, description = "1 to 500 events"),
    responses((status = 202, description = "What was queued, and what could not be", body = EventsAccepted)))]
async fn post_events(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<Vec<OrganizationEventRequest>>,
) -> Result<(StatusCode, axum::Json<EventsAccepted>), Error> {
    use shared::events::{QueuedEvent, Target, MAX_EVENTS_PER_REQUEST};
    if request.is_empty() {
        return Err(Error::invalid("post at least one event"));
    }
    if request.len() > MAX_EVENTS_PER_REQUEST {
        return Err(Error::invalid(format!(
            "at most {MAX_EVENTS_PER_REQUEST} events may be posted at once"
        )));
    }
    let posted = request
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.validate().map_err(|err| at_index(i, err)))
        .collect::<Result<Vec<_>, Error>>()?;
    let queue_url = state
        .config
        .events_queue_url
        .as_deref()
        .ok_or_else(|| Error::Config("EVENTS_QUEUE_URL is not set".into()))?;
    let named: Vec<Vec<shared::domain::IdentifierKey>> = posted
        .iter()
        .map(|e| match &e.target {
            Target::Identifiers(ids) => ids.clone(),
            Target::Match(_) => Vec::new(),
        })
        .collect();
    let resolved = state
        .store
        .resolve_organizations(caller.project_id, &named)
        .await?;
    caller.scope().check_identifiers(named.iter().flatten())?;
    if caller.scope().is_unclaimed() {
        // A publishable key's events reach only organizations without an
        // owner: events feed what decides segments and feature settings.
        if let Some(i) = posted
            .iter()
            .position(|e| matches!(e.target, Target::Match(_)))
        {
            return Err(at_index(
                i,
                Error::Forbidden(
                    "events that match organizations by their data need a secret key".into(),
                ),
            ));
        }
        if let Some(i) = state
            .store
            .first_out_of_scope(caller.project_id, &resolved, caller.scope())
            .await?
        {
            return Err(at_index(i, shared::domain::scope::owned_organization()));
        }
    }
    let now = shared::ids::now();
    let mut queued = Vec::with_capacity(posted.len());
    for (i, (event, org)) in posted.into_iter().zip(resolved).enumerate() {
        let (organization_id, matcher) = match event.target {
            Target::Identifiers(ids) => {
                let org = org.ok_or_else(|| {
                    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
                    at_index(
                        i,
                        Error::not_found(format!(
                            "no organization has the identifier {}",
                            names.join(" or ")
                        )),
                    )
                })?;
                (Some(org), None)
            }
            Target::Match(pairs) => (None, Some(pairs)),
        };
        queued.push(QueuedEvent {
            id: shared::ids::new_id(),
            project_id: caller.project_id,
            organization_id,
            matcher,
            match_after: None,
            name: event.name,
            data: event.data,
            created_at: now.clone(),
        });
    }
    let results = shared::events::enqueue(&state.aws.sqs, queue_url, &queued).await?;
    let mut answer = EventsAccepted {
        accepted: 0,
        events: Vec::new(),
        failed: Vec::new(),
    };
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(id) => answer.events.push(AcceptedEvent { index, id }),
            Err(detail) => answer.failed.push(FailedEvent { index, detail }),
        }
    }
    answer.accepted = answer.events.len();
    if answer.accepted == 0 {
        return Err(Error::Storage("no event could be queued".into()));
    }
    Ok((StatusCode::ACCEPTED, axum::Json(answer)))
}

fn at_index(index: usize, err: Error) -> Error {
    match err {
        Error::Invalid(detail) => Error::Invalid(format!("event {index}: {detail}")),
        Error::NotFound(detail) => Error::NotFound(format!("event {index}: {detail}")),
        Error::Conflict(detail) => Error::Conflict(format!("event {index}: {detail}")),
        Error::Forbidden(detail) => Error::Forbidden(format!("event {index}: {detail}")),
        other => other,
    }
}

/// `POST /api/client/organizations/scheduled`: create or replace the
/// organization's schedule of that name; 202 with when it fires next.
#[utoipa::path(post, path = "/api/client/organizations/scheduled", tag = "scheduled",
    request_body = wire::ScheduledRequest,
    responses((status = 202, description = "The schedule, and when it fires next", body = wire::ScheduledAccepted)))]
async fn upsert_scheduled(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<wire::ScheduledRequest>,
) -> Result<(StatusCode, axum::Json<wire::ScheduledAccepted>), Error> {
    let org = wire::specs(request.identifier)?
        .into_iter()
        .map(|s| s.key)
        .collect::<Vec<_>>();
    let schedule = shared::domain::schedule::ScheduleRequest::new(
        request.name,
        request.scheduled_at.as_deref(),
        request.start_at.as_deref(),
        request.interval.as_deref(),
        request.data,
    )?;
    let stored = state
        .store
        .upsert_schedule(caller.project_id, &org, &schedule, caller.scope())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(wire::ScheduledAccepted {
            id: stored.id,
            name: stored.name,
            scheduled_at: stored.next_at.unwrap_or_default(),
            start_at: stored.start_at,
            interval: stored.interval,
            data: stored.data,
        }),
    ))
}

/// `DELETE /api/client/organizations/scheduled`: remove the organization's
/// schedule of that name.
#[utoipa::path(delete, path = "/api/client/organizations/scheduled", tag = "scheduled",
    request_body = wire::DeleteScheduledRequest,
    responses((status = 200, description = "The schedule is removed", body = wire::ScheduledDeleted)))]
async fn delete_scheduled(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<wire::DeleteScheduledRequest>,
) -> Result<axum::Json<wire::ScheduledDeleted>, Error> {
    let org = wire::specs(request.identifier)?
        .into_iter()
        .map(|s| s.key)
        .collect::<Vec<_>>();
    state
        .store
        .delete_schedule(caller.project_id, &org, &request.name, caller.scope())
        .await?;
    Ok(axum::Json(wire::ScheduledDeleted {
        name: request.name,
        deleted: true,
    }))
}
