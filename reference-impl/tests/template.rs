//! template.yaml is the chat's contract: checked here for least privilege, reserved
//! concurrency on every function, and the resources the design requires.

#[path = "chat/support/template.rs"]
mod support;

use std::collections::BTreeSet;

use dynamowave_chat::Function;
use support::{resource, template, untag};
use yaml_serde::Value;

/// Every IAM `Action` anywhere that is a wildcard, plus every `NotAction`, as paths.
fn wildcard_actions(v: &Value, path: &str, out: &mut Vec<String>) {
    match untag(v) {
        Value::Mapping(m) => {
            for (k, child) in m {
                let key = k.as_str().unwrap_or_default();
                let here = format!("{path}.{key}");
                if key == "NotAction" {
                    out.push(here.clone());
                }
                if key == "Action" {
                    let actions: Vec<&Value> = match untag(child) {
                        Value::Sequence(s) => s.iter().collect(),
                        other => vec![other],
                    };
                    for a in actions {
                        if a.as_str().is_none_or(|s| s.contains('*')) {
                            out.push(format!("{here}: {a:?}"));
                        }
                    }
                }
                wildcard_actions(child, &here, out);
            }
        }
        Value::Sequence(s) => {
            for (i, child) in s.iter().enumerate() {
                wildcard_actions(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r))
        .collect()
}

/// Functions without ReservedConcurrentExecutions, or with IAM beyond inline statements
/// on named resources (managed policies and SAM policy templates hide their actions).
fn policy_problems(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (name, f) in functions(t) {
        let props = &f["Properties"];
        if props.get("ReservedConcurrentExecutions").is_none() {
            out.push(format!("{name}: no ReservedConcurrentExecutions"));
        }
        for p in props["Policies"].as_sequence().into_iter().flatten() {
            let Some(statements) = p.get("Statement").and_then(Value::as_sequence) else {
                out.push(format!(
                    "{name}: policy {p:?} is not an inline statement list"
                ));
                continue;
            };
            for s in statements {
                // `!If [cond, statement, !Ref AWS::NoValue]` wraps conditional statements.
                let s = match untag(s) {
                    Value::Sequence(branches) => &branches[1],
                    other => other,
                };
                if untag(&s["Resource"]).as_str() == Some("*") {
                    out.push(format!("{name}: a statement on Resource \"*\""));
                }
            }
        }
    }
    out
}

#[test]
fn no_wildcard_actions_anywhere() {
    let mut found = Vec::new();
    wildcard_actions(&template(), "", &mut found);
    assert!(found.is_empty(), "wildcard actions: {found:#?}");
}

#[test]
fn every_function_has_reserved_concurrency_and_inline_least_privilege() {
    let problems = policy_problems(&template());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_checks_catch_what_they_look_for() {
    let bad: Value = yaml_serde::from_str(
        r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - AmazonDynamoDBFullAccess
        - Statement:
            - {Effect: Allow, Action: "dynamodb:*", Resource: "*"}
            - {Effect: Allow, Action: [sqs:SendMessage, "s3:Get*"], Resource: !Ref Q}
            - {Effect: Allow, NotAction: [iam:PassRole], Resource: !Ref Q}
"#,
    )
    .unwrap();
    let mut found = Vec::new();
    wildcard_actions(&bad, "", &mut found);
    assert_eq!(found.len(), 3, "{found:#?}");
    let problems = policy_problems(&bad);
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

#[test]
fn functions_build_the_binaries_of_this_crate() {
    let t = template();
    let built: BTreeSet<String> = functions(&t)
        .into_iter()
        .map(|(name, f)| {
            assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
            assert_eq!(f["Properties"]["CodeUri"], "./reference-impl", "{name}");
            f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let ours: BTreeSet<String> = Function::ALL
        .iter()
        .map(|f| f.binary().to_string())
        .collect();
    assert_eq!(built, ours);
    assert_eq!(t["Globals"]["Function"]["Runtime"], "provided.al2023");
}

#[test]
fn the_data_layer_is_durable_and_encrypted() {
    let t = template();
    let table = &resource(&t, "ConnectionsTable")["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["SSESpecification"]["SSEType"], "KMS");
    assert!(table["SSESpecification"].get("KMSMasterKeyId").is_some());
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        "expiresAt"
    );
    assert_eq!(
        table["GlobalSecondaryIndexes"][0]["IndexName"],
        "room-index"
    );
    let dlq = &resource(&t, "DeadLetterQueue")["Properties"];
    assert!(dlq.get("KmsMasterKeyId").is_some());
    assert_eq!(
        resource(&t, "ChatKey")["Properties"]["EnableKeyRotation"],
        true
    );
}

#[test]
fn routes_stage_throttling_async_config_and_schedule() {
    let t = template();
    assert_eq!(
        resource(&t, "WebSocketApi")["Properties"]["RouteSelectionExpression"],
        "$request.body.action"
    );
    let keys: BTreeSet<&str> = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::ApiGatewayV2::Route")
        .map(|r| r["Properties"]["RouteKey"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["$connect", "$disconnect", "$default", "sendMessage"])
    );
    let throttle = &resource(&t, "Stage")["Properties"]["DefaultRouteSettings"];
    assert!(
        throttle.get("ThrottlingRateLimit").is_some()
            && throttle.get("ThrottlingBurstLimit").is_some()
    );

    let broadcast = &resource(&t, "BroadcastFunction")["Properties"];
    assert_eq!(broadcast["DeadLetterQueue"]["Type"], "SQS");
    assert!(
        broadcast["EventInvokeConfig"]
            .get("MaximumRetryAttempts")
            .is_some()
    );
    assert!(
        broadcast["EventInvokeConfig"]
            .get("MaximumEventAgeInSeconds")
            .is_some()
    );
    let warmer = &resource(&t, "WarmerFunction")["Properties"];
    assert_eq!(warmer["Events"]["WarmSchedule"]["Type"], "Schedule");
    assert!(
        warmer["Environment"]["Variables"]
            .get("WARMER_TARGETS")
            .is_some()
    );
}

#[test]
fn outputs_name_everything_the_harness_needs() {
    let t = template();
    for key in [
        "WebSocketURL",
        "ConnectionsURL",
        "ConnectionsTableName",
        "DeadLetterQueueUrl",
        "ConnectFunctionName",
        "DisconnectFunctionName",
        "DefaultFunctionName",
        "SendMessageFunctionName",
        "BroadcastFunctionName",
        "WarmerFunctionName",
    ] {
        assert!(t["Outputs"].get(key).is_some(), "missing output {key}");
    }
}
