//! CloudWatch `GetMetricData` over a run's window: the queries a run needs (per function,
//! per WebSocket API stage, per table, the DLQ), sent in batches of at most 500 and paged
//! with NextToken; each query's datapoints come back by id with its worst status.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StatusCode};

use super::{Resources, Window};
use crate::error::HarnessError;

/// GetMetricData's most queries per call.
const BATCH: usize = 500;

/// One metric the run reads, and the statistic it reads it with.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: String,
    pub namespace: &'static str,
    pub metric: &'static str,
    pub dimensions: Vec<(&'static str, String)>,
    pub stat: &'static str,
}

/// Per-function AWS/Lambda metrics: (metric, statistic). Counts are Sums, the gauge a
/// Maximum (AWS's documented statistics, ../shared/aws-observability.md §1).
pub const FUNCTION_METRICS: &[(&str, &str)] = &[
    ("Invocations", "Sum"),
    ("Errors", "Sum"),
    ("Throttles", "Sum"),
    ("ConcurrentExecutions", "Maximum"),
    ("Duration", "Sum"),
    ("Duration", "p50"),
    ("Duration", "p99"),
    ("Duration", "Maximum"),
    ("AsyncEventsReceived", "Sum"),
    ("AsyncEventsDropped", "Sum"),
    ("AsyncEventAge", "Maximum"),
    ("DeadLetterErrors", "Sum"),
];

/// Per WebSocket API and stage (AWS/ApiGateway).
pub const API_METRICS: &[(&str, &str)] = &[
    ("ConnectCount", "Sum"),
    ("MessageCount", "Sum"),
    ("ClientError", "Sum"),
    ("ExecutionError", "Sum"),
    ("IntegrationError", "Sum"),
    ("IntegrationLatency", "p99"),
];

/// Per table (AWS/DynamoDB).
pub const TABLE_METRICS: &[(&str, &str)] = &[
    ("ReadThrottleEvents", "Sum"),
    ("WriteThrottleEvents", "Sum"),
    ("ConsumedReadCapacityUnits", "Sum"),
    ("ConsumedWriteCapacityUnits", "Sum"),
];

/// The DLQ (AWS/SQS): its depth and what was sent to it.
pub const QUEUE_METRICS: &[(&str, &str)] = &[
    ("ApproximateNumberOfMessagesVisible", "Maximum"),
    ("NumberOfMessagesSent", "Sum"),
];

/// A query's id: CloudWatch wants `[a-z][A-Za-z0-9_]*`, so names become indices.
pub fn id(kind: &str, index: usize, metric: &str, stat: &str) -> String {
    let stat: String = stat.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{kind}{index}_{metric}_{stat}")
}

/// Every query a run reads for `resources`, in a stable order.
pub fn queries(resources: &Resources) -> Vec<Query> {
    let mut out = Vec::new();
    let mut add = |kind: &str,
                   index: usize,
                   namespace: &'static str,
                   metrics: &[(&'static str, &'static str)],
                   dimensions: Vec<(&'static str, String)>| {
        for (metric, stat) in metrics {
            out.push(Query {
                id: id(kind, index, metric, stat),
                namespace,
                metric,
                dimensions: dimensions.clone(),
                stat,
            });
        }
    };
    for (i, physical) in resources.functions.values().enumerate() {
        let dims = vec![("FunctionName", physical.clone())];
        add("f", i, "AWS/Lambda", FUNCTION_METRICS, dims);
    }
    if let Some((api, stage)) = &resources.api {
        let dims = vec![("ApiId", api.clone()), ("Stage", stage.clone())];
        add("a", 0, "AWS/ApiGateway", API_METRICS, dims);
    }
    for (i, table) in resources.tables.iter().enumerate() {
        add(
            "t",
            i,
            "AWS/DynamoDB",
            TABLE_METRICS,
            vec![("TableName", table.clone())],
        );
    }
    if let Some(queue) = resources.dlq_name() {
        add(
            "q",
            0,
            "AWS/SQS",
            QUEUE_METRICS,
            vec![("QueueName", queue.to_string())],
        );
    }
    out
}

/// One query's answer: (epoch ms, value) ascending, and whether every page said Complete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub points: Vec<(i64, f64)>,
    pub complete: bool,
    /// The status and messages when not Complete (PartialData, InternalError, Forbidden).
    pub status: Option<String>,
}

/// Runs `queries` over `window` at `period_s`, batched and paged.
pub async fn fetch(
    cw: &aws_sdk_cloudwatch::Client,
    queries: &[Query],
    window: Window,
    period_s: i32,
) -> Result<BTreeMap<String, Answer>, HarnessError> {
    let mut answers: BTreeMap<String, Answer> = queries
        .iter()
        .map(|q| {
            let a = Answer {
                complete: true,
                ..Answer::default()
            };
            (q.id.clone(), a)
        })
        .collect();
    for batch in queries.chunks(BATCH) {
        let mut token: Option<String> = None;
        loop {
            let mut call = cw
                .get_metric_data()
                .start_time(DateTime::from_millis(window.start_ms))
                .end_time(DateTime::from_millis(window.end_ms))
                .scan_by(aws_sdk_cloudwatch::types::ScanBy::TimestampAscending)
                .set_next_token(token.clone());
            for q in batch {
                call = call.metric_data_queries(data_query(q, period_s));
            }
            let got = call.send().await.map_err(|e| {
                HarnessError::Target(format!(
                    "CloudWatch GetMetricData failed: {}",
                    crate::aws::describe(&e)
                ))
            })?;
            for r in got.metric_data_results() {
                let Some(a) = r.id().and_then(|id| answers.get_mut(id)) else {
                    continue;
                };
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    a.points.push((t.to_millis().unwrap_or_default(), *v));
                }
                let status = r.status_code().cloned().unwrap_or(StatusCode::Complete);
                if status != StatusCode::Complete {
                    a.complete = false;
                    let said: Vec<&str> = r.messages().iter().filter_map(|m| m.value()).collect();
                    a.status = Some(if said.is_empty() {
                        status.as_str().to_string()
                    } else {
                        format!("{}: {}", status.as_str(), said.join("; "))
                    });
                }
            }
            token = got.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    for a in answers.values_mut() {
        a.points.sort_by_key(|p| p.0);
        // A page boundary inside a period can repeat a timestamp only as its own value.
        a.points.dedup_by_key(|p| p.0);
    }
    Ok(answers)
}

fn data_query(q: &Query, period_s: i32) -> MetricDataQuery {
    let mut metric = Metric::builder()
        .namespace(q.namespace)
        .metric_name(q.metric);
    for (name, value) in &q.dimensions {
        metric = metric.dimensions(Dimension::builder().name(*name).value(value).build());
    }
    MetricDataQuery::builder()
        .id(&q.id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric.build())
                .period(period_s)
                .stat(q.stat)
                .build(),
        )
        .return_data(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_cloudwatch_ids_and_unique() {
        let r = Resources {
            functions: [
                ("Connect", "chat-Connect-1"),
                ("SendMessage", "chat-Send-2"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            api: Some(("abc123".into(), "prod".into())),
            tables: vec!["connections".into()],
            dlq_url: Some("http://127.0.0.1:1/000000000000/chat-dlq".into()),
        };
        let q = queries(&r);
        assert_eq!(
            q.len(),
            2 * FUNCTION_METRICS.len() + API_METRICS.len() + TABLE_METRICS.len() + 2
        );
        let mut ids: Vec<&str> = q.iter().map(|q| q.id.as_str()).collect();
        for id in &ids {
            assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{id}");
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{id}"
            );
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), q.len());
        let dlq = q.iter().find(|q| q.namespace == "AWS/SQS").unwrap();
        assert_eq!(dlq.dimensions, vec![("QueueName", "chat-dlq".to_string())]);
    }
}
