//! The CRM list at two project sizes: the items a page reads follow the
//! page (and its offset), not the project; and what it answers agrees
//! with a brute-force reading of the organizations it was given.

use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::{Method, StatusCode};
use integration_tests::reads::ReadMeter;
use integration_tests::{call, project, state};
use serde_json::{json, Value};
use shared::AppState;

const ORGS: &str = "/organizations";

/// [`state`] with the items DynamoDB reads for each request counted.
async fn metered_state() -> (AppState, ReadMeter) {
    integration_tests::reads::metered(&state().await)
}

/// A project of `n` organizations made through the CRM, five of them
/// "rare" (a tag, a segment, an owner, emails, a LinkedIn id and a word of
/// their own), one in three archived; with a session user who is a member
/// of three. Returns the router, the secret key, the session token, the
/// owner's id and the rare organizations' ids.
async fn seeded(
    n: usize,
) -> (
    AppState,
    ReadMeter,
    axum::Router,
    String,
    String,
    String,
    Vec<String>,
) {
    let (state, reads) = metered_state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let client = client::router(state.clone());
    let key = p.secret_key.clone();
    let owner = call(
        &client,
        Method::POST,
        "/api/client/users",
        Some(&key),
        Some(r#"{"identifier": [{"external_id": "owner"}], "data": {"lastName": "Rare"}}"#),
    )
    .await;
    let owner = owner.body["id"].as_str().unwrap().to_owned();
    let session = integration_tests::session_token(&p, "member", None);
    let mut rare = Vec::new();
    for i in 0..n {
        let mut body = json!({"title": format!("Org {i:04} common")});
        if i < 5 {
            body = json!({
                "title": format!("Zyxel {i}"),
                "tags": ["/tags/rare"],
                "segments": ["/segments/rare"],
                "owner": format!("/users/{owner}"),
                "emailAddresses": [{"email": format!("rare{i}@rare.example")}],
                "linkedinId": format!("rare-li-{i}"),
            });
        }
        if i % 3 == 0 {
            body["archivedAt"] = json!("2026-01-15T10:00:00Z");
        }
        // The session's user makes three (and so is their member).
        let as_who = if i < 3 { &session } else { &key };
        let made = call(
            &crm,
            Method::POST,
            ORGS,
            Some(as_who),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
        if i < 5 {
            rare.push(made.body["id"].as_str().unwrap().to_owned());
        }
    }
    (state, reads, crm, key, session, owner, rare)
}

async fn read(reads: &ReadMeter, crm: &axum::Router, bearer: &str, path: &str) -> (Value, u64) {
    let path = path.replace(' ', "%20");
    reads.take();
    let answer = call(crm, Method::GET, &path, Some(bearer), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
    (answer.body, reads.take().items)
}

#[tokio::test]
async fn a_page_reads_the_same_at_60_and_at_300_organizations() {
    let small = seeded(60).await;
    let large = seeded(300).await;
    let queries = |owner: &str| {
        vec![
            "itemsPerPage=5".to_owned(),
            "itemsPerPage=5&page=4".to_owned(),
            "itemsPerPage=5&order[title.sort]=asc".to_owned(),
            "itemsPerPage=5&order[title.sort]=desc&page=2".to_owned(),
            "itemsPerPage=5&order[owner.lastName]=asc".to_owned(),
            "itemsPerPage=5&order[owner.lastName]=desc".to_owned(),
            "itemsPerPage=5&exists[archivedAt]=false".to_owned(),
            "itemsPerPage=5&exists[archivedAt]=true&page=2".to_owned(),
            "itemsPerPage=5&createdAt[after]=2020-01-01".to_owned(),
            "itemsPerPage=5&tags.id=rare".to_owned(),
            "itemsPerPage=5&segments.uuid=/segments/rare".to_owned(),
            format!("itemsPerPage=5&owner.id={owner}"),
            "itemsPerPage=5&emailAddresses.email=RARE1@rare.example".to_owned(),
            "itemsPerPage=5&identifiers=rare-li-2".to_owned(),
            "itemsPerPage=5&q=zyx".to_owned(),
            "itemsPerPage=5&q=zyxel 3".to_owned(),
            "itemsPerPage=5&tags.id=rare&exists[archivedAt]=false&order[title.sort]=desc"
                .to_owned(),
        ]
    };
    for query in queries(&small.5) {
        let large_query = query.replace(&small.5, &large.5);
        let (body_s, reads_s) =
            read(&small.1, &small.2, &small.3, &format!("{ORGS}?{query}")).await;
        let (body_l, reads_l) = read(
            &large.1,
            &large.2,
            &large.3,
            &format!("{ORGS}?{large_query}"),
        )
        .await;
        assert_eq!(
            body_s["member"].as_array().unwrap().len(),
            body_l["member"].as_array().unwrap().len(),
            "{query}: the same page at both sizes"
        );
        // A sharded count is at most 16 items, some still missing in the
        // smaller project (its shards fill as organizations are made).
        assert!(
            reads_l <= reads_s + 16,
            "{query}: {reads_s} items read at 60 organizations, {reads_l} at 300"
        );
        // The offset, the page and the counts ahead (10 pages of 5), the
        // page's records, and the key: nothing like the project.
        assert!(reads_l <= 80, "{query}: {reads_l} items read");
    }
    // The unfiltered total is the project's count; filters' are exact here.
    let (body, _) = read(
        &large.1,
        &large.2,
        &large.3,
        &format!("{ORGS}?tags.id=rare"),
    )
    .await;
    assert_eq!(body["totalItems"], 5);
    let (body, _) = read(&large.1, &large.2, &large.3, ORGS).await;
    assert_eq!(body["totalItems"], 300);
    let (body, _) = read(
        &large.1,
        &large.2,
        &large.3,
        &format!("{ORGS}?exists[archivedAt]=true"),
    )
    .await;
    assert_eq!(body["totalItems"], 100);

    // A session's list reads its user's organizations only.
    let (body_s, reads_s) = read(&small.1, &small.2, &small.4, ORGS).await;
    let (body_l, reads_l) = read(&large.1, &large.2, &large.4, ORGS).await;
    assert_eq!(
        (body_s["totalItems"].clone(), body_l["totalItems"].clone()),
        (json!(3), json!(3))
    );
    let mine: Vec<&str> = body_l["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        mine,
        large.6[..3].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(reads_s, reads_l, "a session's list at 60 and at 300");
    let (body, reads) = read(
        &large.1,
        &large.2,
        &large.4,
        &format!("{ORGS}?order[title.sort]=desc&tags.id=rare"),
    )
    .await;
    assert_eq!(body["totalItems"], 3);
    assert!(
        reads <= 12,
        "{reads} items read for a session's filtered list"
    );
}

/// What the test knows of each organization it made.
#[derive(Clone, Debug)]
struct Known {
    id: String,
    title: String,
    tags: Vec<String>,
    emails: Vec<String>,
    archived: bool,
    owner_last: Option<String>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[tokio::test]
async fn orders_filters_search_and_totals_agree_with_brute_force() {
    let state = state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let client = client::router(state.clone());
    let accounts = accounts::router(state.clone());
    let key = p.secret_key.as_str();
    let mut owners = Vec::new();
    for (external, last) in [("a", "Visser"), ("b", "de Vries"), ("c", "de")] {
        let user = call(
            &client,
            Method::POST,
            "/api/client/users",
            Some(key),
            Some(
                &json!({"identifier": [{"external_id": external}], "data": {"lastName": last}})
                    .to_string(),
            ),
        )
        .await;
        owners.push((
            user.body["id"].as_str().unwrap().to_owned(),
            last.to_owned(),
        ));
    }
    let names = [
        "Blue Harbor",
        "blue harbour",
        "Harbor Lights",
        "Acme",
        "acme labs",
        "Zeta",
    ];
    let mut known = Vec::new();
    for i in 0..30 {
        let title = format!("{} {i}", names[i % names.len()]);
        let tags: Vec<String> = (0..(i % 3)).map(|t| format!("t{t}")).collect();
        let emails = vec![format!(
            "hello{i}@{}.example",
            names[i % names.len()]
                .split(' ')
                .next()
                .unwrap()
                .to_lowercase()
        )];
        let owner = (i % 4 != 0).then(|| owners[i % 3].clone());
        let archived = i % 5 == 0;
        let id = match i % 3 {
            // Through the CRM.
            0 => {
                let mut body = json!({
                    "title": title,
                    "tags": tags.iter().map(|t| format!("/tags/{t}")).collect::<Vec<_>>(),
                    "emailAddresses": emails.iter().map(|e| json!({"email": e})).collect::<Vec<_>>(),
                });
                if let Some((o, _)) = &owner {
                    body["owner"] = json!(format!("/users/{o}"));
                }
                if archived {
                    body["archivedAt"] = json!("2026-01-01T00:00:00Z");
                }
                let made = call(&crm, Method::POST, ORGS, Some(key), Some(&body.to_string())).await;
                assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
                made.body["id"].as_str().unwrap().to_owned()
            }
            // Through the client family, then given its CRM fields.
            1 => {
                let made = call(
                    &client,
                    Method::POST,
                    "/api/client/organizations",
                    Some(key),
                    Some(&json!({"identifier": [{"external_id": format!("o{i}")}], "name": "placeholder"}).to_string()),
                )
                .await;
                assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
                made.body["id"].as_str().unwrap().to_owned()
            }
            // Through the accounts family.
            _ => {
                let made = call(
                    &accounts,
                    Method::POST,
                    "/v1/organizations",
                    Some(key),
                    Some(&json!({"name": "placeholder"}).to_string()),
                )
                .await;
                assert!(made.status.is_success(), "{:?}", made.body);
                made.body["id"].as_str().unwrap().to_owned()
            }
        };
        if i % 3 != 0 {
            // The rest through a CRM PATCH (and the title renamed by it).
            let mut body = json!({
                "title": title,
                "tags": tags.iter().map(|t| format!("/tags/{t}")).collect::<Vec<_>>(),
                "emailAddresses": emails.iter().map(|e| json!({"email": e})).collect::<Vec<_>>(),
            });
            if let Some((o, _)) = &owner {
                body["owner"] = json!(format!("/users/{o}"));
            }
            if archived {
                body["archivedAt"] = json!("2026-01-01T00:00:00Z");
            }
            let patched = call(
                &crm,
                Method::PATCH,
                &format!("{ORGS}/{id}"),
                Some(key),
                Some(&body.to_string()),
            )
            .await;
            assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
        }
        known.push(Known {
            id,
            title,
            tags,
            emails,
            archived,
            owner_last: owner.map(|o| o.1.to_lowercase()),
        });
    }
    // Changes after creation: a rename through accounts, an unarchive, a
    // deletion.
    let renamed = call(
        &accounts,
        Method::PATCH,
        &format!("/v1/organizations/{}", known[7].id),
        Some(key),
        Some(r#"{"name": "Renamed Harbor 7"}"#),
    )
    .await;
    assert!(renamed.status.is_success(), "{:?}", renamed.body);
    known[7].title = "Renamed Harbor 7".into();
    let unarchived = call(
        &crm,
        Method::PATCH,
        &format!("{ORGS}/{}", known[10].id),
        Some(key),
        Some(r#"{"archivedAt": null, "tags": ["/tags/t9"]}"#),
    )
    .await;
    assert_eq!(unarchived.status, StatusCode::OK);
    known[10].archived = false;
    known[10].tags = vec!["t9".into()];
    let gone = call(
        &crm,
        Method::GET,
        &format!("{ORGS}/{}", known[3].id),
        Some(key),
        None,
    )
    .await;
    let gone_created = gone.body["createdAt"].as_str().unwrap().to_owned();
    let deleted = call(
        &accounts,
        Method::DELETE,
        &format!("/v1/organizations/{}", known[3].id),
        Some(key),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // Its entries as a purge still to come would leave them: never listed.
    let oid = known[3].id.clone();
    let pid = p.project_id;
    for (pk, sk) in [
        (
            format!("P#{pid}#CRMIX#C"),
            format!("{gone_created}\u{1}{oid}"),
        ),
        (format!("P#{pid}#CRMIX#T"), format!("acme 3\u{1}{oid}")),
        (
            format!("P#{pid}#CRMIX#F#archived#false"),
            format!("{gone_created}\u{1}{oid}"),
        ),
        (
            format!("P#{pid}#CRMIX#Q"),
            format!("acme\u{1}{gone_created}\u{1}{oid}"),
        ),
    ] {
        state
            .aws
            .dynamodb
            .put_item()
            .table_name(&state.config.table)
            .item("PK", AttributeValue::S(pk))
            .item("SK", AttributeValue::S(sk))
            .item("org", AttributeValue::S(oid.clone()))
            .item("v", AttributeValue::N("1".into()))
            .send()
            .await
            .expect("an orphaned entry");
    }
    known.remove(3);

    let matches_q = |k: &Known, q: &str| {
        let mine: Vec<String> = words(&k.title)
            .into_iter()
            .chain(k.emails.iter().flat_map(|e| words(e)))
            .collect();
        words(q)
            .iter()
            .all(|w| mine.iter().any(|m| m.starts_with(w.as_str())))
    };
    let by_title = |list: &mut Vec<Known>| {
        list.sort_by(|a, b| {
            a.title
                .to_lowercase()
                .cmp(&b.title.to_lowercase())
                .then(a.id.cmp(&b.id))
        })
    };
    type Case = (String, Box<dyn Fn(&Known) -> bool>, &'static str);
    let cases: Vec<Case> = vec![
        ("".into(), Box::new(|_| true), "created"),
        (
            "tags.id=t1".into(),
            Box::new(|k| k.tags.contains(&"t1".into())),
            "created",
        ),
        (
            "tags.id[]=t1&tags.id[]=t9".into(),
            Box::new(|k| k.tags.iter().any(|t| t == "t1" || t == "t9")),
            "title",
        ),
        (
            "exists[archivedAt]=true".into(),
            Box::new(|k| k.archived),
            "created",
        ),
        (
            "exists[archivedAt]=false".into(),
            Box::new(|k| !k.archived),
            "title",
        ),
        (
            "q=harb".into(),
            Box::new(move |k| matches_q(k, "harb")),
            "created",
        ),
        (
            "q=blue harbo".into(),
            Box::new(move |k| matches_q(k, "blue harbo")),
            "title",
        ),
        (
            "q=ACME.example".into(),
            Box::new(move |k| matches_q(k, "acme.example")),
            "owner",
        ),
        (
            "q=harbor&exists[archivedAt]=false".into(),
            Box::new(move |k| matches_q(k, "harbor") && !k.archived),
            "created",
        ),
        (
            "emailAddresses.email=hello4@acme.example".into(),
            Box::new(|k| k.emails.contains(&"hello4@acme.example".into())),
            "created",
        ),
        (
            "tags.id=t0&exists[archivedAt]=true".into(),
            Box::new(|k| k.tags.contains(&"t0".into()) && k.archived),
            "owner",
        ),
    ];
    for (query, wanted, order) in cases {
        let mut expected: Vec<Known> = known.iter().filter(|k| wanted(k)).cloned().collect();
        let suffix = match order {
            "title" => {
                by_title(&mut expected);
                "&order[title.sort]=asc"
            }
            "owner" => {
                expected.sort_by(|a, b| match (&a.owner_last, &b.owner_last) {
                    (Some(x), Some(y)) => x.cmp(y).then(a.id.cmp(&b.id)),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => a.id.cmp(&b.id),
                });
                "&order[owner.lastName]=asc"
            }
            _ => "",
        };
        let mut ids = Vec::new();
        let mut page = 1;
        loop {
            let path =
                format!("{ORGS}?{query}{suffix}&itemsPerPage=4&page={page}").replace(' ', "%20");
            let answer = call(&crm, Method::GET, &path, Some(key), None).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
            assert_eq!(answer.body["totalItems"], expected.len(), "{path}");
            let member = answer.body["member"].as_array().unwrap();
            ids.extend(member.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
            if answer.body["view"]["next"].is_null() {
                break;
            }
            page += 1;
        }
        let expected: Vec<String> = expected.into_iter().map(|k| k.id).collect();
        assert_eq!(ids, expected, "{query}{suffix}");
    }
}

#[tokio::test]
async fn the_largest_phone_list_is_stored_once_and_read_back_exactly() {
    let state = state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let made = call(
        &crm,
        Method::POST,
        ORGS,
        key,
        Some(r#"{"title": "Phones"}"#),
    )
    .await;
    let id = made.body["id"].as_str().unwrap().to_owned();
    // 100 numbers (the most a list holds) of 2,048 characters (the most a
    // field holds): about 205 KB, under the 256 KiB body limit, and under
    // the 400 KB item limit only when stored once.
    let phones: Vec<Value> = (0..100)
        .map(|i| json!({"phoneNumber": format!("+{i:0>2047}"), "phoneType": "work"}))
        .collect();
    let body = json!({"phoneNumbers": phones}).to_string();
    let patched = call(
        &crm,
        Method::PATCH,
        &format!("{ORGS}/{id}"),
        key,
        Some(&body),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let read_back = call(&crm, Method::GET, &format!("{ORGS}/{id}"), key, None).await;
    assert_eq!(read_back.body["phoneNumbers"], json!(phones));
    // Every number is found by `identifiers`, though there are more index
    // entries than one transaction holds.
    let wanted = format!("%2B{:0>2047}", 99);
    let found = call(
        &crm,
        Method::GET,
        &format!("{ORGS}?identifiers={wanted}"),
        key,
        None,
    )
    .await;
    assert_eq!(found.body["totalItems"], 1, "{:?}", found.body);
    // And cleared again: the number no longer finds it.
    let cleared = call(
        &crm,
        Method::PATCH,
        &format!("{ORGS}/{id}"),
        key,
        Some(r#"{"phoneNumbers": []}"#),
    )
    .await;
    assert_eq!(cleared.status, StatusCode::OK);
    let found = call(
        &crm,
        Method::GET,
        &format!("{ORGS}?identifiers={wanted}"),
        key,
        None,
    )
    .await;
    assert_eq!(found.body["totalItems"], 0, "{:?}", found.body);
}

#[tokio::test]
async fn a_page_of_notes_reads_its_page_not_every_note() {
    let (state, reads) = metered_state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let key = p.secret_key.as_str();
    let mut orgs = Vec::new();
    for count in [5, 60] {
        let made = call(
            &crm,
            Method::POST,
            ORGS,
            Some(key),
            Some(r#"{"title": "Notes"}"#),
        )
        .await;
        let org = made.body["id"].as_str().unwrap().to_owned();
        for i in 0..count {
            let body = json!({"description": format!("n{i}"), "category": "/note_categories/1"});
            let r = call(
                &crm,
                Method::POST,
                &format!("{ORGS}/{org}/notes"),
                Some(key),
                Some(&body.to_string()),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
        orgs.push((org, count));
    }
    let mut first_page_reads = Vec::new();
    for (org, count) in &orgs {
        let (body, n) = read(
            &reads,
            &crm,
            key,
            &format!("{ORGS}/{org}/notes?itemsPerPage=5"),
        )
        .await;
        assert_eq!(body["totalItems"], *count);
        assert_eq!(body["member"][0]["description"], "n0", "creation order");
        first_page_reads.push(n);
    }
    assert_eq!(
        first_page_reads[0], first_page_reads[1],
        "the first page at 5 and 60 notes"
    );
    let (org, _) = &orgs[1];
    let (body, n) = read(
        &reads,
        &crm,
        key,
        &format!("{ORGS}/{org}/notes?itemsPerPage=5&page=3"),
    )
    .await;
    assert_eq!(body["member"][0]["description"], "n10");
    assert!(n <= 1 + 15 + 1 + 1, "{n} items read for page 3");
    let gone = call(
        &crm,
        Method::GET,
        &format!("{ORGS}/{}/notes", uuid::Uuid::now_v7()),
        Some(key),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}
