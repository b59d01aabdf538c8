//! Lambda entry point of the segments family.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env("segments").await?;
    lambda_http::run(segments::router(state)).await
}
