//! Message operations: SendMessage, ReceiveMessage (with long polling), DeleteMessage,
//! ChangeMessageVisibility and PurgeQueue.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::queue::{Queue, Received};
use super::wire::{self, Request, ok};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{MessageAttribute, SqsService};
use crate::edge::AwsError;

pub type Reply = Result<Response, AwsError>;

const MAX_VISIBILITY: i64 = 43_200;

pub fn queue(service: &SqsService, req: &Request) -> Result<Arc<Queue>, AwsError> {
    let url = req.str("QueueUrl")?;
    service.queue(url).ok_or_else(|| wire::no_such_queue(url))
}

fn secs(n: i64) -> Duration {
    Duration::from_secs(n.unsigned_abs())
}

pub fn get_queue_url(service: &SqsService, req: &Request) -> Reply {
    let name = req.str("QueueName")?;
    let q = service
        .queue(name)
        .ok_or_else(|| wire::no_such_queue(name))?;
    Ok(ok(Some(json!({ "QueueUrl": q.config.url }))))
}

pub fn send_message(service: &SqsService, req: &Request) -> Reply {
    let q = queue(service, req)?;
    let body = req.str("MessageBody")?.to_string();
    let delay = req.opt_int("DelaySeconds", 0, 900)?.map(secs);
    let attributes = message_attributes(req)?;
    let sent = q.send(body, attributes, delay, &service.sender_id)?;
    let mut out = json!({ "MessageId": sent.message_id, "MD5OfMessageBody": sent.md5_body });
    if let Some(md5) = sent.md5_attributes {
        out["MD5OfMessageAttributes"] = md5.into();
    }
    Ok(ok(Some(out)))
}

/// `MessageAttributes`: name -> `{DataType, StringValue | BinaryValue (base64)}`.
fn message_attributes(req: &Request) -> Result<Vec<(String, MessageAttribute)>, AwsError> {
    let Some(map) = req.object("MessageAttributes")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let field = format!("MessageAttributes.{name}");
        let text = |key: &str| match value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wire::invalid_value(
                &format!("{field}.{key}"),
                other,
                "Must be a string.",
            )),
        };
        if !value.is_object() {
            return Err(wire::invalid_value(
                &field,
                value,
                "Must be an object with a DataType.",
            ));
        }
        let data_type =
            text("DataType")?.ok_or_else(|| wire::missing(&format!("{field}.DataType")))?;
        let binary_value = match text("BinaryValue")? {
            None => None,
            Some(b64) => Some(STANDARD.decode(&b64).map_err(|_| {
                wire::invalid_value(&format!("{field}.BinaryValue"), &b64, "Not valid base64.")
            })?),
        };
        let string_value = text("StringValue")?;
        out.push((
            name.clone(),
            MessageAttribute {
                data_type,
                string_value,
                binary_value,
            },
        ));
    }
    Ok(out)
}

pub async fn receive_message(service: &SqsService, req: &Request) -> Reply {
    let q = queue(service, req)?;
    let max = req.opt_int("MaxNumberOfMessages", 1, 10)?.unwrap_or(1);
    let visibility = req
        .opt_int("VisibilityTimeout", 0, MAX_VISIBILITY)?
        .map_or(q.config.visibility_timeout, secs);
    let wait = req
        .opt_int("WaitTimeSeconds", 0, 20)?
        .map_or(q.config.receive_wait, secs);
    let mut system = req.str_list("AttributeNames")?;
    system.extend(req.str_list("MessageSystemAttributeNames")?);
    let wanted_attributes = req.str_list("MessageAttributeNames")?;

    let messages = receive_waiting(&q, usize::try_from(max).unwrap_or(1), visibility, wait).await;
    if messages.is_empty() {
        return Ok(ok(Some(json!({}))));
    }
    let list: Vec<Value> = messages
        .into_iter()
        .map(|m| message_json(m, &system, &wanted_attributes))
        .collect();
    Ok(ok(Some(json!({ "Messages": list }))))
}

/// Receives, long-polling up to `wait` for a first message: woken by sends (Notify) or
/// when a hidden message's time comes.
async fn receive_waiting(
    q: &Queue,
    max: usize,
    visibility: Duration,
    wait: Duration,
) -> Vec<Received> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before looking, so a send between the look and the wait still wakes us.
        let notified = q.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (messages, next_visible) = q.receive(max, visibility);
        let now = tokio::time::Instant::now();
        if !messages.is_empty() || now >= deadline {
            return messages;
        }
        let wake = next_visible
            .map(tokio::time::Instant::from_std)
            .map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn message_json(m: Received, system: &[String], wanted: &[String]) -> Value {
    let all = system.iter().any(|n| n == "All");
    let want = |name: &str| all || system.iter().any(|n| n == name);
    let mut attributes = Map::new();
    let mut put = |name: &str, value: String| {
        if want(name) {
            attributes.insert(name.into(), value.into());
        }
    };
    put("SenderId", m.sender_id.clone());
    put("SentTimestamp", m.sent_ms.to_string());
    put("ApproximateReceiveCount", m.receive_count.to_string());
    put(
        "ApproximateFirstReceiveTimestamp",
        m.first_receive_ms.to_string(),
    );

    let selected: Vec<&(String, MessageAttribute)> = m
        .attributes
        .iter()
        .filter(|(name, _)| attribute_wanted(name, wanted))
        .collect();
    let mut out = json!({
        "MessageId": m.message_id,
        "ReceiptHandle": m.receipt_handle,
        "MD5OfBody": m.md5_body,
        "Body": m.body,
    });
    if !attributes.is_empty() {
        out["Attributes"] = Value::Object(attributes);
    }
    // The digest covers only the attributes returned, so clients can verify what they got.
    if let Some(md5) = super::md5::of_attributes(selected.iter().map(|(n, a)| (n.as_str(), a))) {
        out["MD5OfMessageAttributes"] = md5.into();
        let map: Map<String, Value> = selected
            .iter()
            .map(|(n, a)| (n.clone(), wire::attribute_json(a)))
            .collect();
        out["MessageAttributes"] = Value::Object(map);
    }
    out
}

/// `All`, `.*`, an exact name, or a `prefix.*`.
fn attribute_wanted(name: &str, wanted: &[String]) -> bool {
    wanted.iter().any(|w| match w.as_str() {
        "All" | ".*" => true,
        w => match w.strip_suffix(".*") {
            Some(prefix) => name
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.')),
            None => w == name,
        },
    })
}

pub fn delete_message(service: &SqsService, req: &Request) -> Reply {
    let q = queue(service, req)?;
    q.delete(req.str("ReceiptHandle")?)?;
    Ok(ok(None))
}

pub fn change_message_visibility(service: &SqsService, req: &Request) -> Reply {
    let q = queue(service, req)?;
    let handle = req.str("ReceiptHandle")?;
    let timeout = req
        .opt_int("VisibilityTimeout", 0, MAX_VISIBILITY)?
        .ok_or_else(|| wire::missing("VisibilityTimeout"))?;
    q.change_visibility(handle, secs(timeout))?;
    Ok(ok(None))
}

pub fn purge_queue(service: &SqsService, req: &Request) -> Reply {
    queue(service, req)?.purge();
    Ok(ok(None))
}
