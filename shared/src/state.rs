//! What every function builds once per cold start and hands to its handlers.

use std::borrow::Cow;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::auth::AuthState;
use crate::config::{Aws, Config};
use crate::error::Error;
use crate::issuers::IssuerKeys;
use crate::store::Store;

/// A key no item has (the key builders never produce it).
const WARM_UP_KEY: &str = "WARM-UP";
/// Init must not hang on an unreachable endpoint.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Config,
    pub aws: Aws,
    pub store: Store,
    /// Trusted issuers' signing keys, in this Lambda instance's memory
    /// (shared by every clone of the state).
    pub issuer_keys: std::sync::Arc<IssuerKeys>,
    /// The function whose calls the clients record (`AWS_CALL_LOG` set).
    recorded_as: Option<&'static str>,
}

impl AppState {
    /// Loads the environment and one `SdkConfig`, builds every client, and
    /// opens the DynamoDB connection (see [`AppState::warm_up`]): what each
    /// function does once per cold start, before its first request.
    pub async fn from_env(function: &'static str) -> Result<Self, Error> {
        let config = Config::from_env()?;
        let aws = Aws::load_for(function).await;
        let state = Self::new(config, aws).serving(function);
        state.warm_up().await;
        Ok(state)
    }

    /// The state a function serves with, labelled with the function's
    /// name: with `AWS_CALL_LOG` set, its clients record every request they
    /// make as that function's (tasks it spawns clone the clients, so they
    /// record too; see [`crate::call_log`]). Unset, the state is returned
    /// as it is. Each function's entry point calls it.
    pub fn serving(self, function: &'static str) -> Self {
        self.recording(function).unwrap_or(self)
    }

    /// [`AppState::serving`] for an entry point that borrows its state.
    pub fn serving_ref(&self, function: &'static str) -> Cow<'_, Self> {
        match self.recording(function) {
            Some(state) => Cow::Owned(state),
            None => Cow::Borrowed(self),
        }
    }

    /// A copy whose clients record as `function`'s, when the log is on and
    /// they do not already (caches shared with this state).
    fn recording(&self, function: &'static str) -> Option<Self> {
        let file = crate::call_log::file()?;
        match self.recorded_as {
            Some(labelled) if labelled == function => return None,
            Some(labelled) => panic!("the state of {labelled} is served again as {function}'s"),
            None => {}
        }
        let recorder = crate::call_log::Recorder::new(file, function, &self.config);
        let aws = self.aws.recorded(&recorder);
        Some(Self {
            config: self.config.clone(),
            store: self.store.with_client(aws.dynamodb.clone()),
            aws,
            issuer_keys: self.issuer_keys.clone(),
            recorded_as: Some(function),
        })
    }

    /// Opens the DynamoDB connection during init, so the first request does
    /// not pay the TCP and TLS handshake (tens of milliseconds in AWS; init
    /// runs at full CPU). One GetItem of a key no item has: half a read unit
    /// per cold start. A failure is only logged: the first request connects
    /// by itself.
    pub async fn warm_up(&self) {
        let get = self
            .aws
            .dynamodb
            .get_item()
            .table_name(&self.config.table)
            .key(crate::keys::PK, AttributeValue::S(WARM_UP_KEY.into()))
            .key(crate::keys::SK, AttributeValue::S(WARM_UP_KEY.into()))
            .send();
        match tokio::time::timeout(WARM_UP_TIMEOUT, get).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "warming the DynamoDB connection failed"),
            Err(_) => tracing::warn!("warming the DynamoDB connection timed out"),
        }
    }

    pub fn new(config: Config, aws: Aws) -> Self {
        let store = Store::new(
            aws.dynamodb.clone(),
            config.table.clone(),
            config.cursor_key.clone(),
        );
        let issuer_keys = std::sync::Arc::new(IssuerKeys::new(config.dev_sessions));
        Self {
            config,
            aws,
            store,
            issuer_keys,
            recorded_as: None,
        }
    }
}

impl AuthState for AppState {
    fn store(&self) -> &Store {
        &self.store
    }

    fn issuer_keys(&self) -> &IssuerKeys {
        &self.issuer_keys
    }

    fn dev_sessions(&self) -> bool {
        self.config.dev_sessions
    }
}
