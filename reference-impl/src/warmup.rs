//! Warm-up pings (the lambda-warmer technique): every function answers one without touching
//! DynamoDB, holding the instance briefly so concurrent pings land on distinct instances.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

static INSTANCE_ID: OnceLock<String> = OnceLock::new();
static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

/// A unique id for this process (= this Lambda instance).
pub fn instance_id() -> &'static str {
    INSTANCE_ID.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// Counts an invocation; true for the first one this instance serves (a cold start).
pub fn mark_invocation() -> bool {
    INVOCATIONS.fetch_add(1, Ordering::SeqCst) == 0
}

/// A warm-up ping: `{"warmer": true, "__WARMER_INVOCATION__": i, "__WARMER_CONCURRENCY__": n, …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ping {
    pub invocation: u64,
    pub concurrency: u64,
    pub correlation_id: Option<String>,
    pub delay: Option<Duration>,
}

impl Ping {
    pub fn from_event(event: &Value) -> Option<Ping> {
        if event.get("warmer")?.as_bool()? {
            let num = |k: &str| event.get(k).and_then(Value::as_u64);
            Some(Ping {
                invocation: num("__WARMER_INVOCATION__").unwrap_or(1),
                concurrency: num("__WARMER_CONCURRENCY__").unwrap_or(1),
                correlation_id: event
                    .get("__WARMER_CORRELATIONID__")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                delay: num("__WARMER_DELAY_MS__").map(Duration::from_millis),
            })
        } else {
            None
        }
    }

    pub fn event(
        invocation: u64,
        concurrency: u64,
        correlation_id: &str,
        delay: Duration,
    ) -> Value {
        json!({
            "warmer": true,
            "__WARMER_INVOCATION__": invocation,
            "__WARMER_CONCURRENCY__": concurrency,
            "__WARMER_CORRELATIONID__": correlation_id,
            "__WARMER_DELAY_MS__": delay.as_millis() as u64,
        })
    }

    /// Answers the ping. With concurrency > 1 the instance stays busy for `delay` so the
    /// other pings of the same round cannot reuse it and must warm instances of their own.
    pub async fn answer(&self, function: &str, cold_start: bool, default_delay: Duration) -> Value {
        if self.concurrency > 1 {
            tokio::time::sleep(self.delay.unwrap_or(default_delay)).await;
        }
        json!({
            "warmed": true,
            "function": function,
            "instanceId": instance_id(),
            "coldStart": cold_start,
            "invocation": self.invocation,
            "correlationId": self.correlation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_pings() {
        let p = Ping::event(2, 3, "c", Duration::from_millis(10));
        let ping = Ping::from_event(&p).unwrap();
        assert_eq!((ping.invocation, ping.concurrency), (2, 3));
        assert_eq!(ping.delay, Some(Duration::from_millis(10)));
        assert!(Ping::from_event(&json!({"warmer": false})).is_none());
        assert!(Ping::from_event(&json!({"requestContext": {}})).is_none());
        assert!(Ping::from_event(&json!("warmer")).is_none());
    }
}
