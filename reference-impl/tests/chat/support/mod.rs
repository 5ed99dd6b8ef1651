//! Shared test fixtures: DynamoDB Local with the table from template.yaml, a recorder for
//! the other AWS endpoints, and `Deps` wired to both.
#![allow(dead_code)]

pub mod ddb_local;
pub mod recorder;
pub mod template;

use std::collections::HashMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use dynamowave_chat::aws::{Clients, Endpoints};
use dynamowave_chat::config::Settings;
use dynamowave_chat::deps::Deps;
use serde_json::{Value, json};
use yaml_serde::Value as Yaml;

pub use recorder::Recorder;

pub const STAGE: &str = "prod";

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "tests",
        ))
        .http_client(dynamowave_chat::aws::http_client())
        .load()
        .await
}

pub fn dynamodb(sdk: &SdkConfig, endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build(),
    )
}

/// Creates `name` in DynamoDB Local with ConnectionsTable's keys and indexes from template.yaml.
pub async fn create_table_from_template(client: &aws_sdk_dynamodb::Client, name: &str) {
    let t = template::template();
    let props = template::resource(&t, "ConnectionsTable")
        .get("Properties")
        .expect("ConnectionsTable has Properties");
    let text = |v: &Yaml, k: &str| v.get(k).and_then(Yaml::as_str).unwrap().to_string();
    let keys = |v: &Yaml| -> Vec<KeySchemaElement> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(text(k, "AttributeName"))
                    .key_type(KeyType::from(text(k, "KeyType").as_str()))
                    .build()
                    .unwrap()
            })
            .collect()
    };
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .set_key_schema(Some(keys(&props["KeySchema"])));
    for a in props["AttributeDefinitions"].as_sequence().unwrap() {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(a, "AttributeName"))
                .attribute_type(ScalarAttributeType::from(text(a, "AttributeType").as_str()))
                .build()
                .unwrap(),
        );
    }
    for g in props["GlobalSecondaryIndexes"].as_sequence().unwrap() {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(g, "IndexName"))
                .set_key_schema(Some(keys(&g["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            text(&g["Projection"], "ProjectionType").as_str(),
                        ))
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    req.send().await.expect("CreateTable in DynamoDB Local");
}

/// One test's world: its own table in the shared DynamoDB Local, its own recorder.
pub struct Chat {
    pub table: String,
    pub ddb: aws_sdk_dynamodb::Client,
    pub recorder: Recorder,
    pub sdk: SdkConfig,
}

impl Chat {
    pub async fn new() -> Chat {
        let local = ddb_local::shared();
        let sdk = sdk_config().await;
        let ddb = dynamodb(&sdk, &local.endpoint);
        let table = format!("connections-{}", uuid::Uuid::new_v4().simple());
        create_table_from_template(&ddb, &table).await;
        Chat {
            table,
            ddb,
            recorder: Recorder::start().await,
            sdk,
        }
    }

    pub fn dlq_url(&self) -> String {
        format!("{}/000000000000/chat-dlq", self.recorder.url)
    }

    /// Deps as a deployed function would have them, plus `overrides` of its environment.
    pub fn deps(&self, overrides: &[(&str, &str)]) -> Deps {
        let mut env: HashMap<String, String> = HashMap::from([
            ("TABLE_NAME".into(), self.table.clone()),
            ("BROADCAST_FUNCTION_NAME".into(), "chat-broadcast".into()),
            ("DLQ_URL".into(), self.dlq_url()),
            ("RETRY_BASE_MS".into(), "5".into()),
            ("RETRY_CAP_MS".into(), "40".into()),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), "chat-test".into()),
        ]);
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings");
        let endpoints = Endpoints {
            dynamodb: Some(ddb_local::shared().endpoint.clone()),
            lambda: Some(self.recorder.url.clone()),
            sqs: Some(self.recorder.url.clone()),
            connections: Some(format!("{}/{STAGE}", self.recorder.url)),
        };
        let clients = Clients::new(self.sdk.clone(), endpoints, &settings);
        Deps { settings, clients }
    }

    /// Every row of the table, as (connectionId -> attributes as strings).
    pub async fn rows(&self) -> HashMap<String, HashMap<String, String>> {
        let mut out = HashMap::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let attrs: HashMap<String, String> = item
                    .iter()
                    .map(|(k, v)| {
                        let s = v.as_s().or_else(|_| v.as_n()).cloned().unwrap_or_default();
                        (k.clone(), s)
                    })
                    .collect();
                out.insert(attrs["connectionId"].clone(), attrs);
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return out,
            }
        }
    }

    /// Writes connection rows directly, as $connect would have.
    pub async fn seed(&self, ids: &[String], room: Option<&str>) {
        for id in ids {
            let mut req = self
                .ddb
                .put_item()
                .table_name(&self.table)
                .item("connectionId", attr(id))
                .item(
                    "connectedAt",
                    aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
                );
            if let Some(room) = room {
                req = req.item("room", attr(room));
            }
            req.send().await.unwrap();
        }
    }
}

fn attr(s: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(s.to_string())
}

pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}=")).collect()
}

/// An API Gateway WebSocket proxy event, as the local stack or AWS would send it.
pub fn ws_event(
    route: &str,
    connection_id: &str,
    body: Option<&str>,
    query: &[(&str, &str)],
) -> Value {
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let query: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    json!({
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "requestId": uuid::Uuid::new_v4().to_string(),
            "messageDirection": "IN",
            "stage": STAGE,
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "apiId": "abc123",
            "connectedAt": 1_764_000_000_000_i64,
            "requestTimeEpoch": 1_764_000_000_500_i64,
            "identity": {"sourceIp": "127.0.0.1"}
        },
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "body": body,
        "isBase64Encoded": false
    })
}
