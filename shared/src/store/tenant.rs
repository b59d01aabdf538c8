//! The tenant dialect's reads and writes: settings in the organization's
//! partition (read with the record in one Query), the project's feature
//! settings document, organizations created with their owner, and member
//! counts.

use aws_sdk_dynamodb::types::builders::{DeleteBuilder, PutBuilder};
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::profiles::record_key;
use super::profiles::MAX_ATTEMPTS;
use super::timeline::{single_event_writes, Sequence, TimelineEvent};
use super::{backoff, build, from_item, key, n, s, Store, TxOutcome};
use crate::domain::changes::Changes;
use crate::domain::event;
use crate::domain::features::FeatureDocument;
use crate::domain::organization::AccountsProfile;
use crate::domain::tenant::{validate_setting_key, validate_setting_value, TenantProfile};
use crate::domain::{IdentifierKey, IdentifierSpec, Organization, ProfileUpsert, Scope};
use crate::error::Error;
use crate::keys;
use crate::limits::{MAX_SETTINGS_BYTES, MAX_SETTINGS_PER_ORGANIZATION};

fn setting_key(project: Uuid, org: Uuid, name: &str) -> super::Item {
    key(keys::org_pk(project, org), keys::setting_sk(name))
}

fn feature_document_key(project: Uuid) -> super::Item {
    key(keys::project_pk(project), keys::FEATURES_SK)
}

fn feature_version_key(project: Uuid) -> super::Item {
    key(
        keys::features_version_pk(project),
        keys::FEATURES_VERSION_SK,
    )
}

/// A stored document's revision and size (its body's bytes).
fn revision_and_bytes(item: Option<&super::Item>) -> Option<(String, usize)> {
    let bytes = item?.get("document")?.as_s().ok()?.len();
    Some((revision(item)?, bytes))
}

/// The revision a document or its version item holds.
fn revision(item: Option<&super::Item>) -> Option<String> {
    item?.get("revision")?.as_s().ok().cloned()
}

/// The feature documents this Lambda instance's in-memory cache holds, by
/// project, each with the revision it was read at. Only ever answered
/// after a strongly consistent read of the revision, so a change is seen
/// by the next request, in every instance.
#[derive(Debug, Default)]
pub(crate) struct FeatureCache {
    documents: std::sync::Mutex<std::collections::HashMap<Uuid, CachedDocument>>,
}

#[derive(Debug)]
struct CachedDocument {
    revision: String,
    document: FeatureDocument,
    bytes: usize,
}

/// Bytes of documents (as stored) the cache holds before it starts over:
/// a document may be 350 KiB, and one instance serves every project.
const FEATURE_CACHE_BYTES: usize = 8 * 1024 * 1024;

impl FeatureCache {
    fn recall(&self, project: Uuid, revision: &str) -> Option<FeatureDocument> {
        let documents = self.documents.lock().ok()?;
        let cached = documents.get(&project)?;
        (cached.revision == revision).then(|| cached.document.clone())
    }

    fn learn(&self, project: Uuid, revision: String, document: &FeatureDocument, bytes: usize) {
        let Ok(mut documents) = self.documents.lock() else {
            return;
        };
        documents.remove(&project);
        if bytes > FEATURE_CACHE_BYTES {
            return;
        }
        let held: usize = documents.values().map(|d| d.bytes).sum();
        if held + bytes > FEATURE_CACHE_BYTES {
            documents.clear();
        }
        documents.insert(
            project,
            CachedDocument {
                revision,
                document: document.clone(),
                bytes,
            },
        );
    }

    fn forget(&self, project: Uuid) {
        if let Ok(mut documents) = self.documents.lock() {
            documents.remove(&project);
        }
    }
}

fn read_feature_document(item: Option<super::Item>) -> Result<Option<FeatureDocument>, Error> {
    let Some(item) = item else {
        return Ok(None);
    };
    let text = item
        .get("document")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| Error::Internal("the feature document has no body".into()))?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| Error::Internal(format!("the stored feature document is invalid: {e}")))
}

/// What one setting takes of the organization's settings room: its key and
/// its value as JSON text.
fn setting_bytes(name: &str, text: &str) -> u64 {
    (name.len() + text.len()) as u64
}

fn number(item: &super::Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .map(|n| n.max(0) as u64)
}

/// A setting as last read: what it takes, and its revision (none on
/// settings written before revisions were kept).
struct StoredSetting {
    bytes: u64,
    revision: Option<String>,
    /// The value, for the event's `from`.
    value: Option<Value>,
}

impl StoredSetting {
    /// `put` only while the setting is as it was read.
    fn unchanged(&self, put: PutBuilder) -> PutBuilder {
        match &self.revision {
            Some(revision) => put
                .condition_expression("revision = :seen")
                .expression_attribute_values(":seen", s(revision)),
            None => {
                put.condition_expression("attribute_exists(PK) AND attribute_not_exists(revision)")
            }
        }
    }

    fn unchanged_delete(&self, delete: DeleteBuilder) -> DeleteBuilder {
        match &self.revision {
            Some(revision) => delete
                .condition_expression("revision = :seen")
                .expression_attribute_values(":seen", s(revision)),
            None => delete
                .condition_expression("attribute_exists(PK) AND attribute_not_exists(revision)"),
        }
    }
}

/// The organization's settings count as last read.
struct SettingsCount {
    settings: u64,
    bytes: u64,
    /// `None`: no count item yet.
    version: Option<u64>,
}

impl SettingsCount {
    /// Replaces the count, only while it is as it was read (every setting
    /// write changes it, so concurrent writes cannot both pass the limit).
    fn replaced(
        &self,
        table: &str,
        project: Uuid,
        org: Uuid,
        settings: u64,
        bytes: u64,
    ) -> Result<TransactWriteItem, Error> {
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key(
                keys::org_pk(project, org),
                keys::SETTING_COUNT_SK,
            )))
            .update_expression("SET #count = :count, #bytes = :bytes, #version = :next")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#bytes", "bytes")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":count", n(settings))
            .expression_attribute_values(":bytes", n(bytes))
            .expression_attribute_values(":next", n(self.version.unwrap_or(0) + 1));
        let update = match self.version {
            Some(version) => update
                .condition_expression("#version = :seen")
                .expression_attribute_values(":seen", n(version)),
            None => update.condition_expression("attribute_not_exists(#version)"),
        };
        Ok(TransactWriteItem::builder()
            .update(build(update.build())?)
            .build())
    }
}

/// An organization with its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct WithSettings {
    pub organization: Organization,
    pub settings: Map<String, Value>,
}

/// Who a new tenant organization's owner is.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOwner {
    pub email: String,
    pub full_name: Option<String>,
}

impl Store {
    /// The organization and all its settings: one Query (`None` when the
    /// organization does not exist).
    pub async fn organization_with_settings(
        &self,
        project: Uuid,
        org: Uuid,
    ) -> Result<Option<WithSettings>, Error> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :org AND :end")
            .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
            .expression_attribute_values(":org", s(keys::ORG_SK))
            .expression_attribute_values(":end", s(keys::SETTINGS_END))
            .consistent_read(true);
        let mut organization = None;
        let mut settings = Map::new();
        for item in self.query_all(query).await? {
            let sk = super::text(&item, keys::SK).to_owned();
            if sk == keys::ORG_SK {
                organization = Some(from_item(item)?);
            } else if sk.starts_with(keys::SETTING_PREFIX) {
                #[derive(serde::Deserialize)]
                struct Setting {
                    name: String,
                    value: String,
                }
                let setting: Setting = from_item(item)?;
                let value = serde_json::from_str(&setting.value)
                    .map_err(|e| Error::Internal(format!("a stored setting is not JSON: {e}")))?;
                settings.insert(setting.name, value);
            }
        }
        Ok(organization.map(|organization| WithSettings {
            organization,
            settings,
        }))
    }

    /// Sets one setting: one read (the setting and the organization's
    /// settings count) and one transaction, held by the organization
    /// existing, with its `organization.updated` event. 422 when the
    /// organization would hold more than [`MAX_SETTINGS_PER_ORGANIZATION`]
    /// settings or [`MAX_SETTINGS_BYTES`] in all.
    pub async fn put_setting(
        &self,
        project: Uuid,
        org: Uuid,
        name: &str,
        value: &Value,
    ) -> Result<(), Error> {
        validate_setting_key(name)?;
        validate_setting_value(value)?;
        // Kept as JSON text: exactly what was put comes back (number
        // forms, key order), whatever DynamoDB's types would make of it.
        let text = value.to_string();
        let bytes = setting_bytes(name, &text);
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let (old, count, sequence) = self.setting_and_count(project, org, name).await?;
            let before = old.as_ref().and_then(|o| o.value.as_ref());
            // The same value again changes nothing: no write, no event (a
            // setting exists only while its organization does).
            let Some(event) = event::changed(Changes::setting(name, before, Some(value))) else {
                return Ok(());
            };
            let settings = count.settings + u64::from(old.is_none());
            let total = count
                .bytes
                .saturating_sub(old.as_ref().map_or(0, |o| o.bytes))
                + bytes;
            if settings > u64::from(MAX_SETTINGS_PER_ORGANIZATION) {
                return Err(Error::LimitExceeded(format!(
                    "the organization already has {MAX_SETTINGS_PER_ORGANIZATION} settings, the most one may; delete one first"
                )));
            }
            if total > MAX_SETTINGS_BYTES {
                return Err(Error::LimitExceeded(format!(
                    "the organization's settings would hold {total} bytes (keys and values as JSON); at most {MAX_SETTINGS_BYTES} are allowed in all"
                )));
            }
            let now = crate::ids::now();
            let mut item = setting_key(project, org, name);
            item.insert("name".into(), s(name));
            item.insert("value".into(), s(&text));
            item.insert("bytes".into(), n(bytes));
            item.insert("revision".into(), s(crate::ids::new_id().to_string()));
            item.insert("updated_at".into(), s(&now));
            let put = Put::builder().table_name(&self.table).set_item(Some(item));
            let put = match &old {
                None => put.condition_expression("attribute_not_exists(PK)"),
                Some(old) => old.unchanged(put),
            };
            let mut items = vec![
                self.org_exists(project, org)?,
                TransactWriteItem::builder()
                    .put(build(put.build())?)
                    .build(),
                count.replaced(&self.table, project, org, settings, total)?,
            ];
            items.extend(single_event_writes(
                &self.table,
                project,
                org,
                &TimelineEvent::system(event, &now),
                sequence,
            )?);
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(()),
                outcome if outcome.condition_failed_at(0) => {
                    return Err(Error::not_found(format!(
                        "no organization has the id {org}"
                    )))
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "setting lost a race; retrying");
                }
            }
        }
        Err(Error::busy(
            "the organization's settings are being changed concurrently; retry the request",
        ))
    }

    /// Removes one setting (a setting that is not there: nothing to do),
    /// giving its room back.
    pub async fn delete_setting(&self, project: Uuid, org: Uuid, name: &str) -> Result<(), Error> {
        validate_setting_key(name)?;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let (old, count, sequence) = self.setting_and_count(project, org, name).await?;
            let now = crate::ids::now();
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(setting_key(project, org, name)));
            let mut items = vec![self.org_exists(project, org)?];
            match &old {
                Some(old) => {
                    items.push(
                        TransactWriteItem::builder()
                            .delete(build(old.unchanged_delete(delete).build())?)
                            .build(),
                    );
                    items.push(count.replaced(
                        &self.table,
                        project,
                        org,
                        count.settings.saturating_sub(1),
                        count.bytes.saturating_sub(old.bytes),
                    )?);
                    let changes = Changes::setting(name, old.value.as_ref(), None);
                    if let Some(event) = event::changed(changes) {
                        items.extend(single_event_writes(
                            &self.table,
                            project,
                            org,
                            &TimelineEvent::system(event, &now),
                            sequence,
                        )?);
                    }
                }
                // Nothing there: nothing changes, no event — as long as
                // the organization exists and the setting is still absent
                // (one put meanwhile: read again, then delete it).
                None => items.push(
                    TransactWriteItem::builder()
                        .condition_check(build(
                            ConditionCheck::builder()
                                .table_name(&self.table)
                                .set_key(Some(setting_key(project, org, name)))
                                .condition_expression("attribute_not_exists(PK)")
                                .build(),
                        )?)
                        .build(),
                ),
            }
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(()),
                outcome if outcome.condition_failed_at(0) => {
                    return Err(Error::not_found(format!(
                        "no organization has the id {org}"
                    )))
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "setting lost a race; retrying");
                }
            }
        }
        Err(Error::busy(
            "the organization's settings are being changed concurrently; retry the request",
        ))
    }

    /// The setting as stored (if any) and the organization's settings
    /// count: one strongly consistent `BatchGetItem`.
    async fn setting_and_count(
        &self,
        project: Uuid,
        org: Uuid,
        name: &str,
    ) -> Result<(Option<StoredSetting>, SettingsCount, Sequence), Error> {
        let setting = setting_key(project, org, name);
        let count = key(keys::org_pk(project, org), keys::SETTING_COUNT_SK);
        let (fetched, sequence) = self
            .fetch_with_sequence(project, org, vec![setting.clone(), count.clone()])
            .await?;
        let old = fetched.item(&setting).map(|item| StoredSetting {
            bytes: number(&item, "bytes")
                .unwrap_or_else(|| setting_bytes(name, super::text(&item, "value"))),
            revision: item.get("revision").and_then(|v| v.as_s().ok()).cloned(),
            value: serde_json::from_str(super::text(&item, "value")).ok(),
        });
        let count = fetched.item(&count);
        let count = SettingsCount {
            settings: count.as_ref().and_then(|i| number(i, "count")).unwrap_or(0),
            bytes: count.as_ref().and_then(|i| number(i, "bytes")).unwrap_or(0),
            version: count.as_ref().and_then(|i| number(i, "version")),
        };
        Ok((old, count, sequence))
    }

    /// The project's feature settings document, if one was imported: its
    /// revision (one tiny strongly consistent read), then the document
    /// only when this instance has not read that revision yet.
    pub async fn feature_document(&self, project: Uuid) -> Result<Option<FeatureDocument>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(feature_version_key(project)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        self.feature_document_at(project, revision(out.item.as_ref()))
            .await
    }

    /// The document at `revision` (`None`: none was imported), from this
    /// instance's cache or read (strongly consistent) and kept.
    async fn feature_document_at(
        &self,
        project: Uuid,
        revision: Option<String>,
    ) -> Result<Option<FeatureDocument>, Error> {
        let Some(revision) = revision else {
            self.feature_cache.forget(project);
            return Ok(None);
        };
        if let Some(document) = self.feature_cache.recall(project, &revision) {
            return Ok(Some(document));
        }
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(feature_document_key(project)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        let read = revision_and_bytes(out.item.as_ref());
        let document = read_feature_document(out.item)?;
        if let (Some(document), Some((revision, bytes))) = (&document, read) {
            self.feature_cache.learn(project, revision, document, bytes);
        }
        Ok(document)
    }

    /// A session's user's membership in an organization and the project's
    /// feature document: the document's revision joins the one
    /// `BatchGetItem` that resolves the user (when this container knows
    /// the user's id, else one more read); the document is read only when
    /// this instance has not read that revision yet.
    pub async fn session_membership_and_features(
        &self,
        project: Uuid,
        org: Uuid,
        external_id: &str,
    ) -> Result<(Option<crate::domain::Membership>, Option<FeatureDocument>), Error> {
        let version = feature_version_key(project);
        let (membership, fetched) = self
            .session_membership_with(project, org, external_id, vec![version.clone()])
            .await?;
        let document = self
            .feature_document_at(project, revision(fetched.item(&version).as_ref()))
            .await?;
        Ok((membership, document))
    }

    /// Replaces the project's feature settings document (checked first),
    /// and its revision in the same transaction, so every instance reads
    /// the new document from its next request on.
    pub async fn put_feature_document(
        &self,
        project: Uuid,
        document: &FeatureDocument,
    ) -> Result<(), Error> {
        document.validate()?;
        let text = serde_json::to_string(document)
            .map_err(|e| Error::Internal(format!("serialising the feature document: {e}")))?;
        if text.len() > 350 * 1024 {
            return Err(Error::PayloadTooLarge(
                "the feature document is larger than 350 KiB".into(),
            ));
        }
        let (revision, now) = (crate::ids::new_id().to_string(), crate::ids::now());
        let mut item = feature_document_key(project);
        item.insert("document".into(), s(text));
        item.insert("revision".into(), s(&revision));
        item.insert("updated_at".into(), s(&now));
        let mut version = feature_version_key(project);
        version.insert("revision".into(), s(&revision));
        version.insert("updated_at".into(), s(&now));
        let puts = [item, version]
            .into_iter()
            .map(|item| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build();
                Ok(TransactWriteItem::builder().put(build(put)?).build())
            })
            .collect::<Result<Vec<_>, Error>>()?;
        match self.transact(puts).await? {
            TxOutcome::Committed => Ok(()),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "replacing the feature document was cancelled: {reasons:?}"
            ))),
        }
    }

    /// Creates a tenant organization and its owner: the owner is the user
    /// named by the email (source `email`), made if new, and becomes the
    /// organization's owner in the organization's creating transaction.
    pub async fn create_tenant_organization(
        &self,
        project: Uuid,
        name: &str,
        tenant: TenantProfile,
        owner: Option<&NewOwner>,
    ) -> Result<Organization, Error> {
        let owner_id = match owner {
            Some(owner) => {
                let mut data = Map::new();
                data.insert("email".into(), Value::String(owner.email.clone()));
                if let Some(full_name) = &owner.full_name {
                    data.insert("full_name".into(), Value::String(full_name.clone()));
                }
                let spec = IdentifierSpec {
                    key: IdentifierKey::parse(Some("email"), &owner.email.to_lowercase())?,
                    metadata: None,
                };
                let upsert = ProfileUpsert::new(vec![spec], None, Some(data))?;
                Some(
                    self.upsert_user(project, &upsert, Scope::Project)
                        .await?
                        .record
                        .id,
                )
            }
            None => None,
        };
        self.create_organization_with(project, name, AccountsProfile::default(), owner_id, |org| {
            org.tenant = Some(tenant);
        })
        .await
    }

    /// The organization and its member count: one `BatchGetItem`.
    pub async fn organization_with_members(
        &self,
        project: Uuid,
        org: Uuid,
    ) -> Result<Option<(Organization, u64)>, Error> {
        let count_key = key(keys::org_pk(project, org), keys::MEMBER_COUNT_SK);
        let fetched = self
            .fetch(vec![
                record_key::<Organization>(project, org),
                count_key.clone(),
            ])
            .await?;
        let Some(organization) = fetched.record::<Organization>(project, org)? else {
            return Ok(None);
        };
        let members = fetched
            .item(&count_key)
            .and_then(|i| i.get("members").and_then(|v| v.as_n().ok()).cloned())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as u64;
        Ok(Some((organization, members)))
    }
}
