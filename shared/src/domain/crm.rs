//! The CRM dialect's own organization fields and notes (seed 002). `title`
//! is the organization's shared `name`; everything else here is the CRM's.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::address::Change;
use super::Organization;

/// Longest free-text field (description, note text).
pub const MAX_TEXT: usize = 10_000;
/// Longest short field (website, ids, a reference).
pub const MAX_SHORT: usize = 2_048;
/// Most entries of one list field (tags, people, emails, …).
pub const MAX_LIST: usize = 100;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CrmEmail {
    pub email: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CrmPhone {
    pub phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_type: Option<String>,
}

/// The CRM's fields of an organization. References (owner, people, tags,
/// segments, avatar) are kept as ids.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrmProfile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chamber_of_commerce_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkedin_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkedin_public_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkedin_internal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// The owning user's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The owner's last name when the owner was set (what
    /// `OrgOrder::OwnerLastName` sorts by).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_last_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub integration_participants: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub email_addresses: Vec<CrmEmail>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<CrmPhone>,
}

/// A CRM write: `PUT` sets or clears every field, `PATCH` only those given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrmChange {
    pub title: Change<String>,
    pub description: Change<String>,
    pub website: Change<String>,
    pub customer_id: Change<String>,
    pub external_source: Change<String>,
    pub chamber_of_commerce_number: Change<String>,
    pub linkedin_id: Change<String>,
    pub archived_at: Change<String>,
    pub owner: Change<String>,
    pub people: Change<Vec<String>>,
    pub avatar: Change<String>,
    pub tags: Change<Vec<String>>,
    pub segments: Change<Vec<String>>,
    pub integration_participants: Change<Vec<String>>,
    pub email_addresses: Change<Vec<CrmEmail>>,
    pub phone_numbers: Change<Vec<CrmPhone>>,
}

fn set<T: Clone + PartialEq>(field: &mut T, change: &Change<T>, cleared: T) {
    match change {
        Change::Keep => {}
        Change::Clear => *field = cleared,
        Change::Set(v) => *field = v.clone(),
    }
}

fn set_opt<T: Clone>(field: &mut Option<T>, change: &Change<T>) {
    match change {
        Change::Keep => {}
        Change::Clear => *field = None,
        Change::Set(v) => *field = Some(v.clone()),
    }
}

/// A field of a CRM organization or note, as the domain names it (the
/// dialect's wire names are functions/crm's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Title,
    Description,
    Website,
    CustomerId,
    ExternalSource,
    ChamberOfCommerceNumber,
    LinkedinId,
    ArchivedAt,
    Owner,
    People,
    Avatar,
    Tags,
    Segments,
    IntegrationParticipants,
    EmailAddresses,
    Email,
    PhoneNumbers,
    PhoneNumber,
    PhoneType,
    NoteTitle,
    NoteDescription,
    NoteCategory,
    NoteAuthor,
    NoteCreatedAt,
}

/// Why a CRM write is refused: the field and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field:?}: {problem}")]
pub struct Refusal {
    pub field: Field,
    pub problem: String,
}

fn refuse<T>(field: Field, problem: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        field,
        problem: problem.into(),
    })
}

fn short(field: Field, value: &str) -> Result<(), Refusal> {
    if value.chars().count() > MAX_SHORT {
        return refuse(
            field,
            format!("this value is too long (at most {MAX_SHORT} characters)"),
        );
    }
    Ok(())
}

fn list<T>(field: Field, values: &[T]) -> Result<(), Refusal> {
    if values.len() > MAX_LIST {
        return refuse(field, format!("at most {MAX_LIST} entries"));
    }
    Ok(())
}

/// What every organization must have.
pub const TITLE_REQUIRED: &str = "an organization must always contain a title";

impl CrmChange {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), Refusal> {
        match &self.title {
            Change::Clear => return refuse(Field::Title, TITLE_REQUIRED),
            Change::Set(t) if t.trim().is_empty() => return refuse(Field::Title, TITLE_REQUIRED),
            Change::Set(t) if t.chars().count() > super::profile::MAX_NAME_LEN => {
                return refuse(Field::Title, "this value is too long")
            }
            _ => {}
        }
        if let Change::Set(d) = &self.description {
            if d.chars().count() > MAX_TEXT {
                return refuse(
                    Field::Description,
                    format!("this value is too long (at most {MAX_TEXT} characters)"),
                );
            }
        }
        for (field, value) in [
            (Field::Website, &self.website),
            (Field::CustomerId, &self.customer_id),
            (Field::ExternalSource, &self.external_source),
            (
                Field::ChamberOfCommerceNumber,
                &self.chamber_of_commerce_number,
            ),
            (Field::LinkedinId, &self.linkedin_id),
            (Field::Owner, &self.owner),
            (Field::Avatar, &self.avatar),
        ] {
            if let Change::Set(v) = value {
                short(field, v)?;
            }
        }
        if let Change::Set(at) = &self.archived_at {
            if crate::ids::parse_timestamp(at).is_none() {
                return refuse(
                    Field::ArchivedAt,
                    "not a date-time (RFC 3339, e.g. 2026-01-31T12:00:00Z)",
                );
            }
        }
        for (field, values) in [
            (Field::People, &self.people),
            (Field::Tags, &self.tags),
            (Field::Segments, &self.segments),
            (
                Field::IntegrationParticipants,
                &self.integration_participants,
            ),
        ] {
            if let Change::Set(v) = values {
                list(field, v)?;
                for value in v {
                    short(field, value)?;
                }
            }
        }
        if let Change::Set(emails) = &self.email_addresses {
            list(Field::EmailAddresses, emails)?;
            for e in emails {
                if super::organization::validate_email("", &e.email).is_err() {
                    return refuse(Field::Email, "not a valid email address");
                }
            }
        }
        if let Change::Set(phones) = &self.phone_numbers {
            list(Field::PhoneNumbers, phones)?;
            for p in phones {
                short(Field::PhoneNumber, &p.phone_number)?;
                if p.phone_number.trim().is_empty() {
                    return refuse(Field::PhoneNumber, "must not be empty");
                }
                if let Some(kind) = &p.phone_type {
                    short(Field::PhoneType, kind)?;
                }
            }
        }
        Ok(())
    }

    /// Applies the change; whether anything changed. `owner_last_name` is
    /// the named owner's last name (read again whenever an owner is given).
    pub fn apply(&self, org: &mut Organization, owner_last_name: Option<String>) -> bool {
        let before = (org.name.clone(), org.crm.clone());
        if let Change::Set(title) = &self.title {
            org.name = Some(title.trim().to_owned());
        }
        let crm = org.crm.get_or_insert_with(Default::default);
        set_opt(&mut crm.description, &self.description);
        set_opt(&mut crm.website, &self.website);
        set_opt(&mut crm.customer_id, &self.customer_id);
        set_opt(&mut crm.external_source, &self.external_source);
        set_opt(
            &mut crm.chamber_of_commerce_number,
            &self.chamber_of_commerce_number,
        );
        set_opt(&mut crm.linkedin_id, &self.linkedin_id);
        let archived = match &self.archived_at {
            Change::Set(at) => Change::Set(
                crate::ids::parse_timestamp(at)
                    .map(crate::ids::timestamp)
                    .unwrap_or_else(|| at.clone()),
            ),
            other => other.clone(),
        };
        set_opt(&mut crm.archived_at, &archived);
        match &self.owner {
            Change::Keep => {}
            Change::Clear => {
                crm.owner = None;
                crm.owner_last_name = None;
            }
            Change::Set(owner) => {
                crm.owner = Some(owner.clone());
                crm.owner_last_name = owner_last_name;
            }
        }
        set(&mut crm.people, &self.people, Vec::new());
        set_opt(&mut crm.avatar, &self.avatar);
        set(&mut crm.tags, &self.tags, Vec::new());
        set(&mut crm.segments, &self.segments, Vec::new());
        set(
            &mut crm.integration_participants,
            &self.integration_participants,
            Vec::new(),
        );
        set(&mut crm.email_addresses, &self.email_addresses, Vec::new());
        set(&mut crm.phone_numbers, &self.phone_numbers, Vec::new());
        if org
            .crm
            .as_ref()
            .is_some_and(|c| *c == CrmProfile::default())
            && before.1.is_none()
        {
            org.crm = None;
        }
        (org.name.clone(), org.crm.clone()) != before
    }
}

/// The values the organization list's filters, orders and search compare,
/// derived from the record (what the store indexes and what a row read is
/// checked against, so the two always agree).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListFields {
    /// Lower-cased title, what `Title` orders by.
    pub title: String,
    pub owner: Option<String>,
    /// Lower-cased; empty when the owner has no last name (or no owner).
    pub owner_last_name: String,
    pub tags: Vec<String>,
    pub segments: Vec<String>,
    /// Lower-cased.
    pub emails: Vec<String>,
    /// LinkedIn ids, lower-cased emails and phone numbers (digits and `+`).
    pub identifiers: Vec<String>,
    pub archived: bool,
    /// The words search finds the organization by (see [`search_tokens`]).
    pub tokens: Vec<String>,
}

/// At most this many distinct words of an organization are searchable:
/// each is an index entry written with the organization.
pub const MAX_SEARCH_TOKENS: usize = 40;

/// The words of a text as search compares them: maximal runs of letters
/// and digits, lower-cased (so `info@acme.example` is `info`, `acme`,
/// `example`), each at most 64 characters.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().chars().take(64).collect())
}

/// The organization's searchable words, in this order until
/// [`MAX_SEARCH_TOKENS`]: the title's, then the website's, the customer
/// id's, the chamber of commerce number's, the LinkedIn ids', the email
/// addresses' and the phone numbers' (each number also as its digits).
pub fn search_tokens(org: &Organization) -> Vec<String> {
    let crm = org.crm.clone().unwrap_or_default();
    let mut texts: Vec<String> = vec![org.name.clone().unwrap_or_default()];
    texts.extend(
        [
            &crm.website,
            &crm.customer_id,
            &crm.chamber_of_commerce_number,
            &crm.linkedin_id,
            &crm.linkedin_public_identifier,
            &crm.linkedin_internal_id,
        ]
        .into_iter()
        .flatten()
        .cloned(),
    );
    texts.extend(crm.email_addresses.iter().map(|e| e.email.clone()));
    for phone in &crm.phone_numbers {
        texts.push(phone.phone_number.clone());
        texts.push(normalize_phone(&phone.phone_number));
    }
    let mut seen = std::collections::HashSet::new();
    let mut tokens = Vec::new();
    for text in &texts {
        for word in words(text) {
            if tokens.len() == MAX_SEARCH_TOKENS {
                return tokens;
            }
            if seen.insert(word.clone()) {
                tokens.push(word);
            }
        }
    }
    tokens
}

/// A phone number as `identifiers` compares it: digits and a leading `+`.
pub fn normalize_phone(raw: &str) -> String {
    let mut out = String::new();
    for (i, c) in raw.trim().chars().enumerate() {
        if c.is_ascii_digit() || (i == 0 && c == '+') {
            out.push(c);
        }
    }
    out
}

impl ListFields {
    pub fn of(org: &Organization) -> Self {
        let crm = org.crm.clone().unwrap_or_default();
        let title = org.name.clone().unwrap_or_default().to_lowercase();
        let emails: Vec<String> = crm
            .email_addresses
            .iter()
            .map(|e| e.email.to_lowercase())
            .collect();
        let mut identifiers: Vec<String> = [
            &crm.linkedin_id,
            &crm.linkedin_public_identifier,
            &crm.linkedin_internal_id,
        ]
        .into_iter()
        .flatten()
        .map(|v| v.to_lowercase())
        .collect();
        identifiers.extend(emails.iter().cloned());
        identifiers.extend(
            crm.phone_numbers
                .iter()
                .map(|p| normalize_phone(&p.phone_number))
                .filter(|p| !p.is_empty()),
        );
        ListFields {
            title,
            owner: crm.owner.filter(|o| !o.is_empty()),
            owner_last_name: crm.owner_last_name.unwrap_or_default().to_lowercase(),
            tags: crm.tags,
            segments: crm.segments,
            emails,
            identifiers,
            archived: crm.archived_at.is_some(),
            tokens: search_tokens(org),
        }
    }
}

/// A note on an organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: Uuid,
    pub project_id: Uuid,
    pub organization_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    #[serde(default)]
    pub flagged: bool,
    #[serde(default)]
    pub is_private: bool,
    /// The author's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The note category's id.
    pub category: String,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A note write: `POST`/`PUT` give every field, `PATCH` only some.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NoteChange {
    pub title: Change<String>,
    pub description: Change<String>,
    pub flagged: Change<bool>,
    pub is_private: Change<bool>,
    pub author: Change<String>,
    pub category: Change<String>,
    pub created_at: Change<String>,
}

impl NoteChange {
    /// A new note, or the existing one changed (`None`: nothing changed).
    pub fn apply(
        &self,
        current: Option<&Note>,
        project_id: Uuid,
        organization_id: Uuid,
        now: &str,
    ) -> Result<Option<Note>, Refusal> {
        let mut note = match current {
            Some(n) => n.clone(),
            None => Note {
                id: crate::ids::new_id(),
                project_id,
                organization_id,
                title: None,
                description: String::new(),
                flagged: false,
                is_private: false,
                author: None,
                category: String::new(),
                version: 0,
                created_at: now.to_owned(),
                updated_at: now.to_owned(),
            },
        };
        let required = |field: Field| refuse(field, "this value should not be blank");
        match &self.description {
            Change::Clear => return required(Field::NoteDescription),
            Change::Set(d) if d.trim().is_empty() => return required(Field::NoteDescription),
            Change::Set(d) if d.chars().count() > MAX_TEXT => {
                return refuse(
                    Field::NoteDescription,
                    format!("this value is too long (at most {MAX_TEXT} characters)"),
                )
            }
            Change::Set(d) => note.description = d.clone(),
            Change::Keep => {}
        }
        match &self.category {
            Change::Clear => return required(Field::NoteCategory),
            Change::Set(c) => note.category = c.clone(),
            Change::Keep => {}
        }
        if note.description.is_empty() {
            return required(Field::NoteDescription);
        }
        if note.category.is_empty() {
            return required(Field::NoteCategory);
        }
        if let Change::Set(t) = &self.title {
            short(Field::NoteTitle, t)?;
        }
        set_opt(&mut note.title, &self.title);
        set(&mut note.flagged, &self.flagged, false);
        set(&mut note.is_private, &self.is_private, false);
        if let Change::Set(a) = &self.author {
            short(Field::NoteAuthor, a)?;
        }
        set_opt(&mut note.author, &self.author);
        if let Change::Set(at) = &self.created_at {
            note.created_at = crate::ids::parse_timestamp(at)
                .map(crate::ids::timestamp)
                .ok_or_else(|| Refusal {
                    field: Field::NoteCreatedAt,
                    problem: "not a date-time (RFC 3339)".into(),
                })?;
        }
        if current == Some(&note) {
            return Ok(None);
        }
        note.version += 1;
        note.updated_at = now.to_owned();
        Ok(Some(note))
    }
}

/// How a time filter compares (`createdAt[after]` is `After`, inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBound {
    StrictlyAfter,
    After,
    StrictlyBefore,
    Before,
}

impl TimeBound {
    pub fn holds(self, value: &str, bound: &str) -> bool {
        match self {
            TimeBound::StrictlyAfter => value > bound,
            TimeBound::After => value >= bound,
            TimeBound::StrictlyBefore => value < bound,
            TimeBound::Before => value <= bound,
        }
    }
}

/// A timestamp filter value (RFC 3339, or a date meaning its midnight UTC)
/// in the stored form, so that strings compare as times.
pub fn filter_time(raw: &str) -> Option<String> {
    if let Some(at) = crate::ids::parse_timestamp(raw) {
        return Some(crate::ids::timestamp(at));
    }
    let date = time::Date::parse(
        raw,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(crate::ids::timestamp(date.midnight().assume_utc()))
}

/// What the organization list can be narrowed to (every field is "any of
/// these"; empty means no filter).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrgFilter {
    /// Words to find: each must start one of the organization's
    /// searchable words ([`search_tokens`]).
    pub text: Option<String>,
    pub owners: Vec<String>,
    /// Lower-cased.
    pub emails: Vec<String>,
    pub tags: Vec<String>,
    pub segments: Vec<String>,
    pub archived: Option<bool>,
    pub created: Vec<(TimeBound, String)>,
    /// Lower-cased emails / LinkedIn ids and normalised phone numbers.
    pub identifiers: Vec<String>,
}

/// What the list is ordered by (with no order: creation time, then id).
/// Ties break in creation order; organizations without an owner's last
/// name come last in either direction of `OwnerLastName`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgOrder {
    Title,
    OwnerLastName,
}

impl OrgFilter {
    /// Nothing narrows the list.
    pub fn is_empty(&self) -> bool {
        *self == OrgFilter::default()
    }

    /// The search's words (`text` split as [`words`] splits).
    pub fn search_words(&self) -> Vec<String> {
        self.text
            .as_deref()
            .map(|t| words(t).collect())
            .unwrap_or_default()
    }

    /// Whether the organization is in the list: every filter given holds
    /// (each "any of its values"), and every word of the search is the
    /// start of one of the organization's searchable words.
    pub fn matches(&self, org: &Organization) -> bool {
        let fields = ListFields::of(org);
        let any = |wanted: &[String], have: &[String]| {
            wanted.is_empty() || have.iter().any(|h| wanted.contains(h))
        };
        any(&self.owners, fields.owner.as_slice())
            && any(&self.emails, &fields.emails)
            && any(&self.tags, &fields.tags)
            && any(&self.segments, &fields.segments)
            && any(&self.identifiers, &fields.identifiers)
            && self.archived.is_none_or(|a| a == fields.archived)
            && self
                .created
                .iter()
                .all(|(bound, at)| bound.holds(&org.created_at, at))
            && self
                .search_words()
                .iter()
                .all(|w| fields.tokens.iter().any(|t| t.starts_with(w.as_str())))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteOrder {
    Flagged,
    CreatedAt,
}

/// What a note list can be narrowed to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NoteFilter {
    pub text: Option<String>,
    pub flagged: Option<bool>,
    pub categories: Vec<String>,
    pub authors: Vec<String>,
    pub created: Vec<(TimeBound, String)>,
    pub orders: Vec<(NoteOrder, bool)>,
    /// A session user's id: private notes of other authors are hidden.
    pub viewer: Option<String>,
}

impl NoteFilter {
    /// Every note in creation order: nothing filters, orders or hides.
    pub fn is_everything(&self) -> bool {
        self.text.is_none()
            && self.flagged.is_none()
            && self.categories.is_empty()
            && self.authors.is_empty()
            && self.created.is_empty()
            && self.orders.is_empty()
            && self.viewer.is_none()
    }

    pub fn visible(&self, note: &Note) -> bool {
        match &self.viewer {
            Some(viewer) => !note.is_private || note.author.as_ref() == Some(viewer),
            None => true,
        }
    }

    fn matches(&self, note: &Note) -> bool {
        let any = |wanted: &[String], value: Option<&String>| {
            wanted.is_empty() || value.is_some_and(|v| wanted.contains(v))
        };
        self.visible(note)
            && self.flagged.is_none_or(|f| note.flagged == f)
            && any(&self.categories, Some(&note.category))
            && any(&self.authors, note.author.as_ref())
            && self
                .created
                .iter()
                .all(|(bound, at)| bound.holds(&note.created_at, at))
            && self.text.as_ref().is_none_or(|q| {
                note.description.to_lowercase().contains(q)
                    || note
                        .title
                        .as_ref()
                        .is_some_and(|t| t.to_lowercase().contains(q))
            })
    }

    /// The matching notes in order (creation order unless told otherwise).
    pub fn select(&self, notes: Vec<Note>) -> Vec<Note> {
        let mut found: Vec<Note> = notes.into_iter().filter(|n| self.matches(n)).collect();
        found.sort_by(|a, b| {
            for (order, descending) in &self.orders {
                let ordering = match order {
                    NoteOrder::Flagged => a.flagged.cmp(&b.flagged),
                    NoteOrder::CreatedAt => a.created_at.cmp(&b.created_at),
                };
                let ordering = if *descending {
                    ordering.reverse()
                } else {
                    ordering
                };
                if ordering.is_ne() {
                    return ordering;
                }
            }
            a.id.cmp(&b.id)
        });
        found
    }
}

#[cfg(test)]
mod query_tests {
    use super::*;

    #[test]
    fn time_filters_take_dates_and_compare_as_times() {
        let day = filter_time("2026-03-01").unwrap();
        assert_eq!(day, "2026-03-01T00:00:00.000Z");
        assert_eq!(
            filter_time("2026-03-01T02:00:00+02:00").as_deref(),
            Some("2026-03-01T00:00:00.000Z")
        );
        assert!(filter_time("March").is_none());
        assert!(TimeBound::After.holds(&day, &day));
        assert!(!TimeBound::StrictlyAfter.holds(&day, &day));
        assert!(TimeBound::Before.holds(&day, &day));
        assert!(!TimeBound::StrictlyBefore.holds(&day, &day));
    }

    #[test]
    fn private_notes_show_only_to_their_author() {
        let note = |author: &str, private: bool| Note {
            id: Uuid::now_v7(),
            project_id: Uuid::nil(),
            organization_id: Uuid::nil(),
            title: None,
            description: "d".into(),
            flagged: false,
            is_private: private,
            author: Some(author.into()),
            category: "1".into(),
            version: 1,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
        };
        let notes = vec![note("ann", true), note("bob", true), note("bob", false)];
        let as_ann = NoteFilter {
            viewer: Some("ann".into()),
            ..Default::default()
        };
        assert_eq!(as_ann.select(notes.clone()).len(), 2);
        assert_eq!(
            NoteFilter::default().select(notes).len(),
            3,
            "a secret key sees all"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::organization::AccountsProfile;

    fn org() -> Organization {
        Organization::create_named(
            Uuid::nil(),
            "Acme",
            AccountsProfile::default(),
            "2026-01-01T00:00:00.000Z",
        )
        .unwrap()
        .0
    }

    #[test]
    fn a_title_is_always_required() {
        for title in [Change::Clear, Change::Set("  ".to_owned())] {
            let change = CrmChange {
                title,
                ..Default::default()
            };
            let err = change.validate().unwrap_err();
            assert_eq!(err.field, Field::Title, "{err}");
        }
    }

    #[test]
    fn put_clears_what_it_omits_and_patch_keeps_it() {
        let mut o = org();
        let full = CrmChange {
            title: Change::Set("Acme BV".into()),
            website: Change::Set("https://acme.example".into()),
            tags: Change::Set(vec!["1".into(), "2".into()]),
            owner: Change::Set("7".into()),
            ..Default::default()
        };
        assert!(full.apply(&mut o, Some("Jansen".into())));
        assert_eq!(o.name.as_deref(), Some("Acme BV"));
        let crm = o.crm.clone().unwrap();
        assert_eq!(crm.owner_last_name.as_deref(), Some("Jansen"));
        let patch = CrmChange {
            description: Change::Set("d".into()),
            ..Default::default()
        };
        assert!(patch.apply(&mut o, None));
        let crm = o.crm.clone().unwrap();
        assert_eq!(crm.website.as_deref(), Some("https://acme.example"));
        assert_eq!(crm.owner_last_name.as_deref(), Some("Jansen"), "owner kept");
        assert!(
            !patch.apply(&mut o, None),
            "the same patch again is no change"
        );
        let put = CrmChange {
            title: Change::Set("Acme BV".into()),
            description: Change::Clear,
            website: Change::Clear,
            tags: Change::Clear,
            owner: Change::Clear,
            ..Default::default()
        };
        assert!(put.apply(&mut o, None));
        let crm = o.crm.clone().unwrap();
        assert_eq!((crm.website, crm.tags.len(), crm.owner), (None, 0, None));
        assert_eq!(crm.owner_last_name, None);
    }

    #[test]
    fn the_index_flattens_what_filters_read() {
        let mut o = org();
        CrmChange {
            title: Change::Set("Acme BV".into()),
            linkedin_id: Change::Set("ACME-LI".into()),
            email_addresses: Change::Set(vec![CrmEmail {
                email: "Info@Acme.example".into(),
            }]),
            phone_numbers: Change::Set(vec![CrmPhone {
                phone_number: "+31 (20) 123-4567".into(),
                phone_type: None,
            }]),
            archived_at: Change::Set("2026-02-01T00:00:00Z".into()),
            ..Default::default()
        }
        .apply(&mut o, None);
        let index = ListFields::of(&o);
        assert_eq!(index.title, "acme bv");
        assert_eq!(index.emails, vec!["info@acme.example"]);
        assert_eq!(
            index.identifiers,
            vec!["acme-li", "info@acme.example", "+31201234567"]
        );
        assert!(index.archived);
        assert_eq!(
            index.tokens,
            vec![
                "acme",
                "bv",
                "li",
                "info",
                "example",
                "31",
                "20",
                "123",
                "4567",
                "31201234567"
            ]
        );
        let found = |q: &str| {
            OrgFilter {
                text: Some(q.into()),
                ..Default::default()
            }
            .matches(&o)
        };
        assert!(found("ACM"), "a word's start, any case");
        assert!(found("acme.ex"), "every word of the search");
        assert!(found("3120123"));
        assert!(!found("cme"), "not inside a word");
        assert!(!found("acme zz"));
        assert_eq!(
            o.crm.unwrap().archived_at.as_deref(),
            Some("2026-02-01T00:00:00.000Z")
        );
    }

    #[test]
    fn notes_need_a_description_and_a_category() {
        let now = "2026-01-01T00:00:00.000Z";
        let missing = NoteChange {
            description: Change::Set("Called them".into()),
            ..Default::default()
        };
        assert!(missing.apply(None, Uuid::nil(), Uuid::nil(), now).is_err());
        let full = NoteChange {
            description: Change::Set("Called them".into()),
            category: Change::Set("3".into()),
            flagged: Change::Set(true),
            ..Default::default()
        };
        let note = full
            .apply(None, Uuid::nil(), Uuid::nil(), now)
            .unwrap()
            .unwrap();
        assert_eq!((note.version, note.flagged), (1, true));
        assert_eq!(
            full.apply(Some(&note), Uuid::nil(), Uuid::nil(), now)
                .unwrap(),
            None
        );
        let unflag = NoteChange {
            flagged: Change::Set(false),
            ..Default::default()
        };
        let changed = unflag
            .apply(Some(&note), Uuid::nil(), Uuid::nil(), now)
            .unwrap()
            .unwrap();
        assert_eq!((changed.version, changed.flagged), (2, false));
        assert_eq!(changed.description, "Called them");
    }
}
