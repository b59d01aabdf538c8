//! Users: the people who belong to organizations, named by their own
//! external identifiers and carrying their own `data`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::data::Data;
use super::identifier::{attach_identifiers, new_identifiers, Identifier};
use super::profile::{merge_changes, ProfileUpsert};
use crate::error::Error;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub project_id: Uuid,
    pub identifiers: Vec<Identifier>,
    #[serde(default)]
    pub data: Data,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl User {
    /// Whether a session signs in as this user (an identifier of source
    /// `session`): then only secret keys and that session change it.
    pub fn has_session_identity(&self) -> bool {
        self.identifiers
            .iter()
            .any(|i| i.source == super::identifier::SESSION_SOURCE)
    }

    /// The user's email: `data.email` when it is a string, else the
    /// external id of an identifier whose source is `email`.
    pub fn email(&self) -> Option<&str> {
        self.data.get("email").and_then(|v| v.as_str()).or_else(|| {
            self.identifiers
                .iter()
                .find(|i| i.source == "email")
                .map(|i| i.external_id.as_str())
        })
    }

    pub fn create(project_id: Uuid, id: Uuid, upsert: &ProfileUpsert, now: &str) -> Self {
        User {
            id,
            project_id,
            identifiers: new_identifiers(upsert.identifiers(), now),
            data: upsert.initial_data(),
            version: 1,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// Same rules as organizations: shallow merge, identifiers attached.
    /// Returns whether anything changed.
    pub fn apply(&mut self, upsert: &ProfileUpsert, now: &str) -> Result<bool, Error> {
        let data_changed =
            merge_changes(&mut self.data, upsert.data(), "data after merge")?.is_some();
        let attached = attach_identifiers(&mut self.identifiers, upsert.identifiers(), now)?;
        let changed = data_changed || !attached.added.is_empty() || attached.metadata_changed;
        if changed {
            self.version += 1;
            self.updated_at = now.to_owned();
        }
        Ok(changed)
    }
}
