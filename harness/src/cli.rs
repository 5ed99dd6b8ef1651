//! Command-line interface (clap derive). `main` parses and calls [`run`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::HarnessError;

#[derive(Debug, Parser)]
#[command(
    name = "dynamowave",
    version,
    about = "Prove a serverless WebSocket chat meets its SLOs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario against a target and judge it against its SLO file. Exit 0: passed;
    /// 99: an SLO threshold failed; 2: the harness could not run it.
    Run(RunArgs),
    /// Check scenario files (and their SLO files) without running anything.
    Validate(ValidateArgs),
    /// Preflight for a run against a stack: credentials, the stack's resources, every
    /// function and chaos action the scenario names (fault actions need the reference
    /// fault layer), where each SLO metric's data comes from, and the AWS permissions the
    /// run needs. Exit 0 when it can go ahead, 2 naming each problem.
    Doctor(DoctorArgs),
    /// Render report.html (and its PNG charts) again from a report folder's summary.json
    /// and latency.hlog.
    Report(ReportArgs),
    /// Compare a run with a baseline: every metric, its change and a verdict against
    /// regression tolerances. Exit 0: no regression; 99: a regression; 2: bad input.
    Compare(CompareArgs),
    /// Sweep connections × message rate (× room size) against the local stack, find each
    /// connection count's highest rate within the SLO, and estimate the cost of every point.
    Capacity(CapacityArgs),
    /// One share of a distributed run (started by `run`; reads its assignment on stdin and
    /// prints its result on stdout).
    #[command(hide = true)]
    Worker,
    /// Benchmarks of the harness itself (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    #[command(hide = true)]
    BenchServer(BenchServerArgs),
    #[command(hide = true)]
    BenchReader(BenchReaderArgs),
    #[command(hide = true)]
    BenchIdleServer(IdleServerArgs),
    #[command(hide = true)]
    BenchEchoServer,
    /// The local stack: an offline, AWS-compatible home for the chat.
    #[command(subcommand)]
    Local(LocalCommand),
    /// The dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The scenario file (scenarios/*.yaml).
    pub scenario: PathBuf,
    /// `local` (the embedded local stack, the default) or a ws:// / wss:// URL; with
    /// --stack, the URL to connect to instead of the stack's.
    #[arg(long)]
    pub target: Option<String>,
    /// A deployed stack, found through CloudFormation DescribeStackResources (its
    /// functions, table, queue, WebSocket API and stage) and DescribeStacks (outputs such
    /// as `WebSocketURL` and `DeadLetterQueueUrl` override); its figures are read from
    /// CloudWatch and its Logs. The AWS credential chain; with --endpoint-url, through that
    /// endpoint, e.g. a `local up` edge.
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// With a ws:// target: the AWS (or local stack) endpoint to read its DLQ through.
    /// Without one: a running `dynamowave local up` to run against (its edge URL).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// The DLQ's URL (with --endpoint-url, or to override the one --stack finds).
    #[arg(long)]
    pub dlq_url: Option<String>,
    /// The SLO file [default: the scenario's `slo`].
    #[arg(long)]
    pub slo: Option<PathBuf>,
    /// The report folder [default: reports/{scenario}-{time}].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker processes to spread the clients over [default: as many as the open-file
    /// limit needs, usually 1].
    #[arg(long)]
    pub workers: Option<u32>,
    /// After the run, wait up to this long for CloudWatch and its Logs to hold the run's
    /// complete data before judging (AWS publishes Lambda's metrics a minute or more late
    /// and logs can lag 5–10 minutes).
    #[arg(long, value_name = "DURATION", value_parser = duration_flag, default_value = "10m")]
    pub settle: std::time::Duration,
    /// The period of the CloudWatch queries, in seconds [default: 1 from a local stack
    /// (it keeps per-second data), 60 from AWS (its resolution for AWS metrics)].
    #[arg(long, value_name = "SECONDS", value_parser = period_flag)]
    pub metrics_period: Option<i32>,
    /// The least time after the run's end before CloudWatch's data counts as complete: AWS
    /// answers `Complete` with what has landed so far [default: 3m on AWS, 0 from a local
    /// stack, which answers `PartialData` while it holds data back].
    #[arg(long, value_name = "DURATION", value_parser = duration_flag)]
    pub metrics_delay: Option<std::time::Duration>,
    /// Settings of the embedded local stack (target `local`).
    #[command(flatten)]
    pub local: UpArgs,
}

#[derive(Debug, Args, Clone)]
pub struct CapacityArgs {
    /// The capacity plan (e.g. scenarios/capacity-local.yaml).
    pub plan: PathBuf,
    /// The report folder [default: reports/{plan}-{time}].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Settings of the embedded local stack, started once for every point.
    #[command(flatten)]
    pub local: UpArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// CPU per received broadcast frame, harness vs a bare reader, and memory per
    /// connection, against a minimal broadcast server on loopback.
    Receive(BenchArgs),
    /// The most idle clients the harness holds, through worker processes and several
    /// loopback source addresses, against broadcast servers sharing one port; memory per
    /// connection and time to connect.
    Idle(IdleArgs),
    /// The harness's latency floor: a whole run against an echo server that answers at
    /// once, reporting latency from the intended and from the actual send, and the
    /// schedule's lag.
    Floor(FloorArgs),
}

#[derive(Debug, Args, Clone)]
pub struct FloorArgs {
    #[arg(long, default_value_t = 100)]
    pub clients: u32,
    /// Messages per second, all clients together (Poisson arrivals).
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = 20)]
    pub seconds: u32,
    /// Where the scenario and the run's report go [default: reports/bench-floor-{time}].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct IdleArgs {
    #[arg(long, default_value_t = 100_000)]
    pub clients: u32,
    /// Server processes sharing one port [default: one per 18,000 clients].
    #[arg(long)]
    pub servers: Option<u32>,
    /// Harness worker processes [default: one per 18,000 clients].
    #[arg(long)]
    pub workers: Option<u32>,
    /// Loopback source addresses 127.0.0.1..=N [default: one per 10,000 clients, at least 2].
    #[arg(long)]
    pub sources: Option<u32>,
    /// New connections per second, all workers together.
    #[arg(long, default_value_t = 5_000)]
    pub rate: u32,
    /// Seconds to hold once the arrivals are over, before the check.
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
}

#[derive(Debug, Args, Clone)]
pub struct IdleServerArgs {
    #[arg(long)]
    pub port: u16,
    #[arg(long)]
    pub run: u32,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    /// Seconds measured per reader.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Broadcast messages per second (each reaches every connection); 0 = saturation.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    #[arg(long, default_value_t = 100)]
    pub frame_size: usize,
}

#[derive(Debug, Args, Clone)]
pub struct BenchServerArgs {
    #[arg(long)]
    pub connections: u64,
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    #[arg(long, default_value_t = 100)]
    pub frame_size: usize,
}

#[derive(Debug, Args, Clone)]
pub struct BenchReaderArgs {
    #[arg(long)]
    pub url: String,
    /// `bare` or `harness`.
    #[arg(long)]
    pub mode: String,
    #[arg(long)]
    pub connections: u64,
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
}

#[derive(Debug, Args, Clone)]
pub struct DoctorArgs {
    /// The scenario the run will use.
    pub scenario: PathBuf,
    /// The SLO file [default: the scenario's `slo`].
    #[arg(long)]
    pub slo: Option<PathBuf>,
    /// The stack (CloudFormation name); with --endpoint-url alone, the local stack there.
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// An AWS-compatible endpoint (a `dynamowave local up` edge).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// The settle time the run will use (`run --settle`).
    #[arg(long, value_name = "DURATION", value_parser = duration_flag, default_value = "10m")]
    pub settle: std::time::Duration,
}

#[derive(Debug, Args, Clone)]
pub struct ValidateArgs {
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// A report folder written by `dynamowave run`.
    pub dir: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct CompareArgs {
    /// The baseline run: a report folder or its summary.json.
    pub baseline: PathBuf,
    /// The run to judge: a report folder or its summary.json.
    pub new: PathBuf,
    /// Regression tolerances (YAML) instead of the defaults.
    #[arg(long)]
    pub tolerances: Option<PathBuf>,
    /// Also write the comparison as a Markdown table here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// A folder of earlier runs (report folders or summary.json files): draws p99 and the
    /// delivery ratio over them (trend.svg and trend.png in --out).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Where the trend chart goes [default: the NEW run's folder].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Deliver every dead letter again: recipient records through @connections, Lambda's
    /// whole-event records through the broadcast function; delivered ones leave the queue.
    Replay(DlqReplayArgs),
}

#[derive(Debug, Args, Clone)]
pub struct DlqReplayArgs {
    /// A deployed stack (its DeadLetterQueueUrl, ConnectionsURL and BroadcastFunctionName
    /// outputs).
    #[arg(long, conflicts_with = "endpoint_url")]
    pub stack: Option<String>,
    /// A running `dynamowave local up` (its edge URL); with --stack, where to send the calls.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
}

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Start the stack from template.yaml and run until SIGINT/SIGTERM. The first line on
    /// stdout is a JSON object with websocket_url, endpoint_url and region; logs go to stderr.
    Up(UpArgs),
}

#[derive(Debug, Args, Clone)]
pub struct UpArgs {
    /// The SAM template to run.
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// Folder with the functions' release binaries [default: next to this executable,
    /// else ./target/release].
    #[arg(long)]
    pub binaries: Option<PathBuf>,
    /// Template parameters, as `sam deploy --parameter-overrides`: KEY=VALUE (repeatable).
    #[arg(long = "parameter-overrides", value_name = "KEY=VALUE", num_args = 1..)]
    pub parameter_overrides: Vec<String>,
    #[arg(long, default_value = "dynamowave")]
    pub stack_name: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Edge port (every AWS API); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub edge_port: u16,
    /// WebSocket port; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub websocket_port: u16,
    /// Simulated sandbox start-up added to each cold start, in ms.
    #[arg(long, default_value_t = 150)]
    pub sandbox_delay_ms: u64,
    /// Idle function instances are reaped after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub idle_instance_secs: u64,
    /// Base wait of Lambda's async retries after function errors, in ms (AWS: 60000).
    #[arg(long, default_value_t = 60_000)]
    pub async_retry_base_ms: u64,
    /// Account concurrency limit.
    #[arg(long, default_value_t = 1_000)]
    pub account_concurrency: u32,
    /// Simulated latency of each @connections call, in ms.
    #[arg(long, default_value_t = 10)]
    pub connections_latency_ms: u64,
    /// Share (0–1) of @connections posts that fail, for any chat (a local-stack fault).
    #[arg(long, default_value_t = 0.0, value_parser = share_flag)]
    pub post_failure_share: f64,
    /// The status those posts fail with: 429, 500 or 503.
    #[arg(long, default_value_t = 500, value_parser = status_flag)]
    pub post_failure_status: u16,
    /// WebSocket idle timeout in seconds (AWS: 600).
    #[arg(long, default_value_t = 600)]
    pub idle_timeout_secs: u64,
    /// CloudWatch datapoints become visible this long after their time, as AWS publishes
    /// late (e.g. `90s`; default 0: at once).
    #[arg(long, value_name = "DURATION", value_parser = duration_flag, default_value = "0s")]
    pub publish_delay: std::time::Duration,
    /// Verify every call's SigV4 signature against this access key (with
    /// --secret-access-key); the functions sign with it. Without, any signed call is taken.
    #[arg(long, requires = "secret_access_key", value_name = "KEY")]
    pub access_key_id: Option<String>,
    #[arg(long, requires = "access_key_id", value_name = "SECRET")]
    pub secret_access_key: Option<String>,
}

/// CloudWatch's valid periods: 1, 5, 10, 20, 30 or a multiple of 60.
fn period_flag(text: &str) -> Result<i32, String> {
    let p: i32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if [1, 5, 10, 20, 30].contains(&p) || (p > 0 && p % 60 == 0) {
        Ok(p)
    } else {
        Err(format!(
            "{p} s is not a CloudWatch period: use 1, 5, 10, 20, 30 or a multiple of 60"
        ))
    }
}

fn duration_flag(text: &str) -> Result<std::time::Duration, String> {
    crate::scenario::units::parse_duration(text)
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32, HarnessError> {
    match cli.command {
        Command::Run(args) => crate::run::run(args).await,
        Command::Validate(args) => crate::run::validate(args),
        Command::Doctor(a) => {
            crate::doctor::doctor(crate::doctor::Options {
                scenario: a.scenario,
                slo: a.slo,
                stack: a.stack,
                endpoint_url: a.endpoint_url,
                region: a.region,
                settle: a.settle,
            })
            .await
        }
        Command::Report(args) => crate::report::rerender(&args.dir),
        Command::Compare(args) => crate::compare::compare(args),
        Command::Capacity(args) => crate::capacity::capacity(args).await,
        Command::Worker => crate::workers::worker().await,
        Command::Bench(BenchCommand::Receive(args)) => crate::bench::receive(args).await,
        Command::BenchServer(args) => crate::bench::server(args).await,
        Command::BenchReader(args) => crate::bench::reader(args).await,
        Command::Bench(BenchCommand::Idle(args)) => crate::bench::idle::idle(args).await,
        Command::BenchIdleServer(args) => crate::bench::idle::server(args).await,
        Command::Bench(BenchCommand::Floor(args)) => crate::bench::floor::floor(args).await,
        Command::BenchEchoServer => crate::bench::floor::echo_server().await,
        Command::Local(LocalCommand::Up(args)) => crate::local::up(args).await,
        Command::Dlq(DlqCommand::Replay(args)) => crate::replay::command(args).await,
    }
}

/// A share from 0 to 1.
fn share_flag(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a share from 0 to 1")),
    }
}

/// A status @connections posts may fail with.
fn status_flag(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(v @ (429 | 500 | 503)) => Ok(v),
        _ => Err(format!("{text:?} is not 429, 500 or 503")),
    }
}
