//! What the harness reads about the local stack: per-function and per-API counters and a
//! concurrency time series, served as JSON at `GET /_dynamowave/telemetry` (documented in
//! ARCHITECTURE.md). On AWS the same figures come from CloudWatch metrics; the same counts
//! also go to `metrics`, which the edge serves as CloudWatch (GetMetricData).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::cloudwatch::{MetricId, MetricSettings, MetricStore};

/// Samples kept in the concurrency series (one a second: an hour).
const MAX_SAMPLES: usize = 3_600;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionMetrics {
    pub invocations: u64,
    /// Invocations that ended in a function error (handled, unhandled, timeout, crash).
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    pub init_duration_ms_total: f64,
    pub init_duration_ms_max: f64,
    pub timeouts: u64,
    pub crashes: u64,
    pub duration_ms_total: f64,
    pub concurrent_executions: u32,
    pub max_concurrent_executions: u32,
    pub async_enqueued: u64,
    /// Async re-attempts after a function error.
    pub async_retries: u64,
    /// Async events put back on the queue because the function was throttled.
    pub async_throttle_requeues: u64,
    /// Async events sent to the DLQ or on-failure destination.
    pub dead_lettered: u64,
    /// Async events that failed for good with nowhere to go (AWS discards them too).
    pub dropped_events: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMetrics {
    pub connects: u64,
    /// Handshakes refused (by $connect's status, a throttle, or an integration failure).
    pub connects_refused: u64,
    pub disconnects: u64,
    pub messages: u64,
    /// Requests refused by stage/route throttling (429 at the edge).
    pub throttled: u64,
    /// Message-route integrations that failed or timed out (error frame sent).
    pub integration_errors: u64,
    pub posts: u64,
    pub post_failures: u64,
    /// Frames dropped because a slow client's buffer was full (the post got 429/410).
    pub frames_dropped_slow_reader: u64,
    /// Posts answered 410 Gone (a closed or unknown connection).
    pub gone_posts: u64,
    /// 410s to a connection that had already answered 410: a stale row a function keeps
    /// paying for instead of deleting it.
    pub gone_repeats: u64,
    pub open_connections: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub t_ms: u64,
    pub concurrency: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub uptime_ms: u64,
    pub functions: BTreeMap<String, FunctionMetrics>,
    pub apis: BTreeMap<String, ApiMetrics>,
    /// Queue name -> visible, in flight, delayed.
    pub queues: BTreeMap<String, serde_json::Value>,
    pub concurrency_series: Vec<Sample>,
}

pub struct Telemetry {
    started: Instant,
    functions: Mutex<BTreeMap<String, FunctionMetrics>>,
    apis: Mutex<BTreeMap<String, ApiMetrics>>,
    samples: Mutex<Vec<Sample>>,
    /// The same events as CloudWatch datapoints (AWS/Lambda, AWS/ApiGateway, AWS/SQS).
    pub metrics: Arc<MetricStore>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new(MetricSettings::default())
    }
}

impl Telemetry {
    pub fn new(metrics: MetricSettings) -> Self {
        Telemetry {
            started: Instant::now(),
            functions: Mutex::default(),
            apis: Mutex::default(),
            samples: Mutex::default(),
            metrics: Arc::new(MetricStore::new(metrics)),
        }
    }

    /// An AWS/Lambda datapoint, per `FunctionName` and account-wide (no dimension), as
    /// Lambda publishes every metric both ways.
    pub fn lambda_metric(&self, function: &str, metric: &str, value: f64, unit: &str) {
        self.metrics.put(
            MetricId::new("AWS/Lambda", metric, &[("FunctionName", function)]),
            value,
            unit,
        );
        self.metrics
            .put(MetricId::new("AWS/Lambda", metric, &[]), value, unit);
    }

    /// An account-wide AWS/Lambda datapoint only (UnreservedConcurrentExecutions).
    pub fn account_metric(&self, metric: &str, value: f64, unit: &str) {
        self.metrics
            .put(MetricId::new("AWS/Lambda", metric, &[]), value, unit);
    }

    /// An AWS/ApiGateway datapoint, per `ApiId` and per `ApiId`+`Stage`.
    pub fn api_metric(&self, api_id: &str, stage: &str, metric: &str, value: f64, unit: &str) {
        self.metrics.put(
            MetricId::new("AWS/ApiGateway", metric, &[("ApiId", api_id)]),
            value,
            unit,
        );
        self.metrics.put(
            MetricId::new(
                "AWS/ApiGateway",
                metric,
                &[("ApiId", api_id), ("Stage", stage)],
            ),
            value,
            unit,
        );
    }

    /// An AWS/SQS datapoint by `QueueName`.
    pub fn sqs_metric(&self, queue: &str, metric: &str, value: f64) {
        self.metrics.put(
            MetricId::new("AWS/SQS", metric, &[("QueueName", queue)]),
            value,
            "Count",
        );
    }

    pub fn function(&self, name: &str, f: impl FnOnce(&mut FunctionMetrics)) {
        let mut all = self.functions.lock().expect("telemetry lock");
        match all.get_mut(name) {
            Some(m) => f(m),
            None => f(all.entry(name.to_string()).or_default()),
        }
    }

    pub fn api(&self, api_id: &str, f: impl FnOnce(&mut ApiMetrics)) {
        let mut all = self.apis.lock().expect("telemetry lock");
        match all.get_mut(api_id) {
            Some(m) => f(m),
            None => f(all.entry(api_id.to_string()).or_default()),
        }
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Records the current concurrency of every function (called once a second).
    pub fn sample(&self) {
        let concurrency = self
            .functions
            .lock()
            .expect("telemetry lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.concurrent_executions))
            .collect();
        let mut samples = self.samples.lock().expect("telemetry lock");
        if samples.len() >= MAX_SAMPLES {
            samples.remove(0);
        }
        samples.push(Sample {
            t_ms: self.elapsed_ms(),
            concurrency,
        });
    }

    pub fn snapshot(&self, queues: BTreeMap<String, serde_json::Value>) -> Snapshot {
        Snapshot {
            uptime_ms: self.elapsed_ms(),
            functions: self.functions.lock().expect("telemetry lock").clone(),
            apis: self.apis.lock().expect("telemetry lock").clone(),
            queues,
            concurrency_series: self.samples.lock().expect("telemetry lock").clone(),
        }
    }
}
