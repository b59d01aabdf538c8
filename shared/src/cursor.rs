//! Opaque pagination cursors, bound to the caller's project: a cursor made
//! for one project is refused for any other, and every key inside it must
//! lie in the caller's partitions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::keys;

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The project the cursor was made for.
    p: Uuid,
    /// Reading backwards (a previous-page cursor).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    b: bool,
    /// The position: string attributes of DynamoDB's LastEvaluatedKey.
    k: HashMap<String, String>,
}

/// Encodes DynamoDB's `LastEvaluatedKey` for `project` (string keys only,
/// which is all this table's keys are).
pub fn encode(project: Uuid, last_key: &HashMap<String, AttributeValue>) -> String {
    encode_page(project, false, last_key)
}

/// Like [`encode`], for a list that can be read in either direction.
pub fn encode_page(
    project: Uuid,
    backwards: bool,
    key: &HashMap<String, AttributeValue>,
) -> String {
    let k = key
        .iter()
        .filter_map(|(name, value)| value.as_s().ok().map(|v| (name.clone(), v.clone())))
        .collect();
    let json = serde_json::to_vec(&Envelope {
        p: project,
        b: backwards,
        k,
    })
    .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Like [`decode`]; also tells whether the cursor reads backwards.
pub fn decode_page(
    project: Uuid,
    cursor: &str,
) -> Result<(bool, HashMap<String, AttributeValue>), Error> {
    let envelope = open(project, cursor)?;
    Ok((envelope.b, into_key(envelope.k)))
}

fn into_key(k: HashMap<String, String>) -> HashMap<String, AttributeValue> {
    k.into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect()
}

/// Decodes a cursor for `project`; a cursor that is damaged, or was made for
/// another project, is a 400.
pub fn decode(project: Uuid, cursor: &str) -> Result<HashMap<String, AttributeValue>, Error> {
    open(project, cursor).map(|envelope| into_key(envelope.k))
}

/// A position in the project's user index (after user `after`), for lists
/// that walk users in id order.
pub fn encode_user_position(project: Uuid, after: Uuid) -> String {
    let key = [
        (
            keys::GSI1PK.to_owned(),
            AttributeValue::S(keys::user_list_pk(project)),
        ),
        (
            keys::GSI1SK.to_owned(),
            AttributeValue::S(keys::user_list_sk(after)),
        ),
    ]
    .into_iter()
    .collect();
    encode(project, &key)
}

/// The user a position made by [`encode_user_position`] points after; any
/// other cursor is a 400.
pub fn decode_user_position(project: Uuid, cursor: &str) -> Result<Uuid, Error> {
    let key = decode(project, cursor)?;
    let read = |name: &str| key.get(name).and_then(|v| v.as_s().ok()).cloned();
    if read(keys::GSI1PK) != Some(keys::user_list_pk(project)) {
        return Err(Error::invalid("the cursor belongs to another list"));
    }
    read(keys::GSI1SK)
        .and_then(|sk| {
            sk.strip_prefix(keys::USER_LIST_PREFIX)
                .and_then(|id| id.parse().ok())
        })
        .ok_or_else(|| Error::invalid("the cursor belongs to another list"))
}

fn open(project: Uuid, cursor: &str) -> Result<Envelope, Error> {
    let bad = || {
        Error::invalid("the cursor is not valid; use the next_cursor of a previous page as it is")
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if envelope.p != project {
        return Err(bad());
    }
    for (name, value) in &envelope.k {
        if name.ends_with("PK") && !keys::belongs_to(project, value) {
            return Err(bad());
        }
    }
    if envelope.k.is_empty() {
        return Err(bad());
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_key(project: Uuid) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                "PK".into(),
                AttributeValue::S(keys::org_pk(project, Uuid::nil())),
            ),
            ("SK".into(), AttributeValue::S("ORG".into())),
            (
                "GSI1PK".into(),
                AttributeValue::S(keys::org_list_pk(project)),
            ),
        ])
    }

    #[test]
    fn a_user_position_round_trips_and_refuses_other_cursors() {
        let (project, user) = (Uuid::now_v7(), Uuid::now_v7());
        let cursor = encode_user_position(project, user);
        assert_eq!(decode_user_position(project, &cursor).unwrap(), user);
        assert!(decode_user_position(Uuid::now_v7(), &cursor).is_err());
        let other = encode(project, &last_key(project));
        assert!(decode_user_position(project, &other).is_err());
    }

    #[test]
    fn a_cursor_round_trips_for_its_project_only() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let cursor = encode(a, &last_key(a));
        assert_eq!(decode(a, &cursor).unwrap(), last_key(a));
        assert!(decode(b, &cursor).is_err());
    }

    #[test]
    fn tampered_cursors_are_refused() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        // Claims project a but points into project b's partition.
        let forged = encode(a, &last_key(b));
        assert!(decode(a, &forged).is_err());
        assert!(decode(a, "not a cursor").is_err());
        assert!(decode(a, "").is_err());
        let mut damaged = encode(a, &last_key(a));
        damaged.insert(3, '!');
        assert!(decode(a, &damaged).is_err());
    }
}
