//! Cleanup of deleted organizations: the record each deletion leaves (in
//! the deleting transaction), the reports services file, and the purge of
//! everything left in the organization's partition — in batches, so a purge
//! cut short by a timeout simply runs again.

use std::collections::BTreeSet;
use std::time::Instant;

use aws_sdk_dynamodb::types::{
    ConditionCheck, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};
use uuid::Uuid;

use super::{backoff, build, from_item, key, s, to_item, Item, Store, TxOutcome};
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

/// What a purge run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purged {
    pub items: usize,
    /// Nothing is left in the partition (else: run again).
    pub done: bool,
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

    /// Deletes what is left in a deleted organization's partition
    /// (timeline, counters, memberships — and with them their user → org
    /// index entries —, settings, notes, address, schedules), a page at a
    /// time, until nothing is left or `deadline` passes. Idempotent: a run
    /// cut short is finished by the next. Refuses while the organization
    /// itself still exists. `page`: items read and deleted per round (at
    /// most 100).
    pub async fn purge_organization(
        &self,
        project: Uuid,
        org: Uuid,
        deadline: Instant,
        page: usize,
    ) -> Result<Purged, Error> {
        let mut purged = 0;
        loop {
            if Instant::now() >= deadline {
                return Ok(Purged {
                    items: purged,
                    done: false,
                });
            }
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
                .projection_expression("PK, SK")
                .consistent_read(true)
                .limit(page.clamp(1, 100) as i32)
                .send()
                .await
                .map_err(|e| super::storage("Query", e))?;
            let items: Vec<Item> = out.items.unwrap_or_default();
            if items.is_empty() {
                return Ok(Purged {
                    items: purged,
                    done: true,
                });
            }
            if items
                .iter()
                .any(|i| super::text(i, keys::SK) == keys::ORG_SK)
            {
                return Err(Error::conflict(format!(
                    "organization {org} still exists: delete it before purging"
                )));
            }
            for chunk in items.chunks(MAX_BATCH_WRITE) {
                self.delete_batch(chunk.to_vec()).await?;
                purged += chunk.len();
            }
        }
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
