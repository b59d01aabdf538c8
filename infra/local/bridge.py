"""Local stand-in for Lambda's SQS event source mapping and the scheduler's
EventBridge rule: moto cannot run Lambda without Docker, so this receives
from the events queue, invokes `processor` through cargo lambda's Lambda
API, and deletes every message not reported in `batchItemFailures` (the
others return after their visibility timeout, and reach the dead-letter
queue after maxReceiveCount). It feeds the cleanup queue to `cleanup` the
same way, one message at a time, and ticks `scheduler` every --tick
seconds when that function exists. With --table it is also the table
stream's event source for `publisher` (StreamFeed)."""

import argparse
import base64
import datetime
import json
import os
import time
import urllib.error
import urllib.request

import boto3


def invoke(base, function, payload):
    request = urllib.request.Request(
        f"{base}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"{}")


def sqs_event(messages, queue_arn, region):
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def stream_json(value):
    # boto3 parses what Lambda's event source passes on as JSON.
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"{type(value)} in a stream record")


class StreamFeed:
    """Lambda's DynamoDB stream event source for `publisher`, as the
    template configures it: the table's stream from its start (moto keeps
    one shard a table), only new timeline events (its FilterCriteria),
    batches of up to 100; a batch whose response names a failed record is
    delivered again from that record, up to 10 retries
    (MaximumRetryAttempts), then described on the failure queue (its
    OnFailure destination) and passed."""

    BATCH = 100
    RETRIES = 10

    def __init__(self, base, table, failures_queue_url, region):
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        self.base = base
        self.failures_queue_url = failures_queue_url
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region)
        self.streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=region)
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
        self.arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self.pending = []
        self.retries = 0

    @staticmethod
    def wanted(record):
        sk = record.get("dynamodb", {}).get("Keys", {}).get("SK", {}).get("S", "")
        return record.get("eventName") == "INSERT" and sk.startswith("EVT#")

    def poll(self):
        if not self.pending:
            out = self.streams.get_records(ShardIterator=self.iterator, Limit=1000)
            self.iterator = out.get("NextShardIterator") or self.iterator
            for record in out.get("Records", []):
                if self.wanted(record):
                    record = json.loads(json.dumps(record, default=stream_json))
                    record["eventSourceARN"] = self.arn
                    self.pending.append(record)
        while self.pending:
            batch = self.pending[: self.BATCH]
            try:
                result = invoke(self.base, "publisher", {"Records": batch})
            except (urllib.error.URLError, OSError) as err:
                print(f"publisher invocation failed, records stay: {err}", flush=True)
                return
            failures = [f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])]
            numbers = [r["dynamodb"].get("SequenceNumber") for r in batch]
            failed_at = min((numbers.index(f) for f in failures if f in numbers), default=None)
            if failed_at is None:
                self.pending = self.pending[len(batch):]
                self.retries = 0
                print(f"publisher: published {len(batch)} records", flush=True)
                continue
            self.pending = self.pending[failed_at:]
            self.retries += 1
            if self.retries <= self.RETRIES:
                print(f"publisher: retrying from record {numbers[failed_at]}", flush=True)
                return
            given_up = self.pending[: self.BATCH]
            self.pending = self.pending[self.BATCH:]
            self.retries = 0
            if self.failures_queue_url:
                self.sqs.send_message(
                    QueueUrl=self.failures_queue_url,
                    MessageBody=json.dumps({
                        "condition": "RetryAttemptsExhausted",
                        "DDBStreamBatchInfo": {
                            "streamArn": self.arn,
                            "startSequenceNumber": given_up[0]["dynamodb"].get("SequenceNumber"),
                            "endSequenceNumber": given_up[-1]["dynamodb"].get("SequenceNumber"),
                            "batchSize": len(given_up),
                        },
                    }),
                )
            print(f"publisher: gave up on {len(given_up)} records after {self.RETRIES} retries", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoke", required=True, help="cargo lambda watch base URL")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--cleanup-queue-url")
    parser.add_argument("--tick", type=int, default=30, help="seconds between scheduler ticks")
    parser.add_argument("--table", help="feed this table's stream to publisher")
    parser.add_argument("--publish-failures-queue-url")
    args = parser.parse_args()
    region = os.environ.get("AWS_REGION", "us-east-1")
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=region)
    arn = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    feeds = [(args.queue_url, arn(args.queue_url), "processor", 10)]
    if args.cleanup_queue_url:
        feeds.append((args.cleanup_queue_url, arn(args.cleanup_queue_url), "cleanup", 1))
    has_scheduler = os.path.isfile("functions/scheduler/Cargo.toml")
    stream = None
    if args.table and os.path.isfile("functions/publisher/Cargo.toml"):
        stream = StreamFeed(args.invoke, args.table, args.publish_failures_queue_url, region)
    next_tick = time.time()
    while True:
        if stream is not None:
            try:
                stream.poll()
            except Exception as err:  # the stream feed must not stop the queues'
                print(f"stream feed failed: {err}", flush=True)
        if has_scheduler and time.time() >= next_tick:
            next_tick = time.time() + args.tick
            try:
                invoke(args.invoke, "scheduler", {"source": "local.bridge", "detail-type": "Scheduled Event", "detail": {}})
            except (urllib.error.URLError, OSError) as err:
                print(f"scheduler tick failed: {err}", flush=True)
            if args.cleanup_queue_url:
                # The cleanup function's sweep of due purges and owner-name
                # refreshes (its own EventBridge schedule in the template).
                try:
                    invoke(args.invoke, "cleanup", {"source": "local.bridge", "detail-type": "Scheduled Event", "detail": {}})
                except (urllib.error.URLError, OSError) as err:
                    print(f"cleanup sweep failed: {err}", flush=True)
        for queue_url, queue_arn, function, batch in feeds:
            feed(sqs, args.invoke, queue_url, queue_arn, function, batch, region)


def feed(sqs, base, queue_url, queue_arn, function, batch, region):
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=batch, WaitTimeSeconds=1, AttributeNames=["All"]
    )
    messages = received.get("Messages", [])
    if not messages:
        return
    try:
        result = invoke(base, function, sqs_event(messages, queue_arn, region))
    except (urllib.error.URLError, OSError) as err:
        print(f"{function} invocation failed, messages stay queued: {err}", flush=True)
        return
    failed = {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
        )
    print(f"{function}: done {len(done)}, failed {len(failed)}", flush=True)


if __name__ == "__main__":
    main()
