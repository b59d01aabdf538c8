//! No key, token or `Authorization` header reaches a log line, at any
//! level: each function binary runs at TRACE (`RUST_LOG` and
//! `AWS_LAMBDA_LOG_LEVEL`), text and JSON lines, against a local Lambda
//! Runtime API that hands it events carrying credentials, and everything
//! it writes is searched for them.
//!
//! The binaries are the functions' own `main.rs`, built as binaries of this
//! package (tests/Cargo.toml), since cargo gives a test the path only of its
//! own package's binaries.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_tests::{project, state};
use serde_json::{json, Value};

/// The deployment's cursor key the functions are started with.
const CURSOR_KEY: &str = "cursor-key-for-the-logs-test-7d2e9b41c6a85f30e1";

/// What the function posted back for one invocation.
struct Outcome {
    /// `response` or `error`.
    kind: String,
    body: Value,
}

/// A Lambda Runtime API on a free loopback port: hands out `events` in
/// order on `GET …/invocation/next`, reports each `…/response` and
/// `…/error` on the channel; once the events are out, `next` never returns.
fn runtime_api(function: &str, events: Vec<Value>) -> (String, mpsc::Receiver<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("an address").to_string();
    let events: Arc<Mutex<VecDeque<(String, Value)>>> = Arc::new(Mutex::new(
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("request-{i}"), e))
            .collect(),
    ));
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function}");
    let (report, outcomes) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (events, report, arn) = (events.clone(), report.clone(), arn.clone());
            std::thread::spawn(move || {
                let _ = serve(stream, &events, &report, &arn);
            });
        }
    });
    (address, outcomes)
}

/// One connection of the runtime client: HTTP/1.1 requests, kept alive.
fn serve(
    stream: TcpStream,
    events: &Mutex<VecDeque<(String, Value)>>,
    report: &mpsc::Sender<Outcome>,
    arn: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let (name, value) = (name.to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            }
            if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
        let body = if chunked {
            read_chunked(&mut reader)?
        } else {
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            body
        };
        let path = request_line.split_whitespace().nth(1).unwrap_or_default();
        if path.ends_with("/runtime/invocation/next") {
            let next = events.lock().expect("the event queue").pop_front();
            let Some((id, event)) = next else {
                // No more events: keep the runtime waiting until it is stopped.
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                return Ok(());
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                + 60_000;
            let body = event.to_string();
            write!(
                writer,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                 lambda-runtime-aws-request-id: {id}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: {arn}\r\n\
                 lambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            )?;
        } else {
            let kind = if path.ends_with("/response") {
                "response"
            } else {
                "error"
            };
            let body = serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
            let _ = report.send(Outcome {
                kind: kind.into(),
                body,
            });
            write!(
                writer,
                "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{{\"status\":\"OK\"}}"
            )?;
        }
        writer.flush()?;
    }
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// An API Gateway (HTTP API, payload 2.0) event with these headers.
fn http_event(method: &str, path: &str, headers: Value, body: Option<Value>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "example.com",
            "domainPrefix": "example", "requestId": "id", "routeKey": "$default",
            "stage": "$default", "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 1795000000000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "logs-test"}
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// Runs one binary until it has answered every event; returns what it
/// answered and everything it wrote (stdout and stderr).
fn run(
    function: &str,
    binary: &str,
    table: &str,
    json_lines: bool,
    events: Vec<Value>,
) -> (Vec<Outcome>, String) {
    let expected = events.len();
    let (address, outcomes) = runtime_api(function, events);
    let mut child = Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "logs-test")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "logs-test")
        .env("AWS_LAMBDA_LOG_LEVEL", "trace")
        .env("RUST_LOG", "trace")
        .env(
            "AWS_LAMBDA_LOG_FORMAT",
            if json_lines { "JSON" } else { "Text" },
        )
        .env("TABLE_NAME", table)
        // A function refuses to start without the deployment's cursor key;
        // this one is also a marker the logs must never show.
        .env("CURSOR_KEY", CURSOR_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let mut answered = Vec::new();
    while answered.len() < expected {
        match outcomes.recv_timeout(Duration::from_secs(60)) {
            Ok(outcome) => answered.push(outcome),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    assert_eq!(
        answered.len(),
        expected,
        "{function} answered {} of {expected} events; it wrote:\n{output}",
        answered.len()
    );
    (answered, output)
}

#[tokio::test]
async fn no_credential_reaches_the_logs_of_any_function_at_trace() {
    let state = state().await;
    let p = project(&state).await;
    let table = state.config.table.clone();
    let org = uuid::Uuid::now_v7();
    // Well-formed, but no key of any project.
    let unknown_secret = format!("sk_{}", "Zm9yZ2VkLWtleS1tYWRlLXVwLWZvci10aGUtbG9ncy10ZXN0");
    let unknown_publishable = format!("pk_{}", "YW5vdGhlci1mb3JnZWQta2V5LWZvci10aGUtbG9ncy10ZXN0");
    // A marker where events that carry no headers carry their payload.
    let marker = "payload-marker-3f1c9a7e5b2d";
    let secrets = [
        p.secret_key.as_str(),
        p.publishable_key.as_str(),
        unknown_secret.as_str(),
        unknown_publishable.as_str(),
        marker,
        CURSOR_KEY,
    ];

    let http = |method: &str, path: &str, body: Option<Value>| {
        vec![
            http_event(
                method,
                path,
                json!({
                    "authorization": format!("Bearer {}", p.secret_key),
                    "x-api-key": p.publishable_key,
                    "content-type": "application/json",
                }),
                body.clone(),
            ),
            http_event(
                method,
                path,
                json!({
                    "authorization": format!("Bearer {unknown_secret}"),
                    "x-api-key": unknown_publishable,
                    "content-type": "application/json",
                }),
                body,
            ),
        ]
    };
    let functions: Vec<(&str, &str, Vec<Value>)> = vec![
        (
            "accounts",
            env!("CARGO_BIN_EXE_function-accounts"),
            http("GET", "/v1/organizations", None),
        ),
        (
            "client",
            env!("CARGO_BIN_EXE_function-client"),
            http(
                "POST",
                "/api/client/organizations",
                Some(json!({"identifier": [{"external_id": "acme"}]})),
            ),
        ),
        (
            "crm",
            env!("CARGO_BIN_EXE_function-crm"),
            http("GET", "/organizations", None),
        ),
        (
            "tenant",
            env!("CARGO_BIN_EXE_function-tenant"),
            http("GET", &format!("/v2/organization/{org}"), None),
        ),
        (
            "segments",
            env!("CARGO_BIN_EXE_function-segments"),
            http(
                "POST",
                "/api/admin/segments/match",
                Some(json!({"organization_id": org, "rule": {}})),
            ),
        ),
        (
            "cleanup",
            env!("CARGO_BIN_EXE_function-cleanup"),
            http("GET", "/v2/organization/cleanup", None),
        ),
        (
            "processor",
            env!("CARGO_BIN_EXE_function-processor"),
            vec![json!({"Records": [{
                "messageId": "0b7a0d4c-0000-4000-8000-000000000001",
                "receiptHandle": marker,
                "body": "{}",
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {"note": {"stringValue": marker, "dataType": "String"}},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:organization-events",
                "awsRegion": "us-east-1"
            }]})],
        ),
        (
            "scheduler",
            env!("CARGO_BIN_EXE_function-scheduler"),
            vec![json!({
                "version": "0", "id": marker, "detail-type": "Scheduled Event",
                "source": "aws.events", "account": "123456789012",
                "time": "2026-11-23T12:00:00Z", "region": "us-east-1",
                "resources": [], "detail": {"note": marker}
            })],
        ),
    ];

    for (i, (function, binary, events)) in functions.into_iter().enumerate() {
        let http_function = !matches!(function, "processor" | "scheduler");
        let json_lines = i % 2 == 0;
        let (answered, output) = run(function, binary, &table, json_lines, events);
        for secret in secrets {
            // The key itself, or its random part should a logger cut the prefix.
            let random_part = secret.get(3..).unwrap_or(secret);
            let leaked: Vec<&str> = output
                .lines()
                .filter(|line| line.contains(random_part))
                .collect();
            assert!(
                leaked.is_empty(),
                "{function} logged a credential or a raw event:\n{}",
                leaked.join("\n")
            );
        }
        // It did log at TRACE (so the search above had lines to search).
        assert!(
            output.lines().any(|line| line.contains("TRACE")),
            "{function} wrote no TRACE line:\n{output}"
        );
        if http_function {
            let statuses: Vec<i64> = answered
                .iter()
                .map(|o| {
                    assert_eq!(o.kind, "response", "{function}: {}", o.body);
                    o.body["statusCode"].as_i64().unwrap_or_default()
                })
                .collect();
            assert!(
                statuses[0] > 0 && statuses[0] < 500 && statuses[0] != 401,
                "{function}: the project's own keys were answered {}",
                statuses[0]
            );
            assert_eq!(statuses[1], 401, "{function}: unknown keys");
            // The refused request was logged, at DEBUG, without its key.
            assert!(
                output.contains("request rejected"),
                "{function} did not log the refusal:\n{output}"
            );
        }
    }
}
