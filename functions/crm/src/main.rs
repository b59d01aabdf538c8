//! Lambda entry point of the CRM family.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env("crm").await?;
    lambda_http::run(crm::router(state)).await
}
