//! The facts a segmentation rule reads about one user, in a bounded number
//! of reads: the user (its markers, then its record), its memberships (one
//! Query of the user → organizations index), their organizations (one
//! BatchGetItem), and — only for the events the rule counts — each
//! organization's daily counters in the rule's window (one Query each, in
//! parallel).

use time::OffsetDateTime;
use uuid::Uuid;

use super::{from_item, s, Store};
use crate::domain::segment::{Facts, OrgFacts, Rule};
use crate::domain::{IdentifierKey, Organization};
use crate::error::Error;
use crate::keys;

#[derive(serde::Deserialize)]
struct Counter {
    name: String,
    day: String,
    count: u64,
}

impl Store {
    pub async fn user_facts(
        &self,
        project: Uuid,
        user: &[IdentifierKey],
        rule: &Rule,
        now: OffsetDateTime,
    ) -> Result<Facts, Error> {
        let user = self.find_user(project, user).await?;
        let memberships = self.user_memberships(project, user.id).await?;
        let fetched = self
            .fetch(
                memberships
                    .iter()
                    .map(|m| {
                        super::profiles::record_key::<Organization>(project, m.organization_id)
                    })
                    .collect(),
            )
            .await?;
        let windows = rule.event_windows(now);
        let mut tasks = tokio::task::JoinSet::new();
        let mut organizations = Vec::with_capacity(memberships.len());
        for membership in memberships {
            // A membership whose organization was deleted a moment ago.
            let Some(organization) =
                fetched.record::<Organization>(project, membership.organization_id)?
            else {
                continue;
            };
            for (name, from) in &windows {
                let store = self.clone();
                let (name, org) = (name.clone(), organization.id);
                let from = from.map_or_else(|| "0000-00-00".to_owned(), |d| d.to_string());
                let to = now.date().to_string();
                let slot = organizations.len();
                tasks.spawn(async move {
                    let query = store
                        .db
                        .query()
                        .table_name(&store.table)
                        .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                        .expression_attribute_values(":pk", s(keys::org_pk(project, org)))
                        .expression_attribute_values(":from", s(keys::counter_sk(&name, &from)))
                        .expression_attribute_values(":to", s(keys::counter_sk(&name, &to)));
                    let items = store.query_all(query).await?;
                    let counters = items
                        .into_iter()
                        .map(from_item::<Counter>)
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok::<_, Error>((slot, counters))
                });
            }
            organizations.push(OrgFacts {
                organization,
                membership,
                counters: Vec::new(),
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (slot, counters) =
                done.map_err(|e| Error::Internal(format!("a counter read failed: {e}")))??;
            if let Some(o) = organizations.get_mut(slot) {
                o.counters
                    .extend(counters.into_iter().map(|c| (c.name, c.day, c.count)));
            }
        }
        Ok(Facts {
            user,
            organizations,
            now,
        })
    }
}
