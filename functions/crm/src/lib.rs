//! The CRM API family (`/organizations/**`, seed 002): organizations with
//! filters and numbered pages (JSON-LD collections), full and partial
//! updates, and notes. Keys come as `Authorization: Bearer sk_…` or
//! `X-API-KEY: sk_…`; a user session reaches only its user's
//! organizations, and sees private notes only when it wrote them.

mod wire;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use shared::auth::{OrgAccess, Own, Principal, Read};
use shared::domain::crm::{
    filter_time, normalize_phone, NoteFilter, NoteOrder, OrgFilter, OrgOrder, TimeBound,
};
use shared::http::Json;
use shared::http::Path;
use shared::limits::MAX_PAGE_OFFSET;
use shared::{AppState, Error};
use uuid::Uuid;

pub use wire::{Collection, NoteResource, OrganizationResource, View};

/// Every route of the family.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/organizations"),
    ("POST", "/organizations"),
    ("GET", "/organizations/{id}"),
    ("PUT", "/organizations/{id}"),
    ("PATCH", "/organizations/{id}"),
    ("GET", "/organizations/{organizationId}/notes"),
    ("POST", "/organizations/{organizationId}/notes"),
    ("GET", "/organizations/{organizationId}/notes/{id}"),
    ("PUT", "/organizations/{organizationId}/notes/{id}"),
    ("PATCH", "/organizations/{organizationId}/notes/{id}"),
    ("DELETE", "/organizations/{organizationId}/notes/{id}"),
    ("GET", "/organizations/openapi.json"),
];

/// The family's OpenAPI document, from its handlers and wire types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Organizations: CRM API",
        description = "Organizations with filters and numbered pages (JSON-LD collections), full and partial updates, and notes (seed 002). A secret key reaches its whole project; a session token only its user's organizations, and private notes only their author's."
    ),
    paths(
        list,
        create,
        read,
        replace,
        patch,
        list_notes,
        create_note,
        read_note,
        replace_note,
        patch_note,
        delete_note
    )
)]
struct Document;

/// The document as served at `/organizations/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    shared::openapi::with_events(shared::openapi::with_idempotency(shared::openapi::finish(
        <Document as utoipa::OpenApi>::openapi(),
    )))
}

/// Most values one filter takes (`tags.id[]`, `owner.id[]`, …): each is
/// one index read.
const MAX_FILTER_VALUES: usize = 100;

/// The last page a page size reaches ([`MAX_PAGE_OFFSET`]).
fn last_page(size: usize) -> usize {
    MAX_PAGE_OFFSET / size.max(1) + 1
}

/// Page size when none is asked for, and the most a page holds (a larger
/// `itemsPerPage` is lowered to it, as the CRM does).
const DEFAULT_PAGE_SIZE: usize = 15;
const MAX_PAGE_SIZE: usize = 30;

pub fn router(state: AppState) -> Router {
    let state = state.serving("crm");
    let routes = Router::new()
        // A static segment: it takes precedence over `/organizations/{id}`.
        .route(
            "/organizations/openapi.json",
            shared::openapi::route(openapi),
        )
        .route(
            "/organizations",
            get(list).post(create).fallback(shared::http::wrong_method),
        )
        .route(
            "/organizations/{id}",
            get(read)
                .put(replace)
                .patch(patch)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/organizations/{id}/notes",
            get(list_notes)
                .post(create_note)
                .fallback(shared::http::wrong_method),
        )
        .route(
            "/organizations/{id}/notes/{note_id}",
            get(read_note)
                .put(replace_note)
                .patch(patch_note)
                .delete(delete_note)
                .fallback(shared::http::wrong_method),
        )
        .fallback(shared::http::no_route);
    shared::auth::front_door(routes, state, shared::auth::Idempotency::OnPost)
}

/// A JSON-LD answer.
fn ld<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ld+json; charset=utf-8"),
    );
    response
}

fn note_id(org: Uuid, raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw)
        .map_err(|_| Error::not_found(format!("organization {org} has no note {raw}")))
}

/// A session's user id as the CRM names authors (`/users/{id}`).
fn viewer<N: shared::auth::Needs>(access: &OrgAccess<N>) -> Option<String> {
    access.user.map(|u| u.to_string())
}

/// A refused value as the CRM answers it: 422 naming the field as its
/// bodies name it.
fn refused(refusal: shared::domain::crm::Refusal) -> Error {
    Error::Unprocessable(format!(
        "{}: {}",
        wire::field_name(refusal.field),
        refusal.problem
    ))
}

/// The query string as the CRM sends it: repeated keys (`tags.id[]=1&
/// tags.id[]=2`), kept in order.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Result<Self, Error> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw.as_deref().unwrap_or(""))
            .map(Params)
            .map_err(|e| Error::invalid(format!("the query string is malformed: {e}")))
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` and `name[]`.
    fn many(&self, name: &str) -> Vec<String> {
        let list = format!("{name}[]");
        self.0
            .iter()
            .filter(|(k, _)| *k == name || *k == list)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.one(name) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(other) => Err(Error::invalid(format!(
                "{name}: {other:?} is not a boolean (true, false, 1 or 0)"
            ))),
        }
    }

    fn created(&self) -> Result<Vec<(TimeBound, String)>, Error> {
        let mut bounds = Vec::new();
        for (suffix, bound) in [
            ("strictly_after", TimeBound::StrictlyAfter),
            ("after", TimeBound::After),
            ("strictly_before", TimeBound::StrictlyBefore),
            ("before", TimeBound::Before),
        ] {
            let name = format!("createdAt[{suffix}]");
            if let Some(raw) = self.one(&name) {
                let at = filter_time(raw).ok_or_else(|| {
                    Error::invalid(format!(
                        "{name}: {raw:?} is not a date or date-time (e.g. 2026-03-01 or 2026-03-01T12:00:00Z)"
                    ))
                })?;
                bounds.push((bound, at));
            }
        }
        Ok(bounds)
    }

    /// The `order[...]` parameters, in the order given.
    fn orders<T: Copy>(&self, known: &[(&str, T)]) -> Result<Vec<(T, bool)>, Error> {
        let mut orders = Vec::new();
        for (key, value) in &self.0 {
            if let Some((_, order)) = known.iter().find(|(name, _)| name == key) {
                let descending = match value.to_ascii_lowercase().as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => {
                        return Err(Error::invalid(format!(
                            "{key}: {value:?} is not asc or desc"
                        )))
                    }
                };
                orders.push((*order, descending));
            }
        }
        Ok(orders)
    }

    /// `page` (from 1) and `itemsPerPage` (0 to 30); a page whose offset
    /// passes [`MAX_PAGE_OFFSET`] is refused, since a page reads its offset.
    fn paging(&self) -> Result<(usize, usize), Error> {
        let page = match self.one("page") {
            None => 1,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| Error::invalid("page: must be a whole number from 1"))?,
        };
        let size = match self.one("itemsPerPage") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => raw
                .parse::<usize>()
                .map_err(|_| Error::invalid("itemsPerPage: must be a whole number from 0"))?
                .min(MAX_PAGE_SIZE),
        };
        if (page - 1).saturating_mul(size) > MAX_PAGE_OFFSET {
            return Err(Error::invalid(format!(
                "page: a page reaches at most the first {MAX_PAGE_OFFSET} items of its list \
                 (page {}, itemsPerPage {size}, at most); narrow the list with filters",
                last_page(size)
            )));
        }
        Ok((page, size))
    }

    /// The collection's `view`: links to pages of the same query.
    fn view(&self, path: &str, page: usize, size: usize, total: u64) -> View {
        let link = |n: usize| {
            let mut pairs: Vec<(&str, String)> = self
                .0
                .iter()
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            pairs.push(("page", n.to_string()));
            format!(
                "{path}?{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            )
        };
        if size == 0 {
            return View {
                iri: link(page),
                kind: "PartialCollectionView".into(),
                first: None,
                last: None,
                previous: None,
                next: None,
            };
        }
        let last = (total as usize).div_ceil(size).clamp(1, last_page(size));
        View {
            iri: link(page),
            kind: "PartialCollectionView".into(),
            first: Some(link(1)),
            last: Some(link(last)),
            previous: (page > 1).then(|| link(page - 1)),
            next: (page < last).then(|| link(page + 1)),
        }
    }
}

/// `GET /organizations`: every filter and order of the seed, numbered pages.
#[utoipa::path(get, path = "/organizations", tag = "organizations",
    params(("page" = Option<u32>, Query, description = "Page number, from 1"), ("itemsPerPage" = Option<u32>, Query, description = "Page size, 0 to 30 (larger asks get 30; default 15)"), ("q" = Option<String>, Query, description = "Free-text search"), ("owner.id" = Option<String>, Query, description = "Owner user IRI or id"), ("owner.id[]" = Option<Vec<String>>, Query, description = "Owner user IRI or id (any of several)"), ("emailAddresses.email" = Option<String>, Query, description = "An email address"), ("emailAddresses.email[]" = Option<Vec<String>>, Query, description = "An email address (any of several)"), ("tags.id" = Option<String>, Query, description = "Tag IRI or id"), ("tags.id[]" = Option<Vec<String>>, Query, description = "Tag IRI or id (any of several)"), ("segments.uuid" = Option<String>, Query, description = "Segment IRI or id"), ("segments.uuid[]" = Option<Vec<String>>, Query, description = "Segment IRI or id (any of several)"), ("exists[archivedAt]" = Option<bool>, Query, description = "Archived (true) or not (false)"), ("order[title.sort]" = Option<String>, Query, description = "`asc` or `desc`"), ("order[owner.lastName]" = Option<String>, Query, description = "`asc` or `desc`"), ("createdAt[strictly_after]" = Option<String>, Query, description = "Created strictly after this time (RFC 3339)"), ("createdAt[after]" = Option<String>, Query, description = "Created after this time (RFC 3339)"), ("createdAt[strictly_before]" = Option<String>, Query, description = "Created strictly before this time (RFC 3339)"), ("createdAt[before]" = Option<String>, Query, description = "Created before this time (RFC 3339)"), ("identifiers" = Option<String>, Query, description = "A website, email address, phone number or chamber of commerce number"), ("identifiers[]" = Option<Vec<String>>, Query, description = "A website, email address, phone number or chamber of commerce number (any of several)")),
    responses((status = 200, description = "A page of organizations (a session's: those its user belongs to)", body = Collection<OrganizationResource>, content_type = "application/ld+json")))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response, Error> {
    let params = Params::parse(raw)?;
    let (page, size) = params.paging()?;
    let lower = |v: Vec<String>| v.into_iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
    let mut identifiers = Vec::new();
    for value in params.many("identifiers") {
        let phone = normalize_phone(&value);
        identifiers.push(value.to_lowercase());
        if phone.len() > 1 && phone != value {
            identifiers.push(phone);
        }
    }
    let filter = OrgFilter {
        text: params
            .one("q")
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty()),
        owners: params
            .many("owner.id")
            .iter()
            .map(|o| wire::filter_id(wire::USERS, o))
            // Owners are kept as their user ids are written.
            .map(|o| Uuid::parse_str(&o).map_or(o, |id| id.to_string()))
            .collect(),
        emails: lower(params.many("emailAddresses.email")),
        tags: params
            .many("tags.id")
            .iter()
            .map(|t| wire::filter_id(wire::TAGS, t))
            .collect(),
        segments: params
            .many("segments.uuid")
            .iter()
            .map(|s| wire::filter_id(wire::SEGMENTS, s))
            .collect(),
        archived: params.boolean("exists[archivedAt]")?,
        created: params.created()?,
        identifiers,
    };
    for (what, values) in [
        ("owner.id", &filter.owners),
        ("emailAddresses.email", &filter.emails),
        ("tags.id", &filter.tags),
        ("segments.uuid", &filter.segments),
        ("identifiers", &filter.identifiers),
    ] {
        if values.len() > MAX_FILTER_VALUES {
            return Err(Error::invalid(format!(
                "{what}: at most {MAX_FILTER_VALUES} values"
            )));
        }
    }
    let orders = params.orders(&[
        ("order[title.sort]", OrgOrder::Title),
        ("order[owner.lastName]", OrgOrder::OwnerLastName),
    ])?;
    let project = principal.project_id();
    let offset = (page - 1).saturating_mul(size);
    let found = match &principal {
        Principal::Secret(_) => {
            state
                .store
                .organization_list(project, &filter, &orders, offset, size)
                .await?
        }
        // A session's list reads only its user's organizations.
        Principal::Session(session) => {
            let mine: std::collections::BTreeSet<Uuid> = state
                .store
                .session_organization_ids(project, &session.user)
                .await?
                .into_iter()
                .collect();
            state
                .store
                .organization_list_among(project, &mine, &filter, &orders, offset, size)
                .await?
        }
    };
    let collection = Collection {
        context: "/contexts/Organization".into(),
        iri: "/organizations".into(),
        kind: "Collection".into(),
        view: params.view("/organizations", page, size, found.total),
        total_items: found.total,
        member: found
            .organizations
            .into_iter()
            .map(OrganizationResource::from)
            .collect(),
    };
    Ok(ld(StatusCode::OK, &collection))
}

/// The owner's last name when a write names a new owner (one read; 422
/// when the owner is not a user of the project), and the owner named by
/// the user's id as the store writes it (lower case, hyphenated), so its
/// list entries are the ones filters and a rename of the user find.
async fn owner_last_name(
    state: &AppState,
    project: Uuid,
    change: &mut shared::domain::crm::CrmChange,
) -> Result<Option<String>, Error> {
    let shared::domain::address::Change::Set(owner) = &mut change.owner else {
        return Ok(None);
    };
    let unknown = || {
        Error::Unprocessable(format!(
            "owner: {}{owner} is not a user of this project",
            wire::USERS
        ))
    };
    let id = Uuid::parse_str(owner).map_err(|_| unknown())?;
    let user = state
        .store
        .get_user(project, id)
        .await?
        .ok_or_else(unknown)?;
    *owner = id.to_string();
    Ok(user.last_name().map(str::to_owned))
}

/// `POST /organizations`: 201 with the organization. A session's user
/// becomes its owner.
#[utoipa::path(post, path = "/organizations", tag = "organizations",
    request_body(content = wire::OrganizationWrite, content_type = "application/ld+json"),
    responses((status = 201, description = "The organization", body = OrganizationResource, content_type = "application/ld+json")))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<wire::OrganizationWrite>,
) -> Result<Response, Error> {
    let mut change = body.into_change(false)?;
    change.validate().map_err(refused)?;
    let project = principal.project_id();
    let owner_last = owner_last_name(&state, project, &mut change).await?;
    let shared::domain::address::Change::Set(title) = &change.title else {
        return Err(refused(shared::domain::crm::Refusal {
            field: shared::domain::crm::Field::Title,
            problem: shared::domain::crm::TITLE_REQUIRED.into(),
        }));
    };
    let member = match &principal {
        Principal::Session(session) => {
            Some(state.store.session_user(project, &session.user).await?)
        }
        Principal::Secret(_) => None,
    };
    let org = state
        .store
        .create_crm_organization(project, title, &change, owner_last, member)
        .await?;
    Ok(ld(StatusCode::CREATED, &OrganizationResource::from(org)))
}

/// `GET /organizations/{id}`: one read.
#[utoipa::path(get, path = "/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "The organization's id")),
    responses((status = 200, description = "The organization", body = OrganizationResource, content_type = "application/ld+json")))]
async fn read(State(state): State<AppState>, access: OrgAccess<Read>) -> Result<Response, Error> {
    let (org, project) = (access.id, access.project_id);
    let found = state
        .store
        .get_organization(project, org)
        .await?
        .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
    Ok(ld(StatusCode::OK, &OrganizationResource::from(found)))
}

async fn write(
    state: AppState,
    access: OrgAccess<Own>,
    body: wire::OrganizationWrite,
    replace: bool,
) -> Result<Response, Error> {
    let (org, project) = (access.id, access.project_id);
    let mut change = body.into_change(replace)?;
    change.validate().map_err(refused)?;
    let owner_last = owner_last_name(&state, project, &mut change).await?;
    let updated = state
        .store
        .change_crm_organization(project, org, &change, owner_last)
        .await?;
    Ok(ld(StatusCode::OK, &OrganizationResource::from(updated)))
}

/// `PUT /organizations/{id}`: replaces every CRM field (omitted ones are
/// cleared; the title is required); other dialects' fields stay.
#[utoipa::path(put, path = "/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "The organization's id")), request_body(content = wire::OrganizationWrite, description = "The whole organization: fields not given are cleared", content_type = "application/ld+json"),
    responses((status = 200, description = "The organization, replaced", body = OrganizationResource, content_type = "application/ld+json")))]
async fn replace(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Json(body): Json<wire::OrganizationWrite>,
) -> Result<Response, Error> {
    write(state, access, body, true).await
}

/// `PATCH /organizations/{id}` (merge patch): only the fields given.
#[utoipa::path(patch, path = "/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "The organization's id")), request_body(content = wire::OrganizationWrite, description = "Only the fields given change; null clears one", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The organization, updated", body = OrganizationResource, content_type = "application/ld+json")))]
async fn patch(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Json(body): Json<wire::OrganizationWrite>,
) -> Result<Response, Error> {
    write(state, access, body, false).await
}

/// Hides another author's private note from a session (404, as if absent).
fn visible_to(viewer: Option<String>) -> impl Fn(&shared::domain::crm::Note) -> Result<(), Error> {
    move |note| {
        let filter = NoteFilter {
            viewer: viewer.clone(),
            ..NoteFilter::default()
        };
        if filter.visible(note) {
            Ok(())
        } else {
            Err(Error::not_found(format!(
                "organization {} has no note {}",
                note.organization_id, note.id
            )))
        }
    }
}

/// A session changes only the notes it wrote (another author's note is
/// 403, or 404 when it is private and so invisible to the session).
fn authored_by(viewer: Option<String>) -> impl Fn(&shared::domain::crm::Note) -> Result<(), Error> {
    move |note| {
        visible_to(viewer.clone())(note)?;
        match &viewer {
            Some(viewer) if note.author.as_ref() != Some(viewer) => {
                Err(Error::Forbidden("only the note's author changes it".into()))
            }
            _ => Ok(()),
        }
    }
}

/// `GET /organizations/{organizationId}/notes`: unfiltered, one Query of
/// the count and the notes up to the page; filtered or ordered, among the
/// organization's most recent `MAX_LISTED_NOTES` notes.
#[utoipa::path(get, path = "/organizations/{organizationId}/notes", tag = "notes",
    params(("organizationId" = String, Path, description = "The organization's id"), ("page" = Option<u32>, Query, description = "Page number, from 1"), ("itemsPerPage" = Option<u32>, Query, description = "Page size, 0 to 30 (larger asks get 30; default 15)"), ("q" = Option<String>, Query, description = "Free-text search"), ("category.id" = Option<String>, Query, description = "Note category IRI or id"), ("category.id[]" = Option<Vec<String>>, Query, description = "Note category IRI or id (any of several)"), ("author.id" = Option<String>, Query, description = "Author user IRI or id"), ("author.id[]" = Option<Vec<String>>, Query, description = "Author user IRI or id (any of several)"), ("flagged" = Option<bool>, Query, description = "Flagged notes only (true) or unflagged (false)"), ("order[flagged]" = Option<String>, Query, description = "`asc` or `desc`"), ("order[createdAt]" = Option<String>, Query, description = "`asc` or `desc`"), ("createdAt[strictly_after]" = Option<String>, Query, description = "Created strictly after this time (RFC 3339)"), ("createdAt[after]" = Option<String>, Query, description = "Created after this time (RFC 3339)"), ("createdAt[strictly_before]" = Option<String>, Query, description = "Created strictly before this time (RFC 3339)"), ("createdAt[before]" = Option<String>, Query, description = "Created before this time (RFC 3339)")),
    responses((status = 200, description = "A page of the organization's notes (private ones only for their author)", body = Collection<NoteResource>, content_type = "application/ld+json")))]
async fn list_notes(
    State(state): State<AppState>,
    access: OrgAccess<Read>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Error> {
    let (org, project, viewer) = (access.id, access.project_id, viewer(&access));
    let params = Params::parse(raw)?;
    let (page, size) = params.paging()?;
    let gone = || Error::not_found(format!("no organization has the id {org}"));
    let filter = NoteFilter {
        text: params
            .one("q")
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty()),
        flagged: params.boolean("flagged")?,
        categories: params
            .many("category.id")
            .iter()
            .map(|c| wire::filter_id(wire::NOTE_CATEGORIES, c))
            .collect(),
        authors: params
            .many("author.id")
            .iter()
            .map(|a| wire::filter_id(wire::USERS, a))
            .collect(),
        created: params.created()?,
        orders: params.orders(&[
            ("order[flagged]", NoteOrder::Flagged),
            ("order[createdAt]", NoteOrder::CreatedAt),
        ])?,
        viewer,
    };
    let offset = (page - 1).saturating_mul(size);
    let (member, total) = if filter.is_everything() {
        // Unfiltered, in creation order: the page and the count alone.
        let found = state
            .store
            .notes_page(project, org, offset, size)
            .await?
            .ok_or_else(gone)?;
        (found.notes, found.total)
    } else {
        // Filtered or ordered: among the most recent notes (a bounded read).
        let notes = state
            .store
            .recent_notes(project, org)
            .await?
            .ok_or_else(gone)?;
        let selected = filter.select(notes);
        let total = selected.len() as u64;
        (
            selected.into_iter().skip(offset).take(size).collect(),
            total,
        )
    };
    let path = format!("/organizations/{org}/notes");
    let collection = Collection {
        context: "/contexts/OrganizationNote".into(),
        iri: path.clone(),
        kind: "Collection".into(),
        view: params.view(&path, page, size, total),
        total_items: total,
        member: member.into_iter().map(NoteResource::from).collect(),
    };
    Ok(ld(StatusCode::OK, &collection))
}

fn check_organization_id(body: &wire::NoteWrite, org: Uuid) -> Result<(), Error> {
    match &body.organization_id {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::String(given))
            if given == &org.to_string() || given == &format!("/organizations/{org}") =>
        {
            Ok(())
        }
        Some(other) => Err(Error::Unprocessable(format!(
            "organizationId: {other} is not the organization of the path ({org})"
        ))),
    }
}

/// `POST /organizations/{organizationId}/notes`: 201. A session is the
/// note's author.
#[utoipa::path(post, path = "/organizations/{organizationId}/notes", tag = "notes",
    params(("organizationId" = String, Path, description = "The organization's id")), request_body(content = wire::NoteWrite, content_type = "application/ld+json"),
    responses((status = 201, description = "The note", body = NoteResource, content_type = "application/ld+json")))]
async fn create_note(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Json(body): Json<wire::NoteWrite>,
) -> Result<Response, Error> {
    let (org, project, viewer) = (access.id, access.project_id, viewer(&access));
    check_organization_id(&body, org)?;
    let mut change = body.into_change(false)?;
    // A session's note is always its own.
    if let Some(user) = viewer {
        change.author = shared::domain::address::Change::Set(user);
    }
    let note = change
        .apply(None, project, org, &shared::ids::now())
        .map_err(refused)?
        .ok_or_else(|| Error::Internal("a new note came out unchanged".into()))?;
    let note = state.store.create_note(project, org, note).await?;
    Ok(ld(StatusCode::CREATED, &NoteResource::from(note)))
}

/// `GET /organizations/{organizationId}/notes/{id}`: one read.
#[utoipa::path(get, path = "/organizations/{organizationId}/notes/{id}", tag = "notes",
    params(("organizationId" = String, Path, description = "The organization's id"), ("id" = String, Path, description = "The note's id")),
    responses((status = 200, description = "The note", body = NoteResource, content_type = "application/ld+json")))]
async fn read_note(
    State(state): State<AppState>,
    access: OrgAccess<Read>,
    Path((_, note)): Path<(String, String)>,
) -> Result<Response, Error> {
    let (org, project, viewer) = (access.id, access.project_id, viewer(&access));
    let note = note_id(org, &note)?;
    let found = state.store.note(project, org, note).await?;
    visible_to(viewer)(&found)?;
    Ok(ld(StatusCode::OK, &NoteResource::from(found)))
}

async fn write_note(
    state: AppState,
    access: OrgAccess<Own>,
    note: String,
    body: wire::NoteWrite,
    replace: bool,
) -> Result<Response, Error> {
    let (org, project, viewer) = (access.id, access.project_id, viewer(&access));
    let note = note_id(org, &note)?;
    check_organization_id(&body, org)?;
    let mut change = body.into_change(replace)?;
    if let Some(user) = &viewer {
        // A session cannot hand its note to someone else.
        if !matches!(change.author, shared::domain::address::Change::Keep) {
            change.author = shared::domain::address::Change::Set(user.clone());
        }
    }
    let allowed = authored_by(viewer);
    let updated = state
        .store
        .change_note(project, org, note, |current, now| {
            allowed(current)?;
            change
                .apply(Some(current), project, org, now)
                .map_err(refused)
        })
        .await?;
    Ok(ld(StatusCode::OK, &NoteResource::from(updated)))
}

/// `PUT /organizations/{organizationId}/notes/{id}`: description and
/// category required; omitted fields cleared.
#[utoipa::path(put, path = "/organizations/{organizationId}/notes/{id}", tag = "notes",
    params(("organizationId" = String, Path, description = "The organization's id"), ("id" = String, Path, description = "The note's id")), request_body(content = wire::NoteWrite, description = "The whole note: fields not given are cleared (createdAt is kept)", content_type = "application/ld+json"),
    responses((status = 200, description = "The note, replaced", body = NoteResource, content_type = "application/ld+json")))]
async fn replace_note(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Path((_, note)): Path<(String, String)>,
    Json(body): Json<wire::NoteWrite>,
) -> Result<Response, Error> {
    write_note(state, access, note, body, true).await
}

/// `PATCH /organizations/{organizationId}/notes/{id}`.
#[utoipa::path(patch, path = "/organizations/{organizationId}/notes/{id}", tag = "notes",
    params(("organizationId" = String, Path, description = "The organization's id"), ("id" = String, Path, description = "The note's id")), request_body(content = wire::NoteWrite, description = "Only the fields given change", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The note, updated", body = NoteResource, content_type = "application/ld+json")))]
async fn patch_note(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Path((_, note)): Path<(String, String)>,
    Json(body): Json<wire::NoteWrite>,
) -> Result<Response, Error> {
    write_note(state, access, note, body, false).await
}

/// `DELETE /organizations/{organizationId}/notes/{id}`: 204.
#[utoipa::path(delete, path = "/organizations/{organizationId}/notes/{id}", tag = "notes",
    params(("organizationId" = String, Path, description = "The organization's id"), ("id" = String, Path, description = "The note's id")),
    responses((status = 204, description = "The note is deleted")))]
async fn delete_note(
    State(state): State<AppState>,
    access: OrgAccess<Own>,
    Path((_, note)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let (org, project, viewer) = (access.id, access.project_id, viewer(&access));
    let note = note_id(org, &note)?;
    if viewer.is_some() {
        // The read is on the refusal's side only: the delete below is
        // conditioned on the author again.
        let found = state.store.note(project, org, note).await?;
        authored_by(viewer.clone())(&found)?;
    }
    state
        .store
        .delete_note(project, org, note, viewer.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_and_views() {
        let p = Params::parse(Some(
            "tags.id%5B%5D=%2Ftags%2F1&tags.id[]=2&tags.id=3&page=2&itemsPerPage=10".into(),
        ))
        .unwrap();
        assert_eq!(p.many("tags.id"), vec!["/tags/1", "2", "3"]);
        assert_eq!(p.paging().unwrap(), (2, 10));
        let view = p.view("/organizations", 2, 10, 25);
        assert_eq!(
            view.next.as_deref(),
            Some("/organizations?tags.id%5B%5D=%2Ftags%2F1&tags.id%5B%5D=2&tags.id=3&itemsPerPage=10&page=3")
        );
        assert!(view.previous.unwrap().ends_with("page=1"));
        assert!(view.last.unwrap().ends_with("page=3"));
        let last = p.view("/organizations", 3, 10, 25);
        assert_eq!(last.next, None);
    }

    #[test]
    fn a_refused_value_is_a_422_naming_the_wire_field() {
        let change = shared::domain::crm::CrmChange {
            email_addresses: shared::domain::address::Change::Set(vec![
                shared::domain::crm::CrmEmail {
                    email: "nope".into(),
                },
            ]),
            ..Default::default()
        };
        let err = refused(change.validate().unwrap_err());
        assert_eq!(err.status().as_u16(), 422);
        assert_eq!(
            err.to_string(),
            "emailAddresses.email: not a valid email address"
        );
    }

    #[test]
    fn page_sizes_are_capped_and_pages_start_at_one() {
        let p = |q: &str| Params::parse(Some(q.into())).unwrap().paging();
        assert_eq!(p("itemsPerPage=31").unwrap(), (1, 30));
        assert_eq!(p("").unwrap(), (1, 15));
        assert!(p("page=0").is_err());
        assert!(p("itemsPerPage=-1").is_err());
        assert!(p("page=x").is_err());
    }

    #[test]
    fn orders_keep_their_order_and_refuse_other_directions() {
        let p = Params::parse(Some(
            "order[owner.lastName]=DESC&order[title.sort]=asc".into(),
        ))
        .unwrap();
        let known = [
            ("order[title.sort]", OrgOrder::Title),
            ("order[owner.lastName]", OrgOrder::OwnerLastName),
        ];
        assert_eq!(
            p.orders(&known).unwrap(),
            vec![(OrgOrder::OwnerLastName, true), (OrgOrder::Title, false)]
        );
        let bad = Params::parse(Some("order[title.sort]=up".into())).unwrap();
        assert!(bad.orders(&known).is_err());
    }
}
