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
