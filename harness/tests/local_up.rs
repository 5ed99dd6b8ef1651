//! `dynamowave local up` as a user runs it: the real binary, its first stdout line, an
//! independent client and SDK (Python's websockets and boto3, installed by
//! scripts/setup.sh) against it, then SIGTERM — and nothing left running.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Direct children of `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split_whitespace().nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(child);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn local_up_serves_independent_clients_and_leaves_nothing_behind() {
    let exe = Path::new(env!("CARGO_BIN_EXE_dynamowave"));
    let binaries = exe.parent().unwrap();
    assert!(
        binaries.join("connect").is_file(),
        "reference binaries missing from {}: build the workspace in this profile first",
        binaries.display()
    );
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let mut up = Command::new(exe)
        .args([
            "local",
            "up",
            "--template",
            template,
            "--sandbox-delay-ms",
            "0",
            "--connections-latency-ms",
            "0",
        ])
        .arg("--binaries")
        .arg(binaries)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = up.id();
    let mut first = String::new();
    BufReader::new(up.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&first).expect("the first line is JSON");
    for key in ["websocket_url", "endpoint_url", "region"] {
        assert!(
            info[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} in {first}"
        );
    }
    assert!(
        info["websocket_url"]
            .as_str()
            .unwrap()
            .starts_with("ws://127.0.0.1:")
    );

    let python = dynamowave_local::dynamodb::cache_dir().join("venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check_local_up.py");
    let check = Command::new(&python).arg(script).arg(first.trim()).output();
    let kids = children(pid);

    // Stop it before asserting, so a failure never leaves the stack running.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = up.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = up.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    let check = check.unwrap_or_else(|e| {
        panic!(
            "could not run {} ({e}); run scripts/setup.sh",
            python.display()
        )
    });
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && stdout.contains("python check: ok"),
        "independent client check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        status
            .expect("local up exits within 30 s of SIGTERM")
            .success()
    );
    assert!(
        kids.len() >= 3,
        "DynamoDB Local and some function instances were running: {kids:?}"
    );
    let mut left = kids.clone();
    for _ in 0..100 {
        left.retain(|p| alive(*p));
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        left.is_empty(),
        "processes left behind after SIGTERM: {left:?}"
    );
}

#[test]
fn local_up_names_the_build_command_when_binaries_are_missing() {
    let empty = std::env::temp_dir().join(format!("dynamowave-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .args([
            "local",
            "up",
            "--template",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"),
        ])
        .arg("--binaries")
        .arg(&empty)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "no endpoints line when nothing started"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cargo build --release -p dynamowave-chat"),
        "{stderr}"
    );
    assert!(stderr.contains("connect (ConnectFunction)"), "{stderr}");
}

#[test]
fn local_up_reports_a_bad_parameter_override() {
    let out = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .args([
            "local",
            "up",
            "--parameter-overrides",
            "FanoutMode=sideways",
        ])
        .args([
            "--template",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FanoutMode"), "{stderr}");
}
