//! The facts segmentation rules read, gathered in bounded reads.
//!
//! One user ([`Store::user_facts`]): the user (its markers, then its
//! record), its memberships (one Query of the user → organizations index),
//! their organizations (one BatchGetItem), and — only for the events the
//! rule reads — each organization's activity in the rule's window: the
//! daily counters of an event the rule counts whole, or the events
//! themselves (newest first, at most [`MAX_RULE_EVENTS_PER_ORGANIZATION`])
//! when the rule reads their data; one Query per organization and event,
//! in parallel.
//!
//! A whole project ([`Store::evaluate_segment`]): candidates in user id
//! order, then the same facts per candidate, with organizations and their
//! activity read once per request however many candidates share them.
//! Candidates come from the rule's [`Narrowing`]: when every user the rule
//! can select must have a membership that passes a gate, the organization
//! index is read (one paged Query), the activity too when the gate reads
//! events, and only the passing organizations' membership items (one Query
//! each); otherwise the user index is read from the cursor on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{from_item, s, Store};
use crate::domain::segment::{
    Activity, EventsRead, Facts, Narrowing, OrgEvent, OrgFacts, Reads, Segment,
};
use crate::domain::{IdentifierKey, Membership, Organization, User};
use crate::error::Error;
use crate::keys;
use crate::limits::MAX_RULE_EVENTS_PER_ORGANIZATION;
use crate::store::timeline::TimelineEvent;

/// How much earlier than its `created_at` an event's id may have been
/// made (a schedule fired late): the timeline is read from this much before
/// a window's start.
const EVENT_ID_SLACK: time::Duration = time::Duration::days(1);
/// Reads in flight at once within one request.
const CONCURRENCY: usize = 16;
/// Most candidates read per round (one BatchGetItem or Query of users).
const ROUND: usize = 100;
/// Most candidates one request examines; a page may end short of `limit`
/// with a cursor to go on from.
pub const MAX_EXAMINED: usize = 1_000;

#[derive(serde::Deserialize)]
struct Counter {
    name: String,
    day: String,
    count: u64,
}

/// One user a rule selects, with the organizations that made it match.
#[derive(Clone, Debug, PartialEq)]
pub struct Selected {
    pub user: User,
    pub organizations: Vec<Uuid>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SegmentPage {
    pub users: Vec<Selected>,
    /// The last user examined, when more candidates follow.
    pub next_after: Option<Uuid>,
}

/// Runs the tasks at most [`CONCURRENCY`] at a time; results in task order.
async fn bounded<T, F>(tasks: Vec<F>) -> Result<Vec<T>, Error>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    let mut results: Vec<Option<T>> = (0..tasks.len()).map(|_| None).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut store_result = |done: Result<(usize, Result<T, Error>), tokio::task::JoinError>| {
        let (slot, result) =
            done.map_err(|e| Error::Internal(format!("a parallel read failed: {e}")))?;
        if let Some(place) = results.get_mut(slot) {
            *place = Some(result?);
        }
        Ok::<_, Error>(())
    };
    for (slot, task) in tasks.into_iter().enumerate() {
        if running.len() >= CONCURRENCY {
            if let Some(done) = running.join_next().await {
                store_result(done)?;
            }
        }
        running.spawn(async move { (slot, task.await) });
    }
    while let Some(done) = running.join_next().await {
        store_result(done)?;
    }
    Ok(results.into_iter().flatten().collect())
}

/// What one request has read: organizations and their activity are shared
/// by every candidate that belongs to them.
struct Gathered {
    project: Uuid,
    /// `None`: deleted since a membership named it.
    organizations: HashMap<Uuid, Option<Organization>>,
    activity: HashMap<Uuid, Arc<Activity>>,
    /// What the rule reads of the organizations' events.
    reads: Reads,
    today: Date,
    now: OffsetDateTime,
}

/// One read of one organization's activity.
enum Piece {
    Counters(Vec<Counter>),
    Events(String, EventsRead),
}

impl Gathered {
    fn new(project: Uuid, segment: &Segment, now: OffsetDateTime) -> Self {
        Self {
            project,
            organizations: HashMap::new(),
            activity: HashMap::new(),
            reads: segment.reads(now),
            today: now.date(),
            now,
        }
    }

    /// Reads the organizations (one BatchGetItem per 100) and their
    /// activity (when the rule reads events) not read yet.
    async fn load(
        &mut self,
        store: &Store,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<(), Error> {
        let mut wanted: Vec<Uuid> = ids.into_iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        let missing: Vec<Uuid> = wanted
            .iter()
            .filter(|id| !self.organizations.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            let fetched = store
                .fetch(
                    missing
                        .iter()
                        .map(|id| super::profiles::record_key::<Organization>(self.project, *id))
                        .collect(),
                )
                .await?;
            for id in &missing {
                let org = fetched.record::<Organization>(self.project, *id)?;
                self.organizations.insert(*id, org);
            }
        }
        self.load_activity(store, wanted).await
    }

    /// Per organization not read yet: the daily counters of each event the
    /// rule counts whole (one Query per name), and the events whose data
    /// the rule reads (one Query per name, newest first, at most
    /// [`MAX_RULE_EVENTS_PER_ORGANIZATION`] each).
    async fn load_activity(&mut self, store: &Store, orgs: Vec<Uuid>) -> Result<(), Error> {
        if self.reads.counters.is_empty() && self.reads.events.is_empty() {
            return Ok(());
        }
        let mut tasks: Vec<PieceRead> = Vec::new();
        let mut loaded: HashMap<Uuid, Activity> = HashMap::new();
        for org in orgs {
            if self.activity.contains_key(&org)
                || !matches!(self.organizations.get(&org), Some(Some(_)))
            {
                continue;
            }
            loaded.insert(org, Activity::default());
            for (name, from) in &self.reads.counters {
                let (store, project, name) = (store.clone(), self.project, name.clone());
                let (from, to) = (from.to_string(), self.today.to_string());
                tasks.push(Box::pin(async move {
                    let query = store
                        .db
                        .query()
                        .table_name(&store.table)
                        .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                        .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
                        .expression_attribute_values(":from", s(keys::counter_sk(&name, &from)))
                        .expression_attribute_values(":to", s(keys::counter_sk(&name, &to)));
                    let counters = store
                        .query_all(query)
                        .await?
                        .into_iter()
                        .map(from_item::<Counter>)
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok::<_, Error>((org, Piece::Counters(counters)))
                }));
            }
            for (name, from) in &self.reads.events {
                let (store, project, name, from) =
                    (store.clone(), self.project, name.clone(), *from);
                tasks.push(Box::pin(async move {
                    let read = store.events_since(project, org, &name, from).await?;
                    Ok::<_, Error>((org, Piece::Events(name, read)))
                }));
            }
        }
        for (org, piece) in bounded(tasks).await? {
            let activity = loaded.entry(org).or_default();
            match piece {
                Piece::Counters(counters) => activity
                    .counters
                    .extend(counters.into_iter().map(|c| (c.name, c.day, c.count))),
                Piece::Events(name, read) => {
                    activity.events.insert(name, read);
                }
            }
        }
        for (org, activity) in loaded {
            self.activity.insert(org, Arc::new(activity));
        }
        Ok(())
    }

    fn activity_of(&self, org: Uuid) -> Arc<Activity> {
        self.activity.get(&org).cloned().unwrap_or_default()
    }

    /// The facts of one user whose memberships and organizations are read.
    fn facts(&self, user: User, memberships: Vec<Membership>) -> Facts {
        let organizations = memberships
            .into_iter()
            .filter_map(|membership| {
                let organization = self
                    .organizations
                    .get(&membership.organization_id)
                    .cloned()
                    .flatten()?;
                let activity = self.activity_of(organization.id);
                Some(OrgFacts {
                    organization,
                    membership,
                    activity,
                })
            })
            .collect();
        Facts {
            user,
            organizations,
            now: self.now,
        }
    }
}

/// One organization's read of one kind, boxed so that both kinds share a
/// list.
type PieceRead =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Uuid, Piece), Error>> + Send>>;

impl Store {
    pub async fn user_facts(
        &self,
        project: Uuid,
        user: &[IdentifierKey],
        segment: &Segment,
        now: OffsetDateTime,
    ) -> Result<Facts, Error> {
        let user = self.find_user(project, user).await?;
        let memberships = self.user_memberships(project, user.id).await?;
        let mut gathered = Gathered::new(project, segment, now);
        gathered
            .load(self, memberships.iter().map(|m| m.organization_id))
            .await?;
        Ok(gathered.facts(user, memberships))
    }

    /// The users `segment` selects after user `after`, in user id order:
    /// at most `limit`, examining at most [`MAX_EXAMINED`] candidates.
    pub async fn evaluate_segment(
        &self,
        project: Uuid,
        segment: &Segment,
        after: Option<Uuid>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<SegmentPage, Error> {
        let mut gathered = Gathered::new(project, segment, now);
        let reads_organizations = segment.reads_organizations();
        // The admitted memberships of each candidate, when they are all the
        // facts the rule can use (its every organization node is a gate).
        let mut known: Option<HashMap<Uuid, Vec<Membership>>> = None;
        let mut candidates = match segment.narrowing() {
            Narrowing::Everyone => Candidates::AllUsers { after, done: false },
            Narrowing::MembersOf(gates) if gates.is_empty() => Candidates::Listed(Vec::new()),
            Narrowing::MembersOf(gates) => {
                let organizations = self.project_organizations(project).await?;
                let ids: Vec<Uuid> = organizations.iter().map(|o| o.id).collect();
                for o in organizations {
                    gathered.organizations.insert(o.id, Some(o));
                }
                if gates.iter().any(|g| g.counts_events()) {
                    gathered.load_activity(self, ids.clone()).await?;
                }
                let organization = |org: Uuid| {
                    gathered
                        .organizations
                        .get(&org)
                        .and_then(Option::as_ref)
                        .map(|o| (o, gathered.activity_of(org)))
                };
                let admitted: Vec<Uuid> = ids
                    .into_iter()
                    .filter(|org| {
                        organization(*org).is_some_and(|(o, activity)| {
                            gates
                                .iter()
                                .any(|g| g.admits_organization(o, &activity, now))
                        })
                    })
                    .collect();
                let complete = gates.len() == segment.organization_nodes();
                let mut users: BTreeMap<Uuid, Vec<Membership>> = BTreeMap::new();
                for members in self.members_of(project, admitted).await? {
                    for m in members {
                        let admitted =
                            organization(m.organization_id).is_some_and(|(o, activity)| {
                                gates.iter().any(|g| g.admits(o, &activity, &m, now))
                            });
                        if admitted && after.is_none_or(|a| m.user_id > a) {
                            users.entry(m.user_id).or_default().push(m);
                        }
                    }
                }
                let ids = users.keys().rev().copied().collect();
                if complete {
                    known = Some(users.into_iter().collect());
                }
                Candidates::Listed(ids)
            }
        };

        let mut selected = Vec::new();
        let mut examined = 0;
        let mut last = None;
        // Rounds that read each candidate's memberships start near the page
        // size and double: a dense segment reads little past its page, a
        // sparse one few rounds. Others take whole rounds at once.
        let per_candidate = reads_organizations && known.is_none();
        let mut size = if per_candidate {
            limit.clamp(8, ROUND)
        } else {
            ROUND
        };
        loop {
            let round = size.min(MAX_EXAMINED - examined);
            size = (size * 2).min(ROUND);
            let users = candidates.next_round(self, project, round).await?;
            if users.is_empty() {
                return Ok(SegmentPage {
                    users: selected,
                    next_after: None,
                });
            }
            // A tree of user conditions alone reads no memberships; a tree
            // whose organization leaves are all gates has them already.
            let memberships = if let Some(known) = known.as_mut() {
                users
                    .iter()
                    .map(|u| known.remove(&u.id).unwrap_or_default())
                    .collect()
            } else if reads_organizations {
                bounded(
                    users
                        .iter()
                        .map(|u| {
                            let (store, user) = (self.clone(), u.id);
                            async move { store.user_memberships(project, user).await }
                        })
                        .collect(),
                )
                .await?
            } else {
                vec![Vec::new(); users.len()]
            };
            gathered
                .load(
                    self,
                    memberships.iter().flatten().map(|m| m.organization_id),
                )
                .await?;
            let count = users.len();
            let mut seen = 0;
            for (user, memberships) in users.into_iter().zip(memberships) {
                seen += 1;
                last = Some(user.id);
                let facts = gathered.facts(user, memberships);
                let (hit, reasons) = segment.evaluate(&facts)?;
                if hit {
                    let mut organizations: Vec<Uuid> = reasons
                        .iter()
                        .filter_map(|r| r.organization_id.as_deref())
                        .filter_map(|id| id.parse().ok())
                        .collect();
                    organizations.sort_unstable();
                    organizations.dedup();
                    selected.push(Selected {
                        user: facts.user,
                        organizations,
                    });
                    if selected.len() == limit {
                        break;
                    }
                }
            }
            examined += seen;
            if selected.len() == limit || examined >= MAX_EXAMINED {
                let more = seen < count || candidates.more(self, project, last).await?;
                return Ok(SegmentPage {
                    users: selected,
                    next_after: if more { last } else { None },
                });
            }
        }
    }

    /// The events of one name in one organization's timeline created at
    /// or after `from`, newest first, at most
    /// [`MAX_RULE_EVENTS_PER_ORGANIZATION`] (`capped` when more were
    /// there). One Query of the timeline's keys from the window's start:
    /// event ids are UUIDv7, made when the event was taken in, so the keys
    /// sort by time. A schedule's firing takes its id from its due time,
    /// which may precede `created_at`: the key range starts
    /// [`EVENT_ID_SLACK`] earlier, and `created_at` decides.
    async fn events_since(
        &self,
        project: Uuid,
        org: Uuid,
        name: &str,
        from: OffsetDateTime,
    ) -> Result<EventsRead, Error> {
        let earliest = from - EVENT_ID_SLACK;
        let millis = u64::try_from(earliest.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let mut events = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .filter_expression("#name = :name AND #created_at >= :since")
                .expression_attribute_names("#name", "name")
                .expression_attribute_names("#created_at", "created_at")
                .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
                .expression_attribute_values(":from", s(keys::event_sk_from(millis)))
                .expression_attribute_values(":to", s(keys::EVENT_SK_END))
                .expression_attribute_values(":name", s(name))
                .expression_attribute_values(":since", s(crate::ids::timestamp(from)))
                .scan_index_forward(false)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| super::storage("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let event: TimelineEvent = from_item(item)?;
                events.push(OrgEvent {
                    data: event.data,
                    created_at: event.created_at,
                });
            }
            start = out.last_evaluated_key;
            if events.len() > MAX_RULE_EVENTS_PER_ORGANIZATION || start.is_none() {
                break;
            }
        }
        let capped = events.len() > MAX_RULE_EVENTS_PER_ORGANIZATION;
        events.truncate(MAX_RULE_EVENTS_PER_ORGANIZATION);
        Ok(EventsRead { events, capped })
    }

    /// Every organization of the project (the organization index, one
    /// paged Query).
    async fn project_organizations(&self, project: Uuid) -> Result<Vec<Organization>, Error> {
        self.index_partition(keys::org_list_pk(project)).await
    }

    /// The membership items of each organization (one Query each, in
    /// parallel).
    async fn members_of(
        &self,
        project: Uuid,
        organizations: Vec<Uuid>,
    ) -> Result<Vec<Vec<Membership>>, Error> {
        bounded(
            organizations
                .into_iter()
                .map(|org| {
                    let store = self.clone();
                    async move {
                        let query = store
                            .db
                            .query()
                            .table_name(&store.table)
                            .key_condition_expression("PK = :pk AND begins_with(SK, :mem)")
                            .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
                            .expression_attribute_values(":mem", s(keys::MEMBERSHIP_PREFIX));
                        store
                            .query_all(query)
                            .await?
                            .into_iter()
                            .map(from_item::<Membership>)
                            .collect::<Result<Vec<_>, _>>()
                    }
                })
                .collect(),
        )
        .await
    }

    /// Up to `limit` users of the project after `after`, in id order (the
    /// user index), and whether the index holds more.
    async fn users_after(
        &self,
        project: Uuid,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<User>, bool), Error> {
        let from = after.map_or_else(|| keys::USER_LIST_PREFIX.to_owned(), keys::user_list_sk);
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK > :from")
            .expression_attribute_values(":pk", s(keys::user_list_pk(project)))
            .expression_attribute_values(":from", s(from))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| super::storage("Query", e))?;
        let users = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<User>, _>>()?;
        Ok((users, out.last_evaluated_key.is_some()))
    }

    /// The user records of `ids` (one BatchGetItem per 100), in id order;
    /// a user deleted since is skipped.
    async fn users_by_id(&self, project: Uuid, ids: &[Uuid]) -> Result<Vec<User>, Error> {
        let fetched = self
            .fetch(
                ids.iter()
                    .map(|id| super::profiles::record_key::<User>(project, *id))
                    .collect(),
            )
            .await?;
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(user) = fetched.record::<User>(project, *id)? {
                users.push(user);
            }
        }
        Ok(users)
    }
}

/// Where a whole-project evaluation takes its candidates from.
enum Candidates {
    /// The user index, from a position on.
    AllUsers { after: Option<Uuid>, done: bool },
    /// Ids found through organizations, last first (popped in id order).
    Listed(Vec<Uuid>),
}

impl Candidates {
    async fn next_round(
        &mut self,
        store: &Store,
        project: Uuid,
        round: usize,
    ) -> Result<Vec<User>, Error> {
        if round == 0 {
            return Ok(Vec::new());
        }
        match self {
            Candidates::AllUsers { after, done } => {
                if *done {
                    return Ok(Vec::new());
                }
                let (users, more) = store.users_after(project, *after, round).await?;
                *done = !more;
                if let Some(last) = users.last() {
                    *after = Some(last.id);
                }
                Ok(users)
            }
            Candidates::Listed(ids) => {
                // Until a round finds users that still exist.
                while !ids.is_empty() {
                    let take: Vec<Uuid> = (0..round).map_while(|_| ids.pop()).collect();
                    let users = store.users_by_id(project, &take).await?;
                    if !users.is_empty() {
                        return Ok(users);
                    }
                }
                Ok(Vec::new())
            }
        }
    }

    /// Whether candidates follow `last`.
    async fn more(&self, store: &Store, project: Uuid, last: Option<Uuid>) -> Result<bool, Error> {
        match self {
            Candidates::AllUsers { done: true, .. } => Ok(false),
            Candidates::AllUsers { .. } => {
                Ok(!store.users_after(project, last, 1).await?.0.is_empty())
            }
            Candidates::Listed(ids) => Ok(!ids.is_empty()),
        }
    }
}
