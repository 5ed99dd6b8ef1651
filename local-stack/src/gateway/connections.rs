//! The @connections management API (aws-semantics B1–B3): POST sends a frame, GET
//! describes the connection, DELETE closes it. Unknown or closed ids get 410 Gone,
//! malformed ids 400, oversized data 413. A post never waits for a slow client: frames
//! queue in a bounded per-connection buffer, and a post to a full one fails with 429
//! LimitExceededException (counted as `framesDroppedSlowReader`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::sync::mpsc::error::TrySendError;

use super::{Gateway, Outbound, valid_connection_id};
use crate::edge::AwsError;

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/@connections/{id}",
            post(post_root).get(get_root).delete(delete_root),
        )
        .route(
            "/{stage}/@connections/{id}",
            post(post_staged).get(get_staged).delete(delete_staged),
        )
        .with_state(gateway)
}

type Gw = State<Arc<Gateway>>;

async fn post_root(State(gw): Gw, Path(id): Path<String>, body: Bytes) -> Response {
    post_to(&gw, &id, body).await
}
async fn post_staged(
    State(gw): Gw,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    post_to(&gw, &id, body).await
}
async fn get_root(State(gw): Gw, Path(id): Path<String>) -> Response {
    describe(&gw, &id).await
}
async fn get_staged(State(gw): Gw, Path((_, id)): Path<(String, String)>) -> Response {
    describe(&gw, &id).await
}
async fn delete_root(State(gw): Gw, Path(id): Path<String>) -> Response {
    delete(&gw, &id).await
}
async fn delete_staged(State(gw): Gw, Path((_, id)): Path<(String, String)>) -> Response {
    delete(&gw, &id).await
}

fn check_id(id: &str) -> Result<(), AwsError> {
    if valid_connection_id(id) {
        Ok(())
    } else {
        Err(AwsError::new(
            400,
            "BadRequestException",
            format!("Invalid connectionId: {id}"),
        ))
    }
}

fn gone() -> AwsError {
    AwsError::new(410, "GoneException", "Gone")
}

async fn post_to(gw: &Gateway, id: &str, body: Bytes) -> Response {
    tokio::time::sleep(gw.settings.connections_latency).await;
    let result = (|| {
        check_id(id)?;
        if body.len() > gw.settings.max_message_bytes {
            return Err(AwsError::new(
                413,
                "PayloadTooLargeException",
                format!(
                    "Message too long: {} bytes; the limit is {}",
                    body.len(),
                    gw.settings.max_message_bytes
                ),
            ));
        }
        let conn = gw
            .connection(id)
            .filter(|c| !c.closing.load(Ordering::SeqCst))
            .ok_or_else(gone)?;
        gw.telemetry.api(&conn.api_id, |m| m.posts += 1);
        if gw.settings.post_failure_share > 0.0
            && rand::random::<f64>() < gw.settings.post_failure_share
        {
            gw.telemetry.api(&conn.api_id, |m| m.post_failures += 1);
            let (code, message) = match gw.settings.post_failure_status {
                429 => ("LimitExceededException", "Rate exceeded"),
                503 => ("ServiceUnavailableException", "Service unavailable"),
                _ => ("InternalServerErrorException", "Internal server error"),
            };
            return Err(AwsError::new(
                gw.settings.post_failure_status,
                code,
                format!("{message} (the local stack's post_failure_share)"),
            ));
        }
        let frame = match String::from_utf8(body.to_vec()) {
            Ok(text) => Outbound::Text(text),
            Err(e) => Outbound::Binary(e.into_bytes()),
        };
        match conn.tx.try_send(frame) {
            Ok(()) => {
                // A message "to the client" counts in MessageCount [inf: not documented].
                let t = &gw.telemetry;
                t.api_metric(&conn.api_id, &conn.stage, "MessageCount", 1.0, "Count");
                Ok(conn)
            }
            Err(TrySendError::Full(_)) => {
                gw.telemetry.api(&conn.api_id, |m| {
                    m.post_failures += 1;
                    m.frames_dropped_slow_reader += 1;
                });
                Err(AwsError::new(
                    429,
                    "LimitExceededException",
                    "the client is not reading fast enough: its buffer is full",
                ))
            }
            Err(TrySendError::Closed(_)) => Err(gone()),
        }
    })();
    match result {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => {
            if e.status.as_u16() == 410
                && let Some(api) = gw.apis.values().next()
            {
                let repeat = !gw.note_gone(id);
                gw.telemetry.api(&api.spec.api_id, |m| {
                    m.post_failures += 1;
                    m.gone_posts += 1;
                    m.gone_repeats += u64::from(repeat);
                });
            }
            e.into_response()
        }
    }
}

async fn describe(gw: &Gateway, id: &str) -> Response {
    tokio::time::sleep(gw.settings.connections_latency).await;
    let result = check_id(id).and_then(|_| gw.connection(id).ok_or_else(gone));
    match result {
        Ok(c) => {
            let iso = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap_or_default()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string()
            };
            let body = json!({
                "connectedAt": iso(c.connected_at_ms),
                "lastActiveAt": iso(c.last_active_ms.load(Ordering::Relaxed)),
                "identity": {"sourceIp": c.source_ip, "userAgent": c.user_agent},
            });
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn delete(gw: &Gateway, id: &str) -> Response {
    tokio::time::sleep(gw.settings.connections_latency).await;
    match check_id(id).and_then(|_| gw.connection(id).ok_or_else(gone)) {
        Ok(c) => {
            c.closing.store(true, Ordering::SeqCst);
            c.close.notify_one();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}
