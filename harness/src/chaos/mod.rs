//! Chaos on a timeline: each scenario `chaos:` entry is an [`Action`] applied at `at` and
//! reverted after `for`, through the AWS control-plane APIs (Lambda, API Gateway v2), so the
//! same scenario runs against the local stack and a deployed stack. [`parse`] validates an
//! entry when the scenario loads; [`timeline`] applies and reverts.

mod faults;
mod fis;
pub mod timeline;

use serde_json::Value;

/// A fault-layer key (`DYNAMOWAVE_FAULTS` in reference-impl/src/faults.rs) and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub key: &'static str,
    pub config: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Stage default route (or one route) throttling via UpdateStage.
    ThrottleApi {
        route: Option<String>,
        rate: f64,
        burst: i32,
    },
    /// A function's reserved concurrency (0: fully throttled) via PutFunctionConcurrency.
    ThrottleFunction { function: String, reserved: i32 },
    /// The reference fault layer on functions, via UpdateFunctionConfiguration.
    Fault {
        functions: Vec<String>,
        fault: Fault,
    },
    /// Invokes a function once (e.g. the warmer with its scheduled event); nothing to revert.
    Invoke {
        function: String,
        payload: Value,
        wait: bool,
    },
    /// A share of clients vanish without a close frame (the engine does this).
    DropClients { share: f64 },
    /// Every dead letter is delivered again (`dynamowave dlq replay` on the timeline).
    DlqReplay,
    /// Load on another function that eats the account's unreserved concurrency: `concurrency`
    /// callers (None: the unreserved pool and 10 % more) each invoking it again and again with
    /// a warm-up ping that holds an instance `hold_ms` without touching DynamoDB.
    /// `unreserve` lifts the function's own reservation for the window, so it draws from the
    /// shared pool (every reference function has one).
    NoisyNeighbor {
        function: String,
        concurrency: Option<u32>,
        hold_ms: u64,
        unreserve: bool,
    },
    /// An AWS FIS Lambda action (`aws:lambda:invocation-*`) on any functions, whatever their
    /// runtime or code: an experiment template made, started at `at`, stopped after `for`,
    /// deleted. `parameters` are FIS's (strings), less `duration`, which is the window.
    Fis {
        functions: Vec<String>,
        action_id: &'static str,
        parameters: Vec<(&'static str, String)>,
        /// The role FIS assumes (required by AWS; the local stack takes any).
        role_arn: Option<String>,
    },
}

impl Action {
    /// Whether the action lasts (has something to revert).
    pub fn lasts(&self) -> bool {
        !matches!(
            self,
            Action::Invoke { .. } | Action::DropClients { .. } | Action::DlqReplay
        )
    }
}

pub const ACTIONS: [&str; 15] = [
    "throttle-api",
    "throttle-function",
    "lambda-error",
    "lambda-latency",
    "lambda-timeout",
    "lambda-crash",
    "connections-fail",
    "dynamodb-throttle",
    "drop-clients",
    "invoke",
    "noisy-neighbor",
    "dlq-replay",
    FIS_DELAY,
    FIS_ERROR,
    FIS_HTTP,
];

const FIS_DELAY: &str = "aws:lambda:invocation-add-delay";
const FIS_ERROR: &str = "aws:lambda:invocation-error";
const FIS_HTTP: &str = "aws:lambda:invocation-http-integration-response";

/// Validates one entry's parameters; the message names the parameter.
pub fn parse(action: &str, params: &Value) -> Result<Action, String> {
    let p = Params { params, action };
    p.known(match action {
        "throttle-api" => &["rate", "burst", "route"],
        "throttle-function" => &["function", "reserved"],
        "lambda-error" => &["function", "percentage", "message"],
        "lambda-latency" => &["function", "percentage", "min_ms", "max_ms"],
        "lambda-timeout" | "lambda-crash" | "dynamodb-throttle" => &["function", "percentage"],
        "connections-fail" => &["function", "percentage", "status"],
        "drop-clients" => &["share"],
        "dlq-replay" => &[],
        "invoke" => &["function", "payload", "wait"],
        "noisy-neighbor" => &["function", "concurrency", "hold_ms", "unreserve"],
        FIS_DELAY => &["function", "percentage", "delay_ms", "role_arn"],
        FIS_ERROR => &["function", "percentage", "prevent_execution", "role_arn"],
        FIS_HTTP => &[
            "function",
            "percentage",
            "prevent_execution",
            "status_code",
            "content_type",
            "role_arn",
        ],
        other => {
            return Err(format!(
                "unknown action {other:?}; known: {}",
                ACTIONS.join(", ")
            ));
        }
    })?;
    Ok(match action {
        "throttle-api" => Action::ThrottleApi {
            route: p.string("route").ok(),
            rate: p.number("rate", 0.0, f64::MAX)?,
            burst: p.number("burst", 0.0, f64::from(i32::MAX))? as i32,
        },
        "throttle-function" => Action::ThrottleFunction {
            function: p.string("function")?,
            reserved: p.number("reserved", 0.0, f64::from(i32::MAX))? as i32,
        },
        "noisy-neighbor" => Action::NoisyNeighbor {
            function: p.string("function")?,
            concurrency: match params.get("concurrency") {
                None => None,
                Some(Value::String(s)) if s == "saturate" => None,
                Some(_) => Some(p.number("concurrency", 1.0, 10_000.0)? as u32),
            },
            hold_ms: match params.get("hold_ms") {
                None => 1_000,
                Some(_) => p.number("hold_ms", 1.0, 60_000.0)? as u64,
            },
            unreserve: match params.get("unreserve") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(p.bad("unreserve", "must be true or false")),
            },
        },
        "dlq-replay" => Action::DlqReplay,
        FIS_DELAY | FIS_ERROR | FIS_HTTP => fis_action(&p)?,
        "drop-clients" => Action::DropClients {
            share: p.number("share", 0.0, 1.0)?,
        },
        "invoke" => Action::Invoke {
            function: p.string("function")?,
            payload: params.get("payload").cloned().unwrap_or(Value::Null),
            wait: match params.get("wait") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(p.bad("wait", "must be true or false")),
            },
        },
        _ => {
            let functions = p.functions()?;
            let percentage = p.number("percentage", 0.0, 100.0)?;
            let (key, config) = match action {
                "lambda-error" => (
                    "error",
                    serde_json::json!({"percentage": percentage,
                        "message": p.string("message").unwrap_or_else(|_| "injected by dynamowave chaos".into())}),
                ),
                "lambda-latency" => {
                    let min = p.number("min_ms", 0.0, 900_000.0)?;
                    let max = match params.get("max_ms") {
                        Some(_) => p.number("max_ms", min, 900_000.0)?,
                        None => min,
                    };
                    (
                        "latency",
                        serde_json::json!({"percentage": percentage, "min_ms": min as u64, "max_ms": max as u64}),
                    )
                }
                "lambda-timeout" => ("timeout", serde_json::json!({"percentage": percentage})),
                "lambda-crash" => ("crash", serde_json::json!({"percentage": percentage})),
                "dynamodb-throttle" => (
                    "dynamodb_throttle",
                    serde_json::json!({"percentage": percentage}),
                ),
                _ => {
                    let status = p.number("status", 400.0, 599.0).unwrap_or(500.0) as u16;
                    if ![410, 429, 500, 502, 503, 504].contains(&status) {
                        return Err(p.bad("status", "must be one of 410, 429, 500, 502, 503, 504"));
                    }
                    (
                        "connections_fail",
                        serde_json::json!({"percentage": percentage, "status": status}),
                    )
                }
            };
            Action::Fault {
                functions,
                fault: Fault { key, config },
            }
        }
    })
}

/// FIS's parameters from the scenario's: `percentage` → invocationPercentage (1–100),
/// `delay_ms` → startupDelayMilliseconds, `prevent_execution`, `status_code`, `content_type`.
fn fis_action(p: &Params) -> Result<Action, String> {
    let action_id = match p.action {
        FIS_DELAY => FIS_DELAY,
        FIS_ERROR => FIS_ERROR,
        _ => FIS_HTTP,
    };
    let mut parameters = Vec::new();
    if p.params.get("percentage").is_some() {
        let n = p.number("percentage", 1.0, 100.0)?;
        if n.fract() != 0.0 {
            return Err(p.bad("percentage", "FIS takes whole percentages from 1 to 100"));
        }
        parameters.push(("invocationPercentage", format!("{n}")));
    }
    if p.params.get("delay_ms").is_some() {
        let n = p.number("delay_ms", 0.0, 900_000.0)?;
        parameters.push(("startupDelayMilliseconds", format!("{}", n as u64)));
    }
    match p.params.get("prevent_execution") {
        None => {}
        Some(Value::Bool(b)) => parameters.push(("preventExecution", b.to_string())),
        Some(_) => return Err(p.bad("prevent_execution", "must be true or false")),
    }
    if action_id == FIS_HTTP {
        let code = p.number("status_code", 0.0, 999.0)?;
        parameters.push(("statusCode", format!("{}", code as u16)));
        let content_type = p
            .string("content_type")
            .unwrap_or_else(|_| "application/json".into());
        parameters.push(("contentTypeHeader", content_type));
    }
    Ok(Action::Fis {
        functions: p.functions()?,
        action_id,
        parameters,
        role_arn: p.string("role_arn").ok(),
    })
}

struct Params<'a> {
    params: &'a Value,
    action: &'a str,
}

impl Params<'_> {
    fn bad(&self, name: &str, why: &str) -> String {
        format!("{} params.{name}: {why}", self.action)
    }

    fn known(&self, names: &[&str]) -> Result<(), String> {
        match self.params {
            Value::Null => Ok(()),
            Value::Object(m) => match m.keys().find(|k| !names.contains(&k.as_str())) {
                Some(k) => Err(format!(
                    "{} params: unknown parameter {k:?}; known: {}",
                    self.action,
                    names.join(", ")
                )),
                None => Ok(()),
            },
            _ => Err(format!("{} params: must be a mapping", self.action)),
        }
    }

    fn string(&self, name: &str) -> Result<String, String> {
        match self.params.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(self.bad(name, "must be a non-empty string")),
            None => Err(self.bad(name, "is required")),
        }
    }

    fn number(&self, name: &str, min: f64, max: f64) -> Result<f64, String> {
        let v = self
            .params
            .get(name)
            .ok_or_else(|| self.bad(name, "is required"))?;
        match v.as_f64() {
            Some(n) if n >= min && n <= max => Ok(n),
            _ => Err(self.bad(name, &format!("{v} is not a number from {min} to {max}"))),
        }
    }

    /// `function: Name` or `function: [A, B]`.
    fn functions(&self) -> Result<Vec<String>, String> {
        match self.params.get("function") {
            Some(Value::String(s)) if !s.is_empty() => Ok(vec![s.clone()]),
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(self.bad("function", "list items must be function names")),
                })
                .collect(),
            Some(_) => Err(self.bad("function", "must be a function name or a list of them")),
            None => Err(self.bad("function", "is required")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_parse_and_bad_parameters_are_named() {
        let cases: &[(&str, Value, Result<(), &str>)] = &[
            (
                "lambda-error",
                json!({"function": "Broadcast", "percentage": 50}),
                Ok(()),
            ),
            (
                "lambda-error",
                json!({"function": "Broadcast", "percentage": 150}),
                Err("params.percentage"),
            ),
            (
                "lambda-error",
                json!({"percentage": 5}),
                Err("params.function: is required"),
            ),
            (
                "lambda-latency",
                json!({"function": ["A", "B"], "percentage": 5, "min_ms": 100}),
                Ok(()),
            ),
            (
                "connections-fail",
                json!({"function": "B", "percentage": 5, "status": 418}),
                Err("params.status"),
            ),
            (
                "throttle-api",
                json!({"rate": 1, "burst": 1, "speed": 3}),
                Err("unknown parameter \"speed\""),
            ),
            (
                "throttle-function",
                json!({"function": "SendMessage", "reserved": 0}),
                Ok(()),
            ),
            ("drop-clients", json!({"share": 1.5}), Err("params.share")),
            ("teleport", json!({}), Err("unknown action \"teleport\"")),
            (
                "aws:lambda:invocation-error",
                json!({"function": "Chat", "percentage": 50, "prevent_execution": true}),
                Ok(()),
            ),
            (
                "aws:lambda:invocation-error",
                json!({"function": "Chat", "percentage": 0}),
                Err("params.percentage"),
            ),
            (
                "aws:lambda:invocation-http-integration-response",
                json!({"function": "Chat"}),
                Err("params.status_code: is required"),
            ),
            (
                "aws:lambda:invocation-add-delay",
                json!({"function": "Chat", "status_code": 500}),
                Err("unknown parameter \"status_code\""),
            ),
        ];
        for (action, params, want) in cases {
            let got = parse(action, params);
            match (want, &got) {
                (Ok(()), Ok(_)) => {}
                (Err(needle), Err(m)) => assert!(m.contains(needle), "{action}: {m}"),
                _ => panic!("{action} {params}: got {got:?}, want {want:?}"),
            }
        }
        let Ok(Action::Fault { fault, functions }) = parse(
            "lambda-latency",
            &json!({"function": "A", "percentage": 5, "min_ms": 100, "max_ms": 200}),
        ) else {
            panic!("latency parses")
        };
        assert_eq!(functions, ["A"]);
        assert_eq!(fault.key, "latency");
        assert_eq!(
            fault.config,
            json!({"percentage": 5.0, "min_ms": 100, "max_ms": 200})
        );
    }
}
