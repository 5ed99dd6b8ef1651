//! The WebSocket endpoint: `ws://127.0.0.1:PORT/{stage}`. The handshake waits for $connect
//! (its status becomes the handshake's); then frames are routed by the API's selection
//! expression to their functions, with AWS's error frames, limits, idle and maximum
//! lifetimes, throttling, and $disconnect after the close.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::event::{self, EventContext};
use super::{Api, Connection, Gateway, Outbound, new_connection_id};

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/{stage}", get(handshake))
        .route("/{stage}/", get(handshake))
        .with_state(gateway)
        .layer(axum::middleware::from_fn(request_limits))
}

/// API Gateway's WebSocket URL quota: 4,096 characters (A5); its answer past it is not
/// documented, so the HTTP standard's 414.
pub const MAX_URL_CHARS: usize = 4_096;
/// Request headers, names and values together. The WebSocket quotas give no figure; this is
/// API Gateway's REST limit on the request line and headers (10,240 bytes), answered 431.
pub const MAX_HEADER_BYTES: usize = 10_240;

async fn request_limits(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let url = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if url > MAX_URL_CHARS {
        let message = format!("Request-URI Too Long: {url} characters, at most {MAX_URL_CHARS}");
        return (
            StatusCode::URI_TOO_LONG,
            json!({"message": message}).to_string(),
        )
            .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        let message =
            format!("Request Header Fields Too Large: {headers} bytes, at most {MAX_HEADER_BYTES}");
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            json!({"message": message}).to_string(),
        )
            .into_response();
    }
    next.run(request).await
}

/// Who is connecting, for the events' `identity` and GetConnection.
struct Peer {
    source_ip: String,
    user_agent: Option<String>,
    domain: String,
}

async fn handshake(
    State(gw): State<Arc<Gateway>>,
    Path(stage): Path<String>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let refuse = |status: StatusCode, message: &str| {
        (status, json!({"message": message}).to_string()).into_response()
    };
    let Some(api) = gw.api_for_stage(&stage) else {
        return refuse(StatusCode::FORBIDDEN, "Forbidden");
    };
    let count_refused = || {
        gw.telemetry
            .api(&api.spec.api_id, |m| m.connects_refused += 1)
    };
    if !gw.admit_new_connection() || !gw.admit(&api, &stage, "$connect") {
        count_refused();
        gw.telemetry.api(&api.spec.api_id, |m| m.throttled += 1);
        gw.telemetry
            .api_metric(&api.spec.api_id, &stage, "ClientError", 1.0, "Count");
        return refuse(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    }
    let id = new_connection_id();
    let connected_at_ms = chrono::Utc::now().timestamp_millis();
    let header_map: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let peer = Peer {
        source_ip: addr.ip().to_string(),
        user_agent: header_map.get("user-agent").cloned(),
        domain: header_map
            .get("host")
            .cloned()
            .unwrap_or_else(|| "localhost".into()),
    };
    if let Some(route) = api.spec.routes.get("$connect") {
        let ctx = context(
            &api,
            &stage,
            &id,
            connected_at_ms,
            &peer,
            "$connect",
            "CONNECT",
        );
        let request_id = event::request_id();
        let ev = event::connect(&ctx, &request_id, &header_map, &query);
        let started = std::time::Instant::now();
        let status = connect_status(&gw, &route.function, ev).await;
        integration_metrics(
            &gw,
            &api.spec.api_id,
            &stage,
            "ConnectCount",
            started,
            status,
        );
        if !(200..300).contains(&status) {
            count_refused();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return refuse(status, status.canonical_reason().unwrap_or("Error"));
        }
    }
    // $connect succeeded; if the upgrade then fails (the client went away), the row it
    // wrote still gets its $disconnect.
    let failed = disconnect_call(
        &gw,
        &api,
        &stage,
        &id,
        connected_at_ms,
        &peer,
        1006,
        "Connection closed abnormally",
    );
    let gw_failed = gw.clone();
    let gw2 = gw.clone();
    ws.max_frame_size(gw.settings.max_frame_bytes)
        .max_message_size(gw.settings.max_message_bytes)
        .on_failed_upgrade(move |_| {
            if let Some((name, ev)) = failed {
                tokio::spawn(async move {
                    let _ = gw_failed
                        .lambda
                        .invoke(&name, Bytes::from(ev.to_string()))
                        .await;
                });
            }
        })
        .on_upgrade(move |socket| run(gw2, api, stage, id, connected_at_ms, peer, socket))
}

/// The handshake status $connect decides: its `statusCode` (200 when it returns none), 502
/// for a function error, 504 past the integration timeout, and 500 when Lambda refuses the
/// call (throttled: AWS's exact status here is not documented).
async fn connect_status(gw: &Gateway, function: &str, ev: Value) -> u16 {
    let name = function_name(gw, function);
    let call = gw.lambda.invoke(&name, Bytes::from(ev.to_string()));
    match tokio::time::timeout(gw.settings.integration_timeout, call).await {
        Err(_) => 504,
        Ok(Err(e)) => {
            tracing::warn!(function = %name, error = %e, "$connect integration refused");
            500
        }
        Ok(Ok(r)) if r.function_error.is_some() => 502,
        Ok(Ok(r)) => serde_json::from_slice::<Value>(&r.payload)
            .ok()
            .and_then(|v| v.get("statusCode")?.as_u64())
            .map(|s| s as u16)
            .unwrap_or(200),
    }
}

/// AWS/ApiGateway for one integration call: the route's count, IntegrationLatency, and
/// IntegrationError for a 4XX/5XX from the integration or ExecutionError when Lambda
/// refused the call (500 here) [U: AWS's split between the two is not documented].
fn integration_metrics(
    gw: &Gateway,
    api_id: &str,
    stage: &str,
    count: &str,
    started: std::time::Instant,
    status: u16,
) {
    let t = &gw.telemetry;
    if count == "ConnectCount" {
        t.api_metric(api_id, stage, count, 1.0, "Count");
    }
    let latency = started.elapsed().as_secs_f64() * 1000.0;
    t.api_metric(api_id, stage, "IntegrationLatency", latency, "Milliseconds");
    match status {
        500 => t.api_metric(api_id, stage, "ExecutionError", 1.0, "Count"),
        s if s >= 400 => t.api_metric(api_id, stage, "IntegrationError", 1.0, "Count"),
        _ => {}
    }
}

/// Routes name functions by logical id; Lambda knows them by name.
fn function_name(gw: &Gateway, logical_id: &str) -> String {
    gw.lambda
        .logical_to_name(logical_id)
        .unwrap_or_else(|| logical_id.to_string())
}

fn context<'a>(
    api: &'a Api,
    stage: &'a str,
    id: &'a str,
    connected_at_ms: i64,
    peer: &'a Peer,
    route_key: &'a str,
    event_type: &'a str,
) -> EventContext<'a> {
    EventContext {
        route_key,
        event_type,
        connection_id: id,
        api_id: &api.spec.api_id,
        stage,
        domain_name: &peer.domain,
        connected_at_ms,
        source_ip: &peer.source_ip,
        user_agent: peer.user_agent.as_deref(),
    }
}

async fn run(
    gw: Arc<Gateway>,
    api: Arc<Api>,
    stage: String,
    id: String,
    connected_at_ms: i64,
    peer: Peer,
    socket: WebSocket,
) {
    let (tx, rx) = mpsc::channel(gw.settings.client_buffer_frames.max(1));
    let conn = Arc::new(Connection {
        id: id.clone(),
        api_id: api.spec.api_id.clone(),
        stage: stage.clone(),
        connected_at_ms,
        last_active_ms: connected_at_ms.into(),
        source_ip: peer.source_ip.clone(),
        user_agent: peer.user_agent.clone(),
        tx,
        close: Default::default(),
        closing: false.into(),
    });
    gw.register(conn.clone());
    let api_id = api.spec.api_id.clone();
    gw.telemetry.api(&api_id, |m| {
        m.connects += 1;
        m.open_connections += 1;
    });
    let (sink, mut stream) = socket.split();
    // The writer has its own task, so a client that stops reading (TCP backed up) stalls
    // only its writer: closes, idle and lifetime limits still happen here.
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<(u16, &'static str)>();
    let mut writer = tokio::spawn(write_frames(sink, rx, close_rx, conn.clone()));
    let ends_at = Instant::now() + gw.settings.max_connection_duration;
    let mut last_in = Instant::now();

    let (code, reason, close_with): (u16, String, Option<(u16, &'static str)>) = loop {
        let idle_at = idle_deadline(&conn, last_in, gw.settings.idle_timeout);
        tokio::select! {
            incoming = stream.next() => {
                last_in = Instant::now();
                conn.touch();
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        on_message(&gw, &api, &stage, &conn, &peer, text.to_string(), false);
                    }
                    Some(Ok(Message::Binary(data))) => {
                        let body = base64::engine::general_purpose::STANDARD.encode(&data);
                        on_message(&gw, &api, &stage, &conn, &peer, body, true);
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(frame))) => break match frame {
                        Some(f) => (f.code, f.reason.to_string(), None),
                        None => (1005, "Client-side close frame status not set".into(), None),
                    },
                    Some(Err(e)) if is_too_big(&e) => {
                        break (1009, "Message too big".into(), Some((1009, "Message too big")));
                    }
                    // RFC 6455 §8.1: a text message that is not UTF-8 fails the connection
                    // with 1007 (AWS documents nothing of its own).
                    Some(Err(e)) if is_bad_utf8(&e) => {
                        break (1007, "Invalid frame payload data".into(), Some((1007, "Invalid frame payload data")));
                    }
                    Some(Err(_)) | None => break (1006, "Connection closed abnormally".into(), None),
                }
            }
            _ = &mut writer => break (1006, "Connection closed abnormally".into(), None),
            _ = conn.close.notified() => break (1000, "Connection deleted".into(), Some((1000, ""))),
            _ = tokio::time::sleep_until(idle_at) => {
                if idle_deadline(&conn, last_in, gw.settings.idle_timeout) <= Instant::now() {
                    break (1001, "Going away".into(), Some((1001, "Going away")));
                }
            }
            _ = tokio::time::sleep_until(ends_at) => break (1001, "Going away".into(), Some((1001, "Going away"))),
        }
    };
    conn.closing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    match close_with {
        Some(frame) => {
            let _ = close_tx.send(frame);
        }
        None => drop(close_tx),
    }
    // A writer stuck on a client that does not read gets a moment, then is dropped (closing TCP).
    if tokio::time::timeout(std::time::Duration::from_secs(1), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    gw.unregister(&id);
    gw.telemetry.api(&api_id, |m| {
        m.disconnects += 1;
        m.open_connections = m.open_connections.saturating_sub(1);
    });
    // $disconnect is best-effort and comes after the close (A3).
    let call = disconnect_call(
        &gw,
        &api,
        &stage,
        &id,
        connected_at_ms,
        &peer,
        code,
        &reason,
    );
    if let Some((name, ev)) = call
        && let Err(e) = gw.lambda.invoke(&name, Bytes::from(ev.to_string())).await
    {
        tracing::warn!(function = %name, error = %e, "$disconnect was not delivered");
    }
}

/// A two-way route's answer to the client: the Lambda proxy response's `body` (decoded when
/// `isBase64Encoded`), or the whole payload when it is not a proxy response object.
pub(crate) fn route_response(payload: &[u8]) -> Option<Outbound> {
    use base64::Engine as _;
    let value: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    match value.as_ref().and_then(|v| v.as_object()) {
        Some(o) if o.contains_key("statusCode") || o.contains_key("body") => {
            let body = o.get("body")?.as_str()?;
            if o.get("isBase64Encoded").and_then(|b| b.as_bool()) == Some(true) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .ok()?;
                Some(Outbound::Binary(bytes))
            } else {
                Some(Outbound::Text(body.to_string()))
            }
        }
        _ if payload.is_empty() || payload == b"null" => None,
        _ => Some(Outbound::Text(
            String::from_utf8_lossy(payload).into_owned(),
        )),
    }
}

/// When the connection goes idle: the later of the last inbound frame and the last frame
/// sent to it (outbound traffic counts as activity; AWS does not say, serverless-offline
/// does the same).
fn idle_deadline(conn: &Connection, last_in: Instant, idle: std::time::Duration) -> Instant {
    let since_out = chrono::Utc::now().timestamp_millis()
        - conn
            .last_active_ms
            .load(std::sync::atomic::Ordering::Relaxed);
    let last_out = Instant::now()
        .checked_sub(std::time::Duration::from_millis(since_out.max(0) as u64))
        .unwrap_or(last_in);
    last_in.max(last_out) + idle
}

/// Sends queued frames to the client until the queue closes or a close frame is due.
async fn write_frames(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut frames: mpsc::Receiver<Outbound>,
    close_rx: tokio::sync::oneshot::Receiver<(u16, &'static str)>,
    conn: Arc<Connection>,
) {
    let mut close_rx = close_rx;
    loop {
        tokio::select! {
            biased;
            c = &mut close_rx => {
                if let Ok((code, reason)) = c {
                    let _ = sink.send(close(code, reason)).await;
                }
                return;
            }
            out = frames.recv() => {
                let Some(out) = out else { return };
                let msg = match out {
                    Outbound::Text(t) => Message::Text(t.into()),
                    Outbound::Binary(b) => Message::Binary(b.into()),
                };
                if sink.send(msg).await.is_err() {
                    return;
                }
                conn.touch();
            }
        }
    }
}

/// The function and event of this connection's $disconnect, if the API has that route.
#[allow(clippy::too_many_arguments)]
fn disconnect_call(
    gw: &Gateway,
    api: &Api,
    stage: &str,
    id: &str,
    connected_at_ms: i64,
    peer: &Peer,
    code: u16,
    reason: &str,
) -> Option<(String, Value)> {
    let route = api.spec.routes.get("$disconnect")?;
    let ctx = context(
        api,
        stage,
        id,
        connected_at_ms,
        peer,
        "$disconnect",
        "DISCONNECT",
    );
    let ev = event::disconnect(&ctx, &event::request_id(), code, reason);
    Some((function_name(gw, &route.function), ev))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}

/// A frame or message over the limits: AWS closes with 1009.
fn is_too_big(e: &axum::Error) -> bool {
    use std::error::Error;
    e.source()
        .and_then(|s| s.downcast_ref::<tungstenite::Error>())
        .is_some_and(|t| matches!(t, tungstenite::Error::Capacity(_)))
}

fn is_bad_utf8(e: &axum::Error) -> bool {
    use std::error::Error;
    e.source()
        .and_then(|s| s.downcast_ref::<tungstenite::Error>())
        .is_some_and(|t| matches!(t, tungstenite::Error::Utf8(_)))
}

/// One inbound message: route selection, throttling, then the integration in its own task
/// (AWS invokes message integrations concurrently; order is not guaranteed).
fn on_message(
    gw: &Arc<Gateway>,
    api: &Arc<Api>,
    stage: &str,
    conn: &Arc<Connection>,
    peer: &Peer,
    body: String,
    base64: bool,
) {
    gw.telemetry.api(&api.spec.api_id, |m| m.messages += 1);
    gw.telemetry
        .api_metric(&api.spec.api_id, stage, "MessageCount", 1.0, "Count");
    let request_id = event::request_id();
    let frame = |message: &str| {
        json!({"message": message, "connectionId": conn.id, "requestId": request_id}).to_string()
    };
    // Messages never select the predefined connect/disconnect routes (A1).
    let keys: Vec<&str> = api
        .spec
        .routes
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "$connect" && *k != "$disconnect")
        .collect();
    let selected = if base64 {
        keys.contains(&"$default").then(|| "$default".to_string())
    } else {
        event::select_route(&api.spec.route_selection_expression, &body, &keys)
    };
    let Some(route_key) = selected else {
        gw.telemetry
            .api_metric(&api.spec.api_id, stage, "ClientError", 1.0, "Count");
        let _ = conn.tx.try_send(Outbound::Text(frame("Forbidden")));
        return;
    };
    if !gw.admit(api, stage, &route_key) {
        gw.telemetry.api(&api.spec.api_id, |m| m.throttled += 1);
        gw.telemetry
            .api_metric(&api.spec.api_id, stage, "ClientError", 1.0, "Count");
        // What AWS sends for a throttled message is undocumented; an error frame shaped
        // like its other ones (A4) is our choice.
        let _ = conn.tx.try_send(Outbound::Text(frame("Too Many Requests")));
        return;
    }
    let ctx = context(
        api,
        stage,
        &conn.id,
        conn.connected_at_ms,
        peer,
        &route_key,
        "MESSAGE",
    );
    let ev = event::message(&ctx, &request_id, body, base64);
    let name = function_name(gw, &api.spec.routes[&route_key].function);
    let responds = api.spec.routes[&route_key].responds;
    let (gw, conn, api_id) = (gw.clone(), conn.clone(), api.spec.api_id.clone());
    let stage = stage.to_string();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let call = gw.lambda.invoke(&name, Bytes::from(ev.to_string()));
        let (failure, status) =
            match tokio::time::timeout(gw.settings.integration_timeout, call).await {
                Err(_) => (Some("Endpoint request timed out"), 504),
                Ok(Err(_)) => (Some("Internal server error"), 500),
                Ok(Ok(r)) if r.function_error.is_some() => (Some("Internal server error"), 502),
                Ok(Ok(r)) => {
                    if responds && let Some(frame) = route_response(&r.payload) {
                        let _ = conn.tx.send(frame).await;
                    }
                    (None, 200)
                }
            };
        integration_metrics(&gw, &api_id, &stage, "MessageCount", started, status);
        if let Some(message) = failure {
            gw.telemetry.api(&api_id, |m| m.integration_errors += 1);
            let text =
                json!({"message": message, "connectionId": conn.id, "requestId": request_id});
            let _ = conn.tx.send(Outbound::Text(text.to_string())).await;
        }
    });
}
