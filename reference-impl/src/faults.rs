//! The fault layer: `DYNAMOWAVE_FAULTS`, JSON in a function's environment, injects failures
//! like failure-lambda does, so chaos works the same on AWS and locally. Off when unset.
//!
//! ```json
//! {"error":            {"percentage": 10, "message": "boom"},
//!  "latency":          {"percentage": 50, "min_ms": 100, "max_ms": 400},
//!  "timeout":          {"percentage": 5},
//!  "crash":            {"percentage": 1},
//!  "dynamodb_throttle":{"percentage": 20},
//!  "connections_fail": {"percentage": 20, "status": 429}}
//! ```
//! Every key is optional. Percentages are 0–100 and drawn independently per invocation
//! (the first four) or per call (the last two).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ChatError, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// The invocation fails with `DynamoWave.InjectedError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorFault>,
    /// The invocation is delayed by a uniform draw from `min_ms..=max_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyFault>,
    /// The invocation sleeps past its deadline, so Lambda times it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Percent>,
    /// The process aborts mid-invocation (Lambda reports Runtime.ExitError and resets the instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<Percent>,
    /// A DynamoDB call fails as `ProvisionedThroughputExceededException` would after the SDK's retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb_throttle: Option<Percent>,
    /// An @connections call fails with `status` (429, 500, 502, 503, 504 or 410).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_fail: Option<ConnectionsFault>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percent {
    pub percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorFault {
    pub percentage: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyFault {
    pub percentage: f64,
    pub min_ms: u64,
    pub max_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsFault {
    pub percentage: f64,
    #[serde(default = "default_connections_status")]
    pub status: u16,
}

fn default_connections_status() -> u16 {
    429
}

/// What the fault layer does to one invocation, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum InvocationFault {
    Latency(Duration),
    Crash,
    Timeout,
    Error(String),
}

impl FaultConfig {
    /// Parses and validates; errors name the variable and the JSON position.
    pub fn parse(raw: &str) -> Result<Self> {
        let config: FaultConfig = serde_json::from_str(raw)
            .map_err(|e| ChatError::Config(format!("DYNAMOWAVE_FAULTS is not valid: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| {
            Err(ChatError::Config(format!(
                "DYNAMOWAVE_FAULTS.{field}: {why}"
            )))
        };
        let percentages = [
            ("error", self.error.as_ref().map(|f| f.percentage)),
            ("latency", self.latency.as_ref().map(|f| f.percentage)),
            ("timeout", self.timeout.as_ref().map(|f| f.percentage)),
            ("crash", self.crash.as_ref().map(|f| f.percentage)),
            (
                "dynamodb_throttle",
                self.dynamodb_throttle.as_ref().map(|f| f.percentage),
            ),
            (
                "connections_fail",
                self.connections_fail.as_ref().map(|f| f.percentage),
            ),
        ];
        for (field, p) in percentages {
            if let Some(p) = p
                && !(0.0..=100.0).contains(&p)
            {
                return bad(field, format!("percentage {p} is outside 0..=100"));
            }
        }
        if let Some(l) = &self.latency
            && l.min_ms > l.max_ms
        {
            return bad(
                "latency",
                format!("min_ms {} is greater than max_ms {}", l.min_ms, l.max_ms),
            );
        }
        if let Some(c) = &self.connections_fail
            && !matches!(c.status, 410 | 429 | 500 | 502 | 503 | 504)
        {
            return bad(
                "connections_fail",
                format!(
                    "status {} is not one of 410, 429, 500, 502, 503, 504",
                    c.status
                ),
            );
        }
        Ok(())
    }

    pub fn is_off(&self) -> bool {
        *self == FaultConfig::default()
    }

    /// Draws this invocation's faults.
    pub fn draw_invocation(&self) -> Vec<InvocationFault> {
        let mut out = Vec::new();
        if let Some(l) = &self.latency
            && hit(l.percentage)
        {
            let ms = rand::random_range(l.min_ms..=l.max_ms);
            out.push(InvocationFault::Latency(Duration::from_millis(ms)));
        }
        if self.crash.as_ref().is_some_and(|f| hit(f.percentage)) {
            out.push(InvocationFault::Crash);
        }
        if self.timeout.as_ref().is_some_and(|f| hit(f.percentage)) {
            out.push(InvocationFault::Timeout);
        }
        if let Some(e) = &self.error
            && hit(e.percentage)
        {
            let message = e
                .message
                .clone()
                .unwrap_or_else(|| "DYNAMOWAVE_FAULTS error".into());
            out.push(InvocationFault::Error(message));
        }
        out
    }

    /// Whether this DynamoDB call is to fail as throttled.
    pub fn dynamodb_throttled(&self) -> bool {
        self.dynamodb_throttle
            .as_ref()
            .is_some_and(|f| hit(f.percentage))
    }

    /// The status this @connections call is to fail with, if any.
    pub fn connections_failure(&self) -> Option<u16> {
        self.connections_fail
            .as_ref()
            .filter(|f| hit(f.percentage))
            .map(|f| f.status)
    }
}

fn hit(percentage: f64) -> bool {
    percentage >= 100.0 || (percentage > 0.0 && rand::random::<f64>() * 100.0 < percentage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let raw = r#"{"error":{"percentage":10,"message":"boom"},
            "latency":{"percentage":50,"min_ms":100,"max_ms":400},
            "timeout":{"percentage":5},"crash":{"percentage":1},
            "dynamodb_throttle":{"percentage":20},
            "connections_fail":{"percentage":20,"status":503}}"#;
        let c = FaultConfig::parse(raw).unwrap();
        assert_eq!(c.connections_fail.unwrap().status, 503);
        assert_eq!(c.latency.unwrap().max_ms, 400);
    }

    #[test]
    fn rejects_bad_input_with_the_field() {
        for (raw, needle) in [
            (r#"{"eror":{"percentage":1}}"#, "unknown field"),
            (r#"{"error":{"percentage":101}}"#, "DYNAMOWAVE_FAULTS.error"),
            (
                r#"{"latency":{"percentage":1,"min_ms":5,"max_ms":1}}"#,
                "min_ms",
            ),
            (
                r#"{"connections_fail":{"percentage":1,"status":404}}"#,
                "status 404",
            ),
            ("not json", "DYNAMOWAVE_FAULTS"),
        ] {
            let err = FaultConfig::parse(raw).unwrap_err().to_string();
            assert!(err.contains(needle), "{raw}: {err}");
        }
    }

    #[test]
    fn percentages_are_honoured_at_the_ends() {
        let always = FaultConfig::parse(
            r#"{"error":{"percentage":100},"dynamodb_throttle":{"percentage":100}}"#,
        )
        .unwrap();
        let never =
            FaultConfig::parse(r#"{"error":{"percentage":0},"connections_fail":{"percentage":0}}"#)
                .unwrap();
        for _ in 0..200 {
            assert_eq!(
                always.draw_invocation(),
                vec![InvocationFault::Error("DYNAMOWAVE_FAULTS error".into())]
            );
            assert!(always.dynamodb_throttled());
            assert!(never.draw_invocation().is_empty());
            assert_eq!(never.connections_failure(), None);
        }
    }

    #[test]
    fn a_percentage_is_roughly_that_share() {
        let c = FaultConfig::parse(r#"{"crash":{"percentage":30}}"#).unwrap();
        let hits = (0..10_000)
            .filter(|_| !c.draw_invocation().is_empty())
            .count();
        // 30 % of 10,000 draws; the bounds are > 10 standard deviations wide.
        assert!((2_500..=3_500).contains(&hits), "{hits}");
    }
}
