//! Cleanup of deleted organizations: the record and the purge job each
//! deletion leaves (in the deleting transaction), the reports services
//! file, and the purge itself — in bounded steps, each moving the job on,
//! so a purge of any size goes on through its own messages, and one whose
//! message is lost is announced again by the sweep of due purges.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{backoff, build, from_item, key, n, s, to_item, Item, Store, TxOutcome};
use crate::domain::cleanup::{
    is_complete, validate_service_name, OrganizationCleanupStatus, OrganizationToCleanup,
    MAX_OPERATIONS,
};
use crate::error::Error;
use crate::keys;

/// DynamoDB deletes at most this many items in one `BatchWriteItem`.
const MAX_BATCH_WRITE: usize = 25;

/// A cleanup record with every report filed so far.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanupState {
    pub record: OrganizationToCleanup,
    pub reports: Vec<OrganizationCleanupStatus>,
    pub completed_at: Option<String>,
}

impl CleanupState {
    pub fn complete(&self, expected: &BTreeSet<String>) -> bool {
        is_complete(
            expected,
            self.reports.iter().map(|r| r.service_name.as_str()),
        )
    }
}

/// One page of pending cleanups.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanupPage {
    pub records: Vec<OrganizationToCleanup>,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
}

/// Claims released and items deleted per purge step, at most: one Query
/// page of the partition, or one transaction of releases.
pub const PURGE_PAGE: usize = 100;

/// Memberships removed in one transaction (two items each: the
/// membership and its user's count).
const MEMBERSHIPS_PER_TRANSACTION: usize = 50;

/// How long a purge may go without a step before the sweep announces it
/// again: longer than a step takes with its message's delivery (the
/// cleanup function's timeout is 60 s).
pub const PURGE_LEASE: time::Duration = time::Duration::minutes(5);

/// The first step is due this long after the delete: its announcement
/// normally starts it at once; when the deleting request timed out before
/// announcing it, the next sweep after this starts it.
pub const PURGE_START: time::Duration = time::Duration::minutes(2);

/// What one purge step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgeStep {
    /// Released claims or deleted items; step `next` goes on.
    Advanced { next: u64, items: usize },
    /// Nothing is left in the partition: the report is what remains, then
    /// [`Store::finish_purge`].
    Emptied { step: u64 },
    /// The message named a step already done (a redelivery, or the sweep's
    /// announcement met the running chain): nothing was done.
    Stale,
    /// No purge is pending for the organization (it finished before).
    Finished,
}

/// A purge the sweep found due: its next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuePurge {
    pub project_id: Uuid,
    pub org_id: Uuid,
    pub step: u64,
}

/// A claim a deleted organization held: an identifier marker or a domain
/// claim (both name their holder in `owner_id`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClaimKey {
    pub pk: String,
    pub sk: String,
}

/// A deleted organization's purge (beside its cleanup record): what it
/// still has to release and the step it is at.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PurgeJob {
    project_id: Uuid,
    org_id: Uuid,
    /// Steps done; the step the next message names.
    step: u64,
    release: Vec<ClaimKey>,
    /// The organization's list entries (in per-project partitions) that
    /// did not fit its deleting transaction: the deleting request removes
    /// them right after it, and these steps remove what a request that
    /// died first left behind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    entries: Vec<ClaimKey>,
    due_at: String,
}

fn still_exists(org: Uuid) -> Error {
    Error::conflict(format!(
        "organization {org} still exists: delete it before purging"
    ))
}

/// The deleting transaction's purge job, due [`PURGE_START`] from now
/// unless its announcement starts it first: the claims it releases, the
/// list entries it removes.
pub(crate) fn record_purge(
    table: &str,
    project: Uuid,
    org: Uuid,
    release: Vec<ClaimKey>,
    entries: Vec<ClaimKey>,
) -> Result<TransactWriteItem, Error> {
    let due_at = crate::ids::timestamp(time::OffsetDateTime::now_utc() + PURGE_START);
    let job = PurgeJob {
        project_id: project,
        org_id: org,
        step: 0,
        release,
        entries,
        due_at: due_at.clone(),
    };
    let mut item = to_item(&job)?;
    item.insert(keys::PK.into(), s(keys::cleanup_pk(project, org)));
    item.insert(keys::SK.into(), s(keys::PURGE_SK));
    item.insert(
        keys::GSI2PK.into(),
        s(keys::purge_due_pk(keys::purge_shard(org))),
    );
    item.insert(
        keys::GSI2SK.into(),
        s(keys::purge_due_sk(&due_at, project, org)),
    );
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The deleting transaction's record of what must be cleaned up.
pub(crate) fn record_cleanup(
    table: &str,
    project: Uuid,
    org: Uuid,
    record: &OrganizationToCleanup,
) -> Result<TransactWriteItem, Error> {
    let mut item = to_item(record)?;
    item.insert(keys::PK.into(), s(keys::cleanup_pk(project, org)));
    item.insert(keys::SK.into(), s(keys::CLEANUP_SK));
    item.insert(keys::GSI1PK.into(), s(keys::cleanup_list_pk(project)));
    item.insert(
        keys::GSI1SK.into(),
        s(keys::cleanup_list_sk(&record.deleted_at, org)),
    );
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl Store {
    /// The cleanup record of a deleted organization and its reports: one
    /// Query.
    pub async fn cleanup_state(
        &self,
        project: Uuid,
        org: Uuid,
    ) -> Result<Option<CleanupState>, Error> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::cleanup_pk(project, org)))
            .consistent_read(true);
        let mut record = None;
        let mut completed_at = None;
        let mut reports = Vec::new();
        for item in self.query_all(query).await? {
            let sk = super::text(&item, keys::SK).to_owned();
            if sk == keys::CLEANUP_SK {
                completed_at = item
                    .get("completed_at")
                    .and_then(|v| v.as_s().ok())
                    .cloned();
                record = Some(from_item::<OrganizationToCleanup>(item)?);
            } else if sk.starts_with(keys::REPORT_PREFIX) {
                reports.push(from_item(item)?);
            }
        }
        Ok(record.map(|record| CleanupState {
            record,
            reports,
            completed_at,
        }))
    }

    /// The project's pending cleanups, oldest deletion first (one Query).
    pub async fn pending_cleanups(
        &self,
        project: Uuid,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<CleanupPage, Error> {
        let listing = super::paging::Listing {
            index: Some(keys::GSI1),
            partition_attribute: keys::GSI1PK,
            partition: keys::cleanup_list_pk(project),
            sort_prefix: None,
        };
        let page = super::paging::page(self, project, listing, limit, cursor).await?;
        Ok(CleanupPage {
            records: page
                .items
                .into_iter()
                .map(from_item)
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
            previous_cursor: page.previous_cursor,
        })
    }

    /// Files (or replaces) a service's report, held by the record existing;
    /// when every expected service has reported, the record leaves the
    /// pending list. Answers the state after the report.
    pub async fn file_cleanup_report(
        &self,
        project: Uuid,
        org: Uuid,
        report: &OrganizationCleanupStatus,
        expected: &BTreeSet<String>,
    ) -> Result<CleanupState, Error> {
        validate_service_name(&report.service_name)?;
        if report.operations.len() > MAX_OPERATIONS {
            return Err(Error::invalid(format!(
                "a report holds at most {MAX_OPERATIONS} operations"
            )));
        }
        let mut item = to_item(report)?;
        item.insert(keys::PK.into(), s(keys::cleanup_pk(project, org)));
        item.insert(keys::SK.into(), s(keys::report_sk(&report.service_name)));
        item.insert("reported_at".into(), s(crate::ids::now()));
        let check = build(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::cleanup_pk(project, org), keys::CLEANUP_SK)))
                .condition_expression("attribute_exists(PK)")
                .build(),
        )?;
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match self.transact(items).await? {
            TxOutcome::Committed => {}
            outcome if outcome.condition_failed_at(0) => {
                return Err(Error::not_found(format!(
                    "no deleted organization {org} awaits cleanup"
                )))
            }
            TxOutcome::Cancelled(reasons) => {
                return Err(Error::Storage(format!(
                    "filing the report was cancelled: {reasons:?}"
                )))
            }
        }
        let mut state = self.cleanup_state(project, org).await?.ok_or_else(|| {
            Error::not_found(format!("no deleted organization {org} awaits cleanup"))
        })?;
        if state.completed_at.is_none() && state.complete(expected) {
            let now = crate::ids::now();
            self.db
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::cleanup_pk(project, org), keys::CLEANUP_SK)))
                .update_expression("REMOVE GSI1PK, GSI1SK SET completed_at = :now")
                .expression_attribute_values(":now", s(&now))
                .send()
                .await
                .map_err(|e| super::storage("UpdateItem", e))?;
            state.completed_at = Some(now);
        }
        Ok(state)
    }

    /// One bounded step of a deleted organization's purge: `step` is the
    /// step its message names (`None`: an announcement, which runs
    /// whatever step is next). The first steps release the identifiers and
    /// domains the organization held, [`PURGE_PAGE`] a step, then remove
    /// the list entries its deletion left to it (as many a step); the rest walk
    /// its partition a page at a time, deleting what they read, until a
    /// step reads nothing (its schedules go first, in one step of their
    /// own, so they stop firing). Each step moves the purge on with a write
    /// conditioned on the step it did, so a redelivered message, or two
    /// messages for one step, change nothing the first did not. Refuses
    /// while the organization itself still exists.
    pub async fn purge_step(
        &self,
        project: Uuid,
        org: Uuid,
        step: Option<u64>,
    ) -> Result<PurgeStep, Error> {
        let Some(job) = self.purge_job(project, org).await? else {
            if self.get_organization(project, org).await?.is_some() {
                return Err(still_exists(org));
            }
            return Ok(PurgeStep::Finished);
        };
        if step.is_some_and(|step| step != job.step) {
            return Ok(PurgeStep::Stale);
        }
        let release_steps = job.release.len().div_ceil(PURGE_PAGE) as u64;
        let entry_steps = release_steps + job.entries.len().div_ceil(PURGE_PAGE) as u64;
        let items = if job.step < release_steps {
            let from = job.step as usize * PURGE_PAGE;
            let to = (from + PURGE_PAGE).min(job.release.len());
            self.release_claims(org, &job.release[from..to]).await?
        } else if job.step < entry_steps {
            // An entry names its organization in its key: removing one
            // that is already gone changes nothing.
            let from = (job.step - release_steps) as usize * PURGE_PAGE;
            let to = (from + PURGE_PAGE).min(job.entries.len());
            let page = &job.entries[from..to];
            self.remove_items(page.iter().map(|e| key(&e.pk, &e.sk)).collect())
                .await?;
            page.len()
        } else if job.step == entry_steps {
            self.remove_schedules(project, org).await?
        } else {
            let page = self.partition_page(project, org).await?;
            if page.is_empty() {
                return Ok(PurgeStep::Emptied { step: job.step });
            }
            if page
                .iter()
                .any(|i| super::text(i, keys::SK) == keys::ORG_SK)
            {
                return Err(still_exists(org));
            }
            self.delete_partition_page(project, page).await?
        };
        if !self.advance_purge(project, org, job.step).await? {
            return Ok(PurgeStep::Stale);
        }
        Ok(PurgeStep::Advanced {
            next: job.step + 1,
            items,
        })
    }

    /// The purge is over (its report filed): its job leaves the pending
    /// purges. Idempotent.
    pub async fn finish_purge(&self, project: Uuid, org: Uuid) -> Result<(), Error> {
        self.db
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::cleanup_pk(project, org), keys::PURGE_SK)))
            .send()
            .await
            .map_err(|e| super::storage("DeleteItem", e))?;
        Ok(())
    }

    /// Purges whose `due_at` has passed without a step moving them on (the
    /// delete's announcement was never sent, a continuation was lost):
    /// at most `limit` per shard of the pending purges, oldest first.
    pub async fn due_purges(&self, now: &str, limit: usize) -> Result<Vec<DuePurge>, Error> {
        let items = self
            .due_on_gsi2((0..keys::PURGE_SHARDS).map(keys::purge_due_pk), now, limit)
            .await?;
        items
            .into_iter()
            .map(|item| {
                let job: PurgeJob = from_item(item)?;
                Ok(DuePurge {
                    project_id: job.project_id,
                    org_id: job.org_id,
                    step: job.step,
                })
            })
            .collect()
    }

    /// Gives a due purge another lease before it is announced again, so
    /// the next sweep does not announce it too: false when a step moved it
    /// on meanwhile (it is not lost after all).
    pub async fn postpone_purge(&self, due: &DuePurge) -> Result<bool, Error> {
        self.move_purge(due.project_id, due.org_id, due.step, due.step)
            .await
    }

    async fn advance_purge(&self, project: Uuid, org: Uuid, done: u64) -> Result<bool, Error> {
        self.move_purge(project, org, done, done + 1).await
    }

    /// Sets the purge's step (from `seen`, else nothing) and its next
    /// `due_at`, one lease from now.
    async fn move_purge(
        &self,
        project: Uuid,
        org: Uuid,
        seen: u64,
        step: u64,
    ) -> Result<bool, Error> {
        let due_at = crate::ids::timestamp(time::OffsetDateTime::now_utc() + PURGE_LEASE);
        let result = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::cleanup_pk(project, org), keys::PURGE_SK)))
            .condition_expression("#step = :seen")
            .update_expression("SET #step = :step, due_at = :due, GSI2SK = :sk")
            .expression_attribute_names("#step", "step")
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":due", s(&due_at))
            .expression_attribute_values(":sk", s(keys::purge_due_sk(&due_at, project, org)))
            .send()
            .await;
        super::conditional(result, "UpdateItem")
    }

    async fn purge_job(&self, project: Uuid, org: Uuid) -> Result<Option<PurgeJob>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::cleanup_pk(project, org), keys::PURGE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// Gives up identifier markers and domain claims that still name the
    /// organization (one that has been taken over by a new organization
    /// meanwhile is left alone): one transaction, again without those
    /// whose condition failed.
    async fn release_claims(&self, org: Uuid, claims: &[ClaimKey]) -> Result<usize, Error> {
        let mut pending: Vec<&ClaimKey> = claims.iter().collect();
        while !pending.is_empty() {
            let deletes = pending
                .iter()
                .map(|claim| {
                    let delete = build(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(&claim.pk, &claim.sk)))
                            .condition_expression("attribute_not_exists(PK) OR owner_id = :org")
                            .expression_attribute_values(":org", s(org.to_string()))
                            .build(),
                    )?;
                    Ok(TransactWriteItem::builder().delete(delete).build())
                })
                .collect::<Result<Vec<_>, Error>>()?;
            match self.transact(deletes).await? {
                TxOutcome::Committed => return Ok(pending.len()),
                outcome => {
                    let before = pending.len();
                    let mut index = 0;
                    pending.retain(|_| {
                        index += 1;
                        !outcome.condition_failed_at(index - 1)
                    });
                    if pending.len() == before {
                        return Err(Error::Storage(format!(
                            "releasing a deleted organization's claims was cancelled: {outcome:?}"
                        )));
                    }
                }
            }
        }
        Ok(0)
    }

    /// The organization's schedules (at most
    /// [`crate::limits::MAX_SCHEDULES_PER_ORGANIZATION`], one page), before
    /// the walk of the partition: they sort after its timeline, which may
    /// take many steps, and until they are gone the scheduler may still
    /// fire them into the deleted organization's timeline.
    async fn remove_schedules(&self, project: Uuid, org: Uuid) -> Result<usize, Error> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :schedules)")
            .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
            .expression_attribute_values(":schedules", s(keys::SCHEDULE_PREFIX))
            .projection_expression("PK, SK")
            .consistent_read(true)
            .limit(PURGE_PAGE as i32)
            .send()
            .await
            .map_err(|e| super::storage("Query", e))?;
        let schedules = out.items.unwrap_or_default();
        let count = schedules.len();
        self.remove_items(schedules).await?;
        Ok(count)
    }

    /// One page of what is left in the organization's partition (keys
    /// only), from its start: what earlier steps deleted is gone.
    async fn partition_page(&self, project: Uuid, org: Uuid) -> Result<Vec<Item>, Error> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
            .projection_expression("PK, SK")
            .consistent_read(true)
            .limit(PURGE_PAGE as i32)
            .send()
            .await
            .map_err(|e| super::storage("Query", e))?;
        Ok(out.items.unwrap_or_default())
    }

    /// Deletes one page of the partition. A membership goes in a
    /// transaction with its user's organization count (its user → org
    /// index entry is the membership item itself); everything else — the
    /// timeline, counters, settings, notes, address, schedules with their
    /// due entries, and the index entries kept in the organization's
    /// partition — in batches.
    async fn delete_partition_page(&self, project: Uuid, page: Vec<Item>) -> Result<usize, Error> {
        let count = page.len();
        let (memberships, rest): (Vec<Item>, Vec<Item>) = page
            .into_iter()
            .partition(|i| super::text(i, keys::SK).starts_with(keys::MEMBERSHIP_PREFIX));
        self.remove_memberships(project, memberships).await?;
        // Index entries kept in the partition go here, with the rest.
        self.remove_items(rest).await?;
        Ok(count)
    }

    /// The purge's removal of memberships: each with its user's count, in
    /// transactions of [`MEMBERSHIPS_PER_TRANSACTION`]. A membership
    /// already gone (another run of the same step) is left out and the
    /// rest go again, so no user is counted off twice.
    async fn remove_memberships(&self, project: Uuid, memberships: Vec<Item>) -> Result<(), Error> {
        for chunk in memberships.chunks(MEMBERSHIPS_PER_TRANSACTION) {
            let mut pending: Vec<(Item, Uuid)> = chunk
                .iter()
                .filter_map(|item| {
                    let user = super::text(item, keys::SK)
                        .strip_prefix(keys::MEMBERSHIP_PREFIX)?
                        .parse()
                        .ok()?;
                    Some((item.clone(), user))
                })
                .collect();
            while !pending.is_empty() {
                let mut writes = Vec::with_capacity(pending.len() * 2);
                for (membership, user) in &pending {
                    let delete = build(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(membership.clone()))
                            .condition_expression("attribute_exists(PK)")
                            .build(),
                    )?;
                    writes.push(TransactWriteItem::builder().delete(delete).build());
                    writes.push(super::memberships::count_user_organizations(
                        &self.table,
                        project,
                        *user,
                        -1,
                    )?);
                }
                match self.transact(writes).await? {
                    TxOutcome::Committed => break,
                    outcome => {
                        let before = pending.len();
                        let mut index = 0;
                        pending.retain(|_| {
                            index += 2;
                            !outcome.condition_failed_at(index - 2)
                        });
                        if pending.len() == before {
                            return Err(Error::Storage(format!(
                                "removing a deleted organization's memberships was cancelled: {outcome:?}"
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The purge's removal of everything else it reads, in batches: the
    /// index entries a family keeps in the organization's partition
    /// included (the walk finds them without knowing their kinds). An
    /// index entry kept in another partition is not found by the walk: its
    /// removal by key belongs in [`Store::purge_step`], beside the
    /// releases.
    async fn remove_items(&self, items: Vec<Item>) -> Result<(), Error> {
        for chunk in items.chunks(MAX_BATCH_WRITE) {
            self.delete_batch(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// One `BatchWriteItem` of deletes (repeated for what DynamoDB leaves
    /// unprocessed).
    async fn delete_batch(&self, keys_to_delete: Vec<Item>) -> Result<(), Error> {
        let mut pending: Vec<WriteRequest> = keys_to_delete
            .into_iter()
            .map(|k| {
                build(DeleteRequest::builder().set_key(Some(k)).build())
                    .map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect::<Result<_, _>>()?;
        let mut attempt = 0;
        while !pending.is_empty() {
            let out = self
                .db
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut pending))
                .send()
                .await
                .map_err(|e| super::storage("BatchWriteItem", e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                if attempt >= super::profiles::MAX_ATTEMPTS {
                    return Err(Error::Storage(
                        "BatchWriteItem kept leaving deletes unprocessed".into(),
                    ));
                }
                backoff(attempt).await;
            }
        }
        Ok(())
    }
}
