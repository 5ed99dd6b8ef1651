//! The per-invocation wrapper (fault layer, warm-up pings), the warmer, and one real
//! function binary driven over the Lambda Runtime API.

use std::process::Stdio;
use std::time::Duration;

use dynamowave_chat::Function;
use dynamowave_chat::runtime::invoke;
use serde_json::{Value, json};

use crate::support::{Chat, ids, ws_event};

const NO_DEADLINE: u64 = u64::MAX / 2;

#[tokio::test]
async fn a_warm_up_ping_never_touches_dynamodb() {
    let chat = Chat::new().await;
    let mut deps = chat.deps(&[]);
    // Point DynamoDB at a port nobody listens on: any call would fail.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    deps.clients.dynamodb = crate::support::dynamodb(&chat.sdk, &format!("http://{dead}"));
    let ping = json!({"warmer": true, "__WARMER_INVOCATION__": 1, "__WARMER_CONCURRENCY__": 1});
    for f in Function::ALL {
        let out = invoke(f, &deps, ping.clone(), NO_DEADLINE).await.unwrap();
        assert_eq!(out["warmed"], true, "{f:?}");
        assert!(out["instanceId"].as_str().is_some());
    }
}

#[tokio::test]
async fn the_warmer_pings_each_target_concurrently() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[
        ("WARMER_TARGETS", "chat-send=3,chat-broadcast=2"),
        ("WARMER_DELAY_MS", "300"),
    ]);
    let report = invoke(
        Function::Warmer,
        &deps,
        json!({"source": "dynamowave.warmer"}),
        NO_DEADLINE,
    )
    .await
    .unwrap();
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets[0]["function"], "chat-send");
    assert_eq!(
        (
            targets[0]["requested"].as_u64(),
            targets[0]["warmed"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(targets[0]["distinctInstances"], 3);
    assert_eq!(targets[1]["warmed"], 2);
    // All pings of a target were in flight at once: that is what warms N instances.
    assert_eq!(chat.recorder.max_in_flight("chat-send"), 3);
    assert_eq!(chat.recorder.max_in_flight("chat-broadcast"), 2);
    let pings: Vec<Value> = chat
        .recorder
        .invokes()
        .into_iter()
        .filter(|i| i.function == "chat-send")
        .map(|i| {
            assert_eq!(i.invocation_type, "RequestResponse");
            i.payload
        })
        .collect();
    let mut seq: Vec<u64> = pings
        .iter()
        .map(|p| p["__WARMER_INVOCATION__"].as_u64().unwrap())
        .collect();
    seq.sort();
    assert_eq!(seq, [1, 2, 3]);
    assert!(
        pings
            .iter()
            .all(|p| p["__WARMER_CONCURRENCY__"] == 3 && p["warmer"] == true)
    );
}

#[tokio::test]
async fn injected_errors_and_throttles_fail_with_stable_types() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[(
        "DYNAMOWAVE_FAULTS",
        r#"{"error":{"percentage":100,"message":"chaos!"}}"#,
    )]);
    let err = invoke(
        Function::Connect,
        &deps,
        ws_event("$connect", "x=", None, &[]),
        NO_DEADLINE,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "DynamoWave.InjectedError");
    assert!(err.to_string().contains("chaos!"));
    assert!(chat.rows().await.is_empty(), "the handler did not run");

    let deps = chat.deps(&[(
        "DYNAMOWAVE_FAULTS",
        r#"{"dynamodb_throttle":{"percentage":100}}"#,
    )]);
    let err = invoke(
        Function::Connect,
        &deps,
        ws_event("$connect", "y=", None, &[]),
        NO_DEADLINE,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "DynamoWave.StoreThrottled");
    assert!(chat.rows().await.is_empty());
}

#[tokio::test]
async fn injected_latency_delays_the_invocation() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[(
        "DYNAMOWAVE_FAULTS",
        r#"{"latency":{"percentage":100,"min_ms":200,"max_ms":200}}"#,
    )]);
    let started = std::time::Instant::now();
    invoke(
        Function::Connect,
        &deps,
        ws_event("$connect", "z=", None, &[]),
        NO_DEADLINE,
    )
    .await
    .unwrap();
    // A lower bound only: a slow machine cannot make this fail.
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(chat.rows().await.contains_key("z="));
}

#[tokio::test]
async fn injected_connection_failures_reach_the_fan_out() {
    let chat = Chat::new().await;
    let all = ids("s", 3);
    chat.seed(&all, None).await;
    let deps = chat.deps(&[(
        "DYNAMOWAVE_FAULTS",
        r#"{"connections_fail":{"percentage":100,"status":410}}"#,
    )]);
    let job = json!({"messageId": "m", "sender": "s000=", "message": "x", "sentAt": 1});
    let report = invoke(Function::Broadcast, &deps, job, NO_DEADLINE)
        .await
        .unwrap();
    assert_eq!(report["gone"], 3, "{report}");
    assert!(chat.rows().await.is_empty(), "410s delete the rows");
    assert!(chat.recorder.posts().is_empty(), "injected before the wire");
}

/// The real `send-message` binary, polling a Runtime API, with its endpoints set only
/// through the SDK's standard environment variables.
#[tokio::test]
async fn the_send_message_binary_serves_the_runtime_api() {
    let chat = Chat::new().await;
    let runtime_api = chat.recorder.url.trim_start_matches("http://").to_string();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_send-message"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "chat-send")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_ENDPOINT_URL", &chat.recorder.url)
        .env(
            "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
            format!("{}/prod", chat.recorder.url),
        )
        .env(
            "AWS_ENDPOINT_URL_DYNAMODB",
            &crate::support::ddb_local::shared().endpoint,
        )
        .env("TABLE_NAME", &chat.table)
        .env("BROADCAST_FUNCTION_NAME", "chat-broadcast")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the send-message binary is built by cargo test");

    chat.seed(&["dave=".to_string()], None).await;
    chat.recorder.push_event(
        "req-1",
        ws_event("sendMessage", "dave=", Some("{oops"), &[]),
    );
    chat.recorder.push_event(
        "req-2",
        ws_event(
            "sendMessage",
            "dave=",
            Some(r#"{"action":"sendMessage","message":"hey"}"#),
            &[],
        ),
    );
    let answers = chat
        .recorder
        .wait_for_answers(2, Duration::from_secs(60))
        .await;
    child.kill().await.unwrap();

    assert_eq!(answers[0].0, "req-1");
    assert_eq!(answers[0].1, "response");
    assert_eq!(answers[0].2["statusCode"], 400);
    assert_eq!(
        chat.recorder.posts_to("dave=")[0].json()["code"],
        "malformed_json"
    );
    assert_eq!(answers[1].2["statusCode"], 200, "{:?}", answers[1]);
    let invokes = chat.recorder.invokes();
    assert_eq!(invokes.len(), 1);
    assert_eq!(invokes[0].payload["message"], "hey");
}

#[tokio::test]
async fn a_bad_environment_fails_init_loudly() {
    let chat = Chat::new().await;
    let runtime_api = chat.recorder.url.trim_start_matches("http://").to_string();
    let status = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_connect"))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "chat-connect")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", "us-east-1")
            .env("DYNAMOWAVE_FAULTS", r#"{"error":{"percentage":500}}"#)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the binary exits on a bad environment")
    .unwrap();
    assert!(!status.status.success());
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(stderr.contains("DYNAMOWAVE_FAULTS.error"), "{stderr}");
}
