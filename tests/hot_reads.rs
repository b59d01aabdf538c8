//! Reads that must not grow with the data behind them, and reads on every
//! request that must not sit on one hot item: counted in items read
//! (a Query's `ScannedCount`, the items a GetItem or BatchGetItem
//! returned) at two sizes, as bench/src/scale.rs measures them, never
//! timed.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation as op;
use axum::http::{Method, StatusCode};
use axum::Router;
use integration_tests::{call, project, state};
use serde_json::Value;
use shared::auth::{ApiKey, KeyKind};
use shared::keys::API_KEY_SHARDS;
use shared::store::timeline::{Delivery, Recorded, TimelineEvent};
use shared::AppState;
use uuid::Uuid;

/// One DynamoDB read as the meter sees it: the operation and the items it
/// read.
#[derive(Clone, Debug, PartialEq)]
struct Read {
    operation: &'static str,
    items: u64,
}

/// Records the items every DynamoDB read returned or scanned, and the
/// index of every Query sent.
#[derive(Clone, Debug, Default)]
struct ItemsRead {
    reads: Arc<Mutex<Vec<Read>>>,
    query_indexes: Arc<Mutex<Vec<Option<String>>>>,
    /// The partition of every GetItem sent.
    got_partitions: Arc<Mutex<Vec<String>>>,
}

impl ItemsRead {
    fn take(&self) -> Vec<Read> {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }

    /// The index each Query since the last call read (`None`: the table).
    fn take_query_indexes(&self) -> Vec<Option<String>> {
        std::mem::take(&mut *self.query_indexes.lock().unwrap())
    }

    fn take_got_partitions(&self) -> Vec<String> {
        std::mem::take(&mut *self.got_partitions.lock().unwrap())
    }
}

impl Intercept for ItemsRead {
    fn name(&self) -> &'static str {
        "ItemsRead"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let Some(target) = request.headers().get("x-amz-target") else {
            return Ok(());
        };
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        if target.ends_with(".Query") {
            let index = body["IndexName"].as_str().map(str::to_owned);
            self.query_indexes.lock().unwrap().push(index);
        } else if target.ends_with(".GetItem") {
            let partition = body["Key"]["PK"]["S"].as_str().unwrap_or_default();
            self.got_partitions
                .lock()
                .unwrap()
                .push(partition.to_owned());
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = context.output_or_error() else {
            return Ok(());
        };
        let read = if let Some(o) = output.downcast_ref::<op::get_item::GetItemOutput>() {
            Some(("GetItem", u64::from(o.item().is_some())))
        } else if let Some(o) = output.downcast_ref::<op::query::QueryOutput>() {
            Some(("Query", o.scanned_count().max(0) as u64))
        } else {
            output
                .downcast_ref::<op::batch_get_item::BatchGetItemOutput>()
                .map(|o| {
                    let items = o
                        .responses()
                        .map_or(0, |r| r.values().map(|items| items.len() as u64).sum());
                    ("BatchGetItem", items)
                })
        };
        if let Some((operation, items)) = read {
            self.reads.lock().unwrap().push(Read { operation, items });
        }
        Ok(())
    }
}

/// [`state`] with every read counted.
async fn metered_state() -> (AppState, ItemsRead) {
    let base = state().await;
    let meter = ItemsRead::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        base.aws
            .dynamodb
            .config()
            .to_builder()
            .interceptor(meter.clone())
            .build(),
    );
    let aws = shared::Aws {
        dynamodb,
        ..base.aws.clone()
    };
    (AppState::new(base.config.clone(), aws), meter)
}

const ORGS: &str = "/v1/organizations";

async fn create_organization(accounts: &Router, key: &str) -> Uuid {
    let created = call(
        accounts,
        Method::POST,
        ORGS,
        Some(key),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    assert!(created.status.is_success(), "{:?}", created.body);
    created.body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an organization id")
}

/// Appends `count` custom events to the organization's timeline through
/// the processor's batched write, named by `name_of(position)`.
async fn append_events(
    state: &AppState,
    project: Uuid,
    org: Uuid,
    count: usize,
    name_of: impl Fn(usize) -> String,
) {
    let events: Vec<TimelineEvent> = (0..count)
        .map(|i| TimelineEvent {
            id: shared::ids::new_id(),
            name: name_of(i),
            data: serde_json::from_value(serde_json::json!({"position": i})).unwrap(),
            created_at: shared::ids::now(),
            origin: "custom".into(),
        })
        .collect();
    for chunk in events.chunks(90) {
        let deliveries: Vec<Delivery<'_>> = chunk
            .iter()
            .map(|event| Delivery {
                project,
                org,
                event,
            })
            .collect();
        for verdict in state.store.record_events(&deliveries).await {
            assert_eq!(verdict.expect("recording events"), Recorded::Recorded);
        }
    }
}

/// Every page of a timeline list (`query` without the cursor): the pages'
/// event ids, in order.
async fn pages(
    accounts: &Router,
    key: &str,
    path: &str,
    cursor: Option<String>,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = cursor;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let page = call(accounts, Method::GET, &url, Some(key), None).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {:?}", page.body);
        let ids: Vec<String> = page.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["id"].as_str().expect("an id").to_owned())
            .collect();
        pages.push(ids);
        match &page.body["pagination"]["next_cursor"] {
            Value::String(next) => cursor = Some(next.clone()),
            _ => return pages,
        }
        assert!(pages.len() < 1_000, "{path}: the pages do not end");
    }
}

/// The whole timeline, unfiltered: (id, name) oldest first.
async fn whole_timeline(accounts: &Router, key: &str, org: Uuid) -> Vec<(String, String)> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{ORGS}/{org}/events?limit=100&cursor={c}"),
            None => format!("{ORGS}/{org}/events?limit=100"),
        };
        let page = call(accounts, Method::GET, &url, Some(key), None).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for e in page.body["items"].as_array().expect("items") {
            events.push((
                e["id"].as_str().expect("an id").to_owned(),
                e["name"].as_str().expect("a name").to_owned(),
            ));
        }
        match &page.body["pagination"]["next_cursor"] {
            Value::String(next) => cursor = Some(next.clone()),
            _ => return events,
        }
    }
}

/// `?name=` reads the page it answers (from the timeline-by-name index),
/// not the timeline between its events: the same items at 60 events as
/// at 600, where the walk it replaces read 10 times as many.
#[tokio::test]
async fn the_timeline_by_name_reads_its_page_whatever_the_timeline_holds() {
    let (state, meter) = metered_state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let key = p.secret_key.as_str();
    const LIMIT: u64 = 5;
    let mut figures = Vec::new();
    for events in [60, 600] {
        let org = create_organization(&accounts, key).await;
        // One event in ten is `rare`, spread through the timeline.
        append_events(&state, p.project_id, org, events, |i| {
            if i % 10 == 9 { "rare" } else { "common" }.to_owned()
        })
        .await;
        let path = format!("{ORGS}/{org}/events?name=rare&limit={LIMIT}");
        // Unmeasured: fills this instance's caches (the key, the project).
        call(&accounts, Method::GET, &path, Some(key), None).await;
        meter.take();
        meter.take_query_indexes();
        let first = call(&accounts, Method::GET, &path, Some(key), None).await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        assert_eq!(
            first.body["items"].as_array().map(Vec::len),
            Some(LIMIT as usize)
        );
        let reads = meter.take();
        let queries: Vec<&Read> = reads.iter().filter(|r| r.operation == "Query").collect();
        assert_eq!(queries.len(), 1, "one Query for the page: {reads:?}");
        assert_eq!(
            meter.take_query_indexes(),
            [Some(shared::keys::EVENT_NAME_INDEX.to_owned())]
        );
        assert!(queries[0].items <= LIMIT + 1, "{reads:?}");
        figures.push(reads.iter().map(|r| r.items).sum::<u64>());
    }
    assert_eq!(
        figures[0], figures[1],
        "a page by name read {figures:?} items at 60 and 600 events"
    );
    assert!(
        figures[1] <= LIMIT + 3,
        "the key, the organization and the page: {figures:?}"
    );
}

/// The pages by name hold what filtering the whole timeline gives, in its
/// order, at every page size, for system and custom events alike; a cursor
/// of the unfiltered timeline reads on by name from where it stood (as the
/// walk did, both being positions in the timeline).
#[tokio::test]
async fn the_timeline_by_name_answers_as_the_filtered_timeline() {
    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let key = p.secret_key.as_str();
    let org = create_organization(&accounts, key).await;
    let names = ["a", "b", "c#d", "a%23b"];
    append_events(&state, p.project_id, org, 70, |i| {
        names[(i * i + i / 7) % names.len()].to_owned()
    })
    .await;
    // A system event, written in the change's own transaction.
    let renamed = call(
        &accounts,
        Method::PATCH,
        &format!("{ORGS}/{org}"),
        Some(key),
        Some(r#"{"name": "Acme Two"}"#),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);

    let timeline = whole_timeline(&accounts, key, org).await;
    assert_eq!(
        timeline.len(),
        72,
        "70 custom events, a creation, an update"
    );
    let mut all_names: Vec<&str> = timeline.iter().map(|(_, name)| name.as_str()).collect();
    all_names.sort();
    all_names.dedup();
    assert!(all_names.contains(&"organization.updated"), "{all_names:?}");
    for name in all_names.iter().copied().chain(["never-sent"]) {
        let expected: Vec<String> = timeline
            .iter()
            .filter(|(_, n)| n == name)
            .map(|(id, _)| id.clone())
            .collect();
        let encoded = name.replace('%', "%25").replace('#', "%23");
        for limit in [1, 3, 7, 100] {
            let path = format!("{ORGS}/{org}/events?name={encoded}&limit={limit}");
            let got = pages(&accounts, key, &path, None).await;
            for page in &got[..got.len() - 1] {
                assert_eq!(
                    page.len(),
                    limit,
                    "{name} by {limit}: every page but the last is full"
                );
            }
            assert_eq!(got.concat(), expected, "{name} by {limit}");
        }
    }

    // The unfiltered timeline's cursor after 20 events, read on by name.
    let first = call(
        &accounts,
        Method::GET,
        &format!("{ORGS}/{org}/events?limit=20"),
        Some(key),
        None,
    )
    .await;
    let cursor = first.body["pagination"]["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let expected: Vec<String> = timeline[20..]
        .iter()
        .filter(|(_, n)| n == "a")
        .map(|(id, _)| id.clone())
        .collect();
    let got = pages(
        &accounts,
        key,
        &format!("{ORGS}/{org}/events?name=a&limit=4"),
        Some(cursor),
    )
    .await;
    assert_eq!(got.concat(), expected);

    // A cursor by name is bound to its organization like the timeline's.
    let other = create_organization(&accounts, key).await;
    let by_name = call(
        &accounts,
        Method::GET,
        &format!("{ORGS}/{org}/events?name=a&limit=1"),
        Some(key),
        None,
    )
    .await;
    let cursor = by_name.body["pagination"]["next_cursor"]
        .as_str()
        .expect("a next page");
    let crossed = call(
        &accounts,
        Method::GET,
        &format!("{ORGS}/{other}/events?name=a&limit=1&cursor={cursor}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(
        crossed.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        crossed.body
    );
}

/// A key is read from one of its copies, picked at random, so its reads
/// spread over `API_KEY_SHARDS` partitions instead of one; a revocation
/// reaches every copy in one transaction, so the very next request is
/// refused whichever copy it reads.
#[tokio::test]
async fn a_key_is_read_from_its_copies_and_revoked_on_all_of_them_at_once() {
    let (state, meter) = metered_state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let created = state
        .store
        .create_key(p.project_id, KeyKind::Secret)
        .await
        .expect("a new key");
    let key = ApiKey::parse(&created.key).expect("a key of ours");
    for shard in 0..API_KEY_SHARDS {
        let copy = state.store.api_key_copy(&key, shard).await.expect("a read");
        assert!(copy.is_some_and(|c| c.revoked_at.is_none()), "copy {shard}");
    }

    meter.take_got_partitions();
    for _ in 0..64 {
        let listed = call(
            &accounts,
            Method::GET,
            "/v1/organizations?limit=1",
            Some(&created.key),
            None,
        )
        .await;
        assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    }
    let key_prefix = format!("P#{}#KEY#{}#", p.project_id, key.hash());
    let mut copies_read: Vec<String> = meter
        .take_got_partitions()
        .into_iter()
        .filter(|pk| pk.starts_with(&key_prefix))
        .collect();
    assert_eq!(copies_read.len(), 64, "one key read per request");
    copies_read.sort();
    copies_read.dedup();
    // 64 draws over 8 copies miss 5 of them with odds below 1 in 10^25.
    assert!(copies_read.len() >= 4, "the reads sat on {copies_read:?}");

    state.store.revoke_key(&key).await.expect("revoking");
    for shard in 0..API_KEY_SHARDS {
        let copy = state.store.api_key_copy(&key, shard).await.expect("a read");
        assert!(
            copy.is_some_and(|c| c.revoked_at.is_some()),
            "copy {shard} is revoked"
        );
    }
    for attempt in 0..32 {
        let refused = call(
            &accounts,
            Method::GET,
            "/v1/organizations?limit=1",
            Some(&created.key),
            None,
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "request {attempt} after the revocation"
        );
        assert!(refused.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("revoked")));
    }
    let other = call(
        &accounts,
        Method::GET,
        "/v1/organizations?limit=1",
        Some(&p.secret_key),
        None,
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "the project's other keys keep working"
    );

    // Revoking twice keeps the first time; unknown keys and projects are 404s.
    state.store.revoke_key(&key).await.expect("revoking again");
    let unknown = ApiKey::generate(p.project_id, KeyKind::Secret).expect("a key");
    assert!(matches!(
        state.store.revoke_key(&unknown).await,
        Err(shared::Error::NotFound(_))
    ));
    assert!(matches!(
        state
            .store
            .create_key(Uuid::now_v7(), KeyKind::Secret)
            .await,
        Err(shared::Error::NotFound(_))
    ));
}

/// GSI1 copies only what its queries read: every attribute an item in it
/// carries is projected, except the CRM's and the tenant family's fields
/// and the other indexes' attributes, which no GSI1 query reads; and the
/// accounts list, which answers from it, still answers what a read of
/// each organization answers.
#[tokio::test]
async fn the_organization_index_holds_what_its_queries_read() {
    let state = state().await;
    let p = project(&state).await;
    let (accounts, crm, client) = (
        accounts::router(state.clone()),
        crm::router(state.clone()),
        client::router(state.clone()),
    );
    let key = p.secret_key.as_str();
    // Every kind of item GSI1 holds: organizations (one with CRM fields),
    // a user and a membership, a pending cleanup.
    let described = serde_json::json!({
        "title": "Big CRM Org",
        "description": "d".repeat(9_000),
        "tags": (0..50).map(|t| format!("/tags/{t}")).collect::<Vec<_>>(),
        "website": "https://big.example",
    });
    let created = call(
        &crm,
        Method::POST,
        "/organizations",
        Some(key),
        Some(&described.to_string()),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let upserted = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.publishable_key),
        Some(
            r#"{"identifier": [{"external_id": "acme"}], "name": "Acme", "data": {"plan": "pro"}}"#,
        ),
    )
    .await;
    assert_eq!(upserted.status, StatusCode::OK, "{:?}", upserted.body);
    let member = call(
        &client,
        Method::POST,
        "/api/client/organizations/users",
        Some(&p.publishable_key),
        Some(
            &serde_json::json!({
                "organization": {"identifier": [{"external_id": "acme"}]},
                "user": {"identifier": [{"external_id": "ann"}], "data": {"email": "ann@acme.example"}},
                "data": {"department": "engineering"}
            })
            .to_string(),
        ),
    )
    .await;
    assert_eq!(member.status, StatusCode::OK, "{:?}", member.body);
    let owned = create_organization(&accounts, key).await;
    let gone = create_organization(&accounts, key).await;
    let deleted = call(
        &accounts,
        Method::DELETE,
        &format!("{ORGS}/{gone}"),
        Some(key),
        None,
    )
    .await;
    assert!(deleted.status.is_success(), "{:?}", deleted.body);

    let items = integration_tests::project_items(&state, p.project_id).await;
    let indexed: Vec<_> = items
        .iter()
        .filter(|i| i.contains_key(shared::keys::GSI1PK))
        .collect();
    let kinds: std::collections::BTreeSet<&str> = indexed
        .iter()
        .filter_map(|i| i.get(shared::keys::SK).and_then(|v| v.as_s().ok()))
        .map(|sk| sk.split('#').next().unwrap_or(sk))
        .collect();
    assert_eq!(
        kinds,
        ["CLEANUP", "MEM", "ORG", "USER"].into(),
        "the kinds of item in GSI1"
    );
    let keys_and_others: Vec<&str> = [
        shared::keys::PK,
        shared::keys::SK,
        shared::keys::GSI1PK,
        shared::keys::GSI1SK,
        shared::keys::GSI2PK,
        shared::keys::GSI2SK,
        "crm",
        "tenant",
        // A user's flag that writes are conditioned on, in the table.
        "session_identity",
    ]
    .into_iter()
    .collect();
    for item in &indexed {
        for attribute in item.keys() {
            assert!(
                shared::keys::GSI1_ATTRIBUTES.contains(&attribute.as_str())
                    || keys_and_others.contains(&attribute.as_str()),
                "{attribute} is in a GSI1 item but not projected: add it to keys::GSI1_ATTRIBUTES \
                 if a GSI1 query reads it ({:?})",
                item.get(shared::keys::SK)
            );
        }
    }

    // The index's copy of the CRM organization has none of its CRM fields.
    let copies = state
        .aws
        .dynamodb
        .query()
        .table_name(&state.config.table)
        .index_name(shared::keys::GSI1)
        .key_condition_expression("GSI1PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(shared::keys::org_list_pk(p.project_id)),
        )
        .send()
        .await
        .expect("a Query of GSI1")
        .items
        .unwrap_or_default();
    assert_eq!(
        copies.len(),
        3,
        "the CRM's, the client's and the owned organization"
    );
    for copy in &copies {
        assert!(
            !copy.contains_key("crm") && !copy.contains_key("crm_search"),
            "{copy:?}"
        );
        assert!(
            copy.contains_key("accounts") || copy.contains_key("data"),
            "{copy:?}"
        );
    }

    // The list answers each organization as its read does.
    let listed = call(
        &accounts,
        Method::GET,
        &format!("{ORGS}?limit=100"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let listed = listed.body["items"].as_array().expect("items").clone();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().any(|o| o["id"] == owned.to_string()));
    for organization in listed {
        let id = organization["id"].as_str().expect("an id");
        let read = call(
            &accounts,
            Method::GET,
            &format!("{ORGS}/{id}"),
            Some(key),
            None,
        )
        .await;
        assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
        assert_eq!(organization, read.body);
    }
}

/// The feature document is read per Lambda instance once per revision: a
/// request reads its tiny revision item, and the document (up to 350 KiB)
/// only when the revision changed, so every instance sees a change on its
/// next request.
#[tokio::test]
async fn the_feature_document_is_read_once_per_revision_and_a_change_is_seen_at_once() {
    let (state, meter) = metered_state().await;
    let p = project(&state).await;
    let (one, two) = (
        tenant::router(state.clone()),
        // Another instance: a store (and caches) of its own.
        tenant::router(AppState::new(state.config.clone(), state.aws.clone())),
    );
    let key = p.secret_key.as_str();
    let path = "/v2/organization/feature-settings";
    let document = |version: &str, flag: &str| -> shared::domain::features::FeatureDocument {
        serde_json::from_value(serde_json::json!({
            "version": version,
            "feature_flags": [{"feature_name": flag, "visibility_rules": [{"type": "always"}]}]
        }))
        .expect("a feature document")
    };
    let flags = |body: &Value| -> Vec<String> {
        body["feature_flags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["feature_name"].as_str().map(str::to_owned))
            .collect()
    };
    let features_pk = shared::keys::features_version_pk(p.project_id);
    let document_pk = shared::keys::project_pk(p.project_id);
    // The partitions a request read, its key's copies left out.
    let read = || -> Vec<String> {
        meter
            .take_got_partitions()
            .into_iter()
            .filter(|pk| !pk.contains("#KEY#"))
            .collect()
    };

    let none = call(&one, Method::GET, path, Some(key), None).await;
    assert_eq!(none.status, StatusCode::OK, "{:?}", none.body);
    assert_eq!(flags(&none.body), Vec::<String>::new());
    assert_eq!(
        read(),
        vec![features_pk.clone()],
        "no document: its revision only"
    );

    state
        .store
        .put_feature_document(p.project_id, &document("1.0.0", "first"))
        .await
        .expect("importing");
    for router in [&one, &two] {
        let fresh = call(router, Method::GET, path, Some(key), None).await;
        assert_eq!(fresh.body["version"], "1.0.0", "{:?}", fresh.body);
        assert_eq!(flags(&fresh.body), ["first"]);
        assert_eq!(
            read(),
            [features_pk.clone(), document_pk.clone()],
            "the new revision, then the document"
        );
        for _ in 0..3 {
            let warm = call(router, Method::GET, path, Some(key), None).await;
            assert_eq!(flags(&warm.body), ["first"]);
            assert_eq!(
                read(),
                vec![features_pk.clone()],
                "a known revision: the cache answers"
            );
        }
    }

    state
        .store
        .put_feature_document(p.project_id, &document("2.0.0", "second"))
        .await
        .expect("replacing");
    for router in [&one, &two] {
        let changed = call(router, Method::GET, path, Some(key), None).await;
        assert_eq!(
            changed.body["version"], "2.0.0",
            "the next request sees the change"
        );
        assert_eq!(flags(&changed.body), ["second"]);
        assert_eq!(read(), [features_pk.clone(), document_pk.clone()]);
    }
}
