//! $disconnect: delete the row. Idempotent; API Gateway calls it best-effort after the close.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::Value;

use super::{connection_id, response};
use crate::deps::Deps;
use crate::error::Result;

pub async fn handle(deps: &Deps, event: ApiGatewayWebsocketProxyRequest) -> Result<Value> {
    let id = connection_id(&event)?;
    deps.store()?.delete(id).await?;
    tracing::info!(
        connection_id = id,
        status = ?event.request_context.disconnect_status_code,
        reason = ?event.request_context.disconnect_reason,
        "disconnected"
    );
    Ok(response(200, "Disconnected."))
}
