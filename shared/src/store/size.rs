//! Item sizes by DynamoDB's rules, measured before a write is sent, so that
//! a record grown too large is a 413 the caller can act on and never a
//! write DynamoDB refuses (which would be a 5xx).
//!
//! DynamoDB counts an attribute as its name's UTF-8 bytes plus its value:
//! strings and binaries by their bytes, a number as one byte per two
//! significant digits plus one, booleans and nulls as one byte, a list or
//! map as 3 bytes plus one per element plus its elements (a map's element
//! names included), a set as its elements.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::Item;
use crate::error::Error;
use crate::limits::{MAX_ITEM_BYTES, MAX_TRANSACTION_BYTES};

/// The item's size as DynamoDB counts it.
pub(crate) fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number_size(number),
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        // A kind this SDK version does not know: count it as DynamoDB's
        // largest scalar so the estimate errs on the safe side.
        _ => 21,
    }
}

/// One byte per two significant digits (leading and trailing zeros do not
/// count), plus one; a sign costs one more, rounding up errs safe.
fn number_size(number: &str) -> usize {
    let mantissa = number
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .trim_start_matches(['-', '+']);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1 + usize::from(number.starts_with('-'))
}

/// What a transaction item puts on its item, at least: a put's whole
/// item; an update's key and the values it sets (the attributes it leaves
/// alone are not known here — a whole-record rewrite checks the record
/// itself, see `profiles::Store::versioned_update`).
fn written_size(write: &TransactWriteItem) -> usize {
    if let Some(put) = write.put() {
        return item_size(put.item());
    }
    if let Some(update) = write.update() {
        let values: usize = update
            .expression_attribute_values()
            .map(|values| values.values().map(value_size).sum())
            .unwrap_or(0);
        let names: usize = update
            .expression_attribute_names()
            .map(|names| names.values().map(String::len).sum())
            .unwrap_or(0);
        return item_size(update.key()) + values + names;
    }
    0
}

/// Refuses an item larger than DynamoDB stores.
pub(crate) fn check_item(what: &str, size: usize) -> Result<(), Error> {
    if size > MAX_ITEM_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "{what} would be {size} bytes stored; at most {MAX_ITEM_BYTES} bytes fit in one item — remove data, identifier metadata or other fields first"
        )));
    }
    Ok(())
}

/// Refuses a transaction that DynamoDB would refuse for its size: any item
/// over [`MAX_ITEM_BYTES`], or all together over [`MAX_TRANSACTION_BYTES`].
pub(crate) fn check_transaction(writes: &[TransactWriteItem]) -> Result<(), Error> {
    let mut total = 0;
    for write in writes {
        let size = written_size(write);
        check_item("an item this change writes", size)?;
        total += size;
    }
    if total > MAX_TRANSACTION_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "this change would write {total} bytes in one transaction; at most {MAX_TRANSACTION_BYTES} bytes are allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        // Names count, strings count their UTF-8 bytes.
        let item: Item = HashMap::from([("PK".into(), s("ab")), ("é".into(), s("é"))]);
        assert_eq!(item_size(&item), 2 + 2 + 2 + 2);
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size("12345"), 4);
        assert_eq!(number_size("1200"), 2, "trailing zeros do not count");
        assert_eq!(number_size("0.00123"), 3, "leading zeros do not count");
        assert_eq!(number_size("-7"), 3);
        assert_eq!(value_size(&AttributeValue::Bool(true)), 1);
        assert_eq!(value_size(&AttributeValue::L(vec![])), 3);
        assert_eq!(
            value_size(&AttributeValue::L(vec![s("abc"), s("d")])),
            3 + 4 + 2
        );
        assert_eq!(
            value_size(&AttributeValue::M(HashMap::from([("key".into(), s("vv"))]))),
            3 + 1 + 3 + 2
        );
        assert_eq!(
            value_size(&AttributeValue::Ss(vec!["ab".into(), "c".into()])),
            3
        );
    }

    #[test]
    fn an_item_over_the_limit_is_a_413() {
        assert!(check_item("x", MAX_ITEM_BYTES).is_ok());
        let err = check_item("the organization", MAX_ITEM_BYTES + 1).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.to_string().contains("the organization"));
    }

    #[test]
    fn a_transaction_is_measured_item_by_item() {
        let put = |bytes: usize| {
            let item: Item = HashMap::from([("PK".into(), s(&"x".repeat(bytes)))]);
            TransactWriteItem::builder()
                .put(
                    aws_sdk_dynamodb::types::Put::builder()
                        .table_name("t")
                        .set_item(Some(item))
                        .build()
                        .unwrap(),
                )
                .build()
        };
        assert!(check_transaction(&[put(1000), put(1000)]).is_ok());
        assert!(check_transaction(&[put(1000), put(MAX_ITEM_BYTES)]).is_err());
        let update = TransactWriteItem::builder()
            .update(
                aws_sdk_dynamodb::types::Update::builder()
                    .table_name("t")
                    .key("PK", s("a"))
                    .update_expression("SET #d = :d")
                    .expression_attribute_names("#d", "data")
                    .expression_attribute_values(":d", s(&"y".repeat(MAX_ITEM_BYTES)))
                    .build()
                    .unwrap(),
            )
            .build();
        assert!(check_transaction(&[update]).is_err());
    }
}
