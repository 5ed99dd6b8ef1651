//! `dynamowave dlq replay` and the `dlq-replay` chaos step: every dead letter is delivered
//! again through the AWS APIs, then deleted from the queue. A recipient record
//! (`kind: recipient-delivery-failed`) is posted to its recipient through @connections, with
//! the frame the reference broadcast sends; Lambda's whole-event record (the broadcast job)
//! is handed to the broadcast function again (async Invoke), which reaches the room's
//! current members. A recipient that has gone (410) is deleted too: nobody can receive it.

use aws_sdk_apigatewaymanagement::primitives::Blob as MgmtBlob;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::describe;
use crate::cli::DlqReplayArgs;
use crate::error::HarnessError;

/// `dynamowave dlq replay`: exit 0 when every letter was settled, 1 when some are left.
pub async fn command(args: DlqReplayArgs) -> Result<i32, HarnessError> {
    let (outputs, region, endpoint) = match (&args.stack, &args.endpoint_url) {
        (Some(stack), endpoint) => {
            let d = crate::deployed::resolve(
                stack,
                &args.region,
                endpoint.as_deref(),
                &crate::deployed::Overrides::default(),
            )
            .await?;
            (d.outputs, d.region, endpoint.clone())
        }
        (None, Some(edge)) => {
            let e = crate::attach::endpoints(edge).await?;
            let outputs = crate::attach::outputs(&e);
            let region = e
                .get("region")
                .and_then(Value::as_str)
                .unwrap_or(&args.region)
                .to_string();
            (outputs, region, Some(edge.clone()))
        }
        (None, None) => {
            return Err(HarnessError::Usage(
                "dlq replay: give --stack NAME or --endpoint-url of a running local up".into(),
            ));
        }
    };
    let output = |key: &str| -> Result<String, HarnessError> {
        outputs.get(key).cloned().ok_or_else(|| {
            HarnessError::Usage(format!("dlq replay: the stack has no output {key}"))
        })
    };
    let queue = output("DeadLetterQueueUrl")?;
    let clients = crate::aws::clients(endpoint.as_deref(), &region).await;
    let connections_url = match &endpoint {
        Some(_) => None,
        None => Some(output("ConnectionsURL")?),
    };
    let connections = clients.connections(connections_url.as_deref());
    let broadcast = outputs.get("BroadcastFunctionName").cloned();
    let done = Replay {
        sqs: &clients.sqs,
        queue_url: &queue,
        connections: &connections,
        lambda: &clients.lambda,
        broadcast: broadcast.as_deref(),
    }
    .run()
    .await
    .map_err(HarnessError::Chaos)?;
    println!(
        "{}",
        serde_json::to_string(&done).expect("counts serialise")
    );
    Ok(if done.failed == 0 { 0 } else { 1 })
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// Recipient records delivered again.
    pub redelivered: u64,
    /// Whole-event records handed to the broadcast function again.
    pub reinvoked: u64,
    /// Recipient records whose connection has gone (deleted: nobody can receive them).
    pub gone: u64,
    /// Records that could not be replayed now; they stay in the queue.
    pub failed: u64,
}

pub struct Replay<'a> {
    pub sqs: &'a aws_sdk_sqs::Client,
    pub queue_url: &'a str,
    pub connections: &'a aws_sdk_apigatewaymanagement::Client,
    pub lambda: &'a aws_sdk_lambda::Client,
    /// The broadcast function, for whole-event records (None: they are left in the queue).
    pub broadcast: Option<&'a str>,
}

/// The frame the reference broadcast sends for a job (reference-impl `BroadcastJob::frame`).
fn frame(job: &Value) -> Vec<u8> {
    json!({
        "type": "message",
        "messageId": job.get("messageId"),
        "sender": job.get("sender"),
        "room": job.get("room"),
        "message": job.get("message"),
        "sentAt": job.get("sentAt"),
    })
    .to_string()
    .into_bytes()
}

impl Replay<'_> {
    pub async fn run(&self) -> Result<Replayed, String> {
        let mut done = Replayed::default();
        let mut empty_polls = 0;
        while empty_polls < 2 {
            let got = self
                .sqs
                .receive_message()
                .queue_url(self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(60)
                .send()
                .await
                .map_err(|e| format!("ReceiveMessage {}: {}", self.queue_url, describe(&e)))?;
            if got.messages().is_empty() {
                empty_polls += 1;
                continue;
            }
            for m in got.messages() {
                let body: Value =
                    serde_json::from_str(m.body().unwrap_or_default()).unwrap_or(Value::Null);
                let settled = match body.get("kind").and_then(Value::as_str) {
                    Some(_) => self.redeliver(&body, &mut done).await,
                    None => self.reinvoke(&body, &mut done).await,
                };
                if settled && let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .map_err(|e| format!("DeleteMessage: {}", describe(&e)))?;
                }
            }
        }
        Ok(done)
    }

    async fn redeliver(&self, letter: &Value, done: &mut Replayed) -> bool {
        let (Some(job), Some(recipient)) = (
            letter.get("job"),
            letter.get("recipient").and_then(Value::as_str),
        ) else {
            done.failed += 1;
            return false;
        };
        let sent = self
            .connections
            .post_to_connection()
            .connection_id(recipient)
            .data(MgmtBlob::new(frame(job)))
            .send()
            .await;
        match sent {
            Ok(_) => done.redelivered += 1,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => done.gone += 1,
            Err(_) => {
                done.failed += 1;
                return false;
            }
        }
        true
    }

    async fn reinvoke(&self, job: &Value, done: &mut Replayed) -> bool {
        let Some(function) = self.broadcast.filter(|_| job.get("messageId").is_some()) else {
            done.failed += 1;
            return false;
        };
        let sent = self
            .lambda
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(job.to_string()))
            .send()
            .await;
        match sent {
            Ok(_) => {
                done.reinvoked += 1;
                true
            }
            Err(_) => {
                done.failed += 1;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replayed_frame_is_the_broadcast_frame() {
        let job = json!({"messageId": "m1", "sender": "s=", "room": "r", "message": "hi", "sentAt": 5, "connectionsUrl": "x"});
        let f: Value = serde_json::from_slice(&frame(&job)).unwrap();
        assert_eq!(
            f,
            json!({"type": "message", "messageId": "m1", "sender": "s=", "room": "r", "message": "hi", "sentAt": 5})
        );
    }
}
