//! What the fuzz targets (`fuzz/fuzz_targets/`) run, and the corpus replay test with them
//! (`tests/fuzz_corpus.rs`, every seed and finding, in CI): each entry takes any bytes and
//! must return without panicking, hanging or allocating without bound.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crate::model::Naming;

/// A fuzz target's body: any bytes in, nothing out but a panic if it fails.
pub type Entry = fn(&[u8]);

/// The fuzz targets this crate serves, by name (the names of `fuzz/fuzz_targets/*.rs` and
/// of their corpus folders).
pub const TARGETS: &[(&str, Entry)] = &[
    ("template", template),
    ("route", route),
    ("cloudwatch_wire", cloudwatch_wire),
    ("edge_request", edge_request),
];

/// A template resolved as `local up --template` would (no file is read or started).
pub fn template(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::template::parse(text, &Naming::default(), &BTreeMap::new());
    }
}

/// Route selection and the route response of a client's message. The first byte picks a
/// selection expression, the rest is the frame.
pub fn route(data: &[u8]) {
    const EXPRESSIONS: &[&str] = &[
        "$request.body.action",
        "${request.body.action}",
        "$request.body.a.b.c",
        "$request.body",
        "\\$default",
    ];
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let expression = EXPRESSIONS[usize::from(pick) % EXPRESSIONS.len()];
    if let Ok(body) = std::str::from_utf8(frame) {
        let _ = crate::gateway::event::select_route(
            expression,
            body,
            &["sendMessage", "whoami", "$default"],
        );
    }
    let _ = crate::gateway::websocket::route_response(frame);
}

/// CloudWatch's three wire decoders (CBOR, JSON 1.0, awsQuery form).
pub fn cloudwatch_wire(data: &[u8]) {
    let _ = crate::cloudwatch::wire_cbor::decode(data);
    let _ = crate::cloudwatch::wire_json::decode(data);
    if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) {
        let _ = crate::cloudwatch::wire_query::decode(&form);
    }
}

/// One HTTP request to the edge, written as text: `METHOD /path?query`, header lines, a
/// blank line, the body. The edge is the reference template's, without functions (nothing
/// is spawned) and with DynamoDB forwarded to a closed loopback port.
pub fn edge_request(data: &[u8]) {
    let Some(request) = request(data) else { return };
    let (runtime, router) = edge();
    runtime.block_on(async {
        use tower::ServiceExt as _;
        let Ok(response) = router.clone().oneshot(request).await;
        let _ = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await;
    });
}

fn request(data: &[u8]) -> Option<axum::http::Request<axum::body::Body>> {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let head = std::str::from_utf8(&data[..split]).ok()?;
    let body = data.get(split + 2..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let (method, uri) = lines.next()?.split_once(' ')?;
    let mut builder = axum::http::Request::builder().method(method).uri(uri);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(axum::body::Body::from(body)).ok()
}

fn edge() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static EDGE: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    EDGE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let router = runtime.block_on(async {
            let naming = Naming::default();
            let text = include_str!("../../template.yaml");
            let model = crate::template::parse(text, &naming, &BTreeMap::new())
                .expect("the reference template resolves");
            let telemetry = Arc::new(crate::telemetry::Telemetry::new(Default::default()));
            let sqs = Arc::new(crate::sqs::SqsService::with_naming(
                &naming,
                model.queues.values().cloned(),
            ));
            let lambda = crate::lambda::LambdaService::start(
                Vec::new(),
                naming.clone(),
                Default::default(),
                telemetry.clone(),
                Arc::new(NoSink),
            )
            .expect("a Lambda service without functions");
            let gateway = crate::gateway::Gateway::new(
                model.websocket_apis.values().cloned(),
                naming.clone(),
                Default::default(),
                lambda.clone(),
                telemetry.clone(),
            );
            let edge = crate::edge::Edge::new(
                lambda,
                gateway,
                sqs,
                telemetry,
                "http://127.0.0.1:9".into(),
                None,
            );
            let _ = edge
                .cloudformation
                .set(crate::cloudformation::CloudFormation::new(
                    &model,
                    &naming.websocket_url,
                    &naming.edge_url,
                ));
            let _ = edge
                .stack_resources
                .set(crate::cloudformation::resources(&model));
            edge.router()
        });
        (runtime, router)
    })
}

struct NoSink;

impl crate::lambda::DeadLetterSink for NoSink {
    fn send(&self, _: &str, _: String, _: Vec<(String, String, String)>) -> Result<(), String> {
        Err("no queues while fuzzing".into())
    }
}
