//! CloudWatch GetMetricData / ListMetrics / PutMetricData on the wire: the real AWS SDK for
//! Rust (Smithy RPC v2 CBOR) against the local CloudWatch on loopback, and raw requests
//! shaped as boto3 sends them in awsJson 1.0 and awsQuery.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError;
use aws_sdk_cloudwatch::operation::list_metrics::ListMetricsError;
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricDataQuery, MetricDatum, MetricStat, ScanBy,
    StatusCode,
};
use dynamowave_local::cloudwatch::store::{Sample, now_ms};
use dynamowave_local::cloudwatch::{MetricId, MetricSettings, MetricStore, router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BOUND: Duration = Duration::from_secs(60);

struct Server {
    endpoint: String,
    addr: std::net::SocketAddr,
    client: Client,
    store: Arc<MetricStore>,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn sdk_client(endpoint: &str) -> Client {
    let sdk = support::sdk_at(endpoint).await;
    let conf = aws_sdk_cloudwatch::config::Builder::from(&sdk)
        .retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

async fn serve(settings: MetricSettings) -> Server {
    let store = Arc::new(MetricStore::new(settings));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoint = format!("http://{addr}");
    let app = router(store.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Server {
        client: sdk_client(&endpoint).await,
        endpoint,
        addr,
        store,
        stop,
    }
}

fn query(id: &str, function: &str, metric: &str, period: i32, stat: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/Lambda")
                        .metric_name(metric)
                        .dimensions(
                            Dimension::builder()
                                .name("FunctionName")
                                .value(function)
                                .build(),
                        )
                        .build(),
                )
                .period(period)
                .stat(stat)
                .build(),
        )
        .build()
}

/// A minute-aligned window of `minutes` ending at the current minute's end.
fn window(minutes: i64) -> (i64, i64) {
    let end = (now_ms() / 1000 / 60 + 1) * 60;
    (end - minutes * 60, end)
}

/// Durations 1..=100 ms in the first second of the window, invocations spread over two minutes.
fn seed(store: &MetricStore, function: &str, start: i64) {
    let d = |m: &str| MetricId::new("AWS/Lambda", m, &[("FunctionName", function)]);
    for v in 1..=100 {
        store.put_at(
            d("Duration"),
            start,
            Sample::Value(v as f64, 1.0),
            Some("Milliseconds"),
        );
    }
    for t in [start, start + 1, start + 59, start + 60, start + 61] {
        store.put_at(d("Invocations"), t, Sample::Value(1.0, 1.0), Some("Count"));
    }
}

#[tokio::test]
async fn the_sdk_sends_rpc_v2_cbor_and_the_recording_is_what_wire_md_says() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let recorder = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let request = read_request(&mut socket).await;
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/cbor\r\ncontent-length: 1\r\n\r\n\xA0")
            .await
            .unwrap();
        request
    });
    let client = sdk_client(&endpoint).await;
    let (start, end) = window(60);
    tokio::time::timeout(
        BOUND,
        client
            .get_metric_data()
            .metric_data_queries(query("m1", "my-fn", "Invocations", 60, "Sum"))
            .start_time(DateTime::from_secs(start))
            .end_time(DateTime::from_secs(end))
            .send(),
    )
    .await
    .unwrap()
    .expect("an empty CBOR map is a valid answer");
    let (head, body) = recorder.await.unwrap();
    eprintln!("{head}\nbody (hex): {}", hex::encode(&body));
    let lower = head.to_ascii_lowercase();
    assert!(
        head.starts_with(
            "POST /service/GraniteServiceVersion20100801/operation/GetMetricData HTTP/1.1\r\n"
        ),
        "{head}"
    );
    assert!(
        lower.contains("\r\ncontent-type: application/cbor\r\n"),
        "{head}"
    );
    assert!(
        lower.contains("\r\nsmithy-protocol: rpc-v2-cbor\r\n"),
        "{head}"
    );
    assert!(lower.contains("/monitoring/aws4_request"), "{head}");
    let decoded = dynamowave_local::cloudwatch::wire_cbor::decode(&body).unwrap();
    assert_eq!(decoded["MetricDataQueries"][0]["MetricStat"]["Stat"], "Sum");
    assert_eq!(decoded["StartTime"], start as f64);
    assert_eq!(body[0], 0xBF, "the SDK sends an indefinite-length map");
}

#[tokio::test]
async fn get_metric_data_answers_periods_statistics_order_and_pages() {
    let s = serve(MetricSettings::default()).await;
    let (start, end) = window(3);
    seed(&s.store, "fn-a", start);
    let call = |q: Vec<MetricDataQuery>, scan: ScanBy, max: Option<i32>, token: Option<String>| {
        s.client
            .get_metric_data()
            .set_metric_data_queries(Some(q))
            .start_time(DateTime::from_secs(start))
            .end_time(DateTime::from_secs(end))
            .scan_by(scan)
            .set_max_datapoints(max)
            .set_next_token(token)
            .send()
    };
    let out = tokio::time::timeout(
        BOUND,
        call(
            vec![
                query("sum", "fn-a", "Invocations", 60, "Sum"),
                query("p99", "fn-a", "Duration", 60, "p99"),
                query("p50", "fn-a", "Duration", 1, "p50"),
                query("n", "fn-a", "Duration", 60, "SampleCount"),
                query("avg", "fn-a", "Duration", 60, "Average"),
            ],
            ScanBy::TimestampAscending,
            None,
            None,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let r = out.metric_data_results();
    assert_eq!(r[0].values(), [3.0, 2.0]);
    assert_eq!(r[0].timestamps()[0].secs(), start);
    assert_eq!(r[0].label(), Some("Invocations"));
    assert_eq!(r[0].status_code(), Some(&StatusCode::Complete));
    assert_eq!(r[1].values(), [99.0]);
    assert_eq!(r[2].values(), [50.0]);
    assert_eq!(r[3].values(), [100.0]);
    assert_eq!(r[4].values(), [50.5]);

    // Descending (the default order), two datapoints a page.
    let q = vec![query("m", "fn-a", "Invocations", 1, "Sum")];
    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..5 {
        let page = call(
            q.clone(),
            ScanBy::TimestampDescending,
            Some(2),
            token.clone(),
        )
        .await
        .unwrap();
        let res = &page.metric_data_results()[0];
        seen.extend(res.timestamps().iter().map(|t| t.secs() - start));
        token = page.next_token().map(str::to_string);
        let expected = if token.is_some() {
            StatusCode::PartialData
        } else {
            StatusCode::Complete
        };
        assert_eq!(res.status_code(), Some(&expected));
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, [61, 60, 59, 1, 0]);
    s.stop.send(()).ok();
}

#[tokio::test]
async fn typed_errors_for_bad_periods_ids_stats_tokens_and_too_many_queries() {
    let s = serve(MetricSettings::default()).await;
    let (start, end) = window(1);
    let gmd = |q: Vec<MetricDataQuery>, token: Option<&str>| {
        s.client
            .get_metric_data()
            .set_metric_data_queries(Some(q))
            .start_time(DateTime::from_secs(start))
            .end_time(DateTime::from_secs(end))
            .set_next_token(token.map(str::to_string))
            .send()
    };
    for q in [
        query("m1", "f", "Invocations", 61, "Sum"),
        query("M1", "f", "Invocations", 60, "Sum"),
        query("m1", "f", "Invocations", 60, "tm99"),
    ] {
        let e = gmd(vec![q], None).await.unwrap_err().into_service_error();
        // GetMetricData models only InvalidNextToken; the code still comes through.
        assert_eq!(e.code(), Some("InvalidParameterValue"), "{e:?}");
    }
    let many = vec![query("m1", "f", "Invocations", 60, "Sum"); 501];
    let e = gmd(many, None).await.unwrap_err().into_service_error();
    assert_eq!(e.code(), Some("InvalidParameterValue"));
    assert!(e.message().unwrap().contains("500"), "{e:?}");
    let e = gmd(
        vec![query("m1", "f", "Invocations", 60, "Sum")],
        Some("forged"),
    )
    .await
    .unwrap_err()
    .into_service_error();
    assert!(
        matches!(e, GetMetricDataError::InvalidNextToken(_)),
        "{e:?}"
    );

    let filters: Vec<DimensionFilter> = (0..11)
        .map(|i| DimensionFilter::builder().name(format!("d{i}")).build())
        .collect();
    let e = s
        .client
        .list_metrics()
        .set_dimensions(Some(filters))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(e, ListMetricsError::InvalidParameterValueException(_)),
        "{e:?}"
    );
    let e = s
        .client
        .put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Invocations")
                .value(1.0)
                .build(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(e, PutMetricDataError::InvalidParameterValueException(_)),
        "{e:?}"
    );

    // Malformed CBOR from a peer: an AWS-shaped CBOR error, never a panic.
    let (status, headers, body) = raw(
        s.addr,
        "/service/GraniteServiceVersion20100801/operation/GetMetricData",
        &[
            ("content-type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
        ],
        &[0xBF, 0x61],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        headers.contains("smithy-protocol: rpc-v2-cbor"),
        "{headers}"
    );
    let err = dynamowave_local::cloudwatch::wire_cbor::decode(&body).unwrap();
    assert_eq!(
        err["__type"],
        "com.amazonaws.cloudwatch#SerializationException"
    );
    s.stop.send(()).ok();
}

#[tokio::test]
async fn put_metric_data_then_list_and_read_it_back() {
    let s = serve(MetricSettings::default()).await;
    // The datapoint's minute is past: future datapoints are not listed until their time.
    let (start, end) = window(2);
    let dim = Dimension::builder().name("Room").value("lobby").build();
    s.client
        .put_metric_data()
        .namespace("DynamoWave/Test")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Latency")
                .dimensions(dim.clone())
                .timestamp(DateTime::from_secs(start + 5))
                .values(10.0)
                .values(20.0)
                .counts(3.0)
                .counts(1.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let listed = s
        .client
        .list_metrics()
        .namespace("DynamoWave/Test")
        .dimensions(DimensionFilter::builder().name("Room").build())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.metrics().len(), 1);
    assert_eq!(listed.metrics()[0].metric_name(), Some("Latency"));
    assert_eq!(listed.metrics()[0].dimensions()[0].value(), Some("lobby"));
    let q = MetricDataQuery::builder()
        .id("lat")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("DynamoWave/Test")
                        .metric_name("Latency")
                        .dimensions(dim)
                        .build(),
                )
                .period(60)
                .stat("Average")
                .build(),
        )
        .build();
    let out = s
        .client
        .get_metric_data()
        .metric_data_queries(q)
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(end))
        .send()
        .await
        .unwrap();
    assert_eq!(out.metric_data_results()[0].values(), [12.5]);
    s.stop.send(()).ok();
}

#[tokio::test]
async fn awsjson_and_awsquery_as_boto3_sends_them() {
    let s = serve(MetricSettings::default()).await;
    let (start, end) = window(3);
    seed(&s.store, "fn-b", start);
    let json_headers = [
        ("content-type", "application/x-amz-json-1.0"),
        (
            "x-amz-target",
            "GraniteServiceVersion20100801.GetMetricData",
        ),
        ("x-amzn-query-mode", "true"),
    ];
    let body = serde_json::json!({
        "MetricDataQueries": [{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "fn-b"}]}, "Period": 60, "Stat": "Sum"}, "ReturnData": true}],
        "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"
    });
    let (status, _, out) = raw(s.addr, "/", &json_headers, body.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out["MetricDataResults"][0]["Values"],
        serde_json::json!([3.0, 2.0])
    );
    assert_eq!(out["MetricDataResults"][0]["Timestamps"][0], start as f64);
    let mut bad = body.clone();
    bad["MetricDataQueries"][0]["MetricStat"]["Period"] = 45.into();
    let (status, headers, out) = raw(s.addr, "/", &json_headers, bad.to_string().as_bytes()).await;
    assert_eq!(status, 400);
    assert!(
        headers.contains("x-amzn-query-error: invalidparametervalue;sender"),
        "{headers}"
    );
    assert!(String::from_utf8_lossy(&out).contains("InvalidParameterValueException"));
    let (status, _, _) = raw(s.addr, "/", &json_headers, b"{not json").await;
    assert_eq!(status, 400);

    let iso = |t: i64| chrono_like(t);
    let form = format!(
        "Action=GetMetricData&Version=2010-08-01&MetricDataQueries.member.1.Id=m1&MetricDataQueries.member.1.MetricStat.Metric.Namespace=AWS%2FLambda&MetricDataQueries.member.1.MetricStat.Metric.MetricName=Invocations&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=FunctionName&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value=fn-b&MetricDataQueries.member.1.MetricStat.Period=60&MetricDataQueries.member.1.MetricStat.Stat=Sum&StartTime={}&EndTime={}&ScanBy=TimestampAscending",
        iso(start),
        iso(end)
    );
    let form_headers = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let (status, _, out) = raw(s.addr, "/", &form_headers, form.as_bytes()).await;
    let xml = String::from_utf8(out).unwrap();
    assert_eq!(status, 200, "{xml}");
    assert!(xml.starts_with("<GetMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><GetMetricDataResult>"), "{xml}");
    assert!(
        xml.contains("<Values><member>3.0</member><member>2.0</member></Values>"),
        "{xml}"
    );
    assert!(xml.contains("<StatusCode>Complete</StatusCode>"), "{xml}");
    let (status, _, out) = raw(
        s.addr,
        "/",
        &form_headers,
        form.replace("Period=60", "Period=7").as_bytes(),
    )
    .await;
    let xml = String::from_utf8(out).unwrap();
    assert_eq!(status, 400);
    assert!(xml.contains("<Code>InvalidParameterValue</Code>"), "{xml}");
    s.stop.send(()).ok();
}

/// `2024-01-01T00:00:00Z`, percent-encoded for a form.
fn chrono_like(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%dT%H%%3A%M%%3A%SZ")
        .to_string()
}

/// One signed-looking HTTP/1.1 request; the status, the head and the body.
async fn raw(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = tokio::time::timeout(BOUND, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\nx-amz-date: 20260101T000000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/monitoring/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}

/// The head and body of one request (content-length framed).
async fn read_request(socket: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        if let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..split + 4]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < split + 4 + len {
                let n = socket.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            return (head, buf[split + 4..split + 4 + len].to_vec());
        }
    }
}

/// boto3 (scripts/setup.sh installs it in the cache's venv) against the same server.
#[tokio::test]
async fn boto3_reads_and_writes_metrics() {
    let s = serve(MetricSettings::default()).await;
    let python = dynamowave_local::dynamodb::cache_dir().join("venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/boto3_cloudwatch.py");
    let run = tokio::process::Command::new(&python)
        .arg(script)
        .arg(&s.endpoint)
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BOUND, run)
        .await
        .expect("boto3 finishes in time")
        .unwrap_or_else(|e| {
            panic!(
                "could not run {} ({e}); run scripts/setup.sh",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("boto3 check: ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("x-amz-json-1.0"),
        "boto3 1.44.8 sends awsJson 1.0: {stdout}"
    );
    s.stop.send(()).ok();
}
