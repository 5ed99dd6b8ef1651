//! The broadcast worker: pagination, 410s, retries with backoff, the DLQ.

use dynamowave_chat::Function;
use dynamowave_chat::handlers::handle;
use dynamowave_chat::message::{BroadcastJob, DEAD_LETTER_KIND};
use serde_json::{Value, json};

use crate::support::{Chat, ids};

fn job(room: Option<&str>, message: &str) -> Value {
    serde_json::to_value(BroadcastJob {
        message_id: "msg-1".into(),
        sender: "sender-1=".into(),
        room: room.map(str::to_string),
        message: message.into(),
        sent_at: 1_764_000_000_123,
        connections_url: Some("https://abc123.execute-api.us-east-1.amazonaws.com/prod".into()),
    })
    .unwrap()
}

#[tokio::test]
async fn every_scan_page_is_read() {
    let chat = Chat::new().await;
    let global = ids("g", 23);
    chat.seed(&global, None).await;
    chat.seed(&ids("r", 5), Some("other-room")).await;
    // Pages of 4 items: 28 rows take 7+ pages, some holding only filtered-out rows.
    let deps = chat.deps(&[("SCAN_PAGE_LIMIT", "4")]);

    let report = handle(Function::Broadcast, &deps, job(None, "hello all"))
        .await
        .unwrap();
    assert!(report["pages"].as_u64().unwrap() >= 7, "{report}");
    assert_eq!(report["recipients"], 23);
    assert_eq!(report["delivered"], 23);

    let posts = chat.recorder.posts();
    let mut posted: Vec<String> = posts.iter().map(|p| p.connection_id.clone()).collect();
    posted.sort();
    assert_eq!(
        posted, global,
        "each global connection exactly once, no room member"
    );
    let frame = posts[0].json();
    assert_eq!(frame["type"], "message");
    assert_eq!(frame["message"], "hello all");
    assert_eq!(frame["sender"], "sender-1=");
    assert_eq!(frame["messageId"], "msg-1");
    assert_eq!(frame["sentAt"], 1_764_000_000_123_i64);
}

#[tokio::test]
async fn a_room_is_read_through_its_index_page_by_page() {
    let chat = Chat::new().await;
    let blue = ids("blue", 7);
    chat.seed(&blue, Some("blue")).await;
    chat.seed(&ids("red", 3), Some("red")).await;
    chat.seed(&ids("none", 2), None).await;
    let deps = chat.deps(&[("SCAN_PAGE_LIMIT", "2")]);

    let report = handle(Function::Broadcast, &deps, job(Some("blue"), "hi blue"))
        .await
        .unwrap();
    assert_eq!(report["delivered"], 7, "{report}");
    assert!(report["pages"].as_u64().unwrap() >= 4, "{report}");
    let mut posted: Vec<String> = chat
        .recorder
        .posts()
        .iter()
        .map(|p| p.connection_id.clone())
        .collect();
    posted.sort();
    assert_eq!(posted, blue);
}

#[tokio::test]
async fn a_gone_recipient_is_deleted_and_not_dead_lettered() {
    let chat = Chat::new().await;
    let all = ids("c", 3);
    chat.seed(&all, None).await;
    chat.recorder.set_gone(&all[1]);
    let deps = chat.deps(&[]);

    let report = handle(Function::Broadcast, &deps, job(None, "x"))
        .await
        .unwrap();
    assert_eq!(
        (report["delivered"].as_u64(), report["gone"].as_u64()),
        (Some(2), Some(1))
    );
    let rows = chat.rows().await;
    assert!(!rows.contains_key(&all[1]), "the 410 row is deleted");
    assert!(rows.contains_key(&all[0]) && rows.contains_key(&all[2]));
    assert_eq!(
        chat.recorder.posts_to(&all[1]).len(),
        1,
        "410 is not retried"
    );
    assert!(chat.recorder.sqs().is_empty(), "nothing dead-lettered");
}

#[tokio::test]
async fn throttled_posts_are_retried_until_they_succeed() {
    let chat = Chat::new().await;
    let all = ids("t", 2);
    chat.seed(&all, None).await;
    chat.recorder.set_failing(&all[0], 429, Some(2));
    chat.recorder.set_failing(&all[1], 503, Some(1));
    let deps = chat.deps(&[("POST_MAX_ATTEMPTS", "4")]);

    let report = handle(Function::Broadcast, &deps, job(None, "x"))
        .await
        .unwrap();
    assert_eq!(report["delivered"], 2, "{report}");
    assert_eq!(report["retries"], 3, "{report}");
    assert_eq!(chat.recorder.posts_to(&all[0]).len(), 3);
    assert_eq!(chat.recorder.posts_to(&all[1]).len(), 2);
    assert!(chat.recorder.sqs().is_empty());
}

#[tokio::test]
async fn a_persistently_failing_recipient_lands_in_the_dlq() {
    let chat = Chat::new().await;
    let all = ids("f", 4);
    chat.seed(&all, None).await;
    chat.recorder.set_failing(&all[2], 500, None);
    let deps = chat.deps(&[("POST_MAX_ATTEMPTS", "3")]);

    let report = handle(Function::Broadcast, &deps, job(None, "keep me"))
        .await
        .unwrap();
    assert_eq!(report["delivered"], 3, "{report}");
    assert_eq!(report["deadLettered"], 1, "{report}");
    assert_eq!(chat.recorder.posts_to(&all[2]).len(), 3, "bounded retries");

    let sqs = chat.recorder.sqs();
    assert_eq!(sqs.len(), 1);
    let (op, req) = &sqs[0];
    assert_eq!(op, "SendMessage");
    assert_eq!(req["QueueUrl"], chat.dlq_url());
    let body: Value = serde_json::from_str(req["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(body["kind"], DEAD_LETTER_KIND);
    assert_eq!(body["recipient"], all[2].as_str());
    assert_eq!(body["attempts"], 3);
    assert_eq!(body["error"]["status"], 500);
    // Everything needed to replay the delivery.
    assert_eq!(body["job"]["message"], "keep me");
    assert_eq!(body["job"]["messageId"], "msg-1");
    let attrs = &req["MessageAttributes"];
    assert_eq!(
        attrs["ErrorCode"],
        json!({"DataType": "Number", "StringValue": "500"})
    );
    assert_eq!(attrs["Recipient"]["StringValue"], all[2].as_str());
    assert_eq!(attrs["DynamoWaveKind"]["StringValue"], DEAD_LETTER_KIND);
    assert!(
        chat.rows().await.contains_key(&all[2]),
        "a failing recipient is not deleted"
    );
}

#[tokio::test]
async fn without_a_dlq_a_failed_delivery_fails_the_invocation() {
    let chat = Chat::new().await;
    let all = ids("n", 3);
    chat.seed(&all, None).await;
    chat.recorder.set_failing(&all[0], 500, None);
    let deps = chat.deps(&[("DLQ_URL", ""), ("POST_MAX_ATTEMPTS", "2")]);

    let err = handle(Function::Broadcast, &deps, job(None, "x"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "DynamoWave.DeadLetterError");
    // The others were still delivered before the invocation failed.
    assert_eq!(chat.recorder.posts_to(&all[1]).len(), 1);
    assert_eq!(chat.recorder.posts_to(&all[2]).len(), 1);
}

#[tokio::test]
async fn a_bad_job_is_a_bad_event() {
    let chat = Chat::new().await;
    let deps = chat.deps(&[]);
    let err = handle(Function::Broadcast, &deps, json!({"nope": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "DynamoWave.BadEvent");
    assert!(chat.recorder.posts().is_empty());
}
