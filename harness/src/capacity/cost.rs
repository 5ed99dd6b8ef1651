//! The price model: what a point would cost on AWS, from the counts the point measured.
//! The formulas are written out in `FORMULAS` (capacity.json and the report carry them) and
//! README.md; the capacity test recomputes them independently from capacity.json.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::Prices;
use crate::report::Summary;

/// The formulas, as readers see them.
pub const FORMULAS: [(&str, &str); 10] = [
    (
        "apiGatewayMessages",
        "(messagesIn × ⌈inFrameBytes / unit⌉ + postsDelivered × ⌈outFrameBytes / unit⌉) / 10⁶ × messages_per_million; \
         messagesIn = chat messages sent + whoami frames; postsDelivered = @connections posts = AWS/ApiGateway MessageCount − messagesIn (MessageCount counts both directions); \
         inFrameBytes = message_size + the send template's bytes; outFrameBytes = message_size + outbound_envelope_bytes; unit = message_unit_bytes (32 KB)",
    ),
    (
        "apiGatewayConnectionMinutes",
        "connectionMinutes / 10⁶ × connection_minutes_per_million; connectionMinutes = Σ over the run's one-second intervals of open connections × interval length / 60",
    ),
    (
        "lambdaRequests",
        "Σ over functions of invocations / 10⁶ × requests_per_million",
    ),
    (
        "lambdaDuration",
        "Σ over functions of durationMsTotal / 1000 × MemorySize MB / 1024 (GB-seconds) × gb_second; durations unrounded (AWS rounds each invocation up to 1 ms)",
    ),
    (
        "dynamodbReads",
        "RRU = broadcasts × 1 (send-message's strongly consistent GetItem of the sender row, ≤ 4 KB) + broadcasts × 0.5 × ⌈(rowsRead / broadcasts) × row_bytes / 4096⌉ \
         (the eventually consistent Query of the room index, or Scan without rooms, per message); broadcasts = chat messages sent; \
         rowsRead = @connections posts (one per row returned; retries over-count slightly); cost = RRU / 10⁶ × read_request_units_per_million",
    ),
    (
        "dynamodbWrites",
        "WRU = (connects + disconnects) × (1 + 1 if rooms are used: the room-index is written too); connects = disconnects = clients connected (every client leaves by the run's end); \
         cost = WRU / 10⁶ × write_request_units_per_million",
    ),
    ("total", "the six costs above, summed"),
    ("perHour", "total × 3600 / the point's run duration (s)"),
    ("perMillionMessages", "total / chat messages sent × 10⁶"),
    (
        "growth",
        "rowsRead ≈ messages × connections per room: read units, Lambda duration and outbound messages all grow with connections × messages",
    ),
];

/// One function's share of a point.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUse {
    pub invocations: u64,
    pub duration_ms_total: f64,
    pub memory_mb: u32,
}

/// What a point measured that the price model reads.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub duration_s: f64,
    pub messages_sent: u64,
    pub whoami_sent: u64,
    pub units_per_message_in: u64,
    pub posts: u64,
    pub units_per_post: u64,
    pub connection_minutes: f64,
    pub connects: u64,
    pub disconnects: u64,
    pub rooms_used: bool,
    pub functions: BTreeMap<String, FunctionUse>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub api_message_units: u64,
    pub lambda_requests: u64,
    pub lambda_gb_seconds: f64,
    pub read_request_units: f64,
    pub write_request_units: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub api_gateway_messages: f64,
    pub api_gateway_connection_minutes: f64,
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub dynamodb_reads: f64,
    pub dynamodb_writes: f64,
    pub total: f64,
    pub per_hour: f64,
    /// None when the point sent no message.
    pub per_million_messages: Option<f64>,
}

fn units(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit).max(1)
}

/// The counts of a finished point, from its summary and the functions' memory sizes.
pub fn counts(
    summary: &Summary,
    plan: &crate::scenario::Plan,
    memory_mb: &BTreeMap<String, u32>,
    prices: &Prices,
) -> Counts {
    let unit = prices.api_gateway.message_unit_bytes;
    let template = plan.protocol.send.replace("{{payload}}", "\"\"").len() as u64;
    let size = plan.message_size as u64;
    let connected = summary.clients.connected;
    let telemetry = summary.telemetry.as_ref();
    let functions = telemetry
        .map(|t| {
            t.functions
                .iter()
                .map(|(name, f)| {
                    (
                        name.clone(),
                        FunctionUse {
                            invocations: f.invocations,
                            duration_ms_total: f.duration_ms_total,
                            memory_mb: memory_mb.get(name).copied().unwrap_or(0),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Counts {
        duration_s: summary.run.duration_s,
        messages_sent: summary.messages.written,
        whoami_sent: if plan.protocol.whoami.is_some() {
            connected
        } else {
            0
        },
        units_per_message_in: units(size + template, unit),
        posts: telemetry.map_or(0, |t| t.api.posts),
        units_per_post: units(size + prices.api_gateway.outbound_envelope_bytes, unit),
        connection_minutes: summary
            .intervals
            .iter()
            .map(|i| i.connected as f64 * i.length_s / 60.0)
            .sum(),
        connects: connected,
        disconnects: connected,
        rooms_used: plan.rooms.is_some(),
        functions,
    }
}

/// Usage and cost of a point, by `FORMULAS`.
pub fn price(c: &Counts, p: &Prices) -> (Usage, Cost) {
    let million = 1_000_000.0;
    let messages_in = c.messages_sent + c.whoami_sent;
    let delivered = c.posts;
    let api_message_units = messages_in * c.units_per_message_in + delivered * c.units_per_post;
    let lambda_requests: u64 = c.functions.values().map(|f| f.invocations).sum();
    let lambda_gb_seconds: f64 = c
        .functions
        .values()
        .map(|f| f.duration_ms_total / 1000.0 * f64::from(f.memory_mb) / 1024.0)
        .sum();
    let broadcasts = c.messages_sent;
    let read_request_units = if broadcasts == 0 {
        0.0
    } else {
        let rows_per = c.posts as f64 / broadcasts as f64;
        let per_query = 0.5 * (rows_per * p.dynamodb.row_bytes as f64 / 4096.0).ceil();
        broadcasts as f64 * (1.0 + per_query)
    };
    let write_request_units = (c.connects + c.disconnects) * (1 + u64::from(c.rooms_used));
    let usage = Usage {
        api_message_units,
        lambda_requests,
        lambda_gb_seconds,
        read_request_units,
        write_request_units,
    };
    let a = &p.api_gateway;
    let mut cost = Cost {
        api_gateway_messages: api_message_units as f64 / million * a.messages_per_million,
        api_gateway_connection_minutes: c.connection_minutes / million
            * a.connection_minutes_per_million,
        lambda_requests: lambda_requests as f64 / million * p.lambda.requests_per_million,
        lambda_duration: lambda_gb_seconds * p.lambda.gb_second,
        dynamodb_reads: read_request_units / million * p.dynamodb.read_request_units_per_million,
        dynamodb_writes: write_request_units as f64 / million
            * p.dynamodb.write_request_units_per_million,
        total: 0.0,
        per_hour: 0.0,
        per_million_messages: None,
    };
    cost.total = cost.api_gateway_messages
        + cost.api_gateway_connection_minutes
        + cost.lambda_requests
        + cost.lambda_duration
        + cost.dynamodb_reads
        + cost.dynamodb_writes;
    cost.per_hour = if c.duration_s > 0.0 {
        cost.total * 3600.0 / c.duration_s
    } else {
        0.0
    };
    cost.per_million_messages =
        (c.messages_sent > 0).then(|| cost.total / c.messages_sent as f64 * million);
    (usage, cost)
}
