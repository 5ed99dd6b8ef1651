use std::path::Path;

use super::*;

/// This machine's kind, fixed so the cases do not depend on where they run.
fn machine() -> Machine {
    Machine {
        memory_bytes: 23 * 1024 * 1024 * 1024,
        cores: 2,
        open_files: 20_000,
        ports: 28_232,
    }
}

fn findings(yaml: &str, target: Target, workers: Option<u32>) -> Findings {
    let plan = crate::scenario::parse(yaml, Path::new("s.yaml")).expect("the scenario parses");
    check(&plan, yaml, &machine(), target, workers)
}

const OK: &str = "phases:\n  - {name: join, duration: 10s, arrival_rate: 100}\n  - {name: chat, duration: 1m, message_rate: 10}\n";

#[test]
fn a_plan_within_every_limit_passes() {
    for target in [
        Target::Local,
        Target::ApiGateway,
        Target::Loopback,
        Target::Other,
    ] {
        assert_eq!(
            findings(OK, target, None),
            Findings::default(),
            "{target:?}"
        );
    }
    assert!(findings(OK, Target::Local, Some(32)).refusals.is_empty());
}

type Case = (&'static str, String, Target, Option<u32>, Vec<&'static str>);

/// Each case: a scenario, where it goes, `--workers`, and what the one refusal must say.
#[test]
fn impossible_plans_are_refused_naming_field_line_figure_and_limit() {
    let cases: Vec<Case> = vec![
        (
            "the issue's typo: four billion clients",
            "phases:\n  - name: join\n    duration: 1h\n    arrival_rate: 2000000\n    max_clients: 4000000000\n".into(),
            Target::Local,
            None,
            vec![
                "phases[0] (join).max_clients (line 5)",
                "4,000,000,000 clients need about 27.9 TiB at 7.5 KiB per client; this machine has 23.0 GiB",
            ],
        ),
        (
            "a message bigger than API Gateway's frame",
            format!("message_size: 99999999999\n{OK}"),
            Target::Local,
            None,
            vec![
                "message_size (line 1): 99,999,999,999 bytes make frames of",
                "at most 32,768 bytes",
            ],
        ),
        (
            "a message bigger than the client reads, elsewhere",
            format!("message_size: 99999999999\n{OK}"),
            Target::Loopback,
            None,
            vec!["message_size (line 1)", "read messages of at most 64.0 MiB"],
        ),
        (
            "a phase of 999999999 h",
            "phases:\n  - {name: join, duration: 10s, arrival_rate: 1}\n  - {name: soak, duration: 999999999h}\n".into(),
            Target::Other,
            None,
            vec![
                "phases[1] (soak).duration (line 3): 999,999,999 h brings the run to 999,999,999 h",
                "at most 24 h",
            ],
        ),
        (
            "longer than API Gateway keeps a connection",
            "drain: 10s\nphases:\n  - {name: join, duration: 10s, arrival_rate: 1}\n  - {name: soak, duration: 2h}\n".into(),
            Target::ApiGateway,
            None,
            vec![
                "phases[1] (soak).duration (line 4): 2 h keeps the first clients connected for 2 h",
                "closes every WebSocket connection after 2 h",
            ],
        ),
        (
            "more clients than one source address has ports",
            "phases:\n  - {name: join, duration: 100s, arrival_rate: 500}\n".into(),
            Target::Other,
            None,
            vec![
                "phases[0] (join).arrival_rate (line 2): 50,001 clients need as many ephemeral ports",
                "one source address give 28,232",
            ],
        ),
        (
            "more loopback addresses' ports than the plan names",
            "source_addresses: 1\nphases:\n  - {name: join, duration: 100s, arrival_rate: 500}\n".into(),
            Target::Local,
            None,
            vec!["50,001 clients need as many ephemeral ports", "give 28,232"],
        ),
        (
            "--workers past the ceiling",
            OK.into(),
            Target::Local,
            Some(1000),
            vec!["--workers 1000: this machine allows at most 32 worker processes (16 per core, 2 cores)"],
        ),
        (
            "more workers than the ceiling, split automatically",
            "phases:\n  - {name: join, duration: 1000s, arrival_rate: 1000}\n".into(),
            Target::Local,
            None,
            vec![
                "phases[0] (join).arrival_rate (line 2): 1,000,001 clients need 51 worker processes at 19,744 open files each",
                "at most 32",
            ],
        ),
    ];
    for (what, yaml, target, workers, wanted) in cases {
        let f = findings(&yaml, target, workers);
        let refusal = f
            .refusals
            .iter()
            .find(|r| r.contains(wanted[0]))
            .unwrap_or_else(|| panic!("{what}: no refusal says {:?}: {:?}", wanted[0], f.refusals));
        for w in wanted {
            assert!(refusal.contains(w), "{what}: {refusal:?} lacks {w:?}");
        }
    }
}

#[test]
fn the_issue_typos_are_all_refused_at_once_and_the_run_is_not_figured_past_a_day() {
    let yaml = "message_size: 99999999999\nphases:\n  - {name: a, duration: 999999999h, max_clients: 4000000000, arrival_rate: 10}\n";
    let f = findings(yaml, Target::Local, None);
    assert_eq!(f.refusals.len(), 2, "{:?}", f.refusals);
    assert!(f.refusals[0].contains("at most 24 h"));
    assert!(f.refusals[1].contains("message_size"));
}

#[test]
fn a_frame_rate_past_the_cores_is_a_warning() {
    // 1,000 clients in one room, 1,000 messages/s: a million frames/s on two cores.
    let yaml = "phases:\n  - {name: join, duration: 10s, arrival_rate: 100}\n  - {name: chat, duration: 10s, message_rate: 1000}\n";
    let f = findings(yaml, Target::Local, None);
    assert!(f.refusals.is_empty(), "{:?}", f.refusals);
    assert_eq!(f.warnings.len(), 1);
    assert!(
        f.warnings[0].contains("the harness, not the target"),
        "{:?}",
        f.warnings
    );
}

#[test]
fn targets_are_told_apart() {
    assert_eq!(Target::of("local"), Target::Local);
    assert_eq!(Target::of("stack:chat"), Target::ApiGateway);
    assert_eq!(
        Target::of("wss://abc.execute-api.eu-west-1.amazonaws.com/prod"),
        Target::ApiGateway
    );
    assert_eq!(Target::of("ws://127.0.0.1:9000/x"), Target::Loopback);
    assert_eq!(Target::of("ws://localhost:9000"), Target::Loopback);
    assert_eq!(Target::of("wss://chat.example.com/ws"), Target::Other);
}

#[test]
fn lines_are_found_in_block_and_flow_phases() {
    let text = "name: x\nphases:\n  - name: a\n    duration: 1s\n  - {name: b, duration: 2s}\n  # a comment\n  -\n    name: c\nmessage_size: 10\n";
    assert_eq!(line_of(text, "duration", Some(0)), Some(4));
    assert_eq!(line_of(text, "duration", Some(1)), Some(5));
    assert_eq!(
        line_of(text, "duration", Some(2)),
        Some(7),
        "the item's own line"
    );
    assert_eq!(line_of(text, "message_size", None), Some(9));
    assert_eq!(line_of(text, "name", None), Some(1));
    assert_eq!(line_of(text, "duration", Some(3)), None);
}

#[test]
fn figures_read_as_people_write_them() {
    assert_eq!(thousands(4_000_000_000), "4,000,000,000");
    assert_eq!(thousands(999), "999");
    assert_eq!(bytes(512), "512 B");
    assert_eq!(bytes(7_680), "7.5 KiB");
    assert_eq!(hours(Duration::from_secs(2 * 3600 + 60)), "2 h 1 min");
    assert_eq!(hours(Duration::from_secs(90)), "1 min");
}
