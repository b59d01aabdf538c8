//! Everything the functions share: the organization domain (dialect-free), the
//! single-table DynamoDB store, API keys and sessions, the one error type and
//! its HTTP mapping, configuration and tracing. Function crates stay thin.

pub mod auth;
pub mod call_log;
pub mod config;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod issuers;
pub mod keys;
pub mod limits;
pub mod openapi;
pub mod provision;
pub mod state;
pub mod store;
pub mod telemetry;

pub use config::{Aws, Config};
pub use error::{Error, Result};
pub use state::AppState;
pub use store::Store;
