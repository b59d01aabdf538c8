//! Organization schedules and their firing. A schedule is an item in its
//! organization's partition (so it goes with the organization), listed in
//! the due index (GSI2) while it has a next firing. Firing is one
//! transaction: advance the schedule (conditioned on the firing time it was
//! found with) and record `scheduled.<name>` in the timeline — two
//! overlapping scheduler runs cannot both fire it, and a deleted schedule
//! cannot fire.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use time::OffsetDateTime;
use uuid::Uuid;

use super::profiles::not_found;
use super::timeline::{record_event, TimelineEvent};
use super::{build, from_item, key, s, storage, to_item, Item, Store, TxOutcome};
use crate::domain::schedule::{Schedule, ScheduleRequest};
use crate::domain::{IdentifierKey, Organization, Scope};
use crate::error::Error;
use crate::ids::{parse_timestamp, timestamp};
use crate::keys;

fn schedule_item(schedule: &Schedule) -> Result<Item, Error> {
    let mut item = to_item(schedule)?;
    item.insert(
        keys::PK.into(),
        s(keys::org_pk(schedule.project_id, schedule.organization_id)),
    );
    item.insert(keys::SK.into(), s(keys::schedule_sk(&schedule.name)));
    if let Some(next_at) = &schedule.next_at {
        item.insert(
            keys::GSI2PK.into(),
            s(keys::due_pk(keys::due_shard(schedule.organization_id))),
        );
        item.insert(
            keys::GSI2SK.into(),
            s(keys::due_sk(
                next_at,
                schedule.project_id,
                schedule.organization_id,
                &schedule.name,
            )),
        );
    }
    Ok(item)
}

/// The yearly `anniversary` schedule every new organization gets.
pub(crate) fn anniversary_writes(
    table: &str,
    org: &Organization,
    now: &str,
) -> Result<Vec<TransactWriteItem>, Error> {
    let created = parse_timestamp(now).unwrap_or_else(OffsetDateTime::now_utc);
    let interval = crate::domain::schedule::Interval::parse("1 year")?;
    let request = ScheduleRequest {
        name: "anniversary".into(),
        scheduled_at: None,
        start_at: Some(interval.after(created)),
        interval: Some(("1 year".into(), interval)),
        data: Default::default(),
    };
    let schedule = request.schedule(org.project_id, org.id, created);
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(schedule_item(&schedule)?))
            .build(),
    )?;
    Ok(vec![TransactWriteItem::builder().put(put).build()])
}

impl Store {
    /// Creates or replaces the organization's schedule of that name, in
    /// one transaction conditioned on the organization existing.
    pub async fn upsert_schedule(
        &self,
        project: Uuid,
        org_ids: &[IdentifierKey],
        request: &ScheduleRequest,
        scope: Scope,
    ) -> Result<Schedule, Error> {
        scope.check_identifiers(org_ids)?;
        let org = self.resolve_organization_id(project, org_ids).await?;
        let schedule = request.schedule(project, org, OffsetDateTime::now_utc());
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(schedule_item(&schedule)?))
                .build(),
        )?;
        let items = vec![
            self.org_in_scope(project, org, scope)?,
            TransactWriteItem::builder().put(put).build(),
        ];
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(schedule),
            outcome if outcome.condition_failed_at(0) => {
                let gone = not_found::<Organization>(org_ids);
                Err(self.org_out_of_scope(project, org, scope, gone).await)
            }
            TxOutcome::Cancelled(reasons) => Err(Error::conflict(format!(
                "the schedule is being changed concurrently; retry the request ({reasons:?})"
            ))),
        }
    }

    /// Removes the organization's schedule of that name; 404 if it has none.
    pub async fn delete_schedule(
        &self,
        project: Uuid,
        org_ids: &[IdentifierKey],
        name: &str,
        scope: Scope,
    ) -> Result<(), Error> {
        scope.check_identifiers(org_ids)?;
        let org = self.resolve_organization_id(project, org_ids).await?;
        // Owners never join an organization after its creation, so a read
        // without owners stays true for the delete that follows.
        if self
            .first_out_of_scope(project, &[org], scope)
            .await?
            .is_some()
        {
            return Err(crate::domain::scope::owned_organization());
        }
        let deleted = self
            .db
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::org_pk(project, org),
                keys::schedule_sk(name),
            )))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::not_found(format!(
                    "the organization has no schedule named `{name}`"
                )))
            }
            Err(err) => Err(storage("DeleteItem", err)),
        }
    }

    pub async fn get_schedule(
        &self,
        project: Uuid,
        org: Uuid,
        name: &str,
    ) -> Result<Option<Schedule>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::org_pk(project, org),
                keys::schedule_sk(name),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// Schedules due at `now`, across projects: one Query per due-index
    /// shard (GSI2), never a Scan.
    pub async fn due_schedules(&self, now: OffsetDateTime) -> Result<Vec<Schedule>, Error> {
        let until = format!("{}~", timestamp(now));
        let mut due = Vec::new();
        for shard in 0..keys::DUE_SHARDS {
            let query = self
                .db
                .query()
                .table_name(&self.table)
                .index_name(keys::GSI2)
                .key_condition_expression("GSI2PK = :pk AND GSI2SK <= :until")
                .expression_attribute_values(":pk", s(keys::due_pk(shard)))
                .expression_attribute_values(":until", s(&until));
            for item in self.query_all(query).await? {
                due.push(from_item(item)?);
            }
        }
        Ok(due)
    }

    /// Fires one due schedule: records `scheduled.<name>` with its data and
    /// advances it (or retires a single one), in one transaction
    /// conditioned on its `next_at` being the one it was found with.
    /// `false` when another run fired it first, or it was deleted or changed.
    pub async fn fire_schedule(
        &self,
        schedule: &Schedule,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let Some(seen) = schedule.next_at.clone() else {
            return Ok(false);
        };
        let (project, org) = (schedule.project_id, schedule.organization_id);
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::org_pk(project, org),
                keys::schedule_sk(&schedule.name),
            )))
            .condition_expression("next_at = :seen AND id = :id")
            .expression_attribute_values(":seen", s(&seen))
            .expression_attribute_values(":id", s(schedule.id.to_string()))
            .expression_attribute_values(":fired", s(timestamp(now)));
        update = match schedule.following(now) {
            Some(next) => update
                .update_expression("SET next_at = :next, GSI2SK = :due, last_fired_at = :fired")
                .expression_attribute_values(
                    ":due",
                    s(keys::due_sk(&next, project, org, &schedule.name)),
                )
                .expression_attribute_values(":next", s(next)),
            None => update
                .update_expression("SET last_fired_at = :fired REMOVE next_at, GSI2PK, GSI2SK"),
        };
        let event = TimelineEvent {
            id: firing_id(schedule, &seen),
            name: format!("scheduled.{}", schedule.name),
            data: schedule.data.clone(),
            created_at: timestamp(now),
            origin: "system".into(),
        };
        let mut items = vec![TransactWriteItem::builder()
            .update(build(update.build())?)
            .build()];
        items.extend(record_event(&self.table, project, org, &event)?);
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(true),
            TxOutcome::Cancelled(reasons) => {
                tracing::info!(schedule = %schedule.id, ?reasons, "schedule not fired: fired elsewhere, changed or deleted");
                Ok(false)
            }
        }
    }
}

/// The event id of one firing: the same for every run that finds the same
/// firing (time-sortable, by the firing time).
fn firing_id(schedule: &Schedule, next_at: &str) -> Uuid {
    use sha2::{Digest, Sha256};
    let millis = parse_timestamp(next_at)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as u64)
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{}#{next_at}", schedule.id));
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}
