//! Lambda entry point of the tenant family.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env("tenant").await?;
    lambda_http::run(tenant::router(state)).await
}
