//! Fixtures for the end-to-end tests: the whole stack in-process on loopback, the real
//! reference binaries, AWS SDK clients pointed at the edge, and a WebSocket client.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use dynamowave_local::stack::{RunningStack, StackOptions, start};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// target/{debug,release}: where cargo put this test and the reference binaries.
pub fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>")
        .to_path_buf();
    assert!(
        dir.join("connect").is_file(),
        "the reference binaries are not in {}; build them first: cargo build -p dynamowave-chat (same profile as the tests)",
        dir.display()
    );
    dir
}

pub fn template() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
}

/// Options for tests: fast async retries, no simulated delays.
pub fn options() -> StackOptions {
    let mut o = StackOptions {
        template: template(),
        binaries_dir: binaries_dir(),
        ..StackOptions::default()
    };
    o.lambda.sandbox_startup_delay = Duration::ZERO;
    o.lambda.async_retry_base = Duration::from_millis(50);
    o.lambda.throttle_requeue_base = Duration::from_millis(50);
    o.gateway.connections_latency = Duration::ZERO;
    o
}

pub async fn stack() -> RunningStack {
    start(options()).await.expect("the local stack starts")
}

pub async fn sdk(stack: &RunningStack) -> SdkConfig {
    sdk_at(&stack.endpoints.endpoint_url).await
}

/// The shared SDK config every wire test uses: test credentials, the ring TLS provider,
/// every service at `endpoint`.
pub async fn sdk_at(endpoint: &str) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "tests",
        ))
        .endpoint_url(endpoint)
        .http_client(http)
        .load()
        .await
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("handshake in time")
    .expect("handshake accepted");
    ws
}

/// The next text frame as JSON, within `secs`.
pub async fn next_json(ws: &mut Ws, secs: u64) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(secs), ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a valid frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("JSON frame");
        }
    }
}

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// Asks the chat who we are (the $default route's whoami).
pub async fn whoami(ws: &mut Ws) -> String {
    send_json(ws, serde_json::json!({"action": "whoami"})).await;
    let frame = next_json(ws, 30).await;
    assert_eq!(frame["type"], "whoami", "{frame}");
    frame["connectionId"].as_str().unwrap().to_string()
}

/// Sets a function's `DYNAMOWAVE_FAULTS` (and optionally its timeout) through
/// Get/UpdateFunctionConfiguration, keeping its other variables, as chaos actions do.
pub async fn set_faults(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    faults: &str,
    timeout: Option<i32>,
) {
    let mut vars = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .expect("GetFunctionConfiguration")
        .environment()
        .and_then(|e| e.variables().cloned())
        .unwrap_or_default();
    vars.insert("DYNAMOWAVE_FAULTS".into(), faults.into());
    lambda
        .update_function_configuration()
        .function_name(function)
        .set_timeout(timeout)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .set_variables(Some(vars))
                .build(),
        )
        .send()
        .await
        .expect("UpdateFunctionConfiguration");
}
