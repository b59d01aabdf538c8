//! The CRM dialect's reads and writes: organizations through the compact
//! list index (GSI3, no Scan), and notes in the organization's partition.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use uuid::Uuid;

use super::profiles::{record_key, MAX_ATTEMPTS};
use super::{backoff, build, from_item, key, n, s, to_item, Store, TxOutcome};
use crate::domain::crm::{
    sort_rows, CrmChange, Note, NoteChange, OrgFilter, OrgOrder, OrgRow, TimeBound,
};
use crate::domain::organization::AccountsProfile;
use crate::domain::{Organization, User};
use crate::error::Error;
use crate::keys;

/// DynamoDB takes at most this many values in one `IN`.
pub const MAX_FILTER_VALUES: usize = 100;

/// One page of the CRM's organization list.
#[derive(Clone, Debug, PartialEq)]
pub struct CrmPage {
    pub organizations: Vec<Organization>,
    pub total: u64,
}

fn note_key(project: Uuid, org: Uuid, note: Uuid) -> super::Item {
    key(keys::org_pk(project, org), keys::note_sk(note))
}

/// The filter as a `FilterExpression` over the index's attributes.
struct Expression {
    clauses: Vec<String>,
    values: Vec<(String, AttributeValue)>,
}

impl Expression {
    fn value(&mut self, v: AttributeValue) -> String {
        let name = format!(":f{}", self.values.len());
        self.values.push((name.clone(), v));
        name
    }

    fn any_of(&mut self, attribute: &str, wanted: &[String], contains: bool) {
        if wanted.is_empty() {
            return;
        }
        let parts: Vec<String> = wanted
            .iter()
            .map(|w| {
                let v = self.value(s(w));
                if contains {
                    format!("contains({attribute}, {v})")
                } else {
                    format!("{attribute} = {v}")
                }
            })
            .collect();
        self.clauses.push(format!("({})", parts.join(" OR ")));
    }

    fn of(filter: &OrgFilter) -> Result<Self, Error> {
        for (what, values) in [
            ("owner.id", &filter.owners),
            ("emailAddresses.email", &filter.emails),
            ("tags.id", &filter.tags),
            ("segments.uuid", &filter.segments),
            ("identifiers", &filter.identifiers),
        ] {
            if values.len() > MAX_FILTER_VALUES {
                return Err(Error::invalid(format!(
                    "{what}: at most {MAX_FILTER_VALUES} values"
                )));
            }
        }
        let mut e = Expression {
            clauses: Vec::new(),
            values: Vec::new(),
        };
        if let Some(text) = &filter.text {
            let v = e.value(s(text));
            e.clauses.push(format!("contains(crm_search, {v})"));
        }
        e.any_of("crm_owner", &filter.owners, false);
        e.any_of("crm_emails", &filter.emails, true);
        e.any_of("crm_tags", &filter.tags, true);
        e.any_of("crm_segments", &filter.segments, true);
        e.any_of("crm_idents", &filter.identifiers, true);
        if let Some(archived) = filter.archived {
            let v = e.value(AttributeValue::Bool(archived));
            e.clauses.push(format!("crm_archived = {v}"));
        }
        for (bound, at) in &filter.created {
            let v = e.value(s(at));
            let op = match bound {
                TimeBound::StrictlyAfter => ">",
                TimeBound::After => ">=",
                TimeBound::StrictlyBefore => "<",
                TimeBound::Before => "<=",
            };
            e.clauses.push(format!("created_at {op} {v}"));
        }
        Ok(e)
    }
}

impl Store {
    /// One page of the project's organizations as the CRM lists them: the
    /// compact index (GSI3) read with the filter applied by DynamoDB (one
    /// Query per ~1 MB of index, about 5,000 organizations), sorted, then
    /// the page's records in one `BatchGetItem`. `only`: the organizations
    /// a session may see.
    pub async fn crm_organizations(
        &self,
        project: Uuid,
        filter: &OrgFilter,
        orders: &[(OrgOrder, bool)],
        only: Option<&HashSet<Uuid>>,
        offset: usize,
        limit: usize,
    ) -> Result<CrmPage, Error> {
        let expression = Expression::of(filter)?;
        let mut query = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI3)
            .key_condition_expression("GSI3PK = :pk")
            .expression_attribute_values(":pk", s(keys::crm_list_pk(project)))
            .projection_expression("id, GSI3SK, crm_owner_last");
        if !expression.clauses.is_empty() {
            query = query.filter_expression(expression.clauses.join(" AND "));
            for (name, value) in expression.values {
                query = query.expression_attribute_values(name, value);
            }
        }
        let mut rows: Vec<OrgRow> = self
            .query_all(query)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        if let Some(only) = only {
            rows.retain(|r| only.contains(&r.id));
        }
        sort_rows(&mut rows, orders);
        let total = rows.len() as u64;
        let page: Vec<Uuid> = rows.iter().skip(offset).take(limit).map(|r| r.id).collect();
        if page.is_empty() {
            return Ok(CrmPage {
                organizations: Vec::new(),
                total,
            });
        }
        let fetched = self
            .fetch(
                page.iter()
                    .map(|id| record_key::<Organization>(project, *id))
                    .collect(),
            )
            .await?;
        let mut organizations = Vec::with_capacity(page.len());
        for id in page {
            // One deleted since the index was read is left out.
            if let Some(org) = fetched.record::<Organization>(project, id)? {
                organizations.push(org);
            }
        }
        Ok(CrmPage {
            organizations,
            total,
        })
    }

    /// The last name of the user a CRM `owner` names, checking that the user
    /// exists (one read). `lastName`, `last_name` or `family_name` in the
    /// user's `data`.
    pub async fn owner_last_name(
        &self,
        project: Uuid,
        owner: &str,
    ) -> Result<Option<String>, Error> {
        let unknown = || {
            Error::Unprocessable(format!(
                "owner: /users/{owner} is not a user of this project"
            ))
        };
        let id = Uuid::parse_str(owner).map_err(|_| unknown())?;
        let user: User = self
            .get_record::<User>(project, id)
            .await?
            .ok_or_else(unknown)?;
        Ok(["lastName", "last_name", "family_name"]
            .iter()
            .find_map(|k| user.data.get(*k).and_then(|v| v.as_str()))
            .map(str::to_owned))
    }

    /// Creates an organization from a CRM write (one transaction, as every
    /// creation: record, count, anniversary, event, and the session user
    /// as owner when there is one).
    pub async fn create_crm_organization(
        &self,
        project: Uuid,
        change: &CrmChange,
        owner_last_name: Option<String>,
        owner: Option<Uuid>,
    ) -> Result<Organization, Error> {
        change.validate()?;
        let title = match &change.title {
            crate::domain::address::Change::Set(t) => t.clone(),
            _ => {
                return Err(Error::Unprocessable(
                    "title: an organization must always contain a title".into(),
                ))
            }
        };
        self.create_organization_with(project, &title, AccountsProfile::default(), owner, |org| {
            change.apply(org, owner_last_name.clone());
        })
        .await
    }

    /// Applies a CRM write to an organization (one read, one transaction).
    pub async fn change_crm_organization(
        &self,
        project: Uuid,
        id: Uuid,
        change: &CrmChange,
        owner_last_name: Option<String>,
    ) -> Result<Organization, Error> {
        change.validate()?;
        self.change_organization(
            project,
            id,
            |org, _| Ok(change.apply(org, owner_last_name.clone()).then(Vec::new)),
            |_| None,
        )
        .await
    }
}

impl Store {
    /// The organization's notes (all of them) — one Query that also reads
    /// the organization record, so a missing organization is `None`.
    pub async fn notes(&self, project: Uuid, org: Uuid) -> Result<Option<Vec<Note>>, Error> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :org")
            .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
            .expression_attribute_values(":from", s(keys::NOTE_PREFIX))
            .expression_attribute_values(":org", s(keys::ORG_SK))
            .consistent_read(true);
        let mut found = false;
        let mut notes = Vec::new();
        for item in self.query_all(query).await? {
            if super::text(&item, keys::SK) == keys::ORG_SK {
                found = true;
            } else {
                notes.push(from_item(item)?);
            }
        }
        Ok(found.then_some(notes))
    }

    /// One note, with its organization checked in the same read.
    pub async fn note(&self, project: Uuid, org: Uuid, note: Uuid) -> Result<Note, Error> {
        let fetched = self
            .fetch(vec![
                record_key::<Organization>(project, org),
                note_key(project, org, note),
            ])
            .await?;
        if fetched
            .item(&record_key::<Organization>(project, org))
            .is_none()
        {
            return Err(Error::not_found(format!(
                "no organization has the id {org}"
            )));
        }
        fetched
            .item(&note_key(project, org, note))
            .map(from_item)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("organization {org} has no note {note}")))
    }

    /// Creates a note (one transaction, held by the organization existing).
    pub async fn create_note(
        &self,
        project: Uuid,
        org: Uuid,
        change: &NoteChange,
    ) -> Result<Note, Error> {
        let now = crate::ids::now();
        let note = change
            .apply(None, project, org, &now)?
            .ok_or_else(|| Error::Internal("a new note came out unchanged".into()))?;
        let mut item = to_item(&note)?;
        item.insert(keys::PK.into(), s(keys::org_pk(project, org)));
        item.insert(keys::SK.into(), s(keys::note_sk(note.id)));
        let items = vec![
            self.org_exists(project, org)?,
            super::profiles::put_new(&self.table, item)?,
        ];
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(note),
            outcome if outcome.condition_failed_at(0) => Err(Error::not_found(format!(
                "no organization has the id {org}"
            ))),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "creating a note was cancelled: {reasons:?}"
            ))),
        }
    }

    /// Changes a note: one read, one write conditioned on its version
    /// (retried when another change won). `allowed` may refuse (privacy).
    pub async fn change_note(
        &self,
        project: Uuid,
        org: Uuid,
        id: Uuid,
        change: &NoteChange,
        allowed: impl Fn(&Note) -> Result<(), Error>,
    ) -> Result<Note, Error> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let current = self.note(project, org, id).await?;
            allowed(&current)?;
            let now = crate::ids::now();
            let Some(note) = change.apply(Some(&current), project, org, &now)? else {
                return Ok(current);
            };
            let mut item = to_item(&note)?;
            item.insert(keys::PK.into(), s(keys::org_pk(project, org)));
            item.insert(keys::SK.into(), s(keys::note_sk(note.id)));
            let put = build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("#version = :expected")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":expected", n(current.version))
                    .build(),
            )?;
            let items = vec![
                self.org_exists(project, org)?,
                TransactWriteItem::builder().put(put).build(),
            ];
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(note),
                outcome if outcome.condition_failed_at(0) => {
                    return Err(Error::not_found(format!(
                        "no organization has the id {org}"
                    )))
                }
                TxOutcome::Cancelled(reasons) => {
                    tracing::debug!(?reasons, attempt, "note change lost a race; retrying")
                }
            }
        }
        Err(Error::busy(
            "the note is being changed concurrently; retry the request",
        ))
    }

    /// Deletes a note: one conditional write, which for a session
    /// (`viewer`) also holds only if the note is not another author's
    /// private one (404 either way, as if it did not exist).
    pub async fn delete_note(
        &self,
        project: Uuid,
        org: Uuid,
        id: Uuid,
        viewer: Option<&str>,
    ) -> Result<(), Error> {
        let mut delete = self
            .db
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(note_key(project, org, id)));
        delete = match viewer {
            None => delete.condition_expression("attribute_exists(PK)"),
            // Only the note's author (a session's own notes).
            Some(viewer) => delete
                .condition_expression("attribute_exists(PK) AND author = :viewer")
                .expression_attribute_values(":viewer", s(viewer)),
        };
        match delete.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::not_found(format!(
                    "organization {org} has no note {id}"
                )))
            }
            Err(e) => Err(super::storage("DeleteItem", e)),
        }
    }
}
