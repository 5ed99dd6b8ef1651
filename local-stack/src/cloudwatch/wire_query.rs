//! awsQuery: a form-encoded `POST /` with `Action=<Op>&Version=2010-08-01`, lists as
//! `Name.member.N`, answered in XML (`<OpResponse><OpResult>…`). What older SDKs, the AWS
//! CLI v1 and boto3 before 1.42.7 send.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::shape::{Out, malformed, query_code};
use crate::edge::AwsError;

pub const VERSION: &str = "2010-08-01";
const XMLNS: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

/// The form as `(Action, tree)`: `A.member.1.B=x` becomes `{"A": [{"B": "x"}]}`.
pub fn decode(form: &[(String, String)]) -> Result<(String, Value), AwsError> {
    let mut root = Value::Object(Map::new());
    let mut action = None;
    for (key, value) in form {
        match key.as_str() {
            "Action" => action = Some(value.clone()),
            "Version" => {}
            _ => insert(&mut root, key, value)?,
        }
    }
    let action =
        action.ok_or_else(|| malformed("The request must contain the parameter Action."))?;
    Ok((action, lists(root)))
}

fn insert(root: &mut Value, key: &str, value: &str) -> Result<(), AwsError> {
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(malformed(format!(
                "the parameter {key} conflicts with another"
            )));
        };
        if i + 1 == parts.len() {
            map.insert(part.to_string(), Value::String(value.to_string()));
            return Ok(());
        }
        node = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

/// `{"member": {"1": a, "2": b}}` → `[a, b]`, in index order, all the way down.
fn lists(v: Value) -> Value {
    match v {
        Value::Object(mut map) => {
            if map.len() == 1
                && map.get("member").is_some_and(Value::is_object)
                && let Some(Value::Object(members)) = map.remove("member")
            {
                let mut items: Vec<(u64, Value)> = members
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, lists(v))))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                return Value::Array(items.into_iter().map(|(_, v)| v).collect());
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, lists(v))).collect())
        }
        other => other,
    }
}

pub fn ok(op: &str, out: &Out) -> Response {
    let mut result = String::new();
    if let Out::Map(entries) = out
        && !entries.is_empty()
    {
        result = format!("<{op}Result>{}</{op}Result>", xml(out));
    }
    let body = format!(
        "<{op}Response xmlns=\"{XMLNS}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{op}Response>",
        uuid::Uuid::new_v4()
    );
    response(StatusCode::OK, body)
}

fn xml(out: &Out) -> String {
    match out {
        Out::Map(entries) => entries
            .iter()
            .map(|(k, v)| format!("<{k}>{}</{k}>", xml(v)))
            .collect(),
        Out::List(items) => items
            .iter()
            .map(|v| format!("<member>{}</member>", xml(v)))
            .collect(),
        Out::Str(s) => escape(s),
        Out::Num(x) => format!("{x:?}"),
        Out::Time(t) => chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default(),
    }
}

pub fn error(e: &AwsError) -> Response {
    let fault = if e.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{fault}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(query_code(e)),
        escape(&e.message),
        uuid::Uuid::new_v4()
    );
    response(e.status, body)
}

fn response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_lists_become_arrays_in_index_order() {
        let form: Vec<(String, String)> = [
            ("Action", "GetMetricData"),
            ("MetricDataQueries.member.2.Id", "b"),
            ("MetricDataQueries.member.1.Id", "a"),
            (
                "MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name",
                "FunctionName",
            ),
            ("StartTime", "2024-01-01T00:00:00Z"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (action, v) = decode(&form).unwrap();
        assert_eq!(action, "GetMetricData");
        assert_eq!(v["MetricDataQueries"][0]["Id"], "a");
        assert_eq!(v["MetricDataQueries"][1]["Id"], "b");
        assert_eq!(
            v["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Name"],
            "FunctionName"
        );
        let bad: Vec<(String, String)> = vec![("A".into(), "1".into()), ("A.B".into(), "2".into())];
        assert!(decode(&bad).is_err());
    }
}
