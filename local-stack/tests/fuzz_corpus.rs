//! Every fuzz target's seeds and findings (`fuzz/corpus/<target>/`), run through the same
//! entry points the fuzzer calls: CI replays them all (a finding fixed stays fixed), and
//! `scripts/fuzz.sh` fuzzes for real. Each must return without panicking.

use std::path::Path;

use dynamowave_local::fuzzing::TARGETS;

#[test]
fn every_seed_and_finding_runs_clean() {
    for (name, run) in TARGETS {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus")).join(name);
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            eprintln!("{name}: {}", path.display());
            run(&std::fs::read(&path).unwrap());
            seen += 1;
        }
        assert!(seen >= 1, "{name} has no seeds in {}", dir.display());
    }
}
