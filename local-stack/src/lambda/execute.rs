//! Running one invocation on an instance: pick a warm one or cold-start a new one, deliver
//! the event, turn the outcome into Invoke's result, and log START/END/REPORT lines.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::json;

use super::instance::{Answer, Instance, Invocation, Launch, Outcome};
use super::{Function, LambdaService, generation};

/// What Invoke returns: the payload, and `X-Amz-Function-Error` when the function failed.
#[derive(Debug, Clone)]
pub struct InvokeResult {
    pub request_id: String,
    pub payload: Bytes,
    pub function_error: Option<String>,
    /// The error's type for callers that retry on it (async) and for DLQ attributes.
    pub error_message: Option<String>,
}

impl LambdaService {
    pub(crate) async fn execute(
        &self,
        name: &str,
        f: &Arc<Function>,
        payload: Bytes,
        request_id: Option<String>,
    ) -> InvokeResult {
        let spec = f.spec();
        let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.telemetry.function(name, |m| m.invocations += 1);
        self.telemetry
            .lambda_metric(name, "Invocations", 1.0, "Count");
        self.note_concurrency(name);

        let tried = Instant::now();
        let (instance, init) = match self.warm_instance(f) {
            Some(i) => (i, None),
            None => match self.cold_start(name, f).await {
                Ok((i, init)) => (i, Some(init)),
                Err(e) => {
                    self.count_error(name, |m| m.errors += 1);
                    let message = format!("RequestId: {request_id} Error: {e}");
                    let stream =
                        super::logs::stream_name(&uuid::Uuid::new_v4().simple().to_string());
                    // As Lambda logs an invocation whose environment failed to start: its
                    // START, the error, END and a REPORT with the status, so every
                    // invocation has its REPORT line.
                    let took = ms(tried.elapsed());
                    for line in [
                        format!("START RequestId: {request_id} Version: $LATEST"),
                        message.clone(),
                        format!("END RequestId: {request_id}"),
                        format!(
                            "REPORT RequestId: {request_id}\tDuration: {took:.2} ms\tBilled Duration: {:.0} ms\tMemory Size: {} MB\tMax Memory Used: 0 MB\tStatus: error\tError Type: Runtime.ExitError\t",
                            took.ceil().max(1.0),
                            spec.memory_mb
                        ),
                    ] {
                        self.logs.append(name, &stream, line);
                    }
                    return failure(request_id, "Runtime.ExitError", message);
                }
            },
        };

        let started = Instant::now();
        let deadline_ms = epoch_ms() + spec.timeout.as_millis() as u64;
        self.logs.append(
            name,
            &instance.log_stream,
            format!("START RequestId: {request_id} Version: $LATEST"),
        );
        let outcome = instance
            .invoke(
                Invocation {
                    request_id: request_id.clone(),
                    payload,
                    deadline_ms,
                    function_arn: spec.arn.clone(),
                },
                spec.timeout,
            )
            .await;
        let duration = started.elapsed();
        self.report(name, &instance, &request_id, duration, init, spec.memory_mb);
        self.telemetry
            .function(name, |m| m.duration_ms_total += ms(duration));
        self.telemetry
            .lambda_metric(name, "Duration", ms(duration), "Milliseconds");

        let keep = match &outcome {
            Outcome::Answered(_) => instance.is_alive(),
            Outcome::TimedOut | Outcome::Crashed(_) => false,
        };
        if keep && instance.generation == generation(f) {
            f.idle.lock().expect("idle lock").push(instance.clone());
        } else {
            instance.terminate(&self.registry);
        }

        match outcome {
            Outcome::Answered(Answer::Response(body)) => InvokeResult {
                request_id,
                payload: body,
                function_error: None,
                error_message: None,
            },
            Outcome::Answered(Answer::Error { body, .. }) => {
                self.count_error(name, |m| m.errors += 1);
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                InvokeResult {
                    request_id,
                    payload: body,
                    function_error: Some("Unhandled".into()),
                    error_message: Some(message),
                }
            }
            Outcome::TimedOut => {
                self.count_error(name, |m| {
                    m.errors += 1;
                    m.timeouts += 1;
                });
                let message = format!(
                    "{} {request_id} Task timed out after {:.2} seconds",
                    super::now_iso(),
                    spec.timeout.as_secs_f64()
                );
                self.logs
                    .append(name, &instance.log_stream, message.clone());
                failure(request_id, "Sandbox.Timedout", message)
            }
            Outcome::Crashed(status) => {
                self.count_error(name, |m| {
                    m.errors += 1;
                    m.crashes += 1;
                });
                let message =
                    format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
                self.logs
                    .append(name, &instance.log_stream, message.clone());
                failure(request_id, "Runtime.ExitError", message)
            }
        }
    }

    /// A function error: the telemetry counters `f` updates, and AWS/Lambda `Errors`.
    fn count_error(&self, name: &str, f: impl FnOnce(&mut crate::telemetry::FunctionMetrics)) {
        self.telemetry.function(name, f);
        self.telemetry.lambda_metric(name, "Errors", 1.0, "Count");
    }

    /// The most recently used live instance of the current configuration (AWS reuses warm
    /// environments; stale ones from before a configuration change are retired).
    fn warm_instance(&self, f: &Function) -> Option<Arc<Instance>> {
        let current = generation(f);
        let mut idle = f.idle.lock().expect("idle lock");
        while let Some(i) = idle.pop() {
            if i.is_alive() && i.generation == current {
                return Some(i);
            }
            i.terminate(&self.registry);
        }
        None
    }

    async fn cold_start(
        &self,
        name: &str,
        f: &Function,
    ) -> Result<(Arc<Instance>, Duration), String> {
        // The generation first: a configuration update in between then makes this instance
        // stale (retired after use) rather than a new-generation instance with the old config.
        let generation = generation(f);
        let spec = f.spec();
        let started = self
            .settings
            .runtimes
            .command(&spec.code, &self.settings.binaries_dir)?;
        let mut env: Vec<(String, String)> = self
            .settings
            .platform_env
            .iter()
            .chain(spec.environment.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Reserved variables Lambda sets itself; a function cannot override them (the
        // runtime's own, the task root and the Runtime API come with `started`).
        env.extend([
            ("AWS_LAMBDA_FUNCTION_NAME".to_string(), name.to_string()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                spec.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                super::logs::group_name(name),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            ("AWS_REGION".into(), self.naming.region.clone()),
            ("AWS_DEFAULT_REGION".into(), self.naming.region.clone()),
            ("AWS_EXECUTION_ENV".into(), "AWS_Lambda_rapid".into()),
            ("LANG".into(), "en_US.UTF-8".into()),
            ("TZ".into(), ":UTC".into()),
        ]);
        let launch = Launch {
            started,
            function: name,
            generation,
            env,
            sandbox_delay: self.settings.sandbox_startup_delay,
            init_timeout: self.settings.init_timeout,
            region: &self.naming.region,
            runtime: spec.code.runtime_id(),
            faults: self.fis_faults.clone(),
        };
        let (instance, init) = Instance::start(launch, &self.registry, &self.logs).await?;
        self.telemetry.function(name, |m| {
            m.cold_starts += 1;
            m.init_duration_ms_total += ms(init);
            m.init_duration_ms_max = m.init_duration_ms_max.max(ms(init));
        });
        Ok((instance, init))
    }

    fn report(
        &self,
        name: &str,
        instance: &Instance,
        request_id: &str,
        duration: Duration,
        init: Option<Duration>,
        memory_mb: u32,
    ) {
        self.logs.append(
            name,
            &instance.log_stream,
            format!("END RequestId: {request_id}"),
        );
        // OS-only runtimes are billed for init too, rounded up to the millisecond (D7).
        let billed = (ms(duration) + init.map_or(0.0, ms)).ceil().max(1.0);
        let mut line = format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {billed:.0} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {} MB\t",
            ms(duration),
            instance.max_memory_mb()
        );
        if let Some(init) = init {
            // Every field ends with a tab, the last one too, as Lambda writes it.
            line.push_str(&format!("Init Duration: {:.2} ms\t", ms(init)));
        }
        self.logs.append(name, &instance.log_stream, line);
    }
}

fn failure(request_id: String, error_type: &str, message: String) -> InvokeResult {
    InvokeResult {
        request_id,
        payload: Bytes::from(json!({"errorType": error_type, "errorMessage": message}).to_string()),
        function_error: Some("Unhandled".into()),
        error_message: Some(message),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
