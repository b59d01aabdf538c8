//! Lambda entry point of the publisher (the table's stream is its trigger).

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let publisher = publisher::Publisher::from_env().await?;
    let publisher = &publisher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(publisher.handle(event.payload).await)
    }))
    .await
}
