//! $connect and $disconnect against the real table.

use dynamowave_chat::Function;
use dynamowave_chat::handlers::handle;

use crate::support::{Chat, ws_event};

#[tokio::test]
async fn connect_then_disconnect_leaves_nothing() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[("CONNECTION_TTL_SECONDS", "600")]);
    let out = handle(
        Function::Connect,
        &deps,
        ws_event("$connect", "conn-A=", None, &[("room", "lobby")]),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 200);

    let rows = chat.rows().await;
    let row = &rows["conn-A="];
    assert_eq!(row["room"], "lobby");
    assert_eq!(row["connectedAt"], "1764000000000");
    assert_eq!(row["expiresAt"], (1_764_000_000 + 600).to_string());
    assert_eq!(row["sourceIp"], "127.0.0.1");

    let out = handle(
        Function::Disconnect,
        &deps,
        ws_event("$disconnect", "conn-A=", None, &[]),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 200);
    assert!(chat.rows().await.is_empty());

    // Idempotent: a second $disconnect (or one for a row TTL already removed) succeeds.
    handle(
        Function::Disconnect,
        &deps,
        ws_event("$disconnect", "conn-A=", None, &[]),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_failed_write_fails_the_handshake() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[("TABLE_NAME", "no-such-table")]);
    let err = handle(
        Function::Connect,
        &deps,
        ws_event("$connect", "conn-B=", None, &[]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "DynamoWave.StoreError");
    assert!(err.to_string().contains("PutItem"), "{err}");
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_room_is_refused_and_nothing_is_written() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[]);
    let out = handle(
        Function::Connect,
        &deps,
        ws_event(
            "$connect",
            "conn-C=",
            None,
            &[("room", "no spaces allowed")],
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 400);
    assert!(out["body"].as_str().unwrap().contains("room"));
    assert!(chat.rows().await.is_empty());
}

#[tokio::test]
async fn a_connection_without_a_room_has_no_room_attribute() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[]);
    handle(
        Function::Connect,
        &deps,
        ws_event("$connect", "conn-D=", None, &[]),
    )
    .await
    .unwrap();
    let rows = chat.rows().await;
    assert!(!rows["conn-D="].contains_key("room"));
    // The default TTL outlives API Gateway's 2 h maximum connection duration.
    let expires: i64 = rows["conn-D="]["expiresAt"].parse().unwrap();
    assert_eq!(expires, 1_764_000_000 + 10_800);
}
