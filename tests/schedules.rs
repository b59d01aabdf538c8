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
    for run in runs {
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
