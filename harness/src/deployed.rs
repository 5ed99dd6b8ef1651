//! `run --stack NAME`: a deployed SAM stack as the target, found through its CloudFormation
//! outputs (template.yaml's `WebSocketURL`, `DeadLetterQueueUrl`). Credentials and region
//! come from the AWS SDK's usual chain; `--endpoint-url` points both DescribeStacks and the
//! DLQ's SQS calls elsewhere (a `dynamowave local up` edge answers DescribeStacks for its
//! own stack).

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_cloudformation::error::ProvideErrorMetadata;

use crate::error::HarnessError;
use std::collections::BTreeMap;

/// The output clients connect to.
pub const WEBSOCKET_OUTPUT: &str = "WebSocketURL";
/// The output naming the dead-letter queue, read back for the accounting.
pub const DLQ_OUTPUT: &str = "DeadLetterQueueUrl";
/// `--region`'s default; when the flag is left at it, AWS's own chain decides.
const DEFAULT_REGION: &str = "us-east-1";

/// What a deployed stack's outputs say.
pub struct Deployed {
    pub websocket_url: String,
    pub region: String,
    /// Every output, by key (function names, API id, stage, the DLQ's URL).
    pub outputs: BTreeMap<String, String>,
}

/// The stack's outputs as a target. A missing stack or `WebSocketURL` output is an error
/// naming the stack and the output; a missing DLQ output only skips reading dead letters.
pub async fn resolve(
    stack: &str,
    region_flag: &str,
    endpoint: Option<&str>,
) -> Result<Deployed, HarnessError> {
    let local = endpoint.is_some_and(crate::aws::is_loopback);
    let region = region(region_flag, local).await;
    let sdk = sdk_config(&region, endpoint).await;
    let place = match endpoint {
        Some(e) => format!("{e} (region {region})"),
        None => format!("CloudFormation in {region}"),
    };
    let bad = |why: String| HarnessError::Usage(format!("--stack {stack}: {why}"));

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
            _ => {
                let hint = if local {
                    "; is `dynamowave local up` running there?"
                } else {
                    ""
                };
                bad(format!(
                    "DescribeStacks at {place} failed: {}{hint}",
                    chain(&e)
                ))
            }
        })?;
    let found = described
        .stacks()
        .iter()
        .find(|s| s.stack_name() == Some(stack) || s.stack_id() == Some(stack))
        .ok_or_else(|| bad(format!("DescribeStacks at {place} did not return it")))?;
    let outputs: Vec<(&str, &str)> = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?, o.output_value()?)))
        .collect();
    let output = |key: &str| {
        outputs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let websocket_url = output(WEBSOCKET_OUTPUT).ok_or_else(|| {
        let status = found
            .stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "unknown".into());
        let keys: Vec<&str> = outputs.iter().map(|(k, _)| *k).collect();
        bad(format!(
            "the stack (status {status}) has no output {WEBSOCKET_OUTPUT}, which clients connect to; its outputs: {}",
            if keys.is_empty() {
                "none".into()
            } else {
                keys.join(", ")
            }
        ))
    })?;
    if !websocket_url.starts_with("ws://") && !websocket_url.starts_with("wss://") {
        return Err(bad(format!(
            "its output {WEBSOCKET_OUTPUT} is {websocket_url:?}, not a ws:// or wss:// URL"
        )));
    }
    if output(DLQ_OUTPUT).is_none() {
        eprintln!(
            "warning: stack {stack} has no output {DLQ_OUTPUT}; dead letters will not be read"
        );
    }
    Ok(Deployed {
        websocket_url,
        region: region.to_string(),
        outputs: outputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
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
