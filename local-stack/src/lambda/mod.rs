//! The Lambda service: functions from the template run as processes (release binaries,
//! Python and Node through AWS's runtime interface clients, `bootstrap`s) over the Runtime API, with cold starts, warm reuse, idle reaping, timeouts,
//! crashes, account and reserved concurrency, async invocation with retries and a DLQ,
//! and schedules.

pub mod api;
mod asyncq;
pub mod concurrency;
mod execute;
pub mod instance;
pub mod logs;
mod logs_read;
pub mod runtime_api;
pub mod runtimes;
mod schedule;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use crate::cloudwatch::MetricId;
use crate::edge::AwsError;
use crate::model::{FunctionSpec, Naming};
use crate::telemetry::Telemetry;
use concurrency::Concurrency;
use instance::{Instance, Registry};
use logs::LogStore;

pub use execute::InvokeResult;
pub(crate) use execute::epoch_ms;

/// Timings and limits of the emulated service. Defaults are AWS's documented values,
/// except where loopback has nothing to emulate (noted per field).
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    /// Account concurrency limit (AWS default 1,000 per region).
    pub account_concurrency: u32,
    /// Unreserved concurrency a reservation must leave (AWS: 100).
    pub min_unreserved: u32,
    /// Added to every cold start before the process starts, standing in for the sandbox
    /// start-up AWS does and loopback does not. Default 150 ms: an assumption (AWS does not
    /// publish it), chosen so local cold starts are not optimistic; set 0 to measure only
    /// process start and init.
    pub sandbox_startup_delay: Duration,
    /// Idle instances are reaped after this (not an AWS contract; ~10 min observed).
    pub idle_timeout: Duration,
    /// AWS caps init at 10 s.
    pub init_timeout: Duration,
    /// Async retries after function errors wait `base × attempt` (AWS: 1 min, then 2 min).
    pub async_retry_base: Duration,
    /// Throttled async events are requeued with exponential backoff from this (AWS: 1 s) …
    pub throttle_requeue_base: Duration,
    /// … up to this (AWS: 5 min).
    pub throttle_requeue_max: Duration,
    /// Where the functions' release binaries are.
    pub binaries_dir: PathBuf,
    /// `http://127.0.0.1:PORT` of the edge (every AWS API).
    pub edge_url: String,
    /// The runtime interface clients found for the functions (`runtimes::Runtimes::find`).
    pub runtimes: runtimes::Runtimes,
    /// Environment every instance gets under its own (endpoints, credentials, region).
    pub platform_env: BTreeMap<String, String>,
}

impl Default for LambdaSettings {
    fn default() -> Self {
        LambdaSettings {
            account_concurrency: 1_000,
            min_unreserved: 100,
            sandbox_startup_delay: Duration::from_millis(150),
            idle_timeout: Duration::from_secs(600),
            init_timeout: Duration::from_secs(10),
            async_retry_base: Duration::from_secs(60),
            throttle_requeue_base: Duration::from_secs(1),
            throttle_requeue_max: Duration::from_secs(300),
            binaries_dir: PathBuf::from("target/release"),
            edge_url: String::new(),
            runtimes: runtimes::Runtimes::default(),
            platform_env: BTreeMap::new(),
        }
    }
}

/// Where failed async events go: the stack wires this to its SQS service.
pub trait DeadLetterSink: Send + Sync {
    /// Sends `body` with string/number attributes `(name, data type, value)` to the queue
    /// with this logical id.
    fn send(
        &self,
        queue: &str,
        body: String,
        attributes: Vec<(String, String, String)>,
    ) -> Result<(), String>;
}

pub(crate) struct Function {
    spec: Mutex<FunctionSpec>,
    generation: AtomicU64,
    idle: Mutex<Vec<Arc<Instance>>>,
    async_tx: mpsc::UnboundedSender<asyncq::AsyncEvent>,
    last_modified: Mutex<String>,
}

impl Function {
    pub(crate) fn spec(&self) -> FunctionSpec {
        self.spec.lock().expect("spec lock").clone()
    }
}

pub struct LambdaService {
    settings: LambdaSettings,
    naming: Naming,
    functions: HashMap<String, Arc<Function>>,
    pub concurrency: Arc<Concurrency>,
    pub registry: Arc<Registry>,
    pub logs: Arc<LogStore>,
    telemetry: Arc<Telemetry>,
    dead_letters: Arc<dyn DeadLetterSink>,
    shutdown: watch::Sender<bool>,
    /// FIS faults in effect; the stack's FIS service adds and ends them.
    pub fis_faults: Arc<crate::fis::Faults>,
}

impl LambdaService {
    /// Builds the service and starts its background work (async queues, schedules, the
    /// idle reaper). Reservations from the template are validated like PutFunctionConcurrency.
    pub fn start(
        functions: impl IntoIterator<Item = FunctionSpec>,
        naming: Naming,
        settings: LambdaSettings,
        telemetry: Arc<Telemetry>,
        dead_letters: Arc<dyn DeadLetterSink>,
    ) -> Result<Arc<Self>, AwsError> {
        let concurrency = Concurrency::new(settings.account_concurrency, settings.min_unreserved);
        let mut table = HashMap::new();
        let mut receivers = Vec::new();
        for spec in functions {
            concurrency.set_reserved(&spec.name, spec.reserved_concurrency)?;
            let (async_tx, async_rx) = mpsc::unbounded_channel();
            receivers.push((spec.name.clone(), async_rx));
            table.insert(
                spec.name.clone(),
                Arc::new(Function {
                    spec: Mutex::new(spec),
                    generation: AtomicU64::new(0),
                    idle: Mutex::default(),
                    async_tx,
                    last_modified: Mutex::new(now_iso()),
                }),
            );
        }
        let logs = Arc::new(LogStore::new(&naming.region, &naming.account_id));
        let service = Arc::new(LambdaService {
            settings,
            naming,
            functions: table,
            concurrency,
            registry: Arc::default(),
            logs,
            telemetry,
            dead_letters,
            shutdown: watch::channel(false).0,
            fis_faults: Arc::default(),
        });
        for (name, rx) in receivers {
            tokio::spawn(asyncq::dispatch(service.clone(), name, rx));
        }
        schedule::start_all(&service);
        tokio::spawn(reap_idle(service.clone()));
        tokio::spawn(sample_concurrency(service.clone()));
        Ok(service)
    }

    /// Finds a function by name, full ARN or partial ARN (`function:name`), as Invoke does.
    pub(crate) fn function(&self, id: &str) -> Result<(String, Arc<Function>), AwsError> {
        // `arn:aws:lambda:r:a:function:name[:qualifier]` or `function:name`: the name follows
        // "function"; `name:qualifier`: it comes first (qualifiers are ignored, $LATEST only).
        let parts: Vec<&str> = id.split(':').collect();
        let name = parts
            .iter()
            .position(|p| *p == "function")
            .and_then(|i| parts.get(i + 1))
            .copied()
            .unwrap_or(parts[0]);
        self.functions
            .get(name)
            .map(|f| (name.to_string(), f.clone()))
            .ok_or_else(|| {
                AwsError::new(
                    404,
                    "ResourceNotFoundException",
                    format!(
                        "Function not found: arn:aws:lambda:{}:{}:function:{name}",
                        self.naming.region, self.naming.account_id
                    ),
                )
                .with_field("Type", "User")
            })
    }

    /// The physical name of the function with this logical id.
    pub fn logical_to_name(&self, logical_id: &str) -> Option<String> {
        self.functions
            .iter()
            .find(|(_, f)| f.spec.lock().expect("spec lock").logical_id == logical_id)
            .map(|(name, _)| name.clone())
    }

    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.functions.keys().cloned().collect();
        names.sort();
        names
    }

    /// Synchronous invoke (RequestResponse): throttles come back as 429 errors.
    ///
    /// The invocation runs in its own task: a caller that stops waiting (an integration
    /// timeout, a dropped HTTP request) does not cancel it, as on AWS, so the instance and
    /// the concurrency slot are settled when the function really finishes.
    pub async fn invoke(
        self: &Arc<Self>,
        function: &str,
        payload: Bytes,
    ) -> Result<InvokeResult, AwsError> {
        let (name, f) = self.function(function)?;
        if payload.len() > 6 * 1024 * 1024 {
            return Err(AwsError::new(
                413,
                "RequestTooLargeException",
                format!(
                    "Request must be smaller than 6291456 bytes for the InvokeFunction operation; it was {}",
                    payload.len()
                ),
            ));
        }
        let slot = match self.concurrency.try_acquire(&name) {
            Ok(slot) => slot,
            Err(reason) => {
                self.telemetry.function(&name, |m| m.throttles += 1);
                self.telemetry
                    .lambda_metric(&name, "Throttles", 1.0, "Count");
                return Err(reason.to_error());
            }
        };
        let service = self.clone();
        let task = tokio::spawn(async move {
            let result = service.execute(&name, &f, payload, None).await;
            drop(slot);
            service.note_concurrency(&name);
            result
        });
        task.await.map_err(|e| {
            AwsError::new(
                500,
                "ServiceException",
                format!("the invocation task failed: {e}"),
            )
        })
    }

    /// Asynchronous invoke (Event): queued, 202.
    pub fn invoke_async(&self, function: &str, payload: Bytes) -> Result<String, AwsError> {
        let (name, f) = self.function(function)?;
        if payload.len() > 1024 * 1024 {
            return Err(AwsError::new(
                413,
                "RequestTooLargeException",
                format!(
                    "Request must be smaller than 1048576 bytes for the InvokeAsync operation; it was {}",
                    payload.len()
                ),
            ));
        }
        let event = asyncq::AsyncEvent::new(payload);
        let request_id = event.request_id.clone();
        self.telemetry.function(&name, |m| m.async_enqueued += 1);
        self.telemetry
            .lambda_metric(&name, "AsyncEventsReceived", 1.0, "Count");
        f.async_tx
            .send(event)
            .map_err(|_| AwsError::new(500, "ServiceException", "the async queue is closed"))?;
        Ok(request_id)
    }

    fn note_concurrency(&self, name: &str) {
        // Read inside the telemetry lock, so two finishing calls cannot leave a stale figure.
        self.telemetry.function(name, |m| {
            let running = self.concurrency.running(name);
            m.concurrent_executions = running;
            m.max_concurrent_executions = m.max_concurrent_executions.max(running);
        });
        // Gauges: a sample at every change, so Maximum sees every peak (AWS samples them).
        let (total, unreserved) = self.concurrency.totals();
        let per_function = MetricId::new(
            "AWS/Lambda",
            "ConcurrentExecutions",
            &[("FunctionName", name)],
        );
        let m = &self.telemetry.metrics;
        m.put(per_function, self.concurrency.running(name) as f64, "Count");
        self.telemetry
            .account_metric("ConcurrentExecutions", total as f64, "Count");
        self.telemetry
            .account_metric("UnreservedConcurrentExecutions", unreserved as f64, "Count");
    }

    /// Stops background work and kills every instance, waiting for them to exit.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let all = self.registry.all();
        for i in &all {
            i.terminate(&self.registry);
        }
        for i in &all {
            i.wait_exit(Duration::from_secs(5)).await;
        }
        for f in self.functions.values() {
            f.idle.lock().expect("idle lock").clear();
        }
    }

    pub fn settings(&self) -> &LambdaSettings {
        &self.settings
    }

    pub fn naming(&self) -> &Naming {
        &self.naming
    }
}

/// Kills instances idle longer than the idle timeout.
async fn reap_idle(service: Arc<LambdaService>) {
    let mut shutdown = service.shutdown.subscribe();
    let period = (service.settings.idle_timeout / 10)
        .clamp(Duration::from_millis(50), Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
        for f in service.functions.values() {
            let expired: Vec<Arc<Instance>> = {
                let mut idle = f.idle.lock().expect("idle lock");
                let (old, keep) = idle
                    .drain(..)
                    .partition(|i| i.idle_for() >= service.settings.idle_timeout || !i.is_alive());
                *idle = keep;
                old
            };
            for i in expired {
                tracing::debug!(function = %i.function, instance = %i.id, "reaping idle instance");
                i.terminate(&service.registry);
            }
        }
    }
}

/// One concurrency sample a second for the telemetry series.
async fn sample_concurrency(service: Arc<LambdaService>) {
    let mut shutdown = service.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => service.telemetry.sample(),
            _ = shutdown.changed() => return,
        }
    }
}

pub(crate) fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

pub(crate) fn generation(f: &Function) -> u64 {
    f.generation.load(Ordering::SeqCst)
}
