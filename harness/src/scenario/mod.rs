//! Scenario files (scenarios/*.yaml): data, not code. `load` parses one into an immutable
//! [`Plan`]; every error names the file, the line and the field.

pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use units::{parse_duration, parse_size};

use crate::error::HarnessError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    #[serde(default)]
    description: String,
    /// `local` (default: the embedded local stack) or a `ws://`/`wss://` URL.
    target: Option<String>,
    #[serde(default)]
    protocol: Protocol,
    rooms: Option<u32>,
    phases: Vec<PhaseFile>,
    #[serde(default = "default_size", deserialize_with = "units::size")]
    message_size: usize,
    /// A delivery later than this after its intended send time counts as late.
    #[serde(default = "default_deadline", deserialize_with = "units::duration")]
    deadline: Duration,
    /// How long to keep listening after the last phase, for deliveries still in flight.
    #[serde(default = "default_drain", deserialize_with = "units::duration")]
    drain: Duration,
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "units::duration"
    )]
    connect_timeout: Duration,
    /// How long a leaving client waits for the server's answer to its Close (the closing
    /// handshake) before it drops the connection; its unanswered writes are then uncertain.
    #[serde(
        default = "default_close_timeout",
        deserialize_with = "units::duration"
    )]
    close_timeout: Duration,
    /// Share (0–1) of clients that read slowly.
    #[serde(default)]
    slow_readers: f64,
    /// The SLO file, relative to the scenario file.
    slo: Option<PathBuf>,
    /// Parameters for the embedded local stack (template parameter overrides).
    #[serde(default)]
    local: BTreeMap<String, String>,
    /// Settings of the embedded local stack (as `local up`'s flags of the same names).
    #[serde(default)]
    local_stack: LocalStack,
    #[serde(default)]
    chaos: Vec<ChaosFile>,
    #[serde(default)]
    seed: Option<u64>,
    /// Loopback targets: spread clients round-robin over 127.0.0.1..=N as source addresses
    /// (connect() slows past ~14,000 ports of one address per destination).
    source_addresses: Option<u32>,
}

fn default_size() -> usize {
    128
}
fn default_deadline() -> Duration {
    Duration::from_secs(5)
}
fn default_drain() -> Duration {
    Duration::from_secs(3)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_close_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The chat protocol as data, so any broadcast chat can be driven.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// The frame a client sends; `{{payload}}` becomes the payload as a JSON string.
    #[serde(default = "default_send")]
    pub send: String,
    /// Where the payload sits in received frames: a JSON pointer, or `frame` for the whole frame.
    #[serde(default = "default_payload")]
    pub payload: String,
    /// A frame that makes the server answer with the caller's id (optional), and where the
    /// id sits in the answer (a JSON pointer).
    #[serde(default)]
    pub whoami: Option<Whoami>,
    /// Query parameters of the connection URL; `{{room}}` is the client's room.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether the sender receives its own message (the reference chat's broadcast does).
    #[serde(default = "yes")]
    pub echo_to_sender: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Whoami {
    pub send: String,
    pub id: String,
}

fn default_send() -> String {
    r#"{"action":"sendMessage","message":{{payload}}}"#.into()
}
fn default_payload() -> String {
    "/message".into()
}
fn yes() -> bool {
    true
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            send: default_send(),
            payload: default_payload(),
            whoami: Some(Whoami {
                send: r#"{"action":"whoami"}"#.into(),
                id: "/connectionId".into(),
            }),
            query: BTreeMap::from([("room".to_string(), "{{room}}".to_string())]),
            headers: BTreeMap::new(),
            echo_to_sender: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseFile {
    name: String,
    #[serde(deserialize_with = "units::duration")]
    duration: Duration,
    /// New clients per second (open model) at the start of the phase …
    #[serde(default)]
    arrival_rate: f64,
    /// … ramping linearly to this by its end.
    ramp_to: Option<f64>,
    /// No arrivals beyond this many clients connected.
    max_clients: Option<u32>,
    /// Messages per second across all clients …
    #[serde(default)]
    message_rate: f64,
    /// … or per connected client.
    #[serde(default)]
    message_rate_per_client: f64,
    #[serde(default)]
    spacing: Spacing,
    /// Clients leaving per second.
    #[serde(default)]
    departure_rate: f64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Spacing {
    /// Exponential gaps: independent arrivals, as real users are.
    #[default]
    Poisson,
    Constant,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ChaosFile {
    #[serde(deserialize_with = "units::duration")]
    at: Duration,
    #[serde(rename = "for", default, deserialize_with = "units::duration")]
    duration: Duration,
    action: String,
    #[serde(default)]
    params: serde_json::Value,
}

/// Embedded local stack settings a scenario needs (e.g. short async retries so a DLQ
/// scenario fits CI). Each overrides the `run` flag of the same name.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalStack {
    pub async_retry_base_ms: Option<u64>,
    pub account_concurrency: Option<u32>,
    pub sandbox_delay_ms: Option<u64>,
    pub idle_instance_secs: Option<u64>,
    pub connections_latency_ms: Option<u64>,
    /// Share (0–1) of @connections posts that fail (`local up --post-failure-share`).
    pub post_failure_share: Option<f64>,
    pub post_failure_status: Option<u16>,
}

/// One phase, with its start offset in the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub start: Duration,
    pub duration: Duration,
    pub arrival_rate: f64,
    pub arrival_rate_end: f64,
    pub max_clients: Option<u32>,
    pub message_rate: f64,
    pub message_rate_per_client: f64,
    pub spacing: Spacing,
    pub departure_rate: f64,
}

/// A chaos action on the timeline, validated (see `chaos`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosStep {
    pub at: Duration,
    pub duration: Duration,
    /// The action's name as written (`lambda-error`).
    pub name: String,
    pub action: crate::chaos::Action,
    pub params: serde_json::Value,
}

/// A scenario, validated: what one run does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub source: PathBuf,
    pub target: Option<String>,
    pub protocol: Protocol,
    pub rooms: Option<u32>,
    pub phases: Vec<Phase>,
    pub message_size: usize,
    pub deadline: Duration,
    pub drain: Duration,
    pub connect_timeout: Duration,
    pub close_timeout: Duration,
    pub slow_readers: f64,
    pub slo: Option<PathBuf>,
    pub local_parameters: BTreeMap<String, String>,
    pub local_stack: LocalStack,
    pub chaos: Vec<ChaosStep>,
    pub seed: u64,
    /// Source addresses 127.0.0.1..=N for loopback targets; 0: automatic (a new address
    /// for each 12,000 clients).
    pub source_addresses: u32,
}

impl Plan {
    /// When the last phase ends.
    pub fn duration(&self) -> Duration {
        self.phases
            .last()
            .map(|p| p.start + p.duration)
            .unwrap_or_default()
    }

    /// The phase running at `t`, if any.
    pub fn phase_at(&self, t: Duration) -> Option<&Phase> {
        self.phases
            .iter()
            .find(|p| t >= p.start && t < p.start + p.duration)
    }
}

/// The parser gives no position for some errors (an unknown top-level field): find the
/// field's line ourselves, so every structural error names one.
pub fn with_line(text: &str, message: String) -> String {
    if message.contains(" line ") {
        return message;
    }
    let field = message
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next());
    let Some(field) = field else { return message };
    let line = text.lines().position(|l| {
        let l = l.trim_start().trim_start_matches("- ");
        l.strip_prefix(field)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    });
    match line {
        Some(n) => format!("{message} at line {}", n + 1),
        None => message,
    }
}

/// Whether `line` writes `key` as a mapping key, in block or flow style (`key:`,
/// `- key:`, `{a: 1, key: 2}`): what every "field X (line N)" error looks for.
pub(crate) fn is_key_on(line: &str, key: &str) -> bool {
    line.match_indices(key).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        before.is_none_or(|c| c.is_whitespace() || c == '{' || c == ',' || c == '-')
            && line[i + key.len()..].trim_start().starts_with(':')
    })
}

/// A file's `name:`, else its file name without the extension.
pub(crate) fn name_or_stem(name: Option<String>, path: &Path) -> String {
    name.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

pub fn load(path: &Path) -> Result<Plan, HarnessError> {
    let text = crate::scenario::units::read_text(path).map_err(|e| HarnessError::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> Result<Plan, HarnessError> {
    let file: File = yaml_serde::from_str(text).map_err(|e| HarnessError::Scenario {
        file: path.to_path_buf(),
        message: with_line(text, e.to_string()),
    })?;
    let bad = |message: String| HarnessError::Scenario {
        file: path.to_path_buf(),
        message,
    };
    if file.phases.is_empty() {
        return Err(bad("phases: at least one phase is needed".into()));
    }
    if !(0.0..=1.0).contains(&file.slow_readers) {
        return Err(bad(format!(
            "slow_readers: {} is not a share between 0 and 1",
            file.slow_readers
        )));
    }
    if let Some(share) = file.local_stack.post_failure_share
        && !(0.0..=1.0).contains(&share)
    {
        return Err(bad(format!(
            "local_stack.post_failure_share: {share} is not a share from 0 to 1"
        )));
    }
    if let Some(status) = file.local_stack.post_failure_status
        && ![429, 500, 503].contains(&status)
    {
        return Err(bad(format!(
            "local_stack.post_failure_status: {status} is not 429, 500 or 503"
        )));
    }
    if file.rooms == Some(0) {
        return Err(bad(
            "rooms: 0 rooms cannot hold clients; omit it for one global room".into(),
        ));
    }
    if !file.protocol.send.contains("{{payload}}") {
        return Err(bad(
            "protocol.send: the frame template has no {{payload}}".into()
        ));
    }
    if file.protocol.payload != "frame" && !file.protocol.payload.starts_with('/') {
        return Err(bad(format!(
            "protocol.payload: {:?} is neither a JSON pointer (/…) nor `frame`",
            file.protocol.payload
        )));
    }
    if file.message_size < crate::engine::stamp::MIN_PAYLOAD {
        return Err(bad(format!(
            "message_size: {} bytes cannot hold the measurement stamp; use at least {}",
            file.message_size,
            crate::engine::stamp::MIN_PAYLOAD
        )));
    }
    if file
        .source_addresses
        .is_some_and(|n| !(1..=254).contains(&n))
    {
        return Err(bad(format!(
            "source_addresses: {} is not between 1 and 254 (127.0.0.1 to 127.0.0.254)",
            file.source_addresses.unwrap_or_default()
        )));
    }
    let mut phases = Vec::new();
    let mut start = Duration::ZERO;
    for (i, p) in file.phases.iter().enumerate() {
        let at = |field: &str| format!("phases[{i}] ({}).{field}", p.name);
        for (field, v) in [
            ("arrival_rate", p.arrival_rate),
            ("ramp_to", p.ramp_to.unwrap_or(0.0)),
            ("message_rate", p.message_rate),
            ("message_rate_per_client", p.message_rate_per_client),
            ("departure_rate", p.departure_rate),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(bad(format!(
                    "{}: {v} must be a rate of 0 or more per second",
                    at(field)
                )));
            }
        }
        if p.message_rate > 0.0 && p.message_rate_per_client > 0.0 {
            return Err(bad(format!(
                "{}: give message_rate or message_rate_per_client, not both",
                at("message_rate")
            )));
        }
        if p.duration.is_zero() {
            return Err(bad(format!(
                "{}: a phase must last longer than 0",
                at("duration")
            )));
        }
        phases.push(Phase {
            name: p.name.clone(),
            start,
            duration: p.duration,
            arrival_rate: p.arrival_rate,
            arrival_rate_end: p.ramp_to.unwrap_or(p.arrival_rate),
            max_clients: p.max_clients,
            message_rate: p.message_rate,
            message_rate_per_client: p.message_rate_per_client,
            spacing: p.spacing,
            departure_rate: p.departure_rate,
        });
        start = start.checked_add(p.duration).ok_or_else(|| {
            bad(format!(
                "{}: the phases add up to more time than can be counted",
                at("duration")
            ))
        })?;
    }
    let mut chaos = Vec::new();
    for (i, c) in file.chaos.into_iter().enumerate() {
        let action = crate::chaos::parse(&c.action, &c.params)
            .map_err(|m| bad(format!("chaos[{i}]: {m}")))?;
        if action.lasts() && c.duration.is_zero() {
            return Err(bad(format!(
                "chaos[{i}] ({}).for: a lasting action needs a `for` longer than 0",
                c.action
            )));
        }
        chaos.push(ChaosStep {
            at: c.at,
            duration: c.duration,
            name: c.action,
            action,
            params: c.params,
        });
    }
    let slo = file.slo.map(|s| match path.parent() {
        Some(dir) if s.is_relative() => dir.join(s),
        _ => s,
    });
    Ok(Plan {
        name: name_or_stem(file.name, path),
        description: file.description,
        source: path.to_path_buf(),
        target: file.target,
        protocol: file.protocol,
        rooms: file.rooms,
        phases,
        message_size: file.message_size,
        deadline: file.deadline,
        drain: file.drain,
        connect_timeout: file.connect_timeout,
        close_timeout: file.close_timeout,
        slow_readers: file.slow_readers,
        slo,
        local_parameters: file.local,
        local_stack: file.local_stack,
        chaos,
        seed: file.seed.unwrap_or_else(rand::random),
        source_addresses: file.source_addresses.unwrap_or(0),
    })
}
