//! Memberships: one item in the organization's partition (so deleting the
//! organization finds them), indexed by user in GSI1 (the user's
//! organizations). Adding a member the service does not know yet creates
//! the user in the same transaction.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use uuid::Uuid;

use super::organizations::Upserted;
use super::profiles::{
    marker_key, not_found, put_new, record_item, Fetched, Profile, MAX_ATTEMPTS,
};
use super::timeline::{record_event, TimelineEvent};
use super::{backoff, build, from_item, key, n, s, to_item, Item, Store, TxOutcome};
use crate::domain::{
    Data, IdentifierKey, IdentifierSpec, Membership, Organization, ProfileUpsert, SystemEvent, User,
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
        let (mut keys, org_hint) = self.resolution_keys::<Organization>(project, org_ids);
        keys.truncate(org_ids.len());
        let user_hint = self
            .identifier_cache
            .recall(user_ids.iter().map(|id| User::marker_pk(project, id)));
        keys.extend(user_ids.iter().map(|id| marker_key::<User>(project, id)));
        if let (Some(org), Some(user)) = (org_hint, user_hint) {
            keys.push(membership_key(project, org, user));
        }
        let fetched = self.fetch(keys).await?;
        let org = fetched.resolve::<Organization>(project, org_ids)?;
        let user = fetched.resolve::<User>(project, user_ids)?;
        self.learn::<Organization>(project, org_ids, org);
        self.learn::<User>(project, user_ids, user);
        let org = org.ok_or_else(|| {
            not_found::<Organization>(&org_ids.iter().map(|k| (*k).clone()).collect::<Vec<_>>())
        })?;
        Ok(Sides { fetched, org, user })
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
    ) -> Result<Upserted<Membership>, Error> {
        if let Some(data) = data {
            crate::domain::data::check_limits("data", data)?;
        }
        let org_refs: Vec<&IdentifierKey> = org_ids.iter().collect();
        let user_refs: Vec<&IdentifierKey> = user_ids.iter().map(|s| &s.key).collect();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let now = crate::ids::now();
            let sides = self.resolve_sides(project, &org_refs, &user_refs).await?;
            let mut items = vec![self.org_exists(project, sides.org)?];
            let (user, existing) = match sides.user {
                Some(user) => (
                    user,
                    self.membership(&sides.fetched, project, sides.org, user)
                        .await?,
                ),
                None => {
                    let upsert = ProfileUpsert::new(user_ids.to_vec(), None, None)?;
                    let user = User::create(project, crate::ids::new_id(), &upsert, &now);
                    items.push(put_new(&self.table, record_item(&user)?)?);
                    items.extend(self.marker_puts(&user, &user_refs)?);
                    (user.id, None)
                }
            };
            let (membership, created, event) = match existing {
                None => {
                    let (m, event) = Membership::create(project, sides.org, user, data, &now);
                    items.push(put_new(&self.table, membership_item(&m)?)?);
                    (m, true, event)
                }
                Some(mut m) => {
                    let expected = m.version;
                    let Some(event) = m.apply(data, &now)? else {
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
            items.extend(self.org_event(project, sides.org, event, &now)?);
            match self.transact(items).await? {
                TxOutcome::Committed => {
                    self.learn::<User>(project, &user_refs, Some(user));
                    return Ok(Upserted {
                        record: membership,
                        created,
                    });
                }
                outcome if outcome.condition_failed_at(0) => {
                    // The organization was deleted between the read and the write.
                    self.learn::<Organization>(project, &org_refs, None);
                    return Err(not_found::<Organization>(org_ids));
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "membership change lost a race; retrying");
                }
            }
        }
        Err(Error::conflict(
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
    ) -> Result<(), Error> {
        let org_refs: Vec<&IdentifierKey> = org_ids.iter().collect();
        let user_refs: Vec<&IdentifierKey> = user_ids.iter().collect();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let sides = self.resolve_sides(project, &org_refs, &user_refs).await?;
            let user = sides.user.ok_or_else(|| not_found::<User>(user_ids))?;
            let now = crate::ids::now();
            let removed = SystemEvent::new(
                "organization.user.removed",
                serde_json::json!({"user_id": user}),
            );
            let mut items = vec![TransactWriteItem::builder()
                .delete(build(
                    aws_sdk_dynamodb::types::Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(membership_key(project, sides.org, user)))
                        .condition_expression("attribute_exists(PK)")
                        .build(),
                )?)
                .build()];
            items.extend(self.org_event(project, sides.org, removed, &now)?);
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(()),
                outcome if outcome.condition_failed_at(0) => {
                    return Err(Error::not_found(
                        "the user is not a member of the organization",
                    ));
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
        Err(Error::conflict(
            "the membership is being changed concurrently; retry the request",
        ))
    }

    /// The organizations a user belongs to (GSI1, the inverted index).
    pub async fn user_memberships(
        &self,
        project: Uuid,
        user: Uuid,
    ) -> Result<Vec<Membership>, Error> {
        let mut memberships = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .index_name(keys::GSI1)
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", s(keys::user_orgs_pk(project, user)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| super::storage("Query", e))?;
            for item in out.items.unwrap_or_default() {
                memberships.push(from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(memberships);
            }
        }
    }

    fn org_event(
        &self,
        project: Uuid,
        org: Uuid,
        event: SystemEvent,
        now: &str,
    ) -> Result<[TransactWriteItem; 2], Error> {
        record_event(
            &self.table,
            project,
            org,
            &TimelineEvent::system(event, now),
        )
    }
}
