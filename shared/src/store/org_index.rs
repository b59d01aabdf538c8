//! The organization list's indexes: entries of their own (not attributes
//! of the record), kept by the store in the same transaction as every
//! organization write, so one page of the list reads about its offset
//! plus its page of entries, never the project's whole list.
//!
//! Each entry is a small item (`PK`, `SK`, `org`, `v`: the record version
//! that wrote it) in one of these partitions:
//! - per project and order: `C` (creation time, then id: the default
//!   order and `created` ranges), `T` (lower-cased title, then id), `OA` /
//!   `OD` (owner's last name ascending / descending, organizations without
//!   one after the others in both, ties in creation order);
//! - per project, filter field and value (`F#<field>#<value>`: owner, tag,
//!   segment, email, identifier, archived), sorted by creation, so a
//!   filter's entries are read in the default order with `created` ranges
//!   in the key condition, and its cost follows its matches;
//! - per project, `Q`: one entry per searchable word, sorted by the word,
//!   so a word's start is one key range (`begins_with`).
//!
//! Why the per-project partitions (`C`, `T`, `OA`, `OD`, `archived=false`)
//! do not become write hot spots: each organization write touches one
//! small item (one write unit) in each, and only when the value it sorts
//! by changes; a partition takes 1,000 write units a second, and `T`,
//! `OA`, `OD` spread their writes over the key range, which DynamoDB
//! splits when it gets hot. `C` and `archived=false` are time-ordered, so
//! their writes land at the end of the range: they cap one project's
//! creations at about 500 a second (a transaction costs two units an
//! item) — more than one project's 200 concurrent creates of
//! tests/hot_keys.rs; shard them by a prefix if a project needs more.
//! The items are distinct, so concurrent creates never conflict on them.
//!
//! Every row read is checked against its organization's record (which a
//! page reads anyway): an entry whose organization is gone (deleted, its
//! entries not yet removed) or no longer matches is skipped, never listed.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use uuid::Uuid;

use super::profiles::record_key;
use super::{build, key, n, s, storage, Item, Store, TxOutcome, MAX_TRANSACTION_ITEMS};
use crate::domain::crm::{ListFields, OrgFilter, OrgOrder, TimeBound};
use crate::domain::Organization;
use crate::error::Error;
use crate::keys;

/// Separates an entry's sort value from the id that follows it: below
/// every character a sort value keeps, so `van` sorts before `van dijk`
/// as the strings do.
const SEP: char = '\u{1}';

/// The most candidates a filtered or searched list examines whole (every
/// candidate's record read, filtered, sorted): past it, the list walks an
/// order index and checks each row instead.
pub const MAX_CANDIDATES: usize = 1_000;

/// Where no maintained count answers `total`, matches are counted up to
/// this many pages past the page's start (and `total` is that bound when
/// there are more).
pub const COUNT_AHEAD_PAGES: usize = 10;

/// One page of the organization list.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgListPage {
    pub organizations: Vec<Organization>,
    /// How many organizations the list has: exact from a maintained count
    /// (no filter; `archived` alone), from every candidate examined, or
    /// from an index read to its end; else the bound counted to (see
    /// [`COUNT_AHEAD_PAGES`]).
    pub total: u64,
}

/// What a list asks for, in the store's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Created,
    Title { descending: bool },
    Owner { descending: bool },
}

impl Order {
    fn of(orders: &[(OrgOrder, bool)]) -> Self {
        match orders.first() {
            None => Order::Created,
            Some((OrgOrder::Title, descending)) => Order::Title {
                descending: *descending,
            },
            Some((OrgOrder::OwnerLastName, descending)) => Order::Owner {
                descending: *descending,
            },
        }
    }

    /// The index kind read for this order, and whether it is read forward.
    fn index(self) -> (&'static str, bool) {
        match self {
            Order::Created => ("C", true),
            Order::Title { descending } => ("T", !descending),
            Order::Owner { descending: false } => ("OA", true),
            Order::Owner { descending: true } => ("OD", false),
        }
    }
}

/// A sort value as entries keep it: lower-cased, without characters at or
/// below [`SEP`], at most 200 characters.
fn sort_value(value: &str) -> String {
    value
        .to_lowercase()
        .chars()
        .filter(|c| *c > SEP)
        .take(200)
        .collect()
}

/// The id reversed in order, so an index read backwards still breaks ties
/// in creation order.
fn inverted(id: Uuid) -> String {
    format!("{:032x}", !id.as_u128())
}

fn created_sk(org: &Organization) -> String {
    format!("{}{SEP}{}", org.created_at, org.id)
}

/// The entry's sort key in the index of `kind` (`C`, `T`, `OA`, `OD`).
fn order_sk(kind: &str, org: &Organization, fields: &ListFields) -> String {
    let id = org.id;
    let last = sort_value(&fields.owner_last_name);
    match kind {
        "T" => format!("{}{SEP}{id}", sort_value(&fields.title)),
        "OA" if last.is_empty() => format!("1{id}"),
        "OA" => format!("0{last}{SEP}{id}"),
        "OD" if last.is_empty() => format!("0{}", inverted(id)),
        "OD" => format!("1{last}{SEP}{}", inverted(id)),
        _ => created_sk(org),
    }
}

/// An index entry's key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Entry {
    pk: String,
    sk: String,
}

/// Every index entry the organization has, from its record.
pub(crate) fn entries(org: &Organization) -> BTreeSet<Entry> {
    let project = org.project_id;
    let fields = ListFields::of(org);
    let created = created_sk(org);
    let mut out = BTreeSet::new();
    for kind in ["C", "T", "OA", "OD"] {
        out.insert(Entry {
            pk: keys::crm_index_pk(project, kind),
            sk: order_sk(kind, org, &fields),
        });
    }
    let mut value = |field: &str, v: &str| {
        out.insert(Entry {
            pk: keys::crm_value_pk(project, field, v),
            sk: created.clone(),
        });
    };
    value("archived", if fields.archived { "true" } else { "false" });
    if let Some(owner) = &fields.owner {
        value("owner", owner);
    }
    for (field, values) in [
        ("tag", &fields.tags),
        ("segment", &fields.segments),
        ("email", &fields.emails),
        ("ident", &fields.identifiers),
    ] {
        for v in values {
            value(field, v);
        }
    }
    for token in &fields.tokens {
        out.insert(Entry {
            pk: keys::crm_index_pk(project, "Q"),
            sk: format!("{token}{SEP}{created}"),
        });
    }
    out
}

/// The keys of every index entry the organization has (what its purge
/// removes when its deletion could not).
pub(crate) fn entry_keys(org: &Organization) -> Vec<super::cleanup::ClaimKey> {
    entries(org)
        .into_iter()
        .map(|e| super::cleanup::ClaimKey { pk: e.pk, sk: e.sk })
        .collect()
}

fn entry_item(entry: &Entry, org: &Organization) -> Item {
    let mut item = key(entry.pk.clone(), entry.sk.clone());
    item.insert("org".into(), s(org.id.to_string()));
    item.insert("v".into(), n(org.version));
    item
}

/// What one organization write does to the indexes.
#[derive(Default)]
pub(crate) struct IndexChange {
    puts: Vec<Item>,
    deletes: Vec<Item>,
    /// The archived count's change (-1, 0, 1).
    archived: i64,
    project: Uuid,
}

/// The index change of an organization going from `before` to `after`
/// (`None`: not there).
pub(crate) fn change(before: Option<&Organization>, after: Option<&Organization>) -> IndexChange {
    let old = before.map(entries).unwrap_or_default();
    let new = after.map(entries).unwrap_or_default();
    let archived = |o: Option<&Organization>| {
        i64::from(o.is_some_and(|o| o.crm.as_ref().is_some_and(|c| c.archived_at.is_some())))
    };
    let project = after.or(before).map_or(Uuid::nil(), |o| o.project_id);
    IndexChange {
        puts: after.map_or_else(Vec::new, |org| {
            new.difference(&old).map(|e| entry_item(e, org)).collect()
        }),
        deletes: old
            .difference(&new)
            .map(|e| key(e.pk.clone(), e.sk.clone()))
            .collect(),
        archived: archived(after) - archived(before),
        project,
    }
}

impl IndexChange {
    fn counter(&self, table: &str) -> Result<Option<TransactWriteItem>, Error> {
        if self.archived == 0 {
            return Ok(None);
        }
        super::organizations::count_in(table, keys::archived_count_pk(self.project), self.archived)
            .map(Some)
    }

    fn writes(&self, table: &str) -> Result<Vec<TransactWriteItem>, Error> {
        let mut writes = Vec::with_capacity(self.puts.len() + self.deletes.len() + 1);
        for item in &self.puts {
            let put = build(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item.clone()))
                    .build(),
            )?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        for item_key in &self.deletes {
            let delete = build(
                Delete::builder()
                    .table_name(table)
                    .set_key(Some(item_key.clone()))
                    .build(),
            )?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        writes.extend(self.counter(table)?);
        Ok(writes)
    }
}

/// One read of an index: a key range of one partition, read in order.
struct Stream {
    pk: String,
    /// `SK >= from` / `SK <= to` / `begins_with(SK, prefix)`.
    from: Option<String>,
    to: Option<String>,
    prefix: Option<String>,
    forward: bool,
    start: Option<Item>,
    done: bool,
    buffer: VecDeque<(String, Uuid)>,
}

impl Stream {
    fn new(pk: String, forward: bool) -> Self {
        Stream {
            pk,
            from: None,
            to: None,
            prefix: None,
            forward,
            start: None,
            done: false,
            buffer: VecDeque::new(),
        }
    }

    /// Limits a creation-ordered partition to the `created` bounds; `false`
    /// when no key can be within them.
    fn created(mut self, created: &[(TimeBound, String)]) -> Option<Self> {
        for (bound, at) in created {
            // Keys are `<created_at>\x01<id>`, created_at of fixed width:
            // `at\x02` sorts after every key created at `at`, `at` before.
            match bound {
                TimeBound::After => self.from = self.from.max(Some(at.clone())),
                TimeBound::StrictlyAfter => self.from = self.from.max(Some(format!("{at}\u{2}"))),
                TimeBound::Before => {
                    let to = format!("{at}\u{2}");
                    self.to = Some(self.to.map_or(to.clone(), |t| t.min(to)));
                }
                TimeBound::StrictlyBefore => {
                    self.to = Some(self.to.map_or(at.clone(), |t| t.min(at.clone())))
                }
            }
        }
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if from > to => None,
            _ => Some(self),
        }
    }
}

/// Streams of one order merged into one, each organization once.
struct Merged {
    streams: Vec<Stream>,
    forward: bool,
    last: Option<String>,
}

impl Store {
    /// Reads up to `want` more entries of the stream into its buffer.
    async fn fill(&self, stream: &mut Stream, want: usize) -> Result<(), Error> {
        while !stream.done && stream.buffer.len() < want {
            let mut condition = "PK = :pk".to_owned();
            let mut query = self
                .db
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(stream.pk.clone()))
                .scan_index_forward(stream.forward)
                .limit((want - stream.buffer.len()).clamp(1, 1_000) as i32)
                .consistent_read(true)
                .projection_expression("SK, org");
            match (&stream.from, &stream.to, &stream.prefix) {
                (_, _, Some(prefix)) => {
                    condition.push_str(" AND begins_with(SK, :prefix)");
                    query = query.expression_attribute_values(":prefix", s(prefix.clone()));
                }
                (Some(from), Some(to), None) => {
                    condition.push_str(" AND SK BETWEEN :from AND :to");
                    query = query
                        .expression_attribute_values(":from", s(from.clone()))
                        .expression_attribute_values(":to", s(to.clone()));
                }
                (Some(from), None, None) => {
                    condition.push_str(" AND SK >= :from");
                    query = query.expression_attribute_values(":from", s(from.clone()));
                }
                (None, Some(to), None) => {
                    condition.push_str(" AND SK <= :to");
                    query = query.expression_attribute_values(":to", s(to.clone()));
                }
                (None, None, None) => {}
            }
            let out = query
                .key_condition_expression(condition)
                .set_exclusive_start_key(stream.start.take())
                .send()
                .await
                .map_err(|e| storage("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let sk = super::text(&item, keys::SK).to_owned();
                if let Ok(org) = super::text(&item, "org").parse() {
                    stream.buffer.push_back((sk, org));
                }
            }
            stream.start = out.last_evaluated_key;
            stream.done = stream.start.is_none();
        }
        Ok(())
    }

    /// The next `want` organizations of the merged streams, in order.
    async fn pull(&self, merged: &mut Merged, want: usize) -> Result<Vec<Uuid>, Error> {
        let mut out = Vec::with_capacity(want);
        while out.len() < want {
            for stream in &mut merged.streams {
                self.fill(stream, want - out.len()).await?;
            }
            let next = merged
                .streams
                .iter()
                .enumerate()
                .filter_map(|(i, st)| st.buffer.front().map(|(sk, _)| (i, sk.clone())))
                .reduce(|a, b| {
                    let better = if merged.forward { b.1 < a.1 } else { b.1 > a.1 };
                    if better {
                        b
                    } else {
                        a
                    }
                });
            let Some((i, sk)) = next else { break };
            let Some((_, org)) = merged.streams[i].buffer.pop_front() else {
                break;
            };
            // The same organization under two values of one filter.
            if merged.last.as_ref() != Some(&sk) {
                out.push(org);
            }
            merged.last = Some(sk);
        }
        Ok(out)
    }

    /// The records of these organizations that still exist, by id.
    async fn records(
        &self,
        project: Uuid,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Organization>, Error> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let fetched = self
            .fetch(
                ids.iter()
                    .map(|id| record_key::<Organization>(project, *id))
                    .collect(),
            )
            .await?;
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(org) = fetched.record::<Organization>(project, *id)? {
                found.insert(*id, org);
            }
        }
        Ok(found)
    }

    /// One page of the project's organization list. `filter` narrows it,
    /// the first of `orders` orders it (ties in creation order).
    ///
    /// Served, by what is asked:
    /// - nothing but `created` / `archived`, in creation order: their
    ///   entries (pure: the entries decide; the records up to the page's
    ///   end are read to skip organizations gone);
    /// - one filter of values (owner, tags, …) in creation order, nothing
    ///   else but `created`: the union of its values' entries, the same way;
    /// - otherwise from the most selective part (identifiers, emails,
    ///   owners, tags, segments, the search's longest word, `archived`,
    ///   `created`, in that order): up to [`MAX_CANDIDATES`] candidates,
    ///   their records read, checked, sorted and paged; past that, the
    ///   order index walked from the start with each row's record checked.
    pub async fn organization_list(
        &self,
        project: Uuid,
        filter: &OrgFilter,
        orders: &[(OrgOrder, bool)],
        offset: usize,
        limit: usize,
    ) -> Result<OrgListPage, Error> {
        let order = Order::of(orders);
        let words = filter.search_words();
        let mut filter = filter.clone();
        if words.is_empty() {
            filter.text = None;
        }
        let values = value_filters(&filter);
        let selective = !values.is_empty() || !words.is_empty();
        if !selective {
            if order == Order::Created {
                let stream = match filter.archived {
                    Some(archived) => Stream::new(
                        keys::crm_value_pk(project, "archived", &archived.to_string()),
                        true,
                    ),
                    None => Stream::new(keys::crm_index_pk(project, "C"), true),
                };
                let Some(stream) = stream.created(&filter.created) else {
                    return Ok(empty());
                };
                if !filter.created.is_empty() {
                    return self
                        .walk(project, vec![stream], true, &filter, offset, limit, false)
                        .await;
                }
                return self
                    .counted_walk(project, stream, filter.archived, offset, limit)
                    .await;
            }
            if filter.is_empty() {
                let stream = order_stream(project, order);
                return self
                    .counted_walk(project, stream, None, offset, limit)
                    .await;
            }
        }
        if order == Order::Created
            && words.is_empty()
            && values.len() == 1
            && filter.archived.is_none()
        {
            let (field, wanted) = &values[0];
            let streams: Vec<Stream> = wanted
                .iter()
                .filter_map(|v| {
                    Stream::new(keys::crm_value_pk(project, field, v), true)
                        .created(&filter.created)
                })
                .collect();
            return self
                .walk(project, streams, true, &filter, offset, limit, false)
                .await;
        }
        if let Some(candidates) = self.candidates(project, &filter, &values, &words).await? {
            let mut found: Vec<Organization> = self
                .records(project, &candidates)
                .await?
                .into_values()
                .filter(|org| filter.matches(org))
                .collect();
            sort(&mut found, order);
            let total = found.len() as u64;
            return Ok(OrgListPage {
                organizations: found.into_iter().skip(offset).take(limit).collect(),
                total,
            });
        }
        let stream = match order {
            Order::Created => {
                Stream::new(keys::crm_index_pk(project, "C"), true).created(&filter.created)
            }
            _ => Some(order_stream(project, order)),
        };
        let Some(stream) = stream else {
            return Ok(empty());
        };
        self.walk(project, vec![stream], false, &filter, offset, limit, false)
            .await
    }

    /// A pure walk of one stream whose total a maintained count gives
    /// (read beside the page, concurrently).
    async fn counted_walk(
        &self,
        project: Uuid,
        stream: Stream,
        archived: Option<bool>,
        offset: usize,
        limit: usize,
    ) -> Result<OrgListPage, Error> {
        let filter = OrgFilter::default();
        let (page, total) = tokio::join!(
            self.walk(project, vec![stream], true, &filter, offset, limit, true),
            self.list_count(project, archived)
        );
        Ok(OrgListPage {
            total: total?,
            ..page?
        })
    }

    /// The organizations among `ids` (a session's) as [`Store::organization_list`]
    /// lists them: only these organizations' records are read — only the
    /// page's when nothing filters or orders.
    pub async fn organization_list_among(
        &self,
        project: Uuid,
        ids: &BTreeSet<Uuid>,
        filter: &OrgFilter,
        orders: &[(OrgOrder, bool)],
        offset: usize,
        limit: usize,
    ) -> Result<OrgListPage, Error> {
        let order = Order::of(orders);
        if filter.is_empty() && order == Order::Created {
            // Ids are UUIDv7: their order is the creation order.
            let page: Vec<Uuid> = ids.iter().skip(offset).take(limit).copied().collect();
            let mut found = self.records(project, &page).await?;
            return Ok(OrgListPage {
                organizations: page.iter().filter_map(|id| found.remove(id)).collect(),
                total: ids.len() as u64,
            });
        }
        let all: Vec<Uuid> = ids.iter().copied().collect();
        let mut found: Vec<Organization> = self
            .records(project, &all)
            .await?
            .into_values()
            .filter(|org| filter.matches(org))
            .collect();
        sort(&mut found, order);
        let total = found.len() as u64;
        Ok(OrgListPage {
            organizations: found.into_iter().skip(offset).take(limit).collect(),
            total,
        })
    }

    /// The organizations of the most selective part of the filter, when
    /// they are at most [`MAX_CANDIDATES`] (`None`: more).
    async fn candidates(
        &self,
        project: Uuid,
        filter: &OrgFilter,
        values: &[(&'static str, Vec<String>)],
        words: &[String],
    ) -> Result<Option<Vec<Uuid>>, Error> {
        let streams: Vec<Stream> = if let Some((field, wanted)) = values.first() {
            wanted
                .iter()
                .filter_map(|v| {
                    Stream::new(keys::crm_value_pk(project, field, v), true)
                        .created(&filter.created)
                })
                .collect()
        } else if let Some(word) = words.iter().max_by_key(|w| w.chars().count()) {
            let mut stream = Stream::new(keys::crm_index_pk(project, "Q"), true);
            stream.prefix = Some(word.clone());
            vec![stream]
        } else {
            let stream = match filter.archived {
                Some(archived) => Stream::new(
                    keys::crm_value_pk(project, "archived", &archived.to_string()),
                    true,
                ),
                None => Stream::new(keys::crm_index_pk(project, "C"), true),
            };
            stream.created(&filter.created).into_iter().collect()
        };
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        for mut stream in streams {
            // One budget for all the values together.
            self.fill(&mut stream, MAX_CANDIDATES + 1 - ids.len())
                .await?;
            for (_, org) in stream.buffer {
                if seen.insert(org) {
                    ids.push(org);
                }
            }
            if ids.len() > MAX_CANDIDATES || !stream.done {
                return Ok(None);
            }
        }
        Ok(Some(ids))
    }

    /// Walks merged index streams: skips `offset` matches, reads the page,
    /// then counts matches ahead up to [`COUNT_AHEAD_PAGES`] pages unless
    /// `counted_elsewhere` (a maintained count gives the total). Every row
    /// up to the page's end is checked to exist; `pure`: the entries decide
    /// the filter (and alone are counted ahead), else every row's record is
    /// read and checked against it.
    #[allow(clippy::too_many_arguments)]
    async fn walk(
        &self,
        project: Uuid,
        streams: Vec<Stream>,
        pure: bool,
        filter: &OrgFilter,
        offset: usize,
        limit: usize,
        counted_elsewhere: bool,
    ) -> Result<OrgListPage, Error> {
        let forward = streams.first().is_none_or(|st| st.forward);
        let mut merged = Merged {
            streams,
            forward,
            last: None,
        };
        let bound = offset + COUNT_AHEAD_PAGES * limit.max(1);
        let mut counted = 0usize;
        let mut page = Vec::with_capacity(limit);
        let mut exhausted = false;
        let chunk = (limit * 2).clamp(10, 100);
        while !exhausted {
            if counted_elsewhere && counted >= offset && page.len() == limit {
                break;
            }
            if counted >= bound.max(offset + limit) {
                break;
            }
            // Up to the page's end every row is checked against its record
            // (an entry of a deleted organization takes no place, so pages
            // neither repeat nor skip one); past it, a pure walk counts
            // entries alone.
            let to_page_end = counted < offset + limit;
            let want = if !pure {
                chunk
            } else if to_page_end {
                offset + limit - counted
            } else {
                bound - counted
            };
            let ids = self.pull(&mut merged, want).await?;
            exhausted = ids.len() < want;
            if pure && !to_page_end {
                counted += ids.len();
                continue;
            }
            let mut found = self.records(project, &ids).await?;
            for id in ids {
                let Some(org) = found.remove(&id) else {
                    continue;
                };
                if !pure && !filter.matches(&org) {
                    continue;
                }
                if counted >= offset && page.len() < limit {
                    page.push(org);
                }
                counted += 1;
            }
        }
        Ok(OrgListPage {
            organizations: page,
            total: counted as u64,
        })
    }

    /// The count the list answers without filters (`archived`: only the
    /// archived, or only the others).
    async fn list_count(&self, project: Uuid, archived: Option<bool>) -> Result<u64, Error> {
        let Some(archived) = archived else {
            return self.organization_count(project).await;
        };
        let (all, archived_count) = tokio::join!(
            self.organization_count(project),
            self.sum_shards(keys::archived_count_pk(project))
        );
        let archived_count = archived_count?;
        Ok(if archived {
            archived_count
        } else {
            all?.saturating_sub(archived_count)
        })
    }

    /// Sends an organization write with its index change: in the same
    /// transaction when it fits in one (every write of an ordinary
    /// organization). A change of more entries than fit (a write of many
    /// list values at once) writes its new entries before the transaction
    /// and removes its stale ones after it: an entry early or late is never
    /// listed, since each row is checked against the record.
    pub(crate) async fn transact_indexed(
        &self,
        mut items: Vec<TransactWriteItem>,
        change: IndexChange,
    ) -> Result<TxOutcome, Error> {
        let writes = change.writes(&self.table)?;
        if items.len() + writes.len() <= MAX_TRANSACTION_ITEMS {
            items.extend(writes);
            return self.transact(items).await;
        }
        items.extend(change.counter(&self.table)?);
        let puts = change
            .puts
            .iter()
            .map(|item| {
                build(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item.clone()))
                        .build(),
                )
                .map(|p| TransactWriteItem::builder().put(p).build())
            })
            .collect::<Result<_, _>>()?;
        self.write_entries(puts).await?;
        let outcome = self.transact(items).await?;
        if let TxOutcome::Committed = outcome {
            // The write is done: a stale entry left by a failure here is
            // skipped by every list (its row no longer matches).
            if let Err(error) = self.delete_entries(change.deletes).await {
                tracing::warn!(%error, "removing stale list entries after a write failed");
            }
        }
        Ok(outcome)
    }

    /// Removes an organization's index entries (what its deletion leaves
    /// behind; lists skip them meanwhile, as the record is gone). `org` is
    /// the record as it was deleted. Bounded: one transaction per 100
    /// entries, at most a few hundred entries an organization.
    pub async fn remove_org_index_entries(&self, org: &Organization) -> Result<(), Error> {
        let stale = entries(org).into_iter().map(|e| key(e.pk, e.sk)).collect();
        self.delete_entries(stale).await
    }

    /// What a deletion's transaction writes for the list: the counts it
    /// keeps (always in it), and the removal of the organization's entries
    /// (in it when there is room, else [`Store::remove_org_index_entries`]
    /// after it).
    pub(crate) fn org_index_deletion_writes(
        &self,
        org: &Organization,
    ) -> Result<(Vec<TransactWriteItem>, Vec<TransactWriteItem>), Error> {
        let mut change = change(Some(org), None);
        let counts = change.counter(&self.table)?.into_iter().collect();
        change.archived = 0;
        Ok((counts, change.writes(&self.table)?))
    }

    async fn delete_entries(&self, stale: Vec<Item>) -> Result<(), Error> {
        let deletes = stale
            .into_iter()
            .map(|k| {
                build(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(k))
                        .build(),
                )
                .map(|d| TransactWriteItem::builder().delete(d).build())
            })
            .collect::<Result<_, _>>()?;
        self.write_entries(deletes).await
    }

    /// Entry writes outside an organization's transaction, in
    /// transactions of their own (the same permissions as every other
    /// write, each chunk all or nothing).
    async fn write_entries(&self, writes: Vec<TransactWriteItem>) -> Result<(), Error> {
        for chunk in writes.chunks(MAX_TRANSACTION_ITEMS) {
            if let TxOutcome::Cancelled(reasons) = self.transact(chunk.to_vec()).await? {
                return Err(Error::Storage(format!(
                    "writing index entries was cancelled: {reasons:?}"
                )));
            }
        }
        Ok(())
    }
}

fn empty() -> OrgListPage {
    OrgListPage {
        organizations: Vec::new(),
        total: 0,
    }
}

fn order_stream(project: Uuid, order: Order) -> Stream {
    let (kind, forward) = order.index();
    Stream::new(keys::crm_index_pk(project, kind), forward)
}

/// The value filters given, most selective first (a guess by kind:
/// identifiers and emails name few organizations, segments many).
fn value_filters(filter: &OrgFilter) -> Vec<(&'static str, Vec<String>)> {
    [
        ("ident", &filter.identifiers),
        ("email", &filter.emails),
        ("owner", &filter.owners),
        ("tag", &filter.tags),
        ("segment", &filter.segments),
    ]
    .into_iter()
    .filter(|(_, values)| !values.is_empty())
    .map(|(field, values)| (field, values.clone()))
    .collect()
}

/// Sorts records as the order's index holds them.
fn sort(orgs: &mut [Organization], order: Order) {
    let (kind, forward) = order.index();
    let mut keyed: Vec<(String, Organization)> = orgs
        .iter()
        .map(|org| (order_sk(kind, org, &ListFields::of(org)), org.clone()))
        .collect();
    keyed.sort_by(|a, b| {
        if forward {
            a.0.cmp(&b.0)
        } else {
            b.0.cmp(&a.0)
        }
    });
    for (slot, (_, org)) in orgs.iter_mut().zip(keyed) {
        *slot = org;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::address::Change;
    use crate::domain::crm::{CrmChange, CrmProfile};

    fn org(id: u128, title: &str, last: Option<&str>) -> Organization {
        let mut o = Organization::create_named(
            Uuid::nil(),
            title,
            Default::default(),
            "2026-01-01T00:00:00.000Z",
        )
        .unwrap()
        .0;
        o.id = Uuid::from_u128(id);
        if let Some(last) = last {
            o.crm = Some(CrmProfile {
                owner: Some("7".into()),
                owner_last_name: Some(last.into()),
                ..Default::default()
            });
        }
        o
    }

    fn ids(orgs: &[Organization]) -> Vec<u128> {
        orgs.iter().map(|o| o.id.as_u128()).collect()
    }

    #[test]
    fn orders_sort_as_their_indexes_hold_them() {
        let mut orgs = vec![
            org(1, "b", None),
            org(2, "a", Some("van dijk")),
            org(3, "c", Some("van")),
            org(4, "A", Some("van")),
        ];
        sort(&mut orgs, Order::Created);
        assert_eq!(ids(&orgs), vec![1, 2, 3, 4]);
        sort(&mut orgs, Order::Title { descending: false });
        assert_eq!(ids(&orgs), vec![2, 4, 1, 3]);
        sort(&mut orgs, Order::Title { descending: true });
        assert_eq!(ids(&orgs), vec![3, 1, 4, 2]);
        sort(&mut orgs, Order::Owner { descending: false });
        assert_eq!(
            ids(&orgs),
            vec![3, 4, 2, 1],
            "a prefix first; no owner last"
        );
        sort(&mut orgs, Order::Owner { descending: true });
        assert_eq!(
            ids(&orgs),
            vec![2, 3, 4, 1],
            "ties in creation order, no owner last"
        );
    }

    #[test]
    fn a_change_writes_only_the_entries_that_differ() {
        let before = org(1, "Acme", None);
        let mut after = before.clone();
        CrmChange {
            tags: Change::Set(vec!["t1".into()]),
            archived_at: Change::Set("2026-02-01T00:00:00Z".into()),
            ..Default::default()
        }
        .apply(&mut after, None);
        let c = change(Some(&before), Some(&after));
        // A tag entry and archived=true in, archived=false out.
        assert_eq!((c.puts.len(), c.deletes.len(), c.archived), (2, 1, 1));
        let gone = change(Some(&after), None);
        assert_eq!((gone.puts.len(), gone.archived), (0, -1));
        assert_eq!(gone.deletes.len(), entries(&after).len());
    }

    #[test]
    fn created_bounds_become_one_key_range() {
        let at = "2026-01-01T00:00:00.000Z".to_owned();
        let s = Stream::new("p".into(), true)
            .created(&[(TimeBound::StrictlyAfter, at.clone())])
            .unwrap();
        let key = format!("{at}{SEP}{}", Uuid::nil());
        assert!(
            key < s.from.clone().unwrap(),
            "strictly after excludes the time"
        );
        let s = Stream::new("p".into(), true)
            .created(&[(TimeBound::Before, at.clone())])
            .unwrap();
        assert!(key <= s.to.clone().unwrap(), "before includes it");
        assert!(Stream::new("p".into(), true)
            .created(&[
                (TimeBound::StrictlyAfter, at.clone()),
                (TimeBound::StrictlyBefore, at)
            ])
            .is_none());
    }
}
