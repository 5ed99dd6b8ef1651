//! sendMessage and $default.

use dynamowave_chat::Function;
use dynamowave_chat::handlers::handle;
use serde_json::Value;

use crate::support::{Chat, ids, ws_event};

async fn connect(chat: &Chat, id: &str, room: Option<&str>) {
    let query: Vec<(&str, &str)> = room.map(|r| ("room", r)).into_iter().collect();
    let out = handle(
        Function::Connect,
        &chat.deps(&[]),
        ws_event("$connect", id, None, &query),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 200);
}

#[tokio::test]
async fn async_mode_hands_the_message_to_broadcast() {
    let chat = Chat::new().await;
    connect(&chat, "alice=", Some("lobby")).await;
    let deps = chat.deps(&[]);
    let text = "héllo \"quoted\" \\ ☃ \n end";
    let body = serde_json::json!({"action": "sendMessage", "message": text, "sender": "mallory"});

    let out = handle(
        Function::SendMessage,
        &deps,
        ws_event("sendMessage", "alice=", Some(&body.to_string()), &[]),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 200);

    let invokes = chat.recorder.invokes();
    assert_eq!(invokes.len(), 1);
    let call = &invokes[0];
    assert_eq!(call.function, "chat-broadcast");
    assert_eq!(call.invocation_type, "Event");
    assert_eq!(
        call.payload["sender"], "alice=",
        "sender comes from the connection"
    );
    assert_eq!(
        call.payload["room"], "lobby",
        "room comes from the connection's row"
    );
    assert_eq!(
        call.payload["message"].as_str().unwrap(),
        text,
        "byte for byte"
    );
    assert_eq!(
        call.payload["connectionsUrl"],
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    );
    let out_body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(out_body["messageId"], call.payload["messageId"]);
    assert!(
        chat.recorder.posts().is_empty(),
        "async mode posts nothing itself"
    );
}

#[tokio::test]
async fn inline_mode_fans_out_itself() {
    let chat = Chat::new().await;
    for id in ids("u", 3) {
        connect(&chat, &id, None).await;
    }
    let deps = chat.deps(&[("FANOUT_MODE", "inline")]);
    let body = r#"{"action":"sendMessage","message":"inline!"}"#;
    let out = handle(
        Function::SendMessage,
        &deps,
        ws_event("sendMessage", "u000=", Some(body), &[]),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 200);
    assert!(chat.recorder.invokes().is_empty());
    let posts = chat.recorder.posts();
    assert_eq!(posts.len(), 3, "everyone, the sender included");
    for p in posts {
        assert_eq!(p.json()["message"], "inline!");
        assert_eq!(p.json()["sender"], "u000=");
    }
}

#[tokio::test]
async fn bad_messages_get_an_error_frame_and_touch_nothing() {
    let chat = Chat::new().await;
    connect(&chat, "bob=", None).await;
    let before = chat.rows().await;
    let deps = chat.deps(&[("MAX_MESSAGE_BYTES", "16")]);
    let cases = [
        ("{not json", "malformed_json"),
        (r#"{"action":"sendMessage"}"#, "missing_message"),
        (
            r#"{"action":"sendMessage","message":{"a":1}}"#,
            "message_not_string",
        ),
        (
            r#"{"action":"sendMessage","message":"seventeen bytes!!"}"#,
            "message_too_large",
        ),
    ];
    for (i, (body, code)) in cases.iter().enumerate() {
        let out = handle(
            Function::SendMessage,
            &deps,
            ws_event("sendMessage", "bob=", Some(body), &[]),
        )
        .await
        .unwrap();
        assert_eq!(out["statusCode"], 400, "{body}");
        let posts = chat.recorder.posts_to("bob=");
        assert_eq!(posts.len(), i + 1);
        let frame = posts[i].json();
        assert_eq!(frame["type"], "error");
        assert_eq!(frame["code"], *code, "{body}");
        assert!(!frame["message"].as_str().unwrap().is_empty());
    }
    assert!(
        chat.recorder.invokes().is_empty(),
        "nothing handed to broadcast"
    );
    assert_eq!(chat.rows().await, before, "the table is untouched");
}

#[tokio::test]
async fn an_unregistered_sender_is_told_to_reconnect() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[]);
    let body = r#"{"action":"sendMessage","message":"hi"}"#;
    let out = handle(
        Function::SendMessage,
        &deps,
        ws_event("sendMessage", "ghost=", Some(body), &[]),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 403);
    assert_eq!(
        chat.recorder.posts_to("ghost=")[0].json()["code"],
        "not_connected"
    );
    assert!(chat.recorder.invokes().is_empty());
}

#[tokio::test]
async fn default_names_the_valid_actions_and_answers_whoami() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[]);
    let out = handle(
        Function::Default,
        &deps,
        ws_event(
            "$default",
            "carol=",
            Some(r#"{"action":"sendmessage","message":"x"}"#),
            &[],
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 400);
    let frame = chat.recorder.posts_to("carol=")[0].json();
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["code"], "unknown_action");
    assert_eq!(frame["action"], "sendmessage");
    assert_eq!(
        frame["validActions"],
        serde_json::json!(["sendMessage", "whoami"])
    );
    assert!(frame["message"].as_str().unwrap().contains("sendMessage"));

    handle(
        Function::Default,
        &deps,
        ws_event("$default", "carol=", Some("plain text"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(
        chat.recorder.posts_to("carol=")[1].json()["code"],
        "unknown_action"
    );

    let out = handle(
        Function::Default,
        &deps,
        ws_event("$default", "carol=", Some(r#"{"action":"whoami"}"#), &[]),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 200);
    let frame = chat.recorder.posts_to("carol=")[2].json();
    assert_eq!(frame["type"], "whoami");
    assert_eq!(frame["connectionId"], "carol=");
}
