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
//! A whole project ([`Store::evaluate_segment`]): candidates from the user
//! index in user id order, from the cursor on, at most [`MAX_EXAMINED`] per
//! request, then the same facts per candidate, with organizations and
//! their activity read once per request however many candidates share
//! them. The organizations are never read as a whole, nor walked: a walk
//! of the organization index, even in bounded steps, would find users in
//! organization order, not the user id order the pages promise.

use std::collections::HashMap;
use std::sync::Arc;

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{bounded, from_item, s, Store};
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
/// Most users one request examines (one round of the user index): a page
/// may end short of `limit`, even empty, with a cursor to go on from, so a
/// sparse segment costs the same per page at any project size.
pub const MAX_EXAMINED: usize = ROUND;

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
        for (org, piece) in bounded(tasks, CONCURRENCY).await? {
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
    /// at most `limit`, examining at most [`MAX_EXAMINED`] users of the
    /// user index from `after` on — one Query of the index (or a few, for
    /// rules that read memberships: rounds from near the page size up), and
    /// for rules that read organizations each candidate's memberships (one
    /// Query each, 16 at a time), the organizations not read yet (one
    /// BatchGetItem per 100) and their activity when the rule reads events.
    /// Nothing here reads the project's organizations as a whole: a page's
    /// reads follow the users it examines, whatever the project's size.
    /// The page may hold fewer than `limit` users (even none) with
    /// `next_after` set: the walk goes on from there.
    pub async fn evaluate_segment(
        &self,
        project: Uuid,
        segment: &Segment,
        after: Option<Uuid>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<SegmentPage, Error> {
        // Only members of organizations that pass one of its gates can
        // match; without a gate, no one.
        if matches!(segment.narrowing(), Narrowing::MembersOf(gates) if gates.is_empty()) {
            return Ok(SegmentPage {
                users: Vec::new(),
                next_after: None,
            });
        }
        let mut gathered = Gathered::new(project, segment, now);
        let reads_organizations = segment.reads_organizations();
        let mut selected = Vec::new();
        let mut examined = 0;
        let mut position = after;
        // Rounds that read each candidate's memberships start near the page
        // size and double: a dense segment reads little past its page. A
        // tree of user conditions alone takes one whole round.
        let mut size = if reads_organizations {
            limit.clamp(8, ROUND)
        } else {
            ROUND
        };
        loop {
            let round = size.min(MAX_EXAMINED - examined);
            size = (size * 2).min(ROUND);
            let (users, more) = self.users_after(project, position, round).await?;
            let memberships = if reads_organizations {
                bounded(
                    users
                        .iter()
                        .map(|u| {
                            let (store, user) = (self.clone(), u.id);
                            async move { store.user_memberships(project, user).await }
                        })
                        .collect(),
                    CONCURRENCY,
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
                position = Some(user.id);
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
            // `more` is the index's word that it may hold more (a Query
            // that stops at its limit says so even when nothing follows):
            // then the page ends with a cursor, and the next may be empty.
            let more = seen < count || more;
            if !more || selected.len() == limit || examined >= MAX_EXAMINED {
                return Ok(SegmentPage {
                    users: selected,
                    next_after: if more { position } else { None },
                });
            }
        }
    }

    /// The events of one name in one organization's timeline created at
    /// or after `from`, newest first, at most
    /// [`MAX_RULE_EVENTS_PER_ORGANIZATION`] (`capped` when more were
    /// there). One Query of the event-name index (its partition holds only
    /// this organization's events of this name, so what is read is what
    /// counts, not every event in the window) over the timeline's keys from
    /// the window's start: event ids are UUIDv7, made when the event was
    /// taken in, so the keys sort by time. A schedule's firing takes its id from its due time,
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
                .index_name(keys::EVENT_NAME_INDEX)
                .key_condition_expression("#pk = :pk AND SK BETWEEN :from AND :to")
                .filter_expression("#created_at >= :since")
                .expression_attribute_names("#pk", keys::EVENT_NAME_PK)
                .expression_attribute_names("#created_at", "created_at")
                .expression_attribute_values(":pk", s(keys::event_name_pk(project, org, name)))
                .expression_attribute_values(":from", s(keys::event_sk_from(millis)))
                .expression_attribute_values(":to", s(keys::EVENT_SK_END))
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
}
