//! Organizations: upsert by identifiers, read, delete.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem};
use uuid::Uuid;

use super::profiles::{
    marker_key, not_found, record_key, to_value, Applied, Profile, MAX_ATTEMPTS,
};
use super::timeline::{record_event, TimelineEvent};
use super::{
    backoff, build, from_item, n, s, storage, Item, Store, TxOutcome, MAX_TRANSACTION_ITEMS,
};
use crate::domain::{Identifier, IdentifierKey, Organization, ProfileUpsert, SystemEvent};
use crate::error::Error;
use crate::keys;

/// The result of an upsert.
#[derive(Clone, Debug, PartialEq)]
pub struct Upserted<T> {
    pub record: T,
    pub created: bool,
}

impl Profile for Organization {
    const NOUN: &'static str = "organization";
    const RECORD_SK: &'static str = keys::ORG_SK;
    const MARKER_SK: &'static str = keys::ORG_IDENTIFIER_SK;

    fn marker_pk(project: Uuid, key: &IdentifierKey) -> String {
        keys::org_identifier_pk(project, &key.source, &key.external_id)
    }

    fn record_pk(project: Uuid, id: Uuid) -> String {
        keys::org_pk(project, id)
    }

    fn index_attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            (keys::GSI1PK, keys::org_list_pk(self.project_id)),
            (keys::GSI1SK, keys::org_list_sk(self.id)),
        ]
    }

    fn id(&self) -> Uuid {
        self.id
    }

    fn project_id(&self) -> Uuid {
        self.project_id
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn identifiers(&self) -> &[Identifier] {
        &self.identifiers
    }

    fn create(
        project: Uuid,
        id: Uuid,
        upsert: &ProfileUpsert,
        now: &str,
    ) -> (Self, Option<SystemEvent>) {
        let (org, event) = Organization::create(project, id, upsert, now);
        (org, Some(event))
    }

    fn apply(&mut self, upsert: &ProfileUpsert, now: &str) -> Result<Applied, Error> {
        Ok(match Organization::apply(self, upsert, now)? {
            Some(event) => Applied::Changed(Some(event)),
            None => Applied::Unchanged,
        })
    }

    fn updated_attributes(&self) -> Result<Vec<(&'static str, AttributeValue)>, Error> {
        let mut attributes = vec![
            ("data", to_value(&self.data)?),
            ("identifiers", to_value(&self.identifiers)?),
            ("updated_at", s(&self.updated_at)),
        ];
        if let Some(name) = &self.name {
            attributes.push(("name", s(name)));
        }
        Ok(attributes)
    }

    fn creation_writes(&self, table: &str, now: &str) -> Result<Vec<TransactWriteItem>, Error> {
        super::schedules::anniversary_writes(table, self, now)
    }
}

impl Store {
    /// Creates the organization the identifiers name, or updates it
    /// (shallow merge of `data`, `name` kept when omitted).
    pub async fn upsert_organization(
        &self,
        project: Uuid,
        upsert: &ProfileUpsert,
    ) -> Result<Upserted<Organization>, Error> {
        let (record, created) = self.upsert_record::<Organization>(project, upsert).await?;
        Ok(Upserted { record, created })
    }

    pub async fn get_organization(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> Result<Option<Organization>, Error> {
        self.get_record::<Organization>(project, id).await
    }

    /// Finds the organization the identifiers name (404 when none does).
    pub async fn find_organization(
        &self,
        project: Uuid,
        ids: &[IdentifierKey],
    ) -> Result<Organization, Error> {
        self.find_record::<Organization>(project, ids).await
    }

    /// Deletes the organization the identifiers name, with its identifier
    /// markers and its live items (memberships, schedules, …), and records
    /// `organization.deleted`. The first transaction makes it unreachable at
    /// once; live items beyond what fits in it follow in further ones.
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
            let (keys, _) = self.resolution_keys::<Organization>(project, &refs);
            let fetched = self.fetch(keys).await?;
            let Some(id) = fetched.resolve::<Organization>(project, &refs)? else {
                return Err(not_found::<Organization>(ids));
            };
            let (org, live) = self.live_state(project, id).await?;
            let Some(org) = org else { continue };
            let now = crate::ids::now();
            let mut items = Vec::with_capacity(org.identifiers.len() + 3);
            items.push(
                TransactWriteItem::builder()
                    .delete(build(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(record_key::<Organization>(project, id)))
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
                                .set_key(Some(marker_key::<Organization>(
                                    project,
                                    &identifier.key(),
                                )))
                                .condition_expression("owner_id = :org")
                                .expression_attribute_values(":org", s(id.to_string()))
                                .build(),
                        )?)
                        .build(),
                );
            }
            let event = SystemEvent::new(
                "organization.deleted",
                serde_json::json!({"name": org.name}),
            );
            items.extend(record_event(
                &self.table,
                project,
                id,
                &TimelineEvent::system(event, &now),
            )?);
            let room = MAX_TRANSACTION_ITEMS.saturating_sub(items.len());
            let (first, rest) = live.split_at(live.len().min(room));
            for item_key in first {
                items.push(self.delete_item(item_key.clone())?);
            }
            match self.transact(items).await? {
                TxOutcome::Committed => {
                    let all: Vec<IdentifierKey> = org.identifiers.iter().map(|i| i.key()).collect();
                    self.learn::<Organization>(project, &all.iter().collect::<Vec<_>>(), None);
                    for chunk in rest.chunks(MAX_TRANSACTION_ITEMS) {
                        let deletes = chunk
                            .iter()
                            .map(|k| self.delete_item(k.clone()))
                            .collect::<Result<Vec<_>, _>>()?;
                        if let TxOutcome::Cancelled(reasons) = self.transact(deletes).await? {
                            tracing::warn!(
                                ?reasons,
                                "removing live items of a deleted organization was cancelled"
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

    /// A transaction item that holds only while the organization exists.
    pub(crate) fn org_exists(&self, project: Uuid, org: Uuid) -> Result<TransactWriteItem, Error> {
        let check = build(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(record_key::<Organization>(project, org)))
                .condition_expression("attribute_exists(PK)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    pub(crate) fn delete_item(&self, item_key: Item) -> Result<TransactWriteItem, Error> {
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
    /// (memberships, schedules, …): one strongly consistent Query over its
    /// partition from [`keys::ORG_STATE_FROM`], which skips the timeline.
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

impl Store {
    /// Resolves the organizations of many requests at once (one
    /// `BatchGetItem` per 100 identifiers): for each, its id or `None`.
    pub async fn resolve_organizations(
        &self,
        project: Uuid,
        targets: &[Vec<IdentifierKey>],
    ) -> Result<Vec<Option<Uuid>>, Error> {
        let mut keys: Vec<Item> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in targets.iter().flatten() {
            if seen.insert(id) {
                keys.push(marker_key::<Organization>(project, id));
            }
        }
        let fetched = self.fetch(keys).await?;
        targets
            .iter()
            .map(|ids| fetched.resolve::<Organization>(project, &ids.iter().collect::<Vec<_>>()))
            .collect()
    }

    /// The ids of the project's organizations whose `data` holds every
    /// given top-level pair: a Query of the project's organization index
    /// (GSI1) with the pairs as a filter — no table Scan, and never another
    /// project's items.
    pub async fn organizations_matching(
        &self,
        project: Uuid,
        pairs: &crate::domain::Data,
    ) -> Result<Vec<Uuid>, Error> {
        let mut filter = Vec::with_capacity(pairs.len());
        let mut query = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::org_list_pk(project)))
            .expression_attribute_names("#data", "data")
            .expression_attribute_names("#id", "id")
            .projection_expression("#id");
        for (i, (name, value)) in pairs.iter().enumerate() {
            filter.push(format!("#data.#k{i} = :v{i}"));
            query = query
                .expression_attribute_names(format!("#k{i}"), name)
                .expression_attribute_values(format!(":v{i}"), to_value(value)?);
        }
        let query = query.filter_expression(filter.join(" AND "));
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| storage("Query", e))?;
            for item in out.items.unwrap_or_default() {
                #[derive(serde::Deserialize)]
                struct Id {
                    id: Uuid,
                }
                ids.push(from_item::<Id>(item)?.id);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(ids);
            }
        }
    }
}
