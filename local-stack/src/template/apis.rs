//! API Gateway v2 WebSocket APIs: the API, its routes (route -> integration -> function)
//! and its stages (throttling).

use std::collections::BTreeMap;

use yaml_serde::Value;

use super::functions::function_by_arn;
use super::intrinsics::{Eval, err};
use super::props::Props;
use crate::error::Result;
use crate::model::{RouteSpec, StageSpec, Throttle, WebSocketApiSpec};

/// API Gateway's account-level throttle, which applies where a stage sets none.
const ACCOUNT_RATE: f64 = 10_000.0;
const ACCOUNT_BURST: u32 = 5_000;

/// Routes, integrations and stages, resolved, waiting for every API to be known.
#[derive(Default)]
pub(super) struct Pending {
    pub routes: Vec<(String, Option<Value>)>,
    pub integrations: BTreeMap<String, Option<Value>>,
    pub stages: Vec<(String, Option<Value>)>,
    pub route_responses: Vec<(String, Option<Value>)>,
}

pub(super) fn api(
    eval: &Eval,
    id: &str,
    props: Option<&Value>,
) -> Result<Option<WebSocketApiSpec>> {
    let p = Props::new(props, format!("Resources.{id}.Properties"))?;
    let protocol = p.required("ProtocolType")?;
    if protocol != "WEBSOCKET" {
        tracing::warn!(api = id, protocol = %protocol, "only WebSocket APIs are modelled; ignored");
        return Ok(None);
    }
    Ok(Some(WebSocketApiSpec {
        logical_id: id.to_string(),
        name: p.required("Name")?,
        api_id: eval.resource_ref(id, &p.at)?,
        route_selection_expression: p.required("RouteSelectionExpression")?,
        routes: BTreeMap::new(),
        stages: BTreeMap::new(),
    }))
}

/// Attaches routes, then stages (whose RouteSettings name routes), to their APIs.
pub(super) fn attach(
    eval: &Eval,
    apis: &mut BTreeMap<String, WebSocketApiSpec>,
    pending: &Pending,
) -> Result<()> {
    for (id, props) in &pending.routes {
        let p = Props::new(props.as_ref(), format!("Resources.{id}.Properties"))?;
        let api = api_for(apis, &p)?;
        let route_key = p.required("RouteKey")?;
        match p.string("AuthorizationType")?.as_deref() {
            None | Some("NONE") => {}
            Some("AWS_IAM") => tracing::warn!(
                route = %id,
                "AuthorizationType AWS_IAM is not checked by the local stack; every connection is allowed"
            ),
            Some(other) => {
                return Err(err(
                    &p.path("AuthorizationType"),
                    format!(
                        "route {id}: AuthorizationType {other} needs an authorizer, which the local stack does not run (use NONE locally)"
                    ),
                ));
            }
        }
        let function = route_function(eval, &p, &api.api_id, &pending.integrations)?;
        if api.routes.contains_key(&route_key) {
            return Err(err(
                &p.path("RouteKey"),
                format!("API {} already has a route {route_key}", api.logical_id),
            ));
        }
        let spec = RouteSpec {
            route_key: route_key.clone(),
            function,
            responds: false,
        };
        api.routes.insert(route_key, spec);
    }
    for (id, props) in &pending.route_responses {
        let p = Props::new(props.as_ref(), format!("Resources.{id}.Properties"))?;
        let route_id = p.required("RouteId")?;
        let key = p.required("RouteResponseKey")?;
        if key != "$default" {
            return Err(err(
                &p.path("RouteResponseKey"),
                format!("WebSocket routes take only the $default route response, found {key}"),
            ));
        }
        let mut found = false;
        for (route, route_props) in &pending.routes {
            if eval.resource_ref(route, &p.at)? != route_id {
                continue;
            }
            let rp = Props::new(
                route_props.as_ref(),
                format!("Resources.{route}.Properties"),
            )?;
            let api = api_for(apis, &rp)?;
            if let Some(r) = api.routes.get_mut(&rp.required("RouteKey")?) {
                r.responds = true;
                found = true;
            }
        }
        if !found {
            return Err(err(
                &p.path("RouteId"),
                format!("RouteId {route_id} is not a route of this template"),
            ));
        }
    }
    for (id, props) in &pending.stages {
        let p = Props::new(props.as_ref(), format!("Resources.{id}.Properties"))?;
        let api = api_for(apis, &p)?;
        let stage = stage(id, &p, api)?;
        if api.stages.contains_key(&stage.name) {
            return Err(err(
                &p.path("StageName"),
                format!("API {} already has a stage {}", api.logical_id, stage.name),
            ));
        }
        api.stages.insert(stage.name.clone(), stage);
    }
    Ok(())
}

fn api_for<'a>(
    apis: &'a mut BTreeMap<String, WebSocketApiSpec>,
    p: &Props,
) -> Result<&'a mut WebSocketApiSpec> {
    let api_id = p.required("ApiId")?;
    apis.values_mut()
        .find(|a| a.api_id == api_id)
        .ok_or_else(|| {
            err(
                &p.path("ApiId"),
                format!("ApiId \"{api_id}\" is not a WebSocket API of this template"),
            )
        })
}

/// `Target: integrations/{Ref of an Integration}` -> the integration's Lambda function.
fn route_function(
    eval: &Eval,
    route: &Props,
    api_id: &str,
    integrations: &BTreeMap<String, Option<Value>>,
) -> Result<String> {
    let target = route.string("Target")?.unwrap_or_default();
    let at = route.path("Target");
    let Some(wanted) = target.strip_prefix("integrations/") else {
        return Err(err(
            &at,
            format!(
                "Target {target:?} is not integrations/<id>: the local stack runs routes that invoke a function of this template"
            ),
        ));
    };
    let mut found = None;
    for (id, props) in integrations {
        if eval.resource_ref(id, &at)? == wanted {
            found = Some((id, props));
        }
    }
    let Some((id, props)) = found else {
        return Err(err(
            &at,
            format!("Target {target}: no integration of this template has id {wanted}"),
        ));
    };
    let p = Props::new(props.as_ref(), format!("Resources.{id}.Properties"))?;
    if p.required("ApiId")? != api_id {
        return Err(err(
            &p.path("ApiId"),
            format!("integration {id} belongs to another API than the route using it"),
        ));
    }
    let ty = p.required("IntegrationType")?;
    if ty != "AWS_PROXY" {
        return Err(err(
            &p.path("IntegrationType"),
            format!("integration {id}: only AWS_PROXY (Lambda proxy) is supported, found {ty}"),
        ));
    }
    let uri = p.required("IntegrationUri")?;
    let arn = function_arn(&uri);
    function_by_arn(eval, &arn, &p.path("IntegrationUri"))?.ok_or_else(|| {
        err(
            &p.path("IntegrationUri"),
            format!("integration {id}: {uri} does not invoke a function of this template"),
        )
    })
}

/// The unqualified function ARN in an integration URI
/// (`arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`, or a bare ARN).
fn function_arn(uri: &str) -> String {
    let arn = match uri.split_once("/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations").unwrap_or(rest),
        None => uri,
    };
    // arn:aws:lambda:region:account:function:name[:qualifier]
    arn.split(':').take(7).collect::<Vec<_>>().join(":")
}

fn stage(logical_id: &str, p: &Props, api: &WebSocketApiSpec) -> Result<StageSpec> {
    let default_throttle = throttle(&p.child("DefaultRouteSettings")?, None)?;
    let settings = p.child("RouteSettings")?;
    let mut route_throttles = BTreeMap::new();
    for (route_key, value) in settings.entries()? {
        let at = settings.path(&route_key);
        // API Gateway rejects settings for a route the API does not have.
        if !api.routes.contains_key(&route_key) {
            return Err(err(
                &at,
                format!(
                    "RouteSettings names route {route_key}, which API {} does not have",
                    api.logical_id
                ),
            ));
        }
        if let Some(t) = throttle(&Props::new(Some(value), at)?, default_throttle)? {
            route_throttles.insert(route_key, t);
        }
    }
    Ok(StageSpec {
        logical_id: logical_id.to_string(),
        name: p.required("StageName")?,
        default_throttle,
        route_throttles,
    })
}

/// A half-set throttle takes the other half from the stage default, else the account's.
fn throttle(p: &Props, fallback: Option<Throttle>) -> Result<Option<Throttle>> {
    let rate = p.float("ThrottlingRateLimit")?;
    let burst = p.uint("ThrottlingBurstLimit", 0..=u64::from(u32::MAX))?;
    if rate.is_none() && burst.is_none() {
        return Ok(None);
    }
    Ok(Some(Throttle {
        rate: rate.or(fallback.map(|f| f.rate)).unwrap_or(ACCOUNT_RATE),
        burst: burst
            .and_then(|b| u32::try_from(b).ok())
            .or(fallback.map(|f| f.burst))
            .unwrap_or(ACCOUNT_BURST),
    }))
}

#[cfg(test)]
mod tests {
    use super::function_arn;

    #[test]
    fn function_arn_from_integration_uri() {
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:chat-Connect";
        let uri = format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"
        );
        assert_eq!(function_arn(&uri), arn);
        assert_eq!(
            function_arn(&format!("{arn}:live")),
            arn,
            "qualifier dropped"
        );
        assert_eq!(function_arn(arn), arn);
    }
}
