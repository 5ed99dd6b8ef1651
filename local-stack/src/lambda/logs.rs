//! Function logs as CloudWatch Logs keeps them: log group `/aws/lambda/{function}`, one
//! stream per instance (`YYYY/MM/DD/[$LATEST]<id>`), platform lines (INIT_START, START,
//! END, REPORT) included. Served through FilterLogEvents here and DescribeLogGroups,
//! DescribeLogStreams and GetLogEvents (`logs_read.rs`), awsJson 1.1 on the edge, so the
//! harness reads cold starts the same way on AWS and locally.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::edge::AwsError;

/// Events kept per log group; older ones are dropped first.
const MAX_EVENTS_PER_GROUP: usize = 50_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub log_stream_name: String,
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
    pub event_id: String,
}

/// A log group: its events (oldest first) and its streams.
#[derive(Default)]
pub(super) struct Group {
    pub created: i64,
    pub events: VecDeque<LogEvent>,
    pub streams: BTreeMap<String, Stream>,
}

/// What DescribeLogStreams reports of a stream.
#[derive(Debug, Clone, Default)]
pub(super) struct Stream {
    pub created: i64,
    pub first_event: i64,
    pub last_event: i64,
    pub stored_bytes: u64,
}

pub struct LogStore {
    pub(super) groups: Mutex<BTreeMap<String, Group>>,
    next_id: std::sync::atomic::AtomicU64,
    /// `arn:aws:logs:{region}:{account}`
    pub(super) arn_prefix: String,
}

impl Default for LogStore {
    fn default() -> Self {
        LogStore::new("us-east-1", "000000000000")
    }
}

pub fn group_name(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

/// `2024/01/31/[$LATEST]<instance id>`, dated today (UTC), as Lambda names streams.
pub fn stream_name(instance_id: &str) -> String {
    format!(
        "{}/[$LATEST]{instance_id}",
        chrono::Utc::now().format("%Y/%m/%d")
    )
}

impl LogStore {
    pub fn new(region: &str, account: &str) -> Self {
        LogStore {
            groups: Mutex::default(),
            next_id: Default::default(),
            arn_prefix: format!("arn:aws:logs:{region}:{account}"),
        }
    }

    pub fn append(&self, function: &str, stream: &str, message: String) {
        let now = chrono::Utc::now().timestamp_millis();
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(target: "dynamowave_local::function", function, "{message}");
        let mut groups = self.groups.lock().expect("log lock");
        let group = groups.entry(group_name(function)).or_insert_with(|| Group {
            created: now,
            ..Group::default()
        });
        let info = group
            .streams
            .entry(stream.to_string())
            .or_insert_with(|| Stream {
                created: now,
                first_event: now,
                ..Stream::default()
            });
        info.last_event = now;
        info.stored_bytes += message.len() as u64;
        if group.events.len() >= MAX_EVENTS_PER_GROUP {
            group.events.pop_front();
        }
        group.events.push_back(LogEvent {
            log_stream_name: stream.to_string(),
            timestamp: now,
            message,
            ingestion_time: now,
            event_id: format!("{id:020}"),
        });
    }

    /// One `Logs_20140328.<op>` call (awsJson 1.1).
    pub fn handle(&self, op: &str, body: &[u8]) -> axum::response::Response {
        use axum::response::IntoResponse;
        let request: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) | Err(_) if body.iter().all(u8::is_ascii_whitespace) => {
                Value::Object(Default::default())
            }
            Ok(_) => return invalid("the request body must be a JSON object").into_response(),
            Err(e) => {
                return AwsError::new(
                    400,
                    "SerializationException",
                    format!("the request body is not JSON: {e}"),
                )
                .into_response();
            }
        };
        let result = match op {
            "FilterLogEvents" => self.filter_log_events(&request),
            "DescribeLogGroups" => self.describe_log_groups(&request),
            "DescribeLogStreams" => self.describe_log_streams(&request),
            "GetLogEvents" => self.get_log_events(&request),
            other => Err(AwsError::new(
                400,
                "UnknownOperationException",
                format!(
                    "the local stack serves CloudWatch Logs FilterLogEvents, DescribeLogGroups, DescribeLogStreams and GetLogEvents, not {other}"
                ),
            )),
        };
        match result {
            Ok(v) => (
                [("content-type", "application/x-amz-json-1.1")],
                v.to_string(),
            )
                .into_response(),
            Err(e) => e.into_response(),
        }
    }

    /// `Logs_20140328.FilterLogEvents`. The filter pattern supports CloudWatch's plain
    /// terms (every term must appear; `"quoted phrases"` match exactly); JSON and
    /// metric-filter syntax are not supported and are refused rather than misread.
    pub fn filter_log_events(&self, request: &Value) -> Result<Value, AwsError> {
        let group = &group_of(request)?;
        let start = request
            .get("startTime")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let end = request
            .get("endTime")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX);
        let limit = request
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(10_000)
            .clamp(1, 10_000) as usize;
        let skip: usize = request
            .get("nextToken")
            .and_then(Value::as_str)
            .map(|t| {
                t.parse().map_err(|_| {
                    AwsError::new(
                        400,
                        "InvalidParameterException",
                        format!("nextToken {t:?} is not valid"),
                    )
                })
            })
            .transpose()?
            .unwrap_or(0);
        let terms = parse_pattern(
            request
                .get("filterPattern")
                .and_then(Value::as_str)
                .unwrap_or(""),
        )?;
        let groups = self.groups.lock().expect("log lock");
        let Some(g) = groups.get(group) else {
            return Err(no_group(group));
        };
        let streams = request
            .get("logStreamNames")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>());
        let prefix = request.get("logStreamNamePrefix").and_then(Value::as_str);
        let matching: Vec<&LogEvent> = g
            .events
            .iter()
            .filter(|e| {
                streams
                    .as_ref()
                    .is_none_or(|s| s.contains(&e.log_stream_name.as_str()))
            })
            .filter(|e| prefix.is_none_or(|p| e.log_stream_name.starts_with(p)))
            .filter(|e| e.timestamp >= start && e.timestamp <= end)
            .filter(|e| terms.iter().all(|t| e.message.contains(t.as_str())))
            .collect();
        let page: Vec<&LogEvent> = matching.iter().skip(skip).take(limit).copied().collect();
        let mut out = serde_json::json!({"events": page, "searchedLogStreams": []});
        if skip + page.len() < matching.len() {
            out["nextToken"] = Value::String((skip + page.len()).to_string());
        }
        Ok(out)
    }
}

/// `logGroupName`, or `logGroupIdentifier` (a name or an ARN).
pub(super) fn group_of(request: &Value) -> Result<String, AwsError> {
    if let Some(name) = request.get("logGroupName").and_then(Value::as_str) {
        return Ok(name.to_string());
    }
    let id = request
        .get("logGroupIdentifier")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("logGroupName or logGroupIdentifier is required"))?;
    Ok(match id.split_once(":log-group:") {
        Some((_, name)) => name.trim_end_matches(":*").to_string(),
        None => id.to_string(),
    })
}

pub(super) fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", message)
}

pub(super) fn no_group(group: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("The specified log group does not exist: {group}"),
    )
}

fn parse_pattern(pattern: &str) -> Result<Vec<String>, AwsError> {
    let pattern = pattern.trim();
    if pattern.starts_with('{') || pattern.starts_with('[') {
        return Err(AwsError::new(
            400,
            "InvalidParameterException",
            "the local stack supports only plain-term filter patterns (no JSON or space-delimited filters)",
        ));
    }
    let mut terms = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| {
                AwsError::new(
                    400,
                    "InvalidParameterException",
                    "unterminated quote in filterPattern",
                )
            })?;
            terms.push(quoted[..end].to_string());
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if end > 0 {
                terms.push(rest[..end].to_string());
            }
            rest = &rest[end..];
        }
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_by_terms_and_pages() {
        let logs = LogStore::default();
        logs.append("f", "s1", "START RequestId: 1".into());
        logs.append(
            "f",
            "s1",
            "REPORT RequestId: 1\tDuration: 2.00 ms\tInit Duration: 5.00 ms".into(),
        );
        logs.append("f", "s1", "REPORT RequestId: 2\tDuration: 1.00 ms".into());
        let all = logs
            .filter_log_events(&json!({"logGroupName": "/aws/lambda/f", "filterPattern": "REPORT"}))
            .unwrap();
        assert_eq!(all["events"].as_array().unwrap().len(), 2);
        let cold = logs
            .filter_log_events(&json!({"logGroupName": "/aws/lambda/f", "filterPattern": "REPORT \"Init Duration\""}))
            .unwrap();
        assert_eq!(cold["events"].as_array().unwrap().len(), 1);
        let page = logs
            .filter_log_events(&json!({"logGroupName": "/aws/lambda/f", "limit": 2}))
            .unwrap();
        assert_eq!(page["nextToken"], "2");
        let err = logs
            .filter_log_events(&json!({"logGroupName": "/aws/lambda/nope"}))
            .unwrap_err();
        assert_eq!(err.code, "ResourceNotFoundException");
    }
}
