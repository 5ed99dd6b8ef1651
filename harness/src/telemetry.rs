//! Lambda- and API-side figures over a run, from the target's telemetry interface
//! (`GET {edge}/_dynamowave/telemetry` on the local stack; see ARCHITECTURE.md) and the DLQ's
//! depth through SQS `GetQueueAttributes`. Sampled once a second; the series holds deltas
//! per sample (levels for concurrency and DLQ depth), the totals hold deltas over the run.
//!
//! Functions are named by their logical id where the stack's outputs map one
//! (`SendMessageFunctionName` → `SendMessage`), so SLOs and reports read the same locally
//! and on AWS.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSample {
    pub concurrency: u64,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub t_s: f64,
    pub functions: BTreeMap<String, FunctionSample>,
    pub edge_throttled: u64,
    pub connects_refused: u64,
    pub post_failures: u64,
    pub dlq_depth: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionTotals {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    /// The most concurrent executions seen since the stack started (a level, not a delta).
    pub max_concurrency: u64,
    pub dead_lettered: u64,
    pub async_retries: u64,
    pub timeouts: u64,
    pub crashes: u64,
    pub duration_ms_total: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiTotals {
    pub throttled: u64,
    pub connects_refused: u64,
    pub posts: u64,
    pub post_failures: u64,
    /// Posts to a connection that had already answered 410 (a stale row paid for twice).
    pub gone_repeats: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub series: Vec<Sample>,
    pub functions: BTreeMap<String, FunctionTotals>,
    pub api: ApiTotals,
}

impl Summary {
    /// A function's per-sample counter summed over the samples whose second (the one that
    /// ends at `t_s`) mostly lies in `[from_s, to_s)`.
    pub fn sum_between(
        &self,
        function: &str,
        from_s: f64,
        to_s: f64,
        field: fn(&FunctionSample) -> u64,
    ) -> u64 {
        self.series
            .iter()
            .filter(|s| s.t_s - 0.5 >= from_s && s.t_s - 0.5 < to_s)
            .filter_map(|s| s.functions.get(function).map(field))
            .sum()
    }
}

/// Where to read from: the telemetry edge, the output-name map, the DLQ.
#[derive(Clone)]
pub struct Source {
    pub edge: String,
    /// Physical function name → logical name.
    pub names: BTreeMap<String, String>,
    pub dlq: Option<(aws_sdk_sqs::Client, String)>,
}

impl Source {
    pub fn new(
        edge: String,
        outputs: &BTreeMap<String, String>,
        dlq: Option<(aws_sdk_sqs::Client, String)>,
    ) -> Self {
        let names = outputs
            .iter()
            .filter_map(|(k, v)| Some((v.clone(), k.strip_suffix("FunctionName")?.to_string())))
            .collect();
        Source { edge, names, dlq }
    }

    async fn snapshot(&self) -> Option<Value> {
        crate::attach::get_json(&self.edge, "/_dynamowave/telemetry")
            .await
            .ok()
    }

    async fn dlq_depth(&self) -> Option<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let (sqs, url) = self.dlq.as_ref()?;
        let got = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .ok()?;
        let attrs = got.attributes()?;
        let n = |a: A| {
            attrs
                .get(&a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Some(n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible))
    }

    fn name(&self, physical: &str) -> String {
        self.names
            .get(physical)
            .cloned()
            .unwrap_or_else(|| physical.to_string())
    }
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn f(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn api_sum(snapshot: &Value, key: &str) -> u64 {
    snapshot
        .get("apis")
        .and_then(Value::as_object)
        .map(|apis| apis.values().map(|a| n(a, key)).sum())
        .unwrap_or(0)
}

fn functions(snapshot: &Value) -> impl Iterator<Item = (&String, &Value)> {
    snapshot
        .get("functions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

/// Samples once a second from `start` until `stop` fires, then takes a last sample.
/// Without a telemetry endpoint (a deployed stack) it returns `None`.
pub async fn sample(
    source: Source,
    start: Instant,
    mut stop: oneshot::Receiver<()>,
) -> Option<Summary> {
    let first = source.snapshot().await?;
    let mut previous = first.clone();
    let mut series = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        let Some(now) = source.snapshot().await else {
            if last {
                break;
            }
            continue;
        };
        let delta = |key: &str| api_sum(&now, key).saturating_sub(api_sum(&previous, key));
        let mut s = Sample {
            t_s: start.elapsed().as_secs_f64(),
            edge_throttled: delta("throttled"),
            connects_refused: delta("connectsRefused"),
            post_failures: delta("postFailures"),
            dlq_depth: source.dlq_depth().await,
            ..Sample::default()
        };
        for (name, m) in functions(&now) {
            let before = previous.pointer(&format!("/functions/{name}"));
            let d = |k: &str| n(m, k).saturating_sub(before.map(|b| n(b, k)).unwrap_or(0));
            s.functions.insert(
                source.name(name),
                FunctionSample {
                    concurrency: n(m, "concurrentExecutions"),
                    invocations: d("invocations"),
                    errors: d("errors"),
                    throttles: d("throttles"),
                    cold_starts: d("coldStarts"),
                },
            );
        }
        series.push(s);
        previous = now;
        if last {
            break;
        }
    }
    let mut totals = BTreeMap::new();
    for (name, m) in functions(&previous) {
        let before = first.pointer(&format!("/functions/{name}"));
        let d = |k: &str| n(m, k).saturating_sub(before.map(|b| n(b, k)).unwrap_or(0));
        totals.insert(
            source.name(name),
            FunctionTotals {
                invocations: d("invocations"),
                errors: d("errors"),
                throttles: d("throttles"),
                cold_starts: d("coldStarts"),
                max_concurrency: n(m, "maxConcurrentExecutions"),
                dead_lettered: d("deadLettered"),
                async_retries: d("asyncRetries"),
                timeouts: d("timeouts"),
                crashes: d("crashes"),
                duration_ms_total: f(m, "durationMsTotal")
                    - before.map(|b| f(b, "durationMsTotal")).unwrap_or(0.0),
            },
        );
    }
    let d = |key: &str| api_sum(&previous, key).saturating_sub(api_sum(&first, key));
    Some(Summary {
        series,
        functions: totals,
        api: ApiTotals {
            throttled: d("throttled"),
            connects_refused: d("connectsRefused"),
            posts: d("posts"),
            post_failures: d("postFailures"),
            gone_repeats: d("goneRepeats"),
        },
    })
}
