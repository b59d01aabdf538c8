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

impl super::Store {
    /// Records an event in its organization's timeline and bumps its day's
    /// counter, once: a second delivery of the same event id writes nothing
    /// and answers `false`.
    pub async fn record_event(
        &self,
        project: Uuid,
        org: Uuid,
        event: &TimelineEvent,
    ) -> Result<bool, Error> {
        let writes = record_event(&self.table, project, org, event)?;
        match self.transact(writes.to_vec()).await? {
            super::TxOutcome::Committed => Ok(true),
            outcome if outcome.condition_failed_at(0) => Ok(false),
            super::TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "recording event {} was cancelled: {reasons:?}",
                event.id
            ))),
        }
    }
}
