//! External identifiers: how clients name organizations and users.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::data::Data;
use crate::error::Error;
use crate::limits::MAX_IDENTIFIERS_PER_RECORD;

pub const DEFAULT_SOURCE: &str = "default";
/// `{"source": "id", "external_id": "<record id>"}` names a record by its
/// own id: matching only, never stored.
pub const ID_SOURCE: &str = "id";
/// A session's user is the user with (`session`, the token's `sub`); only
/// sessions and secret keys write this source.
pub const SESSION_SOURCE: &str = "session";
pub const MAX_IDENTIFIER_LEN: usize = 255;
pub const MAX_IDENTIFIERS_PER_REQUEST: usize = 20;

/// `(source, external_id)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentifierKey {
    pub source: String,
    pub external_id: String,
}

impl IdentifierKey {
    /// The identifier of a session's user.
    pub fn session(subject: &str) -> Result<Self, Error> {
        Self::parse(Some(SESSION_SOURCE), subject)
    }

    pub fn is_session(&self) -> bool {
        self.source == SESSION_SOURCE
    }

    /// The record this identifier names by its id (source `id`), if it does.
    pub fn record_id(&self) -> Option<Uuid> {
        (self.source == ID_SOURCE)
            .then(|| Uuid::parse_str(&self.external_id).ok())
            .flatten()
    }

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

/// An identifier as stored on its record.
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

    fn new(spec: &IdentifierSpec, now: &str) -> Self {
        Identifier {
            id: crate::ids::new_id(),
            source: spec.key.source.clone(),
            external_id: spec.key.external_id.clone(),
            metadata: spec.metadata.clone(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }
}

/// Checks a request's identifiers: at least one, not too many; the same
/// identifier twice is one identifier (its last metadata wins).
pub fn validate_identifiers(specs: Vec<IdentifierSpec>) -> Result<Vec<IdentifierSpec>, Error> {
    if specs.is_empty() {
        return Err(Error::invalid("at least one identifier is required"));
    }
    if specs.len() > MAX_IDENTIFIERS_PER_REQUEST {
        return Err(Error::invalid(format!(
            "at most {MAX_IDENTIFIERS_PER_REQUEST} identifiers are allowed in one request"
        )));
    }
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

/// Whether a requested identifier is kept on its record: source `id` only
/// matches.
fn stored(spec: &IdentifierSpec) -> bool {
    spec.key.source != ID_SOURCE
}

pub(crate) fn new_identifiers(specs: &[IdentifierSpec], now: &str) -> Vec<Identifier> {
    specs
        .iter()
        .filter(|spec| stored(spec))
        .map(|spec| Identifier::new(spec, now))
        .collect()
}

/// What attaching requested identifiers to a record changed.
#[derive(Debug, Default)]
pub(crate) struct Attached {
    /// `{source, external_id}` of each identifier added.
    pub added: Vec<Value>,
    /// Whether a known identifier's metadata changed.
    pub metadata_changed: bool,
}

/// Adds identifiers the record lacks and updates known ones' metadata.
/// Refused, changing nothing, when the record would hold more than
/// [`MAX_IDENTIFIERS_PER_RECORD`] identifiers in all.
pub(crate) fn attach_identifiers(
    identifiers: &mut Vec<Identifier>,
    specs: &[IdentifierSpec],
    now: &str,
) -> Result<Attached, Error> {
    let total = identifiers.len() + missing_keys(identifiers, specs).len();
    if total > MAX_IDENTIFIERS_PER_RECORD {
        return Err(Error::LimitExceeded(format!(
            "the record would hold {total} identifiers; at most {MAX_IDENTIFIERS_PER_RECORD} are allowed on one organization or user"
        )));
    }
    let mut attached = Attached::default();
    for spec in specs.iter().filter(|spec| stored(spec)) {
        match identifiers.iter_mut().find(|i| i.key() == spec.key) {
            Some(known) => {
                if spec.metadata.is_some() && known.metadata != spec.metadata {
                    known.metadata = spec.metadata.clone();
                    known.updated_at = now.to_owned();
                    attached.metadata_changed = true;
                }
            }
            None => {
                attached
                    .added
                    .push(json!({"source": spec.key.source, "external_id": spec.key.external_id}));
                identifiers.push(Identifier::new(spec, now));
            }
        }
    }
    Ok(attached)
}

/// The requested identifiers a record does not have yet (they need new
/// uniqueness markers).
pub fn missing_keys<'a>(
    identifiers: &[Identifier],
    specs: &'a [IdentifierSpec],
) -> Vec<&'a IdentifierKey> {
    specs
        .iter()
        .filter(|spec| stored(spec))
        .map(|s| &s.key)
        .filter(|k| !identifiers.iter().any(|i| &i.key() == *k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ext: &str) -> IdentifierSpec {
        IdentifierSpec {
            key: IdentifierKey::parse(None, ext).unwrap(),
            metadata: None,
        }
    }

    #[test]
    fn an_id_identifier_names_a_record_and_is_never_stored() {
        let id = Uuid::now_v7();
        let by_id = IdentifierKey::parse(Some(ID_SOURCE), &id.to_string()).unwrap();
        assert_eq!(by_id.record_id(), Some(id));
        assert_eq!(
            IdentifierKey::parse(Some(ID_SOURCE), "x")
                .unwrap()
                .record_id(),
            None
        );
        assert_eq!(
            IdentifierKey::parse(Some("crm"), &id.to_string())
                .unwrap()
                .record_id(),
            None
        );
        let specs = [
            IdentifierSpec {
                key: by_id,
                metadata: None,
            },
            spec("acme"),
        ];
        let stored = new_identifiers(&specs, "2026-01-01T00:00:00Z");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].external_id, "acme");
        assert_eq!(missing_keys(&[], &specs).len(), 1);
    }

    #[test]
    fn identifiers_are_validated_and_deduplicated() {
        assert!(IdentifierKey::parse(None, "").is_err());
        assert!(IdentifierKey::parse(Some(""), "a").is_err());
        assert!(IdentifierKey::parse(None, &"x".repeat(256)).is_err());
        assert!(
            IdentifierKey::parse(None, &"é".repeat(255)).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(IdentifierKey::parse(None, "a").unwrap().source, "default");
        assert!(validate_identifiers(vec![]).is_err());
        assert_eq!(
            validate_identifiers(vec![spec("a"), spec("a"), spec("b")])
                .unwrap()
                .len(),
            2
        );
        assert!(validate_identifiers(
            (0..=MAX_IDENTIFIERS_PER_REQUEST)
                .map(|i| spec(&i.to_string()))
                .collect()
        )
        .is_err());
    }

    #[test]
    fn attaching_adds_new_identifiers_and_updates_metadata() {
        let now = "2026-01-01T00:00:00.000Z";
        let mut ids = new_identifiers(&[spec("a")], now);
        let mut with_meta = spec("a");
        with_meta.metadata = serde_json::json!({"k": 1}).as_object().cloned();
        assert_eq!(missing_keys(&ids, &[spec("a"), spec("b")]).len(), 1);
        let attached = attach_identifiers(&mut ids, &[with_meta, spec("b")], now).unwrap();
        assert_eq!(attached.added.len(), 1);
        assert!(attached.metadata_changed);
        assert_eq!(ids.len(), 2);
        let again = attach_identifiers(&mut ids, &[spec("a"), spec("b")], now).unwrap();
        assert!(again.added.is_empty() && !again.metadata_changed);
    }

    #[test]
    fn a_record_holds_at_most_the_limit_of_identifiers_in_all() {
        let now = "2026-01-01T00:00:00.000Z";
        let specs: Vec<IdentifierSpec> = (0..MAX_IDENTIFIERS_PER_RECORD - 1)
            .map(|i| spec(&i.to_string()))
            .collect();
        let mut ids = new_identifiers(&specs, now);
        let full = attach_identifiers(&mut ids, &[spec("0"), spec("last")], now).unwrap();
        assert_eq!(full.added.len(), 1);
        assert_eq!(ids.len(), MAX_IDENTIFIERS_PER_RECORD);
        // Known identifiers still update; a new one is refused whole.
        assert!(attach_identifiers(&mut ids, &[spec("1")], now).is_ok());
        let refused = attach_identifiers(&mut ids, &[spec("2"), spec("one more")], now);
        assert!(matches!(refused, Err(Error::LimitExceeded(_))));
        assert_eq!(ids.len(), MAX_IDENTIFIERS_PER_RECORD, "nothing attached");
    }
}
