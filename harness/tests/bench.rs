//! `dynamowave bench receive` runs end to end at a tiny size and reports both readers
//! (its figures are recorded in BENCHMARKS.md, never asserted here).

use std::process::Command;

#[test]
fn bench_receive_reports_both_readers_and_a_ratio() {
    let out = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .args([
            "bench",
            "receive",
            "--connections",
            "20",
            "--seconds",
            "1",
            "--rate",
            "50",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |mode: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {mode} |")))
            .unwrap_or_else(|| panic!("no {mode} row in:\n{text}"))
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for mode in ["bare", "harness"] {
        let r = row(mode);
        let frames: u64 = r[1].parse().unwrap();
        assert!(frames > 0, "the {mode} reader received frames: {r:?}");
    }
    assert!(text.contains("harness / bare CPU per frame:"), "{text}");
}

/// `dynamowave bench idle` at a tiny size: every client asked for is held (open at the
/// servers after the hold and reached by the final broadcast), and every process it started
/// (servers and workers, whose ids it prints) is gone once it exits.
#[test]
fn bench_idle_holds_every_client_and_leaves_no_process_behind() {
    let out = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .args(["bench", "idle", "--clients", "200", "--servers", "2"])
        .args([
            "--workers",
            "2",
            "--sources",
            "2",
            "--rate",
            "400",
            "--hold",
            "1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let held = text
        .lines()
        .find_map(|l| l.strip_prefix("clients held: "))
        .unwrap_or_else(|| panic!("no 'clients held' line in:\n{text}"));
    assert!(held.starts_with("200 of 200 "), "{held}");
    assert!(
        held.contains("after the hold: 200;") && held.contains("final broadcast: 200)"),
        "{held}"
    );
    let pids: Vec<u32> = text
        .lines()
        .find_map(|l| l.strip_prefix("processes: "))
        .unwrap_or_else(|| panic!("no 'processes' line in:\n{text}"))
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(pids.len(), 4, "2 servers and 2 workers: {pids:?}");
    // Reaped by the bench before it exits; a bounded wait covers a pid still being torn down.
    for pid in pids {
        let gone = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map_or(true, |c| !c.contains("dynamowave"))
        };
        let mut tries = 0;
        while !gone(pid) && tries < 50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            tries += 1;
        }
        assert!(
            gone(pid),
            "process {pid} that bench idle started is still running"
        );
    }
}
