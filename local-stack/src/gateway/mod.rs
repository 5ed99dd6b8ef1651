//! API Gateway for WebSocket APIs: the WebSocket endpoint (handshake through $connect,
//! route selection, error frames, limits, $disconnect), the @connections management API,
//! and GetStage/UpdateStage for throttling.

pub mod connections;
pub(crate) mod event;
pub mod stages;
pub mod throttle;
pub mod websocket;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::lambda::LambdaService;
use crate::model::{Naming, StageSpec, Throttle, WebSocketApiSpec};
use crate::telemetry::Telemetry;
use throttle::TokenBucket;

/// Limits and timings of the emulated API Gateway. Defaults are AWS's documented quotas
/// (aws-semantics A5/A6) unless noted.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Closed (1001) after this long without traffic; AWS: 10 min.
    pub idle_timeout: Duration,
    /// Closed (1001) after this long in all; AWS: 2 h.
    pub max_connection_duration: Duration,
    /// AWS: 32 KB per frame …
    pub max_frame_bytes: usize,
    /// … and 128 KB per message; larger is closed with 1009.
    pub max_message_bytes: usize,
    /// New connections per second per account; AWS: 500 (burst assumed equal).
    pub new_connections_per_second: f64,
    /// Account-level throttle shared by every route; AWS: 10,000 rps, burst 5,000.
    pub account_throttle: Throttle,
    /// Integration timeout; AWS: 29 s.
    pub integration_timeout: Duration,
    /// Frames a client may have waiting before @connections posts to it fail with 429
    /// LimitExceededException (AWS documents a client-side buffer, not its size).
    pub client_buffer_frames: usize,
    /// Added to each @connections call, standing in for the network hop to API Gateway
    /// that loopback does not have. Default 10 ms: an assumption, so local capacity plans
    /// are not optimistic; set 0 to measure the stack alone.
    pub connections_latency: Duration,
    /// Share (0–1) of @connections posts that fail with `post_failure_status`, for any
    /// chat, whatever its code: a local-stack fault (AWS has no such control; like
    /// LocalStack's chaos settings). Default 0.
    pub post_failure_share: f64,
    /// 429, 500 or 503 [U: the status such a failure has on AWS is whatever failed].
    pub post_failure_status: u16,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            idle_timeout: Duration::from_secs(600),
            max_connection_duration: Duration::from_secs(7_200),
            max_frame_bytes: 32 * 1024,
            max_message_bytes: 128 * 1024,
            new_connections_per_second: 500.0,
            account_throttle: Throttle {
                rate: 10_000.0,
                burst: 5_000,
            },
            integration_timeout: Duration::from_secs(29),
            client_buffer_frames: 1_024,
            connections_latency: Duration::from_millis(10),
            post_failure_share: 0.0,
            post_failure_status: 500,
        }
    }
}

/// What the writer task of a connection sends.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
}

/// One open WebSocket connection.
pub struct Connection {
    pub id: String,
    pub api_id: String,
    pub stage: String,
    pub connected_at_ms: i64,
    pub last_active_ms: AtomicI64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub tx: mpsc::Sender<Outbound>,
    /// Set by DELETE @connections: the connection loop closes the socket.
    pub close: Notify,
    pub closing: AtomicBool,
}

impl Connection {
    pub fn touch(&self) {
        self.last_active_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

/// Live throttling state of one stage.
struct StageState {
    spec: StageSpec,
    default_bucket: Option<TokenBucket>,
    route_buckets: BTreeMap<String, TokenBucket>,
    created: String,
    updated: String,
}

/// One WebSocket API with its stages.
pub struct Api {
    pub spec: WebSocketApiSpec,
    stages: Mutex<BTreeMap<String, StageState>>,
}

pub struct Gateway {
    pub settings: GatewaySettings,
    pub naming: Naming,
    pub apis: BTreeMap<String, Arc<Api>>,
    pub lambda: Arc<LambdaService>,
    pub telemetry: Arc<Telemetry>,
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    /// Ids that have answered a post with 410, to count repeats (telemetry only).
    gone: Mutex<std::collections::HashSet<String>>,
    account_bucket: Mutex<TokenBucket>,
    connect_bucket: Mutex<TokenBucket>,
}

impl Gateway {
    pub fn new(
        apis: impl IntoIterator<Item = WebSocketApiSpec>,
        naming: Naming,
        settings: GatewaySettings,
        lambda: Arc<LambdaService>,
        telemetry: Arc<Telemetry>,
    ) -> Arc<Self> {
        let now = chrono::Utc::now().to_rfc3339();
        let apis = apis
            .into_iter()
            .map(|spec| {
                let stages = spec
                    .stages
                    .values()
                    .map(|s| {
                        let state = StageState {
                            default_bucket: s.default_throttle.map(TokenBucket::new),
                            route_buckets: s
                                .route_throttles
                                .iter()
                                .map(|(k, t)| (k.clone(), TokenBucket::new(*t)))
                                .collect(),
                            spec: s.clone(),
                            created: now.clone(),
                            updated: now.clone(),
                        };
                        (s.name.clone(), state)
                    })
                    .collect();
                (
                    spec.api_id.clone(),
                    Arc::new(Api {
                        spec,
                        stages: Mutex::new(stages),
                    }),
                )
            })
            .collect();
        let rate = settings.new_connections_per_second;
        Arc::new(Gateway {
            account_bucket: Mutex::new(TokenBucket::new(settings.account_throttle)),
            connect_bucket: Mutex::new(TokenBucket::new(Throttle {
                rate,
                burst: rate.max(1.0) as u32,
            })),
            settings,
            naming,
            apis,
            lambda,
            telemetry,
            connections: Mutex::default(),
            gone: Mutex::default(),
        })
    }

    /// The API serving `stage` (stage names are unique across our APIs in practice; the
    /// first API that has it wins).
    pub fn api_for_stage(&self, stage: &str) -> Option<Arc<Api>> {
        self.apis
            .values()
            .find(|a| a.stages.lock().expect("stage lock").contains_key(stage))
            .cloned()
    }

    /// Takes a token for `route` on the stage (route setting, else the stage default) and
    /// from the account bucket; false = throttled.
    pub fn admit(&self, api: &Api, stage: &str, route: &str) -> bool {
        let stage_ok = {
            let mut stages = api.stages.lock().expect("stage lock");
            match stages.get_mut(stage) {
                Some(s) => match s.route_buckets.get_mut(route) {
                    Some(b) => b.try_take(),
                    None => s.default_bucket.as_mut().is_none_or(TokenBucket::try_take),
                },
                None => true,
            }
        };
        stage_ok && self.account_bucket.lock().expect("bucket lock").try_take()
    }

    pub fn admit_new_connection(&self) -> bool {
        self.connect_bucket.lock().expect("bucket lock").try_take()
    }

    /// Notes that `id` answered 410; false if it had already.
    pub fn note_gone(&self, id: &str) -> bool {
        self.gone.lock().expect("gone lock").insert(id.to_string())
    }

    pub fn connection(&self, id: &str) -> Option<Arc<Connection>> {
        self.connections
            .lock()
            .expect("connections lock")
            .get(id)
            .cloned()
    }

    fn register(&self, c: Arc<Connection>) {
        self.connections
            .lock()
            .expect("connections lock")
            .insert(c.id.clone(), c);
    }

    fn unregister(&self, id: &str) -> Option<Arc<Connection>> {
        self.connections
            .lock()
            .expect("connections lock")
            .remove(id)
    }

    pub fn open_connections(&self) -> usize {
        self.connections.lock().expect("connections lock").len()
    }

    /// Closes every connection (stack shutdown).
    pub fn close_all(&self) {
        for c in self.connections.lock().expect("connections lock").values() {
            c.closing.store(true, Ordering::SeqCst);
            c.close.notify_one();
        }
    }
}

/// An API Gateway-style connection id: 16 characters of base64 ending in `=`.
pub fn new_connection_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut id: String = (0..14)
        .map(|_| ALPHABET[rand::random_range(0..64)] as char)
        .collect();
    // The 15th character of 11 encoded bytes carries 4 bits, so it is one of 16 symbols.
    id.push(ALPHABET[rand::random_range(0..16) * 4] as char);
    id.push('=');
    id
}

/// A well-formed connection id: what AWS would parse (otherwise 400, not 410).
pub fn valid_connection_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}
