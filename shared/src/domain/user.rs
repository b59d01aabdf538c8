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

    /// The user's last name, which CRM lists ordered by `owner.lastName`
    /// sort the organizations the user owns by: the first string of
    /// `data.lastName`, `data.last_name`, `data.family_name`.
    pub fn last_name(&self) -> Option<&str> {
        ["lastName", "last_name", "family_name"]
            .iter()
            .find_map(|k| self.data.get(*k).and_then(|v| v.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(data: serde_json::Value) -> User {
        User {
            id: Uuid::nil(),
            project_id: Uuid::nil(),
            identifiers: Vec::new(),
            data: data.as_object().cloned().unwrap_or_default(),
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn the_last_name_is_the_first_string_of_its_three_spellings() {
        assert_eq!(user(json!({"lastName": "Maas"})).last_name(), Some("Maas"));
        assert_eq!(
            user(json!({"lastName": 7, "last_name": "Jansen", "family_name": "X"})).last_name(),
            Some("Jansen")
        );
        assert_eq!(user(json!({"family_name": "Ng"})).last_name(), Some("Ng"));
        assert_eq!(user(json!({"name": "Ann"})).last_name(), None);
    }
}
