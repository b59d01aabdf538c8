//! One scenario per route (and per notable variant of a route): the fixture
//! it needs, made before measuring, and the request of iteration `i`.
//! Routes that consume what they touch (deletes, leaves) get one fixture
//! per iteration.

mod accounts;
mod cleanup;
mod client;
mod crm;
mod segments;
mod tenant;

use std::time::Instant;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use shared::store::CreatedProject;
use shared::AppState;
use tower::ServiceExt;

use crate::meter::Meter;

/// Requests made before the measured ones (connections, caches).
pub const WARM_UP: usize = 3;

pub type MakeRequest = Box<dyn Fn(usize) -> Request<Body> + Send + Sync>;

pub struct Scenario {
    pub family: &'static str,
    pub method: &'static str,
    /// The route as its family's `ROUTES` names it.
    pub route: &'static str,
    /// The fewest DynamoDB round trips the operation can take.
    pub minimum: usize,
    /// What the round trips are, and why any above the minimum.
    pub why: &'static str,
    pub router: Router,
    pub request: MakeRequest,
}

/// Collects one family's scenarios.
pub struct Family {
    name: &'static str,
    router: Router,
    scenarios: Vec<Scenario>,
}

impl Family {
    pub fn new(name: &'static str, router: &Router) -> Self {
        Self {
            name,
            router: router.clone(),
            scenarios: Vec::new(),
        }
    }

    /// A scenario on the family's router.
    pub fn add(
        &mut self,
        method: &'static str,
        route: &'static str,
        minimum: usize,
        why: &'static str,
        request: MakeRequest,
    ) {
        let router = self.router.clone();
        self.add_on(&router, method, route, minimum, why, request);
    }

    /// A scenario on another router of the family (a state configured
    /// for it).
    pub fn add_on(
        &mut self,
        router: &Router,
        method: &'static str,
        route: &'static str,
        minimum: usize,
        why: &'static str,
        request: MakeRequest,
    ) {
        self.scenarios.push(Scenario {
            family: self.name,
            method,
            route,
            minimum,
            why,
            router: router.clone(),
            request,
        });
    }

    pub fn done(self) -> Vec<Scenario> {
        self.scenarios
    }
}

/// What every family's fixtures start from: a project and its keys.
pub struct Ctx {
    pub state: AppState,
    pub project: CreatedProject,
    /// Requests each scenario will make (warm-up included).
    pub n: usize,
}

impl Ctx {
    pub fn secret(&self) -> String {
        self.project.secret_key.clone()
    }

    pub fn publishable(&self) -> String {
        self.project.publishable_key.clone()
    }

    /// A session token for a user's external id (local HS256 tokens).
    pub fn session(&self, user: &str, org: Option<&str>) -> String {
        let claims = shared::auth::SessionClaims {
            sub: user.into(),
            project_id: self.project.project_id,
            org_id: org.map(str::to_owned),
            exp: time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 3600,
        };
        let secret = self
            .project
            .dev_token_secret
            .as_deref()
            .expect("the bench project is made for dev sessions");
        shared::auth::issue_session_token(&claims, secret).expect("a session token")
    }
}

/// A JSON request with a bearer credential.
pub fn request(
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path);
    if let Some(b) = bearer {
        r = r.header("authorization", format!("Bearer {b}"));
    }
    if body.is_some() {
        r = r.header("content-type", "application/json");
    }
    r.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("a valid request")
}

/// Sends a fixture request (not measured) and returns its JSON body.
pub async fn setup(router: &Router, request: Request<Body>) -> Value {
    let what = format!("{} {}", request.method(), request.uri());
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "fixture {what}: {status} {body}");
    body
}

/// Every scenario, fixtures made.
pub async fn all(state: &AppState, n: usize, only: Option<&str>) -> Vec<Scenario> {
    let project = state
        .store
        .create_dev_project("bench")
        .await
        .expect("creating the bench project");
    let ctx = Ctx {
        state: state.clone(),
        project,
        n,
    };
    let wanted = |family: &str| only.is_none_or(|o| o == family);
    let mut all = Vec::new();
    if wanted("client") {
        all.extend(client::scenarios(&ctx).await);
    }
    if wanted("accounts") {
        all.extend(accounts::scenarios(&ctx).await);
    }
    if wanted("crm") {
        all.extend(crm::scenarios(&ctx).await);
    }
    if wanted("tenant") {
        all.extend(tenant::scenarios(&ctx).await);
    }
    if wanted("cleanup") {
        all.extend(cleanup::scenarios(&ctx).await);
    }
    if wanted("segments") {
        all.extend(segments::scenarios(&ctx).await);
    }
    all
}

/// Every route of every family has a scenario (a new route without one
/// stops the run).
pub fn check_coverage(all: &[Scenario]) {
    let families: [(&str, &[(&str, &str)]); 6] = [
        ("client", ::client::ROUTES),
        ("accounts", ::accounts::ROUTES),
        ("crm", ::crm::ROUTES),
        ("tenant", ::tenant::ROUTES),
        ("cleanup", ::cleanup::ROUTES),
        ("segments", ::segments::ROUTES),
    ];
    let mut missing = Vec::new();
    for (family, routes) in families {
        for (method, route) in routes {
            let covered = all
                .iter()
                .any(|s| s.family == family && s.method == *method && s.route == *route);
            if !covered {
                missing.push(format!("{family} {method} {route}"));
            }
        }
    }
    assert!(missing.is_empty(), "routes without a scenario: {missing:?}");
}

/// Throughput of one processor instance for batches of 10 events.
pub struct Throughput {
    pub events: usize,
    pub seconds: f64,
    pub writes_per_event: f64,
    pub round_trips_per_event: f64,
    pub write_units_per_event: f64,
}

pub async fn processor_throughput(state: &AppState, meter: &Meter) -> Throughput {
    let ctx_project = state
        .store
        .create_project("bench-processor")
        .await
        .expect("a project");
    let client = ::client::router(state.clone());
    let org = setup(
        &client,
        request(
            "POST",
            "/api/client/organizations",
            Some(&ctx_project.secret_key),
            Some(serde_json::json!({"identifier": [{"external_id": "busy"}], "name": "Busy"})),
        ),
    )
    .await;
    let org_id: uuid::Uuid = org["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an organization id");
    let batches = 30;
    let mut events = 0;
    meter.take();
    let started = Instant::now();
    for b in 0..batches {
        let mut event = SqsEvent::default();
        event.records = (0..10)
            .map(|i| {
                let queued = shared::events::QueuedEvent {
                    id: uuid::Uuid::now_v7(),
                    project_id: ctx_project.project_id,
                    organization_id: Some(org_id),
                    matcher: None,
                    match_after: None,
                    name: format!("bench.event_{}", (b + i) % 3),
                    data: serde_json::json!({"batch": b, "i": i})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    created_at: shared::ids::now(),
                };
                let mut m = SqsMessage::default();
                m.message_id = Some(queued.id.to_string());
                m.body = Some(serde_json::to_string(&queued).expect("an event"));
                m
            })
            .collect();
        events += event.records.len();
        let response = ::processor::handle(state, event).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "the processor failed events"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let calls = meter.take();
    let calls: Vec<_> = calls
        .into_iter()
        .filter(|c| c.service == "DynamoDB")
        .collect();
    let writes = calls.iter().filter(|c| c.write_units > 0.0).count();
    Throughput {
        events,
        seconds,
        writes_per_event: writes as f64 / events as f64,
        round_trips_per_event: calls.len() as f64 / events as f64,
        write_units_per_event: calls.iter().map(|c| c.write_units).sum::<f64>() / events as f64,
    }
}
