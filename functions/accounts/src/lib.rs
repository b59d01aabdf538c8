//! The accounts API family (`/v1/organizations/**`, seed 001): organizations
//! by id with billing fields, cursor lists, and the organization timeline.
//! A secret key reaches every organization of its project; a user session
//! only those its user belongs to.

mod dns;
mod wire;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use shared::auth::organization_id;
use shared::auth::{OrgAccess, Own, Read};
use shared::auth::{Principal, SecretCaller, Session};
use shared::domain::event::{Actor, Credential};
use shared::domain::organization::validate_email;
use shared::http::Json;
use shared::http::{IfMatch, Path, Query};
use shared::{AppState, Error};
use uuid::Uuid;

pub use wire::{
    OrganizationCreateParams, OrganizationList, OrganizationResponse, OrganizationUpdateParams,
    Patch,
};

/// Every route of the family.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/organizations"),
    ("GET", "/v1/organizations"),
    ("GET", "/v1/organizations/{organization_id}"),
    ("PATCH", "/v1/organizations/{organization_id}"),
    ("DELETE", "/v1/organizations/{organization_id}"),
    ("GET", "/v1/organizations/{organization_id}/events"),
    ("GET", "/v1/organizations/{organization_id}/memberships"),
    (
        "GET",
        "/v1/organizations/{organization_id}/memberships/{membership_id}",
    ),
    ("POST", "/v1/organizations/{organization_id}/leave"),
    ("POST", "/v1/organizations/{organization_id}/address"),
    ("GET", "/v1/organizations/{organization_id}/address"),
    ("PATCH", "/v1/organizations/{organization_id}/address"),
    ("POST", "/v1/organizations/{organization_id}/domains"),
    (
        "GET",
        "/v1/organizations/{organization_id}/domains/{domain_id}",
    ),
    (
        "DELETE",
        "/v1/organizations/{organization_id}/domains/{domain_id}",
    ),
    (
        "POST",
        "/v1/organizations/{organization_id}/domains/{domain_id}/verify",
    ),
    ("GET", "/v1/openapi.json"),
];

/// The family's OpenAPI document, from its handlers and wire types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Organizations: accounts API",
        description = "Organizations by id with billing fields, memberships, addresses, domains and the organization timeline (seed 001). A secret key reaches every organization of its project; a session token only those its user belongs to."
    ),
    paths(
        create,
        list,
        read,
        update,
        remove,
        timeline,
        memberships,
        membership,
        leave,
        read_address,
        create_address,
        update_address,
        add_domain,
        read_domain,
        verify_domain,
        remove_domain
    )
)]
struct Document;

/// The document as served at `/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    shared::openapi::with_events(shared::openapi::with_idempotency(shared::openapi::finish(
        <Document as utoipa::OpenApi>::openapi(),
    )))
}

const DEFAULT_LIMIT: usize = 10;
const TIMELINE_DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

pub fn router(state: AppState) -> Router {
    let state = state.serving("accounts");
    let routes = Router::new()
        .route(
            "/v1/organizations",
            get(list).post(create).fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}",
            get(read)
                .patch(update)
                .delete(remove)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}/events",
            get(timeline).fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}/memberships",
            get(memberships).fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}/memberships/{membership_id}",
            get(membership).fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}/leave",
            axum::routing::post(leave).fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}/address",
            get(read_address)
                .post(create_address)
                .patch(update_address)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}/domains",
            axum::routing::post(add_domain).fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}/domains/{domain_id}",
            get(read_domain)
                .delete(remove_domain)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/v1/organizations/{organization_id}/domains/{domain_id}/verify",
            axum::routing::post(verify_domain).fallback(shared::http::wrong_method),
        )
        .route("/v1/openapi.json", shared::openapi::route(openapi))
        .fallback(shared::http::no_route);
    shared::auth::front_door(routes, state, shared::auth::Idempotency::OnPost)
}

fn limit(raw: Option<&str>, default: usize) -> Result<usize, Error> {
    match raw {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}"
                ))
            }),
    }
}

/// `POST /v1/organizations`: with a session, its user becomes the owner.
#[utoipa::path(post, path = "/v1/organizations", tag = "organizations",
    request_body = OrganizationCreateParams,
    responses((status = 200, description = "The organization; with a session, its user is the owner", body = OrganizationResponse)))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(params): Json<OrganizationCreateParams>,
) -> Result<axum::Json<OrganizationResponse>, Error> {
    if let Some(email) = &params.billing_email {
        validate_email("billing_email", email)?;
    }
    let project = principal.project_id();
    let owner = match &principal {
        Principal::Session(session) => {
            Some(state.store.session_user(project, &session.user).await?)
        }
        Principal::Secret(_) => None,
    };
    let org = state
        .store
        .create_organization(
            project,
            &params.name,
            wire::profile(params.billing_email),
            owner,
        )
        .await?;
    Ok(axum::Json(present_one(&state, project, org).await?))
}

/// The organizations as the dialect shows them: a `billing_email` that is
/// not set shows the oldest owner's (one more read for the whole page, and
/// only when some organization needs it).
async fn present(
    state: &AppState,
    project: Uuid,
    orgs: Vec<shared::domain::Organization>,
) -> Result<Vec<OrganizationResponse>, Error> {
    let mut emails = state.store.billing_emails(project, &orgs).await?;
    Ok(orgs
        .into_iter()
        .map(|org| {
            let email = emails.remove(&org.id);
            OrganizationResponse::new(org, email)
        })
        .collect())
}

async fn present_one(
    state: &AppState,
    project: Uuid,
    org: shared::domain::Organization,
) -> Result<OrganizationResponse, Error> {
    present(state, project, vec![org])
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("an organization went missing".into()))
}

/// `GET /v1/organizations/{organization_id}`: one read.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}", tag = "organizations",
    params(("organization_id" = String, Path, description = "The organization's id")),
    responses((status = 200, description = "The organization", body = OrganizationResponse, headers(("ETag" = String, description = "The record's version, for If-Match")))))]
async fn read(State(state): State<AppState>, access: OrgAccess<Read>) -> Result<Response, Error> {
    let (org_id, project) = (access.id, access.project_id);
    let org = state
        .store
        .get_organization(project, org_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization has the id {org_id}")))?;
    let tag = shared::http::etag(org.version);
    Ok(([tag], axum::Json(present_one(&state, project, org).await?)).into_response())
}

/// `PATCH /v1/organizations/{organization_id}`: `name` and `billing_email`
/// (`null` reverts the billing email to the oldest owner's); with
/// `If-Match`, only while the record is at that version (else 412).
#[utoipa::path(patch, path = "/v1/organizations/{organization_id}", tag = "organizations",
    params(("organization_id" = String, Path, description = "The organization's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change was made from")),
    request_body = OrganizationUpdateParams,
    responses((status = 200, description = "The organization, updated", body = OrganizationResponse, headers(("ETag" = String, description = "The record's version, for If-Match")))))]
async fn update(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    if_match: IfMatch,
    Json(params): Json<OrganizationUpdateParams>,
) -> Result<Response, Error> {
    let (org_id, project) = (access.id, access.project_id);
    let name = match params.name {
        Patch::Keep => None,
        Patch::Clear => return Err(Error::invalid("name cannot be null")),
        Patch::Set(name) if name.trim().is_empty() => {
            return Err(Error::invalid("name must not be empty"))
        }
        Patch::Set(name) => Some(name.trim().to_owned()),
    };
    if let Patch::Set(email) = &params.billing_email {
        validate_email("billing_email", email)?;
    }
    let billing = params.billing_email;
    let org = state
        .store
        .modify_organization(project, org_id, |org| {
            if_match.check(org.version)?;
            let before = org.clone();
            if let Some(name) = &name {
                org.name = Some(name.clone());
            }
            let accounts = org.accounts.get_or_insert_with(Default::default);
            match &billing {
                Patch::Keep => {}
                Patch::Clear => accounts.billing_email = None,
                Patch::Set(email) => accounts.billing_email = Some(email.clone()),
            }
            let unchanged = org.name == before.name
                && org.accounts.as_ref().map(|a| &a.billing_email)
                    == before.accounts.as_ref().map(|a| &a.billing_email)
                && before.accounts.is_some();
            Ok(!unchanged)
        })
        .await?;
    let tag = shared::http::etag(org.version);
    Ok(([tag], axum::Json(present_one(&state, project, org).await?)).into_response())
}

/// `DELETE /v1/organizations/{organization_id}`.
#[utoipa::path(delete, path = "/v1/organizations/{organization_id}", tag = "organizations",
    params(("organization_id" = String, Path, description = "The organization's id")),
    responses((status = 204, description = "Deleted, with its memberships; its cleanup is announced")))]
async fn remove(
    State(state): State<AppState>,
    SecretCaller(caller): SecretCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let deletion = state
        .store
        .delete_organization_id(
            caller.project_id,
            organization_id(&id)?,
            &Actor::key("accounts", Credential::SecretKey),
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

/// `GET /v1/organizations?cursor&limit`: one Query per page.
#[utoipa::path(get, path = "/v1/organizations", tag = "organizations",
    params(("cursor" = Option<String>, Query, description = "`next_cursor` or `previous_cursor` of the previous page"), ("limit" = Option<u32>, Query, description = "Page size, 1 to 100", minimum = 1, maximum = 100)),
    responses((status = 200, description = "A page of organizations (a session's: those its user belongs to)", body = OrganizationList)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<wire::ListQuery>,
) -> Result<axum::Json<OrganizationList>, Error> {
    let limit = limit(query.limit.as_deref(), DEFAULT_LIMIT)?;
    let cursor = query.cursor.as_deref();
    let project = principal.project_id();
    let page = match &principal {
        Principal::Secret(caller) => {
            state
                .store
                .list_organizations(caller.project_id, limit, cursor)
                .await?
        }
        // A session lists only the organizations its user belongs to.
        Principal::Session(session) => {
            state
                .store
                .session_organizations(session.project_id, &session.user, limit, cursor)
                .await?
        }
    };
    Ok(axum::Json(OrganizationList {
        items: present(&state, project, page.organizations).await?,
        pagination: wire::Pagination {
            next_cursor: page.next_cursor,
            previous_cursor: page.previous_cursor,
            total_count: page.total_count,
        },
    }))
}

/// `GET /v1/organizations/{organization_id}/events`: the timeline, oldest
/// first, cursor-paginated.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/events", tag = "events",
    params(("organization_id" = String, Path, description = "The organization's id"), ("cursor" = Option<String>, Query, description = "`next_cursor` or `previous_cursor` of the previous page"), ("limit" = Option<u32>, Query, description = "Page size, 1 to 100", minimum = 1, maximum = 100), ("name" = Option<String>, Query, description = "Only events of this name")),
    responses((status = 200, description = "The organization's timeline, oldest first", body = wire::TimelineResponse)))]
async fn timeline(
    State(state): State<AppState>,
    access: OrgAccess<Read>,
    Query(query): Query<wire::ListQuery>,
) -> Result<axum::Json<wire::TimelineResponse>, Error> {
    let (org, project) = (access.id, access.project_id);
    let limit = limit(query.limit.as_deref(), TIMELINE_DEFAULT_LIMIT)?;
    let page = state
        .store
        .timeline(
            project,
            org,
            query.name.as_deref(),
            limit,
            query.cursor.as_deref(),
        )
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
    Ok(axum::Json(wire::TimelineResponse {
        items: page
            .events
            .into_iter()
            .map(|e| wire::TimelineItem {
                id: e.id.to_string(),
                name: e.name,
                data: e.data,
                created_at: e.created_at,
            })
            .collect(),
        pagination: wire::TimelinePagination {
            next_cursor: page.next_cursor,
        },
    }))
}

/// `GET /v1/organizations/{organization_id}/memberships`: one Query per page.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/memberships", tag = "memberships",
    params(("organization_id" = String, Path, description = "The organization's id"), ("cursor" = Option<String>, Query, description = "`next_cursor` or `previous_cursor` of the previous page"), ("limit" = Option<u32>, Query, description = "Page size, 1 to 100", minimum = 1, maximum = 100)),
    responses((status = 200, description = "A page of the organization's memberships", body = wire::MembershipList)))]
async fn memberships(
    State(state): State<AppState>,
    access: OrgAccess<Read>,
    Query(query): Query<wire::ListQuery>,
) -> Result<axum::Json<wire::MembershipList>, Error> {
    let (org, project) = (access.id, access.project_id);
    let limit = limit(query.limit.as_deref(), DEFAULT_LIMIT)?;
    let page = state
        .store
        .list_memberships(project, org, limit, query.cursor.as_deref())
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
    Ok(axum::Json(wire::MembershipList {
        items: page.memberships.into_iter().map(Into::into).collect(),
        pagination: wire::Pagination {
            next_cursor: page.next_cursor,
            previous_cursor: page.previous_cursor,
            total_count: page.total_count,
        },
    }))
}

/// `GET /v1/organizations/{organization_id}/memberships/{membership_id}`
/// (a membership's id is its user's id): one read.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/memberships/{membership_id}", tag = "memberships",
    params(("organization_id" = String, Path, description = "The organization's id"), ("membership_id" = String, Path, description = "The membership's id (the member's user id)")),
    responses((status = 200, description = "The membership", body = wire::MembershipResponse)))]
async fn membership(
    State(state): State<AppState>,
    access: OrgAccess<Read>,
    Path((_, membership_id)): Path<(String, String)>,
) -> Result<axum::Json<wire::MembershipResponse>, Error> {
    let (org, project) = (access.id, access.project_id);
    let missing = || {
        Error::not_found(format!(
            "organization {org} has no membership {membership_id}"
        ))
    };
    let user = Uuid::parse_str(&membership_id).map_err(|_| missing())?;
    let found = state
        .store
        .get_membership(project, org, user)
        .await?
        .ok_or_else(missing)?;
    Ok(axum::Json(found.into()))
}

/// `POST /v1/organizations/{organization_id}/leave`: the session's user
/// leaves; the last owner cannot (409).
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/leave", tag = "memberships",
    params(("organization_id" = String, Path, description = "The organization's id")),
    responses((status = 204, description = "The session's user left the organization")))]
async fn leave(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let org = organization_id(&id)?;
    state
        .store
        .leave_organization(session.project_id, org, &session.user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/organizations/{organization_id}/address`: one read.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/address", tag = "address",
    params(("organization_id" = String, Path, description = "The organization's id")),
    responses((status = 200, description = "The organization's address", body = wire::AddressResponse)))]
async fn read_address(
    State(state): State<AppState>,
    access: OrgAccess<Read>,
) -> Result<axum::Json<wire::AddressResponse>, Error> {
    let (org, project) = (access.id, access.project_id);
    let address = state
        .store
        .get_address(project, org)
        .await?
        .ok_or_else(|| Error::not_found("the organization has no address yet"))?;
    Ok(axum::Json(address.into()))
}

/// `POST /v1/organizations/{organization_id}/address`: sets the whole
/// address (city, country, line1, postal_code required).
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/address", tag = "address",
    params(("organization_id" = String, Path, description = "The organization's id")), request_body = wire::AddressCreateParams,
    responses((status = 200, description = "The address, set as a whole", body = wire::AddressResponse)))]
async fn create_address(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Json(params): Json<wire::AddressCreateParams>,
) -> Result<axum::Json<wire::AddressResponse>, Error> {
    let (org, project) = (access.id, access.project_id);
    let change = params.into();
    let address = state
        .store
        .set_address(project, org, &change, false)
        .await?;
    Ok(axum::Json(address.into()))
}

/// `PATCH /v1/organizations/{organization_id}/address`.
#[utoipa::path(patch, path = "/v1/organizations/{organization_id}/address", tag = "address",
    params(("organization_id" = String, Path, description = "The organization's id")), request_body = wire::AddressUpdateParams,
    responses((status = 200, description = "The address, updated", body = wire::AddressResponse)))]
async fn update_address(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Json(params): Json<wire::AddressUpdateParams>,
) -> Result<axum::Json<wire::AddressResponse>, Error> {
    let (org, project) = (access.id, access.project_id);
    let change = params.into();
    let address = state.store.set_address(project, org, &change, true).await?;
    Ok(axum::Json(address.into()))
}

/// `POST /v1/organizations/{organization_id}/domains`: claims the domain,
/// unverified, and answers the TXT record that will verify it.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/domains", tag = "domains",
    params(("organization_id" = String, Path, description = "The organization's id")), request_body = wire::DomainCreateParams,
    responses((status = 201, description = "The domain, claimed and unverified, with the TXT record that proves it", body = wire::DomainResponse)))]
async fn add_domain(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Json(params): Json<wire::DomainCreateParams>,
) -> Result<(StatusCode, axum::Json<wire::DomainResponse>), Error> {
    let (org, project) = (access.id, access.project_id);
    let domain = state.store.add_domain(project, org, &params.domain).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(wire::DomainResponse::new(org, domain)),
    ))
}

/// `GET /v1/organizations/{organization_id}/domains/{domain_id}`: one read.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/domains/{domain_id}", tag = "domains",
    params(("organization_id" = String, Path, description = "The organization's id"), ("domain_id" = String, Path, description = "The domain's id")),
    responses((status = 200, description = "The domain", body = wire::DomainResponse)))]
async fn read_domain(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Path((_, domain_id)): Path<(String, String)>,
) -> Result<axum::Json<wire::DomainResponse>, Error> {
    let (org_id, project) = (access.id, access.project_id);
    let domain = state
        .store
        .organization_domain(project, org_id, &domain_id)
        .await?;
    Ok(axum::Json(wire::DomainResponse::new(org_id, domain)))
}

/// `POST /v1/organizations/{organization_id}/domains/{domain_id}/verify`:
/// looks up the TXT record; 422 while it does not carry the token.
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/domains/{domain_id}/verify", tag = "domains",
    params(("organization_id" = String, Path, description = "The organization's id"), ("domain_id" = String, Path, description = "The domain's id")),
    responses((status = 200, description = "The domain, verified when its TXT record holds the token", body = wire::DomainResponse)))]
async fn verify_domain(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Path((_, domain_id)): Path<(String, String)>,
) -> Result<axum::Json<wire::DomainResponse>, Error> {
    let (org_id, project) = (access.id, access.project_id);
    let (record, domain) = state
        .store
        .organization_and_domain(project, org_id, &domain_id)
        .await?;
    if domain.verified {
        return Ok(axum::Json(wire::DomainResponse::new(org_id, domain)));
    }
    let name = domain.record_name();
    let found = dns::txt_records(state.config.dns_resolver, &name).await?;
    if !domain.proven_by(found.iter().map(String::as_str)) {
        return Err(Error::Unprocessable(format!(
            "no TXT record at {name} carries the token {} yet (found {}); DNS changes can take a while to show",
            domain.token,
            found.len()
        )));
    }
    let verified = state
        .store
        .mark_domain_verified(project, org_id, &domain_id, Some(record))
        .await?;
    Ok(axum::Json(wire::DomainResponse::new(org_id, verified)))
}

/// `DELETE /v1/organizations/{organization_id}/domains/{domain_id}`: the
/// domain is free for the project again.
#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/domains/{domain_id}", tag = "domains",
    params(("organization_id" = String, Path, description = "The organization's id"), ("domain_id" = String, Path, description = "The domain's id")),
    responses((status = 204, description = "The domain is released")))]
async fn remove_domain(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Path((_, domain_id)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let (org, project) = (access.id, access.project_id);
    state.store.remove_domain(project, org, &domain_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
