//! `make bench-scale` (`bench scale`): how the cost of every list, search,
//! evaluate and match route, the processor's `match` fan-out, a scheduler
//! tick and an organization's purge grows with the project. One project is
//! seeded in-process through the store's own write paths — N organizations
//! (`SCALE_NS`, default 1,000, 10,000 and 100,000, grown in place from one
//! N to the next) and one large organization (10,000 members, 100,000
//! timeline events, 10,000 notes; `SCALE_LARGE` scales it, e.g. `0.01`) —
//! and each row is measured at every N: items read (`ScannedCount` and the
//! items returned by key reads), read units, round trips and wall time.
//! The result is the "Scale" section of BENCHMARKS.md.
//!
//! Every organization create is one transaction (record, count,
//! anniversary, event), so the seeding drives the store's normal path
//! concurrently instead of writing items of its own: the items are exactly
//! those the service writes.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use shared::domain::event::{Actor, Credential};
use shared::domain::{Data, IdentifierKey, IdentifierSpec, ProfileUpsert, Scope};
use shared::store::timeline::{Delivery, TimelineEvent};
use shared::AppState;
use tower::ServiceExt;
use uuid::Uuid;

use crate::meter::Meter;
use crate::scenarios::{request, Ctx};

/// The goal: at the largest N, at most this times the N = 1,000 figure.
pub const GOAL: f64 = 1.10;
const PLANS: [&str; 3] = ["enterprise", "free", "pro"];
/// Organizations with `tier: gold` (the processor's `match` selects them):
/// the same few at every N, so its writes stay constant and only its reads
/// can grow.
const GOLD: usize = 5;
/// Concurrent writers while seeding.
const WRITERS: usize = 16;

/// Writers into one organization (its members, events and notes): its
/// event sequence orders them, so more writers only wait on each other.
const ONE_ORGANIZATION_WRITERS: usize = 2;
/// The session user (a member of the large organization).
const SESSION_USER: &str = "scale-session";
/// One timeline event in this many carries the rare name `?name=` asks for.
const RARE_EVERY: usize = 1000;
const RARE: &str = "scale.rare";

/// The large organization's size.
#[derive(Clone, Copy, Debug)]
pub struct Large {
    pub members: usize,
    pub events: usize,
    pub notes: usize,
    pub settings: usize,
}

impl Large {
    fn scaled(factor: f64) -> Self {
        let at = |n: f64| ((n * factor).round() as usize).max(1);
        Self {
            members: at(10_000.0),
            events: at(100_000.0),
            notes: at(10_000.0),
            settings: 50,
        }
    }
}

/// One row's figures at one N.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub items_read: f64,
    pub read_units: f64,
    pub trips: f64,
    /// The fastest of the measured runs.
    pub wall: Duration,
    /// A run that did not succeed: its status and answer.
    pub failed: Option<String>,
}

/// One measured route or step, its figures at each N.
pub struct Row {
    pub name: String,
    /// The most items it answers (its page), when it answers a page.
    pub page: Option<usize>,
    /// The code path that reads more as the project grows (shown when the
    /// row misses the goal).
    pub why: &'static str,
    pub at: Vec<(usize, Figures)>,
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    let mut ns: Vec<usize> = std::env::var(name)
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.trim().replace('_', "").parse().ok())
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec());
    ns.sort_unstable();
    ns.dedup();
    ns
}

fn key(external_id: &str) -> IdentifierKey {
    IdentifierKey::parse(None, external_id).expect("a valid identifier")
}

fn spec(key: IdentifierKey) -> IdentifierSpec {
    IdentifierSpec {
        key,
        metadata: None,
    }
}

fn data(v: Value) -> Data {
    v.as_object().cloned().unwrap_or_default()
}

/// Tries of one seeding job before the run gives up.
const MAX_SEED_ATTEMPTS: u64 = 60;

/// Runs `job(i)` for every `i` in `range` on [`WRITERS`] concurrent tasks,
/// retrying a failed job (a conflicting transaction) up to
/// [`MAX_SEED_ATTEMPTS`] times.
async fn concurrently<F, Fut>(what: &str, range: std::ops::Range<usize>, job: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), shared::Error>> + Send,
{
    concurrently_with(what, WRITERS, range, job).await
}

/// [`concurrently`] on `writers` tasks.
async fn concurrently_with<F, Fut>(
    what: &str,
    writers: usize,
    range: std::ops::Range<usize>,
    job: F,
) where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), shared::Error>> + Send,
{
    let total = range.len();
    if total == 0 {
        return;
    }
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(range.start));
    let job = Arc::new(job);
    let end = range.end;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (next, job) = (next.clone(), job.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return;
                }
                let mut attempt = 0;
                loop {
                    match job(i).await {
                        Ok(()) => break,
                        // A refusal of the request itself is a bug here, not a race.
                        Err(e @ shared::Error::Unprocessable(_)) => panic!("seeding {i}: {e}"),
                        // Writers into one organization (its members, its
                        // events) meet on its counters; the emulator cancels
                        // them as DynamoDB does, so they retry, spread out.
                        Err(e) if attempt < MAX_SEED_ATTEMPTS => {
                            attempt += 1;
                            eprintln!("bench-scale: retrying {i}: {e}");
                            let spread = (i as u64 * 7919 + attempt * 104_729) % 100;
                            tokio::time::sleep(Duration::from_millis(
                                20 * attempt.min(25) + spread,
                            ))
                            .await;
                        }
                        Err(e) => panic!("seeding {i} failed: {e}"),
                    }
                }
            }
        });
    }
    let progress = {
        let next = next.clone();
        let what = what.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let done = next.load(Ordering::Relaxed).min(end);
                eprintln!("bench-scale: {what}: {done} of {end}");
            }
        })
    };
    while let Some(joined) = tasks.join_next().await {
        joined.expect("a seeding task panicked");
    }
    progress.abort();
    eprintln!(
        "bench-scale: {what}: {total} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn seed_organizations(state: &AppState, project: Uuid, range: std::ops::Range<usize>) {
    let store = state.store.clone();
    concurrently("organizations", range, move |i| {
        let store = store.clone();
        async move {
            let mut d = json!({"plan": PLANS[i % PLANS.len()], "seats": i % 50});
            if i < GOLD {
                d["tier"] = json!("gold");
            }
            let upsert = ProfileUpsert::new(
                vec![spec(key(&format!("scale-o{i}")))],
                Some(format!("Org {i:06}")),
                Some(data(d)),
            )?;
            store
                .upsert_organization(project, &upsert, Scope::Project)
                .await
                .map(|_| ())
        }
    })
    .await;
}

/// The large organization, through the store's own paths: memberships
/// (users created with them), timeline events (the processor's batched
/// write), notes, settings.
async fn seed_large(state: &AppState, project: Uuid, large: Large) -> Uuid {
    let org = state
        .store
        .upsert_organization(
            project,
            &ProfileUpsert::new(
                vec![spec(key("scale-large"))],
                Some("Large".into()),
                Some(data(json!({"plan": "enterprise"}))),
            )
            .expect("an upsert"),
            Scope::Project,
        )
        .await
        .expect("the large organization")
        .record
        .id;
    let store = state.store.clone();
    concurrently_with(
        "members",
        ONE_ORGANIZATION_WRITERS,
        0..large.members,
        move |j| {
            let store = store.clone();
            async move {
                let user = if j == 0 {
                    IdentifierKey::session(SESSION_USER)?
                } else {
                    key(&format!("scale-m{j}"))
                };
                let role = if j % 10 == 0 { "admin" } else { "viewer" };
                store
                    .add_member(
                        project,
                        &[key("scale-large")],
                        &[spec(user)],
                        Some(&data(json!({"role": role}))),
                        Scope::Project,
                    )
                    .await
                    .map(|_| ())
            }
        },
    )
    .await;
    let store = state.store.clone();
    let batches = large.events.div_ceil(10);
    let total = large.events;
    concurrently_with(
        "timeline events (batches of 10)",
        ONE_ORGANIZATION_WRITERS,
        0..batches,
        move |b| {
            let store = store.clone();
            async move {
                let events: Vec<TimelineEvent> = (b * 10..(b * 10 + 10).min(total))
                    .map(|e| TimelineEvent {
                        id: Uuid::now_v7(),
                        name: if e % RARE_EVERY == 0 {
                            RARE.into()
                        } else {
                            format!("scale.event_{}", e % 5)
                        },
                        data: data(json!({"n": e})),
                        created_at: shared::ids::now(),
                        origin: "custom".into(),
                    })
                    .collect();
                let deliveries: Vec<Delivery> = events
                    .iter()
                    .map(|event| Delivery {
                        project,
                        org,
                        event,
                    })
                    .collect();
                for verdict in store.record_events(&deliveries).await {
                    verdict?;
                }
                Ok(())
            }
        },
    )
    .await;
    let store = state.store.clone();
    concurrently_with(
        "notes",
        ONE_ORGANIZATION_WRITERS,
        0..large.notes,
        move |k| {
            let store = store.clone();
            async move {
                let change = shared::domain::crm::NoteChange {
                    title: shared::domain::address::Change::Set(format!("Note {k}")),
                    description: shared::domain::address::Change::Set("seeded".into()),
                    // The CRM's wire layer stores a category IRI's id.
                    category: shared::domain::address::Change::Set((k % 3 + 1).to_string()),
                    ..Default::default()
                };
                let note = change
                    .apply(None, project, org, &shared::ids::now())
                    .map_err(|e| shared::Error::Internal(e.to_string()))?
                    .ok_or_else(|| shared::Error::Internal("an unchanged note".into()))?;
                store.create_note(project, org, note).await.map(|_| ())
            }
        },
    )
    .await;
    // The purge fixtures' members: made here, so the project's users are
    // the same at every N (the user-rule rows read them all).
    let store = state.store.clone();
    concurrently("purge fixture users", 0..large.members, move |j| {
        let store = store.clone();
        async move {
            let upsert =
                ProfileUpsert::new(vec![spec(key(&format!("scale-purge-user{j}")))], None, None)?;
            store
                .upsert_user(project, &upsert, Scope::Project)
                .await
                .map(|_| ())
        }
    })
    .await;
    for k in 0..large.settings {
        state
            .store
            .put_setting(project, org, &format!("scale_setting_{k}"), &json!(k))
            .await
            .expect("a setting");
    }
    org
}

/// Measures `run` `iterations` times: the figures of the calls it made
/// (mean per run) and its fastest wall time.
async fn measure<F, Fut>(meter: &Meter, iterations: usize, warm: bool, mut run: F) -> Figures
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut f = Figures {
        wall: Duration::MAX,
        ..Figures::default()
    };
    let runs = iterations.max(1);
    // `warm`: one unmeasured run first, so the container's caches (the
    // session's user, the feature document) are warm, as in a serving
    // container (not for a step that consumes its input, like a purge).
    if warm {
        let _ = run().await;
    }
    for _ in 0..runs {
        meter.take();
        let started = Instant::now();
        let outcome = run().await;
        let took = started.elapsed();
        let calls = meter.take();
        let dynamodb: Vec<_> = calls.iter().filter(|c| c.service == "DynamoDB").collect();
        f.items_read += dynamodb.iter().map(|c| c.items_read as f64).sum::<f64>();
        f.read_units += dynamodb.iter().map(|c| c.read_units).sum::<f64>();
        f.trips += dynamodb.len() as f64;
        f.wall = f.wall.min(took);
        if let Err(e) = outcome {
            f.failed = Some(e);
        }
    }
    let n = runs as f64;
    f.items_read /= n;
    f.read_units /= n;
    f.trips /= n;
    f
}

async fn send(router: &Router, r: axum::http::Request<axum::body::Body>) -> Result<(), String> {
    let response = router.clone().oneshot(r).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if status.is_success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&body);
        Err(format!(
            "{status} {}",
            text.chars().take(160).collect::<String>()
        ))
    }
}

/// A route measured at every N.
struct RouteRow {
    name: &'static str,
    page: Option<usize>,
    why: &'static str,
    router: Router,
    method: &'static str,
    path: String,
    bearer: String,
    body: Option<Value>,
}

/// What the rows need from the seeded project.
struct Fixture {
    ctx: Ctx,
    large: Uuid,
    /// Members of each purge fixture (the large organization's count).
    purge_members: usize,
}

fn routes(state: &AppState, f: &Fixture) -> Vec<RouteRow> {
    let accounts = ::accounts::router(state.clone());
    let crm = ::crm::router(state.clone());
    let tenant = ::tenant::router(state.clone());
    let cleanup = ::cleanup::router(state.clone());
    let segments = ::segments::router(state.clone());
    let key = f.ctx.secret();
    let large = f.large;
    let session = f.ctx.session(SESSION_USER, Some(&large.to_string()));
    let plan_is = |plan: &str| json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": plan});
    let gold = json!({"type": "string", "group": "organization", "path": ".tier", "operator": "=", "value": "gold"});
    let row =
        |name, page, why, router: &Router, method, path: String, bearer: &str, body| RouteRow {
            name,
            page,
            why,
            router: router.clone(),
            method,
            path,
            bearer: bearer.to_owned(),
            body,
        };
    // What each CRM row reads (`store/org_index.rs` `organization_list`),
    // named in the table when it reads more than its page.
    const CRM_CREATED: &str = "the creation index from its start, the page's records (each checked to exist), the 16 count shards for `totalItems`";
    const CRM_OFFSET: &str = "a page number reads its offset: every entry before the page and its record (checked, so a stale entry never shifts a page), bounded by `limits::MAX_PAGE_OFFSET` (10,000 items)";
    const CRM_ORDER: &str = "that order's index from its start and the page's records, the count shards for `totalItems`";
    const CRM_AFTER: &str = "the creation index from the bound; no count answers a range, so `totalItems` counts entries up to `COUNT_AHEAD_PAGES` (10) pages past the page's start";
    const CRM_ARCHIVED: &str = "the creation index with each row's `archivedAt` checked; `totalItems` from the count shards minus the archived count shards";
    const CRM_VALUE: &str = "one Query of the value's entries (`F#field#value`): its reads follow the matches, not the project";
    const CRM_WORDS: &str = "the word index from the search's longest word, each row's record checked against the whole search; `totalItems` counted up to `COUNT_AHEAD_PAGES` (10) pages ahead";
    // The organization row measures the first page of a gate that admits
    // few organizations (the request examines its 100 users either way).
    const EVALUATE: &str = "`evaluate` (`store/segments.rs` `evaluate_segment`) examines at most 100 users of the user index per request, one memberships Query each: its reads follow the users examined, so they grow only while the project has fewer than 100 users";
    vec![
        row("accounts `GET /v1/organizations?limit=20` (key)", Some(20), "", &accounts, "GET", "/v1/organizations?limit=20".into(), &key, None),
        row("accounts `GET /v1/organizations?limit=20` (session)", Some(20), "a session's page reads its user's memberships from the cursor and their records; its count is the user's counter (one GetItem)", &accounts, "GET", "/v1/organizations?limit=20".into(), &session, None),
        row("accounts `GET …/memberships?limit=20` (large organization)", Some(20), "", &accounts, "GET", format!("/v1/organizations/{large}/memberships?limit=20"), &key, None),
        row("accounts `GET …/events?limit=20` (large organization)", Some(20), "", &accounts, "GET", format!("/v1/organizations/{large}/events?limit=20"), &key, None),
        row("accounts `GET …/events?name=…&limit=20` (large organization, 1 event in 1,000)", Some(20), "", &accounts, "GET", format!("/v1/organizations/{large}/events?name={RARE}&limit=20"), &key, None),
        row("crm `GET /organizations?page=1`", Some(15), CRM_CREATED, &crm, "GET", "/organizations?page=1".into(), &key, None),
        row("crm `GET /organizations?page=20`", Some(15), CRM_OFFSET, &crm, "GET", "/organizations?page=20".into(), &key, None),
        row("crm `GET /organizations?order[title.sort]=asc`", Some(15), CRM_ORDER, &crm, "GET", "/organizations?order%5Btitle.sort%5D=asc".into(), &key, None),
        row("crm `GET /organizations?order[owner.lastName]=desc`", Some(15), CRM_ORDER, &crm, "GET", "/organizations?order%5Bowner.lastName%5D=desc".into(), &key, None),
        row("crm `GET /organizations?createdAt[after]=…`", Some(15), CRM_AFTER, &crm, "GET", "/organizations?createdAt%5Bafter%5D=2020-01-01T00:00:00Z".into(), &key, None),
        row("crm `GET /organizations?exists[archivedAt]=false`", Some(15), CRM_ARCHIVED, &crm, "GET", "/organizations?exists%5BarchivedAt%5D=false".into(), &key, None),
        row("crm `GET /organizations?tags.id=…` (no match)", Some(15), CRM_VALUE, &crm, "GET", format!("/organizations?tags.id={}", Uuid::nil()), &key, None),
        row("crm `GET /organizations?owner.id=…` (no match)", Some(15), CRM_VALUE, &crm, "GET", format!("/organizations?owner.id={}", Uuid::nil()), &key, None),
        row("crm `GET /organizations?segments.uuid=…` (no match)", Some(15), CRM_VALUE, &crm, "GET", format!("/organizations?segments.uuid={}", Uuid::nil()), &key, None),
        row("crm `GET /organizations?emailAddresses.email=…` (no match)", Some(15), CRM_VALUE, &crm, "GET", "/organizations?emailAddresses.email=nobody%40example.com".into(), &key, None),
        row("crm `GET /organizations?identifiers=…` (no match)", Some(15), CRM_VALUE, &crm, "GET", "/organizations?identifiers=nobody.example.com".into(), &key, None),
        row("crm `GET /organizations?q=Org 0000`", Some(15), CRM_WORDS, &crm, "GET", "/organizations?q=Org%200000".into(), &key, None),
        row("crm `GET /organizations?page=1` (session)", Some(15), "a session's list reads its user's memberships (all of them) and the page's records", &crm, "GET", "/organizations?page=1".into(), &session, None),
        row("crm `GET /organizations/{id}/notes` (large organization)", Some(30), "`store/notes.rs` `notes_page` reads the count and the notes up to the page (offset + page)", &crm, "GET", format!("/organizations/{large}/notes"), &key, None),
        row("tenant `GET /v2/organization/{id}/settings` (large organization)", Some(200), "`organization_with_settings` reads the organization's whole partition prefix of settings (at most 200 by the limits)", &tenant, "GET", format!("/v2/organization/{large}/settings"), &key, None),
        row("tenant `GET /v2/organization/current` (session)", Some(1), "", &tenant, "GET", "/v2/organization/current".into(), &session, None),
        row("cleanup `GET /v2/organization/cleanup`", Some(100), "", &cleanup, "GET", "/v2/organization/cleanup".into(), &key, None),
        row("segments `evaluate`, organization condition (`tier`, 5 organizations)", Some(10), EVALUATE, &segments, "POST", "/api/admin/segments/evaluate".into(), &key, Some(json!({"rule": gold, "limit": 10}))),
        row("segments `evaluate`, user condition (no user matches)", Some(10), "a rule on users reads one Query of 100 users of the index per request: it grows only while the project has fewer than 100 users", &segments, "POST", "/api/admin/segments/evaluate".into(), &key, Some(json!({"rule": {"type": "string", "group": "user", "path": ".role", "operator": "=", "value": "none"}, "limit": 10}))),
        row("segments `match`, organization condition (a member of the large organization)", Some(1), "", &segments, "POST", "/api/admin/segments/match".into(), &key, Some(json!({"user": {"identifier": [{"external_id": "scale-m1"}]}, "rule": plan_is("enterprise")}))),
    ]
}

/// Every row at one N.
async fn measure_all(
    state: &AppState,
    meter: &Meter,
    f: &Fixture,
    n: usize,
    iterations: usize,
) -> Vec<(String, Option<usize>, &'static str, Figures)> {
    let mut out = Vec::new();
    for r in routes(state, f) {
        eprintln!("bench-scale: N = {n}: {}", r.name);
        let figures = measure(meter, iterations, true, || {
            send(
                &r.router,
                request(r.method, &r.path, Some(&r.bearer), r.body.clone()),
            )
        })
        .await;
        out.push((r.name.to_owned(), r.page, r.why, figures));
    }
    let project = f.ctx.project.project_id;

    // One step of the fan-out: the message the intake queues. Its next
    // steps are left in the bench's queue, unmeasured.
    eprintln!("bench-scale: N = {n}: processor match");
    let figures = measure(meter, iterations, true, || async {
        let queued = shared::events::QueuedEvent {
            id: Uuid::now_v7(),
            project_id: project,
            organization_id: None,
            matcher: Some(data(json!({"tier": "gold"}))),
            match_after: None,
            name: "scale.matched".into(),
            data: Data::new(),
            created_at: shared::ids::now(),
        };
        let mut m = SqsMessage::default();
        m.message_id = Some(queued.id.to_string());
        m.body = Some(serde_json::to_string(&queued).map_err(|e| e.to_string())?);
        let mut event = SqsEvent::default();
        event.records = vec![m];
        let response = ::processor::handle(state, event).await;
        if response.batch_item_failures.is_empty() {
            Ok(())
        } else {
            Err("the processor failed the event".into())
        }
    })
    .await;
    out.push((
        format!("processor `match` fan-out ({GOLD} organizations match)"),
        Some(GOLD),
        "one step of the fan-out reads `FAN_OUT_STEP` (500) organizations of the index (`organizations_matching`, `store/organizations.rs`) and queues the next: below 500 organizations it reads the whole project",
        figures,
    ));

    eprintln!("bench-scale: N = {n}: scheduler tick");
    // One tick first, unmeasured: what the seeding made due is fired, so
    // the measured ticks show the steady state at this N. All at the same
    // present, so each reads the same minutes (from the cursor, two behind,
    // to now: 3 minutes of 16 shards) whatever the time between them.
    let present = time::OffsetDateTime::now_utc();
    ::scheduler::tick_at(state, present)
        .await
        .expect("a scheduler tick");
    let figures = measure(meter, iterations, false, || async {
        ::scheduler::tick_at(state, present)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    out.push((
        "scheduler tick".into(),
        None,
        "a tick reads the minutes from its cursor to the present (16 shards each, at once) and fires what is due, within its budget",
        figures,
    ));

    eprintln!("bench-scale: N = {n}: purge");
    // Each step is measured; the row shows the costliest (a step's bound)
    // and how many steps the purge took.
    let mut purged = Figures {
        wall: Duration::MAX,
        ..Figures::default()
    };
    let mut steps = 0;
    for i in 0..iterations.max(1) {
        let org = purge_fixture(state, project, n, i, f.purge_members).await;
        steps = 0;
        loop {
            let progress = std::cell::Cell::new(None);
            let step = measure(meter, 1, false, || async {
                match ::cleanup::purge_step(state, project, org, None).await {
                    Ok(done) => {
                        progress.set(Some(done));
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            })
            .await;
            steps += 1;
            if step.items_read > purged.items_read || purged.wall == Duration::MAX {
                purged.items_read = step.items_read;
                purged.read_units = step.read_units;
                purged.trips = step.trips;
                purged.wall = step.wall;
            }
            purged.failed = purged.failed.or(step.failed);
            match progress.get() {
                Some(::cleanup::Progress::Continued { .. }) if steps < MAX_PURGE_STEPS => {}
                Some(::cleanup::Progress::Done) => break,
                other => {
                    purged.failed = Some(format!("the purge stopped at step {steps}: {other:?}"));
                    break;
                }
            }
        }
    }
    out.push((
        format!(
            "cleanup purge, its costliest step ({} members, {PURGE_IDENTIFIERS} identifiers, {PURGE_DOMAINS} domains: {steps} steps)",
            f.purge_members
        ),
        None,
        "",
        purged,
    ));
    out
}

const PURGE_NOTES: usize = 10;
/// The limits of one organization (README "Limits").
const PURGE_IDENTIFIERS: usize = 50;
const PURGE_DOMAINS: usize = 50;
/// A purge that has not finished after this many steps is reported failed.
const MAX_PURGE_STEPS: usize = 10_000;

/// An organization with members and notes, deleted (the purge's input).
async fn purge_fixture(
    state: &AppState,
    project: Uuid,
    n: usize,
    i: usize,
    members: usize,
) -> Uuid {
    let name = format!("scale-purge-{n}-{i}");
    // At most 20 identifiers a request: the name, and 19 more each time.
    let more: Vec<String> = (1..PURGE_IDENTIFIERS)
        .map(|k| format!("{name}-id{k}"))
        .collect();
    let mut org = None;
    for chunk in more.chunks(19) {
        let mut identifiers = vec![spec(key(&name))];
        identifiers.extend(chunk.iter().map(|id| spec(key(id))));
        let upsert = ProfileUpsert::new(identifiers, Some(name.clone()), None).expect("an upsert");
        let made = state
            .store
            .upsert_organization(project, &upsert, Scope::Project)
            .await
            .expect("the purge fixture");
        org = Some(made.record.id);
    }
    let org = org.expect("the purge fixture");
    let store = state.store.clone();
    let org_key = key(&name);
    concurrently_with(
        "purge fixture members",
        ONE_ORGANIZATION_WRITERS,
        0..members,
        move |j| {
            let (store, org_key) = (store.clone(), org_key.clone());
            async move {
                store
                    .add_member(
                        project,
                        &[org_key],
                        // The same users every time: the project's users stay constant.
                        &[spec(key(&format!("scale-purge-user{j}")))],
                        None,
                        Scope::Project,
                    )
                    .await
                    .map(|_| ())
            }
        },
    )
    .await;
    for k in 0..PURGE_DOMAINS {
        state
            .store
            .add_domain(project, org, &format!("{name}-{k}.example.com"))
            .await
            .expect("a domain");
    }
    for k in 0..PURGE_NOTES {
        let change = shared::domain::crm::NoteChange {
            title: shared::domain::address::Change::Set(format!("Note {k}")),
            description: shared::domain::address::Change::Set("purged".into()),
            category: shared::domain::address::Change::Set("1".into()),
            ..Default::default()
        };
        let note = change
            .apply(None, project, org, &shared::ids::now())
            .expect("a valid note")
            .expect("a new note");
        state
            .store
            .create_note(project, org, note)
            .await
            .expect("a note");
    }
    let actor = Actor {
        family: "client",
        credential: Credential::SecretKey,
        user_id: None,
    };
    state
        .store
        .delete_organization_id(project, org, &actor)
        .await
        .expect("deleting the purge fixture");
    org
}

pub async fn run() {
    let ns = env_list("SCALE_NS", &[1_000, 10_000, 100_000]);
    let factor: f64 = std::env::var("SCALE_LARGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let large = Large::scaled(factor);
    let iterations: usize = std::env::var("SCALE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let output = std::env::var("BENCH_OUTPUT").unwrap_or_else(|_| "BENCHMARKS.md".into());
    let started = Instant::now();
    let (state, meter) = crate::metered_state().await;
    let project = state
        .store
        .create_dev_project("scale")
        .await
        .expect("the scale project");
    let project_id = project.project_id;
    let ctx = Ctx {
        state: state.clone(),
        project,
        n: 0,
    };
    let seeding = Instant::now();
    let large_id = seed_large(&state, project_id, large).await;
    let large_seconds = seeding.elapsed().as_secs_f64();
    meter.take();
    let fixture = Fixture {
        ctx,
        large: large_id,
        purge_members: large.members,
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut seeded = 0;
    let mut seed_seconds = Vec::new();
    for &n in &ns {
        let seeding = Instant::now();
        seed_organizations(&state, project_id, seeded..n).await;
        seed_seconds.push((n, seeding.elapsed().as_secs_f64()));
        seeded = n;
        meter.take();
        for (index, (name, page, why, figures)) in
            measure_all(&state, &meter, &fixture, n, iterations)
                .await
                .into_iter()
                .enumerate()
        {
            if rows.len() <= index {
                rows.push(Row {
                    name,
                    page,
                    why,
                    at: Vec::new(),
                });
            }
            rows[index].at.push((n, figures));
        }
    }
    let section = render(&Run {
        ns: &ns,
        large,
        large_seconds,
        seed_seconds: &seed_seconds,
        iterations,
        rows: &rows,
        minutes: started.elapsed().as_secs_f64() / 60.0,
    });
    let existing = std::fs::read_to_string(&output).unwrap_or_default();
    std::fs::write(&output, crate::report::with_scale(&existing, &section))
        .expect("writing the report");
    eprintln!("bench-scale: wrote the Scale section of {output}");
}

/// What the section reports.
pub struct Run<'a> {
    pub ns: &'a [usize],
    pub large: Large,
    pub large_seconds: f64,
    pub seed_seconds: &'a [(usize, f64)],
    pub iterations: usize,
    pub rows: &'a [Row],
    pub minutes: f64,
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn figure(x: f64) -> String {
    if x >= 100.0 || x.fract() == 0.0 {
        thousands(x.round() as usize)
    } else {
        format!("{x:.1}")
    }
}

/// `last ÷ first`; a figure that stays 0 is 1.
fn growth(first: f64, last: f64) -> f64 {
    if first == 0.0 {
        if last == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        last / first
    }
}

/// Items read per item of the page above which a row within the goal is
/// still named: its read grows with a partition, not with its page.
const UNBOUNDED: f64 = 10.0;

/// A row's verdict: within the goal, over it (with why), or failed.
pub fn verdict(row: &Row) -> (f64, f64, String) {
    let (Some((_, first)), Some((_, last))) = (row.at.first(), row.at.last()) else {
        return (f64::NAN, f64::NAN, "not measured".into());
    };
    let items = growth(first.items_read, last.items_read);
    let trips = growth(first.trips, last.trips);
    let failed: Vec<String> = row
        .at
        .iter()
        .filter_map(|(n, f)| {
            f.failed
                .as_ref()
                .map(|e| format!("at N = {}: {e}", thousands(*n)))
        })
        .collect();
    let text = if !failed.is_empty() {
        format!("**failed** {}", failed.join("; "))
    } else if row.at.len() < 2 {
        "one N only".into()
    } else if items <= GOAL && trips <= GOAL {
        match (row.page, last.items_read) {
            (Some(page), read)
                if page > 0 && read > UNBOUNDED * page as f64 && !row.why.is_empty() =>
            {
                format!(
                    "ok in N; **{:.0} items read per page item**: {}",
                    read / page as f64,
                    row.why
                )
            }
            _ => "ok".into(),
        }
    } else if row.why.is_empty() {
        "**over**".into()
    } else {
        format!("**over**: {}", row.why)
    };
    (items, trips, text)
}

fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "∞".into()
    }
}

pub fn render(run: &Run) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let now = time::OffsetDateTime::now_utc();
    let ns: Vec<String> = run.ns.iter().map(|n| thousands(*n)).collect();
    let (first, last) = (
        ns.first().cloned().unwrap_or_default(),
        ns.last().cloned().unwrap_or_default(),
    );
    let _ = writeln!(s, "{}\n", crate::report::SCALE_HEADING);
    let _ = writeln!(
        s,
        "Written by `make bench-scale` ({} UTC, {:.0} minutes) on this machine ({} cores); \
         regenerate with `make bench-scale`, do not edit by hand. **This run: N = {}** \
         organizations in one project (`SCALE_NS`), grown in place from one N to the next, \
         plus one large organization of {} members, {} timeline events ({} named `{RARE}`), {} \
         notes and {} settings (`SCALE_LARGE`), and a few fixture organizations. Everything is \
         seeded in-process through the store's own write paths (organization upserts, \
         memberships, the processor's batched event write, notes, settings), {WRITERS} writers \
         at a time ({ONE_ORGANIZATION_WRITERS} into one organization, whose event sequence orders \
         its writes): the large organization took {:.0} s; {}.\n",
        now.date(),
        run.minutes,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ns.join(", "),
        thousands(run.large.members),
        thousands(run.large.events),
        thousands(run.large.events.div_ceil(RARE_EVERY)),
        thousands(run.large.notes),
        run.large.settings,
        run.large_seconds,
        run.seed_seconds
            .iter()
            .map(|(n, secs)| format!("up to N = {}: {secs:.0} s", thousands(*n)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let _ = writeln!(
        s,
        "- **Items read**: per request, the sum over its DynamoDB calls of what DynamoDB read \
         to answer — a Query's or Scan's `ScannedCount` (before its filter), the items a \
         GetItem, BatchGetItem or TransactGetItems returned; **RCU** the read units it \
         reported (`ReturnConsumedCapacity: TOTAL`). **Trips**: DynamoDB calls. Means of {} \
         runs per row and N, after one unmeasured run (caches warm; not for the purge, \
         which consumes its organization, or the tick, which follows an unmeasured tick).\n\
         - **Wall**: the fastest run, in ms. The emulator's time grows with the table, not the \
         page (LOCAL-AWS.md), so it is shown, not judged.\n\
         - **Ratio**: the figure at N = {last} ÷ the figure at N = {first}, for items read and \
         round trips; **verdict** `ok` when both are ≤ {GOAL:.2} (the goal of issue 21), \
         otherwise the code path that reads more. **Page**: the most items the row answers; \
         items read per page item at N = {last} shows a read that is constant in N but not in \
         the page (the large organization's partitions).\n",
        run.iterations.max(1),
    );
    let _ = write!(s, "| route or step | page |");
    for n in &ns {
        let _ = write!(s, " items read N = {n} |");
    }
    for n in &ns {
        let _ = write!(s, " trips N = {n} |");
    }
    let _ = write!(s, " RCU N = {last} |");
    for n in &ns {
        let _ = write!(s, " wall ms N = {n} |");
    }
    let _ = writeln!(s, " items / page | ratio items | ratio trips | verdict |");
    let columns = 7 + 3 * ns.len();
    let _ = writeln!(s, "{}", "|---".repeat(columns) + "|");
    let mut within = 0;
    for row in run.rows {
        let (items, trips, text) = verdict(row);
        if text.starts_with("ok") {
            within += 1;
        }
        let page = row.page.map_or("—".into(), thousands);
        let _ = write!(s, "| {} | {page} |", row.name);
        let at = |n: &usize| row.at.iter().find(|(m, _)| m == n).map(|(_, f)| f);
        for n in run.ns {
            let _ = write!(
                s,
                " {} |",
                at(n).map_or("—".into(), |f| figure(f.items_read))
            );
        }
        for n in run.ns {
            let _ = write!(s, " {} |", at(n).map_or("—".into(), |f| figure(f.trips)));
        }
        let lastf = row.at.last().map(|(_, f)| f);
        let _ = write!(
            s,
            " {} |",
            lastf.map_or("—".into(), |f| figure(f.read_units))
        );
        for n in run.ns {
            let _ = write!(
                s,
                " {} |",
                at(n).map_or("—".into(), |f| format!(
                    "{:.1}",
                    f.wall.as_secs_f64() * 1e3
                ))
            );
        }
        let per_page = match (row.page, lastf) {
            (Some(p), Some(f)) if p > 0 => format!("{:.1}", f.items_read / p as f64),
            _ => "—".into(),
        };
        let _ = writeln!(
            s,
            " {per_page} | {} | {} | {text} |",
            ratio(items),
            ratio(trips)
        );
    }
    let _ = writeln!(
        s,
        "\nScale goal (items read and round trips at N = {last} ≤ {GOAL:.2} × N = {first}): \
         {within} of {} rows.",
        run.rows.len()
    );
    let _ = writeln!(s, "\n{MILLION}");
    s
}

/// Why the figures above hold at 1,000,000 organizations and 10,000,000
/// memberships: an argument from the per-request reads, not a measurement.
const MILLION: &str = "**At 1,000,000 organizations and 10,000,000 memberships.** No request \
     or step above reads by position in the project: each is a GetItem, a BatchGetItem or a \
     Query that starts at a key (its cursor, its filter value, its organization or user) and \
     stops after its page, and none is a Scan. A DynamoDB Query costs what it reads from its \
     start key, not the length of its partition, so a row whose items read and round trips \
     stay flat from one N to the next reads the same at any N; the large organization's \
     rows show the same for the size of one organization. Work over a whole project (a `match` fan-out, a segment evaluated to its \
     last page, a purge) takes more steps at a larger N, each the same size. What grows is \
     storage: each organization's record, live items and list entries, each membership's \
     item (in its organization's partition, indexed for its user on GSI1), and the \
     per-project index partitions (the \
     organization index on GSI1, the CRM's order indexes), which DynamoDB splits by size \
     and throughput on its own. The exceptions are named: the CRM's page-number lists read \
     their offset (`page=N` costs what pages 1…N hold, whatever the project's size); the \
     project's organization count is 16 shards, read in one Query. What the project's size \
     could limit is writes, not reads: every organization created adds an entry at the end \
     of the time-ordered per-project indexes (the organization index, the CRM's creation \
     index), so one project's creations are bounded by one partition's write throughput \
     (1,000 write units a second: a few hundred creations a second), far above the rate at \
     which a product's customers sign up; memberships, events and schedules spread by \
     organization and user, the due index by 16 shards a minute.";

#[cfg(test)]
mod tests {
    use super::*;

    fn row(why: &'static str, first: f64, last: f64) -> Row {
        let f = |items_read| Figures {
            items_read,
            trips: 3.0,
            ..Figures::default()
        };
        Row {
            name: "r".into(),
            page: Some(10),
            why,
            at: vec![(1_000, f(first)), (10_000, f(last))],
        }
    }

    #[test]
    fn verdicts_name_the_goal_and_why() {
        assert_eq!(verdict(&row("x", 10.0, 11.0)).2, "ok");
        assert_eq!(
            verdict(&row("reads it all", 10.0, 100.0)).2,
            "**over**: reads it all"
        );
        assert_eq!(verdict(&row("", 0.0, 0.0)).0, 1.0);
        let mut failed = row("", 1.0, 1.0);
        failed.at[1].1.failed = Some("500".into());
        assert!(verdict(&failed)
            .2
            .starts_with("**failed** at N = 10,000: 500"));
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(999), "999");
    }
}
