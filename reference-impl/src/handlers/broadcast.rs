//! broadcast: the async worker. Whole-invocation failures fall to Lambda's async retries
//! and the DLQ the template configures.

use serde_json::Value;

use crate::deps::Deps;
use crate::error::{ChatError, Result};
use crate::message::BroadcastJob;

pub async fn handle(deps: &Deps, event: Value) -> Result<Value> {
    let job: BroadcastJob = serde_json::from_value(event).map_err(|e| ChatError::BadEvent {
        expected: "broadcast job",
        message: e.to_string(),
    })?;
    let report = deps
        .fanout(job.connections_url.as_deref())?
        .broadcast(&job)
        .await?;
    Ok(serde_json::to_value(report).expect("a report always serialises"))
}
