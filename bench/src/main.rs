//! `make bench`: every route of every family and the processor, measured
//! in-process against the local emulator in one run, written to
//! `BENCHMARKS.md` with the micro-benchmarks (criterion) and the cold-start
//! figures (release binaries) that `infra/local/bench.sh` gathered first.

mod coldstart;
mod meter;
mod micro;
mod publisher;
mod report;
mod scale;
mod scenarios;

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use meter::Meter;
use shared::{AppState, Aws, Config};
use tower::ServiceExt;

/// One measured route.
pub struct Measured {
    pub family: &'static str,
    pub method: &'static str,
    pub route: &'static str,
    pub minimum: usize,
    pub why: &'static str,
    /// Round trips per request: fewest and most seen.
    pub trips: (usize, usize),
    /// The AWS calls of the last request, in order (DynamoDB by name,
    /// other services as `SQS.SendMessageBatch`).
    pub operations: Vec<String>,
    pub read_units: f64,
    pub write_units: f64,
    pub estimated: bool,
    pub handler: Percentiles,
    pub sdk: Percentiles,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
}

pub fn percentiles(mut samples: Vec<Duration>) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// The state every function builds, with a table and a bucket of the
/// run's own, and every DynamoDB call metered.
pub(crate) async fn metered_state() -> (AppState, Meter) {
    let mut config = Config::from_env().expect("TABLE_NAME is set by make bench");
    config.table = format!("{}-{}", config.table, uuid::Uuid::now_v7().simple());
    // The scenarios sign their sessions as dev tokens.
    config.dev_sessions = true;
    let base = Aws::load().await;
    // Without the stream: it changes no request's reads or writes (a
    // stream costs DynamoDB writes nothing), and the emulator would keep a
    // copy of every item written by the scale runs' seeding.
    shared::provision::create_table_streaming(&base.dynamodb, &config.table, false)
        .await
        .expect("creating the bench table");
    let bucket = format!("bench-logos-{}", uuid::Uuid::now_v7().simple());
    base.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("creating the bench bucket");
    config.logo_bucket = Some(bucket);
    let name = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let (events, _) = shared::provision::create_queues(
        &base.sqs,
        &format!("{name}-events"),
        shared::provision::EVENTS_QUEUE,
    )
    .await
    .expect("creating the bench events queue");
    let (cleanup, _) = shared::provision::create_queues(
        &base.sqs,
        &format!("{name}-cleanup"),
        shared::provision::CLEANUP_QUEUE,
    )
    .await
    .expect("creating the bench cleanup queue");
    config.events_queue_url = Some(events);
    config.cleanup_queue_url = Some(cleanup);
    let meter = Meter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        base.dynamodb
            .config()
            .to_builder()
            .interceptor(meter.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        base.sqs
            .config()
            .to_builder()
            .interceptor(meter.clone())
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        base.s3
            .config()
            .to_builder()
            .interceptor(meter.clone())
            .build(),
    );
    let aws = Aws { dynamodb, sqs, s3 };
    (AppState::new(config, aws), meter)
}

/// Runs one scenario: warm-up requests, then `iterations` measured ones.
async fn measure(s: &scenarios::Scenario, meter: &Meter, iterations: usize) -> Measured {
    let mut handler = Vec::with_capacity(iterations);
    let mut sdk = Vec::with_capacity(iterations);
    let (mut fewest, mut most) = (usize::MAX, 0);
    let (mut reads, mut writes, mut estimated) = (0.0, 0.0, false);
    let mut operations = Vec::new();
    for i in 0..scenarios::WARM_UP + iterations {
        let request = (s.request)(i);
        meter.take();
        let started = Instant::now();
        let response = s
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("routers are infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let took = started.elapsed();
        let calls = meter.take();
        let dynamodb = calls.iter().filter(|c| c.service == "DynamoDB").count();
        assert!(
            status.is_success(),
            "{} {}: {status} {}",
            s.method,
            s.route,
            String::from_utf8_lossy(&body)
        );
        if i < scenarios::WARM_UP {
            continue;
        }
        handler.push(took);
        sdk.push(meter::covered(&calls));
        fewest = fewest.min(dynamodb);
        most = most.max(dynamodb);
        reads += calls.iter().map(|c| c.read_units).sum::<f64>();
        writes += calls.iter().map(|c| c.write_units).sum::<f64>();
        estimated |= calls.iter().any(|c| c.estimated);
        operations = calls
            .iter()
            .map(|c| match c.service.as_str() {
                "DynamoDB" => c.operation.clone(),
                other => format!("{other}.{}", c.operation),
            })
            .collect();
    }
    let n = iterations.max(1) as f64;
    Measured {
        family: s.family,
        method: s.method,
        route: s.route,
        minimum: s.minimum,
        why: s.why,
        trips: (fewest, most),
        operations,
        read_units: reads / n,
        write_units: writes / n,
        estimated,
        handler: percentiles(handler),
        sdk: percentiles(sdk),
    }
}

#[tokio::main]
async fn main() {
    // `bench scale` (make bench-scale): the Scale section only.
    if std::env::args().nth(1).as_deref() == Some("scale") {
        scale::run().await;
        return;
    }
    // `bench publisher`: the Publisher section of BENCHMARKS.md only.
    if std::env::args().nth(1).as_deref() == Some("publisher") {
        let output = std::env::var("BENCH_OUTPUT").unwrap_or_else(|_| "BENCHMARKS.md".into());
        let section = report::publisher_section(&publisher::measure().await);
        let existing = std::fs::read_to_string(&output).unwrap_or_default();
        let text = report::with_section(
            &existing,
            report::PUBLISHER_HEADING,
            &section,
            "## Cold start",
        );
        std::fs::write(&output, text).expect("writing the report");
        eprintln!("bench: wrote the Publisher section of {output}");
        return;
    }
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let output = std::env::var("BENCH_OUTPUT").unwrap_or_else(|_| "BENCHMARKS.md".into());
    let (state, meter) = metered_state().await;

    // BENCH_ONLY=family measures one family (while writing its scenarios);
    // the report then covers that family only.
    let only = std::env::var("BENCH_ONLY").ok().filter(|v| !v.is_empty());
    let all = scenarios::all(&state, iterations + scenarios::WARM_UP, only.as_deref()).await;
    if only.is_none() {
        scenarios::check_coverage(&all);
    }
    let mut measured = Vec::new();
    for s in &all {
        eprintln!("bench: {} {}", s.method, s.route);
        measured.push(measure(s, &meter, iterations).await);
    }
    let processor = scenarios::processor_throughput(&state, &meter).await;
    eprintln!("bench: the publisher");
    let publisher = publisher::measure().await;
    let cold = coldstart::measure().await;
    let micro = micro::read();
    let text = report::render(iterations, &measured, &processor, &publisher, &cold, &micro);
    // The Scale section is make bench-scale's: kept as it was.
    let existing = std::fs::read_to_string(&output).unwrap_or_default();
    std::fs::write(&output, report::keep_scale(&text, &existing)).expect("writing the report");
    eprintln!("bench: wrote {output}");
}
