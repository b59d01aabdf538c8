//! The AWS requests each function makes, recorded for the least-privilege
//! test (tests/least_privilege.rs): when `AWS_CALL_LOG` names a file, every
//! request of a function's clients is appended to it as JSON lines, one per
//! IAM authorisation, with the IAM action, the resource and, for DynamoDB,
//! the partition keys (`dynamodb:LeadingKeys`). Unset, nothing is recorded
//! and nothing is rebuilt (see [`crate::AppState::serving`]).

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use aws_sdk_s3::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::operation::{
    delete_object::DeleteObjectInput, delete_objects::DeleteObjectsInput,
    get_object::GetObjectInput, head_object::HeadObjectInput, list_objects::ListObjectsInput,
    list_objects_v2::ListObjectsV2Input, put_object::PutObjectInput,
};
use aws_smithy_runtime_api::client::interceptors::context::Input;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::keys;

/// The file `AWS_CALL_LOG` names, opened once per process for appending;
/// `None` when the variable is unset or empty.
pub fn file() -> Option<Arc<File>> {
    static FILE: OnceLock<Option<Arc<File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os("AWS_CALL_LOG").filter(|p| !p.is_empty())?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("AWS_CALL_LOG {}: {e}", path.to_string_lossy()));
        Some(Arc::new(file))
    })
    .clone()
}

/// One authorisation IAM makes for a request: one line of the log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Call {
    pub function: &'static str,
    pub service: &'static str,
    /// The IAM action, e.g. `dynamodb:PutItem`.
    pub action: String,
    pub resource: Resource,
    /// The partition key values the request touches (DynamoDB only; empty
    /// for a Scan); absent when they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leading_keys: Option<Vec<String>>,
}

/// What a call names, as the code named it, and the environment variable
/// (`TABLE_NAME`, `EVENTS_QUEUE_URL`, `CLEANUP_QUEUE_URL`, `LOGO_BUCKET`)
/// whose value it is: in AWS that variable names the template's resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A listing's prefix (`s3:prefix`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// An EventBridge bus's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_bus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured_as: Option<&'static str>,
}

/// The names a function was configured with, to tell which of them a call
/// names.
#[derive(Debug)]
struct Configured {
    table: String,
    events_queue_url: Option<String>,
    cleanup_queue_url: Option<String>,
    logo_bucket: Option<String>,
    /// The publisher's (`EVENT_BUS_NAME`, `PUBLISH_FAILURES_QUEUE_URL`).
    event_bus: Option<String>,
    publish_failures_queue_url: Option<String>,
}

impl Configured {
    fn label(&self, resource: &mut Resource) {
        let queue_name = |url: &Option<String>| {
            url.as_deref()
                .and_then(|u| u.rsplit('/').next())
                .map(str::to_owned)
        };
        resource.configured_as = if resource.table.as_deref() == Some(self.table.as_str()) {
            Some("TABLE_NAME")
        } else if resource.bucket.is_some() && resource.bucket == self.logo_bucket {
            Some("LOGO_BUCKET")
        } else if resource.queue_url.is_some() && resource.queue_url == self.events_queue_url
            || resource.queue_name.is_some()
                && resource.queue_name == queue_name(&self.events_queue_url)
        {
            Some("EVENTS_QUEUE_URL")
        } else if resource.queue_url.is_some() && resource.queue_url == self.cleanup_queue_url
            || resource.queue_name.is_some()
                && resource.queue_name == queue_name(&self.cleanup_queue_url)
        {
            Some("CLEANUP_QUEUE_URL")
        } else if resource.queue_url.is_some()
            && resource.queue_url == self.publish_failures_queue_url
        {
            Some("PUBLISH_FAILURES_QUEUE_URL")
        } else if resource.event_bus.is_some() && resource.event_bus == self.event_bus {
            Some("EVENT_BUS_NAME")
        } else {
            None
        };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Sqs,
    S3,
    Events,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::DynamoDb => "dynamodb",
            Service::Sqs => "sqs",
            Service::S3 => "s3",
            Service::Events => "events",
        }
    }
}

/// The interceptor on one client of a function: it appends the calls of
/// every request the client makes (once per request, retries aside, and
/// for presigned requests too: presigning runs the interceptors up to the
/// point of sending).
#[derive(Clone, Debug)]
pub struct Recorder {
    function: &'static str,
    service: Service,
    configured: Arc<Configured>,
    file: Arc<File>,
}

impl Recorder {
    /// Recorders for a function's clients, writing to `file`.
    pub fn new(file: Arc<File>, function: &'static str, config: &Config) -> Self {
        Self {
            function,
            service: Service::DynamoDb,
            configured: Arc::new(Configured {
                table: config.table.clone(),
                events_queue_url: config.events_queue_url.clone(),
                cleanup_queue_url: config.cleanup_queue_url.clone(),
                logo_bucket: config.logo_bucket.clone(),
                event_bus: None,
                publish_failures_queue_url: None,
            }),
            file,
        }
    }

    /// Recorders for the publisher's clients (it has no table or queues of
    /// the others): its bus and its failure queue.
    pub fn publisher(file: Arc<File>, event_bus: &str, failures_queue_url: Option<&str>) -> Self {
        Self {
            function: "publisher",
            service: Service::Events,
            configured: Arc::new(Configured {
                table: String::new(),
                events_queue_url: None,
                cleanup_queue_url: None,
                logo_bucket: None,
                event_bus: Some(event_bus.to_owned()),
                publish_failures_queue_url: failures_queue_url.map(str::to_owned),
            }),
            file,
        }
    }

    /// The recorder for one service's client.
    pub fn on(&self, service: Service) -> Self {
        Self {
            service,
            ..self.clone()
        }
    }

    fn write(&self, calls: Vec<(String, Resource, Option<Vec<String>>)>) -> Result<(), BoxError> {
        for (action, mut resource, leading_keys) in calls {
            self.configured.label(&mut resource);
            let call = Call {
                function: self.function,
                service: self.service.name(),
                action,
                resource,
                leading_keys,
            };
            let mut line = serde_json::to_vec(&call)?;
            line.push(b'\n');
            // One write per line: the file is opened for appending, so
            // lines of processes writing at once do not interleave.
            let written = (&*self.file).write(&line)?;
            if written != line.len() {
                return Err(
                    format!("AWS_CALL_LOG: wrote {written} of {} bytes", line.len()).into(),
                );
            }
        }
        Ok(())
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    /// S3: the bucket and key are read from the operation's input (they
    /// are not in the serialized request before the endpoint is resolved).
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.service != Service::S3 {
            return Ok(());
        }
        let operation = cfg.load::<Metadata>().map_or("Unknown", |m| m.name());
        self.write(s3_calls(operation, context.input()))
    }

    /// DynamoDB and SQS: the operation from `x-amz-target`, the rest from
    /// the JSON body.
    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.service == Service::S3 {
            return Ok(());
        }
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target);
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let calls = match self.service {
            Service::DynamoDb => dynamodb_calls(operation, &body),
            Service::Events => events_calls(operation, &body),
            _ => sqs_calls(operation, &body),
        };
        self.write(calls)
    }
}

/// A DynamoDB attribute value as the string IAM compares (`S`, `N`, `B`).
fn key_value(value: &Value) -> Option<String> {
    ["S", "N", "B"]
        .iter()
        .find_map(|kind| value.get(kind).and_then(Value::as_str))
        .map(str::to_owned)
}

fn table_resource(table: &Value, index: Option<&Value>) -> Resource {
    Resource {
        table: table.as_str().map(str::to_owned),
        index: index.and_then(Value::as_str).map(str::to_owned),
        ..Resource::default()
    }
}

/// The partition key of a key or item of the table.
fn partition_key(item: &Value) -> Option<String> {
    item.get(keys::PK).and_then(key_value)
}

/// The hash key value a Query's key condition fixes: `PK = :v` on the
/// table, `GSI1PK = :v` on GSI1 and so on (names may be `#placeholders`).
fn query_leading_key(body: &Value) -> Option<String> {
    let hash = match body.get("IndexName").and_then(Value::as_str) {
        None => keys::PK,
        Some(keys::GSI1) => keys::GSI1PK,
        Some(keys::GSI2) => keys::GSI2PK,
        Some(keys::EVENT_NAME_INDEX) => keys::EVENT_NAME_PK,
        Some(_) => return None,
    };
    let expression = body.get("KeyConditionExpression")?.as_str()?;
    let name = |token: &str| -> String {
        body.get("ExpressionAttributeNames")
            .and_then(|names| names.get(token))
            .and_then(Value::as_str)
            .unwrap_or(token)
            .to_owned()
    };
    let tokens: Vec<&str> = expression
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|t| !t.is_empty())
        .collect();
    let placeholder = tokens.windows(3).find_map(|w| match w {
        [left, "=", right] if name(left) == hash && right.starts_with(':') => Some(*right),
        [left, "=", right] if name(right) == hash && left.starts_with(':') => Some(*left),
        _ => None,
    })?;
    key_value(body.get("ExpressionAttributeValues")?.get(placeholder)?)
}

type Calls = Vec<(String, Resource, Option<Vec<String>>)>;

/// What IAM authorises for one DynamoDB request: a transaction item by
/// item (each by its own action), a batch table by table.
pub fn dynamodb_calls(operation: &str, body: &Value) -> Calls {
    let single = |action: &str, leading: Option<Vec<String>>| {
        vec![(
            format!("dynamodb:{action}"),
            table_resource(&body["TableName"], body.get("IndexName")),
            leading,
        )]
    };
    match operation {
        "GetItem" | "DeleteItem" | "UpdateItem" => {
            single(operation, partition_key(&body["Key"]).map(|k| vec![k]))
        }
        "PutItem" => single(operation, partition_key(&body["Item"]).map(|k| vec![k])),
        "Query" => single(operation, query_leading_key(body).map(|k| vec![k])),
        "Scan" => single(operation, Some(Vec::new())),
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.as_object()?.iter().next())
            .map(|(kind, item)| {
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => other,
                };
                let key = if kind == "Put" {
                    &item["Item"]
                } else {
                    &item["Key"]
                };
                (
                    format!("dynamodb:{action}"),
                    table_resource(&item["TableName"], None),
                    partition_key(key).map(|k| vec![k]),
                )
            })
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(table, requests)| {
                let keys: Option<Vec<String>> = if operation == "BatchGetItem" {
                    requests["Keys"]
                        .as_array()
                        .map(|keys| keys.iter().filter_map(partition_key).collect())
                } else {
                    requests.as_array().map(|writes| {
                        writes
                            .iter()
                            .filter_map(|w| {
                                partition_key(&w["PutRequest"]["Item"])
                                    .or_else(|| partition_key(&w["DeleteRequest"]["Key"]))
                            })
                            .collect()
                    })
                };
                (
                    format!("dynamodb:{operation}"),
                    table_resource(&Value::String(table.clone()), None),
                    keys,
                )
            })
            .collect(),
        _ => single(operation, None),
    }
}

/// What IAM authorises for one SQS request: a batch as its single action.
pub fn sqs_calls(operation: &str, body: &Value) -> Calls {
    let action = operation.strip_suffix("Batch").unwrap_or(operation);
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
    vec![(
        format!("sqs:{action}"),
        Resource {
            queue_url: text("QueueUrl"),
            queue_name: text("QueueName")
                .or_else(|| text("QueueUrl").and_then(|u| u.rsplit('/').next().map(str::to_owned))),
            ..Resource::default()
        },
        None,
    )]
}

/// What IAM authorises for one EventBridge request: `PutEvents` once for
/// each bus its entries name.
pub fn events_calls(operation: &str, body: &Value) -> Calls {
    let mut buses: Vec<String> = body
        .get("Entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            e.get("EventBusName")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned()
        })
        .collect();
    buses.sort();
    buses.dedup();
    buses
        .into_iter()
        .map(|bus| {
            let resource = Resource {
                event_bus: Some(bus),
                ..Resource::default()
            };
            (format!("events:{operation}"), resource, None)
        })
        .collect()
}

/// What IAM authorises for one S3 request (a listing is `s3:ListBucket`
/// on the bucket, with the prefix as `s3:prefix`).
fn s3_calls(operation: &str, input: &Input) -> Calls {
    let object = |bucket: Option<&str>, key: Option<&str>| Resource {
        bucket: bucket.map(str::to_owned),
        key: key.map(str::to_owned),
        ..Resource::default()
    };
    let listing = |bucket: Option<&str>, prefix: Option<&str>| Resource {
        bucket: bucket.map(str::to_owned),
        prefix: prefix.map(str::to_owned),
        ..Resource::default()
    };
    let one = |action: &str, resource| vec![(format!("s3:{action}"), resource, None)];
    if let Some(i) = input.downcast_ref::<PutObjectInput>() {
        one("PutObject", object(i.bucket(), i.key()))
    } else if let Some(i) = input.downcast_ref::<GetObjectInput>() {
        one("GetObject", object(i.bucket(), i.key()))
    } else if let Some(i) = input.downcast_ref::<HeadObjectInput>() {
        one("GetObject", object(i.bucket(), i.key()))
    } else if let Some(i) = input.downcast_ref::<DeleteObjectInput>() {
        one("DeleteObject", object(i.bucket(), i.key()))
    } else if let Some(i) = input.downcast_ref::<DeleteObjectsInput>() {
        i.delete()
            .map(|d| d.objects())
            .unwrap_or_default()
            .iter()
            .map(|o| {
                (
                    "s3:DeleteObject".to_owned(),
                    object(i.bucket(), Some(o.key())),
                    None,
                )
            })
            .collect()
    } else if let Some(i) = input.downcast_ref::<ListObjectsV2Input>() {
        one("ListBucket", listing(i.bucket(), i.prefix()))
    } else if let Some(i) = input.downcast_ref::<ListObjectsInput>() {
        one("ListBucket", listing(i.bucket(), i.prefix()))
    } else {
        // Not known here: recorded by name, so the check refuses it.
        one(operation, Resource::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_transaction_is_authorised_item_by_item() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"PK": {"S": "P#1#O#a"}, "SK": {"S": "ORG"}}}},
            {"Update": {"TableName": "t", "Key": {"PK": {"S": "P#1#O#b"}, "SK": {"S": "ORG"}}}},
            {"Delete": {"TableName": "t", "Key": {"PK": {"S": "P#1#O#c"}, "SK": {"S": "X"}}}},
            {"ConditionCheck": {"TableName": "u", "Key": {"PK": {"S": "P#1"}, "SK": {"S": "Y"}}}}
        ]});
        let calls = dynamodb_calls("TransactWriteItems", &body);
        let seen: Vec<(&str, Option<&str>, Vec<String>)> = calls
            .iter()
            .map(|(a, r, k)| (a.as_str(), r.table.as_deref(), k.clone().unwrap()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("dynamodb:PutItem", Some("t"), vec!["P#1#O#a".to_owned()]),
                ("dynamodb:UpdateItem", Some("t"), vec!["P#1#O#b".to_owned()]),
                ("dynamodb:DeleteItem", Some("t"), vec!["P#1#O#c".to_owned()]),
                (
                    "dynamodb:ConditionCheckItem",
                    Some("u"),
                    vec!["P#1".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn a_batch_is_authorised_per_table_with_all_its_partitions() {
        let body = json!({"RequestItems": {"t": [
            {"DeleteRequest": {"Key": {"PK": {"S": "a"}, "SK": {"S": "1"}}}},
            {"PutRequest": {"Item": {"PK": {"S": "b"}, "SK": {"S": "2"}}}}
        ]}});
        let calls = dynamodb_calls("BatchWriteItem", &body);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "dynamodb:BatchWriteItem");
        assert_eq!(calls[0].2, Some(vec!["a".to_owned(), "b".to_owned()]));
        let body = json!({"RequestItems": {"t": {"Keys": [
            {"PK": {"S": "c"}, "SK": {"S": "1"}}, {"PK": {"S": "d"}, "SK": {"S": "1"}}
        ]}}});
        let calls = dynamodb_calls("BatchGetItem", &body);
        assert_eq!(calls[0].2, Some(vec!["c".to_owned(), "d".to_owned()]));
    }

    #[test]
    fn a_query_leads_with_the_hash_key_of_what_it_reads() {
        let on_index = json!({"TableName": "t", "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK > :from",
            "ExpressionAttributeValues": {":pk": {"S": "P#1#ORGS"}, ":from": {"S": "x"}}});
        let calls = dynamodb_calls("Query", &on_index);
        assert_eq!(calls[0].1.index.as_deref(), Some("GSI1"));
        assert_eq!(calls[0].2, Some(vec!["P#1#ORGS".to_owned()]));
        let named = json!({"TableName": "t",
            "KeyConditionExpression": "begins_with(SK, :p) AND #k = :v",
            "ExpressionAttributeNames": {"#k": "PK"},
            "ExpressionAttributeValues": {":v": {"S": "SCHEDULER"}, ":p": {"S": "A"}}});
        assert_eq!(
            dynamodb_calls("Query", &named)[0].2,
            Some(vec!["SCHEDULER".to_owned()])
        );
        // GSI1PK's condition does not fix the table's PK.
        let wrong = json!({"TableName": "t", "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "x"}}});
        assert_eq!(dynamodb_calls("Query", &wrong)[0].2, None);
    }

    #[test]
    fn an_sqs_batch_is_its_single_action() {
        let calls = sqs_calls(
            "SendMessageBatch",
            &json!({"QueueUrl": "http://h/123/events-1", "Entries": []}),
        );
        assert_eq!(calls[0].0, "sqs:SendMessage");
        assert_eq!(calls[0].1.queue_name.as_deref(), Some("events-1"));
    }

    #[test]
    fn a_call_is_labelled_with_the_variable_that_names_its_resource() {
        let configured = Configured {
            table: "t".into(),
            events_queue_url: Some("http://h/1/events".into()),
            cleanup_queue_url: Some("http://h/1/cleanup".into()),
            logo_bucket: Some("b".into()),
            event_bus: Some("bus".into()),
            publish_failures_queue_url: Some("http://h/1/failures".into()),
        };
        let label = |resource: Resource| {
            let mut resource = resource;
            configured.label(&mut resource);
            resource.configured_as
        };
        let queue = |url: &str| Resource {
            queue_url: Some(url.into()),
            ..Resource::default()
        };
        assert_eq!(label(table_resource(&json!("t"), None)), Some("TABLE_NAME"));
        assert_eq!(label(table_resource(&json!("other"), None)), None);
        assert_eq!(label(queue("http://h/1/events")), Some("EVENTS_QUEUE_URL"));
        assert_eq!(
            label(queue("http://h/1/cleanup")),
            Some("CLEANUP_QUEUE_URL")
        );
        let dlq = Resource {
            queue_name: Some("events-dlq".into()),
            ..Resource::default()
        };
        assert_eq!(label(dlq), None);
        let bucket = Resource {
            bucket: Some("b".into()),
            ..Resource::default()
        };
        assert_eq!(label(bucket), Some("LOGO_BUCKET"));
        assert_eq!(
            label(queue("http://h/1/failures")),
            Some("PUBLISH_FAILURES_QUEUE_URL")
        );
        let bus = |name: &str| Resource {
            event_bus: Some(name.into()),
            ..Resource::default()
        };
        assert_eq!(label(bus("bus")), Some("EVENT_BUS_NAME"));
        assert_eq!(label(bus("default")), None);
    }

    /// Presigning sends nothing, yet the URL it signs is authorised as the
    /// role: the interceptors run for it, so it is recorded.
    #[tokio::test]
    async fn a_presigned_get_is_recorded() {
        let path = std::env::temp_dir().join(format!("call-log-{}.jsonl", uuid::Uuid::now_v7()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let config = Config {
            table: "t".into(),
            events_queue_url: None,
            logo_bucket: Some("logos".into()),
            logo_base_url: None,
            cleanup_queue_url: None,
            cleanup_services: None,
            dns_resolver: None,
            dev_sessions: false,
            cursor_key: crate::cursor::CursorKey::random().unwrap(),
        };
        let recorder = Recorder::new(Arc::new(file), "tenant", &config);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new(
                    "AKID", "secret", None, None, "test",
                ))
                .interceptor(recorder.on(Service::S3))
                .build(),
        );
        let presigned = s3
            .get_object()
            .bucket("logos")
            .key("logos/p/o/1.png")
            .presigned(
                aws_sdk_s3::presigning::PresigningConfig::expires_in(
                    std::time::Duration::from_secs(60),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        assert!(presigned.uri().contains("X-Amz-Signature"));
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            line,
            json!({"function": "tenant", "service": "s3", "action": "s3:GetObject",
                "resource": {"bucket": "logos", "key": "logos/p/o/1.png",
                    "configured_as": "LOGO_BUCKET"}})
        );
    }
}
