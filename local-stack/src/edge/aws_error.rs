//! Errors as AWS renders them, so SDK error types come out right (shared/aws-wire.md):
//! status, `x-amzn-ErrorType`, and a JSON body with `__type` and `message`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub status: StatusCode,
    /// The error code, e.g. `GoneException`, `TooManyRequestsException`.
    pub code: String,
    pub message: String,
    /// SQS's query-compatible code (`AWS.SimpleQueueService.NonExistentQueue;Sender`),
    /// sent as `x-amzn-query-error`; the SDK matches on it.
    pub query_error: Option<String>,
    /// Extra body fields, e.g. Lambda's `Reason` and `Type`.
    pub fields: Map<String, Value>,
}

impl AwsError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        AwsError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.to_string(),
            message: message.into(),
            query_error: None,
            fields: Map::new(),
        }
    }

    pub fn with_field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    pub fn with_query_error(mut self, code: &str, fault: &str) -> Self {
        self.query_error = Some(format!("{code};{fault}"));
        self
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for AwsError {}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let mut body = self.fields.clone();
        body.insert("__type".into(), Value::String(self.code.clone()));
        body.insert("message".into(), Value::String(self.message.clone()));
        let mut response = (self.status, Value::Object(body).to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(&self.code) {
            headers.insert("x-amzn-errortype", v);
        }
        if let Some(q) = self
            .query_error
            .as_deref()
            .and_then(|q| HeaderValue::from_str(q).ok())
        {
            headers.insert("x-amzn-query-error", q);
        }
        if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            headers.insert("x-amzn-requestid", v);
        }
        response
    }
}

/// A JSON success (200) or an AWS-shaped error: the REST APIs' usual answer.
pub fn respond(result: Result<serde_json::Value, AwsError>) -> Response {
    match result {
        Ok(v) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
