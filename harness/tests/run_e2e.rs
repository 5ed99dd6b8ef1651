//! `dynamowave run` end to end, through `Cli::parse_from` + `run`, against (1) a small
//! broadcast server built here with a known delay and a known share of dropped messages,
//! and (2) the embedded local stack with the real reference functions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use dynamowave_harness::cli::{Cli, run};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A broadcast server: every text frame goes to every client (its sender too) after
/// `delay`; every `drop_every`-th frame is dropped instead and counted.
async fn broadcast_server(
    delay: Duration,
    drop_every: u64,
) -> (String, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicU64::new(0));
    let clients: Arc<Mutex<Vec<mpsc::UnboundedSender<String>>>> = Arc::default();
    let seen = Arc::new(AtomicU64::new(0));
    let d = dropped.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (clients, seen, dropped) = (clients.clone(), seen.clone(), d.clone());
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = mpsc::unbounded_channel::<String>();
                clients.lock().unwrap().push(tx);
                tokio::spawn(async move {
                    while let Some(text) = rx.recv().await {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(msg)) = stream.next().await {
                    let Message::Text(text) = msg else { continue };
                    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    if drop_every > 0 && n % drop_every == 0 {
                        dropped.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let clients = clients.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        for c in clients.lock().unwrap().iter() {
                            let _ = c.send(text.to_string());
                        }
                    });
                }
            });
        }
    });
    (url, dropped, task)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A scenario for a generic broadcast chat: 10 clients join, then chat; nobody leaves.
fn generic_scenario(dir: &Path, slo: &str) -> PathBuf {
    write(dir, "slo.yaml", slo);
    write(
        dir,
        "generic.yaml",
        r#"
name: generic
protocol:
  send: "{{payload}}"
  payload: frame
  whoami: null
  query: {}
message_size: 100
deadline: 2s
drain: 1s
slo: slo.yaml
phases:
  - {name: join, duration: 1s, arrival_rate: 30, max_clients: 10}
  - {name: chat, duration: 2s, message_rate: 25, spacing: constant}
"#,
    )
}

async fn run_cli(args: &[&str]) -> i32 {
    let cli =
        Cli::try_parse_from(std::iter::once("dynamowave").chain(args.iter().copied())).unwrap();
    run(cli).await.unwrap()
}

fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_delay_is_measured_from_the_intended_send_time() {
    let (url, _, server) = broadcast_server(Duration::from_millis(50), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = generic_scenario(dir.path(), "thresholds:\n  lost: [\"count==0\"]\n");
    let out = dir.path().join("report");
    let code = run_cli(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &url,
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    server.abort();
    assert_eq!(code, 0);
    let s = summary(&out);
    let lat = &s["latency"]["broadcast"];
    // Never below the injected delay (it is part of every latency), and not far above it:
    // the upper bound is loose on purpose, a busy machine must not fail this test.
    assert!(lat["minMs"].as_f64().unwrap() >= 50.0, "{lat}");
    assert!(
        lat["p50Ms"].as_f64().unwrap() >= 50.0 && lat["p50Ms"].as_f64().unwrap() < 500.0,
        "{lat}"
    );
    let a = &s["accounting"];
    assert_eq!(a["lost"], 0);
    assert!(a["expected"].as_u64().unwrap() >= 10 * 40, "{a}");
    assert_eq!(a["expected"], a["delivered"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_loss_is_reported_exactly_and_fails_the_slo_with_99() {
    let (url, dropped, server) = broadcast_server(Duration::ZERO, 7).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = generic_scenario(
        dir.path(),
        "thresholds:\n  lost: [\"count==0\"]\n  delivery_ratio: [\"rate>0.5\"]\n",
    );
    let out = dir.path().join("report");
    let code = run_cli(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &url,
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    server.abort();
    assert_eq!(code, 99, "an SLO that forbids loss fails");
    let s = summary(&out);
    let dropped = dropped.load(Ordering::SeqCst);
    assert!(dropped >= 5, "the server dropped some messages: {dropped}");
    let a = &s["accounting"];
    // Every dropped message was owed to all 10 clients.
    assert_eq!(a["lost"].as_u64().unwrap(), dropped * 10, "{a}");
    assert_eq!(
        a["expected"].as_u64().unwrap(),
        a["delivered"].as_u64().unwrap()
            + a["late"].as_u64().unwrap()
            + a["deadLettered"].as_u64().unwrap()
            + a["lost"].as_u64().unwrap()
    );
    let lost = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["metric"] == "lost")
        .unwrap();
    assert_eq!(lost["passed"], false);
    assert_eq!(lost["observed"].as_f64().unwrap(), (dropped * 10) as f64);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"1\"") && junit.contains("<failure"),
        "{junit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_scenario_passes_on_the_local_stack_with_everything_accounted() {
    let exe = std::env::current_exe().unwrap();
    let binaries = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        binaries.join("connect").is_file(),
        "reference binaries missing from {}",
        binaries.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/smoke.yaml");
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let code = run_cli(&[
        "run",
        scenario,
        "--out",
        out.to_str().unwrap(),
        "--template",
        template,
        "--binaries",
        binaries.to_str().unwrap(),
    ])
    .await;
    let s = summary(&out);
    assert_eq!(code, 0, "{:#}", s["thresholds"]);
    // The summary's schema, as consumers read it.
    assert_eq!(s["schema"], "dynamowave.summary/1");
    for key in [
        "run",
        "passed",
        "thresholds",
        "clients",
        "messages",
        "accounting",
        "latency",
        "otherFrames",
        "intervals",
    ] {
        assert!(s.get(key).is_some(), "summary.json lacks {key}");
    }
    for key in [
        "expected",
        "delivered",
        "late",
        "deadLettered",
        "lost",
        "duplicated",
        "unexpected",
        "departed",
    ] {
        assert!(s["accounting"][key].is_u64(), "accounting.{key}");
    }
    for key in [
        "count", "minMs", "meanMs", "p50Ms", "p90Ms", "p95Ms", "p99Ms", "p999Ms", "maxMs",
    ] {
        assert!(
            s["latency"]["broadcast"][key].is_number(),
            "latency.broadcast.{key}"
        );
    }
    assert_eq!(
        s["run"]["deadLettersRead"], true,
        "the DLQ was read through the SDK"
    );
    let a = &s["accounting"];
    assert!(a["expected"].as_u64().unwrap() > 100, "{a}");
    assert_eq!(a["lost"], 0);
    assert_eq!(a["expected"], a["delivered"], "{a}");
    assert_eq!(s["clients"]["failed"], 0);
    // The interval log is HdrHistogram's format.
    let hlog = std::fs::read_to_string(out.join("latency.hlog")).unwrap();
    assert!(
        hlog.contains("#[StartTime: ") && hlog.lines().any(|l| l.contains(",HISTF")),
        "{hlog}"
    );
    // The run's own report page and its charts, and the target's telemetry behind them.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("smoke"),
        "report.html"
    );
    assert!(out.join("latency-over-time.png").is_file());
    // The target's figures come from CloudWatch GetMetricData and the REPORT lines, and
    // agree with what the harness did: one SendMessage call per message written, one
    // $connect per client, complete data, one sample per second.
    let t = &s["telemetry"];
    assert!(
        t["source"]
            .as_str()
            .unwrap()
            .starts_with("CloudWatch at http://127.0.0.1:"),
        "{t}"
    );
    assert_eq!(t["periodS"], 1);
    assert_eq!(t["incomplete"], serde_json::json!([]), "{t}");
    assert_eq!(
        t["functions"]["SendMessage"]["invocations"], s["messages"]["written"],
        "functions are named by logical id: {t}"
    );
    assert_eq!(
        t["functions"]["Connect"]["invocations"],
        s["clients"]["connected"]
    );
    assert_eq!(t["api"]["connects"], s["clients"]["connected"]);
    let cold: u64 = t["functions"]
        .as_object()
        .unwrap()
        .values()
        .map(|f| f["coldStarts"].as_u64().unwrap())
        .sum();
    assert!(cold > 0, "a fresh stack cold-starts its functions: {t}");
    let series = t["series"].as_array().unwrap();
    assert!(
        series.len() as f64 >= s["run"]["durationS"].as_f64().unwrap(),
        "{t}"
    );
    assert_eq!(s["chaos"], serde_json::json!([]), "smoke has no chaos");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_on_fail_threshold_stops_the_run_early() {
    let (url, _, server) = broadcast_server(Duration::from_millis(50), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = generic_scenario(
        dir.path(),
        "thresholds:\n  broadcast_latency: [{threshold: \"max<10\", abortOnFail: true}]\n",
    );
    let out = dir.path().join("report");
    let code = run_cli(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &url,
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    server.abort();
    assert_eq!(code, 99);
    let s = summary(&out);
    let reason = s["run"]["aborted"]
        .as_str()
        .expect("the run says why it stopped");
    assert!(
        reason.contains("max<10") && reason.contains("abortOnFail"),
        "{reason}"
    );
    assert_eq!(s["passed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_account_for_every_delivery() {
    let (url, _, server) = broadcast_server(Duration::from_millis(5), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = generic_scenario(dir.path(), "thresholds:\n  lost: [\"count==0\"]\n");
    let out = dir.path().join("report");
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--target",
            &url,
            "--workers",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(120), status)
        .await
        .unwrap()
        .unwrap();
    server.abort();
    assert_eq!(status.code(), Some(0));
    let s = summary(&out);
    // Ten clients over two processes, ids interleaved; every client got every message.
    assert_eq!(s["clients"]["connected"], 10, "{}", s["clients"]);
    let a = &s["accounting"];
    let sent = s["messages"]["scheduled"].as_u64().unwrap();
    assert!(sent >= 40, "both workers sent their share: {sent}");
    assert_eq!(a["expected"].as_u64().unwrap(), sent * 10, "{a}");
    assert_eq!(a["expected"], a["delivered"], "{a}");
    assert_eq!(
        s["latency"]["broadcast"]["count"].as_u64().unwrap(),
        sent * 10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_attaches_to_a_local_stack_started_elsewhere() {
    let exe = std::env::current_exe().unwrap();
    let binaries = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let options = dynamowave_local::stack::StackOptions {
        template: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")),
        binaries_dir: binaries,
        ..Default::default()
    };
    let stack = dynamowave_local::stack::start(options).await.unwrap();
    let edge = stack.endpoints.endpoint_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/smoke.yaml");
    let code = run_cli(&[
        "run",
        scenario,
        "--endpoint-url",
        &edge,
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    stack.shutdown().await;
    let s = summary(&out);
    assert_eq!(code, 0, "{:#}", s["thresholds"]);
    assert_eq!(s["run"]["deadLettersRead"], true);
    assert_eq!(s["accounting"]["expected"], s["accounting"]["delivered"]);

    // Nothing there: the error says what to start.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cli = Cli::try_parse_from([
        "dynamowave",
        "run",
        scenario,
        "--endpoint-url",
        &format!("http://{closed}"),
    ])
    .unwrap();
    let err = run(cli).await.unwrap_err().to_string();
    assert!(err.contains("local up"), "{err}");
}
