//! Counts the items DynamoDB reads for a client's requests, as the bench's
//! meter does (`bench/src/meter.rs`): a Query's or Scan's `ScannedCount`
//! (before any filter), the items a GetItem, BatchGetItem or
//! TransactGetItems returned. Scale tests compare these at two project
//! sizes instead of timing anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation as op;
use shared::{AppState, Aws};

#[derive(Clone, Debug, Default)]
pub struct ReadMeter {
    items: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
}

/// What the meter counted since it was last taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub items: u64,
    /// DynamoDB calls of any kind.
    pub calls: u64,
}

impl ReadMeter {
    pub fn take(&self) -> Reads {
        Reads {
            items: self.items.swap(0, Ordering::SeqCst),
            calls: self.calls.swap(0, Ordering::SeqCst),
        }
    }
}

impl Intercept for ReadMeter {
    fn name(&self) -> &'static str {
        "ReadMeter"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some(output) = context.output_or_error().and_then(Result::ok) else {
            return Ok(());
        };
        let count = |n: i32| u64::try_from(n).unwrap_or(0);
        let items = if let Some(o) = output.downcast_ref::<op::get_item::GetItemOutput>() {
            u64::from(o.item().is_some())
        } else if let Some(o) = output.downcast_ref::<op::query::QueryOutput>() {
            count(o.scanned_count())
        } else if let Some(o) = output.downcast_ref::<op::scan::ScanOutput>() {
            count(o.scanned_count())
        } else if let Some(o) = output.downcast_ref::<op::batch_get_item::BatchGetItemOutput>() {
            o.responses()
                .map_or(0, |r| r.values().map(|items| items.len() as u64).sum())
        } else if let Some(o) =
            output.downcast_ref::<op::transact_get_items::TransactGetItemsOutput>()
        {
            o.responses().iter().filter(|r| r.item().is_some()).count() as u64
        } else {
            0
        };
        self.items.fetch_add(items, Ordering::SeqCst);
        Ok(())
    }
}

/// `base` with every DynamoDB read counted by the meter.
pub fn metered(base: &AppState) -> (AppState, ReadMeter) {
    let meter = ReadMeter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        base.aws
            .dynamodb
            .config()
            .to_builder()
            .interceptor(meter.clone())
            .build(),
    );
    let aws = Aws {
        dynamodb,
        ..base.aws.clone()
    };
    (AppState::new(base.config.clone(), aws), meter)
}
