//! The Lambda service end to end, driven with the real AWS SDK for Rust through the edge,
//! running the real reference binaries.

mod support;

use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, InvocationType};
use serde_json::{Value, json};

fn ping() -> Blob {
    Blob::new(json!({"warmer": true}).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_concurrency_2_throttles_the_rest_while_others_run() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let default_fn = stack.endpoints.functions["DefaultFunction"].clone();
    let connect_fn = stack.endpoints.functions["ConnectFunction"].clone();

    lambda
        .put_function_concurrency()
        .function_name(&default_fn)
        .reserved_concurrent_executions(2)
        .send()
        .await
        .unwrap();
    // Every invocation of the default function now takes 1.5 s, so calls overlap.
    support::set_faults(
        &lambda,
        &default_fn,
        r#"{"latency":{"percentage":100,"min_ms":1500,"max_ms":1500}}"#,
        None,
    )
    .await;

    // No SDK retries, so each 429 is seen as it happened.
    let no_retry = aws_sdk_lambda::config::Builder::from(&sdk)
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    let raw = aws_sdk_lambda::Client::from_conf(no_retry);
    let calls = (0..10).map(|_| {
        raw.invoke()
            .function_name(&default_fn)
            .payload(ping())
            .send()
    });
    let other = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        raw.invoke()
            .function_name(&connect_fn)
            .payload(ping())
            .send()
            .await
    };
    let (results, other) = tokio::join!(futures_util::future::join_all(calls), other);
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let throttled: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter_map(|e| e.as_service_error())
        .filter(|e| e.is_too_many_requests_exception())
        .collect();
    assert_eq!(ok, 2, "exactly the reserved two ran");
    assert_eq!(throttled.len(), 8, "the other eight were throttled");
    if let aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(t) =
        throttled[0]
    {
        assert_eq!(
            t.reason().map(|r| r.as_str()),
            Some("ReservedFunctionConcurrentInvocationLimitExceeded")
        );
    }
    let other = other.expect("another function still runs");
    assert!(other.function_error().is_none());

    // Validation errors come back typed.
    let err = lambda
        .put_function_concurrency()
        .function_name(&default_fn)
        .reserved_concurrent_executions(5000)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_parameter_value_exception()
    );
    let err = lambda
        .invoke()
        .function_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_resource_not_found_exception()
    );

    // Reserved concurrency reads back, and goes away.
    let got = lambda
        .get_function_concurrency()
        .function_name(&default_fn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.reserved_concurrent_executions(), Some(2));
    lambda
        .delete_function_concurrency()
        .function_name(&default_fn)
        .send()
        .await
        .unwrap();
    let got = lambda
        .get_function_concurrency()
        .function_name(&default_fn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.reserved_concurrent_executions(), None);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_async_broadcast_retries_twice_then_lands_in_the_dlq() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let broadcast = stack.endpoints.functions["BroadcastFunction"].clone();
    let dlq_url = stack.endpoints.queues["DeadLetterQueue"].clone();

    let config = lambda
        .get_function_configuration()
        .function_name(&broadcast)
        .send()
        .await
        .unwrap();
    let mut vars = config
        .environment()
        .and_then(|e| e.variables().cloned())
        .unwrap_or_default();
    let before = vars.clone();
    vars.insert(
        "DYNAMOWAVE_FAULTS".into(),
        r#"{"crash":{"percentage":100}}"#.into(),
    );
    let updated = lambda
        .update_function_configuration()
        .function_name(&broadcast)
        .environment(Environment::builder().set_variables(Some(vars)).build())
        .send()
        .await
        .unwrap();
    let after = updated.environment().unwrap().variables().unwrap();
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k} kept");
    }

    let job = json!({"messageId": "m-1", "sender": "s=", "message": "lost?", "sentAt": 1});
    let out = lambda
        .invoke()
        .function_name(&broadcast)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(job.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status_code(), 202);

    let mut message = None;
    for _ in 0..10 {
        let got = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .wait_time_seconds(3)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        if let Some(m) = got.messages().first() {
            message = Some(m.clone());
            break;
        }
    }
    let message = message.expect("the event reached the DLQ");
    let body: Value = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!(body, job, "the DLQ body is the original event");
    let attrs = message.message_attributes().unwrap();
    assert_eq!(attrs["ErrorCode"].data_type(), "Number");
    assert_eq!(attrs["ErrorCode"].string_value(), Some("200"));
    assert!(attrs["RequestID"].string_value().is_some());
    assert!(
        attrs["ErrorMessage"]
            .string_value()
            .unwrap()
            .contains("Runtime exited"),
        "{attrs:?}"
    );

    let t = stack.edge.snapshot();
    let m = &t.functions[&broadcast];
    assert_eq!(m.invocations, 3, "one attempt and two retries");
    assert_eq!(m.async_retries, 2);
    assert_eq!(m.crashes, 3);
    assert_eq!(m.dead_lettered, 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_reports_init_duration_and_a_warm_call_does_not() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let f = stack.endpoints.functions["SendMessageFunction"].clone();
    let first = lambda
        .invoke()
        .function_name(&f)
        .payload(ping())
        .send()
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(first.payload().unwrap().as_ref()).unwrap();
    assert_eq!(answer["coldStart"], true);
    let second = lambda
        .invoke()
        .function_name(&f)
        .payload(ping())
        .send()
        .await
        .unwrap();
    let answer2: Value = serde_json::from_slice(second.payload().unwrap().as_ref()).unwrap();
    assert_eq!(answer2["coldStart"], false);
    assert_eq!(
        answer2["instanceId"], answer["instanceId"],
        "the warm instance was reused"
    );

    let events = logs
        .filter_log_events()
        .log_group_name(format!("/aws/lambda/{f}"))
        .filter_pattern("REPORT")
        .send()
        .await
        .unwrap();
    let reports: Vec<&str> = events.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports[0].contains("\tInit Duration: "), "{}", reports[0]);
    assert!(!reports[1].contains("Init Duration"), "{}", reports[1]);
    assert!(reports[1].starts_with("REPORT RequestId: "));
    assert!(
        reports[1].contains("\tBilled Duration: ") && reports[1].contains("\tMemory Size: 256 MB")
    );
    assert_eq!(stack.edge.snapshot().functions[&f].cold_starts, 1);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_instance_and_the_next_call_gets_a_new_one() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let f = stack.endpoints.functions["DefaultFunction"].clone();
    support::set_faults(&lambda, &f, r#"{"timeout":{"percentage":100}}"#, Some(1)).await;
    let out = lambda
        .invoke()
        .function_name(&f)
        .payload(ping())
        .send()
        .await
        .unwrap();
    assert_eq!(out.function_error(), Some("Unhandled"));
    let body: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Task timed out after 1.00 seconds"),
        "{body}"
    );
    let m = &stack.edge.snapshot().functions[&f];
    assert_eq!((m.timeouts, m.cold_starts), (1, 1));
    assert!(
        stack.edge.lambda.registry.all().is_empty(),
        "the timed-out instance is gone"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_are_reaped_and_the_warmer_schedule_can_fire_now() {
    let mut options = support::options();
    options.lambda.idle_timeout = Duration::from_millis(300);
    let stack = dynamowave_local::stack::start(options).await.unwrap();
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let f = stack.endpoints.functions["ConnectFunction"].clone();
    lambda
        .invoke()
        .function_name(&f)
        .payload(ping())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let again = lambda
        .invoke()
        .function_name(&f)
        .payload(ping())
        .send()
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(again.payload().unwrap().as_ref()).unwrap();
    assert_eq!(answer["coldStart"], true, "the idle instance was reaped");

    // The warmer's schedule, fired now: it warms WarmConcurrency (2) instances per target.
    let warmer = stack.endpoints.functions["WarmerFunction"].clone();
    let send = stack.endpoints.functions["SendMessageFunction"].clone();
    let url = format!(
        "{}/_dynamowave/schedules/{warmer}/WarmSchedule",
        stack.endpoints.endpoint_url
    );
    let status = post(&url).await;
    assert_eq!(status, 202);
    let mut warmed = 0;
    for _ in 0..100 {
        warmed = stack
            .edge
            .snapshot()
            .functions
            .get(&send)
            .map(|m| m.cold_starts)
            .unwrap_or(0);
        if warmed >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        warmed, 2,
        "two instances of send-message were started by the warmer"
    );
    stack.shutdown().await;
}

/// A bare HTTP POST on loopback (our own endpoint needs no signature).
async fn post(url: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    buf.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_checks_without_running_and_unsigned_calls_are_refused() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let f = stack.endpoints.functions["ConnectFunction"].clone();
    let out = lambda
        .invoke()
        .function_name(&f)
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status_code(), 204);
    assert!(
        stack
            .edge
            .snapshot()
            .functions
            .get(&f)
            .is_none_or(|m| m.invocations == 0)
    );

    // No Authorization header: refused as AWS refuses unsigned calls.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = stack
        .endpoints
        .endpoint_url
        .trim_start_matches("http://")
        .to_string();
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    let req = format!(
        "GET /2019-09-30/functions/{f}/concurrency HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    assert!(buf.starts_with("HTTP/1.1 403"), "{buf}");
    assert!(
        buf.to_ascii_lowercase()
            .contains("x-amzn-errortype: missingauthenticationtokenexception"),
        "{buf}"
    );
    stack.shutdown().await;
}
