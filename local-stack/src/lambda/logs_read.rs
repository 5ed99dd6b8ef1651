//! CloudWatch Logs reads beside FilterLogEvents: DescribeLogGroups, DescribeLogStreams and
//! GetLogEvents, with AWS's limits, orderings and tokens (opaque to callers).

use serde_json::{Value, json};

use super::logs::{LogEvent, LogStore, group_of, invalid, no_group};
use crate::edge::AwsError;

fn limit(request: &Value, max: u64, default: u64) -> Result<usize, AwsError> {
    match request.get("limit").and_then(Value::as_u64) {
        None => Ok(default as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

/// Name-ordered listings page on the last name returned.
fn after_token(request: &Value) -> Result<Option<String>, AwsError> {
    let Some(t) = request.get("nextToken").and_then(Value::as_str) else {
        return Ok(None);
    };
    t.strip_prefix("n/")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| invalid(format!("The specified nextToken is invalid: {t}")))
}

fn name_token(name: &str) -> String {
    format!("n/{}", hex::encode(name))
}

impl LogStore {
    /// Groups by name prefix (or pattern: a substring), 50 a page.
    pub fn describe_log_groups(&self, request: &Value) -> Result<Value, AwsError> {
        let prefix = request.get("logGroupNamePrefix").and_then(Value::as_str);
        let pattern = request.get("logGroupNamePattern").and_then(Value::as_str);
        if prefix.is_some() && pattern.is_some() {
            return Err(invalid(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            ));
        }
        let limit = limit(request, 50, 50)?;
        let after = after_token(request)?;
        let groups = self.groups.lock().expect("log lock");
        let mut matching = groups
            .iter()
            .filter(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)))
            .filter(|(name, _)| pattern.is_none_or(|p| name.contains(p)))
            .filter(|(name, _)| after.as_ref().is_none_or(|a| *name > a));
        let page: Vec<Value> = matching
            .by_ref()
            .take(limit)
            .map(|(name, g)| {
                let bytes: u64 = g.streams.values().map(|s| s.stored_bytes).sum();
                json!({
                    "logGroupName": name,
                    "creationTime": g.created,
                    "metricFilterCount": 0,
                    "arn": format!("{}:log-group:{name}:*", self.arn_prefix),
                    "logGroupArn": format!("{}:log-group:{name}", self.arn_prefix),
                    "storedBytes": bytes,
                    "logGroupClass": "STANDARD",
                })
            })
            .collect();
        let mut out = json!({ "logGroups": page });
        if matching.next().is_some()
            && let Some(last) = page.last().and_then(|g| g["logGroupName"].as_str())
        {
            out["nextToken"] = name_token(last).into();
        }
        Ok(out)
    }

    /// Streams of a group by name (optionally a prefix) or by last event time, 50 a page.
    pub fn describe_log_streams(&self, request: &Value) -> Result<Value, AwsError> {
        let group = group_of(request)?;
        let prefix = request.get("logStreamNamePrefix").and_then(Value::as_str);
        let by_time = match request.get("orderBy").and_then(Value::as_str) {
            None | Some("LogStreamName") => false,
            Some("LastEventTime") => true,
            Some(other) => return Err(invalid(format!("orderBy {other} is not valid"))),
        };
        if by_time && prefix.is_some() {
            return Err(invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let descending = request.get("descending").and_then(Value::as_bool) == Some(true);
        let limit = limit(request, 50, 50)?;
        let skip: usize = match request.get("nextToken").and_then(Value::as_str) {
            None => 0,
            Some(t) => t
                .strip_prefix("s/")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| invalid(format!("The specified nextToken is invalid: {t}")))?,
        };
        let groups = self.groups.lock().expect("log lock");
        let g = groups.get(&group).ok_or_else(|| no_group(&group))?;
        let mut streams: Vec<_> = g
            .streams
            .iter()
            .filter(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)))
            .collect();
        if by_time {
            streams.sort_by_key(|(name, s)| (s.last_event, (*name).clone()));
        }
        if descending {
            streams.reverse();
        }
        let page: Vec<Value> = streams
            .iter()
            .skip(skip)
            .take(limit)
            .map(|(name, s)| {
                json!({
                    "logStreamName": name,
                    "creationTime": s.created,
                    "firstEventTimestamp": s.first_event,
                    "lastEventTimestamp": s.last_event,
                    "lastIngestionTime": s.last_event,
                    "arn": format!("{}:log-group:{group}:log-stream:{name}", self.arn_prefix),
                    "storedBytes": 0,
                })
            })
            .collect();
        let mut out = json!({ "logStreams": page });
        if skip + page.len() < streams.len() {
            out["nextToken"] = format!("s/{}", skip + page.len()).into();
        }
        Ok(out)
    }

    /// One stream's events in `[startTime, endTime)`; from the tail unless `startFromHead`.
    /// Tokens are `f/<event>` and `b/<event>`; at either end the token given comes back.
    pub fn get_log_events(&self, request: &Value) -> Result<Value, AwsError> {
        let group = group_of(request)?;
        let stream = request
            .get("logStreamName")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("logStreamName is required"))?;
        let start = request
            .get("startTime")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN);
        let end = request
            .get("endTime")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX);
        let limit = limit(request, 10_000, 10_000)?;
        let head = request.get("startFromHead").and_then(Value::as_bool) == Some(true);
        let (forward, from) = match request.get("nextToken").and_then(Value::as_str) {
            None if head => (true, 0),
            None => (false, u64::MAX),
            Some(t) => parse_position(t)?,
        };
        let groups = self.groups.lock().expect("log lock");
        let g = groups.get(&group).ok_or_else(|| no_group(&group))?;
        if !g.streams.contains_key(stream) {
            return Err(AwsError::new(
                400,
                "ResourceNotFoundException",
                "The specified log stream does not exist.",
            ));
        }
        let all: Vec<(u64, &LogEvent)> = g
            .events
            .iter()
            .filter(|e| e.log_stream_name == stream && e.timestamp >= start && e.timestamp < end)
            .filter_map(|e| Some((e.event_id.parse().ok()?, e)))
            .collect();
        let page: Vec<(u64, &LogEvent)> = if forward {
            all.into_iter()
                .filter(|(id, _)| *id >= from)
                .take(limit)
                .collect()
        } else {
            let before: Vec<_> = all.into_iter().filter(|(id, _)| *id < from).collect();
            before[before.len().saturating_sub(limit)..].to_vec()
        };
        let (first, next) = match (page.first(), page.last()) {
            (Some((a, _)), Some((b, _))) => (*a, b + 1),
            _ => (from, from),
        };
        let events: Vec<Value> = page
            .iter()
            .map(|(_, e)| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}))
            .collect();
        Ok(json!({
            "events": events,
            "nextForwardToken": format!("f/{next:020}"),
            "nextBackwardToken": format!("b/{first:020}"),
        }))
    }
}

fn parse_position(t: &str) -> Result<(bool, u64), AwsError> {
    let bad = || invalid(format!("The specified nextToken is invalid: {t}"));
    let (dir, n) = t.split_once('/').ok_or_else(bad)?;
    let n = n.parse().map_err(|_| bad())?;
    match dir {
        "f" => Ok((true, n)),
        "b" => Ok((false, n)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_streams_and_events_page() {
        let logs = LogStore::default();
        for i in 0..5 {
            logs.append("f", "s1", format!("line {i}"));
        }
        logs.append("g", "s2", "other".into());
        let groups = logs.describe_log_groups(&json!({"limit": 1})).unwrap();
        assert_eq!(groups["logGroups"][0]["logGroupName"], "/aws/lambda/f");
        let rest = logs
            .describe_log_groups(&json!({"nextToken": groups["nextToken"]}))
            .unwrap();
        assert_eq!(rest["logGroups"][0]["logGroupName"], "/aws/lambda/g");
        assert!(rest.get("nextToken").is_none());
        let streams = logs
            .describe_log_streams(&json!({"logGroupName": "/aws/lambda/f"}))
            .unwrap();
        assert_eq!(streams["logStreams"][0]["logStreamName"], "s1");
        let tail = logs
            .get_log_events(
                &json!({"logGroupName": "/aws/lambda/f", "logStreamName": "s1", "limit": 2}),
            )
            .unwrap();
        assert_eq!(tail["events"][1]["message"], "line 4");
        let back = logs
            .get_log_events(&json!({"logGroupName": "/aws/lambda/f", "logStreamName": "s1", "limit": 2, "nextToken": tail["nextBackwardToken"]}))
            .unwrap();
        assert_eq!(back["events"][0]["message"], "line 1");
        let e = logs
            .get_log_events(&json!({"logGroupName": "/aws/lambda/nope", "logStreamName": "s"}))
            .unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
    }
}
