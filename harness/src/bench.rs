//! `dynamowave bench receive`: what the harness costs per received broadcast frame, as a
//! ratio to a bare reader on the same number of connections in the same run, and its memory
//! per connection. Three processes, so no one's CPU is counted as another's: a minimal
//! broadcast server, then a bare reader (reads and counts frames), then the harness's own
//! client and aggregator path (find the stamp, batch, record into HdrHistogram and the
//! delivery bits). CPU is the reader process's user+system time (getrusage) over the
//! measured window. `idle` (bench/idle.rs) counts the idle clients the harness holds.

pub mod floor;
pub mod idle;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{broadcast, mpsc};

use crate::cli::{BenchArgs, BenchReaderArgs, BenchServerArgs};
use crate::engine::client::{self, ClientSpec};
use crate::engine::record::{Event, Record};
use crate::engine::stamp::Stamp;
use crate::error::HarnessError;

/// The run id the server stamps and the harness reader expects.
const RUN: u32 = 0x00be_ac40;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReaderResult {
    pub mode: String,
    pub connections: u64,
    pub frames: u64,
    pub cpu_us: u64,
    pub seconds: f64,
    /// Resident memory once every connection is open and idle, KiB.
    pub idle_rss_kib: u64,
    pub base_rss_kib: u64,
}

impl ReaderResult {
    pub fn us_per_frame(&self) -> f64 {
        self.cpu_us as f64 / self.frames.max(1) as f64
    }
    pub fn kib_per_connection(&self) -> f64 {
        self.idle_rss_kib.saturating_sub(self.base_rss_kib) as f64 / self.connections.max(1) as f64
    }
}

fn cpu_us() -> u64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn rss_kib() -> u64 {
    rss_kib_of("self")
}

/// VmRSS of a process (`self` or a pid), KiB (0 if it is gone).
pub(crate) fn rss_kib_of(process: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The coordinator: server, then each reader, then the table.
pub async fn receive(args: BenchArgs) -> Result<i32, HarnessError> {
    crate::limits::raise_open_files();
    let exe = std::env::current_exe().map_err(|e| HarnessError::Io {
        context: "finding dynamowave".into(),
        source: e,
    })?;
    let mut results = Vec::new();
    for mode in ["bare", "harness"] {
        let mut server = tokio::process::Command::new(&exe)
            .args([
                "bench-server",
                "--connections",
                &args.connections.to_string(),
            ])
            .args([
                "--rate",
                &args.rate.to_string(),
                "--frame-size",
                &args.frame_size.to_string(),
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::Io {
                context: "starting the bench server".into(),
                source: e,
            })?;
        let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
        let url =
            lines.next_line().await.ok().flatten().ok_or_else(|| {
                HarnessError::Usage("the bench server did not print its URL".into())
            })?;
        let out = tokio::process::Command::new(&exe)
            .args(["bench-reader", "--url", &url, "--mode", mode])
            .args([
                "--connections",
                &args.connections.to_string(),
                "--seconds",
                &args.seconds.to_string(),
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| HarnessError::Io {
                context: "running a bench reader".into(),
                source: e,
            })?;
        let _ = server.kill().await;
        let r: ReaderResult = serde_json::from_slice(&out.stdout).map_err(|e| {
            HarnessError::Usage(format!(
                "the {mode} reader failed: {e}; {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
        results.push(r);
    }
    let (bare, harness) = (&results[0], &results[1]);
    let regime = if args.rate == 0 {
        "saturation".to_string()
    } else {
        format!("paced, {} messages/s", args.rate)
    };
    println!(
        "dynamowave bench receive — {} connections, {regime}, {} s measured, {}-byte frames",
        args.connections, args.seconds, args.frame_size
    );
    println!("| reader | frames | frames/s | CPU µs/frame | KiB/connection (idle) |");
    println!("|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.1} |",
            r.mode,
            r.frames,
            r.frames as f64 / r.seconds,
            r.us_per_frame(),
            r.kib_per_connection()
        );
    }
    println!(
        "harness / bare CPU per frame: {:.2}×",
        harness.us_per_frame() / bare.us_per_frame().max(1e-9)
    );
    Ok(0)
}

/// A minimal broadcast server: once `connections` clients are in, it sends every message to
/// all of them, `rate` messages a second (0: as fast as the sockets take them).
pub async fn server(args: BenchServerArgs) -> Result<i32, HarnessError> {
    crate::limits::raise_open_files();
    let (tx, _) = broadcast::channel::<Arc<str>>(1024);
    let joined = Arc::new(AtomicU64::new(0));
    let state = (tx.clone(), joined.clone());
    let app = axum::Router::new()
        .route("/", axum::routing::get(upgrade))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| HarnessError::Io {
            context: "binding the bench server".into(),
            source: e,
        })?;
    println!("ws://{}/", listener.local_addr().expect("bound"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    while joined.load(Ordering::SeqCst) < args.connections {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    let gap = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    let mut seq: u32 = 0;
    loop {
        let intended = start.elapsed().as_micros() as u64;
        let payload = Stamp {
            run: RUN,
            sender: 0,
            seq,
            intended_us: intended,
            sent_us: intended,
        }
        .payload(args.frame_size);
        let frame: Arc<str> = format!("{{\"message\":\"{payload}\"}}").into();
        seq = seq.wrapping_add(1);
        // Saturation: wait only for the slowest reader's room in the channel.
        while tx.len() >= 512 {
            tokio::task::yield_now().await;
        }
        let _ = tx.send(frame);
        match gap {
            Some(g) => tokio::time::sleep_until((start + g * seq).into()).await,
            None => tokio::task::yield_now().await,
        }
    }
}

type ServerState = (broadcast::Sender<Arc<str>>, Arc<AtomicU64>);

async fn upgrade(State((tx, joined)): State<ServerState>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, tx.subscribe(), joined))
}

async fn serve(socket: WebSocket, mut rx: broadcast::Receiver<Arc<str>>, joined: Arc<AtomicU64>) {
    let (mut sink, _stream) = socket.split();
    joined.fetch_add(1, Ordering::SeqCst);
    loop {
        match rx.recv().await {
            Ok(frame) => {
                if sink
                    .send(Message::Text(frame.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        }
    }
}

/// One reader process: connects, measures idle memory, then CPU per frame.
pub async fn reader(args: BenchReaderArgs) -> Result<i32, HarnessError> {
    crate::limits::raise_open_files();
    let base_rss_kib = rss_kib();
    // Bare readers count in a counter each (no shared cache line); the harness's frames are
    // counted where its aggregator receives them.
    let counters: Vec<Arc<AtomicU64>> = (0..args.connections)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let frames = Arc::new(AtomicU64::new(0));
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event>();
    let connected = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.connections {
        let (url, counter, connected) = (
            args.url.clone(),
            counters[i as usize].clone(),
            connected.clone(),
        );
        match args.mode.as_str() {
            "bare" => {
                tasks.spawn(async move {
                    let uri: http::Uri = url.parse().expect("the server's URL");
                    let Ok((mut ws, _)) = tokio_websockets::ClientBuilder::from_uri(uri)
                        .connect()
                        .await
                    else {
                        return;
                    };
                    connected.fetch_add(1, Ordering::SeqCst);
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_text() {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            _ => {
                let spec = ClientSpec {
                    index: i as u32,
                    url,
                    headers: vec![],
                    whoami: None,
                    frame_prefix: String::new(),
                    frame_suffix: String::new(),
                    message_size: 64,
                    run: RUN,
                    slow: false,
                    connect_timeout: Duration::from_secs(60),
                    close_timeout: Duration::from_secs(5),
                    sources: 0,
                    start: Instant::now(),
                };
                let (_cmd_tx, cmd_rx) = crate::engine::mailbox::channel();
                let events = events_tx.clone();
                tasks.spawn(async move {
                    let _keep = _cmd_tx;
                    client::run(spec, cmd_rx, events).await;
                });
            }
        }
    }
    // The aggregator (harness mode): the real record path.
    let agg_frames = frames.clone();
    let agg_connected = connected.clone();
    let aggregator = tokio::spawn(async move {
        let mut record = Record::new(60_000_000, vec![(0, u64::MAX, "bench".into())]);
        while let Some(ev) = events_rx.recv().await {
            match &ev {
                Event::Received(batch) => {
                    agg_frames.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Event::Connected { client, .. } => {
                    record.add_client(*client, None);
                    agg_connected.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
            record.apply(ev);
        }
    });
    drop(events_tx);
    let deadline = Instant::now() + Duration::from_secs(120);
    while connected.load(Ordering::SeqCst) < args.connections && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everyone is in: the memory of open connections, before traffic has built up.
    let idle_rss_kib = rss_kib();
    // Frames start once everyone is in; let them flow a moment, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let count = || {
        frames.load(Ordering::Relaxed)
            + counters
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum::<u64>()
    };
    let (f0, c0, t0) = (count(), cpu_us(), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (f1, c1, elapsed) = (count(), cpu_us(), t0.elapsed());
    let result = ReaderResult {
        mode: args.mode.clone(),
        connections: connected.load(Ordering::SeqCst),
        frames: f1 - f0,
        cpu_us: c1 - c0,
        seconds: elapsed.as_secs_f64(),
        idle_rss_kib,
        base_rss_kib,
    };
    println!("{}", serde_json::to_string(&result).expect("serialises"));
    tasks.abort_all();
    aggregator.abort();
    Ok(0)
}
