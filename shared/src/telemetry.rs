//! Tracing for every function: one initialisation, called first in each
//! `main`. The level comes from Lambda's log controls as in lambda_runtime's
//! default subscriber (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO;
//! `RUST_LOG` directives apply; JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`),
//! with one difference: below INFO only this workspace's crates log.
//!
//! Other crates log secrets at DEBUG and TRACE: the Lambda runtime writes
//! every raw event (the `Authorization` and `X-API-KEY` headers with it), the
//! AWS SDK every signed request (the session token) and every response body
//! (items read). Whatever level is set, those lines are never written.

use std::str::FromStr;

use lambda_http::tracing::subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use lambda_http::tracing::subscriber::layer::SubscriberExt;
use lambda_http::tracing::subscriber::util::SubscriberInitExt;
use tracing::{Level, Metadata};

/// The crates of this workspace: their own lines log at any level (none of
/// them logs a credential, a header or a request body).
const OWN_CRATES: &[&str] = &[
    "shared",
    "accounts",
    "cleanup",
    "client",
    "crm",
    "processor",
    "scheduler",
    "segments",
    "tenant",
];

/// Whether a span or event may be written: INFO and above from anyone,
/// DEBUG and TRACE from our own crates only.
pub fn allowed(metadata: &Metadata<'_>) -> bool {
    *metadata.level() <= Level::INFO || is_own(metadata.target())
}

fn is_own(target: &str) -> bool {
    let crate_name = target.split("::").next().unwrap_or_default();
    OWN_CRATES.contains(&crate_name)
}

/// Installs the subscriber (once; a second call changes nothing).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let level =
        LevelFilter::from_str(level.as_deref().unwrap_or("INFO")).unwrap_or(LevelFilter::INFO);
    let levels = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // CloudWatch stamps each line; the target is noise next to the message.
    let lines = lambda_http::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(levels);
    let installed = if json {
        lines.json().finish().with(filter_fn(allowed)).try_init()
    } else {
        lines.finish().with(filter_fn(allowed)).try_init()
    };
    if installed.is_ok() {
        tracing::trace!(%level, "tracing ready; crates outside this workspace log INFO and above only");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_crates_log_below_info() {
        assert!(is_own("shared::store::memberships"));
        assert!(is_own("client"));
        assert!(!is_own("lambda_runtime::layers::api_response"));
        assert!(!is_own("aws_smithy_runtime::client::orchestrator"));
        assert!(!is_own("sharedx"));
        assert!(!is_own("hyper_util::client"));
    }
}
