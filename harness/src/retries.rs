//! The retries-with-backoff check: the broadcast worker logs each retried @connections post
//! ("retrying post", with attempt and wait_ms); they are read back through CloudWatch Logs
//! `FilterLogEvents` (the same call on AWS and the local stack). Each (message, recipient)'s
//! retries must be numbered 1, 2, 3 …, wait within the full-jitter ceiling
//! min(cap, base × 2^(attempt−1)) (base and cap read from the function's configuration), and
//! be spaced at least the wait they announced.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::aws::describe;

/// One logged retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub key: String,
    pub attempt: u32,
    pub wait_ms: u64,
    /// When the line was written (its `at_us`, epoch microseconds; the log event's
    /// whole-millisecond arrival time when the line has none).
    pub at_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttemptStats {
    pub count: u64,
    pub mean_wait_ms: f64,
    pub max_wait_ms: u64,
    pub ceiling_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub retries: u64,
    /// Retries outside the rules above, each described.
    pub violations: Vec<String>,
    pub by_attempt: BTreeMap<u32, AttemptStats>,
}

/// Slack for clock reads around the sleep.
const CLOCK_MS: f64 = 1.0;

pub fn check(mut retries: Vec<Retry>, base_ms: u64, cap_ms: u64) -> Check {
    let ceiling = |attempt: u32| {
        base_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(40))
            .min(cap_ms)
    };
    retries.sort_by(|a, b| (&a.key, a.attempt).cmp(&(&b.key, b.attempt)));
    let mut out = Check {
        retries: retries.len() as u64,
        ..Check::default()
    };
    for (i, r) in retries.iter().enumerate() {
        let stats = out.by_attempt.entry(r.attempt).or_default();
        stats.count += 1;
        stats.mean_wait_ms += r.wait_ms as f64;
        stats.max_wait_ms = stats.max_wait_ms.max(r.wait_ms);
        stats.ceiling_ms = ceiling(r.attempt);
        if r.wait_ms > ceiling(r.attempt) {
            out.violations.push(format!(
                "{}: attempt {} waited {} ms, over the ceiling {} ms",
                r.key,
                r.attempt,
                r.wait_ms,
                ceiling(r.attempt)
            ));
        }
        let previous = i
            .checked_sub(1)
            .map(|p| &retries[p])
            .filter(|p| p.key == r.key);
        match previous {
            None if r.attempt != 1 => out.violations.push(format!(
                "{}: the first logged retry is attempt {}",
                r.key, r.attempt
            )),
            Some(p) if r.attempt != p.attempt + 1 => out.violations.push(format!(
                "{}: attempt {} follows attempt {}",
                r.key, r.attempt, p.attempt
            )),
            Some(p) if r.at_ms - p.at_ms + CLOCK_MS < p.wait_ms as f64 => {
                out.violations.push(format!(
                    "{}: attempt {} came {:.1} ms after attempt {}, which announced a {} ms wait",
                    r.key,
                    r.attempt,
                    r.at_ms - p.at_ms,
                    p.attempt,
                    p.wait_ms
                ))
            }
            _ => {}
        }
    }
    for s in out.by_attempt.values_mut() {
        s.mean_wait_ms /= s.count as f64;
    }
    out
}

fn number(fields: &Value, key: &str) -> Option<u64> {
    let v = fields.get(key)?;
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// A log line's retry, from the JSON the Rust runtime writes (`fields` holds the values).
pub fn parse(line: &str, event_ms: i64) -> Option<Retry> {
    let v: Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields").unwrap_or(&v);
    let at_ms = number(fields, "at_us")
        .map(|us| us as f64 / 1000.0)
        .unwrap_or(event_ms as f64);
    if fields.get("message").and_then(Value::as_str) != Some("retrying post") {
        return None;
    }
    Some(Retry {
        key: format!(
            "{}→{}",
            fields.get("message_id")?.as_str()?,
            fields.get("recipient")?.as_str()?
        ),
        attempt: number(fields, "attempt")? as u32,
        wait_ms: number(fields, "wait_ms")?,
        at_ms,
    })
}

/// Reads `function`'s retries logged in `[from_ms, to_ms]` and checks them.
pub async fn read(
    logs: &aws_sdk_cloudwatchlogs::Client,
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Check, String> {
    let config = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| format!("GetFunctionConfiguration {function}: {}", describe(&e)))?;
    let env = config.environment().and_then(|e| e.variables());
    let setting = |k: &str, default: u64| {
        env.and_then(|v| v.get(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // reference-impl's defaults when unset.
    let (base, cap) = (setting("RETRY_BASE_MS", 50), setting("RETRY_CAP_MS", 2_000));
    let events =
        crate::observe::logs::filter_all(logs, function, "\"retrying post\"", from_ms, to_ms)
            .await?;
    let retries = events
        .iter()
        .filter_map(|e| parse(e.message()?, e.timestamp()?))
        .collect();
    Ok(check(retries, base, cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(key: &str, attempt: u32, wait_ms: u64, at_ms: i64) -> Retry {
        Retry {
            key: key.into(),
            attempt,
            wait_ms,
            at_ms: at_ms as f64,
        }
    }

    #[test]
    fn backoff_within_the_ceilings_passes_and_each_rule_is_caught() {
        let good = vec![
            r("m→a", 1, 40, 0),
            r("m→a", 2, 90, 41),
            r("m→a", 3, 110, 140),
            r("m→b", 1, 0, 5),
        ];
        let c = check(good, 50, 120);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        assert_eq!(c.by_attempt[&2].ceiling_ms, 100);
        assert_eq!(c.by_attempt[&1].count, 2);
        let cases = [
            (vec![r("m→a", 1, 60, 0)], "over the ceiling 50"),
            (vec![r("m→a", 2, 10, 0)], "first logged retry is attempt 2"),
            (
                vec![r("m→a", 1, 10, 0), r("m→a", 3, 10, 50)],
                "attempt 3 follows attempt 1",
            ),
            (
                vec![r("m→a", 1, 40, 0), r("m→a", 2, 10, 20)],
                "announced a 40 ms wait",
            ),
            (vec![r("m→a", 3, 500, 0)], "over the ceiling 120"),
        ];
        for (retries, needle) in cases {
            let c = check(retries, 50, 120);
            assert!(
                c.violations.iter().any(|v| v.contains(needle)),
                "{needle}: {:?}",
                c.violations
            );
        }
    }

    #[test]
    fn the_runtime_json_line_parses() {
        let line = r#"{"level":"INFO","fields":{"message":"retrying post","recipient":"abc=","message_id":"m1","attempt":2,"wait_ms":37,"at_us":5000,"error":"x"},"target":"dynamowave_chat::fanout"}"#;
        assert_eq!(parse(line, 7), Some(r("m1→abc=", 2, 37, 5)));
        let bare = line.replace(r#""at_us":5000,"#, "");
        assert_eq!(
            parse(&bare, 7),
            Some(r("m1→abc=", 2, 37, 7)),
            "the event's time"
        );
        assert_eq!(parse(r#"{"fields":{"message":"broadcast done"}}"#, 7), None);
    }
}
