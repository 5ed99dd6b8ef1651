//! Scenario and SLO files: every shipped one validates; bad ones fail with the file, the
//! field and (for structural errors) the line.

use std::path::Path;

use dynamowave_harness::{scenario, slo};

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
