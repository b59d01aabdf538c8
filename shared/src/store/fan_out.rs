//! A `match` fan-out's steps, each queueing the next: a marker per next
//! step, so a step delivered twice (SQS delivers at least once) queues its
//! next step once, not a second chain that would walk the rest of the
//! project again. The marker says `sending` before the message goes and
//! `sent` after: a step delivered again finds `sent` and queues nothing,
//! or `sending` (its send failed, or it died before saying so) and sends
//! again — at worst a duplicate, never a lost step.

use uuid::Uuid;

use super::{conditional, key, n, s, Store};
use crate::error::Error;
use crate::keys;

/// How long a marker is kept: SQS keeps a message 14 days at most.
const MARKER_DAYS: i64 = 14;

const SENDING: &str = "sending";
const SENT: &str = "sent";

impl Store {
    /// Whether this delivery is to queue the step of `event`'s fan-out
    /// that starts after organization `after`: false when an earlier
    /// delivery has sent it.
    pub async fn claim_next_step(
        &self,
        project: Uuid,
        event: Uuid,
        after: Uuid,
    ) -> Result<bool, Error> {
        let expires = time::OffsetDateTime::now_utc().unix_timestamp() + MARKER_DAYS * 86_400;
        let mut item = key(
            keys::fan_out_pk(project, event),
            keys::fan_out_step_sk(after),
        );
        item.insert("state".into(), s(SENDING));
        item.insert(keys::TTL.into(), n(expires));
        let result = self
            .db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR #state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s(SENDING))
            .send()
            .await;
        conditional(result, "PutItem")
    }

    /// Records that the step [`Store::claim_next_step`] claimed is queued.
    pub async fn next_step_sent(
        &self,
        project: Uuid,
        event: Uuid,
        after: Uuid,
    ) -> Result<(), Error> {
        self.db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::fan_out_pk(project, event),
                keys::fan_out_step_sk(after),
            )))
            .update_expression("SET #state = :sent")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s(SENT))
            .send()
            .await
            .map_err(|e| super::storage("UpdateItem", e))?;
        Ok(())
    }
}
