//! Lambda entry point of the accounts family.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env("accounts").await?;
    lambda_http::run(accounts::router(state)).await
}
