//! Each HTTP family serves its OpenAPI document, generated from its wire
//! types: it names exactly the routes the family serves, every reference in
//! it resolves, and where a published spec exists (tests/specs) the
//! document stays compatible with it — every published operation is there,
//! takes no field the spec does not have as required, and promises every
//! field the spec promises, with the same JSON type.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

/// The routes of a family, less the document's own.
fn documented_routes(routes: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    routes
        .iter()
        .filter(|(_, path)| !path.ends_with("/openapi.json"))
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {reference}"));
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "{reference} does not resolve");
            resolve(doc, target)
        }
        None => schema,
    }
}

fn every_reference_resolves(doc: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                if let Some(name) = reference.strip_prefix("#/components/schemas/") {
                    assert!(
                        !doc["components"]["schemas"][name].is_null(),
                        "{reference} does not resolve"
                    );
                } else {
                    panic!("unexpected reference {reference}");
                }
            }
            map.values().for_each(|v| every_reference_resolves(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| every_reference_resolves(doc, v)),
        _ => {}
    }
}

/// The JSON types a schema allows (3.0's `nullable` and 3.1's type arrays
/// alike; `null` left out), empty when it says nothing.
fn types(schema: &Value) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = match &schema["type"] {
        Value::String(t) => [t.clone()].into(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    };
    for combinator in ["oneOf", "anyOf", "allOf"] {
        for option in schema[combinator].as_array().into_iter().flatten() {
            out.extend(types(option));
        }
    }
    out.remove("null");
    // An integer is a number: a published number may be served as one.
    if out.contains("integer") {
        out.insert("number".into());
    }
    out
}

/// The one non-null schema of a nullable `oneOf`/`anyOf` (as utoipa writes
/// `Option<T>` of a named type), or the schema itself.
fn unwrap_nullable<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = resolve(doc, schema);
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = schema[combinator].as_array() {
            let real: Vec<&Value> = options.iter().filter(|o| o["type"] != "null").collect();
            if real.len() == 1 {
                return resolve(doc, real[0]);
            }
        }
    }
    schema
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// A request: ours may accept more, but must not require more.
    Request,
    /// A response: ours may say more, but must promise what the spec does.
    Response,
}

fn compatible(
    ours_doc: &Value,
    ours: &Value,
    spec_doc: &Value,
    spec: &Value,
    direction: Direction,
    at: &str,
    problems: &mut Vec<String>,
) {
    compare(
        ours_doc,
        ours,
        spec_doc,
        spec,
        direction,
        at,
        problems,
        &mut BTreeSet::new(),
    )
}

/// The schema's reference, for cycle detection (recursive schemas such as
/// a rule of rules refer to themselves).
fn reference(schema: &Value) -> Option<String> {
    let direct = schema.get("$ref").and_then(Value::as_str);
    let nullable = ["oneOf", "anyOf"].iter().find_map(|c| {
        schema[c]
            .as_array()?
            .iter()
            .find_map(|o| o.get("$ref").and_then(Value::as_str))
    });
    direct.or(nullable).map(str::to_owned)
}

#[allow(clippy::too_many_arguments)]
fn compare(
    ours_doc: &Value,
    ours: &Value,
    spec_doc: &Value,
    spec: &Value,
    direction: Direction,
    at: &str,
    problems: &mut Vec<String>,
    seen: &mut BTreeSet<(String, String)>,
) {
    if let (Some(a), Some(b)) = (reference(ours), reference(spec)) {
        if !seen.insert((a, b)) {
            return;
        }
    }
    let ours = unwrap_nullable(ours_doc, ours);
    let spec = unwrap_nullable(spec_doc, spec);
    let (ours_types, spec_types) = (types(ours), types(spec));
    if !ours_types.is_empty() && !spec_types.is_empty() && ours_types.is_disjoint(&spec_types) {
        problems.push(format!(
            "{at}: type {ours_types:?}, the spec says {spec_types:?}"
        ));
        return;
    }
    if let Some(spec_items) = spec.get("items") {
        match ours.get("items") {
            Some(our_items) => compare(
                ours_doc,
                our_items,
                spec_doc,
                spec_items,
                direction,
                &format!("{at}[]"),
                problems,
                seen,
            ),
            None if ours_types.contains("array") => {
                problems.push(format!("{at}: items undocumented"))
            }
            None => {}
        }
    }
    let Some(spec_properties) = spec["properties"].as_object() else {
        return;
    };
    let our_properties = ours["properties"].as_object();
    let (our_required, spec_required) = (required(ours), required(spec));
    match direction {
        Direction::Request => {
            for name in our_required.difference(&spec_required) {
                problems.push(format!("{at}.{name}: required here, optional in the spec"));
            }
        }
        Direction::Response => {
            for name in spec_required.difference(&our_required) {
                problems.push(format!("{at}.{name}: the spec promises it, we do not"));
            }
        }
    }
    for (name, spec_property) in spec_properties {
        match our_properties.and_then(|p| p.get(name)) {
            Some(our_property) => compare(
                ours_doc,
                our_property,
                spec_doc,
                spec_property,
                direction,
                &format!("{at}.{name}"),
                problems,
                seen,
            ),
            None => problems.push(format!("{at}.{name}: missing")),
        }
    }
}

fn json_body(content: &Value) -> Option<&Value> {
    content
        .as_object()?
        .iter()
        .find(|(media, _)| media.contains("json"))
        .map(|(_, c)| &c["schema"])
}

/// Every published operation is in ours, compatible both ways.
fn assert_compatible(ours: &Value, spec_file: &str) {
    assert_compatible_except(ours, spec_file, &[]);
}

/// As [`assert_compatible`], but for a derived spec: `known` lists the
/// differences where its API document (which wins) says otherwise or
/// nothing. Each must still be found, so the list cannot go stale.
fn assert_compatible_except(ours: &Value, spec_file: &str, known: &[&str]) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(spec_file);
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the spec"))
        .expect("the spec is JSON");
    let mut problems = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(spec_op) = item.get(method) else {
                continue;
            };
            let at = format!("{} {path}", method.to_uppercase());
            let Some(our_op) = ours["paths"][path].get(method) else {
                problems.push(format!("{at}: missing"));
                continue;
            };
            if let Some(spec_body) = json_body(&spec_op["requestBody"]["content"]) {
                match json_body(&our_op["requestBody"]["content"]) {
                    Some(our_body) => compatible(
                        ours,
                        our_body,
                        &spec,
                        spec_body,
                        Direction::Request,
                        &format!("{at} body"),
                        &mut problems,
                    ),
                    None => problems.push(format!("{at}: request body undocumented")),
                }
            }
            for (status, spec_response) in spec_op["responses"].as_object().expect("responses") {
                if !status.starts_with('2') {
                    continue;
                }
                let Some(our_response) = our_op["responses"].get(status) else {
                    problems.push(format!("{at}: no {status} response"));
                    continue;
                };
                if let Some(spec_body) = json_body(&spec_response["content"]) {
                    match json_body(&our_response["content"]) {
                        Some(our_body) => compatible(
                            ours,
                            our_body,
                            &spec,
                            spec_body,
                            Direction::Response,
                            &format!("{at} {status}"),
                            &mut problems,
                        ),
                        None => problems.push(format!("{at} {status}: body undocumented")),
                    }
                }
            }
        }
    }
    for difference in known {
        assert!(
            problems.iter().any(|p| p == difference),
            "{difference:?} is no longer a difference with {spec_file}"
        );
    }
    problems.retain(|p| !known.contains(&p.as_str()));
    assert!(
        problems.is_empty(),
        "not compatible with {spec_file}:\n{}",
        problems.join("\n")
    );
}

fn check_document(doc: &utoipa::openapi::OpenApi, routes: &[(&str, &str)]) -> Value {
    let doc = serde_json::to_value(doc).expect("the document is JSON");
    assert_eq!(
        operations(&doc),
        documented_routes(routes),
        "documented = served"
    );
    every_reference_resolves(&doc, &doc);
    assert_eq!(
        doc["security"],
        serde_json::json!([{"HttpBearerAuth": []}, {"ApiKeyAuth": []}]),
        "a key goes as a bearer token or as X-API-KEY"
    );
    for name in ["HttpBearerAuth", "ApiKeyAuth"] {
        assert!(
            doc["components"]["securitySchemes"][name].is_object(),
            "{name}"
        );
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                assert!(
                    op["responses"]["default"]["content"]["application/problem+json"].is_object(),
                    "{method} {path} documents its problem responses"
                );
            }
        }
    }
    doc
}

async fn served(router: axum::Router, path: &str) -> Value {
    let answer = integration_tests::call(&router, Method::GET, path, None, None).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{path} is served without a key"
    );
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let post = integration_tests::call(&router, Method::POST, path, None, Some("{}")).await;
    assert_eq!(
        post.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{path} is GET only"
    );
    answer.body
}

#[tokio::test]
async fn client_document_is_served_complete_and_compatible() {
    let doc = check_document(&client::openapi(), client::ROUTES);
    let parameters = &doc["paths"]["/api/client/organizations"]["post"]["parameters"];
    assert!(
        parameters.as_array().is_some_and(|p| p
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")),
        "POSTs document Idempotency-Key: {parameters}"
    );
    assert_compatible(&doc, "lunogram-client-organizations.openapi.json");
    let state = integration_tests::state().await;
    assert_eq!(
        served(client::router(state), "/api/client/openapi.json").await,
        doc
    );
}

#[test]
fn the_checker_finds_what_is_incompatible() {
    let spec: Value = serde_json::json!({"components": {"schemas": {}}});
    let ours = spec.clone();
    let published = serde_json::json!({"type": "object", "required": ["id", "name"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "n": {"type": "integer"}}});
    let served = serde_json::json!({"type": "object", "required": ["id"],
        "properties": {"id": {"type": "integer"}, "n": {"type": ["integer", "null"]}}});
    let mut problems = Vec::new();
    compatible(
        &ours,
        &served,
        &spec,
        &published,
        Direction::Response,
        "x",
        &mut problems,
    );
    assert_eq!(
        problems,
        [
            "x.name: the spec promises it, we do not",
            "x.id: type {\"integer\", \"number\"}, the spec says {\"string\"}",
            "x.name: missing"
        ]
    );
    let mut problems = Vec::new();
    compatible(
        &ours,
        &published,
        &spec,
        &served,
        Direction::Request,
        "x",
        &mut problems,
    );
    assert_eq!(
        problems,
        [
            "x.name: required here, optional in the spec",
            "x.id: type {\"string\"}, the spec says {\"integer\", \"number\"}"
        ]
    );
}

#[tokio::test]
async fn accounts_document_is_served_complete_and_compatible() {
    let doc = check_document(&accounts::openapi(), accounts::ROUTES);
    assert_compatible(&doc, "accounts-v1-organizations.derived.openapi.json");
    let state = integration_tests::state().await;
    assert_eq!(
        served(accounts::router(state), "/v1/openapi.json").await,
        doc
    );
}

#[tokio::test]
async fn tenant_document_is_served_complete_and_compatible() {
    let doc = check_document(&tenant::openapi(), tenant::ROUTES);
    assert_compatible(&doc, "epilot-organization.openapi.json");
    let state = integration_tests::state().await;
    assert_eq!(served(tenant::router(state), "/v2/openapi.json").await, doc);
}

#[tokio::test]
async fn crm_document_is_served_complete_and_compatible() {
    let doc = check_document(&crm::openapi(), crm::ROUTES);
    // Seed 002 has no `address` or `linkedinCompanyEnrichment` (the derived
    // spec added them), and does not describe the collection envelope: the
    // view's type is JSON-LD's `@type`, and no `search` template is served.
    let mut known = Vec::new();
    for (op, status) in [
        ("POST /organizations", "201"),
        ("GET /organizations/{id}", "200"),
        ("PUT /organizations/{id}", "200"),
        ("PATCH /organizations/{id}", "200"),
    ] {
        known.push(format!("{op} {status}.address: missing"));
        known.push(format!("{op} {status}.linkedinCompanyEnrichment: missing"));
    }
    for op in [
        "POST /organizations",
        "PUT /organizations/{id}",
        "PATCH /organizations/{id}",
    ] {
        known.push(format!("{op} body.address: missing"));
    }
    known.push("GET /organizations 200.member[].address: missing".into());
    known.push("GET /organizations 200.member[].linkedinCompanyEnrichment: missing".into());
    for list in ["/organizations", "/organizations/{organizationId}/notes"] {
        known.push(format!("GET {list} 200.search: missing"));
        known.push(format!("GET {list} 200.view.type: missing"));
    }
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    assert_compatible_except(&doc, "crm-organizations.derived.openapi.json", &known);
    let state = integration_tests::state().await;
    assert_eq!(
        served(crm::router(state), "/organizations/openapi.json").await,
        doc
    );
}

#[tokio::test]
async fn segments_document_is_served_complete() {
    let doc = check_document(&segments::openapi(), segments::ROUTES);
    assert!(
        !doc.to_string().contains("Idempotency-Key"),
        "segment evaluations write nothing: no idempotency layer"
    );
    let rule = &doc["components"]["schemas"]["SegmentRule"];
    assert_eq!(
        rule["properties"]["children"]["items"]["$ref"], "#/components/schemas/SegmentRule",
        "a rule tree refers to itself"
    );
    // Lunogram's shape: member_conditions is one node (or, the earlier
    // format, a list of them); node ids are accepted.
    let schemas = &doc["components"]["schemas"];
    let conditions = unwrap_nullable(
        &doc,
        &schemas["UserMatch"]["properties"]["member_conditions"],
    );
    let options = conditions["oneOf"]
        .as_array()
        .or_else(|| conditions["anyOf"].as_array())
        .unwrap_or_else(|| panic!("member_conditions: one node or a list: {conditions}"));
    let text = serde_json::to_string(options).unwrap();
    assert!(
        text.contains("#/components/schemas/SegmentRule") && text.contains("array"),
        "{text}"
    );
    for field in [
        "uuid",
        "root_uuid",
        "parent_uuid",
        "operator",
        "value",
        "frequency",
        "user_match",
    ] {
        assert!(!rule["properties"][field].is_null(), "SegmentRule.{field}");
        assert!(
            !required(rule).contains(field),
            "SegmentRule.{field} is optional"
        );
    }
    let groups = serde_json::to_string(&schemas["Group"]).unwrap();
    assert!(
        groups.contains("organization_event") && groups.contains("\"event\""),
        "{groups}"
    );
    let state = integration_tests::state().await;
    assert_eq!(
        served(segments::router(state), "/api/admin/segments/openapi.json").await,
        doc
    );
}

#[tokio::test]
async fn cleanup_document_is_served_complete() {
    let doc = check_document(&cleanup::openapi(), cleanup::ROUTES);
    let state = integration_tests::state().await;
    assert_eq!(
        served(
            cleanup::router(state),
            "/v2/organization/cleanup/openapi.json"
        )
        .await,
        doc
    );
}

/// Every family that changes organizations documents the system events
/// those changes record, with each one's data (README "Events").
#[test]
fn the_four_families_document_the_system_events() {
    for (family, doc) in [
        ("client", client::openapi()),
        ("accounts", accounts::openapi()),
        ("crm", crm::openapi()),
        ("tenant", tenant::openapi()),
    ] {
        let doc = serde_json::to_value(&doc).expect("the document is JSON");
        every_reference_resolves(&doc, &doc);
        let schemas = &doc["components"]["schemas"];
        let names: BTreeSet<&str> = schemas["SystemEventName"]["enum"]
            .as_array()
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            names,
            BTreeSet::from(shared::domain::event::SYSTEM_EVENTS),
            "{family}"
        );
        let updated = resolve(&doc, &schemas["OrganizationUpdatedData"]);
        let changes = resolve(&doc, &updated["properties"]["changes"]);
        assert!(
            changes["additionalProperties"].is_object(),
            "{family}: changes map field names to changes: {changes}"
        );
        for data in [
            "OrganizationCreatedData",
            "OrganizationDeletedData",
            "MemberEventData",
            "MemberUpdatedData",
        ] {
            assert!(schemas[data]["properties"].is_object(), "{family}: {data}");
        }
        assert!(
            doc["info"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("organization.updated")),
            "{family}"
        );
    }
}
