//! End to end over real sockets: WebSocket clients → the local stack → the real reference
//! binaries → DynamoDB Local → @connections → the clients.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::{connect, next_json, send_json, stack, whoami};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_chat_through_the_reference_functions() {
    let stack = stack().await;
    let url = &stack.endpoints.websocket_url;
    let mut a = connect(url).await;
    let mut b = connect(url).await;
    let mut c = connect(url).await;
    let a_id = whoami(&mut a).await;
    whoami(&mut b).await;
    whoami(&mut c).await;

    send_json(
        &mut a,
        json!({"action": "sendMessage", "message": "hello from a ☃"}),
    )
    .await;
    for ws in [&mut a, &mut b, &mut c] {
        let frame = next_json(ws, 30).await;
        assert_eq!(frame["type"], "message", "{frame}");
        assert_eq!(frame["message"], "hello from a ☃");
        assert_eq!(frame["sender"], a_id.as_str());
    }

    // An unknown action reaches $default, which names the valid ones.
    send_json(&mut b, json!({"action": "shout", "message": "x"})).await;
    let frame = next_json(&mut b, 30).await;
    assert_eq!(frame["code"], "unknown_action", "{frame}");
    assert_eq!(frame["validActions"], json!(["sendMessage", "whoami"]));

    for ws in [&mut a, &mut b, &mut c] {
        ws.close(None).await.unwrap();
    }
    // $disconnect ran for each: the table empties.
    let ddb = dynamodb(&stack).await;
    let table = stack.endpoints.tables["ConnectionsTable"].clone();
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = ddb
            .scan()
            .table_name(&table)
            .send()
            .await
            .unwrap()
            .items()
            .len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "every $disconnect deleted its row");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_kb_frame_is_refused_with_1009() {
    let stack = stack().await;
    let mut ws = connect(&stack.endpoints.websocket_url).await;
    let big = "x".repeat(200 * 1024);
    let _ = ws.send(Message::Text(big.into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(msg) = ws.next().await {
            if let Ok(Message::Close(frame)) = msg {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the server closes in time");
    assert_eq!(closed, Some(1009));
    stack.shutdown().await;
}

async fn dynamodb(stack: &dynamowave_local::stack::RunningStack) -> aws_sdk_dynamodb::Client {
    let sdk = support::sdk(stack).await;
    aws_sdk_dynamodb::Client::new(&sdk)
}
