//! Organizations, their external identifiers, and how an upsert applies.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::data::{check_limits, merge_data, Data};
use crate::error::Error;

pub const DEFAULT_SOURCE: &str = "default";
pub const MAX_IDENTIFIER_LEN: usize = 255;
pub const MAX_IDENTIFIERS_PER_REQUEST: usize = 20;
pub const MAX_NAME_LEN: usize = 1024;

/// `(source, external_id)`: how a client names an organization.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentifierKey {
    pub source: String,
    pub external_id: String,
}

impl IdentifierKey {
    /// Validates one identifier as a client sent it; `source` defaults to
    /// `"default"`.
    pub fn parse(source: Option<&str>, external_id: &str) -> Result<Self, Error> {
        let source = source.unwrap_or(DEFAULT_SOURCE);
        if external_id.is_empty() {
            return Err(Error::invalid("identifier external_id must not be empty"));
        }
        if source.is_empty() {
            return Err(Error::invalid(
                "identifier source must not be empty (omit it for \"default\")",
            ));
        }
        for (what, value) in [("external_id", external_id), ("source", source)] {
            if value.chars().count() > MAX_IDENTIFIER_LEN {
                return Err(Error::invalid(format!(
                    "identifier {what} is longer than {MAX_IDENTIFIER_LEN} characters"
                )));
            }
        }
        Ok(Self {
            source: source.to_owned(),
            external_id: external_id.to_owned(),
        })
    }
}

impl std::fmt::Display for IdentifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.source, self.external_id)
    }
}

/// An identifier as requested: its key and optional metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentifierSpec {
    pub key: IdentifierKey,
    pub metadata: Option<Data>,
}

/// An identifier as stored on its organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identifier {
    pub id: Uuid,
    pub source: String,
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Data>,
    pub created_at: String,
    pub updated_at: String,
}

impl Identifier {
    pub fn key(&self) -> IdentifierKey {
        IdentifierKey {
            source: self.source.clone(),
            external_id: self.external_id.clone(),
        }
    }
}

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
}

/// A validated create-or-update request, whatever dialect it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct OrganizationUpsert {
    identifiers: Vec<IdentifierSpec>,
    name: Option<String>,
    data: Option<Data>,
}

/// An event the service itself emits, written in the same transaction as
/// the change it describes.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemEvent {
    pub name: &'static str,
    pub data: Data,
}

pub fn validate_identifiers(specs: Vec<IdentifierSpec>) -> Result<Vec<IdentifierSpec>, Error> {
    if specs.is_empty() {
        return Err(Error::invalid("at least one identifier is required"));
    }
    if specs.len() > MAX_IDENTIFIERS_PER_REQUEST {
        return Err(Error::invalid(format!(
            "at most {MAX_IDENTIFIERS_PER_REQUEST} identifiers are allowed in one request"
        )));
    }
    // The same identifier twice is one identifier; its last metadata wins.
    let mut unique: Vec<IdentifierSpec> = Vec::with_capacity(specs.len());
    for spec in specs {
        match unique.iter_mut().find(|u| u.key == spec.key) {
            Some(existing) => {
                if spec.metadata.is_some() {
                    existing.metadata = spec.metadata;
                }
            }
            None => unique.push(spec),
        }
    }
    Ok(unique)
}

impl OrganizationUpsert {
    pub fn new(
        identifiers: Vec<IdentifierSpec>,
        name: Option<String>,
        data: Option<Data>,
    ) -> Result<Self, Error> {
        let identifiers = validate_identifiers(identifiers)?;
        if let Some(name) = &name {
            if name.chars().count() > MAX_NAME_LEN {
                return Err(Error::invalid(format!(
                    "name is longer than {MAX_NAME_LEN} characters"
                )));
            }
        }
        if let Some(data) = &data {
            check_limits("data", data)?;
        }
        Ok(Self {
            identifiers,
            name,
            data,
        })
    }

    pub fn identifiers(&self) -> &[IdentifierSpec] {
        &self.identifiers
    }
}

impl Organization {
    /// A new organization from an upsert that matched nothing.
    pub fn create(
        project_id: Uuid,
        id: Uuid,
        upsert: &OrganizationUpsert,
        now: &str,
    ) -> (Self, SystemEvent) {
        let mut data = Data::new();
        if let Some(patch) = &upsert.data {
            merge_data(&mut data, patch);
        }
        let identifiers = upsert
            .identifiers
            .iter()
            .map(|spec| new_identifier(spec, now))
            .collect();
        let org = Organization {
            id,
            project_id,
            identifiers,
            name: upsert.name.clone(),
            data,
            version: 1,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        };
        let event = SystemEvent {
            name: "organization.created",
            data: object(json!({ "name": org.name, "data": org.data })),
        };
        (org, event)
    }

    /// Applies an upsert to this organization: `name` replaced when given,
    /// `data` shallow-merged, new identifiers attached and known ones'
    /// metadata updated. Returns the `organization.updated` event, or `None`
    /// when nothing changed (and then nothing needs writing).
    pub fn apply(
        &mut self,
        upsert: &OrganizationUpsert,
        now: &str,
    ) -> Result<Option<SystemEvent>, Error> {
        let mut changes = Data::new();
        if let Some(name) = &upsert.name {
            if self.name.as_deref() != Some(name) {
                self.name = Some(name.clone());
                changes.insert("name".into(), Value::String(name.clone()));
            }
        }
        if let Some(patch) = &upsert.data {
            let mut data = self.data.clone();
            if merge_data(&mut data, patch) {
                check_limits("data after merge", &data)?;
                let changed: Data = patch
                    .iter()
                    .filter(|(k, v)| {
                        self.data.get(*k) != data.get(*k)
                            || (v.is_null() && self.data.contains_key(*k))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.data = data;
                changes.insert("data".into(), Value::Object(changed));
            }
        }
        let mut added = Vec::new();
        let mut identifiers_changed = false;
        for spec in &upsert.identifiers {
            match self.identifiers.iter_mut().find(|i| i.key() == spec.key) {
                Some(known) => {
                    if spec.metadata.is_some() && known.metadata != spec.metadata {
                        known.metadata = spec.metadata.clone();
                        known.updated_at = now.to_owned();
                        identifiers_changed = true;
                    }
                }
                None => {
                    added.push(
                        json!({"source": spec.key.source, "external_id": spec.key.external_id}),
                    );
                    self.identifiers.push(new_identifier(spec, now));
                }
            }
        }
        if !added.is_empty() {
            changes.insert("identifiers_added".into(), Value::Array(added));
        }
        if changes.is_empty() && !identifiers_changed {
            return Ok(None);
        }
        self.version += 1;
        self.updated_at = now.to_owned();
        Ok(Some(SystemEvent {
            name: "organization.updated",
            data: changes,
        }))
    }

    /// The identifiers this upsert adds (they need new uniqueness markers).
    pub fn new_identifier_keys<'a>(
        &self,
        upsert: &'a OrganizationUpsert,
    ) -> Vec<&'a IdentifierKey> {
        upsert
            .identifiers
            .iter()
            .map(|s| &s.key)
            .filter(|k| !self.identifiers.iter().any(|i| &i.key() == *k))
            .collect()
    }
}

fn new_identifier(spec: &IdentifierSpec, now: &str) -> Identifier {
    Identifier {
        id: crate::ids::new_id(),
        source: spec.key.source.clone(),
        external_id: spec.key.external_id.clone(),
        metadata: spec.metadata.clone(),
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    }
}

fn object(value: Value) -> Data {
    match value {
        Value::Object(map) => map,
        _ => Data::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ext: &str) -> IdentifierSpec {
        IdentifierSpec {
            key: IdentifierKey::parse(None, ext).unwrap(),
            metadata: None,
        }
    }

    fn upsert(ids: &[&str], name: Option<&str>, data: Value) -> OrganizationUpsert {
        OrganizationUpsert::new(
            ids.iter().map(|i| key(i)).collect(),
            name.map(str::to_owned),
            data.as_object().cloned(),
        )
        .unwrap()
    }

    #[test]
    fn identifiers_are_validated_and_deduplicated() {
        assert!(IdentifierKey::parse(None, "").is_err());
        assert!(IdentifierKey::parse(Some(""), "a").is_err());
        assert!(IdentifierKey::parse(None, &"x".repeat(256)).is_err());
        assert_eq!(IdentifierKey::parse(None, "a").unwrap().source, "default");
        assert!(OrganizationUpsert::new(vec![], None, None).is_err());
        let u = upsert(&["a", "a", "b"], None, Value::Null);
        assert_eq!(u.identifiers().len(), 2);
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
                json!({"plan": "free", "region": "na"}),
            ),
            now,
        );
        assert_eq!(event.name, "organization.created");
        assert_eq!(org.version, 1);
        let later = "2026-01-02T00:00:00.000Z";
        let event = org
            .apply(
                &upsert(&["acme"], None, json!({"plan": "enterprise", "arr": 1})),
                later,
            )
            .unwrap()
            .unwrap();
        assert_eq!(event.name, "organization.updated");
        assert_eq!(
            Value::Object(event.data),
            json!({"data": {"plan": "enterprise", "arr": 1}})
        );
        assert_eq!(org.name.as_deref(), Some("Acme"));
        assert_eq!(
            Value::Object(org.data.clone()),
            json!({"plan": "enterprise", "region": "na", "arr": 1})
        );
        assert_eq!((org.version, org.updated_at.as_str()), (2, later));
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
    fn new_identifiers_are_attached() {
        let now = "2026-01-01T00:00:00.000Z";
        let (mut org, _) = Organization::create(
            Uuid::nil(),
            Uuid::now_v7(),
            &upsert(&["a"], None, Value::Null),
            now,
        );
        let u = upsert(&["a", "b"], None, Value::Null);
        assert_eq!(org.new_identifier_keys(&u).len(), 1);
        assert!(org.apply(&u, now).unwrap().is_some());
        assert_eq!(org.identifiers.len(), 2);
        assert!(org.new_identifier_keys(&u).is_empty());
    }
}
