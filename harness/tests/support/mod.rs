//! What several end-to-end test files share: `dynamowave local up` as a child process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The folder of the release binaries (the chat's functions sit beside `dynamowave`).
pub fn binaries() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_dynamowave"));
    let dir = exe.parent().unwrap().to_path_buf();
    assert!(
        dir.join("connect").is_file(),
        "reference binaries missing from {}: cargo build --release -p dynamowave-chat",
        dir.display()
    );
    dir
}

/// `local up` (template.yaml, the warmer off, as the smoke scenario has it), stopped with
/// SIGTERM when dropped, even on a failed assertion.
pub struct LocalUp {
    pub child: Child,
    pub endpoint_url: String,
}

impl LocalUp {
    pub fn start(extra: &[&str]) -> LocalUp {
        Self::start_with(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")),
            extra,
        )
    }

    /// `local up` of another template.
    pub fn start_with(template: &Path, extra: &[&str]) -> LocalUp {
        // The reference template's warmer is off in tests; other templates lack the parameter.
        let warmer = std::fs::read_to_string(template).is_ok_and(|t| t.contains("WarmerEnabled:"));
        let overrides: &[&str] = if warmer {
            &["--parameter-overrides", "WarmerEnabled=false"]
        } else {
            &[]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
            .args(["local", "up"])
            .arg("--template")
            .arg(template)
            .args(overrides)
            .args(extra)
            .arg("--binaries")
            .arg(binaries())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let mut up = LocalUp {
            child,
            endpoint_url: String::new(),
        };
        let info: serde_json::Value =
            serde_json::from_str(&first).unwrap_or_else(|e| panic!("first line {first:?}: {e}"));
        up.endpoint_url = info["endpoint_url"].as_str().unwrap().to_string();
        up
    }
}

impl Drop for LocalUp {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET {base}{path}` as JSON over plain HTTP/1.0 on loopback (the local stack's own
/// `/_dynamowave/*` pages), with a 10 s timeout.
#[allow(dead_code)]
pub fn get_json(base: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}
