//! The figures `compare` lines up: named like the SLO file's metrics, with `.stat` for
//! trends (`broadcast_latency.p99`, `broadcast_latency{phase:chat}.p50`).

use crate::report::data::{SummaryView, TrendView};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// Context (e.g. how many pairs were expected): shown, never judged.
    Neither,
}

#[derive(Debug, Clone)]
pub struct Metric {
    pub key: String,
    pub unit: &'static str,
    pub better: Better,
    pub value: Option<f64>,
}

/// Metric names every summary has (trend statistics may be empty).
pub fn static_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for trend in ["broadcast_latency", "connect_latency"] {
        for (stat, _) in STATS {
            keys.push(format!("{trend}.{stat}"));
        }
    }
    keys.extend(COUNTS.iter().map(|(k, _)| k.to_string()));
    keys
}

type Stat = fn(&TrendView) -> f64;

const STATS: [(&str, Stat); 8] = [
    ("p50", |t| t.p50_ms),
    ("p90", |t| t.p90_ms),
    ("p95", |t| t.p95_ms),
    ("p99", |t| t.p99_ms),
    ("p999", |t| t.p999_ms),
    ("max", |t| t.max_ms),
    ("mean", |t| t.mean_ms),
    ("min", |t| t.min_ms),
];

const COUNTS: [(&str, Better); 16] = [
    ("delivery_ratio", Better::Higher),
    ("expected", Better::Neither),
    ("delivered", Better::Neither),
    ("late", Better::Lower),
    ("dead_lettered", Better::Lower),
    ("lost", Better::Lower),
    ("duplicated", Better::Lower),
    ("unexpected", Better::Neither),
    ("departed", Better::Neither),
    ("late_ratio", Better::Lower),
    ("lost_ratio", Better::Lower),
    ("connect_failed", Better::Lower),
    ("connect_failures", Better::Lower),
    ("messages_sent", Better::Neither),
    ("error_frames", Better::Lower),
    ("thresholds_failed", Better::Lower),
];

pub fn extract(s: &SummaryView) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut trend = |name: &str, t: Option<&TrendView>, stats: &[&str]| {
        for (stat, pick) in STATS {
            if stats.contains(&stat) {
                out.push(Metric {
                    key: format!("{name}.{stat}"),
                    unit: "ms",
                    better: Better::Lower,
                    value: t.map(pick),
                });
            }
        }
    };
    let all: Vec<&str> = STATS.iter().map(|(s, _)| *s).collect();
    trend("broadcast_latency", s.latency.broadcast.as_ref(), &all);
    for (phase, t) in &s.latency.broadcast_by_phase {
        trend(
            &format!("broadcast_latency{{phase:{phase}}}"),
            Some(t),
            &["p50", "p99", "max"],
        );
    }
    trend("connect_latency", s.latency.connect.as_ref(), &all);

    let a = &s.accounting;
    let ratio = |n: u64| (a.expected > 0).then(|| n as f64 / a.expected as f64);
    let attempted = s.clients.attempted;
    let failures = s.clients.failed;
    for (key, better) in COUNTS {
        let value = match key {
            "delivery_ratio" => a.delivery_ratio(),
            "expected" => Some(a.expected as f64),
            "delivered" => Some(a.delivered as f64),
            "late" => Some(a.late as f64),
            "dead_lettered" => Some(a.dead_lettered as f64),
            "lost" => Some(a.lost as f64),
            "duplicated" => Some(a.duplicated as f64),
            "unexpected" => Some(a.unexpected as f64),
            "departed" => Some(a.departed as f64),
            "late_ratio" => ratio(a.late),
            "lost_ratio" => ratio(a.lost),
            "connect_failed" => (attempted > 0).then(|| failures as f64 / attempted as f64),
            "connect_failures" => Some(failures as f64),
            "messages_sent" => Some(s.messages.sent() as f64),
            "error_frames" => Some(s.other_frames.values().sum::<u64>() as f64),
            "thresholds_failed" => Some(s.thresholds.iter().filter(|t| !t.passed).count() as f64),
            _ => unreachable!("every count is listed"),
        };
        out.push(Metric {
            key: key.to_string(),
            unit: "",
            better,
            value,
        });
    }
    for t in &s.thresholds {
        // `p(99)<2000` gets better downwards, `rate>=0.999` upwards.
        let better = if t.expression.contains('<') {
            Better::Lower
        } else if t.expression.contains('>') {
            Better::Higher
        } else {
            Better::Neither
        };
        out.push(Metric {
            key: format!("threshold {} {}", t.name, t.expression),
            unit: if t.metric.ends_with("_latency") {
                "ms"
            } else {
                ""
            },
            better,
            value: t.observed,
        });
    }
    out
}
