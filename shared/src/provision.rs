//! Creates the table, the events and cleanup queues with their dead-letter
//! queues, and the logo bucket. Idempotent: what exists is left as it is. Works against the
//! emulator and real AWS (where SAM normally creates them).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use crate::config::Aws;
use crate::error::Error;
use crate::keys;
use crate::store::{build, storage};

/// A queue and its dead-letter queue, as infra/template.yaml declares them
/// (tests/deployment.rs checks the deployed stack against these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// Seconds a received message stays hidden: at least six times its
    /// consumer's timeout, as Lambda's SQS event source advises.
    pub visibility_timeout: u32,
    /// Deliveries of one message before it moves to the dead-letter queue.
    pub max_receive_count: u32,
}

/// Organization events, consumed by the processor (timeout 10 s).
pub const EVENTS_QUEUE: QueueSettings = QueueSettings {
    visibility_timeout: 60,
    max_receive_count: 5,
};

/// Purge steps, consumed by the cleanup function (timeout 60 s): each
/// message is one bounded step that sends the next, so the receive count
/// counts the failures of one step, never the length of a purge.
pub const CLEANUP_QUEUE: QueueSettings = QueueSettings {
    visibility_timeout: 360,
    max_receive_count: 20,
};

/// How long a dead-letter queue keeps a message: 14 days, SQS's longest.
pub const DEAD_LETTER_RETENTION_SECONDS: u32 = 1_209_600;

#[derive(Clone, Debug)]
pub struct Names {
    pub table: String,
    pub events_queue: String,
    pub cleanup_queue: String,
    pub bucket: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Provisioned {
    pub table: String,
    pub events_queue_url: String,
    pub dead_letter_queue_url: String,
    pub cleanup_queue_url: String,
    pub bucket: String,
}

pub async fn init(aws: &Aws, names: &Names) -> Result<Provisioned, Error> {
    create_table(&aws.dynamodb, &names.table).await?;
    let (events_queue_url, dead_letter_queue_url) =
        create_queues(&aws.sqs, &names.events_queue, EVENTS_QUEUE).await?;
    let (cleanup_queue_url, _) =
        create_queues(&aws.sqs, &names.cleanup_queue, CLEANUP_QUEUE).await?;
    create_bucket(&aws.s3, &names.bucket).await?;
    Ok(Provisioned {
        table: names.table.clone(),
        events_queue_url,
        dead_letter_queue_url,
        cleanup_queue_url,
        bucket: names.bucket.clone(),
    })
}

fn key_element(name: &str, kind: KeyType) -> Result<KeySchemaElement, Error> {
    build(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build(),
    )
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, Error> {
    build(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build(),
    )
}

/// A GSI projecting every attribute, or (`include`) only those named.
fn index(
    name: &str,
    pk: &str,
    sk: &str,
    include: Option<&[&str]>,
) -> Result<GlobalSecondaryIndex, Error> {
    let projection = match include {
        None => Projection::builder().projection_type(ProjectionType::All),
        Some(attributes) => Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(attributes.iter().map(|a| a.to_string()).collect())),
    };
    build(
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key_element(pk, KeyType::Hash)?)
            .key_schema(key_element(sk, KeyType::Range)?)
            .projection(projection.build())
            .build(),
    )
}

/// The table as the template declares it, with its stream (the
/// publisher's outbox: new and old images).
pub async fn create_table(db: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), Error> {
    create_table_streaming(db, table, true).await
}

/// [`create_table`], with its stream only when `stream` (the scale bench
/// writes millions of items nothing reads from a stream).
pub async fn create_table_streaming(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    stream: bool,
) -> Result<(), Error> {
    let stream = build(
        StreamSpecification::builder()
            .stream_enabled(stream)
            .set_stream_view_type(stream.then_some(StreamViewType::NewAndOldImages))
            .build(),
    )?;
    let created = db
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(stream)
        .key_schema(key_element(keys::PK, KeyType::Hash)?)
        .key_schema(key_element(keys::SK, KeyType::Range)?)
        .attribute_definitions(string_attribute(keys::PK)?)
        .attribute_definitions(string_attribute(keys::SK)?)
        .attribute_definitions(string_attribute(keys::GSI1PK)?)
        .attribute_definitions(string_attribute(keys::GSI1SK)?)
        .attribute_definitions(string_attribute(keys::GSI2PK)?)
        .attribute_definitions(string_attribute(keys::GSI2SK)?)
        .global_secondary_indexes(index(
            keys::GSI1,
            keys::GSI1PK,
            keys::GSI1SK,
            Some(keys::GSI1_ATTRIBUTES),
        )?)
        .global_secondary_indexes(index(keys::GSI2, keys::GSI2PK, keys::GSI2SK, None)?)
        .attribute_definitions(string_attribute(keys::EVENT_NAME_PK)?)
        .global_secondary_indexes(index(
            keys::EVENT_NAME_INDEX,
            keys::EVENT_NAME_PK,
            keys::SK,
            None,
        )?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(err) => return Err(storage("CreateTable", err)),
    }
    for _ in 0..120 {
        let described = db
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| storage("DescribeTable", e))?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let ttl = db
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| storage("DescribeTimeToLive", e))?;
    let enabled = ttl
        .time_to_live_description()
        .and_then(|d| d.attribute_name())
        .is_some_and(|name| name == keys::TTL);
    if !enabled {
        db.update_time_to_live()
            .table_name(table)
            .time_to_live_specification(build(
                TimeToLiveSpecification::builder()
                    .attribute_name(keys::TTL)
                    .enabled(true)
                    .build(),
            )?)
            .send()
            .await
            .map_err(|e| storage("UpdateTimeToLive", e))?;
    }
    Ok(())
}

/// A queue's ARN (what a redrive policy or a rule's target names).
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, Error> {
    Ok(sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| storage("GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default())
}

pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    settings: QueueSettings,
) -> Result<(String, String), Error> {
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            DEAD_LETTER_RETENTION_SECONDS.to_string(),
        )
        .send()
        .await
        .map_err(|e| storage("CreateQueue", e))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count})
            .to_string();
    let queue_url = match sqs.get_queue_url().queue_name(name).send().await {
        Ok(found) => found.queue_url.unwrap_or_default(),
        Err(_) => sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                settings.visibility_timeout.to_string(),
            )
            .send()
            .await
            .map_err(|e| storage("CreateQueue", e))?
            .queue_url
            .unwrap_or_default(),
    };
    sqs.set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| storage("SetQueueAttributes", e))?;
    Ok((queue_url, dlq_url))
}

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Error> {
    let region = s3
        .config()
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_default();
    let mut request = s3.create_bucket().bucket(bucket);
    if !region.is_empty() && region != "us-east-1" {
        request = request.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(err) => Err(storage("CreateBucket", err)),
    }
}
