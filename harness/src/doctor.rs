//! `dynamowave doctor`: a preflight before a game day or a nightly run. It finds the stack
//! as `run --stack` does, checks every function and chaos action the scenario names, says
//! where each SLO metric's data comes from and when it is complete, and lists the AWS
//! permissions the run needs (all of them are in harness-policy.json). Exit 0 when the run
//! can go ahead, 2 naming each problem otherwise.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aws_sdk_sqs::config::ProvideCredentials;

use crate::chaos::Action;
use crate::deployed::{Deployed, Overrides};
use crate::error::HarnessError;
use crate::{scenario, slo};

/// What `doctor` is asked to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: PathBuf,
    /// The SLO file [default: the scenario's].
    pub slo: Option<PathBuf>,
    pub stack: Option<String>,
    pub endpoint_url: Option<String>,
    pub region: String,
    /// The run's settle time, to say when data will be complete.
    pub settle: std::time::Duration,
}

/// The variable the reference template sets on every function built with the fault layer
/// (reference-impl/src/faults.rs reads `DYNAMOWAVE_FAULTS`).
pub const FAULT_LAYER_MARKER: &str = "DYNAMOWAVE_FAULT_LAYER";

/// Every IAM action the harness may call, for harness-policy.json's test.
pub const ALL_ACTIONS: &[&str] = &[
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackResources",
    "cloudwatch:GetMetricData",
    "logs:FilterLogEvents",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "lambda:GetFunctionConfiguration",
    "lambda:UpdateFunctionConfiguration",
    "lambda:GetFunctionConcurrency",
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
    "lambda:GetAccountSettings",
    "lambda:InvokeFunction",
    "apigateway:GET",
    "apigateway:PATCH",
    "apigateway:DELETE",
    "execute-api:ManageConnections",
    "fis:CreateExperimentTemplate",
    "fis:StartExperiment",
    "fis:GetExperiment",
    "fis:StopExperiment",
    "fis:DeleteExperimentTemplate",
    "fis:TagResource",
    "iam:PassRole",
];

/// The permissions a run of `plan` needs, each with why.
pub fn permissions(
    plan: &scenario::Plan,
    thresholds: &[slo::Threshold],
) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = vec![
        (
            "cloudformation:DescribeStacks",
            "finding the stack and its outputs".into(),
        ),
        (
            "cloudformation:DescribeStackResources",
            "finding its functions, table, queue and API".into(),
        ),
        (
            "cloudwatch:GetMetricData",
            "the target's metrics over the run's window".into(),
        ),
        (
            "logs:FilterLogEvents",
            "cold starts and retries from the REPORT lines".into(),
        ),
        (
            "sqs:ReceiveMessage",
            "reading the DLQ back for the accounting".into(),
        ),
    ];
    if thresholds.iter().any(|t| {
        matches!(
            t.metric.as_str(),
            "post_retries" | "retry_backoff_violations"
        )
    }) {
        out.push((
            "lambda:GetFunctionConfiguration",
            "the broadcast worker's backoff settings".into(),
        ));
    }
    for step in &plan.chaos {
        let why = |what: &str| {
            format!(
                "chaos {} at {:.0}s: {what}",
                step.name,
                step.at.as_secs_f64()
            )
        };
        let needs: &[(&'static str, &str)] = match &step.action {
            Action::ThrottleApi { .. } => &[
                ("apigateway:GET", "GetStage (the settings to restore)"),
                ("apigateway:PATCH", "UpdateStage"),
                ("apigateway:DELETE", "DeleteRouteSettings"),
            ],
            Action::ThrottleFunction { .. } => &[
                ("lambda:GetFunctionConfiguration", "checking the function"),
                (
                    "lambda:GetFunctionConcurrency",
                    "the reservation to restore",
                ),
                ("lambda:PutFunctionConcurrency", "setting it"),
                (
                    "lambda:DeleteFunctionConcurrency",
                    "restoring no reservation",
                ),
            ],
            Action::Fault { .. } => &[
                (
                    "lambda:GetFunctionConfiguration",
                    "the environment to restore",
                ),
                (
                    "lambda:UpdateFunctionConfiguration",
                    "setting DYNAMOWAVE_FAULTS",
                ),
            ],
            Action::Invoke { .. } => &[
                ("lambda:GetFunctionConfiguration", "checking the function"),
                ("lambda:InvokeFunction", "the invocation"),
            ],
            Action::NoisyNeighbor { .. } => &[
                ("lambda:GetFunctionConfiguration", "checking the function"),
                ("lambda:GetAccountSettings", "the unreserved pool"),
                ("lambda:InvokeFunction", "the load"),
                (
                    "lambda:GetFunctionConcurrency",
                    "the reservation to restore",
                ),
                ("lambda:PutFunctionConcurrency", "restoring it"),
                ("lambda:DeleteFunctionConcurrency", "lifting it"),
            ],
            Action::DlqReplay => &[
                ("sqs:DeleteMessage", "removing replayed letters"),
                ("execute-api:ManageConnections", "delivering them again"),
            ],
            Action::DropClients { .. } => &[],
            Action::Fis { .. } => &[
                ("lambda:GetFunctionConfiguration", "the functions' ARNs"),
                ("fis:CreateExperimentTemplate", "the experiment template"),
                ("fis:TagResource", "tagging it dynamowave"),
                ("iam:PassRole", "handing FIS its role (role_arn)"),
                ("fis:StartExperiment", "starting it at `at`"),
                ("fis:GetExperiment", "its state when the window ends"),
                ("fis:StopExperiment", "stopping it"),
                ("fis:DeleteExperimentTemplate", "deleting what was made"),
            ],
        };
        out.extend(needs.iter().map(|(a, w)| (*a, why(w))));
    }
    let mut seen = BTreeSet::new();
    out.retain(|(a, _)| seen.insert(*a));
    out
}

/// Whether FIS's Lambda actions reach `function`. On AWS they need the FIS extension (its
/// layer, `AWS_LAMBDA_EXEC_WRAPPER=/opt/aws-fis/bootstrap`, `AWS_FIS_CONFIGURATION_LOCATION`)
/// and FIS's documented setup does not cover OS-only runtimes (`provided.*`, where wrapper
/// scripts do not run); the local stack applies them at its Runtime API for every runtime.
async fn fis_readiness(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    local: bool,
) -> Result<String, String> {
    let c = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| format!("not there: {}", crate::aws::describe(&e)))?;
    let runtime = c
        .runtime()
        .map(|r| r.as_str().to_string())
        .unwrap_or_default();
    if local {
        return Ok(format!(
            "{runtime}: the local stack applies FIS faults at its Runtime API (every runtime)"
        ));
    }
    let vars = c.environment().and_then(|e| e.variables());
    let var = |k: &str| vars.and_then(|v| v.get(k)).map(String::as_str);
    let wrapper = var("AWS_LAMBDA_EXEC_WRAPPER") == Some("/opt/aws-fis/bootstrap");
    let config = var("AWS_FIS_CONFIGURATION_LOCATION").is_some();
    let layer = c
        .layers()
        .iter()
        .any(|l| l.arn().is_some_and(|a| a.contains("aws-fis-extension")));
    if runtime.starts_with("provided") {
        let own = vars.is_some_and(|v| v.contains_key(FAULT_LAYER_MARKER));
        return Err(format!(
            "{runtime} is an OS-only runtime, which FIS's documented Lambda setup does not cover (wrapper scripts do not run there){}",
            if own {
                "; it carries the reference fault layer: use the lambda-* actions instead"
            } else {
                ""
            }
        ));
    }
    match (layer, wrapper, config) {
        (true, true, true) => Ok(format!("{runtime}: the FIS extension is configured")),
        _ => Err(format!(
            "{runtime}: the FIS extension is not configured (layer {}, AWS_LAMBDA_EXEC_WRAPPER=/opt/aws-fis/bootstrap {}, AWS_FIS_CONFIGURATION_LOCATION {})",
            if layer { "yes" } else { "missing" },
            if wrapper { "yes" } else { "missing" },
            if config { "yes" } else { "missing" }
        )),
    }
}

/// Where a metric's data comes from, and when it is complete.
pub fn source_of(metric: &str, settle: std::time::Duration) -> String {
    let late = format!(
        "complete once published; the run waits up to --settle ({:.0} s)",
        settle.as_secs_f64()
    );
    match metric {
        "cold_starts" => {
            format!("CloudWatch Logs: REPORT lines with Init Duration (FilterLogEvents); {late}")
        }
        "async_retries" => format!("CloudWatch Logs: REPORT lines repeating a request id; {late}"),
        "gone_repeats" => {
            format!("CloudWatch Logs: the broadcast worker's \"connection gone\" lines; {late}")
        }
        "function_invocations" => format!("CloudWatch AWS/Lambda Invocations (Sum); {late}"),
        "function_errors" => format!("CloudWatch AWS/Lambda Errors (Sum); {late}"),
        "function_throttles" => format!("CloudWatch AWS/Lambda Throttles (Sum); {late}"),
        "function_max_concurrency" => {
            format!("CloudWatch AWS/Lambda ConcurrentExecutions (Maximum); {late}")
        }
        "dead_lettered" | "dlq_duplicates" | "dlq_missing_attributes" => {
            "the DLQ, read with SQS ReceiveMessage after the run".into()
        }
        "post_retries" | "retry_backoff_violations" => {
            "CloudWatch Logs: the broadcast worker's \"retrying post\" lines, after the run".into()
        }
        _ => "the harness's own clients, as the run goes".into(),
    }
}

/// Runs the checks, printing each; Ok(0) when the run can go ahead, Ok(2) otherwise.
pub async fn doctor(o: Options) -> Result<i32, HarnessError> {
    let plan = scenario::load(&o.scenario)?;
    let slo_file = o.slo.clone().or_else(|| plan.slo.clone());
    let thresholds = match &slo_file {
        Some(p) => slo::load(p)?,
        None => Vec::new(),
    };
    let mut problems: Vec<String> = Vec::new();
    let endpoint = o.endpoint_url.as_deref();
    let stack_name = match (&o.stack, endpoint) {
        (Some(s), _) => s.clone(),
        (None, Some(edge)) => crate::attach::stack(edge)
            .await?
            .0
            .unwrap_or_else(|| "dynamowave".into()),
        (None, None) => {
            return Err(HarnessError::Usage(
                "doctor checks a stack: give --stack NAME (AWS, or with --endpoint-url a local stack) or --endpoint-url of a `local up` edge".into(),
            ));
        }
    };
    println!("scenario   {}", o.scenario.display());
    let sdk = crate::aws::loader(aws_config::Region::new(o.region.clone()), endpoint)
        .load()
        .await;
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    match sdk.credentials_provider() {
        Some(p) => match p.provide_credentials().await {
            Ok(c) => println!(
                "✓ credentials  {} (region {region})",
                mask(c.access_key_id())
            ),
            Err(e) => problems.push(format!("no AWS credentials: {}", crate::aws::describe(&e))),
        },
        None => problems.push("no AWS credential provider is configured".into()),
    }
    let d: Deployed =
        match crate::deployed::resolve(&stack_name, &o.region, endpoint, &Overrides::default())
            .await
        {
            Ok(d) => d,
            Err(e) => {
                problems.push(e.to_string());
                return Ok(finish(&problems));
            }
        };
    println!("✓ stack      {stack_name}: {}", d.websocket_url);
    for (name, physical) in &d.resources.functions {
        println!("    function {name} = {physical}");
    }
    match &d.resources.dlq_url {
        Some(q) => println!("    dlq {q}"),
        None => println!("  ! no DLQ: dead letters will not be read"),
    }
    let clients = crate::aws::clients(endpoint, &d.region).await;
    // Every function a chaos action or an SLO tag names must exist; fault actions need
    // the reference fault layer on it.
    for step in &plan.chaos {
        let (functions, needs_layer): (Vec<&String>, bool) = match &step.action {
            Action::Fault { functions, .. } => (functions.iter().collect(), true),
            Action::Fis { functions, .. } => {
                for f in functions {
                    let physical = crate::chaos::timeline::physical_name(&d.outputs, f);
                    let local = endpoint.is_some_and(crate::aws::is_loopback);
                    match fis_readiness(&clients.lambda, &physical, local).await {
                        Ok(line) => println!("  chaos {} on {f}: {line}", step.name),
                        Err(problem) => problems.push(format!(
                            "chaos {} at {:.0}s on function {f} ({physical}): {problem}",
                            step.name,
                            step.at.as_secs_f64()
                        )),
                    }
                }
                (Vec::new(), false)
            }
            Action::ThrottleFunction { function, .. }
            | Action::Invoke { function, .. }
            | Action::NoisyNeighbor { function, .. } => (vec![function], false),
            _ => (Vec::new(), false),
        };
        for f in functions {
            // Outputs hold the resources under our template's names too (deployed::resolve).
            let physical = crate::chaos::timeline::physical_name(&d.outputs, f);
            let got = clients
                .lambda
                .get_function_configuration()
                .function_name(&physical)
                .send()
                .await;
            match got {
                Err(e) => problems.push(format!(
                    "chaos {} at {:.0}s names function {f:?} ({physical}), which the stack does not have: {}",
                    step.name,
                    step.at.as_secs_f64(),
                    crate::aws::describe(&e)
                )),
                Ok(c) if needs_layer => {
                    let vars = c.environment().and_then(|e| e.variables());
                    if vars.is_some_and(|v| v.contains_key(FAULT_LAYER_MARKER)) {
                        println!("✓ chaos {} on {f}: the fault layer is there", step.name);
                    } else {
                        problems.push(format!(
                            "chaos {} at {:.0}s needs the reference fault layer on function {f} ({physical}), which does not carry it (no {FAULT_LAYER_MARKER} in its environment); link reference-impl's faults module or drop the action",
                            step.name,
                            step.at.as_secs_f64()
                        ));
                    }
                }
                Ok(_) => println!("✓ chaos {} on {f}", step.name),
            }
        }
    }
    println!("SLO metrics and where their data comes from:");
    for t in &thresholds {
        if let Some(f) = t.tags.get("function")
            && !d.resources.functions.contains_key(f)
        {
            let known: Vec<&str> = d.resources.functions.keys().map(String::as_str).collect();
            problems.push(format!(
                "{} names function {f}, which the stack does not have (it has {})",
                t.name(),
                known.join(", ")
            ));
            continue;
        }
        if matches!(
            t.metric.as_str(),
            "dead_lettered" | "dlq_duplicates" | "dlq_missing_attributes"
        ) && d.resources.dlq_url.is_none()
        {
            problems.push(format!("{} needs a DLQ, and the stack has none", t.name()));
        }
        println!(
            "    {} {}: {}",
            t.name(),
            t.expression,
            source_of(&t.metric, o.settle)
        );
    }
    println!("AWS permissions this run needs (harness-policy.json has them all):");
    for (action, why) in permissions(&plan, &thresholds) {
        println!("    {action:<40} {why}");
    }
    Ok(finish(&problems))
}

fn mask(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("access key …{tail}")
}

fn finish(problems: &[String]) -> i32 {
    if problems.is_empty() {
        println!("ok: the run can go ahead");
        return 0;
    }
    for p in problems {
        println!("✗ {p}");
    }
    println!("{} problem(s): fix them before the run", problems.len());
    2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_allows_every_action_and_no_wildcard() {
        let policy: serde_json::Value =
            serde_json::from_str(include_str!("../../harness-policy.json")).unwrap();
        let mut allowed = BTreeSet::new();
        for s in policy["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Allow", "{s}");
            let actions = match &s["Action"] {
                serde_json::Value::String(a) => vec![a.clone()],
                v => v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect(),
            };
            for a in actions {
                assert!(
                    !a.contains('*'),
                    "a wildcard action in harness-policy.json: {a}"
                );
                allowed.insert(a);
            }
            // Only the APIs without resource-level permissions may name every resource.
            if s["Resource"] == "*" {
                let ok = ["cloudwatch:GetMetricData", "lambda:GetAccountSettings"];
                for a in s["Action"].as_array().unwrap() {
                    assert!(ok.contains(&a.as_str().unwrap()), "{a} on Resource *");
                }
            }
        }
        let all: BTreeSet<String> = ALL_ACTIONS.iter().map(|a| a.to_string()).collect();
        assert_eq!(allowed, all, "harness-policy.json and ALL_ACTIONS differ");
    }

    #[test]
    fn every_permission_a_scenario_can_need_is_known() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") || crate::capacity::plan::is_plan(&path)
            {
                continue;
            }
            let plan = scenario::load(&path).unwrap();
            let thresholds = plan
                .slo
                .as_ref()
                .map(|p| slo::load(p).unwrap())
                .unwrap_or_default();
            for (action, _) in permissions(&plan, &thresholds) {
                assert!(
                    ALL_ACTIONS.contains(&action),
                    "{}: {action}",
                    path.display()
                );
            }
        }
    }
}
