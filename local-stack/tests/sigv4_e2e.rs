//! A stack given credentials verifies SigV4: the AWS SDK for Rust's calls signed with the key
//! pass (JSON, query-form and REST protocols), a wrong secret, an unknown key, an unsigned
//! call and a stale signature get AWS's errors, and the chat still works, since its
//! functions sign their DynamoDB and @connections calls with the same key.

mod support;

use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use dynamowave_local::edge::Credentials;
use serde_json::json;
use support::{connect, next_json, send_json, whoami};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "AKIDLOCALSTACKTEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

async fn sdk(endpoint: &str, key: &str, secret: &str, at: Option<SystemTime>) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            key, secret, None, None, "tests",
        ))
        .endpoint_url(endpoint)
        .http_client(http);
    if let Some(at) = at {
        loader = loader.time_source(aws_smithy_async::time::StaticTimeSource::new(at));
    }
    loader.load().await
}

fn code<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .unwrap_or("(no service error)")
        .to_string()
}

/// ListQueues signed by aws-sigv4 (the SDK's signer) at `at`, as raw HTTP/1.1.
fn signed_list_queues(host: &str, key: &str, secret: &str, at: SystemTime) -> String {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let body = "{}";
    let headers = [
        ("host", host),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "AmazonSQS.ListQueues"),
    ];
    let request = SignableRequest::new(
        "POST",
        "/",
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "t").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sqs")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let mut text = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    for h in instructions.into_parts().0 {
        text.push_str(&format!("{}: {}\r\n", h.name(), h.value()));
    }
    text.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    text
}

/// Sends raw HTTP and reads the whole answer (the request says `connection: close`).
async fn raw(host: &str, request: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_verified_and_the_chat_signs_with_the_stacks_key() {
    let mut options = support::options();
    options.credentials = Some(Credentials {
        access_key_id: KEY.into(),
        secret_access_key: SECRET.into(),
    });
    let stack = dynamowave_local::stack::start(options).await.unwrap();
    let edge = stack.endpoints.endpoint_url.clone();

    // Signed with the key: JSON (SQS), query form (CloudFormation), REST (Lambda).
    let good = sdk(&edge, KEY, SECRET, None).await;
    let sqs = aws_sdk_sqs::Client::new(&good);
    assert!(
        !sqs.list_queues()
            .send()
            .await
            .unwrap()
            .queue_urls()
            .is_empty()
    );
    let cfn = aws_sdk_cloudformation::Client::new(&good);
    cfn.describe_stacks()
        .stack_name("dynamowave")
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::new(&good);
    let broadcast = stack.endpoints.functions["BroadcastFunction"].clone();
    lambda
        .get_function_configuration()
        .function_name(&broadcast)
        .send()
        .await
        .unwrap();

    // A wrong secret, an unknown key, a signature from 20 minutes ago.
    let wrong = aws_sdk_sqs::Client::new(&sdk(&edge, KEY, "not-the-secret", None).await);
    let e = wrong.list_queues().send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidSignatureException", "{e:?}");
    let stranger = aws_sdk_sqs::Client::new(&sdk(&edge, "AKIDSTRANGER", SECRET, None).await);
    let e = stranger.list_queues().send().await.unwrap_err();
    assert_eq!(code(&e), "UnrecognizedClientException", "{e:?}");
    // A signature from 20 minutes ago, over a raw socket: the SDK itself would correct its
    // clock from the answer's Date header and retry, as it does against AWS.
    let host = edge.trim_start_matches("http://").to_string();
    let past = SystemTime::now() - Duration::from_secs(20 * 60);
    let answer = raw(&host, &signed_list_queues(&host, KEY, SECRET, past)).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("Signature expired:"), "{answer}");
    // The same request signed now passes: the verifier is not refusing everything raw.
    let answer = raw(
        &host,
        &signed_list_queues(&host, KEY, SECRET, SystemTime::now()),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Unsigned, and signed-looking but malformed.
    for (auth, says) in [
        ("", "MissingAuthenticationTokenException"),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=x\r\n",
            "IncompleteSignatureException",
        ),
    ] {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: AmazonSQS.ListQueues\r\n{auth}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let answer = raw(&host, &request).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains(says), "{answer}");
    }

    // The chat: $connect writes the row, whoami and the broadcast post to @connections.
    let url = &stack.endpoints.websocket_url;
    let mut a = connect(url).await;
    let mut b = connect(url).await;
    let a_id = whoami(&mut a).await;
    whoami(&mut b).await;
    send_json(
        &mut a,
        json!({"action": "sendMessage", "message": "signed"}),
    )
    .await;
    let frame = next_json(&mut b, 30).await;
    assert_eq!(frame["message"], "signed", "{frame}");
    assert_eq!(frame["sender"], a_id.as_str());

    // @connections on the WebSocket port verifies too.
    let api = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(
            &sdk(&edge, KEY, "not-the-secret", None).await,
        )
        .endpoint_url(format!(
            "http://{}",
            stack.endpoints.websocket_url.trim_start_matches("ws://")
        ))
        .build(),
    );
    let e = api
        .post_to_connection()
        .connection_id(&a_id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        e.raw_response().map(|r| r.status().as_u16()),
        Some(403),
        "{e:?}"
    );
    stack.shutdown().await;
}
