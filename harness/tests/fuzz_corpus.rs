//! Every fuzz target's seeds and findings (`fuzz/corpus/<target>/`), run through the same
//! entry points the fuzzer calls: CI replays them all (a finding fixed stays fixed), and
//! `scripts/fuzz.sh` fuzzes for real. Each must return without panicking.

use std::path::{Path, PathBuf};

use dynamowave_harness::engine::Shard;
use dynamowave_harness::engine::record::{Event, MessageInfo, Receipt, Record};
use dynamowave_harness::fuzzing::TARGETS;

fn corpus(target: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus")).join(target)
}

#[test]
fn every_seed_and_finding_runs_clean() {
    for (name, run) in TARGETS {
        let dir = corpus(name);
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            // A panic here names the input; the fuzzer's own message is in the test output.
            eprintln!("{name}: {}", path.display());
            run(&data);
            seen += 1;
        }
        assert!(seen >= 1, "{name} has no seeds in {}", dir.display());
    }
}

/// The worker-result seed is a real worker's output: it still decodes and merges, so the
/// fuzzer starts from the format as it is (`DYNAMOWAVE_WRITE_SEED=1` writes it anew).
#[test]
fn the_worker_result_seed_is_the_current_wire_format() {
    let mut r = Record::new(1_000_000, vec![(0, 10_000_000, "chat".into())]);
    for c in 0..2 {
        r.add_client(c, None);
        r.apply(Event::Connected {
            client: c,
            at_us: 10,
            connect_us: 900,
            connection_id: Some(format!("id{c}=")),
        });
    }
    r.add_message(MessageInfo {
        sender: 0,
        seq: 0,
        intended_us: 1_000,
        room: None,
        sent: true,
    });
    r.apply(Event::Received(vec![Receipt {
        recipient: 1,
        sender: 0,
        seq: 0,
        intended_us: 1_000,
        sent_us: 1_010,
        received_us: 4_000,
    }]));
    let wire = serde_json::to_vec_pretty(&r.to_wire(Shard::SINGLE, 1, 10, None)).unwrap();
    let path = corpus("worker_result").join("two-clients.json");
    if std::env::var_os("DYNAMOWAVE_WRITE_SEED").is_some() {
        std::fs::write(&path, &wire).unwrap();
    }
    let seed = std::fs::read(&path).unwrap();
    let w: dynamowave_harness::engine::wire::WorkerResult =
        serde_json::from_slice(&seed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut merged = Record::new(1_000_000, vec![(0, 10_000_000, "chat".into())]);
    merged.merge(&w).unwrap();
    assert_eq!(merged.latency.len(), 1);
    assert_eq!(merged.clients.len(), 2);
}
