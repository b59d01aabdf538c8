//! Organizations: upsert by identifiers, read, delete.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem};
use uuid::Uuid;

use super::profiles::{
    marker_key, not_found, record_key, to_value, Applied, Profile, MAX_ATTEMPTS,
};
use super::timeline::{record_event, single_event_writes, Sequence, TimelineEvent};
use super::{backoff, build, from_item, key, n, s, Item, Store, TxOutcome};
use crate::domain::event::{self, Actor};
use crate::domain::{
    Identifier, IdentifierKey, Organization, ProfileUpsert, Scope, SystemEvent, User,
};
use crate::error::Error;
use crate::keys;

/// A publishable key deletes organizations of at most this many members:
/// each is checked in the deleting transaction (which stays small).
const MAX_PUBLISHABLE_DELETE_MEMBERS: usize = 25;

/// One page of a project's organizations.
#[derive(Clone, Debug, PartialEq)]
pub struct OrganizationPage {
    pub organizations: Vec<Organization>,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
    pub total_count: u64,
}

/// The result of an upsert.
#[derive(Clone, Debug, PartialEq)]
pub struct Upserted<T> {
    pub record: T,
    pub created: bool,
}

impl Profile for Organization {
    const NOUN: &'static str = "organization";
    const HAS_TIMELINE: bool = true;
    const RECORD_SK: &'static str = keys::ORG_SK;
    const MARKER_SK: &'static str = keys::ORG_IDENTIFIER_SK;

    fn marker_pk(project: Uuid, key: &IdentifierKey) -> String {
        keys::org_identifier_pk(project, &key.source, &key.external_id)
    }

    fn record_pk(project: Uuid, id: Uuid) -> String {
        keys::org_pk(project, id)
    }

    fn index_attributes(&self) -> Result<Vec<(&'static str, AttributeValue)>, Error> {
        Ok(vec![
            (keys::GSI1PK, s(keys::org_list_pk(self.project_id))),
            (keys::GSI1SK, s(keys::org_list_sk(self.id))),
        ])
    }

    fn index_change(before: Option<&Self>, after: Option<&Self>) -> super::org_index::IndexChange {
        super::org_index::change(before, after)
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
        if let Some(accounts) = &self.accounts {
            attributes.push(("accounts", to_value(accounts)?));
        }
        if let Some(crm) = &self.crm {
            attributes.push(("crm", to_value(crm)?));
        }
        if let Some(tenant) = &self.tenant {
            attributes.push(("tenant", to_value(tenant)?));
        }
        attributes.extend(
            self.index_attributes()?
                .into_iter()
                .filter(|(name, _)| !name.starts_with("GSI1")),
        );
        Ok(attributes)
    }

    fn check_scope(&self, scope: Scope) -> Result<(), Error> {
        scope.check_organization(self)
    }

    fn creation_writes(&self, table: &str, now: &str) -> Result<Vec<TransactWriteItem>, Error> {
        let mut writes = super::schedules::anniversary_writes(table, self, now)?;
        writes.push(count_organizations(table, self.project_id, 1)?);
        Ok(writes)
    }
}

/// Keeps the project's organization count (what lists answer as
/// `total_count` without counting): adds `delta` to one of its
/// [`keys::ORG_COUNT_SHARDS`] shards, picked at random, so concurrent
/// creates and deletes in a project seldom meet on one item.
pub(crate) fn count_organizations(
    table: &str,
    project: Uuid,
    delta: i64,
) -> Result<TransactWriteItem, Error> {
    count_in(table, keys::org_count_pk(project), delta)
}

/// Adds `delta` to one of the [`keys::ORG_COUNT_SHARDS`] shards of the
/// count kept in partition `pk`, picked at random.
pub(crate) fn count_in(table: &str, pk: String, delta: i64) -> Result<TransactWriteItem, Error> {
    let mut bytes = [0u8; 4];
    // Without randomness every write takes shard 0: slower, still exact.
    let _ = getrandom::fill(&mut bytes);
    let shard = u32::from_le_bytes(bytes) % keys::ORG_COUNT_SHARDS;
    let update = build(
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(keys::org_count_sk(shard)))
            .update_expression("ADD #count :delta")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":delta", n(delta))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().update(update).build())
}

impl Store {
    /// Creates the organization the identifiers name, or updates it
    /// (shallow merge of `data`, `name` kept when omitted).
    pub async fn upsert_organization(
        &self,
        project: Uuid,
        upsert: &ProfileUpsert,
        scope: Scope,
    ) -> Result<Upserted<Organization>, Error> {
        let (record, created) = self
            .upsert_record::<Organization>(project, upsert, scope)
            .await?;
        Ok(Upserted { record, created })
    }

    pub async fn get_organization(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> Result<Option<Organization>, Error> {
        self.get_record::<Organization>(project, id).await
    }

    /// The organization's record and its event sequence, in one read.
    async fn organization_and_sequence(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> Result<(Option<Organization>, Sequence), Error> {
        let record = record_key::<Organization>(project, id);
        let (fetched, sequence) = self
            .fetch_with_sequence(project, id, vec![record.clone()])
            .await?;
        let org = fetched.item(&record).map(from_item).transpose()?;
        Ok((org, sequence))
    }

    /// Finds the organization the identifiers name (404 when none does).
    pub async fn find_organization(
        &self,
        project: Uuid,
        ids: &[IdentifierKey],
    ) -> Result<Organization, Error> {
        self.find_record::<Organization>(project, ids).await
    }

    /// The id of the organization the identifiers name (404 when none does).
    pub(crate) async fn resolve_organization_id(
        &self,
        project: Uuid,
        org_ids: &[IdentifierKey],
    ) -> Result<Uuid, Error> {
        let refs: Vec<&IdentifierKey> = org_ids.iter().collect();
        let (keys, _) = self.resolution_keys::<Organization>(project, &refs);
        let fetched = self.fetch(keys).await?;
        let (org, _) = self
            .resolve_live::<Organization>(&fetched, project, &refs)
            .await?;
        self.learn::<Organization>(project, &refs, org);
        org.ok_or_else(|| not_found::<Organization>(org_ids))
    }

    /// Deletes the organization the identifiers name (see
    /// [`Store::delete_organization_id`]).
    pub async fn delete_organization(
        &self,
        project: Uuid,
        ids: &[IdentifierKey],
        deleted_by: &Actor,
        scope: Scope,
    ) -> Result<crate::domain::cleanup::Deletion, Error> {
        scope.check_identifiers(ids)?;
        let id = self.resolve_organization_id(project, ids).await?;
        self.delete_organization_in(project, id, deleted_by, scope)
            .await
    }

    /// Deletes an organization: one transaction of a fixed size removes its
    /// record, records `organization.deleted`, and leaves its cleanup
    /// record (`OrganizationToCleanup`, `deleted_by` saying who asked) and
    /// its purge job. From then on it is gone for every family: every read
    /// starts from the record (or drops what names a missing one), its
    /// identifiers and domains are free to take over at once
    /// ([`Store::upsert_organization`], [`Store::add_domain`]), and every
    /// write into its partition is conditioned on the record. What it
    /// leaves — markers, claims, memberships, timeline, live items — the
    /// purge removes in bounded steps.
    pub async fn delete_organization_id(
        &self,
        project: Uuid,
        id: Uuid,
        deleted_by: &Actor,
    ) -> Result<crate::domain::cleanup::Deletion, Error> {
        self.delete_organization_in(project, id, deleted_by, Scope::Project)
            .await
    }

    async fn delete_organization_in(
        &self,
        project: Uuid,
        id: Uuid,
        deleted_by: &Actor,
        scope: Scope,
    ) -> Result<crate::domain::cleanup::Deletion, Error> {
        let label = deleted_by.label();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let (org, mut sequence) = self.organization_and_sequence(project, id).await?;
            let Some(org) = org else {
                return Err(Error::not_found(format!("no organization has the id {id}")));
            };
            scope.check_organization(&org)?;
            let fence = if scope.is_unclaimed() {
                let members = self.members_for_publishable_delete(project, id).await?;
                self.check_no_session_members(project, &members).await?;
                self.session_member_fence(project, id, &members)?
            } else {
                Vec::new()
            };
            let now = crate::ids::now();
            let mut items = Vec::with_capacity(fence.len() + 6);
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
            items.push(count_organizations(&self.table, project, -1)?);
            let (counts, entries) = self.org_index_deletion_writes(&org)?;
            items.extend(counts);
            items.push(super::cleanup::record_cleanup(
                &self.table,
                project,
                id,
                &crate::domain::cleanup::OrganizationToCleanup {
                    org_id: id.to_string(),
                    deleted_at: now.clone(),
                    deleted_by: label.clone(),
                },
            )?);
            let event = event::organization_deleted(&org, deleted_by);
            let mut recorded = record_event(
                &self.table,
                project,
                id,
                &TimelineEvent::system(event, &now),
                &mut sequence,
            )?
            .to_vec();
            recorded.extend(sequence.write(&self.table, project, id)?);
            // The list's entries go in this transaction when they fit; else
            // right after it (lists skip entries of a deleted organization
            // meanwhile), and the purge job keeps them, so a request that
            // dies in between leaves none behind for good.
            let entries_after = items.len() + 1 + recorded.len() + fence.len() + entries.len()
                > super::MAX_TRANSACTION_ITEMS;
            items.push(super::cleanup::record_purge(
                &self.table,
                project,
                id,
                claims_of(&org),
                if entries_after {
                    super::org_index::entry_keys(&org)
                } else {
                    Vec::new()
                },
            )?);
            items.extend(recorded);
            items.extend(fence);
            if !entries_after {
                items.extend(entries);
            }
            match self.transact(items).await? {
                TxOutcome::Committed => {
                    // The organization is gone: lists skip entries left by
                    // a failure here.
                    if entries_after {
                        if let Err(error) = self.remove_org_index_entries(&org).await {
                            tracing::warn!(%error, "removing a deleted organization's list entries failed");
                        }
                    }
                    let all: Vec<IdentifierKey> = org.identifiers.iter().map(|i| i.key()).collect();
                    self.learn::<Organization>(project, &all.iter().collect::<Vec<_>>(), None);
                    return Ok(crate::domain::cleanup::Deletion {
                        name: event::ORGANIZATION_DELETED.into(),
                        project_id: project,
                        org_id: id,
                        deleted_at: now,
                        deleted_by: label,
                    });
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "delete lost a race; retrying");
                }
            }
        }
        Err(Error::busy(
            "the organization is being changed concurrently; retry the request",
        ))
    }

    /// Creates an organization named by id only (no external identifiers),
    /// in one transaction with its event, anniversary, the project count and
    /// (`owner`: a session's user) its owner's membership.
    pub async fn create_organization(
        &self,
        project: Uuid,
        name: &str,
        accounts: crate::domain::organization::AccountsProfile,
        owner: Option<Uuid>,
    ) -> Result<Organization, Error> {
        self.create_organization_with(project, name, accounts, owner, |_| {})
            .await
    }

    /// [`Store::create_organization`], with `customize` filling in a
    /// dialect's fields before it is written.
    pub(crate) async fn create_organization_with(
        &self,
        project: Uuid,
        name: &str,
        accounts: crate::domain::organization::AccountsProfile,
        owner: Option<Uuid>,
        customize: impl FnOnce(&mut Organization),
    ) -> Result<Organization, Error> {
        let now = crate::ids::now();
        let (mut org, _) = Organization::create_named(project, name, accounts, &now)?;
        customize(&mut org);
        // After `customize`: the event shows every field it was created with.
        let event = event::organization_created(&org);
        if let Some(user) = owner {
            org.owners.insert(user, now.clone());
        }
        let mut items = vec![super::profiles::put_new(
            &self.table,
            super::profiles::record_item(&org)?,
        )?];
        items.extend(org.creation_writes(&self.table, &now)?);
        let mut sequence = Sequence::new_organization();
        items.extend(record_event(
            &self.table,
            project,
            org.id,
            &TimelineEvent::system(event, &now),
            &mut sequence,
        )?);
        if let Some(user) = owner {
            items.extend(super::memberships::owner_writes(
                &self.table,
                project,
                org.id,
                user,
                &now,
                &mut sequence,
            )?);
        }
        items.extend(sequence.write(&self.table, project, org.id)?);
        let index = super::org_index::change(None, Some(&org));
        match self.transact_indexed(items, index).await? {
            TxOutcome::Committed => Ok(org),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "creating an organization was cancelled: {reasons:?}"
            ))),
        }
    }

    /// Changes an organization by id: one read, then one transaction
    /// conditioned on the version read (retried when another change won).
    /// `change` answers whether it changed anything.
    pub async fn modify_organization(
        &self,
        project: Uuid,
        id: Uuid,
        change: impl Fn(&mut Organization) -> Result<bool, Error>,
    ) -> Result<Organization, Error> {
        self.change_organization(
            project,
            id,
            |org, _| Ok(change(org)?.then(Vec::new)),
            |_| None,
        )
        .await
    }

    /// [`Store::modify_organization`] with more writes in the same
    /// transaction: `change(org, now)` answers `None` when nothing changed,
    /// else the writes to add (at indexes 1.. of the transaction);
    /// `refused` turns a cancellation into the caller's error (else the
    /// change is retried as a lost race).
    pub(crate) async fn change_organization(
        &self,
        project: Uuid,
        id: Uuid,
        change: impl Fn(&mut Organization, &str) -> Result<Option<Vec<TransactWriteItem>>, Error>,
        refused: impl Fn(&TxOutcome) -> Option<Error>,
    ) -> Result<Organization, Error> {
        self.change_organization_from(project, id, None, change, refused)
            .await
    }

    /// [`Store::modify_organization`] from a record the caller has just
    /// read: the first attempt writes without reading it again (its version
    /// guards the write); a lost race reads afresh.
    pub async fn modify_read_organization(
        &self,
        read: Organization,
        change: impl Fn(&mut Organization) -> Result<bool, Error>,
    ) -> Result<Organization, Error> {
        let (project, id) = (read.project_id, read.id);
        self.change_organization_from(
            project,
            id,
            Some(read),
            |org, _| Ok(change(org)?.then(Vec::new)),
            |_| None,
        )
        .await
    }

    /// [`Store::change_organization`], the first attempt from `read` when
    /// given.
    pub(crate) async fn change_organization_from(
        &self,
        project: Uuid,
        id: Uuid,
        mut read: Option<Organization>,
        change: impl Fn(&mut Organization, &str) -> Result<Option<Vec<TransactWriteItem>>, Error>,
        refused: impl Fn(&TxOutcome) -> Option<Error>,
    ) -> Result<Organization, Error> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let given = read
                .take()
                .filter(|o| o.project_id == project && o.id == id);
            let (org, sequence) = match given {
                Some(org) => (Some(org), self.event_sequence(project, id).await?),
                None => self.organization_and_sequence(project, id).await?,
            };
            let mut org =
                org.ok_or_else(|| Error::not_found(format!("no organization has the id {id}")))?;
            let expected = org.version;
            let before = org.clone();
            let now = crate::ids::now();
            let Some(extra) = change(&mut org, &now)? else {
                return Ok(org);
            };
            // The domain says what changed; nothing changed, nothing to write.
            let event = event::organization_updated(&before, &org);
            if event.is_none() && extra.is_empty() {
                return Ok(before);
            }
            org.version += 1;
            org.updated_at = now.clone();
            let mut items = vec![self.versioned_update(&org, &before, expected)?];
            items.extend(extra);
            if let Some(event) = event {
                items.extend(single_event_writes(
                    &self.table,
                    project,
                    id,
                    &TimelineEvent::system(event, &now),
                    sequence,
                )?);
            }
            let index = super::org_index::change(Some(&before), Some(&org));
            let outcome = self.transact_indexed(items, index).await?;
            if let TxOutcome::Committed = outcome {
                return Ok(org);
            }
            if let Some(err) = refused(&outcome) {
                return Err(err);
            }
            tracing::debug!(?outcome, attempt, "update lost a race; retrying");
        }
        Err(Error::busy(
            "the organization is being changed concurrently; retry the request",
        ))
    }

    /// One page of the project's organizations in creation order (one Query
    /// of the organization index), with the project's count read beside it
    /// (one more Query, concurrently).
    pub async fn list_organizations(
        &self,
        project: Uuid,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<OrganizationPage, Error> {
        let listing = super::paging::Listing {
            index: Some(keys::GSI1),
            partition_attribute: keys::GSI1PK,
            partition: keys::org_list_pk(project),
            sort_prefix: None,
        };
        let (page, total) = tokio::join!(
            super::paging::page(self, project, listing, limit, cursor),
            self.organization_count(project)
        );
        let total = total?;
        let page = page?;
        Ok(OrganizationPage {
            organizations: page
                .items
                .into_iter()
                .map(from_item)
                .collect::<Result<Vec<Organization>, _>>()?,
            next_cursor: page.next_cursor,
            previous_cursor: page.previous_cursor,
            total_count: total,
        })
    }

    /// How many organizations the project has: the sum of the count's
    /// shards, one Query of their partition (a few hundred bytes, so one
    /// page and half a read unit).
    pub async fn organization_count(&self, project: Uuid) -> Result<u64, Error> {
        self.sum_shards(keys::org_count_pk(project)).await
    }

    /// The sum of a sharded count's shards (one Query of its partition).
    pub(crate) async fn sum_shards(&self, pk: String) -> Result<u64, Error> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(pk));
        let total: i64 = self
            .query_all(query)
            .await?
            .iter()
            .filter_map(|shard| shard.get("count")?.as_n().ok()?.parse::<i64>().ok())
            .sum();
        Ok(total.max(0) as u64)
    }

    /// Whether the organization exists: one strongly consistent read of
    /// its record's key alone.
    pub(crate) async fn organization_exists(
        &self,
        project: Uuid,
        org: Uuid,
    ) -> Result<bool, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(record_key::<Organization>(project, org)))
            .projection_expression("PK")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        Ok(out.item.is_some())
    }

    /// A transaction item that holds only while the organization exists.
    pub(crate) fn org_exists(&self, project: Uuid, org: Uuid) -> Result<TransactWriteItem, Error> {
        self.org_in_scope(project, org, Scope::Project)
    }

    /// The organization still exists and, under a publishable key, has no
    /// owner (see [`Organization::is_claimed`]).
    pub(crate) fn org_in_scope(
        &self,
        project: Uuid,
        org: Uuid,
        scope: Scope,
    ) -> Result<TransactWriteItem, Error> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(record_key::<Organization>(project, org)));
        let check = match scope {
            Scope::Project => check.condition_expression("attribute_exists(PK)"),
            Scope::Unclaimed => check
                .condition_expression(
                    "attribute_exists(PK) AND (attribute_not_exists(#owners) OR size(#owners) = :none)",
                )
                .expression_attribute_names("#owners", "owners")
                .expression_attribute_values(":none", n(0)),
        };
        Ok(TransactWriteItem::builder()
            .condition_check(build(check.build())?)
            .build())
    }

    /// Why [`Store::org_in_scope`]'s check failed: the organization is gone
    /// (404) or, under a publishable key, has an owner (403).
    pub(crate) async fn org_out_of_scope(
        &self,
        project: Uuid,
        org: Uuid,
        scope: Scope,
        gone: Error,
    ) -> Error {
        if scope.is_unclaimed() {
            if let Ok(Some(_)) = self.get_organization(project, org).await {
                return crate::domain::scope::owned_organization();
            }
        }
        gone
    }

    /// Under a publishable key, the user must not sign in with sessions
    /// (the flag [`super::users::SESSION_IDENTITY`] on its record).
    pub(crate) fn user_in_scope(
        &self,
        project: Uuid,
        user: Uuid,
    ) -> Result<TransactWriteItem, Error> {
        let check = build(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(record_key::<crate::domain::User>(project, user)))
                .condition_expression("attribute_not_exists(#session) OR #session = :no")
                .expression_attribute_names("#session", super::users::SESSION_IDENTITY)
                .expression_attribute_values(":no", AttributeValue::Bool(false))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A publishable key takes no session's access away: it deletes an
    /// organization only while none of its members signs in with sessions.
    /// What keeps its delete from racing a session's access: the member
    /// count as read (a member added meanwhile cancels the delete) and
    /// each member still without a session identity (one gaining it
    /// meanwhile cancels it too); the retry then reads them and refuses.
    /// The fence deletes the member count (the purge would).
    fn session_member_fence(
        &self,
        project: Uuid,
        org: Uuid,
        members: &[Uuid],
    ) -> Result<Vec<TransactWriteItem>, Error> {
        let count = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::org_pk(project, org), keys::MEMBER_COUNT_SK)))
                .condition_expression("attribute_not_exists(PK) OR #members = :seen")
                .expression_attribute_names("#members", "members")
                .expression_attribute_values(":seen", n(members.len() as i64))
                .build(),
        )?;
        let mut fence = vec![TransactWriteItem::builder().delete(count).build()];
        for user in members {
            fence.push(self.user_in_scope(project, *user)?);
        }
        Ok(fence)
    }

    /// The members of an organization a publishable key would delete: one
    /// Query of at most one more than it may delete with (each is checked
    /// in the deleting transaction).
    async fn members_for_publishable_delete(
        &self,
        project: Uuid,
        org: Uuid,
    ) -> Result<Vec<Uuid>, Error> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :members)")
            .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
            .expression_attribute_values(":members", s(keys::MEMBERSHIP_PREFIX))
            .projection_expression("SK")
            .consistent_read(true)
            .limit(MAX_PUBLISHABLE_DELETE_MEMBERS as i32 + 1)
            .send()
            .await
            .map_err(|e| super::storage("Query", e))?;
        let members: Vec<Uuid> = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| {
                super::text(item, keys::SK)
                    .strip_prefix(keys::MEMBERSHIP_PREFIX)?
                    .parse()
                    .ok()
            })
            .collect();
        if members.len() > MAX_PUBLISHABLE_DELETE_MEMBERS {
            return Err(Error::Forbidden(format!(
                "the organization has more than {MAX_PUBLISHABLE_DELETE_MEMBERS} members: a publishable key does not delete it; use a secret key"
            )));
        }
        Ok(members)
    }

    async fn check_no_session_members(&self, project: Uuid, members: &[Uuid]) -> Result<(), Error> {
        if members.is_empty() {
            return Ok(());
        }
        let fetched = self
            .fetch(
                members
                    .iter()
                    .map(|user| record_key::<User>(project, *user))
                    .collect(),
            )
            .await?;
        for user in members {
            if let Some(user) = fetched.record::<User>(project, *user)? {
                if user.has_session_identity() {
                    return Err(Error::Forbidden(
                        "a member of the organization signs in with sessions: a publishable key cannot take their access away; use a secret key".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The identifier markers and domain claims an organization holds: what
/// its purge releases.
fn claims_of(org: &Organization) -> Vec<super::cleanup::ClaimKey> {
    let markers = org
        .identifiers
        .iter()
        .map(|identifier| identifier.key())
        .filter(|id| id.record_id().is_none() && id.source != crate::domain::identifier::ID_SOURCE)
        .map(|id| super::cleanup::ClaimKey {
            pk: keys::org_identifier_pk(org.project_id, &id.source, &id.external_id),
            sk: keys::ORG_IDENTIFIER_SK.into(),
        });
    let domains =
        org.accounts
            .iter()
            .flat_map(|a| &a.domains)
            .map(|domain| super::cleanup::ClaimKey {
                pk: keys::domain_pk(org.project_id, &domain.domain),
                sk: keys::DOMAIN_SK.into(),
            });
    markers.chain(domains).collect()
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
        let mut resolved = Vec::with_capacity(targets.len());
        for ids in targets {
            let refs: Vec<&IdentifierKey> = ids.iter().collect();
            // A deleted organization's markers name nothing (read only
            // when the markers name two records).
            let (org, _) = self
                .resolve_live::<Organization>(&fetched, project, &refs)
                .await?;
            resolved.push(org);
        }
        Ok(resolved)
    }

    /// Under a publishable key, the position of the first organization that
    /// has an owner (one read of the records; `None` entries name none);
    /// `None` when all are in scope.
    pub async fn first_out_of_scope(
        &self,
        project: Uuid,
        orgs: &[Option<Uuid>],
        scope: Scope,
    ) -> Result<Option<usize>, Error> {
        let unique: std::collections::BTreeSet<Uuid> = orgs.iter().flatten().copied().collect();
        if !scope.is_unclaimed() || unique.is_empty() {
            return Ok(None);
        }
        let fetched = self
            .fetch(
                unique
                    .iter()
                    .map(|org| record_key::<Organization>(project, *org))
                    .collect(),
            )
            .await?;
        for (position, org) in orgs.iter().enumerate() {
            let Some(org) = org else { continue };
            if let Some(record) = fetched.record::<Organization>(project, *org)? {
                if record.is_claimed() {
                    return Ok(Some(position));
                }
            }
        }
        Ok(None)
    }

    /// One step of a `match` fan-out: the ids of the project's
    /// organizations after `after` (in the organization index's order,
    /// GSI1) whose `data` holds every given top-level pair, among the next
    /// `step` the index holds ([`FAN_OUT_STEP`] in the processor) — one
    /// Query with the pairs as a
    /// filter, no table Scan, never another project's items. `next_after`
    /// is where the next step goes on from, while the index holds more.
    pub async fn organizations_matching(
        &self,
        project: Uuid,
        pairs: &crate::domain::Data,
        after: Option<Uuid>,
        step: usize,
    ) -> Result<MatchStep, Error> {
        let mut filter = Vec::with_capacity(pairs.len());
        let mut query = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK > :from")
            .expression_attribute_values(":pk", s(keys::org_list_pk(project)))
            .expression_attribute_values(":from", s(keys::org_list_from(after)))
            .expression_attribute_names("#data", "data")
            .expression_attribute_names("#id", "id")
            .projection_expression("#id")
            .limit(i32::try_from(step.max(1)).unwrap_or(i32::MAX));
        for (i, (name, value)) in pairs.iter().enumerate() {
            filter.push(format!("#data.#k{i} = :v{i}"));
            query = query
                .expression_attribute_names(format!("#k{i}"), name)
                .expression_attribute_values(format!(":v{i}"), to_value(value)?);
        }
        let out = query
            .filter_expression(filter.join(" AND "))
            .send()
            .await
            .map_err(|e| super::storage("Query", e))?;
        #[derive(serde::Deserialize)]
        struct Id {
            id: Uuid,
        }
        let organizations = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<Id>(item).map(|i| i.id))
            .collect::<Result<Vec<_>, _>>()?;
        // The last organization the step read (matching or not): its index
        // key names it.
        let next_after = match out.last_evaluated_key {
            Some(last) => Some(
                last.get(keys::GSI1SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| keys::org_of_list_sk(sk))
                    .ok_or_else(|| {
                        Error::Internal(
                            "the organization index returned a key without an organization".into(),
                        )
                    })?,
            ),
            None => None,
        };
        Ok(MatchStep {
            organizations,
            next_after,
        })
    }
}

/// Organizations one step of a `match` fan-out reads from the index at
/// most: one Query, well within its 1 MB page, and at most this many
/// timeline writes per step whatever the project's size.
pub const FAN_OUT_STEP: usize = 500;

/// What one step of a `match` fan-out found.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchStep {
    pub organizations: Vec<Uuid>,
    /// The last organization read, when the index holds more after it.
    pub next_after: Option<Uuid>,
}
