//! Test harness: every test builds its clients against the local emulator
//! (`make test` starts moto and sets `AWS_ENDPOINT_URL` and `TABLE_NAME`)
//! and makes its own project, so tests share nothing and run in parallel.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use shared::store::CreatedProject;
use shared::{AppState, Aws, Config};
use tower::ServiceExt;

pub use aws_sdk_dynamodb;

pub mod events;

/// The app state every function would build, against the emulator, with a
/// table of the test's own: the emulator copies a whole table for each
/// transaction, so small tables keep tests fast (project ids keep them
/// apart anyway).
pub async fn state() -> AppState {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the tests with `make test`, which starts the emulator"
    );
    let mut config = Config::from_env().expect("TABLE_NAME is set by make test");
    config.table = format!("{}-{}", config.table, uuid::Uuid::now_v7().simple());
    // The tests sign their sessions as dev tokens (make test also sets
    // DEV_SESSIONS=1); tests of the refusal turn it off.
    config.dev_sessions = true;
    let aws = Aws::load().await;
    shared::provision::create_table(&aws.dynamodb, &config.table)
        .await
        .expect("creating the test table");
    AppState::new(config, aws)
}

/// A project created for dev sessions (it has a `dev_token_secret`).
pub async fn project(state: &AppState) -> CreatedProject {
    state
        .store
        .create_dev_project("test")
        .await
        .expect("creating a test project")
}

/// One HTTP exchange with a router, in-process.
pub struct Exchange {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
}

pub async fn call(
    router: &Router,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Exchange {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(
            body.map(|b| Body::from(b.to_owned()))
                .unwrap_or_else(Body::empty),
        )
        .expect("a valid request");
    send(router, request).await
}

/// One HTTP exchange with a request built by the test (its own headers).
pub async fn send(router: &Router, request: Request<Body>) -> Exchange {
    let head = request.method() == Method::HEAD;
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("a body").to_bytes();
    if !head {
        assert_labelled_truthfully(status, content_type.as_deref(), &bytes);
    }
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Exchange {
        status,
        content_type,
        headers: parts.headers,
        body,
    }
}

/// What every answer of every route the suite calls must hold, because the
/// vendors' clients rely on it (Lunogram's js-sdk parses any answer
/// labelled JSON): an empty answer carries no content type, and one
/// labelled JSON is JSON. (A HEAD answer is labelled as its GET would be,
/// without the body, as HTTP wants.)
fn assert_labelled_truthfully(status: StatusCode, content_type: Option<&str>, bytes: &[u8]) {
    match content_type {
        Some(label) if bytes.is_empty() => {
            panic!("a {status} answer with an empty body is labelled {label:?}")
        }
        Some(label) if label.contains("json") => {
            if let Err(e) = serde_json::from_slice::<Value>(bytes) {
                panic!(
                    "a {status} answer labelled {label:?} is not JSON ({e}): {}",
                    String::from_utf8_lossy(bytes)
                )
            }
        }
        _ => {}
    }
}

/// Every item of a project, read by a Scan (tests only: no request path
/// scans), to prove what a request wrote or did not write: the items under
/// the project, not the project's own record and its API keys' copies.
pub async fn project_items(
    state: &AppState,
    project: uuid::Uuid,
) -> Vec<HashMap<String, AttributeValue>> {
    let prefix = format!("P#{project}#");
    let keys = format!("P#{project}#KEY#");
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = state
            .aws
            .dynamodb
            .scan()
            .table_name(&state.config.table)
            .filter_expression("begins_with(PK, :prefix) AND NOT begins_with(PK, :keys)")
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone()))
            .expression_attribute_values(":keys", AttributeValue::S(keys.clone()))
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .expect("scanning the test table");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// How many items of a project have a sort key with this prefix.
pub async fn count_kind(state: &AppState, project: uuid::Uuid, sk_prefix: &str) -> usize {
    project_items(state, project)
        .await
        .iter()
        .filter(|item| {
            item.get("SK")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with(sk_prefix))
        })
        .count()
}

/// How many items of a project have exactly this sort key.
pub async fn count_sk(state: &AppState, project: uuid::Uuid, sk: &str) -> usize {
    project_items(state, project)
        .await
        .iter()
        .filter(|item| {
            item.get("SK")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|s| s == sk)
        })
        .count()
}

/// Records the DynamoDB operation of every request a client sends, to
/// prove how many round trips an operation takes (and that none is a Scan).
#[derive(Clone, Debug, Default)]
pub struct OperationLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl OperationLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl aws_sdk_dynamodb::config::Intercept for OperationLog {
    fn name(&self) -> &'static str {
        "OperationLog"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(target) = context.request().headers().get("x-amz-target") {
            let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
            self.0.lock().unwrap().push(operation);
        }
        Ok(())
    }
}

/// Like [`state`], with every DynamoDB request recorded in the log.
pub async fn logged_state() -> (AppState, OperationLog) {
    let base = state().await;
    let log = OperationLog::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        base.aws
            .dynamodb
            .config()
            .to_builder()
            .interceptor(log.clone())
            .build(),
    );
    let aws = Aws {
        dynamodb,
        ..base.aws.clone()
    };
    (AppState::new(base.config.clone(), aws), log)
}

/// Like [`state`], with an events queue (and dead-letter queue) of its own,
/// so tests that drain a queue never see each other's messages.
pub async fn state_with_queue() -> AppState {
    let base = state().await;
    let name = format!("events-{}", uuid::Uuid::now_v7().simple());
    let (queue_url, _dlq) =
        shared::provision::create_queues(&base.aws.sqs, &name, shared::provision::EVENTS_QUEUE)
            .await
            .expect("creating a test queue");
    let mut config = base.config.clone();
    config.events_queue_url = Some(queue_url);
    AppState::new(config, base.aws.clone())
}

/// Receives every message now in the queue (in SQS batches of up to 10),
/// without deleting them: what the Lambda event source would hand over.
/// With a visibility timeout of 0 each message is received once per call
/// (a message seen again ends the round).
pub async fn receive_all(
    state: &AppState,
    queue_url: &str,
    visibility_secs: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all: Vec<aws_sdk_sqs::types::Message> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    loop {
        let out = state
            .aws
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility_secs)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receiving");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return all;
        }
        for message in messages {
            if !seen.insert(message.message_id.clone()) {
                return all;
            }
            all.push(message);
        }
    }
}

/// Builds the Lambda SQS event for messages, as the event source mapping does.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> aws_lambda_events::sqs::SqsEvent {
    let mut event = aws_lambda_events::sqs::SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = aws_lambda_events::sqs::SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record
        })
        .collect();
    event
}

/// Deletes messages (what the event source does with the ones that did not fail).
pub async fn delete_messages(
    state: &AppState,
    queue_url: &str,
    messages: &[aws_sdk_sqs::types::Message],
) {
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .expect("a valid entry")
            })
            .collect();
        state
            .aws
            .sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("deleting");
    }
}

/// A real DNS server (Debian's dnsmasq) on 127.0.0.1, answering the given
/// TXT records and NXDOMAIN for every other name under `.example`; stopped
/// when dropped. `make test` installs dnsmasq and sets `DNSMASQ`.
pub struct LocalDns {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl LocalDns {
    /// A port for a server started later: free for UDP and TCP now.
    pub fn reserve_port() -> u16 {
        loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("binding a UDP port");
            let port = udp.local_addr().expect("local address").port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }

    /// A DNS server on a port of its own answering `txt`: a port taken
    /// between reserving and binding (by another test's connection) is
    /// tried again with another.
    pub fn start(txt: &[(&str, &str)]) -> LocalDns {
        for _ in 0..10 {
            if let Some(dns) = Self::try_serve(Self::reserve_port(), txt) {
                return dns;
            }
        }
        panic!("dnsmasq did not start listening on any of 10 ports");
    }

    /// `None` when dnsmasq exits (the port was taken) or does not listen
    /// within 10 s.
    fn try_serve(port: u16, txt: &[(&str, &str)]) -> Option<LocalDns> {
        let binary = std::env::var("DNSMASQ").unwrap_or_else(|_| "/usr/sbin/dnsmasq".into());
        let mut command = std::process::Command::new(&binary);
        command.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--pid-file=",
            "--local=/example/",
            &format!("--port={port}"),
        ]);
        for (name, value) in txt {
            command.arg(format!("--txt-record={name},{value}"));
        }
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary} (make test installs it): {e}"));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || started.elapsed() > std::time::Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(LocalDns { child, addr })
    }
}

impl Drop for LocalDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs a plain-HTTP URL (a presigned S3 URL of the emulator) and answers
/// its status and body, with nothing but the standard library.
pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).expect("connecting");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("sending");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reading");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a chunk size");
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..line_end])
                    .split(';')
                    .next()
                    .unwrap_or("0")
                    .trim(),
                16,
            )
            .expect("a hex chunk size");
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = decoded;
    }
    (status, body)
}

/// Validates a response body against a schema of a published OpenAPI 3.0
/// document (a copy in tests/specs, so a fresh clone has it), its
/// `nullable` turned into JSON Schema's null type.
pub fn assert_matches_spec(spec_file: &str, schema: &str, instance: &Value) {
    fn convert(value: &mut Value) {
        match value {
            Value::Object(map) => {
                if map.remove("nullable") == Some(Value::Bool(true)) {
                    if let Some(Value::String(t)) = map.get("type").cloned() {
                        map.insert("type".into(), serde_json::json!([t, "null"]));
                    }
                    if let Some(Value::Array(options)) = map.get_mut("enum") {
                        options.push(Value::Null);
                    }
                }
                map.values_mut().for_each(convert);
            }
            Value::Array(items) => items.iter_mut().for_each(convert),
            _ => {}
        }
    }
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(spec_file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let spec: Value = serde_json::from_str(&text).expect("the spec is JSON");
    let mut components = spec["components"].clone();
    convert(&mut components);
    let root = serde_json::json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "components": components,
        "allOf": [{"$ref": format!("#/components/schemas/{schema}")}],
    });
    if let Err(error) = jsonschema::validate(&root, instance) {
        panic!("the response is not a valid {schema} of {spec_file}: {error}\n{instance:#}");
    }
}

/// A dev session token (HS256 with the project's dev_token_secret) for a
/// user's external id, optionally naming the current organization.
pub fn session_token(p: &CreatedProject, user: &str, org: Option<&str>) -> String {
    let claims = shared::auth::SessionClaims {
        sub: user.into(),
        project_id: p.project_id,
        org_id: org.map(str::to_owned),
        exp: time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 600,
    };
    let secret = p
        .dev_token_secret
        .as_deref()
        .expect("common::project creates projects for dev sessions");
    shared::auth::issue_session_token(&claims, secret).expect("a session token")
}

/// [`state`] with a logo bucket of the test's own and the given
/// `CLEANUP_SERVICES`.
pub async fn state_with_bucket(cleanup_services: Option<&str>) -> AppState {
    let mut state = state().await;
    let bucket = format!("logos-{}", uuid::Uuid::now_v7().simple());
    state
        .aws
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("creating a bucket");
    state.config.logo_bucket = Some(bucket);
    state.config.cleanup_services = cleanup_services.map(str::to_owned);
    AppState::new(state.config.clone(), state.aws.clone())
}

/// The bucket the transformed template's functions take their code from
/// (`s3://CODE_BUCKET/<LogicalId>.zip`, what `sam deploy` would upload).
pub const CODE_BUCKET: &str = "organizations-code";

/// infra/template.yaml as CloudFormation deploys it: through the SAM
/// transform CloudFormation runs (aws-sam-translator, which `make lint`
/// installs into .tools), as JSON.
pub fn transformed_template() -> Value {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make lint` (or `make test`), which installs aws-sam-translator",
        python.display()
    );
    let output = std::process::Command::new(python)
        .arg(root.join("infra/local/transform.py"))
        .arg(root.join("infra/template.yaml"))
        .args(["--code-bucket", CODE_BUCKET])
        .output()
        .expect("running infra/local/transform.py");
    assert!(
        output.status.success(),
        "the SAM transform refuses infra/template.yaml:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the transformed template is JSON")
}

pub mod reads;

/// Runs a deleted organization's purge in the store, step after step,
/// until nothing is left in its partition: the number of steps.
pub async fn purge(state: &AppState, project: uuid::Uuid, org: uuid::Uuid) -> usize {
    let mut step = None;
    let mut steps = 0;
    while let shared::store::PurgeStep::Advanced { next, .. } = state
        .store
        .purge_step(project, org, step)
        .await
        .expect("a purge step")
    {
        step = Some(next);
        steps += 1;
    }
    steps
}
