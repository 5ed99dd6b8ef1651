//! summary.json: schema `dynamowave.summary/1`. Fields are only ever added within a schema
//! version; tests check its shape.

use std::collections::BTreeMap;

use hdrhistogram::Histogram as Hdr;
use serde::Serialize;

use crate::accounting::Totals;
use crate::engine::RunOutput;
use crate::engine::record::Interval;
use crate::slo::{Aggregation, Observations, Verdict};

pub const SCHEMA: &str = "dynamowave.summary/1";

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Trend {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Trend {
    pub fn of(h: &Hdr<u64>) -> Option<Trend> {
        if h.is_empty() {
            return None;
        }
        let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
        Some(Trend {
            count: h.len(),
            min_ms: h.min() as f64 / 1000.0,
            mean_ms: h.mean() / 1000.0,
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: h.max() as f64 / 1000.0,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub schema: &'static str,
    pub run: RunInfo,
    pub passed: bool,
    pub thresholds: Vec<Verdict>,
    pub clients: Clients,
    pub messages: Messages,
    pub accounting: Totals,
    pub latency: Latency,
    /// Unstamped frames by their `code` or `message` (error frames and the like).
    pub other_frames: BTreeMap<String, u64>,
    pub intervals: Vec<Interval>,
    /// Each chaos action's window on the run's clock.
    pub chaos: Vec<crate::chaos::timeline::Window>,
    /// The target's figures from CloudWatch and its Logs over the run's window (null when
    /// the target is not a stack: a bare ws:// URL).
    pub telemetry: Option<crate::observe::Summary>,
    /// The broadcast worker's retried posts and the backoff check (when an SLO asks).
    pub retries: Option<crate::retries::Check>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub id: String,
    pub scenario: String,
    pub scenario_file: String,
    pub target: String,
    pub started_at: String,
    pub duration_s: f64,
    pub seed: u64,
    /// Why the run stopped early (an abortOnFail threshold), if it did.
    pub aborted: Option<String>,
    /// Whether the DLQ was read for the accounting (it needs an AWS endpoint).
    pub dead_letters_read: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Clients {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    pub failures_by_cause: BTreeMap<String, u64>,
    /// Closes the server initiated (or abnormal ones), by close code.
    pub closes_by_code: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Messages {
    pub scheduled: u64,
    /// Written to their socket: the only ones that count as sent.
    pub written: u64,
    pub send_failed: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// From each message's intended send time (free of coordinated omission).
    pub broadcast: Option<Trend>,
    /// The same deliveries from the actual send (the write), as wrk2 reports both.
    pub broadcast_from_send: Option<Trend>,
    /// How late each send left after its intended time.
    pub schedule_lag: Option<Trend>,
    pub connect: Option<Trend>,
    pub broadcast_by_phase: BTreeMap<String, Trend>,
}

/// Mid-run observations: the trends and connection figures so far (no accounting yet).
pub struct Live<'a> {
    pub record: &'a crate::engine::record::Record,
}

impl Observations for Live<'_> {
    fn observe(
        &self,
        metric: &str,
        tags: &BTreeMap<String, String>,
        a: Aggregation,
    ) -> Option<f64> {
        let r = self.record;
        match metric {
            "broadcast_latency"
            | "connect_latency"
            | "broadcast_latency_from_send"
            | "schedule_lag" => {
                let h = match (metric, tags.get("phase")) {
                    ("broadcast_latency", Some(p)) => r.latency_by_phase.get(p)?,
                    ("broadcast_latency", None) => &r.latency,
                    ("broadcast_latency_from_send", None) => &r.latency_from_send,
                    ("schedule_lag", None) => &r.schedule_lag,
                    ("connect_latency", _) => &r.connect,
                    _ => return None,
                };
                trend_value(h, a)
            }
            "connect_failed" => {
                let failed: u64 = r.connect_failures.values().sum();
                let attempted = r.clients.len() as u64;
                (attempted > 0).then(|| failed as f64 / attempted as f64)
            }
            _ => None,
        }
    }

    fn intervals(&self) -> Option<(&[Interval], bool)> {
        Some((&self.record.intervals, false))
    }
}

pub(crate) fn trend_value(h: &Hdr<u64>, a: Aggregation) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    let ms = |v: u64| v as f64 / 1000.0;
    Some(match a {
        Aggregation::Percentile(p) => ms(h.value_at_percentile(p)),
        Aggregation::Avg => h.mean() / 1000.0,
        Aggregation::Min => ms(h.min()),
        Aggregation::Max => ms(h.max()),
        Aggregation::Med => ms(h.value_at_quantile(0.5)),
        Aggregation::Rate | Aggregation::Count | Aggregation::Value => return None,
    })
}

/// What thresholds are evaluated against: the run's histograms and totals, the target's
/// figures (CloudWatch and Logs) and the dead letters.
pub struct Measured<'a> {
    pub output: &'a RunOutput,
    pub totals: &'a Totals,
    pub telemetry: Option<&'a crate::observe::Summary>,
    pub plan: &'a crate::scenario::Plan,
    pub dead: &'a [crate::accounting::DeadLetter],
    pub dlq_missing_attributes: u64,
    pub retries: Option<&'a crate::retries::Check>,
}

impl Measured<'_> {
    /// The target's metrics: per function (all functions without a tag), over the run or a
    /// phase (at the source's resolution).
    fn target_metric(&self, metric: &str, tags: &BTreeMap<String, String>) -> Option<f64> {
        let t = self.telemetry?;
        let function = tags.get("function");
        let picked = |name: &String| function.is_none_or(|f| f == name);
        if function.is_some_and(|f| !t.functions.contains_key(f)) {
            return None;
        }
        let field: fn(&crate::observe::FunctionSample) -> u64 = match metric {
            "cold_starts" => |s| s.cold_starts,
            "function_invocations" => |s| s.invocations,
            "function_errors" => |s| s.errors,
            "function_throttles" => |s| s.throttles,
            "function_max_concurrency" => {
                return t
                    .functions
                    .iter()
                    .filter(|(n, _)| picked(n))
                    .map(|(_, f)| f.max_concurrency as f64)
                    .reduce(f64::max);
            }
            "async_retries" => {
                let sum = t.functions.iter().filter(|(n, _)| picked(n));
                return Some(sum.map(|(_, f)| f.async_retries).sum::<u64>() as f64);
            }
            "gone_repeats" => return Some(t.api.gone_repeats as f64),
            _ => return None,
        };
        let (from, to) = match tags.get("phase") {
            Some(p) => {
                let phase = self.plan.phases.iter().find(|x| &x.name == p)?;
                let from = phase.start.as_secs_f64();
                (from, from + phase.duration.as_secs_f64())
            }
            None => (f64::MIN, f64::MAX),
        };
        if metric == "cold_starts" {
            // From the logs' own times, finer than the metrics' periods.
            let n = t
                .functions
                .iter()
                .filter(|(n, _)| picked(n))
                .flat_map(|(_, f)| &f.cold_start_at_s)
                .filter(|at| **at >= from && **at < to)
                .count();
            return Some(n as f64);
        }
        let names: Vec<&String> = t.functions.keys().filter(|n| picked(n)).collect();
        Some(
            names
                .iter()
                .map(|n| t.sum_between(n, from, to, field))
                .sum::<u64>() as f64,
        )
    }
}

impl Observations for Measured<'_> {
    fn note(
        &self,
        metric: &str,
        tags: &BTreeMap<String, String>,
    ) -> Option<Result<String, String>> {
        if !crate::slo::is_target_metric(metric) {
            return None;
        }
        let Some(t) = self.telemetry else {
            return Some(Err(
                "no data: the target is not a stack whose CloudWatch metrics and logs can be read (use the local stack, --stack, or `local up` with --endpoint-url)".into(),
            ));
        };
        let function = tags.get("function").map(String::as_str);
        if let Some(f) = function
            && !t.functions.contains_key(f)
        {
            let known: Vec<&str> = t.functions.keys().map(String::as_str).collect();
            return Some(Err(format!(
                "no data: the stack has no function {f} (it has {})",
                known.join(", ")
            )));
        }
        if let Some(why) = t.incomplete_for(function) {
            return Some(Err(why));
        }
        let name = crate::slo::Threshold::display_name(metric, tags);
        t.notes
            .iter()
            .find(|n| n.starts_with(&format!("{name}:")))
            .map(|n| Ok(n.clone()))
    }

    fn observe(
        &self,
        metric: &str,
        tags: &BTreeMap<String, String>,
        a: Aggregation,
    ) -> Option<f64> {
        let r = &self.output.record;
        let trend = |h: &Hdr<u64>| trend_value(h, a);
        if let Some(v) = self.target_metric(metric, tags) {
            return Some(v);
        }
        if let Some(phase) = tags.get("phase") {
            return match metric {
                "broadcast_latency" => r.latency_by_phase.get(phase).and_then(trend),
                _ => None,
            };
        }
        let t = self.totals;
        let failed: u64 = r.connect_failures.values().sum();
        let attempted = self.output.clients_attempted;
        match metric {
            "broadcast_latency" => trend(&r.latency),
            "broadcast_latency_from_send" => trend(&r.latency_from_send),
            "schedule_lag" => trend(&r.schedule_lag),
            "connect_latency" => trend(&r.connect),
            "delivery_ratio" => t.delivery_ratio(),
            "connect_failed" => (attempted > 0).then(|| failed as f64 / attempted as f64),
            "delivered" => Some(t.delivered as f64),
            "late" => Some(t.late as f64),
            "lost" => Some(t.lost as f64),
            "duplicated" => Some(t.duplicated as f64),
            "dead_lettered" => Some(t.dead_lettered as f64),
            "expected" => Some(t.expected as f64),
            "error_frames" => Some(r.other_frames.values().sum::<u64>() as f64),
            "messages_sent" => Some(r.written as f64),
            "unconfirmed" => Some(t.unconfirmed as f64),
            "send_unconfirmed" => Some(t.send_unconfirmed as f64),
            "edge_throttled" => {
                let handshakes: u64 = r
                    .connect_failures
                    .iter()
                    .filter(|(cause, _)| cause.contains("429"))
                    .map(|(_, n)| n)
                    .sum();
                let frames: u64 = r
                    .other_frames
                    .iter()
                    .filter(|(text, _)| text.contains("Too Many Requests"))
                    .map(|(_, n)| n)
                    .sum();
                Some((handshakes + frames) as f64)
            }
            "dlq_missing_attributes" => Some(self.dlq_missing_attributes as f64),
            "post_retries" => self.retries.map(|c| c.retries as f64),
            "retry_backoff_violations" => self.retries.map(|c| c.violations.len() as f64),
            "dlq_duplicates" => {
                let mut seen = std::collections::HashSet::new();
                let dups = self
                    .dead
                    .iter()
                    .filter(|d| !seen.insert((d.sender, d.seq, d.recipient)))
                    .count();
                Some(dups as f64)
            }
            _ => None,
        }
    }

    fn intervals(&self) -> Option<(&[Interval], bool)> {
        Some((&self.output.record.intervals, true))
    }
}

pub fn build(
    output: &RunOutput,
    totals: Totals,
    verdicts: Vec<Verdict>,
    plan: &crate::scenario::Plan,
    target: &str,
    dead_letters_read: bool,
) -> Summary {
    let r = &output.record;
    let failed: u64 = r.connect_failures.values().sum();
    Summary {
        schema: SCHEMA,
        run: RunInfo {
            id: format!("{:08x}", output.run_id),
            scenario: plan.name.clone(),
            scenario_file: plan.source.display().to_string(),
            target: target.to_string(),
            started_at: output.started_at.to_rfc3339(),
            duration_s: output.elapsed.as_secs_f64(),
            seed: plan.seed,
            aborted: output.aborted.clone(),
            dead_letters_read,
        },
        passed: verdicts.iter().all(|v| v.passed),
        thresholds: verdicts,
        clients: Clients {
            attempted: output.clients_attempted,
            connected: r.clients.values().filter(|c| c.joined_us.is_some()).count() as u64,
            failed,
            failures_by_cause: r.connect_failures.clone(),
            closes_by_code: r.closes.clone(),
        },
        messages: Messages {
            scheduled: output.messages_scheduled,
            written: r.written,
            send_failed: r.send_failed,
        },
        accounting: totals,
        latency: Latency {
            broadcast: Trend::of(&r.latency),
            broadcast_from_send: Trend::of(&r.latency_from_send),
            schedule_lag: Trend::of(&r.schedule_lag),
            connect: Trend::of(&r.connect),
            broadcast_by_phase: r
                .latency_by_phase
                .iter()
                .filter_map(|(k, h)| Some((k.clone(), Trend::of(h)?)))
                .collect(),
        },
        other_frames: r.other_frames.clone(),
        intervals: r.intervals.clone(),
        chaos: Vec::new(),
        telemetry: None,
        retries: None,
    }
}
