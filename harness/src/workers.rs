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
const START_DELAY: Duration = Duration::from_secs(2);

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
    let exe = std::env::current_exe().map_err(|e| HarnessError::Io {
        context: "finding dynamowave".into(),
        source: e,
    })?;
    let run_id: u32 = rand::random();
    let start_epoch_ms = chrono::Utc::now().timestamp_millis() + START_DELAY.as_millis() as i64;
    let started_at =
        chrono::Utc::now() + chrono::Duration::milliseconds(START_DELAY.as_millis() as i64);
    let began = Instant::now();
    let mut children = Vec::new();
    for index in 0..count {
        let assignment = Assignment {
            scenario: plan.source.clone(),
            websocket_url: websocket_url.to_string(),
            shard: Shard { index, count },
            run_id,
            start_epoch_ms,
        };
        let mut child = tokio::process::Command::new(&exe)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::Io {
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
    let limit = START_DELAY + plan.duration() + plan.drain + Duration::from_secs(60);
    let mut record = Record::new(plan.deadline.as_micros() as u64, phases_us(plan));
    let (mut scheduled, mut elapsed_ms, mut aborted) = (0, 0, None);
    for (index, child) in children {
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
    let _ = began;
    Ok(RunOutput {
        run_id,
        started_at,
        elapsed: Duration::from_millis(elapsed_ms),
        clients_attempted: record.clients.len() as u64,
        messages_scheduled: scheduled,
        record,
        aborted,
    })
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
