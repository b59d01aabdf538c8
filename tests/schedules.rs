//! Schedules through the client router, fired by the scheduler.

use axum::http::{Method, StatusCode};
use integration_tests::{call, project, project_items, state};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

const ORGS: &str = "/api/client/organizations";
const SCHEDULED: &str = "/api/client/organizations/scheduled";

async fn fired(state: &shared::AppState, project: uuid::Uuid, name: &str) -> usize {
    project_items(state, project)
        .await
        .iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|sk| sk.starts_with("EVT#")))
        .filter(|i| i["name"].as_s().is_ok_and(|n| n == name))
        .count()
}

fn ts(at: OffsetDateTime) -> String {
    shared::ids::timestamp(at)
}

async fn setup() -> (
    shared::AppState,
    shared::store::CreatedProject,
    axum::Router,
) {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let body = json!({"identifier": [{"external_id": "acme"}]}).to_string();
    assert_eq!(
        call(
            &router,
            Method::POST,
            ORGS,
            Some(&p.secret_key),
            Some(&body)
        )
        .await
        .status,
        StatusCode::OK
    );
    (state, p, router)
}

async fn schedule(router: &axum::Router, key: &str, body: Value) -> integration_tests::Exchange {
    call(
        router,
        Method::POST,
        SCHEDULED,
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn a_due_single_schedule_fires_once_with_its_data() {
    let (state, p, router) = setup().await;
    let now = OffsetDateTime::now_utc();
    let accepted = schedule(
        &router,
        &p.publishable_key,
        json!({
            "name": "contract_renewal", "identifier": [{"external_id": "acme"}],
            "scheduled_at": ts(now - Duration::seconds(5)), "data": {"plan": "pro"}
        }),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    assert_eq!(accepted.body["name"], "contract_renewal");
    assert!(accepted.body["id"].is_string() && accepted.body["scheduled_at"].is_string());

    let first = scheduler::tick_at(&state, now).await.unwrap();
    assert_eq!(first["fired"], 1);
    let second = scheduler::tick_at(&state, now + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(second["fired"], 0);
    assert_eq!(
        fired(&state, p.project_id, "scheduled.contract_renewal").await,
        1
    );
    let event = project_items(&state, p.project_id)
        .await
        .into_iter()
        .find(|i| {
            i["SK"].as_s().is_ok_and(|sk| sk.starts_with("EVT#"))
                && i["name"]
                    .as_s()
                    .is_ok_and(|n| n == "scheduled.contract_renewal")
        })
        .unwrap();
    assert_eq!(event["data"].as_m().unwrap()["plan"].as_s().unwrap(), "pro");
}

#[tokio::test]
async fn a_future_schedule_waits_and_a_recurring_one_fires_again_after_its_interval() {
    let (state, p, router) = setup().await;
    let now = OffsetDateTime::now_utc();
    let accepted = schedule(
        &router,
        &p.secret_key,
        json!({
            "name": "digest", "identifier": [{"external_id": "acme"}],
            "start_at": ts(now + Duration::seconds(30)), "interval": "1h"
        }),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    assert_eq!(
        scheduler::tick_at(&state, now).await.unwrap()["fired"],
        0,
        "not due yet"
    );
    assert_eq!(
        scheduler::tick_at(&state, now + Duration::minutes(1))
            .await
            .unwrap()["fired"],
        1
    );
    assert_eq!(
        scheduler::tick_at(&state, now + Duration::minutes(2))
            .await
            .unwrap()["fired"],
        0,
        "next is an hour later"
    );
    assert_eq!(
        scheduler::tick_at(&state, now + Duration::minutes(62))
            .await
            .unwrap()["fired"],
        1
    );
    assert_eq!(fired(&state, p.project_id, "scheduled.digest").await, 2);
}

#[tokio::test]
async fn a_deleted_schedule_never_fires() {
    let (state, p, router) = setup().await;
    let now = OffsetDateTime::now_utc();
    schedule(
        &router,
        &p.secret_key,
        json!({
            "name": "gone", "identifier": [{"external_id": "acme"}], "scheduled_at": ts(now)
        }),
    )
    .await;
    let body = json!({"name": "gone", "identifier": [{"external_id": "acme"}]}).to_string();
    let deleted = call(
        &router,
        Method::DELETE,
        SCHEDULED,
        Some(&p.secret_key),
        Some(&body),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    assert_eq!(
        call(
            &router,
            Method::DELETE,
            SCHEDULED,
            Some(&p.secret_key),
            Some(&body)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        scheduler::tick_at(&state, now + Duration::minutes(1))
            .await
            .unwrap()["fired"],
        0
    );
    assert_eq!(fired(&state, p.project_id, "scheduled.gone").await, 0);
}

#[tokio::test]
async fn overlapping_scheduler_runs_fire_each_schedule_once() {
    let (state, p, router) = setup().await;
    let now = OffsetDateTime::now_utc();
    for i in 0..5 {
        schedule(&router, &p.secret_key, json!({
            "name": format!("s{i}"), "identifier": [{"external_id": "acme"}], "scheduled_at": ts(now - Duration::seconds(1))
        })).await;
    }
    let runs = (0..3).map(|_| {
        let state = state.clone();
        tokio::spawn(async move { scheduler::tick_at(&state, now).await.unwrap() })
    });
    let mut total = 0;
    // Spawned all at once (an iterator's tasks would start one by one).
    for run in runs.collect::<Vec<_>>() {
        total += run.await.unwrap()["fired"].as_u64().unwrap();
    }
    assert_eq!(total, 5);
    for i in 0..5 {
        assert_eq!(
            fired(&state, p.project_id, &format!("scheduled.s{i}")).await,
            1
        );
    }
}

#[tokio::test]
async fn bad_schedules_are_4xx_and_a_new_organization_has_its_anniversary() {
    let (state, p, router) = setup().await;
    let before = project_items(&state, p.project_id).await.len();
    let cases = [
        (
            json!({"name": "x", "identifier": [{"external_id": "acme"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "identifier": [{"external_id": "acme"}], "interval": "soon"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "identifier": [{"external_id": "acme"}], "scheduled_at": "tomorrow"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"identifier": [{"external_id": "acme"}], "scheduled_at": "2030-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "identifier": [{"external_id": "nobody"}], "scheduled_at": "2030-01-01T00:00:00Z"}),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (body, status) in cases {
        assert_eq!(
            schedule(&router, &p.secret_key, body.clone()).await.status,
            status,
            "{body}"
        );
    }
    assert_eq!(
        project_items(&state, p.project_id).await.len(),
        before,
        "nothing written"
    );

    let org: uuid::Uuid = project_items(&state, p.project_id)
        .await
        .iter()
        .find(|i| i["SK"].as_s().is_ok_and(|sk| sk == "ORG"))
        .map(|i| i["id"].as_s().unwrap().parse().unwrap())
        .unwrap();
    let anniversary = state
        .store
        .get_schedule(p.project_id, org, "anniversary")
        .await
        .unwrap()
        .expect("an anniversary schedule");
    assert_eq!(anniversary.interval.as_deref(), Some("1 year"));
    let next = shared::ids::parse_timestamp(anniversary.next_at.as_deref().unwrap()).unwrap();
    let in_a_year = OffsetDateTime::now_utc() + Duration::days(365);
    assert!((next - in_a_year).abs() < Duration::days(2), "{next}");
}

/// Every `scheduled.*` event of the project, counted by (organization
/// partition, event name).
async fn firings(
    state: &shared::AppState,
    project: uuid::Uuid,
) -> std::collections::HashMap<(String, String), usize> {
    let mut counts = std::collections::HashMap::new();
    for item in project_items(state, project).await {
        let is_event = item["SK"].as_s().is_ok_and(|sk| sk.starts_with("EVT#"));
        let name = item.get("name").and_then(|n| n.as_s().ok());
        if let (true, Some(name)) = (is_event, name) {
            if name.starts_with("scheduled.") {
                let pk = item["PK"].as_s().unwrap().clone();
                *counts.entry((pk, name.clone())).or_insert(0) += 1;
            }
        }
    }
    counts
}

async fn organization(router: &axum::Router, key: &str, external_id: &str) {
    let body = json!({"identifier": [{"external_id": external_id}]}).to_string();
    let created = call(router, Method::POST, ORGS, Some(key), Some(&body)).await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
}

#[tokio::test]
async fn an_organization_holds_at_most_100_schedules_and_a_recurring_interval_is_a_minute_or_more()
{
    let (state, p, router) = setup().await;
    let limit = shared::limits::MAX_SCHEDULES_PER_ORGANIZATION as usize;
    let at = "2030-01-01T00:00:00Z";
    let body = |name: &str| json!({"name": name, "identifier": [{"external_id": "acme"}], "scheduled_at": at});
    // The anniversary holds the first slot.
    for i in 1..limit {
        let created = schedule(&router, &p.secret_key, body(&format!("s{i}"))).await;
        assert_eq!(
            created.status,
            StatusCode::ACCEPTED,
            "{i}: {:?}",
            created.body
        );
    }
    let before = project_items(&state, p.project_id).await;
    let refused = schedule(&router, &p.secret_key, body("one-too-many")).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["code"], "limit_exceeded");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains(&limit.to_string()),
        "{:?}",
        refused.body
    );
    assert_eq!(
        project_items(&state, p.project_id).await.len(),
        before.len(),
        "nothing written"
    );

    // Replacing a schedule keeps its slot; deleting one frees it.
    let replaced = schedule(
        &router,
        &p.secret_key,
        json!({"name": "s1", "identifier": [{"external_id": "acme"}], "interval": "1 minute"}),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::ACCEPTED, "{:?}", replaced.body);
    let body_of_delete = json!({"name": "s2", "identifier": [{"external_id": "acme"}]}).to_string();
    let deleted = call(
        &router,
        Method::DELETE,
        SCHEDULED,
        Some(&p.secret_key),
        Some(&body_of_delete),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        schedule(&router, &p.secret_key, body("one-too-many"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        schedule(&router, &p.secret_key, body("and-another"))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A recurring interval is at least a minute.
    for interval in ["59s", "30 seconds", "0m"] {
        let short = schedule(
            &router,
            &p.secret_key,
            json!({"name": "s3", "identifier": [{"external_id": "acme"}], "interval": interval}),
        )
        .await;
        assert_eq!(short.status, StatusCode::BAD_REQUEST, "{interval}");
    }
    let org: uuid::Uuid = project_items(&state, p.project_id)
        .await
        .iter()
        .find(|i| i["SK"].as_s().is_ok_and(|sk| sk == "ORG"))
        .map(|i| i["id"].as_s().unwrap().parse().unwrap())
        .unwrap();
    assert_eq!(
        state.store.schedule_count(p.project_id, org).await.unwrap(),
        limit as i64
    );
}

#[tokio::test]
async fn a_fired_single_schedule_gives_its_slot_back() {
    let (state, p, router) = setup().await;
    let now = OffsetDateTime::now_utc();
    let once = json!({"name": "once", "identifier": [{"external_id": "acme"}], "scheduled_at": ts(now - Duration::seconds(1))});
    assert_eq!(
        schedule(&router, &p.secret_key, once).await.status,
        StatusCode::ACCEPTED
    );
    let org: uuid::Uuid = project_items(&state, p.project_id)
        .await
        .iter()
        .find(|i| i["SK"].as_s().is_ok_and(|sk| sk == "ORG"))
        .map(|i| i["id"].as_s().unwrap().parse().unwrap())
        .unwrap();
    assert_eq!(
        state.store.schedule_count(p.project_id, org).await.unwrap(),
        2
    );
    assert_eq!(scheduler::tick_at(&state, now).await.unwrap()["fired"], 1);
    assert_eq!(
        state.store.schedule_count(p.project_id, org).await.unwrap(),
        1
    );
    assert!(state
        .store
        .get_schedule(p.project_id, org, "once")
        .await
        .unwrap()
        .is_none());
}

/// Attack 6: one project's minute schedules delayed every other project's.
#[tokio::test]
async fn one_projects_backlog_does_not_delay_another_projects_firings() {
    let state = state().await;
    let router = client::router(state.clone());
    let share = shared::limits::SCHEDULER_PROJECT_SHARE;
    let (a, b) = (project(&state).await, project(&state).await);
    // A: more due schedules than one tick's share, over two organizations
    // (each holds at most 100).
    let per_org = share / 2 + 5;
    let now = OffsetDateTime::now_utc();
    for org in ["a1", "a2"] {
        organization(&router, &a.secret_key, org).await;
        for i in 0..per_org {
            let due = json!({"name": format!("s{i}"), "identifier": [{"external_id": org}], "scheduled_at": ts(now - Duration::seconds(30))});
            let created = schedule(&router, &a.secret_key, due).await;
            assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
        }
    }
    // B: one schedule, due as late as any of A's.
    organization(&router, &b.secret_key, "b1").await;
    let due =
        json!({"name": "renewal", "identifier": [{"external_id": "b1"}], "scheduled_at": ts(now)});
    assert_eq!(
        schedule(&router, &b.secret_key, due).await.status,
        StatusCode::ACCEPTED
    );
    let total_a = 2 * per_org;

    // Ticks some minutes later, so A's leftovers fall behind the cursor
    // and are carried as A's backlog.
    let first = scheduler::tick_at(&state, now + Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(
        firings(&state, b.project_id).await.values().sum::<usize>(),
        1,
        "B fires in the first tick: {first}"
    );
    assert_eq!(
        firings(&state, a.project_id).await.values().sum::<usize>(),
        share,
        "A gets its share of the first tick: {first}"
    );
    assert_eq!(first["deferred"], 1, "A's rest waits: {first}");

    let second = scheduler::tick_at(&state, now + Duration::minutes(11))
        .await
        .unwrap();
    assert_eq!(
        second["fired"],
        total_a - share,
        "the backlog drains: {second}"
    );
    let third = scheduler::tick_at(&state, now + Duration::minutes(12))
        .await
        .unwrap();
    assert_eq!(third["fired"], 0, "{third}");
    assert_eq!(third["backlogs"], 0, "the drained backlog is gone: {third}");

    let a_firings = firings(&state, a.project_id).await;
    assert_eq!(a_firings.len(), total_a, "every one of A's schedules fired");
    assert!(
        a_firings.values().all(|&count| count == 1),
        "none twice: {a_firings:?}"
    );
    assert_eq!(firings(&state, b.project_id).await.len(), 1);
}

#[tokio::test]
async fn a_tick_does_bounded_work_and_the_next_continues() {
    let (state, p, router) = setup().await;
    let now = OffsetDateTime::now_utc();
    for i in 0..5 {
        let due = json!({"name": format!("s{i}"), "identifier": [{"external_id": "acme"}], "scheduled_at": ts(now - Duration::seconds(1))});
        schedule(&router, &p.secret_key, due).await;
    }
    let small = || scheduler::Budget {
        firings: 3,
        ..scheduler::Budget::default()
    };
    let first = scheduler::tick_with(&state, now, small()).await.unwrap();
    assert_eq!(first["fired"], 3, "{first}");
    let second = scheduler::tick_with(&state, now + Duration::minutes(1), small())
        .await
        .unwrap();
    assert_eq!(second["fired"], 2, "{second}");
    // A tick out of time starts nothing.
    let late = scheduler::Budget {
        deadline: std::time::Instant::now(),
        ..scheduler::Budget::default()
    };
    let due =
        json!({"name": "late", "identifier": [{"external_id": "acme"}], "scheduled_at": ts(now)});
    schedule(&router, &p.secret_key, due).await;
    let idle = scheduler::tick_with(&state, now + Duration::minutes(2), late)
        .await
        .unwrap();
    assert_eq!(idle["fired"], 0, "{idle}");
    let after = scheduler::tick_at(&state, now + Duration::minutes(3))
        .await
        .unwrap();
    assert_eq!(after["fired"], 1, "{after}");
    let all = firings(&state, p.project_id).await;
    assert_eq!(all.len(), 6);
    assert!(all.values().all(|&count| count == 1));
}

/// A backlog larger than a tick's budget: each tick makes the same number
/// of DynamoDB calls at two backlog sizes (it reads a bounded part and goes
/// on where it stopped), another project fires in the first tick, and
/// after enough ticks every schedule has fired once.
#[tokio::test]
async fn a_backlog_past_a_ticks_budget_drains_in_bounded_ticks_and_others_fire_first() {
    let budget = || scheduler::Budget {
        firings: 6,
        project_share: 4,
        ..scheduler::Budget::default()
    };
    let mut first_ticks = Vec::new();
    for per_org in [6, 18] {
        let base = state().await;
        let (state, meter) = integration_tests::reads::metered(&base);
        let router = client::router(state.clone());
        let (a, b) = (project(&state).await, project(&state).await);
        let now = OffsetDateTime::now_utc();
        for org in ["a1", "a2"] {
            organization(&router, &a.secret_key, org).await;
            for i in 0..per_org {
                let due = json!({"name": format!("s{i}"), "identifier": [{"external_id": org}], "scheduled_at": ts(now - Duration::seconds(30))});
                let created = schedule(&router, &a.secret_key, due).await;
                assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
            }
        }
        organization(&router, &b.secret_key, "b1").await;
        let due = json!({"name": "renewal", "identifier": [{"external_id": "b1"}], "scheduled_at": ts(now)});
        assert_eq!(
            schedule(&router, &b.secret_key, due).await.status,
            StatusCode::ACCEPTED
        );
        meter.take();
        let first = scheduler::tick_with(&state, now + Duration::minutes(10), budget())
            .await
            .unwrap();
        first_ticks.push(meter.take().calls);
        assert_eq!(first["fired"], 5, "A's share and B's one: {first}");
        assert_eq!(
            firings(&state, b.project_id).await.len(),
            1,
            "B fires in the first tick: {first}"
        );
        let mut minute = 11;
        let mut calls = Vec::new();
        while firings(&state, a.project_id).await.len() < 2 * per_org {
            assert!(minute < 30, "the backlog drains");
            meter.take();
            let tick = scheduler::tick_with(&state, now + Duration::minutes(minute), budget())
                .await
                .unwrap();
            calls.push(meter.take().calls);
            assert!(tick["fired"].as_u64().unwrap() <= 6, "{tick}");
            minute += 1;
        }
        let a_firings = firings(&state, a.project_id).await;
        assert!(
            a_firings.values().all(|&count| count == 1),
            "none twice: {a_firings:?}"
        );
        assert!(
            calls.iter().all(|&c| c <= first_ticks[0] + 2 * 16),
            "every tick stays bounded: {calls:?}"
        );
    }
    assert_eq!(
        first_ticks[0], first_ticks[1],
        "the first tick's calls: {first_ticks:?}"
    );
}
