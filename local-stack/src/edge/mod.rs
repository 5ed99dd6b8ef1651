//! The edge: one loopback endpoint for every AWS-shaped API, routed by path and
//! `X-Amz-Target` as the SDKs address services. SigV4 `Authorization` headers are
//! required (as AWS requires them), and verified when the stack has credentials (`sigv4`).

pub mod aws_error;
pub mod sigv4;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub use aws_error::{AwsError, respond};
pub use sigv4::Credentials;

use crate::cloudwatch;
use crate::gateway::Gateway;
use crate::lambda::LambdaService;
use crate::sqs::SqsService;
use crate::telemetry::Telemetry;

pub struct Edge {
    pub lambda: Arc<LambdaService>,
    pub gateway: Arc<Gateway>,
    pub sqs: Arc<SqsService>,
    pub telemetry: Arc<Telemetry>,
    /// DynamoDB Local, where DynamoDB calls to the edge are forwarded.
    pub dynamodb_endpoint: String,
    /// What `local up` prints, served at `GET /_dynamowave/endpoints` so tools attaching to
    /// a running stack can find the WebSocket URL and the rest.
    pub endpoints: std::sync::OnceLock<Value>,
    /// The stack as CloudFormation's DescribeStacks reports it (set once started).
    pub cloudformation: std::sync::OnceLock<crate::cloudformation::CloudFormation>,
    /// What DescribeStackResources lists (set with `cloudformation`).
    pub stack_resources: std::sync::OnceLock<Vec<crate::cloudformation::Resource>>,
    /// Fault Injection Service: experiments whose Lambda faults the Runtime API applies.
    pub fis: Arc<crate::fis::FisService>,
    /// When set, every signed call's SigV4 signature is verified against this key.
    pub credentials: Option<Arc<Credentials>>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Edge {
    pub fn new(
        lambda: Arc<LambdaService>,
        gateway: Arc<Gateway>,
        sqs: Arc<SqsService>,
        telemetry: Arc<Telemetry>,
        dynamodb_endpoint: String,
        credentials: Option<Credentials>,
    ) -> Arc<Self> {
        let functions: Vec<(String, String)> = lambda
            .function_names()
            .iter()
            .filter_map(|n| lambda.function(n).ok())
            .map(|(name, f)| (f.spec().arn, name))
            .collect();
        let naming = lambda.naming();
        let fis = Arc::new(crate::fis::FisService::new(
            functions.iter().map(|(a, n)| (a.as_str(), n.as_str())),
            lambda.fis_faults.clone(),
            &naming.region,
            &naming.account_id,
        ));
        Arc::new(Edge {
            fis,
            credentials: credentials.map(Arc::new),
            lambda,
            gateway,
            sqs,
            telemetry,
            dynamodb_endpoint,
            endpoints: std::sync::OnceLock::new(),
            cloudformation: std::sync::OnceLock::new(),
            stack_resources: std::sync::OnceLock::new(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .merge(crate::lambda::api::router(self.lambda.clone()))
            .merge(crate::gateway::connections::router(self.gateway.clone()))
            .merge(crate::gateway::stages::router(self.gateway.clone()))
            .merge(crate::fis::router(self.fis.clone()))
            .merge(
                Router::new()
                    .route("/", post(rpc))
                    .route(
                        "/service/GraniteServiceVersion20100801/operation/{op}",
                        post(cloudwatch_cbor),
                    )
                    .route("/_dynamowave/telemetry", get(telemetry))
                    .route("/_dynamowave/endpoints", get(endpoints))
                    .with_state(self.clone()),
            )
            .fallback(unknown)
            .layer(middleware::from_fn_with_state(
                self.credentials.clone(),
                require_sigv4,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
    }

    /// Telemetry with each queue's depth.
    pub fn snapshot(&self) -> crate::telemetry::Snapshot {
        let queues = self
            .sqs
            .queue_names()
            .into_iter()
            .filter_map(|q| {
                let d = self.sqs.depth(&q)?;
                Some((
                    q,
                    serde_json::json!({"visible": d.visible, "inFlight": d.in_flight, "delayed": d.delayed}),
                ))
            })
            .collect();
        self.telemetry.snapshot(queues)
    }
}

/// AWS refuses unsigned calls; our own endpoints need no signature. With the stack's
/// credentials set, the signature itself is verified (`sigv4`); without, a signed-looking
/// call is enough.
pub(crate) async fn require_sigv4(
    State(credentials): State<Option<Arc<Credentials>>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path.starts_with("/_dynamowave/") {
        return next.run(request).await;
    }
    let signed = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
    let Some(credentials) = credentials else {
        if signed {
            return next.run(request).await;
        }
        return sigv4::missing_token().into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return AwsError::new(
            413,
            "RequestEntityTooLargeException",
            "Request body too large",
        )
        .into_response();
    };
    let uri = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if let Err(e) = sigv4::verify(
        parts.method.as_str(),
        &uri,
        &parts.headers,
        &bytes,
        &credentials,
        std::time::SystemTime::now(),
    ) {
        return e.into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Lambda takes 6 MB payloads (sync Invoke and function responses); the APIs check their
/// own, smaller limits and answer with AWS's errors.
const BODY_LIMIT: usize = 7 * 1024 * 1024;

/// `POST /` RPC-style protocols, dispatched on `X-Amz-Target`; awsQuery (form-encoded,
/// no target) is CloudFormation.
async fn rpc(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form && !headers.contains_key("x-amz-target") {
        if is_cloudwatch_query(&body) {
            let m = &edge.telemetry.metrics;
            return cloudwatch::handle(m, cloudwatch::Protocol::Query, "", &headers, &body);
        }
        return match edge.cloudformation.get() {
            Some(cfn) => {
                cfn.handle_for(&body, edge.stack_resources.get().map_or(&[], Vec::as_slice))
            }
            None => crate::cloudformation::error(
                503,
                "ServiceUnavailable",
                "the stack is still starting",
            ),
        };
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(op) = target.strip_prefix("AmazonSQS.") {
        return edge.sqs.handle_http(op, &body).await;
    }
    if let Some(op) = target.strip_prefix(cloudwatch::wire_json::TARGET_PREFIX) {
        let m = &edge.telemetry.metrics;
        return cloudwatch::handle(m, cloudwatch::Protocol::Json, op, &headers, &body);
    }
    if target.starts_with("DynamoDB_20120810.") {
        return forward(&edge, headers, body).await;
    }
    if let Some(op) = target.strip_prefix("Logs_20140328.") {
        return edge.lambda.logs.handle(op, &body);
    }
    AwsError::new(
        400,
        "UnknownOperationException",
        format!(
            "the local stack does not serve X-Amz-Target {target:?} (it serves AmazonSQS.*, DynamoDB_20120810.*, GraniteServiceVersion20100801.* (CloudWatch), Logs_20140328.*, and CloudFormation and CloudWatch as awsQuery)"
        ),
    )
    .into_response()
}

/// awsQuery's `Version` tells CloudWatch (2010-08-01) from CloudFormation (2010-05-15).
fn is_cloudwatch_query(body: &[u8]) -> bool {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).is_ok_and(|form| {
        form.iter()
            .any(|(k, v)| k == "Version" && v == cloudwatch::wire_query::VERSION)
    })
}

/// Smithy RPC v2 CBOR: CloudWatch as aws-sdk-cloudwatch sends it.
async fn cloudwatch_cbor(
    State(edge): State<Arc<Edge>>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let m = &edge.telemetry.metrics;
    cloudwatch::handle(m, cloudwatch::Protocol::Cbor, &op, &headers, &body)
}

/// DynamoDB calls to the edge go to DynamoDB Local unchanged.
async fn forward(edge: &Edge, headers: HeaderMap, body: Bytes) -> Response {
    let mut request = axum::http::Request::post(format!("{}/", edge.dynamodb_endpoint));
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| *k != "host" && *k != "content-length")
    {
        request = request.header(k, v);
    }
    let Ok(request) = request.body(Full::new(body)) else {
        return AwsError::new(
            500,
            "InternalServerError",
            "could not build the forwarded request",
        )
        .into_response();
    };
    match edge.http.request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            match body.collect().await {
                Ok(b) => Response::from_parts(parts, Body::from(b.to_bytes())),
                Err(e) => AwsError::new(502, "InternalServerError", format!("DynamoDB Local: {e}"))
                    .into_response(),
            }
        }
        Err(e) => AwsError::new(
            503,
            "ServiceUnavailable",
            format!("DynamoDB Local is not reachable: {e}"),
        )
        .into_response(),
    }
}

async fn endpoints(State(edge): State<Arc<Edge>>) -> Response {
    match edge.endpoints.get() {
        Some(v) => axum::Json(v.clone()).into_response(),
        None => {
            AwsError::new(503, "ServiceUnavailable", "the stack is still starting").into_response()
        }
    }
}

async fn telemetry(State(edge): State<Arc<Edge>>) -> Response {
    axum::Json(edge.snapshot()).into_response()
}

async fn unknown(method: Method, uri: Uri) -> Response {
    AwsError::new(
        404,
        "UnknownOperationException",
        format!("the local stack has no API at {method} {}", uri.path()),
    )
    .into_response()
}
