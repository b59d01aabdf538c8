//! BENCHMARKS.md.

use std::fmt::Write;
use std::time::Duration;

use crate::coldstart::Cold;
use crate::micro::Micro;
use crate::scenarios::Throughput;
use crate::{Measured, Percentiles};

/// AWS list prices used (us-east-1, on-demand, as published in 2025).
const READ_UNIT: f64 = 0.125 / 1e6;
const WRITE_UNIT: f64 = 0.625 / 1e6;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_GB_SECOND_ARM: f64 = 0.000_013_333_4;
const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
/// The functions' memory (template `MemorySize`).
const MEMORY_GB: f64 = 0.25;
/// An in-region DynamoDB round trip, assumed for the Lambda duration.
const AWS_ROUND_TRIP_MS: f64 = 4.0;

/// The handler-overhead goal and the init goal.
const RATIO_GOAL: f64 = 1.15;
const INIT_GOAL: Duration = Duration::from_millis(30);

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        f64::NAN
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

/// Dollars per million requests: DynamoDB alone, and with Lambda and the
/// HTTP API.
fn cost(m: &Measured) -> (f64, f64) {
    let dynamodb = m.read_units * READ_UNIT + m.write_units * WRITE_UNIT;
    let overhead = m.handler.p50.saturating_sub(m.sdk.p50).as_secs_f64();
    let seconds = overhead + m.trips.1 as f64 * AWS_ROUND_TRIP_MS / 1e3;
    // Lambda bills whole milliseconds.
    let billed = (seconds * 1e3).ceil() / 1e3;
    let lambda = LAMBDA_REQUEST + billed * MEMORY_GB * LAMBDA_GB_SECOND_ARM;
    (dynamodb * 1e6, (dynamodb + lambda + HTTP_API_REQUEST) * 1e6)
}

pub fn render(
    iterations: usize,
    measured: &[Measured],
    processor: &Throughput,
    publisher: &crate::publisher::Figures,
    cold: &[Cold],
    micro: &[Micro],
) -> String {
    let mut s = String::new();
    let now = time::OffsetDateTime::now_utc();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `make bench` ({} UTC) on this machine ({} cores), every route through its \
         router in-process against the local emulator (moto server), {iterations} measured \
         requests each after {} warm-up requests. Regenerate with `make bench`; do not edit by hand.\n",
        now.date(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::scenarios::WARM_UP,
    );
    let _ = writeln!(
        s,
        "- **Round trips**: DynamoDB calls per request (fewest–most seen), next to the fewest \
         the operation can take (every key-authenticated request reads its API key: a \
         revoked key must be refused at once, so keys are not cached); the operations are \
         those of the last request, other services' calls named with their service.\n\
         - **Capacity**: read and write units per request as DynamoDB reports them \
         (`ReturnConsumedCapacity: TOTAL`); `*` marks figures estimated here because the \
         emulator reports none for transactions (2 WCU per KB of each item, 1 KB assumed for \
         updates and condition checks, as AWS bills transactional writes).\n\
         - **Handler / SDK**: p50 and p99 wall time of the whole request through the router, \
         and of the AWS calls it made (DynamoDB, SQS, S3: the raw SDK calls, serialisation \
         and signing included; parallel calls counted once). **Ratio** = handler ÷ SDK (goal ≤ {RATIO_GOAL}); \
         **overhead** = handler − SDK at p50, what the service adds.\n\
         - **$/M**: dollars per million requests at AWS list prices (us-east-1, on-demand: \
         $0.125 per million read units, $0.625 per million write units; Lambda arm64 \
         $0.20 per million requests + $0.0000133334 per GB-s at {MEMORY_GB} GB, duration = \
         overhead + {AWS_ROUND_TRIP_MS} ms per round trip; HTTP API $1.00 per million).\n"
    );

    let _ = writeln!(s, "## Routes\n");
    let _ = writeln!(
        s,
        "| family | route | round trips | min | operations | RCU | WCU | handler p50 / p99 ms | SDK p50 / p99 ms | ratio p50 / p99 | overhead µs | DynamoDB $/M | total $/M |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let (mut ratio_ok, mut above, mut local) = (0, Vec::new(), 0);
    for m in measured {
        let (r50, r99) = (
            ratio(m.handler.p50, m.sdk.p50),
            ratio(m.handler.p99, m.sdk.p99),
        );
        // A route that calls no AWS service (an OpenAPI document) has no
        // ratio: its handler time is all overhead, shown as such.
        let ratios = if m.sdk.p50.is_zero() {
            local += 1;
            "— (no AWS call)".to_owned()
        } else {
            if r50 <= RATIO_GOAL {
                ratio_ok += 1;
            }
            format!("{r50:.2} / {r99:.2}")
        };
        let trips = if m.trips.0 == m.trips.1 {
            m.trips.0.to_string()
        } else {
            format!("{}–{}", m.trips.0, m.trips.1)
        };
        if m.trips.1 > m.minimum {
            above.push(m);
        }
        let star = if m.estimated { "*" } else { "" };
        let (dynamodb, total) = cost(m);
        let overhead = m.handler.p50.saturating_sub(m.sdk.p50).as_micros();
        let _ = writeln!(
            s,
            "| {} | `{} {}`<br>{} | {trips} | {} | {} | {:.1} | {:.1}{star} | {} / {} | {} / {} | {ratios} | {overhead} | {dynamodb:.3} | {total:.3} |",
            m.family,
            m.method,
            m.route,
            m.why,
            m.minimum,
            m.operations.join(", "),
            m.read_units,
            m.write_units,
            ms(m.handler.p50),
            ms(m.handler.p99),
            ms(m.sdk.p50),
            ms(m.sdk.p99),
        );
    }
    let _ = writeln!(
        s,
        "\nHandler overhead goal (ratio ≤ {RATIO_GOAL} at p50): {ratio_ok} of {} routes that call AWS \
         ({local} serve without an AWS call).\n",
        measured.len() - local
    );
    if above.is_empty() {
        let _ = writeln!(s, "Every route is at its minimum round trips.\n");
    } else {
        let _ = writeln!(s, "Routes above their minimum round trips:\n");
        for m in above {
            let _ = writeln!(
                s,
                "- `{} {}`: {} (minimum {}): {}",
                m.method, m.route, m.trips.1, m.minimum, m.why
            );
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Processor\n");
    let _ = writeln!(
        s,
        "One processor instance (in-process), {} events in batches of 10 for one organization: \
         **{:.0} events/s** against the emulator (which serialises DynamoDB requests); \
         per event {:.2} DynamoDB round trips, {:.2} write requests and {:.2} write units \
         (a batch's events share one transaction: one counter update per name and day and \
         one existence check per organization).\n",
        processor.events,
        processor.events as f64 / processor.seconds.max(1e-9),
        processor.round_trips_per_event,
        processor.writes_per_event,
        processor.write_units_per_event,
    );

    s.push_str(&publisher_section(publisher));
    let _ = writeln!(s);

    let _ = writeln!(s, "## Cold start\n");
    let _ = writeln!(
        s,
        "Package: the zip `make package` builds (arm64 when the aarch64 target can be had). \
         Init: host-architecture release binary, from process start until it asks a local \
         Lambda runtime API for its first invocation (clients built, configuration read, the \
         DynamoDB connection opened by one GetItem against the emulator); \
         goal under {} ms.\n",
        INIT_GOAL.as_millis()
    );
    let _ = writeln!(
        s,
        "| function | arch | zip bytes | binary bytes | init p50 ms | init p99 ms |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for c in cold {
        let (arch, zip, binary) = c.package.as_ref().map_or(
            ("—".to_owned(), "—".to_owned(), "—".to_owned()),
            |p| (p.0.clone(), p.1.to_string(), p.2.to_string()),
        );
        let (p50, p99) = c.init.map_or(("—".to_owned(), "—".to_owned()), |i| {
            (ms(i.p50), ms(i.p99))
        });
        let _ = writeln!(
            s,
            "| {} | {arch} | {zip} | {binary} | {p50} | {p99} |",
            c.function
        );
    }
    let _ = writeln!(s, "\n{}", init_verdict(cold));

    let _ = writeln!(s, "## Micro-benchmarks (criterion)\n");
    if micro.is_empty() {
        let _ = writeln!(s, "Not run (`cargo bench -p bench --bench hot`).\n");
    } else {
        let _ = writeln!(s, "| benchmark | median |");
        let _ = writeln!(s, "|---|---|");
        for m in micro {
            let t = if m.median_ns >= 1e6 {
                format!("{:.2} ms", m.median_ns / 1e6)
            } else if m.median_ns >= 1e3 {
                format!("{:.2} µs", m.median_ns / 1e3)
            } else {
                format!("{:.0} ns", m.median_ns)
            };
            let _ = writeln!(s, "| {} | {t} |", m.name);
        }
        let _ = writeln!(s);
    }
    s
}

/// The init goal's verdict under the cold-start table: how many functions
/// start within it at p50, and those whose slowest starts (p99 of
/// [`crate::coldstart::RUNS`] starts is about the slowest one) exceed it.
fn init_verdict(cold: &[Cold]) -> String {
    let measured: Vec<(&str, Percentiles)> = cold
        .iter()
        .filter_map(|c| c.init.map(|i| (c.function, i)))
        .collect();
    let within = measured.iter().filter(|(_, i)| i.p50 < INIT_GOAL).count();
    let mut text = format!(
        "Init goal (under {} ms at p50): {within} of {} functions.",
        INIT_GOAL.as_millis(),
        measured.len()
    );
    let unmeasured: Vec<&str> = cold
        .iter()
        .filter(|c| c.init.is_none())
        .map(|c| c.function)
        .collect();
    if !unmeasured.is_empty() {
        let _ = write!(
            text,
            " Not measured (no host binary): {}.",
            unmeasured.join(", ")
        );
    }
    let slow: Vec<String> = measured
        .iter()
        .filter(|(_, i)| i.p99 >= INIT_GOAL)
        .map(|(f, i)| format!("{f} {} ms", ms(i.p99)))
        .collect();
    if !slow.is_empty() {
        let _ = write!(
            text,
            " At p99 (of {} starts, about the slowest one) above it: {}.",
            crate::coldstart::RUNS,
            slow.join(", ")
        );
    }
    text.push('\n');
    text
}

/// `PutEvents`: $1.00 per million entries (of up to 64 KB each).
const PUT_EVENTS_ENTRY: f64 = 1.00 / 1e6;

pub const PUBLISHER_HEADING: &str = "## Publisher";

/// The Publisher section (`make bench`, or `bench publisher` alone).
pub fn publisher_section(f: &crate::publisher::Figures) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{PUBLISHER_HEADING}\n");
    let _ = writeln!(
        s,
        "One publisher (in-process, {} UTC) handed the emulator's table stream in batches of \
         100 records, as Lambda's event source would, putting each event on an emulator bus \
         whose rule sends everything to an SQS queue; every event was received there once.\n",
        time::OffsetDateTime::now_utc().date()
    );
    let _ = writeln!(
        s,
        "| events written | events | PutEvents calls | entries per call | events/s | handle per batch of 100 |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for run in &f.runs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | **{:.0}** | {:.0} ms |",
            run.label,
            run.events,
            run.calls,
            run.events as f64 / run.calls.max(1) as f64,
            run.per_second(),
            run.seconds_per_batch() * 1e3,
        );
    }
    let entry_ms = f
        .runs
        .iter()
        .map(|r| r.seconds * 1e3 / r.events.max(1) as f64)
        .fold(0.0, f64::max);
    let _ = writeln!(
        s,
        "\nThe emulator spends about {entry_ms:.0} ms on each entry whatever the call holds (moto \
         hands each one to the rule's SQS target inside `PutEvents`), so events/s here measure \
         it, not the publisher, and say little about AWS. What carries over is the calls: a \
         call holds at most one event per organization (so a refused entry is retried before \
         its organization's later ones), so events of many organizations fill calls of up to \
         10 and one busy organization's go one a call. A shard is read by one invocation at a \
         time: with `PutEvents` taking T ms, it publishes up to 10 events per T ms when they \
         come from many organizations, and one organization's at one per T ms (33 a second \
         at T = 30). That bounds one organization's feed, not a project's: the table's stream \
         has a shard per partition range, each read by its own invocation.\n"
    );
    let _ = writeln!(
        s,
        "**Lag** from a write's commit to its arrival on the subscriber queue, {} writes one \
         at a time (20 ms apart, organizations taking turns), the stream read again as soon \
         as a batch is done: **p50 {:.0} ms, p99 {:.0} ms** ({} received). In AWS add the \
         event source's polling: Lambda reads each shard four times a second, so up to \
         250 ms more.\n",
        f.lag_samples,
        f.lag.p50.as_secs_f64() * 1e3,
        f.lag.p99.as_secs_f64() * 1e3,
        f.lag_samples,
    );
    // Lambda's cost per million events: invocations of 100 events, each
    // billed for its measured handle time (an emulator's; AWS's calls are
    // faster) at the publisher's 256 MB.
    let busiest = f
        .runs
        .iter()
        .map(|r| r.seconds_per_batch())
        .fold(0.0, f64::max);
    let invocations = 1e6 / 100.0;
    let lambda = invocations * (LAMBDA_REQUEST + busiest * MEMORY_GB * LAMBDA_GB_SECOND_ARM);
    let _ = writeln!(
        s,
        "**Cost per million events** at list prices (us-east-1): `PutEvents` ${:.2} (one entry \
         each, under 64 KB); the stream's reads by a Lambda trigger are free; the publisher's \
         Lambda about ${lambda:.2} (10,000 invocations of 100 events, each billed the slowest \
         batch time above at 256 MB arm64); rules delivering to SQS, Lambda or another bus \
         add nothing on EventBridge's side (an API destination adds $0.20 per million \
         invocations). In all about **${:.2} per million events**, beside the writes that \
         recorded them (the stream adds no write cost).",
        PUT_EVENTS_ENTRY * 1e6,
        PUT_EVENTS_ENTRY * 1e6 + lambda,
    );
    s
}

/// `existing` with the section under `heading` (up to the next `## `)
/// replaced by `section`; inserted before `before` (or at the end) when it
/// has none.
pub fn with_section(existing: &str, heading: &str, section: &str, before: &str) -> String {
    let start = |text: &str, h: &str| -> Option<usize> {
        if text.starts_with(h) {
            return Some(0);
        }
        text.find(&format!("\n{h}\n")).map(|i| i + 1)
    };
    let section = format!("{}\n\n", section.trim_end());
    if let Some(at) = start(existing, heading) {
        let rest = &existing[at + heading.len()..];
        let end = rest
            .find("\n## ")
            .map_or(existing.len(), |i| at + heading.len() + i + 1);
        return format!("{}{section}{}", &existing[..at], &existing[end..]);
    }
    match start(existing, before) {
        Some(at) => format!("{}{section}{}", &existing[..at], &existing[at..]),
        None => format!("{}\n\n{section}", existing.trim_end()),
    }
}

/// The heading of the section `make bench-scale` writes; it runs to the
/// end of the file, so `make bench` keeps it and `make bench-scale` keeps
/// everything before it.
pub const SCALE_HEADING: &str = "## Scale";

/// The start of the Scale section in `text`, if it has one.
fn scale_start(text: &str) -> Option<usize> {
    if text.starts_with(SCALE_HEADING) {
        return Some(0);
    }
    text.find(&format!("\n{SCALE_HEADING}")).map(|i| i + 1)
}

/// `make bench`'s report followed by the Scale section of the file it
/// replaces (if it had one).
pub fn keep_scale(report: &str, existing: &str) -> String {
    match scale_start(existing) {
        Some(i) => format!("{}\n\n{}", report.trim_end(), &existing[i..]),
        None => report.to_owned(),
    }
}

/// `existing` with its Scale section replaced by `section` (or added at
/// the end).
pub fn with_scale(existing: &str, section: &str) -> String {
    let before = scale_start(existing).map_or(existing, |i| &existing[..i]);
    let before = before.trim_end();
    if before.is_empty() {
        section.to_owned()
    } else {
        format!("{before}\n\n{section}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_or_inserted_before_another() {
        let file = "# B\n\n## Processor\n\np\n\n## Publisher\n\nold\n\n## Cold start\n\nc\n";
        assert_eq!(
            with_section(
                file,
                "## Publisher",
                "## Publisher\n\nnew\n",
                "## Cold start"
            ),
            "# B\n\n## Processor\n\np\n\n## Publisher\n\nnew\n\n## Cold start\n\nc\n"
        );
        let without = "# B\n\n## Processor\n\np\n\n## Cold start\n\nc\n";
        assert_eq!(
            with_section(
                without,
                "## Publisher",
                "## Publisher\n\nnew",
                "## Cold start"
            ),
            file.replace("\nold\n", "\nnew\n")
        );
    }

    #[test]
    fn bench_and_bench_scale_keep_each_others_sections() {
        let bench = "# Benchmarks\n\n## Routes\n\nr1\n";
        let scale = "## Scale\n\ns1\n";
        // bench-scale on a file without the section adds it at the end.
        let both = with_scale(bench, scale);
        assert_eq!(both, "# Benchmarks\n\n## Routes\n\nr1\n\n## Scale\n\ns1\n");
        // bench rewrites its part, keeping the section.
        let rerun = keep_scale("# Benchmarks\n\n## Routes\n\nr2\n", &both);
        assert_eq!(rerun, "# Benchmarks\n\n## Routes\n\nr2\n\n## Scale\n\ns1\n");
        // bench-scale replaces only its section.
        let again = with_scale(&rerun, "## Scale\n\ns2\n");
        assert_eq!(again, "# Benchmarks\n\n## Routes\n\nr2\n\n## Scale\n\ns2\n");
        // Without a section, bench writes its report as it is.
        assert_eq!(keep_scale(bench, "# old\n"), bench);
        assert_eq!(with_scale("", scale), scale);
    }

    fn cold(function: &'static str, p50: u64, p99: u64) -> Cold {
        Cold {
            function,
            package: None,
            init: Some(Percentiles {
                p50: Duration::from_millis(p50),
                p99: Duration::from_millis(p99),
            }),
        }
    }

    #[test]
    fn init_verdict_counts_p50_and_names_slow_tails_and_gaps() {
        let mut all = vec![
            cold("client", 12, 20),
            cold("crm", 31, 40),
            cold("scheduler", 15, 41),
        ];
        all.push(Cold {
            function: "tenant",
            package: None,
            init: None,
        });
        assert_eq!(
            init_verdict(&all),
            "Init goal (under 30 ms at p50): 2 of 3 functions. Not measured (no host binary): \
             tenant. At p99 (of 15 starts, about the slowest one) above it: crm 40.00 ms, \
             scheduler 41.00 ms.\n"
        );
        assert_eq!(
            init_verdict(&[cold("client", 12, 20)]),
            "Init goal (under 30 ms at p50): 1 of 1 functions.\n"
        );
    }
}
