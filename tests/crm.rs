//! /organizations (the CRM dialect) through the crm router, against the
//! emulator.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use integration_tests::{call, logged_state, project, send, state, Exchange};
use serde_json::{json, Value};

const ORGS: &str = "/organizations";

/// What the test itself knows of each organization it made.
#[derive(Clone, Debug)]
struct Fixture {
    id: String,
    title: String,
    owner: Option<(String, String)>,
    tags: Vec<String>,
    segment: String,
    email: String,
    linkedin: String,
    phone: String,
    archived: bool,
    created_at: String,
}

/// Every page of a list, following `view.next`; the ids in order and the
/// `totalItems` each page reported.
async fn walk(router: &axum::Router, key: &str, query: &str) -> (Vec<String>, u64) {
    let mut ids = Vec::new();
    let mut next = Some(format!("{ORGS}?{query}"));
    let mut total = None;
    let mut pages = 0;
    while let Some(path) = next {
        let page = call(router, Method::GET, &path, Some(key), None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {:?}", page.body);
        let reported = page.body["totalItems"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(reported), reported, "{path}");
        let member = page.body["member"].as_array().unwrap();
        assert!(member.len() <= 30, "{path}: {} items", member.len());
        ids.extend(member.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        next = page.body["view"]["next"].as_str().map(str::to_owned);
        pages += 1;
        assert!(pages < 50, "{path}: the pages do not end");
    }
    (ids, total.unwrap_or(0))
}

fn ids_of<'a>(fixtures: impl IntoIterator<Item = &'a Fixture>) -> Vec<String> {
    fixtures.into_iter().map(|f| f.id.clone()).collect()
}

#[tokio::test]
async fn every_filter_and_order_over_60_organizations() {
    let state = state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let client = client::router(state.clone());
    let key = p.secret_key.as_str();

    // Three owners (users of the project) with last names.
    let mut owners = Vec::new();
    for (external, last) in [("u1", "Zimmer"), ("u2", "Adams"), ("u3", "Maas")] {
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
        assert_eq!(user.status, StatusCode::OK, "{:?}", user.body);
        owners.push((
            user.body["id"].as_str().unwrap().to_owned(),
            last.to_owned(),
        ));
    }
    let words = [
        "delta", "Alpha", "charlie", "Bravo", "echo", "foxtrot", "golf",
    ];
    let mut fixtures = Vec::new();
    for i in 0..60 {
        let owner = (i % 4 != 0).then(|| owners[i % 3].clone());
        let tags = vec![
            if i % 2 == 0 { "even" } else { "odd" }.to_owned(),
            format!("t{}", i % 5),
        ];
        let f = Fixture {
            id: String::new(),
            title: format!("{} {i:02}", words[i % words.len()]),
            owner,
            tags,
            segment: format!("s{}", i % 3),
            email: format!("info{i}@org{i}.example"),
            linkedin: format!("li-{i}"),
            phone: format!("+31 20 555 {i:04}"),
            archived: i % 6 == 0,
            created_at: String::new(),
        };
        let mut body = json!({
            "title": f.title,
            "tags": f.tags.iter().map(|t| format!("/tags/{t}")).collect::<Vec<_>>(),
            "segments": [format!("/segments/{}", f.segment)],
            "emailAddresses": [{"email": f.email}],
            "phoneNumbers": [{"phoneNumber": f.phone, "phoneType": "work"}],
            "linkedinId": f.linkedin,
            "website": format!("https://org{i}.example"),
        });
        if let Some((owner, _)) = &f.owner {
            body["owner"] = json!(format!("/users/{owner}"));
        }
        if f.archived {
            body["archivedAt"] = json!("2026-01-15T10:00:00Z");
        }
        let created = call(&crm, Method::POST, ORGS, Some(key), Some(&body.to_string())).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(
            created.content_type.as_deref(),
            Some("application/ld+json; charset=utf-8")
        );
        fixtures.push(Fixture {
            id: created.body["id"].as_str().unwrap().to_owned(),
            created_at: created.body["createdAt"].as_str().unwrap().to_owned(),
            ..f
        });
    }
    let all = ids_of(&fixtures);

    // No filter: every organization once, in creation order, 15 a page.
    let first = call(&crm, Method::GET, ORGS, Some(key), None).await;
    assert_eq!(first.body["member"].as_array().unwrap().len(), 15);
    assert_eq!(first.body["totalItems"], 60);
    assert_eq!(first.body["@type"], "Collection");
    assert_eq!(first.body["view"]["last"], "/organizations?page=4");
    let (listed, total) = walk(&crm, key, "itemsPerPage=31").await;
    assert_eq!((listed.clone(), total), (all.clone(), 60));
    // Page 2 continues page 1 without overlap.
    let (p1, _) = walk(&crm, key, "itemsPerPage=30&page=1").await;
    assert_eq!(p1, all, "walking from page 1 sees each exactly once");
    let page2 = call(
        &crm,
        Method::GET,
        "/organizations?itemsPerPage=7&page=2",
        Some(key),
        None,
    )
    .await;
    let page2: Vec<String> = page2.body["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(page2, all[7..14]);

    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "q=ALPHA".into(),
            ids_of(fixtures.iter().filter(|f| f.title.contains("Alpha"))),
        ),
        (
            "q=org7.example".into(),
            ids_of(
                fixtures
                    .iter()
                    .filter(|f| f.email.ends_with("@org7.example")),
            ),
        ),
        (
            format!("owner.id=/users/{}", owners[1].0),
            ids_of(
                fixtures
                    .iter()
                    .filter(|f| f.owner.as_ref().is_some_and(|o| o.0 == owners[1].0)),
            ),
        ),
        (
            format!("owner.id[]={}&owner.id[]={}", owners[0].0, owners[2].0),
            ids_of(fixtures.iter().filter(|f| {
                f.owner
                    .as_ref()
                    .is_some_and(|o| o.0 == owners[0].0 || o.0 == owners[2].0)
            })),
        ),
        (
            "emailAddresses.email=INFO3@org3.example".into(),
            ids_of(fixtures.iter().filter(|f| f.email == "info3@org3.example")),
        ),
        (
            "emailAddresses.email[]=info3@org3.example&emailAddresses.email[]=info40@org40.example"
                .into(),
            ids_of(
                fixtures.iter().filter(|f| {
                    f.email == "info3@org3.example" || f.email == "info40@org40.example"
                }),
            ),
        ),
        (
            "tags.id=/tags/odd".into(),
            ids_of(
                fixtures
                    .iter()
                    .filter(|f| f.tags.contains(&"odd".to_owned())),
            ),
        ),
        (
            "tags.id[]=t1&tags.id[]=/tags/t3".into(),
            ids_of(
                fixtures
                    .iter()
                    .filter(|f| f.tags.iter().any(|t| t == "t1" || t == "t3")),
            ),
        ),
        (
            "tags.id=even&segments.uuid=s2".into(),
            ids_of(
                fixtures
                    .iter()
                    .filter(|f| f.tags.contains(&"even".to_owned()) && f.segment == "s2"),
            ),
        ),
        (
            "segments.uuid[]=/segments/s0&segments.uuid[]=s1".into(),
            ids_of(fixtures.iter().filter(|f| f.segment != "s2")),
        ),
        (
            "exists[archivedAt]=true".into(),
            ids_of(fixtures.iter().filter(|f| f.archived)),
        ),
        (
            "exists[archivedAt]=false".into(),
            ids_of(fixtures.iter().filter(|f| !f.archived)),
        ),
        (
            "identifiers=LI-12".into(),
            ids_of(fixtures.iter().filter(|f| f.linkedin == "li-12")),
        ),
        (
            "identifiers[]=%2B3120 555 0021&identifiers[]=info5@org5.example".into(),
            ids_of(
                fixtures
                    .iter()
                    .filter(|f| f.phone.ends_with("0021") || f.email == "info5@org5.example"),
            ),
        ),
    ];
    let cut = fixtures[30].created_at.clone();
    let time_cases: Vec<(String, Vec<String>)> = vec![
        (
            format!("createdAt[after]={cut}"),
            ids_of(fixtures.iter().filter(|f| f.created_at >= cut)),
        ),
        (
            format!("createdAt[strictly_after]={cut}"),
            ids_of(fixtures.iter().filter(|f| f.created_at > cut)),
        ),
        (
            format!("createdAt[before]={cut}"),
            ids_of(fixtures.iter().filter(|f| f.created_at <= cut)),
        ),
        (
            format!("createdAt[strictly_before]={cut}&tags.id=odd"),
            ids_of(
                fixtures
                    .iter()
                    .filter(|f| f.created_at < cut && f.tags.contains(&"odd".to_owned())),
            ),
        ),
    ];
    for (query, expected) in cases.into_iter().chain(time_cases) {
        assert!(!expected.is_empty(), "{query}: the fixture has a match");
        let query = query.replace('+', "%2B").replace(' ', "%20");
        let (found, total) = walk(&crm, key, &format!("{query}&itemsPerPage=10")).await;
        assert_eq!(found, expected, "{query}");
        assert_eq!(total as usize, expected.len(), "{query}");
    }

    // Orders.
    let mut by_title = fixtures.clone();
    by_title.sort_by_key(|a| a.title.to_lowercase());
    let (found, _) = walk(&crm, key, "order[title.sort]=asc&itemsPerPage=30").await;
    assert_eq!(found, ids_of(&by_title));
    let (found, _) = walk(&crm, key, "order[title.sort]=desc&itemsPerPage=30").await;
    assert_eq!(found, ids_of(by_title.iter().rev()));
    let mut by_owner: Vec<&Fixture> = fixtures.iter().collect();
    by_owner.sort_by(|a, b| {
        let last = |f: &Fixture| f.owner.as_ref().map(|o| o.1.to_lowercase());
        match (last(a), last(b)) {
            (Some(x), Some(y)) => y.cmp(&x).then(a.id.cmp(&b.id)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.id.cmp(&b.id),
        }
    });
    let (found, _) = walk(&crm, key, "order[owner.lastName]=desc&itemsPerPage=30").await;
    assert_eq!(
        found,
        ids_of(by_owner),
        "descending by owner, ownerless last"
    );

    // Bad parameters are 400s, not empty pages.
    for bad in [
        "page=0",
        "itemsPerPage=x",
        "order[title.sort]=sideways",
        "exists[archivedAt]=maybe",
        "createdAt[after]=yesterday",
    ] {
        let r = call(&crm, Method::GET, &format!("{ORGS}?{bad}"), Some(key), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    let capped = call(
        &crm,
        Method::GET,
        "/organizations?itemsPerPage=31",
        Some(key),
        None,
    )
    .await;
    assert_eq!(capped.body["member"].as_array().unwrap().len(), 30);
}

#[tokio::test]
async fn put_replaces_patch_merges_and_the_title_is_the_shared_name() {
    let state = state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let client = client::router(state.clone());
    let accounts = accounts::router(state.clone());
    let key = Some(p.secret_key.as_str());

    // Made by the client family: listed here with its name as the title.
    let made = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.publishable_key),
        Some(
            r#"{"identifier": [{"external_id": "acme"}], "name": "Acme", "data": {"plan": "pro"}}"#,
        ),
    )
    .await;
    let id = made.body["id"].as_str().unwrap().to_owned();
    let listed = call(&crm, Method::GET, ORGS, key, None).await;
    assert_eq!(listed.body["member"][0]["title"], "Acme");
    assert_eq!(
        listed.body["member"][0]["@id"],
        format!("/organizations/{id}")
    );

    let path = format!("{ORGS}/{id}");
    let full = json!({
        "title": "Acme BV", "description": "Tools", "website": "https://acme.example",
        "customerId": "C-1", "tags": ["/tags/1"], "linkedinId": "acme",
        "createdAt": "1999-01-01T00:00:00Z"
    });
    let put = call(&crm, Method::PUT, &path, key, Some(&full.to_string())).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["tags"], json!(["/tags/1"]));
    assert_ne!(put.body["createdAt"], "1999-01-01T00:00:00Z", "read-only");
    let patch = call(
        &crm,
        Method::PATCH,
        &path,
        key,
        Some(r#"{"description": "Hardware", "website": null}"#),
    )
    .await;
    assert_eq!(patch.status, StatusCode::OK, "{:?}", patch.body);
    assert_eq!(patch.body["description"], "Hardware");
    assert_eq!(patch.body["website"], Value::Null, "null clears");
    assert_eq!(patch.body["customerId"], "C-1", "PATCH keeps what it omits");
    assert_eq!(patch.body["tags"], json!(["/tags/1"]));
    let put = call(
        &crm,
        Method::PUT,
        &path,
        key,
        Some(r#"{"title": "Acme BV"}"#),
    )
    .await;
    assert_eq!(
        put.body["customerId"],
        Value::Null,
        "PUT clears what it omits"
    );
    assert_eq!(put.body["tags"], json!([]));
    assert_eq!(put.body["description"], Value::Null);

    // One record: the other dialects see the title as the name, and keep
    // their own fields.
    let there = call(
        &accounts,
        Method::GET,
        &format!("/v1/organizations/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(there.body["name"], "Acme BV");
    let upsert = call(
        &client,
        Method::POST,
        "/api/client/organizations",
        Some(&p.publishable_key),
        Some(r#"{"identifier": [{"external_id": "acme"}], "data": {"seats": 3}}"#),
    )
    .await;
    assert_eq!(upsert.body["name"], "Acme BV");
    assert_eq!(upsert.body["data"], json!({"plan": "pro", "seats": 3}));

    // A title is always required; bad IRIs and unknown owners refused.
    for (method, body, status) in [
        (
            Method::PUT,
            r#"{"description": "x"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            r#"{"title": null}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            r#"{"title": "  "}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (Method::PATCH, r#"{"tags": ["1"]}"#, StatusCode::BAD_REQUEST),
        (Method::PATCH, r#"{"title": 5}"#, StatusCode::BAD_REQUEST),
        (
            Method::PATCH,
            r#"{"owner": "/users/not-a-user"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            r#"{"emailAddresses": [{"email": "nope"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = call(&crm, method.clone(), &path, key, Some(body)).await;
        assert_eq!(r.status, status, "{method} {body}: {:?}", r.body);
    }
    let created = call(
        &crm,
        Method::POST,
        ORGS,
        key,
        Some(r#"{"description": "no title"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unchanged = call(&crm, Method::GET, &path, key, None).await;
    assert_eq!(unchanged.body["title"], "Acme BV");
    assert_eq!(unchanged.body["tags"], json!([]));

    // Merge-patch content type, X-API-KEY, and no publishable keys.
    let request = Request::builder()
        .method(Method::PATCH)
        .uri(&path)
        .header("x-api-key", &p.secret_key)
        .header("content-type", "application/merge-patch+json")
        .body(Body::from(r#"{"customerId": "C-2"}"#))
        .unwrap();
    let patched: Exchange = send(&crm, request).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["customerId"], "C-2");
    let public = call(&crm, Method::GET, &path, Some(&p.publishable_key), None).await;
    assert_eq!(public.status, StatusCode::FORBIDDEN);
    let nobody = call(&crm, Method::GET, &path, None, None).await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    let missing = call(
        &crm,
        Method::GET,
        &format!("{ORGS}/{}", uuid::Uuid::now_v7()),
        key,
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

fn session(p: &shared::store::CreatedProject, user: &str) -> String {
    integration_tests::session_token(p, user, None)
}

#[tokio::test]
async fn notes_crud_filters_and_privacy() {
    let state = state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let ann = session(&p, "ann");
    // Ann creates the organization in a session, so she is its member.
    let org = call(
        &crm,
        Method::POST,
        ORGS,
        Some(&ann),
        Some(r#"{"title": "Acme"}"#),
    )
    .await;
    assert_eq!(org.status, StatusCode::CREATED, "{:?}", org.body);
    let org = org.body["id"].as_str().unwrap().to_owned();
    let notes = format!("{ORGS}/{org}/notes");

    let mut ids = Vec::new();
    for i in 0..35 {
        let body = json!({
            "description": format!("Call {i}"),
            "category": format!("/note_categories/{}", i % 3),
            "flagged": i % 5 == 0,
            "author": "/users/42",
            "createdAt": format!("2026-02-{:02}T09:00:00Z", i % 28 + 1),
        });
        let r = call(&crm, Method::POST, &notes, key, Some(&body.to_string())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let page = call(
        &crm,
        Method::GET,
        &format!("{notes}?itemsPerPage=50"),
        key,
        None,
    )
    .await;
    assert_eq!(page.body["totalItems"], 35);
    assert_eq!(page.body["member"].as_array().unwrap().len(), 30);
    let flagged = call(
        &crm,
        Method::GET,
        &format!("{notes}?flagged=true"),
        key,
        None,
    )
    .await;
    assert_eq!(flagged.body["totalItems"], 7);
    let category = call(
        &crm,
        Method::GET,
        &format!("{notes}?category.id[]=/note_categories/1&category.id[]=2"),
        key,
        None,
    )
    .await;
    assert_eq!(category.body["totalItems"], 23);
    let ordered = call(
        &crm,
        Method::GET,
        &format!("{notes}?order[flagged]=desc&itemsPerPage=7"),
        key,
        None,
    )
    .await;
    assert!(ordered.body["member"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["flagged"] == true));
    let newest = call(
        &crm,
        Method::GET,
        &format!("{notes}?order[createdAt]=desc&itemsPerPage=1"),
        key,
        None,
    )
    .await;
    assert_eq!(
        newest.body["member"][0]["createdAt"],
        "2026-02-28T09:00:00.000Z"
    );
    let after = call(
        &crm,
        Method::GET,
        &format!("{notes}?createdAt[after]=2026-02-27"),
        key,
        None,
    )
    .await;
    assert_eq!(after.body["totalItems"], 2);
    let by_author = call(
        &crm,
        Method::GET,
        &format!("{notes}?author.id=42"),
        key,
        None,
    )
    .await;
    assert_eq!(by_author.body["totalItems"], 35);

    // Read, replace, patch, delete; 404 after.
    let one = format!("{notes}/{}", ids[0]);
    let read = call(&crm, Method::GET, &one, key, None).await;
    assert_eq!(read.body["description"], "Call 0");
    assert_eq!(read.body["@id"], one);
    let put = call(
        &crm,
        Method::PUT,
        &one,
        key,
        Some(r#"{"description": "Called", "category": "/note_categories/9", "title": "T"}"#),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(
        (put.body["flagged"].clone(), put.body["author"].clone()),
        (json!(false), Value::Null)
    );
    let patched = call(&crm, Method::PATCH, &one, key, Some(r#"{"flagged": true}"#)).await;
    assert_eq!(
        (
            patched.body["flagged"].clone(),
            patched.body["title"].clone()
        ),
        (json!(true), json!("T"))
    );
    let no_category = call(
        &crm,
        Method::PUT,
        &one,
        key,
        Some(r#"{"description": "x"}"#),
    )
    .await;
    assert_eq!(no_category.status, StatusCode::UNPROCESSABLE_ENTITY);
    let deleted = call(&crm, Method::DELETE, &one, key, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        let gone = call(&crm, method, &one, key, None).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
    }
    let gone = call(
        &crm,
        Method::PATCH,
        &one,
        key,
        Some(r#"{"flagged": false}"#),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // A private note is seen by its author only (secret keys see all).
    let private = call(
        &crm,
        Method::POST,
        &notes,
        Some(&ann),
        Some(r#"{"description": "Mine", "category": "/note_categories/1", "isPrivate": true}"#),
    )
    .await;
    assert_eq!(private.status, StatusCode::CREATED, "{:?}", private.body);
    let private_path = format!("{notes}/{}", private.body["id"].as_str().unwrap());
    let theirs = call(&crm, Method::POST, &notes, key, Some(r#"{"description": "Theirs", "category": "/note_categories/1", "isPrivate": true, "author": "/users/someone"}"#)).await;
    let theirs_path = format!("{notes}/{}", theirs.body["id"].as_str().unwrap());
    let as_ann = call(
        &crm,
        Method::GET,
        &format!("{notes}?q=mine"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(as_ann.body["totalItems"], 1);
    assert_eq!(
        call(&crm, Method::GET, &private_path, Some(&ann), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&crm, Method::GET, &theirs_path, Some(&ann), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&crm, Method::DELETE, &theirs_path, Some(&ann), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&crm, Method::GET, &theirs_path, key, None)
            .await
            .status,
        StatusCode::OK
    );
    let all = call(&crm, Method::GET, &format!("{notes}?q=theirs"), key, None).await;
    assert_eq!(all.body["totalItems"], 1);

    // Bob is no member: the organization does not exist for him.
    let bob = session(&p, "bob");
    let r = call(&crm, Method::GET, &notes, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let list = call(&crm, Method::GET, ORGS, Some(&bob), None).await;
    assert_eq!(list.body["totalItems"], 0);
    let list = call(&crm, Method::GET, ORGS, Some(&ann), None).await;
    assert_eq!(list.body["totalItems"], 1);

    // Notes go with their organization.
    let accounts = accounts::router(state.clone());
    let deleted = call(
        &accounts,
        Method::DELETE,
        &format!("/v1/organizations/{org}"),
        key,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    integration_tests::purge(&state, p.project_id, org.parse().unwrap()).await;
    assert_eq!(
        integration_tests::count_kind(&state, p.project_id, "NOTE#").await,
        0
    );
    let r = call(&crm, Method::GET, &notes, key, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn crm_operations_use_their_fewest_round_trips() {
    let (state, log) = logged_state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let org = call(&crm, Method::POST, ORGS, key, Some(r#"{"title": "Acme"}"#)).await;
    let org = org.body["id"].as_str().unwrap().to_owned();
    let note = call(
        &crm,
        Method::POST,
        &format!("{ORGS}/{org}/notes"),
        key,
        Some(r#"{"description": "d", "category": "/note_categories/1"}"#),
    )
    .await;
    let note = note.body["id"].as_str().unwrap().to_owned();
    let cases: Vec<(Method, String, Option<&str>, Vec<&str>)> = vec![
        (
            Method::POST,
            ORGS.into(),
            Some(r#"{"title": "B"}"#),
            vec!["GetItem", "TransactWriteItems"],
        ),
        (
            Method::GET,
            format!("{ORGS}/{org}"),
            None,
            vec!["GetItem", "GetItem"],
        ),
        // The key; the filter value's index entries (none match).
        (
            Method::GET,
            format!("{ORGS}?tags.id=x"),
            None,
            vec!["GetItem", "Query"],
        ),
        // The key; the order index's page and the count (concurrently);
        // the page's records.
        (
            Method::GET,
            ORGS.into(),
            None,
            vec!["GetItem", "Query", "Query", "BatchGetItem"],
        ),
        (
            Method::PATCH,
            format!("{ORGS}/{org}"),
            Some(r#"{"website": "https://a.example"}"#),
            // The key, the record with its event sequence, the write.
            vec!["GetItem", "BatchGetItem", "TransactWriteItems"],
        ),
        // The key; the notes' page with their count and the record
        // (concurrently: a deleted organization's notes are not listed).
        (
            Method::GET,
            format!("{ORGS}/{org}/notes"),
            None,
            vec!["GetItem", "GetItem", "Query"],
        ),
        (
            Method::GET,
            format!("{ORGS}/{org}/notes/{note}"),
            None,
            vec!["GetItem", "BatchGetItem"],
        ),
        (
            Method::PATCH,
            format!("{ORGS}/{org}/notes/{note}"),
            Some(r#"{"flagged": true}"#),
            vec!["GetItem", "BatchGetItem", "TransactWriteItems"],
        ),
        (
            Method::DELETE,
            format!("{ORGS}/{org}/notes/{note}"),
            None,
            // The note and the organization's note count.
            vec!["GetItem", "TransactWriteItems"],
        ),
    ];
    log.take();
    for (method, path, body, expected) in cases {
        let answer = call(&crm, method.clone(), &path, key, body).await;
        assert!(
            answer.status.is_success(),
            "{method} {path}: {:?}",
            answer.body
        );
        let mut ops = log.take();
        ops.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(ops, expected, "{method} {path}");
    }
}

/// A page reads its offset, so a page number past the first 10,000 items is
/// a 400 problem (fuzzing found `page` = 10^18 aborting the function on a
/// 515 GB allocation), in both page-number lists; `hydra:last` never names
/// a page that would be refused.
#[tokio::test]
async fn page_numbers_past_the_offset_limit_are_refused() {
    let state = state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let key = Some(p.secret_key.as_str());
    let org = call(&crm, Method::POST, ORGS, key, Some(r#"{"title": "Acme"}"#)).await;
    let org = org.body["id"].as_str().expect("an id").to_owned();
    let max = shared::limits::MAX_PAGE_OFFSET;
    for list in [ORGS.to_owned(), format!("{ORGS}/{org}/notes")] {
        for query in [
            "page=1000000000000000000".to_owned(),
            "page=18446744073709551615&itemsPerPage=30".to_owned(),
            format!("page={}&itemsPerPage=30", max / 30 + 2),
            format!("page={}&itemsPerPage=1", max + 2),
        ] {
            let r = call(&crm, Method::GET, &format!("{list}?{query}"), key, None).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{list}?{query}: {:?}",
                r.body
            );
            assert!(
                r.body["detail"].as_str().unwrap_or("").contains("page"),
                "{:?}",
                r.body
            );
        }
        for query in [
            format!("page={}&itemsPerPage=30", max / 30 + 1),
            format!("page={}&itemsPerPage=1", max + 1),
            "page=1000000000000000000&itemsPerPage=0".to_owned(),
        ] {
            let r = call(&crm, Method::GET, &format!("{list}?{query}"), key, None).await;
            assert_eq!(r.status, StatusCode::OK, "{list}?{query}: {:?}", r.body);
        }
    }
    // 10,001 notes are not needed to see the cap on `last`: the view's last
    // page follows the count, and the count of one organization is 1.
    let r = call(
        &crm,
        Method::GET,
        &format!("{ORGS}?itemsPerPage=1"),
        key,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["view"]["last"]
        .as_str()
        .expect("a last page")
        .ends_with("page=1"));
}

/// A user's last name is copied onto the organizations the user owns (what
/// `order[owner.lastName]` sorts by); renaming the user, as the client
/// family does, moves them in that order once the cleanup function's sweep
/// has run the refresh job the rename wrote — in bounded steps, the newest
/// name winning over a rename that came before it.
#[tokio::test]
async fn a_renamed_owner_moves_its_organizations_in_the_owner_order() {
    let state = state().await;
    let p = project(&state).await;
    let crm = crm::router(state.clone());
    let client = client::router(state.clone());
    let key = p.secret_key.as_str();
    let name_user = |external: &str, last: &str| {
        json!({"identifier": [{"external_id": external}], "data": {"lastName": last}}).to_string()
    };
    let mut users = Vec::new();
    for (external, last) in [("zed", "Zimmer"), ("mid", "Maas")] {
        let user = call(
            &client,
            Method::POST,
            "/api/client/users",
            Some(key),
            Some(&name_user(external, last)),
        )
        .await;
        assert_eq!(user.status, StatusCode::OK, "{:?}", user.body);
        users.push(user.body["id"].as_str().unwrap().to_owned());
    }
    // Five organizations of the first user (its id as a client may write
    // it, in upper case), one of the second.
    let mut zimmers = Vec::new();
    for i in 0..6 {
        let owner = if i < 5 {
            users[0].to_uppercase()
        } else {
            users[1].clone()
        };
        let body = json!({"title": format!("org {i}"), "owner": format!("/users/{owner}")});
        let created = call(&crm, Method::POST, ORGS, Some(key), Some(&body.to_string())).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(
            created.body["owner"],
            json!(format!("/users/{}", users[if i < 5 { 0 } else { 1 }]))
        );
        if i < 5 {
            zimmers.push(created.body["id"].as_str().unwrap().to_owned());
        }
    }
    let maas = {
        let (found, _) = walk(&crm, key, "order[owner.lastName]=asc").await;
        assert_eq!(found[1..], zimmers[..], "Maas before Zimmer");
        found[0].clone()
    };
    let (owned, _) = walk(&crm, key, &format!("owner.id={}", users[0].to_uppercase())).await;
    assert_eq!(owned, zimmers, "the owner filter takes the id in any case");

    let rename = |last: &str| name_user("zed", last);
    let renamed = call(
        &client,
        Method::POST,
        "/api/client/users",
        Some(key),
        Some(&rename("Aalders")),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);

    // The refresh in steps of two organizations, as the sweep would run
    // it: a second rename after the first step replaces the job, whose
    // next step is then stale, and the new one starts over.
    let project_id = p.project_id;
    let due = |state: shared::AppState| async move {
        let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
        state
            .store
            .due_owner_names(&shared::ids::system_timestamp(soon), 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|job| job.project_id == project_id)
            .collect::<Vec<_>>()
    };
    let mut first = due(state.clone()).await;
    assert_eq!(first.len(), 1, "the rename wrote one job: {first:?}");
    let mut first = first.remove(0);
    assert_eq!(
        state.store.owner_name_step(&mut first, 2).await.unwrap(),
        shared::store::OwnerNameStep::Continued { examined: 2 }
    );
    let renamed = call(
        &client,
        Method::POST,
        "/api/client/users",
        Some(key),
        Some(&rename("Ackermann")),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(
        state.store.owner_name_step(&mut first, 2).await.unwrap(),
        shared::store::OwnerNameStep::Stale,
        "the first rename's job was replaced"
    );
    let mut second = due(state.clone()).await;
    assert_eq!(second.len(), 1, "{second:?}");
    let mut second = second.remove(0);
    assert_eq!(second.after, None, "the new job starts over");
    let mut steps = Vec::new();
    loop {
        let step = state.store.owner_name_step(&mut second, 2).await.unwrap();
        steps.push(step.clone());
        if !matches!(step, shared::store::OwnerNameStep::Continued { .. }) {
            break;
        }
        assert!(steps.len() < 10, "the steps do not end: {steps:?}");
    }
    assert_eq!(
        steps.last(),
        Some(&shared::store::OwnerNameStep::Done { examined: 1 }),
        "{steps:?}"
    );
    assert!(due(state.clone()).await.is_empty(), "the job is gone");

    let (found, _) = walk(&crm, key, "order[owner.lastName]=asc").await;
    let mut expected = zimmers.clone();
    expected.push(maas.clone());
    assert_eq!(found, expected, "Ackermann before Maas");
    let (found, _) = walk(&crm, key, "order[owner.lastName]=desc").await;
    let mut expected = vec![maas];
    expected.extend(zimmers.iter().cloned());
    assert_eq!(found, expected, "Maas before Ackermann");
    let org: uuid::Uuid = zimmers[0].parse().unwrap();
    // The first organization had the first rename's step too.
    let events = integration_tests::events::timeline(&state, project_id, org).await;
    let renames: Vec<&Value> = events
        .iter()
        .filter(|e| e.event.name == "organization.updated")
        .map(|e| &e.event.data["changes"]["crm.owner_last_name"])
        .collect();
    assert_eq!(
        renames,
        [
            &json!({"from": "Zimmer", "to": "Aalders"}),
            &json!({"from": "Aalders", "to": "Ackermann"})
        ]
    );

    // The cleanup function's sweep runs what a rename leaves: renaming
    // the other user, then one sweep.
    let renamed = call(
        &client,
        Method::POST,
        "/api/client/users",
        Some(key),
        Some(&name_user("mid", "Aa")),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
    assert!(
        cleanup::refresh_owner_names(&state, later, deadline)
            .await
            .unwrap()
            >= 1
    );
    assert!(due(state.clone()).await.is_empty(), "the sweep finished it");
    let (found, _) = walk(&crm, key, "order[owner.lastName]=asc").await;
    assert_eq!(found[0], expected[0], "Aa first");

    // A change of the user that leaves the last name writes no job.
    let same = call(
        &client,
        Method::POST,
        "/api/client/users",
        Some(key),
        Some(
            &json!({"identifier": [{"external_id": "mid"}], "data": {"lastName": "Aa", "plan": "pro"}})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(same.status, StatusCode::OK, "{:?}", same.body);
    assert!(due(state.clone()).await.is_empty(), "no rename, no job");
}
