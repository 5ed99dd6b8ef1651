//! What the fuzz targets (`fuzz/fuzz_targets/`) run, and the corpus replay test with them
//! (`tests/fuzz_corpus.rs`, every seed and every finding, in CI): each entry takes any
//! bytes and must return without panicking, hanging or allocating without bound.

use std::path::{Path, PathBuf};

use crate::preflight::{Machine, Target};

/// A fuzz target's body: any bytes in, nothing out but a panic if it fails.
pub type Entry = fn(&[u8]);

/// The fuzz targets this crate serves, by name (the names of `fuzz/fuzz_targets/*.rs` and
/// of their corpus folders).
pub const TARGETS: &[(&str, Entry)] = &[
    ("scenario", scenario),
    ("slo", slo),
    ("capacity_plan", capacity_plan),
    ("tolerances", tolerances),
    ("stamp", stamp),
    ("worker_result", worker_result),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A scenario file, then the preflight checks over what parsed.
pub fn scenario(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(plan) = crate::scenario::parse(text, Path::new("fuzz.yaml")) else {
        return;
    };
    let machine = Machine {
        memory_bytes: 24 << 30,
        cores: 2,
        open_files: 20_000,
        ports: 28_232,
    };
    for target in [Target::Local, Target::Loopback, Target::Other] {
        let _ = crate::preflight::check(&plan, text, &machine, target, None);
    }
}

pub fn slo(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = crate::slo::parse(text, Path::new("fuzz-slo.yaml"));
    }
}

/// A capacity plan; its `scenario:` is looked up beside it, in a folder holding one valid
/// scenario and SLO file, so both the found and the missing case are reached.
pub fn capacity_plan(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let dir = plan_folder();
    let _ = crate::capacity::plan::parse(text, &dir.join("plan.yaml"));
}

fn plan_folder() -> &'static PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dynamowave-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            dir.join("s.yaml"),
            "slo: slo.yaml\nphases:\n  - {name: a, duration: 1s}\n",
        );
        let _ = std::fs::write(
            dir.join("slo.yaml"),
            "thresholds:\n  broadcast_latency: [\"p(99)<1000\"]\n",
        );
        dir
    })
}

pub fn tolerances(data: &[u8]) {
    if let Some(text) = text(data) {
        let known: Vec<String> = ["latency.p99", "accounting.lost"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let _ = crate::compare::tolerances::parse(text, Path::new("fuzz-tol.yaml"), &known);
    }
}

/// The stamp finder over a received frame, with the default key and a run's own.
pub fn stamp(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = crate::engine::stamp::Stamp::find(text, 7);
    let key = crate::engine::stamp::Stamp::key(7);
    let _ = crate::engine::stamp::Stamp::find_with(text, &key, 7);
}

/// A worker's result as the coordinator reads it, merged into a record.
pub fn worker_result(data: &[u8]) {
    let Ok(w) = serde_json::from_slice::<crate::engine::wire::WorkerResult>(data) else {
        return;
    };
    let mut r = crate::engine::record::Record::new(1_000_000, vec![(0, 1_000_000, "p".into())]);
    let _ = r.merge(&w);
}
