//! Attaching to a local stack that runs elsewhere (`dynamowave local up`): its edge serves
//! what `local up` printed at `GET /_dynamowave/endpoints`.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::error::HarnessError;

pub async fn endpoints(edge: &str) -> Result<Value, HarnessError> {
    get_json(edge, "/_dynamowave/endpoints").await
}

/// The stack name and region a running `local up` reports (older ones name neither).
pub async fn stack(edge: &str) -> Result<(Option<String>, Option<String>), HarnessError> {
    let e = endpoints(edge).await?;
    let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    Ok((text("stack_name"), text("region")))
}

/// The stack outputs in what `/_dynamowave/endpoints` answered.
pub fn outputs(endpoints: &Value) -> std::collections::BTreeMap<String, String> {
    endpoints
        .get("outputs")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `GET {edge}{path}` as JSON; errors name the edge and say how to start one.
pub async fn get_json(edge: &str, path: &str) -> Result<Value, HarnessError> {
    let url = format!("{}{path}", edge.trim_end_matches('/'));
    let bad = |why: String| HarnessError::Usage(format!("--endpoint-url {edge}: {why}"));
    let uri: http::Uri = url.parse().map_err(|e| bad(format!("not a URL ({e})")))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("a local stack's edge is http://".into()));
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), client.get(uri))
        .await
        .map_err(|_| bad("no answer within 10 s".into()))?
        .map_err(|e| {
            bad(format!(
                "not reachable ({e}); is `dynamowave local up` running?"
            ))
        })?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| bad(format!("the answer broke off ({e})")))?
        .to_bytes();
    if !status.is_success() {
        return Err(bad(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    serde_json::from_slice(&body).map_err(|e| bad(format!("{url} did not answer JSON ({e})")))
}
