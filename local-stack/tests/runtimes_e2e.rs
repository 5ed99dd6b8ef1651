//! Teams' own functions on the local stack, each with its real runtime interface client
//! (scripts/setup-runtimes.sh installs them): the seed design's Python chat (boto3, the
//! @connections endpoint built from the event as `https://{domainName}/{stage}`), a Node.js
//! ES-module chat (the SDK v3 from the runtime, endpoints from AWS_ENDPOINT_URL) and a
//! provided.al2023 shell chat each broadcast to three clients; probes show the environment,
//! the log lines, a timeout and a crash for every runtime family.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use dynamowave_local::stack::{RunningStack, start};
use serde_json::{Value, json};
use support::{Ws, connect, next_json, options, sdk, send_json};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(path)
}

async fn stack_of(template: PathBuf) -> RunningStack {
    let mut o = options();
    o.template = template;
    start(o).await.expect("the local stack starts")
}

/// Every line of a function's log group, through FilterLogEvents.
async fn log_lines(stack: &RunningStack, function: &str) -> Vec<String> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk(stack).await);
    let name = &stack.endpoints.functions[function];
    let mut lines = Vec::new();
    let mut token = None;
    loop {
        let page = logs
            .filter_log_events()
            .log_group_name(format!("/aws/lambda/{name}"))
            .set_next_token(token)
            .send()
            .await
            .expect("FilterLogEvents");
        lines.extend(
            page.events()
                .iter()
                .filter_map(|e| e.message().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return lines;
        }
    }
}

/// Three clients; the first sends, all three get the message (the sender included).
/// `function` is the one whose log group explains a missing frame.
async fn three_clients_chat(stack: &RunningStack, function: &str, text: &str) -> Vec<Value> {
    let url = &stack.endpoints.websocket_url;
    let mut clients: Vec<Ws> = Vec::new();
    for _ in 0..3 {
        clients.push(connect(url).await);
    }
    send_json(
        &mut clients[0],
        json!({"action": "sendMessage", "message": text}),
    )
    .await;
    let mut frames = Vec::new();
    for ws in &mut clients {
        match tokio::time::timeout(Duration::from_secs(60), next_json(ws, 90)).await {
            Ok(frame) => frames.push(frame),
            Err(_) => panic!(
                "no frame within 60 s; {function}'s log: {:#?}",
                log_lines(stack, function).await
            ),
        }
    }
    for mut ws in clients {
        let _ = futures_util::SinkExt::close(&mut ws).await;
    }
    frames
}

/// The log group's lines once a cold REPORT line is in (it follows the function's answer,
/// which may reach the clients first), within 30 s.
async fn lines_with_report(stack: &RunningStack, function: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let lines = log_lines(stack, function).await;
        let reported = lines
            .iter()
            .any(|l| l.starts_with("REPORT RequestId: ") && l.contains("Init Duration: "));
        if reported || std::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a line containing `needle` reaches the function's log group within 30 s (a
/// process's output is read from its pipe as it comes).
async fn eventually_logged(stack: &RunningStack, function: &str, needles: &[&str]) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let lines = log_lines(stack, function).await;
        if lines.iter().any(|l| needles.iter().all(|n| l.contains(n))) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn assert_cold_start_logged(lines: &[String], runtime_version: &str, memory: &str) {
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("INIT_START Runtime Version: {runtime_version}"))),
        "INIT_START names {runtime_version}: {lines:#?}"
    );
    let report = lines
        .iter()
        .find(|l| l.starts_with("REPORT RequestId: ") && l.contains("Init Duration: "))
        .unwrap_or_else(|| panic!("a cold REPORT line: {lines:#?}"));
    assert!(
        report.contains(&format!("Memory Size: {memory} MB")),
        "{report}"
    );
    assert!(report.contains("Max Memory Used: "), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_python_chat_broadcasts_over_tls_at_connections() {
    let stack = stack_of(fixture("../../../baselines/seed-python/template.yaml")).await;
    assert_eq!(
        stack.endpoints.tables["ConnectionsTable"],
        "ConnectionsTable"
    );
    let frames = three_clients_chat(&stack, "SendMessageHandler", "hello from python").await;
    for f in &frames {
        assert_eq!(f, &json!({"message": "hello from python"}));
    }
    let lines = lines_with_report(&stack, "SendMessageHandler").await;
    assert_cold_start_logged(&lines, "python:3.12", "128");
    // The seed prints failures; with every client connected there were none.
    assert!(
        !lines.iter().any(|l| l.contains("failed to post")),
        "{lines:#?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_es_module_chat_broadcasts() {
    let stack = stack_of(fixture("node-chat/template.yaml")).await;
    let frames = three_clients_chat(&stack, "SendFn", "hello from node").await;
    for f in &frames {
        assert_eq!(
            f,
            &json!({"message": "hello from node", "runtime": "nodejs"})
        );
    }
    assert_cold_start_logged(
        &lines_with_report(&stack, "SendFn").await,
        "nodejs:20",
        "128",
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provided_shell_bootstrap_chat_broadcasts() {
    let stack = stack_of(fixture("shell-chat/template.yaml")).await;
    let frames = three_clients_chat(&stack, "ChatFn", "hello from sh").await;
    for f in &frames {
        assert_eq!(
            f,
            &json!({"message": "hello from sh", "runtime": "provided"})
        );
    }
    let lines = lines_with_report(&stack, "ChatFn").await;
    assert_cold_start_logged(&lines, "provided:al2023", "128");
    assert!(
        eventually_logged(&stack, "ChatFn", &["shell chat ready (handler chat.sh)"]).await,
        "what the bootstrap prints reaches its log group: {lines:#?}"
    );
    stack.shutdown().await;
}

async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    payload: Value,
) -> (Option<String>, Value) {
    let out = lambda
        .invoke()
        .function_name(name)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await
        .expect("Invoke");
    let body = out
        .payload()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    (
        out.function_error().map(str::to_string),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_gets_lambdas_environment_timeouts_and_crashes() {
    let stack = stack_of(fixture("probes/template.yaml")).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk(&stack).await);
    let cases = [
        (
            "PyProbe",
            "py",
            "probe.handler",
            Some("AWS_Lambda_python3.13"),
        ),
        (
            "NodeProbe",
            "js",
            "probe.handler",
            Some("AWS_Lambda_nodejs22.x"),
        ),
        ("ShellProbe", "sh", "probe", None),
    ];
    for (logical, dir, handler, execution_env) in cases {
        let name = stack.endpoints.functions[logical].clone();
        let (error, out) = invoke(&lambda, &name, json!({"hello": logical})).await;
        assert_eq!(error, None, "{logical}: {out}");
        let env = &out["env"];
        let root = fixture("probes").join(dir);
        assert_eq!(env["_HANDLER"], handler, "{logical}: {out}");
        assert_eq!(
            env["LAMBDA_TASK_ROOT"],
            root.display().to_string(),
            "{logical}"
        );
        assert_eq!(out["cwd"], root.display().to_string(), "{logical}");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], name.as_str(), "{logical}");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256", "{logical}");
        assert_eq!(out["memory"], 256, "{logical}");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST", "{logical}");
        assert_eq!(
            env["AWS_LAMBDA_LOG_GROUP_NAME"],
            format!("/aws/lambda/{name}")
        );
        assert_eq!(env["AWS_REGION"], "us-east-1", "{logical}");
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "local", "{logical}");
        let api = env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap_or_default();
        assert!(
            api.starts_with("127.0.0.1:") && !api.contains('/'),
            "{logical}: {api}"
        );
        if let Some(exec) = execution_env {
            assert_eq!(env["AWS_EXECUTION_ENV"], exec, "{logical}");
        }
        let lines = lines_with_report(&stack, logical).await;
        let stream = env["AWS_LAMBDA_LOG_STREAM_NAME"]
            .as_str()
            .unwrap_or_default();
        assert!(stream.contains("[$LATEST]"), "{logical}: {stream}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("probe event") && l.contains(logical)),
            "{logical}: its output reaches its log group: {lines:#?}"
        );
        assert_cold_start_logged(&lines, "", "256");

        // Past the 2 s timeout: killed, Sandbox.Timedout's message, as for the Rust functions.
        let (error, out) = invoke(&lambda, &name, json!({"sleep": 4})).await;
        assert_eq!(error.as_deref(), Some("Unhandled"), "{logical}");
        let message = out["errorMessage"].as_str().unwrap_or_default();
        assert!(
            message.contains("Task timed out after 2.00 seconds"),
            "{logical}: {out}"
        );
        // A crash mid-invocation is Runtime.ExitError; the next call cold-starts and works.
        let (error, out) = invoke(&lambda, &name, json!({"crash": true})).await;
        assert_eq!(error.as_deref(), Some("Unhandled"), "{logical}");
        assert_eq!(out["errorType"], "Runtime.ExitError", "{logical}: {out}");
        let (error, out) = invoke(&lambda, &name, json!({"again": true})).await;
        assert_eq!(error, None, "{logical} recovers: {out}");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_and_https_share_the_websocket_port() {
    let stack = stack_of(fixture("node-chat/template.yaml")).await;
    let ca = std::fs::read(&stack.endpoints.ca_bundle).expect("the CA file");
    assert!(String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"));
    // Plain ws:// on the same port still works (the other tests use it); an HTTPS request
    // to an unknown connection id gets API Gateway's 410, through TLS.
    let host = stack
        .endpoints
        .websocket_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            &stack.endpoints.ca_bundle,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args([
            "--aws-sigv4",
            "aws:amz:us-east-1:execute-api",
            "-u",
            "a:b",
            "-d",
            "x",
        ])
        .arg(format!("https://{host}/dev/@connections/nobody"))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "410", "{out:?}");
    stack.shutdown().await;
}

#[test]
fn missing_runtime_clients_are_named_with_the_command_that_installs_them() {
    let model = dynamowave_local::template::load(
        &fixture("probes/template.yaml"),
        &Default::default(),
        &Default::default(),
    )
    .expect("loads");
    let empty = std::env::temp_dir().join(format!("dw-no-runtimes-{}", std::process::id()));
    let err = dynamowave_local::lambda::runtimes::Runtimes::find(model.functions.values(), &empty)
        .expect_err("nothing is installed there")
        .to_string();
    assert!(err.contains("scripts/setup.sh"), "{err}");
    assert!(
        err.contains("awslambdaric") || err.contains("aws-lambda-ric"),
        "{err}"
    );
}

/// One FIS action on `arn` for a minute, through aws-sdk-fis; returns the experiment id.
async fn fis_experiment(
    fis: &aws_sdk_fis::Client,
    arn: &str,
    action: &str,
    params: &[(&str, &str)],
) -> (String, String) {
    use aws_sdk_fis::types::*;
    let mut a = CreateExperimentTemplateActionInput::builder()
        .action_id(action)
        .targets("Functions", "fns")
        .parameters("duration", "PT1M");
    for (k, v) in params {
        a = a.parameters(*k, *v);
    }
    let template = fis
        .create_experiment_template()
        .description("runtime test")
        .role_arn("arn:aws:iam::000000000000:role/fis")
        .stop_conditions(
            CreateExperimentTemplateStopConditionInput::builder()
                .source("none")
                .build()
                .unwrap(),
        )
        .targets(
            "fns",
            CreateExperimentTemplateTargetInput::builder()
                .resource_type("aws:lambda:function")
                .resource_arns(arn)
                .selection_mode("ALL")
                .build()
                .unwrap(),
        )
        .actions("a", a.build().unwrap())
        .send()
        .await
        .expect("CreateExperimentTemplate")
        .experiment_template()
        .and_then(|t| t.id())
        .unwrap()
        .to_string();
    let started = fis
        .start_experiment()
        .experiment_template_id(&template)
        .send()
        .await
        .expect("StartExperiment");
    let e = started.experiment().unwrap();
    assert_eq!(
        e.state().and_then(|s| s.status()),
        Some(&ExperimentStatus::Running)
    );
    (template, e.id().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fis_lambda_actions_reach_every_runtime_at_its_runtime_api() {
    let stack = stack_of(fixture("probes/template.yaml")).await;
    let sdk = sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let fis = aws_sdk_fis::Client::new(&sdk);
    let arn = |logical: &str| {
        let m = &stack.model.functions[logical];
        m.arn.clone()
    };
    // An integration response in place of the Python function's, without running it.
    let (t1, e1) = fis_experiment(
        &fis,
        &arn("PyProbe"),
        "aws:lambda:invocation-http-integration-response",
        &[("statusCode", "503"), ("preventExecution", "true")],
    )
    .await;
    let py = &stack.endpoints.functions["PyProbe"];
    let (error, out) = invoke(&lambda, py, json!({"marker": "fis-http"})).await;
    assert_eq!(error, None);
    assert_eq!(out["statusCode"], 503, "{out}");
    assert!(
        !log_lines(&stack, "PyProbe")
            .await
            .iter()
            .any(|l| l.contains("fis-http")),
        "preventExecution: the function did not run"
    );
    // An error on the Node function, after it ran.
    let (t2, e2) =
        fis_experiment(&fis, &arn("NodeProbe"), "aws:lambda:invocation-error", &[]).await;
    let node = &stack.endpoints.functions["NodeProbe"];
    let (error, out) = invoke(&lambda, node, json!({"marker": "fis-error"})).await;
    assert_eq!(error.as_deref(), Some("Unhandled"), "{out}");
    assert_eq!(out["errorType"], "FIS.InjectedError", "{out}");
    assert!(
        eventually_logged(&stack, "NodeProbe", &["fis-error"]).await,
        "without preventExecution the function ran"
    );
    // A start-up delay on the shell bootstrap: the invocation lasts at least that long.
    let (t3, e3) = fis_experiment(
        &fis,
        &arn("ShellProbe"),
        "aws:lambda:invocation-add-delay",
        &[("startupDelayMilliseconds", "700")],
    )
    .await;
    let sh = &stack.endpoints.functions["ShellProbe"];
    let started = std::time::Instant::now();
    let (error, _) = invoke(&lambda, sh, json!({})).await;
    assert_eq!(error, None);
    assert!(started.elapsed() >= std::time::Duration::from_millis(700));

    // Stopped experiments end their faults; deleted templates are gone.
    for (t, e) in [(t1, e1), (t2, e2), (t3, e3)] {
        let stopped = fis
            .stop_experiment()
            .id(&e)
            .send()
            .await
            .expect("StopExperiment");
        assert_eq!(
            stopped
                .experiment()
                .and_then(|x| x.state())
                .and_then(|s| s.status()),
            Some(&aws_sdk_fis::types::ExperimentStatus::Stopped)
        );
        fis.delete_experiment_template()
            .id(&t)
            .send()
            .await
            .expect("delete");
        let gone = fis.get_experiment_template().id(&t).send().await;
        assert!(
            gone.as_ref()
                .err()
                .and_then(|e| e.as_service_error())
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "{gone:?}"
        );
    }
    let (error, out) = invoke(&lambda, py, json!({})).await;
    assert_eq!(error, None);
    assert!(out["env"].is_object(), "the function runs again: {out}");
    let (error, _) = invoke(&lambda, node, json!({})).await;
    assert_eq!(error, None);
    stack.shutdown().await;
}
