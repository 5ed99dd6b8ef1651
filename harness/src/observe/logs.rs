//! What only a function's logs say, read with CloudWatch Logs `FilterLogEvents` from
//! `/aws/lambda/<name>`: the platform's REPORT lines (cold starts are those with
//! `Init Duration`, for any runtime; an async retry repeats its request id) and the
//! reference broadcast worker's "connection gone" lines (410s, by recipient).

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;

use crate::aws::describe;

/// One REPORT line.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub request_id: String,
    /// When the invocation began (init included), epoch ms: the event's time less the
    /// durations the line reports, so a cold start lands in the phase that caused it.
    pub started_ms: f64,
    pub duration_ms: f64,
    pub init_ms: Option<f64>,
    /// `Status:` on newer runtimes' lines (`timeout`, `error`); none on success.
    pub status: Option<String>,
}

/// Parses a text-format REPORT line (../shared/aws-observability.md §5.2); JSON-format
/// `platform.report` records too.
pub fn parse_report(message: &str, timestamp_ms: i64) -> Option<Report> {
    if let Some(rest) = message.trim_start().strip_prefix("REPORT RequestId: ") {
        let mut fields = rest.split('\t');
        let request_id = fields.next()?.trim().to_string();
        let mut r = Report {
            request_id,
            started_ms: 0.0,
            duration_ms: 0.0,
            init_ms: None,
            status: None,
        };
        for field in fields {
            let Some((key, value)) = field.split_once(':') else {
                continue;
            };
            let ms = || {
                value
                    .trim()
                    .trim_end_matches("ms")
                    .trim()
                    .parse::<f64>()
                    .ok()
            };
            match key.trim() {
                "Duration" => r.duration_ms = ms()?,
                "Init Duration" => r.init_ms = ms(),
                "Status" => r.status = Some(value.trim().to_string()),
                _ => {}
            }
        }
        r.started_ms = ended(timestamp_ms) - r.duration_ms - r.init_ms.unwrap_or(0.0);
        return Some(r);
    }
    let v: serde_json::Value = serde_json::from_str(message.trim()).ok()?;
    if v.get("type")?.as_str()? != "platform.report" {
        return None;
    }
    let record = v.get("record")?;
    let metrics = record.get("metrics")?;
    let duration_ms = metrics.get("durationMs")?.as_f64()?;
    let init_ms = metrics.get("initDurationMs").and_then(|d| d.as_f64());
    let status = record
        .get("status")
        .and_then(|s| s.as_str())
        .filter(|s| *s != "success")
        .map(str::to_string);
    Some(Report {
        request_id: record.get("requestId")?.as_str()?.to_string(),
        started_ms: ended(timestamp_ms) - duration_ms - init_ms.unwrap_or(0.0),
        duration_ms,
        init_ms,
        status,
    })
}

/// When the invocation ended: an event's time is whole milliseconds, so the middle of
/// its millisecond.
fn ended(timestamp_ms: i64) -> f64 {
    timestamp_ms as f64 + 0.5
}

/// One 410 a reference broadcast worker logged ("connection gone").
#[derive(Debug, Clone, PartialEq)]
pub struct Gone {
    pub recipient: String,
    /// When the broadcast read the page naming the recipient, and when it had handled the
    /// 410 (deleted the row, or not; epoch µs; absent from lines of other chats).
    pub read_at_us: Option<u64>,
    pub at_us: Option<u64>,
}

/// Parses a "connection gone" line (JSON, as the reference template logs, or
/// tracing's text format with `recipient=`).
pub fn parse_gone(message: &str) -> Option<Gone> {
    if !message.contains("connection gone") {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(message.trim()) {
        let fields = v.get("fields").unwrap_or(&v);
        let n = |k: &str| fields.get(k).and_then(serde_json::Value::as_u64);
        return Some(Gone {
            recipient: fields.get("recipient")?.as_str()?.to_string(),
            read_at_us: n("read_at_us"),
            at_us: n("at_us"),
        });
    }
    let value = |key: &str| {
        // ` key=`, so `at_us` is not found inside `read_at_us`.
        let at = message.find(&format!(" {key}="))?;
        let rest = &message[at + key.len() + 2..];
        let v: String = rest
            .trim_start_matches('"')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        (!v.is_empty()).then_some(v)
    };
    Some(Gone {
        recipient: value("recipient")?,
        read_at_us: value("read_at_us").and_then(|v| v.parse().ok()),
        at_us: value("at_us").and_then(|v| v.parse().ok()),
    })
}

/// Every event in `/aws/lambda/{function}` matching `pattern` over `[from_ms, to_ms)`,
/// following NextToken to the end (pages may be empty mid-way, as AWS documents).
pub async fn filter_all(
    logs: &aws_sdk_cloudwatchlogs::Client,
    function: &str,
    pattern: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<FilteredLogEvent>, String> {
    let mut events = Vec::new();
    let mut token = None;
    loop {
        let page = logs
            .filter_log_events()
            .log_group_name(format!("/aws/lambda/{function}"))
            .filter_pattern(pattern)
            .start_time(from_ms)
            .end_time(to_ms)
            .set_next_token(token)
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            // No group yet: a function never invoked has no logs, which is no event.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(events);
            }
            Err(e) => return Err(format!("FilterLogEvents {function}: {}", describe(&e))),
        };
        events.extend(page.events().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(events);
        }
    }
}

/// What one function's logs say over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionLogs {
    /// REPORT lines of invocations that began inside the window.
    pub reports: Vec<Report>,
    /// 410s by recipient (the reference broadcast worker's lines).
    pub gone: BTreeMap<String, Vec<Gone>>,
}

impl FunctionLogs {
    pub fn cold_starts(&self) -> impl Iterator<Item = &Report> {
        self.reports.iter().filter(|r| r.init_ms.is_some())
    }

    /// Invocations beyond the first of each request id: Lambda's async retries reuse it.
    pub fn retries(&self) -> u64 {
        let mut ids: Vec<&str> = self.reports.iter().map(|r| r.request_id.as_str()).collect();
        let all = ids.len();
        ids.sort_unstable();
        ids.dedup();
        (all - ids.len()) as u64
    }

    /// 410s to a recipient whose row was read again after its first 410 had been handled:
    /// a stale row kept and paid for again. A broadcast that read the row before that (in
    /// flight at the same time) is no repeat. Lines without times count every 410
    /// after the first.
    pub fn gone_repeats(&self) -> u64 {
        let mut repeats = 0;
        for lines in self.gone.values() {
            let first = lines.iter().filter_map(|g| g.at_us).min();
            repeats += match first {
                Some(first) => lines
                    .iter()
                    .filter(|g| g.read_at_us.is_some_and(|r| r > first))
                    .count(),
                None => lines.len().saturating_sub(1),
            } as u64;
        }
        repeats
    }
}

/// Reads `function`'s REPORT and "connection gone" lines for invocations that began in
/// `[from_ms, to_ms)`; the logs are read up to `now_ms`, as a REPORT follows its start.
pub async fn read(
    logs: &aws_sdk_cloudwatchlogs::Client,
    function: &str,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<FunctionLogs, String> {
    let upto = now_ms.max(to_ms) + 1;
    let reports = filter_all(logs, function, "REPORT RequestId", from_ms, upto).await?;
    let mut out = FunctionLogs::default();
    for e in &reports {
        let (Some(m), Some(t)) = (e.message(), e.timestamp()) else {
            continue;
        };
        if let Some(r) = parse_report(m, t)
            && r.started_ms >= from_ms as f64 - 1.0
            && r.started_ms < to_ms as f64
        {
            out.reports.push(r);
        }
    }
    let gone = filter_all(logs, function, "\"connection gone\"", from_ms, to_ms).await?;
    for e in &gone {
        if let Some(g) = e.message().and_then(parse_gone) {
            out.gone.entry(g.recipient.clone()).or_default().push(g);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_report_lines_parse_with_and_without_init() {
        let cold = "REPORT RequestId: 3f1c\tDuration: 38.66 ms\tBilled Duration: 39 ms\tMemory Size: 128 MB\tMax Memory Used: 54 MB\tInit Duration: 203.69 ms\t";
        let r = parse_report(cold, 10_000).unwrap();
        assert_eq!(r.request_id, "3f1c");
        assert_eq!(r.duration_ms, 38.66);
        assert_eq!(r.init_ms, Some(203.69));
        assert!((r.started_ms - (10_000.5 - 38.66 - 203.69)).abs() < 1e-9);
        let warm = "REPORT RequestId: 9a\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 54 MB\tStatus: timeout\t";
        let r = parse_report(warm, 5).unwrap();
        assert_eq!((r.init_ms, r.status.as_deref()), (None, Some("timeout")));
        assert_eq!(
            parse_report("START RequestId: 9a Version: $LATEST", 5),
            None
        );
        assert_eq!(
            parse_report("REPORT RequestId: x\tDuration: soon\t", 5),
            None
        );
    }

    #[test]
    fn json_platform_reports_parse() {
        let line = r#"{"time":"2026-01-01T00:00:00Z","type":"platform.report","record":{"requestId":"r1","metrics":{"durationMs":693.92,"billedDurationMs":694,"memorySizeMB":128,"maxMemoryUsedMB":84,"initDurationMs":397.68},"status":"success"}}"#;
        let r = parse_report(line, 2_000).unwrap();
        assert_eq!((r.request_id.as_str(), r.init_ms), ("r1", Some(397.68)));
        assert_eq!(r.status, None);
    }

    #[test]
    fn retries_and_gone_repeats_count_only_repeats() {
        let rep = |id: &str| Report {
            request_id: id.into(),
            started_ms: 0.0,
            duration_ms: 1.0,
            init_ms: None,
            status: None,
        };
        let g = |r: &str, read: Option<u64>, at: Option<u64>| Gone {
            recipient: r.into(),
            read_at_us: read,
            at_us: at,
        };
        let l = FunctionLogs {
            reports: vec![rep("a"), rep("b"), rep("a"), rep("a")],
            gone: [
                // x: a second broadcast in flight (read before the first 410), then one
                // that read the row after it: one repeat.
                (
                    "x".to_string(),
                    vec![
                        g("x", Some(1), Some(10)),
                        g("x", Some(5), Some(12)),
                        g("x", Some(20), Some(25)),
                    ],
                ),
                ("y".to_string(), vec![g("y", Some(1), Some(10))]),
                // Lines without times: every 410 after the first.
                (
                    "z".to_string(),
                    vec![g("z", None, None), g("z", None, None)],
                ),
            ]
            .into(),
        };
        assert_eq!(l.retries(), 2);
        assert_eq!(l.gone_repeats(), 2);
        let text = "2026-01-01T00:00:00Z  INFO reference_impl::fanout: connection gone recipient=Ab1= message_id=m read_at_us=7 at_us=9";
        assert_eq!(parse_gone(text), Some(g("Ab1=", Some(7), Some(9))));
        let json = r#"{"level":"INFO","fields":{"message":"connection gone","recipient":"Zz9","read_at_us":3,"at_us":4}}"#;
        assert_eq!(parse_gone(json), Some(g("Zz9", Some(3), Some(4))));
        assert_eq!(parse_gone("broadcast done"), None);
    }
}
