//! An organization's domains: kept in its record (so a read of the
//! organization shows them), each held by a claim item per project
//! (`attribute_not_exists` in the same transaction), so a domain belongs to
//! at most one organization of a project.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use uuid::Uuid;

use super::{build, key, s, Store};
use crate::domain::domains::{normalize_domain, OrgDomain, MAX_DOMAINS};
use crate::domain::Organization;
use crate::error::Error;
use crate::keys;

fn claim_key(project: Uuid, domain: &str) -> super::Item {
    key(keys::domain_pk(project, domain), keys::DOMAIN_SK)
}

/// Takes the domain for the organization: holds only while no
/// organization of the project has it, or (`dead`) while a deleted one
/// still holds it (its purge has not released it yet).
fn take_claim(
    table: &str,
    project: Uuid,
    org: Uuid,
    domain: &OrgDomain,
    dead: Option<Uuid>,
) -> Result<TransactWriteItem, Error> {
    let mut item = claim_key(project, &domain.domain);
    item.insert("owner_id".into(), s(org.to_string()));
    item.insert("domain_id".into(), s(domain.id.to_string()));
    item.insert("domain".into(), s(&domain.domain));
    if let Some(dead) = dead {
        return super::profiles::take_over(table, item, dead);
    }
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Gives the domain up (only if this organization holds it).
pub(crate) fn release_claim(
    table: &str,
    project: Uuid,
    org: Uuid,
    domain: &str,
) -> Result<TransactWriteItem, Error> {
    let delete = build(
        Delete::builder()
            .table_name(table)
            .set_key(Some(claim_key(project, domain)))
            .condition_expression("attribute_not_exists(PK) OR owner_id = :org")
            .expression_attribute_values(":org", s(org.to_string()))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn domains_of(org: &Organization) -> &[OrgDomain] {
    org.accounts.as_ref().map_or(&[], |a| &a.domains)
}

/// The organization's domain with this id (404 otherwise).
pub fn find_domain(org: &Organization, domain_id: &str) -> Result<OrgDomain, Error> {
    domains_of(org)
        .iter()
        .find(|d| d.id.to_string() == domain_id)
        .cloned()
        .ok_or_else(|| {
            Error::not_found(format!("organization {} has no domain {domain_id}", org.id))
        })
}

impl Store {
    /// One of the organization's domains (one read; 404 for either).
    pub async fn organization_domain(
        &self,
        project: Uuid,
        org: Uuid,
        domain_id: &str,
    ) -> Result<OrgDomain, Error> {
        Ok(self
            .organization_and_domain(project, org, domain_id)
            .await?
            .1)
    }

    /// [`Store::organization_domain`] with the record it was read from.
    pub async fn organization_and_domain(
        &self,
        project: Uuid,
        org: Uuid,
        domain_id: &str,
    ) -> Result<(Organization, OrgDomain), Error> {
        let found = self
            .get_organization(project, org)
            .await?
            .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
        let domain = find_domain(&found, domain_id)?;
        Ok((found, domain))
    }

    /// Claims a domain for the organization, unverified, with a fresh
    /// token: one read and one transaction (the record and the claim).
    /// 409 when the organization or another one of the project has it; a
    /// deleted organization's claim is taken over (two more reads, only
    /// then: the claim's holder and its record).
    pub async fn add_domain(
        &self,
        project: Uuid,
        org_id: Uuid,
        raw: &str,
    ) -> Result<OrgDomain, Error> {
        let domain = normalize_domain(raw)?;
        match self.claim_domain(project, org_id, &domain, None).await {
            Err(Error::Conflict(message)) => {
                match self.dead_domain_holder(project, org_id, &domain).await? {
                    Some(dead) => {
                        self.claim_domain(project, org_id, &domain, Some(dead))
                            .await
                    }
                    None => Err(Error::Conflict(message)),
                }
            }
            other => other,
        }
    }

    /// The deleted organization that still holds the domain's claim, if
    /// one does (the claim names it and its record is gone).
    async fn dead_domain_holder(
        &self,
        project: Uuid,
        org_id: Uuid,
        domain: &str,
    ) -> Result<Option<Uuid>, Error> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(project, domain)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| super::storage("GetItem", e))?;
        let Some(holder) = out
            .item
            .as_ref()
            .map(|item| super::text(item, "owner_id"))
            .and_then(|owner| owner.parse::<Uuid>().ok())
            .filter(|owner| *owner != org_id)
        else {
            return Ok(None);
        };
        Ok(match self.get_organization(project, holder).await? {
            Some(_) => None,
            None => Some(holder),
        })
    }

    async fn claim_domain(
        &self,
        project: Uuid,
        org_id: Uuid,
        domain: &str,
        dead: Option<Uuid>,
    ) -> Result<OrgDomain, Error> {
        let domain = domain.to_owned();
        let table = self.table.clone();
        let org = self
            .change_organization(
                project,
                org_id,
                |org, now| {
                    let accounts = org.accounts.get_or_insert_with(Default::default);
                    if accounts.domains.iter().any(|d| d.domain == domain) {
                        return Err(Error::conflict(format!(
                            "the organization already has the domain {domain}"
                        )));
                    }
                    if accounts.domains.len() >= MAX_DOMAINS {
                        return Err(Error::LimitExceeded(format!(
                            "the organization already holds {MAX_DOMAINS} domains, the most one may; remove one first"
                        )));
                    }
                    let claim = OrgDomain::claim(domain.clone(), now)?;
                    let write = take_claim(&table, project, org_id, &claim, dead)?;
                    accounts.domains.push(claim);
                    Ok(Some(vec![write]))
                },
                |outcome| {
                    outcome.condition_failed_at(1).then(|| {
                        Error::conflict(format!(
                            "the domain {domain} belongs to another organization of this project"
                        ))
                    })
                },
            )
            .await?;
        domains_of(&org)
            .iter()
            .find(|d| d.domain == domain)
            .cloned()
            .ok_or_else(|| Error::Internal("the claimed domain is not in the record".into()))
    }

    /// Marks the domain verified (the caller has seen the token in DNS).
    pub async fn mark_domain_verified(
        &self,
        project: Uuid,
        org_id: Uuid,
        domain_id: &str,
        read: Option<Organization>,
    ) -> Result<OrgDomain, Error> {
        let org = self
            .change_organization_from(
                project,
                org_id,
                read,
                |org, now| {
                    find_domain(org, domain_id)?;
                    let accounts = org.accounts.get_or_insert_with(Default::default);
                    let Some(domain) = accounts
                        .domains
                        .iter_mut()
                        .find(|d| d.id.to_string() == domain_id && !d.verified)
                    else {
                        return Ok(None);
                    };
                    domain.verified = true;
                    domain.verified_at = Some(now.to_owned());
                    Ok(Some(Vec::new()))
                },
                |_| None,
            )
            .await?;
        find_domain(&org, domain_id)
    }

    /// Removes the domain from the organization and frees it for the
    /// project: one read and one transaction.
    pub async fn remove_domain(
        &self,
        project: Uuid,
        org_id: Uuid,
        domain_id: &str,
    ) -> Result<(), Error> {
        let table = self.table.clone();
        self.change_organization(
            project,
            org_id,
            |org, _| {
                let removed = find_domain(org, domain_id)?;
                if let Some(accounts) = org.accounts.as_mut() {
                    accounts.domains.retain(|d| d.id != removed.id);
                }
                Ok(Some(vec![release_claim(
                    &table,
                    project,
                    org_id,
                    &removed.domain,
                )?]))
            },
            |_| None,
        )
        .await?;
        Ok(())
    }

    /// The billing email of each organization that has none set: its
    /// oldest owner's email (one read for all of them; none when every
    /// organization has its own).
    pub async fn billing_emails(
        &self,
        project: Uuid,
        orgs: &[Organization],
    ) -> Result<std::collections::HashMap<Uuid, String>, Error> {
        let wanted: Vec<(Uuid, Uuid)> = orgs
            .iter()
            .filter(|o| {
                o.accounts
                    .as_ref()
                    .is_none_or(|a| a.billing_email.is_none())
            })
            .filter_map(|o| o.oldest_owner().map(|user| (o.id, user)))
            .collect();
        if wanted.is_empty() {
            return Ok(Default::default());
        }
        let mut users: Vec<Uuid> = wanted.iter().map(|(_, u)| *u).collect();
        users.sort();
        users.dedup();
        let fetched = self
            .fetch(
                users
                    .iter()
                    .map(|u| super::profiles::record_key::<crate::domain::User>(project, *u))
                    .collect(),
            )
            .await?;
        let mut emails = std::collections::HashMap::new();
        for (org, user) in wanted {
            if let Some(user) = fetched.record::<crate::domain::User>(project, user)? {
                if let Some(email) = user.email() {
                    emails.insert(org, email.to_owned());
                }
            }
        }
        Ok(emails)
    }
}
