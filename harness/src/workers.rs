//! Runs over several worker processes: each `dynamowave worker` gets an [`Assignment`] on
//! stdin (the scenario, the target, its shard, the run id, a common start time), runs its
//! share with the same executor, and prints a [`WorkerResult`]; the coordinator merges them
//! into one record. The protocol is JSON over pipes here and could be over any transport
//! between machines (the start time is wall-clock epoch ms).

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::engine::record::Record;
use crate::engine::wire::{Assignment, WorkerResult};
use crate::engine::{self, RunOutput, Shard, Target};
use crate::error::HarnessError;
use crate::scenario::{self, Plan};

/// Time for every worker to start before the schedule begins.
pub const START_DELAY: Duration = Duration::from_secs(2);

fn phases_us(plan: &Plan) -> Vec<(u64, u64, String)> {
    plan.phases
        .iter()
        .map(|p| {
            (
                p.start.as_micros() as u64,
                (p.start + p.duration).as_micros() as u64,
                p.name.clone(),
            )
        })
        .collect()
}

/// The coordinator: starts `count` workers, waits for them, merges their results.
pub async fn run_distributed(
    plan: &Plan,
    websocket_url: &str,
    count: u32,
) -> Result<RunOutput, HarnessError> {
    let workers = Workers::start(plan, websocket_url, count, rand::random()).await?;
    workers.finish(plan).await
}

/// Workers started and running their shares: their process ids are there to watch (the
/// idle bench reads their memory) until [`Workers::finish`] collects the results.
pub struct Workers {
    pub run_id: u32,
    /// When the schedule starts, for every worker.
    pub start: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    children: Vec<(u32, tokio::process::Child)>,
}

impl Workers {
    /// Starts `count` workers on `plan` (read from its file by each), the schedule beginning
    /// [`START_DELAY`] from now.
    pub async fn start(
        plan: &Plan,
        websocket_url: &str,
        count: u32,
        run_id: u32,
    ) -> Result<Workers, HarnessError> {
        let exe = std::env::current_exe().map_err(|e| HarnessError::Io {
            context: "finding dynamowave".into(),
            source: e,
        })?;
        let start_epoch_ms = chrono::Utc::now().timestamp_millis() + START_DELAY.as_millis() as i64;
        let started_at =
            chrono::Utc::now() + chrono::Duration::milliseconds(START_DELAY.as_millis() as i64);
        let start = Instant::now() + START_DELAY;
        let mut children = Vec::new();
        for index in 0..count {
            let assignment = Assignment {
                scenario: plan.source.clone(),
                websocket_url: websocket_url.to_string(),
                shard: Shard { index, count },
                run_id,
                start_epoch_ms,
            };
            let mut command = tokio::process::Command::new(&exe);
            command
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            die_with_parent(&mut command);
            let mut child = command.spawn().map_err(|e| HarnessError::Io {
                context: format!("starting worker {index}"),
                source: e,
            })?;
            let input = serde_json::to_vec(&assignment).expect("an assignment serialises");
            let mut stdin = child.stdin.take().expect("stdin is piped");
            stdin
                .write_all(&input)
                .await
                .map_err(|e| HarnessError::Io {
                    context: format!("writing to worker {index}"),
                    source: e,
                })?;
            drop(stdin);
            children.push((index, child));
        }
        Ok(Workers {
            run_id,
            start,
            started_at,
            children,
        })
    }

    /// The workers' process ids, in shard order.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(|(_, c)| c.id()).collect()
    }

    /// Waits for every worker's result and merges them into one run.
    pub async fn finish(self, plan: &Plan) -> Result<RunOutput, HarnessError> {
        let limit = START_DELAY + plan.duration() + plan.drain + Duration::from_secs(60);
        let mut record = Record::new(plan.deadline.as_micros() as u64, phases_us(plan));
        let (mut scheduled, mut elapsed_ms, mut aborted) = (0, 0, None);
        for (index, child) in self.children {
            let out = tokio::time::timeout(limit, child.wait_with_output())
                .await
                .map_err(|_| {
                    HarnessError::Usage(format!(
                        "worker {index} did not finish within {} s",
                        limit.as_secs()
                    ))
                })?
                .map_err(|e| HarnessError::Io {
                    context: format!("waiting for worker {index}"),
                    source: e,
                })?;
            if !out.status.success() {
                return Err(HarnessError::Usage(format!(
                    "worker {index} failed ({})",
                    out.status
                )));
            }
            let result: WorkerResult = serde_json::from_slice(&out.stdout).map_err(|e| {
                HarnessError::Usage(format!("worker {index} sent an unreadable result: {e}"))
            })?;
            record
                .merge(&result)
                .map_err(|e| HarnessError::Usage(format!("worker {index}: {e}")))?;
            scheduled += result.messages_scheduled;
            elapsed_ms = elapsed_ms.max(result.elapsed_ms);
            aborted = aborted.or(result.aborted);
        }
        Ok(RunOutput {
            run_id: self.run_id,
            started_at: self.started_at,
            elapsed: Duration::from_millis(elapsed_ms),
            clients_attempted: record.clients.len() as u64,
            messages_scheduled: scheduled,
            record,
            aborted,
        })
    }
}

/// A child that dies when its parent does (PR_SET_PDEATHSIG), even if the parent is killed
/// before it can stop it.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: prctl is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// `dynamowave worker`: one share of a run, assignment on stdin, result on stdout.
pub async fn worker() -> Result<i32, HarnessError> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| HarnessError::Io {
            context: "reading the assignment".into(),
            source: e,
        })?;
    let a: Assignment = serde_json::from_slice(&input)
        .map_err(|e| HarnessError::Usage(format!("the worker assignment is not valid: {e}")))?;
    if a.shard.count == 0 || a.shard.index >= a.shard.count {
        return Err(HarnessError::Usage(format!(
            "shard {} of {} is not a valid share",
            a.shard.index, a.shard.count
        )));
    }
    let plan = scenario::load(&a.scenario)?;
    crate::limits::ensure_open_files(&plan, 1, u64::from(a.shard.count))?;
    let wait_ms = (a.start_epoch_ms - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    let options = engine::Options {
        shard: a.shard,
        run_id: Some(a.run_id),
        start: Some(Instant::now() + Duration::from_millis(wait_ms)),
        drops: None,
    };
    let target = Target {
        websocket_url: a.websocket_url.clone(),
        dlq: None,
    };
    let mut quiet = |_: &engine::record::Interval, _: &Record| None;
    let output = engine::execute(&plan, &target, options, &mut quiet).await;
    let result = output.record.to_wire(
        a.shard,
        output.messages_scheduled,
        output.elapsed.as_millis() as u64,
        output.aborted,
    );
    println!(
        "{}",
        serde_json::to_string(&result).expect("a result serialises")
    );
    Ok(0)
}
