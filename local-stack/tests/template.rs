//! template.yaml -> StackModel, against the repository's real template.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dynamowave_local::LocalError;
use dynamowave_local::model::{Code, FunctionSpec, Naming, Schedule, StackModel, Throttle};
use dynamowave_local::template;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
const DLQ_URL: &str = "http://127.0.0.1:4566/000000000000/dynamowave-DeadLetterQueue";

fn naming() -> Naming {
    Naming {
        edge_url: "http://127.0.0.1:4566".into(),
        ..Naming::default()
    }
}

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn try_load(pairs: &[(&str, &str)]) -> Result<StackModel, LocalError> {
    template::load(Path::new(TEMPLATE), &naming(), &overrides(pairs))
}

fn load_with(pairs: &[(&str, &str)]) -> StackModel {
    try_load(pairs).expect("template.yaml loads")
}

fn load() -> StackModel {
    load_with(&[])
}

fn function<'m>(model: &'m StackModel, id: &str) -> &'m FunctionSpec {
    model
        .functions
        .get(id)
        .unwrap_or_else(|| panic!("{id} is modelled"))
}

fn env<'m>(model: &'m StackModel, id: &str, var: &str) -> &'m str {
    function(model, id)
        .environment
        .get(var)
        .unwrap_or_else(|| panic!("{id} has {var}"))
}

/// The (at, message) of a template error; anything else fails the test.
fn template_error(result: Result<StackModel, LocalError>) -> (String, String) {
    match result {
        Err(LocalError::Template { at, message }) => (at, message),
        other => panic!("expected a template error, got {other:?}"),
    }
}

#[test]
fn send_message_environment_resolves_refs_and_globals() {
    let model = load();
    let broadcast = &function(&model, "BroadcastFunction").name;
    assert_eq!(broadcast, "dynamowave-BroadcastFunction");
    assert_eq!(
        env(&model, "SendMessageFunction", "BROADCAST_FUNCTION_NAME"),
        broadcast
    );
    assert_eq!(env(&model, "SendMessageFunction", "DLQ_URL"), DLQ_URL);
    assert_eq!(model.queues["DeadLetterQueue"].url, DLQ_URL);
    let table = &model.tables["ConnectionsTable"].name;
    assert_eq!(env(&model, "SendMessageFunction", "TABLE_NAME"), table);
    assert_eq!(
        env(&model, "SendMessageFunction", "ROOM_INDEX_NAME"),
        "room-index"
    );
    assert_eq!(env(&model, "SendMessageFunction", "FANOUT_MODE"), "async");
    assert_eq!(
        env(&model, "SendMessageFunction", "MAX_MESSAGE_BYTES"),
        "32768"
    );
    // Globals' variables merge under the function's own.
    assert_eq!(
        env(&model, "ConnectFunction", "CONNECTION_TTL_SECONDS"),
        "10800"
    );
    assert_eq!(env(&model, "ConnectFunction", "TABLE_NAME"), table);
}

#[test]
fn fanout_override_switches_mode_and_the_if_timeout() {
    assert_eq!(
        function(&load(), "SendMessageFunction").timeout,
        Duration::from_secs(10)
    );
    let model = load_with(&[("FanoutMode", "inline")]);
    assert_eq!(env(&model, "SendMessageFunction", "FANOUT_MODE"), "inline");
    assert_eq!(
        function(&model, "SendMessageFunction").timeout,
        Duration::from_secs(30)
    );
    assert_eq!(model.parameters["FanoutMode"], "inline");
}

#[test]
fn warmer_targets_and_schedule() {
    let model = load();
    assert_eq!(
        env(&model, "WarmerFunction", "WARMER_TARGETS"),
        "dynamowave-ConnectFunction=2,dynamowave-SendMessageFunction=2,dynamowave-BroadcastFunction=2"
    );
    let schedules = &function(&model, "WarmerFunction").schedules;
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].name, "WarmSchedule");
    assert_eq!(
        schedules[0].expression,
        Schedule::Rate(Duration::from_secs(300))
    );
    assert!(schedules[0].enabled);
    assert_eq!(
        schedules[0].input.as_deref(),
        Some(r#"{"source":"dynamowave.warmer"}"#)
    );

    let three = load_with(&[("WarmConcurrency", "3")]);
    assert!(
        env(&three, "WarmerFunction", "WARMER_TARGETS")
            .starts_with("dynamowave-ConnectFunction=3,")
    );
    // Disabled: no schedule, and nothing to warm even when invoked by hand.
    let off = load_with(&[("WarmerEnabled", "false"), ("WarmConcurrency", "3")]);
    assert!(!function(&off, "WarmerFunction").schedules[0].enabled);
    assert_eq!(env(&off, "WarmerFunction", "WARMER_TARGETS"), "");
}

#[test]
fn warmer_schedule_parameter_accepts_cron() {
    let model = load_with(&[("WarmerSchedule", "cron(0/5 * * * ? *)")]);
    let schedule = &function(&model, "WarmerFunction").schedules[0];
    assert_eq!(schedule.expression, Schedule::Cron("0/5 * * * ? *".into()));
}

#[test]
fn reserved_concurrency_follows_parameters() {
    let model = load();
    let reserved = |id| function(&model, id).reserved_concurrency;
    assert_eq!(reserved("ConnectFunction"), Some(20));
    assert_eq!(reserved("DisconnectFunction"), Some(10));
    assert_eq!(reserved("DefaultFunction"), Some(5));
    assert_eq!(reserved("SendMessageFunction"), Some(50));
    assert_eq!(reserved("BroadcastFunction"), Some(50));
    assert_eq!(reserved("WarmerFunction"), Some(1));
    let model = load_with(&[("ConnectReservedConcurrency", "7")]);
    assert_eq!(
        function(&model, "ConnectFunction").reserved_concurrency,
        Some(7)
    );
}

#[test]
fn broadcast_and_connect_settings() {
    let model = load();
    let broadcast = function(&model, "BroadcastFunction");
    assert_eq!(broadcast.code, Code::Binary("broadcast".into()));
    assert_eq!(
        broadcast.dead_letter_queue.as_deref(),
        Some("DeadLetterQueue")
    );
    assert_eq!(broadcast.on_failure_queue, None);
    assert_eq!(broadcast.max_retry_attempts, 2);
    assert_eq!(broadcast.max_event_age, Duration::from_secs(3600));
    assert_eq!(broadcast.timeout, Duration::from_secs(30));
    assert_eq!(broadcast.memory_mb, 512);
    assert_eq!(
        broadcast.arn,
        "arn:aws:lambda:us-east-1:000000000000:function:dynamowave-BroadcastFunction"
    );
    let connect = function(&model, "ConnectFunction");
    assert_eq!(connect.timeout, Duration::from_secs(10));
    assert_eq!(connect.memory_mb, 256);
    assert_eq!(connect.max_event_age, Duration::from_secs(21600));
    assert_eq!(connect.dead_letter_queue, None);
    let binaries: Vec<&str> = model
        .functions
        .values()
        .map(|f| match &f.code {
            Code::Binary(b) => b.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        binaries,
        [
            "broadcast",
            "connect",
            "default",
            "disconnect",
            "send-message",
            "warmer"
        ]
    );
}

#[test]
fn websocket_api_routes_and_stage() {
    let model = load();
    assert_eq!(model.websocket_apis.len(), 1);
    let api = &model.websocket_apis["WebSocketApi"];
    assert_eq!(api.name, "dynamowave-chat");
    assert_eq!(api.route_selection_expression, "$request.body.action");
    assert_eq!(api.api_id.len(), 10);
    assert!(
        api.api_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    let routes: Vec<(&str, &str)> = api
        .routes
        .iter()
        .map(|(key, route)| (key.as_str(), route.function.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            ("$connect", "ConnectFunction"),
            ("$default", "DefaultFunction"),
            ("$disconnect", "DisconnectFunction"),
            ("sendMessage", "SendMessageFunction"),
        ]
    );
    let stage = &api.stages["prod"];
    assert_eq!(
        stage.default_throttle,
        Some(Throttle {
            rate: 500.0,
            burst: 1000
        })
    );
    assert!(stage.route_throttles.is_empty());

    let model = load_with(&[("StageName", "dev"), ("ThrottlingRateLimit", "50")]);
    let stage = &model.websocket_apis["WebSocketApi"].stages["dev"];
    assert_eq!(
        stage.default_throttle,
        Some(Throttle {
            rate: 50.0,
            burst: 1000
        })
    );
}

#[test]
fn connections_table() {
    let model = load();
    let table = &model.tables["ConnectionsTable"];
    assert_eq!(table.name, "dynamowave-ConnectionsTable");
    assert_eq!(
        table.arn,
        "arn:aws:dynamodb:us-east-1:000000000000:table/dynamowave-ConnectionsTable"
    );
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        table.attributes,
        [pair("connectionId", "S"), pair("room", "S")]
    );
    assert_eq!(table.key_schema, [pair("connectionId", "HASH")]);
    assert_eq!(table.global_secondary_indexes.len(), 1);
    let index = &table.global_secondary_indexes[0];
    assert_eq!(index.name, "room-index");
    assert_eq!(index.key_schema, [pair("room", "HASH")]);
    assert_eq!(index.projection_type, "KEYS_ONLY");
    assert_eq!(table.ttl_attribute.as_deref(), Some("expiresAt"));
    assert_eq!(table.billing_mode, "PAY_PER_REQUEST");
}

#[test]
fn dead_letter_queue() {
    let queue = &load().queues["DeadLetterQueue"];
    assert_eq!(queue.name, "dynamowave-DeadLetterQueue");
    assert_eq!(
        queue.arn,
        "arn:aws:sqs:us-east-1:000000000000:dynamowave-DeadLetterQueue"
    );
    assert_eq!(queue.retention, Duration::from_secs(1_209_600));
    assert_eq!(queue.visibility_timeout, Duration::from_secs(30));
    assert!(!queue.fifo);
}

#[test]
fn outputs_and_parameters() {
    let model = load();
    let api_id = &model.websocket_apis["WebSocketApi"].api_id;
    assert_eq!(
        model.outputs["WebSocketURL"],
        format!("wss://{api_id}.execute-api.us-east-1.amazonaws.com/prod")
    );
    assert_eq!(model.outputs["DeadLetterQueueUrl"], DLQ_URL);
    assert_eq!(model.outputs["WebSocketApiId"], *api_id);
    assert_eq!(model.outputs.len(), 13);
    assert_eq!(model.parameters["MaxMessageBytes"], "32768");
    assert_eq!(model.parameters["WarmerSchedule"], "rate(5 minutes)");
}

#[test]
fn names_follow_the_stack_name_and_are_deterministic() {
    let other = Naming {
        stack_name: "other".into(),
        region: "eu-west-1".into(),
        ..naming()
    };
    let model = template::load(Path::new(TEMPLATE), &other, &BTreeMap::new()).expect("loads");
    let connect = function(&model, "ConnectFunction");
    assert_eq!(connect.name, "other-ConnectFunction");
    assert_eq!(
        connect.arn,
        "arn:aws:lambda:eu-west-1:000000000000:function:other-ConnectFunction"
    );
    assert_ne!(
        model.websocket_apis["WebSocketApi"].api_id,
        load().websocket_apis["WebSocketApi"].api_id
    );
    assert_eq!(load(), load());
}

#[test]
fn parameter_override_outside_allowed_values_is_an_error() {
    let (at, message) = template_error(try_load(&[("FanoutMode", "sideways")]));
    assert_eq!(at, "Parameters.FanoutMode");
    assert!(message.contains("\"FanoutMode\""), "{message}");
    assert!(
        message.contains("AllowedValues: async, inline"),
        "{message}"
    );
}

#[test]
fn unknown_override_is_an_error() {
    let (at, message) = template_error(try_load(&[("FanOutMode", "inline")]));
    assert_eq!(at, "Parameters");
    assert!(
        message.contains("override \"FanOutMode\" names no parameter"),
        "{message}"
    );
}

#[test]
fn parameter_constraints_are_checked() {
    let (_, message) = template_error(try_load(&[("MaxMessageBytes", "200000")]));
    assert!(
        message.contains("greater than MaxValue 126976"),
        "{message}"
    );
    let (_, message) = template_error(try_load(&[("ConnectReservedConcurrency", "lots")]));
    assert!(message.contains("\"lots\" is not a number"), "{message}");
    let (at, message) = template_error(try_load(&[("StageName", "no spaces")]));
    assert_eq!(at, "Parameters.StageName");
    assert!(
        message.contains("does not match AllowedPattern"),
        "{message}"
    );
    let (_, message) = template_error(try_load(&[("BroadcastMaximumEventAgeInSeconds", "59")]));
    assert!(message.contains("less than MinValue 60"), "{message}");
}

#[test]
fn a_missing_file_is_a_read_error() {
    let missing = Path::new("/nonexistent/template.yaml");
    match template::load(missing, &naming(), &BTreeMap::new()) {
        Err(LocalError::TemplateRead { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected a read error, got {other:?}"),
    }
}
