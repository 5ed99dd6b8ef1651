//! AWS Fault Injection Service, the subset a chaos engine needs for Lambda faults
//! (restJson1, signing name `fis`): experiment templates (create, get, delete) and
//! experiments (start, get, stop, list), with the three `aws:lambda:*` actions applied at
//! every function's Runtime API (`faults.rs`), whatever its runtime.
//!
//! Deviations: targets name functions by `resourceArns` only (no `resourceTags` or
//! `filters`), actions start together (`startAfter` is refused), stop conditions are not
//! watched, `roleArn` is not assumed, and an experiment is `running` as soon as it starts.

pub mod faults;
mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::edge::AwsError;
use faults::Effect;
pub use faults::Faults;
pub use wire::router;

/// The Lambda actions and the parameters FIS documents for each.
pub const LAMBDA_ACTIONS: [(&str, &[&str]); 3] = [
    (
        "aws:lambda:invocation-add-delay",
        &[
            "duration",
            "invocationPercentage",
            "startupDelayMilliseconds",
        ],
    ),
    (
        "aws:lambda:invocation-error",
        &["duration", "invocationPercentage", "preventExecution"],
    ),
    (
        "aws:lambda:invocation-http-integration-response",
        &[
            "duration",
            "invocationPercentage",
            "preventExecution",
            "contentTypeHeader",
            "statusCode",
        ],
    ),
];

/// A validated action: its effect, share of invocations, length and target name.
#[derive(Debug, Clone)]
struct ActionSpec {
    effect: Effect,
    percentage: f64,
    duration: Duration,
    target: String,
}

struct Template {
    /// The template as created, echoed back by Get/Delete.
    body: Value,
    actions: BTreeMap<String, ActionSpec>,
    /// Target name -> function names.
    targets: BTreeMap<String, Vec<String>>,
}

struct Experiment {
    body: Value,
    /// When its last action ends.
    ends: Instant,
}

/// The service's state; `functions` maps a function ARN to its name.
pub struct FisService {
    pub faults: Arc<Faults>,
    functions: BTreeMap<String, String>,
    templates: Mutex<BTreeMap<String, Template>>,
    experiments: Mutex<BTreeMap<String, Experiment>>,
    region: String,
    account: String,
}

pub(crate) fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationException", message)
}

fn not_found(what: &str, id: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        format!("{what} {id} not found"),
    )
}

fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &hex[..15]).to_uppercase()
}

fn epoch_s() -> f64 {
    crate::lambda::epoch_ms() as f64 / 1000.0
}

/// ISO 8601 durations as FIS takes them: `PT30S`, `PT5M`, `PT1H30M`, `PT0.5S`.
pub fn parse_iso_duration(text: &str) -> Option<Duration> {
    let mut rest = text.strip_prefix("PT")?;
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    for (unit, seconds) in [('H', 3600.0), ('M', 60.0), ('S', 1.0)] {
        if let Some(i) = rest.find(unit) {
            let n: f64 = rest[..i].parse().ok().filter(|n: &f64| *n >= 0.0)?;
            total += n * seconds;
            rest = &rest[i + 1..];
        }
    }
    (rest.is_empty() && total > 0.0).then(|| Duration::from_secs_f64(total))
}

impl FisService {
    pub fn new<'a>(
        functions: impl IntoIterator<Item = (&'a str, &'a str)>,
        faults: Arc<Faults>,
        region: &str,
        account: &str,
    ) -> FisService {
        FisService {
            faults,
            functions: functions
                .into_iter()
                .map(|(arn, name)| (arn.to_string(), name.to_string()))
                .collect(),
            templates: Mutex::default(),
            experiments: Mutex::default(),
            region: region.to_string(),
            account: account.to_string(),
        }
    }

    pub fn create_template(&self, input: &Value) -> Result<Value, AwsError> {
        let targets = self.targets(input)?;
        let actions = actions(input, &targets)?;
        for required in ["roleArn", "description"] {
            if input.get(required).and_then(Value::as_str).is_none() {
                return Err(invalid(format!("{required} is required")));
            }
        }
        let stops = input
            .get("stopConditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("stopConditions is required"))?;
        for s in stops {
            match s.get("source").and_then(Value::as_str) {
                Some("none") => {}
                Some(other) => tracing::warn!(
                    source = other,
                    "FIS stop conditions are not watched by the local stack"
                ),
                None => return Err(invalid("stopConditions[].source is required")),
            }
        }
        let id = new_id("EXT");
        let now = epoch_s();
        let mut body = json!({
            "id": id,
            "arn": format!("arn:aws:fis:{}:{}:experiment-template/{id}", self.region, self.account),
            "creationTime": now,
            "lastUpdateTime": now,
        });
        for key in [
            "description",
            "targets",
            "actions",
            "stopConditions",
            "roleArn",
            "tags",
            "logConfiguration",
            "experimentOptions",
        ] {
            if let Some(v) = input.get(key) {
                body[key] = v.clone();
            }
        }
        self.templates.lock().expect("templates lock").insert(
            id,
            Template {
                body: body.clone(),
                actions,
                targets,
            },
        );
        Ok(json!({"experimentTemplate": body}))
    }

    pub fn get_template(&self, id: &str) -> Result<Value, AwsError> {
        let t = self.templates.lock().expect("templates lock");
        let t = t
            .get(id)
            .ok_or_else(|| not_found("Experiment template", id))?;
        Ok(json!({"experimentTemplate": t.body}))
    }

    pub fn delete_template(&self, id: &str) -> Result<Value, AwsError> {
        let t = self
            .templates
            .lock()
            .expect("templates lock")
            .remove(id)
            .ok_or_else(|| not_found("Experiment template", id))?;
        Ok(json!({"experimentTemplate": t.body}))
    }

    /// Starts an experiment: every action's faults go into effect now, for its duration.
    pub fn start(&self, input: &Value) -> Result<Value, AwsError> {
        let template_id = input
            .get("experimentTemplateId")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("experimentTemplateId is required"))?;
        let templates = self.templates.lock().expect("templates lock");
        let t = templates
            .get(template_id)
            .ok_or_else(|| not_found("Experiment template", template_id))?;
        let id = new_id("EXP");
        let now = Instant::now();
        let mut longest = Duration::ZERO;
        let mut actions = serde_json::Map::new();
        for (name, a) in &t.actions {
            for function in &t.targets[&a.target] {
                self.faults.add(
                    function,
                    &id,
                    a.effect.clone(),
                    a.percentage,
                    now + a.duration,
                );
            }
            longest = longest.max(a.duration);
            let mut shown = t.body["actions"][name].clone();
            shown["state"] = json!({"status": "running", "reason": "Action is running."});
            shown["startTime"] = json!(epoch_s());
            actions.insert(name.clone(), shown);
        }
        let body = json!({
            "id": id,
            "arn": format!("arn:aws:fis:{}:{}:experiment/{id}", self.region, self.account),
            "experimentTemplateId": template_id,
            "roleArn": t.body["roleArn"],
            "state": {"status": "running", "reason": "Experiment is running."},
            "targets": t.body["targets"],
            "actions": actions,
            "stopConditions": t.body["stopConditions"],
            "creationTime": epoch_s(),
            "startTime": epoch_s(),
            "tags": input.get("tags").cloned().unwrap_or_else(|| json!({})),
        });
        self.experiments.lock().expect("experiments lock").insert(
            id.clone(),
            Experiment {
                body,
                ends: now + longest,
            },
        );
        drop(templates);
        self.get(&id)
    }

    /// The experiment as it is now: `completed` once its actions' durations have passed.
    pub fn get(&self, id: &str) -> Result<Value, AwsError> {
        let mut experiments = self.experiments.lock().expect("experiments lock");
        let e = experiments
            .get_mut(id)
            .ok_or_else(|| not_found("Experiment", id))?;
        refresh(e);
        Ok(json!({"experiment": e.body}))
    }

    pub fn stop(&self, id: &str) -> Result<Value, AwsError> {
        let mut experiments = self.experiments.lock().expect("experiments lock");
        let e = experiments
            .get_mut(id)
            .ok_or_else(|| not_found("Experiment", id))?;
        refresh(e);
        if e.body["state"]["status"] == "running" {
            self.faults.remove_experiment(id);
            end(e, "stopped", "Experiment stopped.", "Action was stopped.");
        }
        Ok(json!({"experiment": e.body}))
    }

    /// Every experiment (of one template when given); one page.
    pub fn list(&self, template: Option<&str>) -> Value {
        let mut experiments = self.experiments.lock().expect("experiments lock");
        let list: Vec<Value> = experiments
            .values_mut()
            .filter(|e| template.is_none_or(|t| e.body["experimentTemplateId"] == t))
            .map(|e| {
                refresh(e);
                json!({
                    "id": e.body["id"], "arn": e.body["arn"],
                    "experimentTemplateId": e.body["experimentTemplateId"],
                    "state": e.body["state"], "creationTime": e.body["creationTime"],
                    "tags": e.body["tags"],
                })
            })
            .collect();
        json!({"experiments": list})
    }

    /// Target name -> function names; every target is Lambda functions by ARN.
    fn targets(&self, input: &Value) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
        let targets = input
            .get("targets")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("targets is required: the Lambda functions to act on"))?;
        let mut out = BTreeMap::new();
        for (name, t) in targets {
            let at = format!("targets.{name}");
            if t.get("resourceType").and_then(Value::as_str) != Some("aws:lambda:function") {
                return Err(invalid(format!(
                    "{at}.resourceType: the local stack's FIS acts on aws:lambda:function only"
                )));
            }
            if t.get("resourceTags").is_some() || t.get("filters").is_some() {
                return Err(invalid(format!(
                    "{at}: the local stack selects functions by resourceArns only (no resourceTags or filters)"
                )));
            }
            let arns = t
                .get("resourceArns")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty() && a.len() <= 5)
                .ok_or_else(|| invalid(format!("{at}.resourceArns: 1 to 5 function ARNs")))?;
            let mut names = Vec::new();
            for arn in arns {
                let arn = arn.as_str().unwrap_or_default();
                let name = self.functions.get(arn).ok_or_else(|| {
                    invalid(format!(
                        "{at}.resourceArns: {arn} is not a function of this stack"
                    ))
                })?;
                names.push(name.clone());
            }
            let mode = t
                .get("selectionMode")
                .and_then(Value::as_str)
                .unwrap_or("ALL");
            let keep = selection(mode, names.len()).ok_or_else(|| {
                invalid(format!(
                    "{at}.selectionMode: {mode} is not ALL, COUNT(n) or PERCENT(n)"
                ))
            })?;
            names.truncate(keep);
            out.insert(name.clone(), names);
        }
        Ok(out)
    }
}

/// A running experiment whose longest action's duration has passed is completed.
fn refresh(e: &mut Experiment) {
    if e.body["state"]["status"] == "running" && Instant::now() >= e.ends {
        end(
            e,
            "completed",
            "Experiment completed.",
            "Action was completed.",
        );
    }
}

/// Ends the experiment and each of its actions with `status`, now.
fn end(e: &mut Experiment, status: &str, reason: &str, action_reason: &str) {
    let now = json!(epoch_s());
    e.body["state"] = json!({"status": status, "reason": reason});
    e.body["endTime"] = now.clone();
    if let Some(actions) = e.body["actions"].as_object_mut() {
        for a in actions.values_mut() {
            a["state"] = json!({"status": status, "reason": action_reason});
            a["endTime"] = now.clone();
        }
    }
}

/// How many of `n` resolved targets a selection mode keeps [U: the first ones, not random].
fn selection(mode: &str, n: usize) -> Option<usize> {
    if mode == "ALL" {
        return Some(n);
    }
    let inner = |p: &str| {
        mode.strip_prefix(p)?
            .strip_suffix(')')?
            .parse::<usize>()
            .ok()
    };
    if let Some(count) = inner("COUNT(") {
        return Some(count.min(n));
    }
    inner("PERCENT(").map(|pct| (n * pct.min(100)).div_ceil(100))
}

fn actions(
    input: &Value,
    targets: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, ActionSpec>, AwsError> {
    let actions = input
        .get("actions")
        .and_then(Value::as_object)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("actions is required"))?;
    let mut out = BTreeMap::new();
    for (name, a) in actions {
        let at = format!("actions.{name}");
        let id = a
            .get("actionId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some((_, known)) = LAMBDA_ACTIONS.iter().find(|(k, _)| *k == id) else {
            return Err(invalid(format!(
                "{at}.actionId: {id:?} is not an action the local stack runs ({})",
                LAMBDA_ACTIONS.map(|(k, _)| k).join(", ")
            )));
        };
        if a.get("startAfter")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(invalid(format!(
                "{at}.startAfter: actions run together on the local stack"
            )));
        }
        let params = a
            .get("parameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(invalid(format!(
                "{at}.parameters.{unknown}: not a parameter of {id}"
            )));
        }
        let text = |k: &str| params.get(k).and_then(Value::as_str);
        let number = |k: &str, lo: f64, hi: f64, default: f64| -> Result<f64, AwsError> {
            match text(k) {
                None => Ok(default),
                Some(s) => s
                    .parse::<f64>()
                    .ok()
                    .filter(|n| (lo..=hi).contains(n))
                    .ok_or_else(|| {
                        invalid(format!(
                            "{at}.parameters.{k}: {s:?} is not a number from {lo} to {hi}"
                        ))
                    }),
            }
        };
        let duration = text("duration").ok_or_else(|| {
            invalid(format!(
                "{at}.parameters.duration is required (ISO 8601, e.g. PT1M)"
            ))
        })?;
        let duration = parse_iso_duration(duration).ok_or_else(|| {
            invalid(format!(
                "{at}.parameters.duration: {duration:?} is not an ISO 8601 duration like PT30S"
            ))
        })?;
        let prevent = match text("preventExecution") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "{at}.parameters.preventExecution: {other:?} is not true or false"
                )));
            }
        };
        let effect = match id {
            "aws:lambda:invocation-add-delay" => Effect::Delay(Duration::from_millis(number(
                "startupDelayMilliseconds",
                0.0,
                900_000.0,
                1000.0,
            )?
                as u64)),
            "aws:lambda:invocation-error" => Effect::Error {
                prevent_execution: prevent,
            },
            _ => Effect::HttpResponse {
                status: number("statusCode", 0.0, 999.0, f64::NAN).and_then(|n| {
                    if n.is_nan() {
                        Err(invalid(format!("{at}.parameters.statusCode is required")))
                    } else {
                        Ok(n as u16)
                    }
                })?,
                content_type: text("contentTypeHeader")
                    .unwrap_or("application/json")
                    .to_string(),
                prevent_execution: prevent,
            },
        };
        let target = a
            .get("targets")
            .and_then(|t| t.get("Functions"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid(format!(
                    "{at}.targets.Functions is required: the target of Lambda functions"
                ))
            })?;
        if !targets.contains_key(target) {
            return Err(invalid(format!(
                "{at}.targets.Functions: no target named {target}"
            )));
        }
        out.insert(
            name.clone(),
            ActionSpec {
                effect,
                percentage: number("invocationPercentage", 1.0, 100.0, 100.0)?,
                duration,
                target: target.to_string(),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        assert_eq!(parse_iso_duration("PT30S"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_iso_duration("PT1H30M"),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_iso_duration("PT0.5S"),
            Some(Duration::from_millis(500))
        );
        for bad in ["30S", "PT", "PT-1S", "PT1X", "PT0S"] {
            assert_eq!(parse_iso_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn selection_modes() {
        assert_eq!(selection("ALL", 3), Some(3));
        assert_eq!(selection("COUNT(1)", 3), Some(1));
        assert_eq!(selection("PERCENT(50)", 3), Some(2));
        assert_eq!(selection("SOME", 3), None);
    }

    #[test]
    fn templates_are_validated_naming_the_member() {
        let fis = FisService::new(
            [("arn:aws:lambda:us-east-1:000000000000:function:f", "f")],
            Arc::default(),
            "us-east-1",
            "000000000000",
        );
        let base = json!({
            "description": "test",
            "roleArn": "arn:aws:iam::000000000000:role/fis",
            "stopConditions": [{"source": "none"}],
            "targets": {"T": {"resourceType": "aws:lambda:function",
                "resourceArns": ["arn:aws:lambda:us-east-1:000000000000:function:f"], "selectionMode": "ALL"}},
            "actions": {"A": {"actionId": "aws:lambda:invocation-error",
                "parameters": {"duration": "PT1M", "invocationPercentage": "50"},
                "targets": {"Functions": "T"}}},
        });
        let created = fis.create_template(&base).expect("valid");
        let id = created["experimentTemplate"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let started = fis.start(&json!({"experimentTemplateId": id})).unwrap();
        assert_eq!(started["experiment"]["state"]["status"], "running");
        let exp = started["experiment"]["id"].as_str().unwrap().to_string();
        let stopped = fis.stop(&exp).unwrap();
        assert_eq!(stopped["experiment"]["state"]["status"], "stopped");
        assert_eq!(
            fis.faults.draw("f").replace,
            None,
            "stopping ends the faults"
        );

        for (patch, why) in [
            (
                json!({"actions": {"A": {"actionId": "aws:lambda:nope", "targets": {"Functions": "T"}}}}),
                "actions.A.actionId",
            ),
            (
                json!({"targets": {"T": {"resourceType": "aws:lambda:function", "resourceArns": ["arn:x"]}}}),
                "arn:x is not a function",
            ),
            (
                json!({"actions": {"A": {"actionId": "aws:lambda:invocation-error", "parameters": {"duration": "1m"}, "targets": {"Functions": "T"}}}}),
                "not an ISO 8601 duration",
            ),
            (
                json!({"actions": {"A": {"actionId": "aws:lambda:invocation-error", "parameters": {"duration": "PT1M", "invocationPercentage": "0"}, "targets": {"Functions": "T"}}}}),
                "invocationPercentage",
            ),
        ] {
            let mut input = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                input[k] = v.clone();
            }
            let err = fis.create_template(&input).expect_err(why);
            assert_eq!(err.code, "ValidationException");
            assert!(err.message.contains(why), "{why}: {}", err.message);
        }
    }
}
