//! sendMessage: validate, stamp id and sender (from the connection, never the body), then
//! hand to broadcast by async Invoke (FANOUT_MODE=async) or fan out here (inline).

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::{Value, json};

use super::{api_url, connection_id, reply, response};
use crate::config::FanoutMode;
use crate::deps::Deps;
use crate::error::{ChatError, Result};
use crate::message::{BroadcastJob, error_frame, parse_send_body};
use crate::store::now_ms;

pub async fn handle(deps: &Deps, event: ApiGatewayWebsocketProxyRequest) -> Result<Value> {
    let sender = connection_id(&event)?.to_string();
    let body = if event.is_base64_encoded {
        Err(crate::message::Rejection {
            code: "binary_frame",
            message: "binary frames are not accepted; send a JSON text frame".into(),
        })
    } else {
        parse_send_body(event.body.as_deref(), deps.settings.max_message_bytes)
    };
    let message = match body {
        Ok(m) => m,
        Err(rejection) => {
            let frame = error_frame(rejection.code, &rejection.message, json!({}));
            reply(deps, &event, frame).await;
            return Ok(response(400, &rejection.message));
        }
    };
    let Some(connection) = deps.store()?.get(&sender).await? else {
        let text = "this connection is not registered (it expired or never connected); reconnect";
        reply(deps, &event, error_frame("not_connected", text, json!({}))).await;
        return Ok(response(403, text));
    };
    let job = BroadcastJob {
        message_id: uuid::Uuid::new_v4().to_string(),
        sender,
        room: connection.room,
        message,
        sent_at: now_ms(),
        connections_url: api_url(&event),
    };
    match deps.settings.fanout_mode {
        FanoutMode::Async => hand_off(deps, &job).await?,
        FanoutMode::Inline => {
            deps.fanout(job.connections_url.as_deref())?
                .broadcast(&job)
                .await?;
        }
    }
    Ok(response(
        200,
        &json!({"messageId": job.message_id}).to_string(),
    ))
}

async fn hand_off(deps: &Deps, job: &BroadcastJob) -> Result<()> {
    let function = deps.settings.broadcast_function.clone().ok_or_else(|| {
        ChatError::Config(
            "BROADCAST_FUNCTION_NAME is not set (needed when FANOUT_MODE=async)".into(),
        )
    })?;
    let payload = serde_json::to_vec(job).expect("a job always serialises");
    let out = deps
        .clients
        .lambda
        .invoke()
        .function_name(&function)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| ChatError::Invoke {
            function: function.clone(),
            message: crate::aws::describe(&e),
        })?;
    tracing::info!(message_id = %job.message_id, status = out.status_code(), "handed to broadcast");
    Ok(())
}
