//! What a change did to a record: every field whose value differs between
//! the record before and after, as `{"from": …, "to": …}` under a name that
//! is the same whichever dialect made the change (README "Events").
//!
//! Field names: `name`, `identifiers`, `data.<key>` (custom data, one entry
//! per top-level key), `accounts.<field>`, `crm.<field>` and
//! `tenant.<field>` (the fields only one dialect knows, by the record's own
//! names), `address.<field>` (the postal address) and `settings.<key>` (a
//! tenant setting). A field that was absent reads `null` on its side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::address::Address;
use super::data::Data;
use super::event::EventIdentifier;
use super::{Membership, Organization};
use crate::limits::MAX_EVENT_CHANGES_BYTES;

/// One field's change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = EventFieldChange)]
pub enum FieldChange {
    /// The value before and after (`null`: absent).
    Values { from: Value, to: Value },
    /// Too large to carry: the sizes (JSON bytes) of both sides; read the
    /// record for its value.
    Truncated {
        truncated: bool,
        from_bytes: usize,
        to_bytes: usize,
    },
}

/// The changed fields of one record, by field name: `name`,
/// `identifiers`, `data.<key>`, `accounts.<field>`, `crm.<field>`,
/// `tenant.<field>`, `address.<field>`, `settings.<key>`; for a membership
/// `data.<key>` and `role`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(as = EventChanges)]
pub struct Changes(BTreeMap<String, FieldChange>);

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&FieldChange> {
        self.0.get(field)
    }

    /// Records `field` unless both sides are equal (`null` is absent).
    fn record(&mut self, field: String, from: Value, to: Value) {
        if from != to {
            self.0.insert(field, FieldChange::Values { from, to });
        }
    }

    /// Each field of two flattened records that differs.
    fn fields(&mut self, before: Map<String, Value>, mut after: Map<String, Value>) {
        for (field, from) in before {
            let to = after.remove(&field).unwrap_or(Value::Null);
            self.record(field, from, to);
        }
        for (field, to) in after {
            self.record(field, Value::Null, to);
        }
    }

    /// What changed between two versions of an organization's record:
    /// everything but its bookkeeping (`id`, `version`, timestamps) and its
    /// owners (which change with a membership, and say so in its event).
    pub fn organization(before: &Organization, after: &Organization) -> Self {
        let mut changes = Self::default();
        changes.fields(organization_fields(before), organization_fields(after));
        changes.bounded(MAX_EVENT_CHANGES_BYTES)
    }

    /// Every field of a new organization, from `null`.
    pub fn created(org: &Organization) -> Self {
        let mut changes = Self::default();
        changes.fields(Map::new(), organization_fields(org));
        changes.bounded(MAX_EVENT_CHANGES_BYTES)
    }

    /// What changed in a membership: its `data` keys and its role.
    pub fn membership(before: &Membership, after: &Membership) -> Self {
        let mut changes = Self::default();
        changes.fields(membership_fields(before), membership_fields(after));
        changes.bounded(MAX_EVENT_CHANGES_BYTES)
    }

    /// An organization's postal address set, changed or removed.
    pub fn address(before: Option<&Address>, after: Option<&Address>) -> Self {
        let mut changes = Self::default();
        changes.fields(address_fields(before), address_fields(after));
        changes.bounded(MAX_EVENT_CHANGES_BYTES)
    }

    /// One tenant setting put (`Some`) or deleted (`None`).
    pub fn setting(name: &str, before: Option<&Value>, after: Option<&Value>) -> Self {
        let mut changes = Self::default();
        changes.record(
            format!("settings.{name}"),
            before.cloned().unwrap_or(Value::Null),
            after.cloned().unwrap_or(Value::Null),
        );
        changes.bounded(MAX_EVENT_CHANGES_BYTES)
    }

    /// Truncates the largest values until the changes hold at most
    /// `budget` bytes as JSON (small changes always come whole).
    fn bounded(mut self, budget: usize) -> Self {
        let mut sizes: Vec<(usize, String)> = self
            .0
            .iter()
            .map(|(field, change)| (json_len(change) + field.len() + 4, field.clone()))
            .collect();
        let mut total: usize = sizes.iter().map(|(size, _)| size).sum::<usize>() + 2;
        // Largest first; ties by name, so the same change truncates alike.
        sizes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (size, field) in sizes {
            if total <= budget {
                break;
            }
            let Some(FieldChange::Values { from, to }) = self.0.get(&field) else {
                continue;
            };
            let marker = FieldChange::Truncated {
                truncated: true,
                from_bytes: json_len(from),
                to_bytes: json_len(to),
            };
            total = total - size + json_len(&marker) + field.len() + 4;
            self.0.insert(field, marker);
        }
        self
    }

    /// The event data `{"changes": {…}}`.
    pub fn into_data(self) -> Data {
        let mut data = Data::new();
        data.insert("changes".into(), json!(self));
        data
    }
}

fn json_len(value: &impl Serialize) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}

/// A value's top-level fields under `prefix.` (absent and `null` fields
/// left out: both read `null`).
fn prefixed(prefix: &str, value: &impl Serialize, into: &mut Map<String, Value>) {
    if let Ok(Value::Object(fields)) = serde_json::to_value(value) {
        for (field, value) in fields {
            if !value.is_null() {
                into.insert(format!("{prefix}.{field}"), value);
            }
        }
    }
}

fn organization_fields(org: &Organization) -> Map<String, Value> {
    let mut fields = Map::new();
    if let Some(name) = &org.name {
        fields.insert("name".into(), json!(name));
    }
    if !org.identifiers.is_empty() {
        fields.insert(
            "identifiers".into(),
            org.identifiers
                .iter()
                .map(|i| json!(EventIdentifier::from(i)))
                .collect(),
        );
    }
    prefixed("data", &org.data, &mut fields);
    // A dialect's profile that was never written reads as its defaults, so
    // writing the defaults is no change.
    prefixed(
        "accounts",
        &org.accounts.clone().unwrap_or_default(),
        &mut fields,
    );
    prefixed("crm", &org.crm.clone().unwrap_or_default(), &mut fields);
    prefixed(
        "tenant",
        &org.tenant.clone().unwrap_or_default(),
        &mut fields,
    );
    fields
}

fn membership_fields(membership: &Membership) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("role".into(), json!(membership.role()));
    prefixed("data", &membership.data, &mut fields);
    fields
}

fn address_fields(address: Option<&Address>) -> Map<String, Value> {
    let mut fields = Map::new();
    let Some(address) = address else {
        return fields;
    };
    prefixed("address", address, &mut fields);
    for bookkeeping in [
        "id",
        "organization_id",
        "version",
        "created_at",
        "updated_at",
    ] {
        fields.remove(&format!("address.{bookkeeping}"));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crm::CrmProfile;
    use crate::domain::identifier::Identifier;
    use crate::domain::organization::AccountsProfile;
    use crate::domain::tenant::{StoredLogo, TenantProfile};
    use std::collections::BTreeMap as Owners;
    use uuid::Uuid;

    fn org() -> Organization {
        Organization {
            id: Uuid::nil(),
            project_id: Uuid::nil(),
            identifiers: Vec::new(),
            name: Some("Acme".into()),
            data: json!({"plan": "free", "region": "eu"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            version: 1,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
            accounts: None,
            crm: None,
            tenant: None,
            owners: Owners::new(),
        }
    }

    fn value(changes: &Changes) -> Value {
        json!(changes)
    }

    #[test]
    fn every_family_field_that_differs_is_a_change_and_nothing_else() {
        let before = org();
        let mut after = before.clone();
        after.version = 7;
        after.updated_at = "2026-02-01T00:00:00.000Z".into();
        after
            .owners
            .insert(Uuid::nil(), "2026-02-01T00:00:00.000Z".into());
        assert!(
            Changes::organization(&before, &after).is_empty(),
            "bookkeeping and owners are no change"
        );
        after.name = Some("Acme Inc".into());
        after.data.insert("plan".into(), json!("enterprise"));
        after.data.remove("region");
        after.data.insert("seats".into(), json!(10));
        after.accounts = Some(AccountsProfile {
            billing_email: Some("billing@acme.test".into()),
            ..AccountsProfile::default()
        });
        after.crm = Some(CrmProfile {
            website: Some("https://acme.test".into()),
            tags: vec!["vip".into()],
            ..CrmProfile::default()
        });
        after.tenant = Some(TenantProfile {
            kind: Some("Vendor".into()),
            logo: Some(StoredLogo {
                key: "logos/a.png".into(),
                thumbnail_key: "logos/a-thumbnail.png".into(),
                content_type: "image/png".into(),
            }),
            ..TenantProfile::default()
        });
        assert_eq!(
            value(&Changes::organization(&before, &after)),
            json!({
                "name": {"from": "Acme", "to": "Acme Inc"},
                "data.plan": {"from": "free", "to": "enterprise"},
                "data.region": {"from": "eu", "to": null},
                "data.seats": {"from": null, "to": 10},
                "accounts.billing_email": {"from": null, "to": "billing@acme.test"},
                "crm.website": {"from": null, "to": "https://acme.test"},
                "crm.tags": {"from": null, "to": ["vip"]},
                "tenant.type": {"from": null, "to": "Vendor"},
                "tenant.logo": {"from": null, "to": {"key": "logos/a.png", "thumbnail_key": "logos/a-thumbnail.png", "content_type": "image/png"}},
            })
        );
    }

    #[test]
    fn a_profile_written_with_its_defaults_is_no_change() {
        let before = org();
        let mut after = before.clone();
        after.accounts = Some(AccountsProfile::default());
        after.crm = Some(CrmProfile::default());
        after.tenant = Some(TenantProfile::default());
        assert!(Changes::organization(&before, &after).is_empty());
        after.accounts = Some(AccountsProfile {
            personal: true,
            ..AccountsProfile::default()
        });
        assert_eq!(
            value(&Changes::organization(&before, &after)),
            json!({"accounts.personal": {"from": false, "to": true}})
        );
    }

    #[test]
    fn identifiers_show_what_names_the_record_not_its_bookkeeping() {
        let before = org();
        let mut after = before.clone();
        after.identifiers.push(Identifier {
            id: Uuid::nil(),
            source: "crm".into(),
            external_id: "acme".into(),
            metadata: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
        });
        assert_eq!(
            value(&Changes::organization(&before, &after)),
            json!({"identifiers": {"from": null, "to": [{"source": "crm", "external_id": "acme"}]}})
        );
        let mut later = after.clone();
        later.identifiers[0].updated_at = "2026-03-01T00:00:00.000Z".into();
        assert!(Changes::organization(&after, &later).is_empty());
    }

    #[test]
    fn a_created_organization_is_every_field_from_null() {
        assert_eq!(
            value(&Changes::created(&org())),
            json!({
                "name": {"from": null, "to": "Acme"},
                "data.plan": {"from": null, "to": "free"},
                "data.region": {"from": null, "to": "eu"},
                "accounts.personal": {"from": null, "to": false},
                "accounts.services": {"from": null, "to": {"cloud": false, "jit_provisioning": false, "scim": false, "siem": false, "sso": false}},
            })
        );
    }

    #[test]
    fn membership_data_and_role_changes() {
        let before = Membership::create(
            Uuid::nil(),
            Uuid::nil(),
            Uuid::nil(),
            json!({"role": "admin", "team": "eng"}).as_object(),
            "2026-01-01T00:00:00.000Z",
        );
        let mut after = before.clone();
        after.data.insert("role".into(), json!("viewer"));
        after.data.remove("team");
        after.role = Some("owner".into());
        assert_eq!(
            value(&Changes::membership(&before, &after)),
            json!({
                "data.role": {"from": "admin", "to": "viewer"},
                "data.team": {"from": "eng", "to": null},
                "role": {"from": "member", "to": "owner"},
            })
        );
    }

    #[test]
    fn address_and_setting_changes() {
        let change = crate::domain::address::AddressChange {
            line1: crate::domain::address::Change::Set("1 Main St".into()),
            city: crate::domain::address::Change::Set("Berlin".into()),
            postal_code: crate::domain::address::Change::Set("10115".into()),
            country: crate::domain::address::Change::Set("DE".into()),
            ..Default::default()
        };
        let now = "2026-01-01T00:00:00.000Z";
        let first = Address::apply(None, Uuid::nil(), &change, now).unwrap();
        assert_eq!(
            value(&Changes::address(None, Some(&first))),
            json!({
                "address.line1": {"from": null, "to": "1 Main St"},
                "address.city": {"from": null, "to": "Berlin"},
                "address.postal_code": {"from": null, "to": "10115"},
                "address.country": {"from": null, "to": "DE"},
            })
        );
        assert_eq!(
            value(&Changes::setting("locale", None, Some(&json!("de")))),
            json!({"settings.locale": {"from": null, "to": "de"}})
        );
        assert!(Changes::setting("locale", Some(&json!(1)), Some(&json!(1))).is_empty());
        assert_eq!(
            value(&Changes::setting("locale", Some(&json!("de")), None)),
            json!({"settings.locale": {"from": "de", "to": null}})
        );
    }

    #[test]
    fn large_values_are_truncated_largest_first_until_the_changes_fit() {
        let big = "x".repeat(40_000);
        let before = org();
        let mut after = before.clone();
        after.data.insert("a".into(), json!(big));
        after.data.insert("b".into(), json!(format!("{big}yy")));
        after.data.insert("small".into(), json!(1));
        let changes = Changes::organization(&before, &after);
        assert!(json_len(&changes) <= MAX_EVENT_CHANGES_BYTES);
        assert_eq!(
            changes.get("data.b"),
            Some(&FieldChange::Truncated {
                truncated: true,
                from_bytes: 4,
                to_bytes: 40_004
            }),
            "the largest goes first"
        );
        assert_eq!(
            changes.get("data.a"),
            Some(&FieldChange::Values {
                from: Value::Null,
                to: json!(big)
            }),
            "what fits once the largest is out stays whole"
        );
        assert_eq!(
            changes.get("data.small"),
            Some(&FieldChange::Values {
                from: Value::Null,
                to: json!(1)
            })
        );
    }
}
