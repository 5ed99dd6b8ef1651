//! `dynamowave bench floor`: the harness's own latency floor. An echo server that answers
//! each frame at once runs as its own process; a whole `dynamowave run` (each client in a
//! room of its own, so every message comes back to its sender only) measures it. What the
//! run reports as broadcast latency is then the generator's and the loopback's cost alone,
//! and `schedule_lag` is how late the sends left after their intended times.

use std::path::PathBuf;
use std::process::Stdio;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::FloorArgs;
use crate::error::HarnessError;

fn io(context: &str) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        context: context.to_string(),
        source,
    }
}

/// The scenario the floor runs: `clients` join in a second, then send `rate` messages a
/// second in all for `seconds`.
fn scenario(args: &FloorArgs) -> String {
    format!(
        "name: bench-floor\n\
         rooms: {clients}\n\
         protocol: {{send: \"{{{{payload}}}}\", payload: frame, whoami: null, query: {{}}}}\n\
         message_size: 100\n\
         deadline: 5s\n\
         drain: 1s\n\
         phases:\n  \
         - {{name: join, duration: 1s, arrival_rate: {clients}, max_clients: {clients}}}\n  \
         - {{name: echo, duration: {seconds}s, message_rate: {rate}, spacing: poisson}}\n",
        clients = args.clients,
        seconds = args.seconds,
        rate = args.rate,
    )
}

pub async fn floor(args: FloorArgs) -> Result<i32, HarnessError> {
    if args.clients == 0 || args.seconds == 0 || args.rate == 0 {
        return Err(HarnessError::Usage(
            "bench floor: --clients, --seconds and --rate must be at least 1".into(),
        ));
    }
    let exe = std::env::current_exe().map_err(io("finding dynamowave"))?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "reports/bench-floor-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    std::fs::create_dir_all(&out).map_err(io("creating the bench folder"))?;
    let file = out.join("scenario.yaml");
    std::fs::write(&file, scenario(&args)).map_err(io("writing the bench scenario"))?;

    let mut server = tokio::process::Command::new(&exe)
        .arg("bench-echo-server")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(io("starting the echo server"))?;
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let url = lines
        .next_line()
        .await
        .ok()
        .flatten()
        .ok_or_else(|| HarnessError::Usage("the echo server did not print its URL".into()))?;
    let run_dir = out.join("run");
    let status = tokio::process::Command::new(&exe)
        .arg("run")
        .arg(&file)
        .args(["--target", &url, "--out"])
        .arg(&run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(io("running the floor scenario"))?;
    let _ = server.kill().await;
    let summary: Value = std::fs::read(run_dir.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            HarnessError::Usage(format!(
                "the floor run ({status}) wrote no summary.json in {}",
                run_dir.display()
            ))
        })?;
    print!("{}", table(&args, &summary));
    Ok(0)
}

fn table(args: &FloorArgs, s: &Value) -> String {
    let mut t = format!(
        "dynamowave bench floor — {} clients, {} messages/s for {} s, echo server on loopback\n\
         | figure (ms) | count | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|\n",
        args.clients, args.rate, args.seconds
    );
    for (name, key) in [
        ("latency from intended send", "broadcast"),
        ("latency from actual send", "broadcastFromSend"),
        ("schedule lag", "scheduleLag"),
    ] {
        let v = &s["latency"][key];
        let f = |k: &str| v[k].as_f64().map_or("—".into(), |x| format!("{x:.3}"));
        t.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} |\n",
            v["count"].as_u64().unwrap_or(0),
            f("p50Ms"),
            f("p90Ms"),
            f("p99Ms"),
            f("p999Ms"),
            f("maxMs"),
        ));
    }
    let a = &s["accounting"];
    t.push_str(&format!(
        "accounting: expected {} delivered {} lost {}\n",
        a["expected"], a["delivered"], a["lost"]
    ));
    t
}

/// An echo server: every text frame goes straight back to its sender.
pub async fn echo_server() -> Result<i32, HarnessError> {
    crate::limits::raise_open_files();
    let app = axum::Router::new().route("/", axum::routing::get(upgrade));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io("binding the echo server"))?;
    println!("ws://{}/", listener.local_addr().expect("bound"));
    axum::serve(listener, app)
        .await
        .map_err(io("serving the echo server"))?;
    Ok(0)
}

async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(echo)
}

async fn echo(socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    while let Some(Ok(m)) = stream.next().await {
        if let Message::Text(_) = m
            && sink.send(m).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_scenario_is_a_valid_plan() {
        let args = FloorArgs {
            clients: 50,
            rate: 500,
            seconds: 10,
            out: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("floor.yaml");
        std::fs::write(&file, scenario(&args)).unwrap();
        let plan = crate::scenario::load(&file).expect("the floor scenario loads");
        assert_eq!(plan.rooms, Some(50));
        assert_eq!(plan.phases.len(), 2);
        assert_eq!(plan.phases[1].message_rate, 500.0);
    }
}
