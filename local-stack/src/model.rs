//! The chat's AWS shape as the local stack runs it: template.yaml with every parameter,
//! condition and intrinsic resolved (see `template`). Plain data; the services read it.

use std::collections::BTreeMap;
use std::time::Duration;

/// Names the local stack gives what AWS would name: account, region, stack, edge URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Naming {
    pub stack_name: String,
    pub region: String,
    pub account_id: String,
    /// `http://127.0.0.1:PORT` of the edge, where queue URLs and @connections point.
    pub edge_url: String,
    /// `ws://127.0.0.1:PORT` where WebSocket clients connect (stage appended).
    pub websocket_url: String,
}

impl Default for Naming {
    fn default() -> Self {
        Naming {
            stack_name: "dynamowave".into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            edge_url: "http://127.0.0.1:4566".into(),
            websocket_url: "ws://127.0.0.1:4567".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StackModel {
    pub naming: Naming,
    /// Resolved parameter values, by parameter name.
    pub parameters: BTreeMap<String, String>,
    /// Keyed by logical id.
    pub functions: BTreeMap<String, FunctionSpec>,
    pub websocket_apis: BTreeMap<String, WebSocketApiSpec>,
    pub tables: BTreeMap<String, TableSpec>,
    pub queues: BTreeMap<String, QueueSpec>,
    /// Stack outputs, resolved to strings.
    pub outputs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// Physical name: `FunctionName`, else `{stack}-{LogicalId}`.
    pub name: String,
    pub arn: String,
    /// What runs: a release binary, or a package folder with its runtime and handler.
    pub code: Code,
    /// SAM default 3 s.
    pub timeout: Duration,
    /// SAM default 128.
    pub memory_mb: u32,
    /// Globals' variables merged under the function's own.
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrency: Option<u32>,
    /// `DeadLetterQueue` (SQS): the queue's logical id.
    pub dead_letter_queue: Option<String>,
    /// `EventInvokeConfig.DestinationConfig.OnFailure` with an SQS destination: queue logical id.
    pub on_failure_queue: Option<String>,
    /// `EventInvokeConfig.MaximumRetryAttempts`, AWS default 2.
    pub max_retry_attempts: u32,
    /// `EventInvokeConfig.MaximumEventAgeInSeconds`, AWS default 21600.
    pub max_event_age: Duration,
    pub schedules: Vec<ScheduleSpec>,
}

/// A function's code as the local stack starts it.
#[derive(Debug, Clone, PartialEq)]
pub enum Code {
    /// `Metadata.BuildProperties.Binary` (SAM's rust-cargolambda build): a release binary in
    /// the stack's binaries folder.
    Binary(String),
    /// `CodeUri` (SAM) or `Code` (a local path, as `aws cloudformation package` takes it)
    /// with `Runtime` and `Handler`. `dir` is as the template wrote it until the stack
    /// resolves it against the template's folder.
    Package {
        runtime: Runtime,
        dir: std::path::PathBuf,
        handler: String,
    },
}

/// The Lambda runtimes the local stack runs, with the identifier as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// `python3.11` … `python3.14`, through awslambdaric.
    Python(String),
    /// `nodejs20.x` … `nodejs24.x`, through aws-lambda-ric.
    Node(String),
    /// `provided.al2023` / `provided.al2`: the package's `bootstrap` executable.
    Provided(String),
}

impl Runtime {
    /// Lambda's identifiers this stack accepts.
    pub const SUPPORTED: &'static [&'static str] = &[
        "python3.11",
        "python3.12",
        "python3.13",
        "python3.14",
        "nodejs20.x",
        "nodejs22.x",
        "nodejs24.x",
        "provided.al2023",
        "provided.al2",
    ];

    pub fn parse(id: &str) -> Option<Runtime> {
        if !Self::SUPPORTED.contains(&id) {
            return None;
        }
        Some(if id.starts_with("python") {
            Runtime::Python(id.to_string())
        } else if id.starts_with("nodejs") {
            Runtime::Node(id.to_string())
        } else {
            Runtime::Provided(id.to_string())
        })
    }

    pub fn id(&self) -> &str {
        match self {
            Runtime::Python(id) | Runtime::Node(id) | Runtime::Provided(id) => id,
        }
    }
}

impl Code {
    /// The runtime identifier Lambda would report (`provided.al2023` for a binary).
    pub fn runtime_id(&self) -> &str {
        match self {
            Code::Binary(_) => "provided.al2023",
            Code::Package { runtime, .. } => runtime.id(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// The event's key under `Events`.
    pub name: String,
    pub expression: Schedule,
    pub enabled: bool,
    /// `Input`: the event JSON the target receives; None = EventBridge's scheduled event.
    pub input: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `rate(5 minutes)`
    Rate(Duration),
    /// `cron(...)`: kept as text; the local stack fires it only on demand.
    Cron(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketApiSpec {
    pub logical_id: String,
    pub name: String,
    /// The API id the local stack reports (`Ref` of the API).
    pub api_id: String,
    /// e.g. `$request.body.action`
    pub route_selection_expression: String,
    /// Route key -> the function's logical id (AWS_PROXY integrations to a Lambda).
    pub routes: BTreeMap<String, RouteSpec>,
    pub stages: BTreeMap<String, StageSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub route_key: String,
    pub function: String,
    /// A `$default` RouteResponse: the integration's `body` goes back to the client.
    pub responds: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    pub logical_id: String,
    pub name: String,
    pub default_throttle: Option<Throttle>,
    /// `RouteSettings` by route key.
    pub route_throttles: BTreeMap<String, Throttle>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Steady rate, requests per second.
    pub rate: f64,
    /// Bucket size.
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    /// `TableName`, else `{stack}-{LogicalId}`.
    pub name: String,
    pub arn: String,
    /// (attribute name, "S" | "N" | "B")
    pub attributes: Vec<(String, String)>,
    /// (attribute name, "HASH" | "RANGE")
    pub key_schema: Vec<(String, String)>,
    pub global_secondary_indexes: Vec<IndexSpec>,
    pub ttl_attribute: Option<String>,
    /// PAY_PER_REQUEST or PROVISIONED
    pub billing_mode: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    /// ALL | KEYS_ONLY | INCLUDE
    pub projection_type: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub logical_id: String,
    /// `QueueName`, else `{stack}-{LogicalId}`.
    pub name: String,
    pub url: String,
    pub arn: String,
    /// AWS default 30 s.
    pub visibility_timeout: Duration,
    /// AWS default 4 days.
    pub retention: Duration,
    pub fifo: bool,
}
