//! Lambda entry point of the scheduler (EventBridge, every minute).

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env("scheduler").await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        scheduler::tick(state)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}
