//! The connections table: one item per open WebSocket connection.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::{ChatError, Result};
use crate::faults::FaultConfig;

pub const ATTR_ID: &str = "connectionId";
pub const ATTR_CONNECTED_AT: &str = "connectedAt";
pub const ATTR_ROOM: &str = "room";
pub const ATTR_EXPIRES_AT: &str = "expiresAt";
pub const ATTR_SOURCE_IP: &str = "sourceIp";

/// The key DynamoDB hands back to continue a Scan or Query.
pub type PageKey = HashMap<String, AttributeValue>;

#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: String,
    pub connected_at_ms: i64,
    pub room: Option<String>,
    /// Epoch seconds; the table's TTL attribute, so rows of vanished clients expire.
    pub expires_at: i64,
    pub source_ip: Option<String>,
}

impl Connection {
    pub fn new(
        id: &str,
        connected_at_ms: i64,
        room: Option<String>,
        ttl: Duration,
        source_ip: Option<String>,
    ) -> Self {
        Connection {
            id: id.to_string(),
            connected_at_ms,
            room,
            expires_at: connected_at_ms / 1000 + ttl.as_secs() as i64,
            source_ip,
        }
    }
}

#[derive(Clone)]
pub struct ConnectionStore {
    client: Client,
    table: String,
    room_index: String,
    page_limit: Option<i32>,
    faults: FaultConfig,
}

impl ConnectionStore {
    pub fn new(
        client: Client,
        table: &str,
        room_index: &str,
        page_limit: Option<i32>,
        faults: FaultConfig,
    ) -> Self {
        ConnectionStore {
            client,
            table: table.to_string(),
            room_index: room_index.to_string(),
            page_limit,
            faults,
        }
    }

    pub async fn put(&self, c: &Connection) -> Result<()> {
        self.inject("PutItem")?;
        let mut item = HashMap::from([
            (ATTR_ID.to_string(), s(&c.id)),
            (ATTR_CONNECTED_AT.to_string(), n(c.connected_at_ms)),
            (ATTR_EXPIRES_AT.to_string(), n(c.expires_at)),
        ]);
        if let Some(room) = &c.room {
            item.insert(ATTR_ROOM.to_string(), s(room));
        }
        if let Some(ip) = &c.source_ip {
            item.insert(ATTR_SOURCE_IP.to_string(), s(ip));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }

    /// Deletes a connection; deleting one that is not there succeeds (disconnect is idempotent).
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.inject("DeleteItem")?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(ATTR_ID, s(id))
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", e))?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Connection>> {
        self.inject("GetItem")?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ATTR_ID, s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item.as_ref().and_then(from_item))
    }

    /// One page of recipients: a Query on the room index for a room, else a Scan of the
    /// connections that joined no room. Callers follow the returned key until it is `None`.
    pub async fn recipients_page(
        &self,
        room: Option<&str>,
        start: Option<PageKey>,
    ) -> Result<(Vec<String>, Option<PageKey>)> {
        match room {
            Some(room) => {
                self.inject("Query")?;
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(&self.room_index)
                    .key_condition_expression("#r = :room")
                    .expression_attribute_names("#r", ATTR_ROOM)
                    .expression_attribute_values(":room", s(room))
                    .projection_expression("#id")
                    .expression_attribute_names("#id", ATTR_ID)
                    .set_limit(self.page_limit)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| store_error("Query", e))?;
                Ok((ids(out.items()), out.last_evaluated_key))
            }
            None => {
                self.inject("Scan")?;
                let out = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .filter_expression("attribute_not_exists(#r)")
                    .expression_attribute_names("#r", ATTR_ROOM)
                    .projection_expression("#id")
                    .expression_attribute_names("#id", ATTR_ID)
                    .set_limit(self.page_limit)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| store_error("Scan", e))?;
                Ok((ids(out.items()), out.last_evaluated_key))
            }
        }
    }

    fn inject(&self, operation: &'static str) -> Result<()> {
        if self.faults.dynamodb_throttled() {
            return Err(ChatError::Store {
                operation,
                message: "ProvisionedThroughputExceededException (injected by DYNAMOWAVE_FAULTS)"
                    .into(),
                throttled: true,
            });
        }
        Ok(())
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ids(items: &[HashMap<String, AttributeValue>]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| item.get(ATTR_ID)?.as_s().ok().cloned())
        .collect()
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Connection> {
    let num = |k: &str| item.get(k)?.as_n().ok()?.parse::<i64>().ok();
    let string = |k: &str| item.get(k)?.as_s().ok().cloned();
    Some(Connection {
        id: string(ATTR_ID)?,
        connected_at_ms: num(ATTR_CONNECTED_AT).unwrap_or_default(),
        room: string(ATTR_ROOM),
        expires_at: num(ATTR_EXPIRES_AT).unwrap_or_default(),
        source_ip: string(ATTR_SOURCE_IP),
    })
}

fn store_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> ChatError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let throttled = matches!(
        err.code(),
        Some(
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    );
    ChatError::Store {
        operation,
        message: crate::aws::describe(&err),
        throttled,
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
