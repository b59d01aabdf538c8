//! Least privilege, checked against what the code calls. `make test` runs
//! the whole suite with `AWS_CALL_LOG` set, so every AWS request a function
//! makes is in that log (shared::call_log), then runs the ignored check
//! here: each recorded call must be allowed by its function's role in the
//! transformed template, and every action on every resource a role's
//! statements allow must be used by a recorded call of that function. The
//! evaluator is a small one: Allow statements with Action and Resource
//! (wildcards included) and the conditions the template uses; anything
//! else it does not know fails the check rather than being guessed at.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// Lambda's logging permissions, added by SAM to every role.
const BASIC_EXECUTION: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
/// The managed SQS poller policy SAM gives a function with an SQS event:
/// it allows its actions on every queue of the account, so the template
/// gives those functions roles of their own instead.
const SQS_POLLER: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole";
/// What Lambda's SQS event source does as the function's role on the queue
/// it polls (calls of Lambda, not of the code, so never in the log).
const POLLER_ACTIONS: [&str; 3] = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
];
/// What Lambda's DynamoDB stream event source does as the function's role
/// on the stream it reads.
const STREAM_READER_ACTIONS: [&str; 4] = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];

/// IAM's wildcard match: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((star_i, star_j)) = star {
            i = star_i + 1;
            j = star_j + 1;
            star = Some((star_i, star_j + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// An action matches case-insensitively (IAM's rule), a resource exactly.
fn action_matches(pattern: &str, action: &str) -> bool {
    glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// One authorisation as IAM evaluates it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    action: String,
    resource: String,
    /// `dynamodb:LeadingKeys` (DynamoDB only).
    leading_keys: Option<Vec<String>>,
    /// `s3:prefix` (a listing only).
    prefix: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Match {
    Equals,
    Like,
}

impl Match {
    fn test(&self, pattern: &str, value: &str) -> bool {
        match self {
            Match::Equals => pattern == value,
            Match::Like => glob(pattern, value),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Condition {
    /// `ForAllValues:StringEquals|StringLike` on `dynamodb:LeadingKeys`:
    /// every partition key the request touches is one of these. As in IAM,
    /// a request without leading keys (a Scan) passes.
    LeadingKeys(Match, Vec<String>),
    /// `StringEquals|StringLike` on `s3:prefix`: the listing's prefix is one
    /// of these; a listing without a prefix does not pass.
    Prefix(Match, Vec<String>),
}

impl Condition {
    fn parse(operator: &str, key: &str, values: &Value) -> Result<Self, String> {
        let values = match values {
            Value::String(v) => vec![v.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("condition values {values} are not strings"))?,
            other => return Err(format!("condition values {other} are not strings")),
        };
        match (operator, key.to_ascii_lowercase().as_str()) {
            ("ForAllValues:StringEquals", "dynamodb:leadingkeys") => {
                Ok(Condition::LeadingKeys(Match::Equals, values))
            }
            ("ForAllValues:StringLike", "dynamodb:leadingkeys") => {
                Ok(Condition::LeadingKeys(Match::Like, values))
            }
            ("StringEquals", "s3:prefix") => Ok(Condition::Prefix(Match::Equals, values)),
            ("StringLike", "s3:prefix") => Ok(Condition::Prefix(Match::Like, values)),
            _ => Err(format!(
                "the condition {operator} on {key} is not one this evaluator knows"
            )),
        }
    }

    fn holds(&self, request: &Request) -> bool {
        match self {
            Condition::LeadingKeys(how, values) => request
                .leading_keys
                .iter()
                .flatten()
                .all(|key| values.iter().any(|v| how.test(v, key))),
            Condition::Prefix(how, values) => request
                .prefix
                .as_deref()
                .is_some_and(|prefix| values.iter().any(|v| how.test(v, prefix))),
        }
    }
}

/// An Allow statement of a role, its intrinsic functions resolved.
#[derive(Debug)]
struct Statement {
    /// Where it is: role, policy and position, for the findings.
    origin: String,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

impl Statement {
    fn parse(origin: String, statement: &Value, template: &Template) -> Result<Self, String> {
        let object = statement
            .as_object()
            .ok_or_else(|| format!("{origin}: not an object"))?;
        for field in object.keys() {
            if !["Sid", "Effect", "Action", "Resource", "Condition"].contains(&field.as_str()) {
                return Err(format!("{origin}: {field} is not known to this evaluator"));
            }
        }
        if statement["Effect"] != "Allow" {
            return Err(format!(
                "{origin}: Effect {} (only Allow is evaluated)",
                statement["Effect"]
            ));
        }
        let list = |field: &str| -> Result<Vec<String>, String> {
            let values = match &statement[field] {
                Value::Array(items) => items.clone(),
                Value::Null => Vec::new(),
                single => vec![single.clone()],
            };
            let resolved = values
                .iter()
                .map(|v| template.resolve(v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{origin}: {field}: {e}"))?;
            if resolved.is_empty() {
                return Err(format!("{origin}: no {field}"));
            }
            Ok(resolved)
        };
        let mut conditions = Vec::new();
        if let Some(block) = statement.get("Condition") {
            let operators = block
                .as_object()
                .ok_or_else(|| format!("{origin}: Condition is not an object"))?;
            for (operator, tests) in operators {
                let tests = tests
                    .as_object()
                    .ok_or_else(|| format!("{origin}: {operator} is not an object"))?;
                for (key, values) in tests {
                    conditions.push(
                        Condition::parse(operator, key, values)
                            .map_err(|e| format!("{origin}: {e}"))?,
                    );
                }
            }
        }
        Ok(Statement {
            actions: list("Action")?,
            resources: list("Resource")?,
            conditions,
            origin,
        })
    }

    fn conditions_hold(&self, request: &Request) -> bool {
        self.conditions.iter().all(|c| c.holds(request))
    }

    /// Whether the pair (one of its actions, one of its resources) allows
    /// the request.
    fn pair_allows(&self, action: &str, resource: &str, request: &Request) -> bool {
        action_matches(action, &request.action)
            && glob(resource, &request.resource)
            && self.conditions_hold(request)
    }

    fn allows(&self, request: &Request) -> bool {
        self.actions.iter().any(|a| {
            self.resources
                .iter()
                .any(|r| self.pair_allows(a, r, request))
        })
    }
}

/// The transformed template's resources, each given the ARN and name it
/// would have (its logical id as its name).
struct Template<'a> {
    resources: &'a serde_json::Map<String, Value>,
}

impl<'a> Template<'a> {
    fn new(template: &'a Value) -> Result<Self, String> {
        let resources = template["Resources"]
            .as_object()
            .ok_or("the template has no Resources")?;
        Ok(Self { resources })
    }

    fn kind(&self, logical: &str) -> Result<&str, String> {
        self.resources
            .get(logical)
            .and_then(|r| r["Type"].as_str())
            .ok_or_else(|| format!("{logical} is not a resource of the template"))
    }

    fn arn(&self, logical: &str) -> Result<String, String> {
        Ok(match self.kind(logical)? {
            "AWS::DynamoDB::Table" => {
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical}")
            }
            "AWS::SQS::Queue" => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{logical}"),
            "AWS::S3::Bucket" => format!("arn:aws:s3:::{logical}"),
            "AWS::Events::EventBus" => {
                format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{logical}")
            }
            other => return Err(format!("the ARN of {logical} ({other}) is not known here")),
        })
    }

    /// What `Ref` returns.
    fn reference(&self, name: &str) -> Result<String, String> {
        Ok(match name {
            "AWS::Region" => REGION.to_owned(),
            "AWS::AccountId" => ACCOUNT.to_owned(),
            "AWS::Partition" => "aws".to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            logical => match self.kind(logical)? {
                "AWS::DynamoDB::Table" | "AWS::S3::Bucket" => logical.to_owned(),
                "AWS::SQS::Queue" => {
                    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{logical}")
                }
                other => return Err(format!("Ref of {logical} ({other}) is not known here")),
            },
        })
    }

    fn get_att(&self, logical: &str, attribute: &str) -> Result<String, String> {
        match (attribute, self.kind(logical)?) {
            ("Arn", _) => self.arn(logical),
            // A stream's ARN ends in the time it was enabled.
            ("StreamArn", "AWS::DynamoDB::Table") => {
                Ok(format!("{}/stream/STREAM", self.arn(logical)?))
            }
            ("Name", "AWS::Events::EventBus") => Ok(logical.to_owned()),
            _ => Err(format!(
                "Fn::GetAtt {logical}.{attribute} is not known here"
            )),
        }
    }

    /// A string, or an intrinsic function of the ones a policy uses, resolved.
    fn resolve(&self, value: &Value) -> Result<String, String> {
        if let Some(text) = value.as_str() {
            return Ok(text.to_owned());
        }
        let object = value
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or_else(|| format!("{value} is neither a string nor an intrinsic function"))?;
        let (function, argument) = object.iter().next().expect("one entry");
        match function.as_str() {
            "Ref" => self.reference(argument.as_str().ok_or("Ref of a non-string")?),
            "Fn::GetAtt" => match argument.as_array().map(Vec::as_slice) {
                Some([Value::String(logical), Value::String(attribute)]) => {
                    self.get_att(logical, attribute)
                }
                _ => Err(format!("Fn::GetAtt {argument}")),
            },
            "Fn::Sub" => {
                let (text, variables) = match argument {
                    Value::String(text) => (text.as_str(), None),
                    Value::Array(parts) => match parts.as_slice() {
                        [Value::String(text), Value::Object(variables)] => {
                            (text.as_str(), Some(variables))
                        }
                        _ => return Err(format!("Fn::Sub {argument}")),
                    },
                    _ => return Err(format!("Fn::Sub {argument}")),
                };
                self.substitute(text, variables)
            }
            "Fn::Join" => match argument.as_array().map(Vec::as_slice) {
                Some([Value::String(separator), Value::Array(parts)]) => Ok(parts
                    .iter()
                    .map(|p| self.resolve(p))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(separator)),
                _ => Err(format!("Fn::Join {argument}")),
            },
            other => Err(format!("{other} is not known to this evaluator")),
        }
    }

    fn substitute(
        &self,
        text: &str,
        variables: Option<&serde_json::Map<String, Value>>,
    ) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            if let Some(literal) = after.strip_prefix('!') {
                out.push_str("${");
                rest = literal;
                continue;
            }
            let end = after
                .find('}')
                .ok_or_else(|| format!("Fn::Sub {text:?}: unclosed ${{"))?;
            let name = &after[..end];
            let value = match variables.and_then(|v| v.get(name)) {
                Some(value) => self.resolve(value)?,
                None => match name.split_once('.') {
                    Some((logical, attribute)) => self.get_att(logical, attribute)?,
                    None => self.reference(name)?,
                },
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A function of the template: its role's statements, its environment
/// (which names the resources its code calls), and what the SAM
/// transform added for Lambda itself.
#[derive(Debug)]
struct Function {
    logical_id: String,
    statements: Vec<Statement>,
    environment: serde_json::Map<String, Value>,
    managed_policies: Vec<String>,
    /// Queues an event source mapping polls for it.
    polled_queues: Vec<String>,
    /// Tables whose stream an event source mapping reads for it.
    read_streams: Vec<String>,
    /// Queues its event sources send what they give up on to.
    failure_destinations: Vec<String>,
}

/// The functions by name (`AccountsFunction` is `accounts`). A role this
/// evaluator cannot read is a finding.
fn functions(template: &Template, findings: &mut Vec<String>) -> BTreeMap<String, Function> {
    let mut functions = BTreeMap::new();
    let mut polled: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut streams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut destinations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for resource in template.resources.values() {
        if resource["Type"] == "AWS::Lambda::EventSourceMapping" {
            let properties = &resource["Properties"];
            let function = properties["FunctionName"]["Ref"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let source = &properties["EventSourceArn"]["Fn::GetAtt"];
            let logical = source[0].as_str().unwrap_or_default().to_owned();
            match source[1].as_str() {
                Some("StreamArn") => streams.entry(function.clone()).or_default().push(logical),
                _ => polled.entry(function.clone()).or_default().push(logical),
            }
            let on_failure = &properties["DestinationConfig"]["OnFailure"]["Destination"];
            if !on_failure.is_null() {
                let queue = on_failure["Fn::GetAtt"][0].as_str().unwrap_or_default();
                destinations
                    .entry(function)
                    .or_default()
                    .push(queue.to_owned());
            }
        }
    }
    for (logical, resource) in template.resources {
        if resource["Type"] != "AWS::Lambda::Function" {
            continue;
        }
        let Some(name) = logical.strip_suffix("Function") else {
            findings.push(format!(
                "{logical}: a function whose name does not end in Function"
            ));
            continue;
        };
        let properties = &resource["Properties"];
        let Some(role_id) = properties["Role"]["Fn::GetAtt"][0].as_str() else {
            findings.push(format!(
                "{logical}: a role that is not a role of the template"
            ));
            continue;
        };
        let Some(role) = template.resources.get(role_id).map(|r| &r["Properties"]) else {
            findings.push(format!(
                "{logical}: its role {role_id} is not in the template"
            ));
            continue;
        };
        let mut statements = Vec::new();
        for policy in role["Policies"].as_array().into_iter().flatten() {
            let policy_name = policy["PolicyName"].as_str().unwrap_or("?");
            let document = &policy["PolicyDocument"]["Statement"];
            for (position, statement) in document.as_array().into_iter().flatten().enumerate() {
                let origin = format!("{role_id}/{policy_name}#{position}");
                match Statement::parse(origin, statement, template) {
                    Ok(statement) => statements.push(statement),
                    Err(e) => findings.push(e),
                }
            }
        }
        for field in role.as_object().into_iter().flatten().map(|(k, _)| k) {
            if ![
                "AssumeRolePolicyDocument",
                "ManagedPolicyArns",
                "Policies",
                "Tags",
            ]
            .contains(&field.as_str())
            {
                findings.push(format!("{role_id}: {field} is not known to this evaluator"));
            }
        }
        let managed_policies = role["ManagedPolicyArns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| template.resolve(p).unwrap_or_else(|e| e))
            .collect();
        functions.insert(
            name.to_ascii_lowercase(),
            Function {
                logical_id: logical.clone(),
                statements,
                environment: properties["Environment"]["Variables"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                managed_policies,
                polled_queues: polled.remove(logical).unwrap_or_default(),
                read_streams: streams.remove(logical).unwrap_or_default(),
                failure_destinations: destinations.remove(logical).unwrap_or_default(),
            },
        );
    }
    functions
}

/// The request IAM would see for a recorded call, in the deployed stack:
/// the environment variable the call's resource came from names the
/// template's resource.
fn request(template: &Template, function: &Function, call: &Value) -> Result<Request, String> {
    let action = call["action"]
        .as_str()
        .ok_or("a call without an action")?
        .to_owned();
    let resource = &call["resource"];
    let text = |field: &str| resource[field].as_str();
    let variable = text("configured_as").ok_or_else(|| {
        format!("{action} on {resource}, which no environment variable of the function names")
    })?;
    let value = function.environment.get(variable).ok_or_else(|| {
        format!("{action} on {resource}: the function's environment has no {variable}")
    })?;
    // `Ref X`, or `Fn::GetAtt [X, Name]` (a bus's name).
    let logical = value["Ref"]
        .as_str()
        .or_else(|| match value["Fn::GetAtt"].as_array().map(Vec::as_slice) {
            Some([Value::String(x), Value::String(name)]) if name == "Name" => Some(x.as_str()),
            _ => None,
        })
        .ok_or_else(|| format!("{action} on {resource}: {variable} names no resource"))?;
    let arn = template.arn(logical)?;
    let leading_keys = call["leading_keys"].as_array().map(|keys| {
        keys.iter()
            .map(|k| k.as_str().unwrap_or_default().to_owned())
            .collect()
    });
    let (resource, prefix) = match call["service"].as_str() {
        Some("dynamodb") => match text("index") {
            Some(index) => (format!("{arn}/index/{index}"), None),
            None => (arn, None),
        },
        Some("sqs") | Some("events") => (arn, None),
        Some("s3") => match text("key") {
            Some(key) => (format!("{arn}/{key}"), None),
            None => (arn, text("prefix").map(str::to_owned)),
        },
        other => return Err(format!("{action}: service {other:?} is not known here")),
    };
    if call["service"] == "dynamodb" && leading_keys.is_none() {
        return Err(format!(
            "{action} on {resource}: its leading keys were not recorded"
        ));
    }
    Ok(Request {
        action,
        resource,
        leading_keys,
        prefix,
    })
}

/// Long ids (UUIDs, hex) as `<id>`, so one finding made by many calls is
/// reported once.
fn masked(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let id = run.trim_end_matches('-');
        if id.len() >= 32 && id.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("<id>");
            out.push_str(&run[id.len()..]);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() || c == '-' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Every finding: calls no statement allows, statement pairs (action ×
/// resource) no call uses, permissions SAM added where they do not belong,
/// and whatever the evaluator could not read.
fn check(template: &Value, calls: &[Value]) -> Vec<String> {
    let mut findings = Vec::new();
    let template = match Template::new(template) {
        Ok(template) => template,
        Err(e) => return vec![e],
    };
    let functions = functions(&template, &mut findings);
    let mut denied: BTreeMap<String, usize> = BTreeMap::new();
    let mut requests: BTreeMap<&str, BTreeSet<Request>> = BTreeMap::new();
    for call in calls {
        let name = call["function"].as_str().unwrap_or_default();
        let Some(function) = functions.get(name) else {
            *denied
                .entry(format!(
                    "{name}: a call of a function the template does not have"
                ))
                .or_default() += 1;
            continue;
        };
        match request(&template, function, call) {
            Ok(request) => {
                if !function.statements.iter().any(|s| s.allows(&request)) {
                    let keys = request
                        .leading_keys
                        .as_ref()
                        .map(|k| format!(" leading keys {k:?}"))
                        .unwrap_or_default();
                    let prefix = request
                        .prefix
                        .as_ref()
                        .map(|p| format!(" prefix {p:?}"))
                        .unwrap_or_default();
                    *denied
                        .entry(masked(&format!(
                            "{name}: {} on {}{keys}{prefix} is not allowed by {}'s role",
                            request.action, request.resource, function.logical_id
                        )))
                        .or_default() += 1;
                }
                requests.entry(name).or_default().insert(request);
            }
            Err(e) => *denied.entry(masked(&format!("{name}: {e}"))).or_default() += 1,
        }
    }
    for (name, function) in &functions {
        // What Lambda's event sources do as the role: poll a queue, read
        // a stream, send what they give up on to their destination.
        let sources = function
            .polled_queues
            .iter()
            .map(|q| (q, "Arn", &POLLER_ACTIONS[..]))
            .chain(
                function
                    .read_streams
                    .iter()
                    .map(|t| (t, "StreamArn", &STREAM_READER_ACTIONS[..])),
            )
            .chain(
                function
                    .failure_destinations
                    .iter()
                    .map(|q| (q, "Arn", &["sqs:SendMessage"][..])),
            );
        for (resource, attribute, actions) in sources {
            let arn = template
                .resolve(&json!({"Fn::GetAtt": [resource, attribute]}))
                .unwrap_or_else(|e| e);
            for action in actions {
                let request = Request {
                    action: (*action).to_owned(),
                    resource: arn.clone(),
                    leading_keys: None,
                    prefix: None,
                };
                if !function.statements.iter().any(|s| s.allows(&request)) {
                    findings.push(format!(
                        "{name}: Lambda's event source cannot {action} on {resource} as {}'s role",
                        function.logical_id
                    ));
                }
                requests.entry(name.as_str()).or_default().insert(request);
            }
        }
    }
    findings.extend(
        denied
            .into_iter()
            .map(|(finding, count)| format!("{finding} ({count} calls)")),
    );
    for (name, function) in &functions {
        let used = requests.get(name.as_str());
        if used.is_none() {
            findings.push(format!(
                "{name}: no call of it was recorded (was AWS_CALL_LOG set for the whole suite?)"
            ));
        }
        for statement in &function.statements {
            for action in &statement.actions {
                for resource in &statement.resources {
                    let exercised = used
                        .into_iter()
                        .flatten()
                        .any(|r| statement.pair_allows(action, resource, r));
                    if !exercised {
                        findings.push(format!(
                            "{name}: {action} on {resource} ({}) is allowed but no call uses it",
                            statement.origin
                        ));
                    }
                }
            }
        }
        for policy in &function.managed_policies {
            if policy == BASIC_EXECUTION {
                continue;
            }
            if policy == SQS_POLLER {
                findings.push(format!(
                    "{name}: managed policy {policy} receives and deletes on every queue; \
                     a role of its own allows the poller on its queue only"
                ));
                continue;
            }
            findings.push(format!(
                "{name}: managed policy {policy}, which this evaluator does not read"
            ));
        }
    }
    findings
}

#[test]
#[ignore = "reads the calls the whole suite recorded: infra/local/test.sh runs it after the suite, with AWS_CALL_LOG"]
fn every_function_is_allowed_what_it_calls_and_nothing_else() {
    let path = std::env::var("AWS_CALL_LOG")
        .ok()
        .filter(|p| !p.is_empty())
        .expect("AWS_CALL_LOG names the log the suite wrote (infra/local/test.sh sets it)");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading AWS_CALL_LOG {path}: {e}"));
    let calls: Vec<Value> = text
        .lines()
        .enumerate()
        .map(|(number, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{path} line {}: {e}: {line}", number + 1))
        })
        .collect();
    assert!(
        !calls.is_empty(),
        "{path} is empty: run the suite with AWS_CALL_LOG set first"
    );
    let findings = check(&integration_tests::transformed_template(), &calls);
    assert!(
        findings.is_empty(),
        "least privilege, {} calls checked against infra/template.yaml; {} findings:\n{}",
        calls.len(),
        findings.len(),
        findings.join("\n")
    );
}

// ---------------------------------------------------------------- the evaluator itself

/// A transformed template with one function `demo`: its statements, and
/// its environment naming the table, the queue and the bucket.
fn demo_template(statements: Value) -> Value {
    json!({"Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table"},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "DemoFunction": {"Type": "AWS::Lambda::Function", "Properties": {
            "Role": {"Fn::GetAtt": ["DemoFunctionRole", "Arn"]},
            "Environment": {"Variables": {
                "TABLE_NAME": {"Ref": "Table"},
                "EVENTS_QUEUE_URL": {"Ref": "Queue"},
                "LOGO_BUCKET": {"Ref": "Bucket"}
            }}
        }},
        "DemoFunctionRole": {"Type": "AWS::IAM::Role", "Properties": {
            "ManagedPolicyArns": [BASIC_EXECUTION],
            "Policies": [{"PolicyName": "DemoPolicy0",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]
        }}
    }})
}

fn get_item(keys: &[&str]) -> Value {
    json!({"function": "demo", "service": "dynamodb", "action": "dynamodb:GetItem",
        "resource": {"table": "organizations-test-1", "configured_as": "TABLE_NAME"},
        "leading_keys": keys})
}

#[test]
fn wildcards_match_as_in_iam() {
    assert!(glob(
        "arn:aws:s3:::Bucket/logos/*.png",
        "arn:aws:s3:::Bucket/logos/p/o/1.png"
    ));
    assert!(!glob(
        "arn:aws:s3:::Bucket/logos/*.png",
        "arn:aws:s3:::Bucket/logos/p/o/1.gif"
    ));
    assert!(glob("a?c*", "abcdef"));
    assert!(!glob("a?c", "ac"));
    assert!(glob("*", ""));
    assert!(action_matches("dynamodb:*", "dynamodb:GetItem"));
    assert!(action_matches("DynamoDB:getitem", "dynamodb:GetItem"));
    assert!(!action_matches("dynamodb:Get*", "dynamodb:PutItem"));
}

#[test]
fn intrinsic_functions_resolve_to_the_resources_arns() {
    let template = demo_template(json!([]));
    let template = Template::new(&template).unwrap();
    assert_eq!(
        template
            .resolve(&json!({"Fn::Sub": "${Table.Arn}/index/GSI1"}))
            .unwrap(),
        "arn:aws:dynamodb:us-east-1:123456789012:table/Table/index/GSI1"
    );
    assert_eq!(
        template
            .resolve(&json!({"Fn::GetAtt": ["Queue", "Arn"]}))
            .unwrap(),
        "arn:aws:sqs:us-east-1:123456789012:Queue"
    );
    assert_eq!(
        template
            .resolve(
                &json!({"Fn::Sub": ["${B}/logos/*", {"B": {"Fn::GetAtt": ["Bucket", "Arn"]}}]})
            )
            .unwrap(),
        "arn:aws:s3:::Bucket/logos/*"
    );
    assert!(template.resolve(&json!({"Fn::If": []})).is_err());
    assert!(template
        .resolve(&json!({"Fn::GetAtt": ["Nowhere", "Arn"]}))
        .is_err());
}

#[test]
fn a_leading_keys_condition_holds_only_for_those_partitions() {
    let template = demo_template(json!([{
        "Effect": "Allow", "Action": "dynamodb:GetItem",
        "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
        "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["WARM-UP"]}}
    }]));
    assert!(check(&template, &[get_item(&["WARM-UP"])]).is_empty());
    let findings = check(&template, &[get_item(&["WARM-UP"]), get_item(&["P#1#O#2"])]);
    assert_eq!(
        findings,
        vec![
            "demo: dynamodb:GetItem on arn:aws:dynamodb:us-east-1:123456789012:table/Table \
              leading keys [\"P#1#O#2\"] is not allowed by DemoFunction's role (1 calls)"
        ]
    );
    // StringLike takes wildcards.
    let template = demo_template(json!([{
        "Effect": "Allow", "Action": "dynamodb:GetItem",
        "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["P#*"]}}
    }]));
    assert!(check(&template, &[get_item(&["P#1", "P#2"])]).is_empty());
    assert_eq!(check(&template, &[get_item(&["P#1", "Q#2"])]).len(), 2);
}

#[test]
fn a_prefix_condition_holds_only_for_listings_under_it() {
    let template = demo_template(json!([{
        "Effect": "Allow", "Action": "s3:ListBucket",
        "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]},
        "Condition": {"StringLike": {"s3:prefix": ["logos/*"]}}
    }]));
    let listing = |prefix: Option<&str>| {
        let mut resource = json!({"bucket": "logos-1", "configured_as": "LOGO_BUCKET"});
        if let Some(prefix) = prefix {
            resource["prefix"] = json!(prefix);
        }
        json!({"function": "demo", "service": "s3", "action": "s3:ListBucket", "resource": resource})
    };
    assert!(check(&template, &[listing(Some("logos/p/o/"))]).is_empty());
    let denied = check(
        &template,
        &[
            listing(Some("logos/p/o/")),
            listing(Some("other/")),
            listing(None),
        ],
    );
    assert_eq!(denied.len(), 2, "{denied:#?}");
}

#[test]
fn a_call_no_statement_allows_and_a_statement_no_call_uses_are_both_reported() {
    let template = demo_template(json!([
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
         "Resource": {"Fn::GetAtt": ["Table", "Arn"]}},
        {"Effect": "Allow", "Action": "dynamodb:Query",
         "Resource": [{"Fn::Sub": "${Table.Arn}/index/GSI1"}, {"Fn::Sub": "${Table.Arn}/index/GSI2"}]},
        {"Effect": "Allow", "Action": "s3:PutObject",
         "Resource": {"Fn::Sub": "${Bucket.Arn}/logos/*.png"}}
    ]));
    let calls = [
        get_item(&["P#1"]),
        json!({"function": "demo", "service": "dynamodb", "action": "dynamodb:Query",
            "resource": {"table": "t", "index": "GSI1", "configured_as": "TABLE_NAME"},
            "leading_keys": ["P#1#ORGS"]}),
        // A query of the table itself: only its indexes are allowed.
        json!({"function": "demo", "service": "dynamodb", "action": "dynamodb:Query",
            "resource": {"table": "t", "configured_as": "TABLE_NAME"}, "leading_keys": ["P#1"]}),
        json!({"function": "demo", "service": "s3", "action": "s3:PutObject",
            "resource": {"bucket": "b", "key": "logos/p/o/1.gif", "configured_as": "LOGO_BUCKET"}}),
        json!({"function": "demo", "service": "sqs", "action": "sqs:SendMessage",
            "resource": {"queue_url": "http://h/1/elsewhere", "queue_name": "elsewhere"}}),
    ];
    let findings = check(&template, &calls);
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/Table";
    assert_eq!(
        findings,
        vec![
            "demo: dynamodb:Query on arn:aws:dynamodb:us-east-1:123456789012:table/Table leading keys [\"P#1\"] is not allowed by DemoFunction's role (1 calls)".to_owned(),
            "demo: s3:PutObject on arn:aws:s3:::Bucket/logos/p/o/1.gif is not allowed by DemoFunction's role (1 calls)".to_owned(),
            "demo: sqs:SendMessage on {\"queue_name\":\"elsewhere\",\"queue_url\":\"http://h/1/elsewhere\"}, which no environment variable of the function names (1 calls)".to_owned(),
            format!("demo: dynamodb:PutItem on {table} (DemoFunctionRole/DemoPolicy0#0) is allowed but no call uses it"),
            format!("demo: dynamodb:Query on {table}/index/GSI2 (DemoFunctionRole/DemoPolicy0#1) is allowed but no call uses it"),
            "demo: s3:PutObject on arn:aws:s3:::Bucket/logos/*.png (DemoFunctionRole/DemoPolicy0#2) is allowed but no call uses it".to_owned(),
        ]
    );
}

#[test]
fn what_the_evaluator_does_not_know_is_a_finding() {
    let unknown = [
        json!({"Effect": "Deny", "Action": "s3:*", "Resource": "*"}),
        json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
        json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}),
        json!({"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": {"Fn::ImportValue": "x"}}),
    ];
    for statement in unknown {
        let findings = check(&demo_template(json!([statement])), &[get_item(&["P#1"])]);
        assert!(
            findings
                .iter()
                .any(|f| f.starts_with("DemoFunctionRole/DemoPolicy0#0")),
            "{statement}: {findings:#?}"
        );
    }
}

#[test]
fn a_polled_queue_needs_the_pollers_actions_on_it_and_no_managed_policy_grants_them() {
    let poller = |resource: Value| {
        json!({"Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": resource})
    };
    let read = json!({"Effect": "Allow", "Action": "dynamodb:GetItem",
        "Resource": {"Fn::GetAtt": ["Table", "Arn"]}});
    let event_source = json!({
        "Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "FunctionName": {"Ref": "DemoFunction"},
            "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}}});

    // The poller's statement on the polled queue: used by Lambda, not a finding.
    let mut template = demo_template(json!([
        read,
        poller(json!({"Fn::GetAtt": ["Queue", "Arn"]}))
    ]));
    template["Resources"]["DemoFunctionEvents"] = event_source.clone();
    assert!(check(&template, &[get_item(&["P#1"])]).is_empty());

    // Without an event source, nothing uses it.
    let lonely = demo_template(json!([
        read,
        poller(json!({"Fn::GetAtt": ["Queue", "Arn"]}))
    ]));
    let findings = check(&lonely, &[get_item(&["P#1"])]);
    assert_eq!(findings.len(), 3, "{findings:#?}");
    assert!(findings.iter().all(|f| f.contains("no call uses it")));

    // An event source without the statement: Lambda could not poll.
    let mut unreadable = demo_template(json!([read]));
    unreadable["Resources"]["DemoFunctionEvents"] = event_source;
    let findings = check(&unreadable, &[get_item(&["P#1"])]);
    assert_eq!(findings.len(), 3, "{findings:#?}");
    assert!(findings
        .iter()
        .all(|f| f.contains("Lambda's event source cannot")));

    // SAM's managed poller policy (every queue of the account) is a finding.
    template["Resources"]["DemoFunctionRole"]["Properties"]["ManagedPolicyArns"] =
        json!([BASIC_EXECUTION, SQS_POLLER]);
    let findings = check(&template, &[get_item(&["P#1"])]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(findings[0].contains("AWSLambdaSQSQueueExecutionRole"));
}

#[test]
fn ids_are_masked_so_a_finding_is_reported_once() {
    assert_eq!(
        masked(
            "logos/019ad4c2-7a38-7d43-9a0b-4f1c2d3e4f50/x.png P#0123456789abcdef0123456789abcdef"
        ),
        "logos/<id>/x.png P#<id>"
    );
    assert_eq!(masked("dynamodb:GetItem cafe"), "dynamodb:GetItem cafe");
}
