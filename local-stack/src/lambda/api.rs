//! Lambda's REST API on the edge: Invoke (RequestResponse, Event, DryRun), function
//! concurrency, configuration, and a trigger for schedules.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::{Function, LambdaService, now_iso};
use crate::edge::{AwsError, respond};

pub fn router(service: Arc<LambdaService>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            put(put_concurrency).delete(delete_concurrency),
        )
        .route(
            "/2019-09-30/functions/{name}/concurrency",
            get(get_concurrency),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(get_configuration).put(update_configuration),
        )
        .route("/2015-03-31/functions/{name}", get(get_function))
        .route("/2016-08-19/account-settings", get(account_settings))
        .route("/2016-08-19/account-settings/", get(account_settings))
        .route("/2015-03-31/functions", get(list_functions))
        .route("/2015-03-31/functions/", get(list_functions))
        .route("/_dynamowave/schedules/{name}/{schedule}", post(trigger))
        .with_state(service)
}

type Api = State<Arc<LambdaService>>;

async fn invoke(
    State(s): Api,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    let result = match kind {
        "RequestResponse" => s.invoke(&name, body).await.map(|r| {
            let mut response = (
                StatusCode::OK,
                [
                    ("x-amz-executed-version", "$LATEST".to_string()),
                    ("x-amzn-requestid", r.request_id.clone()),
                ],
                r.payload,
            )
                .into_response();
            if let Some(e) = r.function_error.and_then(|e| e.parse().ok()) {
                response.headers_mut().insert("x-amz-function-error", e);
            }
            response
        }),
        "Event" => s
            .invoke_async(&name, body)
            .map(|id| (StatusCode::ACCEPTED, [("x-amzn-requestid", id)]).into_response()),
        "DryRun" => s
            .function(&name)
            .map(|_| StatusCode::NO_CONTENT.into_response()),
        other => Err(AwsError::new(
            400,
            "InvalidParameterValueException",
            format!("X-Amz-Invocation-Type {other:?} is not one of RequestResponse, Event, DryRun"),
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn put_concurrency(State(s): Api, Path(name): Path<String>, body: Bytes) -> Response {
    let run = || -> Result<Value, AwsError> {
        let (name, _) = s.function(&name)?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("the request body is not JSON: {e}")))?;
        let n = v
            .get("ReservedConcurrentExecutions")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid("ReservedConcurrentExecutions must be a whole number".into()))?;
        let n = u32::try_from(n).map_err(|_| {
            invalid(format!(
                "ReservedConcurrentExecutions {n} must be 0 or more"
            ))
        })?;
        s.concurrency.set_reserved(&name, Some(n))?;
        Ok(json!({"ReservedConcurrentExecutions": n}))
    };
    respond(run())
}

/// GetAccountSettings: the concurrency figures a noisy neighbour needs; code-size limits
/// are AWS's documented defaults (the local stack runs binaries, it stores no code).
async fn account_settings(State(s): Api) -> Response {
    axum::Json(json!({
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800_i64,
            "CodeSizeUnzipped": 262_144_000,
            "CodeSizeZipped": 52_428_800,
            "ConcurrentExecutions": s.concurrency.account_limit(),
            "UnreservedConcurrentExecutions": s.concurrency.unreserved_pool(),
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": s.function_names().len()},
    }))
    .into_response()
}

async fn delete_concurrency(State(s): Api, Path(name): Path<String>) -> Response {
    match s.function(&name) {
        Ok((name, _)) => match s.concurrency.set_reserved(&name, None) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

async fn get_concurrency(State(s): Api, Path(name): Path<String>) -> Response {
    respond(
        s.function(&name)
            .map(|(name, _)| match s.concurrency.reserved(&name) {
                Some(n) => json!({"ReservedConcurrentExecutions": n}),
                None => json!({}),
            }),
    )
}

async fn get_configuration(State(s): Api, Path(name): Path<String>) -> Response {
    respond(s.function(&name).map(|(_, f)| configuration(&s, &f)))
}

async fn get_function(State(s): Api, Path(name): Path<String>) -> Response {
    respond(s.function(&name).map(|(name, f)| {
        let mut out = json!({
            "Configuration": configuration(&s, &f),
            "Code": {"RepositoryType": "Local", "Location": code_location(&s.settings().binaries_dir, &f.spec().code)},
        });
        if let Some(n) = s.concurrency.reserved(&name) {
            out["Concurrency"] = json!({"ReservedConcurrentExecutions": n});
        }
        out
    }))
}

async fn list_functions(State(s): Api) -> Response {
    let functions: Vec<Value> = s
        .function_names()
        .iter()
        .filter_map(|n| s.function(n).ok())
        .map(|(_, f)| configuration(&s, &f))
        .collect();
    respond(Ok(json!({"Functions": functions})))
}

/// UpdateFunctionConfiguration: environment (replaced whole, as AWS does), timeout and
/// memory. Like AWS, running instances are recycled: idle ones now, busy ones after their
/// current invocation.
async fn update_configuration(State(s): Api, Path(name): Path<String>, body: Bytes) -> Response {
    let run = || -> Result<Value, AwsError> {
        let (name, f) = s.function(&name)?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("the request body is not JSON: {e}")))?;
        let mut spec = f.spec();
        if let Some(vars) = v.get("Environment").and_then(|e| e.get("Variables")) {
            spec.environment = environment(vars)?;
        }
        if let Some(t) = v.get("Timeout") {
            let t = t
                .as_u64()
                .filter(|t| (1..=900).contains(t))
                .ok_or_else(|| {
                    invalid(format!(
                        "Timeout {t} must be a whole number of seconds from 1 to 900"
                    ))
                })?;
            spec.timeout = std::time::Duration::from_secs(t);
        }
        if let Some(m) = v.get("MemorySize") {
            let m = m
                .as_u64()
                .filter(|m| (128..=10_240).contains(m))
                .ok_or_else(|| invalid(format!("MemorySize {m} must be from 128 to 10240 MB")))?;
            spec.memory_mb = m as u32;
        }
        *f.spec.lock().expect("spec lock") = spec;
        *f.last_modified.lock().expect("modified lock") = now_iso();
        f.generation.fetch_add(1, Ordering::SeqCst);
        for i in f.idle.lock().expect("idle lock").drain(..) {
            i.terminate(&s.registry);
        }
        tracing::info!(function = %name, "configuration updated; instances recycled");
        Ok(configuration(&s, &f))
    };
    respond(run())
}

async fn trigger(State(s): Api, Path((name, schedule)): Path<(String, String)>) -> Response {
    match s.trigger(&name, &schedule) {
        Ok(id) => (StatusCode::ACCEPTED, json!({"requestId": id}).to_string()).into_response(),
        Err(e) => e.into_response(),
    }
}

const RESERVED_KEYS: [&str; 12] = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

fn environment(vars: &Value) -> Result<BTreeMap<String, String>, AwsError> {
    let map = vars
        .as_object()
        .ok_or_else(|| invalid("Environment.Variables must be an object of strings".into()))?;
    let mut out = BTreeMap::new();
    let mut reserved = Vec::new();
    for (k, v) in map {
        let valid = k.len() >= 2
            && k.starts_with(|c: char| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(invalid(format!(
                "environment variable name {k:?} must match [a-zA-Z][a-zA-Z0-9_]+"
            )));
        }
        if RESERVED_KEYS.contains(&k.as_str()) {
            reserved.push(k.clone());
        }
        let v = v
            .as_str()
            .ok_or_else(|| invalid(format!("environment variable {k} must be a string")))?;
        out.insert(k.clone(), v.to_string());
    }
    if !reserved.is_empty() {
        return Err(invalid(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    let size: usize = out.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > 4096 {
        return Err(invalid(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {size} bytes"
        )));
    }
    Ok(out)
}

fn configuration(s: &LambdaService, f: &Function) -> Value {
    let spec = f.spec();
    json!({
        "FunctionName": spec.name,
        "FunctionArn": spec.arn,
        "Runtime": spec.code.runtime_id(),
        "Handler": match &spec.code {
            crate::model::Code::Package { handler, .. } if !handler.is_empty() => handler.as_str(),
            _ => "bootstrap",
        },
        "Role": format!("arn:aws:iam::{}:role/{}-role", s.naming().account_id, spec.name),
        "Timeout": spec.timeout.as_secs(),
        "MemorySize": spec.memory_mb,
        "Environment": {"Variables": spec.environment},
        "Version": "$LATEST",
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "LastModified": f.last_modified.lock().expect("modified lock").clone(),
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
    })
}

fn invalid(message: String) -> AwsError {
    AwsError::new(400, "InvalidParameterValueException", message).with_field("Type", "User")
}

/// Where the function's code is: its release binary or its package folder.
fn code_location(binaries_dir: &std::path::Path, code: &crate::model::Code) -> String {
    match code {
        crate::model::Code::Binary(binary) => binaries_dir.join(binary).display().to_string(),
        crate::model::Code::Package { dir, .. } => dir.display().to_string(),
    }
}
