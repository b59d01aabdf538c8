//! The scheduler: once a minute, fire the due organization schedules —
//! each firing exactly once, even when two runs overlap (the store's firing
//! transaction is conditioned on the firing time it found) — fairly and in
//! bounded work. Each project gets at most [`SCHEDULER_PROJECT_SHARE`]
//! firings per tick; what it has beyond waits, recorded as the project's
//! backlog, for the next ticks, so one project's backlog delays no other
//! project's firings. A tick reads a bounded number of due partitions and
//! fires a bounded number of schedules, and stops starting work before the
//! function's timeout; what it leaves, the next tick continues.
//!
//! The due index has a partition per minute and shard (see
//! `shared::keys::due_pk`). The scheduler's cursor is the first minute it
//! has not read through; each tick reads from the cursor to the present,
//! after first draining the recorded backlogs (minutes behind the cursor).
//! The shards of a minute are read at once (their first pages
//! concurrently), and the schedules a page makes due fire concurrently, at
//! most [`FIRING_CONCURRENCY`] organizations at a time; which fire, and each
//! project's share, are decided in the index's order before any fires.

use std::collections::{HashMap, HashSet};
use std::time::{Duration as Elapsed, Instant};

use serde_json::{json, Value};
use shared::domain::schedule::Schedule;
use shared::limits::{
    SCHEDULER_FIRINGS_PER_TICK, SCHEDULER_MINUTES_PER_TICK, SCHEDULER_PROJECT_SHARE,
    SCHEDULER_QUERIES_PER_TICK, SCHEDULER_TICK_SECS,
};
use shared::store::{minute_of, next_minute, Backlog, DuePage, DueRead};
use shared::{AppState, Error, Store};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How far behind the present the cursor stays: a schedule is written into
/// its write minute or later, and by two minutes on the index (eventually
/// consistent) holds it, so no entry lands behind the cursor.
const CURSOR_LAG: Duration = Duration::minutes(2);

/// Where a scheduler that never ran starts reading.
const FIRST_LOOKBACK: Duration = Duration::minutes(10);

/// Entries one read of a due partition returns at most.
const PAGE: usize = 100;

/// The backlog pass may use at most this fraction (1/n) of a tick's
/// firings and reads, so the present always gets the rest.
const BACKLOG_PART: usize = 2;

/// Backlogs one tick looks at.
const MAX_BACKLOGS: usize = 200;

/// Organizations firing at once (an organization's own schedules fire one
/// after the other: their transactions share its items): a tick's 1,000
/// firings over many organizations take about 1,000 / 16 transaction
/// round trips instead of 1,000.
pub const FIRING_CONCURRENCY: usize = 16;

/// Minutes of one project's backlog one tick walks at most, so that one
/// long, sparse backlog cannot take the reads the other backlogs need (its
/// start moves on by as much each tick).
const BACKLOG_MINUTES: usize = 30;

/// What one tick may do.
#[derive(Clone, Debug)]
pub struct Budget {
    pub firings: usize,
    /// Due-index Queries; a minute's shards are read together, so a tick
    /// with fewer than `DUE_SHARDS` left reads no further minute.
    pub queries: usize,
    pub project_share: usize,
    pub minutes: usize,
    /// No new work starts after this.
    pub deadline: Instant,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            firings: SCHEDULER_FIRINGS_PER_TICK,
            queries: SCHEDULER_QUERIES_PER_TICK,
            project_share: SCHEDULER_PROJECT_SHARE,
            minutes: SCHEDULER_MINUTES_PER_TICK,
            deadline: Instant::now() + Elapsed::from_secs(SCHEDULER_TICK_SECS),
        }
    }
}

/// One tick. Returns what it did: due entries found, fired, failed (left
/// due for a later tick), projects deferred past their share, and the
/// backlogs it found.
pub async fn tick(state: &AppState) -> Result<Value, Error> {
    tick_at(state, OffsetDateTime::now_utc()).await
}

/// A tick as if the present were `now`.
pub async fn tick_at(state: &AppState, now: OffsetDateTime) -> Result<Value, Error> {
    tick_with(state, now, Budget::default()).await
}

/// A tick as if it were `now`, within `budget`.
pub async fn tick_with(
    state: &AppState,
    now: OffsetDateTime,
    budget: Budget,
) -> Result<Value, Error> {
    let state = state.serving_ref("scheduler");
    let state: &AppState = &state;
    let store = &state.store;
    let scheduler = store.scheduler_state(MAX_BACKLOGS).await?;
    let mut tick = Tick {
        store,
        now,
        stamp: shared::ids::timestamp(now),
        budget,
        firings: 0,
        queries: 1,
        used: HashMap::new(),
        noted: HashSet::new(),
        due: 0,
        fired: 0,
        failed: 0,
    };
    let start = scheduler
        .cursor
        .unwrap_or_else(|| minute_of(now) - FIRST_LOOKBACK);
    for backlog in &scheduler.backlogs {
        if tick.backlog_budget_spent() {
            break;
        }
        tick.drain_backlog(backlog, start).await;
    }
    let reached = tick.read_present(start).await;
    // The present minute is not read through until it is over, and the
    // cursor stays behind the present by the lag.
    let cursor = reached.min(minute_of(now) - CURSOR_LAG);
    if scheduler.cursor.is_none_or(|c| cursor > c) {
        store.advance_due_cursor(cursor).await?;
    }
    Ok(json!({
        "due": tick.due,
        "fired": tick.fired,
        "failed": tick.failed,
        "deferred": tick.noted.len(),
        "backlogs": scheduler.backlogs.len(),
    }))
}

struct Tick<'a> {
    store: &'a Store,
    now: OffsetDateTime,
    /// `now` as stored timestamps read (they compare as text).
    stamp: String,
    budget: Budget,
    firings: usize,
    queries: usize,
    /// Firings per project in this tick.
    used: HashMap<Uuid, usize>,
    /// Projects whose backlog this tick has recorded.
    noted: HashSet<Uuid>,
    due: usize,
    fired: usize,
    failed: usize,
}

impl Tick<'_> {
    fn spent(&self) -> bool {
        self.firings >= self.budget.firings
            || self.queries >= self.budget.queries
            || Instant::now() >= self.budget.deadline
    }

    fn backlog_budget_spent(&self) -> bool {
        self.spent()
            || self.firings >= self.budget.firings / BACKLOG_PART
            || self.queries >= self.budget.queries / BACKLOG_PART
    }

    fn share_left(&self, project: Uuid) -> usize {
        self.budget
            .project_share
            .saturating_sub(self.used.get(&project).copied().unwrap_or(0))
    }

    fn is_due(&self, schedule: &Schedule) -> bool {
        schedule
            .next_at
            .as_deref()
            .is_some_and(|at| at <= self.stamp.as_str())
    }

    /// Counts a firing against the tick's and its project's budgets; the
    /// firing itself comes later, with the page's others ([`Tick::fire_all`]).
    fn plan(&mut self, schedule: &Schedule, planned: &mut Vec<Schedule>) {
        self.firings += 1;
        *self.used.entry(schedule.project_id).or_default() += 1;
        planned.push(schedule.clone());
    }

    /// Fires the planned schedules, the organizations at most
    /// [`FIRING_CONCURRENCY`] at a time and each organization's one after
    /// the other (their transactions write the same organization's items,
    /// which would cancel each other); for each schedule, in order, `false`
    /// when it failed (it stays due).
    async fn fire_all(&mut self, planned: Vec<Schedule>) -> Vec<bool> {
        let mut results = vec![false; planned.len()];
        let mut by_organization: HashMap<Uuid, Vec<(usize, Schedule)>> = HashMap::new();
        for (slot, schedule) in planned.into_iter().enumerate() {
            by_organization
                .entry(schedule.organization_id)
                .or_default()
                .push((slot, schedule));
        }
        let mut running = tokio::task::JoinSet::new();
        let mut settle = |tick: &mut Self, done: Result<Vec<_>, tokio::task::JoinError>| {
            let outcomes = match done {
                Ok(outcomes) => outcomes,
                Err(err) => {
                    tracing::error!(error = %err, "a firing task failed");
                    return;
                }
            };
            for (slot, schedule_id, outcome) in outcomes {
                match outcome {
                    Ok(fired) => {
                        tick.fired += usize::from(fired);
                        results[slot] = true;
                    }
                    Err(err) => {
                        tick.failed += 1;
                        tracing::error!(schedule = %schedule_id, error = %err, "firing failed");
                    }
                }
            }
        };
        for (_, schedules) in by_organization {
            if running.len() >= FIRING_CONCURRENCY {
                if let Some(done) = running.join_next().await {
                    settle(self, done);
                }
            }
            let (store, now) = (self.store.clone(), self.now);
            running.spawn(async move {
                let mut outcomes = Vec::with_capacity(schedules.len());
                for (slot, schedule) in schedules {
                    let fired = store.fire_schedule(&schedule, now).await;
                    outcomes.push((slot, schedule.id, fired));
                }
                outcomes
            });
        }
        while let Some(done) = running.join_next().await {
            settle(self, done);
        }
        results
    }

    /// The first page of each shard of `minute` (one Query each, all at
    /// once); `None` when the tick's reads would run out.
    async fn first_pages(
        &mut self,
        minute: OffsetDateTime,
        read: &DueRead,
        limit: usize,
    ) -> Option<Vec<Result<DuePage, Error>>> {
        let shards = usize::try_from(shared::keys::DUE_SHARDS).unwrap_or(usize::MAX);
        if self.queries.saturating_add(shards) > self.budget.queries {
            return None;
        }
        self.queries += shards;
        let mut running = tokio::task::JoinSet::new();
        for shard in 0..shared::keys::DUE_SHARDS {
            let (store, read) = (self.store.clone(), read.clone());
            running
                .spawn(async move { (shard, store.due_page(minute, shard, &read, limit).await) });
        }
        // A read that never reports back (its task panicked) stays failed.
        let mut pages: Vec<Result<DuePage, Error>> = (0..shards)
            .map(|_| Err(Error::Internal("a due read did not finish".into())))
            .collect();
        while let Some(done) = running.join_next().await {
            match done {
                Ok((shard, page)) => {
                    if let Some(slot) = usize::try_from(shard).ok().and_then(|i| pages.get_mut(i)) {
                        *slot = page;
                    }
                }
                Err(err) => tracing::error!(error = %err, "a due read failed"),
            }
        }
        Some(pages)
    }

    /// Records that `project` has due entries left at `minute` (once per
    /// tick: the first time is the earliest minute). `false` when that
    /// could not be recorded (then the cursor must not pass `minute`).
    async fn defer(&mut self, project: Uuid, minute: OffsetDateTime) -> bool {
        if self.noted.contains(&project) {
            return true;
        }
        match self.store.note_backlog(project, minute).await {
            Ok(()) => {
                self.noted.insert(project);
                true
            }
            Err(err) => {
                tracing::error!(project = %project, error = %err, "recording a backlog failed");
                false
            }
        }
    }

    /// Fires the project's entries from its backlog's start up to `end`
    /// (the cursor: later minutes are the present's), within its share,
    /// then records how far it got.
    async fn drain_backlog(&mut self, backlog: &Backlog, end: OffsetDateTime) {
        let project = backlog.project_id;
        let mut minute = minute_of(backlog.from);
        let mut walked = 0;
        'minutes: while minute < end && walked < self.budget.minutes.min(BACKLOG_MINUTES) {
            if self.share_left(project) == 0 || self.backlog_budget_spent() {
                break;
            }
            let first = DueRead::Project {
                project,
                after: None,
            };
            let share = self.share_left(project);
            let Some(pages) = self.first_pages(minute, &first, share).await else {
                break;
            };
            for (shard, page) in (0..shared::keys::DUE_SHARDS).zip(pages) {
                let mut page = page;
                loop {
                    let read = match page {
                        Ok(read) => read,
                        Err(err) => {
                            tracing::error!(error = %err, "reading a backlog failed");
                            break 'minutes;
                        }
                    };
                    let mut planned = Vec::new();
                    // Past its share, or at entries not due yet: the
                    // backlog stays at this minute.
                    let mut stays = false;
                    for schedule in &read.schedules {
                        if self.share_left(project) == 0 || !self.is_due(schedule) {
                            stays = true;
                            break;
                        }
                        self.due += 1;
                        self.plan(schedule, &mut planned);
                    }
                    // One that failed is left in this minute: so is the
                    // backlog.
                    if self.fire_all(planned).await.contains(&false) || stays {
                        break 'minutes;
                    }
                    let Some(last) = read.more_after else {
                        break;
                    };
                    if self.share_left(project) == 0 || self.backlog_budget_spent() {
                        break 'minutes;
                    }
                    self.queries += 1;
                    let next = DueRead::Project {
                        project,
                        after: Some(last),
                    };
                    let share = self.share_left(project);
                    page = self.store.due_page(minute, shard, &next, share).await;
                }
            }
            minute = next_minute(minute);
            walked += 1;
        }
        let settled = if minute >= end {
            self.store.settle_backlog(backlog, None).await
        } else if minute > minute_of(backlog.from) {
            self.store.settle_backlog(backlog, Some(minute)).await
        } else {
            Ok(())
        };
        if let Err(err) = settled {
            tracing::error!(project = %project, error = %err, "settling a backlog failed");
        }
    }

    /// Reads the due index from `start` to the present; returns the first
    /// minute it did not read through.
    async fn read_present(&mut self, start: OffsetDateTime) -> OffsetDateTime {
        let last = minute_of(self.now);
        let mut minute = minute_of(start);
        let mut walked = 0;
        while minute <= last && walked < self.budget.minutes {
            if self.spent() {
                return minute;
            }
            let every = DueRead::All { after: None };
            let Some(pages) = self.first_pages(minute, &every, PAGE).await else {
                return minute;
            };
            for (shard, page) in (0..shared::keys::DUE_SHARDS).zip(pages) {
                if !self.read_partition(minute, shard, page).await {
                    return minute;
                }
            }
            minute = next_minute(minute);
            walked += 1;
        }
        minute
    }

    /// Fires what is due in one partition from its first page on, each
    /// project within its share; `false` when the tick's budget ran out
    /// before the partition's end (or a leftover could not be recorded).
    async fn read_partition(
        &mut self,
        minute: OffsetDateTime,
        shard: u128,
        first: Result<DuePage, Error>,
    ) -> bool {
        let mut page = first;
        // The project whose remaining entries here are skipped (not due
        // yet, or past its share).
        let mut skipping: Option<Uuid> = None;
        loop {
            let read = match page {
                Ok(read) => read,
                Err(err) => {
                    tracing::error!(error = %err, "reading the due index failed");
                    return false;
                }
            };
            if self.spent() {
                return false;
            }
            let mut planned = Vec::new();
            // The page's end was not reached: out of firings, or a
            // leftover that could not be recorded.
            let mut stopped = false;
            for schedule in &read.schedules {
                let project = schedule.project_id;
                if skipping == Some(project) {
                    continue;
                }
                if !self.is_due(schedule) {
                    // The project's later entries here are later still.
                    skipping = Some(project);
                    continue;
                }
                self.due += 1;
                if self.share_left(project) == 0 {
                    skipping = Some(project);
                    if !self.defer(project, minute).await {
                        stopped = true;
                        break;
                    }
                    continue;
                }
                if self.firings >= self.budget.firings {
                    stopped = true;
                    break;
                }
                self.plan(schedule, &mut planned);
            }
            let projects: Vec<Uuid> = planned.iter().map(|s| s.project_id).collect();
            for (project, fired) in projects.into_iter().zip(self.fire_all(planned).await) {
                if !fired && !self.defer(project, minute).await {
                    stopped = true;
                }
            }
            if stopped {
                return false;
            }
            let Some(last) = read.more_after else {
                return true;
            };
            if self.spent() {
                return false;
            }
            // Past a skipped project's entries in one jump.
            let after = Some(match skipping {
                Some(project) if last.starts_with(&shared::keys::due_project_prefix(project)) => {
                    shared::keys::due_project_end(project)
                }
                _ => last,
            });
            self.queries += 1;
            page = self
                .store
                .due_page(minute, shard, &DueRead::All { after }, PAGE)
                .await;
        }
    }
}
