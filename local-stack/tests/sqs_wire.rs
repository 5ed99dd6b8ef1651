//! The SQS emulator driven by the real AWS SDK for Rust over loopback HTTP.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use dynamowave_local::model::QueueSpec;
use dynamowave_local::sqs::{MessageAttribute, QueueDepth, SqsService, router};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const QUEUE: &str = "dynamowave-DeadLetterQueue";
/// Every test body runs under this bound.
const TEST_BOUND: Duration = Duration::from_secs(60);

struct Server {
    addr: std::net::SocketAddr,
    url: String,
    client: Client,
    service: Arc<SqsService>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = format!("http://{addr}");
        let url = format!("{endpoint}/000000000000/{QUEUE}");
        let spec = QueueSpec {
            logical_id: "DeadLetterQueue".into(),
            name: QUEUE.into(),
            url: url.clone(),
            arn: format!("arn:aws:sqs:us-east-1:000000000000:{QUEUE}"),
            visibility_timeout: Duration::from_secs(30),
            retention: Duration::from_secs(4 * 24 * 3600),
            fifo: false,
        };
        let service = Arc::new(SqsService::new([spec]));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(service.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        let sdk = support::sdk_at(&endpoint).await;
        let config = aws_sdk_sqs::config::Builder::from(&sdk)
            .endpoint_url(&endpoint)
            .build();
        Server {
            addr,
            url,
            client: Client::from_conf(config),
            service,
            stop,
            task,
        }
    }

    async fn stop(self) {
        drop(self.client);
        let _ = self.stop.send(());
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    /// A raw HTTP/1.1 request, for what the SDK never sends (no signature, bad JSON).
    async fn raw(&self, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut request = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, response)
    }
}

/// Runs a test body against a fresh server, bounded, and stops the server afterwards.
async fn with_server<F, Fut>(test: F)
where
    F: FnOnce(Arc<Server>) -> Fut,
    Fut: Future<Output = ()>,
{
    let server = Arc::new(Server::start().await);
    tokio::time::timeout(TEST_BOUND, test(server.clone()))
        .await
        .expect("test timed out");
    let server = Arc::into_inner(server).expect("test kept the server");
    server.stop().await;
}

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

fn number_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(value)
        .build()
        .unwrap()
}

/// AWS's attribute digest, built here independently of the emulator.
fn expected_attributes_md5(attrs: &[(&str, &str, &str)]) -> String {
    let mut sorted = attrs.to_vec();
    sorted.sort();
    let mut layout = Vec::new();
    for (name, data_type, value) in sorted {
        for part in [name, data_type] {
            layout.extend_from_slice(&(part.len() as u32).to_be_bytes());
            layout.extend_from_slice(part.as_bytes());
        }
        layout.push(1);
        layout.extend_from_slice(&(value.len() as u32).to_be_bytes());
        layout.extend_from_slice(value.as_bytes());
    }
    hex::encode(Md5::digest(&layout))
}

async fn depth(server: &Server) -> QueueDepth {
    server.service.depth(QUEUE).expect("queue exists")
}

#[tokio::test]
async fn get_queue_url_and_typed_queue_does_not_exist() {
    with_server(|s| async move {
        let out = s
            .client
            .get_queue_url()
            .queue_name(QUEUE)
            .send()
            .await
            .unwrap();
        assert_eq!(out.queue_url(), Some(s.url.as_str()));

        let err = s
            .client
            .get_queue_url()
            .queue_name("no-such-queue")
            .send()
            .await
            .unwrap_err();
        let service_err = err.as_service_error().expect("a service error");
        assert!(
            matches!(service_err, GetQueueUrlError::QueueDoesNotExist(_)),
            "{service_err:?}"
        );
        assert!(
            service_err
                .message()
                .unwrap_or_default()
                .contains("no-such-queue")
        );
    })
    .await;
}

#[tokio::test]
async fn send_with_attributes_then_receive_all() {
    with_server(|s| async move {
        let body = r#"{"event":"hello"}"#;
        let sent = s
            .client
            .send_message()
            .queue_url(&s.url)
            .message_body(body)
            .message_attributes("Recipient", string_attr("conn-1"))
            .message_attributes("ErrorCode", number_attr("410"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            sent.md5_of_message_body(),
            Some(hex::encode(Md5::digest(body.as_bytes())).as_str())
        );
        let attrs_md5 = expected_attributes_md5(&[
            ("Recipient", "String", "conn-1"),
            ("ErrorCode", "Number", "410"),
        ]);
        assert_eq!(sent.md5_of_message_attributes(), Some(attrs_md5.as_str()));

        let received = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = received.messages();
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.body(), Some(body));
        assert_eq!(m.message_id(), sent.message_id());
        let system = m.attributes().expect("system attributes");
        assert_eq!(
            system
                .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                .map(String::as_str),
            Some("1")
        );
        for name in [
            MessageSystemAttributeName::SentTimestamp,
            MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
            MessageSystemAttributeName::SenderId,
        ] {
            assert!(system.contains_key(&name), "{name:?} missing");
        }
        let user = m.message_attributes().expect("message attributes");
        assert_eq!(user["Recipient"].string_value(), Some("conn-1"));
        assert_eq!(user["ErrorCode"].data_type(), "Number");
        assert_eq!(m.md5_of_message_attributes(), Some(attrs_md5.as_str()));

        // Named and prefix selection returns only those, with a digest over them alone.
        s.client
            .send_message()
            .queue_url(&s.url)
            .message_body("second")
            .message_attributes("Error.Code", number_attr("500"))
            .message_attributes("Other", string_attr("x"))
            .send()
            .await
            .unwrap();
        let received = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .message_attribute_names("Error.*")
            .send()
            .await
            .unwrap();
        let m = &received.messages()[0];
        let user = m.message_attributes().expect("selected attributes");
        assert_eq!(user.keys().collect::<Vec<_>>(), vec!["Error.Code"]);
        assert!(
            m.attributes().is_none(),
            "no system attributes were asked for"
        );
        assert_eq!(
            m.md5_of_message_attributes(),
            Some(expected_attributes_md5(&[("Error.Code", "Number", "500")]).as_str())
        );
    })
    .await;
}

#[tokio::test]
async fn binary_attribute_round_trips_with_matching_digest() {
    with_server(|s| async move {
        let bytes = vec![0u8, 1, 2, 254, 255];
        let binary = MessageAttributeValue::builder()
            .data_type("Binary")
            .binary_value(aws_sdk_sqs::primitives::Blob::new(bytes.clone()))
            .build()
            .unwrap();
        let sent = s
            .client
            .send_message()
            .queue_url(&s.url)
            .message_body("b")
            .message_attributes("Payload", binary)
            .send()
            .await
            .unwrap();
        // Transport type 2 and the raw bytes, per AWS's layout.
        let mut layout = Vec::new();
        for part in [&b"Payload"[..], b"Binary"] {
            layout.extend_from_slice(&(part.len() as u32).to_be_bytes());
            layout.extend_from_slice(part);
        }
        layout.push(2);
        layout.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        layout.extend_from_slice(&bytes);
        let expected = hex::encode(Md5::digest(&layout));
        assert_eq!(sent.md5_of_message_attributes(), Some(expected.as_str()));

        let out = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .message_attribute_names("Payload")
            .send()
            .await
            .unwrap();
        let m = &out.messages()[0];
        let value = &m.message_attributes().unwrap()["Payload"];
        assert_eq!(
            value.binary_value().map(|b| b.as_ref().to_vec()),
            Some(bytes)
        );
        assert_eq!(m.md5_of_message_attributes(), Some(expected.as_str()));
    })
    .await;
}

#[tokio::test]
async fn visibility_timeout_hides_then_reveals_with_new_handle() {
    with_server(|s| async move {
        s.client
            .send_message()
            .queue_url(&s.url)
            .message_body("m")
            .send()
            .await
            .unwrap();
        let first = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .visibility_timeout(1)
            .send()
            .await
            .unwrap();
        let first = first.messages()[0].clone();

        let hidden = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .send()
            .await
            .unwrap();
        assert!(
            hidden.messages().is_empty(),
            "in-flight message was received again"
        );
        assert_eq!(depth(&s).await.in_flight, 1);

        // Long poll across the 1 s timeout rather than sleeping a fixed time.
        let again = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .wait_time_seconds(10)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        let again = &again.messages()[0];
        assert_eq!(again.message_id(), first.message_id());
        assert_ne!(again.receipt_handle(), first.receipt_handle());
        let count = again.attributes().unwrap()
            [&MessageSystemAttributeName::ApproximateReceiveCount]
            .clone();
        assert_eq!(count, "2");

        // ChangeMessageVisibility to 0 makes it receivable at once.
        s.client
            .change_message_visibility()
            .queue_url(&s.url)
            .receipt_handle(again.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        let third = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .send()
            .await
            .unwrap();
        assert_eq!(third.messages().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn long_poll_returns_when_a_message_arrives() {
    with_server(|s| async move {
        let poller = {
            let s = s.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let out = s
                    .client
                    .receive_message()
                    .queue_url(&s.url)
                    .wait_time_seconds(5)
                    .send()
                    .await
                    .unwrap();
                (out, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.client
            .send_message()
            .queue_url(&s.url)
            .message_body("late")
            .send()
            .await
            .unwrap();
        let (out, elapsed) = poller.await.unwrap();
        assert_eq!(out.messages().len(), 1);
        assert_eq!(out.messages()[0].body(), Some("late"));
        // Loose: woken by the send, not by the end of the 5 s wait.
        assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    })
    .await;
}

#[tokio::test]
async fn delete_message_and_receipt_handle_errors() {
    with_server(|s| async move {
        s.client
            .send_message()
            .queue_url(&s.url)
            .message_body("bye")
            .send()
            .await
            .unwrap();
        let out = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .send()
            .await
            .unwrap();
        let handle = out.messages()[0].receipt_handle().unwrap().to_string();
        s.client
            .delete_message()
            .queue_url(&s.url)
            .receipt_handle(&handle)
            .send()
            .await
            .unwrap();
        assert_eq!(depth(&s).await, QueueDepth::default());

        // A stale handle of a deleted message succeeds, as on AWS.
        s.client
            .delete_message()
            .queue_url(&s.url)
            .receipt_handle(&handle)
            .send()
            .await
            .unwrap();

        for garbage in [
            "garbage",
            &format!("{handle}0"),
            "00000000000000000000000000000000",
        ] {
            let err = s
                .client
                .delete_message()
                .queue_url(&s.url)
                .receipt_handle(garbage)
                .send()
                .await
                .unwrap_err();
            let service_err = err.as_service_error().expect("a service error");
            assert!(
                matches!(service_err, DeleteMessageError::ReceiptHandleIsInvalid(_)),
                "{garbage}: {service_err:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn queue_attributes_count_messages_and_purge_empties() {
    with_server(|s| async move {
        for body in ["a", "b"] {
            s.client
                .send_message()
                .queue_url(&s.url)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
        s.client
            .send_message()
            .queue_url(&s.url)
            .message_body("later")
            .delay_seconds(60)
            .send()
            .await
            .unwrap();
        s.client
            .receive_message()
            .queue_url(&s.url)
            .send()
            .await
            .unwrap();

        let attrs = s
            .client
            .get_queue_attributes()
            .queue_url(&s.url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = attrs.attributes().expect("attributes");
        let get = |name: QueueAttributeName| attrs.get(&name).cloned().unwrap_or_default();
        assert_eq!(get(QueueAttributeName::ApproximateNumberOfMessages), "1");
        assert_eq!(
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            "1"
        );
        assert_eq!(
            get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            "1"
        );
        assert_eq!(get(QueueAttributeName::VisibilityTimeout), "30");
        assert_eq!(get(QueueAttributeName::MessageRetentionPeriod), "345600");
        assert_eq!(
            get(QueueAttributeName::QueueArn),
            format!("arn:aws:sqs:us-east-1:000000000000:{QUEUE}")
        );

        // Named attributes only.
        let one = s
            .client
            .get_queue_attributes()
            .queue_url(&s.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        assert_eq!(one.attributes().map(|a| a.len()), Some(1));

        s.client
            .purge_queue()
            .queue_url(&s.url)
            .send()
            .await
            .unwrap();
        assert_eq!(depth(&s).await, QueueDepth::default());
    })
    .await;
}

#[tokio::test]
async fn missing_and_invalid_parameters_name_the_field() {
    with_server(|s| async move {
        let err = s
            .client
            .send_message()
            .queue_url(&s.url)
            .send()
            .await
            .unwrap_err();
        let e = err.as_service_error().expect("a service error");
        assert_eq!(e.code(), Some("MissingParameter"));
        assert!(
            e.message().unwrap_or_default().contains("MessageBody"),
            "{e:?}"
        );

        let err = s
            .client
            .send_message()
            .queue_url(&s.url)
            .message_body("x")
            .delay_seconds(901)
            .send()
            .await
            .unwrap_err();
        let e = err.as_service_error().expect("a service error");
        assert_eq!(e.code(), Some("InvalidParameterValue"));
        let message = e.message().unwrap_or_default();
        assert!(
            message.contains("DelaySeconds") && message.contains("901"),
            "{message}"
        );

        let err = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .max_number_of_messages(11)
            .send()
            .await
            .unwrap_err();
        let e = err.as_service_error().expect("a service error");
        assert_eq!(e.code(), Some("InvalidParameterValue"));
        assert!(
            e.message()
                .unwrap_or_default()
                .contains("MaxNumberOfMessages")
        );
    })
    .await;
}

#[tokio::test]
async fn send_internal_by_name_url_and_arn_and_depth() {
    with_server(|s| async move {
        let attributes = vec![
            ("RequestID".to_string(), MessageAttribute::string("req-1")),
            ("ErrorCode".to_string(), MessageAttribute::number(500)),
            ("ErrorMessage".to_string(), MessageAttribute::string("boom")),
        ];
        let arn = format!("arn:aws:sqs:us-east-1:000000000000:{QUEUE}");
        for queue in [QUEUE, s.url.as_str(), arn.as_str()] {
            let id = s
                .service
                .send_internal(queue, r#"{"original":"event"}"#.into(), attributes.clone())
                .unwrap();
            assert!(!id.is_empty());
        }
        assert_eq!(
            s.service.depth(&arn),
            Some(QueueDepth {
                visible: 3,
                in_flight: 0,
                delayed: 0
            })
        );
        assert_eq!(s.service.queue_names(), vec![QUEUE.to_string()]);
        assert!(s.service.depth("nope").is_none());
        let err = s
            .service
            .send_internal("nope", "x".into(), vec![])
            .unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        let err = s
            .service
            .send_internal(QUEUE, String::new(), vec![])
            .unwrap_err();
        assert!(err.message.contains("MessageBody"), "{err}");

        let out = s
            .client
            .receive_message()
            .queue_url(&s.url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        assert_eq!(out.messages().len(), 3);
        let user = out.messages()[0].message_attributes().unwrap();
        assert_eq!(user["ErrorCode"].data_type(), "Number");
        assert_eq!(user["ErrorCode"].string_value(), Some("500"));
        assert_eq!(user["RequestID"].string_value(), Some("req-1"));
        assert_eq!(
            depth(&s).await,
            QueueDepth {
                visible: 0,
                in_flight: 3,
                delayed: 0
            }
        );
    })
    .await;
}

#[tokio::test]
async fn create_queue_is_idempotent_and_new_queues_work() {
    with_server(|s| async move {
        let same = s
            .client
            .create_queue()
            .queue_name(QUEUE)
            .send()
            .await
            .unwrap();
        assert_eq!(same.queue_url(), Some(s.url.as_str()));

        let made = s
            .client
            .create_queue()
            .queue_name("tools-queue")
            .attributes(QueueAttributeName::VisibilityTimeout, "5")
            .send()
            .await
            .unwrap();
        let url = made.queue_url().unwrap().to_string();
        assert!(url.ends_with("/000000000000/tools-queue"), "{url}");
        s.client
            .send_message()
            .queue_url(&url)
            .message_body("t")
            .send()
            .await
            .unwrap();
        assert_eq!(s.service.depth("tools-queue").map(|d| d.visible), Some(1));

        let err = s
            .client
            .create_queue()
            .queue_name("tools-queue")
            .attributes(QueueAttributeName::VisibilityTimeout, "6")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.as_service_error().and_then(|e| e.code()),
            Some("QueueAlreadyExists")
        );
    })
    .await;
}

#[tokio::test]
async fn raw_requests_unsigned_bad_json_and_unknown_operation() {
    with_server(|s| async move {
        let target = ("x-amz-target", "AmazonSQS.GetQueueUrl");
        let (status, response) = s.raw(&[target], "{}").await;
        assert_eq!(status, 403, "{response}");
        assert!(response.contains("MissingAuthenticationTokenException"));

        let (status, response) = s.raw(&[target, ("authorization", "Basic abc")], "{}").await;
        assert_eq!(status, 403, "{response}");
        assert!(response.contains("IncompleteSignature"));

        let signed = ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x");
        let (status, response) = s.raw(&[target, signed], "not json").await;
        assert_eq!(status, 400, "{response}");
        assert!(response.contains("SerializationException"));

        let (status, response) = s
            .raw(&[("x-amz-target", "AmazonSQS.FlyToTheMoon"), signed], "{}")
            .await;
        assert_eq!(status, 400, "{response}");
        assert!(response.contains("InvalidAction") && response.contains("FlyToTheMoon"));
        assert!(
            response
                .to_ascii_lowercase()
                .contains("x-amzn-query-error: invalidaction;sender")
        );
    })
    .await;
}
