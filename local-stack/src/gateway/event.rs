//! The Lambda proxy events API Gateway sends for WebSocket routes (aws-semantics C1/C2):
//! `connectedAt` and `requestTimeEpoch` are always present, since the Rust event type
//! requires them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub struct EventContext<'a> {
    pub route_key: &'a str,
    pub event_type: &'a str,
    pub connection_id: &'a str,
    pub api_id: &'a str,
    pub stage: &'a str,
    pub domain_name: &'a str,
    pub connected_at_ms: i64,
    pub source_ip: &'a str,
    pub user_agent: Option<&'a str>,
}

pub fn request_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}=", &id[..15])
}

fn context(c: &EventContext<'_>, request_id: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "routeKey": c.route_key,
        "eventType": c.event_type,
        "extendedRequestId": request_id,
        "requestTime": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "messageDirection": "IN",
        "stage": c.stage,
        "connectedAt": c.connected_at_ms,
        "requestTimeEpoch": now.timestamp_millis(),
        "identity": {"sourceIp": c.source_ip, "userAgent": c.user_agent},
        "requestId": request_id,
        "domainName": c.domain_name,
        "connectionId": c.connection_id,
        "apiId": c.api_id,
    })
}

pub fn connect(
    c: &EventContext<'_>,
    request_id: &str,
    headers: &BTreeMap<String, String>,
    query: &BTreeMap<String, String>,
) -> Value {
    json!({
        "headers": headers,
        "multiValueHeaders": headers.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect::<BTreeMap<_, _>>(),
        "queryStringParameters": if query.is_empty() { Value::Null } else { json!(query) },
        "multiValueQueryStringParameters": if query.is_empty() { Value::Null } else {
            json!(query.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect::<BTreeMap<_, _>>())
        },
        "requestContext": context(c, request_id),
        "isBase64Encoded": false,
    })
}

pub fn message(c: &EventContext<'_>, request_id: &str, body: String, base64: bool) -> Value {
    let mut ctx = context(c, request_id);
    ctx["messageId"] = json!(request_id);
    json!({"requestContext": ctx, "body": body, "isBase64Encoded": base64})
}

pub fn disconnect(c: &EventContext<'_>, request_id: &str, code: u16, reason: &str) -> Value {
    let mut ctx = context(c, request_id);
    ctx["disconnectStatusCode"] = json!(code);
    ctx["disconnectReason"] = json!(reason);
    json!({
        "headers": {"Host": c.domain_name},
        "multiValueHeaders": {"Host": [c.domain_name]},
        "requestContext": ctx,
        "isBase64Encoded": false,
    })
}

/// The route key for a message: evaluates `$request.body.<path>` (A1). No match, a
/// non-JSON body or a non-object result selects `$default`.
pub fn select_route(expression: &str, body: &str, routes: &[&str]) -> Option<String> {
    // `$request.body.x` and the documented `${request.body.x}` are the same expression.
    let expression = expression
        .strip_prefix("${")
        .and_then(|e| e.strip_suffix('}'))
        .map(|e| format!("${e}"))
        .unwrap_or_else(|| expression.to_string());
    let selected = expression
        .strip_prefix("$request.body.")
        .and_then(|path| {
            let root: Value = serde_json::from_str(body).ok()?;
            let mut v = &root;
            for key in path.split('.') {
                v = v.get(key)?;
            }
            Some(match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
        .filter(|key| routes.contains(&key.as_str()));
    selected.or_else(|| routes.contains(&"$default").then(|| "$default".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_selection_is_exact_with_default_fallback() {
        let routes = ["$connect", "sendMessage", "$default"];
        let sel = |b: &str| select_route("$request.body.action", b, &routes);
        assert_eq!(
            sel(r#"{"action":"sendMessage"}"#).as_deref(),
            Some("sendMessage")
        );
        assert_eq!(
            sel(r#"{"action":"sendmessage"}"#).as_deref(),
            Some("$default")
        );
        assert_eq!(sel("not json").as_deref(), Some("$default"));
        assert_eq!(sel(r#"{"other":1}"#).as_deref(), Some("$default"));
        assert_eq!(
            select_route("$request.body.action", "x", &["sendMessage"]),
            None
        );
        assert_eq!(
            select_route("$request.body.a.b", r#"{"a":{"b":7}}"#, &["7"]).as_deref(),
            Some("7")
        );
        assert_eq!(
            select_route("${request.body.action}", r#"{"action":"go"}"#, &["go"]).as_deref(),
            Some("go")
        );
    }
}
