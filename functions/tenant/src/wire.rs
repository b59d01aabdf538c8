//! The tenant dialect's bodies (seed 003, epilot's organization API).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared::domain::address::Change;
use shared::domain::tenant::{TenantAddress, TenantChange};
use shared::domain::Organization;
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, Serialize, PartialEq, ToSchema)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_number: Option<String>,
}

/// `PATCH /v2/organization/{org_id}`: the spec's `Organization`, every
/// field optional; read-only ones (`id`, `created_date`) are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OrganizationUpdate)]
pub struct OrganizationPatch {
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub id: serde::de::IgnoredAny,
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_date: serde::de::IgnoredAny,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub email: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub phone: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub website: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<Address>)]
    pub address: Change<Address>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub organization_use: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub parent_production_org_id: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub logo_url: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub logo_thumbnail_url: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub signature: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub is_unlicensed_org: Change<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub style: Change<Map<String, Value>>,
    #[serde(default, rename = "type")]
    #[schema(value_type = Option<String>)]
    pub kind: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub symbol: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub pricing_tier: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub free_user_limit: Change<f64>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Change<Vec<String>>,
}

impl From<OrganizationPatch> for TenantChange {
    fn from(p: OrganizationPatch) -> Self {
        TenantChange {
            name: p.name,
            email: p.email,
            phone: p.phone,
            website: p.website,
            address: p.address.map(|a| TenantAddress {
                country: a.country,
                city: a.city,
                postal_code: a.postal_code,
                street: a.street,
                street_number: a.street_number,
            }),
            organization_use: p.organization_use,
            parent_production_org_id: p.parent_production_org_id,
            logo_url: p.logo_url,
            logo_thumbnail_url: p.logo_thumbnail_url,
            signature: p.signature,
            is_unlicensed_org: p.is_unlicensed_org,
            style: p.style,
            kind: p.kind,
            symbol: p.symbol,
            pricing_tier: p.pricing_tier,
            free_user_limit: p.free_user_limit,
            tags: p.tags,
        }
    }
}

/// Seed 003's `Organization` (absent fields left out).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = Organization)]
pub struct OrganizationResponse {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_production_org_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_thumbnail_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_unlicensed_org: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub style: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_user_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl OrganizationResponse {
    /// `logo`: the uploaded logo's URLs, when there is one.
    pub fn new(org: Organization, logo: Option<(String, String)>) -> Self {
        let t = org.tenant.unwrap_or_default();
        let (logo_url, logo_thumbnail_url) = match logo {
            Some((url, thumbnail)) => (Some(url), Some(thumbnail)),
            None => (t.logo_url, t.logo_thumbnail_url),
        };
        Self {
            id: org.id.to_string(),
            name: org.name,
            email: t.email,
            phone: t.phone,
            website: t.website,
            address: t.address.map(|a| Address {
                country: a.country,
                city: a.city,
                postal_code: a.postal_code,
                street: a.street,
                street_number: a.street_number,
            }),
            organization_use: t.organization_use,
            parent_production_org_id: t.parent_production_org_id,
            created_date: org.created_at,
            logo_url,
            logo_thumbnail_url,
            signature: t.signature,
            is_unlicensed_org: t.is_unlicensed_org,
            style: t.style,
            kind: t.kind,
            symbol: t.symbol,
            pricing_tier: t.pricing_tier,
            free_user_limit: t.free_user_limit,
            tags: t.tags,
        }
    }
}

/// `POST /v2/organization`: seed 003's `CreateOrganizationRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrganizationRequest {
    #[serde(default)]
    pub organization_detail: Option<OrganizationDetail>,
    #[serde(default)]
    pub owner_user: Option<OwnerUser>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganizationDetail {
    pub name: String,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub organization_use: Option<String>,
    pub pricing_tier_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OwnerUser {
    #[serde(default)]
    pub full_name: Option<String>,
    pub email_address: String,
}

/// Seed 003's `DataPoint` (its numeric `id` has no counterpart: ids here
/// are UUIDs, so it is left out).
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct DataPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_customer: Option<f64>,
    pub actual_customer: u64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct FeatureSettings {
    pub version: String,
    /// The flags that apply to the caller's organization.
    #[schema(value_type = Vec<FeatureFlagMetadata>)]
    pub feature_flags: Vec<Map<String, Value>>,
}

/// The shape of a served flag. Flags are kept as the project imported
/// them (`orgctl flags import` checks these fields), so they are served as
/// maps; this type only describes them, plus the `enabled` added per
/// organization.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FeatureFlagMetadata {
    feature_name: String,
    title: Option<I18nString>,
    description: Option<I18nString>,
    /// `alpha`, `beta`, `new`, `advanced`, `experiment` or `deprecated`.
    badge: Option<String>,
    confetti: Option<bool>,
    one_way: Option<bool>,
    reverse_checked: Option<bool>,
    is_visible_for_partner: Option<bool>,
    /// All of them hold for a served flag.
    visibility_rules: Vec<shared::domain::features::Rule>,
    /// Whether the organization's setting of the flag's name is on.
    enabled: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct I18nString {
    key: String,
    default_value: Option<String>,
}
