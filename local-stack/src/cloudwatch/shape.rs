//! The protocol-neutral middle of the CloudWatch API. Requests from every protocol are
//! decoded into one `serde_json::Value` tree (awsQuery's strings stay strings, so the
//! getters accept both forms); answers are an `Out` tree that each protocol encodes its
//! own way (timestamps: epoch seconds in JSON, tag 1 in CBOR, ISO 8601 in XML).

use serde_json::Value;

use crate::edge::AwsError;

#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Map(Vec<(String, Out)>),
    List(Vec<Out>),
    Str(String),
    Num(f64),
    /// Epoch seconds.
    Time(f64),
}

impl Out {
    pub fn map<const N: usize>(entries: [(&str, Out); N]) -> Out {
        Out::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    pub fn str(s: impl Into<String>) -> Out {
        Out::Str(s.into())
    }
}

/// CloudWatch's modeled errors: (shape name, awsQuery code). The SDKs match on the
/// query code, which JSON and CBOR carry in `x-amzn-query-error` (awsQueryCompatible).
fn error(status: u16, shape: &str, code: &str, message: impl Into<String>) -> AwsError {
    let fault = if status >= 500 { "Receiver" } else { "Sender" };
    AwsError::new(status, shape, message).with_query_error(code, fault)
}

pub fn invalid(message: impl Into<String>) -> AwsError {
    error(
        400,
        "InvalidParameterValueException",
        "InvalidParameterValue",
        message,
    )
}

pub fn combination(message: impl Into<String>) -> AwsError {
    error(
        400,
        "InvalidParameterCombinationException",
        "InvalidParameterCombination",
        message,
    )
}

pub fn missing(parameter: &str) -> AwsError {
    error(
        400,
        "MissingRequiredParameterException",
        "MissingParameter",
        format!("The parameter {parameter} is required."),
    )
}

pub fn bad_token(message: impl Into<String>) -> AwsError {
    error(400, "InvalidNextToken", "InvalidNextToken", message)
}

/// A body that cannot be decoded at all.
pub fn malformed(message: impl Into<String>) -> AwsError {
    error(400, "SerializationException", "MalformedInput", message)
}

pub fn unknown_operation(op: &str) -> AwsError {
    error(
        400,
        "UnknownOperationException",
        "InvalidAction",
        format!(
            "The action {op} is not valid for this web service (the local stack serves CloudWatch GetMetricData, ListMetrics and PutMetricData)."
        ),
    )
}

/// The awsQuery code of an error (`InvalidParameterValue`), or its shape name.
pub fn query_code(e: &AwsError) -> &str {
    e.query_error
        .as_deref()
        .and_then(|q| q.split(';').next())
        .unwrap_or(&e.code)
}

pub fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A list member; awsQuery's absent list and JSON's missing key are both empty.
pub fn list_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A number given as a number (JSON, CBOR) or a string (awsQuery).
pub fn num_at(v: &Value, key: &str, path: &str) -> Result<Option<f64>, AwsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => as_num(x).map(Some).ok_or_else(|| {
            invalid(format!(
                "The value {x} for parameter {path} is not a number."
            ))
        }),
    }
}

pub fn as_num(x: &Value) -> Option<f64> {
    match x {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn bool_at(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A timestamp as epoch seconds (JSON, CBOR) or ISO 8601 (awsQuery).
pub fn time_at(v: &Value, key: &str) -> Result<Option<f64>, AwsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis() as f64 / 1000.0))
            .or_else(|_| s.parse::<f64>().map(Some))
            .map_err(|_| {
                invalid(format!(
                    "The value {s} for parameter {key} is not a valid timestamp."
                ))
            }),
        Some(x) => Err(invalid(format!(
            "The value {x} for parameter {key} is not a valid timestamp."
        ))),
    }
}

/// `{Name, Value}` dimension lists (Value optional for ListMetrics' filters).
pub fn dimensions_at(
    v: &Value,
    path: &str,
    max: usize,
) -> Result<Vec<(String, Option<String>)>, AwsError> {
    let dims = list_at(v, "Dimensions");
    if dims.len() > max {
        return Err(invalid(format!(
            "The collection {path}.Dimensions must not have a size greater than {max}."
        )));
    }
    dims.iter()
        .enumerate()
        .map(|(i, d)| {
            let name = str_at(d, "Name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| missing(&format!("{path}.Dimensions.member.{}.Name", i + 1)))?;
            Ok((name.to_string(), str_at(d, "Value").map(str::to_string)))
        })
        .collect()
}
