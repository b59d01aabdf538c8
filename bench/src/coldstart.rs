//! Cold starts: each release binary's package size (the zips `make
//! package` builds, arm64 when the target can be had) and its init time —
//! from process start until it asks a local Lambda runtime API for its
//! first invocation — measured on host-architecture release binaries.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const FUNCTIONS: &[&str] = &[
    "accounts",
    "cleanup",
    "client",
    "crm",
    "processor",
    "scheduler",
    "segments",
    "tenant",
];

/// Starts per function.
pub const RUNS: usize = 15;

pub struct Cold {
    pub function: &'static str,
    /// `(arch, zip bytes, binary bytes)` from the package step.
    pub package: Option<(String, u64, u64)>,
    /// Init times over [`RUNS`] starts.
    pub init: Option<crate::Percentiles>,
}

/// `make package`'s table, saved by bench.sh: `function arch zip binary`.
fn packages() -> Vec<(String, String, u64, u64)> {
    let Some(file) = std::env::var_os("BENCH_SIZES") else {
        return Vec::new();
    };
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [name, arch, zip, binary] => Some((
                    (*name).to_owned(),
                    (*arch).to_owned(),
                    zip.parse().ok()?,
                    binary.parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

/// One start: spawn the binary against a runtime API that only notes
/// when the first `GET …/invocation/next` arrives.
fn start_once(binary: &PathBuf, env: &[(String, String)]) -> Option<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let address = listener.local_addr().ok()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep the connections open (the runtime waits on /next).
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            if let Ok(copy) = stream.try_clone() {
                let _ = BufReader::new(copy).read_line(&mut line);
            }
            if line.contains("/runtime/invocation/next") {
                let _ = tx.send(Instant::now());
            }
            held.push(stream);
        }
    });
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().cloned())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let ready = rx.recv_timeout(Duration::from_secs(10)).ok();
    let _ = child.kill();
    let _ = child.wait();
    ready.map(|at| at - started)
}

pub async fn measure() -> Vec<Cold> {
    let packages = packages();
    let binaries = std::env::var_os("BENCH_BINARIES").map(PathBuf::from);
    let mut env: Vec<(String, String)> = [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_EC2_METADATA_DISABLED",
        "TABLE_NAME",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
    .collect();
    env.extend(
        [
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "bench"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            // A function refuses to start without one.
            ("CURSOR_KEY", "a cursor key for the cold-start benchmark"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut out = Vec::new();
    for function in FUNCTIONS {
        let package = packages
            .iter()
            .find(|p| p.0 == *function)
            .map(|p| (p.1.clone(), p.2, p.3));
        let init = binaries.as_ref().and_then(|dir| {
            let binary = dir.join(function);
            if !binary.is_file() {
                return None;
            }
            let mut env = env.clone();
            env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), (*function).to_owned()));
            let samples: Vec<Duration> = (0..RUNS)
                .filter_map(|_| start_once(&binary, &env))
                .collect();
            (!samples.is_empty()).then(|| crate::percentiles(samples))
        });
        out.push(Cold {
            function,
            package,
            init,
        });
    }
    out
}
