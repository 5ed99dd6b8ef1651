//! `dynamowave run` and `dynamowave validate`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use crate::chaos::timeline::Chaos;
use crate::cli::{RunArgs, ValidateArgs};
use crate::engine::{self, Target};
use crate::error::HarnessError;
use crate::report::{self, summary};
use crate::{accounting, aws, dlq, observe, scenario, slo};

/// Exit code when an SLO threshold failed (as k6).
pub const EXIT_SLO_FAILED: i32 = 99;

pub fn validate(args: ValidateArgs) -> Result<i32, HarnessError> {
    for path in &args.scenarios {
        if crate::capacity::plan::is_plan(path) {
            let cp = crate::capacity::plan::load(path)?;
            crate::capacity::preflight(&cp)?;
            println!(
                "{}: ok — capacity plan, up to {} point(s)",
                path.display(),
                cp.connections.len() * cp.message_rates.len() * cp.room_sizes.len()
            );
            continue;
        }
        let plan = scenario::load(path)?;
        let thresholds = match &plan.slo {
            Some(p) => slo::load(p)?,
            None => Vec::new(),
        };
        let target = crate::preflight::Target::of(plan.target.as_deref().unwrap_or("local"));
        crate::preflight::refuse(&plan, &crate::preflight::Machine::this(), target, None)?;
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
    // Nothing starts for a plan that cannot run here.
    let target_kind = crate::preflight::Target::of(&target_name);
    crate::preflight::refuse(
        &plan,
        &crate::preflight::Machine::this(),
        target_kind,
        args.workers,
    )?;
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
    // Made first, so an unwritable folder fails before a long run; removed again if the
    // run ends without writing anything into it.
    let _tidy = (!out_dir.exists()).then(|| RemoveIfEmpty(out_dir.clone()));
    std::fs::create_dir_all(&out_dir).map_err(|e| HarnessError::Io {
        context: format!("creating {}", out_dir.display()),
        source: e,
    })?;

    let reading = Reading {
        settle: args.settle,
        period_s: args.metrics_period,
        delay: args.metrics_delay,
    };
    let attach = args.endpoint_url.is_some() && args.target.is_none() && plan.target.is_none();
    let (target, stack) = if let Some(name) = &args.stack {
        // A deployed stack, found through CloudFormation; `--target`/the scenario's
        // `target:` and `--dlq-url` override what it says.
        let overrides = crate::deployed::Overrides {
            websocket_url: args
                .target
                .clone()
                .or_else(|| plan.target.clone())
                .filter(|t| t.starts_with("ws://") || t.starts_with("wss://")),
            dlq_url: args.dlq_url.clone(),
        };
        let endpoint = args.endpoint_url.as_deref();
        let d = crate::deployed::resolve(name, &args.local.region, endpoint, &overrides).await?;
        (Control::for_stack(d, endpoint, &reading).await, None)
    } else if attach {
        // A stack started elsewhere with `local up`: its edge names the stack, which is
        // then found as any deployed one is.
        let edge = args.endpoint_url.clone().expect("checked above");
        let (name, region) = crate::attach::stack(&edge).await?;
        let name = name.unwrap_or_else(|| args.local.stack_name.clone());
        let region = region.unwrap_or_else(|| args.local.region.clone());
        let d = crate::deployed::resolve(
            &name,
            &region,
            Some(&edge),
            &crate::deployed::Overrides::default(),
        )
        .await?;
        (Control::for_stack(d, Some(&edge), &reading).await, None)
    } else if target_name == "local" {
        let (control, stack) = start_local(&args.local, &plan, &reading).await?;
        (control, Some(stack))
    } else if target_name.starts_with("ws://") || target_name.starts_with("wss://") {
        let control = Control::for_url(
            target_name.clone(),
            args.endpoint_url.clone(),
            &args.local.region,
            args.dlq_url.clone().filter(|_| args.endpoint_url.is_some()),
        )
        .await;
        (control, None)
    } else {
        return Err(HarnessError::Usage(format!(
            "--target {target_name:?}: use `local` or a ws:// / wss:// URL"
        )));
    };

    let result = execute(&plan, &thresholds, &target, &target_name, &out_dir, workers).await;
    if let Some(stack) = stack {
        stack.shutdown().await;
    }
    let passed = result?.passed;
    Ok(if passed { 0 } else { EXIT_SLO_FAILED })
}

/// Removes a folder this run made when it is still empty (`remove_dir` refuses otherwise).
struct RemoveIfEmpty(PathBuf);

impl Drop for RemoveIfEmpty {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Starts the embedded local stack with the scenario's `local:` parameters and
/// `local_stack:` settings over `up`'s flags, and finds it through its edge as a deployed
/// stack is found; the caller shuts it down.
pub async fn start_local(
    up: &crate::cli::UpArgs,
    plan: &scenario::Plan,
    reading: &Reading,
) -> Result<(Control, dynamowave_local::stack::RunningStack), HarnessError> {
    let mut up = up.clone();
    let l = &plan.local_stack;
    up.async_retry_base_ms = l.async_retry_base_ms.unwrap_or(up.async_retry_base_ms);
    up.account_concurrency = l.account_concurrency.unwrap_or(up.account_concurrency);
    up.sandbox_delay_ms = l.sandbox_delay_ms.unwrap_or(up.sandbox_delay_ms);
    up.idle_instance_secs = l.idle_instance_secs.unwrap_or(up.idle_instance_secs);
    up.connections_latency_ms = l
        .connections_latency_ms
        .unwrap_or(up.connections_latency_ms);
    up.post_failure_share = l.post_failure_share.unwrap_or(up.post_failure_share);
    up.post_failure_status = l.post_failure_status.unwrap_or(up.post_failure_status);
    let mut options = crate::local::options(&up)?;
    options
        .parameter_overrides
        .extend(plan.local_parameters.clone());
    eprintln!("starting the local stack …");
    let stack = dynamowave_local::stack::start(options).await?;
    let e = &stack.endpoints;
    let found = crate::deployed::resolve(
        &e.stack_name,
        &e.region,
        Some(&e.endpoint_url),
        &crate::deployed::Overrides::default(),
    )
    .await;
    match found {
        Ok(d) => {
            let control = Control::for_stack(d, Some(&e.endpoint_url), reading).await;
            Ok((control, stack))
        }
        Err(err) => {
            stack.shutdown().await;
            Err(err)
        }
    }
}

/// How the target's figures are read after a run.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The longest wait for complete data.
    pub settle: std::time::Duration,
    /// The CloudWatch period; None picks the source's resolution.
    pub period_s: Option<i32>,
    /// The least age of data before it counts as complete; None: the source's default.
    pub delay: Option<std::time::Duration>,
}

impl Default for Reading {
    fn default() -> Self {
        Reading {
            settle: std::time::Duration::from_secs(600),
            period_s: None,
            delay: None,
        }
    }
}

/// Everything a run talks to: the clients' URL, and the AWS APIs behind the target.
pub struct Control {
    pub target: Target,
    pub clients: Option<aws::Clients>,
    pub outputs: BTreeMap<String, String>,
    /// Where the target's figures are read (CloudWatch and its Logs), for a stack.
    pub observe: Option<observe::Source>,
}

impl Control {
    /// A stack (deployed, or a local one found the same way): every check can read it.
    pub async fn for_stack(
        d: crate::deployed::Deployed,
        endpoint: Option<&str>,
        reading: &Reading,
    ) -> Control {
        let clients = aws::clients(endpoint, &d.region).await;
        // The local stack keeps per-second data; AWS's metrics are per minute.
        let local = endpoint.is_some_and(aws::is_loopback);
        let label = match endpoint {
            Some(e) => format!("CloudWatch at {e}"),
            None => format!("CloudWatch in {}", d.region),
        };
        let observe = observe::Source {
            cloudwatch: clients.cloudwatch.clone(),
            logs: clients.logs.clone(),
            resources: d.resources.clone(),
            period_s: reading.period_s.unwrap_or(if local { 1 } else { 60 }),
            settle: reading.settle,
            // AWS's Lambda metrics land a minute or more late (no SLA); 3 minutes covers
            // what is documented and observed, and --metrics-delay changes it.
            delay: reading
                .delay
                .unwrap_or(std::time::Duration::from_secs(if local { 0 } else { 180 })),
            poll: std::time::Duration::from_secs(if local { 1 } else { 15 }),
            label,
        };
        let dlq = d
            .resources
            .dlq_url
            .clone()
            .map(|url| (clients.sqs.clone(), url));
        Control {
            target: Target {
                websocket_url: d.websocket_url,
                dlq,
            },
            clients: Some(clients),
            outputs: d.outputs,
            observe: Some(observe),
        }
    }

    /// A bare WebSocket URL: the client-side figures only, and the DLQ when named.
    pub async fn for_url(
        websocket_url: String,
        endpoint: Option<String>,
        region: &str,
        dlq: Option<String>,
    ) -> Control {
        let clients = match &endpoint {
            Some(e) => Some(aws::clients(Some(e), region).await),
            None => None,
        };
        let dlq = match (&clients, dlq) {
            (Some(c), Some(url)) => Some((c.sqs.clone(), url)),
            _ => None,
        };
        Control {
            target: Target { websocket_url, dlq },
            clients,
            outputs: BTreeMap::new(),
            observe: None,
        }
    }
}

/// One run against a target that is up: the schedule, chaos, DLQ, accounting, verdicts and
/// the report folder; returns the summary as written.
pub async fn execute(
    plan: &scenario::Plan,
    thresholds: &[slo::Threshold],
    control: &Control,
    target_name: &str,
    out_dir: &Path,
    workers: u32,
) -> Result<report::Summary, HarnessError> {
    let target = &control.target;
    let chaos = if plan.chaos.is_empty() {
        None
    } else {
        let clients = control.clients.clone().ok_or_else(|| {
            HarnessError::Usage(format!(
                "{}: chaos needs the AWS APIs behind the target: use the local stack, \
                 --endpoint-url, or --stack",
                plan.source.display()
            ))
        })?;
        if workers > 1
            && plan
                .chaos
                .iter()
                .any(|c| matches!(c.action, crate::chaos::Action::DropClients { .. }))
        {
            return Err(HarnessError::Usage(
                "drop-clients works in a single-process run (--workers 1)".into(),
            ));
        }
        Some(Chaos::prepare(&plan.chaos, clients, control.outputs.clone()).await?)
    };
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        b
    });
    // One clock for the engine and the chaos timeline (workers start
    // their schedule START_DELAY after they are launched, which happens right below).
    let delay = if workers > 1 {
        crate::workers::START_DELAY
    } else {
        // On a whole second of wall-clock time, so the run's seconds are CloudWatch's
        // one-second periods and phases are judged on the periods they hold.
        let at = observe::now_ms() + 50;
        std::time::Duration::from_millis((50 + (1000 - at.rem_euclid(1000)) % 1000) as u64)
    };
    let start = Instant::now() + delay;
    // The same moment on the wall clock, which CloudWatch and the logs are stamped with.
    let start_ms = observe::now_ms() + delay.as_millis() as i64;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (drop_tx, drop_rx) = mpsc::unbounded_channel();
    let mut observer = |i: &engine::record::Interval, r: &engine::record::Record| {
        let line = format!(
            "[{:>5.0}s] phase={} chaos={} clients={} sent/s={} recv/s={} p99={} errors={}",
            i.start_s + i.length_s,
            i.phase.as_deref().unwrap_or("-"),
            chaos
                .as_ref()
                .map(|c| c.active())
                .unwrap_or_else(|| "-".into()),
            r.connected_now(),
            i.sent,
            i.received,
            i.p99_ms
                .map(|v| format!("{v:.1}ms"))
                .unwrap_or_else(|| "-".into()),
            i.other_frames,
        );
        match &bar {
            Some(b) => b.set_message(line),
            None => eprintln!("{line}"),
        }
        abort_check(thresholds, r, i.start_s + i.length_s)
    };
    let run = async {
        if workers > 1 {
            eprintln!("running over {workers} worker processes …");
            crate::workers::run_distributed(plan, &target.websocket_url, workers).await
        } else {
            let options = engine::Options {
                start: Some(start),
                drops: Some(drop_rx),
                ..engine::Options::default()
            };
            Ok(engine::execute(plan, target, options, &mut observer).await)
        }
    };
    let timeline = async {
        if let Some(c) = &chaos {
            c.run(start, drop_tx, stop_rx).await;
        }
        std::future::pending::<()>().await
    };
    // Ctrl-C stops the run; whatever chaos is in effect is reverted below either way.
    let output = tokio::select! {
        r = run => r,
        _ = timeline => unreachable!("the timeline future never ends"),
        _ = tokio::signal::ctrl_c() => Err(HarnessError::Usage("interrupted (Ctrl-C); nothing was written".into())),
    };
    let _ = stop_tx.send(true);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let left = match &chaos {
        Some(c) => c.revert_all(start).await,
        None => Vec::new(),
    };
    if !left.is_empty() {
        return Err(HarnessError::Chaos(format!(
            "CHAOS NOT REVERTED — the target is left changed: {}",
            left.join("; ")
        )));
    }
    let output = output?;
    let ended_ms = observe::now_ms();

    let mut dead = Vec::new();
    let mut dlq_missing_attributes = 0;
    let mut read = false;
    if let Some((sqs, url)) = &target.dlq {
        match dlq::read(sqs, url, output.run_id).await {
            Ok(d) => {
                let attributed = dlq::attribute(&d.letters, &output.record);
                if attributed.unattributed > 0 {
                    eprintln!(
                        "warning: {} dead letters name a connection no client of this run held",
                        attributed.unattributed
                    );
                }
                dead = attributed.letters;
                dlq_missing_attributes = d.missing_attributes;
                read = true;
            }
            Err(e) => eprintln!("warning: could not read the DLQ {url}: {e}"),
        }
    }
    // The backoff check reads the broadcast worker's logs, when an SLO asks for it.
    let wants_retries = thresholds.iter().any(|t| {
        matches!(
            t.metric.as_str(),
            "post_retries" | "retry_backoff_violations"
        )
    });
    let retries = match (
        &control.clients,
        control.outputs.get("BroadcastFunctionName"),
    ) {
        (Some(c), Some(function)) if wants_retries => {
            let from = output.started_at.timestamp_millis() - 1_000;
            let to = chrono::Utc::now().timestamp_millis();
            match crate::retries::read(&c.logs, &c.lambda, function, from, to).await {
                Ok(check) => Some(check),
                Err(e) => {
                    eprintln!("warning: could not read the retries from the logs: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    let telemetry = match &control.observe {
        Some(source) => {
            Some(read_target(source, &output, plan, thresholds, start_ms, ended_ms).await?)
        }
        None => None,
    };
    let totals = accounting::account(
        &output.record,
        plan.deadline.as_micros() as u64,
        plan.protocol.echo_to_sender,
        &dead,
    );
    let windows = chaos.as_ref().map(|c| c.windows()).unwrap_or_default();
    let verdicts = slo::evaluate(
        thresholds,
        &summary::Measured {
            output: &output,
            totals: &totals,
            telemetry: telemetry.as_ref(),
            plan,
            dead: &dead,
            dlq_missing_attributes,
            retries: retries.as_ref(),
        },
    );
    if let Some(reason) = &output.aborted {
        eprintln!("run aborted: {reason}");
    }
    let mut s = summary::build(&output, totals, verdicts, plan, target_name, read);
    s.chaos = windows;
    s.telemetry = telemetry;
    s.retries = retries;
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
    report::write_html(out_dir, &s)?;
    print!(
        "{}",
        report::text::render(&s, &out_dir.display().to_string())
    );
    let failed: Vec<String> = s
        .chaos
        .iter()
        .filter_map(|w| {
            Some(format!(
                "{} on {}: {}",
                w.action,
                w.target,
                w.error.as_ref()?
            ))
        })
        .collect();
    if !failed.is_empty() {
        return Err(HarnessError::Chaos(format!(
            "chaos actions failed (the report in {} shows them): {}",
            out_dir.display(),
            failed.join("; ")
        )));
    }
    Ok(s)
}

/// The target's figures over the run's window, from CloudWatch and its Logs, once they
/// are complete (or the settle time is over); says on stderr what it waits for.
async fn read_target(
    source: &observe::Source,
    output: &engine::RunOutput,
    plan: &scenario::Plan,
    thresholds: &[slo::Threshold],
    started_ms: i64,
    ended_ms: i64,
) -> Result<observe::Summary, HarnessError> {
    // A second after the end, so the last clients' $disconnect calls are inside.
    let window = observe::Window::covering(started_ms, ended_ms + 1_000, source.period_s);
    eprintln!(
        "reading the target's figures from {} (period {} s) …",
        source.label, source.period_s
    );
    let mut progress = |line: &str| eprintln!("{line}");
    let mut t = observe::collect(source, window, started_ms, &mut progress).await?;
    if !t.incomplete.is_empty() {
        eprintln!(
            "warning: the data was still incomplete after {:.0} s (--settle); thresholds on it fail: {}",
            t.waited_s,
            t.incomplete.join("; ")
        );
    }
    // MessageCount counts both directions; what the clients sent is known here.
    let r = &output.record;
    let whoami = if plan.protocol.whoami.is_some() {
        r.clients
            .values()
            .filter(|c| c.connection_id.is_some())
            .count() as u64
    } else {
        0
    };
    t.api.posts = t.api.messages.saturating_sub(r.written + whoami);
    for th in thresholds {
        let Some(phase) = th.tags.get("phase") else {
            continue;
        };
        let Some(p) = plan.phases.iter().find(|x| &x.name == phase) else {
            continue;
        };
        if slo::is_target_metric(&th.metric) && p.duration.as_secs_f64() < f64::from(t.period_s) {
            let note = format!(
                "{}: phase {phase} ({:.0} s) is shorter than the source's {} s period; it is judged over the periods whose middle lies in it",
                th.name(),
                p.duration.as_secs_f64(),
                t.period_s
            );
            eprintln!("warning: {note}");
            t.notes.push(note);
        }
    }
    Ok(t)
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
