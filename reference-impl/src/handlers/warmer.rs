//! warmer: on its schedule, keeps N instances of each target warm by invoking it N times
//! at once with warm-up pings (RequestResponse, so it can report what each ping found).

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;

use crate::config::WarmTarget;
use crate::deps::Deps;
use crate::error::Result;
use crate::warmup::Ping;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WarmTargetReport {
    pub function: String,
    pub requested: u32,
    pub warmed: u32,
    /// Pings that found a new instance (its first invocation).
    pub cold_starts: u32,
    pub distinct_instances: u32,
    pub errors: u32,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WarmReport {
    pub correlation_id: String,
    pub targets: Vec<WarmTargetReport>,
}

pub async fn handle(deps: &Deps, _event: Value) -> Result<Value> {
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let reports = join_all(
        deps.settings
            .warm_targets
            .iter()
            .map(|t| warm(deps, t, &correlation_id)),
    )
    .await;
    let report = WarmReport {
        correlation_id,
        targets: reports,
    };
    tracing::info!(report = ?report, "warm-up round done");
    Ok(serde_json::to_value(report).expect("a report always serialises"))
}

async fn warm(deps: &Deps, target: &WarmTarget, correlation_id: &str) -> WarmTargetReport {
    let n = u64::from(target.concurrency);
    let calls = (1..=n).map(|i| {
        let payload = Ping::event(i, n, correlation_id, deps.settings.warmer_delay);
        deps.clients
            .lambda
            .invoke()
            .function_name(&target.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload.to_string()))
            .send()
    });
    let mut report = WarmTargetReport {
        function: target.function.clone(),
        requested: target.concurrency,
        ..Default::default()
    };
    let mut instances = std::collections::HashSet::new();
    for result in join_all(calls).await {
        let answer = result
            .ok()
            .filter(|out| out.function_error().is_none())
            .and_then(|out| serde_json::from_slice::<Value>(out.payload()?.as_ref()).ok());
        match answer {
            Some(a) if a.get("warmed").and_then(Value::as_bool) == Some(true) => {
                report.warmed += 1;
                if a.get("coldStart").and_then(Value::as_bool) == Some(true) {
                    report.cold_starts += 1;
                }
                if let Some(id) = a.get("instanceId").and_then(Value::as_str) {
                    instances.insert(id.to_string());
                }
            }
            _ => report.errors += 1,
        }
    }
    report.distinct_instances = instances.len() as u32;
    if report.errors > 0 {
        tracing::warn!(function = %target.function, errors = report.errors, "some warm-up pings failed");
    }
    report
}
