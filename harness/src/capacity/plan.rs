//! Capacity plan files: which scenario to load, what to sweep, how long each point runs and
//! the price model. Parsed like scenarios: unknown fields are errors, and every error names
//! the file, the line (from the parser, or found for unknown fields) and the field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::HarnessError;
use crate::scenario::{self, with_line};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    #[serde(default)]
    description: String,
    /// The base scenario (protocol, rooms, SLO, local parameters), relative to this file.
    scenario: PathBuf,
    /// An SLO file instead of the scenario's, relative to this file.
    slo: Option<PathBuf>,
    connections: Vec<u32>,
    message_rates: Vec<f64>,
    /// Clients per room; each is swept (rooms = ⌈connections / size⌉). Omitted: the base
    /// scenario's rooms as they are.
    #[serde(default)]
    room_sizes: Vec<u32>,
    point: PointFile,
    /// The curve "bends" where the max sustainable rate falls by more than this share from
    /// the previous connection count.
    #[serde(default = "default_bend")]
    bend_drop: f64,
    prices: Prices,
    /// Several systems swept alike, each on its own embedded stack (omitted: the one
    /// `--template` names).
    #[serde(default)]
    systems: Vec<SystemFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemFile {
    name: String,
    /// Its template, relative to this file.
    template: PathBuf,
    /// Its base scenario instead of the plan's (its protocol, rooms, local parameters).
    scenario: Option<PathBuf>,
}

/// One system of a comparison: a name, its template and its base scenario, loaded.
#[derive(Debug, Clone)]
pub struct System {
    pub name: String,
    pub template: PathBuf,
    pub base: scenario::Plan,
}

fn default_bend() -> f64 {
    0.25
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointFile {
    /// The chat phase at each rate.
    #[serde(deserialize_with = "scenario::units::duration")]
    duration: Duration,
    /// New clients per second while a point's clients join (constant spacing).
    #[serde(default = "default_join_rate")]
    join_rate: f64,
    /// A pause between points, so one point's stragglers do not land in the next.
    #[serde(
        default = "default_settle",
        deserialize_with = "scenario::units::duration"
    )]
    settle: Duration,
    /// Run the first point once, unjudged, before the sweep: cold starts would otherwise
    /// fail the first point of a fresh stack.
    #[serde(default = "yes")]
    warmup: bool,
}

fn yes() -> bool {
    true
}

fn default_join_rate() -> f64 {
    100.0
}
fn default_settle() -> Duration {
    Duration::from_secs(1)
}

/// The price model: every price is an input, with the date it was taken and its source.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// When the prices were read (YYYY-MM-DD), so readers know to check them.
    pub taken: String,
    pub source: String,
    pub region: String,
    pub currency: String,
    pub api_gateway: ApiGatewayPrices,
    pub lambda: LambdaPrices,
    pub dynamodb: DynamoDbPrices,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiGatewayPrices {
    /// Per million WebSocket messages, both directions, counted in `message_unit_bytes` units.
    pub messages_per_million: f64,
    #[serde(default = "default_unit")]
    pub message_unit_bytes: u64,
    pub connection_minutes_per_million: f64,
    /// Bytes a delivered frame adds around the payload (the reference chat's JSON envelope).
    #[serde(default = "default_envelope")]
    pub outbound_envelope_bytes: u64,
}

fn default_unit() -> u64 {
    32 * 1024
}
fn default_envelope() -> u64 {
    256
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LambdaPrices {
    pub requests_per_million: f64,
    pub gb_second: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DynamoDbPrices {
    pub read_request_units_per_million: f64,
    pub write_request_units_per_million: f64,
    /// Bytes DynamoDB counts per connection row a broadcast reads (an assumption: id, room
    /// and key overhead).
    #[serde(default = "default_row")]
    pub row_bytes: u64,
}

fn default_row() -> u64 {
    128
}

/// A capacity plan, validated.
#[derive(Debug, Clone)]
pub struct CapacityPlan {
    pub name: String,
    pub description: String,
    pub source: PathBuf,
    /// The base scenario, loaded.
    pub base: scenario::Plan,
    /// The SLO file in force (the plan's, else the scenario's).
    pub slo: Option<PathBuf>,
    /// Ascending, without repeats.
    pub connections: Vec<u32>,
    pub message_rates: Vec<f64>,
    /// `None`: the base scenario's rooms.
    pub room_sizes: Vec<Option<u32>>,
    pub duration: Duration,
    pub join_rate: f64,
    pub settle: Duration,
    pub warmup: bool,
    pub bend_drop: f64,
    pub prices: Prices,
    /// Empty: one system, the `--template` flag's.
    pub systems: Vec<System>,
}

/// Whether a YAML file is a capacity plan rather than a scenario (it sweeps
/// `message_rates`), so `validate` and tests can take both from scenarios/.
pub fn is_plan(path: &Path) -> bool {
    crate::scenario::units::read_text(path)
        .ok()
        .and_then(|t| yaml_serde::from_str::<yaml_serde::Value>(&t).ok())
        .is_some_and(|v| v.get("message_rates").is_some())
}

pub fn load(path: &Path) -> Result<CapacityPlan, HarnessError> {
    let text = crate::scenario::units::read_text(path).map_err(|e| HarnessError::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })?;
    parse(&text, path)
}

/// The 1-based line where `field` (dotted) is written, for errors found after parsing: its
/// last part as a key (block or flow style), else its first.
pub(crate) fn line_of(text: &str, field: &str) -> String {
    let find = |key: &str| text.lines().position(|l| scenario::is_key_on(l, key));
    let last = field.rsplit('.').next().unwrap_or(field);
    let first = field.split('.').next().unwrap_or(field);
    find(last)
        .or_else(|| find(first))
        .map(|n| format!(" (line {})", n + 1))
        .unwrap_or_default()
}

pub fn parse(text: &str, path: &Path) -> Result<CapacityPlan, HarnessError> {
    let file: File = yaml_serde::from_str(text).map_err(|e| HarnessError::Scenario {
        file: path.to_path_buf(),
        message: with_line(text, e.to_string()),
    })?;
    let bad = |field: &str, message: String| HarnessError::Scenario {
        file: path.to_path_buf(),
        message: format!("{field}{}: {message}", line_of(text, field)),
    };
    let ascending = |v: &[f64]| v.windows(2).all(|w| w[0] < w[1]);
    if file.connections.is_empty() || file.connections.contains(&0) {
        return Err(bad(
            "connections",
            "list one or more connection counts, each above 0".into(),
        ));
    }
    let counts: Vec<f64> = file.connections.iter().map(|&c| f64::from(c)).collect();
    if !ascending(&counts) {
        return Err(bad(
            "connections",
            "list the counts in ascending order, without repeats".into(),
        ));
    }
    if file.message_rates.is_empty()
        || file
            .message_rates
            .iter()
            .any(|r| !r.is_finite() || *r <= 0.0)
    {
        return Err(bad(
            "message_rates",
            "list one or more message rates (messages/s across all clients), each above 0".into(),
        ));
    }
    if !ascending(&file.message_rates) {
        return Err(bad(
            "message_rates",
            "list the rates in ascending order (each row is swept upward), without repeats".into(),
        ));
    }
    if file.room_sizes.contains(&0) {
        return Err(bad("room_sizes", "a room holds at least 1 client".into()));
    }
    if file.point.duration.is_zero() {
        return Err(bad(
            "point.duration",
            "a point must last longer than 0".into(),
        ));
    }
    if !file.point.join_rate.is_finite() || file.point.join_rate <= 0.0 {
        return Err(bad(
            "point.join_rate",
            format!("{} is not a rate above 0 per second", file.point.join_rate),
        ));
    }
    if !(0.0..1.0).contains(&file.bend_drop) {
        return Err(bad(
            "bend_drop",
            format!("{} is not a share from 0 up to 1", file.bend_drop),
        ));
    }
    let p = &file.prices;
    for (field, v) in [
        (
            "prices.api_gateway.messages_per_million",
            p.api_gateway.messages_per_million,
        ),
        (
            "prices.api_gateway.connection_minutes_per_million",
            p.api_gateway.connection_minutes_per_million,
        ),
        (
            "prices.lambda.requests_per_million",
            p.lambda.requests_per_million,
        ),
        ("prices.lambda.gb_second", p.lambda.gb_second),
        (
            "prices.dynamodb.read_request_units_per_million",
            p.dynamodb.read_request_units_per_million,
        ),
        (
            "prices.dynamodb.write_request_units_per_million",
            p.dynamodb.write_request_units_per_million,
        ),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(bad(field, format!("{v} is not a price of 0 or more")));
        }
    }
    if p.api_gateway.message_unit_bytes == 0 {
        return Err(bad(
            "prices.api_gateway.message_unit_bytes",
            "must be above 0".into(),
        ));
    }
    if chrono::NaiveDate::parse_from_str(&p.taken, "%Y-%m-%d").is_err() {
        return Err(bad(
            "prices.taken",
            format!("{:?} is not a date (YYYY-MM-DD)", p.taken),
        ));
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let relative = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
    let scenario_path = relative(file.scenario);
    let base = scenario::load(&scenario_path)
        .map_err(|e| bad("scenario", format!("the base scenario does not load: {e}")))?;
    if !base.chaos.is_empty() {
        return Err(bad(
            "scenario",
            format!(
                "{} has a chaos timeline; capacity points measure steady load, so use a \
                 scenario without `chaos`",
                scenario_path.display()
            ),
        ));
    }
    let load_base = |field: &str, path: &Path| {
        let base = scenario::load(path)
            .map_err(|e| bad(field, format!("the base scenario does not load: {e}")))?;
        if base.chaos.is_empty() {
            Ok(base)
        } else {
            Err(bad(
                field,
                format!(
                    "{} has a chaos timeline; capacity points measure steady load, so use a \
                     scenario without `chaos`",
                    path.display()
                ),
            ))
        }
    };
    let mut systems: Vec<System> = Vec::new();
    for (i, s) in file.systems.iter().enumerate() {
        let field = format!("systems.{i}.name");
        let valid = !s.name.is_empty()
            && s.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(bad(
                &field,
                format!(
                    "{:?} is not a name of letters, digits, - and _ (it names a folder)",
                    s.name
                ),
            ));
        }
        if systems.iter().any(|o| o.name == s.name) {
            return Err(bad(&field, format!("two systems are named {}", s.name)));
        }
        let template = relative(s.template.clone());
        if !template.is_file() {
            return Err(bad(
                &format!("systems.{i}.template"),
                format!("{} is not a file", template.display()),
            ));
        }
        let base = match &s.scenario {
            Some(p) => load_base(&format!("systems.{i}.scenario"), &relative(p.clone()))?,
            None => base.clone(),
        };
        systems.push(System {
            name: s.name.clone(),
            template,
            base,
        });
    }
    let slo = file.slo.map(relative).or_else(|| base.slo.clone());
    let room_sizes = if file.room_sizes.is_empty() {
        vec![None]
    } else {
        file.room_sizes.into_iter().map(Some).collect()
    };
    Ok(CapacityPlan {
        name: crate::scenario::name_or_stem(file.name, path),
        description: file.description,
        source: path.to_path_buf(),
        base,
        slo,
        connections: file.connections,
        message_rates: file.message_rates,
        room_sizes,
        duration: file.point.duration,
        join_rate: file.point.join_rate,
        settle: file.point.settle,
        warmup: file.point.warmup,
        bend_drop: file.bend_drop,
        prices: file.prices,
        systems,
    })
}
