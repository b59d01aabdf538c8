//! The SAM template and the code agree: every function crate has its
//! resource, every route a function serves has its API route, and the
//! template declares no route the code does not serve — in the SAM
//! template and in the HTTP API the SAM transform makes of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The routes each HTTP function declares in its crate.
fn routes_in_code() -> BTreeMap<&'static str, BTreeSet<(String, String)>> {
    let declared: [(&str, &[(&str, &str)]); 6] = [
        ("segments", segments::ROUTES),
        ("accounts", accounts::ROUTES),
        ("cleanup", cleanup::ROUTES),
        ("client", client::ROUTES),
        ("crm", crm::ROUTES),
        ("tenant", tenant::ROUTES),
    ];
    declared
        .into_iter()
        .map(|(name, routes)| {
            let set = routes
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string()))
                .collect();
            (name, set)
        })
        .collect()
}

fn template() -> Value {
    let text =
        std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml");
    serde_yaml::from_str(&text).expect("the template is YAML")
}

fn function_resources(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(_, r)| {
            let code_uri = r["Properties"]["CodeUri"]
                .as_str()
                .expect("CodeUri is a path");
            let crate_name = code_uri.trim_start_matches("../functions/").to_owned();
            (crate_name, r.clone())
        })
        .collect()
}

#[test]
fn every_function_crate_has_its_resource_built_with_cargo_lambda() {
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let resources = function_resources(&template());
    assert_eq!(crates, resources.keys().cloned().collect::<BTreeSet<_>>());
    for (name, resource) in resources {
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}"
        );
        assert!(
            !policy_statements(&template(), &resource).is_empty(),
            "{name} has its own least-privilege policy"
        );
    }
}

#[test]
fn every_route_in_the_code_has_its_api_route_and_no_other() {
    let template = template();
    let resources = function_resources(&template);
    let code = routes_in_code();
    for (name, resource) in &resources {
        let in_template: BTreeSet<(String, String)> = resource["Properties"]["Events"]
            .as_mapping()
            .map(|events| {
                events
                    .values()
                    .filter(|e| e["Type"].as_str() == Some("HttpApi"))
                    .map(|e| {
                        let p = &e["Properties"];
                        (
                            p["Method"].as_str().unwrap_or_default().to_uppercase(),
                            p["Path"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let expected = code.get(name.as_str()).cloned().unwrap_or_default();
        assert_eq!(in_template, expected, "routes of {name}");
    }
    for name in code.keys() {
        assert!(
            resources.contains_key(*name),
            "{name} has routes but no resource"
        );
    }
}

fn crate_of(function: &str) -> String {
    function.trim_end_matches("Function").to_lowercase()
}

/// Which function a route's integration invokes (`${XFunction.Arn}`).
fn integration_function(operation: &serde_json::Value) -> Option<String> {
    let uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"].as_str()?;
    let start = uri.find("/functions/${")? + "/functions/${".len();
    let end = uri[start..].find(".Arn}")?;
    Some(uri[start..start + end].to_owned())
}

/// The HTTP API CloudFormation creates serves exactly the routers' routes,
/// each integrated with its own function (payload format 2.0, which
/// lambda_http's apigw_http expects), with no authorizer, on an
/// auto-deployed default stage, and API Gateway may invoke each function.
#[test]
fn the_http_api_serves_exactly_the_routers_routes() {
    let template = integration_tests::transformed_template();
    let api = &template["Resources"]["HttpApi"];
    assert_eq!(api["Type"], "AWS::ApiGatewayV2::Api");
    let body = &api["Properties"]["Body"];
    assert!(
        body["components"]["securitySchemes"].is_null(),
        "the API has an authorizer"
    );
    let mut served: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for (path, operations) in body["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let integration = &operation["x-amazon-apigateway-integration"];
            assert_eq!(integration["type"], "aws_proxy", "{method} {path}");
            assert_eq!(
                integration["payloadFormatVersion"], "2.0",
                "{method} {path}"
            );
            assert!(
                operation["security"].is_null(),
                "{method} {path} has an authorizer"
            );
            let function = integration_function(operation)
                .unwrap_or_else(|| panic!("{method} {path}: no function integration"));
            served
                .entry(crate_of(&function))
                .or_default()
                .insert((method.to_uppercase(), path.clone()));
        }
    }
    let declared: BTreeMap<String, BTreeSet<(String, String)>> = routes_in_code()
        .into_iter()
        .map(|(name, routes)| (name.to_owned(), routes))
        .collect();
    assert_eq!(served, declared);

    let resources = template["Resources"].as_object().expect("Resources");
    let of_type = |kind: &'static str| resources.values().filter(move |r| r["Type"] == kind);
    assert!(
        of_type("AWS::ApiGatewayV2::Stage").any(|s| s["Properties"]["StageName"] == "$default"
            && s["Properties"]["AutoDeploy"] == true
            && s["Properties"]["ApiId"]["Ref"] == "HttpApi"),
        "an auto-deployed $default stage"
    );
    let permitted: BTreeSet<String> = of_type("AWS::Lambda::Permission")
        .filter(|p| p["Properties"]["Principal"] == "apigateway.amazonaws.com")
        .filter_map(|p| p["Properties"]["FunctionName"]["Ref"].as_str())
        .map(crate_of)
        .collect();
    assert_eq!(permitted, declared.keys().cloned().collect::<BTreeSet<_>>());
}

#[test]
fn the_organization_index_projects_what_the_code_reads() {
    let template = template();
    let indexes = template["Resources"]["Table"]["Properties"]["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("GlobalSecondaryIndexes");
    let gsi1 = indexes
        .iter()
        .find(|i| i["IndexName"].as_str() == Some(shared::keys::GSI1))
        .expect("GSI1 in the template");
    let projected: Vec<&str> = gsi1["Projection"]["NonKeyAttributes"]
        .as_sequence()
        .expect("NonKeyAttributes")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(projected, shared::keys::GSI1_ATTRIBUTES);
}

/// A function's policy statements: its SAM `Policies`, or those of the
/// role it names (`Role: !GetAtt XRole.Arn`, the SQS consumers' own roles).
fn policy_statements(template: &Value, function: &Value) -> Vec<Value> {
    let documents: Vec<Value> = match &function["Properties"]["Role"] {
        Value::Tagged(tagged) => {
            let role = tagged.value.as_str().unwrap_or_default();
            let role = role.trim_end_matches(".Arn");
            template["Resources"][role]["Properties"]["Policies"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|p| p["PolicyDocument"].clone())
                .collect()
        }
        _ => function["Properties"]["Policies"]
            .as_sequence()
            .cloned()
            .unwrap_or_default(),
    };
    documents
        .iter()
        .flat_map(|document| {
            document["Statement"]
                .as_sequence()
                .cloned()
                .unwrap_or_else(|| panic!("an inline policy, not a managed one: {document:?}"))
        })
        .collect()
}

/// Every string a YAML value holds, looking through CloudFormation's tags
/// (`!Sub "${Table.Arn}/index/GSI1"`, `!GetAtt Table.Arn`).
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Mapping(map) => map.values().flat_map(strings).collect(),
        Value::Tagged(tagged) => strings(&tagged.value),
        _ => Vec::new(),
    }
}

/// Least privilege, checked where a slip is cheap to catch: each function
/// names its actions (no `dynamodb:*`, no `*`) and its resources (no `*`),
/// never scans the table, and queries only indexes the table has.
#[test]
fn function_policies_name_their_actions_and_resources() {
    let template = template();
    let indexes: BTreeSet<String> = template["Resources"]["Table"]["Properties"]
        ["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("GlobalSecondaryIndexes")
        .iter()
        .filter_map(|i| i["IndexName"].as_str().map(str::to_owned))
        .collect();
    let mut statements = 0;
    for (name, resource) in function_resources(&template) {
        for statement in policy_statements(&template, &resource) {
            statements += 1;
            assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{name}");
            let actions = strings(&statement["Action"]);
            assert!(!actions.is_empty(), "{name}: a statement without actions");
            for action in &actions {
                assert!(!action.contains('*'), "{name}: {action} is a wildcard");
                assert_ne!(action, "dynamodb:Scan", "{name}: no request path scans");
            }
            let resources = strings(&statement["Resource"]);
            assert!(
                !resources.is_empty(),
                "{name}: a statement without resources"
            );
            for arn in &resources {
                assert_ne!(arn, "*", "{name}: {actions:?} on every resource");
                if let Some(index) = arn.split("/index/").nth(1) {
                    assert!(
                        indexes.contains(index),
                        "{name}: {index} is not an index of the table"
                    );
                }
            }
        }
    }
    assert!(statements > 0, "the template has policy statements");
}

/// Each policy statement carries a comment saying what in the code uses
/// it, so a statement whose user is gone is seen and removed.
#[test]
fn every_policy_statement_says_what_uses_it() {
    let text =
        std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml");
    let (mut in_policies, mut statements, mut previous) = (false, 0, "");
    let mut uncommented = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if trimmed == "Policies:" {
            in_policies = true;
        } else if in_policies && indent <= 6 {
            in_policies = false;
        }
        if in_policies && trimmed.starts_with("- Effect:") {
            statements += 1;
            if !previous.starts_with('#') {
                uncommented.push(format!("line {}", number + 1));
            }
        }
        previous = trimmed;
    }
    assert!(statements > 0, "the template has policy statements");
    assert!(
        uncommented.is_empty(),
        "policy statements without a comment on what uses them: {}",
        uncommented.join(", ")
    );
}

/// Issue 18, attack 3: sessions are verified by the functions (trusted
/// issuers' JWKS), never by an API Gateway authorizer, and dev sessions
/// (HS256 with a stored secret) are never turned on in AWS.
#[test]
fn no_route_relies_on_an_authorizer_and_dev_sessions_stay_off() {
    let text =
        std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml");
    assert!(
        !text.contains("DEV_SESSIONS"),
        "the template sets DEV_SESSIONS"
    );
    let template = template();
    assert!(template["Parameters"]["JwtIssuer"].is_null());
    assert!(template["Parameters"]["JwtAudience"].is_null());
    let resources = template["Resources"].as_mapping().expect("Resources");
    for (name, resource) in resources {
        assert!(
            resource["Properties"]["Auth"].is_null(),
            "{name:?} configures an authorizer"
        );
        let events = resource["Properties"]["Events"].as_mapping();
        for (event, spec) in events.into_iter().flatten() {
            assert!(
                spec["Properties"]["Auth"].is_null(),
                "{name:?} {event:?} relies on an authorizer"
            );
        }
        assert!(
            resource["Properties"]["FunctionUrlConfig"].is_null(),
            "{name:?} has a Function URL"
        );
    }
}
