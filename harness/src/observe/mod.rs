//! The target's own figures over a run, read only through AWS's observability APIs — the
//! same calls against AWS and the local stack: CloudWatch `GetMetricData` (metrics.rs) and
//! CloudWatch Logs `FilterLogEvents` (logs.rs). Read once the run is over, over exactly its
//! window, after waiting until CloudWatch says the data is Complete and every invocation's
//! REPORT line has arrived (AWS publishes late); what is still missing when the wait ends
//! is listed in `incomplete`, and thresholds on it fail saying so.
//!
//! Functions are named by logical id without its `Function` suffix (`SendMessageFunction` →
//! `SendMessage`), so SLO files read the same for every stack.

pub mod logs;
pub mod metrics;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::error::HarnessError;
use metrics::Answer;

/// What a run's checks read, by logical name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Logical name → physical function name.
    pub functions: BTreeMap<String, String>,
    /// The WebSocket API's id and stage.
    pub api: Option<(String, String)>,
    pub tables: Vec<String>,
    pub dlq_url: Option<String>,
}

impl Resources {
    /// From a stack's outputs as the reference template names them (`{Name}FunctionName`,
    /// `WebSocketApiId`, `StageName`, `ConnectionsTableName`, `DeadLetterQueueUrl`).
    pub fn from_outputs(outputs: &BTreeMap<String, String>) -> Resources {
        Resources {
            functions: outputs
                .iter()
                .filter_map(|(k, v)| Some((k.strip_suffix("FunctionName")?.to_string(), v.clone())))
                .collect(),
            api: outputs
                .get("WebSocketApiId")
                .zip(outputs.get("StageName"))
                .map(|(a, s)| (a.clone(), s.clone())),
            tables: outputs
                .get("ConnectionsTableName")
                .cloned()
                .into_iter()
                .collect(),
            dlq_url: outputs.get("DeadLetterQueueUrl").cloned(),
        }
    }

    /// The same names as outputs, for what reads outputs (chaos, the retries check).
    pub fn as_outputs(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .functions
            .iter()
            .map(|(k, v)| (format!("{k}FunctionName"), v.clone()))
            .collect();
        if let Some((api, stage)) = &self.api {
            out.insert("WebSocketApiId".into(), api.clone());
            out.insert("StageName".into(), stage.clone());
        }
        if let Some(t) = self.tables.first() {
            out.insert("ConnectionsTableName".into(), t.clone());
        }
        if let Some(q) = &self.dlq_url {
            out.insert("DeadLetterQueueUrl".into(), q.clone());
        }
        out
    }

    pub fn dlq_name(&self) -> Option<&str> {
        self.dlq_url.as_deref()?.rsplit('/').next()
    }
}

/// The run's window in epoch milliseconds, `[start_ms, end_ms)`, on period boundaries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// `[from, to)` widened to whole periods.
    pub fn covering(from_ms: i64, to_ms: i64, period_s: i32) -> Window {
        let p = i64::from(period_s) * 1000;
        Window {
            start_ms: from_ms.div_euclid(p) * p,
            end_ms: (to_ms + p - 1).div_euclid(p) * p,
        }
    }
}

/// Where the figures come from and how long to wait for them.
#[derive(Clone)]
pub struct Source {
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub resources: Resources,
    /// The period asked for: 1 s from the local stack, 60 s (AWS's resolution) otherwise.
    pub period_s: i32,
    /// How long to wait after the run for complete data.
    pub settle: Duration,
    /// The least time after the window's end before an answer counts as complete: AWS
    /// answers `Complete` with what has landed so far, and its Lambda metrics land a minute
    /// or more late (0 for the local stack, which says `PartialData` while it holds data back).
    pub delay: Duration,
    /// How often to ask again while waiting.
    pub poll: Duration,
    /// Named in the summary: "CloudWatch at {endpoint}" or "CloudWatch in {region}".
    pub label: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSample {
    /// ConcurrentExecutions, Maximum over the period.
    pub concurrency: u64,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    /// REPORT lines with Init Duration whose invocation began in the period.
    pub cold_starts: u64,
}

/// One period of the source: counts are Sums over it, levels Maximums.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// The period's end, in seconds from the run's start.
    pub t_s: f64,
    pub functions: BTreeMap<String, FunctionSample>,
    /// AWS/ApiGateway ClientError (4XX before the integration: throttled, unroutable).
    pub client_errors: u64,
    pub integration_errors: u64,
    pub execution_errors: u64,
    /// AWS/SQS ApproximateNumberOfMessagesVisible, Maximum.
    pub dlq_depth: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionTotals {
    pub physical_name: String,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    /// When each cold start began, seconds from the run's start (from the REPORT line's
    /// time less its durations: the logs' millisecond resolution, finer than a period).
    pub cold_start_at_s: Vec<f64>,
    /// Init Duration of the cold starts, ms: mean and largest.
    pub init_ms_mean: Option<f64>,
    pub init_ms_max: Option<f64>,
    /// ConcurrentExecutions' Maximum over the run's window.
    pub max_concurrency: u64,
    /// AsyncEventsDropped: events that failed for good (sent to the DLQ when there is one).
    pub dead_lettered: u64,
    pub async_events_received: u64,
    pub dead_letter_errors: u64,
    /// Invocations repeating a request id (Lambda's async retries), from the REPORT lines.
    pub async_retries: u64,
    pub async_event_age_ms_max: Option<f64>,
    /// REPORT lines with `Status: timeout` / any other non-success status.
    pub timeouts: u64,
    pub crashes: u64,
    pub duration_ms_total: f64,
    /// The worst period's p50 and p99 (a run-wide percentile is not a sum of periods').
    pub duration_p50_ms: Option<f64>,
    pub duration_p99_ms: Option<f64>,
    pub duration_max_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiTotals {
    pub connects: u64,
    /// MessageCount: messages from clients and to them (@connections posts).
    pub messages: u64,
    /// @connections posts: MessageCount less the frames the clients sent (set by the run).
    pub posts: u64,
    pub client_errors: u64,
    pub integration_errors: u64,
    pub execution_errors: u64,
    /// IntegrationLatency's worst period p99, ms.
    pub integration_latency_p99_ms: Option<f64>,
    /// 410s to a connection that had answered 410 before (the broadcast worker's lines).
    pub gone_repeats: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TableTotals {
    pub read_throttle_events: u64,
    pub write_throttle_events: u64,
    pub consumed_read_capacity_units: f64,
    pub consumed_write_capacity_units: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Where the figures came from.
    pub source: String,
    /// The source's resolution: every sample covers this many seconds.
    pub period_s: i32,
    /// The window read, epoch ms.
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    /// How long the run waited after its end for the data to complete.
    pub waited_s: f64,
    /// Empty when every figure is complete; else what is not, each naming its metric.
    pub incomplete: Vec<String>,
    /// Caveats on how figures were judged (a phase shorter than a period).
    pub notes: Vec<String>,
    pub series: Vec<Sample>,
    pub functions: BTreeMap<String, FunctionTotals>,
    pub api: ApiTotals,
    pub tables: BTreeMap<String, TableTotals>,
    pub dlq_sent: Option<u64>,
    pub dlq_depth_max: Option<u64>,
}

impl Summary {
    /// A function's per-sample counter summed over the samples whose period's middle lies
    /// in `[from_s, to_s)`.
    pub fn sum_between(
        &self,
        function: &str,
        from_s: f64,
        to_s: f64,
        field: fn(&FunctionSample) -> u64,
    ) -> u64 {
        let half = f64::from(self.period_s) / 2.0;
        self.series
            .iter()
            .filter(|s| s.t_s - half >= from_s && s.t_s - half < to_s)
            .filter_map(|s| s.functions.get(function).map(field))
            .sum()
    }

    /// Why figures of `function` (all when None) are not to be trusted yet, if they are not.
    pub fn incomplete_for(&self, function: Option<&str>) -> Option<String> {
        let hits: Vec<&String> = self
            .incomplete
            .iter()
            .filter(|m| {
                m.starts_with(ALL)
                    || function.is_none_or(|f| m.starts_with(&format!("function {f} ")))
            })
            .collect();
        (!hits.is_empty()).then(|| {
            let all: Vec<&str> = hits.iter().map(|s| s.as_str()).collect();
            format!("incomplete data from {}: {}", self.source, all.join("; "))
        })
    }
}

/// How an `incomplete` entry that concerns every figure begins.
const ALL: &str = "all figures: ";

/// Reads the window, waiting up to `source.settle` for complete data; `progress` is told
/// what it waits for.
pub async fn collect(
    source: &Source,
    window: Window,
    run_start_ms: i64,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary, HarnessError> {
    let queries = metrics::queries(&source.resources);
    let began = std::time::Instant::now();
    // Nothing about a period can be complete before it ends.
    let wait = window.end_ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    loop {
        let answers = metrics::fetch(&source.cloudwatch, &queries, window, source.period_s).await?;
        let mut logs = BTreeMap::new();
        for (name, physical) in &source.resources.functions {
            let read = logs::read(
                &source.logs,
                physical,
                window.start_ms,
                window.end_ms,
                now_ms(),
            )
            .await
            .map_err(HarnessError::Target)?;
            logs.insert(name.clone(), read);
        }
        let mut summary = build(source, window, run_start_ms, &queries, &answers, &logs);
        summary.waited_s = began.elapsed().as_secs_f64();
        let age_ms = now_ms() - window.end_ms;
        if (age_ms as u128) < source.delay.as_millis() {
            summary.incomplete.insert(
                0,
                format!(
                    "{ALL}the window ended {:.0} s ago; data counts as complete {:.0} s after it (--metrics-delay)",
                    age_ms as f64 / 1000.0,
                    source.delay.as_secs_f64()
                ),
            );
        }
        if summary.incomplete.is_empty() || began.elapsed() >= source.settle {
            return Ok(summary);
        }
        progress(&format!(
            "waiting for complete data from {} ({:.0} of {:.0} s): {}",
            source.label,
            began.elapsed().as_secs_f64(),
            source.settle.as_secs_f64(),
            summary.incomplete.join("; ")
        ));
        tokio::time::sleep(source.poll).await;
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The summary from the answers and the logs.
fn build(
    source: &Source,
    window: Window,
    run_start_ms: i64,
    queries: &[metrics::Query],
    answers: &BTreeMap<String, Answer>,
    logs: &BTreeMap<String, logs::FunctionLogs>,
) -> Summary {
    let period_ms = i64::from(source.period_s) * 1000;
    let mut incomplete = Vec::new();
    for q in queries {
        let a = &answers[&q.id];
        if !a.complete {
            let whose = match q.dimensions.first() {
                Some(("FunctionName", _)) => {
                    let name = function_of(&source.resources, &q.dimensions[0].1);
                    format!("function {name} ")
                }
                Some((_, v)) => format!("{v} "),
                None => String::new(),
            };
            incomplete.push(format!(
                "{whose}{}/{} {}: {}",
                q.namespace,
                q.metric,
                q.stat,
                a.status.as_deref().unwrap_or("not complete")
            ));
        }
    }
    let get = |kind: &str, i: usize, metric: &str, stat: &str| -> &[(i64, f64)] {
        answers
            .get(&metrics::id(kind, i, metric, stat))
            .map(|a| a.points.as_slice())
            .unwrap_or(&[])
    };
    // `+ 0.0`: an empty f64 sum is -0.0.
    let sum = |p: &[(i64, f64)]| p.iter().map(|x| x.1).sum::<f64>() + 0.0;
    let max = |p: &[(i64, f64)]| p.iter().map(|x| x.1).reduce(f64::max);
    // Samples keyed by period start; every period of the window gets one.
    let mut samples: BTreeMap<i64, Sample> = (0..)
        .map(|k| window.start_ms + k * period_ms)
        .take_while(|t| *t < window.end_ms)
        .map(|t| {
            let s = Sample {
                t_s: (t + period_ms - run_start_ms) as f64 / 1000.0,
                ..Sample::default()
            };
            (t, s)
        })
        .collect();
    let bucket = |t_ms: f64| {
        window.start_ms + ((t_ms as i64 - window.start_ms).div_euclid(period_ms)) * period_ms
    };
    let mut functions = BTreeMap::new();
    for (i, (name, physical)) in source.resources.functions.iter().enumerate() {
        let series = |metric: &str, stat: &str| get("f", i, metric, stat);
        type Set = fn(&mut FunctionSample, u64);
        let per_period: [(&str, &str, Set); 4] = [
            ("Invocations", "Sum", |f, v| f.invocations += v),
            ("Errors", "Sum", |f, v| f.errors += v),
            ("Throttles", "Sum", |f, v| f.throttles += v),
            ("ConcurrentExecutions", "Maximum", |f, v| {
                f.concurrency = f.concurrency.max(v)
            }),
        ];
        for (metric, stat, set) in per_period {
            for (t, v) in series(metric, stat) {
                if let Some(s) = samples.get_mut(&bucket(*t as f64)) {
                    set(s.functions.entry(name.clone()).or_default(), *v as u64);
                }
            }
        }
        let none = logs::FunctionLogs::default();
        let log = logs.get(name).unwrap_or(&none);
        for r in log.cold_starts() {
            if let Some(s) = samples.get_mut(&bucket(r.started_ms)) {
                s.functions.entry(name.clone()).or_default().cold_starts += 1;
            }
        }
        let inits: Vec<f64> = log.cold_starts().filter_map(|r| r.init_ms).collect();
        let invocations = sum(series("Invocations", "Sum")) as u64;
        let errors = sum(series("Errors", "Sum")) as u64;
        // Every invocation writes one REPORT line; until they are all in, cold starts and
        // retries are not known (Logs lag metrics on AWS).
        let reports = log.reports.len() as u64;
        if reports < invocations.saturating_sub(errors) {
            incomplete.push(format!(
                "function {name} logs: {reports} REPORT lines of {invocations} invocations"
            ));
        }
        functions.insert(
            name.clone(),
            FunctionTotals {
                physical_name: physical.clone(),
                invocations,
                errors,
                throttles: sum(series("Throttles", "Sum")) as u64,
                cold_starts: inits.len() as u64,
                cold_start_at_s: log
                    .cold_starts()
                    .map(|r| ((r.started_ms - run_start_ms as f64) / 1000.0 * 1e3).round() / 1e3)
                    .collect(),
                init_ms_mean: (!inits.is_empty())
                    .then(|| inits.iter().sum::<f64>() / inits.len() as f64),
                init_ms_max: inits.iter().copied().reduce(f64::max),
                max_concurrency: max(series("ConcurrentExecutions", "Maximum")).unwrap_or(0.0)
                    as u64,
                dead_lettered: sum(series("AsyncEventsDropped", "Sum")) as u64,
                async_events_received: sum(series("AsyncEventsReceived", "Sum")) as u64,
                dead_letter_errors: sum(series("DeadLetterErrors", "Sum")) as u64,
                async_retries: log.retries(),
                async_event_age_ms_max: max(series("AsyncEventAge", "Maximum")),
                timeouts: log
                    .reports
                    .iter()
                    .filter(|r| r.status.as_deref() == Some("timeout"))
                    .count() as u64,
                crashes: log
                    .reports
                    .iter()
                    .filter(|r| r.status.as_deref().is_some_and(|s| s != "timeout"))
                    .count() as u64,
                duration_ms_total: sum(series("Duration", "Sum")),
                duration_p50_ms: max(series("Duration", "p50")),
                duration_p99_ms: max(series("Duration", "p99")),
                duration_max_ms: max(series("Duration", "Maximum")),
            },
        );
    }
    let mut api = ApiTotals {
        gone_repeats: logs.values().map(logs::FunctionLogs::gone_repeats).sum(),
        ..ApiTotals::default()
    };
    if source.resources.api.is_some() {
        let a = |metric: &str| get("a", 0, metric, "Sum");
        api.connects = sum(a("ConnectCount")) as u64;
        api.messages = sum(a("MessageCount")) as u64;
        api.client_errors = sum(a("ClientError")) as u64;
        api.integration_errors = sum(a("IntegrationError")) as u64;
        api.execution_errors = sum(a("ExecutionError")) as u64;
        api.integration_latency_p99_ms = max(get("a", 0, "IntegrationLatency", "p99"));
        type Slot = fn(&mut Sample) -> &mut u64;
        let per_period: [(&str, Slot); 3] = [
            ("ClientError", |s| &mut s.client_errors),
            ("IntegrationError", |s| &mut s.integration_errors),
            ("ExecutionError", |s| &mut s.execution_errors),
        ];
        for (metric, slot) in per_period {
            for (t, v) in a(metric) {
                if let Some(s) = samples.get_mut(&bucket(*t as f64)) {
                    *slot(s) += *v as u64;
                }
            }
        }
    }
    let tables = source
        .resources
        .tables
        .iter()
        .enumerate()
        .map(|(i, table)| {
            let t = |metric: &str| sum(get("t", i, metric, "Sum"));
            (
                table.clone(),
                TableTotals {
                    read_throttle_events: t("ReadThrottleEvents") as u64,
                    write_throttle_events: t("WriteThrottleEvents") as u64,
                    consumed_read_capacity_units: t("ConsumedReadCapacityUnits"),
                    consumed_write_capacity_units: t("ConsumedWriteCapacityUnits"),
                },
            )
        })
        .collect();
    let has_dlq = source.resources.dlq_name().is_some();
    let depth = get("q", 0, "ApproximateNumberOfMessagesVisible", "Maximum");
    if has_dlq {
        for s in samples.values_mut() {
            s.dlq_depth = Some(0);
        }
        for (t, v) in depth {
            if let Some(s) = samples.get_mut(&bucket(*t as f64)) {
                s.dlq_depth = Some(*v as u64);
            }
        }
    }
    Summary {
        source: source.label.clone(),
        period_s: source.period_s,
        window_start_ms: window.start_ms,
        window_end_ms: window.end_ms,
        waited_s: 0.0,
        incomplete,
        notes: Vec::new(),
        series: samples.into_values().collect(),
        functions,
        api,
        tables,
        dlq_sent: has_dlq.then(|| sum(get("q", 0, "NumberOfMessagesSent", "Sum")) as u64),
        dlq_depth_max: has_dlq.then(|| max(depth).unwrap_or(0.0) as u64),
    }
}

fn function_of(resources: &Resources, physical: &str) -> String {
    resources
        .functions
        .iter()
        .find(|(_, p)| *p == physical)
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| physical.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_whole_periods() {
        let w = Window::covering(61_500, 125_001, 60);
        assert_eq!((w.start_ms, w.end_ms), (60_000, 180_000));
        let w = Window::covering(1_000, 3_000, 1);
        assert_eq!((w.start_ms, w.end_ms), (1_000, 3_000));
    }

    #[test]
    fn outputs_and_resources_map_both_ways() {
        let outputs: BTreeMap<String, String> = [
            ("ConnectFunctionName", "chat-ConnectFunction-A1"),
            ("WebSocketApiId", "abc"),
            ("StageName", "prod"),
            (
                "DeadLetterQueueUrl",
                "https://sqs.us-east-1.amazonaws.com/1/chat-dlq",
            ),
            ("WebSocketURL", "wss://x"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let r = Resources::from_outputs(&outputs);
        assert_eq!(r.functions["Connect"], "chat-ConnectFunction-A1");
        assert_eq!(r.dlq_name(), Some("chat-dlq"));
        let back = r.as_outputs();
        assert_eq!(back["ConnectFunctionName"], "chat-ConnectFunction-A1");
        assert_eq!(back["StageName"], "prod");
        assert!(!back.contains_key("WebSocketURL"));
    }
}
