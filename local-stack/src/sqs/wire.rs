//! The awsJson 1.0 side of SQS: reading request fields with errors that name the field and
//! the bad value, the AWS-shaped errors SQS sends, and success responses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value};

use crate::edge::AwsError;

/// An SQS error: `__type` in the SQS namespace plus the query-compatible code the SDK
/// matches its typed errors on (shared/aws-wire.md).
pub fn sqs_error(status: u16, shape: &str, query_code: &str, message: String) -> AwsError {
    AwsError::new(status, &format!("com.amazonaws.sqs#{shape}"), message)
        .with_query_error(query_code, "Sender")
}

pub fn missing(field: &str) -> AwsError {
    sqs_error(
        400,
        "MissingParameter",
        "MissingParameter",
        format!("The request must contain the parameter {field}."),
    )
}

pub fn invalid_value(field: &str, value: impl std::fmt::Display, reason: &str) -> AwsError {
    sqs_error(
        400,
        "InvalidParameterValue",
        "InvalidParameterValue",
        format!("Value {value} for parameter {field} is invalid. Reason: {reason}"),
    )
}

pub fn no_such_queue(queue: &str) -> AwsError {
    sqs_error(
        400,
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        format!("The specified queue does not exist: {queue}"),
    )
}

pub fn receipt_handle_invalid(handle: &str) -> AwsError {
    sqs_error(
        400,
        "ReceiptHandleIsInvalid",
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
    )
}

fn serialization(message: String) -> AwsError {
    AwsError::new(400, "SerializationException", message)
}

/// A JSON value shown in an error message, cut short so one bad field cannot flood it.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The request's top-level JSON object.
pub struct Request(Map<String, Value>);

impl Request {
    /// An empty body reads as `{}`, so the missing fields are named in the error.
    pub fn parse(body: &[u8]) -> Result<Self, AwsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Request(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Request(map)),
            Ok(other) => Err(serialization(format!(
                "The request body must be a JSON object, got {}",
                shown(&other)
            ))),
            Err(e) => Err(serialization(format!(
                "The request body is not valid JSON: {e}"
            ))),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&str>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(serialization(format!(
                "Field {field} must be a string, got {}",
                shown(other)
            ))),
        }
    }

    /// A required string; absent or empty is `MissingParameter`, as SQS treats both alike.
    pub fn str(&self, field: &str) -> Result<&str, AwsError> {
        match self.opt_str(field)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(missing(field)),
        }
    }

    /// An optional integer within `min..=max`; numeric strings are accepted too.
    pub fn opt_int(&self, field: &str, min: i64, max: i64) -> Result<Option<i64>, AwsError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let n = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let Some(n) = n else {
            return Err(serialization(format!(
                "Field {field} must be an integer, got {}",
                shown(value)
            )));
        };
        if !(min..=max).contains(&n) {
            return Err(invalid_value(
                field,
                n,
                &format!("Must be between {min} and {max}, if provided."),
            ));
        }
        Ok(Some(n))
    }

    pub fn str_list(&self, field: &str) -> Result<Vec<String>, AwsError> {
        let bad = |v: &Value| {
            serialization(format!(
                "Field {field} must be a list of strings, got {}",
                shown(v)
            ))
        };
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string).ok_or_else(|| bad(item)))
                .collect(),
            Some(other) => Err(bad(other)),
        }
    }

    pub fn object(&self, field: &str) -> Result<Option<&Map<String, Value>>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(serialization(format!(
                "Field {field} must be an object, got {}",
                shown(other)
            ))),
        }
    }

    /// A map of strings, e.g. CreateQueue's `Attributes`.
    pub fn str_map(&self, field: &str) -> Result<Vec<(String, String)>, AwsError> {
        let Some(map) = self.object(field)? else {
            return Ok(Vec::new());
        };
        map.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(serialization(format!(
                    "Field {field}.{k} must be a string, got {}",
                    shown(other)
                ))),
            })
            .collect()
    }
}

/// A message attribute's wire form: `{"DataType", "StringValue" | "BinaryValue"(base64)}`.
pub fn attribute_json(attribute: &super::MessageAttribute) -> Value {
    let mut map = Map::new();
    map.insert("DataType".into(), attribute.data_type.clone().into());
    if let Some(s) = &attribute.string_value {
        map.insert("StringValue".into(), s.clone().into());
    }
    if let Some(b) = &attribute.binary_value {
        map.insert(
            "BinaryValue".into(),
            base64::engine::general_purpose::STANDARD.encode(b).into(),
        );
    }
    Value::Object(map)
}

/// `200` with a JSON body, or with an empty body for operations without output (as SQS).
pub fn ok(body: Option<Value>) -> Response {
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}
