//! $connect: record the connection. If the write fails the invocation fails, so API Gateway
//! refuses the handshake and no client is half-connected.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::Value;

use super::{connection_id, response};
use crate::deps::Deps;
use crate::error::Result;
use crate::store::{Connection, now_ms};

pub async fn handle(deps: &Deps, event: ApiGatewayWebsocketProxyRequest) -> Result<Value> {
    let id = connection_id(&event)?;
    let room = match event.query_string_parameters.first("room") {
        None | Some("") => None,
        Some(room) if valid_room(room) => Some(room.to_string()),
        Some(_) => {
            return Ok(response(
                400,
                "room must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
            ));
        }
    };
    let connected_at = match event.request_context.connected_at {
        0 => now_ms(),
        at => at,
    };
    let connection = Connection::new(
        id,
        connected_at,
        room,
        deps.settings.connection_ttl,
        event.request_context.identity.source_ip.clone(),
    );
    deps.store()?.put(&connection).await?;
    tracing::info!(connection_id = id, room = ?connection.room, "connected");
    Ok(response(200, "Connected."))
}

pub fn valid_room(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn room_names() {
        assert!(super::valid_room("lobby-1.a_b"));
        assert!(!super::valid_room("has space"));
        assert!(!super::valid_room(&"x".repeat(65)));
    }
}
