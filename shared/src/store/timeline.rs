//! The organization timeline: events and the per-day counters that
//! segmentation's frequency rules read. Written inside the transaction of the
//! change they record.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{build, n, s, to_item, Item};
use crate::domain::Data;
use crate::error::Error;
use crate::keys;

/// Counters are kept this long (a year of rolling windows, plus margin).
const COUNTER_RETENTION_SECS: i64 = 400 * 24 * 3600;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub data: Data,
    pub created_at: String,
    /// `system` for events the service emits, `custom` for clients' events.
    pub origin: String,
}

#[derive(Serialize)]
struct EventItem<'a> {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(flatten)]
    event: &'a TimelineEvent,
}

pub(crate) fn event_item(project: Uuid, org: Uuid, event: &TimelineEvent) -> Result<Item, Error> {
    to_item(&EventItem {
        pk: keys::org_pk(project, org),
        sk: keys::event_sk(event.id),
        event,
    })
}

/// The writes that record one event: the event (once: the put is conditional
/// on its id being new) and its day's counter.
pub(crate) fn record_event(
    table: &str,
    project: Uuid,
    org: Uuid,
    event: &TimelineEvent,
) -> Result<[TransactWriteItem; 2], Error> {
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(event_item(project, org, event)?))
            .condition_expression("attribute_not_exists(PK)")
            .build(),
    )?;
    let day = event.created_at.get(..10).unwrap_or("0000-00-00");
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + COUNTER_RETENTION_SECS;
    let counter = build(
        Update::builder()
            .table_name(table)
            .key(keys::PK, s(keys::org_pk(project, org)))
            .key(keys::SK, s(keys::counter_sk(&event.name, day)))
            .update_expression("ADD #count :one SET #name = :name, #day = :day, #ttl = :ttl")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#day", "day")
            .expression_attribute_names("#ttl", keys::TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":name", s(&event.name))
            .expression_attribute_values(":day", s(day))
            .expression_attribute_values(":ttl", n(expires))
            .build(),
    )?;
    Ok([
        TransactWriteItem::builder().put(put).build(),
        TransactWriteItem::builder().update(counter).build(),
    ])
}

impl TimelineEvent {
    pub fn system(event: crate::domain::SystemEvent, at: &str) -> Self {
        Self {
            id: crate::ids::new_id(),
            name: event.name.to_owned(),
            data: event.data,
            created_at: at.to_owned(),
            origin: "system".into(),
        }
    }
}

/// What recording a posted event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Recorded,
    /// The event id was recorded before: a redelivery, nothing written.
    Duplicate,
    /// The organization no longer exists; nothing written.
    NoOrganization,
}

impl super::Store {
    /// Records a posted event in its organization's timeline and bumps its
    /// day's counter, once, and only while the organization exists.
    pub async fn record_event(
        &self,
        project: Uuid,
        org: Uuid,
        event: &TimelineEvent,
    ) -> Result<Recorded, Error> {
        let mut writes = record_event(&self.table, project, org, event)?.to_vec();
        let exists = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::org_pk(project, org)))
            .key(keys::SK, s(keys::ORG_SK))
            .condition_expression("attribute_exists(PK)")
            .build();
        writes.push(
            TransactWriteItem::builder()
                .condition_check(build(exists)?)
                .build(),
        );
        match self.transact(writes).await? {
            super::TxOutcome::Committed => Ok(Recorded::Recorded),
            outcome if outcome.condition_failed_at(0) => Ok(Recorded::Duplicate),
            outcome if outcome.condition_failed_at(2) => Ok(Recorded::NoOrganization),
            super::TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "recording event {} was cancelled: {reasons:?}",
                event.id
            ))),
        }
    }
}

/// One page of an organization's timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelinePage {
    pub events: Vec<TimelineEvent>,
    pub next_cursor: Option<String>,
}

impl super::Store {
    /// The organization's timeline, oldest first, optionally only events of
    /// one name; `None` when the organization does not exist. The page and
    /// the organization's existence are read concurrently.
    pub async fn timeline(
        &self,
        project: Uuid,
        org: Uuid,
        name: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Option<TimelinePage>, Error> {
        let start = cursor
            .map(|c| crate::cursor::decode(project, c))
            .transpose()?;
        if let Some(start) = &start {
            let same_org = start.get(keys::PK).and_then(|v| v.as_s().ok())
                == Some(&keys::org_pk(project, org));
            let in_timeline = start
                .get(keys::SK)
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with(keys::EVENT_PREFIX));
            if !same_org || !in_timeline {
                return Err(Error::invalid("the cursor belongs to another list"));
            }
        }
        let (exists, page) = tokio::join!(
            self.get_organization(project, org),
            self.timeline_page(project, org, name, limit, start)
        );
        if exists?.is_none() {
            return Ok(None);
        }
        let (events, last) = page?;
        Ok(Some(TimelinePage {
            events,
            next_cursor: last.map(|key| crate::cursor::encode(project, &key)),
        }))
    }

    async fn timeline_page(
        &self,
        project: Uuid,
        org: Uuid,
        name: Option<&str>,
        limit: usize,
        mut start: Option<Item>,
    ) -> Result<(Vec<TimelineEvent>, Option<Item>), Error> {
        let mut events = Vec::with_capacity(limit);
        loop {
            let remaining = limit - events.len();
            let mut query = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :evt)")
                .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
                .expression_attribute_values(":evt", s(keys::EVENT_PREFIX))
                .limit(remaining as i32)
                .set_exclusive_start_key(start);
            if let Some(name) = name {
                query = query
                    .filter_expression("#name = :name")
                    .expression_attribute_names("#name", "name")
                    .expression_attribute_values(":name", s(name));
            }
            let out = query.send().await.map_err(|e| super::storage("Query", e))?;
            for item in out.items.unwrap_or_default() {
                events.push(super::from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() || events.len() >= limit {
                return Ok((events, start));
            }
        }
    }
}
