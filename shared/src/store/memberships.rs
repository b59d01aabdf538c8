//! Memberships: one item in the organization's partition (so deleting the
//! organization finds them), indexed by user in GSI1 (the user's
//! organizations). Adding a member the service does not know yet creates
//! the user in the same transaction.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use uuid::Uuid;

use super::organizations::Upserted;
use super::profiles::{marker_keys, not_found, put_new, record_item, Fetched, MAX_ATTEMPTS};
use super::timeline::{
    record_event, sequence_in, sequence_key, single_event_writes, Sequence, TimelineEvent,
};
use super::{backoff, build, from_item, key, n, s, to_item, Item, Store, TxOutcome};
use crate::domain::event;
use crate::domain::identifier::ID_SOURCE;
use crate::domain::{
    Data, IdentifierKey, IdentifierSpec, Membership, Organization, ProfileUpsert, Scope,
    SystemEvent, User,
};
use crate::error::Error;
use crate::keys;

fn membership_key(project: Uuid, org: Uuid, user: Uuid) -> Item {
    key(keys::org_pk(project, org), keys::membership_sk(user))
}

fn membership_item(m: &Membership) -> Result<Item, Error> {
    let mut item = to_item(m)?;
    item.insert(
        keys::PK.into(),
        s(keys::org_pk(m.project_id, m.organization_id)),
    );
    item.insert(keys::SK.into(), s(keys::membership_sk(m.user_id)));
    item.insert(
        keys::GSI1PK.into(),
        s(keys::user_orgs_pk(m.project_id, m.user_id)),
    );
    item.insert(keys::GSI1SK.into(), s(keys::org_list_sk(m.organization_id)));
    Ok(item)
}

/// Both sides of a membership request, resolved in one read.
struct Sides {
    fetched: Fetched,
    org: Uuid,
    user: Option<Uuid>,
    /// The organization whose event sequence the read fetched too.
    prefetched: Option<Uuid>,
}

impl Store {
    /// Reads the organization's and the user's markers (and, when this
    /// container knows both, their membership) in one `BatchGetItem`.
    async fn resolve_sides(
        &self,
        project: Uuid,
        org_ids: &[&IdentifierKey],
        user_ids: &[&IdentifierKey],
    ) -> Result<Sides, Error> {
        let mut keys = marker_keys::<Organization>(project, org_ids);
        keys.extend(marker_keys::<User>(project, user_ids));
        let org_hint = self.remembered::<Organization>(project, org_ids);
        let user_hint = self.remembered::<User>(project, user_ids);
        if let (Some(org), Some(user)) = (org_hint, user_hint) {
            keys.push(membership_key(project, org, user));
        }
        if let Some(org) = org_hint {
            keys.push(sequence_key(project, org));
        }
        let fetched = self.fetch(keys).await?;
        let (org, _) = self
            .resolve_live::<Organization>(&fetched, project, org_ids)
            .await?;
        let user = fetched.resolve::<User>(project, user_ids)?;
        self.learn::<Organization>(project, org_ids, org);
        self.learn::<User>(project, user_ids, user);
        let org = org.ok_or_else(|| {
            not_found::<Organization>(&org_ids.iter().map(|k| (*k).clone()).collect::<Vec<_>>())
        })?;
        Ok(Sides {
            fetched,
            org,
            user,
            prefetched: org_hint,
        })
    }

    /// The organization's event sequence: from the read of both sides when
    /// it fetched it, else read now.
    async fn sides_sequence(&self, project: Uuid, sides: &Sides) -> Result<Sequence, Error> {
        if sides.prefetched == Some(sides.org) {
            let item = sides.fetched.item(&sequence_key(project, sides.org));
            return Ok(Sequence::after(sequence_in(item.as_ref())));
        }
        self.event_sequence(project, sides.org).await
    }

    async fn membership(
        &self,
        fetched: &Fetched,
        project: Uuid,
        org: Uuid,
        user: Uuid,
    ) -> Result<Option<Membership>, Error> {
        let item_key = membership_key(project, org, user);
        if let Some(item) = fetched.item(&item_key) {
            return from_item(item).map(Some);
        }
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// Adds the user to the organization, or shallow-merges the membership
    /// `data` if they are a member already. A user the service does not know
    /// yet is created. One transaction writes the membership (conditioned on
    /// the organization still existing and on the membership's version) and
    /// its `organization.user.added|updated` event.
    pub async fn add_member(
        &self,
        project: Uuid,
        org_ids: &[IdentifierKey],
        user_ids: &[IdentifierSpec],
        data: Option<&Data>,
        scope: Scope,
    ) -> Result<Upserted<Membership>, Error> {
        if let Some(data) = data {
            crate::domain::data::check_limits("data", data)?;
        }
        scope.check_identifiers(org_ids.iter().chain(user_ids.iter().map(|s| &s.key)))?;
        let org_refs: Vec<&IdentifierKey> = org_ids.iter().collect();
        let user_refs: Vec<&IdentifierKey> = user_ids.iter().map(|s| &s.key).collect();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let now = crate::ids::now();
            let sides = self.resolve_sides(project, &org_refs, &user_refs).await?;
            let mut items = vec![self.org_in_scope(project, sides.org, scope)?];
            let (user, existing, named) = match sides.user {
                Some(user) => {
                    if scope.is_unclaimed() {
                        items.push(self.user_in_scope(project, user)?);
                    }
                    (
                        user,
                        self.membership(&sides.fetched, project, sides.org, user)
                            .await?,
                        sides.fetched.naming::<User>(project, &user_refs, user),
                    )
                }
                // An id names an existing user only.
                None if user_refs.iter().any(|k| k.source == ID_SOURCE) => {
                    return Err(not_found::<User>(
                        &user_refs.iter().map(|k| (*k).clone()).collect::<Vec<_>>(),
                    ));
                }
                None => {
                    let upsert = ProfileUpsert::new(user_ids.to_vec(), None, None)?;
                    let user = User::create(project, crate::ids::new_id(), &upsert, &now);
                    items.push(put_new(&self.table, record_item(&user)?)?);
                    items.extend(self.marker_puts(&user, &user_refs, &[])?);
                    let named = user.identifiers.iter().map(|i| i.key()).collect();
                    (user.id, None, named)
                }
            };
            let (membership, created, event) = match existing {
                None => {
                    let m = Membership::create(project, sides.org, user, data, &now);
                    let event = event::member_added(&m, &named);
                    items.push(put_new(&self.table, membership_item(&m)?)?);
                    items.push(count_members(&self.table, project, sides.org, 1, 0, false)?);
                    items.push(count_user_organizations(&self.table, project, user, 1)?);
                    (m, true, event)
                }
                Some(mut m) => {
                    let expected = m.version;
                    let Some(event) = m.apply(data, &now)? else {
                        // Nothing to write: the membership stands only
                        // while its organization does (a deleted one's
                        // memberships wait for its purge).
                        if !self.organization_exists(project, sides.org).await? {
                            self.learn::<Organization>(project, &org_refs, None);
                            return Err(not_found::<Organization>(org_ids));
                        }
                        return Ok(Upserted {
                            record: m,
                            created: false,
                        });
                    };
                    let put = build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(membership_item(&m)?))
                            .condition_expression("#version = :expected")
                            .expression_attribute_names("#version", "version")
                            .expression_attribute_values(":expected", n(expected))
                            .build(),
                    )?;
                    items.push(TransactWriteItem::builder().put(put).build());
                    (m, false, event)
                }
            };
            let sequence = self.sides_sequence(project, &sides).await?;
            items.extend(self.org_event(project, sides.org, event, &now, sequence)?);
            match self.transact(items).await? {
                TxOutcome::Committed => {
                    self.learn::<User>(project, &user_refs, Some(user));
                    return Ok(Upserted {
                        record: membership,
                        created,
                    });
                }
                outcome if outcome.condition_failed_at(0) => {
                    // The organization was deleted between the read and the
                    // write, or has an owner (publishable key).
                    let gone = not_found::<Organization>(org_ids);
                    let err = self.org_out_of_scope(project, sides.org, scope, gone).await;
                    if matches!(err, Error::NotFound(_)) {
                        self.learn::<Organization>(project, &org_refs, None);
                    }
                    return Err(err);
                }
                outcome if scope.is_unclaimed() && outcome.condition_failed_at(1) => {
                    return Err(crate::domain::scope::session_user());
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "membership change lost a race; retrying");
                }
            }
        }
        Err(Error::busy(
            "the membership is being changed concurrently; retry the request",
        ))
    }

    /// Removes the user from the organization (only the association; both
    /// stay). 404 when either is unknown or the user is not a member.
    pub async fn remove_member(
        &self,
        project: Uuid,
        org_ids: &[IdentifierKey],
        user_ids: &[IdentifierKey],
        scope: Scope,
    ) -> Result<(), Error> {
        scope.check_identifiers(org_ids.iter().chain(user_ids))?;
        let org_refs: Vec<&IdentifierKey> = org_ids.iter().collect();
        let user_refs: Vec<&IdentifierKey> = user_ids.iter().collect();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let sides = self.resolve_sides(project, &org_refs, &user_refs).await?;
            let user = sides.user.ok_or_else(|| not_found::<User>(user_ids))?;
            let Some(membership) = self
                .membership(&sides.fetched, project, sides.org, user)
                .await?
            else {
                return Err(Error::not_found(
                    "the user is not a member of the organization",
                ));
            };
            if scope.is_unclaimed() && membership.is_owner() {
                return Err(crate::domain::scope::owned_organization());
            }
            let now = crate::ids::now();
            let removed = event::member_removed(
                &membership,
                &sides.fetched.naming::<User>(project, &user_refs, user),
            );
            let mut items = vec![TransactWriteItem::builder()
                .delete(build(
                    aws_sdk_dynamodb::types::Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(membership_key(project, sides.org, user)))
                        .condition_expression("#version = :expected")
                        .expression_attribute_names("#version", "version")
                        .expression_attribute_values(":expected", n(membership.version))
                        .build(),
                )?)
                .build()];
            let owner = if membership.is_owner() { -1 } else { 0 };
            items.push(count_members(
                &self.table,
                project,
                sides.org,
                -1,
                owner,
                false,
            )?);
            // At 2: the organization still exists (a deleted one's
            // memberships wait for its purge, which counts them off):
            // `drop_owner` holds only while its record does, else a check
            // (a publishable key's check below holds it too).
            if membership.is_owner() {
                items.push(drop_owner(&self.table, project, sides.org, user)?);
            } else if !scope.is_unclaimed() {
                items.push(self.org_exists(project, sides.org)?);
            }
            items.push(count_user_organizations(&self.table, project, user, -1)?);
            // A publishable key's reach, checked by the same transaction.
            let checks = items.len();
            if scope.is_unclaimed() {
                items.push(self.org_in_scope(project, sides.org, scope)?);
                items.push(self.user_in_scope(project, user)?);
            }
            let sequence = self.sides_sequence(project, &sides).await?;
            items.extend(self.org_event(project, sides.org, removed, &now, sequence)?);
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(()),
                outcome if outcome.condition_failed_at(0) => {
                    return Err(Error::not_found(
                        "the user is not a member of the organization",
                    ));
                }
                outcome if !scope.is_unclaimed() && outcome.condition_failed_at(2) => {
                    self.learn::<Organization>(project, &org_refs, None);
                    return Err(not_found::<Organization>(org_ids));
                }
                outcome if scope.is_unclaimed() && outcome.condition_failed_at(checks) => {
                    let gone = not_found::<Organization>(org_ids);
                    return Err(self.org_out_of_scope(project, sides.org, scope, gone).await);
                }
                outcome if scope.is_unclaimed() && outcome.condition_failed_at(checks + 1) => {
                    return Err(crate::domain::scope::session_user());
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(
                        ?reasons,
                        attempt,
                        "membership removal lost a race; retrying"
                    );
                }
            }
        }
        Err(Error::busy(
            "the membership is being changed concurrently; retry the request",
        ))
    }

    /// The organizations a user belongs to (GSI1, the inverted index).
    pub async fn user_memberships(
        &self,
        project: Uuid,
        user: Uuid,
    ) -> Result<Vec<Membership>, Error> {
        self.index_partition(keys::user_orgs_pk(project, user))
            .await
    }

    fn org_event(
        &self,
        project: Uuid,
        org: Uuid,
        event: SystemEvent,
        now: &str,
        sequence: Sequence,
    ) -> Result<Vec<TransactWriteItem>, Error> {
        single_event_writes(
            &self.table,
            project,
            org,
            &TimelineEvent::system(event, now),
            sequence,
        )
    }
}

/// The owner's membership of a newly created organization, with its
/// `organization.user.added` numbered by `sequence` (record the
/// organization's `created` first: timeline order is id order; the caller
/// writes the sequence).
pub(crate) fn owner_writes(
    table: &str,
    project: Uuid,
    org: Uuid,
    user: Uuid,
    now: &str,
    sequence: &mut Sequence,
) -> Result<Vec<TransactWriteItem>, Error> {
    let mut membership = Membership::create(project, org, user, None, now);
    membership.role = Some(crate::domain::membership::OWNER.into());
    let added = TimelineEvent::system(event::member_added(&membership, &[]), now);
    let mut writes = vec![
        put_new(table, membership_item(&membership)?)?,
        count_members(table, project, org, 1, 1, false)?,
        count_user_organizations(table, project, user, 1)?,
    ];
    writes.extend(record_event(table, project, org, &added, sequence)?);
    Ok(writes)
}

/// Takes the user off the organization record's owners (whose oldest
/// pays when no billing email is set). Not versioned: no record update
/// writes `owners`, so this cannot lose or undo one.
fn drop_owner(
    table: &str,
    project: Uuid,
    org: Uuid,
    user: Uuid,
) -> Result<TransactWriteItem, Error> {
    let update = build(
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(table)
            .set_key(Some(super::profiles::record_key::<Organization>(
                project, org,
            )))
            .update_expression("REMOVE #owners.#user")
            .condition_expression("attribute_exists(#owners)")
            .expression_attribute_names("#owners", "owners")
            .expression_attribute_names("#user", user.to_string())
            .build(),
    )?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Keeps how many organizations the user belongs to: every transaction
/// that adds or removes a membership (the purge's included) carries it.
pub(crate) fn count_user_organizations(
    table: &str,
    project: Uuid,
    user: Uuid,
    delta: i64,
) -> Result<TransactWriteItem, Error> {
    let update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .set_key(Some(key(
            keys::user_pk(project, user),
            keys::USER_ORG_COUNT_SK,
        )))
        .update_expression("ADD #organizations :delta")
        .expression_attribute_names("#organizations", "organizations")
        .expression_attribute_values(":delta", n(delta));
    Ok(TransactWriteItem::builder()
        .update(build(update.build())?)
        .build())
}

/// Keeps the organization's member and owner counts; with `guard_owners`,
/// holds only while another owner remains (the last owner cannot go).
pub(crate) fn count_members(
    table: &str,
    project: Uuid,
    org: Uuid,
    members: i64,
    owners: i64,
    guard_owners: bool,
) -> Result<TransactWriteItem, Error> {
    let mut update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .set_key(Some(key(keys::org_pk(project, org), keys::MEMBER_COUNT_SK)))
        .update_expression("ADD #members :members, #owners :owners")
        .expression_attribute_names("#members", "members")
        .expression_attribute_names("#owners", "owners")
        .expression_attribute_values(":members", n(members))
        .expression_attribute_values(":owners", n(owners));
    if guard_owners {
        update = update
            .condition_expression("#owners > :one")
            .expression_attribute_values(":one", n(1));
    }
    Ok(TransactWriteItem::builder()
        .update(build(update.build())?)
        .build())
}

/// One page of an organization's memberships.
#[derive(Clone, Debug, PartialEq)]
pub struct MembershipPage {
    pub memberships: Vec<Membership>,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
    pub total_count: u64,
}

impl Store {
    /// An organization's membership of one user: one read.
    pub async fn get_membership(
        &self,
        project: Uuid,
        org: Uuid,
        user: Uuid,
    ) -> Result<Option<Membership>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(membership_key(project, org, user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// One page of an organization's memberships (one Query of its
    /// partition, the counts read beside it); `None` if the organization
    /// does not exist.
    pub async fn list_memberships(
        &self,
        project: Uuid,
        org: Uuid,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Option<MembershipPage>, Error> {
        let partition = keys::org_pk(project, org);
        let counts = async {
            self.db
                .batch_get_item()
                .request_items(
                    &self.table,
                    build(
                        aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                            .keys(key(partition.clone(), keys::ORG_SK))
                            .keys(key(partition.clone(), keys::MEMBER_COUNT_SK))
                            .projection_expression("SK, #members")
                            .expression_attribute_names("#members", "members")
                            .build(),
                    )?,
                )
                .send()
                .await
                .map_err(|e| super::storage("BatchGetItem", e))
        };
        let page = super::paging::page(
            self,
            project,
            super::paging::Listing {
                index: None,
                partition_attribute: keys::PK,
                partition: partition.clone(),
                sort_prefix: Some(keys::MEMBERSHIP_PREFIX),
            },
            limit,
            cursor,
        );
        let (counts, page) = tokio::join!(counts, page);
        let counts = counts?
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default();
        if !counts
            .iter()
            .any(|i| super::text(i, keys::SK) == keys::ORG_SK)
        {
            return Ok(None);
        }
        let total = counts
            .iter()
            .find_map(|i| {
                i.get("members")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
            })
            .unwrap_or(0)
            .max(0) as u64;
        let page = page?;
        Ok(Some(MembershipPage {
            memberships: page
                .items
                .into_iter()
                .map(from_item)
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
            previous_cursor: page.previous_cursor,
            total_count: total,
        }))
    }

    /// The session user leaves the organization; the last owner cannot.
    pub async fn leave_organization(
        &self,
        project: Uuid,
        org: Uuid,
        user_external_id: &str,
    ) -> Result<(), Error> {
        let not_member = || Error::not_found("you are not a member of this organization");
        // The user's marker, the organization's event sequence and (when
        // the container knows the user's id) the membership in one batch;
        // a retry reads the membership and the sequence again.
        let (user, fetched) = self
            .session_user_id_with(
                project,
                user_external_id,
                vec![sequence_key(project, org)],
                |user| vec![membership_key(project, org, user)],
            )
            .await?;
        let user = user.ok_or_else(not_member)?;
        let mut first = Some(fetched);
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let (membership, sequence) = match first.take() {
                Some(fetched) => {
                    let item = fetched.item(&sequence_key(project, org));
                    let sequence = Sequence::after(sequence_in(item.as_ref()));
                    (
                        self.membership(&fetched, project, org, user).await?,
                        sequence,
                    )
                }
                None => {
                    let membership = membership_key(project, org, user);
                    let (fetched, sequence) = self
                        .fetch_with_sequence(project, org, vec![membership.clone()])
                        .await?;
                    (
                        fetched.item(&membership).map(from_item).transpose()?,
                        sequence,
                    )
                }
            };
            let membership = membership.ok_or_else(not_member)?;
            let owner = membership.is_owner();
            let now = crate::ids::now();
            let delete = build(
                aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(membership_key(project, org, user)))
                    .condition_expression("#version = :expected")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":expected", n(membership.version))
                    .build(),
            )?;
            let mut items = vec![
                TransactWriteItem::builder().delete(delete).build(),
                count_members(
                    &self.table,
                    project,
                    org,
                    -1,
                    if owner { -1 } else { 0 },
                    owner,
                )?,
            ];
            // At 2: the organization still exists (see `remove_member`).
            if owner {
                items.push(drop_owner(&self.table, project, org, user)?);
            } else {
                items.push(self.org_exists(project, org)?);
            }
            items.push(count_user_organizations(&self.table, project, user, -1)?);
            let session = IdentifierKey::session(user_external_id)?;
            let removed = event::member_removed(&membership, std::slice::from_ref(&session));
            items.extend(self.org_event(project, org, removed, &now, sequence)?);
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(()),
                outcome if outcome.condition_failed_at(2) => return Err(not_member()),
                outcome if owner && outcome.condition_failed_at(1) => {
                    return Err(Error::conflict(
                        "you are the organization's last owner: make another member an owner before leaving, or delete the organization",
                    ));
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "leave lost a race; retrying")
                }
            }
        }
        Err(Error::busy(
            "the membership is being changed concurrently; retry the request",
        ))
    }
}

impl Store {
    /// The id of the user a session names (source `session`, its `sub`),
    /// if the service knows it: one `BatchGetItem` of its marker, which also
    /// reads `also(user)` when this container remembers the user.
    async fn session_user_id(
        &self,
        project: Uuid,
        external_id: &str,
        also: impl FnOnce(Uuid) -> Vec<Item>,
    ) -> Result<(Option<Uuid>, Fetched), Error> {
        self.session_user_id_with(project, external_id, Vec::new(), also)
            .await
    }

    /// As [`Store::session_user_id`], reading `always` in the same batch.
    async fn session_user_id_with(
        &self,
        project: Uuid,
        external_id: &str,
        always: Vec<Item>,
        also: impl FnOnce(Uuid) -> Vec<Item>,
    ) -> Result<(Option<Uuid>, Fetched), Error> {
        let user_key = IdentifierKey::session(external_id)?;
        let refs = [&user_key];
        let mut keys_to_read = marker_keys::<User>(project, &refs);
        keys_to_read.extend(always);
        keys_to_read.extend(
            self.remembered::<User>(project, &refs)
                .map(also)
                .unwrap_or_default(),
        );
        let fetched = self.fetch(keys_to_read).await?;
        let user = fetched.resolve::<User>(project, &refs)?;
        self.learn::<User>(project, &refs, user);
        Ok((user, fetched))
    }

    /// The id of the user a session names, if the service knows it (one
    /// read of its identifier marker).
    pub async fn session_user_ref(
        &self,
        project: Uuid,
        external_id: &str,
    ) -> Result<Option<Uuid>, Error> {
        Ok(self
            .session_user_id(project, external_id, |_| Vec::new())
            .await?
            .0)
    }

    /// The ids of the organizations a session's user belongs to (one read
    /// of the user, one Query of their memberships).
    pub async fn session_organization_ids(
        &self,
        project: Uuid,
        external_id: &str,
    ) -> Result<std::collections::HashSet<Uuid>, Error> {
        let Some(user) = self.session_user_ref(project, external_id).await? else {
            return Ok(Default::default());
        };
        Ok(self
            .user_memberships(project, user)
            .await?
            .into_iter()
            .map(|m| m.organization_id)
            .collect())
    }

    /// The membership of the user a session names (source `session`, its
    /// `sub`) in an organization: one `BatchGetItem` when this
    /// container knows the user, else one more read.
    pub async fn session_membership(
        &self,
        project: Uuid,
        org: Uuid,
        external_id: &str,
    ) -> Result<Option<Membership>, Error> {
        Ok(self
            .session_membership_with(project, org, external_id, Vec::new())
            .await?
            .0)
    }

    /// As [`Store::session_membership`], reading `always` in the same batch.
    pub(crate) async fn session_membership_with(
        &self,
        project: Uuid,
        org: Uuid,
        external_id: &str,
        always: Vec<Item>,
    ) -> Result<(Option<Membership>, Fetched), Error> {
        let (user, fetched) = self
            .session_user_id_with(project, external_id, always, |user| {
                vec![membership_key(project, org, user)]
            })
            .await?;
        let membership = match user {
            Some(user) => self.membership(&fetched, project, org, user).await?,
            None => None,
        };
        Ok((membership, fetched))
    }

    /// A session's user's membership in an organization and, when they are
    /// a member, the organization's record: one `BatchGetItem` for the
    /// user's marker, the membership and the record when the container
    /// remembers the user's id.
    pub async fn session_membership_and_organization(
        &self,
        project: Uuid,
        org: Uuid,
        external_id: &str,
    ) -> Result<Option<(Membership, Option<Organization>)>, Error> {
        let record = super::profiles::record_key::<Organization>(project, org);
        let mut batched = false;
        let (user, fetched) = self
            .session_user_id(project, external_id, |user| {
                batched = true;
                vec![membership_key(project, org, user), record]
            })
            .await?;
        let Some(user) = user else {
            return Ok(None);
        };
        let Some(membership) = self.membership(&fetched, project, org, user).await? else {
            return Ok(None);
        };
        let organization = if batched {
            fetched.record::<Organization>(project, org)?
        } else {
            self.get_organization(project, org).await?
        };
        Ok(Some((membership, organization)))
    }

    /// How many organizations the user belongs to: one GetItem of the
    /// count the membership transactions keep. A deleted organization
    /// counts until its purge reaches the membership (seconds after the
    /// delete), though lists leave it out at once.
    pub async fn user_organization_count(&self, project: Uuid, user: Uuid) -> Result<u64, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::user_pk(project, user),
                keys::USER_ORG_COUNT_SK,
            )))
            .projection_expression("#organizations")
            .expression_attribute_names("#organizations", "organizations")
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        let count = out
            .item
            .as_ref()
            .and_then(|item| item.get("organizations")?.as_n().ok()?.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(count.max(0) as u64)
    }

    /// The organizations a session's user belongs to, one page (one Query
    /// of the user's membership index, then one read of those records),
    /// with their count (one GetItem, beside the Query).
    pub async fn session_organizations(
        &self,
        project: Uuid,
        external_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<super::OrganizationPage, Error> {
        let Some(user) = self
            .session_user_id(project, external_id, |_| Vec::new())
            .await?
            .0
        else {
            return Ok(super::OrganizationPage {
                organizations: Vec::new(),
                next_cursor: None,
                previous_cursor: None,
                total_count: 0,
            });
        };
        let listing = super::paging::Listing {
            index: Some(keys::GSI1),
            partition_attribute: keys::GSI1PK,
            partition: keys::user_orgs_pk(project, user),
            sort_prefix: None,
        };
        let (page, total) = tokio::join!(
            super::paging::page(self, project, listing, limit, cursor),
            self.user_organization_count(project, user)
        );
        let page = page?;
        let total = total?;
        let memberships: Vec<Membership> = page
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        let keys_to_read = memberships
            .iter()
            .map(|m| super::profiles::record_key::<Organization>(project, m.organization_id))
            .collect();
        let fetched = self.fetch(keys_to_read).await?;
        let organizations = memberships
            .iter()
            .filter_map(|m| {
                fetched
                    .record::<Organization>(project, m.organization_id)
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::OrganizationPage {
            organizations,
            next_cursor: page.next_cursor,
            previous_cursor: page.previous_cursor,
            total_count: total,
        })
    }
}
