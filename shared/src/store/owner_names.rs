//! The owner's last name that CRM lists ordered by `owner.lastName` sort
//! by is a copy on each organization the user owns (its `OA` / `OD` list
//! entries are built from it). When a user's last name changes, the
//! user's own transaction writes a refresh job beside the record; the
//! cleanup function's minute sweep then walks the user's `owner` list
//! entries in bounded steps, setting the new name on each organization
//! (its own versioned write, with its entries and `organization.updated`).
//! A job is never lost: it stays due until its last step deletes it, and a
//! later rename replaces it (a new `rev`), so the chain of the old one
//! stops and the walk starts over with the newest name.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{bounded, build, conditional, from_item, key, s, text, to_item, Store};
use crate::domain::User;
use crate::error::Error;
use crate::keys;

/// Organizations one step renames at most (one Query page of the user's
/// `owner` entries).
pub const OWNER_NAME_PAGE: usize = 100;

/// Organizations of a step written at once.
const CONCURRENT_WRITES: usize = 8;

/// A pending refresh of the owner name on a user's organizations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnerNameJob {
    pub project_id: Uuid,
    pub user_id: Uuid,
    /// Which rename this is: a later one replaces the job with a new one.
    pub rev: Uuid,
    /// The last `owner` entry done (its sort key); from the start when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    due_at: String,
}

/// What one step of a refresh did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerNameStep {
    /// Brought up to a page of the user's organizations to the name
    /// (`examined` of them); the job goes on after them.
    Continued { examined: usize },
    /// The last page (`examined` organizations): the job is gone.
    Done { examined: usize },
    /// The job was replaced (a later rename) or finished meanwhile.
    Stale,
}

/// The user's transaction's refresh job (only when the last name changed):
/// due at once, from the first organization.
pub(crate) fn record_owner_rename(
    table: &str,
    project: Uuid,
    user: Uuid,
) -> Result<TransactWriteItem, Error> {
    let due_at = crate::ids::now();
    let job = OwnerNameJob {
        project_id: project,
        user_id: user,
        rev: crate::ids::new_id(),
        after: None,
        due_at: due_at.clone(),
    };
    let mut item = to_item(&job)?;
    item.extend(job_key(&job));
    item.insert(
        keys::GSI2PK.into(),
        s(keys::owner_name_due_pk(keys::owner_name_shard(user))),
    );
    item.insert(
        keys::GSI2SK.into(),
        s(keys::owner_name_due_sk(&due_at, project, user)),
    );
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The job's key: beside its user's record.
fn job_key(job: &OwnerNameJob) -> super::Item {
    key(
        keys::user_pk(job.project_id, job.user_id),
        keys::OWNER_NAME_SK,
    )
}

impl Store {
    /// Refresh jobs due by `now`, oldest first: at most `limit` per shard.
    pub async fn due_owner_names(
        &self,
        now: &str,
        limit: usize,
    ) -> Result<Vec<OwnerNameJob>, Error> {
        let shards = (0..keys::OWNER_NAME_SHARDS).map(keys::owner_name_due_pk);
        self.due_on_gsi2(shards, now, limit)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// One step of a refresh: the user's current last name (read now, so
    /// the newest name wins) onto the next page of the organizations the
    /// user owns, then the job moved on (or deleted after the last page),
    /// conditioned on its `rev`. Safe to run again: an organization that
    /// already has the name is not written.
    pub async fn owner_name_step(
        &self,
        job: &mut OwnerNameJob,
        page: usize,
    ) -> Result<OwnerNameStep, Error> {
        let (project, user) = (job.project_id, job.user_id);
        let name: Option<String> = self
            .get_record::<User>(project, user)
            .await?
            .as_ref()
            .and_then(User::last_name)
            .map(str::to_owned);
        let owner = user.to_string();
        let mut query = self
            .db
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(keys::crm_value_pk(project, "owner", &owner)))
            .projection_expression("SK, org")
            .limit(page.clamp(1, 1_000) as i32);
        query = match &job.after {
            Some(after) => query
                .key_condition_expression("PK = :pk AND SK > :after")
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("PK = :pk"),
        };
        let out = query.send().await.map_err(|e| super::storage("Query", e))?;
        let more = out.last_evaluated_key.is_some();
        let entries = out.items.unwrap_or_default();
        let last = entries.last().map(|item| text(item, keys::SK).to_owned());
        let orgs: Vec<Uuid> = entries
            .iter()
            .filter_map(|item| Uuid::parse_str(text(item, "org")).ok())
            .collect();
        let examined = orgs.len();
        let writes = orgs
            .into_iter()
            .map(|org| {
                let (store, owner, name) = (self.clone(), owner.clone(), name.clone());
                async move {
                    store
                        .rename_owner(project, org, &owner, name.as_deref())
                        .await
                }
            })
            .collect();
        bounded(writes, CONCURRENT_WRITES).await?;
        let moved = match (more, last) {
            (true, Some(last)) => {
                let moved = self.advance_owner_name(job, &last).await?;
                if moved {
                    job.after = Some(last);
                }
                moved.then_some(OwnerNameStep::Continued { examined })
            }
            _ => self
                .finish_owner_name(job)
                .await?
                .then_some(OwnerNameStep::Done { examined }),
        };
        Ok(moved.unwrap_or(OwnerNameStep::Stale))
    }

    /// Sets `name` as the owner's last name on one organization the user
    /// still owns (a gone organization, or one owned by someone else now,
    /// is left alone).
    async fn rename_owner(
        &self,
        project: Uuid,
        org: Uuid,
        owner: &str,
        name: Option<&str>,
    ) -> Result<(), Error> {
        let changed = self
            .change_organization(
                project,
                org,
                |org, _| {
                    let Some(crm) = org.crm.as_mut() else {
                        return Ok(None);
                    };
                    if crm.owner.as_deref() != Some(owner) || crm.owner_last_name.as_deref() == name
                    {
                        return Ok(None);
                    }
                    crm.owner_last_name = name.map(str::to_owned);
                    Ok(Some(Vec::new()))
                },
                |_| None,
            )
            .await;
        match changed {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn advance_owner_name(&self, job: &OwnerNameJob, after: &str) -> Result<bool, Error> {
        let result = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(job)))
            .condition_expression("rev = :rev")
            .update_expression("SET #after = :after")
            .expression_attribute_names("#after", "after")
            .expression_attribute_values(":rev", s(job.rev.to_string()))
            .expression_attribute_values(":after", s(after))
            .send()
            .await;
        conditional(result, "UpdateItem")
    }

    async fn finish_owner_name(&self, job: &OwnerNameJob) -> Result<bool, Error> {
        let result = self
            .db
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(job_key(job)))
            .condition_expression("rev = :rev")
            .expression_attribute_values(":rev", s(job.rev.to_string()))
            .send()
            .await;
        conditional(result, "DeleteItem")
    }
}
