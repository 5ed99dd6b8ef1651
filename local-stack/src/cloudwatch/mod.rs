//! CloudWatch metrics on the edge: GetMetricData, ListMetrics and PutMetricData in the three
//! protocols current SDKs send (awsQuery, awsJson 1.0, Smithy RPC v2 CBOR). The metrics are
//! the stack's own counts (Lambda, API Gateway, SQS), recorded per second in `store`.
//! Wire shapes are in local-stack/WIRE.md.

mod get_metric_data;
mod ops;
pub mod shape;
pub mod store;
pub mod wire_cbor;
pub mod wire_json;
pub mod wire_query;

use std::io::Read;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde_json::Value;

use crate::edge::AwsError;
use shape::{Out, malformed, unknown_operation};
pub use store::{MetricId, MetricSettings, MetricStore};

/// The most a gzip body may inflate to (PutMetricData is compressed by the SDKs when large).
const MAX_INFLATED: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Query,
    Json,
    Cbor,
}

/// Runs `op` on a request body in `protocol` and answers in the same protocol.
pub fn handle(
    store: &MetricStore,
    protocol: Protocol,
    op: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let result = inflate(headers, body).and_then(|body| {
        let (op, input) = match protocol {
            Protocol::Json => (op.to_string(), wire_json::decode(&body)?),
            Protocol::Cbor => (op.to_string(), wire_cbor::decode(&body)?),
            Protocol::Query => {
                let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                    .map_err(|e| malformed(format!("the body is not form-encoded: {e}")))?;
                wire_query::decode(&form)?
            }
        };
        run(store, &op, &input).map(|out| (op, out))
    });
    match (protocol, result) {
        (Protocol::Json, Ok((_, out))) => wire_json::ok(&out),
        (Protocol::Cbor, Ok((_, out))) => wire_cbor::ok(&out),
        (Protocol::Query, Ok((op, out))) => wire_query::ok(&op, &out),
        (Protocol::Json, Err(e)) => wire_json::error(&e),
        (Protocol::Cbor, Err(e)) => wire_cbor::error(&e),
        (Protocol::Query, Err(e)) => wire_query::error(&e),
    }
}

fn run(store: &MetricStore, op: &str, input: &Value) -> Result<Out, AwsError> {
    let now = store::now_ms();
    match op {
        "GetMetricData" => get_metric_data::get_metric_data(store, input, now),
        "ListMetrics" => ops::list_metrics(store, input, now),
        "PutMetricData" => ops::put_metric_data(store, input, now),
        other => Err(unknown_operation(other)),
    }
}

fn inflate<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, AwsError> {
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match encoding {
        "" | "identity" => Ok(body.into()),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut out)
                .map_err(|e| malformed(format!("the gzip body could not be inflated: {e}")))?;
            if out.len() as u64 > MAX_INFLATED {
                return Err(malformed("the inflated body is larger than 8 MiB"));
            }
            Ok(out.into())
        }
        other => Err(malformed(format!(
            "Content-Encoding {other} is not supported"
        ))),
    }
}

/// JSON and CBOR errors: the query code the SDKs match on, and a request id.
pub(crate) fn query_error_headers(r: &mut Response, e: &AwsError, code: &str) {
    let fault = if e.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{code};{fault}")) {
        h.insert("x-amzn-query-error", v);
    }
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-amzn-requestid", v);
    }
}

/// CloudWatch alone, as the edge serves it (the wire tests): `POST /` for awsQuery and
/// awsJson, and the CBOR operation paths.
pub fn router(store: std::sync::Arc<MetricStore>) -> axum::Router {
    use axum::extract::{Path, State};
    use axum::routing::post;
    type St = State<std::sync::Arc<MetricStore>>;
    async fn rpc(State(store): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix(wire_json::TARGET_PREFIX))
            .map(str::to_string);
        match target {
            Some(op) => handle(&store, Protocol::Json, &op, &headers, &body),
            None => handle(&store, Protocol::Query, "", &headers, &body),
        }
    }
    async fn cbor(
        State(store): St,
        Path(op): Path<String>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> Response {
        handle(&store, Protocol::Cbor, &op, &headers, &body)
    }
    axum::Router::new()
        .route("/", post(rpc))
        .route(
            "/service/GraniteServiceVersion20100801/operation/{op}",
            post(cbor),
        )
        .with_state(store)
}
