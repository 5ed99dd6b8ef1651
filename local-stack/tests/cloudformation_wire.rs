//! CloudFormation DescribeStacks driven by the real AWS SDK for Rust over loopback HTTP,
//! for the stack template.yaml describes.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::StackStatus;
use dynamowave_local::cloudformation::{CloudFormation, router};
use dynamowave_local::model::Naming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
/// Where the WebSocket APIs are said to be served (nothing listens there in this test).
const WS_BASE: &str = "ws://127.0.0.1:4567";
const TEST_BOUND: Duration = Duration::from_secs(60);

struct Server {
    addr: std::net::SocketAddr,
    endpoint: String,
    client: Client,
    stop: oneshot::Sender<()>,
}

/// Serves `make(edge_url)` on a free port, with an SDK client pointed at it.
async fn serve(make: impl FnOnce(&str) -> CloudFormation) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoint = format!("http://{addr}");
    let app = router(Arc::new(make(&endpoint)));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let sdk = support::sdk_at(&endpoint).await;
    Server {
        addr,
        endpoint,
        client: Client::new(&sdk),
        stop,
    }
}

/// The real template, resolved as `local up` resolves it for a stack named `dynamowave`.
async fn template_stack() -> Server {
    serve(|edge| {
        let naming = Naming {
            edge_url: edge.to_string(),
            websocket_url: WS_BASE.into(),
            ..Naming::default()
        };
        let model =
            dynamowave_local::template::load(Path::new(TEMPLATE), &naming, &BTreeMap::new())
                .expect("template.yaml loads");
        CloudFormation::new(&model, WS_BASE, edge)
    })
    .await
}

#[tokio::test]
async fn describe_stacks_returns_the_outputs_where_the_local_stack_serves_them() {
    tokio::time::timeout(TEST_BOUND, async {
        let s = template_stack().await;
        let out = s
            .client
            .describe_stacks()
            .stack_name("dynamowave")
            .send()
            .await
            .expect("DescribeStacks succeeds");
        let stacks = out.stacks();
        assert_eq!(stacks.len(), 1);
        let stack = &stacks[0];
        assert_eq!(stack.stack_name(), Some("dynamowave"));
        assert_eq!(stack.stack_status(), Some(&StackStatus::CreateComplete));
        let id = stack.stack_id().unwrap().to_string();
        assert!(
            id.starts_with("arn:aws:cloudformation:us-east-1:000000000000:stack/dynamowave/"),
            "{id}"
        );
        // A real creation time, not the SDK's default for a missing one (1970).
        assert!(stack.creation_time().unwrap().secs() > 1_700_000_000);
        let outputs: BTreeMap<&str, &str> = stack
            .outputs()
            .iter()
            .map(|o| (o.output_key().unwrap(), o.output_value().unwrap()))
            .collect();
        assert_eq!(outputs.len(), 13, "{outputs:?}");
        assert_eq!(outputs["WebSocketURL"], format!("{WS_BASE}/prod"));
        assert_eq!(outputs["ConnectionsURL"], format!("{}/prod", s.endpoint));
        assert_eq!(
            outputs["DeadLetterQueueUrl"],
            format!("{}/000000000000/dynamowave-DeadLetterQueue", s.endpoint)
        );
        assert_eq!(outputs["StageName"], "prod");
        assert_eq!(
            outputs["BroadcastFunctionName"],
            "dynamowave-BroadcastFunction"
        );
        let max_bytes = stack
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some("MaxMessageBytes"))
            .and_then(|p| p.parameter_value());
        assert_eq!(max_bytes, Some("32768"));

        // By stack id, and with no name (every stack: the one), the same stack.
        let by_id = s
            .client
            .describe_stacks()
            .stack_name(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(by_id.stacks()[0].stack_name(), Some("dynamowave"));
        let all = s.client.describe_stacks().send().await.unwrap();
        assert_eq!(all.stacks().len(), 1);
        let _ = s.stop.send(());
    })
    .await
    .expect("within the test bound");
}

#[tokio::test]
async fn a_missing_stack_is_the_validation_error_the_sdk_reports() {
    tokio::time::timeout(TEST_BOUND, async {
        let s = template_stack().await;
        let err = s
            .client
            .describe_stacks()
            .stack_name("no-such-stack")
            .send()
            .await
            .expect_err("no such stack");
        assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
        assert_eq!(
            err.message(),
            Some("Stack with id no-such-stack does not exist")
        );
        let raw = err.raw_response().expect("a response came");
        assert_eq!(raw.status().as_u16(), 400);
        let _ = s.stop.send(());
    })
    .await
    .expect("within the test bound");
}

#[tokio::test]
async fn values_that_need_xml_escaping_round_trip() {
    tokio::time::timeout(TEST_BOUND, async {
        let tricky = r#"a&b <c> "d" 'e' ü"#;
        let s = serve(|_| CloudFormation {
            stack_name: "odd".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:000000000000:stack/odd/1".into(),
            creation_time: "2026-01-01T00:00:00.000Z".into(),
            parameters: vec![("P".into(), tricky.into())],
            outputs: vec![("O".into(), tricky.into())],
        })
        .await;
        let out = s
            .client
            .describe_stacks()
            .stack_name("odd")
            .send()
            .await
            .unwrap();
        let stack = &out.stacks()[0];
        assert_eq!(stack.outputs()[0].output_value(), Some(tricky));
        assert_eq!(stack.parameters()[0].parameter_value(), Some(tricky));
        let _ = s.stop.send(());
    })
    .await
    .expect("within the test bound");
}

#[tokio::test]
async fn other_actions_are_refused_in_the_query_error_shape() {
    tokio::time::timeout(TEST_BOUND, async {
        let s = template_stack().await;
        let body = "Action=CreateStack&Version=2010-05-15&StackName=x";
        let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let request = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            s.addr,
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        assert!(response.contains("<Code>InvalidAction</Code>"), "{response}");
        assert!(response.contains("CreateStack"), "{response}");
        let _ = s.stop.send(());
    })
    .await
    .expect("within the test bound");
}
