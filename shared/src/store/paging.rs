//! Cursor pages over one partition (of the table or of an index), forward
//! and backward: one Query per page.

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::{s, storage, Item, Store};
use crate::error::Error;
use crate::keys;

pub(crate) struct Listing {
    /// `None` for the table itself.
    pub index: Option<&'static str>,
    /// `PK` or the index's partition attribute.
    pub partition_attribute: &'static str,
    pub partition: String,
    /// Only sort keys with this prefix.
    pub sort_prefix: Option<&'static str>,
}

pub(crate) struct Page {
    pub items: Vec<Item>,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
}

fn sort_attribute(listing: &Listing) -> &'static str {
    match listing.index {
        Some(keys::GSI1) => keys::GSI1SK,
        Some(_) => keys::GSI2SK,
        None => keys::SK,
    }
}

/// One page of `listing`: `limit` items after (or, for a previous-page
/// cursor, before) the cursor's position. A cursor made for another
/// project or another list is a 400.
pub(crate) async fn page(
    store: &Store,
    project: Uuid,
    listing: Listing,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page, Error> {
    let position = cursor
        .map(|c| store.cursors.decode_page(project, c))
        .transpose()?;
    let (backwards, start) = match position {
        Some((backwards, key)) => {
            let same_list = key
                .get(listing.partition_attribute)
                .and_then(|v| v.as_s().ok())
                == Some(&listing.partition);
            let in_range = listing.sort_prefix.is_none_or(|prefix| {
                key.get(sort_attribute(&listing))
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|sk| sk.starts_with(prefix))
            });
            if !same_list || !in_range {
                return Err(Error::invalid("the cursor belongs to another list"));
            }
            (backwards, Some(key))
        }
        None => (false, None),
    };
    let condition = match listing.sort_prefix {
        Some(_) => format!(
            "{} = :pk AND begins_with({}, :prefix)",
            listing.partition_attribute,
            sort_attribute(&listing)
        ),
        None => format!("{} = :pk", listing.partition_attribute),
    };
    let mut query = store
        .db
        .query()
        .table_name(&store.table)
        .set_index_name(listing.index.map(str::to_owned))
        .key_condition_expression(condition)
        .expression_attribute_values(":pk", s(&listing.partition))
        .scan_index_forward(!backwards)
        .limit(limit as i32)
        .consistent_read(listing.index.is_none())
        .set_exclusive_start_key(start.clone());
    if let Some(prefix) = listing.sort_prefix {
        query = query.expression_attribute_values(":prefix", s(prefix));
    }
    let out = query.send().await.map_err(|e| storage("Query", e))?;
    let more = out.last_evaluated_key.is_some();
    let mut items = out.items.unwrap_or_default();
    if backwards {
        items.reverse();
    }
    let position_of = |item: &Item| -> Item {
        [
            keys::PK,
            keys::SK,
            listing.partition_attribute,
            sort_attribute(&listing),
        ]
        .iter()
        .filter_map(|k| {
            item.get(*k)
                .map(|v: &AttributeValue| ((*k).to_owned(), v.clone()))
        })
        .collect()
    };
    // Forward, a next page exists when DynamoDB stopped early and a previous
    // one when we came from a cursor; backwards, the other way round.
    let (has_next, has_previous) = if backwards {
        (true, more)
    } else {
        (more, start.is_some())
    };
    let next_cursor = items
        .last()
        .filter(|_| has_next)
        .map(|i| store.cursors.encode_page(project, false, &position_of(i)));
    let previous_cursor = items
        .first()
        .filter(|_| has_previous)
        .map(|i| store.cursors.encode_page(project, true, &position_of(i)));
    Ok(Page {
        items,
        next_cursor,
        previous_cursor,
    })
}
