//! API keys (`pk_…` publishable, `sk_…` secret, stored as SHA-256 hashes),
//! user sessions (JWTs of a trusted issuer, see [`crate::issuers`], or dev
//! tokens under `DEV_SESSIONS=1`), and the axum extractors that turn a
//! request into an authenticated caller.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Scope;
use crate::error::Error;
use crate::store::Store;

const RANDOM_KEY_BYTES: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// `pk_…`: safe to ship in a browser or app; client family only.
    Publishable,
    /// `sk_…`: server-side; every family.
    Secret,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Publishable => "pk_",
            KeyKind::Secret => "sk_",
        }
    }
}

/// A presented or generated API key. The project id is part of the key, so
/// the lookup is a single GetItem inside that project's partition.
#[derive(Clone)]
pub struct ApiKey {
    raw: String,
    kind: KeyKind,
    project: Uuid,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ApiKey({:?}, {}, …{})",
            self.kind,
            self.project,
            self.hint()
        )
    }
}

impl ApiKey {
    pub fn generate(project: Uuid, kind: KeyKind) -> Result<Self, Error> {
        let mut bytes = [0u8; 16 + RANDOM_KEY_BYTES];
        bytes[..16].copy_from_slice(project.as_bytes());
        getrandom::fill(&mut bytes[16..])
            .map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        Ok(Self {
            raw: format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes)),
            kind,
            project,
        })
    }

    /// Parses a presented key; `None` when it is not one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let (kind, body) = if let Some(body) = raw.strip_prefix("pk_") {
            (KeyKind::Publishable, body)
        } else if let Some(body) = raw.strip_prefix("sk_") {
            (KeyKind::Secret, body)
        } else {
            return None;
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        if bytes.len() != 16 + RANDOM_KEY_BYTES {
            return None;
        }
        let project = Uuid::from_slice(&bytes[..16]).ok()?;
        Some(Self {
            raw: raw.to_owned(),
            kind,
            project,
        })
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn project_id(&self) -> Uuid {
        self.project
    }

    /// SHA-256 of the whole key, hex: what the table stores.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.raw.as_bytes()))
    }

    pub fn hint(&self) -> String {
        self.raw
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    }

    /// The key itself: shown once, at creation.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    pub fn record(&self, now: &str) -> crate::store::ApiKeyRecord {
        crate::store::ApiKeyRecord {
            kind: self.kind,
            hint: self.hint(),
            created_at: now.to_owned(),
            revoked_at: None,
        }
    }
}

pub fn random_token(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// What the handlers' state must offer for authentication.
pub trait AuthState {
    fn store(&self) -> &Store;
    /// Trusted issuers' signing keys, cached in this Lambda instance.
    fn issuer_keys(&self) -> &crate::issuers::IssuerKeys;
    /// Whether HS256 dev session tokens are accepted (`DEV_SESSIONS=1`).
    fn dev_sessions(&self) -> bool;
}

/// A request authenticated with an API key of either kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub project_id: Uuid,
    pub kind: KeyKind,
    /// The first bytes of the key's SHA-256: tells keys of one project
    /// apart (idempotency records are scoped by it) without holding the key.
    pub key_digest: [u8; 16],
}

/// A request authenticated with a secret key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretCaller(pub Caller);

/// The credential presented: `Authorization: Bearer <token>`, else an
/// `X-API-KEY` header (the CRM dialect's way of sending a key).
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let authorization = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    authorization.or_else(|| {
        parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
    })
}

impl Caller {
    pub async fn authenticate(store: &Store, presented: Option<&str>) -> Result<Self, Error> {
        let presented = presented.ok_or_else(|| {
            Error::Unauthorized("an API key is required: send `Authorization: Bearer <key>`".into())
        })?;
        let key = ApiKey::parse(presented)
            .ok_or_else(|| Error::Unauthorized("the API key is not valid".into()))?;
        let record = store
            .api_key(&key)
            .await?
            .ok_or_else(|| Error::Unauthorized("the API key is not valid".into()))?;
        if record.revoked_at.is_some() {
            return Err(Error::Unauthorized("the API key has been revoked".into()));
        }
        let mut key_digest = [0u8; 16];
        key_digest.copy_from_slice(&Sha256::digest(key.expose().as_bytes())[..16]);
        Ok(Caller {
            project_id: key.project_id(),
            kind: record.kind,
            key_digest,
        })
    }
}

impl Caller {
    /// How far the key reaches in its project.
    pub fn scope(&self) -> Scope {
        match self.kind {
            KeyKind::Secret => Scope::Project,
            KeyKind::Publishable => Scope::Unclaimed,
        }
    }
}

/// A request's verified credential: the one way in. [`layer`] verifies it
/// once, before anything else runs (idempotent replays included), and the
/// extractors below read it from the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    Key(Caller),
    Session(Session),
}

/// What [`layer`] leaves in the extensions: `None` when no credential was sent.
#[derive(Clone, Debug)]
struct Verified(Option<Credential>);

impl Credential {
    pub fn project_id(&self) -> Uuid {
        match self {
            Credential::Key(caller) => caller.project_id,
            Credential::Session(session) => session.project_id,
        }
    }

    /// Verifies what the request presents: `None` when it presents nothing.
    pub async fn authenticate<S: AuthState + Sync>(
        state: &S,
        parts: &Parts,
    ) -> Result<Option<Self>, Error> {
        let Some(token) = bearer(parts) else {
            return Ok(None);
        };
        if token.starts_with("pk_") || token.starts_with("sk_") {
            let caller = Caller::authenticate(state.store(), Some(token)).await?;
            return Ok(Some(Credential::Key(caller)));
        }
        Ok(Some(Credential::Session(
            Session::authenticate(state, Some(token)).await?,
        )))
    }

    /// The credential [`layer`] verified, or (for a router without the
    /// layer) verified now; 401 when none was sent.
    async fn of<S: AuthState + Sync>(parts: &Parts, state: &S) -> Result<Self, Error> {
        let verified = match parts.extensions.get::<Verified>() {
            Some(Verified(verified)) => verified.clone(),
            None => Credential::authenticate(state, parts).await?,
        };
        verified.ok_or_else(|| {
            Error::Unauthorized(
                "a credential is required: send `Authorization: Bearer <key or session token>`"
                    .into(),
            )
        })
    }

    /// The credential a request carries after [`layer`] ran.
    pub fn verified(extensions: &axum::http::Extensions) -> Option<&Credential> {
        extensions.get::<Verified>()?.0.as_ref()
    }
}

/// The middleware every HTTP family runs outermost: a presented credential
/// is verified first, and a bad one is a 401 before anything else runs.
pub async fn layer(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (mut parts, body) = request.into_parts();
    match Credential::authenticate(&state, &parts).await {
        Ok(verified) => {
            parts.extensions.insert(Verified(verified));
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        Err(err) => err.into_response(),
    }
}

/// Whether a family remembers `Idempotency-Key`s (see [`crate::idempotency`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    OnPost,
    Off,
}

/// A family's routes behind the one way in: the credential is verified
/// first ([`layer`]), then a POST's `Idempotency-Key` is honoured, scoped by
/// that verified credential.
pub fn front_door(
    routes: axum::Router<crate::AppState>,
    state: crate::AppState,
    idempotency: Idempotency,
) -> axum::Router {
    let routes = match idempotency {
        Idempotency::OnPost => routes.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        )),
        Idempotency::Off => routes,
    };
    routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), layer))
        // Every refusal, axum's own included, is a problem document.
        .layer(axum::middleware::from_fn(crate::http::problem_responses))
        .with_state(state)
}

fn needs_secret_key() -> Error {
    Error::Forbidden(
        "this operation needs a secret key (sk_…); publishable keys are for the client API".into(),
    )
}

impl<S: AuthState + Send + Sync> FromRequestParts<S> for Credential {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Credential::of(parts, state).await
    }
}

/// The client family takes API keys only.
impl<S: AuthState + Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Credential::of(parts, state).await? {
            Credential::Key(caller) => Ok(caller),
            Credential::Session(_) => Err(Error::Unauthorized(
                "this API takes API keys: send `Authorization: Bearer <pk_… or sk_…>`".into(),
            )),
        }
    }
}

impl<S: AuthState + Send + Sync> FromRequestParts<S> for SecretCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Credential::of(parts, state).await? {
            Credential::Key(caller) if caller.kind == KeyKind::Secret => Ok(SecretCaller(caller)),
            _ => Err(needs_secret_key()),
        }
    }
}

/// Who calls a family that takes secret keys and user sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Secret(Caller),
    Session(Session),
}

impl Principal {
    pub fn project_id(&self) -> Uuid {
        match self {
            Principal::Secret(caller) => caller.project_id,
            Principal::Session(session) => session.project_id,
        }
    }
}

/// Every family but client: a secret key or a user session.
impl<S: AuthState + Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Credential::of(parts, state).await? {
            Credential::Key(caller) if caller.kind == KeyKind::Secret => {
                Ok(Principal::Secret(caller))
            }
            Credential::Key(_) => Err(needs_secret_key()),
            Credential::Session(session) => Ok(Principal::Session(session)),
        }
    }
}

/// What a principal may do with one organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub project_id: Uuid,
    /// The session's user (`None` for a secret key).
    pub user: Option<Uuid>,
}

/// The id in a path, as an organization id: anything else names no
/// organization (404).
pub fn organization_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw).map_err(|_| Error::not_found(format!("no organization has the id {raw}")))
}

/// Who may act on one organization: a secret key anywhere in its project;
/// a session only as a member (else 404, as if the organization did not
/// exist) and, when `owner_only`, as an owner (else 403).
pub async fn organization_access(
    store: &Store,
    principal: &Principal,
    org: Uuid,
    owner_only: bool,
) -> Result<Access, Error> {
    match principal {
        Principal::Secret(caller) => Ok(Access {
            project_id: caller.project_id,
            user: None,
        }),
        Principal::Session(session) => {
            let membership = store
                .session_membership(session.project_id, org, &session.user)
                .await?
                .ok_or_else(|| Error::not_found(format!("no organization has the id {org}")))?;
            if owner_only && !membership.is_owner() {
                return Err(Error::Forbidden(
                    "only the organization's owners can change it".into(),
                ));
            }
            Ok(Access {
                project_id: session.project_id,
                user: Some(membership.user_id),
            })
        }
    }
}

/// What a route needs of the organization its path names.
pub trait Needs: Send + Sync {
    /// Whether only its owners (and secret keys) may act.
    const OWNER: bool;
}

/// Members (and secret keys) read.
pub struct Read;
/// Owners (and secret keys) change.
pub struct Own;

impl Needs for Read {
    const OWNER: bool = false;
}

impl Needs for Own {
    const OWNER: bool = true;
}

/// The organization a route acts on (the path's `organization_id`,
/// `org_id`, `organizationId` or, failing those, `id`) and the caller's
/// right to it, declared per route: `OrgAccess<Read>` or `OrgAccess<Own>`.
/// A session that is no member gets 404, as if the organization did not
/// exist; a member without the right gets 403.
pub struct OrgAccess<N: Needs> {
    pub id: Uuid,
    pub project_id: Uuid,
    /// The session's user (`None` for a secret key).
    pub user: Option<Uuid>,
    pub principal: Principal,
    needs: std::marker::PhantomData<N>,
}

/// Path parameters that name the organization, most specific first.
const ORGANIZATION_PARAMS: [&str; 4] = ["organization_id", "org_id", "organizationId", "id"];

impl<S: AuthState + Send + Sync, N: Needs> FromRequestParts<S> for OrgAccess<N> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::invalid(format!("the path is malformed: {}", e.body_text())))?;
        let raw = ORGANIZATION_PARAMS
            .iter()
            .find_map(|name| params.iter().find(|(key, _)| key == name))
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| Error::not_found("no organization is named by this path"))?;
        let id = organization_id(&raw)?;
        let access = organization_access(state.store(), &principal, id, N::OWNER).await?;
        Ok(OrgAccess {
            id,
            project_id: access.project_id,
            user: access.user,
            principal,
            needs: std::marker::PhantomData,
        })
    }
}

/// Claims of a dev session token (HS256 with the project's
/// `dev_token_secret`; accepted only under `DEV_SESSIONS=1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The user's external id (source `session`).
    pub sub: String,
    pub project_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    pub exp: u64,
}

/// A dev session token is refused when its `exp` lies further ahead than
/// this (plus the leeway): whoever holds the secret can mint tokens, but
/// none outlives a day. Checked against the clock, not against `iat`,
/// which the minter chooses.
pub const DEV_SESSION_MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Signs a dev session token (what `orgctl token` prints).
pub fn issue_session_token(claims: &SessionClaims, secret: &str) -> Result<String, Error> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| Error::Internal(format!("signing a token: {e}")))
}

/// Verifies a dev session token against its project's secret: signature
/// (HS256 only), expiry, a lifetime of at most a day, and that the token
/// names that project.
pub fn verify_session_token(
    token: &str,
    project: Uuid,
    secret: &str,
) -> Result<SessionClaims, Error> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = crate::issuers::LEEWAY_SECS;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<SessionClaims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| Error::Unauthorized(crate::issuers::refusal(&e)))?;
    if data.claims.project_id != project {
        return Err(Error::Unauthorized(
            "the session token belongs to another project".into(),
        ));
    }
    let latest = jsonwebtoken::get_current_timestamp()
        + DEV_SESSION_MAX_LIFETIME_SECS
        + crate::issuers::LEEWAY_SECS;
    if data.claims.exp > latest {
        return Err(Error::Unauthorized(
            "the dev session token lives longer than 24 hours (`exp`); mint one with \
             `orgctl token --ttl` (at most 86400 s)"
                .into(),
        ));
    }
    Ok(data.claims)
}

/// The project a dev session token claims, read before its signature is
/// checked (to find the project's secret); never trusted on its own.
pub fn claimed_project(token: &str) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct Claimed {
        project_id: Uuid,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Claimed>(&bytes)
        .ok()
        .map(|c| c.project_id)
}

/// A user session: who the user is (the token's `sub`, the external id of
/// source `session`), in which project, and their current organization if
/// the token names one (`org_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub project_id: Uuid,
    pub user: String,
    pub org_id: Option<String>,
}

impl Session {
    /// Verifies a session token. RS256/ES256: a token of a trusted issuer,
    /// which decides the project ([`crate::issuers::verify_issuer_token`]:
    /// one GetItem, the JWKS from memory). HS256: a dev token, only under
    /// `DEV_SESSIONS=1` (one read of the project for its secret). Every
    /// other algorithm, `none` included, is refused.
    pub async fn authenticate<S: AuthState + ?Sized>(
        state: &S,
        token: Option<&str>,
    ) -> Result<Self, Error> {
        let token = token.ok_or_else(|| {
            Error::Unauthorized(
                "a session token is required: send `Authorization: Bearer <jwt>`".into(),
            )
        })?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            Error::Unauthorized("the session token is not a JWT signed with RS256 or ES256".into())
        })?;
        match header.alg {
            jsonwebtoken::Algorithm::HS256 if state.dev_sessions() => {
                Session::verify_dev(state.store(), token).await
            }
            jsonwebtoken::Algorithm::HS256 => Err(Error::Unauthorized(
                "HS256 dev session tokens are accepted only when the service runs with \
                 DEV_SESSIONS=1; sessions come from a trusted issuer (RS256 or ES256)"
                    .into(),
            )),
            _ => {
                crate::issuers::verify_issuer_token(
                    state.store(),
                    state.issuer_keys(),
                    token,
                    &header,
                )
                .await
            }
        }
    }

    /// A dev session token (HS256 with its project's `dev_token_secret`).
    async fn verify_dev(store: &Store, token: &str) -> Result<Self, Error> {
        let invalid = || Error::Unauthorized("the session token is not valid".into());
        let project = claimed_project(token).ok_or_else(invalid)?;
        let project = store.get_project(project).await?.ok_or_else(invalid)?;
        let secret = project.dev_token_secret.as_deref().ok_or_else(|| {
            Error::Unauthorized(
                "the session token's project was not created for dev sessions: it has no \
                 dev token secret"
                    .into(),
            )
        })?;
        let claims = verify_session_token(token, project.id, secret)?;
        Ok(Session {
            project_id: claims.project_id,
            user: claims.sub,
            org_id: claims.org_id,
        })
    }
}

impl<S: AuthState + Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Credential::of(parts, state).await? {
            Credential::Session(session) => Ok(session),
            Credential::Key(_) => Err(Error::Forbidden(
                "this operation acts as a user: send the user's session token".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_carry_their_project() {
        let project = Uuid::now_v7();
        let key = ApiKey::generate(project, KeyKind::Secret).unwrap();
        assert!(key.expose().starts_with("sk_"));
        let parsed = ApiKey::parse(key.expose()).unwrap();
        assert_eq!(parsed.project_id(), project);
        assert_eq!(parsed.kind(), KeyKind::Secret);
        assert_eq!(parsed.hash(), key.hash());
        assert_eq!(key.hash().len(), 64);
        assert!(!format!("{key:?}").contains(key.expose()));
    }

    #[test]
    fn foreign_or_damaged_keys_do_not_parse() {
        assert!(ApiKey::parse("").is_none());
        assert!(ApiKey::parse("pk_").is_none());
        assert!(ApiKey::parse("xx_AAAA").is_none());
        assert!(ApiKey::parse("pk_!!!!").is_none());
        let key = ApiKey::generate(Uuid::now_v7(), KeyKind::Publishable).unwrap();
        assert!(ApiKey::parse(&key.expose()[..key.expose().len() - 2]).is_none());
    }

    #[test]
    fn session_tokens_verify_only_with_their_secret_and_project() {
        let project = Uuid::now_v7();
        let claims = SessionClaims {
            sub: "user_1".into(),
            project_id: project,
            org_id: None,
            exp: jsonwebtoken::get_current_timestamp() + 600,
        };
        let token = issue_session_token(&claims, "s3cret").unwrap();
        assert_eq!(claimed_project(&token), Some(project));
        assert_eq!(
            verify_session_token(&token, project, "s3cret").unwrap(),
            claims
        );
        assert!(verify_session_token(&token, project, "other").is_err());
        assert!(verify_session_token(&token, Uuid::now_v7(), "s3cret").is_err());
        let expired = issue_session_token(
            &SessionClaims {
                exp: 1,
                ..claims.clone()
            },
            "s3cret",
        )
        .unwrap();
        assert!(verify_session_token(&expired, project, "s3cret").is_err());
    }

    #[test]
    fn dev_session_tokens_live_at_most_a_day() {
        let project = Uuid::now_v7();
        let now = jsonwebtoken::get_current_timestamp();
        let token = |lifetime: u64| {
            let claims = SessionClaims {
                sub: "user_1".into(),
                project_id: project,
                org_id: None,
                exp: now + lifetime,
            };
            issue_session_token(&claims, "s3cret").unwrap()
        };
        assert!(
            verify_session_token(&token(DEV_SESSION_MAX_LIFETIME_SECS), project, "s3cret").is_ok()
        );
        let refused = verify_session_token(&token(48 * 3600), project, "s3cret").unwrap_err();
        assert!(matches!(refused, Error::Unauthorized(_)), "{refused:?}");
        assert!(refused.to_string().contains("24 hours"), "{refused}");
    }
}
