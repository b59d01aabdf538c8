//! Measures every DynamoDB call a handler makes: which operation, when it
//! started and ended (the raw SDK call, serialisation and signing
//! included), and the capacity it consumed. The meter asks DynamoDB for the
//! capacity (`ReturnConsumedCapacity: TOTAL`) on every request; where the
//! emulator answers none (moto's `TransactWriteItems`), it estimates from
//! the items written, as AWS would bill them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation as op;
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// One DynamoDB call.
#[derive(Clone, Debug)]
pub struct Call {
    /// `DynamoDB`, `SQS`, `S3`.
    pub service: String,
    pub operation: String,
    pub start: Instant,
    pub end: Instant,
    pub read_units: f64,
    pub write_units: f64,
    /// Items DynamoDB read to answer: a Query's or Scan's `ScannedCount`
    /// (before any filter), the items a GetItem, BatchGetItem or
    /// TransactGetItems returned.
    pub items_read: u64,
    /// The capacity was estimated here, not reported by the emulator.
    pub estimated: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Meter(Arc<Mutex<Vec<Call>>>);

impl Meter {
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What a call is, known before it is sent: its name, when it started,
/// and the write units it is billed when the emulator reports none (a
/// transaction in moto, or a failed conditional write).
#[derive(Clone, Debug)]
struct Started {
    at: Instant,
    writes: f64,
}

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// The call was answered (a presigned URL is never sent).
#[derive(Clone, Debug)]
struct Sent;

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// The wall time covered by the calls (parallel calls count once).
pub fn covered(calls: &[Call]) -> Duration {
    let mut spans: Vec<(Instant, Instant)> = calls.iter().map(|c| (c.start, c.end)).collect();
    spans.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

fn units(c: &ConsumedCapacity) -> f64 {
    c.capacity_units()
        .or_else(|| Some(c.read_capacity_units()? + c.write_capacity_units().unwrap_or(0.0)))
        .unwrap_or(0.0)
}

fn sum(list: &[ConsumedCapacity]) -> f64 {
    list.iter().map(units).sum()
}

/// An item's size as DynamoDB counts it: attribute names plus values.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => 3 + item_size(m),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::Ss(s) | AttributeValue::Ns(s) => s.iter().map(String::len).sum(),
        AttributeValue::Bs(b) => b.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// Transactional writes cost 2 WCU per KB of each item; an update's or a
/// condition check's item size is not in the request, so 1 KB is assumed
/// (the service's records are well under it).
fn transaction_units(input: &op::transact_write_items::TransactWriteItemsInput) -> f64 {
    input
        .transact_items()
        .iter()
        .map(|t| {
            let kb = t
                .put()
                .map_or(1, |p| item_size(p.item()).div_ceil(1024).max(1));
            2.0 * kb as f64
        })
        .sum()
}

macro_rules! ask_capacity {
    ($input:expr, $($module:ident :: $ty:ident),+) => {{
        let input = $input;
        $(
            if let Some(i) = input.downcast_mut::<op::$module::$ty>() {
                i.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
            }
        )+
    }};
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "BenchMeter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let transaction = input.downcast_ref::<op::transact_write_items::TransactWriteItemsInput>();
        let single_write = input.downcast_ref::<op::put_item::PutItemInput>().is_some()
            || input
                .downcast_ref::<op::update_item::UpdateItemInput>()
                .is_some()
            || input
                .downcast_ref::<op::delete_item::DeleteItemInput>()
                .is_some();
        let writes = match transaction {
            Some(t) => transaction_units(t),
            None if single_write => 1.0,
            None => 0.0,
        };
        cfg.interceptor_state().store_put(Started {
            at: Instant::now(),
            writes,
        });
        Ok(())
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ask_capacity!(
            context.input_mut(),
            get_item::GetItemInput,
            put_item::PutItemInput,
            update_item::UpdateItemInput,
            delete_item::DeleteItemInput,
            query::QueryInput,
            scan::ScanInput,
            batch_get_item::BatchGetItemInput,
            batch_write_item::BatchWriteItemInput,
            transact_write_items::TransactWriteItemsInput,
            transact_get_items::TransactGetItemsInput
        );
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Sent);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let end = Instant::now();
        let Some(started) = cfg.load::<Started>().cloned() else {
            return Ok(());
        };
        if cfg.load::<Sent>().is_none() {
            return Ok(());
        }
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("?".to_owned(), "?".to_owned()), |m| {
                (m.service().to_owned(), m.name().to_owned())
            });
        let mut call = Call {
            service,
            operation,
            start: started.at,
            end,
            read_units: 0.0,
            write_units: 0.0,
            items_read: 0,
            estimated: false,
        };
        let output = context.output_or_error().and_then(Result::ok);
        let single = |c: Option<&ConsumedCapacity>| c.map_or(0.0, units);
        if let Some(o) = output {
            if let Some(o) = o.downcast_ref::<op::get_item::GetItemOutput>() {
                call.read_units = single(o.consumed_capacity());
                call.items_read = u64::from(o.item().is_some());
            } else if let Some(o) = o.downcast_ref::<op::query::QueryOutput>() {
                call.read_units = single(o.consumed_capacity());
                call.items_read = o.scanned_count().max(0) as u64;
            } else if let Some(o) = o.downcast_ref::<op::scan::ScanOutput>() {
                call.read_units = single(o.consumed_capacity());
                call.items_read = o.scanned_count().max(0) as u64;
            } else if let Some(o) = o.downcast_ref::<op::batch_get_item::BatchGetItemOutput>() {
                call.read_units = sum(o.consumed_capacity());
                call.items_read = o
                    .responses()
                    .map_or(0, |r| r.values().map(|items| items.len() as u64).sum());
            } else if let Some(o) =
                o.downcast_ref::<op::transact_get_items::TransactGetItemsOutput>()
            {
                call.read_units = sum(o.consumed_capacity());
                call.items_read =
                    o.responses().iter().filter(|r| r.item().is_some()).count() as u64;
            } else if let Some(o) = o.downcast_ref::<op::put_item::PutItemOutput>() {
                call.write_units = single(o.consumed_capacity());
            } else if let Some(o) = o.downcast_ref::<op::update_item::UpdateItemOutput>() {
                call.write_units = single(o.consumed_capacity());
            } else if let Some(o) = o.downcast_ref::<op::delete_item::DeleteItemOutput>() {
                call.write_units = single(o.consumed_capacity());
            } else if let Some(o) = o.downcast_ref::<op::batch_write_item::BatchWriteItemOutput>() {
                call.write_units = sum(o.consumed_capacity());
            } else if let Some(o) =
                o.downcast_ref::<op::transact_write_items::TransactWriteItemsOutput>()
            {
                call.write_units = sum(o.consumed_capacity());
            }
        } else {
            call.operation.push_str(" (failed)");
        }
        if call.read_units == 0.0 && call.write_units == 0.0 && started.writes > 0.0 {
            call.write_units = started.writes;
            call.estimated = true;
        }
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(call);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_calls_count_once() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let call = |a: u64, b: u64| Call {
            service: "DynamoDB".into(),
            operation: "Query".into(),
            start: t + ms(a),
            end: t + ms(b),
            read_units: 0.5,
            write_units: 0.0,
            items_read: 1,
            estimated: false,
        };
        assert_eq!(covered(&[call(0, 10), call(5, 12), call(20, 25)]), ms(17));
        assert_eq!(covered(&[]), Duration::ZERO);
    }
}
