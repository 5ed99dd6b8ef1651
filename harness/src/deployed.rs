//! `run --stack NAME`: a deployed stack as the target, found through CloudFormation's
//! DescribeStackResources (any stack: functions, table, queue, WebSocket API and stage by
//! logical id) and its outputs (template.yaml's `WebSocketURL`, `DeadLetterQueueUrl`, …,
//! which override). Credentials and region come from the AWS SDK's usual chain;
//! `--endpoint-url` points every call elsewhere (a `dynamowave local up` edge answers both
//! calls for its own stack).

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_cloudformation::error::ProvideErrorMetadata;

use crate::error::HarnessError;
use crate::observe::Resources;
use std::collections::BTreeMap;

/// The output clients connect to.
pub const WEBSOCKET_OUTPUT: &str = "WebSocketURL";
/// The output naming the dead-letter queue, read back for the accounting.
pub const DLQ_OUTPUT: &str = "DeadLetterQueueUrl";
/// `--region`'s default; when the flag is left at it, AWS's own chain decides.
const DEFAULT_REGION: &str = "us-east-1";

/// What a deployed stack is made of: where clients connect, and what the checks read.
pub struct Deployed {
    pub websocket_url: String,
    pub region: String,
    /// The resources by logical name, then overridden by the outputs that name them.
    pub resources: Resources,
    /// Every output, by key; plus the resources under the reference template's output
    /// names where the stack has no such output (chaos and the retries check read these).
    pub outputs: BTreeMap<String, String>,
}

/// Which API, stage, table and queue of a stack the run reads when it has several.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The WebSocket URL to connect to instead of the `WebSocketURL` output.
    pub websocket_url: Option<String>,
    /// The DLQ's URL instead of the one found.
    pub dlq_url: Option<String>,
}

/// Finds `stack`: its resources through DescribeStackResources (logical id → physical id,
/// for any stack), its outputs through DescribeStacks (a fallback where the resources do
/// not say, and an override where they do). A missing stack, or no way to reach its
/// WebSocket API, is an error naming the stack; a missing DLQ only skips reading dead
/// letters, with a warning.
pub async fn resolve(
    stack: &str,
    region_flag: &str,
    endpoint: Option<&str>,
    overrides: &Overrides,
) -> Result<Deployed, HarnessError> {
    let local = endpoint.is_some_and(crate::aws::is_loopback);
    let region = region(region_flag, local).await;
    let sdk = sdk_config(&region, endpoint).await;
    let place = match endpoint {
        Some(e) => format!("{e} (region {region})"),
        None => format!("CloudFormation in {region}"),
    };
    let bad = |why: String| HarnessError::Usage(format!("--stack {stack}: {why}"));
    let failed = |op: &str, e: &dyn std::error::Error| {
        let hint = if local {
            "; is `dynamowave local up` running there?"
        } else {
            ""
        };
        bad(format!("{op} at {place} failed: {}{hint}", chain(e)))
    };

    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let described = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| match e.code() {
            Some("ValidationError") => bad(format!(
                "no such stack at {place}: {}",
                e.message().unwrap_or("it does not exist")
            )),
            _ => failed("DescribeStacks", &e),
        })?;
    let found = described
        .stacks()
        .iter()
        .find(|s| s.stack_name() == Some(stack) || s.stack_id() == Some(stack))
        .ok_or_else(|| bad(format!("DescribeStacks at {place} did not return it")))?;
    let mut outputs: BTreeMap<String, String> = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    let listed = cfn
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| failed("DescribeStackResources", &e))?;
    let rows: Vec<(String, String, String)> = listed
        .stack_resources()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                r.physical_resource_id()?.to_string(),
                r.resource_type()?.to_string(),
            ))
        })
        .collect();
    let mut resources = from_stack_resources(&rows);
    // The outputs our template writes name the same things; where they exist they win.
    let named = Resources::from_outputs(&outputs);
    resources.functions.extend(named.functions);
    resources.api = named.api.or(resources.api);
    if !named.tables.is_empty() {
        resources.tables = named.tables;
    }
    resources.dlq_url = overrides
        .dlq_url
        .clone()
        .or(named.dlq_url)
        .or(resources.dlq_url);

    let websocket_url = match (&overrides.websocket_url, outputs.get(WEBSOCKET_OUTPUT)) {
        (Some(url), _) | (None, Some(url)) => url.clone(),
        (None, None) => match (&resources.api, local) {
            // AWS's own form for a stage's URL; a local stack's is only in its outputs.
            (Some((api, stage)), false) => {
                format!("wss://{api}.execute-api.{region}.amazonaws.com/{stage}")
            }
            _ => {
                let status = found
                    .stack_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into());
                let keys: Vec<&str> = outputs.keys().map(String::as_str).collect();
                return Err(bad(format!(
                    "the stack (status {status}) has no output {WEBSOCKET_OUTPUT}, which clients connect to, and no AWS::ApiGatewayV2::Api with a stage to build it from; name it with --target wss://…; its outputs: {}",
                    if keys.is_empty() {
                        "none".into()
                    } else {
                        keys.join(", ")
                    }
                )));
            }
        },
    };
    if !websocket_url.starts_with("ws://") && !websocket_url.starts_with("wss://") {
        return Err(bad(format!(
            "its WebSocket URL is {websocket_url:?}, not a ws:// or wss:// URL"
        )));
    }
    if resources.dlq_url.is_none() {
        eprintln!(
            "warning: stack {stack} has no SQS queue or output {DLQ_OUTPUT}; dead letters will not be read"
        );
    }
    for (k, v) in resources.as_outputs() {
        outputs.entry(k).or_insert(v);
    }
    if let Some(url) = &resources.dlq_url {
        outputs.insert(DLQ_OUTPUT.into(), url.clone());
    }
    Ok(Deployed {
        websocket_url,
        region: region.to_string(),
        resources,
        outputs,
    })
}

/// Resources from DescribeStackResources rows (logical id, physical id, type): functions
/// by logical id less a `Function` suffix; the first WebSocket API and stage; tables; the
/// queue whose logical id says dead-letter (or the only queue).
pub fn from_stack_resources(rows: &[(String, String, String)]) -> Resources {
    fn of<'a>(
        rows: &'a [(String, String, String)],
        t: &'a str,
    ) -> impl Iterator<Item = &'a (String, String, String)> {
        rows.iter().filter(move |r| r.2 == t)
    }
    let functions = of(rows, "AWS::Lambda::Function")
        .chain(of(rows, "AWS::Serverless::Function"))
        .map(|(logical, physical, _)| {
            let name = logical.strip_suffix("Function").filter(|n| !n.is_empty());
            (name.unwrap_or(logical).to_string(), physical.clone())
        })
        .collect();
    let api = of(rows, "AWS::ApiGatewayV2::Api")
        .next()
        .map(|r| r.1.clone());
    let stage = of(rows, "AWS::ApiGatewayV2::Stage")
        .next()
        .map(|r| r.1.clone());
    let queues: Vec<&(String, String, String)> = of(rows, "AWS::SQS::Queue").collect();
    let dead = |l: &str| {
        let l = l.to_ascii_lowercase();
        l.contains("deadletter") || l.contains("dlq")
    };
    let dlq = queues
        .iter()
        .find(|r| dead(&r.0))
        .or(if queues.len() == 1 {
            queues.first()
        } else {
            None
        })
        .map(|r| r.1.clone());
    Resources {
        functions,
        api: api.zip(stage),
        tables: of(rows, "AWS::DynamoDB::Table")
            .map(|r| r.1.clone())
            .collect(),
        dlq_url: dlq,
    }
}

/// An error and its causes, one after another (the SDK's own Display says only
/// "dispatch failure").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        source = s.source();
    }
    out
}

/// `--region` when given; left at its default, AWS_REGION or the profile's region win (as
/// for the AWS CLI), so a deployed stack is looked for where the credentials point.
async fn region(flag: &str, local: bool) -> Region {
    if flag != DEFAULT_REGION || local {
        return Region::new(flag.to_string());
    }
    aws_config::default_provider::region::DefaultRegionChain::builder()
        .build()
        .region()
        .await
        .unwrap_or_else(|| Region::new(DEFAULT_REGION))
}

async fn sdk_config(region: &Region, endpoint: Option<&str>) -> SdkConfig {
    crate::aws::loader(region.clone(), endpoint)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(l: &str, p: &str, t: &str) -> (String, String, String) {
        (l.into(), p.into(), t.into())
    }

    #[test]
    fn any_stack_maps_by_logical_id() {
        let r = from_stack_resources(&[
            row(
                "ChatOnConnectFunction",
                "team-chat-OnConnect-X1",
                "AWS::Lambda::Function",
            ),
            row("Function", "team-chat-Fn-X2", "AWS::Lambda::Function"),
            row("ChatApi", "a1b2c3", "AWS::ApiGatewayV2::Api"),
            row("ProdStage", "prod", "AWS::ApiGatewayV2::Stage"),
            row("Rooms", "team-chat-Rooms", "AWS::DynamoDB::Table"),
            row("WorkQueue", "https://sqs/1/work", "AWS::SQS::Queue"),
            row("FanoutDLQ", "https://sqs/1/dlq", "AWS::SQS::Queue"),
            row("ChatRole", "team-chat-role", "AWS::IAM::Role"),
        ]);
        assert_eq!(r.functions["ChatOnConnect"], "team-chat-OnConnect-X1");
        assert_eq!(r.functions["Function"], "team-chat-Fn-X2");
        assert_eq!(r.api, Some(("a1b2c3".into(), "prod".into())));
        assert_eq!(r.tables, vec!["team-chat-Rooms".to_string()]);
        assert_eq!(r.dlq_url.as_deref(), Some("https://sqs/1/dlq"));
        // Two queues, neither named as a DLQ: none is guessed.
        let r = from_stack_resources(&[
            row("A", "https://sqs/1/a", "AWS::SQS::Queue"),
            row("B", "https://sqs/1/b", "AWS::SQS::Queue"),
        ]);
        assert_eq!(r.dlq_url, None);
    }
}
