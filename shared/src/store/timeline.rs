//! The organization timeline: events and the per-day counters that
//! segmentation's frequency rules read. Written inside the transaction of the
//! change they record.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{build, n, s, to_item, Item};
use crate::domain::Data;
use crate::error::Error;
use crate::keys;

/// Counters are kept this long (a year of rolling windows, plus margin).
const COUNTER_RETENTION_SECS: i64 = 400 * 24 * 3600;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub data: Data,
    pub created_at: String,
    /// `system` for events the service emits, `custom` for clients' events.
    pub origin: String,
}

#[derive(Serialize)]
struct EventItem<'a> {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    /// The event's entry in the timeline by name.
    #[serde(rename = "EVENTNAMEPK")]
    name_pk: String,
    /// Its place among the organization's events (see [`Sequence`]).
    sequence: u64,
    #[serde(flatten)]
    event: &'a TimelineEvent,
}

pub(crate) fn event_item(
    project: Uuid,
    org: Uuid,
    event: &TimelineEvent,
    sequence: u64,
) -> Result<Item, Error> {
    to_item(&EventItem {
        pk: keys::org_pk(project, org),
        sk: keys::event_sk(event.id),
        name_pk: keys::event_name_pk(project, org, &event.name),
        sequence,
        event,
    })
}

/// An organization's event sequence as one write read it: `seen`, the last
/// number an event of the organization was given (0: none yet), and the
/// numbers this write's events take after it. The write's transaction
/// carries [`Sequence::write`], conditioned on `seen`, so of two writes
/// that read the same number at most one commits (the other reads again
/// and retries): numbers increase by one per event, without gaps or
/// repeats, in commit order — what subscribers order a feed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sequence {
    seen: u64,
    last: u64,
}

impl Sequence {
    /// The sequence of an organization whose events are at `seen`.
    pub(crate) fn after(seen: u64) -> Self {
        Self { seen, last: seen }
    }

    /// The sequence of an organization the write creates.
    pub(crate) fn new_organization() -> Self {
        Self::after(0)
    }

    fn take(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// The sequence item's write, conditioned on the number read: `None`
    /// when no event took a number.
    pub(crate) fn write(
        &self,
        table: &str,
        project: Uuid,
        org: Uuid,
    ) -> Result<Option<TransactWriteItem>, Error> {
        if self.last == self.seen {
            return Ok(None);
        }
        let update = Update::builder()
            .table_name(table)
            .key(keys::PK, s(keys::org_pk(project, org)))
            .key(keys::SK, s(keys::EVENT_SEQUENCE_SK))
            .update_expression("SET #n = :last")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":last", n(self.last));
        let update = if self.seen == 0 {
            update.condition_expression("attribute_not_exists(#n)")
        } else {
            update
                .condition_expression("#n = :seen")
                .expression_attribute_values(":seen", n(self.seen))
        };
        Ok(Some(
            TransactWriteItem::builder()
                .update(build(update.build())?)
                .build(),
        ))
    }
}

/// The number in a sequence item (0 when there is none).
pub(crate) fn sequence_in(item: Option<&Item>) -> u64 {
    item.and_then(|i| i.get("n"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn sequence_key(project: Uuid, org: Uuid) -> Item {
    super::key(keys::org_pk(project, org), keys::EVENT_SEQUENCE_SK)
}

/// The writes that record one event, numbered by `sequence`: the event
/// (once: the put is conditional on its id being new) and its day's
/// counter. The transaction must carry `sequence`'s [`Sequence::write`]
/// after its last event.
pub(crate) fn record_event(
    table: &str,
    project: Uuid,
    org: Uuid,
    event: &TimelineEvent,
    sequence: &mut Sequence,
) -> Result<[TransactWriteItem; 2], Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok([
        event_put(table, project, org, event, sequence.take())?,
        counter_update(table, project, org, &event.name, day(event), 1, now)?,
    ])
}

/// The writes of a transaction that records one event: [`record_event`]
/// and the sequence's write.
pub(crate) fn single_event_writes(
    table: &str,
    project: Uuid,
    org: Uuid,
    event: &TimelineEvent,
    mut sequence: Sequence,
) -> Result<Vec<TransactWriteItem>, Error> {
    let mut writes = record_event(table, project, org, event, &mut sequence)?.to_vec();
    writes.extend(sequence.write(table, project, org)?);
    Ok(writes)
}

/// Puts the event unless its id was recorded before.
fn event_put(
    table: &str,
    project: Uuid,
    org: Uuid,
    event: &TimelineEvent,
    sequence: u64,
) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(event_item(project, org, event, sequence)?))
        .condition_expression("attribute_not_exists(PK)")
        .build();
    Ok(TransactWriteItem::builder().put(build(put)?).build())
}

/// Adds `count` events to one organization's counter of one name and day.
fn counter_update(
    table: &str,
    project: Uuid,
    org: Uuid,
    name: &str,
    day: &str,
    count: i64,
    now: i64,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(table)
        .key(keys::PK, s(keys::org_pk(project, org)))
        .key(keys::SK, s(keys::counter_sk(name, day)))
        .update_expression("ADD #count :n SET #name = :name, #day = :day, #ttl = :ttl")
        .expression_attribute_names("#count", "count")
        .expression_attribute_names("#name", "name")
        .expression_attribute_names("#day", "day")
        .expression_attribute_names("#ttl", keys::TTL)
        .expression_attribute_values(":n", n(count))
        .expression_attribute_values(":name", s(name))
        .expression_attribute_values(":day", s(day))
        .expression_attribute_values(":ttl", n(now + COUNTER_RETENTION_SECS))
        .build();
    Ok(TransactWriteItem::builder().update(build(update)?).build())
}

/// A transaction item that fails unless the organization exists.
fn organization_exists(table: &str, project: Uuid, org: Uuid) -> Result<TransactWriteItem, Error> {
    let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
        .table_name(table)
        .key(keys::PK, s(keys::org_pk(project, org)))
        .key(keys::SK, s(keys::ORG_SK))
        .condition_expression("attribute_exists(PK)")
        .build();
    Ok(TransactWriteItem::builder()
        .condition_check(build(check)?)
        .build())
}

impl TimelineEvent {
    pub fn system(event: crate::domain::SystemEvent, at: &str) -> Self {
        Self {
            id: crate::ids::new_id(),
            name: event.name.to_owned(),
            data: event.data,
            created_at: at.to_owned(),
            origin: "system".into(),
        }
    }
}

/// What recording a posted event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Recorded,
    /// The event id was recorded before: a redelivery, nothing written.
    Duplicate,
    /// The organization no longer exists; nothing written.
    NoOrganization,
}

impl super::Store {
    /// The organization's event sequence, as a write that numbers its
    /// events reads it (one strongly consistent GetItem).
    pub(crate) async fn event_sequence(&self, project: Uuid, org: Uuid) -> Result<Sequence, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(sequence_key(project, org)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        Ok(Sequence::after(sequence_in(out.item.as_ref())))
    }

    /// Items of the organization's partition (`keys`) read with its event
    /// sequence in one BatchGetItem: what a write that numbers an event
    /// reads, so the number costs no round trip of its own.
    pub(crate) async fn fetch_with_sequence(
        &self,
        project: Uuid,
        org: Uuid,
        mut keys: Vec<Item>,
    ) -> Result<(super::profiles::Fetched, Sequence), Error> {
        keys.push(sequence_key(project, org));
        let fetched = self.fetch(keys).await?;
        let seen = sequence_in(fetched.item(&sequence_key(project, org)).as_ref());
        Ok((fetched, Sequence::after(seen)))
    }

    /// Records a posted event in its organization's timeline and bumps its
    /// day's counter, once, and only while the organization exists: the
    /// sequence read, then one transaction (again when another event of
    /// the organization took the number first).
    pub async fn record_event(
        &self,
        project: Uuid,
        org: Uuid,
        event: &TimelineEvent,
    ) -> Result<Recorded, Error> {
        for attempt in 0..super::profiles::MAX_ATTEMPTS {
            if attempt > 0 {
                super::backoff(attempt).await;
            }
            let mut sequence = self.event_sequence(project, org).await?;
            let mut writes =
                record_event(&self.table, project, org, event, &mut sequence)?.to_vec();
            writes.push(organization_exists(&self.table, project, org)?);
            writes.extend(sequence.write(&self.table, project, org)?);
            match self.transact(writes).await? {
                super::TxOutcome::Committed => return Ok(Recorded::Recorded),
                outcome if outcome.condition_failed_at(0) => return Ok(Recorded::Duplicate),
                outcome if outcome.condition_failed_at(2) => return Ok(Recorded::NoOrganization),
                super::TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(
                        ?reasons,
                        attempt,
                        "recording an event lost a race; retrying"
                    );
                }
            }
        }
        Err(Error::busy(format!(
            "recording event {} met other writes of its organization; retry",
            event.id
        )))
    }
}

/// One event to record in one organization's timeline.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    pub project: Uuid,
    pub org: Uuid,
    pub event: &'a TimelineEvent,
}

/// Item kinds in a batched transaction, so a cancellation reason can be read
/// back as a verdict on the deliveries it concerns.
enum Written {
    Event(usize),
    Counter,
    Organization(Vec<usize>),
    /// An organization's sequence: failed, another write numbered events
    /// first (nothing settled; the deliveries are retried alone).
    Sequence,
}

/// One counter item: project, organization, event name, day.
type CounterKey<'a> = (Uuid, Uuid, &'a str, &'a str);

/// Times a group lost to another write is tried again whole before its
/// deliveries are tried one by one.
const GROUP_RACES: u32 = 3;

/// DynamoDB refuses transactions over 4 MB; stay well below it.
const TRANSACTION_BYTES: usize = 3 * 1024 * 1024;

/// Splits deliveries into transactions: each holds at most 100 items and
/// 3 MB, one counter update per (organization, name, day) and one existence
/// check and one sequence write per organization (DynamoDB refuses two
/// operations on one item).
fn transactions(deliveries: &[Delivery<'_>], pending: &[usize]) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    let mut group: Vec<usize> = Vec::new();
    let mut items = 0;
    let mut bytes = 0;
    let mut counters = std::collections::HashSet::new();
    let mut orgs = std::collections::HashSet::new();
    for &index in pending {
        let d = &deliveries[index];
        let size = serde_json::to_vec(d.event).map_or(TRANSACTION_BYTES, |v| v.len()) + 200;
        let counter: CounterKey<'_> = (d.project, d.org, d.event.name.as_str(), day(d.event));
        let added = 1
            + usize::from(!counters.contains(&counter))
            + 2 * usize::from(!orgs.contains(&(d.project, d.org)));
        if !group.is_empty()
            && (items + added > super::MAX_TRANSACTION_ITEMS || bytes + size > TRANSACTION_BYTES)
        {
            groups.push(std::mem::take(&mut group));
            (items, bytes) = (0, 0);
            counters.clear();
            orgs.clear();
        }
        items += 1
            + usize::from(counters.insert(counter))
            + 2 * usize::from(orgs.insert((d.project, d.org)));
        bytes += size;
        group.push(index);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

fn day(event: &TimelineEvent) -> &str {
    event.created_at.get(..10).unwrap_or("0000-00-00")
}

impl super::Store {
    /// Records many events in as few transactions as DynamoDB allows (one
    /// for an SQS batch of 10, after one BatchGetItem of its organizations'
    /// sequences), each once and only while its organization exists,
    /// numbered in the order given: the verdict per delivery, in order. A delivery repeated in
    /// the list shares the first one's verdict. When a transaction is
    /// cancelled by failed conditions, the deliveries they name are settled
    /// (duplicate, organization gone) and the rest retried together; any
    /// other cancellation (another write numbered events of an organization
    /// first, a conflicting write) retries the group with the sequences read
    /// again, [`GROUP_RACES`] times, then each delivery in its own
    /// transaction so one cannot hold back the others.
    pub async fn record_events(&self, deliveries: &[Delivery<'_>]) -> Vec<Result<Recorded, Error>> {
        let mut verdicts: Vec<Option<Result<Recorded, Error>>> =
            deliveries.iter().map(|_| None).collect();
        let mut first = std::collections::HashMap::new();
        let mut copies = Vec::new();
        let mut pending = Vec::new();
        for (index, d) in deliveries.iter().enumerate() {
            match first.entry((d.project, d.org, d.event.id)) {
                std::collections::hash_map::Entry::Occupied(seen) => {
                    copies.push((index, *seen.get()))
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(index);
                    pending.push(index);
                }
            }
        }
        for mut group in transactions(deliveries, &pending) {
            // Each round settles at least one delivery or leaves the loop.
            let mut sequences = match self.event_sequences(deliveries, &group).await {
                Ok(sequences) => sequences,
                Err(err) => {
                    let message = err.to_string();
                    for &index in &group {
                        verdicts[index] = Some(Err(Error::Storage(message.clone())));
                    }
                    continue;
                }
            };
            let mut raced = 0;
            while !group.is_empty() {
                match self.record_group(deliveries, &group, &sequences).await {
                    // Another write numbered events of one of its
                    // organizations first (or held an item): the group again,
                    // from the sequences as they are now, a few times.
                    Ok(settled) if settled.is_empty() && raced < GROUP_RACES => {
                        raced += 1;
                        super::backoff(raced).await;
                        match self.event_sequences(deliveries, &group).await {
                            Ok(now) => sequences = now,
                            Err(_) => raced = GROUP_RACES,
                        }
                    }
                    Ok(settled) if settled.is_empty() => {
                        for &index in &group {
                            let d = deliveries[index];
                            verdicts[index] =
                                Some(self.record_event(d.project, d.org, d.event).await);
                        }
                        break;
                    }
                    Ok(settled) => {
                        for (index, verdict) in settled {
                            verdicts[index] = Some(Ok(verdict));
                        }
                        group.retain(|&index| verdicts[index].is_none());
                    }
                    Err(err) => {
                        let message = err.to_string();
                        for &index in &group {
                            verdicts[index] = Some(Err(Error::Storage(message.clone())));
                        }
                        break;
                    }
                }
            }
        }
        for (index, original) in copies {
            verdicts[index] = Some(match &verdicts[original] {
                Some(Ok(_)) => Ok(Recorded::Duplicate),
                Some(Err(err)) => Err(Error::Storage(err.to_string())),
                None => Err(Error::Internal("a delivery was left unrecorded".into())),
            });
        }
        verdicts
            .into_iter()
            .map(|v| {
                v.unwrap_or_else(|| Err(Error::Internal("a delivery was left unrecorded".into())))
            })
            .collect()
    }

    /// The sequences of the group's organizations: one BatchGetItem.
    async fn event_sequences(
        &self,
        deliveries: &[Delivery<'_>],
        group: &[usize],
    ) -> Result<std::collections::HashMap<(Uuid, Uuid), Sequence>, Error> {
        let orgs: std::collections::BTreeSet<(Uuid, Uuid)> = group
            .iter()
            .map(|&i| (deliveries[i].project, deliveries[i].org))
            .collect();
        let fetched = self
            .fetch(orgs.iter().map(|&(p, o)| sequence_key(p, o)).collect())
            .await?;
        Ok(orgs
            .into_iter()
            .map(|(p, o)| {
                let seen = sequence_in(fetched.item(&sequence_key(p, o)).as_ref());
                ((p, o), Sequence::after(seen))
            })
            .collect())
    }

    /// One transaction for a group of distinct deliveries. Committed: every
    /// one recorded. Cancelled: the deliveries the failed conditions settle
    /// (empty when the cancellation was for another reason).
    async fn record_group(
        &self,
        deliveries: &[Delivery<'_>],
        group: &[usize],
        sequences: &std::collections::HashMap<(Uuid, Uuid), Sequence>,
    ) -> Result<Vec<(usize, Recorded)>, Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut writes = Vec::new();
        let mut written = Vec::new();
        let mut counters: Vec<(CounterKey<'_>, i64)> = Vec::new();
        let mut orgs: Vec<((Uuid, Uuid), Vec<usize>)> = Vec::new();
        let mut numbered = sequences.clone();
        for &index in group {
            let d = deliveries[index];
            let sequence = numbered
                .entry((d.project, d.org))
                .or_insert_with(Sequence::new_organization)
                .take();
            writes.push(event_put(&self.table, d.project, d.org, d.event, sequence)?);
            written.push(Written::Event(index));
            let counter = (d.project, d.org, d.event.name.as_str(), day(d.event));
            match counters.iter_mut().find(|(k, _)| *k == counter) {
                Some((_, count)) => *count += 1,
                None => counters.push((counter, 1)),
            }
            match orgs.iter_mut().find(|(k, _)| *k == (d.project, d.org)) {
                Some((_, members)) => members.push(index),
                None => orgs.push(((d.project, d.org), vec![index])),
            }
        }
        for ((project, org, name, day), count) in counters {
            writes.push(counter_update(
                &self.table,
                project,
                org,
                name,
                day,
                count,
                now,
            )?);
            written.push(Written::Counter);
        }
        for ((project, org), members) in orgs {
            writes.push(organization_exists(&self.table, project, org)?);
            written.push(Written::Organization(members));
            if let Some(sequence) = numbered.get(&(project, org)) {
                writes.extend(sequence.write(&self.table, project, org)?);
                written.push(Written::Sequence);
            }
        }
        let reasons = match self.transact(writes).await? {
            super::TxOutcome::Committed => {
                return Ok(group.iter().map(|&i| (i, Recorded::Recorded)).collect())
            }
            super::TxOutcome::Cancelled(reasons) => reasons,
        };
        let mut settled = Vec::new();
        for (what, reason) in written.iter().zip(&reasons) {
            if reason != "ConditionalCheckFailed" {
                continue;
            }
            match what {
                Written::Event(index) => settled.push((*index, Recorded::Duplicate)),
                Written::Organization(members) => {
                    settled.extend(members.iter().map(|&i| (i, Recorded::NoOrganization)))
                }
                Written::Counter | Written::Sequence => {}
            }
        }
        // An event both repeated and orphaned is settled once, as gone.
        settled.sort_by_key(|&(index, verdict)| (index, verdict != Recorded::NoOrganization));
        settled.dedup_by_key(|(index, _)| *index);
        Ok(settled)
    }
}

/// A timeline event with its place in the organization's sequence, as
/// the publisher sends it; `sequence` is `None` for an event recorded
/// before events were numbered.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct NumberedEvent {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub data: Data,
    pub created_at: String,
    #[serde(default)]
    pub sequence: Option<u64>,
}

/// One page of an organization's events from a point in its timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberedPage {
    pub events: Vec<NumberedEvent>,
    /// Items of the timeline's range that are no event (a foreign write).
    pub unreadable: u64,
    /// The last event read, when the timeline may go on after it.
    pub last: Option<Uuid>,
}

/// One page of an organization's timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelinePage {
    pub events: Vec<TimelineEvent>,
    pub next_cursor: Option<String>,
}

impl super::Store {
    /// The organization's timeline, oldest first, optionally only events of
    /// one name; `None` when the organization does not exist. The page and
    /// the organization's existence are read concurrently.
    pub async fn timeline(
        &self,
        project: Uuid,
        org: Uuid,
        name: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Option<TimelinePage>, Error> {
        let start = cursor
            .map(|c| self.cursors.decode(project, c))
            .transpose()?;
        if let Some(start) = &start {
            let same_org = start.get(keys::PK).and_then(|v| v.as_s().ok())
                == Some(&keys::org_pk(project, org));
            let in_timeline = start
                .get(keys::SK)
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with(keys::EVENT_PREFIX));
            if !same_org || !in_timeline {
                return Err(Error::invalid("the cursor belongs to another list"));
            }
        }
        let (exists, page) = tokio::join!(
            self.get_organization(project, org),
            self.timeline_page(project, org, name, limit, start)
        );
        if exists?.is_none() {
            return Ok(None);
        }
        let (events, last) = page?;
        Ok(Some(TimelinePage {
            events,
            next_cursor: last.map(|key| self.cursors.encode(project, &key)),
        }))
    }

    /// Up to `limit` of the organization's events recorded at or after
    /// `since_millis` (Unix milliseconds, by their UUIDv7 ids) and after
    /// event `after`, oldest first: one Query of the timeline's key range,
    /// whether or not the organization still exists (a deleted one's
    /// events stay until its purge). What a replay republishes.
    pub async fn numbered_events(
        &self,
        project: Uuid,
        org: Uuid,
        since_millis: u64,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<NumberedPage, Error> {
        let pk = keys::org_pk(project, org);
        let start = after.map(|event| {
            Item::from([
                (keys::PK.to_owned(), s(pk.clone())),
                (keys::SK.to_owned(), s(keys::event_sk(event))),
            ])
        });
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :end")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(keys::event_sk_from(since_millis)))
            .expression_attribute_values(":end", s(keys::EVENT_SK_END))
            .set_exclusive_start_key(start)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| super::storage("Query", e))?;
        let mut page = NumberedPage {
            events: Vec::new(),
            unreadable: 0,
            last: out.last_evaluated_key.as_ref().and_then(|key| {
                let sk = key.get(keys::SK)?.as_s().ok()?;
                sk.strip_prefix(keys::EVENT_PREFIX)?.parse().ok()
            }),
        };
        for item in out.items.unwrap_or_default() {
            match super::from_item::<NumberedEvent>(item) {
                Ok(event) => page.events.push(event),
                Err(err) => {
                    tracing::warn!(error = %err, "a timeline item that is no event");
                    page.unreadable += 1;
                }
            }
        }
        Ok(page)
    }

    /// One page of the timeline, or (`name`) of the timeline by name: a
    /// Query of `limit` items, repeated only when DynamoDB cut a Query short
    /// at 1 MB. The position is the event's table key either way, so a
    /// cursor of one list reads on in the other.
    async fn timeline_page(
        &self,
        project: Uuid,
        org: Uuid,
        name: Option<&str>,
        limit: usize,
        mut start: Option<Item>,
    ) -> Result<(Vec<TimelineEvent>, Option<Item>), Error> {
        let mut events = Vec::with_capacity(limit);
        loop {
            let remaining = limit - events.len();
            let query = self
                .db
                .query()
                .table_name(&self.table)
                .limit(remaining as i32);
            let query = match name {
                None => query
                    .key_condition_expression("PK = :pk AND begins_with(SK, :evt)")
                    .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
                    .expression_attribute_values(":evt", s(keys::EVENT_PREFIX))
                    .set_exclusive_start_key(start),
                Some(name) => {
                    let partition = s(keys::event_name_pk(project, org, name));
                    query
                        .index_name(keys::EVENT_NAME_INDEX)
                        .key_condition_expression("#pk = :pk")
                        .expression_attribute_names("#pk", keys::EVENT_NAME_PK)
                        .expression_attribute_values(":pk", partition.clone())
                        .set_exclusive_start_key(start.map(|mut key| {
                            key.insert(keys::EVENT_NAME_PK.into(), partition);
                            key
                        }))
                }
            };
            let out = query.send().await.map_err(|e| super::storage("Query", e))?;
            for item in out.items.unwrap_or_default() {
                events.push(super::from_item(item)?);
            }
            start = out.last_evaluated_key.map(|mut key| {
                key.retain(|attribute, _| attribute == keys::PK || attribute == keys::SK);
                key
            });
            if start.is_none() || events.len() >= limit {
                return Ok((events, start));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, day: &str) -> TimelineEvent {
        TimelineEvent {
            id: Uuid::now_v7(),
            name: name.into(),
            data: Default::default(),
            created_at: format!("{day}T00:00:00Z"),
            origin: "custom".into(),
        }
    }

    fn sizes(deliveries: &[Delivery<'_>]) -> Vec<usize> {
        let all: Vec<usize> = (0..deliveries.len()).collect();
        transactions(deliveries, &all)
            .iter()
            .map(Vec::len)
            .collect()
    }

    #[test]
    fn one_organizations_events_share_its_check_and_counters() {
        let project = Uuid::now_v7();
        let org = Uuid::now_v7();
        let events: Vec<_> = (0..150).map(|_| event("seat", "2026-11-23")).collect();
        let deliveries: Vec<_> = events
            .iter()
            .map(|event| Delivery {
                project,
                org,
                event,
            })
            .collect();
        // 97 events + 1 counter + 1 existence check + 1 sequence = 100 items.
        assert_eq!(sizes(&deliveries), [97, 53]);
        assert_eq!(sizes(&deliveries[..10]), [10]);
    }

    #[test]
    fn distinct_organizations_and_days_take_items_of_their_own() {
        let project = Uuid::now_v7();
        let events: Vec<_> = (0..100).map(|_| event("seat", "2026-11-23")).collect();
        let deliveries: Vec<_> = events
            .iter()
            .map(|event| Delivery {
                project,
                org: Uuid::now_v7(),
                event,
            })
            .collect();
        // 4 items each (event, counter, check, sequence): 25 per transaction.
        assert_eq!(sizes(&deliveries), [25, 25, 25, 25]);
        let org = Uuid::now_v7();
        let days: Vec<_> = (1..=60)
            .map(|d| event("seat", &format!("2026-{:02}-{:02}", 1 + d / 28, 1 + d % 28)))
            .collect();
        let deliveries: Vec<_> = days
            .iter()
            .map(|event| Delivery {
                project,
                org,
                event,
            })
            .collect();
        // 1 check + 1 sequence + 2 items per day-distinct event: 49 fit in 100.
        assert_eq!(sizes(&deliveries), [49, 11]);
    }

    #[test]
    fn large_events_are_split_by_size() {
        let project = Uuid::now_v7();
        let org = Uuid::now_v7();
        let mut big = event("upload", "2026-11-23");
        big.data
            .insert("blob".into(), serde_json::json!("x".repeat(300 * 1024)));
        let events = vec![big; 20];
        let deliveries: Vec<_> = events
            .iter()
            .map(|event| Delivery {
                project,
                org,
                event,
            })
            .collect();
        // 300 KB each against a 3 MB budget.
        assert_eq!(sizes(&deliveries), [10, 10]);
    }
}
