//! Trusted issuers: identity providers (Auth0, Cognito, Clerk, any OIDC
//! provider) whose session tokens a project accepts, and the verification
//! of those tokens in the function: RS256 or ES256, signed by a key of the
//! issuer's JWKS chosen by `kid`. The JWKS are kept in this Lambda
//! instance's memory and fetched over the HTTP/TLS stack the AWS SDK
//! already links (hyper 1, rustls with aws-lc-rs).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::Uri;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Session;
use crate::error::Error;
use crate::store::Store;

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// An issuer's JWKS is fetched again for an unknown `kid` at most this often
/// (a flood of made-up `kid`s must not turn into a flood of fetches).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, the next attempt waits this long: long enough that
/// requests during an outage do not each wait for the timeout, short enough
/// that an instance whose first fetch failed recovers quickly.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// A JWKS fetch (connect, TLS, response) that takes longer is abandoned.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// A JWKS larger than this is refused (real ones are a few KiB).
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Longest `iss` or `aud` accepted at registration (the lookup key must stay
/// well under DynamoDB's 2048-byte partition key).
const MAX_NAME_BYTES: usize = 1024;

/// A project's trust in one issuer (and, when set, one audience).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedIssuer {
    pub project_id: Uuid,
    /// The tokens' `iss`, compared exactly.
    pub issuer: String,
    /// Where the issuer publishes its signing keys.
    pub jwks_url: String,
    /// When set, a token's `aud` must contain it; it is also what tells
    /// apart projects that trust the same issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    pub created_at: String,
}

impl TrustedIssuer {
    /// A registration, checked: `issuer` and `audience` non-empty, the JWKS
    /// URL https (plain http only for a loopback address under dev
    /// sessions).
    pub fn new(
        project_id: Uuid,
        issuer: &str,
        jwks_url: &str,
        audience: Option<&str>,
        dev_sessions: bool,
    ) -> Result<Self, Error> {
        let issuer = checked_name("issuer", issuer)?;
        let audience = audience.map(|a| checked_name("audience", a)).transpose()?;
        let jwks_url = jwks_url.trim();
        check_jwks_url(jwks_url, dev_sessions)?;
        Ok(Self {
            project_id,
            issuer,
            jwks_url: jwks_url.to_owned(),
            audience,
            created_at: crate::ids::now(),
        })
    }
}

fn checked_name(what: &str, value: &str) -> Result<String, Error> {
    if value.is_empty() || value.trim() != value {
        return Err(Error::invalid(format!(
            "the {what} must be non-empty, without surrounding spaces, exactly as the tokens carry it"
        )));
    }
    if value.len() > MAX_NAME_BYTES || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "the {what} must be at most {MAX_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(value.to_owned())
}

/// A JWKS URL is https; plain http only to a loopback address (an
/// in-process test server, a local identity provider) under dev sessions.
pub fn check_jwks_url(url: &str, dev_sessions: bool) -> Result<Uri, Error> {
    let refuse = |why: &str| Error::invalid(format!("the JWKS URL {url:?} {why}"));
    let uri: Uri = url
        .parse()
        .map_err(|_| refuse("is not a URL (https://…/.well-known/jwks.json)"))?;
    let authority = uri.authority().ok_or_else(|| refuse("has no host"))?;
    if authority.as_str().contains('@') {
        return Err(refuse("must not carry credentials"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if dev_sessions && is_loopback(authority.host()) => Ok(uri),
        Some("http") if dev_sessions => Err(refuse(
            "must be https (plain http is allowed only for a loopback address)",
        )),
        Some("http") => Err(refuse(
            "must be https (plain http to a loopback address only under DEV_SESSIONS=1)",
        )),
        _ => Err(refuse("must be https")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Claims read from an issuer's token (after its signature was checked).
#[derive(Deserialize)]
struct IssuerClaims {
    /// Defaulted so that a missing `sub` is reported as such by the
    /// required-claims check rather than as a malformed token.
    #[serde(default)]
    sub: String,
    /// If present, it must name the issuer's project.
    #[serde(default)]
    project_id: Option<serde_json::Value>,
    #[serde(default)]
    org_id: Option<serde_json::Value>,
}

/// What is read from a token before its signature is checked: only to find
/// the registration and the key, never trusted on its own.
#[derive(Deserialize)]
struct Unverified {
    #[serde(default)]
    iss: Option<serde_json::Value>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

fn unverified_claims(token: &str) -> Option<Unverified> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn unauthorized(detail: impl Into<String>) -> Error {
    Error::Unauthorized(detail.into())
}

/// Verifies a token of a trusted issuer (the caller has read its header:
/// `alg` is RS256 or ES256) and returns its session: the issuer decides the
/// project. One GetItem (the issuer's registrations) and, when its keys are
/// not cached yet or `kid` is unknown, one JWKS fetch.
pub async fn verify_issuer_token(
    store: &Store,
    keys: &IssuerKeys,
    token: &str,
    header: &jsonwebtoken::Header,
) -> Result<Session, Error> {
    let alg = header.alg;
    if !matches!(alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(unauthorized(
            "session tokens of an issuer are signed with RS256 or ES256",
        ));
    }
    let kid = header
        .kid
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            unauthorized("the session token has no `kid`: it names no key of its issuer")
        })?;
    let claimed = unverified_claims(token)
        .ok_or_else(|| unauthorized("the session token is not a valid JWT"))?;
    let iss = match claimed.iss {
        Some(serde_json::Value::String(iss)) if !iss.is_empty() => iss,
        _ => return Err(unauthorized("the session token has no `iss`")),
    };
    let registrations = store.issuer_registrations(&iss).await?;
    let registration = select_registration(&iss, &registrations, claimed.aud.as_ref())?;
    let jwk = keys
        .key(&registration.jwks_url, kid)
        .await?
        .ok_or_else(|| {
            unauthorized(format!(
                "the session token's key {kid:?} is not in the JWKS of its issuer {iss:?}"
            ))
        })?;
    let decoding_key = decoding_key_for(&jwk, alg)?;
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_issuer(&[&registration.issuer]);
    let mut required = vec!["exp", "sub", "iss"];
    match &registration.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // Without a registered audience, `aud` is whatever the provider
        // puts there (Auth0 and Cognito always set one): not checked.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    let claims = jsonwebtoken::decode::<IssuerClaims>(token, &decoding_key, &validation)
        .map_err(|e| unauthorized(refusal(&e)))?
        .claims;
    if claims.sub.is_empty() {
        return Err(unauthorized("the session token's `sub` is empty"));
    }
    match claims.project_id {
        None => {}
        Some(serde_json::Value::String(claimed))
            if Uuid::parse_str(&claimed).is_ok_and(|p| p == registration.project_id) => {}
        Some(_) => {
            return Err(unauthorized(
                "the session token's `project_id` names another project than its issuer's",
            ))
        }
    }
    let org_id = match claims.org_id {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(org)) if !org.is_empty() => Some(org),
        Some(_) => {
            return Err(unauthorized(
                "the session token's `org_id` must be a non-empty string",
            ))
        }
    };
    Ok(Session {
        project_id: registration.project_id,
        user: claims.sub,
        org_id,
    })
}

/// Which registration a token of `iss` belongs to: the one without an
/// audience, else the one whose audience the token's `aud` contains (the
/// registration rules let at most one match).
fn select_registration<'a>(
    iss: &str,
    registrations: &'a [TrustedIssuer],
    aud: Option<&serde_json::Value>,
) -> Result<&'a TrustedIssuer, Error> {
    if registrations.is_empty() {
        return Err(unauthorized(format!(
            "the session token's issuer {iss:?} is not trusted by any project (orgctl issuer add)"
        )));
    }
    if let Some(any) = registrations.iter().find(|r| r.audience.is_none()) {
        return Ok(any);
    }
    let audiences: HashSet<&str> = match aud {
        Some(serde_json::Value::String(one)) => HashSet::from([one.as_str()]),
        Some(serde_json::Value::Array(many)) => many.iter().filter_map(|a| a.as_str()).collect(),
        _ => HashSet::new(),
    };
    let mut matching = registrations
        .iter()
        .filter(|r| r.audience.as_deref().is_some_and(|a| audiences.contains(a)));
    match (matching.next(), matching.next()) {
        (Some(one), None) => Ok(one),
        (Some(_), Some(_)) => Err(unauthorized(
            "the session token's `aud` names audiences of several projects",
        )),
        (None, _) => Err(unauthorized(format!(
            "the session token's `aud` is not an audience registered for its issuer {iss:?}"
        ))),
    }
}

/// The verification key a JWK gives for `alg`, refusing a key of another
/// type, curve or declared algorithm, or one not meant for signatures.
fn decoding_key_for(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, Error> {
    let mismatch = || {
        unauthorized(format!(
            "the key the session token names is not a {alg:?} key"
        ))
    };
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        _ => false,
    };
    let declared_fits = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(_) => false,
    };
    let use_fits = !matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))
    );
    if !(fits && declared_fits && use_fits) {
        return Err(mismatch());
    }
    DecodingKey::from_jwk(jwk).map_err(|_| mismatch())
}

/// A person-readable reason for a refused token.
pub(crate) fn refusal(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    let why = match error.kind() {
        ErrorKind::ExpiredSignature => "it has expired (`exp`)".to_owned(),
        ErrorKind::ImmatureSignature => "it is not valid yet (`nbf`)".to_owned(),
        ErrorKind::InvalidSignature => "its signature does not verify".to_owned(),
        ErrorKind::InvalidIssuer => "its `iss` is not the expected issuer".to_owned(),
        ErrorKind::InvalidAudience => "its `aud` does not contain the expected audience".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("it has no `{claim}`"),
        ErrorKind::InvalidClaimFormat(claim) => format!("its `{claim}` is malformed"),
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            "its algorithm is not accepted".to_owned()
        }
        _ => "it is not a valid JWT".to_owned(),
    };
    format!("the session token is not valid: {why}")
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// The signing keys of trusted issuers, by JWKS URL, in this Lambda
/// instance's memory (a registration's URL, not its `iss`, names the key
/// set: that is what is fetched). Shared by every clone of the state.
pub struct IssuerKeys {
    allow_loopback_http: bool,
    refetch_interval: Duration,
    /// Built on the first fetch: loading the system's root certificates
    /// costs nothing for requests that carry API keys.
    client: OnceLock<Result<HttpsClient, String>>,
    sets: Mutex<HashMap<String, Arc<tokio::sync::Mutex<KeySet>>>>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls = self.sets.lock().map(|s| s.len()).unwrap_or_default();
        write!(f, "IssuerKeys({urls} key sets)")
    }
}

#[derive(Default)]
struct KeySet {
    keys: Vec<Jwk>,
    /// Whether a fetch ever worked (then `keys` is the last JWKS read).
    fetched: bool,
    /// When the last fetch was attempted, whether it worked or not.
    attempted_at: Option<Instant>,
}

impl KeySet {
    fn find(&self, kid: &str) -> Option<Jwk> {
        self.keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned()
    }
}

impl IssuerKeys {
    /// `dev_sessions` allows JWKS over plain http from a loopback address.
    pub fn new(dev_sessions: bool) -> Self {
        Self {
            allow_loopback_http: dev_sessions,
            refetch_interval: REFETCH_INTERVAL,
            client: OnceLock::new(),
            sets: Mutex::new(HashMap::new()),
        }
    }

    /// How often a key set may be fetched again for an unknown `kid`
    /// ([`REFETCH_INTERVAL`] unless changed; tests of key rotation shorten it).
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// The key `kid` of the JWKS at `url`: from memory, else fetched (the
    /// first time, or again when `kid` is unknown and the last fetch is
    /// older than the refetch interval). `None` when the JWKS has no such
    /// key; an error (503) when the JWKS cannot be fetched.
    pub async fn key(&self, url: &str, kid: &str) -> Result<Option<Jwk>, Error> {
        let set = {
            let mut sets = self
                .sets
                .lock()
                .map_err(|_| Error::Internal("the JWKS cache lock is poisoned".into()))?;
            sets.entry(url.to_owned()).or_default().clone()
        };
        // Held across the fetch: concurrent requests for one key set wait
        // for that one fetch instead of starting their own.
        let mut set = set.lock().await;
        if let Some(key) = set.find(kid) {
            return Ok(Some(key));
        }
        if let Some(at) = set.attempted_at {
            // Once a JWKS was read, an unknown `kid` refetches at most once
            // per interval, whether that attempt works or not; until one
            // was read, failures are retried sooner.
            if set.fetched && at.elapsed() < self.refetch_interval {
                return Ok(None);
            }
            if !set.fetched && at.elapsed() < RETRY_AFTER_FAILURE {
                return Err(unavailable(url, "the last attempt failed moments ago"));
            }
        }
        let fetched = self.fetch(url).await;
        set.attempted_at = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                set.keys = keys;
                set.fetched = true;
                Ok(set.find(kid))
            }
            Err(why) => {
                tracing::warn!(jwks_url = url, error = %why, "fetching a JWKS failed");
                Err(unavailable(url, &why))
            }
        }
    }

    fn client(&self) -> Result<&HttpsClient, String> {
        self.client
            .get_or_init(https_client)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// One GET of the JWKS, within [`FETCH_TIMEOUT`]; the keys it holds that
    /// this service can use (others, e.g. encryption keys, are skipped).
    async fn fetch(&self, url: &str) -> Result<Vec<Jwk>, String> {
        let uri = check_jwks_url(url, self.allow_loopback_http).map_err(|e| e.to_string())?;
        let client = self.client()?;
        let request = axum::http::Request::get(uri)
            .header(axum::http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| format!("building the request: {e}"))?;
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| format!("requesting it: {e}"))?;
            if response.status() != axum::http::StatusCode::OK {
                return Err(format!("it returned {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading it (at most {MAX_JWKS_BYTES} bytes): {e}"))?;
            Ok(body.to_bytes())
        };
        let body = tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {} s", FETCH_TIMEOUT.as_secs()))??;
        parse_jwks(&body)
    }
}

fn unavailable(url: &str, why: &str) -> Error {
    Error::Storage(format!("the JWKS at {url} could not be fetched: {why}"))
}

/// The keys of a JWKS document. A key this crate cannot read (another key
/// type, a newer parameter) is skipped rather than spoiling the set.
fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body)
        .map_err(|e| format!("it is not a JWKS document ({{\"keys\": [...]}}): {e}"))?;
    Ok(document
        .keys
        .into_iter()
        .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
        .filter(|key| key.common.key_id.is_some())
        .collect())
}

/// An HTTP/1.1 client over rustls with aws-lc-rs and the system's root
/// certificates: the same crates the AWS SDK's client uses, so no second TLS
/// stack. Plain http is allowed by the connector; [`check_jwks_url`] decides
/// which URLs may use it. No pooled connections: fetches are rare, and a
/// connection kept across a frozen Lambda instance is likely dead.
fn https_client() -> Result<HttpsClient, String> {
    let provider = || Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_provider_and_native_roots(provider()) {
        Ok(builder) => builder,
        Err(error) => {
            // No root certificates on this machine: https cannot verify
            // anything, but loopback http (dev sessions) still works.
            tracing::warn!(%error, "no system root certificates; https JWKS fetches will fail");
            let tls = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("configuring TLS: {e}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
        }
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_urls_are_https_except_loopback_under_dev_sessions() {
        assert!(check_jwks_url("https://example.auth0.com/.well-known/jwks.json", false).is_ok());
        assert!(check_jwks_url("http://127.0.0.1:8080/jwks", true).is_ok());
        assert!(check_jwks_url("http://[::1]:8080/jwks", true).is_ok());
        assert!(check_jwks_url("http://localhost/jwks", true).is_ok());
        assert!(check_jwks_url("http://127.0.0.1:8080/jwks", false).is_err());
        assert!(check_jwks_url("http://example.com/jwks", true).is_err());
        assert!(check_jwks_url("http://10.0.0.1/jwks", true).is_err());
        assert!(check_jwks_url("ftp://example.com/jwks", true).is_err());
        assert!(check_jwks_url("https://user:pw@example.com/jwks", false).is_err());
        assert!(check_jwks_url("example.com/jwks", false).is_err());
        assert!(check_jwks_url("", false).is_err());
    }

    #[test]
    fn registrations_check_their_names() {
        let project = Uuid::now_v7();
        let url = "https://issuer.example/jwks";
        assert!(TrustedIssuer::new(project, "https://issuer.example/", url, None, false).is_ok());
        assert!(TrustedIssuer::new(project, "", url, None, false).is_err());
        assert!(TrustedIssuer::new(project, " iss", url, None, false).is_err());
        assert!(TrustedIssuer::new(project, "iss", url, Some(""), false).is_err());
        assert!(TrustedIssuer::new(project, &"i".repeat(1025), url, None, false).is_err());
        assert!(TrustedIssuer::new(project, "iss\n", url, None, false).is_err());
    }

    fn registration(project: Uuid, audience: Option<&str>) -> TrustedIssuer {
        TrustedIssuer {
            project_id: project,
            issuer: "iss".into(),
            jwks_url: "https://issuer.example/jwks".into(),
            audience: audience.map(str::to_owned),
            created_at: String::new(),
        }
    }

    #[test]
    fn the_audience_picks_the_project() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let both = [
            registration(a, Some("app-a")),
            registration(b, Some("app-b")),
        ];
        let pick = |aud: serde_json::Value| {
            select_registration("iss", &both, Some(&aud)).map(|r| r.project_id)
        };
        assert_eq!(pick(serde_json::json!("app-a")).unwrap(), a);
        assert_eq!(pick(serde_json::json!(["other", "app-b"])).unwrap(), b);
        assert!(pick(serde_json::json!("app-c")).is_err());
        assert!(pick(serde_json::json!(["app-a", "app-b"])).is_err());
        assert!(select_registration("iss", &both, None).is_err());
        assert!(select_registration("iss", &[], None).is_err());
        let any = [registration(a, None)];
        assert_eq!(
            select_registration("iss", &any, None).unwrap().project_id,
            a
        );
    }

    #[test]
    fn unusable_keys_are_skipped_not_fatal() {
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "n": "sXch", "e": "AQAB", "alg": "RS256", "use": "sig"},
            {"kty": "XYZ", "kid": "strange"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        ]});
        let keys = parse_jwks(body.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.common.key_id.as_deref()).collect();
        assert_eq!(kids[0], Some("rsa"));
        assert!(
            !kids.contains(&None),
            "a key without a kid cannot be chosen"
        );
        for strange in keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() != Some("rsa"))
        {
            assert!(decoding_key_for(strange, Algorithm::RS256).is_err());
            assert!(decoding_key_for(strange, Algorithm::ES256).is_err());
        }
        assert!(parse_jwks(b"[]").is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }

    #[test]
    fn a_key_serves_only_its_algorithm() {
        let rsa: Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "RSA", "kid": "rsa", "n": "sXch", "e": "AQAB"}
        ))
        .unwrap();
        assert!(decoding_key_for(&rsa, Algorithm::RS256).is_ok());
        assert!(decoding_key_for(&rsa, Algorithm::ES256).is_err());
        let declared_ps: Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "RSA", "kid": "rsa", "n": "sXch", "e": "AQAB", "alg": "PS256"}
        ))
        .unwrap();
        assert!(decoding_key_for(&declared_ps, Algorithm::RS256).is_err());
        let encryption: Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "RSA", "kid": "rsa", "n": "sXch", "e": "AQAB", "use": "enc"}
        ))
        .unwrap();
        assert!(decoding_key_for(&encryption, Algorithm::RS256).is_err());
        let p384: Jwk = serde_json::from_value(serde_json::json!(
            {"kty": "EC", "kid": "ec", "crv": "P-384", "x": "AA", "y": "AA"}
        ))
        .unwrap();
        assert!(decoding_key_for(&p384, Algorithm::ES256).is_err());
    }
}
