//! `dynamowave run` and `dynamowave validate`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::cli::{RunArgs, ValidateArgs};
use crate::engine::{self, Target};
use crate::error::HarnessError;
use crate::report::{self, summary};
use crate::{accounting, dlq, scenario, slo};

/// Exit code when an SLO threshold failed (as k6).
pub const EXIT_SLO_FAILED: i32 = 99;

pub fn validate(args: ValidateArgs) -> Result<i32, HarnessError> {
    for path in &args.scenarios {
        let plan = scenario::load(path)?;
        let thresholds = match &plan.slo {
            Some(p) => slo::load(p)?,
            None => Vec::new(),
        };
        println!(
            "{}: ok — {} phase(s), {:.0} s, {} threshold(s)",
            path.display(),
            plan.phases.len(),
            plan.duration().as_secs_f64(),
            thresholds.len()
        );
    }
    Ok(0)
}

pub async fn run(args: RunArgs) -> Result<i32, HarnessError> {
    let plan = scenario::load(&args.scenario)?;
    let slo_file = args.slo.clone().or_else(|| plan.slo.clone());
    let thresholds = match &slo_file {
        Some(p) => slo::load(p)?,
        None => Vec::new(),
    };
    let target_name = match &args.stack {
        Some(name) => format!("stack:{name}"),
        None => args
            .target
            .clone()
            .or_else(|| plan.target.clone())
            .unwrap_or_else(|| "local".into()),
    };
    // More clients than one process can hold are split over worker processes.
    let workers = args
        .workers
        .unwrap_or_else(|| crate::limits::workers_needed(&plan));
    if workers == 0 {
        return Err(HarnessError::Usage("--workers must be 1 or more".into()));
    }
    // The embedded stack holds the server side of every connection in this process; with
    // one worker the clients' ends are here too.
    let local = target_name == "local";
    let sockets = u64::from(local) + u64::from(workers == 1);
    crate::limits::ensure_open_files(&plan, sockets, 1)?;
    let out_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "{}-{}",
            plan.name,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    std::fs::create_dir_all(&out_dir).map_err(|e| HarnessError::Io {
        context: format!("creating {}", out_dir.display()),
        source: e,
    })?;

    let attach = args.endpoint_url.is_some() && args.target.is_none() && plan.target.is_none();
    let (target, stack) = if let Some(name) = &args.stack {
        // A deployed stack, found through its CloudFormation outputs.
        let target =
            crate::deployed::resolve(name, &args.local.region, args.endpoint_url.as_deref())
                .await?;
        (target, None)
    } else if attach {
        // A stack started elsewhere with `local up`: its edge says where everything is.
        let edge = args.endpoint_url.clone().expect("checked above");
        let e = crate::attach::endpoints(&edge).await?;
        let text = |k: &str| {
            e.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let ws = text("websocket_url").ok_or_else(|| {
            HarnessError::Usage(format!("{edge}/_dynamowave/endpoints has no websocket_url"))
        })?;
        let region = text("region").unwrap_or_else(|| args.local.region.clone());
        let dlq = e
            .pointer("/outputs/DeadLetterQueueUrl")
            .or_else(|| e.get("queues").and_then(|q| q.as_object()?.values().next()))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        let sqs = sqs_client(&edge, &region).await;
        (
            Target {
                websocket_url: ws,
                dlq: dlq.map(|u| (sqs, u)),
            },
            None,
        )
    } else if target_name == "local" {
        let mut options = crate::local::options(&args.local)?;
        options
            .parameter_overrides
            .extend(plan.local_parameters.clone());
        eprintln!("starting the local stack …");
        let stack = dynamowave_local::stack::start(options).await?;
        let sqs = sqs_client(&stack.endpoints.endpoint_url, &stack.endpoints.region).await;
        let dlq = stack
            .endpoints
            .outputs
            .get("DeadLetterQueueUrl")
            .or_else(|| stack.endpoints.queues.values().next())
            .cloned();
        (
            Target {
                websocket_url: stack.endpoints.websocket_url.clone(),
                dlq: dlq.map(|u| (sqs, u)),
            },
            Some(stack),
        )
    } else if target_name.starts_with("ws://") || target_name.starts_with("wss://") {
        let dlq = match (&args.endpoint_url, &args.dlq_url) {
            (Some(endpoint), Some(queue)) => Some((
                sqs_client(endpoint, &args.local.region).await,
                queue.clone(),
            )),
            _ => None,
        };
        (
            Target {
                websocket_url: target_name.clone(),
                dlq,
            },
            None,
        )
    } else {
        return Err(HarnessError::Usage(format!(
            "--target {target_name:?}: use `local` or a ws:// / wss:// URL"
        )));
    };

    let result = execute(&plan, &thresholds, &target, &target_name, &out_dir, workers).await;
    if let Some(stack) = stack {
        stack.shutdown().await;
    }
    let passed = result?;
    Ok(if passed { 0 } else { EXIT_SLO_FAILED })
}

async fn execute(
    plan: &scenario::Plan,
    thresholds: &[slo::Threshold],
    target: &Target,
    target_name: &str,
    out_dir: &Path,
    workers: u32,
) -> Result<bool, HarnessError> {
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        b
    });
    let mut observer = |i: &engine::record::Interval, r: &engine::record::Record| {
        let line = format!(
            "[{:>5.0}s] phase={} clients={} sent/s={} recv/s={} p99={} other={} lost-so-far=?",
            i.start_s + i.length_s,
            i.phase.as_deref().unwrap_or("-"),
            r.connected_now(),
            i.sent,
            i.received,
            i.p99_ms
                .map(|v| format!("{v:.1}ms"))
                .unwrap_or_else(|| "-".into()),
            i.other_frames,
        )
        .replace(" lost-so-far=?", "");
        match &bar {
            Some(b) => b.set_message(line),
            None => eprintln!("{line}"),
        }
        abort_check(thresholds, r, i.start_s + i.length_s)
    };
    let output = if workers > 1 {
        eprintln!("running over {workers} worker processes …");
        crate::workers::run_distributed(plan, &target.websocket_url, workers).await?
    } else {
        engine::execute(plan, target, engine::Options::default(), &mut observer).await
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    let mut dead = Vec::new();
    let mut read = false;
    if let Some((sqs, url)) = &target.dlq {
        let ids: HashMap<String, u32> = output
            .record
            .clients
            .iter()
            .filter_map(|(id, c)| Some((c.connection_id.clone()?, *id)))
            .collect();
        match dlq::read(sqs, url, output.run_id, &ids).await {
            Ok(d) => {
                dead = d;
                read = true;
            }
            Err(e) => eprintln!("warning: could not read the DLQ {url}: {e}"),
        }
    }
    let totals = accounting::account(
        &output.record,
        plan.deadline.as_micros() as u64,
        plan.protocol.echo_to_sender,
        &dead,
    );
    let verdicts = slo::evaluate(
        thresholds,
        &summary::Measured {
            output: &output,
            totals: &totals,
        },
    );
    if let Some(reason) = &output.aborted {
        eprintln!("run aborted: {reason}");
    }
    let s = summary::build(&output, totals, verdicts, plan, target_name, read);
    let json = serde_json::to_vec_pretty(&s).expect("the summary serialises");
    report::write_atomically(&out_dir.join("summary.json"), &json)?;
    report::write_atomically(
        &out_dir.join("junit.xml"),
        report::junit::render(&s).as_bytes(),
    )?;
    report::write_atomically(
        &out_dir.join("latency.hlog"),
        &report::hlog::render(&s.intervals, output.started_at),
    )?;
    print!(
        "{}",
        report::text::render(&s, &out_dir.display().to_string())
    );
    Ok(s.passed)
}

/// `abortOnFail` thresholds that can be judged mid-run (latency trends, connect failures)
/// are checked each interval; the first that fails stops the run.
fn abort_check(
    thresholds: &[slo::Threshold],
    record: &engine::record::Record,
    at_s: f64,
) -> Option<String> {
    let live: Vec<slo::Threshold> = thresholds
        .iter()
        .filter(|t| {
            t.abort_on_fail
                && matches!(
                    t.metric.as_str(),
                    "broadcast_latency" | "connect_latency" | "connect_failed"
                )
        })
        .cloned()
        .collect();
    if live.is_empty() {
        return None;
    }
    let verdicts = slo::evaluate(&live, &summary::Live { record });
    verdicts
        .into_iter()
        .find(|v| v.observed.is_some() && !v.passed)
        .map(|v| {
            format!(
                "{} {} failed at {at_s:.0} s (observed {:.3}); abortOnFail",
                v.name,
                v.expression,
                v.observed.unwrap_or_default()
            )
        })
}

async fn sqs_client(endpoint: &str, region: &str) -> aws_sdk_sqs::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .http_client(http)
        .endpoint_url(endpoint);
    // A local endpoint needs no real credentials; AWS ones come from the usual chain.
    if endpoint.starts_with("http://127.") || endpoint.starts_with("http://localhost") {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "dynamowave",
        ));
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}
