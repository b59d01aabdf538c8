//! Republishing from the timelines (`orgctl events replay`): what
//! subscribers missed — a rule added late, a queue purged, records the
//! failure queue holds — put on the bus again from the table. Each event
//! goes with its own id and number, so a subscriber that drops duplicates
//! by `event_id` sees each change once, and each organization's events go
//! in `sequence` order (the stream's guarantee, kept by the same calls:
//! one entry per organization, a refused entry retried before its
//! organization's later ones).
//!
//! Cost: one Query per organization and page of [`PAGE`] events, up to
//! [`MAX_ENTRIES`] organizations read at once; one `PutEvents` entry per
//! event. Nothing is held beyond a page per organization.

use tokio::task::JoinSet;
use uuid::Uuid;

use shared::store::timeline::{NumberedEvent, NumberedPage};
use shared::Store;

use crate::{Bus, Detail, Entry, Publisher, MAX_ENTRIES};

/// Events read per organization and Query.
pub const PAGE: usize = 100;

/// Organizations listed per page of the project's list.
const ORGANIZATIONS_PAGE: usize = 100;

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Replayed {
    /// Organizations whose timelines were read.
    pub organizations: u64,
    /// Events put on the bus.
    pub published: u64,
    /// Events recorded before events were numbered: not republished, as a
    /// subscriber could not place them.
    pub unnumbered: u64,
    /// Timeline items that are no event (a foreign write; the stream sent
    /// their records to the failure queue).
    pub unreadable: u64,
    /// Events too large for an entry (the stream could not publish them
    /// either; the failure queue holds their records).
    pub too_large: u64,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] shared::Error),
    #[error(
        "the bus refused event {event} {tries} times; every event before it in its \
         organization's timeline was put ({published} events in all): run the replay again \
         with --since at or before that event's time"
    )]
    Refused {
        event: String,
        tries: u32,
        published: u64,
    },
}

/// One organization's place in the replay.
struct Timeline {
    org: Uuid,
    /// The last event read (the next Query starts after it).
    after: Option<Uuid>,
    done: bool,
    /// Events read, not yet put: those a later page could still precede.
    held: Vec<Entry>,
}

impl<B: Bus> Publisher<B> {
    /// Republishes the events recorded at or after `since_millis` (Unix
    /// milliseconds) of one organization (`organization`, whether or not
    /// it still exists) or of every organization of the project.
    pub async fn replay(
        &self,
        store: &Store,
        project: Uuid,
        organization: Option<Uuid>,
        since_millis: u64,
    ) -> Result<Replayed, ReplayError> {
        let mut replayed = Replayed::default();
        if let Some(org) = organization {
            self.replay_organizations(store, project, &[org], since_millis, &mut replayed)
                .await?;
            return Ok(replayed);
        }
        let mut cursor: Option<String> = None;
        loop {
            let page = store
                .list_organizations(project, ORGANIZATIONS_PAGE, cursor.as_deref())
                .await?;
            let orgs: Vec<Uuid> = page.organizations.iter().map(|o| o.id).collect();
            for chunk in orgs.chunks(MAX_ENTRIES) {
                self.replay_organizations(store, project, chunk, since_millis, &mut replayed)
                    .await?;
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(replayed),
            }
        }
    }

    /// Replays up to [`MAX_ENTRIES`] organizations side by side: a page of
    /// each read at once, their events put together (a call takes one of
    /// each), until every timeline is read.
    async fn replay_organizations(
        &self,
        store: &Store,
        project: Uuid,
        orgs: &[Uuid],
        since_millis: u64,
        replayed: &mut Replayed,
    ) -> Result<(), ReplayError> {
        let mut timelines: Vec<Timeline> = orgs
            .iter()
            .map(|&org| Timeline {
                org,
                after: None,
                done: false,
                held: Vec::new(),
            })
            .collect();
        replayed.organizations += orgs.len() as u64;
        while timelines.iter().any(|t| !t.done) {
            let mut reads = JoinSet::new();
            for (at, timeline) in timelines.iter().enumerate().filter(|(_, t)| !t.done) {
                let (store, org, after) = (store.clone(), timeline.org, timeline.after);
                reads.spawn(async move {
                    let page = store
                        .numbered_events(project, org, since_millis, after, PAGE)
                        .await;
                    (at, page)
                });
            }
            let mut pending = Vec::new();
            while let Some(read) = reads.join_next().await {
                let (at, page) = read.map_err(|e| shared::Error::Internal(e.to_string()))?;
                let timeline = &mut timelines[at];
                pending.extend(timeline.take(project, page?, replayed));
            }
            let count = pending.len() as u64;
            if let Some(event) = self.publish(pending).await {
                return Err(ReplayError::Refused {
                    event,
                    tries: crate::MAX_TRIES,
                    published: replayed.published,
                });
            }
            replayed.published += count;
        }
        Ok(())
    }
}

impl Timeline {
    /// Takes in a page and gives back what may go now, in sequence order:
    /// the held events numbered below every event of the page (the
    /// timeline is in id order, which racing writers may commit a little
    /// out of order), or all of them once the timeline is read.
    fn take(&mut self, project: Uuid, page: NumberedPage, replayed: &mut Replayed) -> Vec<Entry> {
        self.after = page.last;
        self.done = page.last.is_none();
        replayed.unreadable += page.unreadable;
        let mut lowest = u64::MAX;
        for event in page.events {
            let Some(entry) = entry(project, self.org, event, replayed) else {
                continue;
            };
            lowest = lowest.min(entry.detail.sequence);
            self.held.push(entry);
        }
        self.held.sort_by_key(|e| e.detail.sequence);
        let ready = if self.done {
            self.held.len()
        } else {
            self.held.partition_point(|e| e.detail.sequence < lowest)
        };
        self.held.drain(..ready).collect()
    }
}

/// The entry of a numbered event (its id stands for the stream record).
fn entry(project: Uuid, org: Uuid, event: NumberedEvent, replayed: &mut Replayed) -> Option<Entry> {
    let Some(sequence) = event.sequence else {
        replayed.unnumbered += 1;
        return None;
    };
    let detail = Detail {
        project_id: project,
        organization_id: org,
        event_id: event.id,
        sequence,
        name: event.name,
        data: serde_json::Value::Object(event.data),
        occurred_at: event.created_at,
    };
    match Entry::new(detail, event.id.to_string()) {
        Ok(entry) => Some(entry),
        Err(why) => {
            tracing::warn!(event_id = %event.id, %why, "not replayed");
            replayed.too_large += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sequence: Option<u64>) -> NumberedEvent {
        NumberedEvent {
            id: Uuid::now_v7(),
            name: "organization.updated".into(),
            data: Default::default(),
            created_at: "2026-12-01T00:00:00Z".into(),
            sequence,
        }
    }

    fn timeline() -> Timeline {
        Timeline {
            org: Uuid::now_v7(),
            after: None,
            done: false,
            held: Vec::new(),
        }
    }

    fn sequences(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.detail.sequence).collect()
    }

    #[test]
    fn events_a_later_page_could_precede_wait_for_it() {
        let (project, mut t, mut r) = (Uuid::now_v7(), timeline(), Replayed::default());
        let first = NumberedPage {
            events: vec![event(Some(1)), event(Some(3)), event(Some(2))],
            unreadable: 0,
            last: Some(Uuid::now_v7()),
        };
        // Nothing is known to precede the first page's events but each other:
        // they wait for the next page's lowest number.
        assert!(t.take(project, first, &mut r).is_empty());
        let second = NumberedPage {
            events: vec![event(Some(4)), event(Some(6))],
            unreadable: 0,
            last: Some(Uuid::now_v7()),
        };
        assert_eq!(sequences(&t.take(project, second, &mut r)), [1, 2, 3]);
        let last = NumberedPage {
            events: vec![event(Some(5)), event(None)],
            unreadable: 1,
            last: None,
        };
        assert_eq!(sequences(&t.take(project, last, &mut r)), [4, 5, 6]);
        assert!(t.done && t.held.is_empty());
        assert_eq!((r.unnumbered, r.unreadable), (1, 1));
    }
}
