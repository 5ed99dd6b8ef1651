//! One module per function. Every function takes its event as JSON, so the runtime wrapper
//! can answer warm-up pings and apply faults before the handler parses its own shape.

mod broadcast;
mod connect;
mod default;
mod disconnect;
mod send_message;
mod warmer;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{Value, json};

use crate::aws::connections_url;
use crate::deps::Deps;
use crate::error::{ChatError, Result};

pub use warmer::{WarmReport, WarmTargetReport};

/// The chat's functions, one per binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Connect,
    Disconnect,
    Default,
    SendMessage,
    Broadcast,
    Warmer,
}

impl Function {
    pub const ALL: [Function; 6] = [
        Function::Connect,
        Function::Disconnect,
        Function::Default,
        Function::SendMessage,
        Function::Broadcast,
        Function::Warmer,
    ];

    /// The binary's name, as SAM and the local stack find it.
    pub fn binary(self) -> &'static str {
        match self {
            Function::Connect => "connect",
            Function::Disconnect => "disconnect",
            Function::Default => "default",
            Function::SendMessage => "send-message",
            Function::Broadcast => "broadcast",
            Function::Warmer => "warmer",
        }
    }
}

/// Runs one function's handler on an event (warm-up pings and faults already dealt with).
pub async fn handle(function: Function, deps: &Deps, event: Value) -> Result<Value> {
    match function {
        Function::Connect => connect::handle(deps, websocket(event)?).await,
        Function::Disconnect => disconnect::handle(deps, websocket(event)?).await,
        Function::Default => default::handle(deps, websocket(event)?).await,
        Function::SendMessage => send_message::handle(deps, websocket(event)?).await,
        Function::Broadcast => broadcast::handle(deps, event).await,
        Function::Warmer => warmer::handle(deps, event).await,
    }
}

fn websocket(event: Value) -> Result<ApiGatewayWebsocketProxyRequest> {
    serde_json::from_value(event).map_err(|e| ChatError::BadEvent {
        expected: "API Gateway WebSocket",
        message: e.to_string(),
    })
}

/// The caller's connection id; every WebSocket route event carries one.
fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Result<&str> {
    event
        .request_context
        .connection_id
        .as_deref()
        .ok_or_else(|| ChatError::BadEvent {
            expected: "API Gateway WebSocket",
            message: "requestContext.connectionId is missing".into(),
        })
}

/// `https://{domainName}/{stage}` of the API the event came through.
fn api_url(event: &ApiGatewayWebsocketProxyRequest) -> Option<String> {
    connections_url(
        event.request_context.domain_name.as_deref(),
        event.request_context.stage.as_deref(),
    )
}

/// A Lambda proxy response; for $connect its status becomes the handshake status.
fn response(status: u16, body: &str) -> Value {
    json!({"statusCode": status, "body": body})
}

/// Sends a frame back to the caller. A caller that has gone is not an error of ours.
async fn reply(deps: &Deps, event: &ApiGatewayWebsocketProxyRequest, frame: Vec<u8>) {
    let Ok(id) = connection_id(event) else { return };
    if let Err(f) = deps.poster(api_url(event).as_deref()).post(id, frame).await {
        tracing::warn!(connection_id = id, error = %f.error.message, "could not reply to the caller");
    }
}
