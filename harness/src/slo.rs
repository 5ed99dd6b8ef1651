//! SLO files (scenarios/slo/*.yaml): k6-style thresholds, e.g.
//! ```yaml
//! thresholds:
//!   broadcast_latency: ["p(99)<250", "p(99.9)<1000"]
//!   "broadcast_latency{phase:chat}": ["p(95)<200"]
//!   delivery_ratio: ["rate>=0.9999"]
//!   lost: ["count==0"]
//!   connect_failed: [{threshold: "rate<0.001", abortOnFail: true}]
//!   "broadcast_latency{window:10s}": ["p(99)<250"]
//!   "error_frames{phase:chat,window:5s,step:5s}": ["count==0"]
//! ```
//! Every threshold is reported with its observed value.
//!
//! Windows (`window.rs`): `{window:10s}` judges a threshold in every 10-second window of
//! the run instead of over the whole run — sliding by one interval (1 s), or by `step`
//! (`step` = `window`: tumbling). Each window merges the per-interval histograms
//! (`Interval::hdr_v2`) or adds the per-interval counts; the verdict reports the worst
//! window's value and which window it was. Only metrics with per-interval data take a
//! window: `broadcast_latency` (latencies by the second they were received),
//! `messages_sent` and `error_frames`. With `phase:` the windows lie within the intervals
//! that phase ran (by interval start). A span shorter than the window is judged as one
//! window; windows with no latency samples are skipped (all empty: no data, which fails).

mod window;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::record::Interval;
use crate::error::HarnessError;

/// What kind of numbers a metric holds, and so which aggregations it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Milliseconds: `p(N)`, `avg`, `min`, `max`, `med`.
    Trend,
    /// A share of 0–1: `rate`.
    Rate,
    /// A count: `count`.
    Counter,
    /// A level (the most concurrent executions): `value`.
    Gauge,
}

/// The metrics a run produces and SLOs can name.
pub const METRICS: [(&str, Kind); 28] = [
    ("broadcast_latency", Kind::Trend),
    // The same deliveries from the actual send, and how late each send left (the
    // generator's own lateness): the two views differ by it.
    ("broadcast_latency_from_send", Kind::Trend),
    ("schedule_lag", Kind::Trend),
    ("connect_latency", Kind::Trend),
    ("delivery_ratio", Kind::Rate),
    ("connect_failed", Kind::Rate),
    ("delivered", Kind::Counter),
    ("late", Kind::Counter),
    ("lost", Kind::Counter),
    ("duplicated", Kind::Counter),
    ("dead_lettered", Kind::Counter),
    ("error_frames", Kind::Counter),
    ("messages_sent", Kind::Counter),
    ("expected", Kind::Counter),
    // Pairs (and messages) whose sender's connection ended uncleanly after the write, so
    // the target may never have read them: counted beside `expected`, not as lost.
    ("unconfirmed", Kind::Counter),
    ("send_unconfirmed", Kind::Counter),
    // From the target (telemetry and the DLQ); `{function:Name}` picks a function,
    // `{phase:name}` a phase, for the first four.
    ("cold_starts", Kind::Counter),
    ("function_invocations", Kind::Counter),
    ("function_errors", Kind::Counter),
    ("function_throttles", Kind::Counter),
    ("function_max_concurrency", Kind::Gauge),
    ("async_retries", Kind::Counter),
    // Refusals the clients saw at the edge: handshakes answered 429 and
    // "Too Many Requests" error frames.
    ("edge_throttled", Kind::Counter),
    // The same recipient's delivery dead-lettered more than once.
    ("dlq_duplicates", Kind::Counter),
    // Dead letters without the attributes that say why (ErrorCode, ErrorMessage; Recipient
    // on a recipient's).
    ("dlq_missing_attributes", Kind::Counter),
    // @connections posts to a connection that had already answered 410 (stale rows kept).
    ("gone_repeats", Kind::Counter),
    // The broadcast worker's retried @connections posts (from its logs), and those outside
    // exponential backoff with full jitter (see retries.rs).
    ("post_retries", Kind::Counter),
    ("retry_backoff_violations", Kind::Counter),
];

/// The metrics read from the target's CloudWatch metrics and Logs (observe.rs).
pub const TARGET_METRICS: &[&str] = &[
    "cold_starts",
    "function_invocations",
    "function_errors",
    "function_throttles",
    "function_max_concurrency",
    "async_retries",
    "gone_repeats",
];

pub fn is_target_metric(metric: &str) -> bool {
    TARGET_METRICS.contains(&metric)
}

pub fn kind_of(metric: &str) -> Option<Kind> {
    METRICS.iter().find(|(m, _)| *m == metric).map(|(_, k)| *k)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    Percentile(f64),
    Avg,
    Min,
    Max,
    Med,
    Rate,
    Count,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
            Op::Eq => observed == limit,
            Op::Ne => observed != limit,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub metric: String,
    /// `{phase:chat}` → {"phase": "chat"} (`window` and `step` as written, too)
    pub tags: BTreeMap<String, String>,
    /// `{window:10s}`: judged in every window of this length rather than the whole run.
    pub window: Option<Window>,
    pub expression: String,
    pub aggregation: Aggregation,
    pub op: Op,
    pub limit: f64,
    pub abort_on_fail: bool,
}

impl Threshold {
    /// `broadcast_latency{phase:chat}` as written.
    pub fn name(&self) -> String {
        Self::display_name(&self.metric, &self.tags)
    }

    /// `metric{tag:value,…}`, as SLO files write it.
    pub fn display_name(metric: &str, tags: &BTreeMap<String, String>) -> String {
        if tags.is_empty() {
            metric.to_string()
        } else {
            let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{metric}{{{}}}", tags.join(","))
        }
    }
}

/// A window of whole intervals (the engine closes one per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub length_s: u32,
    /// How far consecutive windows start apart: 1 slides, `length_s` tumbles.
    pub step_s: u32,
}

/// The metrics with per-interval data, which alone take a `window` tag.
pub const WINDOWED: [&str; 3] = ["broadcast_latency", "messages_sent", "error_frames"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    thresholds: BTreeMap<String, Vec<Entry>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Entry {
    Plain(String),
    Full(FullEntry),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FullEntry {
    threshold: String,
    #[serde(default, rename = "abortOnFail")]
    abort_on_fail: bool,
}

pub fn load(path: &Path) -> Result<Vec<Threshold>, HarnessError> {
    let text = crate::scenario::units::read_text(path).map_err(|e| HarnessError::Io {
        context: format!("reading SLO file {}", path.display()),
        source: e,
    })?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> Result<Vec<Threshold>, HarnessError> {
    let bad = |message: String| HarnessError::Slo {
        file: PathBuf::from(path),
        message,
    };
    let file: File = yaml_serde::from_str(text)
        .map_err(|e| bad(crate::scenario::with_line(text, e.to_string())))?;
    let mut out = Vec::new();
    for (key, entries) in file.thresholds {
        // Where the key is written, so errors can name the line.
        let at = text
            .lines()
            .position(|l| l.contains(key.as_str()))
            .map(|n| format!(" at line {}", n + 1))
            .unwrap_or_default();
        let bad_key = |m: String| bad(format!("thresholds.{key}{at}: {m}"));
        let (metric, tags) = split_tags(&key).map_err(&bad_key)?;
        let kind = kind_of(&metric).ok_or_else(|| {
            let known: Vec<&str> = METRICS.iter().map(|(m, _)| *m).collect();
            bad_key(format!(
                "unknown metric {metric:?}; known: {}",
                known.join(", ")
            ))
        })?;
        let window = window_of(&metric, &tags).map_err(&bad_key)?;
        for e in entries {
            let (expression, abort_on_fail) = match e {
                Entry::Plain(s) => (s, false),
                Entry::Full(f) => (f.threshold, f.abort_on_fail),
            };
            let (aggregation, op, limit) = parse_expression(&expression, kind)
                .map_err(|m| bad_key(format!("{expression:?}: {m}")))?;
            out.push(Threshold {
                metric: metric.clone(),
                tags: tags.clone(),
                window,
                expression,
                aggregation,
                op,
                limit,
                abort_on_fail,
            });
        }
    }
    Ok(out)
}

fn split_tags(key: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let Some((metric, rest)) = key.split_once('{') else {
        return Ok((key.trim().to_string(), BTreeMap::new()));
    };
    let inner = rest.strip_suffix('}').ok_or("tags must end with }")?;
    let mut tags = BTreeMap::new();
    for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once(':')
            .ok_or_else(|| format!("tag {pair:?} is not name:value"))?;
        if !["phase", "function", "window", "step"].contains(&k.trim()) {
            return Err(format!(
                "unknown tag {:?}; tags are `phase`, `function`, `window` and `step`",
                k.trim()
            ));
        }
        tags.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok((metric.trim().to_string(), tags))
}

/// `window` and `step` tags → a `Window`, for metrics with per-interval data only.
fn window_of(metric: &str, tags: &BTreeMap<String, String>) -> Result<Option<Window>, String> {
    let seconds = |tag: &str| -> Result<Option<u32>, String> {
        let Some(text) = tags.get(tag) else {
            return Ok(None);
        };
        let d = crate::scenario::units::parse_duration(text)
            .map_err(|e| format!("{tag}:{text}: {e}"))?;
        if d.subsec_nanos() != 0 || d.as_secs() == 0 || d.as_secs() > u64::from(u32::MAX) {
            return Err(format!(
                "{tag}:{text}: must be a whole number of seconds, at least 1 s (runs record one interval per second)"
            ));
        }
        Ok(Some(d.as_secs() as u32))
    };
    let (length, step) = (seconds("window")?, seconds("step")?);
    let Some(length_s) = length else {
        return match step {
            Some(_) => Err("`step` needs a `window`".into()),
            None => Ok(None),
        };
    };
    if !WINDOWED.contains(&metric) {
        return Err(format!(
            "{metric} has no per-interval data, so it cannot be judged per window; metrics that take `window`: {}",
            WINDOWED.join(", ")
        ));
    }
    let step_s = step.unwrap_or(1);
    if step_s > length_s {
        return Err(format!(
            "step {step_s} s is longer than the window ({length_s} s): some intervals would be in no window"
        ));
    }
    Ok(Some(Window { length_s, step_s }))
}

fn parse_expression(text: &str, kind: Kind) -> Result<(Aggregation, Op, f64), String> {
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (at, op_text, op) = ops
        .iter()
        .filter_map(|(s, op)| text.find(s).map(|i| (i, *s, *op)))
        .min_by_key(|(i, s, _)| (*i, usize::MAX - s.len()))
        .ok_or("no comparison (<, <=, >, >=, ==, !=)")?;
    let (left, right) = (text[..at].trim(), text[at + op_text.len()..].trim());
    let limit: f64 = right
        .parse()
        .map_err(|_| format!("{right:?} is not a number"))?;
    let aggregation = match left {
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        "rate" => Aggregation::Rate,
        "count" => Aggregation::Count,
        "value" => Aggregation::Value,
        p if p.starts_with("p(") && p.ends_with(')') => {
            let n: f64 = p[2..p.len() - 1]
                .parse()
                .map_err(|_| format!("{p:?} is not p(N)"))?;
            if !(0.0..=100.0).contains(&n) {
                return Err(format!("percentile {n} is outside 0–100"));
            }
            Aggregation::Percentile(n)
        }
        other => return Err(format!("unknown aggregation {other:?}")),
    };
    let fits = match kind {
        Kind::Trend => !matches!(aggregation, Aggregation::Rate | Aggregation::Count),
        Kind::Rate => aggregation == Aggregation::Rate,
        Kind::Counter => aggregation == Aggregation::Count,
        Kind::Gauge => aggregation == Aggregation::Value,
    };
    if !fits {
        let allowed = match kind {
            Kind::Trend => "p(N), avg, min, max, med",
            Kind::Rate => "rate",
            Kind::Counter => "count",
            Kind::Gauge => "value",
        };
        return Err(format!("this metric takes {allowed}"));
    }
    Ok((aggregation, op, limit))
}

/// One threshold's verdict.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub metric: String,
    pub name: String,
    pub expression: String,
    /// None when the run produced no data for it (which fails the threshold).
    pub observed: Option<f64>,
    pub passed: bool,
    pub abort_on_fail: bool,
    /// For a windowed threshold: the window the observed value comes from (the worst).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Span>,
    /// Why the threshold failed without regard to its value (its data was incomplete),
    /// or why it has no data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A window of the run, in seconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub start_s: f64,
    pub end_s: f64,
}

/// Where thresholds read their numbers from.
pub trait Observations {
    fn observe(
        &self,
        metric: &str,
        tags: &BTreeMap<String, String>,
        aggregation: Aggregation,
    ) -> Option<f64>;

    /// The per-interval records windowed thresholds are judged on, and whether the run is
    /// over (mid-run, only whole windows ending at the latest interval are judged).
    /// Why `metric`'s data cannot be trusted (incomplete at its source), or why there is
    /// none; a threshold with an `Err` note fails whatever its value, an `Ok` one only says.
    fn note(
        &self,
        _metric: &str,
        _tags: &BTreeMap<String, String>,
    ) -> Option<Result<String, String>> {
        None
    }

    fn intervals(&self) -> Option<(&[Interval], bool)> {
        None
    }
}

pub fn evaluate(thresholds: &[Threshold], data: &dyn Observations) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| {
            let (observed, window) = match (t.window, data.intervals()) {
                (Some(w), Some((intervals, finished))) => {
                    match window::worst(t, w, intervals, finished) {
                        Some((v, span)) => (Some(v), Some(span)),
                        None => (None, None),
                    }
                }
                (Some(_), None) => (None, None),
                (None, _) => (data.observe(&t.metric, &t.tags, t.aggregation), None),
            };
            let note = data.note(&t.metric, &t.tags);
            let untrusted = matches!(note, Some(Err(_)));
            Verdict {
                metric: t.metric.clone(),
                name: t.name(),
                expression: t.expression.clone(),
                observed,
                passed: !untrusted && observed.is_some_and(|v| t.op.holds(v, t.limit)),
                abort_on_fail: t.abort_on_fail,
                window,
                note: note.map(|n| n.unwrap_or_else(|e| e)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Threshold>, HarnessError> {
        parse(text, Path::new("slo.yaml"))
    }

    #[test]
    fn parses_k6_style_thresholds() {
        let t = p(r#"
thresholds:
  broadcast_latency: ["p(99)<250", "p(99.9) <= 1000", "avg<100"]
  "broadcast_latency{phase:chat}": ["med<50"]
  delivery_ratio: ["rate>=0.9999"]
  lost: ["count==0"]
  connect_failed: [{threshold: "rate<0.001", abortOnFail: true}]
"#)
        .unwrap();
        assert_eq!(t.len(), 7);
        let p999 = t
            .iter()
            .find(|t| t.expression.starts_with("p(99.9)"))
            .unwrap();
        assert_eq!(
            (p999.aggregation, p999.op, p999.limit),
            (Aggregation::Percentile(99.9), Op::Le, 1000.0)
        );
        let tagged = t.iter().find(|t| !t.tags.is_empty()).unwrap();
        assert_eq!(tagged.name(), "broadcast_latency{phase:chat}");
        assert!(
            t.iter()
                .any(|t| t.abort_on_fail && t.metric == "connect_failed")
        );
    }

    #[test]
    fn bad_thresholds_say_what_is_wrong() {
        let cases = [
            (
                "thresholds: {latency: [\"p(99)<1\"]}",
                "unknown metric \"latency\"",
            ),
            ("thresholds: {lost: [\"p(99)<1\"]}", "takes count"),
            ("thresholds: {lost: [\"count=0\"]}", "no comparison"),
            ("thresholds: {lost: [\"count==zero\"]}", "not a number"),
            (
                "thresholds: {\"lost{room:a}\": [\"count==0\"]}",
                "unknown tag",
            ),
            (
                "thresholds:\n  lost: [\"count==0\"]\n  \"connect_latency{window:10s}\": [\"p(99)<1\"]",
                "thresholds.connect_latency{window:10s} at line 3: connect_latency has no per-interval data",
            ),
            (
                "thresholds: {\"delivery_ratio{window:10s}\": [\"rate>0.9\"]}",
                "cannot be judged per window",
            ),
            (
                "thresholds: {\"broadcast_latency{window:1500ms}\": [\"p(99)<1\"]}",
                "whole number of seconds",
            ),
            (
                "thresholds: {\"broadcast_latency{window:ten}\": [\"p(99)<1\"]}",
                "window:ten",
            ),
            (
                "thresholds: {\"broadcast_latency{step:5s}\": [\"p(99)<1\"]}",
                "`step` needs a `window`",
            ),
            (
                "thresholds: {\"broadcast_latency{window:5s,step:10s}\": [\"p(99)<1\"]}",
                "longer than the window",
            ),
            ("thresholds: {broadcast_latency: [\"p(101)<1\"]}", "outside"),
            ("thresholdz: {}", "unknown field"),
        ];
        for (text, needle) in cases {
            let err = p(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains("slo.yaml"), "{err}");
        }
    }

    struct Fixed;
    impl Observations for Fixed {
        fn observe(
            &self,
            metric: &str,
            _: &BTreeMap<String, String>,
            a: Aggregation,
        ) -> Option<f64> {
            match (metric, a) {
                ("broadcast_latency", Aggregation::Percentile(_)) => Some(120.0),
                ("lost", Aggregation::Count) => Some(3.0),
                _ => None,
            }
        }
    }

    #[test]
    fn evaluation_reports_observed_values_and_missing_data_fails() {
        let t = p("thresholds: {broadcast_latency: [\"p(99)<250\", \"p(99)<100\"], lost: [\"count==0\"], delivery_ratio: [\"rate>0.5\"]}").unwrap();
        let v = evaluate(&t, &Fixed);
        let by = |e: &str| v.iter().find(|v| v.expression == e).unwrap();
        assert!(by("p(99)<250").passed);
        assert!(!by("p(99)<100").passed);
        assert_eq!(by("count==0").observed, Some(3.0));
        assert!(!by("count==0").passed);
        assert!(!by("rate>0.5").passed && by("rate>0.5").observed.is_none());
    }
}
