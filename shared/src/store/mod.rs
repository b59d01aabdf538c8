//! The single-table store. Handlers never build DynamoDB expressions; they
//! call these methods, which use the fewest round trips each operation can.

mod addresses;
mod cache;
mod cleanup;
mod crm;
mod domains;
mod fan_out;
mod issuers;
mod memberships;
mod notes;
mod org_index;
mod organizations;
mod owner_names;
mod paging;
mod profiles;
mod projects;
mod schedules;
mod segments;
mod size;
mod tenant;
pub mod timeline;
mod users;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::Serialize;

use crate::cursor::CursorKey;
use crate::error::Error;

pub use cleanup::{
    CleanupPage, CleanupState, DuePurge, PurgeStep, PURGE_LEASE, PURGE_PAGE, PURGE_START,
};
pub use domains::find_domain;
pub use memberships::MembershipPage;
pub use notes::{NotePage, MAX_LISTED_NOTES};
pub use org_index::{OrgListPage, COUNT_AHEAD_PAGES, MAX_CANDIDATES};
pub use organizations::{MatchStep, OrganizationPage, Upserted, FAN_OUT_STEP};
pub use owner_names::{OwnerNameJob, OwnerNameStep, OWNER_NAME_PAGE};
pub use projects::{ApiKeyRecord, CreatedKey, CreatedProject, Project};
pub use schedules::{minute_of, next_minute, Backlog, DuePage, DueRead, SchedulerState};
pub use segments::{SegmentPage, Selected, MAX_EXAMINED};
pub use tenant::{NewOwner, WithSettings};

pub type Item = HashMap<String, AttributeValue>;

/// A string attribute of an item (a key attribute, say); empty when absent.
pub(crate) fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

/// DynamoDB accepts at most this many items in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

#[derive(Clone, Debug)]
pub struct Store {
    db: aws_sdk_dynamodb::Client,
    table: String,
    identifier_cache: std::sync::Arc<cache::IdentifierCache>,
    cursors: CursorKey,
    feature_cache: std::sync::Arc<tenant::FeatureCache>,
}

impl Store {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>, cursors: CursorKey) -> Self {
        Self {
            db,
            table: table.into(),
            identifier_cache: Default::default(),
            cursors,
            feature_cache: Default::default(),
        }
    }

    /// The same store (its caches shared) over another client.
    pub fn with_client(&self, db: aws_sdk_dynamodb::Client) -> Self {
        Self { db, ..self.clone() }
    }

    /// Signs and checks the cursors of every list.
    pub fn cursors(&self) -> &CursorKey {
        &self.cursors
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.db
    }

    /// Every item of one partition of GSI1, read as `T` (one paged Query).
    async fn index_partition<T: serde::de::DeserializeOwned>(
        &self,
        partition: String,
    ) -> Result<Vec<T>, Error> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(crate::keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(partition));
        self.query_all(query)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Every item a Query selects, following its pages.
    async fn query_all(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| storage("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Runs one transaction. A cancelled transaction is not an error here:
    /// the caller decides what each item's cancellation reason means.
    /// Every write path goes through here, so this is where each item is
    /// measured against DynamoDB's size limits before anything is sent.
    ///
    /// A transaction cancelled only because another one was in flight on
    /// some of its items (`TransactionConflict`) wrote nothing and decided
    /// nothing: it is sent again, unchanged, after a short randomised pause,
    /// up to [`CONFLICT_ATTEMPTS`] times in all; then the request is
    /// [`Error::Busy`] (409, `x-should-retry: true`), never a 5xx.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<TxOutcome, Error> {
        size::check_transaction(&items)?;
        let request = self
            .db
            .transact_write_items()
            .set_transact_items(Some(items));
        for attempt in 0..CONFLICT_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let outcome = match request.clone().send().await {
                Ok(_) => TxOutcome::Committed,
                Err(err) => match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                        TxOutcome::Cancelled(
                            cancelled
                                .cancellation_reasons()
                                .iter()
                                .map(|r| r.code().unwrap_or("None").to_owned())
                                .collect(),
                        )
                    }
                    Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                        TxOutcome::Cancelled(vec!["TransactionInProgress".into()])
                    }
                    _ => return Err(storage("TransactWriteItems", err)),
                },
            };
            if !outcome.only_conflicts() {
                return Ok(outcome);
            }
            tracing::debug!(
                attempt,
                "transaction met another in flight; sending it again"
            );
        }
        Err(in_flight_conflict())
    }
}

/// Times one transaction is sent while it only meets transactions in
/// flight on its items (the pauses between add up to about 0.2 s).
const CONFLICT_ATTEMPTS: u32 = 5;

/// What a write that kept meeting other writes in flight on its items
/// returns: the same request may well succeed a moment later.
fn in_flight_conflict() -> Error {
    Error::busy("other changes to the same items were in progress; retry the request")
}

/// DynamoDB's cancellation reason for an item another transaction in
/// flight holds.
const CONFLICT: &str = "TransactionConflict";

#[derive(Debug)]
pub(crate) enum TxOutcome {
    Committed,
    /// One reason per item, in order (`None` for items that did not fail).
    Cancelled(Vec<String>),
}

impl TxOutcome {
    /// Cancelled because items were in other transactions in flight, and
    /// for no other reason.
    fn only_conflicts(&self) -> bool {
        match self {
            TxOutcome::Committed => false,
            TxOutcome::Cancelled(reasons) => {
                reasons.iter().any(|r| r == CONFLICT)
                    && reasons.iter().all(|r| r == CONFLICT || r == "None")
            }
        }
    }

    pub(crate) fn condition_failed_at(&self, index: usize) -> bool {
        matches!(self, TxOutcome::Cancelled(reasons) if reasons.get(index).map(String::as_str) == Some("ConditionalCheckFailed"))
    }
}

/// Wraps an SDK failure the caller cannot fix, keeping its cause for the log.
/// A single-item write of an item a transaction in flight holds
/// (`TransactionConflictException`) is [`Error::Busy`]: it passes by itself.
pub fn storage<E, R>(operation: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if err.code() == Some("TransactionConflictException") {
        tracing::debug!(operation, "a transaction in flight held the item");
        return in_flight_conflict();
    }
    let code = err.code().unwrap_or("unknown").to_owned();
    let message = err.message().unwrap_or_default().to_owned();
    Error::Storage(format!("{operation} failed: {code}: {message} ({err:?})"))
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, Error> {
    serde_dynamo::to_item(value).map_err(|e| Error::Internal(format!("serialising an item: {e}")))
}

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item).map_err(|e| Error::Internal(format!("reading an item: {e}")))
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (crate::keys::PK.to_owned(), s(pk)),
        (crate::keys::SK.to_owned(), s(sk)),
    ])
}

pub fn build<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, Error> {
    result.map_err(|e| Error::Internal(format!("building a DynamoDB request: {e}")))
}

/// Runs the tasks at most `concurrency` at a time; results in task order.
pub(crate) async fn bounded<T, F>(tasks: Vec<F>, concurrency: usize) -> Result<Vec<T>, Error>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    let mut results: Vec<Option<T>> = (0..tasks.len()).map(|_| None).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut store_result = |done: Result<(usize, Result<T, Error>), tokio::task::JoinError>| {
        let (slot, result) =
            done.map_err(|e| Error::Internal(format!("a parallel read failed: {e}")))?;
        if let Some(place) = results.get_mut(slot) {
            *place = Some(result?);
        }
        Ok::<_, Error>(())
    };
    for (slot, task) in tasks.into_iter().enumerate() {
        if running.len() >= concurrency.max(1) {
            if let Some(done) = running.join_next().await {
                store_result(done)?;
            }
        }
        running.spawn(async move { (slot, task.await) });
    }
    while let Some(done) = running.join_next().await {
        store_result(done)?;
    }
    Ok(results.into_iter().flatten().collect())
}

/// A conditional write's outcome: whether its condition held.
pub(crate) fn conditional<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    operation: &str,
) -> Result<bool, Error>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code == "ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(err) => Err(storage(operation, err)),
    }
}

impl Store {
    /// The items of a due list on GSI2 (one partition per shard, sorted by
    /// when each is due) whose sort key is before `now`: at most `limit`
    /// per shard, oldest first. Only the sweeps read these lists.
    pub(crate) async fn due_on_gsi2(
        &self,
        shards: impl Iterator<Item = String>,
        now: &str,
        limit: usize,
    ) -> Result<Vec<Item>, Error> {
        let mut due = Vec::new();
        for pk in shards {
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .index_name(crate::keys::GSI2)
                .key_condition_expression("GSI2PK = :pk AND GSI2SK < :now")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":now", s(now))
                .limit(limit.clamp(1, 100) as i32)
                .send()
                .await
                .map_err(|e| storage("Query", e))?;
            due.extend(out.items.unwrap_or_default());
        }
        Ok(due)
    }
}

/// Short randomised pause before retrying an optimistic write.
pub(crate) async fn backoff(attempt: u32) {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    let base = 5u64 << attempt.min(5);
    let jitter = u64::from(byte[0]) % base.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(base / 2 + jitter)).await;
}

#[cfg(test)]
mod tests {
    use super::TxOutcome;

    fn cancelled(reasons: &[&str]) -> TxOutcome {
        TxOutcome::Cancelled(reasons.iter().map(|r| (*r).to_owned()).collect())
    }

    #[test]
    fn only_a_transaction_cancelled_by_conflicts_alone_is_sent_again() {
        assert!(cancelled(&["None", "TransactionConflict"]).only_conflicts());
        assert!(cancelled(&["TransactionConflict"]).only_conflicts());
        // A failed condition decides: the caller reads what it means.
        assert!(!cancelled(&["ConditionalCheckFailed", "TransactionConflict"]).only_conflicts());
        assert!(!cancelled(&["ConditionalCheckFailed", "None"]).only_conflicts());
        assert!(!cancelled(&["None", "None"]).only_conflicts());
        assert!(!TxOutcome::Committed.only_conflicts());
    }
}
