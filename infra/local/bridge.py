"""Local stand-in for Lambda's SQS event source mapping and the scheduler's
EventBridge rule: moto cannot run Lambda without Docker, so this receives
from the events queue, invokes `processor` through cargo lambda's Lambda
API, and deletes every message not reported in `batchItemFailures` (the
others return after their visibility timeout, and reach the dead-letter
queue after maxReceiveCount). It feeds the cleanup queue to `cleanup` the
same way, one message at a time, and ticks `scheduler` every --tick
seconds when that function exists."""

import argparse
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoke", required=True, help="cargo lambda watch base URL")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--cleanup-queue-url")
    parser.add_argument("--tick", type=int, default=30, help="seconds between scheduler ticks")
    args = parser.parse_args()
    region = os.environ.get("AWS_REGION", "us-east-1")
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=region)
    arn = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    feeds = [(args.queue_url, arn(args.queue_url), "processor", 10)]
    if args.cleanup_queue_url:
        feeds.append((args.cleanup_queue_url, arn(args.cleanup_queue_url), "cleanup", 1))
    has_scheduler = os.path.isfile("functions/scheduler/Cargo.toml")
    next_tick = time.time()
    while True:
        if has_scheduler and time.time() >= next_tick:
            next_tick = time.time() + args.tick
            try:
                invoke(args.invoke, "scheduler", {"source": "local.bridge", "detail-type": "Scheduled Event", "detail": {}})
            except (urllib.error.URLError, OSError) as err:
                print(f"scheduler tick failed: {err}", flush=True)
            if args.cleanup_queue_url:
                # The cleanup function's sweep of due purges (its own
                # EventBridge schedule in the template).
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
