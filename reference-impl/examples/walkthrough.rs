//! A walk through the reference chat's functions on this machine, before the local stack
//! exists: DynamoDB Local (real) holds the connections table created from template.yaml;
//! a loopback recorder stands in for API Gateway's @connections, SQS and Lambda Invoke.
//! Writes what happened to `reports/walkthrough/summary.json`.
//!
//! Run with `scripts/demo.sh` (installs DynamoDB Local first).

#[path = "../tests/chat/support/mod.rs"]
mod support;

use std::path::PathBuf;

use dynamowave_chat::Function;
use dynamowave_chat::handlers::handle;
use serde_json::{Value, json};
use support::{Chat, ws_event};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chat = Chat::new().await;
    let deps = chat.deps(&[("POST_MAX_ATTEMPTS", "3")]);
    let mut steps: Vec<Value> = Vec::new();
    let mut step = |what: &str, detail: Value| {
        println!("- {what}: {detail}");
        steps.push(json!({"step": what, "detail": detail}));
    };

    println!(
        "DynamoDB Local at {}, table {}",
        support::ddb_local::shared().endpoint,
        chat.table
    );
    for (id, room) in [
        ("alice=", "lobby"),
        ("bob=", "lobby"),
        ("carol=", "lobby"),
        ("dave=", ""),
    ] {
        let query: Vec<(&str, &str)> = if room.is_empty() {
            vec![]
        } else {
            vec![("room", room)]
        };
        let out = handle(
            Function::Connect,
            &deps,
            ws_event("$connect", id, None, &query),
        )
        .await?;
        step(
            "connect",
            json!({"connection": id, "room": room, "status": out["statusCode"]}),
        );
    }

    let out = handle(
        Function::Default,
        &deps,
        ws_event("$default", "alice=", Some(r#"{"action":"whoami"}"#), &[]),
    )
    .await?;
    step(
        "whoami",
        json!({"status": out["statusCode"], "frame": chat.recorder.posts_to("alice=")[0].json()}),
    );

    let out = handle(
        Function::SendMessage,
        &deps,
        ws_event("sendMessage", "dave=", Some("{not json"), &[]),
    )
    .await?;
    step(
        "malformed message",
        json!({"status": out["statusCode"], "frame": chat.recorder.posts_to("dave=")[0].json()}),
    );

    // carol's client vanished (410 Gone); bob's keeps failing with 500s.
    chat.recorder.set_gone("carol=");
    chat.recorder.set_failing("bob=", 500, None);
    let body = json!({"action": "sendMessage", "message": "hello, lobby"}).to_string();
    let out = handle(
        Function::SendMessage,
        &deps,
        ws_event("sendMessage", "alice=", Some(&body), &[]),
    )
    .await?;
    let job = chat
        .recorder
        .invokes()
        .last()
        .expect("send-message invoked broadcast")
        .payload
        .clone();
    step(
        "sendMessage",
        json!({"status": out["statusCode"], "asyncInvokePayload": job}),
    );

    let report = handle(Function::Broadcast, &deps, job).await?;
    step("broadcast", report.clone());
    let rows: Vec<String> = chat.rows().await.into_keys().collect();
    step("table after broadcast", json!({"connections": rows}));
    let dead: Vec<Value> = chat
        .recorder
        .sqs()
        .into_iter()
        .map(|(_, req)| {
            serde_json::from_str(req["MessageBody"].as_str().unwrap_or("null"))
                .unwrap_or(Value::Null)
        })
        .collect();
    step("dead letters", json!(dead));

    for id in ["alice=", "dave="] {
        handle(
            Function::Disconnect,
            &deps,
            ws_event("$disconnect", id, None, &[]),
        )
        .await?;
    }
    let rows: Vec<String> = chat.rows().await.into_keys().collect();
    step("table after disconnects", json!({"connections": rows}));

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../reports/walkthrough");
    std::fs::create_dir_all(&dir)?;
    let summary =
        json!({"schema": "dynamowave.walkthrough/1", "broadcast": report, "steps": steps});
    // Write then rename, so a reader never sees half a file.
    let tmp = dir.join("summary.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&summary)?)?;
    std::fs::rename(&tmp, dir.join("summary.json"))?;
    println!(
        "\nreport: {}",
        dir.join("summary.json").canonicalize()?.display()
    );
    Ok(())
}
