//! The single-table key schema: one function per item kind, so each key shape
//! is written once. Every partition key starts with `P#<project id>`, so no
//! key built for one project can address another project's items; the one
//! exception is the issuer lookup, which finds a project ([`issuer_pk`]).
//!
//! | item                 | PK                              | SK                    | GSI1PK / GSI1SK                  |
//! |----------------------|---------------------------------|-----------------------|----------------------------------|
//! | project              | `P#<pid>`                       | `PROJECT`             |                                  |
//! | organization count   | `P#<pid>#ORGCOUNT`              | `SHARD#<nn>`          |                                  |
//! | API key (8 copies)   | `P#<pid>#KEY#<sha256>#<nn>`     | `KEY`                 |                                  |
//! | feature document     | `P#<pid>`                       | `FEATURES`            |                                  |
//! | its revision         | `P#<pid>#FEATURES`              | `VERSION`             |                                  |
//! | trusted issuer       | `P#<pid>`                       | `ISSUER#<iss>[#<aud>]` |                                 |
//! | issuer lookup        | `ISSUER#<iss>` (no project: see [`issuer_pk`]) | `ISSUER` |                            |
//! | organization         | `P#<pid>#ORG#<oid>`             | `ORG`                 | `P#<pid>#ORGS` / `ORG#<oid>`     |
//! | identifier marker    | `P#<pid>#ORGID#<src>#<ext>`     | `ORGID`               |                                  |
//! | domain claim         | `P#<pid>#DOMAIN#<domain>`       | `DOMAIN`              |                                  |
//! | CRM list entry       | `P#<pid>#CRMIX#<kind>[#<value>]` | `<sort key>\x01<oid>` |                              |
//! | archived count       | `P#<pid>#CRMARCHIVED`           | `SHARD#<nn>`          |                                  |
//! | note count           | `P#<pid>#ORG#<oid>`             | `NOTE!COUNT`          |                                  |
//! | note                 | `P#<pid>#ORG#<oid>`             | `NOTE#<note id>`      |                                  |
//! | user                 | `P#<pid>#USER#<uid>`            | `USER`                | `P#<pid>#USERS` / `USER#<uid>`   |
//! | user identifier      | `P#<pid>#USERID#<src>#<ext>`    | `USERID`              |                                  |
//! | membership           | `P#<pid>#ORG#<oid>`             | `MEM#<uid>`           | `P#<pid>#USER#<uid>#ORGS` / `ORG#<oid>` |
//! | schedule             | `P#<pid>#ORG#<oid>`             | `SCHED#<name>`        | GSI2: `DUE#<minute>#<shard>` / `<pid>#<next_at>#<oid>#<name>` |
//! | schedule count       | `P#<pid>#ORG#<oid>`             | `SCHEDCOUNT`          |                                  |
//! | settings count       | `P#<pid>#ORG#<oid>`             | `ORGSETCOUNT`         |                                  |
//! | scheduler cursor     | `SCHEDULER`                     | `CURSOR`              |                                  |
//! | scheduler backlog    | `SCHEDULER`                     | `BACKLOG#<pid>`       |                                  |
//! | timeline event       | `P#<pid>#ORG#<oid>`             | `EVT#<event id>`      | EVENTNAME: `P#<pid>#ORG#<oid>#EVT#<name>` / `SK` |
//! | event sequence       | `P#<pid>#ORG#<oid>`             | `EVTSEQ`              |                                  |
//! | daily event counter  | `P#<pid>#ORG#<oid>`             | `CNT#<name>#<day>`    |                                  |
//! | user's org count     | `P#<pid>#USER#<uid>`            | `ORGCOUNT`            |                                  |
//! | purge job            | `P#<pid>#CLEANUP#<oid>`         | `PURGE`               | GSI2: `PURGES#<shard>` / `<due_at>#<pid>#<oid>` |
//! | fan-out step marker  | `P#<pid>#FANOUT#<event id>`     | `STEP#<after oid>`    |                                  |
//! | owner-name refresh   | `P#<pid>#USER#<uid>`            | `OWNERNAME`           | GSI2: `OWNERNAMES#<shard>` / `<due_at>#<pid>#<uid>` |
//!
//! Within an organization's partition the timeline (`CNT#`, `EVT#`) sorts
//! before its live state (`MEM#`, `ORG`, and later kinds), so one Query from
//! [`ORG_STATE_FROM`] reads the whole live state without the timeline.

use uuid::Uuid;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
pub const TTL: &str = "expires_at";

/// Sort keys at or above this are an organization's live state.
pub const ORG_STATE_FROM: &str = "MEM#";

/// Escapes a free-form key component so that `#` can separate components:
/// (`a#b`, `c`) and (`a`, `b#c`) must not build the same key.
pub fn component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            other => out.push(other),
        }
    }
    out
}

pub fn project_pk(project: Uuid) -> String {
    format!("P#{project}")
}

pub const PROJECT_SK: &str = "PROJECT";

/// The project's organization count is kept in this many items (shards),
/// and a create or delete adds to one of them, picked at random: DynamoDB
/// cancels a transaction (`TransactionConflict`) that meets another one
/// still in flight on one of its items, so one counter in every create
/// would let concurrent creates in a project cancel each other.
pub const ORG_COUNT_SHARDS: u32 = 16;

/// The partition of the project's organization count shards, alone in it:
/// one strongly consistent Query reads them all (a few hundred bytes).
pub fn org_count_pk(project: Uuid) -> String {
    format!("P#{project}#ORGCOUNT")
}

pub fn org_count_sk(shard: u32) -> String {
    format!("SHARD#{shard:02}")
}

/// An API key's record is kept in this many copies (shards), each in a
/// partition of its own, created and revoked together in one transaction;
/// a request reads one copy, picked at random. Every request reads its key
/// strongly consistently (so a revocation holds from the next request on),
/// and DynamoDB serves at most about 3,000 such reads a second from one
/// partition: one item per key would cap every key at that rate.
pub const API_KEY_SHARDS: u32 = 8;

pub fn api_key_pk(project: Uuid, hash_hex: &str, shard: u32) -> String {
    format!("P#{project}#KEY#{hash_hex}#{shard:02}")
}

pub const API_KEY_SK: &str = "KEY";

/// A project's registration of a trusted issuer, for listing the project's
/// issuers; an audience-less registration has no `#<aud>` part.
pub fn trusted_issuer_sk(issuer: &str, audience: Option<&str>) -> String {
    match audience {
        None => format!("{ISSUER_PREFIX}{}", component(issuer)),
        Some(audience) => format!(
            "{ISSUER_PREFIX}{}#{}",
            component(issuer),
            component(audience)
        ),
    }
}

pub const ISSUER_PREFIX: &str = "ISSUER#";

/// The one item that maps a token's `iss` to the project(s) trusting it.
/// The only partition key that does not start with a project id, because
/// the project is what it finds: a session token names its issuer, not
/// its project, before it is verified (API keys avoid this by carrying
/// their project inside the key). Registrations inside it are separate
/// attributes ([`ISSUER_ANY_AUDIENCE`], [`issuer_audience_attribute`]);
/// each names its project, and a token is only ever matched to one.
pub fn issuer_pk(issuer: &str) -> String {
    format!("{ISSUER_PREFIX}{}", component(issuer))
}

pub const ISSUER_SK: &str = "ISSUER";

/// The lookup item's attribute for the registration without an audience
/// (it takes every token of the issuer, so it excludes all others).
pub const ISSUER_ANY_AUDIENCE: &str = "ANY";

/// The lookup item's attribute for the registration of one audience.
pub fn issuer_audience_attribute(audience: &str) -> String {
    format!("AUD#{audience}")
}

pub const ISSUER_AUDIENCE_PREFIX: &str = "AUD#";

pub fn org_pk(project: Uuid, org: Uuid) -> String {
    format!("P#{project}#ORG#{org}")
}

pub const ORG_SK: &str = "ORG";

/// The project's organization index (GSI1), in id = creation order.
pub fn org_list_pk(project: Uuid) -> String {
    format!("P#{project}#ORGS")
}

pub fn org_list_sk(org: Uuid) -> String {
    format!("ORG#{org}")
}

/// What GSI1 holds besides its keys (its `INCLUDE` projection): what its
/// queries read. The accounts list answers from the organizations in it
/// (and their `owners`, for the billing email); the segments read the
/// organizations', users' and memberships' facts from it; the processor's
/// `match` filters on the organizations' `data`; the cleanup list reads the
/// pending cleanups (`org_id`, `deleted_*`). Not the CRM's and the tenant
/// family's fields nor the CRM index's attributes: most of a large record
/// (lists of 100 references, a 10,000-character description, 16 KiB of
/// style). An organization read from GSI1 thus has no `crm` and `tenant`:
/// answer from it, never write it back.
pub const GSI1_ATTRIBUTES: &[&str] = &[
    "id",
    "project_id",
    "name",
    "identifiers",
    "data",
    "version",
    "created_at",
    "updated_at",
    "accounts",
    "owners",
    "organization_id",
    "user_id",
    "role",
    "org_id",
    "deleted_at",
    "deleted_by",
];

/// An organization's settings sort right after its record, so one Query
/// from [`ORG_SK`] to [`SETTINGS_END`] reads the record and every setting.
pub const SETTING_PREFIX: &str = "ORGSET#";
pub const SETTINGS_END: &str = "ORGSET$";

pub fn setting_sk(key: &str) -> String {
    format!("{SETTING_PREFIX}{}", component(key))
}

/// A deleted organization's cleanup record and the services' reports
/// (its own partition: the organization's is purged).
pub fn cleanup_pk(project: Uuid, org: Uuid) -> String {
    format!("P#{project}#CLEANUP#{org}")
}

pub const CLEANUP_SK: &str = "CLEANUP";
pub const REPORT_PREFIX: &str = "REPORT#";

pub fn report_sk(service: &str) -> String {
    format!("{REPORT_PREFIX}{}", component(service))
}

/// The project's pending cleanups (GSI1), oldest deletion first; a record
/// leaves the index when it is complete.
pub fn cleanup_list_pk(project: Uuid) -> String {
    format!("P#{project}#CLEANUPS")
}

pub fn cleanup_list_sk(deleted_at: &str, org: Uuid) -> String {
    format!("{deleted_at}#{org}")
}

/// The project's feature settings document.
pub const FEATURES_SK: &str = "FEATURES";

/// The revision of the project's feature settings document, a tiny item of
/// its own partition, written in the document's transaction: a request
/// reads it (one read unit, strongly consistent) and the document (up to
/// 350 KiB, ~88 read units) only when this Lambda instance has not read
/// that revision yet.
pub fn features_version_pk(project: Uuid) -> String {
    format!("P#{project}#FEATURES")
}

pub const FEATURES_VERSION_SK: &str = "VERSION";

pub const NOTE_PREFIX: &str = "NOTE#";

/// An organization's note count: just before its notes (`!` sorts before
/// `#`), so one Query from it reads the count and the first notes.
pub const NOTE_COUNT_SK: &str = "NOTE!COUNT";

/// Above every note key.
pub const NOTES_END: &str = "NOTE$";

pub fn note_sk(note: Uuid) -> String {
    format!("{NOTE_PREFIX}{note}")
}

pub fn org_identifier_pk(project: Uuid, source: &str, external_id: &str) -> String {
    format!(
        "P#{project}#ORGID#{}#{}",
        component(source),
        component(external_id)
    )
}

pub const ORG_IDENTIFIER_SK: &str = "ORGID";

/// A domain's claim: at most one organization per project holds it.
pub fn domain_pk(project: Uuid, domain: &str) -> String {
    format!("P#{project}#DOMAIN#{}", component(domain))
}

pub const DOMAIN_SK: &str = "DOMAIN";

pub const MEMBERSHIP_PREFIX: &str = "MEM#";

/// The organization's address (sorts among its live state).
pub const ADDRESS_SK: &str = "PROFILE#ADDRESS";

/// The organization's member and owner counts (sorts among its live
/// state, so it goes with the organization).
pub const MEMBER_COUNT_SK: &str = "MEMCOUNT";

pub fn membership_sk(user: Uuid) -> String {
    format!("{MEMBERSHIP_PREFIX}{user}")
}

pub fn user_pk(project: Uuid, user: Uuid) -> String {
    format!("P#{project}#USER#{user}")
}

pub const USER_SK: &str = "USER";

/// The project's user index (GSI1), in id = creation order.
pub fn user_list_pk(project: Uuid) -> String {
    format!("P#{project}#USERS")
}

pub const USER_LIST_PREFIX: &str = "USER#";

pub fn user_list_sk(user: Uuid) -> String {
    format!("{USER_LIST_PREFIX}{user}")
}

pub fn user_identifier_pk(project: Uuid, source: &str, external_id: &str) -> String {
    format!(
        "P#{project}#USERID#{}#{}",
        component(source),
        component(external_id)
    )
}

pub const USER_IDENTIFIER_SK: &str = "USERID";

/// A user's organizations (GSI1): the inverted index of memberships.
pub fn user_orgs_pk(project: Uuid, user: Uuid) -> String {
    format!("P#{project}#USER#{user}#ORGS")
}

pub const SCHEDULE_PREFIX: &str = "SCHED#";

pub fn schedule_sk(name: &str) -> String {
    format!("{SCHEDULE_PREFIX}{}", component(name))
}

/// An organization's schedule count (sorts among its live state, so it
/// goes with the organization).
pub const SCHEDULE_COUNT_SK: &str = "SCHEDCOUNT";

/// An organization's settings count and bytes (outside the settings range,
/// so a read of the settings does not return it).
pub const SETTING_COUNT_SK: &str = "ORGSETCOUNT";

/// Each minute of the due index (GSI2) is spread over this many partitions,
/// by organization, so that no partition holds a busy minute alone. A
/// minute is busy when many organizations are created in it: each brings an
/// anniversary firing at the same minute every year, so an import of
/// 100,000 organizations in a few minutes puts them all into a handful of
/// minutes. One index partition takes about 1,000 writes and 3,000 reads a
/// second: 16 shards take 16,000 entries a second into one minute (more
/// than one project's creates can reach, each a transaction of several
/// items) and let a tick read a minute of 100,000 entries 16 pages at a
/// time. The scheduler reads a minute's shards concurrently, so an idle
/// minute costs 16 cheap Queries in one round trip; more shards would
/// spend the tick's query budget (1,000) on empty partitions when it
/// catches up after an outage (62 minutes per tick at 16).
pub const DUE_SHARDS: u128 = 16;

/// The due index (GSI2), across projects: a schedule's entry sits in the
/// partition of the minute it fires in (`minute`: `YYYY-MM-DDTHH:MM`, UTC)
/// and its organization's shard, sorted by project and then by time, so the
/// scheduler can take a bounded share of each project and skip the rest.
/// Only the scheduler reads it; request paths never do.
pub fn due_pk(minute: &str, shard: u128) -> String {
    format!("DUE#{minute}#{shard}")
}

pub fn due_shard(org: Uuid) -> u128 {
    org.as_u128() % DUE_SHARDS
}

pub fn due_sk(project: Uuid, next_at: &str, org: Uuid, name: &str) -> String {
    format!(
        "{}{next_at}#{org}#{}",
        due_project_prefix(project),
        component(name)
    )
}

/// Every due entry of the project within one due partition starts with this.
pub fn due_project_prefix(project: Uuid) -> String {
    format!("{project}#")
}

/// Sorts after every due entry of the project (and before the next
/// project's): where a read skips the rest of a project.
pub fn due_project_end(project: Uuid) -> String {
    format!("{project}#~")
}

/// The scheduler's own state, across projects (read and written only by
/// the scheduler): how far it has read the due index, and the projects
/// whose backlog it carries over to later ticks.
/// (Outside any project: no request reads or writes it.)
pub const SCHEDULER_PK: &str = "SCHEDULER";
pub const DUE_CURSOR_SK: &str = "CURSOR";
pub const BACKLOG_PREFIX: &str = "BACKLOG#";

pub fn backlog_sk(project: Uuid) -> String {
    format!("{BACKLOG_PREFIX}{project}")
}

pub const EVENT_PREFIX: &str = "EVT#";

/// The organization's event sequence: the last number given to one of its
/// events (outside the timeline's `EVT#` range).
pub const EVENT_SEQUENCE_SK: &str = "EVTSEQ";

pub fn event_sk(event: Uuid) -> String {
    format!("{EVENT_PREFIX}{event}")
}

/// The lowest event key of events whose id was made at or after `millis`
/// (Unix milliseconds): event ids are UUIDv7, so the timeline sorts by the
/// time each id was made.
pub fn event_sk_from(millis: u64) -> String {
    event_sk(uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid())
}

/// Above every event key (`g` sorts after the hex digits and `-`).
pub const EVENT_SK_END: &str = "EVT#g";

/// The timeline by event name (`?name=`): a sparse index of the event items
/// only, one partition per organization and name, sorted by the table's own
/// `SK` (the event's time-ordered id), so a page of one name reads that
/// page and not the other names' events in between. Its partition is a
/// share of the organization's own partition's writes (no new hot key); an
/// event item is at most about 100 KB, so its copy is too. An index rather
/// than a second item per event in the table: the index write is not a
/// transaction item, so a batch of events still fits 98 per transaction.
pub const EVENT_NAME_INDEX: &str = "EVENTNAME";
pub const EVENT_NAME_PK: &str = "EVENTNAMEPK";

pub fn event_name_pk(project: Uuid, org: Uuid, name: &str) -> String {
    format!("{}#{EVENT_PREFIX}{}", org_pk(project, org), component(name))
}

/// Per-organization, per-event-name, per-UTC-day counter: what segmentation's
/// frequency rules read instead of counting the timeline.
pub fn counter_sk(event_name: &str, day: &str) -> String {
    format!("CNT#{}#{day}", component(event_name))
}

/// A claimed `Idempotency-Key`, scoped by the project and by `scope` (a
/// hash of the credential), so keys never cross callers.
pub fn idempotency_pk(project: Uuid, scope: &str, key: &str) -> String {
    format!("{}#IDEM#{scope}#{}", project_pk(project), component(key))
}

pub const IDEMPOTENCY_SK: &str = "IDEM";

/// How many organizations a user belongs to (beside the user's record, so
/// the membership transactions that add and remove memberships keep it
/// and a session's list reads it in one GetItem).
pub const USER_ORG_COUNT_SK: &str = "ORGCOUNT";

/// A deleted organization's purge: what it still has to release and how
/// far it got (in the cleanup partition, which outlives the purge).
pub const PURGE_SK: &str = "PURGE";

/// The pending purges (GSI2, across projects) are spread over this many
/// partitions, by organization.
pub const PURGE_SHARDS: u128 = 4;

/// The pending purges, in the order they are due: a purge whose step has
/// not moved it on by its `due_at` lost its message (a timed-out delete,
/// a failed send) and the cleanup function's sweep announces it again.
/// Only the sweep reads it.
pub fn purge_due_pk(shard: u128) -> String {
    format!("PURGES#{shard}")
}

pub fn purge_shard(org: Uuid) -> u128 {
    org.as_u128() % PURGE_SHARDS
}

pub fn purge_due_sk(due_at: &str, project: Uuid, org: Uuid) -> String {
    format!("{due_at}#{project}#{org}")
}

/// Checks that a key taken from outside (a cursor) belongs to the project.
/// The markers of a `match` event's fan-out steps (one per step after
/// the first: queued once).
pub fn fan_out_pk(project: Uuid, event: Uuid) -> String {
    format!("P#{project}#FANOUT#{event}")
}

pub fn fan_out_step_sk(after: Uuid) -> String {
    format!("STEP#{after}")
}

/// A renamed user's refresh of the last name kept on the organizations
/// the user owns (beside the user's record).
pub const OWNER_NAME_SK: &str = "OWNERNAME";

/// The pending owner-name refreshes (GSI2, across projects) are spread
/// over this many partitions, by user.
pub const OWNER_NAME_SHARDS: u128 = 4;

/// The pending owner-name refreshes, in the order they are due. Only the
/// cleanup function's sweep reads it.
pub fn owner_name_due_pk(shard: u128) -> String {
    format!("OWNERNAMES#{shard}")
}

pub fn owner_name_shard(user: Uuid) -> u128 {
    user.as_u128() % OWNER_NAME_SHARDS
}

pub fn owner_name_due_sk(due_at: &str, project: Uuid, user: Uuid) -> String {
    format!("{due_at}#{project}#{user}")
}

pub fn belongs_to(project: Uuid, key: &str) -> bool {
    let prefix = project_pk(project);
    key == prefix || key.starts_with(&format!("{prefix}#"))
}

/// Where a walk of the project's organization index (GSI1) goes on from:
/// after organization `after`, or from its start.
pub fn org_list_from(after: Option<Uuid>) -> String {
    after.map_or_else(|| "ORG#".to_owned(), org_list_sk)
}

/// The organization an organization index key ([`org_list_sk`]) names.
pub fn org_of_list_sk(sk: &str) -> Option<Uuid> {
    sk.strip_prefix("ORG#")?.parse().ok()
}

/// The CRM list's index entries (items of their own, written in the same
/// transaction as the organization, see `store/org_index.rs`): one
/// partition per project and index kind (`C` creation, `T` title, `OA` /
/// `OD` owner's last name ascending / descending, `Q` search tokens), or
/// per project, filter field and value (`F#<field>#<value>`).
pub fn crm_index_pk(project: Uuid, kind: &str) -> String {
    format!("P#{project}#CRMIX#{kind}")
}

/// The partition of one filter value's entries; a value longer than fits
/// a key well is named by its SHA-256 (`%H…`, which no escaped value can
/// spell, since [`component`] escapes every `%`).
pub fn crm_value_pk(project: Uuid, field: &str, value: &str) -> String {
    use sha2::Digest;
    let value = if value.len() > 200 {
        format!("%H{}", hex::encode(sha2::Sha256::digest(value.as_bytes())))
    } else {
        component(value)
    };
    format!("P#{project}#CRMIX#F#{field}#{value}")
}

/// The project's count of archived organizations (what `exists[archivedAt]`
/// answers as `totalItems`), sharded as [`org_count_pk`] is.
pub fn archived_count_pk(project: Uuid) -> String {
    format!("P#{project}#CRMARCHIVED")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_cannot_collide() {
        let p = Uuid::nil();
        assert_ne!(
            org_identifier_pk(p, "a#b", "c"),
            org_identifier_pk(p, "a", "b#c")
        );
        assert_ne!(
            org_identifier_pk(p, "a%23", "c"),
            org_identifier_pk(p, "a#", "c")
        );
    }

    #[test]
    fn timeline_sorts_before_live_state() {
        let id = Uuid::now_v7();
        assert!(event_sk(id).as_str() < ORG_STATE_FROM);
        assert!(counter_sk("x", "2026-01-01").as_str() < ORG_STATE_FROM);
        assert!(EVENT_SEQUENCE_SK < ORG_STATE_FROM && EVENT_SEQUENCE_SK > EVENT_SK_END);
        let early = event_sk_from(1_700_000_000_000);
        assert!(early.as_str() < event_sk(id).as_str() && event_sk(id).as_str() < EVENT_SK_END);
        assert!(event_sk_from(0).as_str() < early.as_str());
        assert!(membership_sk(id).as_str() >= ORG_STATE_FROM);
        assert!(schedule_sk("anniversary").as_str() >= ORG_STATE_FROM);
        assert!(MEMBER_COUNT_SK >= ORG_STATE_FROM);
        assert!(SCHEDULE_COUNT_SK >= ORG_STATE_FROM);
        assert!(SETTING_COUNT_SK >= ORG_STATE_FROM && SETTING_COUNT_SK > SETTINGS_END);
        assert!(ADDRESS_SK >= ORG_STATE_FROM);
        assert!(note_sk(id).as_str() >= ORG_STATE_FROM);
        assert!(setting_sk("a").as_str() > ORG_SK && setting_sk("zz").as_str() < SETTINGS_END);
        assert!(ORG_SK >= ORG_STATE_FROM);
    }

    #[test]
    fn a_projects_due_entries_sort_together_and_in_time_order() {
        let (a, b, org) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let early = due_sk(a, "2026-01-01T00:00:00.000Z", org, "x");
        let late = due_sk(a, "2026-01-01T00:00:59.999Z", org, "a");
        assert!(early < late);
        assert!(early.starts_with(&due_project_prefix(a)));
        assert!(late < due_project_end(a));
        let other = due_sk(b, "2026-01-01T00:00:00.000Z", org, "x");
        assert!((other < due_project_prefix(a)) || (other > due_project_end(a)));
    }

    #[test]
    fn keys_are_bound_to_their_project() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert!(belongs_to(a, &org_pk(a, b)));
        assert!(!belongs_to(b, &org_pk(a, b)));
        assert!(!belongs_to(a, &format!("P#{a}x")));
    }
}
