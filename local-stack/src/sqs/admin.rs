//! Queue-level operations: CreateQueue, ListQueues, GetQueueAttributes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, json};

use super::SqsService;
use super::ops::{Reply, queue};
use super::queue::{DEFAULT_MAX_MESSAGE_SIZE, Queue, QueueConfig};
use super::wire::{self, Request, ok};
use crate::edge::AwsError;

pub fn list_queues(service: &SqsService, req: &Request) -> Reply {
    let prefix = req.opt_str("QueueNamePrefix")?.unwrap_or_default();
    let max = req.opt_int("MaxResults", 1, 1000)?.unwrap_or(1000);
    let urls: Vec<String> = service
        .read()
        .values()
        .filter(|q| q.config.name.starts_with(prefix))
        .take(usize::try_from(max).unwrap_or(1000))
        .map(|q| q.config.url.clone())
        .collect();
    Ok(ok(Some(if urls.is_empty() {
        json!({})
    } else {
        json!({ "QueueUrls": urls })
    })))
}

/// Idempotent for an existing name when the given attributes match, as SQS is.
pub fn create_queue(service: &SqsService, req: &Request) -> Reply {
    let name = req.str("QueueName")?;
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    let valid = name.len() <= 80
        && !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(wire::invalid_value(
            "QueueName",
            name,
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length.",
        ));
    }
    let mut config = QueueConfig {
        name: name.to_string(),
        url: format!("{}/{name}", service.url_prefix),
        arn: format!("{}:{name}", service.arn_prefix),
        visibility_timeout: Duration::from_secs(30),
        retention: Duration::from_secs(345_600),
        delay: Duration::ZERO,
        max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        receive_wait: Duration::ZERO,
        fifo: name.ends_with(".fifo"),
    };
    let given = req.str_map("Attributes")?;
    for (key, value) in &given {
        apply_attribute(&mut config, key, value)?;
    }
    if config.fifo != name.ends_with(".fifo") {
        return Err(wire::invalid_value(
            "QueueName",
            name,
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or \
             underscores, must end with .fifo suffix.",
        ));
    }
    let mut queues = service.queues.write().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = queues.get(name) {
        // Only attributes the request names are compared: SQS's rule.
        let mut merged = existing.config.clone();
        for (key, value) in &given {
            apply_attribute(&mut merged, key, value)?;
        }
        if merged != existing.config {
            return Err(wire::sqs_error(
                400,
                "QueueNameExists",
                "QueueAlreadyExists",
                format!("A queue named {name} already exists with different attributes."),
            ));
        }
        return Ok(ok(Some(json!({ "QueueUrl": existing.config.url }))));
    }
    let url = config.url.clone();
    queues.insert(name.to_string(), Arc::new(Queue::new(config)));
    Ok(ok(Some(json!({ "QueueUrl": url }))))
}

/// Applies one CreateQueue attribute; ones SQS knows but the emulator does not model
/// (policies, encryption, FIFO tuning) are accepted and ignored.
fn apply_attribute(config: &mut QueueConfig, key: &str, value: &str) -> Result<(), AwsError> {
    let field = format!("Attributes.{key}");
    let ranged = |min: u64, max: u64| -> Result<u64, AwsError> {
        let reason = format!("Must be an integer between {min} and {max}.");
        match value.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(attribute_value(&field, value, &reason)),
        }
    };
    match key {
        "VisibilityTimeout" => config.visibility_timeout = Duration::from_secs(ranged(0, 43_200)?),
        "MessageRetentionPeriod" => config.retention = Duration::from_secs(ranged(60, 1_209_600)?),
        "DelaySeconds" => config.delay = Duration::from_secs(ranged(0, 900)?),
        "MaximumMessageSize" => {
            config.max_message_size =
                usize::try_from(ranged(1024, 262_144)?).unwrap_or(DEFAULT_MAX_MESSAGE_SIZE);
        }
        "ReceiveMessageWaitTimeSeconds" => {
            config.receive_wait = Duration::from_secs(ranged(0, 20)?)
        }
        "FifoQueue" => match value {
            "true" => config.fifo = true,
            "false" => config.fifo = false,
            _ => return Err(attribute_value(&field, value, "Must be true or false.")),
        },
        "Policy"
        | "RedrivePolicy"
        | "RedriveAllowPolicy"
        | "KmsMasterKeyId"
        | "KmsDataKeyReusePeriodSeconds"
        | "SqsManagedSseEnabled"
        | "ContentBasedDeduplication"
        | "DeduplicationScope"
        | "FifoThroughputLimit" => {}
        _ => return Err(unknown_attribute(key)),
    }
    Ok(())
}

fn attribute_value(field: &str, value: &str, reason: &str) -> AwsError {
    wire::sqs_error(
        400,
        "InvalidAttributeValue",
        "InvalidAttributeValue",
        format!("Invalid value {value:?} for the parameter {field}. Reason: {reason}"),
    )
}

fn unknown_attribute(name: &str) -> AwsError {
    wire::sqs_error(
        400,
        "InvalidAttributeName",
        "InvalidAttributeName",
        format!("Unknown Attribute {name}."),
    )
}

const QUEUE_ATTRIBUTES: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "QueueArn",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "FifoQueue",
];

/// Real attribute names the emulator has no value for; SQS omits unset ones likewise.
const UNSET_ATTRIBUTES: &[&str] = &[
    "Policy",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

pub fn get_queue_attributes(service: &SqsService, req: &Request) -> Reply {
    let q = queue(service, req)?;
    let names = req.str_list("AttributeNames")?;
    if let Some(bad) = names.iter().find(|n| {
        *n != "All"
            && !QUEUE_ATTRIBUTES.contains(&n.as_str())
            && !UNSET_ATTRIBUTES.contains(&n.as_str())
    }) {
        return Err(unknown_attribute(bad));
    }
    let all = names.iter().any(|n| n == "All");
    let depth = q.depth();
    let c = &q.config;
    let mut attributes = Map::new();
    for &name in QUEUE_ATTRIBUTES {
        if !all && !names.iter().any(|n| n == name) {
            continue;
        }
        let value = match name {
            "ApproximateNumberOfMessages" => depth.visible.to_string(),
            "ApproximateNumberOfMessagesNotVisible" => depth.in_flight.to_string(),
            "ApproximateNumberOfMessagesDelayed" => depth.delayed.to_string(),
            "QueueArn" => c.arn.clone(),
            "VisibilityTimeout" => c.visibility_timeout.as_secs().to_string(),
            "MessageRetentionPeriod" => c.retention.as_secs().to_string(),
            "CreatedTimestamp" | "LastModifiedTimestamp" => q.created_secs.to_string(),
            "DelaySeconds" => c.delay.as_secs().to_string(),
            "MaximumMessageSize" => c.max_message_size.to_string(),
            "ReceiveMessageWaitTimeSeconds" => c.receive_wait.as_secs().to_string(),
            // Only FIFO queues have the attribute.
            "FifoQueue" if c.fifo => "true".to_string(),
            _ => continue,
        };
        attributes.insert(name.into(), value.into());
    }
    Ok(ok(Some(if attributes.is_empty() {
        json!({})
    } else {
        json!({ "Attributes": attributes })
    })))
}
