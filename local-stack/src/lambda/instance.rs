//! One Lambda instance: a child process (a release binary, a runtime interface client with
//! the function's package, or a `bootstrap`), talking to us over a Runtime API of its own
//! (`runtime_api::serve`), so every event goes to exactly the instance we chose.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::logs::LogStore;

/// An event on its way to an instance.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// Absolute epoch milliseconds, as `Lambda-Runtime-Deadline-Ms` carries it.
    pub deadline_ms: u64,
    pub function_arn: String,
}

/// What the runtime posted back for an invocation.
#[derive(Debug, Clone)]
pub enum Answer {
    Response(Bytes),
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Answered(Answer),
    /// The deadline passed; the instance was killed.
    TimedOut,
    /// The process died mid-invocation.
    Crashed(String),
}

#[derive(Debug, Clone, PartialEq)]
enum InitState {
    Starting,
    Ready,
    Failed(String),
}

pub struct Instance {
    pub id: String,
    /// `YYYY/MM/DD/[$LATEST]<id>`: its CloudWatch Logs stream, named as Lambda names them.
    pub log_stream: String,
    pub function: String,
    pub generation: u64,
    pid: OnceLock<u32>,
    events_tx: mpsc::UnboundedSender<Invocation>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init: watch::Sender<InitState>,
    exit_tx: watch::Sender<Option<String>>,
    kill: Arc<Notify>,
    last_used: Mutex<Instant>,
    /// FIS faults in effect, drawn per event by the Runtime API.
    pub faults: Arc<crate::fis::Faults>,
    /// Answers FIS replaces once the function has answered (faults without preventExecution).
    replacements: Mutex<HashMap<String, crate::fis::faults::Replacement>>,
}

/// Instances by id, for the Runtime API to find.
#[derive(Default)]
pub struct Registry {
    instances: Mutex<HashMap<String, Arc<Instance>>>,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<Arc<Instance>> {
        self.instances
            .lock()
            .expect("registry lock")
            .get(id)
            .cloned()
    }

    fn insert(&self, instance: Arc<Instance>) {
        self.instances
            .lock()
            .expect("registry lock")
            .insert(instance.id.clone(), instance);
    }

    pub fn remove(&self, id: &str) {
        self.instances.lock().expect("registry lock").remove(id);
    }

    pub fn all(&self) -> Vec<Arc<Instance>> {
        self.instances
            .lock()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }
}

/// How to start one instance.
pub struct Launch<'a> {
    pub started: super::runtimes::Started,
    pub function: &'a str,
    pub generation: u64,
    pub env: Vec<(String, String)>,
    pub sandbox_delay: Duration,
    pub init_timeout: Duration,
    /// For the runtime version ARN in INIT_START.
    pub region: &'a str,
    /// The declared runtime, e.g. `python3.12`.
    pub runtime: &'a str,
    pub faults: Arc<crate::fis::Faults>,
}

/// The runtime version Lambda would report, e.g. `python:3.12.v100` for `python3.12`
/// [U: a fixed label; the process runs on this machine's interpreter, not a managed
/// runtime's release].
fn runtime_version(runtime: &str) -> String {
    let (family, version) = match runtime.find(|c: char| c.is_ascii_digit() || c == '.') {
        Some(i) => runtime.split_at(i),
        None => (runtime, ""),
    };
    let version = version.trim_start_matches('.').trim_end_matches(".x");
    format!("{family}:{version}.v100")
}

/// `INIT_START Runtime Version: …\tRuntime Version ARN: …`, once per instance.
fn init_start_line(region: &str, runtime: &str) -> String {
    use md5::{Digest, Md5};
    let version = runtime_version(runtime);
    // A stable 64-hex-digit id, the length of AWS's runtime hashes.
    let hash = hex::encode(Md5::digest(version.as_bytes())).repeat(2);
    format!(
        "INIT_START Runtime Version: {version}\tRuntime Version ARN: arn:aws:lambda:{region}::runtime:{hash}"
    )
}

impl Instance {
    /// Starts the process and waits until it polls for its first event (init done).
    /// Returns the init duration, which includes the simulated sandbox start-up delay.
    pub async fn start(
        launch: Launch<'_>,
        registry: &Arc<Registry>,
        logs: &Arc<LogStore>,
    ) -> Result<(Arc<Instance>, Duration), String> {
        let started = Instant::now();
        tokio::time::sleep(launch.sandbox_delay).await;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let instance = Arc::new(Instance {
            log_stream: super::logs::stream_name(&id),
            id,
            function: launch.function.to_string(),
            generation: launch.generation,
            pid: OnceLock::new(),
            events_tx,
            events_rx: tokio::sync::Mutex::new(events_rx),
            pending: Mutex::default(),
            init: watch::channel(InitState::Starting).0,
            exit_tx: watch::channel(None).0,
            kill: Arc::new(Notify::new()),
            last_used: Mutex::new(Instant::now()),
            faults: launch.faults.clone(),
            replacements: Mutex::default(),
        });
        // Registered before the process exists, so its first poll always finds it.
        registry.insert(instance.clone());
        logs.append(
            launch.function,
            &instance.log_stream,
            init_start_line(launch.region, launch.runtime),
        );
        let spawned = match super::runtime_api::serve(instance.clone()).await {
            Ok(api) => instance.spawn(&launch, &api, logs),
            Err(e) => Err(e),
        };
        if let Err(e) = spawned {
            instance.exit_tx.send_replace(Some(e.clone()));
            registry.remove(&instance.id);
            return Err(e);
        }
        if let Err(e) = instance.wait_ready(launch.init_timeout).await {
            instance.terminate(registry);
            return Err(e);
        }
        Ok((instance, started.elapsed()))
    }

    fn spawn(
        &self,
        launch: &Launch<'_>,
        runtime_api: &str,
        logs: &Arc<LogStore>,
    ) -> Result<(), String> {
        let started = &launch.started;
        let mut cmd = Command::new(&started.program);
        cmd.args(&started.args)
            .current_dir(&started.task_root)
            .env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.envs(launch.env.iter().map(|(k, v)| (k, v)))
            .envs(started.env.iter().map(|(k, v)| (k, v)))
            // Reserved variables Lambda sets per environment; a function cannot override them.
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("LAMBDA_TASK_ROOT", &started.task_root)
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &self.log_stream)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", started.program.display()))?;
        if let Some(pid) = child.id() {
            let _ = self.pid.set(pid);
        }
        let out: Vec<Box<dyn tokio::io::AsyncRead + Send + Unpin>> = vec![
            Box::new(child.stdout.take().expect("stdout is piped")),
            Box::new(child.stderr.take().expect("stderr is piped")),
        ];
        for stream in out {
            let (logs, function, stream_name) =
                (logs.clone(), self.function.clone(), self.log_stream.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.append(&function, &stream_name, line);
                }
            });
        }
        let (killer, exit_tx) = (self.kill.clone(), self.exit_tx.clone());
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = killer.notified() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let text = match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            };
            exit_tx.send_replace(Some(text));
        });
        Ok(())
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let mut init = self.init.subscribe();
        let mut exited = self.exit_tx.subscribe();
        let wait = async {
            loop {
                match &*init.borrow_and_update() {
                    InitState::Ready => return Ok(()),
                    InitState::Failed(e) => return Err(format!("Runtime.InitError: {e}")),
                    InitState::Starting => {}
                }
                if let Some(status) = exited.borrow_and_update().clone() {
                    return Err(format!("Runtime exited during init: {status}"));
                }
                tokio::select! {
                    _ = init.changed() => {}
                    _ = exited.changed() => {}
                }
            }
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "init did not finish within {:.2} s",
                limit.as_secs_f64()
            )),
        }
    }

    /// Runs one invocation: hands the event to the instance's `/next` and waits for its
    /// answer, the deadline, or the process's death.
    pub async fn invoke(&self, invocation: Invocation, timeout: Duration) -> Outcome {
        let (tx, rx) = oneshot::channel();
        let request_id = invocation.request_id.clone();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(request_id.clone(), tx);
        self.touch();
        let mut exited = self.exit_tx.subscribe();
        if self.events_tx.send(invocation).is_err() {
            return Outcome::Crashed("the instance is gone".into());
        }
        let outcome = tokio::select! {
            answer = rx => match answer {
                Ok(a) => Outcome::Answered(a),
                Err(_) => Outcome::Crashed("the runtime dropped the request".into()),
            },
            _ = tokio::time::sleep(timeout) => Outcome::TimedOut,
            status = async {
                loop {
                    if let Some(s) = exited.borrow_and_update().clone() {
                        return s;
                    }
                    if exited.changed().await.is_err() {
                        return "unknown".to_string();
                    }
                }
            } => Outcome::Crashed(status),
        };
        self.pending
            .lock()
            .expect("pending lock")
            .remove(&request_id);
        self.touch();
        outcome
    }

    /// The Runtime API's `next`: waits for this instance's next event. The first call
    /// marks init as done.
    pub async fn next_event(&self) -> Option<Invocation> {
        self.init.send_if_modified(|s| {
            if *s == InitState::Starting {
                *s = InitState::Ready;
                true
            } else {
                false
            }
        });
        self.events_rx.lock().await.recv().await
    }

    /// The Runtime API's `response` / `error`; false when no such invocation is pending.
    pub fn answer(&self, request_id: &str, answer: Answer) -> bool {
        match self
            .pending
            .lock()
            .expect("pending lock")
            .remove(request_id)
        {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// Has the function's own answer to `request_id` replaced by `r` when it comes.
    pub fn replace_answer(&self, request_id: &str, r: crate::fis::faults::Replacement) {
        self.replacements
            .lock()
            .expect("replacements lock")
            .insert(request_id.to_string(), r);
    }

    /// The answer FIS put in place of the function's, if any (taken once).
    pub fn take_replacement(&self, request_id: &str) -> Option<crate::fis::faults::Replacement> {
        // An instance's own lock: its one runtime answers one event at a time.
        self.replacements
            .lock()
            .expect("replacements lock")
            .remove(request_id)
    }

    /// The Runtime API's `init/error`.
    pub fn init_failed(&self, message: String) {
        self.init.send_replace(InitState::Failed(message));
    }

    /// Changes to `Some(status)` when the process has exited.
    pub fn exited(&self) -> watch::Receiver<Option<String>> {
        self.exit_tx.subscribe()
    }

    pub fn is_alive(&self) -> bool {
        self.exit_tx.borrow().is_none()
    }

    pub fn idle_for(&self) -> Duration {
        self.last_used.lock().expect("last-used lock").elapsed()
    }

    fn touch(&self) {
        *self.last_used.lock().expect("last-used lock") = Instant::now();
    }

    /// Peak resident memory (VmHWM) in MB, for the REPORT line.
    pub fn max_memory_mb(&self) -> u64 {
        let Some(pid) = self.pid.get() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map(|kb| kb.div_ceil(1024))
            .unwrap_or(0)
    }

    /// Kills the process and forgets the instance.
    pub fn terminate(&self, registry: &Registry) {
        self.kill.notify_one();
        registry.remove(&self.id);
    }

    /// Waits until the process has exited (after `terminate`), at most `limit`.
    pub async fn wait_exit(&self, limit: Duration) {
        let mut exited = self.exit_tx.subscribe();
        let _ = tokio::time::timeout(limit, async {
            while exited.borrow_and_update().is_none() {
                if exited.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }
}

/// The child gets SIGKILL if the stack's process dies, so no function outlives it.
pub(crate) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and only changes this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
