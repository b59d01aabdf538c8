//! Organizations and how an upsert applies to one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::data::Data;
use super::domains::OrgDomain;
use super::identifier::{attach_identifiers, new_identifiers, Identifier};
use super::profile::{merge_changes, ProfileUpsert};
use super::SystemEvent;
use crate::error::Error;

/// The one organization record every dialect reads and writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: Uuid,
    pub project_id: Uuid,
    pub identifiers: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub data: Data,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    /// Fields only the accounts dialect knows; kept by every other one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<AccountsProfile>,
    /// Fields only the CRM dialect knows; kept by every other one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm: Option<super::crm::CrmProfile>,
    /// Fields only the tenant dialect knows; kept by every other one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<super::tenant::TenantProfile>,
    /// The owners (user id → when they became one): the oldest owner's
    /// email is the billing email when none is set. Changed only together
    /// with the owner's membership, never by a record update.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub owners: BTreeMap<Uuid, String>,
}

/// The accounts dialect's own organization fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountsProfile {
    /// `None`: the oldest owner's email is the billing email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metronome_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_id: Option<String>,
    #[serde(default)]
    pub personal: bool,
    #[serde(default)]
    pub services: Services,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<OrgDomain>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Services {
    #[serde(default)]
    pub cloud: bool,
    #[serde(default)]
    pub jit_provisioning: bool,
    #[serde(default)]
    pub scim: bool,
    #[serde(default)]
    pub siem: bool,
    #[serde(default)]
    pub sso: bool,
}

/// Checks an email address enough to catch mistakes (the mail system is
/// the final judge).
pub fn validate_email(what: &str, email: &str) -> Result<(), Error> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} is not a valid email address"
        )))
    }
}

impl Organization {
    /// Whether a session owns the organization. Owners are made only when a
    /// session creates the organization and can only leave afterwards, so
    /// an organization read without owners never gains one.
    pub fn is_claimed(&self) -> bool {
        !self.owners.is_empty()
    }

    /// The owner who has been one longest, if any.
    pub fn oldest_owner(&self) -> Option<Uuid> {
        self.owners
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
            .map(|(user, _)| *user)
    }

    /// A new organization with no external identifiers (created by a
    /// dialect that names organizations by id).
    pub fn create_named(
        project_id: Uuid,
        name: &str,
        accounts: AccountsProfile,
        now: &str,
    ) -> Result<(Self, SystemEvent), Error> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid("name must not be empty"));
        }
        if name.chars().count() > super::profile::MAX_NAME_LEN {
            return Err(Error::invalid("name is too long"));
        }
        let org = Organization {
            id: crate::ids::new_id(),
            project_id,
            identifiers: Vec::new(),
            name: Some(name.to_owned()),
            data: Data::new(),
            version: 1,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            accounts: Some(accounts),
            owners: BTreeMap::new(),
            crm: None,
            tenant: None,
        };
        let event = super::event::organization_created(&org);
        Ok((org, event))
    }

    /// A new organization from an upsert that matched nothing.
    pub fn create(
        project_id: Uuid,
        id: Uuid,
        upsert: &ProfileUpsert,
        now: &str,
    ) -> (Self, SystemEvent) {
        let org = Organization {
            id,
            project_id,
            identifiers: new_identifiers(upsert.identifiers(), now),
            name: upsert.name().map(str::to_owned),
            data: upsert.initial_data(),
            version: 1,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            accounts: None,
            owners: BTreeMap::new(),
            crm: None,
            tenant: None,
        };
        let event = super::event::organization_created(&org);
        (org, event)
    }

    /// Applies an upsert: `name` replaced when given, `data` shallow-merged,
    /// new identifiers attached and known ones' metadata updated. Returns
    /// the `organization.updated` event (what changed), or `None` when
    /// nothing changed (and then nothing needs writing).
    pub fn apply(
        &mut self,
        upsert: &ProfileUpsert,
        now: &str,
    ) -> Result<Option<SystemEvent>, Error> {
        let before = self.clone();
        if let Some(name) = upsert.name() {
            self.name = Some(name.to_owned());
        }
        merge_changes(&mut self.data, upsert.data(), "data after merge")?;
        attach_identifiers(&mut self.identifiers, upsert.identifiers(), now)?;
        let Some(event) = super::event::organization_updated(&before, self) else {
            *self = before;
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
    use crate::domain::{IdentifierKey, IdentifierSpec};
    use serde_json::{json, Value};

    fn upsert(ids: &[&str], name: Option<&str>, data: Value) -> ProfileUpsert {
        let specs = ids
            .iter()
            .map(|i| IdentifierSpec {
                key: IdentifierKey::parse(None, i).unwrap(),
                metadata: None,
            })
            .collect();
        ProfileUpsert::new(specs, name.map(str::to_owned), data.as_object().cloned()).unwrap()
    }

    #[test]
    fn create_then_merge_keeps_name_and_unmentioned_keys() {
        let now = "2026-01-01T00:00:00.000Z";
        let (mut org, event) = Organization::create(
            Uuid::nil(),
            Uuid::now_v7(),
            &upsert(
                &["acme"],
                Some("Acme"),
                json!({"plan": "free", "region": "na", "gone": null}),
            ),
            now,
        );
        assert_eq!(event.name, super::super::event::ORGANIZATION_CREATED);
        assert_eq!(
            Value::Object(org.data.clone()),
            json!({"plan": "free", "region": "na"})
        );
        assert_eq!(org.version, 1);
        let later = "2026-01-02T00:00:00.000Z";
        let event = org
            .apply(
                &upsert(&["acme"], None, json!({"plan": "enterprise", "arr": 1})),
                later,
            )
            .unwrap()
            .unwrap();
        assert_eq!(event.name, super::super::event::ORGANIZATION_UPDATED);
        assert_eq!(
            Value::Object(event.data),
            json!({"changes": {
                "data.plan": {"from": "free", "to": "enterprise"},
                "data.arr": {"from": null, "to": 1},
            }})
        );
        assert_eq!(org.name.as_deref(), Some("Acme"));
        assert_eq!(
            Value::Object(org.data.clone()),
            json!({"plan": "enterprise", "region": "na", "arr": 1})
        );
        assert_eq!((org.version, org.updated_at.as_str()), (2, later));
    }

    #[test]
    fn the_oldest_owner_is_the_longest_serving_with_ids_breaking_ties() {
        let (mut org, _) = Organization::create_named(
            Uuid::nil(),
            "Acme",
            AccountsProfile::default(),
            "2026-01-01T00:00:00.000Z",
        )
        .unwrap();
        assert_eq!(org.oldest_owner(), None);
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        org.owners.insert(c, "2026-01-03T00:00:00.000Z".into());
        org.owners.insert(b, "2026-01-02T00:00:00.000Z".into());
        assert_eq!(org.oldest_owner(), Some(b));
        org.owners.insert(a, "2026-01-02T00:00:00.000Z".into());
        assert_eq!(org.oldest_owner(), Some(a));
        org.owners.remove(&a);
        org.owners.remove(&b);
        assert_eq!(org.oldest_owner(), Some(c));
    }

    #[test]
    fn an_upsert_that_changes_nothing_is_no_change() {
        let now = "2026-01-01T00:00:00.000Z";
        let u = upsert(&["acme"], Some("Acme"), json!({"plan": "free"}));
        let (mut org, _) = Organization::create(Uuid::nil(), Uuid::now_v7(), &u, now);
        assert_eq!(org.apply(&u, "2026-01-02T00:00:00.000Z").unwrap(), None);
        assert_eq!(org.version, 1);
    }

    #[test]
    fn new_identifiers_are_attached_and_recorded_in_the_event() {
        let now = "2026-01-01T00:00:00.000Z";
        let (mut org, _) = Organization::create(
            Uuid::nil(),
            Uuid::now_v7(),
            &upsert(&["a"], None, Value::Null),
            now,
        );
        let event = org
            .apply(&upsert(&["a", "b"], None, Value::Null), now)
            .unwrap()
            .unwrap();
        assert_eq!(org.identifiers.len(), 2);
        assert_eq!(
            event.data["changes"]["identifiers"],
            json!({
                "from": [{"source": "default", "external_id": "a"}],
                "to": [{"source": "default", "external_id": "a"}, {"source": "default", "external_id": "b"}],
            })
        );
    }
}
