//! Trusted issuers: which identity providers' session tokens a project
//! accepts. Two items per registration, written in one transaction: the
//! project's own record (for listing) and an attribute on the issuer's
//! lookup item, which maps a token's `iss` (and `aud`) to its project in
//! one GetItem.

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
use serde::Serialize;
use uuid::Uuid;

use super::{build, from_item, key, n, s, storage, to_item, Item, Store, TxOutcome};
use crate::error::Error;
use crate::issuers::TrustedIssuer;
use crate::keys;

#[derive(Serialize)]
struct Keyed<'a> {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(flatten)]
    record: &'a TrustedIssuer,
}

/// The lookup item's attribute that holds a registration.
fn registration_attribute(audience: Option<&str>) -> String {
    match audience {
        None => keys::ISSUER_ANY_AUDIENCE.to_owned(),
        Some(audience) => keys::issuer_audience_attribute(audience),
    }
}

impl Store {
    /// Trusts an issuer for a project. One issuer may serve several
    /// projects only when audiences tell them apart: a registration with
    /// an audience is refused (409) while another project or the same one
    /// holds that audience or the issuer without one, and a registration
    /// without an audience only while nobody holds the issuer. So a token
    /// always maps to one project.
    pub async fn add_issuer(&self, issuer: &TrustedIssuer) -> Result<(), Error> {
        let attribute = registration_attribute(issuer.audience.as_deref());
        let registration = serde_dynamo::to_attribute_value(issuer)
            .map_err(|e| Error::Internal(format!("serialising an issuer: {e}")))?;
        let project_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::project_pk(issuer.project_id),
                keys::PROJECT_SK,
            )))
            .condition_expression("attribute_exists(PK)");
        let lookup = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::issuer_pk(&issuer.issuer), keys::ISSUER_SK)))
            .update_expression(
                "SET issuer = :issuer, #registration = :registration ADD registrations :one",
            )
            .expression_attribute_names("#registration", &attribute)
            .expression_attribute_values(":issuer", s(&issuer.issuer))
            .expression_attribute_values(":registration", registration)
            .expression_attribute_values(":one", n(1));
        let lookup = match issuer.audience {
            Some(_) => lookup
                .condition_expression(
                    "attribute_not_exists(#any) AND attribute_not_exists(#registration)",
                )
                .expression_attribute_names("#any", keys::ISSUER_ANY_AUDIENCE),
            None => lookup
                .condition_expression(
                    "attribute_not_exists(registrations) OR registrations = :zero",
                )
                .expression_attribute_values(":zero", n(0)),
        };
        let record = to_item(&Keyed {
            pk: keys::project_pk(issuer.project_id),
            sk: keys::trusted_issuer_sk(&issuer.issuer, issuer.audience.as_deref()),
            record: issuer,
        })?;
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(PK)");
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(build(project_exists.build())?)
                .build(),
            TransactWriteItem::builder()
                .update(build(lookup.build())?)
                .build(),
            TransactWriteItem::builder()
                .put(build(record.build())?)
                .build(),
        ];
        let outcome = self.transact(items).await?;
        if outcome.condition_failed_at(0) {
            return Err(Error::not_found(format!(
                "project {} does not exist",
                issuer.project_id
            )));
        }
        if outcome.condition_failed_at(1) || outcome.condition_failed_at(2) {
            let holders = self.issuer_registrations(&issuer.issuer).await?;
            return Err(Error::conflict(registration_conflict(issuer, &holders)));
        }
        match outcome {
            TxOutcome::Committed => Ok(()),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "trusting an issuer was cancelled: {reasons:?}"
            ))),
        }
    }

    /// Stops trusting an issuer (for one audience, or the audience-less
    /// registration); its tokens are refused from the next request on.
    pub async fn remove_issuer(
        &self,
        project: Uuid,
        issuer: &str,
        audience: Option<&str>,
    ) -> Result<(), Error> {
        let lookup = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::issuer_pk(issuer), keys::ISSUER_SK)))
            .update_expression("REMOVE #registration ADD registrations :minus_one")
            .condition_expression("#registration.project_id = :project")
            .expression_attribute_names("#registration", registration_attribute(audience))
            .expression_attribute_values(":project", s(project.to_string()))
            .expression_attribute_values(":minus_one", n(-1));
        let record = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::project_pk(project),
                keys::trusted_issuer_sk(issuer, audience),
            )))
            .condition_expression("attribute_exists(PK)");
        let items = vec![
            TransactWriteItem::builder()
                .update(build(lookup.build())?)
                .build(),
            TransactWriteItem::builder()
                .delete(build(record.build())?)
                .build(),
        ];
        let outcome = self.transact(items).await?;
        if outcome.condition_failed_at(0) || outcome.condition_failed_at(1) {
            let audience = audience.map_or_else(
                || " without an audience".to_owned(),
                |a| format!(" for the audience {a:?}"),
            );
            return Err(Error::not_found(format!(
                "project {project} does not trust the issuer {issuer:?}{audience}"
            )));
        }
        match outcome {
            TxOutcome::Committed => Ok(()),
            TxOutcome::Cancelled(reasons) => Err(Error::Storage(format!(
                "removing an issuer was cancelled: {reasons:?}"
            ))),
        }
    }

    /// The issuers a project trusts (one Query of its partition).
    pub async fn project_issuers(&self, project: Uuid) -> Result<Vec<TrustedIssuer>, Error> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::project_pk(project)))
            .expression_attribute_values(":prefix", s(keys::ISSUER_PREFIX))
            .consistent_read(true);
        self.query_all(query)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Every registration of an issuer (one GetItem): what a session token
    /// of that issuer may be matched to. Strongly consistent, so a removed
    /// issuer is refused at once.
    pub async fn issuer_registrations(&self, issuer: &str) -> Result<Vec<TrustedIssuer>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::issuer_pk(issuer), keys::ISSUER_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem", e))?;
        out.item.map_or_else(|| Ok(Vec::new()), registrations)
    }
}

/// The registrations held by an issuer's lookup item.
fn registrations(item: Item) -> Result<Vec<TrustedIssuer>, Error> {
    item.into_iter()
        .filter(|(name, _)| {
            name == keys::ISSUER_ANY_AUDIENCE || name.starts_with(keys::ISSUER_AUDIENCE_PREFIX)
        })
        .map(|(_, value)| {
            serde_dynamo::from_attribute_value(value)
                .map_err(|e| Error::Internal(format!("reading an issuer registration: {e}")))
        })
        .collect()
}

/// Why a registration was refused, naming who holds the issuer.
fn registration_conflict(wanted: &TrustedIssuer, holders: &[TrustedIssuer]) -> String {
    let describe = |held: &TrustedIssuer| match &held.audience {
        Some(audience) => format!("project {} (audience {audience:?})", held.project_id),
        None => format!("project {} (without an audience)", held.project_id),
    };
    let clash = holders.iter().find(|held| {
        held.audience.is_none() || wanted.audience.is_none() || held.audience == wanted.audience
    });
    match clash {
        Some(held) if held.project_id == wanted.project_id && held.audience == wanted.audience => {
            format!(
                "project {} already trusts the issuer {:?}{}; remove it first to change it",
                wanted.project_id,
                wanted.issuer,
                wanted
                    .audience
                    .as_ref()
                    .map_or_else(String::new, |a| format!(" for the audience {a:?}")),
            )
        }
        Some(held) => format!(
            "the issuer {:?} is already trusted by {}: one issuer serves several projects only \
             when each registers it with its own --audience (the `aud` its tokens carry)",
            wanted.issuer,
            describe(held)
        ),
        None => format!(
            "the issuer {:?} was registered at the same time by another request; try again",
            wanted.issuer
        ),
    }
}
