//! `dynamowave capacity PLAN.yaml`: sweeps connections × message rate (× room size) with a
//! short run per point against one embedded local stack, finds each row's highest rate
//! that meets the SLO, and writes capacity.json, capacity.md and capacity.html.
//!
//! A point is an ordinary run (`run::execute`) of a generated `scenario::Plan`: a `join`
//! phase that opens the point's clients, then a `chat` phase at the point's rate. Each
//! point keeps its own report folder under `points/`.

mod chart;
pub mod cost;
mod html;
pub mod plan;
pub mod report;
pub mod systems;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::cli::CapacityArgs;
use crate::error::HarnessError;
use crate::report::Summary;
use crate::run::{self, Control};
use crate::scenario::{Phase, Plan, Spacing};
use crate::slo;

pub const SCHEMA: &str = "dynamowave.capacity/1";

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every SLO threshold passed.
    Pass,
    /// A threshold failed.
    Fail,
    /// The point could not run (the harness's error is in `error`).
    Error,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedThreshold {
    pub name: String,
    pub expression: String,
    pub observed: Option<f64>,
}

/// Signs of pressure a point showed, from its summary and the target's telemetry.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub p99_ms: Option<f64>,
    pub delivery_ratio: Option<f64>,
    pub late: u64,
    pub lost: u64,
    pub dead_lettered: u64,
    pub connect_failures: BTreeMap<String, u64>,
    pub error_frames: u64,
    pub edge_throttled: u64,
    pub function_throttles: u64,
    pub function_errors: u64,
    /// The most concurrent executions sampled (once a second) during the point.
    pub peak_concurrency: BTreeMap<String, u64>,
    /// Throttled invocations per function.
    pub throttles_by_function: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    pub connections: u32,
    pub room_size: Option<u32>,
    pub rooms: Option<u32>,
    /// Messages per second across all clients.
    pub rate: f64,
    pub verdict: Verdict,
    pub error: Option<String>,
    /// The point's report folder, relative to the capacity report.
    pub report: String,
    pub failed_thresholds: Vec<FailedThreshold>,
    /// What limited a point that did not pass: `latency`, `throttles`, `concurrency`,
    /// `errors` (or `harness` when it could not run); empty when it passed.
    pub limiters: Vec<String>,
    pub evidence: Evidence,
    pub counts: Option<cost::Counts>,
    pub usage: Option<cost::Usage>,
    pub cost: Option<cost::Cost>,
}

/// One connection count (and room size): the sweep upward and where it stopped.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub connections: u32,
    pub room_size: Option<u32>,
    pub rooms: Option<u32>,
    /// The highest swept rate that passed; None when the lowest failed.
    pub max_sustainable_rate: Option<f64>,
    /// Deliveries per second at that rate (rate × recipients per message).
    pub deliveries_per_second: Option<f64>,
    /// Every swept rate passed: the row's true maximum is higher.
    pub all_rates_passed: bool,
    pub first_failing_rate: Option<f64>,
    pub limiters: Vec<String>,
    /// Rates not run because a lower one failed.
    pub skipped_rates: Vec<f64>,
}

/// Where the curve bends: the first drop of the max sustainable rate by more than the
/// plan's `bend_drop` from one connection count to the next.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bend {
    pub room_size: Option<u32>,
    pub from_connections: u32,
    pub to_connections: u32,
    pub from_rate: f64,
    pub to_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanInfo {
    pub name: String,
    pub description: String,
    pub file: String,
    pub scenario: String,
    pub slo: Option<String>,
    pub target: String,
    pub point_duration_s: f64,
    pub join_rate: f64,
    pub message_size: usize,
    pub bend_drop: f64,
    pub started_at: String,
    pub finished_at: String,
}

/// capacity.json.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReport {
    pub schema: &'static str,
    pub plan: PlanInfo,
    pub prices: plan::Prices,
    pub formulas: BTreeMap<String, String>,
    /// Each function's MemorySize (MB) and reserved concurrency, from
    /// GetFunctionConfiguration / GetFunctionConcurrency.
    pub functions: BTreeMap<String, FunctionConfig>,
    pub rows: Vec<Row>,
    pub bends: Vec<Bend>,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionConfig {
    pub memory_mb: u32,
    pub reserved_concurrency: Option<u32>,
}

/// The run plan of one point: the base scenario with the point's rooms and phases.
pub fn point_plan(
    base: &Plan,
    connections: u32,
    room_size: Option<u32>,
    rate: f64,
    join_rate: f64,
    chat: Duration,
) -> Plan {
    let mut p = base.clone();
    if let Some(size) = room_size {
        p.rooms = Some(connections.div_ceil(size));
    }
    // Constant spacing at `join_rate` for C / rate + 1 s opens every client (capped).
    let join = Duration::from_secs_f64((f64::from(connections) / join_rate).ceil() + 1.0);
    let phase = |name: &str, start: Duration, duration: Duration| Phase {
        name: name.into(),
        start,
        duration,
        arrival_rate: 0.0,
        arrival_rate_end: 0.0,
        max_clients: Some(connections),
        message_rate: 0.0,
        message_rate_per_client: 0.0,
        spacing: Spacing::Poisson,
        departure_rate: 0.0,
    };
    let mut joining = phase("join", Duration::ZERO, join);
    joining.arrival_rate = join_rate;
    joining.arrival_rate_end = join_rate;
    joining.spacing = Spacing::Constant;
    let mut chatting = phase("chat", join, chat);
    chatting.message_rate = rate;
    p.phases = vec![joining, chatting];
    p.name = format!("{}-c{connections}-r{rate}", base.name);
    p
}

/// Every point checked before the first starts: the most connections at the highest rate
/// bound the others, in each room size.
pub fn preflight(cp: &plan::CapacityPlan) -> Result<(), HarnessError> {
    use crate::preflight::{Machine, Target, check};
    let machine = Machine::this();
    let text = std::fs::read_to_string(&cp.source).unwrap_or_default();
    let line = |field| plan::line_of(&text, field);
    let connections = cp.connections.iter().copied().max().unwrap_or(0);
    let rate = cp.message_rates.iter().copied().fold(0.0, f64::max);
    let mut refusals: Vec<String> = Vec::new();
    for &room_size in &cp.room_sizes {
        let plan = point_plan(
            &cp.base,
            connections,
            room_size,
            rate,
            cp.join_rate,
            cp.duration,
        );
        let id = point_id(connections, room_size, rate);
        let f = check(&plan, "", &machine, Target::Local, None);
        for w in f.warnings {
            eprintln!("warning: point {id}: {w}");
        }
        for r in f.refusals {
            let r = format!(
                "point {id} (connections{}, message_rates{}): {r}",
                line("connections"),
                line("message_rates")
            );
            if !refusals.contains(&r) {
                refusals.push(r);
            }
        }
    }
    if refusals.is_empty() {
        return Ok(());
    }
    Err(HarnessError::Scenario {
        file: cp.source.clone(),
        message: format!("this plan cannot run here:\n  {}", refusals.join("\n  ")),
    })
}

fn point_id(connections: u32, room_size: Option<u32>, rate: f64) -> String {
    match room_size {
        Some(s) => format!("c{connections}-s{s}-r{rate}"),
        None => format!("c{connections}-r{rate}"),
    }
}

pub async fn capacity(args: CapacityArgs) -> Result<i32, HarnessError> {
    let cp = plan::load(&args.plan)?;
    let thresholds = match &cp.slo {
        Some(p) => slo::load(p)?,
        None => {
            return Err(HarnessError::Usage(format!(
                "{}: neither the plan nor its scenario names an SLO file; capacity needs one \
                 to judge each point",
                cp.source.display()
            )));
        }
    };
    if cp.base.target.as_deref().is_some_and(|t| t != "local") {
        return Err(HarnessError::Usage(format!(
            "{}: capacity runs against the embedded local stack; the scenario's target {:?} \
             is not supported here",
            cp.base.source.display(),
            cp.base.target
        )));
    }
    preflight(&cp)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "{}-{}",
            cp.name,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let largest = point_plan(
        &cp.base,
        *cp.connections.last().expect("validated: not empty"),
        None,
        1.0,
        cp.join_rate,
        cp.duration,
    );
    crate::limits::ensure_open_files(&largest, 2, 1)?;
    if cp.systems.is_empty() {
        std::fs::create_dir_all(out.join("points")).map_err(|e| HarnessError::Io {
            context: format!("creating {}", out.display()),
            source: e,
        })?;
        let report = sweep_on_stack(&cp, &args.local, &thresholds, &out).await?;
        print!("{}", report::text(&report, &out));
        return Ok(0);
    }
    let mut reports = Vec::new();
    for system in &cp.systems {
        let mut one = cp.clone();
        one.base = system.base.clone();
        let mut up = args.local.clone();
        up.template = system.template.clone();
        let dir = out.join(&system.name);
        std::fs::create_dir_all(dir.join("points")).map_err(|e| HarnessError::Io {
            context: format!("creating {}", dir.display()),
            source: e,
        })?;
        eprintln!("system {}: {}", system.name, system.template.display());
        let report = sweep_on_stack(&one, &up, &thresholds, &dir).await?;
        print!("{}", report::text(&report, &dir));
        reports.push((system.name.clone(), report));
    }
    let comparison = systems::compare(&cp.name, &reports);
    systems::write(&out, &comparison)?;
    print!("{}", systems::markdown(&comparison));
    println!("comparison: {}", out.join("comparison.md").display());
    Ok(0)
}

/// One system's sweep on its own embedded stack, its report written into `out`.
async fn sweep_on_stack(
    cp: &plan::CapacityPlan,
    up: &crate::cli::UpArgs,
    thresholds: &[slo::Threshold],
    out: &Path,
) -> Result<CapacityReport, HarnessError> {
    let started_at = chrono::Utc::now();
    let (control, stack) = run::start_local(up, &cp.base, &run::Reading::default()).await?;
    let swept = sweep(cp, thresholds, &control, out).await;
    stack.shutdown().await;
    let (points, functions) = swept?;
    let report = report::assemble(cp, points, functions, started_at);
    report::write(out, &report)?;
    Ok(report)
}

async fn function_configs(
    control: &Control,
) -> Result<BTreeMap<String, FunctionConfig>, HarnessError> {
    let mut all = BTreeMap::new();
    let Some(clients) = &control.clients else {
        return Ok(all);
    };
    for (key, physical) in &control.outputs {
        let Some(name) = key.strip_suffix("FunctionName") else {
            continue;
        };
        let failed = |e: String| {
            HarnessError::Usage(format!(
                "reading {physical}'s configuration for the price model: {e}"
            ))
        };
        let c = clients
            .lambda
            .get_function_configuration()
            .function_name(physical)
            .send()
            .await
            .map_err(|e| failed(crate::aws::describe(&e)))?;
        let reserved = clients
            .lambda
            .get_function_concurrency()
            .function_name(physical)
            .send()
            .await
            .map_err(|e| failed(crate::aws::describe(&e)))?
            .reserved_concurrent_executions()
            .and_then(|n| u32::try_from(n).ok());
        all.insert(
            name.to_string(),
            FunctionConfig {
                memory_mb: c
                    .memory_size()
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(128),
                reserved_concurrency: reserved,
            },
        );
    }
    Ok(all)
}

type Swept = (Vec<Point>, BTreeMap<String, FunctionConfig>);

async fn sweep(
    cp: &plan::CapacityPlan,
    thresholds: &[slo::Threshold],
    control: &Control,
    out: &Path,
) -> Result<Swept, HarnessError> {
    let functions = function_configs(control).await?;
    let memory: BTreeMap<String, u32> = functions
        .iter()
        .map(|(k, f)| (k.clone(), f.memory_mb))
        .collect();
    let mut points = Vec::new();
    let mut first = true;
    if cp.warmup {
        let plan = point_plan(
            &cp.base,
            cp.connections[0],
            cp.room_sizes[0],
            cp.message_rates[0],
            cp.join_rate,
            cp.duration,
        );
        let dir = out.join("points").join("warmup");
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::Io {
            context: format!("creating {}", dir.display()),
            source: e,
        })?;
        eprintln!("capacity: warm-up run (not judged) …");
        let warm = tokio::select! {
            r = run::execute(&plan, thresholds, control, "local", &dir, 1) => r,
            _ = tokio::signal::ctrl_c() => {
                return Err(HarnessError::Usage(
                    "interrupted (Ctrl-C); no capacity report was written".into(),
                ));
            }
        };
        if let Err(e) = warm {
            eprintln!("warning: the warm-up run failed: {e}");
        }
        first = false;
    }
    for &room_size in &cp.room_sizes {
        for &connections in &cp.connections {
            for &rate in &cp.message_rates {
                if !first {
                    tokio::time::sleep(cp.settle).await;
                }
                first = false;
                let plan = point_plan(
                    &cp.base,
                    connections,
                    room_size,
                    rate,
                    cp.join_rate,
                    cp.duration,
                );
                let id = point_id(connections, room_size, rate);
                let dir = out.join("points").join(&id);
                std::fs::create_dir_all(&dir).map_err(|e| HarnessError::Io {
                    context: format!("creating {}", dir.display()),
                    source: e,
                })?;
                eprintln!("capacity: point {id} ({connections} connections, {rate} msg/s) …");
                let workers = crate::limits::workers_needed(&plan);
                let result = tokio::select! {
                    r = run::execute(&plan, thresholds, control, "local", &dir, workers) => r,
                    _ = tokio::signal::ctrl_c() => {
                        return Err(HarnessError::Usage(
                            "interrupted (Ctrl-C); no capacity report was written".into(),
                        ));
                    }
                };
                let point = judge(
                    &plan,
                    connections,
                    room_size,
                    rate,
                    &id,
                    result,
                    &functions,
                    &memory,
                    cp,
                );
                let passed = point.verdict == Verdict::Pass;
                points.push(point);
                if !passed {
                    break;
                }
            }
        }
    }
    Ok((points, functions))
}

#[allow(clippy::too_many_arguments)]
fn judge(
    plan: &Plan,
    connections: u32,
    room_size: Option<u32>,
    rate: f64,
    id: &str,
    result: Result<Summary, HarnessError>,
    functions: &BTreeMap<String, FunctionConfig>,
    memory: &BTreeMap<String, u32>,
    cp: &plan::CapacityPlan,
) -> Point {
    let mut point = Point {
        connections,
        room_size,
        rooms: plan.rooms,
        rate,
        verdict: Verdict::Error,
        error: None,
        report: format!("points/{id}"),
        failed_thresholds: Vec::new(),
        limiters: Vec::new(),
        evidence: Evidence::default(),
        counts: None,
        usage: None,
        cost: None,
    };
    let s = match result {
        Ok(s) => s,
        Err(e) => {
            point.error = Some(e.to_string());
            point.limiters = vec!["harness".into()];
            return point;
        }
    };
    point.verdict = if s.passed {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    point.failed_thresholds = s
        .thresholds
        .iter()
        .filter(|v| !v.passed)
        .map(|v| FailedThreshold {
            name: v.name.clone(),
            expression: v.expression.clone(),
            observed: v.observed,
        })
        .collect();
    point.evidence = evidence(&s);
    if !s.passed {
        point.limiters = limiters(&s, &point.evidence, functions);
    }
    let counts = cost::counts(&s, plan, memory, &cp.prices);
    let (usage, c) = cost::price(&counts, &cp.prices);
    point.counts = Some(counts);
    point.usage = Some(usage);
    point.cost = Some(c);
    point
}

fn evidence(s: &Summary) -> Evidence {
    let throttle_frames: u64 = s
        .other_frames
        .iter()
        .filter(|(t, _)| t.contains("Too Many Requests") || t.contains("LimitExceeded"))
        .map(|(_, n)| n)
        .sum();
    let handshakes_429: u64 = s
        .clients
        .failures_by_cause
        .iter()
        .filter(|(c, _)| c.contains("429"))
        .map(|(_, n)| n)
        .sum();
    let mut e = Evidence {
        p99_ms: s.latency.broadcast.as_ref().map(|t| t.p99_ms),
        delivery_ratio: s.accounting.delivery_ratio(),
        late: s.accounting.late,
        lost: s.accounting.lost,
        dead_lettered: s.accounting.dead_lettered,
        connect_failures: s.clients.failures_by_cause.clone(),
        error_frames: s.other_frames.values().sum::<u64>() - throttle_frames,
        edge_throttled: throttle_frames + handshakes_429,
        ..Evidence::default()
    };
    if let Some(t) = &s.telemetry {
        e.edge_throttled = e.edge_throttled.max(t.api.client_errors);
        e.function_throttles = t.functions.values().map(|f| f.throttles).sum();
        e.function_errors = t.functions.values().map(|f| f.errors).sum();
        e.throttles_by_function = t
            .functions
            .iter()
            .filter(|(_, f)| f.throttles > 0)
            .map(|(n, f)| (n.clone(), f.throttles))
            .collect();
        for sample in &t.series {
            for (name, f) in &sample.functions {
                let peak = e.peak_concurrency.entry(name.clone()).or_default();
                *peak = (*peak).max(f.concurrency);
            }
        }
    }
    e
}

/// What limited a failed point: the failed thresholds' kinds, and the pressure the target
/// showed (throttles, concurrency at its reserved limit, errors). Never empty.
fn limiters(
    s: &Summary,
    e: &Evidence,
    functions: &BTreeMap<String, FunctionConfig>,
) -> Vec<String> {
    // Causes first (concurrency, throttles, errors), the symptom (latency) last.
    let mut found: Vec<&str> = Vec::new();
    let mut add = |k: &'static str| {
        if !found.contains(&k) {
            found.push(k);
        }
    };
    for v in s.thresholds.iter().filter(|v| !v.passed) {
        match v.metric.as_str() {
            "broadcast_latency" | "connect_latency" | "late" => add("latency"),
            "delivery_ratio" if e.late > 0 && e.lost == 0 => add("latency"),
            "function_throttles" | "edge_throttled" => add("throttles"),
            "function_max_concurrency" => add("concurrency"),
            _ => {}
        }
    }
    if e.edge_throttled > 0 || e.function_throttles > 0 {
        add("throttles");
    }
    // At its reserved concurrency and throttled: the limit refused work (a burst of
    // disconnects at the final leave reaches the limit without mattering).
    let at_limit = functions.iter().any(|(name, f)| {
        f.reserved_concurrency.is_some_and(|r| {
            r > 0
                && e.peak_concurrency.get(name).copied().unwrap_or(0) >= u64::from(r)
                && e.throttles_by_function.contains_key(name)
        })
    });
    if at_limit {
        add("concurrency");
    }
    let refused = e
        .connect_failures
        .iter()
        .any(|(c, n)| *n > 0 && !c.contains("429"));
    if e.function_errors > 0
        || e.error_frames > 0
        || e.lost > 0
        || refused
        || s.accounting.dead_lettered > 0
    {
        add("errors");
    }
    let order = ["concurrency", "throttles", "errors", "latency"];
    found.sort_by_key(|k| order.iter().position(|o| o == k));
    if found.is_empty() {
        // A failed threshold with no sign above (e.g. duplicates): name the SLO itself.
        found.push("slo");
    }
    found.into_iter().map(String::from).collect()
}
