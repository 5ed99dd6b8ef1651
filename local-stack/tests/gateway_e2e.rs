//! API Gateway end to end: @connections and stage throttling through the AWS SDK, route
//! selection without $default, over real sockets.

mod support;

use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::StreamExt;
use serde_json::json;
use support::{connect, next_json, send_json, whoami};
use tokio_tungstenite::tungstenite::Message;

fn management(
    sdk: &aws_config::SdkConfig,
    stack: &dynamowave_local::stack::RunningStack,
) -> aws_sdk_apigatewaymanagement::Client {
    // As the functions address it: the edge with the stage path.
    let url = format!("{}/{}", stack.endpoints.endpoint_url, stack.endpoints.stage);
    aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(url)
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_api_posts_describes_deletes_and_refuses() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let api = management(&sdk, &stack);
    let mut ws = connect(&stack.endpoints.websocket_url).await;
    let id = whoami(&mut ws).await;

    api.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"hi":1}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws, 10).await, json!({"hi": 1}));

    let info = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert!(info.connected_at().is_some() && info.last_active_at().is_some());
    assert_eq!(info.identity().unwrap().source_ip(), Some("127.0.0.1"));

    let err = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'x'; 129 * 1024]))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_payload_too_large_exception(),
        "{err:?}"
    );
    let err = api
        .post_to_connection()
        .connection_id("AAAAAAAAAAAAAAA=")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_gone_exception(),
        "unknown id: 410"
    );
    let err = api
        .post_to_connection()
        .connection_id("bad id!")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(400),
        "malformed id: 400"
    );

    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(_) = m {
                return true;
            }
        }
        true
    })
    .await
    .unwrap();
    assert!(closed);
    // Once closed, the id is gone.
    let mut gone = false;
    for _ in 0..50 {
        match api
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new("x"))
            .send()
            .await
        {
            Err(e) if e.as_service_error().is_some_and(|e| e.is_gone_exception()) => {
                gone = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(gone);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_throttling_changed_through_update_stage_takes_effect() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let v2 = aws_sdk_apigatewayv2::Client::new(&sdk);
    let (api_id, stage) = (
        stack.endpoints.api_id.clone(),
        stack.endpoints.stage.clone(),
    );
    let got = v2
        .get_stage()
        .api_id(&api_id)
        .stage_name(&stage)
        .send()
        .await
        .unwrap();
    let settings = got.default_route_settings().unwrap();
    assert_eq!(
        settings.throttling_rate_limit(),
        Some(500.0),
        "from the template"
    );
    assert_eq!(settings.throttling_burst_limit(), Some(1000));

    let mut ws = connect(&stack.endpoints.websocket_url).await;
    whoami(&mut ws).await;
    v2.update_stage()
        .api_id(&api_id)
        .stage_name(&stage)
        .default_route_settings(
            aws_sdk_apigatewayv2::types::RouteSettings::builder()
                .throttling_rate_limit(0.0)
                .throttling_burst_limit(0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    send_json(&mut ws, json!({"action": "whoami"})).await;
    let frame = next_json(&mut ws, 10).await;
    assert_eq!(frame["message"], "Too Many Requests", "{frame}");
    let refused = tokio_tungstenite::connect_async(stack.endpoints.websocket_url.as_str()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 429),
        other => panic!("the handshake should be throttled: {other:?}"),
    }
    let got = v2
        .get_stage()
        .api_id(&api_id)
        .stage_name(&stage)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.default_route_settings()
            .unwrap()
            .throttling_burst_limit(),
        Some(0)
    );

    let err = v2
        .get_stage()
        .api_id("nope")
        .stage_name(&stage)
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_not_found_exception());
    assert!(stack.edge.snapshot().apis[&api_id].throttled >= 2);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_default_an_unknown_action_gets_forbidden() {
    // The template without its $default route.
    let text = std::fs::read_to_string(support::template()).unwrap();
    let mut t: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let resources = t["Resources"].as_mapping_mut().unwrap();
    resources.remove("DefaultRoute");
    resources.remove("DefaultIntegration");
    resources["Deployment"]["DependsOn"] =
        yaml_serde::from_str("[ConnectRoute, DisconnectRoute, SendMessageRoute]").unwrap();
    let dir = std::env::temp_dir().join(format!("dynamowave-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("template.yaml");
    std::fs::write(&path, yaml_serde::to_string(&t).unwrap()).unwrap();

    let mut options = support::options();
    options.template = path;
    let stack = dynamowave_local::stack::start(options).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut ws = connect(&stack.endpoints.websocket_url).await;
    send_json(&mut ws, json!({"action": "whoami"})).await;
    let frame = next_json(&mut ws, 10).await;
    assert_eq!(frame["message"], "Forbidden", "{frame}");
    assert!(frame["connectionId"].as_str().is_some() && frame["requestId"].as_str().is_some());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_with_1001_and_disconnect_runs() {
    let mut options = support::options();
    options.gateway.idle_timeout = Duration::from_millis(700);
    let stack = dynamowave_local::stack::start(options).await.unwrap();
    let mut ws = connect(&stack.endpoints.websocket_url).await;
    whoami(&mut ws).await;
    let code = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(f) = m {
                return f.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("closed for idleness");
    assert_eq!(code, Some(1001));
    let disconnect = stack.endpoints.functions["DisconnectFunction"].clone();
    let mut ran = 0;
    for _ in 0..100 {
        ran = stack
            .edge
            .snapshot()
            .functions
            .get(&disconnect)
            .map(|m| m.invocations)
            .unwrap_or(0);
        if ran > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ran, 1, "$disconnect ran after the close");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_fills_its_own_buffer_without_blocking_others() {
    let mut options = support::options();
    options.gateway.client_buffer_frames = 4;
    let stack = dynamowave_local::stack::start(options).await.unwrap();
    let sdk = support::sdk(&stack).await;
    let api = management(&sdk, &stack);
    let mut slow = connect(&stack.endpoints.websocket_url).await;
    let slow_id = whoami(&mut slow).await;
    let mut fast = connect(&stack.endpoints.websocket_url).await;
    let fast_id = whoami(&mut fast).await;

    // The slow client never reads: once the socket's kernel buffers fill, frames queue in
    // its bounded buffer, and then posts to it fail fast with 429.
    let big = vec![b'x'; 120 * 1024];
    let mut limited = None;
    for i in 0..2_000 {
        match api
            .post_to_connection()
            .connection_id(&slow_id)
            .data(Blob::new(big.clone()))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                limited = Some((i, e));
                break;
            }
        }
    }
    let (after, err) = limited.expect("posts to a client that never reads eventually fail");
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(429),
        "{err:?}"
    );
    assert!(
        after > 4,
        "the kernel and the buffer took some frames first"
    );
    // Others are unaffected.
    api.post_to_connection()
        .connection_id(&fast_id)
        .data(Blob::new(r#"{"ok":true}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(next_json(&mut fast, 10).await, json!({"ok": true}));
    let t = stack.edge.snapshot();
    assert!(t.apis[&stack.endpoints.api_id].frames_dropped_slow_reader >= 1);
    drop(slow);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_integration_answers_internal_server_error_and_keeps_the_socket() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let f = stack.endpoints.functions["DefaultFunction"].clone();
    let mut ws = connect(&stack.endpoints.websocket_url).await;
    let id = whoami(&mut ws).await;
    support::set_faults(&lambda, &f, r#"{"error":{"percentage":100}}"#, None).await;
    send_json(&mut ws, json!({"action": "whoami"})).await;
    let frame = next_json(&mut ws, 30).await;
    assert_eq!(frame["message"], "Internal server error", "{frame}");
    assert_eq!(frame["connectionId"], id.as_str());
    // The socket stays open: a sendMessage still goes through (its own function is fine).
    send_json(
        &mut ws,
        json!({"action": "sendMessage", "message": "still here"}),
    )
    .await;
    assert_eq!(next_json(&mut ws, 30).await["message"], "still here");
    assert_eq!(
        stack.edge.snapshot().apis[&stack.endpoints.api_id].integration_errors,
        1
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cannot_select_the_disconnect_route() {
    let stack = support::stack().await;
    let mut ws = connect(&stack.endpoints.websocket_url).await;
    whoami(&mut ws).await;
    send_json(&mut ws, json!({"action": "$disconnect"})).await;
    let frame = next_json(&mut ws, 30).await;
    assert_eq!(
        frame["code"], "unknown_action",
        "{frame}: it went to $default"
    );
    let disconnect = stack.endpoints.functions["DisconnectFunction"].clone();
    assert!(
        stack
            .edge
            .snapshot()
            .functions
            .get(&disconnect)
            .is_none_or(|m| m.invocations == 0)
    );
    stack.shutdown().await;
}
