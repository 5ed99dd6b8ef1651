//! awsJson 1.0: `POST /`, `X-Amz-Target: GraniteServiceVersion20100801.<Op>`,
//! `Content-Type: application/x-amz-json-1.0` (boto3 ≥ 1.42.7 adds `x-amzn-query-mode:
//! true`). Timestamps are epoch seconds; errors carry `__type` and, because CloudWatch is
//! awsQueryCompatible, the query code in `x-amzn-query-error`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Number, Value};

use super::shape::{Out, malformed, query_code};
use crate::edge::AwsError;

pub const TARGET_PREFIX: &str = "GraniteServiceVersion20100801.";

pub fn decode(body: &[u8]) -> Result<Value, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(malformed("the request body must be a JSON object")),
        Err(e) => Err(malformed(format!("the request body is not JSON: {e}"))),
    }
}

pub fn encode(out: &Out) -> Value {
    match out {
        Out::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), encode(v)))
                .collect(),
        ),
        Out::List(items) => Value::Array(items.iter().map(encode).collect()),
        Out::Str(s) => Value::String(s.clone()),
        Out::Num(x) | Out::Time(x) => Number::from_f64(*x).map_or(Value::Null, Value::Number),
    }
}

pub fn ok(out: &Out) -> Response {
    response(StatusCode::OK, encode(out).to_string())
}

pub fn error(e: &AwsError) -> Response {
    let body = serde_json::json!({
        "__type": format!("com.amazonaws.cloudwatch#{}", e.code),
        "message": e.message,
    });
    let mut r = response(e.status, body.to_string());
    super::query_error_headers(&mut r, e, query_code(e));
    r
}

fn response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}
