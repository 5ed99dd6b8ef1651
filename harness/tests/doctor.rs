//! `dynamowave doctor` against `dynamowave local up` (the real binaries, on loopback): the
//! shipped scenarios can go ahead; a scenario naming a function the stack lacks, and fault
//! chaos on a stack whose functions lack the reference fault layer, exit 2 naming it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;
use support::LocalUp;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn doctor(scenario: &Path, endpoint: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .arg("doctor")
        .arg(scenario)
        .args(["--stack", "dynamowave", "--endpoint-url", endpoint])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_shipped_scenarios_can_go_ahead_and_a_missing_function_is_named() {
    let up = LocalUp::start(&["--sandbox-delay-ms", "0"]);
    let mut checked = 0;
    for entry in std::fs::read_dir(format!("{ROOT}/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".yaml") || name.starts_with("capacity") {
            continue;
        }
        let o = doctor(&path, &up.endpoint_url);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        let out = text(&o);
        assert!(out.contains("ok: the run can go ahead"), "{name}: {out}");
        assert!(out.contains("cloudwatch:GetMetricData"), "{name}: {out}");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} scenarios");

    // The warmer scenario's SLO names functions; one the stack lacks is named.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("slo")).unwrap();
    let scenario =
        std::fs::read_to_string(format!("{ROOT}/scenarios/chaos-lambda-errors-dlq.yaml"))
            .unwrap()
            .replace(
                "{function: Broadcast, percentage: 100}",
                "{function: Fanout, percentage: 100}",
            );
    assert!(scenario.contains("Fanout"));
    let path = dir.path().join("missing.yaml");
    std::fs::write(&path, scenario).unwrap();
    std::fs::copy(
        format!("{ROOT}/scenarios/slo/chaos-lambda-errors-dlq.yaml"),
        dir.path().join("slo/chaos-lambda-errors-dlq.yaml"),
    )
    .unwrap();
    let o = doctor(&path, &up.endpoint_url);
    drop(up);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("chaos lambda-error at 6s names function \"Fanout\""),
        "{out}"
    );
    assert!(out.contains("1 problem(s)"), "{out}");
}

#[test]
fn fault_chaos_on_functions_without_the_fault_layer_is_refused() {
    let template = std::fs::read_to_string(format!("{ROOT}/template.yaml")).unwrap();
    let stripped: String = template
        .lines()
        .filter(|l| !l.contains("DYNAMOWAVE_FAULT_LAYER"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        stripped.len() < template.len(),
        "the template sets the marker"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, stripped).unwrap();
    let up = LocalUp::start_with(&path, &["--sandbox-delay-ms", "0"]);
    let o = doctor(
        Path::new(&format!("{ROOT}/scenarios/chaos-lambda-errors-dlq.yaml")),
        &up.endpoint_url,
    );
    // A scenario without fault actions still can go ahead on that stack.
    let smoke = doctor(
        Path::new(&format!("{ROOT}/scenarios/smoke.yaml")),
        &up.endpoint_url,
    );
    drop(up);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("needs the reference fault layer on function Broadcast"),
        "{out}"
    );
    assert_eq!(smoke.status.code(), Some(0), "{}", text(&smoke));
}

#[test]
fn fis_chaos_on_a_teams_python_chat_is_ready_on_the_local_stack() {
    let seed = Path::new(ROOT).join("baselines/seed-python");
    let up = LocalUp::start_with(&seed.join("template.yaml"), &["--sandbox-delay-ms", "0"]);
    let o = doctor(
        &seed.join("scenarios/fis-send-errors.yaml"),
        &up.endpoint_url,
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("python3.12: the local stack applies FIS faults at its Runtime API"),
        "{out}"
    );
    for permission in [
        "fis:CreateExperimentTemplate",
        "fis:StopExperiment",
        "iam:PassRole",
    ] {
        assert!(out.contains(permission), "{permission}: {out}");
    }
}
