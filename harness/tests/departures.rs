//! Measuring right under load, end to end through `Cli::parse_from` + `run` against small
//! broadcast servers built here: a leaving client follows the closing handshake, so a server
//! that reads slowly still gets (and forwards) its last messages; a connection reset after
//! writes makes those writes unconfirmed, never the target's loss; and every run reports the
//! schedule's lag beside latency from the intended and from the actual send.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use dynamowave_harness::cli::{Cli, run};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How the test server treats each connection.
#[derive(Clone, Copy)]
enum Conduct {
    /// Reads one frame per `pause`, forwarding each to everyone. A write to the client that
    /// fails (it went away) ends the connection, unread frames and all, as Node's `ws` and
    /// many servers do.
    SlowReader { pause: Duration },
    /// Forwards what it reads. On every second connection, after the `n`-th frame it stops
    /// reading for 300 ms (the client's next writes wait unread in the kernel), then resets
    /// the connection (RST); the other connections stay to receive.
    ResetAfter { n: u64 },
}

/// A broadcast server: every text frame it reads goes to every client, its sender too.
async fn server(conduct: Conduct) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let clients: Arc<Mutex<Vec<mpsc::UnboundedSender<String>>>> = Arc::default();
    let task = tokio::spawn(async move {
        let mut accepted = 0u64;
        while let Ok((tcp, _)) = listener.accept().await {
            accepted += 1;
            let conduct = match conduct {
                Conduct::ResetAfter { .. } if accepted.is_multiple_of(2) => Conduct::SlowReader {
                    pause: Duration::ZERO,
                },
                other => other,
            };
            let clients = clients.clone();
            tokio::spawn(async move {
                // A small read buffer: unread frames stay in the kernel's receive queue (where
                // a reset discards them), not in the server's own buffer.
                let config = WebSocketConfig::default().read_buffer_size(256);
                let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                else {
                    return;
                };
                serve(ws, clients, conduct).await;
            });
        }
    });
    (url, task)
}

async fn serve(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    clients: Arc<Mutex<Vec<mpsc::UnboundedSender<String>>>>,
    conduct: Conduct,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    clients.lock().unwrap().push(tx);
    let pause = match conduct {
        Conduct::SlowReader { pause } => pause,
        Conduct::ResetAfter { n } => {
            let mut read = 0;
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(text))) => {
                            read += 1;
                            for c in clients.lock().unwrap().iter() {
                                let _ = c.send(text.to_string());
                            }
                            if read >= n {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                // Linger 0: closing sends RST and drops what is unread.
                                ws.get_ref().set_zero_linger().unwrap();
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    Some(text) = rx.recv() => {
                        if ws.send(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    };
    // A slow reader: writes flow from their own task while reads wait `pause` each.
    let (mut sink, mut stream) = ws.split();
    let broken = Arc::new(AtomicBool::new(false));
    let broke = broken.clone();
    tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                broke.store(true, Ordering::SeqCst);
                break;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        if broken.load(Ordering::SeqCst) {
            return;
        }
        let Message::Text(text) = msg else { continue };
        for c in clients.lock().unwrap().iter() {
            let _ = c.send(text.to_string());
        }
        tokio::time::sleep(pause).await;
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

async fn run_against(url: &str, scenario: &str) -> (i32, Value, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "slo.yaml",
        "thresholds:\n  lost: [\"count==0\"]\n",
    );
    let file = write(dir.path(), "scenario.yaml", scenario);
    let out = dir.path().join("report");
    let cli = Cli::try_parse_from([
        "dynamowave",
        "run",
        file.to_str().unwrap(),
        "--target",
        url,
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let code = run(cli).await.unwrap();
    let summary = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap())
        .expect("summary.json is JSON");
    (code, summary, out, dir)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn assert_identity(a: &Value) {
    assert_eq!(
        u(&a["expected"]),
        u(&a["delivered"]) + u(&a["late"]) + u(&a["deadLettered"]) + u(&a["lost"]),
        "{a}"
    );
}

/// 10 clients chat faster than the server reads each connection, so every connection has a
/// backlog of unread frames; 4 leave while theirs is still queued.
const BACKLOG: &str = r#"
name: departures
protocol: {send: "{{payload}}", payload: frame, whoami: null, query: {}}
message_size: 100
deadline: 20s
drain: 6s
close_timeout: 10s
slo: slo.yaml
phases:
  - {name: join, duration: 1s, arrival_rate: 30, max_clients: 10}
  - {name: chat, duration: 2s, message_rate_per_client: 15, spacing: constant}
  - {name: leave, duration: 2s, departure_rate: 2}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_clients_lose_none_of_their_messages_to_a_slow_reader() {
    let (url, server) = server(Conduct::SlowReader {
        pause: Duration::from_millis(150),
    })
    .await;
    let (code, s, _, _dir) = run_against(&url, BACKLOG).await;
    server.abort();
    let a = &s["accounting"];
    assert_identity(a);
    assert!(u(&s["clients"]["connected"]) == 10, "{}", s["clients"]);
    // Four clients left mid-run with frames queued both ways.
    assert!(u(&a["departed"]) + u(&a["expected"]) > 0, "{a}");
    assert_eq!(
        u(&a["lost"]),
        0,
        "a leaving client's own messages were lost: {a}"
    );
    assert_eq!(u(&a["unconfirmed"]), 0, "every close was answered: {a}");
    assert_eq!(code, 0, "lost == 0 passes");
    let m = &s["messages"];
    assert!(u(&m["written"]) >= 100, "{m}");
    assert_eq!(
        u(&m["written"]) + u(&m["sendFailed"]),
        u(&m["scheduled"]),
        "{m}"
    );
}

/// Steady chat against a server that resets each connection after reading its 5th frame.
const RESETS: &str = r#"
name: resets
protocol: {send: "{{payload}}", payload: frame, whoami: null, query: {}}
message_size: 100
deadline: 5s
drain: 2s
slo: slo.yaml
phases:
  - {name: join, duration: 1s, arrival_rate: 30, max_clients: 8}
  - {name: chat, duration: 3s, message_rate_per_client: 20, spacing: constant}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_before_a_reset_are_unconfirmed_not_lost() {
    // 8 clients × 20 messages/s: about 6 writes of each of 4 wait unread when the reset
    // comes, and the 4 others are there to be owed them.
    let (url, server) = server(Conduct::ResetAfter { n: 5 }).await;
    let (code, s, _, _dir) = run_against(&url, RESETS).await;
    server.abort();
    let a = &s["accounting"];
    assert_identity(a);
    assert_eq!(u(&a["lost"]), 0, "{a}");
    assert!(
        u(&a["unconfirmed"]) > 0,
        "writes after the 5th were never read: {a}"
    );
    assert!(u(&a["sendUnconfirmed"]) > 0, "{a}");
    let by_cause: u64 = a["unconfirmedByCause"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(cause, n)| {
            assert!(
                ["reset", "broken_pipe", "io_error", "abnormal"].contains(&cause.as_str()),
                "{cause} is not how a reset connection ends"
            );
            u(n)
        })
        .sum();
    assert_eq!(by_cause, u(&a["unconfirmed"]));
    let listed = a["uncertain"].as_array().unwrap();
    assert!(!listed.is_empty() && listed[0]["pairs"].as_u64().unwrap() > 0);
    assert_eq!(code, 0, "unconfirmed pairs do not fail `lost: count==0`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_latency_views_and_the_schedule_lag_are_reported() {
    let (url, server) = server(Conduct::SlowReader {
        pause: Duration::ZERO,
    })
    .await;
    let (code, s, out, _dir) = run_against(&url, RESETS.replace("resets", "views").as_str()).await;
    server.abort();
    assert_eq!(code, 0);
    let l = &s["latency"];
    let (intended, from_send, lag) = (&l["broadcast"], &l["broadcastFromSend"], &l["scheduleLag"]);
    assert_eq!(intended["count"], from_send["count"], "{l}");
    assert_eq!(u(&lag["count"]), u(&s["messages"]["written"]), "{l}");
    // Every delivery's latency from the intended time is at least its latency from the
    // actual send (the send never leaves early), so every percentile is too.
    for q in [
        "minMs", "p50Ms", "p90Ms", "p95Ms", "p99Ms", "p999Ms", "maxMs", "meanMs",
    ] {
        let (a, b) = (
            intended[q].as_f64().unwrap(),
            from_send[q].as_f64().unwrap(),
        );
        assert!(a >= b, "{q}: from intended {a} < from send {b}");
    }
    assert!(lag["minMs"].as_f64().unwrap() >= 0.0);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("schedule lag"), "report.html shows the lag");
    assert!(html.contains("broadcast (from actual send)"));
}
