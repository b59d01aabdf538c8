//! The CRM dialect's bodies (seed 002): camelCase JSON-LD resources whose
//! references are IRIs (`/users/{id}`, `/tags/{id}`, …).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::domain::address::Change;
use shared::domain::crm::{CrmChange, CrmEmail, CrmPhone, Field, Note, NoteChange};
use shared::domain::Organization;
use shared::Error;
use utoipa::ToSchema;

pub const USERS: &str = "/users/";
pub const PEOPLE: &str = "/people/";
pub const TAGS: &str = "/tags/";
pub const SEGMENTS: &str = "/segments/";
pub const MEDIA: &str = "/media_objects/";
pub const NOTE_CATEGORIES: &str = "/note_categories/";

/// The id an IRI names (`/users/42` → `42`); 400 for anything else.
pub fn iri_id(field: &str, prefix: &str, iri: &str) -> Result<String, Error> {
    iri.strip_prefix(prefix)
        .filter(|id| !id.is_empty() && !id.contains('/') && id.len() <= 255)
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{field}: invalid IRI {iri:?} (expected {prefix}{{id}})"
            ))
        })
}

/// A filter value that may be an IRI or a bare id.
pub fn filter_id(prefix: &str, value: &str) -> String {
    value.strip_prefix(prefix).unwrap_or(value).to_owned()
}

/// A domain field as the CRM's bodies name it.
pub fn field_name(field: Field) -> &'static str {
    match field {
        Field::Title => "title",
        Field::Description => "description",
        Field::Website => "website",
        Field::CustomerId => "customerId",
        Field::ExternalSource => "externalSource",
        Field::ChamberOfCommerceNumber => "chamberOfCommerceNumber",
        Field::LinkedinId => "linkedinId",
        Field::ArchivedAt => "archivedAt",
        Field::Owner => "owner",
        Field::People => "people",
        Field::Avatar => "avatar",
        Field::Tags => "tags",
        Field::Segments => "segments",
        Field::IntegrationParticipants => "integrationParticipants",
        Field::EmailAddresses => "emailAddresses",
        Field::Email => "emailAddresses.email",
        Field::PhoneNumbers => "phoneNumbers",
        Field::PhoneNumber => "phoneNumbers.phoneNumber",
        Field::PhoneType => "phoneNumbers.phoneType",
        Field::NoteTitle => "title",
        Field::NoteDescription => "description",
        Field::NoteCategory => "category",
        Field::NoteAuthor => "author",
        Field::NoteCreatedAt => "createdAt",
    }
}

fn iri(prefix: &str, id: &str) -> String {
    format!("{prefix}{id}")
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailParam {
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneParam {
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub phone_type: Option<String>,
}

/// An organization write (`POST`, `PUT`, `PATCH`). Read-only fields a
/// client sends back are ignored, as the CRM does.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationWrite {
    /// Accepted and ignored: ids are the service's.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    #[allow(dead_code)]
    pub id: serde::de::IgnoredAny,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub title: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub description: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub website: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub customer_id: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub external_source: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub chamber_of_commerce_number: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub linkedin_id: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub archived_at: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub owner: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub people: Change<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub avatar: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Change<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub segments: Change<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub integration_participants: Change<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<EmailParam>>)]
    pub email_addresses: Change<Vec<EmailParam>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<PhoneParam>>)]
    pub phone_numbers: Change<Vec<PhoneParam>>,
}

fn iris(
    field: &'static str,
    prefix: &'static str,
    values: Vec<String>,
) -> Result<Vec<String>, Error> {
    values.iter().map(|v| iri_id(field, prefix, v)).collect()
}

impl OrganizationWrite {
    /// The domain change; `replace` (PUT) clears every field not given.
    pub fn into_change(self, replace: bool) -> Result<CrmChange, Error> {
        let r = |c: Change<String>| if replace { c.or_clear() } else { c };
        let rl = |c: Change<Vec<String>>| if replace { c.or_clear() } else { c };
        let emails = if replace {
            self.email_addresses.or_clear()
        } else {
            self.email_addresses
        };
        let phones = if replace {
            self.phone_numbers.or_clear()
        } else {
            self.phone_numbers
        };
        Ok(CrmChange {
            title: if replace {
                self.title.or_clear()
            } else {
                self.title
            },
            description: r(self.description),
            website: r(self.website),
            customer_id: r(self.customer_id),
            external_source: r(self.external_source),
            chamber_of_commerce_number: r(self.chamber_of_commerce_number),
            linkedin_id: r(self.linkedin_id),
            archived_at: r(self.archived_at),
            owner: r(self.owner).try_map(|o| iri_id("owner", USERS, &o))?,
            people: rl(self.people).try_map(|v| iris("people", PEOPLE, v))?,
            avatar: r(self.avatar).try_map(|a| iri_id("avatar", MEDIA, &a))?,
            tags: rl(self.tags).try_map(|v| iris("tags", TAGS, v))?,
            segments: rl(self.segments).try_map(|v| iris("segments", SEGMENTS, v))?,
            integration_participants: rl(self.integration_participants),
            email_addresses: emails.try_map(|v| {
                v.into_iter()
                    .map(|e| {
                        e.email.map(|email| CrmEmail { email }).ok_or_else(|| {
                            Error::Unprocessable("emailAddresses.email: must not be null".into())
                        })
                    })
                    .collect()
            })?,
            phone_numbers: phones.try_map(|v| {
                v.into_iter()
                    .map(|p| {
                        Ok(CrmPhone {
                            phone_number: p.phone_number.ok_or_else(|| {
                                Error::Unprocessable(
                                    "phoneNumbers.phoneNumber: must not be null".into(),
                                )
                            })?,
                            phone_type: p.phone_type,
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()
            })?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailAddress {
    #[schema(required = true)]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    #[schema(required = true)]
    pub phone_number: Option<String>,
    #[schema(required = true)]
    pub phone_type: Option<String>,
}

/// Seed 002's `Organization`, as JSON-LD.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = Organization)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationResource {
    #[serde(rename = "@context")]
    pub context: String,
    #[serde(rename = "@id")]
    pub iri: String,
    #[serde(rename = "@type")]
    pub kind: String,
    pub id: String,
    #[schema(required = true)]
    pub title: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub website: Option<String>,
    #[schema(required = true)]
    pub customer_id: Option<String>,
    #[schema(required = true)]
    pub external_source: Option<String>,
    #[schema(required = true)]
    pub chamber_of_commerce_number: Option<String>,
    #[schema(required = true)]
    pub linkedin_id: Option<String>,
    #[schema(required = true)]
    pub linkedin_public_identifier: Option<String>,
    #[schema(required = true)]
    pub linkedin_internal_id: Option<String>,
    #[schema(required = true)]
    pub created_at: Option<String>,
    #[schema(required = true)]
    pub imported_at: Option<String>,
    #[schema(required = true)]
    pub updated_at: Option<String>,
    #[schema(required = true)]
    pub archived_at: Option<String>,
    #[schema(required = true)]
    pub owner: Option<String>,
    pub people: Vec<String>,
    #[schema(required = true)]
    pub avatar_url: Option<String>,
    pub tags: Vec<String>,
    pub segments: Vec<String>,
    pub integration_participants: Vec<String>,
    #[schema(required = true)]
    pub company_enrichment: Option<bool>,
    pub email_addresses: Vec<EmailAddress>,
    pub phone_numbers: Vec<PhoneNumber>,
}

impl From<Organization> for OrganizationResource {
    fn from(org: Organization) -> Self {
        let crm = org.crm.unwrap_or_default();
        let id = org.id.to_string();
        Self {
            context: "/contexts/Organization".into(),
            iri: format!("/organizations/{id}"),
            kind: "Organization".into(),
            id,
            title: org.name,
            description: crm.description,
            website: crm.website,
            customer_id: crm.customer_id,
            external_source: crm.external_source,
            chamber_of_commerce_number: crm.chamber_of_commerce_number,
            linkedin_id: crm.linkedin_id,
            linkedin_public_identifier: crm.linkedin_public_identifier,
            linkedin_internal_id: crm.linkedin_internal_id,
            created_at: Some(org.created_at),
            imported_at: crm.imported_at,
            updated_at: Some(org.updated_at),
            archived_at: crm.archived_at,
            owner: crm.owner.map(|o| iri(USERS, &o)),
            people: crm.people.iter().map(|p| iri(PEOPLE, p)).collect(),
            avatar_url: None,
            tags: crm.tags.iter().map(|t| iri(TAGS, t)).collect(),
            segments: crm.segments.iter().map(|s| iri(SEGMENTS, s)).collect(),
            integration_participants: crm.integration_participants,
            company_enrichment: None,
            email_addresses: crm
                .email_addresses
                .into_iter()
                .map(|e| EmailAddress {
                    email: Some(e.email),
                })
                .collect(),
            phone_numbers: crm
                .phone_numbers
                .into_iter()
                .map(|p| PhoneNumber {
                    phone_number: Some(p.phone_number),
                    phone_type: p.phone_type,
                })
                .collect(),
        }
    }
}

/// A JSON-LD collection page: `member`, `totalItems`, and `view` links.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Collection<T> {
    #[serde(rename = "@context")]
    pub context: String,
    #[serde(rename = "@id")]
    pub iri: String,
    #[serde(rename = "@type")]
    pub kind: String,
    pub member: Vec<T>,
    pub total_items: u64,
    pub view: View,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = HydraView)]
pub struct View {
    #[serde(rename = "@id")]
    pub iri: String,
    #[serde(rename = "@type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A note write (`POST`, `PUT`, `PATCH`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OrganizationNoteWrite)]
#[serde(rename_all = "camelCase")]
pub struct NoteWrite {
    /// Accepted and ignored: ids are the service's.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    #[allow(dead_code)]
    pub id: serde::de::IgnoredAny,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub created_at: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub description: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub title: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub flagged: Change<bool>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub is_private: Change<bool>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub author: Change<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub category: Change<String>,
    /// Accepted and checked against the path (write-only in the seed).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub organization_id: Option<Value>,
}

impl NoteWrite {
    pub fn into_change(self, replace: bool) -> Result<NoteChange, Error> {
        let r = |c: Change<String>| if replace { c.or_clear() } else { c };
        let rb = |c: Change<bool>| if replace { c.or_clear() } else { c };
        Ok(NoteChange {
            title: r(self.title),
            description: r(self.description),
            flagged: rb(self.flagged),
            is_private: rb(self.is_private),
            author: r(self.author).try_map(|a| iri_id("author", USERS, &a))?,
            category: r(self.category).try_map(|c| iri_id("category", NOTE_CATEGORIES, &c))?,
            // createdAt is kept unless given, even by a replace.
            created_at: self.created_at,
        })
    }
}

/// Seed 002's `OrganizationNote`, as JSON-LD.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = OrganizationNote)]
#[serde(rename_all = "camelCase")]
pub struct NoteResource {
    #[serde(rename = "@context")]
    pub context: String,
    #[serde(rename = "@id")]
    pub iri: String,
    #[serde(rename = "@type")]
    pub kind: String,
    pub id: String,
    #[schema(required = true)]
    pub created_at: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub title: Option<String>,
    #[schema(required = true)]
    pub flagged: Option<bool>,
    #[schema(required = true)]
    pub is_private: Option<bool>,
    #[schema(required = true)]
    pub author: Option<String>,
    #[schema(required = true)]
    pub category: Option<String>,
}

impl From<Note> for NoteResource {
    fn from(n: Note) -> Self {
        Self {
            context: "/contexts/OrganizationNote".into(),
            iri: format!("/organizations/{}/notes/{}", n.organization_id, n.id),
            kind: "OrganizationNote".into(),
            id: n.id.to_string(),
            created_at: Some(n.created_at),
            description: Some(n.description),
            title: n.title,
            flagged: Some(n.flagged),
            is_private: Some(n.is_private),
            author: n.author.map(|a| iri(USERS, &a)),
            category: Some(iri(NOTE_CATEGORIES, &n.category)),
        }
    }
}
