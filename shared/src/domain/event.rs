//! The system events: every name the service emits, and what each one's
//! data holds. Users sync their own databases from these (the timeline
//! today, the EventBridge bus next), so the shapes are a contract: README
//! "Events" documents them, and every emitter builds its data here.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::changes::Changes;
use super::data::Data;
use super::identifier::{Identifier, IdentifierKey};
use super::{Membership, Organization, SystemEvent};

pub const ORGANIZATION_CREATED: &str = "organization.created";
pub const ORGANIZATION_UPDATED: &str = "organization.updated";
pub const ORGANIZATION_DELETED: &str = "organization.deleted";
pub const MEMBER_ADDED: &str = "organization.user.added";
pub const MEMBER_UPDATED: &str = "organization.user.updated";
pub const MEMBER_REMOVED: &str = "organization.user.removed";
/// A schedule's firing is `scheduled.<schedule name>`.
pub const SCHEDULED_PREFIX: &str = "scheduled.";

/// Every name the service emits itself, but the scheduled ones.
pub const SYSTEM_EVENTS: [&str; 6] = [
    ORGANIZATION_CREATED,
    ORGANIZATION_UPDATED,
    ORGANIZATION_DELETED,
    MEMBER_ADDED,
    MEMBER_UPDATED,
    MEMBER_REMOVED,
];

/// Names starting so are the service's own; clients cannot post them.
pub const RESERVED_PREFIXES: [&str; 2] = ["organization.", SCHEDULED_PREFIX];

/// The event a schedule's firing records.
pub fn scheduled(schedule: &str) -> String {
    format!("{SCHEDULED_PREFIX}{schedule}")
}

/// The credential a change was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EventCredential)]
pub enum Credential {
    SecretKey,
    PublishableKey,
    Session,
}

/// Who made a change: the route family, the credential and, for a
/// session, its user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = EventActor)]
pub struct Actor {
    /// `client`, `accounts`, `crm` or `tenant`.
    #[schema(value_type = String)]
    pub family: &'static str,
    pub credential: Credential,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

impl Actor {
    pub fn key(family: &'static str, credential: Credential) -> Self {
        Self {
            family,
            credential,
            user_id: None,
        }
    }

    /// What the cleanup record's `deleted_by` says (seed 003 types it as a
    /// string): `accounts:secret-key`, `client:publishable-key`,
    /// `tenant:session:<user id>`.
    pub fn label(&self) -> String {
        let credential = match self.credential {
            Credential::SecretKey => "secret-key",
            Credential::PublishableKey => "publishable-key",
            Credential::Session => "session",
        };
        match self.user_id {
            Some(user) => format!("{}:{credential}:{user}", self.family),
            None => format!("{}:{credential}", self.family),
        }
    }
}

/// An identifier in an event: what names the record.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventIdentifier {
    pub source: String,
    pub external_id: String,
    /// Its metadata, where the record has some.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Data>,
}

impl From<&Identifier> for EventIdentifier {
    fn from(identifier: &Identifier) -> Self {
        Self {
            source: identifier.source.clone(),
            external_id: identifier.external_id.clone(),
            metadata: identifier.metadata.clone(),
        }
    }
}

impl From<&IdentifierKey> for EventIdentifier {
    fn from(key: &IdentifierKey) -> Self {
        Self {
            source: key.source.clone(),
            external_id: key.external_id.clone(),
            metadata: None,
        }
    }
}

/// `organization.created`'s data.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationCreatedData)]
pub struct OrganizationCreated {
    pub name: Option<String>,
    #[schema(value_type = Object)]
    pub data: Data,
    /// Every field it was created with, each from `null`.
    pub changes: Changes,
}

/// `organization.updated`'s data.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationUpdatedData)]
pub struct OrganizationUpdated {
    pub changes: Changes,
}

/// `organization.deleted`'s data.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationDeletedData)]
pub struct OrganizationDeleted {
    pub id: Uuid,
    pub name: Option<String>,
    /// What named it (`source`, `external_id`; no metadata).
    pub identifiers: Vec<EventIdentifier>,
    /// The domains it held (accounts family), verified or not.
    pub domains: Vec<String>,
    pub deleted_by: Actor,
}

/// `organization.user.added`'s and `organization.user.removed`'s data: the
/// user and the membership (as it was, for a removal).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MemberEventData)]
pub struct MemberEvent {
    pub user_id: Uuid,
    /// The user's identifiers that named them in the request (all of a
    /// user the request created); source `id` is never among them.
    pub identifiers: Vec<EventIdentifier>,
    /// `owner` or `member` (the accounts family's role).
    pub role: String,
    /// The membership's own data.
    #[schema(value_type = Object)]
    pub data: Data,
}

/// `organization.user.updated`'s data.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MemberUpdatedData)]
pub struct MemberUpdated {
    pub user_id: Uuid,
    /// `data.<key>` and `role`.
    pub changes: Changes,
}

fn system_event(name: &'static str, payload: &impl Serialize) -> SystemEvent {
    let data = match serde_json::to_value(payload) {
        Ok(Value::Object(map)) => map,
        _ => Data::new(),
    };
    SystemEvent { name, data }
}

/// `organization.created`: its `name` and `data`, and every field it was
/// created with as `changes` (each from `null`), as an update would say.
pub fn organization_created(org: &Organization) -> SystemEvent {
    system_event(
        ORGANIZATION_CREATED,
        &OrganizationCreated {
            name: org.name.clone(),
            data: org.data.clone(),
            changes: Changes::created(org),
        },
    )
}

/// `organization.updated` with what changed between the two records;
/// `None` when nothing did.
pub fn organization_updated(before: &Organization, after: &Organization) -> Option<SystemEvent> {
    changed(Changes::organization(before, after))
}

/// `organization.updated` for changes of what lives beside the record (an
/// address, a setting); `None` when they are empty.
pub fn changed(changes: Changes) -> Option<SystemEvent> {
    (!changes.is_empty())
        .then(|| system_event(ORGANIZATION_UPDATED, &OrganizationUpdated { changes }))
}

/// `organization.deleted`: what was deleted (its id, name, identifiers and
/// domains) and who deleted it.
pub fn organization_deleted(org: &Organization, by: &Actor) -> SystemEvent {
    system_event(
        ORGANIZATION_DELETED,
        &OrganizationDeleted {
            id: org.id,
            name: org.name.clone(),
            // Keys only: metadata could make the event as large as the
            // record, and the delete must always fit in its transaction.
            identifiers: org
                .identifiers
                .iter()
                .map(|i| EventIdentifier::from(&i.key()))
                .collect(),
            domains: org
                .accounts
                .iter()
                .flat_map(|a| &a.domains)
                .map(|d| d.domain.clone())
                .collect(),
            deleted_by: by.clone(),
        },
    )
}

fn member(membership: &Membership, identifiers: &[IdentifierKey]) -> MemberEvent {
    MemberEvent {
        user_id: membership.user_id,
        identifiers: identifiers.iter().map(EventIdentifier::from).collect(),
        role: membership.role().to_owned(),
        data: membership.data.clone(),
    }
}

/// `organization.user.added`.
pub fn member_added(membership: &Membership, identifiers: &[IdentifierKey]) -> SystemEvent {
    system_event(MEMBER_ADDED, &member(membership, identifiers))
}

/// `organization.user.removed`: the membership as it was.
pub fn member_removed(membership: &Membership, identifiers: &[IdentifierKey]) -> SystemEvent {
    system_event(MEMBER_REMOVED, &member(membership, identifiers))
}

/// `organization.user.updated`: the user and what changed in the
/// membership; `None` when nothing did.
pub fn member_updated(before: &Membership, after: &Membership) -> Option<SystemEvent> {
    let changes = Changes::membership(before, after);
    (!changes.is_empty()).then(|| {
        system_event(
            MEMBER_UPDATED,
            &MemberUpdated {
                user_id: after.user_id,
                changes,
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_actor_labels_the_cleanup_record_as_before() {
        let key = Actor::key("accounts", Credential::SecretKey);
        assert_eq!(key.label(), "accounts:secret-key");
        assert_eq!(
            json!(key),
            json!({"family": "accounts", "credential": "secret_key"})
        );
        let session = Actor {
            user_id: Some(Uuid::nil()),
            ..Actor::key("tenant", Credential::Session)
        };
        assert_eq!(session.label(), format!("tenant:session:{}", Uuid::nil()));
    }

    #[test]
    fn member_events_say_who_and_what() {
        let mut membership = Membership::create(
            Uuid::nil(),
            Uuid::nil(),
            Uuid::nil(),
            json!({"role": "admin"}).as_object(),
            "2026-01-01T00:00:00.000Z",
        );
        let key = IdentifierKey::parse(None, "user_123").unwrap();
        let added = member_added(&membership, std::slice::from_ref(&key));
        assert_eq!(added.name, MEMBER_ADDED);
        assert_eq!(
            Value::Object(added.data),
            json!({"user_id": Uuid::nil(), "identifiers": [{"source": "default", "external_id": "user_123"}],
                   "role": "member", "data": {"role": "admin"}})
        );
        let before = membership.clone();
        assert_eq!(member_updated(&before, &membership), None);
        membership.data.insert("role".into(), json!("viewer"));
        let updated = member_updated(&before, &membership).unwrap();
        assert_eq!(
            Value::Object(updated.data),
            json!({"user_id": Uuid::nil(), "changes": {"data.role": {"from": "admin", "to": "viewer"}}})
        );
        assert_eq!(member_removed(&membership, &[]).name, MEMBER_REMOVED);
    }

    #[test]
    fn reserved_prefixes_cover_every_system_event() {
        for name in SYSTEM_EVENTS
            .iter()
            .map(|n| (*n).to_owned())
            .chain([scheduled("renewal")])
        {
            assert!(
                RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)),
                "{name}"
            );
        }
    }
}
