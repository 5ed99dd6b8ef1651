//! API Gateway v2 GetStage / UpdateStage for throttling (`defaultRouteSettings`,
//! `routeSettings`), applied live to the token buckets.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::throttle::TokenBucket;
use super::{Gateway, StageState};
use crate::edge::{AwsError, respond};
use crate::model::Throttle;

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/v2/apis/{api}/stages/{stage}",
            get(get_stage).patch(update_stage),
        )
        .route(
            "/v2/apis/{api}/stages/{stage}/routesettings/{route}",
            axum::routing::delete(delete_route_settings),
        )
        .with_state(gateway)
}

fn not_found(what: &str, account: &str, id: &str) -> AwsError {
    AwsError::new(
        404,
        "NotFoundException",
        format!("Invalid {what} identifier specified {account}:{id}"),
    )
}

fn settings(t: Option<Throttle>) -> Value {
    let mut v = json!({"dataTraceEnabled": false, "detailedMetricsEnabled": false});
    if let Some(t) = t {
        v["throttlingBurstLimit"] = json!(t.burst);
        v["throttlingRateLimit"] = json!(t.rate);
    }
    v
}

fn describe(s: &StageState) -> Value {
    let routes: Map<String, Value> = s
        .route_buckets
        .iter()
        .map(|(k, b)| (k.clone(), settings(Some(b.limit))))
        .collect();
    json!({
        "stageName": s.spec.name,
        "createdDate": s.created,
        "lastUpdatedDate": s.updated,
        "autoDeploy": false,
        "defaultRouteSettings": settings(s.default_bucket.as_ref().map(|b| b.limit)),
        "routeSettings": routes,
        "stageVariables": {},
        "tags": {},
    })
}

fn with_stage<T>(
    gw: &Gateway,
    api: &str,
    stage: &str,
    f: impl FnOnce(&mut StageState) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    let account = &gw.naming.account_id;
    let api_state = gw
        .apis
        .get(api)
        .ok_or_else(|| not_found("API", account, api))?;
    let mut stages = api_state.stages.lock().expect("stage lock");
    let s = stages
        .get_mut(stage)
        .ok_or_else(|| not_found("stage", account, stage))?;
    f(s)
}

async fn get_stage(
    State(gw): State<Arc<Gateway>>,
    Path((api, stage)): Path<(String, String)>,
) -> Response {
    respond(with_stage(&gw, &api, &stage, |s| Ok(describe(s))))
}

/// Reads `{throttlingBurstLimit, throttlingRateLimit}` over `current` (either may be absent).
fn throttle(v: &Value, current: Option<Throttle>, at: &str) -> Result<Throttle, AwsError> {
    let bad = |field: &str, what: &str| {
        AwsError::new(
            400,
            "BadRequestException",
            format!("{at}.{field} must be {what}"),
        )
    };
    let base = current.unwrap_or(Throttle {
        rate: 10_000.0,
        burst: 5_000,
    });
    let burst = match v.get("throttlingBurstLimit") {
        None => base.burst,
        Some(b) => b
            .as_u64()
            .and_then(|b| u32::try_from(b).ok())
            .ok_or_else(|| bad("throttlingBurstLimit", "a whole number of 0 or more"))?,
    };
    let rate = match v.get("throttlingRateLimit") {
        None => base.rate,
        Some(r) => r
            .as_f64()
            .filter(|r| *r >= 0.0)
            .ok_or_else(|| bad("throttlingRateLimit", "a number of 0 or more"))?,
    };
    Ok(Throttle { rate, burst })
}

/// DeleteRouteSettings: the route falls back to the stage's default settings.
async fn delete_route_settings(
    State(gw): State<Arc<Gateway>>,
    Path((api, stage, route)): Path<(String, String, String)>,
) -> Response {
    let result = with_stage(&gw, &api, &stage, |s| {
        if s.route_buckets.remove(&route).is_none() {
            return Err(AwsError::new(
                404,
                "NotFoundException",
                format!("Unable to find RouteSettings for route {route}"),
            ));
        }
        s.spec.route_throttles.remove(&route);
        s.updated = chrono::Utc::now().to_rfc3339();
        Ok(())
    });
    match result {
        Ok(()) => axum::http::StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn update_stage(
    State(gw): State<Arc<Gateway>>,
    Path((api, stage)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return AwsError::new(
                400,
                "BadRequestException",
                format!("the request body is not JSON: {e}"),
            )
            .into_response();
        }
    };
    respond(with_stage(&gw, &api, &stage, |s| {
        // Validate everything first: a refused update changes nothing.
        let object = |field: &str, v: &Value| -> Result<(), AwsError> {
            if v.is_object() {
                Ok(())
            } else {
                Err(AwsError::new(
                    400,
                    "BadRequestException",
                    format!("{field} must be an object"),
                ))
            }
        };
        let new_default = match request.get("defaultRouteSettings") {
            Some(d) => {
                object("defaultRouteSettings", d)?;
                Some(throttle(
                    d,
                    s.default_bucket.as_ref().map(|b| b.limit),
                    "defaultRouteSettings",
                )?)
            }
            None => None,
        };
        let mut new_routes = Vec::new();
        if let Some(routes) = request.get("routeSettings") {
            object("routeSettings", routes)?;
            for (key, v) in routes.as_object().into_iter().flatten() {
                let at = format!("routeSettings.{key}");
                object(&at, v)?;
                let current = s.route_buckets.get(key).map(|b| b.limit);
                new_routes.push((key.clone(), throttle(v, current, &at)?));
            }
        }
        if let Some(t) = new_default {
            match &mut s.default_bucket {
                Some(b) => b.set_limit(t),
                None => s.default_bucket = Some(TokenBucket::new(t)),
            }
            s.spec.default_throttle = Some(t);
        }
        for (key, t) in new_routes {
            s.route_buckets
                .entry(key.clone())
                .and_modify(|b| b.set_limit(t))
                .or_insert_with(|| TokenBucket::new(t));
            s.spec.route_throttles.insert(key, t);
        }
        s.updated = chrono::Utc::now().to_rfc3339();
        tracing::info!(stage = %s.spec.name, "stage throttling updated");
        Ok(describe(s))
    }))
}
