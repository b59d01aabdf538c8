//! Organizations: upsert by identifiers, read, delete.
//!
//! Each external identifier has a uniqueness marker item written with
//! `attribute_not_exists(PK)` in the same transaction as its organization, so
//! concurrent upserts of one new identifier create exactly one organization:
//! the losers' transactions are cancelled and they retry as updates.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::timeline::{record_event, TimelineEvent};
use super::{
    backoff, build, from_item, key, n, s, storage, to_item, Item, Store, TxOutcome,
    MAX_TRANSACTION_ITEMS,
};
use crate::domain::{IdentifierKey, Organization, OrganizationUpsert, SystemEvent};
use crate::error::Error;
use crate::keys;

/// Optimistic writes that keep losing a race give up after this many tries.
const MAX_ATTEMPTS: u32 = 12;

/// The result of an upsert.
#[derive(Clone, Debug, PartialEq)]
pub struct Upserted {
    pub organization: Organization,
    pub created: bool,
}

#[derive(Serialize, Deserialize)]
struct MarkerItem {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    org_id: Uuid,
}

fn marker_key(project: Uuid, id: &IdentifierKey) -> Item {
    key(
        keys::org_identifier_pk(project, &id.source, &id.external_id),
        keys::ORG_IDENTIFIER_SK,
    )
}

fn org_item(org: &Organization) -> Result<Item, Error> {
    let mut item = to_item(org)?;
    item.insert(keys::PK.into(), s(keys::org_pk(org.project_id, org.id)));
    item.insert(keys::SK.into(), s(keys::ORG_SK));
    item.insert(keys::GSI1PK.into(), s(keys::org_list_pk(org.project_id)));
    item.insert(keys::GSI1SK.into(), s(keys::org_list_sk(org.id)));
    Ok(item)
}

enum Resolution {
    None,
    /// The organization's id, and its record when it was read already.
    One(Uuid, Option<Organization>),
}

impl Store {
    /// Which organization the identifiers name: none, one, or a conflict
    /// when they name two different organizations. One strongly consistent
    /// `BatchGetItem` of the marker items; when this container has seen the
    /// identifiers before, the same call also reads the organization they
    /// named then, so a warm upsert needs no second read. The markers stay
    /// the authority: a remembered id is used only if they still agree.
    async fn resolve(&self, project: Uuid, ids: &[&IdentifierKey]) -> Result<Resolution, Error> {
        let markers: Vec<Item> = ids.iter().map(|id| marker_key(project, id)).collect();
        let remembered = self.identifier_cache.recall(project, ids);
        let mut pending = markers;
        if let Some(org) = remembered {
            pending.push(key(keys::org_pk(project, org), keys::ORG_SK));
        }
        let mut found: HashMap<String, Uuid> = HashMap::new();
        let mut prefetched: Option<Organization> = None;
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            let request = build(
                KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build(),
            )?;
            let out = self
                .db
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| storage("BatchGetItem", e))?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default()
            {
                let is_org = item
                    .get(keys::SK)
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|sk| sk == keys::ORG_SK);
                if is_org {
                    prefetched = Some(from_item(item)?);
                } else {
                    let marker: MarkerItem = from_item(item)?;
                    found.insert(marker.pk, marker.org_id);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                if rounds >= MAX_ATTEMPTS {
                    return Err(Error::Storage(
                        "BatchGetItem kept leaving keys unprocessed".into(),
                    ));
                }
                backoff(rounds).await;
            }
        }
        self.identifier_cache.learn(project, ids, &found);
        let orgs: HashSet<Uuid> = found.values().copied().collect();
        match orgs.len() {
            0 => Ok(Resolution::None),
            1 => {
                let id = orgs.into_iter().next().unwrap_or_default();
                Ok(Resolution::One(id, prefetched.filter(|org| org.id == id)))
            }
            _ => Err(Error::conflict(format!(
                "the identifiers name {} different organizations; one request may name only one",
                orgs.len()
            ))),
        }
    }

    /// The organization the identifiers resolved to: the prefetched record,
    /// or one strongly consistent read.
    async fn resolved_organization(
        &self,
        project: Uuid,
        id: Uuid,
        prefetched: Option<Organization>,
    ) -> Result<Option<Organization>, Error> {
        match prefetched {
            Some(org) => Ok(Some(org)),
            None => self.get_organization(project, id).await,
        }
    }

    pub async fn get_organization(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> Result<Option<Organization>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::org_pk(project, id), keys::ORG_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// Finds the organization the identifiers name (404 when none does).
    pub async fn find_organization(
        &self,
        project: Uuid,
        ids: &[IdentifierKey],
    ) -> Result<Organization, Error> {
        let refs: Vec<&IdentifierKey> = ids.iter().collect();
        match self.resolve(project, &refs).await? {
            Resolution::One(id, prefetched) => self
                .resolved_organization(project, id, prefetched)
                .await?
                .ok_or_else(|| not_found(ids)),
            Resolution::None => Err(not_found(ids)),
        }
    }

    /// Creates the organization the identifiers name, or updates it (shallow
    /// merge of `data`, `name` kept when omitted). One read of the markers,
    /// one read of the organization when it exists, and one transaction that
    /// writes the record, any new markers, and the system event together.
    pub async fn upsert_organization(
        &self,
        project: Uuid,
        upsert: &OrganizationUpsert,
    ) -> Result<Upserted, Error> {
        let ids: Vec<&IdentifierKey> = upsert.identifiers().iter().map(|i| &i.key).collect();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let now = crate::ids::now();
            let outcome = match self.resolve(project, &ids).await? {
                Resolution::None => {
                    let (org, event) =
                        Organization::create(project, crate::ids::new_id(), upsert, &now);
                    let keys: Vec<&IdentifierKey> = ids.clone();
                    let outcome = self.write_create(&org, &keys, event, &now).await?;
                    (org, true, outcome)
                }
                Resolution::One(id, prefetched) => {
                    // The marker may outlive its organization by a moment
                    // while a delete commits; then it is a race: retry.
                    let Some(mut org) = self.resolved_organization(project, id, prefetched).await?
                    else {
                        continue;
                    };
                    let expected = org.version;
                    let new_keys: Vec<IdentifierKey> = org
                        .new_identifier_keys(upsert)
                        .into_iter()
                        .cloned()
                        .collect();
                    let Some(event) = org.apply(upsert, &now)? else {
                        return Ok(Upserted {
                            organization: org,
                            created: false,
                        });
                    };
                    let keys: Vec<&IdentifierKey> = new_keys.iter().collect();
                    let outcome = self
                        .write_update(&org, expected, &keys, event, &now)
                        .await?;
                    (org, false, outcome)
                }
            };
            match outcome {
                (org, created, TxOutcome::Committed) => {
                    self.identifier_cache.remember(project, &ids, org.id);
                    return Ok(Upserted {
                        organization: org,
                        created,
                    });
                }
                (_, _, TxOutcome::Cancelled(reasons)) => {
                    tracing::debug!(?reasons, attempt, "upsert lost a race; retrying");
                }
            }
        }
        Err(Error::conflict(
            "the organization is being changed concurrently; retry the request",
        ))
    }

    async fn write_create(
        &self,
        org: &Organization,
        ids: &[&IdentifierKey],
        event: SystemEvent,
        now: &str,
    ) -> Result<TxOutcome, Error> {
        let mut items = Vec::with_capacity(ids.len() + 3);
        items.push(
            TransactWriteItem::builder()
                .put(build(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(org_item(org)?))
                        .condition_expression("attribute_not_exists(PK)")
                        .build(),
                )?)
                .build(),
        );
        items.extend(self.marker_puts(org, ids)?);
        items.extend(record_event(
            &self.table,
            org.project_id,
            org.id,
            &TimelineEvent::system(event, now),
        )?);
        self.transact(items).await
    }

    async fn write_update(
        &self,
        org: &Organization,
        expected_version: u64,
        new_ids: &[&IdentifierKey],
        event: SystemEvent,
        now: &str,
    ) -> Result<TxOutcome, Error> {
        let identifiers = to_item_value(&org.identifiers)?;
        let data = to_item_value(&org.data)?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::org_pk(org.project_id, org.id),
                keys::ORG_SK,
            )))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#data", "data")
            .expression_attribute_names("#identifiers", "identifiers")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_values(":expected", n(expected_version))
            .expression_attribute_values(":version", n(org.version))
            .expression_attribute_values(":data", data)
            .expression_attribute_values(":identifiers", identifiers)
            .expression_attribute_values(":updated_at", s(&org.updated_at));
        let mut set = "SET #version = :version, #data = :data, #identifiers = :identifiers, #updated_at = :updated_at".to_owned();
        if let Some(name) = &org.name {
            set.push_str(", #name = :name");
            update = update
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name));
        }
        let mut items = Vec::with_capacity(new_ids.len() + 3);
        items.push(
            TransactWriteItem::builder()
                .update(build(update.update_expression(set).build())?)
                .build(),
        );
        items.extend(self.marker_puts(org, new_ids)?);
        items.extend(record_event(
            &self.table,
            org.project_id,
            org.id,
            &TimelineEvent::system(event, now),
        )?);
        self.transact(items).await
    }

    fn marker_puts(
        &self,
        org: &Organization,
        ids: &[&IdentifierKey],
    ) -> Result<Vec<TransactWriteItem>, Error> {
        ids.iter()
            .map(|id| {
                let pk = keys::org_identifier_pk(org.project_id, &id.source, &id.external_id);
                let item = to_item(&MarkerItem {
                    pk,
                    sk: keys::ORG_IDENTIFIER_SK.into(),
                    org_id: org.id,
                })?;
                let put = build(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(PK)")
                        .build(),
                )?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }

    /// Deletes the organization the identifiers name, with its identifier
    /// markers and memberships, and records `organization.deleted`. The first
    /// transaction makes it unreachable at once; memberships beyond what fits
    /// in it follow in further transactions.
    pub async fn delete_organization(
        &self,
        project: Uuid,
        ids: &[IdentifierKey],
    ) -> Result<Organization, Error> {
        let refs: Vec<&IdentifierKey> = ids.iter().collect();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let id = match self.resolve(project, &refs).await? {
                Resolution::One(id, _) => id,
                Resolution::None => return Err(not_found(ids)),
            };
            let (org, members) = self.live_state(project, id).await?;
            let Some(org) = org else { continue };
            let now = crate::ids::now();
            let mut items = Vec::with_capacity(org.identifiers.len() + 3);
            items.push(
                TransactWriteItem::builder()
                    .delete(build(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(keys::org_pk(project, id), keys::ORG_SK)))
                            .condition_expression("#version = :expected")
                            .expression_attribute_names("#version", "version")
                            .expression_attribute_values(":expected", n(org.version))
                            .build(),
                    )?)
                    .build(),
            );
            for identifier in &org.identifiers {
                items.push(
                    TransactWriteItem::builder()
                        .delete(build(
                            Delete::builder()
                                .table_name(&self.table)
                                .set_key(Some(marker_key(project, &identifier.key())))
                                .condition_expression("org_id = :org")
                                .expression_attribute_values(":org", s(id.to_string()))
                                .build(),
                        )?)
                        .build(),
                );
            }
            let event = SystemEvent {
                name: "organization.deleted",
                data: serde_json::Map::from_iter([("name".to_owned(), org.name.clone().into())]),
            };
            items.extend(record_event(
                &self.table,
                project,
                id,
                &TimelineEvent::system(event, &now),
            )?);
            let room = MAX_TRANSACTION_ITEMS.saturating_sub(items.len());
            let (first, rest) = members.split_at(members.len().min(room));
            items.extend(
                first
                    .iter()
                    .map(|k| self.delete_item(k.clone()))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            match self.transact(items).await? {
                TxOutcome::Committed => {
                    let all: Vec<IdentifierKey> = org.identifiers.iter().map(|i| i.key()).collect();
                    self.identifier_cache
                        .forget(project, &all.iter().collect::<Vec<_>>());
                    for chunk in rest.chunks(MAX_TRANSACTION_ITEMS) {
                        let deletes = chunk
                            .iter()
                            .map(|k| self.delete_item(k.clone()))
                            .collect::<Result<Vec<_>, _>>()?;
                        if let TxOutcome::Cancelled(reasons) = self.transact(deletes).await? {
                            tracing::warn!(
                                ?reasons,
                                "removing memberships of a deleted organization was cancelled"
                            );
                        }
                    }
                    return Ok(org);
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "delete lost a race; retrying");
                }
            }
        }
        Err(Error::conflict(
            "the organization is being changed concurrently; retry the request",
        ))
    }

    fn delete_item(&self, item_key: Item) -> Result<TransactWriteItem, Error> {
        Ok(TransactWriteItem::builder()
            .delete(build(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(item_key))
                    .build(),
            )?)
            .build())
    }

    /// The organization record and the keys of its other live items
    /// (memberships, …): one strongly consistent Query over its partition
    /// from [`keys::ORG_STATE_FROM`], which skips the timeline.
    async fn live_state(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> Result<(Option<Organization>, Vec<Item>), Error> {
        let mut org = None;
        let mut others = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK >= :from")
                .expression_attribute_values(":pk", s(keys::org_pk(project, id)))
                .expression_attribute_values(":from", s(keys::ORG_STATE_FROM))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| storage("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let sk = item
                    .get(keys::SK)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                if sk == keys::ORG_SK {
                    org = Some(from_item(item)?);
                } else {
                    let pk = item
                        .get(keys::PK)
                        .cloned()
                        .unwrap_or(AttributeValue::Null(true));
                    others.push(HashMap::from([
                        (keys::PK.to_owned(), pk),
                        (keys::SK.to_owned(), s(sk)),
                    ]));
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok((org, others));
            }
        }
    }
}

fn to_item_value<T: Serialize>(value: &T) -> Result<AttributeValue, Error> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|e| Error::Internal(format!("serialising a value: {e}")))
}

fn not_found(ids: &[IdentifierKey]) -> Error {
    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
    Error::not_found(format!(
        "no organization has the identifier {}",
        names.join(" or ")
    ))
}
