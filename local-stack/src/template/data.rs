//! `AWS::DynamoDB::Table` -> `TableSpec` and `AWS::SQS::Queue` -> `QueueSpec`, with the
//! checks DynamoDB and SQS make at creation.

use std::collections::BTreeSet;
use std::time::Duration;

use yaml_serde::Value;

use super::intrinsics::{Eval, err};
use super::props::Props;
use crate::error::Result;
use crate::model::{IndexSpec, QueueSpec, TableSpec};

pub(super) fn table(eval: &Eval, id: &str, props: Option<&Value>) -> Result<TableSpec> {
    let p = Props::new(props, format!("Resources.{id}.Properties"))?;
    let mut attributes = Vec::new();
    for (at, item) in p.list("AttributeDefinitions")? {
        let a = Props::new(Some(item), at)?;
        let ty = a.required("AttributeType")?;
        if !matches!(ty.as_str(), "S" | "N" | "B") {
            return Err(err(
                &a.path("AttributeType"),
                format!("AttributeType must be S, N or B, found {ty}"),
            ));
        }
        attributes.push((a.required("AttributeName")?, ty));
    }
    let key_schema = key_schema(&p, "KeySchema")?;
    let mut indexes = Vec::new();
    for (at, item) in p.list("GlobalSecondaryIndexes")? {
        indexes.push(index(&Props::new(Some(item), at)?)?);
    }
    if p.get("LocalSecondaryIndexes").is_some() {
        tracing::warn!(
            table = id,
            "LocalSecondaryIndexes are not modelled by the local stack; ignored"
        );
    }
    check_attributes(&p, &attributes, &key_schema, &indexes)?;
    let billing_mode = p
        .string("BillingMode")?
        .unwrap_or_else(|| "PROVISIONED".into());
    match billing_mode.as_str() {
        "PAY_PER_REQUEST" => {}
        // CloudFormation requires throughput for provisioned tables.
        "PROVISIONED" if p.get("ProvisionedThroughput").is_none() => {
            return Err(err(
                &p.at,
                "BillingMode PROVISIONED (the default) needs ProvisionedThroughput",
            ));
        }
        "PROVISIONED" => {}
        other => {
            return Err(err(
                &p.path("BillingMode"),
                format!("BillingMode must be PROVISIONED or PAY_PER_REQUEST, found {other}"),
            ));
        }
    }
    let ttl = p.child("TimeToLiveSpecification")?;
    let ttl_attribute = match ttl.boolean("Enabled")? {
        Some(true) => Some(ttl.required("AttributeName")?),
        _ => None,
    };
    Ok(TableSpec {
        logical_id: id.to_string(),
        name: eval.resource_ref(id, &p.at)?,
        arn: eval.attribute_text(id, "Arn", &p.at)?,
        attributes,
        key_schema,
        global_secondary_indexes: indexes,
        ttl_attribute,
        billing_mode,
    })
}

/// A key schema: one HASH key, then at most one RANGE key.
fn key_schema(p: &Props, key: &str) -> Result<Vec<(String, String)>> {
    let mut keys = Vec::new();
    for (at, item) in p.list(key)? {
        let k = Props::new(Some(item), at)?;
        keys.push((k.required("AttributeName")?, k.required("KeyType")?));
    }
    let types: Vec<&str> = keys.iter().map(|(_, t)| t.as_str()).collect();
    if !matches!(types.as_slice(), ["HASH"] | ["HASH", "RANGE"]) {
        return Err(err(
            &p.path(key),
            format!("a key schema is a HASH key and an optional RANGE key, found {types:?}"),
        ));
    }
    Ok(keys)
}

fn index(p: &Props) -> Result<IndexSpec> {
    let projection = p.child("Projection")?;
    let projection_type = projection.required("ProjectionType")?;
    if !matches!(projection_type.as_str(), "ALL" | "KEYS_ONLY" | "INCLUDE") {
        return Err(err(
            &projection.path("ProjectionType"),
            format!("ProjectionType must be ALL, KEYS_ONLY or INCLUDE, found {projection_type}"),
        ));
    }
    let mut non_key_attributes = Vec::new();
    for (at, item) in projection.list("NonKeyAttributes")? {
        non_key_attributes.push(super::props::text(item, &at)?);
    }
    Ok(IndexSpec {
        name: p.required("IndexName")?,
        key_schema: key_schema(p, "KeySchema")?,
        projection_type,
        non_key_attributes,
    })
}

/// DynamoDB requires AttributeDefinitions to be exactly the key attributes.
fn check_attributes(
    p: &Props,
    attributes: &[(String, String)],
    key_schema: &[(String, String)],
    indexes: &[IndexSpec],
) -> Result<()> {
    let defined: BTreeSet<&str> = attributes.iter().map(|(n, _)| n.as_str()).collect();
    let keys: BTreeSet<&str> = key_schema
        .iter()
        .chain(indexes.iter().flat_map(|i| &i.key_schema))
        .map(|(n, _)| n.as_str())
        .collect();
    if let Some(missing) = keys.difference(&defined).next() {
        return Err(err(
            &p.path("AttributeDefinitions"),
            format!("key attribute {missing} is not in AttributeDefinitions"),
        ));
    }
    if let Some(extra) = defined.difference(&keys).next() {
        return Err(err(
            &p.path("AttributeDefinitions"),
            format!("attribute {extra} is defined but is no table or index key"),
        ));
    }
    Ok(())
}

pub(super) fn queue(eval: &Eval, id: &str, props: Option<&Value>) -> Result<QueueSpec> {
    let p = Props::new(props, format!("Resources.{id}.Properties"))?;
    let name = eval.attribute_text(id, "QueueName", &p.at)?;
    let fifo = p.boolean("FifoQueue")?.unwrap_or(false);
    // SQS: a FIFO queue's name ends in .fifo, and only a FIFO queue's does.
    if fifo != name.ends_with(".fifo") {
        let why = if fifo {
            "a FIFO queue's name must end in .fifo"
        } else {
            "only a FIFO queue's name may end in .fifo (set FifoQueue: true)"
        };
        return Err(err(&p.at, format!("queue {name}: {why}")));
    }
    let base = name.strip_suffix(".fifo").unwrap_or(&name);
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if base.is_empty() || name.len() > 80 || !base.chars().all(valid) {
        return Err(err(
            &p.at,
            format!("queue name {name:?}: up to 80 letters, digits, - and _ (plus .fifo)"),
        ));
    }
    // SQS defaults and limits.
    let visibility = p.uint("VisibilityTimeout", 0..=43_200)?.unwrap_or(30);
    let retention = p
        .uint("MessageRetentionPeriod", 60..=1_209_600)?
        .unwrap_or(345_600);
    Ok(QueueSpec {
        logical_id: id.to_string(),
        url: eval.attribute_text(id, "QueueUrl", &p.at)?,
        arn: eval.attribute_text(id, "Arn", &p.at)?,
        name,
        visibility_timeout: Duration::from_secs(visibility),
        retention: Duration::from_secs(retention),
        fifo,
    })
}
