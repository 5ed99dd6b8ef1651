//! The Lambda Runtime API (aws-semantics E1), served to each instance on a port of its own,
//! `AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT` as Lambda sets it (host and port, no scheme and
//! no path: AWS's runtime interface clients accept nothing else), so every event goes to
//! exactly the instance we chose. `next` long-polls and never answers 204.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::instance::{Answer, Instance};
use crate::fis::faults::Replacement;

/// Binds a loopback port for `instance` and serves its Runtime API until the instance's
/// process has exited; returns the `host:port` for `AWS_LAMBDA_RUNTIME_API`.
pub async fn serve(instance: Arc<Instance>) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("could not bind a Runtime API port: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("Runtime API address: {e}"))?;
    let mut exited = instance.exited();
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{request}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request}/error",
            post(error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(instance)
        // Function responses may be up to 6 MB.
        .layer(axum::extract::DefaultBodyLimit::max(7 * 1024 * 1024));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    // A long-polling `next` never finishes on its own, so the server is stopped, not drained.
    tokio::spawn(async move {
        while exited.borrow_and_update().is_none() {
            if exited.changed().await.is_err() {
                break;
            }
        }
        server.abort();
    });
    Ok(addr.to_string())
}

/// Hands the next event to the runtime, after the FIS faults drawn for it: a delay first
/// (`invocation-add-delay`), then either an answer given without running the function
/// (`preventExecution`) or one that will replace the function's own.
async fn next(State(instance): State<Arc<Instance>>) -> Response {
    let inv = loop {
        let Some(inv) = instance.next_event().await else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let draw = instance.faults.draw(&instance.function);
        if !draw.delay.is_zero() {
            tokio::time::sleep(draw.delay).await;
        }
        match draw.replace {
            Some(r) if draw.prevent_execution => {
                instance.answer(&inv.request_id, injected(&r));
            }
            Some(r) => {
                instance.replace_answer(&inv.request_id, r);
                break inv;
            }
            None => break inv,
        }
    };
    let trace = format!(
        "Root=1-{:08x}-{};Sampled=0",
        super::execute::epoch_ms() / 1000,
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    );
    (
        [
            ("lambda-runtime-aws-request-id", inv.request_id),
            ("lambda-runtime-deadline-ms", inv.deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", inv.function_arn),
            ("lambda-runtime-trace-id", trace),
            ("content-type", "application/json".to_string()),
        ],
        inv.payload,
    )
        .into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, json!({"status": "OK"}).to_string()).into_response()
}

fn unknown_request(request: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        json!({"errorMessage": format!("Invalid request ID: {request}"), "errorType": "InvalidRequestID"}).to_string(),
    )
        .into_response()
}

/// The answer an injected fault gives [U: AWS does not document the error's type or the
/// response's body; these name the fault and the experiment].
fn injected(r: &Replacement) -> Answer {
    match r {
        Replacement::Error { experiment } => {
            let message = format!("AWS FIS experiment {experiment} injected an invocation error");
            Answer::Error {
                error_type: Some("FIS.InjectedError".into()),
                body: Bytes::from(
                    json!({"errorType": "FIS.InjectedError", "errorMessage": message}).to_string(),
                ),
            }
        }
        Replacement::Http {
            status,
            content_type,
        } => Answer::Response(Bytes::from(
            json!({"statusCode": status, "headers": {"Content-Type": content_type}, "body": ""})
                .to_string(),
        )),
    }
}

async fn response(
    State(instance): State<Arc<Instance>>,
    Path(request): Path<String>,
    body: Bytes,
) -> Response {
    let answer = match instance.take_replacement(&request) {
        Some(r) => injected(&r),
        None => Answer::Response(body),
    };
    if instance.answer(&request, answer) {
        accepted()
    } else {
        unknown_request(&request)
    }
}

async fn error(
    State(instance): State<Arc<Instance>>,
    Path(request): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let answer = match instance.take_replacement(&request) {
        Some(r) => injected(&r),
        None => Answer::Error { error_type, body },
    };
    if instance.answer(&request, answer) {
        accepted()
    } else {
        unknown_request(&request)
    }
}

async fn init_error(State(instance): State<Arc<Instance>>, body: Bytes) -> Response {
    instance.init_failed(String::from_utf8_lossy(&body).into_owned());
    accepted()
}
