//! `dynamowave run --stack NAME`: a stack found through CloudFormation's DescribeStacks and
//! DescribeStackResources, its figures read through CloudWatch and Logs. Against
//! `dynamowave local up` (the real binary, its edge answering every call; on time, late,
//! and never), and against a CloudFormation endpoint whose stack lacks the WebSocketURL
//! output.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use dynamowave_local::cloudformation::{CloudFormation, router};

mod support;
use support::LocalUp;

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/smoke.yaml");

fn dynamowave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn smoke_runs_against_a_stack_found_by_name_and_a_missing_stack_exits_2() {
    let up = LocalUp::start(&[
        "--stack-name",
        "dynamowave",
        "--sandbox-delay-ms",
        "0",
        "--connections-latency-ms",
        "0",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let run = dynamowave(&[
        "run",
        SCENARIO,
        "--stack",
        "dynamowave",
        "--endpoint-url",
        &up.endpoint_url,
        "--out",
        out.to_str().unwrap(),
    ]);
    // The stack's own counters, an independent record of what it did (the warmer is off,
    // so nothing ran before the run).
    let own = support::get_json(&up.endpoint_url, "/_dynamowave/telemetry");
    let missing = dynamowave(&[
        "run",
        SCENARIO,
        "--stack",
        "not-deployed",
        "--endpoint-url",
        &up.endpoint_url,
        "--out",
        dir.path().join("never").to_str().unwrap(),
    ]);
    drop(up);

    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["run"]["target"], "stack:dynamowave");
    assert_eq!(s["passed"], true, "{:#}", s["thresholds"]);
    // smoke's windowed threshold names its worst 5-second window.
    let windowed = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "broadcast_latency{window:5s}")
        .expect("smoke's SLO has a windowed threshold");
    let (start, end) = (
        windowed["window"]["startS"].as_f64().unwrap(),
        windowed["window"]["endS"].as_f64().unwrap(),
    );
    assert!(
        end - start == 5.0 && windowed["observed"].is_number(),
        "{windowed}"
    );
    // The DLQ named by the DeadLetterQueueUrl output was read through SQS.
    assert_eq!(s["run"]["deadLettersRead"], true);
    let a = &s["accounting"];
    assert!(a["expected"].as_u64().unwrap() > 100, "{a}");
    assert_eq!(a["expected"], a["delivered"], "{a}");
    // The target's figures came through CloudWatch GetMetricData and FilterLogEvents at
    // the edge, and agree with the harness and with the stack's own counters.
    let t = &s["telemetry"];
    assert_eq!(t["incomplete"], serde_json::json!([]), "{t}");
    assert_eq!(
        t["functions"]["SendMessage"]["invocations"],
        s["messages"]["written"]
    );
    for (name, f) in t["functions"].as_object().unwrap() {
        let physical = f["physicalName"].as_str().unwrap();
        // A function never called is absent from the stack's counters.
        let mine = |k: &str| own["functions"][physical][k].as_u64().unwrap_or(0);
        let theirs = |k: &str| f[k].as_u64().unwrap();
        assert_eq!(
            theirs("coldStarts"),
            mine("coldStarts"),
            "{name}: cold starts = instances started"
        );
        assert_eq!(theirs("invocations"), mine("invocations"), "{name}");
        assert_eq!(theirs("errors"), mine("errors"), "{name}");
    }

    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--stack not-deployed"), "{stderr}");
    assert!(
        stderr.contains("Stack with id not-deployed does not exist"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_without_the_websocket_output_exits_2_naming_both() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let cfn = CloudFormation {
        stack_name: "half-deployed".into(),
        stack_id: "arn:aws:cloudformation:us-east-1:000000000000:stack/half-deployed/1".into(),
        creation_time: "2026-01-01T00:00:00.000Z".into(),
        parameters: Vec::new(),
        outputs: vec![("DeadLetterQueueUrl".into(), format!("{endpoint}/q"))],
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(Arc::new(cfn)))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let args = [
        "run",
        SCENARIO,
        "--stack",
        "half-deployed",
        "--endpoint-url",
        &endpoint,
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from);
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dynamowave(&args)
    })
    .await
    .unwrap();
    let _ = stop.send(());
    let _ = server.await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--stack half-deployed"), "{stderr}");
    assert!(
        stderr.contains("no output WebSocketURL") && stderr.contains("DeadLetterQueueUrl"),
        "{stderr}"
    );
    assert!(!out.join("summary.json").exists());
}

/// A target-metric threshold, so a run's verdict depends on CloudWatch's data.
fn target_slo(dir: &std::path::Path) -> std::path::PathBuf {
    let slo = dir.join("slo.yaml");
    std::fs::write(
        &slo,
        "thresholds:\n  \"function_invocations{function:SendMessage}\": [\"count>0\"]\n  lost: [\"count==0\"]\n",
    )
    .unwrap();
    slo
}

#[test]
fn late_metrics_are_waited_for_and_missing_ones_fail_naming_incomplete_data() {
    let dir = tempfile::tempdir().unwrap();
    let slo = target_slo(dir.path());
    // smoke on a fresh `local up` publishing `delay` late; (exit status, stderr, summary).
    let run_late = |delay: &str, extra: &[&str], name: &str| {
        let up = LocalUp::start(&["--publish-delay", delay, "--sandbox-delay-ms", "0"]);
        let out = dir.path().join(name);
        let mut args = vec!["run", SCENARIO, "--stack", "dynamowave"];
        args.extend([
            "--endpoint-url",
            &up.endpoint_url,
            "--slo",
            slo.to_str().unwrap(),
        ]);
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        let run = dynamowave(&args);
        drop(up);
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        (
            run.status.code(),
            String::from_utf8_lossy(&run.stderr).to_string(),
            s,
        )
    };
    // Published 3 s late, and counted as complete 4 s after the run: the run waits, then
    // judges on complete data.
    let (code, stderr, s) = run_late("3s", &["--metrics-delay", "4s"], "late");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("waiting for complete data from CloudWatch"),
        "{stderr}"
    );
    let t = &s["telemetry"];
    assert_eq!(t["incomplete"], serde_json::json!([]), "{t}");
    assert!(t["waitedS"].as_f64().unwrap() >= 3.0, "{t}");
    assert!(stderr.contains("(--metrics-delay)"), "{stderr}");
    assert_eq!(
        t["functions"]["SendMessage"]["invocations"],
        s["messages"]["written"]
    );

    // Published an hour late, with a 2 s settle: the threshold fails saying why.
    let (code, stderr, s) = run_late("1h", &["--settle", "2s"], "never");
    assert_eq!(code, Some(99), "{stderr}");
    assert!(stderr.contains("still incomplete after"), "{stderr}");
    let v = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["metric"] == "function_invocations")
        .unwrap()
        .clone();
    assert_eq!(v["passed"], false, "{v}");
    let note = v["note"].as_str().unwrap();
    assert!(
        note.contains("incomplete data") && note.contains("PartialData"),
        "{note}"
    );
    // What the harness measured itself is judged as usual.
    let lost = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["metric"] == "lost")
        .unwrap();
    assert_eq!(lost["passed"], true, "{lost}");
}
