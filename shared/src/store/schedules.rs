//! Organization schedules (single or recurring) and their firing.

use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::domain::Organization;
use crate::error::Error;

/// The yearly `anniversary` schedule every new organization gets.
pub(crate) fn anniversary_writes(
    _table: &str,
    _org: &Organization,
    _now: &str,
) -> Result<Vec<TransactWriteItem>, Error> {
    Ok(Vec::new())
}
