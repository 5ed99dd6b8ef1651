//! SQS emulator: the awsJson 1.0 (query-compatible) API the AWS SDK for Rust speaks, over
//! in-memory queues, plus in-process sends for the stack's own dead letters.

mod admin;
mod md5;
mod ops;
mod queue;
#[cfg(test)]
mod tests;
mod validate;
mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::edge::AwsError;
use crate::model::{Naming, QueueSpec};
use queue::{Queue, QueueConfig};

/// A message attribute as SQS stores it: `String…`/`Number…` types carry `string_value`,
/// `Binary…` types `binary_value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttribute {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

impl MessageAttribute {
    pub fn string(value: impl Into<String>) -> Self {
        MessageAttribute {
            data_type: "String".into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    pub fn number(value: impl ToString) -> Self {
        MessageAttribute {
            data_type: "Number".into(),
            string_value: Some(value.to_string()),
            binary_value: None,
        }
    }

    pub fn binary(value: Vec<u8>) -> Self {
        MessageAttribute {
            data_type: "Binary".into(),
            string_value: None,
            binary_value: Some(value),
        }
    }

    fn is_binary(&self) -> bool {
        self.data_type.starts_with("Binary")
    }

    fn value_len(&self) -> usize {
        if self.is_binary() {
            self.binary_value.as_ref().map_or(0, Vec::len)
        } else {
            self.string_value.as_ref().map_or(0, String::len)
        }
    }
}

/// Message counts as `GetQueueAttributes` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Receivable now (`ApproximateNumberOfMessages`).
    pub visible: usize,
    /// Received and not yet visible again (`ApproximateNumberOfMessagesNotVisible`).
    pub in_flight: usize,
    /// Sent with a delay that has not passed (`ApproximateNumberOfMessagesDelayed`).
    pub delayed: usize,
}

/// Every queue of the stack. Send + Sync; share it as `Arc<SqsService>`.
pub struct SqsService {
    /// By queue name.
    queues: RwLock<BTreeMap<String, Arc<Queue>>>,
    /// `{edge}/{account}`: where queues made by CreateQueue live.
    url_prefix: String,
    /// `arn:aws:sqs:{region}:{account}`
    arn_prefix: String,
    /// Reported as every message's `SenderId`: the local stack has one principal.
    sender_id: String,
}

/// What the operations dispatch on; also listed in the InvalidAction message.
const OPERATIONS: &[&str] = &[
    "ChangeMessageVisibility",
    "CreateQueue",
    "DeleteMessage",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "SendMessage",
];

impl SqsService {
    /// Queues from the stack model. Queues created later get URLs and ARNs beside the
    /// first given queue's, or the default naming when there is none.
    pub fn new(queues: impl IntoIterator<Item = QueueSpec>) -> Self {
        let specs: Vec<QueueSpec> = queues.into_iter().collect();
        let naming = Naming::default();
        let mut url_prefix = format!("{}/{}", naming.edge_url, naming.account_id);
        let mut arn_prefix = format!("arn:aws:sqs:{}:{}", naming.region, naming.account_id);
        if let Some(first) = specs.first() {
            if let Some((prefix, _)) = first.url.trim_end_matches('/').rsplit_once('/') {
                url_prefix = prefix.to_string();
            }
            if let Some((prefix, _)) = first.arn.rsplit_once(':') {
                arn_prefix = prefix.to_string();
            }
        }
        Self::build(url_prefix, arn_prefix, specs)
    }

    /// Like `new`, with URLs and ARNs of created queues taken from the stack's naming.
    pub fn with_naming(naming: &Naming, queues: impl IntoIterator<Item = QueueSpec>) -> Self {
        Self::build(
            format!(
                "{}/{}",
                naming.edge_url.trim_end_matches('/'),
                naming.account_id
            ),
            format!("arn:aws:sqs:{}:{}", naming.region, naming.account_id),
            queues.into_iter().collect(),
        )
    }

    fn build(url_prefix: String, arn_prefix: String, specs: Vec<QueueSpec>) -> Self {
        let queues = specs
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    Arc::new(Queue::new(QueueConfig::from_spec(s))),
                )
            })
            .collect();
        let sender_id = arn_prefix.split(':').nth(4).unwrap_or_default().to_string();
        SqsService {
            queues: RwLock::new(queues),
            url_prefix,
            arn_prefix,
            sender_id,
        }
    }

    /// The edge calls this for `POST /` with `x-amz-target: AmazonSQS.<Op>`; `operation`
    /// is `<Op>` (the `AmazonSQS.` prefix is tolerated).
    pub async fn handle_http(&self, operation: &str, body: &[u8]) -> Response {
        let operation = operation.strip_prefix("AmazonSQS.").unwrap_or(operation);
        match self.dispatch(operation, body).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(operation, %error, "SQS request refused");
                error.into_response()
            }
        }
    }

    async fn dispatch(&self, operation: &str, body: &[u8]) -> Result<Response, AwsError> {
        // Unknown targets are refused before the body is looked at, as AWS does.
        if !OPERATIONS.contains(&operation) {
            return Err(invalid_action(operation));
        }
        let req = wire::Request::parse(body)?;
        match operation {
            "ChangeMessageVisibility" => ops::change_message_visibility(self, &req),
            "CreateQueue" => admin::create_queue(self, &req),
            "DeleteMessage" => ops::delete_message(self, &req),
            "GetQueueAttributes" => admin::get_queue_attributes(self, &req),
            "GetQueueUrl" => ops::get_queue_url(self, &req),
            "ListQueues" => admin::list_queues(self, &req),
            "PurgeQueue" => ops::purge_queue(self, &req),
            "ReceiveMessage" => ops::receive_message(self, &req).await,
            "SendMessage" => ops::send_message(self, &req),
            _ => Err(invalid_action(operation)),
        }
    }

    /// In-process send (Lambda's DLQ / on-failure destination). `queue` is a name, URL or
    /// ARN. Validated as SendMessage is; returns the message id.
    pub fn send_internal(
        &self,
        queue: &str,
        body: String,
        attributes: Vec<(String, MessageAttribute)>,
    ) -> Result<String, AwsError> {
        let q = self
            .queue(queue)
            .ok_or_else(|| wire::no_such_queue(queue))?;
        Ok(q.send(body, attributes, None, &self.sender_id)?.message_id)
    }

    /// Visible, in-flight and delayed counts; None for an unknown queue.
    pub fn depth(&self, queue: &str) -> Option<QueueDepth> {
        self.queue(queue).map(|q| q.depth())
    }

    /// Messages ever sent to the queue; None for an unknown queue.
    pub fn sent_total(&self, queue: &str) -> Option<u64> {
        self.queue(queue).map(|q| q.sent_total())
    }

    pub fn queue_names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Queue>>> {
        self.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A queue by name, ARN, or any URL whose last path segment is its name (the SDK
    /// sends back whatever URL it was given).
    fn queue(&self, id: &str) -> Option<Arc<Queue>> {
        self.read().get(queue_name_of(id)).cloned()
    }
}

fn queue_name_of(id: &str) -> &str {
    let id = id.trim();
    if id.starts_with("arn:") {
        return id.rsplit(':').next().unwrap_or(id);
    }
    if let Some((_, rest)) = id.split_once("://") {
        let path = rest.split(['?', '#']).next().unwrap_or(rest);
        return path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(path);
    }
    id
}

fn invalid_action(operation: &str) -> AwsError {
    wire::sqs_error(
        400,
        "InvalidAction",
        "InvalidAction",
        format!(
            "The action {operation:?} is not valid for this endpoint (unknown operation); \
             the local SQS supports {}.",
            OPERATIONS.join(", ")
        ),
    )
}

/// `POST /` for SQS alone, dispatching on `x-amz-target: AmazonSQS.<Op>`.
pub fn router(service: Arc<SqsService>) -> Router {
    Router::new().route("/", post(serve)).with_state(service)
}

async fn serve(
    State(service): State<Arc<SqsService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The SDK always signs; the signature itself is not checked, only that one is there.
    match headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or_default())
    {
        None => {
            return AwsError::new(
                403,
                "MissingAuthenticationTokenException",
                "Request is missing the Authorization header (an AWS4-HMAC-SHA256 signature).",
            )
            .into_response();
        }
        Some(auth) if !auth.starts_with("AWS4-HMAC-SHA256") => {
            let scheme = auth.split_whitespace().next().unwrap_or_default();
            return AwsError::new(
                403,
                "IncompleteSignature",
                format!("Authorization header scheme {scheme:?} is not AWS4-HMAC-SHA256."),
            )
            .into_response();
        }
        Some(_) => {}
    }
    let target = headers
        .get("x-amz-target")
        .map(|v| v.to_str().unwrap_or_default())
        .unwrap_or_default();
    match target.strip_prefix("AmazonSQS.") {
        Some(operation) => service.handle_http(operation, &body).await,
        None => invalid_action(&format!("x-amz-target: {target}")).into_response(),
    }
}
