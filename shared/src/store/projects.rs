//! Projects (tenants) and their API keys.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{build, from_item, key, s, storage, to_item, Store, TxOutcome};
use crate::auth::{ApiKey, KeyKind};
use crate::error::Error;
use crate::keys;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    /// Signs dev session JWTs (HS256), accepted only under `DEV_SESSIONS=1`;
    /// only projects created for dev sessions have one, so a deployed
    /// project has no secret that could mint sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_token_secret: Option<String>,
    pub created_at: String,
}

/// A stored API key: only its hash is kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub kind: KeyKind,
    /// The last characters of the key, to tell keys apart in listings.
    pub hint: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CreatedProject {
    pub project_id: Uuid,
    pub name: String,
    pub publishable_key: String,
    pub secret_key: String,
    /// `null` unless the project was created for dev sessions.
    pub dev_token_secret: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CreatedKey {
    pub project_id: Uuid,
    pub kind: KeyKind,
    pub key: String,
}

#[derive(Serialize)]
struct Keyed<'a, T> {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(flatten)]
    record: &'a T,
}

impl Store {
    /// A new project with one publishable and one secret key, in one
    /// transaction. The keys are returned once and stored only as hashes.
    /// It has no dev token secret: its sessions come from trusted issuers.
    pub async fn create_project(&self, name: &str) -> Result<CreatedProject, Error> {
        self.insert_project(name, None).await
    }

    /// [`Store::create_project`] for dev sessions (`make dev`, the tests):
    /// the project also gets a `dev_token_secret` for HS256 session tokens,
    /// which the functions accept only under `DEV_SESSIONS=1`.
    pub async fn create_dev_project(&self, name: &str) -> Result<CreatedProject, Error> {
        self.insert_project(name, Some(crate::auth::random_token(32)?))
            .await
    }

    async fn insert_project(
        &self,
        name: &str,
        dev_token_secret: Option<String>,
    ) -> Result<CreatedProject, Error> {
        let now = crate::ids::now();
        let project = Project {
            id: crate::ids::new_id(),
            name: name.to_owned(),
            dev_token_secret,
            created_at: now.clone(),
        };
        let publishable = ApiKey::generate(project.id, KeyKind::Publishable)?;
        let secret = ApiKey::generate(project.id, KeyKind::Secret)?;
        let mut items = vec![self.put_new(
            keys::project_pk(project.id),
            keys::PROJECT_SK.into(),
            &project,
        )?];
        for key in [&publishable, &secret] {
            items.extend(self.key_copies(key, &now)?);
        }
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(CreatedProject {
                project_id: project.id,
                name: project.name,
                publishable_key: publishable.expose().to_owned(),
                secret_key: secret.expose().to_owned(),
                dev_token_secret: project.dev_token_secret,
            }),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "creating a project was cancelled: {reasons:?}"
            ))),
        }
    }

    pub async fn get_project(&self, project: Uuid) -> Result<Option<Project>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::project_pk(project), keys::PROJECT_SK)))
            .send()
            .await
            .map_err(|e| storage("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// A new key for an existing project: its copies, written only while
    /// the project exists.
    pub async fn create_key(&self, project: Uuid, kind: KeyKind) -> Result<CreatedKey, Error> {
        let key = ApiKey::generate(project, kind)?;
        let mut items = self.key_copies(&key, &crate::ids::now())?;
        let project_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(super::key(
                keys::project_pk(project),
                keys::PROJECT_SK,
            )))
            .condition_expression("attribute_exists(PK)")
            .build();
        items.push(
            TransactWriteItem::builder()
                .condition_check(build(project_exists)?)
                .build(),
        );
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(CreatedKey {
                project_id: project,
                kind,
                key: key.expose().to_owned(),
            }),
            outcome if outcome.condition_failed_at(keys::API_KEY_SHARDS as usize) => Err(
                Error::not_found(format!("project {project} does not exist")),
            ),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "creating a key was cancelled: {reasons:?}"
            ))),
        }
    }

    /// Revokes a key: every copy in one transaction, so from the next
    /// request on each copy a request may read refuses it.
    pub async fn revoke_key(&self, key: &ApiKey) -> Result<(), Error> {
        let now = s(crate::ids::now());
        let items = (0..keys::API_KEY_SHARDS)
            .map(|shard| {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(super::key(
                        keys::api_key_pk(key.project_id(), &key.hash(), shard),
                        keys::API_KEY_SK,
                    )))
                    .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
                    .condition_expression("attribute_exists(PK)")
                    .expression_attribute_values(":now", now.clone())
                    .build();
                Ok(TransactWriteItem::builder().update(build(update)?).build())
            })
            .collect::<Result<Vec<_>, Error>>()?;
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(()),
            outcome if outcome.condition_failed_at(0) => Err(Error::not_found("no such key")),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "revoking a key was cancelled: {reasons:?}"
            ))),
        }
    }

    /// The stored record of a presented key, if it exists: one of its
    /// copies, picked at random. Strongly consistent, so a revocation takes
    /// effect at once.
    pub async fn api_key(&self, key: &ApiKey) -> Result<Option<ApiKeyRecord>, Error> {
        self.api_key_copy(key, random_shard()).await
    }

    /// One copy of a key's record (the tests read every one).
    pub async fn api_key_copy(
        &self,
        key: &ApiKey,
        shard: u32,
    ) -> Result<Option<ApiKeyRecord>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(super::key(
                keys::api_key_pk(key.project_id(), &key.hash(), shard),
                keys::API_KEY_SK,
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// The puts of a new key's copies.
    fn key_copies(&self, key: &ApiKey, now: &str) -> Result<Vec<TransactWriteItem>, Error> {
        let record = key.record(now);
        (0..keys::API_KEY_SHARDS)
            .map(|shard| {
                self.put_new(
                    keys::api_key_pk(key.project_id(), &key.hash(), shard),
                    keys::API_KEY_SK.into(),
                    &record,
                )
            })
            .collect()
    }

    fn put_new<T: Serialize>(
        &self,
        pk: String,
        sk: String,
        record: &T,
    ) -> Result<TransactWriteItem, Error> {
        let item = to_item(&Keyed { pk, sk, record })?;
        Ok(TransactWriteItem::builder()
            .put(build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(PK)")
                    .build(),
            )?)
            .build())
    }
}

/// A copy of a key's record, picked at random (a fault of the random source
/// reads copy 0, which is as valid as any).
fn random_shard() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes) % keys::API_KEY_SHARDS
}
