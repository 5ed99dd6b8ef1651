//! `AWS::Serverless::Function` -> `FunctionSpec`: SAM's Globals, defaults, DLQ, async
//! invoke config and Schedule events.

use std::collections::BTreeMap;
use std::time::Duration;

use yaml_serde::{Mapping, Value};

use super::intrinsics::{Eval, err};
use super::physical::{FUNCTION, LAMBDA, QUEUE};
use super::props::{Props, text};
use crate::error::{LocalError, Result};
use crate::model::{Code, FunctionSpec, Runtime, Schedule, ScheduleSpec};

/// SAM's Globals merge: mappings merge key by key, lists concatenate (globals first),
/// anything else is the function's own value.
pub(super) fn merge_globals(globals: &Value, local: Value) -> Value {
    match (globals, local) {
        (Value::Mapping(g), Value::Mapping(mut l)) => {
            let mut merged = Mapping::new();
            for (key, gv) in g {
                let value = match l.remove(key) {
                    Some(lv) => merge_globals(gv, lv),
                    None => gv.clone(),
                };
                merged.insert(key.clone(), value);
            }
            merged.extend(l);
            Value::Mapping(merged)
        }
        (Value::Sequence(g), Value::Sequence(l)) => {
            Value::Sequence(g.iter().cloned().chain(l).collect())
        }
        (_, local) => local,
    }
}

/// Which resource type declared the function: their property names differ.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// `AWS::Serverless::Function`
    Sam,
    /// `AWS::Lambda::Function`
    Lambda,
}

pub(super) fn function(
    eval: &Eval,
    id: &str,
    kind: Kind,
    props: Option<&Value>,
    metadata: Option<&Value>,
) -> Result<FunctionSpec> {
    let at = format!("Resources.{id}.Properties");
    let p = Props::new(props, &at)?;
    let invoke = p.child("EventInvokeConfig")?;
    let dead_letter = match kind {
        Kind::Sam => dead_letter_queue(eval, &p.child("DeadLetterQueue")?)?,
        Kind::Lambda => lambda_dead_letter(eval, &p.child("DeadLetterConfig")?)?,
    };
    let (timeout, memory) = (
        p.uint("Timeout", 1..=900)?,
        p.uint("MemorySize", 128..=10240)?,
    );
    let reserved = p.uint("ReservedConcurrentExecutions", 0..=u64::from(u32::MAX))?;
    Ok(FunctionSpec {
        logical_id: id.to_string(),
        name: eval.resource_ref(id, &at)?,
        arn: eval.attribute_text(id, "Arn", &at)?,
        code: code(id, kind, &p, metadata)?,
        // SAM's (and Lambda's) defaults when neither the function nor Globals sets them.
        timeout: Duration::from_secs(timeout.unwrap_or(3)),
        memory_mb: u32::try_from(memory.unwrap_or(128)).unwrap_or(128),
        environment: environment(&p.child("Environment")?.child("Variables")?)?,
        reserved_concurrency: reserved.and_then(|r| u32::try_from(r).ok()),
        dead_letter_queue: dead_letter,
        on_failure_queue: on_failure(eval, &invoke)?,
        // Lambda's asynchronous-invocation defaults and limits.
        max_retry_attempts: invoke.uint("MaximumRetryAttempts", 0..=2)?.unwrap_or(2) as u32,
        max_event_age: Duration::from_secs(
            invoke
                .uint("MaximumEventAgeInSeconds", 60..=21600)?
                .unwrap_or(21600),
        ),
        schedules: schedules(id, &p.child("Events")?)?,
    })
}

/// What the function runs. A release binary named in Metadata (SAM's rust-cargolambda
/// build; Metadata is read literally, not evaluated) wins; otherwise the code folder
/// (`CodeUri`, or `Code` as a local path) with `Runtime` and `Handler`, as Lambda reads them.
fn code(id: &str, kind: Kind, p: &Props, metadata: Option<&Value>) -> Result<Code> {
    let binary_at = format!("Resources.{id}.Metadata.BuildProperties.Binary");
    match metadata
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
    {
        Some(Value::String(binary)) if !binary.is_empty() => {
            return Ok(Code::Binary(binary.clone()));
        }
        Some(_) => {
            return Err(err(
                &binary_at,
                format!("function {id}: Binary must be a non-empty string"),
            ));
        }
        None => {}
    }
    if let Some(ty) = p.string("PackageType")?
        && ty != "Zip"
    {
        return Err(err(
            &p.path("PackageType"),
            format!(
                "function {id}: PackageType {ty} cannot run on the local stack (only Zip packages: a code folder and a Runtime)"
            ),
        ));
    }
    let runtime_id = p.string("Runtime")?.ok_or_else(|| {
        err(
            &p.path("Runtime"),
            format!(
                "function {id} has neither a Runtime nor Metadata.BuildProperties.Binary, so \
                 the local stack cannot tell how to run it"
            ),
        )
    })?;
    let runtime = Runtime::parse(&runtime_id).ok_or_else(|| {
        err(
            &p.path("Runtime"),
            format!(
                "function {id}: runtime {runtime_id} is not one the local stack runs ({})",
                Runtime::SUPPORTED.join(", ")
            ),
        )
    })?;
    let key = match kind {
        Kind::Sam => "CodeUri",
        Kind::Lambda => "Code",
    };
    if kind == Kind::Sam && p.get("InlineCode").is_some() {
        return Err(err(
            &p.path("InlineCode"),
            format!(
                "function {id}: InlineCode is not run by the local stack; put the code in a folder and set CodeUri"
            ),
        ));
    }
    let dir = match p.get(key) {
        Some(Value::String(dir)) if !dir.is_empty() => dir.clone(),
        Some(Value::Mapping(_)) => {
            return Err(err(
                &p.path(key),
                format!(
                    "function {id}: {key} names packaged code (S3, an image or inline ZipFile); \
                     the local stack runs a local folder: set {key} to the code's path"
                ),
            ));
        }
        Some(other) => {
            return Err(err(
                &p.path(key),
                format!(
                    "function {id}: {key} must be a folder path, found {}",
                    super::props::describe(other)
                ),
            ));
        }
        None => {
            return Err(err(
                &p.path(key),
                format!("function {id} needs {key}, the folder of its code"),
            ));
        }
    };
    let handler = match (p.string("Handler")?, &runtime) {
        (Some(h), _) => h,
        // OS-only runtimes run `bootstrap`; Handler is only passed on as _HANDLER.
        (None, Runtime::Provided(_)) => String::new(),
        (None, _) => {
            return Err(err(
                &p.path("Handler"),
                format!("function {id}: runtime {runtime_id} needs a Handler (file.function)"),
            ));
        }
    };
    if !matches!(runtime, Runtime::Provided(_)) {
        check_handler(&handler, &p.path("Handler"))?;
    }
    Ok(Code::Package {
        runtime,
        dir: dir.into(),
        handler,
    })
}

/// `module.function`, the module a file path without its extension (`app.lambda_handler`,
/// `src/index.handler`); the runtime itself reports a module it cannot import.
fn check_handler(handler: &str, at: &str) -> Result<()> {
    let ok = handler.rsplit_once('.').is_some_and(|(module, function)| {
        !module.is_empty()
            && !function.is_empty()
            && !module.ends_with('/')
            && !function.contains('/')
            && !module.starts_with('/')
    });
    if ok {
        Ok(())
    } else {
        Err(err(
            at,
            format!(
                "Handler {handler:?} is not file.function (e.g. app.lambda_handler, src/index.handler)"
            ),
        ))
    }
}

/// `AWS::Lambda::Function`'s `DeadLetterConfig.TargetArn`: an SQS queue of this template.
fn lambda_dead_letter(eval: &Eval, dlq: &Props) -> Result<Option<String>> {
    let Some(arn) = dlq.string("TargetArn")? else {
        return Ok(None);
    };
    if arn.starts_with("arn:aws:sns:") {
        return Err(err(
            &dlq.path("TargetArn"),
            "an SNS dead-letter target is not supported by the local stack (use SQS)",
        ));
    }
    queue_by_arn(eval, &arn, &dlq.path("TargetArn")).map(Some)
}

/// Lambda environment values are strings: numbers and booleans become their text.
fn environment(vars: &Props) -> Result<BTreeMap<String, String>> {
    vars.entries()?
        .into_iter()
        .map(|(key, value)| {
            let value = text(value, &vars.path(&key))?;
            Ok((key, value))
        })
        .collect()
}

fn dead_letter_queue(eval: &Eval, dlq: &Props) -> Result<Option<String>> {
    let Some(ty) = dlq.string("Type")? else {
        return Ok(None);
    };
    match ty.as_str() {
        "SQS" => queue_by_arn(eval, &dlq.required("TargetArn")?, &dlq.path("TargetArn")).map(Some),
        "SNS" => Err(err(
            &dlq.path("Type"),
            "DeadLetterQueue Type SNS is not supported by the local stack (use SQS)",
        )),
        other => Err(err(
            &dlq.path("Type"),
            format!("DeadLetterQueue Type must be SQS or SNS, found {other}"),
        )),
    }
}

fn on_failure(eval: &Eval, invoke: &Props) -> Result<Option<String>> {
    let destinations = invoke.child("DestinationConfig")?;
    if destinations.get("OnSuccess").is_some() {
        tracing::warn!(at = %destinations.at, "OnSuccess destinations are not modelled; ignored");
    }
    let on_failure = destinations.child("OnFailure")?;
    let Some(ty) = on_failure.string("Type")? else {
        return Ok(None);
    };
    if ty != "SQS" {
        return Err(err(
            &on_failure.path("Type"),
            format!("OnFailure Type {ty} is not supported by the local stack (use SQS)"),
        ));
    }
    // Without Destination SAM would create a queue; the local stack only uses declared ones.
    let arn = on_failure.string("Destination")?.ok_or_else(|| {
        err(
            &on_failure.at,
            "OnFailure needs a Destination: the local stack does not create SAM's implicit queue",
        )
    })?;
    queue_by_arn(eval, &arn, &on_failure.path("Destination")).map(Some)
}

/// The logical id of the created queue whose ARN is `arn`.
fn queue_by_arn(eval: &Eval, arn: &str, at: &str) -> Result<String> {
    for (id, decl) in &eval.resources {
        if decl.ty == QUEUE
            && eval.is_created(id, at)?
            && eval.attribute_text(id, "Arn", at)? == arn
        {
            return Ok(id.clone());
        }
    }
    Err(err(
        at,
        format!("\"{arn}\" is not the ARN of an SQS queue of this template"),
    ))
}

/// The logical id of the created function whose ARN (or name) is `arn`.
pub(super) fn function_by_arn(eval: &Eval, arn: &str, at: &str) -> Result<Option<String>> {
    for (id, decl) in &eval.resources {
        if (decl.ty == FUNCTION || decl.ty == LAMBDA)
            && eval.is_created(id, at)?
            && eval.attribute_text(id, "Arn", at)? == arn
        {
            return Ok(Some(id.clone()));
        }
    }
    Ok(None)
}

fn schedules(id: &str, events: &Props) -> Result<Vec<ScheduleSpec>> {
    let mut out = Vec::new();
    for (name, event) in events.entries()? {
        let e = Props::new(Some(event), events.path(&name))?;
        let ty = e.required("Type")?;
        if ty != "Schedule" {
            tracing::warn!(function = id, event = %name, r#type = %ty,
                "event source not modelled by the local stack; ignored");
            continue;
        }
        out.push(schedule(&name, &e.child("Properties")?)?);
    }
    Ok(out)
}

fn schedule(name: &str, p: &Props) -> Result<ScheduleSpec> {
    let expression = parse_schedule(&p.required("Schedule")?, &p.path("Schedule"))?;
    let enabled = match (p.boolean("Enabled")?, p.string("State")?) {
        (Some(_), Some(_)) => return Err(err(&p.at, "Enabled and State cannot both be set")),
        (Some(enabled), None) => enabled,
        (None, Some(state)) => match state.as_str() {
            "ENABLED" => true,
            "DISABLED" => false,
            other => {
                return Err(err(
                    &p.path("State"),
                    format!("State must be ENABLED or DISABLED, found {other}"),
                ));
            }
        },
        (None, None) => true,
    };
    let input = p.string("Input")?;
    if let Some(input) = &input {
        // EventBridge rejects an Input that is not JSON text.
        serde_json::from_str::<serde_json::Value>(input)
            .map_err(|e| err(&p.path("Input"), format!("Input is not valid JSON: {e}")))?;
    }
    Ok(ScheduleSpec {
        name: name.to_string(),
        expression,
        enabled,
        input,
    })
}

/// `rate(N unit)` or `cron(six fields)`, as EventBridge accepts them.
pub(super) fn parse_schedule(expr: &str, at: &str) -> Result<Schedule> {
    let bad = |why: String| LocalError::template(at, format!("schedule \"{expr}\": {why}"));
    if let Some(body) = expr.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        return parse_rate(body).map(Schedule::Rate).map_err(bad);
    }
    if let Some(body) = expr.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        let fields = body.split_whitespace().count();
        if fields != 6 {
            return Err(bad(format!(
                "a cron expression has 6 fields, found {fields}"
            )));
        }
        return Ok(Schedule::Cron(body.trim().to_string()));
    }
    Err(bad("expected rate(...) or cron(...)".into()))
}

fn parse_rate(body: &str) -> Result<Duration, String> {
    let (n, unit) = body
        .trim()
        .split_once(' ')
        .ok_or("expected rate(value unit)")?;
    let n: u64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{n} is not a positive whole number"))?;
    let unit = unit.trim();
    let seconds = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86400,
        other => return Err(format!("unknown unit {other} (minute(s), hour(s), day(s))")),
    };
    // EventBridge: a value of 1 takes the singular unit, any other value the plural.
    if (n == 1) == unit.ends_with('s') {
        return Err(format!(
            "{n} {unit}: use the singular unit for 1, plural otherwise"
        ));
    }
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| "rate is too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        yaml_serde::from_str(text).expect("test YAML")
    }

    #[test]
    fn globals_merge_like_sam() {
        let globals = yaml("{Timeout: 10, Layers: [a], Environment: {Variables: {A: g, B: g}}}");
        let own = yaml("{Timeout: 30, Layers: [b], Environment: {Variables: {B: f}}}");
        let merged = merge_globals(&globals, own);
        let expected =
            yaml("{Timeout: 30, Layers: [a, b], Environment: {Variables: {A: g, B: f}}}");
        assert_eq!(merged, expected);
    }

    #[test]
    fn schedule_expressions() {
        let rate = |e: &str| parse_schedule(e, "at").map_err(|e| e.to_string());
        assert_eq!(
            rate("rate(1 hour)"),
            Ok(Schedule::Rate(Duration::from_secs(3600)))
        );
        assert_eq!(
            rate("rate(15 minutes)"),
            Ok(Schedule::Rate(Duration::from_secs(900)))
        );
        for (bad, why) in [
            ("rate(2 hour)", "plural otherwise"),
            ("rate(0 minutes)", "not a positive whole number"),
            ("rate(5 weeks)", "unknown unit weeks"),
            ("cron(* * * *)", "6 fields, found 4"),
            ("every 5 minutes", "expected rate(...) or cron(...)"),
        ] {
            let message = rate(bad).expect_err(bad);
            assert!(message.contains(why), "{bad}: {message}");
        }
    }
}
