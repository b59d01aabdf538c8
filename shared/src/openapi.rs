//! The parts of every family's OpenAPI document that are the same in all of
//! them: the problem document every error answers with, the API key scheme,
//! and the route that serves the document. Each family derives its own
//! document from its wire types (`utoipa`), so it cannot drift from them.

use axum::http::{header, HeaderValue};
use std::sync::{Arc, OnceLock};

use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::Required;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};

/// The security schemes: every family takes its keys (and, where an
/// operation allows one, a session token) either way.
pub const BEARER: &str = "HttpBearerAuth";
pub const API_KEY: &str = "ApiKeyAuth";

/// Completes a family's document: the `Problem` schema, a `default`
/// problem response on every operation (every error is one, whatever its
/// status), and the two ways to present a key (or a session token), which
/// every operation takes.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "Problem".into(),
        <crate::error::Problem as utoipa::PartialSchema>::schema(),
    );
    components.security_schemes.insert(
        BEARER.into(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key (`pk_…` or `sk_…`), or a session token (JWT) where the operation takes one",
                ))
                .build(),
        ),
    );
    components.security_schemes.insert(
        API_KEY.into(),
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-KEY",
            "An API key (`pk_…` or `sk_…`)",
        ))),
    );
    doc.security = Some(vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(API_KEY, Vec::<String>::new()),
    ]);
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_problem_response(operation);
        }
    }
    doc
}

fn add_problem_response(operation: &mut Operation) {
    operation
        .responses
        .responses
        .entry("default".into())
        .or_insert_with(|| {
            ResponseBuilder::new()
                .description("An error, as an RFC 9457 problem document")
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
                .into()
        });
}

/// Documents the system events a family's changes record (README
/// "Events"): their names, and each one's data as a component schema
/// derived from the types that build it, so the two cannot drift.
pub fn with_events(mut doc: OpenApi) -> OpenApi {
    use crate::domain::event;
    let components = doc.components.get_or_insert_with(Default::default);
    add_schema::<event::OrganizationCreated>(components);
    add_schema::<event::OrganizationUpdated>(components);
    add_schema::<event::OrganizationDeleted>(components);
    add_schema::<event::MemberEvent>(components);
    add_schema::<event::MemberUpdated>(components);
    let names = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(event::SYSTEM_EVENTS))
        .description(Some(format!(
            "The events the service records itself, in the organization's timeline and in the same transaction as the change; a schedule's firing is `{}<schedule name>` with the schedule's data",
            event::SCHEDULED_PREFIX
        )));
    components
        .schemas
        .insert("SystemEventName".into(), names.into());
    let summary = "\n\nEvery change records a system event with what changed (components `SystemEventName` and `…Data`): `organization.created` (`OrganizationCreatedData`), `organization.updated` (`OrganizationUpdatedData`: `changes` maps each changed field — `name`, `identifiers`, `data.<key>`, `accounts.<field>`, `crm.<field>`, `tenant.<field>`, `address.<field>`, `settings.<key>` — to `{from, to}`, `null` meaning absent; a change too large to carry is `{truncated, from_bytes, to_bytes}`), `organization.deleted` (`OrganizationDeletedData`), `organization.user.added|removed` (`MemberEventData`) and `organization.user.updated` (`MemberUpdatedData`). No event when nothing changed.";
    let description = doc.info.description.get_or_insert_with(String::new);
    description.push_str(summary);
    doc
}

/// A schema and those it refers to, under their names.
fn add_schema<T: utoipa::ToSchema>(components: &mut utoipa::openapi::Components) {
    let mut referred = Vec::new();
    T::schemas(&mut referred);
    for (name, schema) in referred {
        components.schemas.entry(name).or_insert(schema);
    }
    components
        .schemas
        .insert(T::name().into_owned(), T::schema());
}

/// Documents the `Idempotency-Key` header on every POST of a family whose
/// router has the idempotency layer.
pub fn with_idempotency(mut doc: OpenApi) -> OpenApi {
    for item in doc.paths.paths.values_mut() {
        if let Some(operation) = item.post.as_mut() {
            let parameter = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes a retry safe: the same key and request answer the first response and write nothing (24 hours); another request with the key is 422",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(crate::idempotency::MAX_KEY_LEN))
                        .pattern(Some("^[!-~]+$")),
                ))
                .build();
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(parameter);
        }
    }
    doc
}

/// The route that serves a family's document, built on first request and
/// kept for the container's life; only `GET` is served.
pub fn route<S: Clone + Send + Sync + 'static>(build: fn() -> OpenApi) -> MethodRouter<S> {
    let document: Arc<OnceLock<String>> = Arc::default();
    axum::routing::get(move || {
        let document = document.clone();
        async move { serve(&document, build) }
    })
    .fallback(crate::http::wrong_method)
}

fn serve(document: &OnceLock<String>, build: fn() -> OpenApi) -> Response {
    let text = document.get_or_init(|| build().to_json().unwrap_or_else(|_| "{}".into()));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text.clone(),
    )
        .into_response()
}
