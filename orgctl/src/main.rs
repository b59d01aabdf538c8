//! orgctl: administer an organizations deployment (local or AWS) with the
//! same environment as the functions (TABLE_NAME, EVENTS_QUEUE_URL,
//! LOGO_BUCKET, AWS_REGION, AWS_ENDPOINT_URL).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::auth::{ApiKey, KeyKind, SessionClaims};
use shared::issuers::TrustedIssuer;
use shared::{Aws, Error, Store};
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "orgctl", about = "Administer the organizations service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table, the events and cleanup queues (with dead-letter queues) and the logo bucket; idempotent.
    Init {
        /// Events queue name (default: the last segment of EVENTS_QUEUE_URL, else organization-events).
        #[arg(long)]
        queue: Option<String>,
        /// Logo bucket (default: LOGO_BUCKET, else organizations-logos).
        #[arg(long)]
        bucket: Option<String>,
    },
    /// Projects (tenants).
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Print a dev session JWT (HS256 with the project's dev_token_secret;
    /// accepted only by functions running with DEV_SESSIONS=1).
    Token {
        #[arg(long)]
        project: Uuid,
        /// The user's external id (the session identifier, source "session").
        #[arg(long)]
        user: String,
        /// The current organization.
        #[arg(long)]
        org: Option<String>,
        /// Lifetime in seconds (at most 86400: the functions refuse longer-lived dev tokens).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=shared::auth::DEV_SESSION_MAX_LIFETIME_SECS))]
        ttl: u64,
    },
    /// Identity providers whose session tokens a project trusts.
    Issuer {
        #[command(subcommand)]
        command: IssuerCommand,
    },
    /// The events dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Cleanup of deleted organizations.
    Cleanup {
        #[command(subcommand)]
        command: CleanupCommand,
    },
    /// Feature settings (what GET /v2/organization/feature-settings serves).
    Flags {
        #[command(subcommand)]
        command: FlagsCommand,
    },
    /// The published events (the EventBridge bus the publisher feeds).
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print every event a subscriber queue receives, one JSON line each
    /// (EventBridge's envelope: `detail-type`, `detail`, …), deleting what
    /// it printed. The queue: --queue-url, else EVENTS_SUBSCRIBER_QUEUE_URL,
    /// else `make dev`'s (.local/stack.json, with its emulator).
    Tail {
        #[arg(long)]
        queue_url: Option<String>,
        /// Stop when the queue has nothing more (else wait for more).
        #[arg(long)]
        once: bool,
    },
    /// Put events on the bus again from the timelines — each with its id
    /// and sequence, each organization's in sequence order — e.g. after a
    /// subscriber missed them or the failure queue's alarm. The bus:
    /// --bus, else EVENT_BUS_NAME, else `organizations`.
    Replay {
        #[arg(long)]
        project: Uuid,
        /// Only this organization (it may be deleted: its events stay until
        /// its purge); else every organization of the project.
        #[arg(long)]
        organization: Option<Uuid>,
        /// Events recorded at or after this time (RFC 3339, e.g.
        /// 2026-12-01T00:00:00Z).
        #[arg(long, value_parser = since)]
        since: u64,
        #[arg(long)]
        bus: Option<String>,
    },
}

/// `--since`: an RFC 3339 time as Unix milliseconds.
fn since(text: &str) -> Result<u64, String> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z): {e}"))?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| "a time before 1970".to_owned())
}

#[derive(Subcommand)]
enum CleanupCommand {
    /// The pending cleanups of a project, or one organization's record with
    /// every service's report and whether it is complete (as JSON).
    Status {
        #[arg(long)]
        project: Uuid,
        org: Option<Uuid>,
    },
    /// Announce again every pending deletion this service has not finished
    /// purging (a lost announcement; needs CLEANUP_QUEUE_URL).
    Resume {
        #[arg(long)]
        project: Uuid,
    },
}

#[derive(Subcommand)]
enum FlagsCommand {
    /// Replace a project's feature flag definitions with a FeatureSettings
    /// JSON file ({version, feature_flags[], enabled_flags[]}); checked first.
    Import {
        #[arg(long)]
        project: Uuid,
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project with a publishable and a secret key (and a
    /// dev_token_secret when made for dev sessions).
    Create {
        name: String,
        #[arg(long)]
        json: bool,
        /// Also create a dev_token_secret for HS256 dev session tokens
        /// (implied by DEV_SESSIONS=1); deployed functions never accept them.
        #[arg(long)]
        dev_sessions: bool,
    },
}

#[derive(Subcommand)]
enum IssuerCommand {
    /// Trust an issuer's RS256/ES256 session tokens for a project. One issuer
    /// serves several projects only with a distinct --audience each.
    Add {
        #[arg(long)]
        project: Uuid,
        /// The tokens' `iss`, exactly (e.g. https://TENANT.auth0.com/).
        #[arg(long)]
        issuer: String,
        /// Where the issuer publishes its keys (https; plain http to a
        /// loopback address only under DEV_SESSIONS=1).
        #[arg(long)]
        jwks_url: String,
        /// When set, a token's `aud` must contain it.
        #[arg(long)]
        audience: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The issuers a project trusts (JSON).
    List {
        #[arg(long)]
        project: Uuid,
    },
    /// Stop trusting an issuer (the registration with this audience, or the
    /// one without); its tokens are refused from the next request on.
    Remove {
        #[arg(long)]
        project: Uuid,
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        audience: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key for a project; it is shown once.
    Create {
        #[arg(long)]
        project: Uuid,
        #[arg(long, value_enum)]
        kind: KeyKind,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: refused from the next request on.
    Revoke { key: String },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Send every dead-lettered event back to the events queue.
    Replay,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("orgctl: {err}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| Error::Config(format!("{name} is not set")))
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// The subscriber queue `events tail` reads: the flag, the environment,
/// else the local stack's (whose emulator then serves the call).
fn subscriber_queue(flag: Option<String>) -> Result<String, Error> {
    if let Some(url) = flag.or_else(|| std::env::var("EVENTS_SUBSCRIBER_QUEUE_URL").ok()) {
        return Ok(url);
    }
    let stack: serde_json::Value = std::fs::read_to_string(".local/stack.json")
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| {
            Error::Config(
                "no queue: pass --queue-url, set EVENTS_SUBSCRIBER_QUEUE_URL, or run `make dev` (.local/stack.json)".into(),
            )
        })?;
    let url = stack["events_subscriber_queue_url"]
        .as_str()
        .ok_or_else(|| {
            Error::Config(".local/stack.json has no events_subscriber_queue_url".into())
        })?;
    // The local stack's emulator, with the credentials make dev uses.
    for (name, value) in [
        (
            "AWS_ENDPOINT_URL",
            stack["aws_endpoint"].as_str().unwrap_or_default(),
        ),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
    ] {
        if std::env::var_os(name).is_none() && !value.is_empty() {
            std::env::set_var(name, value);
        }
    }
    Ok(url.to_owned())
}

async fn run(command: Command) -> Result<(), Error> {
    let aws = Aws::load().await;
    // orgctl reads only the cursors it makes itself: without CURSOR_KEY a
    // random key of this process does (see CursorKey::from_env).
    let store = || -> Result<Store, Error> {
        Ok(Store::new(
            aws.dynamodb.clone(),
            env("TABLE_NAME")?,
            shared::cursor::CursorKey::from_env()?,
        ))
    };
    match command {
        Command::Init { queue, bucket } => {
            let queue = queue
                .or_else(|| {
                    std::env::var("EVENTS_QUEUE_URL")
                        .ok()
                        .and_then(|u| u.rsplit('/').next().map(str::to_owned))
                })
                .filter(|q| !q.is_empty())
                .unwrap_or_else(|| "organization-events".into());
            let bucket = bucket
                .or_else(|| std::env::var("LOGO_BUCKET").ok())
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "organizations-logos".into());
            let names = shared::provision::Names {
                table: env("TABLE_NAME")?,
                events_queue: queue,
                cleanup_queue: std::env::var("CLEANUP_QUEUE_URL")
                    .ok()
                    .and_then(|u| u.rsplit('/').next().map(str::to_owned))
                    .filter(|q| !q.is_empty())
                    .unwrap_or_else(|| "organization-cleanup".into()),
                bucket,
            };
            print_json(&shared::provision::init(&aws, &names).await?)
        }
        Command::Project {
            command:
                ProjectCommand::Create {
                    name,
                    json,
                    dev_sessions,
                },
        } => {
            let store = store()?;
            let created = if dev_sessions || shared::config::dev_sessions_from_env() {
                store.create_dev_project(&name).await?
            } else {
                store.create_project(&name).await?
            };
            if json {
                print_json(&created)
            } else {
                println!("project_id:       {}", created.project_id);
                println!("publishable_key:  {}", created.publishable_key);
                println!("secret_key:       {}", created.secret_key);
                match &created.dev_token_secret {
                    Some(secret) => println!("dev_token_secret: {secret}"),
                    None => {
                        println!("dev_token_secret: (none: sessions come from `orgctl issuer add`)")
                    }
                }
                println!("(keys are shown once; only their hashes are stored)");
                Ok(())
            }
        }
        Command::Key {
            command:
                KeyCommand::Create {
                    project,
                    kind,
                    json,
                },
        } => {
            let created = store()?.create_key(project, kind).await?;
            if json {
                print_json(&created)
            } else {
                println!("{}", created.key);
                Ok(())
            }
        }
        Command::Key {
            command: KeyCommand::Revoke { key },
        } => {
            let key = ApiKey::parse(key.trim())
                .ok_or_else(|| Error::invalid("that is not an API key of this service"))?;
            store()?.revoke_key(&key).await?;
            println!("revoked …{}", key.hint());
            Ok(())
        }
        Command::Token {
            project,
            user,
            org,
            ttl,
        } => {
            let found = store()?
                .get_project(project)
                .await?
                .ok_or_else(|| Error::not_found(format!("project {project} does not exist")))?;
            let secret = found.dev_token_secret.ok_or_else(|| {
                Error::invalid(format!(
                    "project {project} was not created for dev sessions (orgctl project create \
                     --dev-sessions); its sessions come from trusted issuers"
                ))
            })?;
            let exp = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64 + ttl;
            let claims = SessionClaims {
                sub: user,
                project_id: project,
                org_id: org,
                exp,
            };
            println!("{}", shared::auth::issue_session_token(&claims, &secret)?);
            Ok(())
        }
        Command::Issuer {
            command:
                IssuerCommand::Add {
                    project,
                    issuer,
                    jwks_url,
                    audience,
                    json,
                },
        } => {
            let trusted = TrustedIssuer::new(
                project,
                &issuer,
                &jwks_url,
                audience.as_deref(),
                shared::config::dev_sessions_from_env(),
            )?;
            store()?.add_issuer(&trusted).await?;
            if json {
                print_json(&trusted)
            } else {
                println!("project {project} trusts {}", trusted.issuer);
                Ok(())
            }
        }
        Command::Issuer {
            command: IssuerCommand::List { project },
        } => print_json(&serde_json::json!({
            "issuers": store()?.project_issuers(project).await?
        })),
        Command::Issuer {
            command:
                IssuerCommand::Remove {
                    project,
                    issuer,
                    audience,
                },
        } => {
            store()?
                .remove_issuer(project, &issuer, audience.as_deref())
                .await?;
            println!("project {project} no longer trusts {issuer}");
            Ok(())
        }
        Command::Cleanup {
            command: CleanupCommand::Status { project, org },
        } => {
            let store = store()?;
            let configured = std::env::var("CLEANUP_SERVICES").ok();
            let expected = shared::domain::cleanup::expected_services(configured.as_deref());
            let out = match org {
                Some(org) => {
                    let found = store.cleanup_state(project, org).await?.ok_or_else(|| {
                        Error::not_found(format!("no deleted organization {org} awaits cleanup"))
                    })?;
                    serde_json::json!({
                        "org_id": found.record.org_id,
                        "deleted_at": found.record.deleted_at,
                        "deleted_by": found.record.deleted_by,
                        "complete": found.complete(&expected),
                        "completed_at": found.completed_at,
                        "expected_services": expected,
                        "services": found.reports,
                    })
                }
                None => {
                    let mut all = Vec::new();
                    let mut cursor = None;
                    loop {
                        let page = store
                            .pending_cleanups(project, 100, cursor.as_deref())
                            .await?;
                        all.extend(page.records);
                        match page.next_cursor {
                            Some(next) => cursor = Some(next),
                            None => break,
                        }
                    }
                    serde_json::json!({ "pending": all })
                }
            };
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(())
        }
        Command::Cleanup {
            command: CleanupCommand::Resume { project },
        } => {
            let store = store()?;
            let queue_url = env("CLEANUP_QUEUE_URL")?;
            let mut cursor = None;
            let mut sent = 0;
            loop {
                let page = store
                    .pending_cleanups(project, 100, cursor.as_deref())
                    .await?;
                for record in page.records {
                    let Ok(org) = Uuid::parse_str(&record.org_id) else {
                        continue;
                    };
                    let purged = store.cleanup_state(project, org).await?.is_some_and(|s| {
                        s.reports
                            .iter()
                            .any(|r| r.service_name == shared::domain::cleanup::OWN_SERVICE)
                    });
                    if !purged {
                        let deletion = shared::domain::cleanup::Deletion {
                            name: shared::domain::event::ORGANIZATION_DELETED.into(),
                            project_id: project,
                            org_id: org,
                            deleted_at: record.deleted_at,
                            deleted_by: record.deleted_by,
                        };
                        shared::events::announce_deletion(&aws.sqs, Some(&queue_url), &deletion)
                            .await;
                        sent += 1;
                    }
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            println!("announced {sent} unfinished deletion(s) again");
            Ok(())
        }
        Command::Flags {
            command: FlagsCommand::Import { project, file },
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::invalid(format!("reading {}: {e}", file.display())))?;
            let document: shared::domain::features::FeatureDocument =
                serde_json::from_str(&text)
                    .map_err(|e| Error::invalid(format!("{}: {e}", file.display())))?;
            store()?.put_feature_document(project, &document).await?;
            println!(
                "imported {} feature flag(s) for project {project}",
                document.feature_flags.len()
            );
            Ok(())
        }
        Command::Events {
            command: EventsCommand::Tail { queue_url, once },
        } => {
            // Its clients after the queue's choice, which may name the
            // local stack's emulator.
            let queue_url = subscriber_queue(queue_url)?;
            tail(&Aws::load().await.sqs, &queue_url, once).await
        }
        Command::Events {
            command:
                EventsCommand::Replay {
                    project,
                    organization,
                    since,
                    bus,
                },
        } => {
            let bus = bus
                .or_else(|| std::env::var("EVENT_BUS_NAME").ok())
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "organizations".into());
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let publisher = publisher::Publisher::new(&sdk, bus, None);
            let replayed = publisher
                .replay(&store()?, project, organization, since)
                .await
                .map_err(|e| match e {
                    publisher::replay::ReplayError::Store(e) => e,
                    refused => Error::Storage(refused.to_string()),
                })?;
            print_json(&replayed)
        }
        Command::Dlq {
            command: DlqCommand::Replay,
        } => {
            let queue_url = env("EVENTS_QUEUE_URL")?;
            let moved = shared::events::replay_dead_letters(&aws.sqs, &queue_url).await?;
            println!("replayed {moved} message(s)");
            Ok(())
        }
    }
}

/// Prints each message of the queue as one line, deleting it once printed.
async fn tail(sqs: &aws_sdk_sqs::Client, queue_url: &str, once: bool) -> Result<(), Error> {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(if once { 1 } else { 20 })
            .send()
            .await
            .map_err(|e| {
                Error::Storage(format!(
                    "ReceiveMessage: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ))
            })?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() && once {
            return Ok(());
        }
        for message in messages {
            let body = message.body().unwrap_or_default();
            // One line per event, whatever the body's layout.
            let line = serde_json::from_str::<serde_json::Value>(body)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| body.to_owned());
            println!("{line}");
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| {
                        Error::Storage(format!(
                            "DeleteMessage: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(&e)
                        ))
                    })?;
            }
        }
    }
}
