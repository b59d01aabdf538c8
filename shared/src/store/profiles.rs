//! Records named by external identifiers (organizations, users): resolve
//! identifiers and upsert, with one uniqueness marker item per identifier
//! written with `attribute_not_exists(PK)` in the same transaction as its
//! record — concurrent upserts of one new identifier create exactly one
//! record; the losers' transactions are cancelled and they retry as updates.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::timeline::{sequence_in, sequence_key, single_event_writes, Sequence, TimelineEvent};
use super::{backoff, build, from_item, key, n, s, storage, to_item, Item, Store, TxOutcome};
use crate::domain::identifier::{missing_keys, ID_SOURCE};
use crate::domain::{Identifier, IdentifierKey, ProfileUpsert, Scope, SystemEvent};
use crate::error::Error;
use crate::keys;

/// Optimistic writes that keep losing a race give up after this many tries.
pub(crate) const MAX_ATTEMPTS: u32 = 12;

/// DynamoDB reads at most this many keys in one `BatchGetItem`.
const MAX_BATCH_GET: usize = 100;

/// What an upsert changed.
pub(crate) enum Applied {
    Unchanged,
    /// Changed; with the system event to record, if the record has a timeline.
    Changed(Option<SystemEvent>),
}

/// A record kind that is named by external identifiers.
pub(crate) trait Profile: Clone + Serialize + DeserializeOwned + Send + Sync {
    /// What the kind is called in messages ("organization", "user").
    const NOUN: &'static str;
    /// Whether the kind has a timeline (and with it an event sequence):
    /// organizations do, users do not.
    const HAS_TIMELINE: bool;
    const RECORD_SK: &'static str;
    const MARKER_SK: &'static str;
    fn marker_pk(project: Uuid, key: &IdentifierKey) -> String;
    fn record_pk(project: Uuid, id: Uuid) -> String;
    /// Index attributes the record carries (its project list entries),
    /// derived from the record: written on creation and with every update.
    fn index_attributes(&self) -> Result<Vec<(&'static str, AttributeValue)>, Error>;
    fn id(&self) -> Uuid;
    fn project_id(&self) -> Uuid;
    fn version(&self) -> u64;
    fn identifiers(&self) -> &[Identifier];
    fn create(
        project: Uuid,
        id: Uuid,
        upsert: &ProfileUpsert,
        now: &str,
    ) -> (Self, Option<SystemEvent>);
    fn apply(&mut self, upsert: &ProfileUpsert, now: &str) -> Result<Applied, Error>;
    /// The attributes an update rewrites (everything this kind's upsert can
    /// change); attributes of other dialects on the same item are kept.
    fn updated_attributes(&self) -> Result<Vec<(&'static str, AttributeValue)>, Error>;
    /// Refuses a change the credential's scope does not reach.
    fn check_scope(&self, scope: Scope) -> Result<(), Error>;
    /// What a change from `before` to `after` does to the kind's list
    /// indexes (items of their own, written with the record).
    fn index_change(
        _before: Option<&Self>,
        _after: Option<&Self>,
    ) -> super::org_index::IndexChange {
        super::org_index::IndexChange::default()
    }
    /// Further writes that belong to the creating transaction.
    fn creation_writes(&self, _table: &str, _now: &str) -> Result<Vec<TransactWriteItem>, Error> {
        Ok(Vec::new())
    }
    /// Further writes that belong to the transaction of a change from
    /// `before`.
    fn update_writes(&self, _table: &str, _before: &Self) -> Result<Vec<TransactWriteItem>, Error> {
        Ok(Vec::new())
    }
}

/// The item that tells which record an identifier names: its marker, or,
/// for source `id`, the record itself.
pub(crate) fn marker_key<P: Profile>(project: Uuid, id: &IdentifierKey) -> Item {
    match id.record_id() {
        Some(record) => record_key::<P>(project, record),
        None => key(P::marker_pk(project, id), P::MARKER_SK),
    }
}

pub(crate) fn marker_keys<P: Profile>(project: Uuid, ids: &[&IdentifierKey]) -> Vec<Item> {
    ids.iter().map(|id| marker_key::<P>(project, id)).collect()
}

pub(crate) fn record_key<P: Profile>(project: Uuid, id: Uuid) -> Item {
    key(P::record_pk(project, id), P::RECORD_SK)
}

pub(crate) fn record_item<P: Profile>(record: &P) -> Result<Item, Error> {
    let mut item = to_item(record)?;
    item.insert(
        keys::PK.into(),
        s(P::record_pk(record.project_id(), record.id())),
    );
    item.insert(keys::SK.into(), s(P::RECORD_SK));
    for (name, value) in record.index_attributes()? {
        item.insert(name.into(), value);
    }
    Ok(item)
}

#[derive(Serialize, Deserialize)]
pub(crate) struct MarkerItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    /// The record the identifier names.
    pub owner_id: Uuid,
}

/// Items read in one batch, by (PK, SK).
pub(crate) struct Fetched(HashMap<(String, String), Item>);

impl Fetched {
    fn get(&self, item_key: &Item) -> Option<&Item> {
        let pk = item_key.get(keys::PK)?.as_s().ok()?;
        let sk = item_key.get(keys::SK)?.as_s().ok()?;
        self.0.get(&(pk.clone(), sk.clone()))
    }

    /// The record the identifiers name: `Ok(None)` when none does, a
    /// conflict when they name two.
    pub(crate) fn resolve<P: Profile>(
        &self,
        project: Uuid,
        ids: &[&IdentifierKey],
    ) -> Result<Option<Uuid>, Error> {
        let mut owners = HashSet::new();
        for id in ids {
            match id.record_id() {
                Some(record) => {
                    if self.get(&record_key::<P>(project, record)).is_some() {
                        owners.insert(record);
                    }
                }
                None => {
                    if let Some(item) = self.get(&marker_key::<P>(project, id)) {
                        let marker: MarkerItem = from_item(item.clone())?;
                        owners.insert(marker.owner_id);
                    }
                }
            }
        }
        match owners.len() {
            0 => Ok(None),
            1 => Ok(owners.into_iter().next()),
            count => Err(Error::conflict(format!(
                "the identifiers name {count} different {}s; one request may name only one",
                P::NOUN
            ))),
        }
    }

    /// Those of the identifiers whose markers this batch read naming
    /// `record` (what the store has of them; source `id` is never stored).
    pub(crate) fn naming<P: Profile>(
        &self,
        project: Uuid,
        ids: &[&IdentifierKey],
        record: Uuid,
    ) -> Vec<IdentifierKey> {
        ids.iter()
            .filter(|id| {
                self.get(&marker_key::<P>(project, id))
                    .and_then(|item| from_item::<MarkerItem>(item.clone()).ok())
                    .is_some_and(|marker| marker.owner_id == record)
            })
            .map(|id| (*id).clone())
            .collect()
    }

    /// The record each marker this batch read names (source `id` left
    /// out: it names a record only while it exists).
    fn marker_owners<P: Profile>(
        &self,
        project: Uuid,
        ids: &[&IdentifierKey],
    ) -> Result<Vec<(IdentifierKey, Uuid)>, Error> {
        let mut owners = Vec::new();
        for id in ids.iter().filter(|id| id.record_id().is_none()) {
            if let Some(item) = self.get(&marker_key::<P>(project, id)) {
                let marker: MarkerItem = from_item(item.clone())?;
                owners.push(((*id).clone(), marker.owner_id));
            }
        }
        Ok(owners)
    }

    pub(crate) fn record<P: Profile>(&self, project: Uuid, id: Uuid) -> Result<Option<P>, Error> {
        self.get(&record_key::<P>(project, id))
            .cloned()
            .map(from_item)
            .transpose()
    }

    pub(crate) fn item(&self, item_key: &Item) -> Option<Item> {
        self.get(item_key).cloned()
    }
}

/// Identifiers whose markers name a deleted record, with that record: a
/// deleted organization's identifiers are free at once, taken over with
/// [`Store::marker_puts`] before its purge releases them.
pub(crate) type Stale = Vec<(IdentifierKey, Uuid)>;

impl Store {
    /// The live record the identifiers name, as [`Fetched::resolve`], but
    /// a marker naming a deleted record (its purge has not released it
    /// yet) names nothing: those are returned as stale. Only when the
    /// markers name more than one record are their records read (one more
    /// `BatchGetItem`); a single owner is returned as named, and the
    /// caller's read of its record tells whether it is gone.
    pub(crate) async fn resolve_live<P: Profile>(
        &self,
        fetched: &Fetched,
        project: Uuid,
        ids: &[&IdentifierKey],
    ) -> Result<(Option<Uuid>, Stale), Error> {
        match fetched.resolve::<P>(project, ids) {
            Ok(owner) => return Ok((owner, Vec::new())),
            Err(Error::Conflict(_)) => {}
            Err(other) => return Err(other),
        }
        let marked = fetched.marker_owners::<P>(project, ids)?;
        let mut named: Vec<Uuid> = marked.iter().map(|(_, owner)| *owner).collect();
        named.extend(ids.iter().filter_map(|id| id.record_id()));
        named.sort_unstable();
        named.dedup();
        let records = self
            .fetch(
                named
                    .iter()
                    .map(|id| record_key::<P>(project, *id))
                    .collect(),
            )
            .await?;
        let live: Vec<Uuid> = named
            .into_iter()
            .filter(|id| records.item(&record_key::<P>(project, *id)).is_some())
            .collect();
        if live.len() > 1 {
            return Err(Error::conflict(format!(
                "the identifiers name {} different {}s; one request may name only one",
                live.len(),
                P::NOUN
            )));
        }
        let stale = marked
            .into_iter()
            .filter(|(_, owner)| !live.contains(owner))
            .collect();
        Ok((live.first().copied(), stale))
    }

    /// One strongly consistent `BatchGetItem` (repeated only for keys
    /// DynamoDB leaves unprocessed).
    pub(crate) async fn fetch(&self, keys: Vec<Item>) -> Result<Fetched, Error> {
        // DynamoDB refuses a batch that names a key twice (a record named
        // by its id and prefetched as well).
        let mut seen = HashSet::new();
        let mut pending: Vec<Item> = keys
            .into_iter()
            .filter(|k| {
                seen.insert((
                    super::text(k, keys::PK).to_owned(),
                    super::text(k, keys::SK).to_owned(),
                ))
            })
            .collect();
        let mut found = HashMap::new();
        let mut retries = 0;
        while !pending.is_empty() {
            let batch: Vec<Item> = pending.drain(..pending.len().min(MAX_BATCH_GET)).collect();
            let request = build(
                KeysAndAttributes::builder()
                    .set_keys(Some(batch))
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
                let pk = super::text(&item, keys::PK).to_owned();
                let sk = super::text(&item, keys::SK).to_owned();
                found.insert((pk, sk), item);
            }
            let unprocessed = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if !unprocessed.is_empty() {
                retries += 1;
                if retries >= MAX_ATTEMPTS {
                    return Err(Error::Storage(
                        "BatchGetItem kept leaving keys unprocessed".into(),
                    ));
                }
                backoff(retries).await;
                pending.extend(unprocessed);
            }
        }
        Ok(Fetched(found))
    }

    /// The keys to read for resolving identifiers: their markers, plus the
    /// record this container last saw them name (a prefetch hint; the
    /// markers stay the authority).
    pub(crate) fn resolution_keys<P: Profile>(
        &self,
        project: Uuid,
        ids: &[&IdentifierKey],
    ) -> (Vec<Item>, Option<Uuid>) {
        let mut keys = marker_keys::<P>(project, ids);
        let hint = self.remembered::<P>(project, ids);
        if let Some(id) = hint {
            keys.push(record_key::<P>(project, id));
        }
        (keys, hint)
    }

    /// The record this container last saw these identifiers name, if any.
    pub(crate) fn remembered<P: Profile>(
        &self,
        project: Uuid,
        ids: &[&IdentifierKey],
    ) -> Option<Uuid> {
        self.identifier_cache
            .recall(ids.iter().map(|id| P::marker_pk(project, id)))
    }

    /// Remembers what the markers said, for the next prefetch.
    pub(crate) fn learn<P: Profile>(
        &self,
        project: Uuid,
        ids: &[&IdentifierKey],
        owner: Option<Uuid>,
    ) {
        self.identifier_cache
            .learn(ids.iter().map(|id| P::marker_pk(project, id)), owner);
    }

    /// The record: from the batch when it was prefetched, else one read.
    pub(crate) async fn resolved_record<P: Profile>(
        &self,
        fetched: &Fetched,
        project: Uuid,
        id: Uuid,
    ) -> Result<Option<P>, Error> {
        match fetched.record::<P>(project, id)? {
            Some(record) => Ok(Some(record)),
            None => self.get_record::<P>(project, id).await,
        }
    }

    pub(crate) async fn get_record<P: Profile>(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> Result<Option<P>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(record_key::<P>(project, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// Finds the record the identifiers name (404 when none does).
    pub(crate) async fn find_record<P: Profile>(
        &self,
        project: Uuid,
        ids: &[IdentifierKey],
    ) -> Result<P, Error> {
        let refs: Vec<&IdentifierKey> = ids.iter().collect();
        let (keys, _) = self.resolution_keys::<P>(project, &refs);
        let fetched = self.fetch(keys).await?;
        let (owner, _) = self.resolve_live::<P>(&fetched, project, &refs).await?;
        self.learn::<P>(project, &refs, owner);
        match owner {
            Some(id) => self
                .resolved_record(&fetched, project, id)
                .await?
                .ok_or_else(|| not_found::<P>(ids)),
            None => Err(not_found::<P>(ids)),
        }
    }

    /// Creates the record the identifiers name, or updates it. One read of
    /// the markers (with the record prefetched when this container knows
    /// it), one more read otherwise, and one transaction that writes the
    /// record, any new markers, and the system event together. An upsert
    /// that changes nothing writes nothing. Returns the record and whether
    /// it was created.
    pub(crate) async fn upsert_record<P: Profile>(
        &self,
        project: Uuid,
        upsert: &ProfileUpsert,
        scope: Scope,
    ) -> Result<(P, bool), Error> {
        let ids: Vec<&IdentifierKey> = upsert.identifiers().iter().map(|i| &i.key).collect();
        scope.check_identifiers(ids.iter().copied())?;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let now = crate::ids::now();
            let (mut keys, hint) = self.resolution_keys::<P>(project, &ids);
            // The record's event sequence beside it (an update numbers its
            // event after it).
            let hint_sequence = hint.filter(|_| P::HAS_TIMELINE);
            if let Some(id) = hint_sequence {
                keys.push(sequence_key(project, id));
            }
            let fetched = self.fetch(keys).await?;
            let (owner, mut stale) = self.resolve_live::<P>(&fetched, project, &ids).await?;
            // A marker naming a record that is gone names a deleted one:
            // its identifiers are free (ids are never reused, and the
            // record was read strongly consistent).
            // The record, when the markers' read did not prefetch it, is
            // read with its event sequence (one read either way).
            let mut sequence = hint_sequence.map(|id| {
                let item = fetched.item(&sequence_key(project, id));
                (id, Sequence::after(sequence_in(item.as_ref())))
            });
            let live = match owner {
                Some(id) => {
                    let record = match fetched.record::<P>(project, id)? {
                        Some(record) => Some(record),
                        None => {
                            let key = record_key::<P>(project, id);
                            if P::HAS_TIMELINE {
                                let (again, read) =
                                    self.fetch_with_sequence(project, id, vec![key]).await?;
                                sequence = Some((id, read));
                                again.record::<P>(project, id)?
                            } else {
                                self.fetch(vec![key]).await?.record::<P>(project, id)?
                            }
                        }
                    };
                    if record.is_none() {
                        stale.extend(fetched.marker_owners::<P>(project, &ids)?);
                    }
                    record
                }
                None => None,
            };
            let owner = live.as_ref().map(|record| record.id());
            self.learn::<P>(project, &ids, owner);
            let (record, created, outcome) = match live {
                // An id names an existing record only.
                None if ids.iter().any(|id| id.source == ID_SOURCE) => {
                    return Err(not_found::<P>(
                        &ids.iter().map(|id| (*id).clone()).collect::<Vec<_>>(),
                    ));
                }
                None => {
                    let (record, event) = P::create(project, crate::ids::new_id(), upsert, &now);
                    let mut items = vec![put_new(&self.table, record_item(&record)?)?];
                    items.extend(self.marker_puts(&record, &ids, &stale)?);
                    items.extend(record.creation_writes(&self.table, &now)?);
                    items.extend(self.event_writes(
                        &record,
                        event,
                        &now,
                        Sequence::new_organization(),
                    )?);
                    let index = P::index_change(None, Some(&record));
                    let outcome = self.transact_indexed(items, index).await?;
                    (record, true, outcome)
                }
                Some(mut record) => {
                    // Race-free: the update is conditioned on this version,
                    // and what decides the scope changes the version.
                    record.check_scope(scope)?;
                    let expected = record.version();
                    let before = record.clone();
                    let new_keys: Vec<IdentifierKey> =
                        missing_keys(record.identifiers(), upsert.identifiers())
                            .into_iter()
                            .cloned()
                            .collect();
                    let event = match record.apply(upsert, &now)? {
                        Applied::Unchanged => return Ok((record, false)),
                        Applied::Changed(event) => event,
                    };
                    let mut items = vec![self.versioned_update(&record, &before, expected)?];
                    items.extend(self.marker_puts(
                        &record,
                        &new_keys.iter().collect::<Vec<_>>(),
                        &stale,
                    )?);
                    // The sequence was read with the record.
                    let sequence = match (&event, sequence) {
                        (None, _) => Sequence::new_organization(),
                        (Some(_), Some((id, read))) if id == record.id() => read,
                        (Some(_), _) => self.event_sequence(project, record.id()).await?,
                    };
                    items.extend(self.event_writes(&record, event, &now, sequence)?);
                    items.extend(record.update_writes(&self.table, &before)?);
                    let index = P::index_change(Some(&before), Some(&record));
                    let outcome = self.transact_indexed(items, index).await?;
                    (record, false, outcome)
                }
            };
            match outcome {
                TxOutcome::Committed => {
                    self.learn::<P>(project, &ids, Some(record.id()));
                    return Ok((record, created));
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(
                        ?reasons,
                        attempt,
                        noun = P::NOUN,
                        "upsert lost a race; retrying"
                    );
                }
            }
        }
        Err(Error::busy(format!(
            "the {} is being changed concurrently; retry the request",
            P::NOUN
        )))
    }

    /// The writes of the record's event, numbered after `sequence`.
    fn event_writes<P: Profile>(
        &self,
        record: &P,
        event: Option<SystemEvent>,
        now: &str,
        sequence: Sequence,
    ) -> Result<Vec<TransactWriteItem>, Error> {
        match event {
            Some(event) => single_event_writes(
                &self.table,
                record.project_id(),
                record.id(),
                &TimelineEvent::system(event, now),
                sequence,
            ),
            None => Ok(Vec::new()),
        }
    }

    /// Rewrites the attributes this kind's upsert owns that differ from
    /// `before` (the record as read), conditioned on the version read
    /// (optimistic locking). Derived index attributes are always rewritten.
    /// Unchanged large attributes are not sent again: the request stays
    /// small, and the emulator (which counts a replaced attribute twice
    /// against the item limit) behaves like DynamoDB for records up to the
    /// limit.
    pub(crate) fn versioned_update<P: Profile>(
        &self,
        record: &P,
        before: &P,
        expected: u64,
    ) -> Result<TransactWriteItem, Error> {
        // The update keeps what it does not set; the whole record as it
        // will be is what must fit.
        super::size::check_item(
            &format!("the {}", P::NOUN),
            super::size::item_size(&record_item(record)?),
        )?;
        let derived: Vec<&'static str> = record
            .index_attributes()?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let stored: HashMap<&'static str, AttributeValue> =
            before.updated_attributes()?.into_iter().collect();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(record_key::<P>(record.project_id(), record.id())))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected))
            .expression_attribute_values(":version", n(record.version()));
        let mut set = vec!["#version = :version".to_owned()];
        let changed = record
            .updated_attributes()?
            .into_iter()
            .filter(|(name, value)| derived.contains(name) || stored.get(name) != Some(value));
        for (i, (name, value)) in changed.enumerate() {
            set.push(format!("#a{i} = :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        let update = build(
            update
                .update_expression(format!("SET {}", set.join(", ")))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The markers of new identifiers: each must be free, or (`stale`)
    /// still name the deleted record it was read naming — taken over with
    /// a condition on that claim alone, which suffices: a record's id is
    /// never reused and a deleted record never comes back, so a marker
    /// that still names it names nothing live.
    pub(crate) fn marker_puts<P: Profile>(
        &self,
        record: &P,
        ids: &[&IdentifierKey],
        stale: &[(IdentifierKey, Uuid)],
    ) -> Result<Vec<TransactWriteItem>, Error> {
        ids.iter()
            .filter(|id| id.record_id().is_none() && id.source != ID_SOURCE)
            .map(|id| {
                let marker = MarkerItem {
                    pk: P::marker_pk(record.project_id(), id),
                    sk: P::MARKER_SK.into(),
                    owner_id: record.id(),
                };
                match stale.iter().find(|(key, _)| key == *id) {
                    None => put_new(&self.table, to_item(&marker)?),
                    Some((_, dead)) => take_over(&self.table, to_item(&marker)?, *dead),
                }
            })
            .collect()
    }
}

/// A put that must not overwrite: `attribute_not_exists(PK)`.
pub(crate) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, Error> {
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A put of a claim (an identifier marker, a domain claim) that is free or
/// still held by `dead`, a deleted record.
pub(crate) fn take_over(table: &str, item: Item, dead: Uuid) -> Result<TransactWriteItem, Error> {
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR owner_id = :dead")
            .expression_attribute_values(":dead", s(dead.to_string()))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub(crate) fn to_value<T: Serialize>(value: &T) -> Result<AttributeValue, Error> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|e| Error::Internal(format!("serialising a value: {e}")))
}

pub(crate) fn not_found<P: Profile>(ids: &[IdentifierKey]) -> Error {
    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
    Error::not_found(format!(
        "no {} has the identifier {}",
        P::NOUN,
        names.join(" or ")
    ))
}
