//! Cleanup of deleted organizations. Deletions arrive on the cleanup queue;
//! each purges what the service holds for the organization (its claims,
//! what is left of its partition, its logo objects) one bounded step per
//! message, each step sending the next, then files this service's report.
//! A purge whose message is lost (a delete that timed out before
//! announcing it) is announced again by the sweep, every minute. Over HTTP (secret keys):
//! the pending records, one record with every service's report and
//! whether it is complete, and the reports other services file.

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use axum::extract::State;
use axum::routing::{get, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use shared::auth::SecretCaller;
use shared::domain::cleanup::{
    expected_services, Operation, OrganizationCleanupStatus, OrganizationToCleanup, PurgeMessage,
    OWN_SERVICE,
};
use shared::http::Json;
use shared::http::{Path, Query};
use shared::store::{CleanupState, OwnerNameStep, PurgeStep};
use shared::{AppState, Error};
use uuid::Uuid;

/// Every HTTP route of the family.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v2/organization/cleanup"),
    ("GET", "/v2/organization/cleanup/{org_id}"),
    ("PUT", "/v2/organization/cleanup/{org_id}/{service_name}"),
    ("GET", "/v2/organization/cleanup/openapi.json"),
];

/// The family's OpenAPI document, from its handlers and wire types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Organizations: cleanup status API",
        description = "The cleanup of deleted organizations across services: pending records, each record with every service's report, and the reports services file (secret keys)."
    ),
    paths(pending, status, report)
)]
struct Document;

/// The document as served at `/v2/organization/cleanup/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    shared::openapi::finish(<Document as utoipa::OpenApi>::openapi())
}

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// Time kept back from the invocation's deadline to answer in.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(3);

pub fn router(state: AppState) -> Router {
    let state = state.serving("cleanup");
    let routes = Router::new()
        // A static segment: it takes precedence over `/cleanup/{org_id}`.
        .route(
            "/v2/organization/cleanup/openapi.json",
            shared::openapi::route(openapi),
        )
        .route(
            "/v2/organization/cleanup",
            get(pending).fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/cleanup/{org_id}",
            get(status).fallback(shared::http::wrong_method),
        )
        .route(
            "/v2/organization/cleanup/{org_id}/{service_name}",
            put(report).fallback(shared::http::wrong_method),
        )
        .fallback(shared::http::no_route);
    shared::auth::front_door(routes, state, shared::auth::Idempotency::Off)
}

#[derive(Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PendingList {
    pub items: Vec<OrganizationToCleanup>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    #[schema(required = true)]
    pub previous_cursor: Option<String>,
}

/// A cleanup record with every service's report.
#[derive(Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = CleanupStatus)]
pub struct StatusResponse {
    #[serde(flatten)]
    pub record: OrganizationToCleanup,
    /// Every expected service has reported.
    pub complete: bool,
    #[schema(format = DateTime, required = true)]
    pub completed_at: Option<String>,
    pub expected_services: Vec<String>,
    pub services: Vec<OrganizationCleanupStatus>,
}

impl StatusResponse {
    pub fn new(state: CleanupState, configured: Option<&str>) -> Self {
        let expected = expected_services(configured);
        Self {
            complete: state.complete(&expected),
            completed_at: state.completed_at,
            expected_services: expected.into_iter().collect(),
            record: state.record,
            services: state.reports,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

fn org_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw)
        .map_err(|_| Error::not_found(format!("no deleted organization {raw} awaits cleanup")))
}

/// `GET /v2/organization/cleanup`: pending records, oldest first.
#[utoipa::path(get, path = "/v2/organization/cleanup", tag = "cleanup",
    params(("cursor" = Option<String>, Query, description = "`next_cursor` or `previous_cursor` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 100 (20 by default)", minimum = 1, maximum = 100)),
    responses((status = 200, description = "Deleted organizations whose cleanup is not complete, oldest first", body = PendingList)))]
async fn pending(
    State(state): State<AppState>,
    SecretCaller(caller): SecretCaller,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<PendingList>, Error> {
    let limit = match query.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| Error::invalid(format!("limit must be 1 to {MAX_LIMIT}")))?,
    };
    let page = state
        .store
        .pending_cleanups(caller.project_id, limit, query.cursor.as_deref())
        .await?;
    Ok(axum::Json(PendingList {
        items: page.records,
        next_cursor: page.next_cursor,
        previous_cursor: page.previous_cursor,
    }))
}

/// `GET /v2/organization/cleanup/{org_id}`: one Query.
#[utoipa::path(get, path = "/v2/organization/cleanup/{org_id}", tag = "cleanup",
    params(("org_id" = String, Path, description = "The deleted organization's id")),
    responses((status = 200, description = "The cleanup record with every service's report", body = StatusResponse)))]
async fn status(
    State(state): State<AppState>,
    SecretCaller(caller): SecretCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<StatusResponse>, Error> {
    let org = org_id(&id)?;
    let found = state
        .store
        .cleanup_state(caller.project_id, org)
        .await?
        .ok_or_else(|| Error::not_found(format!("no deleted organization {id} awaits cleanup")))?;
    Ok(axum::Json(StatusResponse::new(
        found,
        state.config.cleanup_services.as_deref(),
    )))
}

/// A service's report; `org_id` and `service_name` are optional here, and
/// must agree with the path when given.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CleanupReport)]
struct ReportBody {
    #[serde(default)]
    org_id: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    operations: Vec<Operation>,
}

/// `PUT /v2/organization/cleanup/{org_id}/{service_name}`: a service files
/// (or replaces) its report. Any service may report; only the configured
/// ones count toward completeness.
#[utoipa::path(put, path = "/v2/organization/cleanup/{org_id}/{service_name}", tag = "cleanup",
    params(("org_id" = String, Path, description = "The deleted organization's id"), ("service_name" = String, Path, description = "The reporting service")),
    request_body = ReportBody,
    responses((status = 200, description = "The cleanup record, with the report filed", body = StatusResponse)))]
async fn report(
    State(state): State<AppState>,
    SecretCaller(caller): SecretCaller,
    Path((id, service)): Path<(String, String)>,
    Json(body): Json<ReportBody>,
) -> Result<axum::Json<StatusResponse>, Error> {
    let org = org_id(&id)?;
    if body.org_id.as_ref().is_some_and(|o| *o != id) {
        return Err(Error::invalid("org_id in the body differs from the path"));
    }
    if body.service_name.as_ref().is_some_and(|s| *s != service) {
        return Err(Error::invalid(
            "service_name in the body differs from the path",
        ));
    }
    let configured = state.config.cleanup_services.as_deref();
    let filed = state
        .store
        .file_cleanup_report(
            caller.project_id,
            org,
            &OrganizationCleanupStatus {
                org_id: id,
                service_name: service,
                operations: body.operations,
            },
            &expected_services(configured),
        )
        .await?;
    Ok(axum::Json(StatusResponse::new(filed, configured)))
}

/// What one purge step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Everything is gone and this service has reported (or it had before).
    Done,
    /// A step was done; step `next` goes on (its message is sent).
    Continued { next: u64 },
    /// The step named was done before (a redelivery): nothing was done.
    Stale,
}

/// Purges the sweep announces per shard of the pending purges and sweep.
pub const SWEEP_LIMIT: usize = 25;

/// One bounded step of a deleted organization's purge (`step`: the step
/// its message names; `None` for the deletion's announcement, which runs
/// whatever step is next); the last one, once nothing is left, purges its
/// logo objects and files this service's report. Safe to run any number of
/// times.
pub async fn purge_step(
    state: &AppState,
    project: Uuid,
    org: Uuid,
    step: Option<u64>,
) -> Result<Progress, Error> {
    let state = state.serving_ref("cleanup");
    let state: &AppState = &state;
    let steps = match state.store.purge_step(project, org, step).await? {
        PurgeStep::Advanced { next, .. } => return Ok(Progress::Continued { next }),
        PurgeStep::Stale => return Ok(Progress::Stale),
        PurgeStep::Finished => return Ok(Progress::Done),
        PurgeStep::Emptied { step } => step,
    };
    let objects = purge_logos(state, project, org).await?;
    let configured = state.config.cleanup_services.as_deref();
    state
        .store
        .file_cleanup_report(
            project,
            org,
            &OrganizationCleanupStatus {
                org_id: org.to_string(),
                service_name: OWN_SERVICE.into(),
                operations: vec![
                    Operation {
                        action: Some("delete".into()),
                        resource: Some("dynamodb:organization-partition".into()),
                        extra_info: Some(serde_json::json!({ "steps": steps })),
                    },
                    Operation {
                        action: Some("delete".into()),
                        resource: Some("s3:logos".into()),
                        extra_info: Some(serde_json::json!({ "objects_this_run": objects })),
                    },
                ],
            },
            &expected_services(configured),
        )
        .await?;
    state.store.finish_purge(project, org).await?;
    Ok(Progress::Done)
}

/// Announces again every purge that is due — its delete never announced
/// it (the deleting request timed out first) or a step's continuation was
/// lost — each after giving it another lease, so the next sweep leaves it
/// alone while it runs. `now`: what counts as due. Runs every minute (the
/// function's schedule). Returns how many it announced.
pub async fn sweep(state: &AppState, now: std::time::SystemTime) -> Result<usize, Error> {
    let state = state.serving_ref("cleanup");
    let state: &AppState = &state;
    let Some(queue_url) = state.config.cleanup_queue_url.as_deref() else {
        tracing::debug!("CLEANUP_QUEUE_URL is not set; no purge is announced again");
        return Ok(0);
    };
    let due = state
        .store
        .due_purges(&shared::ids::system_timestamp(now), SWEEP_LIMIT)
        .await?;
    let mut announced = 0;
    for purge in due {
        if !state.store.postpone_purge(&purge).await? {
            continue;
        }
        tracing::info!(org = %purge.org_id, step = purge.step, "a purge lost its message; announcing it again");
        let message = PurgeMessage {
            project_id: purge.project_id,
            org_id: purge.org_id,
            step: Some(purge.step),
        };
        shared::events::send_purge_step(&state.aws.sqs, queue_url, &message).await?;
        announced += 1;
    }
    Ok(announced)
}

/// Brings the last name of each renamed user onto the organizations the
/// user owns (what CRM lists ordered by `owner.lastName` sort by): each
/// due refresh job (at most [`SWEEP_LIMIT`] per shard) in steps of
/// [`shared::store::OWNER_NAME_PAGE`] organizations, the jobs in turn,
/// until none is left or `deadline` passes; a job not finished stays due
/// for the next sweep. Runs every minute, after the purge sweep. Returns
/// how many organizations it examined.
pub async fn refresh_owner_names(
    state: &AppState,
    now: std::time::SystemTime,
    deadline: Instant,
) -> Result<usize, Error> {
    let state = state.serving_ref("cleanup");
    let state: &AppState = &state;
    let mut jobs = state
        .store
        .due_owner_names(&shared::ids::system_timestamp(now), SWEEP_LIMIT)
        .await?;
    let mut examined = 0;
    while !jobs.is_empty() && Instant::now() < deadline {
        let mut going = Vec::with_capacity(jobs.len());
        for mut job in jobs {
            if Instant::now() >= deadline {
                break;
            }
            match state
                .store
                .owner_name_step(&mut job, shared::store::OWNER_NAME_PAGE)
                .await?
            {
                OwnerNameStep::Continued { examined: n } => {
                    examined += n;
                    going.push(job);
                }
                OwnerNameStep::Done { examined: n } => examined += n,
                OwnerNameStep::Stale => {}
            }
        }
        jobs = going;
    }
    Ok(examined)
}

/// Deletes every object under the organization's logo prefix.
async fn purge_logos(state: &AppState, project: Uuid, org: Uuid) -> Result<usize, Error> {
    let Some(bucket) = state.config.logo_bucket.as_deref() else {
        return Ok(0);
    };
    let prefix = format!("logos/{project}/{org}/");
    let mut deleted = 0;
    loop {
        let listed = state
            .aws
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&prefix)
            .send()
            .await
            .map_err(|e| Error::Storage(format!("listing logos: {e}")))?;
        let keys: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        if keys.is_empty() {
            return Ok(deleted);
        }
        for key in &keys {
            state
                .aws
                .s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| Error::Storage(format!("deleting {key}: {e}")))?;
            deleted += 1;
        }
    }
}

async fn handle_message(state: &AppState, message: &SqsMessage) -> Result<Progress, Error> {
    let body = message.body.as_deref().unwrap_or_default();
    let step: PurgeMessage = match serde_json::from_str(body) {
        Ok(step) => step,
        Err(e) => {
            // Not a purge step: retrying cannot help; drop it loudly.
            tracing::error!(error = %e, "a cleanup message that is not a purge step was dropped");
            return Ok(Progress::Done);
        }
    };
    let progress = purge_step(state, step.project_id, step.org_id, step.step).await?;
    if let Progress::Continued { next } = progress {
        let next = PurgeMessage {
            step: Some(next),
            ..step
        };
        match state.config.cleanup_queue_url.as_deref() {
            // A lost continuation is the sweep's: the purge is due again
            // one lease after this step.
            Some(queue_url) => {
                if let Err(e) =
                    shared::events::send_purge_step(&state.aws.sqs, queue_url, &next).await
                {
                    tracing::error!(org = %next.org_id, error = %e,
                        "the purge's next step was not sent; the sweep sends it");
                }
            }
            None => tracing::warn!("CLEANUP_QUEUE_URL is not set; the purge's next step waits"),
        }
    }
    Ok(progress)
}

/// Handles a batch of purge steps, one bounded step per message, each
/// sending the next; a message not handled (time ran out before it, or a
/// failure) is reported back so SQS delivers it again.
pub async fn handle_deletions(
    state: &AppState,
    event: SqsEvent,
    deadline: Instant,
) -> SqsBatchResponse {
    let state = state.serving_ref("cleanup");
    let state: &AppState = &state;
    let mut failures = Vec::new();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let outcome = if Instant::now() >= deadline {
            tracing::info!(message_id = %id, "no time left for a purge step; it is delivered again");
            None
        } else {
            match handle_message(state, message).await {
                Ok(_) => Some(()),
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "purge step failed");
                    None
                }
            }
        };
        if outcome.is_none() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
