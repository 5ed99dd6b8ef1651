//! `dynamowave bench idle`: the most idle clients the harness holds. Minimal broadcast servers
//! run as several processes sharing one port (SO_REUSEPORT), as one process may hold only so
//! many open files; the clients are the harness's own: `run`'s worker processes (the
//! `dynamowave.worker/1` protocol, the engine's executor and client task), given a generated
//! scenario that connects every client over several loopback source addresses and then holds.
//! At the end of the hold the servers report how many connections are still open and send
//! one stamped broadcast, which every held client must record. Memory is each process's
//! VmRSS before the first client and at the end of the hold.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::broadcast;

use crate::cli::{IdleArgs, IdleServerArgs};
use crate::engine::stamp::Stamp;
use crate::error::HarnessError;
use crate::workers::{Workers, die_with_parent};

/// Clients one process is given by default: under the 20,000 open files it may hold, with
/// room for the runtime's own.
const PER_PROCESS: u32 = 18_000;
/// Clients per source address by default: connect() slows down past about half of one
/// address's ~28,000 ephemeral ports (see engine/client.rs), so stay well under that.
const PER_SOURCE: u32 = 10_000;
/// The final broadcast's sender id: no client has it.
const BROADCAST_SENDER: u32 = u32::MAX;

/// How the clients are spread; validated before anything starts.
#[derive(Debug, Clone, Copy)]
struct Layout {
    clients: u32,
    servers: u32,
    workers: u32,
    sources: u32,
}

fn ephemeral_ports() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<u32>().ok());
            Some(it.next()??.abs_diff(it.next()??) + 1)
        })
        .unwrap_or(28_232)
}

impl Layout {
    fn new(args: &IdleArgs, open_files: u64) -> Result<Layout, HarnessError> {
        let clients = args.clients;
        if clients == 0 {
            return Err(HarnessError::Usage("--clients: give at least 1".into()));
        }
        let auto = clients.div_ceil(PER_PROCESS).max(1);
        let layout = Layout {
            clients,
            servers: args.servers.unwrap_or(auto),
            workers: args.workers.unwrap_or(auto),
            sources: args
                .sources
                .unwrap_or(clients.div_ceil(PER_SOURCE).max(2))
                .min(254),
        };
        // The runtime, pipes and logs need some files beyond the sockets.
        let room = open_files.saturating_sub(256);
        for (flag, n) in [("--servers", layout.servers), ("--workers", layout.workers)] {
            if n == 0 {
                return Err(HarnessError::Usage(format!("{flag}: give at least 1")));
            }
            // SO_REUSEPORT spreads connections by hash, not evenly: leave servers 10 %.
            let share =
                u64::from(clients.div_ceil(n)) * if flag == "--servers" { 11 } else { 10 } / 10;
            if share > room {
                return Err(HarnessError::Usage(format!(
                    "{flag} {n}: each process would hold about {share} connections, but one \
                     process may open at most {open_files} files (RLIMIT_NOFILE); use at \
                     least {}",
                    (u64::from(clients) * 11 / 10).div_ceil(room.max(1))
                )));
            }
        }
        if !(1..=254).contains(&layout.sources) {
            return Err(HarnessError::Usage(
                "--sources: give 1 to 254 (127.0.0.1 to 127.0.0.254)".into(),
            ));
        }
        let ports = ephemeral_ports();
        if clients.div_ceil(layout.sources) > ports {
            return Err(HarnessError::Usage(format!(
                "--sources {}: each source address would need {} ephemeral ports, and \
                 ip_local_port_range gives {ports}; use at least {}",
                layout.sources,
                clients.div_ceil(layout.sources),
                clients.div_ceil(ports)
            )));
        }
        Ok(layout)
    }
}

fn rss_kib(pid: u32) -> u64 {
    super::rss_kib_of(&pid.to_string())
}

fn total_rss_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| rss_kib(p)).sum()
}

/// One server process, driven by lines on its stdin.
struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    port: u16,
}

impl Server {
    async fn start(exe: &std::path::Path, port: u16, run: u32) -> Result<Server, HarnessError> {
        let mut command = tokio::process::Command::new(exe);
        command
            .args(["bench-idle-server", "--port", &port.to_string()])
            .args(["--run", &run.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|e| HarnessError::Io {
            context: "starting a bench server".into(),
            source: e,
        })?;
        let stdin = child.stdin.take().expect("piped");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = lines.next_line().await.ok().flatten().unwrap_or_default();
        let port = first
            .strip_prefix("ws://")
            .and_then(|r| r.trim_end_matches('/').parse::<SocketAddr>().ok())
            .map(|a| a.port())
            .ok_or_else(|| {
                HarnessError::Usage(format!("a bench server did not start: {first:?}"))
            })?;
        Ok(Server {
            child,
            stdin,
            lines,
            port,
        })
    }

    /// Sends a command; the answer is the server's count of open connections.
    async fn ask(&mut self, command: &str) -> Result<u64, HarnessError> {
        let lost = || HarnessError::Usage(format!("a bench server stopped answering {command}"));
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|_| lost())?;
        let line = self
            .lines
            .next_line()
            .await
            .ok()
            .flatten()
            .ok_or_else(lost)?;
        line.trim().parse().map_err(|_| lost())
    }

    /// Closes its stdin (it exits) and reaps it; killed if it does not.
    async fn stop(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

async fn count_open(servers: &mut [Server]) -> Result<u64, HarnessError> {
    let mut open = 0;
    for s in servers {
        open += s.ask("count").await?;
    }
    Ok(open)
}

/// The scenario every worker runs: connect at `rate`, then hold; no messages.
fn scenario(layout: &Layout, rate: u32, connect: Duration, hold: Duration) -> String {
    format!(
        "name: bench-idle\n\
         message_size: 64\n\
         connect_timeout: 60s\n\
         drain: 5s\n\
         source_addresses: {sources}\n\
         protocol: {{whoami: null, query: {{}}}}\n\
         phases:\n  \
         - {{name: connect, duration: {c}ms, arrival_rate: {rate}, max_clients: {n}, spacing: constant}}\n  \
         - {{name: hold, duration: {h}ms}}\n",
        sources = layout.sources,
        c = connect.as_millis(),
        h = hold.as_millis(),
        n = layout.clients,
    )
}

/// Removes the generated scenario's folder however the bench ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The coordinator: servers, workers, the hold, the check, the figures.
pub async fn idle(args: IdleArgs) -> Result<i32, HarnessError> {
    let (open_files, _) = crate::limits::raise_open_files();
    let layout = Layout::new(&args, open_files)?;
    if args.rate == 0 {
        return Err(HarnessError::Usage(
            "--rate: give at least 1 connection per second".into(),
        ));
    }
    let exe = std::env::current_exe().map_err(|e| HarnessError::Io {
        context: "finding dynamowave".into(),
        source: e,
    })?;
    let run_id: u32 = rand::random();

    let mut servers = vec![Server::start(&exe, 0, run_id).await?];
    let port = servers[0].port;
    for _ in 1..layout.servers {
        servers.push(Server::start(&exe, port, run_id).await?);
    }
    let server_pids: Vec<u32> = servers.iter().filter_map(|s| s.child.id()).collect();
    let url = format!("ws://127.0.0.1:{port}/");

    let dir = TempDir(std::env::temp_dir().join(format!(
        "dynamowave-bench-idle-{}-{run_id:08x}",
        std::process::id()
    )));
    std::fs::create_dir_all(&dir.0).map_err(|e| HarnessError::Io {
        context: format!("creating {}", dir.0.display()),
        source: e,
    })?;
    // Arrivals end a second after the last is due; late handshakes still count.
    let connect = Duration::from_secs_f64(f64::from(layout.clients) / f64::from(args.rate) + 1.0);
    let hold = Duration::from_secs(args.hold.max(1));
    let path = dir.0.join("bench-idle.yaml");
    // The hold phase leaves the connect phase as long again as slack: see below.
    std::fs::write(&path, scenario(&layout, args.rate, connect, connect + hold)).map_err(|e| {
        HarnessError::Io {
            context: format!("writing {}", path.display()),
            source: e,
        }
    })?;
    let plan = crate::scenario::load(&path)?;

    let workers = Workers::start(&plan, &url, layout.workers, run_id).await?;
    let worker_pids = workers.pids();
    let start = workers.start;
    eprintln!(
        "bench idle: {} clients, {} workers (pids {worker_pids:?}), {} servers on port {port} \
         (pids {server_pids:?}), {} source addresses",
        layout.clients, layout.workers, layout.servers, layout.sources
    );
    // Every process is up and no client has connected: the baseline.
    tokio::time::sleep_until((start - Duration::from_millis(300)).into()).await;
    let (worker_base, server_base) = (total_rss_kib(&worker_pids), total_rss_kib(&server_pids));

    // Connect, then hold: the hold starts once every client is open at the servers, or when
    // the connect phase's slack (as long again) is over.
    let mut check_at = start + connect * 2 + hold;
    let mut all_open = false;
    while Instant::now() + Duration::from_secs(1) < check_at {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let open = count_open(&mut servers).await?;
        eprintln!(
            "bench idle: {:>5.1} s  {open} open",
            start.elapsed().as_secs_f64()
        );
        if !all_open && open >= u64::from(layout.clients) {
            all_open = true;
            check_at = check_at.min(Instant::now() + hold);
        }
    }
    tokio::time::sleep_until(check_at.into()).await;
    let check_s = (check_at - start).as_secs_f64();
    let worker_rss = total_rss_kib(&worker_pids);
    let server_rss = total_rss_kib(&server_pids);
    let open_at_check = count_open(&mut servers).await?;
    for s in &mut servers {
        s.ask("broadcast").await?;
    }
    let out = workers.finish(&plan).await?;
    for s in servers {
        s.stop().await;
    }

    let record = &out.record;
    let reached = record
        .pairs
        .keys()
        .filter(|(_, sender)| *sender == BROADCAST_SENDER)
        .count() as u64;
    let joined: Vec<u64> = record
        .clients
        .values()
        .filter_map(|c| c.joined_us)
        .collect();
    let last_connect_s = joined.iter().max().map_or(0.0, |&us| us as f64 / 1e6);
    let held = open_at_check.min(reached);
    // Memory is what the open connections cost, whether or not the broadcast reached them.
    let per_conn =
        |now: u64, base: u64| now.saturating_sub(base) as f64 / open_at_check.max(1) as f64;
    let (harness_kib, server_kib) = (
        per_conn(worker_rss, worker_base),
        per_conn(server_rss, server_base),
    );
    let ms = |q: f64| record.connect.value_at_quantile(q) as f64 / 1000.0;
    let failures: Vec<String> = record
        .connect_failures
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();

    println!(
        "dynamowave bench idle — {} clients, {} workers, {} servers sharing port {port}, {} \
         source addresses, {} connections/s asked",
        layout.clients, layout.workers, layout.servers, layout.sources, args.rate
    );
    println!(
        "clients held: {held} of {} (open at the servers after the hold: {open_at_check}; \
         reached by the final broadcast: {reached})",
        layout.clients
    );
    println!(
        "connected: {} in {last_connect_s:.1} s (connect p50 {:.1} ms, p99 {:.1} ms, max {:.1} \
         ms); failures: {}",
        joined.len(),
        ms(0.5),
        ms(0.99),
        record.connect.max() as f64 / 1000.0,
        if failures.is_empty() {
            "none".into()
        } else {
            failures.join(", ")
        }
    );
    println!(
        "held {:.1} s after the last connect",
        (check_s - last_connect_s).max(0.0)
    );
    println!(
        "harness memory: {:.1} MiB over {} workers = {harness_kib:.2} KiB per connection",
        worker_rss.saturating_sub(worker_base) as f64 / 1024.0,
        layout.workers
    );
    println!(
        "server memory: {:.1} MiB over {} servers = {server_kib:.2} KiB per connection",
        server_rss.saturating_sub(server_base) as f64 / 1024.0,
        layout.servers
    );
    println!("processes: servers {server_pids:?}, workers {worker_pids:?}");
    println!(
        "BENCHMARKS.md: | `dynamowave bench idle --clients {}` | {held} | {} | {} | {} | \
         {last_connect_s:.1} s | {harness_kib:.1} | {server_kib:.1} |",
        layout.clients, layout.workers, layout.servers, layout.sources
    );
    Ok(0)
}

/// `bench-idle-server`: a minimal broadcast server on `port` (0: any), sharing it with its
/// siblings (SO_REUSEPORT). It prints its URL, then answers lines on stdin: `count` (open
/// connections) and `broadcast` (one stamped frame to every connection, then the count).
/// It exits when stdin closes.
pub async fn server(args: IdleServerArgs) -> Result<i32, HarnessError> {
    crate::limits::raise_open_files();
    let io = |context: &str| {
        let context = context.to_string();
        move |source| HarnessError::Io { context, source }
    };
    let socket = tokio::net::TcpSocket::new_v4().map_err(io("a server socket"))?;
    socket
        .set_reuseport(true)
        .map_err(io("setting SO_REUSEPORT"))?;
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .map_err(io("binding the bench server"))?;
    let listener = socket.listen(4096).map_err(io("listening"))?;
    let addr = listener.local_addr().map_err(io("the server's address"))?;
    let (tx, _) = broadcast::channel::<Arc<str>>(4);
    let open = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route("/", axum::routing::get(upgrade))
        .with_state((tx.clone(), open.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    println!("ws://{addr}/");
    let payload = Stamp {
        run: args.run,
        sender: BROADCAST_SENDER,
        seq: 0,
        intended_us: 0,
        sent_us: 0,
    }
    .payload(64);
    let frame: Arc<str> = format!("{{\"message\":\"{payload}\"}}").into();
    // Commands are read on a thread of their own (std's stdin blocks).
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        if line.trim() == "broadcast" {
            let _ = tx.send(frame.clone());
        }
        println!("{}", open.load(Ordering::SeqCst));
    }
    Ok(0)
}

type ServerState = (broadcast::Sender<Arc<str>>, Arc<AtomicU64>);

async fn upgrade(State((tx, open)): State<ServerState>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, tx.subscribe(), open))
}

/// Holds one connection: counts it open until the client closes or the socket fails.
async fn serve(mut socket: WebSocket, mut rx: broadcast::Receiver<Arc<str>>, open: Arc<AtomicU64>) {
    open.fetch_add(1, Ordering::SeqCst);
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(f) => {
                    if socket.send(Message::Text(f.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            },
            m = socket.recv() => match m {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    open.fetch_sub(1, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(clients: u32, workers: Option<u32>, sources: Option<u32>) -> IdleArgs {
        IdleArgs {
            clients,
            servers: None,
            workers,
            sources,
            rate: 1000,
            hold: 1,
        }
    }

    #[test]
    fn layouts_fit_the_open_file_and_port_limits() {
        let l = Layout::new(&args(100_000, None, None), 20_000).unwrap();
        assert_eq!((l.servers, l.workers, l.sources), (6, 6, 10));
        let err = Layout::new(&args(100_000, Some(2), None), 20_000).unwrap_err();
        assert!(err.to_string().contains("--workers 2"), "{err}");
        assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
        let err = Layout::new(&args(100_000, None, Some(1)), 20_000).unwrap_err();
        assert!(err.to_string().contains("--sources 1"), "{err}");
        assert!(Layout::new(&args(0, None, None), 20_000).is_err());
        let small = Layout::new(&args(200, Some(2), Some(2)), 20_000).unwrap();
        assert_eq!((small.servers, small.workers, small.sources), (1, 2, 2));
    }

    #[test]
    fn the_generated_scenario_is_valid() {
        let l = Layout::new(&args(200, Some(2), Some(2)), 20_000).unwrap();
        let text = scenario(&l, 100, Duration::from_secs(3), Duration::from_secs(2));
        let plan = crate::scenario::parse(&text, std::path::Path::new("idle.yaml")).unwrap();
        assert_eq!(plan.source_addresses, 2);
        assert_eq!(plan.phases[0].max_clients, Some(200));
        assert_eq!(plan.duration(), Duration::from_secs(5));
        assert!(plan.protocol.whoami.is_none() && plan.protocol.query.is_empty());
    }
}
