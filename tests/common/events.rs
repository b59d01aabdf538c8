//! Timeline helpers the event tests share: a change through every family,
//! clients' events, and the timeline as the table holds it.

use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::Method;
use serde_json::{json, Value};
use shared::store::timeline::TimelineEvent;
use shared::store::CreatedProject;
use shared::AppState;
use uuid::Uuid;

use crate::{call, session_token};

/// A client's event as the processor records it.
pub fn custom(name: &str, data: Value) -> TimelineEvent {
    TimelineEvent {
        id: shared::ids::new_id(),
        name: name.into(),
        data: serde_json::from_value(data).expect("an object"),
        created_at: shared::ids::now(),
        origin: "custom".into(),
    }
}

/// An organization `name` created by a session (its owner ann) and then
/// changed once through every family: the client's upsert, the accounts'
/// PATCH, a tenant setting, the CRM's PATCH, a member added and removed by
/// the client family. Its id.
pub async fn changed_through_every_family(
    state: &AppState,
    p: &CreatedProject,
    name: &str,
) -> Uuid {
    let sk = Some(p.secret_key.as_str());
    let accounts = accounts::router(state.clone());
    let client = client::router(state.clone());
    let crm = crm::router(state.clone());
    let tenant = tenant::router(state.clone());
    let ann = session_token(p, "ann", None);
    let made = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&ann),
        Some(&json!({ "name": name }).to_string()),
    )
    .await;
    assert!(made.status.is_success(), "{:?}", made.body);
    let id = made.body["id"].as_str().expect("an id").to_owned();
    let by_id = json!([{"source": "id", "external_id": id}]);
    let member = json!({"organization": {"identifier": by_id}, "user": {"identifier": [{"external_id": "bob"}]}});
    let steps: Vec<(&axum::Router, Method, String, Value)> = vec![
        (
            &client,
            Method::POST,
            "/api/client/organizations".into(),
            json!({"identifier": by_id, "data": {"plan": "pro"}}),
        ),
        (
            &accounts,
            Method::PATCH,
            format!("/v1/organizations/{id}"),
            json!({ "name": format!("{name} Inc") }),
        ),
        (
            &tenant,
            Method::PUT,
            format!("/v2/organization/{id}/settings/double_opt_in"),
            json!(true),
        ),
        (
            &crm,
            Method::PATCH,
            format!("/organizations/{id}"),
            json!({"description": "changed"}),
        ),
        (
            &client,
            Method::POST,
            "/api/client/organizations/users".into(),
            member.clone(),
        ),
        (
            &client,
            Method::DELETE,
            "/api/client/organizations/users".into(),
            member,
        ),
    ];
    for (router, method, path, body) in steps {
        let answer = call(router, method.clone(), &path, sk, Some(&body.to_string())).await;
        assert!(
            answer.status.is_success(),
            "{method} {path}: {:?}",
            answer.body
        );
    }
    id.parse().expect("a uuid")
}

/// Organizations of the given names, created through the store (each
/// one's `organization.created` is its event 1), in order.
pub async fn organizations(state: &AppState, project: Uuid, names: &[&str]) -> Vec<Uuid> {
    let mut orgs = Vec::new();
    for name in names {
        let made = state
            .store
            .create_organization(project, name, Default::default(), None)
            .await
            .expect("an organization");
        orgs.push(made.id);
    }
    orgs
}

/// Deletes the organization through the accounts family (204).
pub async fn delete_through_accounts(state: &AppState, p: &CreatedProject, org: Uuid) {
    let deleted = call(
        &accounts::router(state.clone()),
        Method::DELETE,
        &format!("/v1/organizations/{org}"),
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(
        deleted.status,
        axum::http::StatusCode::NO_CONTENT,
        "{:?}",
        deleted.body
    );
}

/// One timeline item as the table holds it.
pub struct Recorded {
    pub event: TimelineEvent,
    /// `None` for an item without one.
    pub sequence: Option<u64>,
}

/// The organization's timeline items, in timeline order (strongly
/// consistent reads, every page).
pub async fn timeline(state: &AppState, project: Uuid, org: Uuid) -> Vec<Recorded> {
    let mut events = Vec::new();
    let mut start = None;
    loop {
        let out = state
            .aws
            .dynamodb
            .query()
            .table_name(&state.config.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :evt)")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(shared::keys::org_pk(project, org)),
            )
            .expression_attribute_values(
                ":evt",
                AttributeValue::S(shared::keys::EVENT_PREFIX.into()),
            )
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("querying the timeline");
        for item in out.items.unwrap_or_default() {
            let sequence = item
                .get("sequence")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok());
            let event = serde_dynamo::from_item(item).expect("a timeline event");
            events.push(Recorded { event, sequence });
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            return events;
        }
    }
}
