//! An organization's notes, in its partition (`NOTE#<note id>`, ids in
//! creation order) with their count (`NOTE!COUNT`, just before them), so
//! a page of the notes is one Query of about its offset plus its page.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use uuid::Uuid;

use super::profiles::{record_key, MAX_ATTEMPTS};
use super::{backoff, build, from_item, key, n, s, to_item, Item, Store, TxOutcome};
use crate::domain::crm::Note;
use crate::domain::Organization;
use crate::error::Error;
use crate::keys;

/// A filtered or ordered note list considers this many of the
/// organization's most recent notes (by creation).
pub const MAX_LISTED_NOTES: usize = 1_000;

/// One page of an organization's notes, in creation order.
#[derive(Clone, Debug, PartialEq)]
pub struct NotePage {
    pub notes: Vec<Note>,
    /// The organization's notes in all.
    pub total: u64,
}

fn note_key(project: Uuid, org: Uuid, note: Uuid) -> Item {
    key(keys::org_pk(project, org), keys::note_sk(note))
}

/// Adds `delta` to the organization's note count.
fn count_notes(
    table: &str,
    project: Uuid,
    org: Uuid,
    delta: i64,
) -> Result<TransactWriteItem, Error> {
    let update = build(
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(table)
            .set_key(Some(key(keys::org_pk(project, org), keys::NOTE_COUNT_SK)))
            .update_expression("ADD #count :delta")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":delta", n(delta))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().update(update).build())
}

impl Store {
    /// One page of the organization's notes in creation order, and their
    /// count: one Query from the count through `offset + limit` notes,
    /// beside the record's read (a deleted organization's notes stay until
    /// its purge reaches them, and are not listed). `None` when the
    /// organization does not exist.
    pub async fn notes_page(
        &self,
        project: Uuid,
        org: Uuid,
        offset: usize,
        limit: usize,
    ) -> Result<Option<NotePage>, Error> {
        let want = offset + limit + 1;
        let (items, found) = tokio::join!(
            self.note_range(project, org, keys::NOTE_COUNT_SK, true, want),
            self.org_found(project, org)
        );
        if !found? {
            return Ok(None);
        }
        let items = items?;
        let mut total = None;
        let mut notes = Vec::new();
        for item in items {
            if super::text(&item, keys::SK) == keys::NOTE_COUNT_SK {
                total = item
                    .get("count")
                    .and_then(|c| c.as_n().ok())
                    .and_then(|c| c.parse::<i64>().ok());
            } else {
                notes.push(from_item::<Note>(item)?);
            }
        }
        Ok(Some(NotePage {
            notes: notes.into_iter().skip(offset).take(limit).collect(),
            total: total.unwrap_or(0).max(0) as u64,
        }))
    }

    /// The organization's most recent notes, at most [`MAX_LISTED_NOTES`]
    /// (one Query, newest first, beside the record's read); `None` when the
    /// organization does not exist.
    pub async fn recent_notes(&self, project: Uuid, org: Uuid) -> Result<Option<Vec<Note>>, Error> {
        let (items, found) = tokio::join!(
            self.note_range(project, org, keys::NOTE_PREFIX, false, MAX_LISTED_NOTES),
            self.org_found(project, org)
        );
        if !found? {
            return Ok(None);
        }
        let items = items?;
        let notes: Vec<Note> = items
            .into_iter()
            .filter(|item| super::text(item, keys::SK).starts_with(keys::NOTE_PREFIX))
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok(Some(notes))
    }

    /// Up to `want` items of the notes' range from `from` (the count, then
    /// the notes), forward or backward.
    async fn note_range(
        &self,
        project: Uuid,
        org: Uuid,
        from: &str,
        forward: bool,
        want: usize,
    ) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(keys::NOTES_END))
                .scan_index_forward(forward)
                .limit((want - items.len()).clamp(1, 1_000) as i32)
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| super::storage("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || items.len() >= want {
                return Ok(items);
            }
        }
    }

    async fn org_found(&self, project: Uuid, org: Uuid) -> Result<bool, Error> {
        Ok(self
            .get_record::<Organization>(project, org)
            .await?
            .is_some())
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

    /// Creates a note the caller made (one transaction, held by the
    /// organization existing, with the note count).
    pub async fn create_note(&self, project: Uuid, org: Uuid, note: Note) -> Result<Note, Error> {
        let mut item = to_item(&note)?;
        item.insert(keys::PK.into(), s(keys::org_pk(project, org)));
        item.insert(keys::SK.into(), s(keys::note_sk(note.id)));
        let items = vec![
            self.org_exists(project, org)?,
            super::profiles::put_new(&self.table, item)?,
            count_notes(&self.table, project, org, 1)?,
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
    /// (retried when another change won). `decide(current, now)` returns
    /// the note as it becomes (`None`: unchanged) or refuses.
    pub async fn change_note(
        &self,
        project: Uuid,
        org: Uuid,
        id: Uuid,
        decide: impl Fn(&Note, &str) -> Result<Option<Note>, Error>,
    ) -> Result<Note, Error> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let current = self.note(project, org, id).await?;
            let now = crate::ids::now();
            let Some(note) = decide(&current, &now)? else {
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

    /// Deletes a note: one transaction (the note, its count), which for a
    /// session (`viewer`) also holds only if the note is not another
    /// author's private one (404 either way, as if it did not exist).
    pub async fn delete_note(
        &self,
        project: Uuid,
        org: Uuid,
        id: Uuid,
        viewer: Option<&str>,
    ) -> Result<(), Error> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(note_key(project, org, id)));
        let delete = match viewer {
            None => delete.condition_expression("attribute_exists(PK)"),
            // Only the note's author (a session's own notes).
            Some(viewer) => delete
                .condition_expression("attribute_exists(PK) AND author = :viewer")
                .expression_attribute_values(":viewer", s(viewer)),
        };
        let items = vec![
            TransactWriteItem::builder()
                .delete(build(delete.build())?)
                .build(),
            count_notes(&self.table, project, org, -1)?,
        ];
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(()),
            outcome if outcome.condition_failed_at(0) => Err(Error::not_found(format!(
                "organization {org} has no note {id}"
            ))),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "deleting a note was cancelled: {reasons:?}"
            ))),
        }
    }
}
