//! The table's stream as Lambda's event source reads it: DynamoDB Streams'
//! JSON API against the emulator (`GetRecords`' records are what the event
//! source hands the publisher, plus `eventSourceARN`), so the publisher's
//! tests start from the records the emulator's stream really holds.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use shared::AppState;

/// One DynamoDB Streams call, signed as the SDKs sign it (the emulator
/// does not check signatures; the service in the scope is `dynamodb`, as
/// for every Streams call).
async fn streams(target: &str, body: Value) -> Value {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL is set by make test");
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
    let mut socket = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connecting to the emulator");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("sending a Streams call");
    let mut response = Vec::new();
    socket
        .read_to_end(&mut response)
        .await
        .expect("reading a Streams answer");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.split_whitespace().nth(1) == Some("200"),
        "{target}: {head}\n{body}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{target}: {e}: {body}"))
}

/// A reader of one table's stream from its start (the emulator keeps one
/// shard a table).
pub struct StreamReader {
    arn: String,
    iterator: Option<String>,
}

impl StreamReader {
    pub async fn open(state: &AppState) -> Self {
        let table = state
            .aws
            .dynamodb
            .describe_table()
            .table_name(&state.config.table)
            .send()
            .await
            .expect("describing the table");
        let arn = table
            .table()
            .and_then(|t| t.latest_stream_arn())
            .expect("the table has a stream")
            .to_owned();
        let described = streams("DescribeStream", json!({"StreamArn": arn})).await;
        let shard = described["StreamDescription"]["Shards"][0]["ShardId"]
            .as_str()
            .expect("a shard")
            .to_owned();
        let iterator = streams(
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await["ShardIterator"]
            .as_str()
            .map(str::to_owned);
        Self { arn, iterator }
    }

    /// The next records (at most `limit`), as the event source would
    /// deliver them: empty when the stream has nothing new.
    pub async fn next(&mut self, limit: usize) -> aws_lambda_events::dynamodb::Event {
        let mut records = Vec::new();
        if let Some(iterator) = self.iterator.take() {
            let out = streams(
                "GetRecords",
                json!({"ShardIterator": iterator, "Limit": limit}),
            )
            .await;
            self.iterator = out["NextShardIterator"].as_str().map(str::to_owned);
            for mut record in out["Records"].as_array().cloned().unwrap_or_default() {
                record["eventSourceARN"] = json!(self.arn);
                records.push(record);
            }
        }
        serde_json::from_value(json!({"Records": records}))
            .expect("stream records Lambda's event type reads")
    }

    /// Everything the stream holds from here on, in batches of `limit`.
    pub async fn batches(&mut self, limit: usize) -> Vec<aws_lambda_events::dynamodb::Event> {
        let mut batches = Vec::new();
        loop {
            let batch = self.next(limit).await;
            if batch.records.is_empty() {
                return batches;
            }
            batches.push(batch);
        }
    }
}
