//! The Lambda Runtime API (aws-semantics E1), one path prefix per instance:
//! `/.rt/{function}/{instance}/2018-06-01/runtime/...`. `next` long-polls and never
//! answers 204.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::LambdaService;
use super::instance::{Answer, Instance};

pub fn router(service: Arc<LambdaService>) -> Router {
    Router::new()
        .route(
            "/.rt/{function}/{instance}/2018-06-01/runtime/invocation/next",
            get(next),
        )
        .route(
            "/.rt/{function}/{instance}/2018-06-01/runtime/invocation/{request}/response",
            post(response),
        )
        .route(
            "/.rt/{function}/{instance}/2018-06-01/runtime/invocation/{request}/error",
            post(error),
        )
        .route(
            "/.rt/{function}/{instance}/2018-06-01/runtime/init/error",
            post(init_error),
        )
        .with_state(service)
}

/// An unknown instance gets 500, which tells a runtime to exit (E1).
fn find(service: &LambdaService, instance: &str) -> Result<Arc<Instance>, Box<Response>> {
    service.registry.get(instance).ok_or_else(|| {
        Box::new(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"errorMessage": "unknown or retired instance", "errorType": "InvalidInstance"})
                    .to_string(),
            )
                .into_response(),
        )
    })
}

async fn next(
    State(service): State<Arc<LambdaService>>,
    Path((_function, instance)): Path<(String, String)>,
) -> Response {
    let instance = match find(&service, &instance) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let Some(inv) = instance.next_event().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
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

async fn response(
    State(service): State<Arc<LambdaService>>,
    Path((_function, instance, request)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    match find(&service, &instance) {
        Ok(i) if i.answer(&request, Answer::Response(body)) => accepted(),
        Ok(_) => unknown_request(&request),
        Err(r) => *r,
    }
}

async fn error(
    State(service): State<Arc<LambdaService>>,
    Path((_function, instance, request)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match find(&service, &instance) {
        Ok(i) if i.answer(&request, Answer::Error { error_type, body }) => accepted(),
        Ok(_) => unknown_request(&request),
        Err(r) => *r,
    }
}

async fn init_error(
    State(service): State<Arc<LambdaService>>,
    Path((_function, instance)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match find(&service, &instance) {
        Ok(i) => {
            i.init_failed(String::from_utf8_lossy(&body).into_owned());
            accepted()
        }
        Err(r) => *r,
    }
}
