//! What every function builds once per cold start and hands to its handlers.

use crate::auth::AuthState;
use crate::config::{Aws, Config};
use crate::error::Error;
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Config,
    pub aws: Aws,
    pub store: Store,
}

impl AppState {
    /// Loads the environment and one `SdkConfig`, and builds every client.
    pub async fn from_env() -> Result<Self, Error> {
        let config = Config::from_env()?;
        let aws = Aws::load().await;
        Ok(Self::new(config, aws))
    }

    pub fn new(config: Config, aws: Aws) -> Self {
        let store = Store::new(aws.dynamodb.clone(), config.table.clone());
        Self { config, aws, store }
    }
}

impl AuthState for AppState {
    fn store(&self) -> &Store {
        &self.store
    }
}
