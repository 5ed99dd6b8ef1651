//! $default: `whoami` answers the caller's connection id (so a client learns promptly that
//! it is connected); anything else gets an error frame naming the valid actions.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{Value, json};

use super::{connection_id, reply, response};
use crate::deps::Deps;
use crate::error::Result;
use crate::message::{VALID_ACTIONS, action_of, error_frame, whoami_frame};

pub async fn handle(deps: &Deps, event: ApiGatewayWebsocketProxyRequest) -> Result<Value> {
    let id = connection_id(&event)?.to_string();
    let action = action_of(event.body.as_deref());
    if action.as_deref() == Some("whoami") {
        let frame = whoami_frame(&id, event.request_context.request_id.as_deref());
        reply(deps, &event, frame).await;
        return Ok(response(200, "whoami"));
    }
    let message = match &action {
        Some(a) => format!(
            "unknown action {a:?}; valid actions are: {}",
            VALID_ACTIONS.join(", ")
        ),
        None => format!(
            "frames must be JSON objects with an \"action\"; valid actions are: {}",
            VALID_ACTIONS.join(", ")
        ),
    };
    let frame = error_frame(
        "unknown_action",
        &message,
        json!({"validActions": VALID_ACTIONS, "action": action}),
    );
    reply(deps, &event, frame).await;
    Ok(response(400, &message))
}
