//! An organization's address: one item in its partition (so it goes with
//! the organization), read together with the organization in one call.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use uuid::Uuid;

use super::timeline::{single_event_writes, TimelineEvent};
use super::{build, from_item, key, n, s, to_item, Store, TxOutcome};
use crate::domain::address::{Address, AddressChange};
use crate::domain::changes::Changes;
use crate::domain::event;
use crate::error::Error;
use crate::keys;

impl Store {
    /// The organization's address: `Err(NotFound)` when the organization
    /// does not exist, `Ok(None)` when it has no address. One read.
    pub async fn get_address(&self, project: Uuid, org: Uuid) -> Result<Option<Address>, Error> {
        let partition = keys::org_pk(project, org);
        let keys = vec![
            key(partition.clone(), keys::ORG_SK),
            key(partition, keys::ADDRESS_SK),
        ];
        address_of(project, org, &self.fetch(keys).await?)
    }

    /// Sets the organization's address (`must_exist`: only change an
    /// existing one). One read, then one transaction conditioned on the
    /// organization existing and the address's version, with the
    /// `organization.updated` event.
    pub async fn set_address(
        &self,
        project: Uuid,
        org: Uuid,
        change: &AddressChange,
        must_exist: bool,
    ) -> Result<Address, Error> {
        for attempt in 0..super::profiles::MAX_ATTEMPTS {
            if attempt > 0 {
                super::backoff(attempt).await;
            }
            let partition = keys::org_pk(project, org);
            let (fetched, sequence) = self
                .fetch_with_sequence(
                    project,
                    org,
                    vec![
                        key(partition.clone(), keys::ORG_SK),
                        key(partition, keys::ADDRESS_SK),
                    ],
                )
                .await?;
            let current = address_of(project, org, &fetched)?;
            if must_exist && current.is_none() {
                return Err(Error::not_found(
                    "the organization has no address yet; POST one first",
                ));
            }
            let now = crate::ids::now();
            let address = Address::apply(current.as_ref(), org, change, &now)?;
            // The domain says what changed; nothing changed, nothing to write.
            let Some(event) = event::changed(Changes::address(current.as_ref(), Some(&address)))
            else {
                return Ok(current.unwrap_or(address));
            };
            let mut item = to_item(&address)?;
            item.insert(keys::PK.into(), s(keys::org_pk(project, org)));
            item.insert(keys::SK.into(), s(keys::ADDRESS_SK));
            let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
            put = match &current {
                Some(c) => put
                    .condition_expression("#version = :expected")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":expected", n(c.version)),
                None => put.condition_expression("attribute_not_exists(PK)"),
            };
            let mut items = vec![
                self.org_exists(project, org)?,
                TransactWriteItem::builder()
                    .put(build(put.build())?)
                    .build(),
            ];
            items.extend(single_event_writes(
                &self.table,
                project,
                org,
                &TimelineEvent::system(event, &now),
                sequence,
            )?);
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(address),
                outcome if outcome.condition_failed_at(0) => {
                    return Err(Error::not_found(format!(
                        "no organization has the id {org}"
                    )))
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "address change lost a race; retrying")
                }
            }
        }
        Err(Error::busy(
            "the address is being changed concurrently; retry the request",
        ))
    }
}

/// The address in a read of the organization's record and address (404
/// when the record is gone).
fn address_of(
    project: Uuid,
    org: Uuid,
    fetched: &super::profiles::Fetched,
) -> Result<Option<Address>, Error> {
    let partition = keys::org_pk(project, org);
    if fetched
        .item(&key(partition.clone(), keys::ORG_SK))
        .is_none()
    {
        return Err(Error::not_found(format!(
            "no organization has the id {org}"
        )));
    }
    fetched
        .item(&key(partition, keys::ADDRESS_SK))
        .map(from_item)
        .transpose()
}
