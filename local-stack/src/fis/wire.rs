//! FIS's restJson1 routes on the edge (the SDKs' `fis` service): JSON bodies in and out,
//! errors with `x-amzn-ErrorType`, timestamps as epoch seconds (numbers).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::{FisService, invalid};
use crate::edge::AwsError;

type Fis = State<Arc<FisService>>;

pub fn router(fis: Arc<FisService>) -> Router {
    Router::new()
        .route("/experimentTemplates", post(create_template))
        .route(
            "/experimentTemplates/{id}",
            get(get_template).delete(delete_template),
        )
        .route("/experiments", post(start).get(list))
        .route("/experiments/{id}", get(get_experiment).delete(stop))
        .with_state(fis)
}

fn respond(result: Result<Value, AwsError>) -> Response {
    match result {
        Ok(v) => ([("content-type", "application/json")], v.to_string()).into_response(),
        Err(e) => e.into_response(),
    }
}

fn body(bytes: &[u8]) -> Result<Value, AwsError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("the request body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(invalid("the request body must be a JSON object"));
    }
    Ok(v)
}

async fn create_template(State(fis): Fis, bytes: Bytes) -> Response {
    respond(body(&bytes).and_then(|b| fis.create_template(&b)))
}

async fn get_template(State(fis): Fis, Path(id): Path<String>) -> Response {
    respond(fis.get_template(&id))
}

async fn delete_template(State(fis): Fis, Path(id): Path<String>) -> Response {
    respond(fis.delete_template(&id))
}

async fn start(State(fis): Fis, bytes: Bytes) -> Response {
    respond(body(&bytes).and_then(|b| fis.start(&b)))
}

async fn get_experiment(State(fis): Fis, Path(id): Path<String>) -> Response {
    respond(fis.get(&id))
}

async fn stop(State(fis): Fis, Path(id): Path<String>) -> Response {
    respond(fis.stop(&id))
}

async fn list(State(fis): Fis, Query(q): Query<HashMap<String, String>>) -> Response {
    respond(Ok(
        fis.list(q.get("experimentTemplateId").map(String::as_str))
    ))
}
