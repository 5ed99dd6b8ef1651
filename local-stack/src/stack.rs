//! The whole local stack, started in-process: template → DynamoDB Local with its tables,
//! SQS, Lambda (the release binaries), API Gateway, one edge endpoint. `local up` and the
//! harness both start it through `start`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cloudwatch::MetricSettings;
use crate::dynamodb::DynamoDbLocal;
use crate::edge::Edge;
use crate::error::{LocalError, Result};
use crate::gateway::{Gateway, GatewaySettings};
use crate::lambda::{DeadLetterSink, LambdaService, LambdaSettings};
use crate::model::{Naming, StackModel};
use crate::sqs::{MessageAttribute, SqsService};
use crate::telemetry::Telemetry;

#[derive(Debug, Clone)]
pub struct StackOptions {
    pub template: PathBuf,
    pub parameter_overrides: BTreeMap<String, String>,
    /// Where the functions' release binaries are (`target/release`).
    pub binaries_dir: PathBuf,
    pub stack_name: String,
    pub region: String,
    pub lambda: LambdaSettings,
    pub gateway: GatewaySettings,
    /// CloudWatch metrics: publication delay (default 0) and retention.
    pub cloudwatch: MetricSettings,
    /// 0 = any free port.
    pub edge_port: u16,
    pub websocket_port: u16,
    /// When set, the edge verifies every call's SigV4 signature against this key (and the
    /// functions sign with it); otherwise any signed-looking call is accepted.
    pub credentials: Option<crate::edge::Credentials>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            template: PathBuf::from("template.yaml"),
            parameter_overrides: BTreeMap::new(),
            binaries_dir: PathBuf::from("target/release"),
            stack_name: "dynamowave".into(),
            region: "us-east-1".into(),
            lambda: LambdaSettings::default(),
            gateway: GatewaySettings::default(),
            cloudwatch: MetricSettings::default(),
            edge_port: 0,
            websocket_port: 0,
            credentials: None,
        }
    }
}

/// What clients need to reach the stack; `local up` prints it as its first line.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoints {
    /// The stack's name, as CloudFormation's DescribeStacks/DescribeStackResources take it.
    pub stack_name: String,
    /// `ws://127.0.0.1:PORT/{stage}` of the first WebSocket API's first stage.
    pub websocket_url: String,
    /// The edge: every AWS API (AWS_ENDPOINT_URL).
    pub endpoint_url: String,
    pub region: String,
    pub dynamodb_endpoint: String,
    pub stage: String,
    pub api_id: String,
    /// Logical id -> physical name.
    pub functions: BTreeMap<String, String>,
    pub tables: BTreeMap<String, String>,
    /// Logical id -> queue URL.
    pub queues: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    /// The local CA (PEM) behind `wss://` and `https://` on the WebSocket port.
    pub ca_bundle: String,
}

pub struct RunningStack {
    pub endpoints: Endpoints,
    pub model: StackModel,
    pub edge: Arc<Edge>,
    dynamodb: Option<DynamoDbLocal>,
    stop: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

/// Sends the Lambda service's dead letters to our SQS queues (by logical id).
struct QueueSink {
    sqs: Arc<SqsService>,
    names: BTreeMap<String, String>,
}

impl DeadLetterSink for QueueSink {
    fn send(
        &self,
        queue: &str,
        body: String,
        attributes: Vec<(String, String, String)>,
    ) -> std::result::Result<(), String> {
        let name = self.names.get(queue).map(String::as_str).unwrap_or(queue);
        let attributes = attributes
            .into_iter()
            .map(|(k, kind, v)| {
                let a = if kind == "Number" {
                    MessageAttribute::number(v)
                } else {
                    MessageAttribute::string(v)
                };
                (k, a)
            })
            .collect();
        self.sqs
            .send_internal(name, body, attributes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

pub async fn start(options: StackOptions) -> Result<RunningStack> {
    let edge_listener = bind(options.edge_port).await?;
    let ws_listener = bind(options.websocket_port).await?;
    let edge_url = format!(
        "http://{}",
        edge_listener
            .local_addr()
            .map_err(|e| LocalError::io("edge address", e))?
    );
    let ws_base = format!(
        "ws://{}",
        ws_listener
            .local_addr()
            .map_err(|e| LocalError::io("websocket address", e))?
    );
    let naming = Naming {
        stack_name: options.stack_name.clone(),
        region: options.region.clone(),
        account_id: "000000000000".into(),
        edge_url: edge_url.clone(),
        websocket_url: ws_base.clone(),
    };
    let mut model =
        crate::template::load(&options.template, &naming, &options.parameter_overrides)?;
    resolve_code_dirs(&mut model, &options.template);
    crate::lambda::runtimes::check_code(model.functions.values(), &options.binaries_dir)?;
    let runtimes = crate::lambda::runtimes::Runtimes::find(
        model.functions.values(),
        &crate::dynamodb::cache_dir(),
    )?;
    let tls = crate::tls::LocalTls::new(&crate::dynamodb::cache_dir().join("local-ca"))?;
    let ca_bundle = tls.ca_file.display().to_string();

    let dynamodb = DynamoDbLocal::start().await?;
    let tables: Vec<_> = model.tables.values().cloned().collect();
    if let Err(e) = dynamodb.create_tables(&tables).await {
        dynamodb.stop().await;
        return Err(e);
    }
    let telemetry = Arc::new(Telemetry::new(options.cloudwatch.clone()));
    let sqs = Arc::new(SqsService::with_naming(
        &naming,
        model.queues.values().cloned(),
    ));
    let sink = Arc::new(QueueSink {
        sqs: sqs.clone(),
        names: model
            .queues
            .iter()
            .map(|(k, q)| (k.clone(), q.name.clone()))
            .collect(),
    });
    let mut lambda_settings = options.lambda.clone();
    lambda_settings.binaries_dir = options.binaries_dir.clone();
    lambda_settings.edge_url = edge_url.clone();
    lambda_settings.runtimes = runtimes;
    let (key_id, secret) = match &options.credentials {
        Some(c) => (c.access_key_id.as_str(), c.secret_access_key.as_str()),
        None => ("local", "local"),
    };
    for (k, v) in [
        ("AWS_ENDPOINT_URL", edge_url.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
        // Structured logs, as template.yaml's LoggingConfig asks of Lambda.
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        // The local CA behind https://{domainName}/{stage}, for botocore and Node.
        ("AWS_CA_BUNDLE", ca_bundle.as_str()),
        ("NODE_EXTRA_CA_CERTS", ca_bundle.as_str()),
    ] {
        lambda_settings
            .platform_env
            .entry(k.to_string())
            .or_insert_with(|| v.to_string());
    }
    let lambda = match LambdaService::start(
        model.functions.values().cloned(),
        naming.clone(),
        lambda_settings,
        telemetry.clone(),
        sink,
    ) {
        Ok(l) => l,
        Err(e) => {
            dynamodb.stop().await;
            return Err(LocalError::template(
                "Resources (reserved concurrency)",
                e.message,
            ));
        }
    };
    let gateway = Gateway::new(
        model.websocket_apis.values().cloned(),
        naming.clone(),
        options.gateway.clone(),
        lambda.clone(),
        telemetry.clone(),
    );
    let edge = Edge::new(
        lambda,
        gateway.clone(),
        sqs,
        telemetry,
        dynamodb.endpoint.clone(),
        options.credentials.clone(),
    );
    let (stop, _) = watch::channel(false);
    tokio::spawn(sample_queues(edge.clone(), stop.subscribe()));
    let servers = vec![
        serve(edge_listener, edge.router(), stop.subscribe()),
        // The API's own host serves its @connections too, over TLS or not, as AWS's does.
        crate::tls::serve_mixed(
            ws_listener,
            crate::gateway::websocket::router(gateway.clone()).merge(
                crate::gateway::connections::router(gateway).layer(
                    axum::middleware::from_fn_with_state(
                        edge.credentials.clone(),
                        crate::edge::require_sigv4,
                    ),
                ),
            ),
            Some(tls),
            stop.subscribe(),
        ),
    ];
    let mut endpoints = endpoints(&model, &ws_base, &edge_url, &dynamodb.endpoint);
    endpoints.ca_bundle = ca_bundle;
    let _ = edge
        .endpoints
        .set(serde_json::to_value(&endpoints).expect("endpoints serialise"));
    let _ = edge
        .cloudformation
        .set(crate::cloudformation::CloudFormation::new(
            &model, &ws_base, &edge_url,
        ));
    let _ = edge
        .stack_resources
        .set(crate::cloudformation::resources(&model));
    tracing::info!(edge = %edge_url, websocket = %endpoints.websocket_url, "local stack up");
    Ok(RunningStack {
        endpoints,
        model,
        edge,
        dynamodb: Some(dynamodb),
        stop,
        servers,
    })
}

impl RunningStack {
    /// Closes every WebSocket, kills every function instance and DynamoDB Local, and
    /// stops the servers. Nothing is left running.
    pub async fn shutdown(mut self) {
        self.edge.gateway.close_all();
        // Give the $disconnect calls of closing sockets a moment before functions go away.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        self.stop.send_replace(true);
        self.edge.lambda.shutdown().await;
        for s in self.servers.drain(..) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s).await;
        }
        if let Some(d) = self.dynamodb.take() {
            d.stop().await;
        }
    }
}

/// AWS/SQS once a second: each queue's visible depth, and the messages sent since the last
/// sample (AWS publishes both per minute).
async fn sample_queues(edge: Arc<Edge>, mut stop: watch::Receiver<bool>) {
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for q in edge.sqs.queue_names() {
            let Some(d) = edge.sqs.depth(&q) else {
                continue;
            };
            let t = &edge.telemetry;
            t.sqs_metric(&q, "ApproximateNumberOfMessagesVisible", d.visible as f64);
            let total = edge.sqs.sent_total(&q).unwrap_or(0);
            let before = sent.insert(q.clone(), total).unwrap_or(0);
            if total > before {
                t.sqs_metric(&q, "NumberOfMessagesSent", (total - before) as f64);
            }
        }
    }
}

async fn bind(port: u16) -> Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| LocalError::io(format!("binding 127.0.0.1:{port}"), e))
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    })
}

/// `CodeUri` / `Code` paths are relative to the template's folder, as SAM reads them.
fn resolve_code_dirs(model: &mut StackModel, template: &std::path::Path) {
    let base = template
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    for f in model.functions.values_mut() {
        if let crate::model::Code::Package { dir, .. } = &mut f.code
            && dir.is_relative()
        {
            let joined = base.join(&*dir);
            // Absolute, so a function's working directory does not depend on ours.
            *dir = std::path::absolute(&joined).unwrap_or(joined);
        }
    }
}

fn endpoints(model: &StackModel, ws_base: &str, edge_url: &str, dynamodb: &str) -> Endpoints {
    let (api_id, stage) = model
        .websocket_apis
        .values()
        .next()
        .map(|a| {
            (
                a.api_id.clone(),
                a.stages.keys().next().cloned().unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    Endpoints {
        stack_name: model.naming.stack_name.clone(),
        websocket_url: format!("{ws_base}/{stage}"),
        endpoint_url: edge_url.to_string(),
        region: model.naming.region.clone(),
        dynamodb_endpoint: dynamodb.to_string(),
        stage,
        api_id,
        functions: model
            .functions
            .iter()
            .map(|(k, f)| (k.clone(), f.name.clone()))
            .collect(),
        tables: model
            .tables
            .iter()
            .map(|(k, t)| (k.clone(), t.name.clone()))
            .collect(),
        queues: model
            .queues
            .iter()
            .map(|(k, q)| (k.clone(), q.url.clone()))
            .collect(),
        outputs: model.outputs.clone(),
        ca_bundle: String::new(),
    }
}
