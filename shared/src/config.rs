//! Configuration from the environment, loaded once per cold start.

use crate::cursor::CursorKey;
use crate::error::Error;

/// The resource names every function reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    pub table: String,
    pub events_queue_url: Option<String>,
    pub logo_bucket: Option<String>,
    /// Where logos are served from (`LOGO_BASE_URL`, e.g. a CDN in front of
    /// the bucket); presigned S3 URLs when unset.
    pub logo_base_url: Option<String>,
    /// Where deletions are announced for cleanup (`CLEANUP_QUEUE_URL`).
    pub cleanup_queue_url: Option<String>,
    /// The services whose reports complete a cleanup (`CLEANUP_SERVICES`,
    /// comma-separated; `organizations` always counts).
    pub cleanup_services: Option<String>,
    /// The DNS server domain verification asks (`DNS_RESOLVER`,
    /// `host:port`); the system's resolver when unset.
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// `DEV_SESSIONS=1` (local only: `make dev` and the tests set it, the
    /// SAM template never does): HS256 dev session tokens signed with a
    /// project's `dev_token_secret` are accepted, and a trusted issuer's
    /// JWKS may be served over plain http from a loopback address.
    pub dev_sessions: bool,
    /// Signs pagination cursors (`CURSOR_KEY`; see [`CursorKey::from_env`]).
    pub cursor_key: CursorKey,
}

/// Whether `DEV_SESSIONS=1` is set: only the exact value `1` turns dev
/// sessions on, so a typo leaves them off.
pub fn dev_sessions_from_env() -> bool {
    std::env::var("DEV_SESSIONS").is_ok_and(|v| v.trim() == "1")
}

impl Config {
    pub fn from_env() -> Result<Self, Error> {
        let table = std::env::var("TABLE_NAME")
            .map_err(|_| Error::Config("TABLE_NAME is not set".into()))?;
        Ok(Self {
            table,
            events_queue_url: std::env::var("EVENTS_QUEUE_URL")
                .ok()
                .filter(|v| !v.is_empty()),
            logo_bucket: std::env::var("LOGO_BUCKET").ok().filter(|v| !v.is_empty()),
            logo_base_url: std::env::var("LOGO_BASE_URL")
                .ok()
                .filter(|v| !v.is_empty()),
            cleanup_queue_url: std::env::var("CLEANUP_QUEUE_URL")
                .ok()
                .filter(|v| !v.is_empty()),
            cleanup_services: std::env::var("CLEANUP_SERVICES")
                .ok()
                .filter(|v| !v.is_empty()),
            dns_resolver: match std::env::var("DNS_RESOLVER") {
                Ok(v) if !v.is_empty() => Some(v.parse().map_err(|_| {
                    Error::Config(format!("DNS_RESOLVER {v:?} is not an ip:port address"))
                })?),
                _ => None,
            },
            dev_sessions: dev_sessions_from_env(),
            cursor_key: CursorKey::from_env()?,
        })
    }
}

/// AWS clients, all built from one `SdkConfig`. `AWS_ENDPOINT_URL` (the SDK's
/// standard variable) points them at a local emulator.
#[derive(Clone, Debug)]
pub struct Aws {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Aws {
    pub async fn load() -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_sdk_config(&sdk)
    }

    /// [`Aws::load`] for one function: its requests' user agent names it
    /// (`app/<function>`), so CloudTrail tells the functions apart.
    pub async fn load_for(function: &'static str) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Ok(name) = aws_config::AppName::new(function) {
            loader = loader.app_name(name);
        }
        Self::from_sdk_config(&loader.load().await)
    }

    /// The same clients, each recording its requests (see
    /// [`crate::call_log`]).
    pub fn recorded(&self, recorder: &crate::call_log::Recorder) -> Self {
        use crate::call_log::Service;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                self.dynamodb
                    .config()
                    .to_builder()
                    .interceptor(recorder.on(Service::DynamoDb))
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                self.sqs
                    .config()
                    .to_builder()
                    .interceptor(recorder.on(Service::Sqs))
                    .build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(
                self.s3
                    .config()
                    .to_builder()
                    .interceptor(recorder.on(Service::S3))
                    .build(),
            ),
        }
    }

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        // Virtual-host addressing does not work against a local endpoint.
        let path_style = sdk.endpoint_url().is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
        }
    }
}
