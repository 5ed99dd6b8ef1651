//! Function settings, read once at init from the environment the template gives each function.

use std::time::Duration;

use crate::error::{ChatError, Result};
use crate::faults::FaultConfig;

/// How send-message hands a message to its recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutMode {
    /// Async `Invoke` of the broadcast function (the default): the sender's call returns at once.
    Async,
    /// The seed design's shape: send-message posts to every recipient itself.
    Inline,
}

/// One warmer target: keep `concurrency` instances of `function` warm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmTarget {
    pub function: String,
    pub concurrency: u32,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub function_name: String,
    pub table_name: Option<String>,
    pub room_index: String,
    pub connection_ttl: Duration,
    pub fanout_mode: FanoutMode,
    pub broadcast_function: Option<String>,
    pub dlq_url: Option<String>,
    /// Whether a 410 Gone deletes the connection's row (`DELETE_GONE_CONNECTIONS`, default
    /// true); false only to show what stale rows cost.
    pub delete_gone: bool,
    pub max_message_bytes: usize,
    pub post_concurrency: usize,
    pub post_max_attempts: u32,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    pub post_timeout: Duration,
    pub scan_page_limit: Option<i32>,
    pub warm_targets: Vec<WarmTarget>,
    pub warmer_delay: Duration,
    pub faults: FaultConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_lookup(|_| None).expect("defaults are valid")
    }
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests).
    /// Every bad value is an error naming the variable, so a broken deploy fails at init.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let fanout_mode = match get("FANOUT_MODE").as_deref() {
            None | Some("async") => FanoutMode::Async,
            Some("inline") => FanoutMode::Inline,
            Some(other) => {
                return Err(ChatError::Config(format!(
                    "FANOUT_MODE is {other:?}; expected \"async\" or \"inline\""
                )));
            }
        };
        let faults = match get("DYNAMOWAVE_FAULTS") {
            None => FaultConfig::default(),
            Some(raw) => FaultConfig::parse(&raw)?,
        };
        let warm_targets = match get("WARMER_TARGETS") {
            None => Vec::new(),
            Some(raw) => parse_warm_targets(&raw)?,
        };
        Ok(Settings {
            function_name: get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "local".into()),
            table_name: get("TABLE_NAME"),
            room_index: get("ROOM_INDEX_NAME").unwrap_or_else(|| "room-index".into()),
            // API Gateway closes every connection after 2 h; rows outlive that by an hour.
            connection_ttl: Duration::from_secs(number(&get, "CONNECTION_TTL_SECONDS", 10_800)?),
            fanout_mode,
            broadcast_function: get("BROADCAST_FUNCTION_NAME"),
            dlq_url: get("DLQ_URL"),
            delete_gone: match get("DELETE_GONE_CONNECTIONS").as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(ChatError::Config(format!(
                        "DELETE_GONE_CONNECTIONS is {other:?}; expected \"true\" or \"false\""
                    )));
                }
            },
            // 32 KB is API Gateway's frame limit: a bigger message could not have arrived in one frame.
            max_message_bytes: number(&get, "MAX_MESSAGE_BYTES", 32_768)?,
            post_concurrency: number(&get, "POST_CONCURRENCY", 32)?.max(1),
            post_max_attempts: number(&get, "POST_MAX_ATTEMPTS", 5)?.max(1),
            retry_base: Duration::from_millis(number(&get, "RETRY_BASE_MS", 50)?),
            retry_cap: Duration::from_millis(number(&get, "RETRY_CAP_MS", 2_000)?),
            post_timeout: Duration::from_millis(number(&get, "POST_TIMEOUT_MS", 3_000)?),
            scan_page_limit: match get("SCAN_PAGE_LIMIT") {
                None => None,
                Some(_) => Some(number(&get, "SCAN_PAGE_LIMIT", 0)?),
            },
            warm_targets,
            warmer_delay: Duration::from_millis(number(&get, "WARMER_DELAY_MS", 75)?),
            faults,
        })
    }

    pub fn table(&self) -> Result<&str> {
        self.table_name
            .as_deref()
            .ok_or_else(|| ChatError::Config("TABLE_NAME is not set".into()))
    }
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
) -> Result<T> {
    match get(key) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| {
            ChatError::Config(format!(
                "{key} is {raw:?}; expected a non-negative whole number"
            ))
        }),
    }
}

/// `WARMER_TARGETS` is `name=N,name=N` (function names never contain `=` or `,`).
pub fn parse_warm_targets(raw: &str) -> Result<Vec<WarmTarget>> {
    raw.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let bad = || {
                ChatError::Config(format!(
                    "WARMER_TARGETS entry {part:?} is not `function=concurrency` with concurrency 1..=100"
                ))
            };
            let (function, n) = part.split_once('=').ok_or_else(bad)?;
            let concurrency: u32 = n.trim().parse().map_err(|_| bad())?;
            if function.trim().is_empty() || !(1..=100).contains(&concurrency) {
                return Err(bad());
            }
            Ok(WarmTarget {
                function: function.trim().to_string(),
                concurrency,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.fanout_mode, FanoutMode::Async);
        assert_eq!(s.max_message_bytes, 32_768);
        assert_eq!(s.room_index, "room-index");
        assert!(s.faults.is_off());
        assert!(s.table().is_err());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = settings(&[("FANOUT_MODE", "sideways")]).unwrap_err();
        assert!(err.to_string().contains("FANOUT_MODE"), "{err}");
        let err = settings(&[("POST_CONCURRENCY", "-3")]).unwrap_err();
        assert!(err.to_string().contains("POST_CONCURRENCY"), "{err}");
        let err = settings(&[("DYNAMOWAVE_FAULTS", "{\"eror\":{}}")]).unwrap_err();
        assert!(err.to_string().contains("DYNAMOWAVE_FAULTS"), "{err}");
    }

    #[test]
    fn warm_targets_parse_and_reject() {
        let t = parse_warm_targets("chat-send=3, chat-broadcast=2").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].function, "chat-broadcast");
        assert_eq!(t[1].concurrency, 2);
        for bad in ["fn", "fn=0", "fn=x", "=2", "fn=101"] {
            assert!(parse_warm_targets(bad).is_err(), "{bad} accepted");
        }
    }
}
