//! The stack's observability APIs end to end, through the edge with the real SDK clients and
//! the real reference binaries: CloudWatch metrics are the stack's real counts, the log
//! groups hold AWS's platform lines, DescribeStackResources lists what runs, and the
//! publication delay makes GetMetricData answer PartialData until datapoints are out.

mod support;

use std::time::Duration;

use aws_sdk_cloudformation::types::ResourceStatus;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StatusCode};
use aws_sdk_cloudwatchlogs::operation::describe_log_streams::DescribeLogStreamsError;
use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;
use aws_sdk_lambda::primitives::Blob;
use dynamowave_local::cloudwatch::store::now_ms;

fn ping() -> Blob {
    Blob::new(r#"{"warmer": true}"#)
}

fn query(id: &str, function: Option<&str>, metric: &str, stat: &str) -> MetricDataQuery {
    let dims = function.map(|f| vec![Dimension::builder().name("FunctionName").value(f).build()]);
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/Lambda")
                        .metric_name(metric)
                        .set_dimensions(dims)
                        .build(),
                )
                .period(60)
                .stat(stat)
                .build(),
        )
        .build()
}

async fn invoke_n(lambda: &aws_sdk_lambda::Client, f: &str, parallel: usize, sequential: usize) {
    let burst = (0..parallel).map(|_| lambda.invoke().function_name(f).payload(ping()).send());
    for r in futures_util::future::join_all(burst).await {
        r.expect("invoke");
    }
    for _ in 0..sequential {
        lambda
            .invoke()
            .function_name(f)
            .payload(ping())
            .send()
            .await
            .expect("invoke");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_real_counts_and_logs_hold_platform_lines() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let f = stack.endpoints.functions["SendMessageFunction"].clone();
    let start = now_ms() / 1000 / 60 * 60;
    tokio::time::timeout(Duration::from_secs(120), invoke_n(&lambda, &f, 3, 4))
        .await
        .expect("invocations in time");

    let out = cw
        .get_metric_data()
        .metric_data_queries(query("inv", Some(&f), "Invocations", "Sum"))
        .metric_data_queries(query("all", None, "Invocations", "Sum"))
        .metric_data_queries(query("dur", Some(&f), "Duration", "SampleCount"))
        .metric_data_queries(query("conc", Some(&f), "ConcurrentExecutions", "Maximum"))
        .metric_data_queries(query("err", Some(&f), "Errors", "Sum"))
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(now_ms() / 1000 + 60))
        .send()
        .await
        .expect("GetMetricData through the edge");
    let sum = |i: usize| out.metric_data_results()[i].values().iter().sum::<f64>();
    assert_eq!(sum(0), 7.0, "Invocations Sum = the calls made");
    assert!(sum(1) >= 7.0, "account-wide Invocations include them");
    assert_eq!(sum(2), 7.0, "one Duration sample per invocation");
    let peak = out.metric_data_results()[3]
        .values()
        .iter()
        .cloned()
        .fold(0.0, f64::max);
    assert!(
        (1.0..=3.0).contains(&peak),
        "ConcurrentExecutions Maximum {peak}"
    );
    assert!(
        out.metric_data_results()[4].values().is_empty(),
        "no errors: no datapoint"
    );
    assert!(
        out.metric_data_results()
            .iter()
            .all(|r| r.status_code() == Some(&StatusCode::Complete))
    );

    let listed = cw
        .list_metrics()
        .namespace("AWS/Lambda")
        .metric_name("Invocations")
        .send()
        .await
        .unwrap();
    assert!(
        listed
            .metrics()
            .iter()
            .any(|m| m.dimensions().iter().any(|d| d.value() == Some(f.as_str())))
    );

    // One stream per instance, named as Lambda names them; cold starts = instances.
    let group = format!("/aws/lambda/{f}");
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/")
        .send()
        .await
        .unwrap();
    assert!(
        groups
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(group.as_str()))
    );
    let streams = logs
        .describe_log_streams()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = streams
        .log_streams()
        .iter()
        .filter_map(|s| s.log_stream_name())
        .collect();
    let pattern = regex_lite::Regex::new(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$").unwrap();
    assert!(
        !names.is_empty() && names.iter().all(|n| pattern.is_match(n)),
        "{names:?}"
    );
    let cold = logs
        .filter_log_events()
        .log_group_name(&group)
        .filter_pattern("REPORT \"Init Duration\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cold.events().len(),
        names.len(),
        "one cold start per instance"
    );
    assert_eq!(
        stack.edge.snapshot().functions[&f].cold_starts as usize,
        names.len()
    );

    let events = logs
        .get_log_events()
        .log_group_name(&group)
        .log_stream_name(names[0])
        .start_from_head(true)
        .send()
        .await
        .unwrap();
    let lines: Vec<&str> = events.events().iter().filter_map(|e| e.message()).collect();
    assert!(
        lines[0].starts_with("INIT_START Runtime Version: provided:al2023."),
        "{lines:?}"
    );
    assert!(lines[0].contains("\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:"));
    let start_line = lines.iter().find(|l| l.starts_with("START ")).unwrap();
    assert!(start_line.ends_with(" Version: $LATEST"), "{start_line}");
    let id = start_line
        .trim_start_matches("START RequestId: ")
        .split(' ')
        .next()
        .unwrap();
    assert!(
        lines.contains(&format!("END RequestId: {id}").as_str()),
        "{lines:?}"
    );
    let report = lines
        .iter()
        .find(|l| l.starts_with(&format!("REPORT RequestId: {id}\tDuration: ")))
        .unwrap();
    assert!(
        report.contains(" ms\tBilled Duration: ")
            && report.contains("\tMemory Size: 256 MB\tMax Memory Used: ")
    );
    assert!(
        report.ends_with(" ms\t") && report.contains("\tInit Duration: "),
        "{report:?}"
    );

    let e = logs
        .get_log_events()
        .log_group_name("/aws/lambda/nope")
        .log_stream_name("x")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        e.into_service_error(),
        GetLogEventsError::ResourceNotFoundException(_)
    ));
    let e = logs
        .describe_log_streams()
        .log_group_name("/aws/lambda/nope")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        e.into_service_error(),
        DescribeLogStreamsError::ResourceNotFoundException(_)
    ));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_stack_resources_lists_what_the_stack_runs() {
    let stack = support::stack().await;
    let sdk = support::sdk(&stack).await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let out = cfn
        .describe_stack_resources()
        .stack_name("dynamowave")
        .send()
        .await
        .unwrap();
    let find = |logical: &str| {
        out.stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some(logical))
            .unwrap_or_else(|| panic!("{logical} in {:?}", out.stack_resources()))
    };
    let e = &stack.endpoints;
    let f = find("SendMessageFunction");
    assert_eq!(
        f.physical_resource_id(),
        Some(e.functions["SendMessageFunction"].as_str())
    );
    assert_eq!(f.resource_type(), Some("AWS::Lambda::Function"));
    assert_eq!(f.resource_status(), Some(&ResourceStatus::CreateComplete));
    assert!(f.timestamp().is_some());
    for (logical, physical) in e.tables.iter().chain(&e.queues) {
        assert_eq!(
            find(logical).physical_resource_id(),
            Some(physical.as_str())
        );
    }
    let api = out
        .stack_resources()
        .iter()
        .find(|r| r.resource_type() == Some("AWS::ApiGatewayV2::Api"))
        .unwrap();
    assert_eq!(api.physical_resource_id(), Some(e.api_id.as_str()));
    let stage = out
        .stack_resources()
        .iter()
        .find(|r| r.resource_type() == Some("AWS::ApiGatewayV2::Stage"))
        .unwrap();
    assert_eq!(stage.physical_resource_id(), Some(e.stage.as_str()));
    let one = cfn
        .describe_stack_resources()
        .stack_name("dynamowave")
        .logical_resource_id("SendMessageFunction")
        .send()
        .await
        .unwrap();
    assert_eq!(one.stack_resources().len(), 1);
    let err = cfn
        .describe_stack_resources()
        .stack_name("other")
        .send()
        .await
        .unwrap_err();
    use aws_sdk_cloudformation::error::ProvideErrorMetadata;
    assert_eq!(err.into_service_error().code(), Some("ValidationError"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publication_delay_gives_partial_data_then_complete() {
    let mut options = support::options();
    options.cloudwatch.publish_delay = Duration::from_secs(3);
    let stack = dynamowave_local::stack::start(options)
        .await
        .expect("the stack starts");
    let sdk = support::sdk(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let f = stack.endpoints.functions["SendMessageFunction"].clone();
    let start = now_ms() / 1000 / 60 * 60;
    invoke_n(&lambda, &f, 0, 1).await;
    // A window that ends just after the invocation, so it is wholly published 3 s later.
    let end = now_ms() / 1000 + 1;
    let ask = || {
        cw.get_metric_data()
            .metric_data_queries(query("inv", Some(&f), "Invocations", "Sum"))
            .start_time(DateTime::from_secs(start))
            .end_time(DateTime::from_secs(end))
            .send()
    };
    let before = ask().await.unwrap();
    let r = &before.metric_data_results()[0];
    assert_eq!(r.status_code(), Some(&StatusCode::PartialData));
    assert!(r.values().is_empty(), "not yet published: {:?}", r.values());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let out = ask().await.unwrap();
        let r = &out.metric_data_results()[0];
        if r.status_code() == Some(&StatusCode::Complete) {
            assert_eq!(r.values(), [1.0]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {:?}",
            r.status_code()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stack.shutdown().await;
}
