//! Sessions from real identity providers (issue 18, attack 3 "Sessions do
//! not work in AWS"): a project trusts an issuer (`orgctl issuer add`), the
//! function verifies its RS256/ES256 tokens against the issuer's JWKS,
//! served here by an in-process HTTP server with keys made by the test.
//! Dev tokens (HS256) work only under DEV_SESSIONS=1 and for at most a day.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use integration_tests::{call, project, session_token, state, Exchange};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use shared::issuers::{IssuerKeys, TrustedIssuer};
use shared::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

// ------------------------------------------------------------ keys

/// A signing key of the test's identity provider and its public JWK.
struct SigningKey {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
    /// The public key's DER bytes (what an algorithm-confusion attack signs with).
    public_der: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The length and the start of the contents of a DER element at `at`.
fn der_element(der: &[u8], at: usize) -> (usize, usize) {
    let first = der[at + 1] as usize;
    if first < 0x80 {
        return (first, at + 2);
    }
    let octets = first & 0x7f;
    let len = der[at + 2..at + 2 + octets]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    (len, at + 2 + octets)
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (what
/// jsonwebtoken signs with): SEQUENCE { INTEGER 0, SEQUENCE {algorithm},
/// OCTET STRING { RSAPrivateKey } }.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    let (_, mut at) = der_element(pkcs8, 0);
    for _ in 0..2 {
        let (len, start) = der_element(pkcs8, at);
        at = start + len;
    }
    assert_eq!(pkcs8[at], 0x04, "an OCTET STRING");
    let (len, start) = der_element(pkcs8, at);
    pkcs8[start..start + len].to_vec()
}

fn rsa_key(kid: &str) -> SigningKey {
    let pair =
        aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key");
    let pkcs8 = pair.as_der().expect("PKCS#8");
    let public = pair.public_key();
    SigningKey {
        alg: Algorithm::RS256,
        kid: kid.into(),
        encoding: EncodingKey::from_rsa_der(&pkcs1_from_pkcs8(pkcs8.as_ref())),
        jwk: json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        }),
        public_der: public.as_der().expect("X.509 DER").as_ref().to_vec(),
    }
}

fn ec_key(kid: &str) -> SigningKey {
    let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .expect("an EC key");
    let pkcs8 = pair.to_pkcs8v1().expect("PKCS#8");
    // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
    let point = pair.public_key().as_ref().to_vec();
    SigningKey {
        alg: Algorithm::ES256,
        kid: kid.into(),
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        }),
        public_der: point,
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A token signed with `key`, claims as given.
fn sign(key: &SigningKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("signing")
}

/// A token with a header and claims of the test's choosing and any
/// signature bytes: what no library would sign.
fn forged(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

// ------------------------------------------------------------ JWKS server

/// An identity provider's JWKS endpoint, in-process on 127.0.0.1: a tiny
/// HTTP/1.1 responder that counts the requests it serves.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
    delay: Arc<Mutex<Duration>>,
}

impl JwksServer {
    async fn start(keys: &[&SigningKey]) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the JWKS server");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("an address")
        );
        let server = JwksServer {
            url,
            keys: Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect())),
            requests: Arc::default(),
            delay: Arc::default(),
        };
        let (keys, requests, delay) = (
            server.keys.clone(),
            server.requests.clone(),
            server.delay.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (keys, requests, delay) = (keys.clone(), requests.clone(), delay.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    requests.fetch_add(1, Ordering::SeqCst);
                    let wait = *delay.lock().unwrap();
                    tokio::time::sleep(wait).await;
                    let body = json!({"keys": *keys.lock().unwrap()}).to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        server
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

// ------------------------------------------------------------ fixtures

/// A project that trusts an issuer whose JWKS is `url`, registered the way
/// `orgctl issuer add` does it.
async fn trust(state: &AppState, project: Uuid, iss: &str, url: &str, audience: Option<&str>) {
    let trusted = TrustedIssuer::new(project, iss, url, audience, state.config.dev_sessions)
        .expect("a valid registration");
    state
        .store
        .add_issuer(&trusted)
        .await
        .expect("registering the issuer");
}

fn issuer_name() -> String {
    format!("https://idp-{}.example/", Uuid::now_v7().simple())
}

fn claims(iss: &str, aud: &str, sub: &str) -> Value {
    json!({"iss": iss, "aud": aud, "sub": sub, "iat": now(), "exp": now() + 600})
}

async fn list(state: &AppState, token: &str) -> Exchange {
    let router = accounts::router(state.clone());
    call(&router, Method::GET, "/v1/organizations", Some(token), None).await
}

fn assert_refused(exchange: &Exchange, what: &str) {
    assert_eq!(
        exchange.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        exchange.body
    );
    assert_eq!(
        exchange.content_type.as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(exchange.body["code"], "unauthorized", "{what}");
    assert!(
        exchange.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{what}: a detail"
    );
}

// ------------------------------------------------------------ tests

#[tokio::test]
async fn rs256_and_es256_tokens_of_a_trusted_issuer_open_sessions_in_its_project() {
    let state = state().await;
    let p = project(&state).await;
    let (rsa, ec) = (rsa_key("rsa-1"), ec_key("ec-1"));
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let iss = issuer_name();
    trust(&state, p.project_id, &iss, &jwks.url, Some("organizations")).await;

    let rs256 = sign(&rsa, &claims(&iss, "organizations", "auth0|alice"));
    let accounts = accounts::router(state.clone());
    let created = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&rs256),
        Some(r#"{"name": "Alice's"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);

    // The same user through an ES256 token with `aud` as a list and the
    // issuer's project named: the organization is hers, in that project.
    let es256 = sign(
        &ec,
        &json!({"iss": iss, "aud": ["other-api", "organizations"], "sub": "auth0|alice",
                "project_id": p.project_id, "exp": now() + 600, "nbf": now() - 5}),
    );
    let listed = list(&state, &es256).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["id"], created.body["id"]);
    let by_key = list(&state, &p.secret_key).await;
    assert_eq!(by_key.body["items"][0]["id"], created.body["id"]);
    // The keys were fetched once and then served from memory.
    assert_eq!(jwks.requests(), 1);

    // Someone else's token of the same issuer sees none of it.
    let bob = sign(&rsa, &claims(&iss, "organizations", "auth0|bob"));
    let listed = list(&state, &bob).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"], json!([]));
}

#[tokio::test]
async fn forged_foreign_or_stale_tokens_are_refused_with_401() {
    let state = state().await;
    let p = project(&state).await;
    let other = project(&state).await;
    let (rsa, ec) = (rsa_key("rsa-1"), ec_key("ec-1"));
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let iss = issuer_name();
    trust(&state, p.project_id, &iss, &jwks.url, Some("organizations")).await;
    let valid = claims(&iss, "organizations", "mallory");
    assert_eq!(
        list(&state, &sign(&rsa, &valid)).await.status,
        StatusCode::OK
    );

    // Another key that claims the trusted key's `kid`.
    let impostor = rsa_key("rsa-1");
    assert_refused(
        &list(&state, &sign(&impostor, &valid)).await,
        "same kid, other key",
    );
    let impostor = ec_key("ec-1");
    assert_refused(
        &list(&state, &sign(&impostor, &valid)).await,
        "same EC kid, other key",
    );
    // A key of one type named by a token of the other.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rsa-1".into());
    let crossed = jsonwebtoken::encode(&header, &valid, &ec.encoding).unwrap();
    assert_refused(
        &list(&state, &crossed).await,
        "ES256 token naming the RSA key",
    );

    let mut wrong_aud = valid.clone();
    wrong_aud["aud"] = json!("another-api");
    assert_refused(&list(&state, &sign(&rsa, &wrong_aud)).await, "wrong aud");
    let mut no_aud = valid.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_refused(&list(&state, &sign(&rsa, &no_aud)).await, "no aud");

    let mut unregistered = valid.clone();
    unregistered["iss"] = json!(issuer_name());
    assert_refused(
        &list(&state, &sign(&rsa, &unregistered)).await,
        "unregistered iss",
    );
    let mut no_iss = valid.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    assert_refused(&list(&state, &sign(&rsa, &no_iss)).await, "no iss");

    let mut expired = valid.clone();
    expired["exp"] = json!(now() - 120);
    assert_refused(&list(&state, &sign(&ec, &expired)).await, "expired");
    let mut no_exp = valid.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_refused(&list(&state, &sign(&ec, &no_exp)).await, "no exp");
    let mut not_yet = valid.clone();
    not_yet["nbf"] = json!(now() + 600);
    assert_refused(&list(&state, &sign(&rsa, &not_yet)).await, "nbf ahead");
    // Within the 60 s leeway both ways.
    let mut skewed = valid.clone();
    skewed["exp"] = json!(now() - 20);
    skewed["nbf"] = json!(now() + 20);
    assert_eq!(
        list(&state, &sign(&rsa, &skewed)).await.status,
        StatusCode::OK
    );

    let none = forged(&json!({"alg": "none", "typ": "JWT"}), &valid, b"");
    assert_refused(&list(&state, &none).await, "alg none");
    let none = forged(&json!({"alg": "none", "kid": "rsa-1"}), &valid, b"");
    assert_refused(&list(&state, &none).await, "alg none with a kid");
    let unsigned = forged(&json!({"alg": "RS256", "kid": "rsa-1"}), &valid, b"");
    assert_refused(&list(&state, &unsigned).await, "RS256 without a signature");
    let mut ps256 = Header::new(Algorithm::PS256);
    ps256.kid = Some("rsa-1".into());
    let ps256 = jsonwebtoken::encode(&ps256, &valid, &rsa.encoding).unwrap();
    assert_refused(&list(&state, &ps256).await, "PS256");

    // Algorithm confusion: HS256 keyed with the trusted public key, with
    // and without the project named (dev sessions are on in this state).
    for secret in [&rsa.public_der, &serde_json::to_vec(&rsa.jwk).unwrap()] {
        for claims in [valid.clone(), {
            let mut named = valid.clone();
            named["project_id"] = json!(p.project_id);
            named
        }] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("rsa-1".into());
            let token =
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
            assert_refused(&list(&state, &token).await, "HS256 with the public key");
        }
    }

    let mut elsewhere = valid.clone();
    elsewhere["project_id"] = json!(other.project_id);
    assert_refused(
        &list(&state, &sign(&rsa, &elsewhere)).await,
        "project_id of another project",
    );
    elsewhere["project_id"] = json!(42);
    assert_refused(
        &list(&state, &sign(&rsa, &elsewhere)).await,
        "project_id not a string",
    );

    let mut no_sub = valid.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_refused(&list(&state, &sign(&rsa, &no_sub)).await, "no sub");
    let mut no_kid = Header::new(Algorithm::RS256);
    no_kid.kid = None;
    let no_kid = jsonwebtoken::encode(&no_kid, &valid, &rsa.encoding).unwrap();
    assert_refused(&list(&state, &no_kid).await, "no kid");
    assert_refused(&list(&state, "not.a.jwt").await, "garbage");

    // None of it reached the other project.
    assert_eq!(
        list(&state, &other.secret_key).await.body["items"],
        json!([])
    );
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_so_rotated_keys_work() {
    let mut state = state().await;
    state.issuer_keys =
        Arc::new(IssuerKeys::new(true).with_refetch_interval(Duration::from_millis(300)));
    let p = project(&state).await;
    let (old, new) = (rsa_key("2026-01"), ec_key("2026-02"));
    let jwks = JwksServer::start(&[&old]).await;
    let iss = issuer_name();
    trust(&state, p.project_id, &iss, &jwks.url, None).await;
    let user = claims(&iss, "whatever-the-provider-sets", "u1");
    assert_eq!(
        list(&state, &sign(&old, &user)).await.status,
        StatusCode::OK
    );
    assert_eq!(jwks.requests(), 1);

    jwks.publish(&[&old, &new]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let listed = list(&state, &sign(&new, &user)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(jwks.requests(), 2, "one refetch for the new kid");
    assert_eq!(
        list(&state, &sign(&new, &user)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        list(&state, &sign(&old, &user)).await.status,
        StatusCode::OK
    );
    assert_eq!(jwks.requests(), 2, "known kids come from memory");

    // A key the issuer withdrew stops working once the JWKS is read again.
    jwks.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stranger = rsa_key("2026-03");
    assert_refused(&list(&state, &sign(&stranger, &user)).await, "unknown kid");
    assert_eq!(jwks.requests(), 3);
    assert_refused(&list(&state, &sign(&old, &user)).await, "withdrawn key");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_a_minute() {
    let state = state().await;
    let p = project(&state).await;
    let key = rsa_key("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let iss = issuer_name();
    trust(&state, p.project_id, &iss, &jwks.url, None).await;
    let user = claims(&iss, "app", "u1");

    // Concurrent first requests share one fetch.
    let mut first = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (state, token) = (state.clone(), sign(&key, &user));
        first.spawn(async move { list(&state, &token).await.status });
    }
    while let Some(status) = first.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert_eq!(jwks.requests(), 1);

    let made_up = rsa_key("placeholder");
    for i in 0..25 {
        let forged = renamed(&made_up, &format!("made-up-{i}"));
        assert_refused(&list(&state, &sign(&forged, &user)).await, "made-up kid");
    }
    // A key published just now is not seen before the minute is over.
    let rotated = ec_key("k2");
    jwks.publish(&[&key, &rotated]);
    assert_refused(
        &list(&state, &sign(&rotated, &user)).await,
        "kid within the minute",
    );
    assert_eq!(jwks.requests(), 1, "no refetch within a minute of the last");
    assert_eq!(
        list(&state, &sign(&key, &user)).await.status,
        StatusCode::OK
    );
}

/// The same key under another `kid`.
fn renamed(key: &SigningKey, kid: &str) -> SigningKey {
    let mut jwk = key.jwk.clone();
    jwk["kid"] = json!(kid);
    SigningKey {
        alg: key.alg,
        kid: kid.into(),
        encoding: key.encoding.clone(),
        jwk,
        public_der: key.public_der.clone(),
    }
}

#[tokio::test]
async fn a_slow_or_unreachable_jwks_is_a_503_problem_not_a_hang() {
    let state = state().await;
    let p = project(&state).await;
    let key = rsa_key("k1");

    let slow = JwksServer::start(&[&key]).await;
    *slow.delay.lock().unwrap() = Duration::from_secs(10);
    let slow_iss = issuer_name();
    trust(&state, p.project_id, &slow_iss, &slow.url, None).await;
    let started = Instant::now();
    let answer = list(&state, &sign(&key, &claims(&slow_iss, "app", "u1"))).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/problem+json")
    );
    // The requests right after do not wait for the timeout again.
    let started = Instant::now();
    let again = list(&state, &sign(&key, &claims(&slow_iss, "app", "u1"))).await;
    assert_eq!(again.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(slow.requests(), 1);

    // Nothing listens at the address.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let down_iss = issuer_name();
    trust(&state, p.project_id, &down_iss, &url, None).await;
    let answer = list(&state, &sign(&key, &claims(&down_iss, "app", "u1"))).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(answer.body["code"], "service_unavailable");
}

#[tokio::test]
async fn one_issuer_serves_several_projects_only_through_distinct_audiences() {
    let state = state().await;
    let (a, b, c) = (
        project(&state).await,
        project(&state).await,
        project(&state).await,
    );
    let key = ec_key("k1");
    let jwks = JwksServer::start(&[&key]).await;
    let iss = issuer_name();
    trust(&state, a.project_id, &iss, &jwks.url, Some("app-a")).await;
    trust(&state, b.project_id, &iss, &jwks.url, Some("app-b")).await;

    let refused = |audience: Option<&str>, project: Uuid| {
        TrustedIssuer::new(project, &iss, &jwks.url, audience, true).unwrap()
    };
    for (wanted, why) in [
        (
            refused(None, c.project_id),
            "the issuer without an audience",
        ),
        (
            refused(Some("app-a"), c.project_id),
            "an audience another project holds",
        ),
        (
            refused(Some("app-a"), a.project_id),
            "the same registration twice",
        ),
    ] {
        let err = state.store.add_issuer(&wanted).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::CONFLICT, "{why}: {err}");
    }

    // Each token lands in the project of its audience.
    let accounts = accounts::router(state.clone());
    let in_b = sign(&key, &claims(&iss, "app-b", "same-sub"));
    let created = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&in_b),
        Some(r#"{"name": "B's"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(
        list(&state, &b.secret_key).await.body["items"][0]["id"],
        created.body["id"]
    );
    assert_eq!(list(&state, &a.secret_key).await.body["items"], json!([]));
    let in_a = sign(&key, &claims(&iss, "app-a", "same-sub"));
    assert_eq!(list(&state, &in_a).await.body["items"], json!([]));
    let both = sign(
        &key,
        &json!({"iss": iss, "aud": ["app-a", "app-b"], "sub": "s", "exp": now() + 600}),
    );
    assert_refused(&list(&state, &both).await, "aud of two projects");
    let neither = sign(&key, &claims(&iss, "app-c", "s"));
    assert_refused(&list(&state, &neither).await, "aud of no project");

    // Listing and removing, as orgctl issuer list/remove do.
    let listed = state.store.project_issuers(a.project_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].audience.as_deref(), Some("app-a"));
    let err = state
        .store
        .remove_issuer(b.project_id, &iss, Some("app-a"))
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        StatusCode::NOT_FOUND,
        "only the holder removes it"
    );
    state
        .store
        .remove_issuer(a.project_id, &iss, Some("app-a"))
        .await
        .unwrap();
    assert_refused(&list(&state, &in_a).await, "removed issuer");
    assert_eq!(list(&state, &in_b).await.status, StatusCode::OK);
    assert!(state
        .store
        .project_issuers(a.project_id)
        .await
        .unwrap()
        .is_empty());
    state
        .store
        .remove_issuer(b.project_id, &iss, Some("app-b"))
        .await
        .unwrap();
    // Once nobody holds it, a project may take the whole issuer.
    trust(&state, c.project_id, &iss, &jwks.url, None).await;
    let any = sign(&key, &claims(&iss, "anything", "s"));
    assert_eq!(list(&state, &any).await.status, StatusCode::OK);
}

#[tokio::test]
async fn registrations_need_an_existing_project_and_an_https_jwks() {
    let state = state().await;
    let iss = issuer_name();
    let url = "http://127.0.0.1:9/jwks.json";
    let missing = TrustedIssuer::new(
        Uuid::now_v7(),
        &iss,
        "https://idp.example/jwks",
        None,
        false,
    )
    .unwrap();
    assert_eq!(
        state.store.add_issuer(&missing).await.unwrap_err().status(),
        StatusCode::NOT_FOUND
    );
    let err = TrustedIssuer::new(Uuid::now_v7(), &iss, url, None, false).unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{err}");
    assert!(err.to_string().contains("https"), "{err}");
    assert!(
        TrustedIssuer::new(Uuid::now_v7(), &iss, "http://idp.example/jwks", None, true).is_err()
    );

    // A loopback registration made under dev sessions is not fetched by a
    // function running without them.
    let p = project(&state).await;
    let key = rsa_key("k1");
    let jwks = JwksServer::start(&[&key]).await;
    trust(&state, p.project_id, &iss, &jwks.url, None).await;
    let mut deployed = state.clone();
    deployed.config.dev_sessions = false;
    let deployed = AppState::new(deployed.config, deployed.aws);
    let answer = list(&deployed, &sign(&key, &claims(&iss, "app", "u1"))).await;
    assert_ne!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(jwks.requests(), 0);
}

#[tokio::test]
async fn dev_tokens_are_refused_without_dev_sessions() {
    let state = state().await;
    let p = project(&state).await;
    let token = session_token(&p, "dev-user", None);
    assert_eq!(list(&state, &token).await.status, StatusCode::OK);

    let mut config = state.config.clone();
    config.dev_sessions = false;
    let deployed = AppState::new(config, state.aws.clone());
    let refused = list(&deployed, &token).await;
    assert_refused(&refused, "HS256 without DEV_SESSIONS");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("DEV_SESSIONS"),
        "{}",
        refused.body
    );
    // The same project's secret key still works there.
    assert_eq!(list(&deployed, &p.secret_key).await.status, StatusCode::OK);
}

#[tokio::test]
async fn dev_tokens_live_at_most_a_day_and_only_for_dev_projects() {
    let state = state().await;
    let p = project(&state).await;
    let secret = p.dev_token_secret.clone().expect("a dev project");
    let token = |lifetime: u64| {
        let claims = shared::auth::SessionClaims {
            sub: "dev-user".into(),
            project_id: p.project_id,
            org_id: None,
            exp: now() + lifetime,
        };
        shared::auth::issue_session_token(&claims, &secret).unwrap()
    };
    assert_eq!(list(&state, &token(23 * 3600)).await.status, StatusCode::OK);
    let refused = list(&state, &token(48 * 3600)).await;
    assert_refused(&refused, "a 48 h dev token");
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("24 hours"));

    // A project not created for dev sessions has no secret to sign with,
    // and a token signed with anything is refused.
    let deployed = state.store.create_project("deployed").await.unwrap();
    assert!(deployed.dev_token_secret.is_none());
    let stored = state
        .store
        .get_project(deployed.project_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.dev_token_secret.is_none());
    let claims = shared::auth::SessionClaims {
        sub: "dev-user".into(),
        project_id: deployed.project_id,
        org_id: None,
        exp: now() + 600,
    };
    for guess in ["", "secret"] {
        let token = shared::auth::issue_session_token(&claims, guess).unwrap();
        assert_refused(
            &list(&state, &token).await,
            "dev token of a project without a secret",
        );
    }
}
