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
        let mut child = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
            .args(["local", "up"])
            .args([
                "--template",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"),
            ])
            .args(["--parameter-overrides", "WarmerEnabled=false"])
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
