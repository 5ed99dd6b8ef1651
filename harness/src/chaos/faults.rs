//! `DYNAMOWAVE_FAULTS` on a function while several actions overlap: the variable is the
//! function's own value with every active fault's key laid over it, and goes back to exactly
//! the original (absent stays absent) when the last fault ends. Only that variable changes;
//! the function's other environment variables are read first and sent back unchanged
//! (UpdateFunctionConfiguration replaces the whole environment).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_lambda::types::Environment;
use serde_json::{Map, Value};

use super::Fault;
use crate::aws::describe;

pub const VARIABLE: &str = "DYNAMOWAVE_FAULTS";

#[derive(Default)]
pub struct FaultState {
    /// Physical function name → its variable before the first fault (None: unset).
    original: HashMap<String, Option<String>>,
    /// Physical function name → (step, fault) in application order.
    active: HashMap<String, Vec<(usize, Fault)>>,
}

impl FaultState {
    /// The variable's value for `function` now, given what is active.
    fn value(&self, function: &str) -> Option<String> {
        let original = self.original.get(function).cloned().flatten();
        let active = self.active.get(function).map(Vec::as_slice).unwrap_or(&[]);
        if active.is_empty() {
            return original;
        }
        let mut config: Map<String, Value> = original
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default();
        for (_, f) in active {
            config.insert(f.key.to_string(), f.config.clone());
        }
        Some(Value::Object(config).to_string())
    }

    pub fn knows(&self, function: &str) -> bool {
        self.original.contains_key(function)
    }

    pub fn remember(&mut self, function: &str, original: Option<String>) {
        self.original
            .entry(function.to_string())
            .or_insert(original);
    }

    /// Adds or removes `step`'s fault; returns the variable's new value.
    pub fn set(&mut self, function: &str, step: usize, fault: Option<&Fault>) -> Option<String> {
        let list = self.active.entry(function.to_string()).or_default();
        list.retain(|(s, _)| *s != step);
        if let Some(f) = fault {
            list.push((step, f.clone()));
        }
        self.value(function)
    }
}

/// The function's environment variables now.
pub async fn environment(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
) -> Result<BTreeMap<String, String>, String> {
    let got = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| format!("GetFunctionConfiguration {function}: {}", describe(&e)))?;
    Ok(got
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

/// Sets (or removes) the variable, keeping every other one. AWS refuses an update while the
/// previous one is still in progress (ResourceConflictException): wait and try again.
pub async fn write(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    value: Option<&str>,
) -> Result<(), String> {
    let mut wait = Duration::from_millis(200);
    for attempt in 1.. {
        let mut vars = environment(lambda, function).await?;
        match value {
            Some(v) => vars.insert(VARIABLE.to_string(), v.to_string()),
            None => vars.remove(VARIABLE),
        };
        let env = Environment::builder().set_variables(Some(vars.into_iter().collect()));
        match lambda
            .update_function_configuration()
            .function_name(function)
            .environment(env.build())
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e)
                if attempt < 20
                    && e.as_service_error()
                        .is_some_and(|s| s.is_resource_conflict_exception()) =>
            {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(format!(
                    "UpdateFunctionConfiguration {function}: {}",
                    describe(&e)
                ));
            }
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overlapping_faults_compose_and_the_original_comes_back_exactly() {
        let error = Fault {
            key: "error",
            config: json!({"percentage": 10.0}),
        };
        let throttle = Fault {
            key: "dynamodb_throttle",
            config: json!({"percentage": 5.0}),
        };
        let mut s = FaultState::default();
        s.remember("f", None);
        let v = s.set("f", 0, Some(&error)).expect("set");
        assert_eq!(
            serde_json::from_str::<Value>(&v).unwrap(),
            json!({"error": {"percentage": 10.0}})
        );
        let v = s.set("f", 1, Some(&throttle)).expect("set");
        assert_eq!(
            serde_json::from_str::<Value>(&v).unwrap(),
            json!({"error": {"percentage": 10.0}, "dynamodb_throttle": {"percentage": 5.0}})
        );
        assert!(s.set("f", 0, None).is_some());
        assert_eq!(s.set("f", 1, None), None, "unset before, unset after");

        let mut s = FaultState::default();
        s.remember("g", Some(r#"{"latency":{"percentage":1}}"#.into()));
        s.set("g", 0, Some(&error));
        assert_eq!(
            s.set("g", 0, None).as_deref(),
            Some(r#"{"latency":{"percentage":1}}"#)
        );
    }
}
