//! Function logs as CloudWatch Logs keeps them: log group `/aws/lambda/{function}`, one
//! stream per instance, REPORT lines included. Served through `FilterLogEvents`, so the
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

#[derive(Default)]
pub struct LogStore {
    groups: Mutex<BTreeMap<String, VecDeque<LogEvent>>>,
    next_id: std::sync::atomic::AtomicU64,
}

pub fn group_name(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

impl LogStore {
    pub fn append(&self, function: &str, stream: &str, message: String) {
        let now = chrono::Utc::now().timestamp_millis();
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(target: "dynamowave_local::function", function, "{message}");
        let mut groups = self.groups.lock().expect("log lock");
        let events = groups.entry(group_name(function)).or_default();
        if events.len() >= MAX_EVENTS_PER_GROUP {
            events.pop_front();
        }
        events.push_back(LogEvent {
            log_stream_name: stream.to_string(),
            timestamp: now,
            message,
            ingestion_time: now,
            event_id: format!("{id:020}"),
        });
    }

    /// `Logs_20140328.FilterLogEvents`. The filter pattern supports CloudWatch's plain
    /// terms (every term must appear; `"quoted phrases"` match exactly); JSON and
    /// metric-filter syntax are not supported and are refused rather than misread.
    pub fn filter_log_events(&self, request: &Value) -> Result<Value, AwsError> {
        let group = request
            .get("logGroupName")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AwsError::new(400, "InvalidParameterException", "logGroupName is required")
            })?;
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
        let Some(events) = groups.get(group) else {
            return Err(AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("The specified log group does not exist: {group}"),
            ));
        };
        let matching: Vec<&LogEvent> = events
            .iter()
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
