//! Organization schedules and their firing. A schedule is an item in its
//! organization's partition (so it goes with the organization), counted in
//! the organization's schedule count (at most
//! [`MAX_SCHEDULES_PER_ORGANIZATION`]), and listed in the due index (GSI2)
//! while it has a next firing: in the partition of the minute it fires in
//! and its organization's shard, sorted by project, then time. Firing is one
//! transaction: advance the schedule (or remove a single one, giving its
//! slot back), conditioned on the firing time it was found with, and record
//! `scheduled.<name>` in the timeline — two overlapping scheduler runs
//! cannot both fire it, and a deleted schedule cannot fire.
//!
//! The scheduler's own state (how far it has read the index, which
//! projects' backlogs it carries over) lives under [`keys::SCHEDULER_PK`].

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::profiles::{not_found, MAX_ATTEMPTS};
use super::timeline::{single_event_writes, TimelineEvent};
use super::{backoff, build, from_item, key, n, s, storage, to_item, Item, Store, TxOutcome};
use crate::domain::schedule::{Schedule, ScheduleRequest};
use crate::domain::{IdentifierKey, Organization, Scope};
use crate::error::Error;
use crate::ids::{parse_timestamp, timestamp};
use crate::keys;
use crate::limits::MAX_SCHEDULES_PER_ORGANIZATION;

/// The minute `at` falls in (seconds and below cut off).
pub fn minute_of(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(at)
}

/// A minute as the due index names it: `YYYY-MM-DDTHH:MM`.
fn minute_label(minute: OffsetDateTime) -> String {
    timestamp(minute)[..16].to_owned()
}

fn parse_minute(label: &str) -> Option<OffsetDateTime> {
    parse_timestamp(&format!("{label}:00.000Z"))
}

/// The due partition of a schedule firing at `next_at`: its minute, but
/// never a minute before the one it is written in — the scheduler's cursor
/// stays behind the present, so an entry written now is always ahead of it.
fn due_partition(schedule: &Schedule, next_at: &str) -> String {
    let written = minute_of(OffsetDateTime::now_utc());
    let fires = parse_timestamp(next_at).map_or(written, minute_of);
    keys::due_pk(
        &minute_label(fires.max(written)),
        keys::due_shard(schedule.organization_id),
    )
}

fn schedule_item(schedule: &Schedule) -> Result<Item, Error> {
    let mut item = to_item(schedule)?;
    item.insert(
        keys::PK.into(),
        s(keys::org_pk(schedule.project_id, schedule.organization_id)),
    );
    item.insert(keys::SK.into(), s(keys::schedule_sk(&schedule.name)));
    if let Some(next_at) = &schedule.next_at {
        item.insert(keys::GSI2PK.into(), s(due_partition(schedule, next_at)));
        item.insert(keys::GSI2SK.into(), s(schedule.due_sort_key(next_at)));
    }
    Ok(item)
}

impl Schedule {
    /// Its entry's sort key in the due index, firing at `next_at`.
    fn due_sort_key(&self, next_at: &str) -> String {
        keys::due_sk(self.project_id, next_at, self.organization_id, &self.name)
    }
}

/// Adds `delta` to the organization's schedule count; `guarded`: only
/// while the count is below the limit.
fn count_schedules(
    table: &str,
    project: Uuid,
    org: Uuid,
    delta: i64,
    guarded: bool,
) -> Result<TransactWriteItem, Error> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(
            keys::org_pk(project, org),
            keys::SCHEDULE_COUNT_SK,
        )))
        .update_expression("ADD #count :delta")
        .expression_attribute_names("#count", "count")
        .expression_attribute_values(":delta", n(delta));
    if guarded {
        update = update
            .condition_expression("attribute_not_exists(#count) OR #count < :max")
            .expression_attribute_values(":max", n(MAX_SCHEDULES_PER_ORGANIZATION));
    }
    Ok(TransactWriteItem::builder()
        .update(build(update.build())?)
        .build())
}

/// The yearly `anniversary` schedule every new organization gets (its
/// first schedule: the count starts at one).
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
    Ok(vec![
        TransactWriteItem::builder().put(put).build(),
        count_schedules(table, org.project_id, org.id, 1, false)?,
    ])
}

/// The scheduler's state: where it reads the due index from, and the
/// projects whose backlog it carries over.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedulerState {
    /// The first minute not yet read through (`None`: never ran).
    pub cursor: Option<OffsetDateTime>,
    pub backlogs: Vec<Backlog>,
}

/// A project with due entries left in minutes behind the cursor: they are
/// at `from` or later.
#[derive(Clone, Debug, PartialEq)]
pub struct Backlog {
    pub project_id: Uuid,
    pub from: OffsetDateTime,
    /// Changes with every write, so that removing a backlog the scheduler
    /// has drained cannot drop one another run has just extended.
    pub revision: String,
}

/// Which entries of a due partition to read.
#[derive(Clone, Debug, PartialEq)]
pub enum DueRead {
    /// Every project's, from the start or after a sort key.
    All { after: Option<String> },
    /// One project's, from its first or after a sort key.
    Project {
        project: Uuid,
        after: Option<String>,
    },
}

/// One read of a due partition.
#[derive(Clone, Debug, PartialEq)]
pub struct DuePage {
    /// In the index's order (by project, then firing time).
    pub schedules: Vec<Schedule>,
    /// The last entry's sort key, when the partition may hold more.
    pub more_after: Option<String>,
}

impl Schedule {
    /// Its sort key in the due index (the one [`DueRead`] continues after).
    pub fn due_position(&self) -> String {
        self.due_sort_key(self.next_at.as_deref().unwrap_or_default())
    }
}

#[derive(serde::Deserialize)]
struct BacklogItem {
    project_id: Uuid,
    from: String,
    revision: String,
}

impl Store {
    /// Creates or replaces the organization's schedule of that name. A new
    /// name takes one of the organization's
    /// [`MAX_SCHEDULES_PER_ORGANIZATION`] slots (422 when none is left); a
    /// replacement keeps its slot. One transaction conditioned on the
    /// organization existing (one more when the name turns out to exist).
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
        let item = schedule_item(&schedule)?;
        let put = |condition: &str| -> Result<TransactWriteItem, Error> {
            let put = build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .condition_expression(condition)
                    .build(),
            )?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let created = self
                .transact(vec![
                    self.org_in_scope(project, org, scope)?,
                    put("attribute_not_exists(PK)")?,
                    count_schedules(&self.table, project, org, 1, true)?,
                ])
                .await?;
            match created {
                TxOutcome::Committed => return Ok(schedule),
                outcome if outcome.condition_failed_at(0) => {
                    let gone = not_found::<Organization>(org_ids);
                    return Err(self.org_out_of_scope(project, org, scope, gone).await);
                }
                // The name exists: replace it in place, keeping its slot.
                outcome if outcome.condition_failed_at(1) => {
                    let replaced = self
                        .transact(vec![
                            self.org_in_scope(project, org, scope)?,
                            put("attribute_exists(PK)")?,
                        ])
                        .await?;
                    match replaced {
                        TxOutcome::Committed => return Ok(schedule),
                        outcome if outcome.condition_failed_at(0) => {
                            let gone = not_found::<Organization>(org_ids);
                            return Err(self.org_out_of_scope(project, org, scope, gone).await);
                        }
                        // Deleted (or fired) meanwhile: create it after all.
                        _ => continue,
                    }
                }
                outcome if outcome.condition_failed_at(2) => {
                    return Err(Error::LimitExceeded(format!(
                        "the organization already has {MAX_SCHEDULES_PER_ORGANIZATION} schedules, the most one may; delete one or reuse a name (replacing a schedule keeps its slot)"
                    )))
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "schedule write lost a race; retrying");
                }
            }
        }
        Err(Error::busy(
            "the schedule is being changed concurrently; retry the request",
        ))
    }

    /// Removes the organization's schedule of that name, giving its slot
    /// back; 404 if it has none.
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
            .first_out_of_scope(project, &[Some(org)], scope)
            .await?
            .is_some()
        {
            return Err(crate::domain::scope::owned_organization());
        }
        let delete = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::org_pk(project, org),
                    keys::schedule_sk(name),
                )))
                .condition_expression("attribute_exists(PK)")
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            count_schedules(&self.table, project, org, -1, false)?,
        ];
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(()),
            outcome if outcome.condition_failed_at(0) => Err(Error::not_found(format!(
                "the organization has no schedule named `{name}`"
            ))),
            TxOutcome::Cancelled(reasons) => Err(Error::busy(format!(
                "the schedule is being changed concurrently; retry the request ({reasons:?})"
            ))),
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

    /// How many schedules the organization holds (its count item).
    pub async fn schedule_count(&self, project: Uuid, org: Uuid) -> Result<i64, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::org_pk(project, org),
                keys::SCHEDULE_COUNT_SK,
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem", e))?;
        Ok(out
            .item
            .and_then(|i| i.get("count").and_then(|v| v.as_n().ok()).cloned())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// One Query of the due partition of `minute` and `shard` (GSI2): at
    /// most `limit` entries, in the index's order.
    pub async fn due_page(
        &self,
        minute: OffsetDateTime,
        shard: u128,
        read: &DueRead,
        limit: usize,
    ) -> Result<DuePage, Error> {
        let mut query = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .expression_attribute_values(
                ":pk",
                s(keys::due_pk(&minute_label(minute_of(minute)), shard)),
            )
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        query = match read {
            DueRead::All { after: None } => query.key_condition_expression("GSI2PK = :pk"),
            DueRead::All { after: Some(after) } => query
                .key_condition_expression("GSI2PK = :pk AND GSI2SK > :after")
                .expression_attribute_values(":after", s(after)),
            // BETWEEN is inclusive: the entry read last comes again (if it
            // is still there) and is dropped below.
            DueRead::Project { project, after } => query
                .key_condition_expression("GSI2PK = :pk AND GSI2SK BETWEEN :from AND :to")
                .expression_attribute_values(
                    ":from",
                    s(after
                        .clone()
                        .unwrap_or_else(|| keys::due_project_prefix(*project))),
                )
                .expression_attribute_values(":to", s(keys::due_project_end(*project)))
                .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX)),
        };
        let out = query.send().await.map_err(|e| storage("Query", e))?;
        let again = match read {
            DueRead::Project { after, .. } => after.as_deref(),
            DueRead::All { .. } => None,
        };
        let schedules = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item::<Schedule>)
            .filter(|read| {
                read.as_ref()
                    .map_or(true, |s| Some(s.due_position().as_str()) != again)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let more_after = out
            .last_evaluated_key
            .is_some()
            .then(|| schedules.last().map(Schedule::due_position))
            .flatten();
        Ok(DuePage {
            schedules,
            more_after,
        })
    }

    /// The scheduler's cursor and the backlogs it carries (one Query of
    /// its partition, one page: at most `max_backlogs` of them).
    pub async fn scheduler_state(&self, max_backlogs: usize) -> Result<SchedulerState, Error> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::SCHEDULER_PK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("Query", e))?;
        let mut state = SchedulerState::default();
        for item in out.items.unwrap_or_default() {
            let sk = super::text(&item, keys::SK);
            if sk == keys::DUE_CURSOR_SK {
                state.cursor = parse_minute(super::text(&item, "minute"));
            } else if sk.starts_with(keys::BACKLOG_PREFIX) && state.backlogs.len() < max_backlogs {
                let backlog: BacklogItem = from_item(item)?;
                if let Some(from) = parse_minute(&backlog.from) {
                    state.backlogs.push(Backlog {
                        project_id: backlog.project_id,
                        from,
                        revision: backlog.revision,
                    });
                }
            }
        }
        Ok(state)
    }

    /// Moves the cursor forward to `minute` (never back: an overlapping
    /// run that got less far changes nothing).
    pub async fn advance_due_cursor(&self, minute: OffsetDateTime) -> Result<(), Error> {
        let label = minute_label(minute_of(minute));
        let out = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::SCHEDULER_PK, keys::DUE_CURSOR_SK)))
            .update_expression("SET #minute = :minute")
            .condition_expression("attribute_not_exists(#minute) OR #minute < :minute")
            .expression_attribute_names("#minute", "minute")
            .expression_attribute_values(":minute", s(label))
            .send()
            .await;
        conditional("UpdateItem", out).map(|_| ())
    }

    /// Records that the project has due entries left at `minute` or later
    /// (keeps an earlier record, and marks it changed either way).
    pub async fn note_backlog(&self, project: Uuid, minute: OffsetDateTime) -> Result<(), Error> {
        let label = minute_label(minute_of(minute));
        let backlog_key = key(keys::SCHEDULER_PK, keys::backlog_sk(project));
        for _ in 0..3 {
            let earliest = self
                .db
                .update_item()
                .table_name(&self.table)
                .set_key(Some(backlog_key.clone()))
                .update_expression("SET #from = :from, revision = :rev, project_id = :project")
                .condition_expression("attribute_not_exists(#from) OR #from > :from")
                .expression_attribute_names("#from", "from")
                .expression_attribute_values(":from", s(&label))
                .expression_attribute_values(":rev", s(crate::ids::new_id().to_string()))
                .expression_attribute_values(":project", s(project.to_string()))
                .send()
                .await;
            if conditional("UpdateItem", earliest)? {
                return Ok(());
            }
            // An earlier backlog is recorded: mark it changed, so that a run
            // that has just drained it does not remove it.
            let touched = self
                .db
                .update_item()
                .table_name(&self.table)
                .set_key(Some(backlog_key.clone()))
                .update_expression("SET revision = :rev")
                .condition_expression("attribute_exists(#from) AND #from <= :from")
                .expression_attribute_names("#from", "from")
                .expression_attribute_values(":from", s(&label))
                .expression_attribute_values(":rev", s(crate::ids::new_id().to_string()))
                .send()
                .await;
            if conditional("UpdateItem", touched)? {
                return Ok(());
            }
            // Removed or moved in between: record it again.
        }
        Err(Error::conflict("the scheduler's backlog kept changing"))
    }

    /// Moves a backlog's start to `minute` (all before it drained), unless
    /// it changed since it was read; `None`: removes it (all drained).
    pub async fn settle_backlog(
        &self,
        backlog: &Backlog,
        minute: Option<OffsetDateTime>,
    ) -> Result<(), Error> {
        let backlog_key = key(keys::SCHEDULER_PK, keys::backlog_sk(backlog.project_id));
        // A backlog changed by another run since it was read stands as
        // that run left it.
        match minute {
            Some(minute) => {
                let out = self
                    .db
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(backlog_key))
                    .update_expression("SET #from = :from, revision = :rev")
                    .condition_expression("revision = :seen")
                    .expression_attribute_names("#from", "from")
                    .expression_attribute_values(":from", s(minute_label(minute_of(minute))))
                    .expression_attribute_values(":rev", s(crate::ids::new_id().to_string()))
                    .expression_attribute_values(":seen", s(&backlog.revision))
                    .send()
                    .await;
                conditional("UpdateItem", out).map(|_| ())
            }
            None => {
                let out = self
                    .db
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(backlog_key))
                    .condition_expression("revision = :seen")
                    .expression_attribute_values(":seen", s(&backlog.revision))
                    .send()
                    .await;
                conditional("DeleteItem", out).map(|_| ())
            }
        }
    }

    /// Fires one due schedule: records `scheduled.<name>` with its data and
    /// advances it (or removes a single one, giving its slot back), in one
    /// transaction conditioned on its `next_at` being the one it was found
    /// with. `false` when another run fired it first, or it was deleted or
    /// changed.
    pub async fn fire_schedule(
        &self,
        schedule: &Schedule,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let Some(seen) = schedule.next_at.clone() else {
            return Ok(false);
        };
        let (project, org) = (schedule.project_id, schedule.organization_id);
        let schedule_key = key(
            keys::org_pk(project, org),
            keys::schedule_sk(&schedule.name),
        );
        for attempt in 0..super::profiles::MAX_ATTEMPTS {
            if attempt > 0 {
                super::backoff(attempt).await;
            }
            let sequence = self.event_sequence(project, org).await?;
            let condition = "next_at = :seen AND id = :id";
            let mut items = match schedule.following(now) {
                Some(next) => {
                    let update = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(schedule_key.clone()))
                        .condition_expression(condition)
                        .expression_attribute_values(":seen", s(&seen))
                        .expression_attribute_values(":id", s(schedule.id.to_string()))
                        .expression_attribute_values(":fired", s(timestamp(now)))
                        .update_expression(
                            "SET next_at = :next, GSI2PK = :partition, GSI2SK = :due, last_fired_at = :fired",
                        )
                        .expression_attribute_values(":partition", s(due_partition(schedule, &next)))
                        .expression_attribute_values(":due", s(schedule.due_sort_key(&next)))
                        .expression_attribute_values(":next", s(next));
                    vec![TransactWriteItem::builder()
                        .update(build(update.build())?)
                        .build()]
                }
                None => {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(schedule_key.clone()))
                        .condition_expression(condition)
                        .expression_attribute_values(":seen", s(&seen))
                        .expression_attribute_values(":id", s(schedule.id.to_string()));
                    vec![
                        TransactWriteItem::builder()
                            .delete(build(delete.build())?)
                            .build(),
                        count_schedules(&self.table, project, org, -1, false)?,
                    ]
                }
            };
            let event = TimelineEvent {
                id: firing_id(schedule, &seen),
                name: crate::domain::event::scheduled(&schedule.name),
                data: schedule.data.clone(),
                created_at: timestamp(now),
                origin: "system".into(),
            };
            let numbered = items.len() + 2;
            items.extend(single_event_writes(
                &self.table,
                project,
                org,
                &event,
                sequence,
            )?);
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(true),
                // Only another event of the organization took the number: the
                // firing reads it again.
                outcome
                    if outcome.condition_failed_at(numbered)
                        && (0..numbered).all(|i| !outcome.condition_failed_at(i)) =>
                {
                    tracing::debug!(schedule = %schedule.id, attempt, "firing met another event; retrying");
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::info!(schedule = %schedule.id, ?reasons, "schedule not fired: fired elsewhere, changed or deleted");
                    return Ok(false);
                }
            }
        }
        Err(Error::busy(format!(
            "firing schedule {} kept meeting other events of its organization",
            schedule.id
        )))
    }
}

/// Whether a conditional write happened: `false` when its condition did
/// not hold.
fn conditional<T, E>(
    operation: &str,
    result: Result<
        T,
        aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
) -> Result<bool, Error>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if err.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(err) => Err(storage(operation, err)),
    }
}

/// The minute after `minute`.
pub fn next_minute(minute: OffsetDateTime) -> OffsetDateTime {
    minute_of(minute) + Duration::minutes(1)
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
