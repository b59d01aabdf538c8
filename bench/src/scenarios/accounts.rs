//! The accounts family (`/v1/organizations/**`, seed 001).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

use serde_json::{json, Value};

use super::{request, setup, Ctx, Family, Scenario};

const ORGS: &str = "/v1/organizations";

/// A field of a fixture response, as text.
fn text(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("a fixture without {field}: {body}"))
        .to_owned()
}

pub async fn scenarios(ctx: &Ctx) -> Vec<Scenario> {
    let sk = ctx.secret();
    let ann = ctx.session("accounts-ann", None);
    let (dns, records) = dns_stub();
    let mut verifying = ctx.state.clone();
    verifying.config.dns_resolver = Some(dns);
    let router = ::accounts::router(ctx.state.clone());
    let verifier = ::accounts::router(verifying);
    let client = ::client::router(ctx.state.clone());
    let create = |name: String| {
        request(
            "POST",
            ORGS,
            Some(&sk),
            Some(json!({"name": name, "billing_email": "billing@acme.example"})),
        )
    };

    // Ann owns Acme; its billing email is its own (no owner lookup).
    let acme = setup(
        &router,
        request(
            "POST",
            ORGS,
            Some(&ann),
            Some(json!({"name": "Acme", "billing_email": "billing@acme.example"})),
        ),
    )
    .await;
    let acme = text(&acme, "id");
    let members = setup(
        &router,
        request(
            "GET",
            &format!("{ORGS}/{acme}/memberships"),
            Some(&sk),
            None,
        ),
    )
    .await;
    let ann_id = text(&members["items"][0], "id");
    setup(
        &router,
        request(
            "POST",
            &format!("{ORGS}/{acme}/address"),
            Some(&sk),
            Some(json!({"city": "Berlin", "country": "DE", "line1": "1 Main St", "postal_code": "10115"})),
        ),
    )
    .await;
    let claim = |org: &str, domain: String| {
        request(
            "POST",
            &format!("{ORGS}/{org}/domains"),
            Some(&sk),
            Some(json!({ "domain": domain })),
        )
    };
    let read_domain = text(
        &setup(&router, claim(&acme, "acme.example".into())).await,
        "id",
    );
    let proven = setup(&router, claim(&acme, "proven.acme.example".into())).await;
    records.send(verification(&proven)).expect("the DNS stub");
    let proven = text(&proven, "id");
    setup(
        &verifier,
        request(
            "POST",
            &format!("{ORGS}/{acme}/domains/{proven}/verify"),
            Some(&sk),
            None,
        ),
    )
    .await;

    // Members who leave, one each iteration, in an organization the client
    // family names.
    let club = setup(
        &client,
        request(
            "POST",
            "/api/client/organizations",
            Some(&sk),
            Some(json!({"identifier": [{"external_id": "accounts-club"}], "name": "Club"})),
        ),
    )
    .await;
    let club = text(&club, "id");
    // Per iteration: an organization to delete, and one holding a domain to
    // remove and one to verify.
    let mut gone = Vec::new();
    let mut holders = Vec::new();
    let mut removed = Vec::new();
    let mut proving = Vec::new();
    for i in 0..ctx.n {
        setup(
            &client,
            request(
                "POST",
                "/api/client/organizations/users",
                Some(&sk),
                Some(
                    json!({"organization": {"identifier": [{"external_id": "accounts-club"}]},
                    "user": {"identifier": [{"external_id": format!("accounts-quitter{i}")}]}}),
                ),
            ),
        )
        .await;
        gone.push(text(
            &setup(&router, create(format!("Gone {i}"))).await,
            "id",
        ));
        let holder = text(&setup(&router, create(format!("Holder {i}"))).await, "id");
        let domain = setup(&router, claim(&holder, format!("gone{i}.example"))).await;
        removed.push(text(&domain, "id"));
        let domain = setup(&router, claim(&holder, format!("proof{i}.example"))).await;
        records.send(verification(&domain)).expect("the DNS stub");
        proving.push(text(&domain, "id"));
        holders.push(holder);
    }

    let mut family = Family::new("accounts", &router);
    family.add(
        "GET",
        "/v1/openapi.json",
        0,
        "no AWS call: the document is built once per container",
        Box::new(|_| request("GET", "/v1/openapi.json", None, None)),
    );
    let k = sk.clone();
    family.add(
        "POST",
        ORGS,
        2,
        "the key, then one transaction (record, count, timeline event)",
        Box::new(move |i| {
            request(
                "POST",
                ORGS,
                Some(&k),
                Some(json!({"name": format!("New {i}"), "billing_email": "billing@new.example"})),
            )
        }),
    );
    let s = ann.clone();
    family.add(
        "POST",
        ORGS,
        2,
        "with a session: the user's marker and record in one batch, then one transaction that makes them the owner; 3 because a local session token reads its project for the signing secret (behind the gateway's JWT authorizer, no read)",
        Box::new(move |i| {
            request(
                "POST",
                ORGS,
                Some(&s),
                Some(json!({"name": format!("Owned {i}"), "billing_email": "billing@owned.example"})),
            )
        }),
    );
    let k = sk.clone();
    family.add(
        "GET",
        ORGS,
        3,
        "the key; the page and the count (one Query of its shards), concurrently (a page with organizations lacking a billing email of their own, like the client family's, adds one read for their oldest owners)",
        Box::new(move |_| request("GET", ORGS, Some(&k), None)),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "GET",
        "/v1/organizations/{organization_id}",
        2,
        "the key, then the record",
        Box::new(move |_| request("GET", &format!("{ORGS}/{a}"), Some(&k), None)),
    );
    let (s, a) = (ann.clone(), acme.clone());
    family.add(
        "GET",
        "/v1/organizations/{organization_id}",
        2,
        "with a session: the user's marker and the membership in one batch (the container remembers the user), then the record; 3 because a local session token reads its project for the signing secret",
        Box::new(move |_| request("GET", &format!("{ORGS}/{a}"), Some(&s), None)),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "PATCH",
        "/v1/organizations/{organization_id}",
        3,
        "the key, the record (the answer is the whole record, and an unchanged one records no event), then one transaction",
        Box::new(move |i| {
            request(
                "PATCH",
                &format!("{ORGS}/{a}"),
                Some(&k),
                Some(json!({"name": format!("Acme {i}")})),
            )
        }),
    );
    let k = sk.clone();
    family.add(
        "DELETE",
        "/v1/organizations/{organization_id}",
        3,
        "the key, the live state (record and identifiers to release), then one transaction; the deletion is announced on SQS",
        Box::new(move |i| request("DELETE", &format!("{ORGS}/{}", gone[i]), Some(&k), None)),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "GET",
        "/v1/organizations/{organization_id}/events",
        3,
        "the key, the record (an unknown organization is 404, not an empty timeline), and the events Query",
        Box::new(move |_| request("GET", &format!("{ORGS}/{a}/events"), Some(&k), None)),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "GET",
        "/v1/organizations/{organization_id}/memberships",
        3,
        "the key; the page and the record with its count, concurrently",
        Box::new(move |_| request("GET", &format!("{ORGS}/{a}/memberships"), Some(&k), None)),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "GET",
        "/v1/organizations/{organization_id}/memberships/{membership_id}",
        2,
        "the key, then the membership",
        Box::new(move |_| {
            request(
                "GET",
                &format!("{ORGS}/{a}/memberships/{ann_id}"),
                Some(&k),
                None,
            )
        }),
    );
    let session = |i: usize| ctx.session(&format!("accounts-quitter{i}"), None);
    let quitters: Vec<String> = (0..ctx.n).map(session).collect();
    family.add(
        "POST",
        "/v1/organizations/{organization_id}/leave",
        2,
        "the user's marker and the membership (its version and role) in one batch (when the container knows the user's id), then one transaction; 3 because a local session token reads its project for the signing secret (API Gateway verifies tokens in AWS)",
        Box::new(move |i| {
            request("POST", &format!("{ORGS}/{club}/leave"), Some(&quitters[i]), None)
        }),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "POST",
        "/v1/organizations/{organization_id}/address",
        3,
        "the key, the address and the record in one batch (versions), then one transaction",
        Box::new(move |i| {
            request(
                "POST",
                &format!("{ORGS}/{a}/address"),
                Some(&k),
                Some(
                    json!({"city": "Berlin", "country": "DE", "line1": format!("{i} Main St"), "postal_code": "10115"}),
                ),
            )
        }),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "GET",
        "/v1/organizations/{organization_id}/address",
        2,
        "the key, then the address and the record in one batch",
        Box::new(move |_| request("GET", &format!("{ORGS}/{a}/address"), Some(&k), None)),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "PATCH",
        "/v1/organizations/{organization_id}/address",
        3,
        "the key, the address and the record in one batch (versions), then one transaction",
        Box::new(move |i| {
            request(
                "PATCH",
                &format!("{ORGS}/{a}/address"),
                Some(&k),
                Some(json!({"line2": format!("Floor {i}")})),
            )
        }),
    );
    let (k, h) = (sk.clone(), holders.clone());
    family.add(
        "POST",
        "/v1/organizations/{organization_id}/domains",
        3,
        "the key, the record (domains live in it), then one transaction (record and the project's claim)",
        Box::new(move |i| {
            request(
                "POST",
                &format!("{ORGS}/{}/domains", h[i]),
                Some(&k),
                Some(json!({ "domain": format!("new{i}.example") })),
            )
        }),
    );
    let (k, a) = (sk.clone(), acme.clone());
    family.add(
        "GET",
        "/v1/organizations/{organization_id}/domains/{domain_id}",
        2,
        "the key, then the record the domain lives in",
        Box::new(move |_| {
            request(
                "GET",
                &format!("{ORGS}/{a}/domains/{read_domain}"),
                Some(&k),
                None,
            )
        }),
    );
    let (k, h) = (sk.clone(), holders.clone());
    family.add(
        "DELETE",
        "/v1/organizations/{organization_id}/domains/{domain_id}",
        3,
        "the key, the record, then one transaction (record and the released claim)",
        Box::new(move |i| {
            request(
                "DELETE",
                &format!("{ORGS}/{}/domains/{}", h[i], removed[i]),
                Some(&k),
                None,
            )
        }),
    );
    let k = sk.clone();
    family.add_on(
        &verifier,
        "POST",
        "/v1/organizations/{organization_id}/domains/{domain_id}/verify",
        3,
        "the key, the record (the versioned update starts from it), then (a local DNS stub answers the TXT record with the token) one transaction",
        Box::new(move |i| {
            request(
                "POST",
                &format!("{ORGS}/{}/domains/{}/verify", holders[i], proving[i]),
                Some(&k),
                None,
            )
        }),
    );
    let k = sk.clone();
    family.add(
        "POST",
        "/v1/organizations/{organization_id}/domains/{domain_id}/verify",
        2,
        "already verified: the key, then the record (no DNS lookup, no write)",
        Box::new(move |_| {
            request(
                "POST",
                &format!("{ORGS}/{acme}/domains/{proven}/verify"),
                Some(&k),
                None,
            )
        }),
    );
    family.done()
}

/// The TXT record a claim answers: its name and the token it must carry.
fn verification(claimed: &Value) -> (String, String) {
    let record = &claimed["verification"];
    (text(record, "name"), text(record, "value"))
}

/// A DNS server on a local UDP port answering TXT questions for the
/// records sent to it (NXDOMAIN for any other name): what domain
/// verification asks, without the network. It lives as long as the run.
fn dns_stub() -> (SocketAddr, std::sync::mpsc::Sender<(String, String)>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a local UDP port");
    let addr = socket.local_addr().expect("the stub's address");
    let (send, added) = std::sync::mpsc::channel::<(String, String)>();
    std::thread::spawn(move || {
        let mut records = HashMap::new();
        let mut buf = [0u8; 512];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            records.extend(added.try_iter());
            if let Some(answer) = dns_answer(&buf[..len], &records) {
                let _ = socket.send_to(&answer, from);
            }
        }
    });
    (addr, send)
}

/// The answer to one DNS query (`None` for what is not one).
fn dns_answer(query: &[u8], records: &HashMap<String, String>) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_lowercase());
        at += len;
    }
    let qtype = query.get(at..at + 2)?;
    let question = query.get(12..at + 4)?;
    let known = records.get(&labels.join("."));
    let token = known.filter(|t| qtype == [0, 16] && t.len() < 256);
    let rcode = if known.is_some() { 0 } else { 3 };
    let flags = 0x8000 | (u16::from_be_bytes([header[2], header[3]]) & 0x7900) | 0x0480 | rcode;
    let mut out = Vec::with_capacity(question.len() + 80);
    out.extend_from_slice(&header[..2]);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, u8::from(token.is_some()), 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if let Some(token) = token {
        let len = token.len() as u8;
        out.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 0]);
        out.extend_from_slice(&(u16::from(len) + 1).to_be_bytes());
        out.push(len);
        out.extend_from_slice(token.as_bytes());
    }
    Some(out)
}
