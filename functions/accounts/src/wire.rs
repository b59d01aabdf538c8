//! The accounts dialect's bodies (seed 001).

use serde::{Deserialize, Serialize};
use shared::domain::address::{Address, AddressChange, Change};
use shared::domain::organization::{AccountsProfile, Services};
use shared::domain::Organization;
use utoipa::ToSchema;

/// `POST /v1/organizations`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganizationCreateParams {
    pub name: String,
    #[serde(default)]
    pub billing_email: Option<String>,
}

/// A field of a patch: absent keeps, `null` clears, a value sets (the
/// domain's own [`Change`]).
pub type Patch<T> = Change<T>;

/// `PATCH /v1/organizations/{organization_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganizationUpdateParams {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub billing_email: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct OrganizationDomain {
    pub id: String,
    pub domain: String,
    pub verified: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct OrganizationServices {
    pub cloud: bool,
    pub jit_provisioning: bool,
    pub scim: bool,
    pub siem: bool,
    pub sso: bool,
}

/// Seed 001's `Organization`.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = Organization)]
pub struct OrganizationResponse {
    pub id: String,
    #[schema(required = true)]
    pub billing_email: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub domains: Vec<OrganizationDomain>,
    #[schema(required = true)]
    pub metronome_customer_id: Option<String>,
    pub name: String,
    pub personal: bool,
    pub services: OrganizationServices,
    #[schema(required = true)]
    pub stripe_customer_id: Option<String>,
    /// `personal` or `company`.
    #[serde(rename = "type")]
    #[schema(example = "company")]
    pub kind: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_id: Option<String>,
}

impl OrganizationResponse {
    /// `oldest_owner_email`: what `billing_email` shows when none is set.
    pub fn new(org: Organization, oldest_owner_email: Option<String>) -> Self {
        let accounts = org.accounts.unwrap_or_default();
        let Services {
            cloud,
            jit_provisioning,
            scim,
            siem,
            sso,
        } = accounts.services;
        Self {
            id: org.id.to_string(),
            billing_email: accounts.billing_email.or(oldest_owner_email),
            created_at: org.created_at,
            domains: accounts
                .domains
                .into_iter()
                .map(|d| OrganizationDomain {
                    id: d.id.to_string(),
                    domain: d.domain,
                    verified: d.verified,
                })
                .collect(),
            metronome_customer_id: accounts.metronome_customer_id,
            name: org.name.unwrap_or_default(),
            personal: accounts.personal,
            services: OrganizationServices {
                cloud,
                jit_provisioning,
                scim,
                siem,
                sso,
            },
            stripe_customer_id: accounts.stripe_customer_id,
            kind: if accounts.personal {
                "personal"
            } else {
                "company"
            }
            .into(),
            updated_at: org.updated_at,
            auth_id: accounts.auth_id,
        }
    }
}

pub fn profile(billing_email: Option<String>) -> AccountsProfile {
    AccountsProfile {
        billing_email,
        ..AccountsProfile::default()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ListQuery {
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Pagination {
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    #[schema(required = true)]
    pub previous_cursor: Option<String>,
    pub total_count: u64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct OrganizationList {
    pub items: Vec<OrganizationResponse>,
    pub pagination: Pagination,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = OrganizationEvent)]
pub struct TimelineItem {
    pub id: String,
    /// A system event (`SystemEventName`, `scheduled.<name>`) or a custom one.
    pub name: String,
    /// A system event's data (`OrganizationCreatedData`,
    /// `OrganizationUpdatedData`, `OrganizationDeletedData`,
    /// `MemberEventData`, `MemberUpdatedData`; a firing: the schedule's
    /// data) or what the custom event was posted with.
    #[schema(value_type = Object)]
    pub data: shared::domain::Data,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct TimelinePagination {
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = OrganizationTimeline)]
pub struct TimelineResponse {
    pub items: Vec<TimelineItem>,
    pub pagination: TimelinePagination,
}

/// Seed 001's `OrganizationMembership` (its id is the member's user id).
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = OrganizationMembership)]
pub struct MembershipResponse {
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub organization_id: String,
    pub role: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub user_id: String,
}

impl From<shared::domain::Membership> for MembershipResponse {
    fn from(m: shared::domain::Membership) -> Self {
        Self {
            id: m.user_id.to_string(),
            created_at: m.created_at.clone(),
            organization_id: m.organization_id.to_string(),
            role: m.role().to_owned(),
            updated_at: m.updated_at.clone(),
            user_id: m.user_id.to_string(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = OrganizationMembershipList)]
pub struct MembershipList {
    pub items: Vec<MembershipResponse>,
    pub pagination: Pagination,
}

/// `POST /v1/organizations/{organization_id}/address`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddressCreateParams {
    pub city: String,
    pub country: String,
    pub line1: String,
    pub postal_code: String,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub tax_id: Option<String>,
    #[serde(default)]
    pub tax_id_type: Option<String>,
}

/// `PATCH /v1/organizations/{organization_id}/address`: omitted fields
/// stay; `null` clears line2, state, tax_id, tax_id_type.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddressUpdateParams {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub city: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub country: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub line1: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub postal_code: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub line2: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub state: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub tax_id: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub tax_id_type: Patch<String>,
}

fn given(value: Option<String>) -> Change {
    value.map(Change::Set).unwrap_or(Change::Clear)
}

impl From<AddressCreateParams> for AddressChange {
    fn from(p: AddressCreateParams) -> Self {
        AddressChange {
            line1: Change::Set(p.line1),
            line2: given(p.line2),
            city: Change::Set(p.city),
            state: given(p.state),
            postal_code: Change::Set(p.postal_code),
            country: Change::Set(p.country),
            tax_id: given(p.tax_id),
            tax_id_type: given(p.tax_id_type),
        }
    }
}

impl From<AddressUpdateParams> for AddressChange {
    fn from(p: AddressUpdateParams) -> Self {
        AddressChange {
            line1: p.line1,
            line2: p.line2,
            city: p.city,
            state: p.state,
            postal_code: p.postal_code,
            country: p.country,
            tax_id: p.tax_id,
            tax_id_type: p.tax_id_type,
        }
    }
}

/// Seed 001's `OrganizationAddress`.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = OrganizationAddress)]
pub struct AddressResponse {
    pub id: String,
    pub city: String,
    pub country: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub line1: String,
    #[schema(required = true)]
    pub line2: Option<String>,
    pub organization_id: String,
    pub postal_code: String,
    #[schema(required = true)]
    pub state: Option<String>,
    #[schema(required = true)]
    pub tax_id: Option<String>,
    #[schema(required = true)]
    pub tax_id_type: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<Address> for AddressResponse {
    fn from(a: Address) -> Self {
        Self {
            id: a.id.to_string(),
            city: a.city,
            country: a.country,
            created_at: a.created_at,
            line1: a.line1,
            line2: a.line2,
            organization_id: a.organization_id.to_string(),
            postal_code: a.postal_code,
            state: a.state,
            tax_id: a.tax_id,
            tax_id_type: a.tax_id_type,
            updated_at: a.updated_at,
        }
    }
}

/// `POST /v1/organizations/{organization_id}/domains`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DomainCreateParams {
    pub domain: String,
}

/// The DNS record that proves a domain.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Verification {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub value: String,
}

/// One domain with what verifying it takes.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = OrganizationDomainVerification)]
pub struct DomainResponse {
    pub id: String,
    pub domain: String,
    pub verified: bool,
    pub organization_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime, required = true)]
    pub verified_at: Option<String>,
    pub verification: Verification,
}

impl DomainResponse {
    pub fn new(org: uuid::Uuid, d: shared::domain::domains::OrgDomain) -> Self {
        Self {
            id: d.id.to_string(),
            verification: Verification {
                kind: "TXT".into(),
                name: d.record_name(),
                value: d.token.clone(),
            },
            domain: d.domain,
            verified: d.verified,
            organization_id: org.to_string(),
            created_at: d.created_at,
            verified_at: d.verified_at,
        }
    }
}
