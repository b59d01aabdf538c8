//! The published limits that keep one caller from exhausting what all
//! callers share (README "Limits"): the counts a record or organization may
//! hold, the size of any stored item, and the scheduler's share of a tick.
//! Messages and the README quote these constants; change them here only.

/// Schedules one organization holds at once, its `anniversary` included.
/// A single schedule gives its slot back once it has fired.
pub const MAX_SCHEDULES_PER_ORGANIZATION: u32 = 100;

/// Shortest recurring interval, in seconds: the scheduler ticks once a
/// minute, so a shorter one could not be kept anyway.
pub const MIN_INTERVAL_SECS: i64 = 60;

/// Identifiers one organization or user holds in all (every request's
/// identifiers merged), so its record stays small.
pub const MAX_IDENTIFIERS_PER_RECORD: usize = 50;

/// Domains one organization holds.
pub const MAX_DOMAINS: usize = 50;

/// Settings one organization holds.
pub const MAX_SETTINGS_PER_ORGANIZATION: u32 = 200;

/// Bytes all of one organization's settings hold together (keys and values
/// as JSON text): what one read of the organization with its settings
/// returns stays well inside one Query page.
pub const MAX_SETTINGS_BYTES: u64 = 400_000;

/// Bytes one stored item holds (attribute names and values, counted by
/// DynamoDB's rules): DynamoDB's 400 KB, read as 400,000 bytes so that the
/// estimate keeps a margin. Every write is measured against it before it
/// is sent.
pub const MAX_ITEM_BYTES: usize = 400_000;

/// Bytes (as JSON) the `changes` of one system event hold: far inside a
/// DynamoDB item (400 KB, beside the record its transaction writes) and an
/// EventBridge entry (256 KB). Larger values are truncated, largest first.
pub const MAX_EVENT_CHANGES_BYTES: usize = 65_536;

/// DynamoDB's limit on one transaction's items together.
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

/// Firings one project gets in one scheduler tick: the rest of its due
/// schedules wait for the next ticks, so its backlog delays no other
/// project's firings.
pub const SCHEDULER_PROJECT_SHARE: usize = 100;

/// Firings in one tick, across projects (bounded work per invocation).
pub const SCHEDULER_FIRINGS_PER_TICK: usize = 1_000;

/// Due-index reads in one tick, across projects.
pub const SCHEDULER_QUERIES_PER_TICK: usize = 1_000;

/// Minutes of due index one tick walks at most: after an outage the
/// scheduler catches up this many minutes per tick.
pub const SCHEDULER_MINUTES_PER_TICK: usize = 120;

/// A tick starts no new work after this many seconds (the function's
/// timeout in infra/template.yaml is 50 s).
pub const SCHEDULER_TICK_SECS: u64 = 35;

/// Events of one name one organization contributes to a segment rule that
/// reads the events' data (an `organization_event` rule with `children`):
/// the newest in the rule's window. Past it, a count the events read
/// cannot decide is refused (422), never guessed.
pub const MAX_RULE_EVENTS_PER_ORGANIZATION: usize = 1_000;

/// The most items a page-number list skips (the CRM's `page`): a list's
/// cost is its offset plus its page, so a page beyond this is refused (400)
/// rather than read through; filters narrow a list past it.
pub const MAX_PAGE_OFFSET: usize = 10_000;
