//! The stack as CloudFormation builds it: infra/template.yaml through the
//! SAM transform CloudFormation runs, deployed into the emulator's
//! CloudFormation (placeholder code zips), then read back: every function's
//! environment names resources of that stack, the table has the keys and
//! indexes `shared::keys` uses, the queues, their dead-letter queues and
//! event source mappings are what the consumers expect, and the schedule
//! fires the scheduler.
//!
//! The emulator silently drops some resources and properties (the HTTP API,
//! alarms, the secret, the bucket policy, TTL, point-in-time recovery): those
//! are checked in the transformed template itself, below the deployment.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_cloudformation::types::{Capability, StackStatus};
use aws_sdk_dynamodb::types::{KeyType, ProjectionType, TableDescription};
use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::{transformed_template, CODE_BUCKET};
use serde_json::Value;
use shared::keys;
use shared::provision::{
    QueueSettings, CLEANUP_QUEUE, DEAD_LETTER_RETENTION_SECONDS, EVENTS_QUEUE,
};

/// An empty zip archive: the emulator stores the code, never runs it.
const PLACEHOLDER_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Each function's queue: (queue, its dead-letter queue, consumer, settings,
/// the batch its handler is written for).
const QUEUES: [(&str, &str, &str, QueueSettings, i32); 2] = [
    // The processor groups a batch's events into shared transactions.
    (
        "EventsQueue",
        "EventsDeadLetterQueue",
        "ProcessorFunction",
        EVENTS_QUEUE,
        10,
    ),
    // A purge takes the invocation's whole time: one deletion at a time.
    (
        "CleanupQueue",
        "CleanupDeadLetterQueue",
        "CleanupFunction",
        CLEANUP_QUEUE,
        1,
    ),
];

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

fn of_type<'a>(template: &'a Value, kind: &str) -> BTreeMap<&'a str, &'a Value> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(name, r)| (name.as_str(), r))
        .collect()
}

fn functions(template: &Value) -> BTreeMap<&str, &Value> {
    of_type(template, "AWS::Lambda::Function")
}

/// What the emulator's CloudFormation made: logical id → physical id.
struct Deployed {
    physical: HashMap<String, String>,
}

impl Deployed {
    fn id(&self, logical: &str) -> &str {
        self.physical
            .get(logical)
            .unwrap_or_else(|| panic!("{logical} was not created"))
    }
}

async fn deploy(sdk: &aws_config::SdkConfig, template: &Value) -> Deployed {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    // Already there from an earlier run against the same emulator: fine.
    let _ = s3.create_bucket().bucket(CODE_BUCKET).send().await;
    for name in functions(template).keys() {
        s3.put_object()
            .bucket(CODE_BUCKET)
            .key(format!("{name}.zip"))
            .body(PLACEHOLDER_ZIP.to_vec().into())
            .send()
            .await
            .expect("uploading placeholder code");
    }

    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let stack = format!("organizations-{}", uuid::Uuid::now_v7().simple());
    cloudformation
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .expect("CreateStack");
    let mut status = StackStatus::CreateInProgress;
    for _ in 0..600 {
        let described = cloudformation
            .describe_stacks()
            .stack_name(&stack)
            .send()
            .await
            .expect("DescribeStacks");
        let found = described.stacks().first().expect("the stack");
        status = found.stack_status().cloned().expect("a status");
        if status != StackStatus::CreateInProgress {
            assert_eq!(
                status,
                StackStatus::CreateComplete,
                "{:?}",
                found.stack_status_reason()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        StackStatus::CreateComplete,
        "the stack is still being created"
    );

    let mut physical = HashMap::new();
    let mut pages = cloudformation
        .list_stack_resources()
        .stack_name(&stack)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for resource in page.expect("ListStackResources").stack_resource_summaries() {
            if let (Some(logical), Some(id)) = (
                resource.logical_resource_id(),
                resource.physical_resource_id(),
            ) {
                physical.insert(logical.to_owned(), id.to_owned());
            }
        }
    }
    Deployed { physical }
}

/// A table's keys and indexes, in a form two tables can be compared by.
fn layout(table: &TableDescription) -> BTreeMap<String, (Vec<String>, String, BTreeSet<String>)> {
    let schema = |elements: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        let mut ordered: Vec<_> = elements.iter().collect();
        ordered.sort_by_key(|e| e.key_type() != &KeyType::Hash);
        ordered
            .iter()
            .map(|e| e.attribute_name().to_owned())
            .collect::<Vec<_>>()
    };
    let mut layout = BTreeMap::new();
    layout.insert(
        "table".to_owned(),
        (schema(table.key_schema()), String::new(), BTreeSet::new()),
    );
    for index in table.global_secondary_indexes() {
        let projection = index.projection();
        layout.insert(
            index.index_name().unwrap_or_default().to_owned(),
            (
                schema(index.key_schema()),
                projection
                    .and_then(|p| p.projection_type())
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                projection
                    .map(|p| p.non_key_attributes().iter().cloned().collect())
                    .unwrap_or_default(),
            ),
        );
    }
    layout
}

async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> HashMap<QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetQueueAttributes {url}: {e:?}"))
        .attributes
        .unwrap_or_default()
}

#[tokio::test]
async fn the_transformed_template_deploys_and_wires_every_function() {
    let state = integration_tests::state().await;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let template = transformed_template();
    let stack = deploy(&sdk, &template).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut wrong = Vec::new();

    // Every function: the code's runtime contract and an environment that
    // names this stack's resources.
    let expected_env = [
        ("TABLE_NAME", stack.id("Table")),
        ("EVENTS_QUEUE_URL", stack.id("EventsQueue")),
        ("CLEANUP_QUEUE_URL", stack.id("CleanupQueue")),
        ("LOGO_BUCKET", stack.id("LogoBucket")),
    ];
    let mut timeouts = HashMap::new();
    let functions = functions(&template);
    assert_eq!(functions.len(), 9, "one function per crate in functions/");
    for name in functions.keys() {
        let config = lambda
            .get_function_configuration()
            .function_name(stack.id(name))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: GetFunctionConfiguration: {e:?}"));
        let env = config
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default();
        for (variable, resource) in expected_env {
            if env.get(variable).map(String::as_str) != Some(resource) {
                wrong.push(format!(
                    "{name}: {variable} is {:?}, not {resource}",
                    env.get(variable)
                ));
            }
        }
        if env
            .get(shared::cursor::CURSOR_KEY_ENV)
            .is_none_or(|v| v.is_empty())
        {
            wrong.push(format!(
                "{name}: no {} (the function refuses to start)",
                shared::cursor::CURSOR_KEY_ENV
            ));
        }
        if env.contains_key("DEV_SESSIONS") || env.contains_key("AWS_ENDPOINT_URL") {
            wrong.push(format!("{name}: a local-only variable is set"));
        }
        if config.runtime().map(|r| r.as_str()) != Some("provided.al2023")
            || config.handler() != Some("bootstrap")
        {
            wrong.push(format!("{name}: not a provided.al2023 bootstrap function"));
        }
        let role = stack.id(&format!("{name}Role"));
        if !config
            .role()
            .is_some_and(|arn| arn.ends_with(&format!("/{role}")))
        {
            wrong.push(format!(
                "{name}: its role is {:?}, not {role}",
                config.role()
            ));
        }
        timeouts.insert(*name, config.timeout().unwrap_or(3));
    }

    // The table: the layout the code's keys and indexes assume, the same
    // as the table `orgctl init` / `make dev` create (shared::provision).
    let dynamodb = &state.aws.dynamodb;
    let describe = |table: String| async move {
        dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("DescribeTable")
            .table
            .expect("a table")
    };
    let deployed = describe(stack.id("Table").to_owned()).await;
    let provisioned = describe(state.config.table.clone()).await;
    let all = || ProjectionType::All.as_str().to_owned();
    let expected: BTreeMap<String, (Vec<String>, String, BTreeSet<String>)> = [
        (
            "table",
            vec![keys::PK, keys::SK],
            String::new(),
            BTreeSet::new(),
        ),
        (
            keys::GSI1,
            vec![keys::GSI1PK, keys::GSI1SK],
            ProjectionType::Include.as_str().to_owned(),
            keys::GSI1_ATTRIBUTES
                .iter()
                .map(|a| a.to_string())
                .collect(),
        ),
        (
            keys::GSI2,
            vec![keys::GSI2PK, keys::GSI2SK],
            all(),
            BTreeSet::new(),
        ),
        (
            keys::EVENT_NAME_INDEX,
            vec![keys::EVENT_NAME_PK, keys::SK],
            all(),
            BTreeSet::new(),
        ),
    ]
    .into_iter()
    .map(|(name, key, projection, attributes)| {
        let key = key.into_iter().map(str::to_owned).collect();
        (name.to_owned(), (key, projection, attributes))
    })
    .collect();
    if layout(&deployed) != expected {
        wrong.push(format!(
            "the deployed table's layout: {:?}",
            layout(&deployed)
        ));
    }
    if layout(&provisioned) != expected {
        wrong.push(format!(
            "shared::provision's table layout: {:?}",
            layout(&provisioned)
        ));
    }
    if deployed
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|m| m.as_str())
        != Some("PAY_PER_REQUEST")
    {
        wrong.push("the table is not on demand".into());
    }

    // Queues: redrive to their own dead-letter queue, hidden long enough
    // for their consumer, and fed to it in the batches it is written for.
    for (queue, dead_letter, consumer, settings, batch) in QUEUES {
        let attributes = queue_attributes(&sqs, stack.id(queue)).await;
        let dlq = queue_attributes(&sqs, stack.id(dead_letter)).await;
        let dlq_arn = dlq
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .unwrap_or_default();
        let redrive: Value = attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default();
        if redrive["deadLetterTargetArn"] != dlq_arn.as_str()
            || redrive["maxReceiveCount"].as_u64() != Some(u64::from(settings.max_receive_count))
        {
            wrong.push(format!(
                "{queue}: redrive policy {redrive}, expected {dead_letter} after {} receives",
                settings.max_receive_count
            ));
        }
        let visibility: i32 = attributes
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let timeout = timeouts.get(consumer).copied().unwrap_or_default();
        if visibility != settings.visibility_timeout as i32 || visibility < 6 * timeout {
            wrong.push(format!(
                "{queue}: visibility timeout {visibility} s (shared::provision says {}, and it must be at least 6 × {consumer}'s {timeout} s)",
                settings.visibility_timeout
            ));
        }
        if dlq
            .get(&QueueAttributeName::MessageRetentionPeriod)
            .map(String::as_str)
            != Some(DEAD_LETTER_RETENTION_SECONDS.to_string().as_str())
        {
            wrong.push(format!(
                "{dead_letter}: keeps messages for less than 14 days"
            ));
        }

        let mappings = lambda
            .list_event_source_mappings()
            .function_name(stack.id(consumer))
            .send()
            .await
            .expect("ListEventSourceMappings");
        let queue_arn = attributes
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .unwrap_or_default();
        match mappings.event_source_mappings() {
            [mapping] => {
                if mapping.event_source_arn() != Some(queue_arn.as_str()) {
                    wrong.push(format!(
                        "{consumer} is fed from {:?}, not {queue}",
                        mapping.event_source_arn()
                    ));
                }
                if mapping.batch_size() != Some(batch) {
                    wrong.push(format!(
                        "{consumer}: batch size {:?}, not {batch}",
                        mapping.batch_size()
                    ));
                }
                let partial = mapping
                    .function_response_types()
                    .iter()
                    .any(|t| t.as_str() == "ReportBatchItemFailures");
                if !partial {
                    // The handlers return SqsBatchResponse: without this,
                    // Lambda ignores it and retries whole batches.
                    wrong.push(format!("{consumer}: no ReportBatchItemFailures"));
                }
            }
            other => wrong.push(format!(
                "{consumer}: {} event source mappings, not 1",
                other.len()
            )),
        }
    }
    // The publisher: fed from the table's stream from its start, only new
    // timeline events, in batches whose failures it reports, a failing
    // batch bisected and retried a bounded number of times, then sent to
    // the failure queue so the shard goes on; it puts on the stack's bus.
    let stream_arn = deployed.latest_stream_arn().unwrap_or_default().to_owned();
    if deployed
        .stream_specification()
        .and_then(|s| s.stream_view_type())
        .map(|v| v.as_str())
        != Some("NEW_AND_OLD_IMAGES")
    {
        wrong.push(format!(
            "the table's stream: {:?}",
            deployed.stream_specification()
        ));
    }
    let failures_arn = queue_attributes(&sqs, stack.id("PublishFailuresQueue"))
        .await
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .unwrap_or_default();
    let mappings = lambda
        .list_event_source_mappings()
        .function_name(stack.id("PublisherFunction"))
        .send()
        .await
        .expect("ListEventSourceMappings");
    match mappings.event_source_mappings() {
        [m] => {
            let on_failure = m
                .destination_config()
                .and_then(|d| d.on_failure())
                .and_then(|f| f.destination());
            let filters: Vec<&str> = m
                .filter_criteria()
                .map(|f| f.filters().iter().filter_map(|x| x.pattern()).collect())
                .unwrap_or_default();
            let checks = [
                (
                    m.event_source_arn() == Some(stream_arn.as_str()),
                    "fed from the table's stream",
                ),
                (
                    m.starting_position().map(|p| p.as_str()) == Some("TRIM_HORIZON"),
                    "read from the stream's start",
                ),
                (
                    m.function_response_types()
                        .iter()
                        .any(|t| t.as_str() == "ReportBatchItemFailures"),
                    "reporting batch item failures",
                ),
                (
                    m.bisect_batch_on_function_error() == Some(true),
                    "bisecting a failing batch",
                ),
                (
                    m.maximum_retry_attempts()
                        .is_some_and(|n| (0..=100).contains(&n)),
                    "retried a bounded number of times",
                ),
                (
                    on_failure == Some(failures_arn.as_str()),
                    "sending what fails to PublishFailuresQueue",
                ),
                (
                    filters
                        .iter()
                        .any(|p| p.contains("INSERT") && p.contains(keys::EVENT_PREFIX)),
                    "filtered to new timeline events",
                ),
            ];
            for (ok, what) in checks {
                if !ok {
                    wrong.push(format!("PublisherFunction is not {what}: {m:?}"));
                }
            }
        }
        other => wrong.push(format!(
            "PublisherFunction: {} event source mappings, not 1",
            other.len()
        )),
    }
    let publisher = lambda
        .get_function_configuration()
        .function_name(stack.id("PublisherFunction"))
        .send()
        .await
        .expect("the publisher");
    let bus = publisher
        .environment()
        .and_then(|e| e.variables())
        .and_then(|v| v.get("EVENT_BUS_NAME"))
        .cloned()
        .unwrap_or_default();
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    if events.describe_event_bus().name(&bus).send().await.is_err() {
        wrong.push(format!(
            "PublisherFunction's EVENT_BUS_NAME {bus:?} is no bus of the stack"
        ));
    }

    for name in functions.keys() {
        if QUEUES.iter().any(|(_, _, consumer, _, _)| consumer == name)
            || *name == "PublisherFunction"
        {
            continue;
        }
        let mappings = lambda
            .list_event_source_mappings()
            .function_name(stack.id(name))
            .send()
            .await
            .expect("ListEventSourceMappings");
        if !mappings.event_source_mappings().is_empty() {
            wrong.push(format!("{name} consumes a queue"));
        }
    }

    // The scheduler's tick and the cleanup function's sweep of due purges,
    // each a rule of its own function (SAM names it `<Function><Event>`).
    // (the optional webhook's rule is made only with a WebhookUrl).
    let rules: BTreeMap<&str, &Value> = of_type(&template, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, r)| r.get("Condition").is_none())
        .collect();
    assert_eq!(
        rules.keys().copied().collect::<Vec<_>>(),
        [
            "CleanupFunctionSweepDuePurges",
            "SchedulerFunctionEveryMinute"
        ],
        "two schedules"
    );
    for name in rules.keys() {
        let function = &name[..name.find("Function").unwrap_or_default() + "Function".len()];
        let rule = events
            .describe_rule()
            .name(stack.id(name))
            .send()
            .await
            .expect("DescribeRule");
        if rule.schedule_expression() != Some("rate(1 minute)")
            || rule.state().map(|s| s.as_str()) != Some("ENABLED")
        {
            wrong.push(format!(
                "{name}: {:?} {:?}",
                rule.schedule_expression(),
                rule.state()
            ));
        }
        let targets = events
            .list_targets_by_rule()
            .rule(stack.id(name))
            .send()
            .await
            .expect("ListTargetsByRule");
        let target = lambda
            .get_function_configuration()
            .function_name(stack.id(function))
            .send()
            .await
            .expect("the schedule's function");
        let arns: Vec<_> = targets.targets().iter().map(|t| t.arn()).collect();
        if arns != [target.function_arn().unwrap_or_default()] {
            wrong.push(format!("{name} targets {arns:?}, not only {function}"));
        }
    }

    assert!(
        wrong.is_empty(),
        "the deployed stack:\n{}",
        wrong.join("\n")
    );
}

// ------------------------------------------------------------------ what the
// emulator drops, checked in the transformed template

/// Every function is watched (an Errors alarm on it), and so is every
/// dead-letter queue; each notifies the optional topic.
#[test]
fn every_function_and_dead_letter_queue_has_its_alarm() {
    let template = transformed_template();
    let alarms = of_type(&template, "AWS::CloudWatch::Alarm");
    let watched = |namespace: &str, metric: &str, dimension: &str| -> BTreeSet<String> {
        alarms
            .values()
            .map(|a| &a["Properties"])
            .filter(|p| p["Namespace"] == namespace && p["MetricName"] == metric)
            .filter(|p| p["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic")
            .flat_map(|p| p["Dimensions"].as_array().cloned().unwrap_or_default())
            .filter(|d| d["Name"] == dimension)
            .filter_map(|d| {
                let value = &d["Value"];
                value["Ref"]
                    .as_str()
                    .or_else(|| value["Fn::GetAtt"][0].as_str())
                    .map(str::to_owned)
            })
            .collect()
    };
    let functions: BTreeSet<String> = functions(&template).keys().map(|f| f.to_string()).collect();
    assert_eq!(watched("AWS/Lambda", "Errors", "FunctionName"), functions);
    let dead_letter_queues: BTreeSet<String> = QUEUES
        .iter()
        .map(|q| q.1)
        // The publisher's failures, and the optional webhook's dead letters.
        .chain(["PublishFailuresQueue", "WebhookDeadLetterQueue"])
        .map(str::to_owned)
        .collect();
    assert_eq!(
        watched("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName"),
        dead_letter_queues
    );
}

/// The table expires what the code marks to expire, can be restored, and
/// is kept when the stack goes; the bucket refuses plain HTTP; the cursor
/// key comes from the stack's own generated secret.
#[test]
fn what_the_emulator_drops_is_in_the_template() {
    let template = transformed_template();
    let all = resources(&template);
    let table = &all["Table"];
    let properties = &table["Properties"];
    assert_eq!(
        properties["TimeToLiveSpecification"]["AttributeName"],
        keys::TTL
    );
    assert_eq!(properties["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(
        properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(
        properties["DeletionProtectionEnabled"]["Ref"],
        "TableDeletionProtection"
    );
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(all["LogoBucket"]["DeletionPolicy"], "Retain");

    let policy = &all["LogoBucketPolicy"]["Properties"];
    assert_eq!(policy["Bucket"]["Ref"], "LogoBucket");
    let statements = policy["PolicyDocument"]["Statement"]
        .as_array()
        .expect("statements");
    assert!(statements.iter().any(|s| s["Effect"] == "Deny"
        && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        && s["Resource"].as_array().is_some_and(|r| r.len() == 2)));

    let secret = &all["CursorSigningKey"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    assert!(secret["Properties"]["GenerateSecretString"]["PasswordLength"].as_u64() >= Some(32));
    for (name, function) in functions(&template) {
        let properties = &function["Properties"];
        assert_eq!(
            properties["Environment"]["Variables"][shared::cursor::CURSOR_KEY_ENV]["Fn::Sub"],
            "{{resolve:secretsmanager:${CursorSigningKey}:SecretString}}",
            "{name}"
        );
        assert_eq!(
            properties["Architectures"][0]["Ref"], "Architecture",
            "{name}"
        );
        let log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            all.get(log_group).map(|g| &g["Type"]),
            Some(&Value::from("AWS::Logs::LogGroup")),
            "{name} logs to a log group of the stack"
        );
        assert_eq!(properties["LoggingConfig"]["LogFormat"], "JSON", "{name}");

        // Logs only: no role carries SAM's AWSLambdaSQSQueueExecutionRole
        // (receive and delete on every queue of the account); the SQS
        // consumers poll their own queue through a role of their own.
        let role_name = properties["Role"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_default();
        let role = &all[role_name]["Properties"];
        let managed: Vec<String> = role["ManagedPolicyArns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|arn| {
                arn.as_str()
                    .or_else(|| arn["Fn::Sub"].as_str())
                    .unwrap_or_default()
                    .replace("${AWS::Partition}", "aws")
            })
            .collect();
        assert_eq!(
            managed,
            ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
            "{name}'s managed policies"
        );
        let polled: Vec<Value> = role["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| {
                p["PolicyDocument"]["Statement"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|s| {
                s["Action"]
                    .as_array()
                    .is_some_and(|a| a.contains(&"sqs:ReceiveMessage".into()))
            })
            .map(|s| s["Resource"]["Fn::GetAtt"][0].clone())
            .collect();
        let consumed: Vec<Value> = QUEUES
            .iter()
            .filter(|(_, _, consumer, _, _)| consumer == &name)
            .map(|(queue, _, _, _, _)| Value::from(*queue))
            .collect();
        assert_eq!(polled, consumed, "{name} receives from its own queue only");
    }
}
