//! The client dialect's request and response bodies.

use serde::{Deserialize, Serialize};
use shared::domain::identifier::validate_identifiers;
use shared::domain::{
    Data, Identifier, IdentifierKey, IdentifierSpec, Membership, Organization, User,
};
use shared::Error;
use utoipa::ToSchema;
use uuid::Uuid;

/// `{external_id | externalId, source?, metadata?}`: both spellings are in
/// use (the spec's and the SDKs').
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ExternalID)]
pub struct ExternalId {
    /// Also accepted as `externalId`.
    #[serde(alias = "externalId")]
    #[schema(min_length = 1, max_length = 255, example = "acme_inc")]
    pub external_id: String,
    /// `default` when omitted. Reserved: `id` names an existing record by
    /// its id (`external_id` is the id; matching only, never stored, an
    /// unknown id is 404: an upsert naming an organization this way with
    /// other identifiers attaches those), and `session` is the identity of
    /// a session's user (written only by a secret key or the session).
    #[serde(default)]
    #[schema(max_length = 255)]
    pub source: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Data>,
}

pub(crate) fn specs(identifier: Vec<ExternalId>) -> Result<Vec<IdentifierSpec>, Error> {
    let specs = identifier
        .into_iter()
        .map(|id| {
            Ok(IdentifierSpec {
                key: IdentifierKey::parse(id.source.as_deref(), &id.external_id)?,
                metadata: id.metadata,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    validate_identifiers(specs)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganizationRequest {
    #[schema(min_items = 1, max_items = 20)]
    pub identifier: Vec<ExternalId>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub name: Option<String>,
    /// Merged into the stored `data` (a key set to null is removed).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Data>,
}

impl OrganizationRequest {
    pub fn identifier_specs(&mut self) -> Result<Vec<IdentifierSpec>, Error> {
        specs(std::mem::take(&mut self.identifier))
    }
}

/// `{identifier: [...]}`: how the client family names one record.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = IdentifiedRecord)]
pub struct Named {
    #[schema(min_items = 1, max_items = 20)]
    pub identifier: Vec<ExternalId>,
}

impl Named {
    pub fn identifier_specs(self) -> Result<Vec<IdentifierSpec>, Error> {
        specs(self.identifier)
    }

    pub fn identifier_keys(self) -> Result<Vec<IdentifierKey>, Error> {
        Ok(specs(self.identifier)?.into_iter().map(|s| s.key).collect())
    }
}

pub type DeleteOrganizationRequest = Named;

/// `POST /api/client/users`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserRequest {
    #[schema(min_items = 1, max_items = 20)]
    pub identifier: Vec<ExternalId>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Data>,
}

/// `POST /api/client/organizations/users`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganizationUserRequest {
    pub organization: Named,
    pub user: Named,
    /// The membership's data, merged into what it has.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Data>,
}

/// `DELETE /api/client/organizations/users`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RemoveOrganizationUserRequest {
    pub organization: Named,
    pub user: Named,
}

/// A user profile as answered.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = User)]
pub struct UserResponse {
    pub id: Uuid,
    pub identifier: Vec<ExternalIdResponse>,
    #[schema(value_type = Object)]
    pub data: Data,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            identifier: user.identifiers.into_iter().map(Into::into).collect(),
            data: user.data,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// A membership as answered.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = Membership)]
pub struct MembershipResponse {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    #[schema(value_type = Object)]
    pub data: Data,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<Membership> for MembershipResponse {
    fn from(m: Membership) -> Self {
        Self {
            organization_id: m.organization_id,
            user_id: m.user_id,
            data: m.data,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = ExternalIDResponse)]
pub struct ExternalIdResponse {
    pub id: Uuid,
    pub source: String,
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Data>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// The spec's `Organization`.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = Organization)]
pub struct OrganizationResponse {
    pub id: Uuid,
    pub project_id: Uuid,
    pub identifier: Vec<ExternalIdResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(value_type = Object)]
    pub data: Data,
    pub version: u64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<Identifier> for ExternalIdResponse {
    fn from(id: Identifier) -> Self {
        Self {
            id: id.id,
            source: id.source,
            external_id: id.external_id,
            metadata: id.metadata,
            created_at: id.created_at,
            updated_at: id.updated_at,
        }
    }
}

impl From<Organization> for OrganizationResponse {
    fn from(org: Organization) -> Self {
        Self {
            id: org.id,
            project_id: org.project_id,
            identifier: org.identifiers.into_iter().map(Into::into).collect(),
            name: org.name,
            data: org.data,
            version: org.version,
            created_at: org.created_at,
            updated_at: org.updated_at,
        }
    }
}

/// One element of `POST /api/client/organizations/events`: `identifier`
/// or `match`, not both.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = OrganizationEvent)]
pub struct OrganizationEventRequest {
    #[serde(default)]
    #[schema(min_items = 1, max_items = 20)]
    pub identifier: Option<Vec<ExternalId>>,
    /// Every organization whose `data` contains these top-level pairs.
    #[serde(default, rename = "match")]
    #[schema(value_type = Option<Object>)]
    pub matcher: Option<Data>,
    #[schema(min_length = 1, max_length = 255, example = "subscription_upgraded")]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Data>,
}

impl OrganizationEventRequest {
    pub fn validate(self) -> Result<shared::events::PostedEvent, Error> {
        let identifiers = self
            .identifier
            .map(|ids| specs(ids).map(|s| s.into_iter().map(|s| s.key).collect()))
            .transpose()?;
        shared::events::PostedEvent::new(identifiers, self.matcher, self.name, self.data)
    }
}

/// The answer to posted events: what was queued, and what could not be.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct EventsAccepted {
    pub accepted: usize,
    pub events: Vec<AcceptedEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedEvent>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct AcceptedEvent {
    pub index: usize,
    pub id: Uuid,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct FailedEvent {
    pub index: usize,
    pub detail: String,
}

/// `POST /api/client/organizations/scheduled`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = UpsertOrganizationScheduledRequest)]
pub struct ScheduledRequest {
    #[schema(min_length = 1, max_length = 255, example = "contract_renewal")]
    pub name: String,
    #[schema(min_items = 1, max_items = 20)]
    pub identifier: Vec<ExternalId>,
    /// When a single schedule fires (RFC 3339).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub scheduled_at: Option<String>,
    /// When a recurring schedule first fires (RFC 3339; now when omitted).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub start_at: Option<String>,
    /// A recurring schedule's period (`1h`, `7d`, `P1M`, …).
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Data>,
}

/// `DELETE /api/client/organizations/scheduled`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = DeleteOrganizationScheduledRequest)]
pub struct DeleteScheduledRequest {
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    #[schema(min_items = 1, max_items = 20)]
    pub identifier: Vec<ExternalId>,
}

/// The spec's `ScheduledAccepted` (plus the recurring fields).
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ScheduledAccepted {
    pub id: Uuid,
    pub name: String,
    /// When it fires next.
    #[schema(format = DateTime)]
    pub scheduled_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub start_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[schema(value_type = Object)]
    pub data: Data,
}

/// The answer to a deleted schedule.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ScheduledDeleted {
    pub name: String,
    pub deleted: bool,
}
