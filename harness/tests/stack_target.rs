//! `dynamowave run --stack NAME`: a stack found through CloudFormation's DescribeStacks.
//! Against `dynamowave local up` (the real binary, its edge answering DescribeStacks), and
//! against a CloudFormation endpoint whose stack lacks the WebSocketURL output.

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
