//! Queue state without HTTP: receipt handles, retention, delays, validation.

use std::time::Duration;

use super::queue::{DEFAULT_MAX_MESSAGE_SIZE, Queue, QueueConfig};
use super::{MessageAttribute, QueueDepth, queue_name_of};

fn queue(retention: Duration) -> Queue {
    Queue::new(QueueConfig {
        name: "q".into(),
        url: "http://127.0.0.1:4566/000000000000/q".into(),
        arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
        visibility_timeout: Duration::from_secs(30),
        retention,
        delay: Duration::ZERO,
        max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        receive_wait: Duration::ZERO,
        fifo: false,
    })
}

fn send(q: &Queue, body: &str) {
    q.send(body.into(), vec![], None, "000000000000").unwrap();
}

#[test]
fn stale_handle_of_a_received_again_message_does_not_delete_it() {
    let q = queue(Duration::from_secs(60));
    send(&q, "m");
    let (first, _) = q.receive(1, Duration::ZERO);
    let (second, _) = q.receive(1, Duration::from_secs(30));
    assert_eq!(second[0].receive_count, 2);
    q.delete(&first[0].receipt_handle).unwrap();
    assert_eq!(q.depth().in_flight, 1);
    q.delete(&second[0].receipt_handle).unwrap();
    assert_eq!(q.depth(), QueueDepth::default());
}

#[test]
fn handles_from_another_queue_or_tampered_are_invalid() {
    let (a, b) = (
        queue(Duration::from_secs(60)),
        queue(Duration::from_secs(60)),
    );
    send(&a, "m");
    let (got, _) = a.receive(1, Duration::from_secs(30));
    let handle = &got[0].receipt_handle;
    let err = b.delete(handle).unwrap_err();
    assert_eq!(
        err.query_error.as_deref(),
        Some("ReceiptHandleIsInvalid;Sender")
    );
    let mut tampered = handle.clone();
    tampered.replace_range(0..1, if handle.starts_with('3') { "4" } else { "3" });
    assert!(a.delete(&tampered).is_err());
    assert!(a.delete("").is_err());
    assert_eq!(a.depth().in_flight, 1);
}

#[test]
fn messages_past_retention_are_dropped() {
    let q = queue(Duration::from_millis(30));
    send(&q, "old");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(q.depth(), QueueDepth::default());
    assert!(q.receive(10, Duration::from_secs(1)).0.is_empty());
}

#[test]
fn delayed_messages_count_as_delayed_and_wake_time_is_reported() {
    let q = queue(Duration::from_secs(60));
    q.send("later".into(), vec![], Some(Duration::from_secs(60)), "me")
        .unwrap();
    assert_eq!(q.depth().delayed, 1);
    let (got, next) = q.receive(1, Duration::from_secs(1));
    assert!(got.is_empty());
    assert!(next.is_some());
}

#[test]
fn change_visibility_errors() {
    let q = queue(Duration::from_secs(60));
    send(&q, "m");
    let (got, _) = q.receive(1, Duration::ZERO);
    // Visible again (timeout 0): not in flight.
    let err = q
        .change_visibility(&got[0].receipt_handle, Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(
        err.query_error.as_deref(),
        Some("AWS.SimpleQueueService.MessageNotInflight;Sender")
    );
    q.delete(&got[0].receipt_handle).unwrap();
    let err = q
        .change_visibility(&got[0].receipt_handle, Duration::from_secs(5))
        .unwrap_err();
    assert!(err.message.contains("ReceiptHandle"), "{err}");
}

#[test]
fn invalid_messages_are_refused_with_the_field_named() {
    let q = queue(Duration::from_secs(60));
    let refuse = |body: &str, attrs: Vec<(String, MessageAttribute)>| {
        q.send(body.into(), attrs, None, "me").unwrap_err()
    };
    let err = refuse("a\u{1}b", vec![]);
    assert!(err.code.ends_with("InvalidMessageContents"), "{err}");
    let err = refuse(&"x".repeat(DEFAULT_MAX_MESSAGE_SIZE + 1), vec![]);
    assert!(err.message.contains("MessageBody"), "{err}");
    let err = refuse("b", vec![("n".into(), MessageAttribute::number("abc"))]);
    assert!(
        err.message.contains("MessageAttributes.n") && err.message.contains("abc"),
        "{err}"
    );
    let err = refuse("b", vec![("AWS.x".into(), MessageAttribute::string("v"))]);
    assert!(err.message.contains("AWS.x"), "{err}");
    let err = refuse("b", vec![("e".into(), MessageAttribute::string(""))]);
    assert!(err.message.contains("MessageAttributes.e"), "{err}");
    let many = (0..11)
        .map(|i| (format!("a{i}"), MessageAttribute::string("v")))
        .collect();
    assert!(refuse("b", many).message.contains("MessageAttributes"));
    let odd = MessageAttribute {
        data_type: "Text".into(),
        string_value: Some("v".into()),
        binary_value: None,
    };
    assert!(
        refuse("b", vec![("t".into(), odd)])
            .message
            .contains("Text")
    );
}

#[test]
fn queue_ids_resolve_to_names() {
    assert_eq!(queue_name_of("dlq"), "dlq");
    assert_eq!(
        queue_name_of("arn:aws:sqs:us-east-1:000000000000:dlq"),
        "dlq"
    );
    assert_eq!(
        queue_name_of("http://127.0.0.1:4566/000000000000/dlq"),
        "dlq"
    );
    assert_eq!(
        queue_name_of("http://localhost/x/000000000000/dlq/?a=b"),
        "dlq"
    );
}
