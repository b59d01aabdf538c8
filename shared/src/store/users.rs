//! Users: upsert by identifiers.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use uuid::Uuid;

use super::organizations::Upserted;
use super::profiles::{to_value, Applied, Profile};
use super::{s, Store};
use crate::domain::{Identifier, IdentifierKey, ProfileUpsert, Scope, SystemEvent, User};
use crate::error::Error;
use crate::keys;

/// The user record's flag: a session signs in as this user.
pub(crate) const SESSION_IDENTITY: &str = "session_identity";

impl Profile for User {
    const NOUN: &'static str = "user";
    const HAS_TIMELINE: bool = false;
    const RECORD_SK: &'static str = keys::USER_SK;
    const MARKER_SK: &'static str = keys::USER_IDENTIFIER_SK;

    fn marker_pk(project: Uuid, key: &IdentifierKey) -> String {
        keys::user_identifier_pk(project, &key.source, &key.external_id)
    }

    fn record_pk(project: Uuid, id: Uuid) -> String {
        keys::user_pk(project, id)
    }

    fn index_attributes(&self) -> Result<Vec<(&'static str, AttributeValue)>, Error> {
        Ok(vec![
            (keys::GSI1PK, s(keys::user_list_pk(self.project_id))),
            (keys::GSI1SK, s(keys::user_list_sk(self.id))),
            // What a publishable key's writes are conditioned on.
            (
                SESSION_IDENTITY,
                AttributeValue::Bool(self.has_session_identity()),
            ),
        ])
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
        (User::create(project, id, upsert, now), None)
    }

    fn apply(&mut self, upsert: &ProfileUpsert, now: &str) -> Result<Applied, Error> {
        Ok(if User::apply(self, upsert, now)? {
            Applied::Changed(None)
        } else {
            Applied::Unchanged
        })
    }

    fn updated_attributes(&self) -> Result<Vec<(&'static str, AttributeValue)>, Error> {
        Ok(vec![
            ("data", to_value(&self.data)?),
            ("identifiers", to_value(&self.identifiers)?),
            ("updated_at", s(&self.updated_at)),
            (
                SESSION_IDENTITY,
                AttributeValue::Bool(self.has_session_identity()),
            ),
        ])
    }

    fn check_scope(&self, scope: Scope) -> Result<(), Error> {
        scope.check_user(self)
    }

    /// A changed last name is copied onto the organizations the user owns,
    /// after the transaction, by a refresh job it writes.
    fn update_writes(&self, table: &str, before: &Self) -> Result<Vec<TransactWriteItem>, Error> {
        if self.last_name() == before.last_name() {
            return Ok(Vec::new());
        }
        Ok(vec![super::owner_names::record_owner_rename(
            table,
            self.project_id,
            self.id,
        )?])
    }
}

impl Store {
    /// Creates the user the identifiers name, or updates it (same rules as
    /// organizations).
    pub async fn upsert_user(
        &self,
        project: Uuid,
        upsert: &ProfileUpsert,
        scope: Scope,
    ) -> Result<Upserted<User>, Error> {
        let (record, created) = self.upsert_record::<User>(project, upsert, scope).await?;
        Ok(Upserted { record, created })
    }

    /// The id of the user a session names (source `session`, its `sub`),
    /// creating the user if the service does not know it yet.
    pub async fn session_user(&self, project: Uuid, external_id: &str) -> Result<Uuid, Error> {
        let spec = crate::domain::IdentifierSpec {
            key: IdentifierKey::session(external_id)?,
            metadata: None,
        };
        let upsert = ProfileUpsert::new(vec![spec], None, None)?;
        Ok(self
            .upsert_record::<User>(project, &upsert, Scope::Project)
            .await?
            .0
            .id)
    }

    pub async fn find_user(&self, project: Uuid, ids: &[IdentifierKey]) -> Result<User, Error> {
        self.find_record::<User>(project, ids).await
    }
}
