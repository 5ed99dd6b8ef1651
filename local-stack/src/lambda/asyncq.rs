//! Asynchronous invocation (aws-semantics D3–D5): events wait in a per-function queue;
//! throttled attempts are requeued with exponential backoff until the maximum event age;
//! function errors are retried `MaximumRetryAttempts` times (waits of base × attempt);
//! what still fails goes to the DLQ (original event, RequestID/ErrorCode/ErrorMessage
//! attributes) or the on-failure destination (a destination record); reserved concurrency
//! 0 sends new events straight there.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::LambdaService;
use super::execute::InvokeResult;

#[derive(Debug)]
pub struct AsyncEvent {
    pub request_id: String,
    pub payload: Bytes,
    enqueued: Instant,
    enqueued_at: chrono::DateTime<chrono::Utc>,
}

impl AsyncEvent {
    pub fn new(payload: Bytes) -> Self {
        AsyncEvent {
            request_id: uuid::Uuid::new_v4().to_string(),
            payload,
            enqueued: Instant::now(),
            enqueued_at: chrono::Utc::now(),
        }
    }
}

/// Why an event failed for good.
enum Failure {
    RetriesExhausted(InvokeResult, u32),
    EventAgeExceeded(u32),
    /// Reserved concurrency 0: no attempt is made.
    Throttled,
}

pub async fn dispatch(
    service: Arc<LambdaService>,
    function: String,
    mut rx: mpsc::UnboundedReceiver<AsyncEvent>,
) {
    let mut shutdown = service.shutdown.subscribe();
    loop {
        let event = tokio::select! {
            e = rx.recv() => match e { Some(e) => e, None => return },
            _ = shutdown.changed() => return,
        };
        let service = service.clone();
        let function = function.clone();
        tokio::spawn(async move {
            let mut shutdown = service.shutdown.subscribe();
            tokio::select! {
                _ = run(&service, &function, event) => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

async fn run(service: &LambdaService, name: &str, event: AsyncEvent) {
    let Ok((_, f)) = service.function(name) else {
        return;
    };
    let mut attempts = 0u32;
    let mut throttles = 0u32;
    let failure = loop {
        let spec = f.spec();
        if event.enqueued.elapsed() > spec.max_event_age {
            break Failure::EventAgeExceeded(attempts);
        }
        if service.concurrency.reserved(name) == Some(0) {
            break Failure::Throttled;
        }
        let slot = match service.concurrency.try_acquire(name) {
            Ok(slot) => slot,
            Err(_) => {
                service.telemetry.function(name, |m| {
                    m.throttles += 1;
                    m.async_throttle_requeues += 1;
                });
                service
                    .telemetry
                    .lambda_metric(name, "Throttles", 1.0, "Count");
                let s = service.settings();
                let wait = s
                    .throttle_requeue_base
                    .saturating_mul(1u32 << throttles.min(16))
                    .min(s.throttle_requeue_max);
                throttles += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        attempts += 1;
        // Queue to invocation, growing with retries (AWS/Lambda AsyncEventAge).
        let age = event.enqueued.elapsed().as_secs_f64() * 1000.0;
        service
            .telemetry
            .lambda_metric(name, "AsyncEventAge", age, "Milliseconds");
        // Every attempt keeps the event's request id, as AWS's async retries do.
        let result = service
            .execute(
                name,
                &f,
                event.payload.clone(),
                Some(event.request_id.clone()),
            )
            .await;
        drop(slot);
        service.note_concurrency(name);
        if result.function_error.is_none() {
            return;
        }
        if attempts > spec.max_retry_attempts {
            break Failure::RetriesExhausted(result, attempts);
        }
        service.telemetry.function(name, |m| m.async_retries += 1);
        tokio::time::sleep(service.settings().async_retry_base.saturating_mul(attempts)).await;
    };
    dead_letter(service, name, &event, failure);
}

fn dead_letter(service: &LambdaService, name: &str, event: &AsyncEvent, failure: Failure) {
    let spec = match service.function(name) {
        Ok((_, f)) => f.spec(),
        Err(_) => return,
    };
    let (condition, error_message, attempts, response) = match &failure {
        Failure::RetriesExhausted(r, n) => (
            "RetriesExhausted",
            r.error_message.clone().unwrap_or_default(),
            *n,
            Some(r),
        ),
        Failure::EventAgeExceeded(n) => (
            "EventAgeExceeded",
            "Event age exceeded the function's MaximumEventAgeInSeconds".to_string(),
            *n,
            None,
        ),
        Failure::Throttled => (
            "EventAgeExceeded",
            "Function has reserved concurrency 0 (fully throttled)".to_string(),
            0,
            None,
        ),
    };
    let request_id = response
        .map(|r| r.request_id.clone())
        .unwrap_or_else(|| event.request_id.clone());
    let sent = if let Some(queue) = &spec.on_failure_queue {
        // The destination record (aws-semantics D5).
        let response_payload = response
            .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.payload).ok())
            .unwrap_or(serde_json::Value::Null);
        let record = json!({
            "version": "1.0",
            "timestamp": event.enqueued_at.to_rfc3339(),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": format!("{}:$LATEST", spec.arn),
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": serde_json::from_slice::<serde_json::Value>(&event.payload)
                .unwrap_or_else(|_| String::from_utf8_lossy(&event.payload).into()),
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": response_payload,
        });
        Some((
            queue.clone(),
            service.dead_letters.send(queue, record.to_string(), vec![]),
        ))
    } else if let Some(queue) = &spec.dead_letter_queue {
        let message: String = error_message.chars().take(1024).collect();
        let attributes = vec![
            (
                "RequestID".to_string(),
                "String".to_string(),
                request_id.clone(),
            ),
            (
                "ErrorCode".to_string(),
                "Number".to_string(),
                "200".to_string(),
            ),
            (
                "ErrorMessage".to_string(),
                "String".to_string(),
                if message.is_empty() {
                    "Unhandled".into()
                } else {
                    message
                },
            ),
        ];
        let body = String::from_utf8_lossy(&event.payload).into_owned();
        Some((
            queue.clone(),
            service.dead_letters.send(queue, body, attributes),
        ))
    } else {
        None
    };
    // Every event that failed for good is dropped, whether or not it reached a DLQ.
    service
        .telemetry
        .lambda_metric(name, "AsyncEventsDropped", 1.0, "Count");
    match sent {
        Some((queue, Ok(()))) => {
            service.telemetry.function(name, |m| m.dead_lettered += 1);
            tracing::warn!(function = name, %queue, condition, attempts, "async event dead-lettered");
        }
        Some((queue, Err(e))) => {
            service.telemetry.function(name, |m| m.dropped_events += 1);
            service
                .telemetry
                .lambda_metric(name, "DeadLetterErrors", 1.0, "Count");
            tracing::error!(function = name, %queue, error = %e, "could not dead-letter an async event; it is lost");
        }
        None => {
            service.telemetry.function(name, |m| m.dropped_events += 1);
            tracing::warn!(
                function = name,
                condition,
                "async event failed and the function has no DLQ; discarded (as AWS does)"
            );
        }
    }
}
