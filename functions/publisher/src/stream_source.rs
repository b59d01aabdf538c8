//! The event feed's ends against the local emulator, for the tests and
//! `make bench` (the deployed function never uses them): Lambda's stream
//! event source — the table's stream read through DynamoDB Streams' JSON
//! API (`GetRecords`' records are what the event source hands the
//! function, plus `eventSourceARN`), so the publisher is fed the records
//! the emulator's stream really holds — and a bus with a subscriber queue.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use aws_lambda_events::dynamodb::Event;

/// One DynamoDB Streams call to the emulator at `AWS_ENDPOINT_URL`, signed
/// as the SDKs sign it (the emulator does not check signatures; the
/// service in the scope is `dynamodb`, as for every Streams call).
async fn call(target: &str, body: Value) -> Result<Value, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "AWS_ENDPOINT_URL is not set: the emulator whose stream is read")?;
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let body = body.to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: DynamoDBStreams_20120810.{target}\r\n\
         Content-Type: application/x-amz-json-1.0\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let failed = |e: std::io::Error| format!("{target}: {e}");
    let mut socket = tokio::net::TcpStream::connect(&host)
        .await
        .map_err(failed)?;
    socket.write_all(request.as_bytes()).await.map_err(failed)?;
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.map_err(failed)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{target}: not an HTTP answer"))?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{target}: {head}\n{body}"));
    }
    serde_json::from_str(body).map_err(|e| format!("{target}: {e}: {body}"))
}

/// A reader of one table's stream from its start (the emulator keeps one
/// shard a table).
pub struct StreamReader {
    arn: String,
    iterator: Option<String>,
}

impl StreamReader {
    pub async fn open(db: &aws_sdk_dynamodb::Client, table: &str) -> Result<Self, String> {
        let described = db
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "DescribeTable: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        let arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| format!("table {table} has no stream"))?
            .to_owned();
        let stream = call("DescribeStream", json!({"StreamArn": arn})).await?;
        let shard = stream["StreamDescription"]["Shards"][0]["ShardId"]
            .as_str()
            .ok_or("the stream has no shard")?
            .to_owned();
        let iterator = call(
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await?["ShardIterator"]
            .as_str()
            .map(str::to_owned);
        Ok(Self { arn, iterator })
    }

    /// The next records (at most `limit`), as the event source would
    /// deliver them: empty when the stream has nothing new.
    pub async fn next(&mut self, limit: usize) -> Result<Event, String> {
        let mut records = Vec::new();
        if let Some(iterator) = self.iterator.take() {
            let out = call(
                "GetRecords",
                json!({"ShardIterator": iterator, "Limit": limit}),
            )
            .await?;
            self.iterator = out["NextShardIterator"].as_str().map(str::to_owned);
            for mut record in out["Records"].as_array().cloned().unwrap_or_default() {
                record["eventSourceARN"] = json!(self.arn);
                records.push(record);
            }
        }
        serde_json::from_value(json!({"Records": records}))
            .map_err(|e| format!("stream records Lambda's event type does not read: {e}"))
    }

    /// Everything the stream holds from here on, in batches of `limit`.
    pub async fn batches(&mut self, limit: usize) -> Result<Vec<Event>, String> {
        let mut batches = Vec::new();
        loop {
            let batch = self.next(limit).await?;
            if batch.records.is_empty() {
                return Ok(batches);
            }
            batches.push(batch);
        }
    }
}

/// A new bus of the emulator with a rule sending every event of this
/// service (`source` [`crate::SOURCE`]) to a new SQS queue, as a
/// subscriber's rule would: the bus's name and the queue's URL.
pub async fn subscribed_bus(sdk: &aws_config::SdkConfig) -> Result<(String, String), String> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let name = format!("organizations-{}", uuid::Uuid::now_v7().simple());
    events
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "CreateEventBus: {}",
                aws_sdk_eventbridge::error::DisplayErrorContext(&e)
            )
        })?;
    let subscriber = sqs
        .create_queue()
        .queue_name(format!("subscriber-{}", uuid::Uuid::now_v7().simple()))
        .send()
        .await
        .map_err(|e| {
            format!(
                "CreateQueue: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            )
        })?
        .queue_url
        .ok_or("CreateQueue answered no URL")?;
    let arn = shared::provision::queue_arn(&sqs, &subscriber)
        .await
        .map_err(|e| e.to_string())?;
    let pattern = serde_json::json!({"source": [crate::SOURCE]}).to_string();
    events
        .put_rule()
        .name("subscriber")
        .event_bus_name(&name)
        .event_pattern(pattern)
        .send()
        .await
        .map_err(|e| {
            format!(
                "PutRule: {}",
                aws_sdk_eventbridge::error::DisplayErrorContext(&e)
            )
        })?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("subscriber")
        .arn(arn)
        .build()
        .map_err(|e| e.to_string())?;
    events
        .put_targets()
        .rule("subscriber")
        .event_bus_name(&name)
        .targets(target)
        .send()
        .await
        .map_err(|e| {
            format!(
                "PutTargets: {}",
                aws_sdk_eventbridge::error::DisplayErrorContext(&e)
            )
        })?;
    Ok((name, subscriber))
}
