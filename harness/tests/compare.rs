//! `dynamowave compare`, data-driven: the fixture run as the baseline and edited copies as
//! the new run, through the real binary (exit codes, stdout, stderr, files written).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture_summary() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smoke-run/summary.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Writes `summary` as `{dir}/{name}/summary.json` (a report folder) and returns the folder.
fn folder(dir: &Path, name: &str, summary: &Value) -> PathBuf {
    let f = dir.join(name);
    std::fs::create_dir_all(&f).unwrap();
    std::fs::write(
        f.join("summary.json"),
        serde_json::to_vec_pretty(summary).unwrap(),
    )
    .unwrap();
    f
}

fn compare(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .arg("compare")
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scale(v: &mut Value, pointer: &str, by: f64) {
    let x = v.pointer(pointer).unwrap().as_f64().unwrap();
    *v.pointer_mut(pointer).unwrap() = Value::from(x * by);
}

struct Case {
    name: &'static str,
    edit: fn(&mut Value),
    tolerances: Option<&'static str>,
    code: i32,
    /// Must all appear in stdout (codes 0/99) or stderr (code 2).
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "p99 up 50 % is a regression named with its figures",
        edit: |s| scale(s, "/latency/broadcast/p99Ms", 1.5),
        tolerances: None,
        code: 99,
        says: &[
            "worse than baseline: broadcast_latency.p99 +50.0 %",
            "REGRESSION",
        ],
    },
    Case {
        name: "one lost pair is a regression",
        edit: |s| {
            s["accounting"]["lost"] = 1.into();
            s["accounting"]["delivered"] =
                (s["accounting"]["delivered"].as_u64().unwrap() - 1).into();
        },
        tolerances: None,
        code: 99,
        says: &["worse than baseline: delivery_ratio", "lost"],
    },
    Case {
        name: "lower latency is an improvement and passes",
        edit: |s| {
            scale(s, "/latency/broadcast/p50Ms", 0.5);
            scale(s, "/latency/broadcast/p99Ms", 0.5);
        },
        tolerances: None,
        code: 0,
        says: &["no regression against baseline", "better"],
    },
    Case {
        name: "a tolerance file can allow more",
        edit: |s| scale(s, "/latency/broadcast/p99Ms", 1.5),
        tolerances: Some("tolerances:\n  broadcast_latency.p99: {max_worse_pct: 60}\n"),
        code: 0,
        says: &["worse, within tolerance"],
    },
    Case {
        name: "a tolerance file can judge a metric the defaults do not",
        edit: |s| scale(s, "/latency/broadcast/maxMs", 1.2),
        tolerances: Some(
            "defaults: false\ntolerances:\n  broadcast_latency.max: {max_worse_pct: 5}\n",
        ),
        code: 99,
        says: &["worse than baseline: broadcast_latency.max +20.0 %"],
    },
    Case {
        name: "a bad value names the field and line",
        edit: |_| {},
        tolerances: Some("# nightly\ntolerances:\n  broadcast_latency.p99: {max_worse_pct: ten}\n"),
        code: 2,
        says: &["tolerances.yaml", "max_worse_pct", "line 3"],
    },
    Case {
        name: "an unknown metric names itself and its line",
        edit: |_| {},
        tolerances: Some(
            "tolerances:\n  lost: {max_worse: 0}\n  broadcast_latncy.p99: {max_worse_pct: 10}\n",
        ),
        code: 2,
        says: &["tolerances.broadcast_latncy.p99 (line 3): unknown metric"],
    },
    Case {
        name: "an unknown rule field names itself and its line",
        edit: |_| {},
        tolerances: Some("tolerances:\n  lost:\n    max_worse_percent: 1\n"),
        code: 2,
        says: &["max_worse_percent", "line 3"],
    },
    Case {
        name: "a negative tolerance is refused",
        edit: |_| {},
        tolerances: Some("tolerances:\n  lost: {max_worse: -1}\n"),
        code: 2,
        says: &["tolerances.lost.max_worse (line 2): must be a number, 0 or more"],
    },
];

#[test]
fn compare_cases() {
    let dir = tempfile::tempdir().unwrap();
    let base = fixture_summary();
    let baseline = folder(dir.path(), "baseline", &base);
    for (n, case) in CASES.iter().enumerate() {
        let mut new = base.clone();
        (case.edit)(&mut new);
        let new_dir = folder(dir.path(), &format!("new-{n}"), &new);
        let tol = dir.path().join(format!("t{n}")).join("tolerances.yaml");
        let out = match case.tolerances {
            Some(t) => {
                std::fs::create_dir_all(tol.parent().unwrap()).unwrap();
                std::fs::write(&tol, t).unwrap();
                compare(&[&baseline, &new_dir, Path::new("--tolerances"), &tol])
            }
            None => compare(&[&baseline, &new_dir]),
        };
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(case.code),
            "{}: stdout {stdout}\nstderr {stderr}",
            case.name
        );
        let said = if case.code == 2 { &stderr } else { &stdout };
        for s in case.says {
            assert!(
                said.contains(s),
                "{}: expected {s:?} in:\n{said}",
                case.name
            );
        }
        if case.code != 2 {
            // The one-line verdict comes last, for CI logs.
            let last = stdout.lines().last().unwrap();
            assert!(
                last.starts_with("worse than baseline") == (case.code == 99),
                "{}: {last}",
                case.name
            );
        }
    }
}

#[test]
fn a_missing_baseline_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let new = folder(dir.path(), "new", &fixture_summary());
    let missing = dir.path().join("no-such-run");
    let out = compare(&[&missing, &new]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no-such-run") && err.contains("not found"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"schema\": \"something-else\"}").unwrap();
    let out = compare(&[&garbage, &new]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("garbage.json"));
}

#[test]
fn markdown_and_history_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let base = fixture_summary();
    let baseline = folder(dir.path(), "baseline", &base);
    let mut new = base.clone();
    scale(&mut new, "/latency/broadcast/p99Ms", 1.25);
    new["run"]["id"] = "0000beef".into();
    new["run"]["startedAt"] = "2026-11-30T02:00:00+00:00".into();
    let new_dir = folder(dir.path(), "new", &new);
    // Three earlier nights (one as a bare summary.json file) and one broken entry.
    let history = dir.path().join("history");
    for (day, p99) in [(25, 300.0), (26, 350.0), (27, 320.0)] {
        let mut night = base.clone();
        night["run"]["id"] = format!("night{day}").into();
        night["run"]["startedAt"] = format!("2026-11-{day}T02:00:00+00:00").into();
        night["latency"]["broadcast"]["p99Ms"] = p99.into();
        folder(&history, &format!("nightly-{day}"), &night);
    }
    std::fs::write(
        history.join("night-28.json"),
        serde_json::to_vec(&base).unwrap(),
    )
    .unwrap();
    std::fs::write(history.join("broken.json"), "not json").unwrap();
    let md = dir.path().join("summary.md");
    let out_dir = dir.path().join("trend");
    let out = compare(&[
        &baseline,
        &new_dir,
        Path::new("--markdown"),
        &md,
        Path::new("--history"),
        &history,
        Path::new("--out"),
        &out_dir,
    ]);
    assert_eq!(out.status.code(), Some(99), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("broken.json"),
        "a skipped entry is named"
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.starts_with("### DynamoWave: worse than baseline: broadcast_latency.p99 +25.0 %"));
    assert!(md.contains("| metric | baseline | new | change | change % | verdict |"));
    assert!(md.contains("| broadcast_latency.p99 |") && md.contains("**REGRESSION**"));
    let svg = std::fs::read_to_string(out_dir.join("trend.svg")).unwrap();
    assert!(svg.contains("delivery ratio") && svg.contains("<polyline"));
    let png = std::fs::read(out_dir.join("trend.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
