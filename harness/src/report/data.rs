//! What the HTML report and `compare` read: summary.json as data (so old report folders and
//! sections added by later versions of the harness both load) and the run's latency
//! histogram, either from a finished run or from a report folder's latency.hlog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram as Hdr;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde::Deserialize;

use super::summary::{SCHEMA, Summary};
use crate::engine::record::{Interval, histogram};
use crate::error::HarnessError;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryView {
    pub schema: String,
    pub run: RunView,
    pub passed: bool,
    #[serde(default)]
    pub thresholds: Vec<ThresholdView>,
    #[serde(default)]
    pub clients: ClientsView,
    #[serde(default)]
    pub messages: MessagesView,
    pub accounting: AccountingView,
    pub latency: LatencyView,
    #[serde(default)]
    pub other_frames: BTreeMap<String, u64>,
    #[serde(default)]
    pub intervals: Vec<Interval>,
    /// The chaos timeline, when the run had one.
    #[serde(default)]
    pub chaos: Option<Vec<ChaosAction>>,
    /// The target's own figures over time, when it offers them.
    #[serde(default)]
    pub telemetry: Option<Telemetry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunView {
    pub id: String,
    pub scenario: String,
    pub target: String,
    pub started_at: String,
    pub duration_s: f64,
    pub aborted: Option<String>,
    pub dead_letters_read: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ThresholdView {
    pub metric: String,
    pub name: String,
    pub expression: String,
    pub observed: Option<f64>,
    pub passed: bool,
    pub abort_on_fail: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientsView {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    pub failures_by_cause: BTreeMap<String, u64>,
    pub closes_by_code: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessagesView {
    pub scheduled: u64,
    /// Absent before the harness counted writes.
    pub written: Option<u64>,
    pub send_failed: u64,
}

impl MessagesView {
    /// Messages that count as sent: written, or for summaries from before writes were
    /// counted, scheduled less those that failed.
    pub fn sent(&self) -> u64 {
        self.written
            .unwrap_or_else(|| self.scheduled.saturating_sub(self.send_failed))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountingView {
    pub expected: u64,
    pub delivered: u64,
    pub late: u64,
    pub dead_lettered: u64,
    pub lost: u64,
    pub duplicated: u64,
    #[serde(default)]
    pub unexpected: u64,
    #[serde(default)]
    pub departed: u64,
    #[serde(default)]
    pub unconfirmed: u64,
    #[serde(default)]
    pub unconfirmed_by_cause: BTreeMap<String, u64>,
    #[serde(default)]
    pub send_unconfirmed: u64,
    #[serde(default)]
    pub uncertain: Vec<UncertainView>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UncertainView {
    pub sender: u32,
    pub seq: u32,
    pub cause: String,
    pub pairs: u64,
}

impl AccountingView {
    pub fn delivery_ratio(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.delivered as f64 / self.expected as f64)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyView {
    pub broadcast: Option<TrendView>,
    #[serde(default)]
    pub broadcast_from_send: Option<TrendView>,
    #[serde(default)]
    pub schedule_lag: Option<TrendView>,
    #[serde(default)]
    pub connect: Option<TrendView>,
    #[serde(default)]
    pub broadcast_by_phase: BTreeMap<String, TrendView>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrendView {
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChaosAction {
    pub action: String,
    pub target: String,
    pub at_s: f64,
    pub for_s: Option<f64>,
    pub applied_at_s: Option<f64>,
    pub reverted_at_s: Option<f64>,
    pub params: serde_json::Value,
    pub error: Option<String>,
}

impl ChaosAction {
    /// The window it was in force: as applied and reverted when known, else as planned.
    pub fn window(&self, run_end_s: f64) -> (f64, f64) {
        let start = self.applied_at_s.unwrap_or(self.at_s);
        let end = self
            .reverted_at_s
            .or(self.for_s.map(|f| self.at_s + f))
            .unwrap_or(run_end_s);
        (start, end.max(start))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Telemetry {
    /// Where the figures came from (e.g. "CloudWatch at http://127.0.0.1:4566").
    pub source: String,
    /// Every point covers this many seconds (0 in summaries written before it was kept:
    /// read as 1).
    pub period_s: i32,
    pub incomplete: Vec<String>,
    pub series: Vec<TelemetryPoint>,
    pub functions: BTreeMap<String, FunctionTotals>,
}

/// One period of the source: counts are sums over it; concurrency is its maximum.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TelemetryPoint {
    /// The period's end, seconds from the run's start.
    pub t_s: f64,
    pub functions: BTreeMap<String, FunctionPoint>,
    /// AWS/ApiGateway ClientError (summaries before CloudWatch: edge throttles).
    #[serde(alias = "edgeThrottled")]
    pub client_errors: u64,
    pub integration_errors: u64,
    pub execution_errors: u64,
    /// None without a DLQ.
    pub dlq_depth: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FunctionPoint {
    pub concurrency: u64,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FunctionTotals {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    pub max_concurrency: u64,
    pub dead_lettered: u64,
    pub duration_ms_total: f64,
}

/// Everything a report is drawn from.
pub struct ReportInput {
    pub summary: SummaryView,
    /// The whole run's broadcast latency (µs), merged from the intervals.
    pub latency: Hdr<u64>,
}

impl ReportInput {
    /// From a finished run: the summary as it is written, and its intervals' histograms.
    pub fn from_summary(s: &Summary) -> Result<ReportInput, HarnessError> {
        let value = serde_json::to_value(s).expect("the summary serialises");
        let summary = serde_json::from_value(value).map_err(|e| HarnessError::Input {
            file: PathBuf::from("summary.json"),
            message: format!("the run's summary does not read back: {e}"),
        })?;
        let mut latency = histogram();
        let mut de = Deserializer::new();
        for i in &s.intervals {
            if let Ok(h) = de.deserialize::<u64, _>(&mut i.hdr_v2.as_slice()) {
                let _ = latency.add(h);
            }
        }
        Ok(ReportInput { summary, latency })
    }

    /// From a report folder: summary.json, and latency.hlog when it is there.
    pub fn from_folder(dir: &Path) -> Result<ReportInput, HarnessError> {
        let summary = load_summary(&dir.join("summary.json"))?;
        let hlog = dir.join("latency.hlog");
        let latency = if hlog.exists() {
            read_hlog(&hlog)?
        } else {
            histogram()
        };
        Ok(ReportInput { summary, latency })
    }
}

/// summary.json, or a report folder holding one; errors name the file and what is wrong.
pub fn load_summary(path: &Path) -> Result<SummaryView, HarnessError> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let bad = |message: String| HarnessError::Input {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        bad(match e.kind() {
            std::io::ErrorKind::NotFound => {
                "not found (give a report folder or its summary.json)".into()
            }
            _ => e.to_string(),
        })
    })?;
    let summary: SummaryView =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a run summary: {e}")))?;
    if summary.schema != SCHEMA {
        return Err(bad(format!(
            "schema {:?}: this version reads {SCHEMA:?}",
            summary.schema
        )));
    }
    Ok(summary)
}

/// Adds up every interval histogram of an HdrHistogram interval log (µs).
pub fn read_hlog(path: &Path) -> Result<Hdr<u64>, HarnessError> {
    let bad = |message: String| HarnessError::Input {
        file: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut total = histogram();
    let mut de = Deserializer::new();
    for (n, entry) in IntervalLogIterator::new(&bytes).enumerate() {
        let entry = entry.map_err(|e| bad(format!("entry {}: {e:?}", n + 1)))?;
        if let LogEntry::Interval(i) = entry {
            let raw = STANDARD
                .decode(i.encoded_histogram())
                .map_err(|e| bad(format!("entry {}: not base64: {e}", n + 1)))?;
            let h: Hdr<u64> = de
                .deserialize(&mut raw.as_slice())
                .map_err(|e| bad(format!("entry {}: not a histogram: {e:?}", n + 1)))?;
            total
                .add(h)
                .map_err(|e| bad(format!("entry {}: {e:?}", n + 1)))?;
        }
    }
    Ok(total)
}
