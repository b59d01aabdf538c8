//! Membership: the link between a user and an organization, with its own
//! `data` (role, department, …) kept apart from the user's and the
//! organization's.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::data::Data;
use super::profile::merge_changes;
use super::SystemEvent;
use crate::error::Error;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub project_id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    #[serde(default)]
    pub data: Data,
    /// The accounts dialect's role (`owner` | `member`); kept by every
    /// other dialect's writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

pub const OWNER: &str = "owner";
pub const MEMBER: &str = "member";

impl Membership {
    /// The accounts dialect's role: `owner` or `member` (the default).
    pub fn role(&self) -> &str {
        match self.role.as_deref() {
            Some(OWNER) => OWNER,
            _ => MEMBER,
        }
    }

    pub fn is_owner(&self) -> bool {
        self.role() == OWNER
    }

    pub fn create(
        project_id: Uuid,
        organization_id: Uuid,
        user_id: Uuid,
        data: Option<&Data>,
        now: &str,
    ) -> Self {
        let mut initial = Data::new();
        if let Some(patch) = data {
            super::data::merge_data(&mut initial, patch);
        }
        Membership {
            project_id,
            organization_id,
            user_id,
            data: initial,
            role: None,
            version: 1,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// Shallow-merges membership `data`; the `organization.user.updated`
    /// event (what changed), or `None` when nothing changed.
    pub fn apply(&mut self, data: Option<&Data>, now: &str) -> Result<Option<SystemEvent>, Error> {
        let before = self.clone();
        merge_changes(&mut self.data, data, "membership data after merge")?;
        let Some(event) = super::event::member_updated(&before, self) else {
            return Ok(None);
        };
        self.version += 1;
        self.updated_at = now.to_owned();
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn membership_data_merges_shallowly_and_reports_the_change() {
        let now = "2026-01-01T00:00:00.000Z";
        let mut m = Membership::create(
            Uuid::nil(),
            Uuid::nil(),
            Uuid::nil(),
            json!({"role": "admin", "department": "eng"}).as_object(),
            now,
        );
        let updated = m
            .apply(json!({"role": "viewer"}).as_object(), now)
            .unwrap()
            .unwrap();
        assert_eq!(updated.name, super::super::event::MEMBER_UPDATED);
        assert_eq!(
            updated.data["changes"],
            json!({"data.role": {"from": "admin", "to": "viewer"}})
        );
        assert_eq!(
            Value::Object(m.data.clone()),
            json!({"role": "viewer", "department": "eng"})
        );
        assert_eq!(m.version, 2);
        assert_eq!(
            m.apply(json!({"role": "viewer"}).as_object(), now).unwrap(),
            None
        );
    }
}
