//! Scenario and SLO files: every shipped one validates; bad ones fail with the file, the
//! field and (for structural errors) the line.

use std::path::Path;

use dynamowave_harness::{preflight, scenario, slo};

#[test]
fn every_shipped_scenario_and_slo_file_is_valid() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            if dynamowave_harness::capacity::plan::is_plan(&path) {
                dynamowave_harness::capacity::plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
                continue;
            }
            let plan = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let target = preflight::Target::of(plan.target.as_deref().unwrap_or("local"));
            preflight::refuse(&plan, &preflight::Machine::this(), target, None)
                .unwrap_or_else(|e| panic!("{e}"));
            let slo = plan
                .slo
                .as_ref()
                .expect("every shipped scenario names its SLO file");
            slo::load(slo).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 1);
}

/// The issue's typos, through the real binary: both commands exit 2 naming each field, its
/// line, the figure and the limit, and `run` starts nothing (no report folder, at once).
#[test]
fn impossible_plans_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    std::fs::write(
        &path,
        "name: typo\nmessage_size: 99999999999\nphases:\n  - name: join\n    duration: 1h\n    \
         max_clients: 4000000000\n    arrival_rate: 2000000\n",
    )
    .unwrap();
    let out = dir.path().join("report");
    for command in ["validate", "run"] {
        let mut args = vec![command, path.to_str().unwrap()];
        if command == "run" {
            args.extend(["--out", out.to_str().unwrap()]);
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dynamowave"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(60) {
                child.kill().unwrap();
                panic!("{command} did not refuse the plan within a minute");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        for wanted in [
            "typo.yaml: this plan cannot run here",
            "message_size (line 2): 99,999,999,999 bytes",
            "at most 32,768 bytes",
            "phases[0] (join).max_clients (line 6): 4,000,000,000 clients need about 27.9 TiB at 7.5 KiB per client",
            "ephemeral ports",
            "worker processes",
        ] {
            assert!(
                stderr.contains(wanted),
                "{command}: {wanted:?} not in {stderr}"
            );
        }
        assert!(
            !stderr.contains("running over"),
            "{command} started workers: {stderr}"
        );
    }
    assert!(
        !out.exists(),
        "run wrote a report folder for a refused plan"
    );
}

#[test]
fn bad_scenarios_name_the_field_and_line() {
    let base = "phases:\n  - name: a\n    duration: 1s\n    arrival_rate: 1\n";
    let cases: &[(&str, &[&str])] = &[
        (
            "phases:\n  - name: a\n    duration: 1s\n    arival_rate: 1\n",
            &["unknown field `arival_rate`", "line 4"],
        ),
        ("nmae: x\nphases: []\n", &["unknown field `nmae`", "line 1"]),
        (
            "phases:\n  - name: a\n    duration: 10 parsecs\n",
            &["unknown unit", "line 3"],
        ),
        ("phases: []\n", &["phases: at least one phase"]),
        (
            &format!("{base}message_size: 10\n"),
            &["message_size", "at least 64"],
        ),
        (&format!("{base}slow_readers: 2\n"), &["slow_readers"]),
        (&format!("{base}rooms: 0\n"), &["rooms"]),
        (
            &format!("{base}protocol:\n  send: '{{\"x\":1}}'\n"),
            &["protocol.send", "{{payload}}"],
        ),
        (
            &format!("{base}protocol:\n  payload: message\n"),
            &["protocol.payload"],
        ),
        (
            "phases:\n  - name: a\n    duration: 1s\n    message_rate: 1\n    message_rate_per_client: 1\n",
            &["phases[0] (a).message_rate", "not both"],
        ),
        (
            "phases:\n  - name: a\n    duration: 1s\n    departure_rate: -1\n",
            &["departure_rate"],
        ),
        (
            "phases:\n  - name: a\n    duration: 0s\n",
            &["duration", "longer than 0"],
        ),
    ];
    for (text, needles) in cases {
        let err = scenario::parse(text, Path::new("bad.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.yaml"), "{err}");
        for n in *needles {
            assert!(err.contains(n), "{text:?}\n → {err}\n (wanted {n:?})");
        }
    }
}

#[test]
fn defaults_are_the_reference_chats_protocol() {
    let plan = scenario::parse(
        "phases:\n  - name: a\n    duration: 2s\n    arrival_rate: 1\n",
        Path::new("s.yaml"),
    )
    .unwrap();
    assert_eq!(
        plan.protocol.send,
        r#"{"action":"sendMessage","message":{{payload}}}"#
    );
    assert_eq!(plan.protocol.payload, "/message");
    assert!(plan.protocol.whoami.is_some() && plan.protocol.echo_to_sender);
    assert_eq!(plan.name, "s");
    assert_eq!(plan.duration(), std::time::Duration::from_secs(2));
}
