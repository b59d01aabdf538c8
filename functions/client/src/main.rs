//! Lambda entry point of the client family: state once per cold start, then
//! the router behind the Lambda HTTP door.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env("client").await?;
    lambda_http::run(client::router(state)).await
}
