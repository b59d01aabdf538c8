//! Opaque pagination cursors, signed and bound to the caller's project.
//!
//! A cursor is `base64url(json ‖ tag)`: the JSON names the project, the
//! direction and the position (DynamoDB's LastEvaluatedKey); the tag is an
//! HMAC-SHA256 over the JSON with a key derived from the deployment's
//! cursor key and the caller's project, so a cursor made for one project
//! never verifies for another and any changed, added or removed byte is a
//! 400. The tag is checked in constant time before anything in the cursor
//! is read; the project and partition checks stay behind it, so a leaked
//! cursor key gives no more than the positions of the caller's own project.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::Error;
use crate::keys;

type HmacSha256 = Hmac<Sha256>;

/// The environment variable that holds the deployment's cursor key. In AWS
/// the template generates a Secrets Manager secret and resolves it into
/// every function's environment at deploy time (no read at run time);
/// `make dev` generates one for the local functions.
pub const CURSOR_KEY_ENV: &str = "CURSOR_KEY";
/// Shorter secrets are refused: the key must not be guessable.
const MIN_SECRET_BYTES: usize = 32;
/// HMAC-SHA256's full output.
const TAG_BYTES: usize = 32;
/// Domain separation for the per-project keys (and room for a v2).
const PROJECT_KEY_LABEL: &[u8] = b"organizations cursor v1\0";

/// The deployment's cursor signing key. Each project signs with its own key,
/// HMAC(deployment key, project id), derived on use (two HMAC blocks).
#[derive(Clone)]
pub struct CursorKey {
    deployment: HmacSha256,
}

impl fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// A key from a secret of at least 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!(
                "{CURSOR_KEY_ENV} must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        Ok(Self {
            deployment: keyed(secret),
        })
    }

    /// A fresh random key.
    pub fn random() -> Result<Self, Error> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        Self::new(&secret)
    }

    /// The key from `CURSOR_KEY`. A Lambda function (in AWS or under
    /// `cargo lambda`) refuses to start without it: its cursors must verify
    /// in every instance of the function. Any other process (tests, the
    /// benchmark, `orgctl`) only reads cursors it made itself, so without the
    /// variable it signs with a random key of its own, one per process.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(CURSOR_KEY_ENV) {
            Ok(secret) if !secret.is_empty() => Self::new(secret.as_bytes()),
            _ if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() => {
                Err(Error::Config(format!(
                    "{CURSOR_KEY_ENV} is not set: a function needs the deployment's cursor key"
                )))
            }
            _ => {
                static PROCESS_KEY: OnceLock<CursorKey> = OnceLock::new();
                if let Some(key) = PROCESS_KEY.get() {
                    return Ok(key.clone());
                }
                let key = Self::random()?;
                Ok(PROCESS_KEY.get_or_init(|| key).clone())
            }
        }
    }

    fn project_mac(&self, project: Uuid) -> HmacSha256 {
        let derived = self
            .deployment
            .clone()
            .chain_update(PROJECT_KEY_LABEL)
            .chain_update(project.as_bytes())
            .finalize()
            .into_bytes();
        keyed(&derived)
    }

    fn tag(&self, project: Uuid, content: &[u8]) -> Vec<u8> {
        self.project_mac(project)
            .chain_update(content)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Encodes DynamoDB's `LastEvaluatedKey` for `project` (string keys only,
    /// which is all this table's keys are).
    pub fn encode(&self, project: Uuid, last_key: &HashMap<String, AttributeValue>) -> String {
        self.encode_page(project, false, last_key)
    }

    /// Like [`CursorKey::encode`], for a list that can be read in either
    /// direction.
    pub fn encode_page(
        &self,
        project: Uuid,
        backwards: bool,
        key: &HashMap<String, AttributeValue>,
    ) -> String {
        let k = key
            .iter()
            .filter_map(|(name, value)| value.as_s().ok().map(|v| (name.clone(), v.clone())))
            .collect();
        let mut bytes = serde_json::to_vec(&Envelope {
            p: project,
            b: backwards,
            k,
        })
        .unwrap_or_default();
        let tag = self.tag(project, &bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Like [`CursorKey::decode`]; also tells whether the cursor reads
    /// backwards.
    pub fn decode_page(
        &self,
        project: Uuid,
        cursor: &str,
    ) -> Result<(bool, HashMap<String, AttributeValue>), Error> {
        let envelope = self.open(project, cursor)?;
        Ok((envelope.b, into_key(envelope.k)))
    }

    /// Decodes a cursor for `project`; a cursor that is changed in any way,
    /// or was made for another project, is a 400.
    pub fn decode(
        &self,
        project: Uuid,
        cursor: &str,
    ) -> Result<HashMap<String, AttributeValue>, Error> {
        self.open(project, cursor)
            .map(|envelope| into_key(envelope.k))
    }

    /// A position in the project's user index (after user `after`), for
    /// lists that walk users in id order.
    pub fn encode_user_position(&self, project: Uuid, after: Uuid) -> String {
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
        self.encode(project, &key)
    }

    /// The user a position made by [`CursorKey::encode_user_position`]
    /// points after; any other cursor is a 400.
    pub fn decode_user_position(&self, project: Uuid, cursor: &str) -> Result<Uuid, Error> {
        let key = self.decode(project, cursor)?;
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

    fn open(&self, project: Uuid, cursor: &str) -> Result<Envelope, Error> {
        let bad = || {
            Error::invalid(
                "the cursor is not valid; use the next_cursor of a previous page as it is",
            )
        };
        // No trimming: a cursor is accepted only exactly as it was issued.
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        let content_len = bytes.len().checked_sub(TAG_BYTES).ok_or_else(bad)?;
        let (content, tag) = bytes.split_at(content_len);
        self.project_mac(project)
            .chain_update(content)
            .verify_slice(tag)
            .map_err(|_| bad())?;
        let envelope: Envelope = serde_json::from_slice(content).map_err(|_| bad())?;
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
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

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

fn into_key(k: HashMap<String, String>) -> HashMap<String, AttributeValue> {
    k.into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(b"a deployment key of at least 32 bytes").unwrap()
    }

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

    /// The bytes a cursor carries: its JSON and its tag.
    fn split(cursor: &str) -> (Vec<u8>, Vec<u8>) {
        let mut content = URL_SAFE_NO_PAD.decode(cursor).unwrap();
        let tag = content.split_off(content.len() - TAG_BYTES);
        (content, tag)
    }

    #[test]
    fn a_user_position_round_trips_and_refuses_other_cursors() {
        let (project, user) = (Uuid::now_v7(), Uuid::now_v7());
        let cursor = key().encode_user_position(project, user);
        assert_eq!(key().decode_user_position(project, &cursor).unwrap(), user);
        assert!(key().decode_user_position(Uuid::now_v7(), &cursor).is_err());
        let other = key().encode(project, &last_key(project));
        assert!(key().decode_user_position(project, &other).is_err());
    }

    #[test]
    fn a_cursor_round_trips_for_its_project_only() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let cursor = key().encode(a, &last_key(a));
        assert_eq!(key().decode(a, &cursor).unwrap(), last_key(a));
        assert!(key().decode(b, &cursor).is_err());
        let backwards = key().encode_page(a, true, &last_key(a));
        assert_eq!(
            key().decode_page(a, &backwards).unwrap(),
            (true, last_key(a))
        );
    }

    #[test]
    fn tampered_cursors_are_refused() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        // Signed for project a but pointing into project b's partition.
        let forged = key().encode(a, &last_key(b));
        assert!(key().decode(a, &forged).is_err());
        assert!(key().decode(a, "not a cursor").is_err());
        assert!(key().decode(a, "").is_err());
        let mut damaged = key().encode(a, &last_key(a));
        damaged.insert(3, '!');
        assert!(key().decode(a, &damaged).is_err());
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let project = Uuid::now_v7();
        let cursor = key().encode_page(project, true, &last_key(project));
        let bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        for at in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut changed = bytes.clone();
                changed[at] ^= bit;
                let changed = URL_SAFE_NO_PAD.encode(changed);
                assert!(
                    key().decode_page(project, &changed).is_err(),
                    "byte {at} ^ {bit:#x} was accepted"
                );
            }
        }
        // Removed and added bytes, at either end and inside.
        for at in [0, bytes.len() / 2, bytes.len() - 1] {
            let mut shorter = bytes.clone();
            shorter.remove(at);
            assert!(key()
                .decode_page(project, &URL_SAFE_NO_PAD.encode(shorter))
                .is_err());
            let mut longer = bytes.clone();
            longer.insert(at, b' ');
            assert!(key()
                .decode_page(project, &URL_SAFE_NO_PAD.encode(longer))
                .is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(key()
            .decode_page(project, &URL_SAFE_NO_PAD.encode(longer))
            .is_err());
    }

    #[test]
    fn every_changed_character_is_refused() {
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let project = Uuid::now_v7();
        let cursor = key().encode(project, &last_key(project));
        for at in 0..cursor.len() {
            for replacement in alphabet.chars().chain(['=', '+', '/', ' ', '%']) {
                if cursor[at..].starts_with(replacement) {
                    continue;
                }
                let mut changed = cursor.clone();
                changed.replace_range(at..at + 1, &replacement.to_string());
                assert!(
                    key().decode(project, &changed).is_err(),
                    "{replacement:?} at {at} was accepted"
                );
            }
            let mut shorter = cursor.clone();
            shorter.remove(at);
            assert!(key().decode(project, &shorter).is_err());
        }
        for extra in [" ", "\n", "A", "=", "=="] {
            assert!(key().decode(project, &format!("{cursor}{extra}")).is_err());
            assert!(key().decode(project, &format!("{extra}{cursor}")).is_err());
        }
        assert!(key().decode(project, &cursor).is_ok());
    }

    #[test]
    fn an_unsigned_cursor_of_the_old_format_is_refused() {
        let project = Uuid::now_v7();
        let json = serde_json::to_vec(&Envelope {
            p: project,
            b: false,
            k: HashMap::from([
                ("PK".into(), keys::org_pk(project, Uuid::nil())),
                ("SK".into(), "ORG".into()),
                ("GSI1PK".into(), keys::org_list_pk(project)),
            ]),
        })
        .unwrap();
        assert!(key()
            .decode(project, &URL_SAFE_NO_PAD.encode(&json))
            .is_err());
        // Nor does the JSON of a real cursor pass without its tag.
        let (content, _) = split(&key().encode(project, &last_key(project)));
        assert!(key()
            .decode(project, &URL_SAFE_NO_PAD.encode(content))
            .is_err());
    }

    #[test]
    fn a_cursor_signed_with_another_projects_key_is_refused() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        // A cursor for project a, re-signed with project b's derived key:
        // neither project accepts it.
        let (content, _) = split(&key().encode(a, &last_key(a)));
        let mut resigned = content.clone();
        resigned.extend(key().tag(b, &content));
        let resigned = URL_SAFE_NO_PAD.encode(resigned);
        assert!(key().decode(a, &resigned).is_err());
        assert!(key().decode(b, &resigned).is_err());
        // Tagged with a's derived key but under another deployment's key.
        let other = CursorKey::new(b"another deployment key, 32 bytes or more").unwrap();
        assert!(key().decode(a, &other.encode(a, &last_key(a))).is_err());
        // The derived keys differ per project.
        assert_ne!(key().tag(a, &content), key().tag(b, &content));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(CursorKey::new(b"too short").is_err());
        assert!(CursorKey::new(&[7; MIN_SECRET_BYTES]).is_ok());
        assert_eq!(format!("{:?}", key()), "CursorKey(..)");
    }
}
