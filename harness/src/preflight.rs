//! Plans that cannot run, refused before anything starts: AWS's own limits where the
//! target is API Gateway, this machine's (memory, ephemeral ports, open files, cores) and
//! the harness's own ceilings. `validate` and `run` both call [`check`]; each refusal names
//! the field, its line, the figure the plan implies and the limit it passes.

use std::time::Duration;

use crate::error::HarnessError;
use crate::scenario::Plan;

/// API Gateway closes every WebSocket connection after 2 hours (quotas: "Connection
/// duration for WebSocket APIs").
pub const AWS_CONNECTION_MAX: Duration = Duration::from_secs(2 * 3600);
/// API Gateway's WebSocket frame limit; a message (128 KB) larger than a frame must be
/// split, and the harness sends each message as one frame.
pub const AWS_FRAME_MAX: u64 = 32 * 1024;
/// tokio-websockets' default payload limit: the harness's clients cannot read a larger
/// message back.
pub const CLIENT_MESSAGE_MAX: u64 = 64 * 1024 * 1024;
/// A run longer than a day is several runs: the record keeps an interval per second and
/// every message, and a typo (`999999999h`) should not be taken at its word.
pub const RUN_MAX: Duration = Duration::from_secs(24 * 3600);
/// Memory per connected client, measured (`bench idle`, BENCHMARKS.md: 7.5 KiB).
pub const CLIENT_BYTES: u64 = 7_680;
/// Memory per scheduled message in the record (its info and index entry).
pub const MESSAGE_BYTES: u64 = 80;
/// Worker processes per core: they mostly wait on sockets, but each is a runtime and a
/// record, and past this the merge and the machine's scheduler are the bottleneck.
pub const WORKERS_PER_CORE: u64 = 16;
/// The engine moves to a new loopback source address every this many clients.
pub const CLIENTS_PER_SOURCE: u64 = 12_000;
/// CPU per delivered frame in a whole run (BENCHMARKS.md, 7.4–7.8 µs): past the frames a
/// core can take, the harness, not the target, sets the latency.
const FRAME_COST: Duration = Duration::from_nanos(7_800);

/// What this machine can hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub memory_bytes: u64,
    pub cores: u64,
    /// Open files one process may have (the soft limit, once raised to the hard one).
    pub open_files: u64,
    /// Ephemeral ports per source address and destination (ip_local_port_range).
    pub ports: u64,
}

impl Machine {
    pub fn this() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX / 1024);
        let range =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        let mut ends = range
            .split_whitespace()
            .filter_map(|v| v.parse::<u64>().ok());
        let ports = match (ends.next(), ends.next()) {
            (Some(lo), Some(hi)) if hi >= lo => hi - lo + 1,
            _ => 28_232,
        };
        Machine {
            memory_bytes: memory_kib.saturating_mul(1024),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            open_files: crate::limits::raise_open_files().0,
            ports,
        }
    }

    pub fn worker_ceiling(&self) -> u64 {
        WORKERS_PER_CORE * self.cores.max(1)
    }
}

/// Where the plan's clients go, as far as limits care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The embedded local stack: API Gateway's limits, loopback source addresses.
    Local,
    /// API Gateway on AWS (a stack or an execute-api URL).
    ApiGateway,
    /// Another WebSocket server on loopback.
    Loopback,
    /// Another WebSocket server elsewhere: one source address.
    Other,
}

impl Target {
    /// From the target's name as `run` resolves it (`local`, `stack:NAME` or a URL).
    pub fn of(name: &str) -> Target {
        if name == "local" {
            return Target::Local;
        }
        if name.starts_with("stack:") || name.contains(".execute-api.") {
            return Target::ApiGateway;
        }
        let host = name
            .split("://")
            .nth(1)
            .unwrap_or(name)
            .split(['/', '?'])
            .next()
            .unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if host == "localhost" || host.starts_with("127.") || host == "[::1]" {
            Target::Loopback
        } else {
            Target::Other
        }
    }

    fn is_api_gateway(self) -> bool {
        matches!(self, Target::Local | Target::ApiGateway)
    }
}

/// What the checks found: refusals stop the run, warnings are printed.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub refusals: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks a plan; `text` is its file (for lines), `workers` the `--workers` flag.
pub fn check(
    plan: &Plan,
    text: &str,
    machine: &Machine,
    target: Target,
    workers: Option<u32>,
) -> Findings {
    let at = |field: &str, phase: Option<usize>| {
        let line = line_of(text, field, phase)
            .map(|n| format!(" (line {n})"))
            .unwrap_or_default();
        match phase {
            Some(i) => format!("phases[{i}] ({}).{field}{line}", plan.phases[i].name),
            None => format!("{field}{line}"),
        }
    };
    let mut f = Findings::default();

    // How long: the harness's ceiling, and API Gateway's connection limit.
    let mut total = Duration::ZERO;
    let mut over_day = None;
    let mut over_aws = None;
    for (i, p) in plan.phases.iter().enumerate() {
        total = total.saturating_add(p.duration);
        if over_day.is_none() && total > RUN_MAX {
            over_day = Some(i);
        }
        if over_aws.is_none() && total.saturating_add(plan.drain) > AWS_CONNECTION_MAX {
            over_aws = Some(i);
        }
    }
    if let Some(i) = over_day {
        f.refusals.push(format!(
            "{}: {} brings the run to {}; a run may last at most {} (split it into several runs)",
            at("duration", Some(i)),
            hours(plan.phases[i].duration),
            hours(total),
            hours(RUN_MAX)
        ));
    } else if let Some(i) = over_aws.filter(|_| target.is_api_gateway()) {
        f.refusals.push(format!(
            "{}: {} keeps the first clients connected for {} with the drain; API Gateway \
             closes every WebSocket connection after {}",
            at("duration", Some(i)),
            hours(plan.phases[i].duration),
            hours(total.saturating_add(plan.drain)),
            hours(AWS_CONNECTION_MAX)
        ));
    }

    // How big a frame.
    let template = plan.protocol.send.len() as u64;
    let frame = (plan.message_size as u64)
        .saturating_add(template.saturating_sub("{{payload}}".len() as u64) + 2);
    if target.is_api_gateway() && frame > AWS_FRAME_MAX {
        f.refusals.push(format!(
            "{}: {} bytes make frames of {} bytes; API Gateway takes WebSocket frames of at \
             most {} bytes (32 KB; messages of up to 128 KB must be split, and the harness \
             sends each message as one frame)",
            at("message_size", None),
            thousands(plan.message_size as u64),
            thousands(frame),
            thousands(AWS_FRAME_MAX)
        ));
    } else if frame > CLIENT_MESSAGE_MAX {
        f.refusals.push(format!(
            "{}: {} bytes make frames of {} bytes; the harness's clients read messages of at \
             most {}",
            at("message_size", None),
            thousands(plan.message_size as u64),
            thousands(frame),
            bytes(CLIENT_MESSAGE_MAX)
        ));
    }
    if over_day.is_some() {
        // The rest is figured from the plan's rates over its duration: meaningless past it.
        return f;
    }

    // How many clients at once, and what they take.
    let peak = crate::limits::peak_clients(plan);
    let (peak_field, peak_phase) = peak_source(plan);
    let peak_at = at(peak_field, Some(peak_phase));
    let messages = scheduled_messages(plan, peak);
    let deliveries = messages.saturating_mul(room_size(plan, peak));
    let memory = peak
        .saturating_mul(CLIENT_BYTES)
        .saturating_add(messages.saturating_mul(MESSAGE_BYTES))
        .saturating_add(deliveries / 8);
    if memory > machine.memory_bytes {
        let (what, per) = if peak.saturating_mul(CLIENT_BYTES) >= memory / 2 {
            (
                format!("{} clients", thousands(peak)),
                format!("at {} per client", bytes(CLIENT_BYTES)),
            )
        } else {
            (
                format!(
                    "{} clients and {} messages",
                    thousands(peak),
                    thousands(messages)
                ),
                format!(
                    "at {} per client and {} B per message",
                    bytes(CLIENT_BYTES),
                    MESSAGE_BYTES
                ),
            )
        };
        f.refusals.push(format!(
            "{peak_at}: {what} need about {} {per}; this machine has {}",
            bytes(memory),
            bytes(machine.memory_bytes)
        ));
    }
    let sources = match target {
        Target::Local | Target::Loopback if plan.source_addresses > 0 => {
            u64::from(plan.source_addresses)
        }
        Target::Local | Target::Loopback => 254,
        Target::ApiGateway | Target::Other => 1,
    };
    let per_source = match target {
        Target::Local | Target::Loopback if plan.source_addresses == 0 => {
            CLIENTS_PER_SOURCE.min(machine.ports)
        }
        _ => machine.ports,
    };
    let port_capacity = sources.saturating_mul(per_source);
    if peak > port_capacity {
        let how = if sources == 1 {
            "one source address".to_string()
        } else {
            format!("{sources} loopback source addresses")
        };
        f.refusals.push(format!(
            "{peak_at}: {} clients need as many ephemeral ports; {how} give {} here \
             ({} ports each, net.ipv4.ip_local_port_range) — load from more machines",
            thousands(peak),
            thousands(port_capacity),
            thousands(per_source)
        ));
    }
    let per_process = machine
        .open_files
        .saturating_sub(crate::limits::OVERHEAD)
        .max(1);
    let needed = peak.div_ceil(per_process).max(1);
    let ceiling = machine.worker_ceiling();
    match workers {
        Some(w) if u64::from(w) > ceiling => f.refusals.push(format!(
            "--workers {w}: this machine allows at most {ceiling} worker processes \
             ({WORKERS_PER_CORE} per core, {} cores)",
            machine.cores
        )),
        None if needed > ceiling => f.refusals.push(format!(
            "{peak_at}: {} clients need {} worker processes at {} open files each \
             (RLIMIT_NOFILE); this machine allows at most {ceiling} ({WORKERS_PER_CORE} per \
             core, {} cores)",
            thousands(peak),
            thousands(needed),
            thousands(per_process),
            machine.cores
        )),
        _ => {}
    }

    // Frames the harness must read per second, against its measured cost per frame.
    let duration = plan.duration().as_secs_f64().max(1.0);
    let frames_per_s = deliveries as f64 / duration;
    let cores_needed = frames_per_s * FRAME_COST.as_secs_f64();
    if cores_needed > machine.cores as f64 {
        f.warnings.push(format!(
            "{}: about {} frames/s to read need {:.1} cores at {:.1} µs per frame; this \
             machine has {}: the harness, not the target, will set the latency",
            plan.source.display(),
            thousands(frames_per_s as u64),
            cores_needed,
            FRAME_COST.as_secs_f64() * 1e6,
            machine.cores
        ));
    }
    f
}

/// `check`, as an error naming every refusal (warnings printed to stderr).
pub fn refuse(
    plan: &Plan,
    machine: &Machine,
    target: Target,
    workers: Option<u32>,
) -> Result<(), HarnessError> {
    let text = std::fs::read_to_string(&plan.source).unwrap_or_default();
    let f = check(plan, &text, machine, target, workers);
    for w in &f.warnings {
        eprintln!("warning: {w}");
    }
    if f.refusals.is_empty() {
        return Ok(());
    }
    Err(HarnessError::Scenario {
        file: plan.source.clone(),
        message: format!("this plan cannot run here:\n  {}", f.refusals.join("\n  ")),
    })
}

/// The field and phase that set the peak: the largest `max_clients` when one caps it,
/// else the phase bringing the most arrivals.
fn peak_source(plan: &Plan) -> (&'static str, usize) {
    let arrivals = |p: &crate::scenario::Phase| {
        p.arrival_rate.max(p.arrival_rate_end) * p.duration.as_secs_f64()
    };
    let most = (0..plan.phases.len())
        .max_by(|&a, &b| arrivals(&plan.phases[a]).total_cmp(&arrivals(&plan.phases[b])))
        .unwrap_or(0);
    let capped = (0..plan.phases.len())
        .filter(|&i| plan.phases[i].max_clients.is_some())
        .max_by_key(|&i| plan.phases[i].max_clients);
    match capped {
        Some(i)
            if u64::from(plan.phases[i].max_clients.unwrap_or(0))
                <= crate::limits::peak_clients(plan) =>
        {
            ("max_clients", i)
        }
        _ => ("arrival_rate", most),
    }
}

/// Messages the plan schedules in all (per-client rates at the peak: an upper bound).
fn scheduled_messages(plan: &Plan, peak: u64) -> u64 {
    plan.phases
        .iter()
        .map(|p| {
            let rate = p.message_rate + p.message_rate_per_client * peak as f64;
            (rate * p.duration.as_secs_f64()).min(u64::MAX as f64) as u64
        })
        .fold(0u64, u64::saturating_add)
}

/// Recipients per message: the peak spread over the rooms.
fn room_size(plan: &Plan, peak: u64) -> u64 {
    peak.div_ceil(u64::from(plan.rooms.unwrap_or(1).max(1)))
}

/// The line (1-based) where `field` is written: within phase `phase`'s list item when one
/// is given (the item's own line if the field is not written there), else at the top level.
pub fn line_of(text: &str, field: &str, phase: Option<usize>) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let has = |l: &str| crate::scenario::is_key_on(l, field);
    let Some(i) = phase else {
        return lines
            .iter()
            .position(|l| !l.starts_with([' ', '\t', '-']) && has(l))
            .map(|n| n + 1);
    };
    let start = lines
        .iter()
        .position(|l| l.trim_end().starts_with("phases:"))?;
    let mut items = Vec::new();
    let mut indent = None;
    let mut end = lines.len();
    for (n, l) in lines.iter().enumerate().skip(start + 1) {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = l.len() - trimmed.len();
        if depth == 0 && !trimmed.starts_with('-') {
            end = n;
            break;
        }
        if trimmed.starts_with('-') && indent.is_none_or(|d| d == depth) {
            indent = Some(depth);
            items.push(n);
        }
    }
    let from = *items.get(i)?;
    let to = items.get(i + 1).copied().unwrap_or(end);
    let found = (from..to).find(|&n| has(lines[n])).unwrap_or(from);
    Some(found + 1)
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn hours(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{} h", thousands(h)),
        (h, m) => format!("{} h {m} min", thousands(h)),
    }
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
