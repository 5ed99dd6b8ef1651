//! A small loopback HTTP endpoint standing in for the AWS services the chat calls besides
//! DynamoDB (@connections, SQS, Lambda Invoke, the Lambda Runtime API), until the local
//! stack exists. It records every request and answers with AWS's wire shapes
//! (shared/aws-wire.md), so the real SDK clients parse successes and typed errors.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

#[derive(Debug, Clone)]
pub struct Post {
    pub method: String,
    pub connection_id: String,
    pub body: Vec<u8>,
}

impl Post {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("frames are JSON")
    }
}

#[derive(Debug, Clone)]
pub struct Invoke {
    pub function: String,
    pub invocation_type: String,
    pub payload: Value,
}

#[derive(Default)]
struct Inner {
    posts: Vec<Post>,
    sqs: Vec<(String, Value)>,
    invokes: Vec<Invoke>,
    gone: HashSet<String>,
    /// connection id -> (status, how many more times to fail; None = always)
    failing: HashMap<String, (u16, Option<u32>)>,
    in_flight: HashMap<String, u32>,
    max_in_flight: HashMap<String, u32>,
    /// Runtime API: events waiting for `next`, and what functions answered.
    events: VecDeque<(String, Value)>,
    responses: Vec<(String, String, Value)>,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    event_ready: Arc<Notify>,
    answered: Arc<Notify>,
}

pub struct Recorder {
    pub url: String,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let shared = Shared::default();
        let app = Router::new()
            .route(
                "/{stage}/@connections/{id}",
                post(connections).get(connections).delete(connections),
            )
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .route("/", post(sqs))
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route(
                "/2018-06-01/runtime/invocation/{id}/{kind}",
                post(runtime_answer),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Recorder {
            url,
            shared,
            stop: Some(stop),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.shared.inner.lock().unwrap())
    }

    pub fn set_gone(&self, id: &str) {
        self.with(|i| i.gone.insert(id.to_string()));
    }

    /// `id` answers `status` `times` times (None: always), then succeeds.
    pub fn set_failing(&self, id: &str, status: u16, times: Option<u32>) {
        self.with(|i| i.failing.insert(id.to_string(), (status, times)));
    }

    pub fn posts(&self) -> Vec<Post> {
        self.with(|i| i.posts.clone())
    }

    pub fn posts_to(&self, id: &str) -> Vec<Post> {
        self.posts()
            .into_iter()
            .filter(|p| p.connection_id == id)
            .collect()
    }

    /// SQS requests: (X-Amz-Target operation, JSON body).
    pub fn sqs(&self) -> Vec<(String, Value)> {
        self.with(|i| i.sqs.clone())
    }

    pub fn invokes(&self) -> Vec<Invoke> {
        self.with(|i| i.invokes.clone())
    }

    pub fn max_in_flight(&self, function: &str) -> u32 {
        self.with(|i| i.max_in_flight.get(function).copied().unwrap_or(0))
    }

    /// Queues an event for a function process polling the Runtime API.
    pub fn push_event(&self, request_id: &str, event: Value) {
        self.with(|i| i.events.push_back((request_id.to_string(), event)));
        self.shared.event_ready.notify_one();
    }

    /// Waits until a function process has answered `count` invocations (or init failed).
    pub async fn wait_for_answers(
        &self,
        count: usize,
        within: Duration,
    ) -> Vec<(String, String, Value)> {
        tokio::time::timeout(within, async {
            loop {
                let notified = self.shared.answered.notified();
                let answers = self.with(|i| i.responses.clone());
                if answers.len() >= count {
                    return answers;
                }
                notified.await;
            }
        })
        .await
        .expect("the function answered in time")
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn aws_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (
        status,
        [("x-amzn-ErrorType", code.to_string())],
        json!({"message": message}).to_string(),
    )
        .into_response()
}

async fn connections(
    State(s): State<Shared>,
    method: Method,
    Path((_stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    inner.posts.push(Post {
        method: method.to_string(),
        connection_id: id.clone(),
        body: body.to_vec(),
    });
    if inner.gone.contains(&id) {
        return aws_error(410, "GoneException", "Gone");
    }
    if let Some((status, remaining)) = inner.failing.get_mut(&id) {
        let status = *status;
        let fail = match remaining {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        };
        if fail {
            let code = if status == 429 {
                "LimitExceededException"
            } else {
                "InternalServerErrorException"
            };
            return aws_error(status, code, "injected by the test");
        }
    }
    match method {
        Method::DELETE => StatusCode::NO_CONTENT.into_response(),
        Method::GET => json!({"connectedAt": "2026-01-01T00:00:00.000Z", "identity": {"sourceIp": "127.0.0.1"}})
            .to_string()
            .into_response(),
        _ => StatusCode::OK.into_response(),
    }
}

async fn sqs(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("AmazonSQS.")
        .to_string();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.inner.lock().unwrap().sqs.push((target, value));
    json!({"MessageId": uuid::Uuid::new_v4().to_string(), "MD5OfMessageBody": "00000000000000000000000000000000"})
        .to_string()
        .into_response()
}

async fn invoke(
    State(s): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_string();
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    {
        let mut inner = s.inner.lock().unwrap();
        inner.invokes.push(Invoke {
            function: name.clone(),
            invocation_type: invocation_type.clone(),
            payload: payload.clone(),
        });
        let n = inner.in_flight.entry(name.clone()).or_default();
        *n += 1;
        let now = *n;
        let max = inner.max_in_flight.entry(name.clone()).or_default();
        *max = (*max).max(now);
    }
    // A warm-up ping holds its instance for the ping's delay, as the real handler does.
    let delay = payload
        .get("__WARMER_DELAY_MS__")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    *s.inner.lock().unwrap().in_flight.get_mut(&name).unwrap() -= 1;
    if invocation_type == "Event" {
        return StatusCode::ACCEPTED.into_response();
    }
    // Each ping is answered as a fresh instance would answer it.
    json!({"warmed": true, "function": name, "instanceId": uuid::Uuid::new_v4().to_string(), "coldStart": true})
        .to_string()
        .into_response()
}

async fn next_event(State(s): State<Shared>) -> Response {
    // Long-polls like the real Runtime API: never 204.
    loop {
        let notified = s.event_ready.notified();
        if let Some((id, event)) = s.inner.lock().unwrap().events.pop_front() {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 10_000;
            return (
                [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:000000000000:function:test".to_string(),
                    ),
                ],
                event.to_string(),
            )
                .into_response();
        }
        notified.await;
    }
}

async fn runtime_answer(
    State(s): State<Shared>,
    Path((id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(t) = headers.get("lambda-runtime-function-error-type") {
        value["__errorTypeHeader"] = Value::String(t.to_str().unwrap_or_default().into());
    }
    s.inner.lock().unwrap().responses.push((id, kind, value));
    s.answered.notify_waiters();
    StatusCode::ACCEPTED.into_response()
}

async fn init_error(State(s): State<Shared>, body: Bytes) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.inner
        .lock()
        .unwrap()
        .responses
        .push(("init".into(), "init-error".into(), value));
    s.answered.notify_waiters();
    StatusCode::ACCEPTED.into_response()
}
