//! The shipped chaos scenarios on the local stack, both ways and on the AWS path (`local up`,
//! then `run --stack … --endpoint-url`): each passes as shipped, and fails with exit 99,
//! naming the threshold, when the feature it proves is turned off.
//! Plus: chaos in effect when the run is interrupted (SIGINT) is reverted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{LocalUp, binaries};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Copies `scenarios/{name}.yaml` (with `edits` applied) and its SLO file into `dir`.
fn variant(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(format!("{ROOT}/scenarios/{name}.yaml")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{name}.yaml has no {from:?}");
        text = text.replace(from, to);
    }
    std::fs::create_dir_all(dir.join("slo")).unwrap();
    std::fs::copy(
        format!("{ROOT}/scenarios/slo/{name}.yaml"),
        dir.join(format!("slo/{name}.yaml")),
    )
    .unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a scenario the way it runs against AWS: `local up` with the scenario's `local:`
/// parameters and `local_stack:` settings as its flags, then `run --stack NAME
/// --endpoint-url EDGE` (DescribeStackResources, CloudWatch and Logs at the edge); returns
/// the exit code and summary.json.
fn run(scenario: &Path, out: &Path) -> (i32, Value) {
    let plan: Value = yaml_serde::from_str(&std::fs::read_to_string(scenario).unwrap()).unwrap();
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    let mut flags: Vec<String> = Vec::new();
    if let Some(params) = plan["local"].as_object() {
        flags.push("--parameter-overrides".into());
        flags.extend(params.iter().map(|(k, v)| format!("{k}={}", text(v))));
    }
    for (k, v) in plan["local_stack"].as_object().into_iter().flatten() {
        flags.extend([format!("--{}", k.replace('_', "-")), text(v)]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let up = LocalUp::start(&flags);
    let status = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .arg("run")
        .arg(scenario)
        .args(["--stack", "dynamowave", "--endpoint-url", &up.endpoint_url])
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    drop(up);
    let summary = std::fs::read(out.join("summary.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (status.code().unwrap_or(-1), summary)
}

fn failed(summary: &Value) -> Vec<String> {
    summary["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == false)
        .map(|t| {
            // Observed and any note after the name, so a failure says why.
            format!(
                "{} {} (observed {}{})",
                t["name"].as_str().unwrap(),
                t["expression"].as_str().unwrap(),
                t["observed"],
                t["note"]
                    .as_str()
                    .map(|n| format!("; {n}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// The scenario passes as shipped, with every chaos action applied and reverted; the
/// variant exits 99 and fails (at least) `reason`.
fn both_ways(name: &str, off: &[(&str, &str)], reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (code, s) = run(&variant(dir.path(), name, &[]), &dir.path().join("on"));
    assert_eq!(code, 0, "{name} as shipped: failed {:?}", failed(&s));
    for w in s["chaos"].as_array().unwrap() {
        assert!(w["error"].is_null(), "{name}: {w}");
        assert!(
            w["appliedAtS"].as_f64().is_some(),
            "{name}: never applied: {w}"
        );
        if w["forS"].as_f64().unwrap() > 0.0 {
            assert!(
                w["revertedAtS"].as_f64().is_some(),
                "{name}: never reverted: {w}"
            );
        }
    }
    let a = &s["accounting"];
    assert_eq!(
        a["expected"].as_u64().unwrap(),
        a["delivered"].as_u64().unwrap()
            + a["late"].as_u64().unwrap()
            + a["deadLettered"].as_u64().unwrap()
            + a["lost"].as_u64().unwrap(),
        "{name}: the totals add up"
    );
    let (code, s) = run(&variant(dir.path(), name, off), &dir.path().join("off"));
    let why = failed(&s);
    assert_eq!(code, 99, "{name} with its feature off: failed {why:?}");
    assert!(
        why.iter().any(|f| f.starts_with(reason)),
        "{name} with its feature off should fail {reason}; failed {why:?}"
    );
}

#[test]
fn lambda_errors_end_delivered_or_dead_lettered_and_without_the_dlq_recipients_get_duplicates() {
    both_ways(
        "chaos-lambda-errors-dlq",
        &[(
            "  WarmerEnabled: \"false\"",
            "  WarmerEnabled: \"false\"\n  DeadLetterQueueEnabled: \"false\"",
        )],
        "duplicated",
    );
}

#[test]
fn api_throttling_refuses_a_storm_at_the_edge_and_without_it_connect_is_throttled() {
    both_ways(
        "chaos-throttle-api",
        &[("rate: 10, burst: 5", "rate: 100000, burst: 100000")],
        "function_throttles{function:Connect}",
    );
}

#[test]
fn after_the_warmer_there_are_no_cold_starts_and_without_it_there_are() {
    both_ways(
        "warmer-cold-starts",
        &[("  WarmerEnabled: \"true\"", "  WarmerEnabled: \"false\"")],
        "cold_starts{function:Connect,phase:burst}",
    );
}

#[test]
fn stale_rows_are_deleted_on_the_first_410_and_kept_ones_cost_every_broadcast() {
    both_ways(
        "stale-connections",
        &[(
            "  WarmerEnabled: \"false\"",
            "  WarmerEnabled: \"false\"\n  DeleteGoneConnections: \"false\"",
        )],
        "gone_repeats",
    );
}

#[test]
fn reserved_concurrency_holds_against_a_noisy_neighbour_and_without_it_the_chat_starves() {
    both_ways(
        "reserved-concurrency-noisy-neighbor",
        &[
            (
                "  SendMessageReservedConcurrency: \"10\"",
                "  SendMessageReservedConcurrency: \"-1\"",
            ),
            (
                "  BroadcastReservedConcurrency: \"10\"",
                "  BroadcastReservedConcurrency: \"-1\"",
            ),
        ],
        "function_throttles{function:SendMessage}",
    );
}

#[test]
fn a_game_day_loses_nothing_and_without_the_dlq_it_duplicates() {
    both_ways(
        "game-day",
        &[(
            "  WarmerEnabled: \"false\"",
            "  WarmerEnabled: \"false\"\n  DeadLetterQueueEnabled: \"false\"",
        )],
        "duplicated",
    );
}

/// A child killed if a failed assertion leaves it running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chaos_in_effect_is_reverted_when_the_run_is_interrupted() {
    let up = LocalUp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("interrupted.yaml");
    std::fs::write(
        &scenario,
        r#"
phases:
  - {name: join, duration: 2s, arrival_rate: 5, max_clients: 5}
  - {name: chat, duration: 60s, message_rate: 2}
chaos:
  - {at: 1s, for: 50s, action: lambda-latency, params: {function: SendMessage, percentage: 10, min_ms: 5}}
  - {at: 1s, for: 50s, action: throttle-function, params: {function: Broadcast, reserved: 3}}
"#,
    )
    .unwrap();
    let harness = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .arg("run")
        .arg(&scenario)
        .args(["--endpoint-url", &up.endpoint_url, "--out"])
        .arg(dir.path().join("out"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let harness = Guard(harness);
    let lambda = dynamowave_harness::aws::clients(Some(&up.endpoint_url), "us-east-1")
        .await
        .lambda;
    let faults = |name: &'static str| {
        let lambda = lambda.clone();
        async move {
            let c = lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .unwrap();
            let vars = c
                .environment()
                .and_then(|e| e.variables())
                .cloned()
                .unwrap_or_default();
            (vars.get("DYNAMOWAVE_FAULTS").cloned(), vars.len())
        }
    };
    let reserved = |name: &'static str| {
        let lambda = lambda.clone();
        async move {
            lambda
                .get_function_concurrency()
                .function_name(name)
                .send()
                .await
                .unwrap()
                .reserved_concurrent_executions()
        }
    };
    let (before, vars_before) = faults("dynamowave-SendMessageFunction").await;
    assert_eq!(before, None);
    let broadcast_before = reserved("dynamowave-BroadcastFunction").await;
    assert_eq!(broadcast_before, Some(50), "the template's reservation");

    // Wait (bounded) until both actions are in effect, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let applied = faults("dynamowave-SendMessageFunction").await.0.is_some()
            && reserved("dynamowave-BroadcastFunction").await == Some(3);
        if applied {
            break;
        }
        assert!(Instant::now() < deadline, "chaos was never applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut harness = harness;
    unsafe { libc::kill(harness.0.id() as i32, libc::SIGINT) };
    let status = harness.0.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut harness.0.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "interrupted: {err}");
    assert!(err.contains("interrupted"), "{err}");

    let (after, vars_after) = faults("dynamowave-SendMessageFunction").await;
    assert_eq!(after, None, "the fault layer is off again");
    assert_eq!(vars_after, vars_before, "no other variable was touched");
    assert_eq!(reserved("dynamowave-BroadcastFunction").await, Some(50));
    assert!(
        !dir.path().join("out/summary.json").exists(),
        "nothing half-written"
    );
}

#[test]
fn replayed_dead_letters_are_accounted_as_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = variant(
        dir.path(),
        "chaos-lambda-errors-dlq",
        &[("chaos:\n", "chaos:\n  - at: 15s\n    action: dlq-replay\n")],
    );
    let slo = dir.path().join("slo/replayed.yaml");
    std::fs::write(
        &slo,
        "thresholds:\n  lost: [\"count==0\"]\n  dead_lettered: [\"count==0\"]\n  duplicated: [\"count==0\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .arg("run")
        .arg(&scenario)
        .arg("--slo")
        .arg(&slo)
        .arg("--out")
        .arg(&out)
        .args(["--template", &format!("{ROOT}/template.yaml")])
        .arg("--binaries")
        .arg(binaries())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let s: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(status.code(), Some(0), "failed {:?}", failed(&s));
    let a = &s["accounting"];
    assert!(
        a["late"].as_u64().unwrap() > 0,
        "the replayed ones arrived late: {a}"
    );
    let replay = s["chaos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["action"] == "dlq-replay")
        .unwrap();
    assert!(
        replay["error"].is_null() && replay["appliedAtS"].is_number(),
        "{replay}"
    );
}

/// `run` on the embedded stack with `--template`; returns the exit code and summary.json.
fn run_embedded(scenario: &Path, template: &Path, out: &Path) -> (i32, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .arg("run")
        .arg(scenario)
        .arg("--template")
        .arg(template)
        .arg("--binaries")
        .arg(binaries())
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let summary = std::fs::read(out.join("summary.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    if summary.is_null() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    (output.status.code().unwrap_or(-1), summary)
}

/// The FIS window: applied and reverted without error (the experiment stopped, its template
/// deleted: a failure there would be an error on the window and CHAOS NOT REVERTED).
fn assert_fis_window(s: &Value) {
    let w = &s["chaos"][0];
    assert_eq!(w["action"], "aws:lambda:invocation-error", "{w}");
    assert!(w["appliedAtS"].as_f64().is_some(), "applied: {w}");
    assert!(w["revertedAtS"].as_f64().is_some(), "reverted: {w}");
    assert!(w["error"].is_null(), "{w}");
}

#[test]
fn a_fis_error_on_the_seed_python_chat_loses_what_was_sent_in_its_window() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let seed = Path::new(ROOT).join("baselines/seed-python");
    let (code, s) = run_embedded(
        &seed.join("scenarios/fis-send-errors.yaml"),
        &seed.join("template.yaml"),
        &dir.join("out"),
    );
    assert_eq!(code, 0, "the scenario's SLO holds: {:?}", failed(&s));
    assert_fis_window(&s);
    let a = &s["accounting"];
    assert!(a["lost"].as_u64().unwrap() > 0, "{a}");
    assert!(a["delivered"].as_u64().unwrap() > 0, "{a}");
    assert_eq!(a["deadLettered"], 0, "{a}");
}

#[test]
fn the_same_fis_scenario_runs_against_the_reference_functions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let seed = Path::new(ROOT).join("baselines/seed-python/scenarios");
    let mut text = std::fs::read_to_string(seed.join("fis-send-errors.yaml")).unwrap();
    text = text.replace("SendMessageHandler", "SendMessage");
    std::fs::create_dir_all(dir.join("slo")).unwrap();
    let slo = std::fs::read_to_string(seed.join("slo/fis-send-errors.yaml"))
        .unwrap()
        .replace("SendMessageHandler", "SendMessage");
    std::fs::write(dir.join("slo/fis-send-errors.yaml"), slo).unwrap();
    let scenario = dir.join("fis-send-errors.yaml");
    std::fs::write(&scenario, text).unwrap();
    let (code, s) = run_embedded(
        &scenario,
        &Path::new(ROOT).join("template.yaml"),
        &dir.join("out"),
    );
    assert_eq!(code, 0, "{:?}", failed(&s));
    assert_fis_window(&s);
}
