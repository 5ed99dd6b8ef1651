//! The wrapper every binary runs: init, then per invocation the fault layer, warm-up pings,
//! and the function's handler.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::deps::Deps;
use crate::error::{ChatError, Result};
use crate::faults::InvocationFault;
use crate::handlers::{Function, handle};
use crate::warmup::{Ping, mark_invocation};

/// `main` of every function binary.
pub async fn serve(function: Function) -> std::result::Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad environment fails init (Runtime API init/error), so a broken deploy is loud.
    let deps = Arc::new(Deps::from_env().await?);
    if !deps.settings.faults.is_off() {
        tracing::warn!(faults = ?deps.settings.faults, "fault layer is ON");
    }
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move { invoke(function, &deps, event.payload, event.context.deadline).await }
    }))
    .await
}

/// One invocation. `deadline_ms` is the epoch-ms deadline from the Runtime API.
pub async fn invoke(
    function: Function,
    deps: &Deps,
    event: Value,
    deadline_ms: u64,
) -> Result<Value> {
    let cold_start = mark_invocation();
    for fault in deps.settings.faults.draw_invocation() {
        match fault {
            InvocationFault::Latency(d) => tokio::time::sleep(d).await,
            InvocationFault::Crash => {
                tracing::error!("DYNAMOWAVE_FAULTS: crashing the process");
                std::process::abort();
            }
            InvocationFault::Timeout => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default();
                // Past the deadline by a second: the service kills the instance first.
                let wait = deadline_ms.saturating_sub(now) + 1_000;
                tokio::time::sleep(Duration::from_millis(wait)).await;
                return Err(ChatError::Injected("timeout outlived its deadline".into()));
            }
            InvocationFault::Error(message) => return Err(ChatError::Injected(message)),
        }
    }
    if let Some(ping) = Ping::from_event(&event) {
        let name = &deps.settings.function_name;
        return Ok(ping
            .answer(name, cold_start, deps.settings.warmer_delay)
            .await);
    }
    handle(function, deps, event).await
}
