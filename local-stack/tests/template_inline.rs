//! template::parse on small inline templates: intrinsics, conditions, and every error
//! naming what is wrong and where.

use std::collections::BTreeMap;
use std::time::Duration;

use dynamowave_local::LocalError;
use dynamowave_local::model::{Naming, Schedule, StackModel, Throttle};
use dynamowave_local::template;

fn parse_with(yaml: &str, pairs: &[(&str, &str)]) -> Result<StackModel, LocalError> {
    let overrides = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    template::parse(yaml, &Naming::default(), &overrides)
}

fn parse(yaml: &str) -> StackModel {
    parse_with(yaml, &[]).expect("template resolves")
}

fn error_with(yaml: &str, pairs: &[(&str, &str)]) -> (String, String) {
    match parse_with(yaml, pairs) {
        Err(LocalError::Template { at, message }) => (at, message),
        other => panic!("expected a template error, got {other:?}"),
    }
}

fn error(yaml: &str) -> (String, String) {
    error_with(yaml, &[])
}

/// A SAM template with one function `Fn` whose Properties are `props` (indented 6).
fn with_function(resources: &str, props: &str) -> String {
    format!(
        "Transform: AWS::Serverless-2016-10-31
Resources:
{resources}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {{BuildProperties: {{Binary: fn}}}}
    Properties:
{props}
"
    )
}

#[test]
fn unknown_ref_names_the_target_and_the_path() {
    let yaml = with_function("", "      Environment: {Variables: {X: !Ref Nope}}");
    let (at, message) = error(&yaml);
    assert_eq!(at, "Resources.Fn.Properties.Environment.Variables.X");
    assert!(message.contains("Ref Nope"), "{message}");
    assert!(
        message.contains("no parameter, resource or pseudo parameter"),
        "{message}"
    );
}

#[test]
fn import_value_is_unsupported_wherever_it_is() {
    let yaml = with_function(
        "",
        "      Environment: {Variables: {DLQ_URL: !ImportValue shared-dlq}}",
    );
    let (at, message) = error(&yaml);
    assert_eq!(at, "Resources.Fn.Properties.Environment.Variables.DLQ_URL");
    assert!(
        message.contains("Fn::ImportValue \"shared-dlq\" is not supported"),
        "{message}"
    );

    // Resources the local stack does not model are evaluated too, long form included.
    let alarm = "  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics: [{Id: m, Label: {\"Fn::GetAZs\": \"\"}}]";
    let (at, message) = error(&with_function(alarm, "      Timeout: 3"));
    assert_eq!(at, "Resources.Alarm.Properties.Metrics[0].Label");
    assert!(message.contains("Fn::GetAZs"), "{message}");
}

#[test]
fn get_att_of_an_unknown_attribute_names_it() {
    let queue = "  Queue: {Type: AWS::SQS::Queue}";
    let yaml = with_function(
        queue,
        "      Environment: {Variables: {Q: !GetAtt Queue.Nope}}",
    );
    let (at, message) = error(&yaml);
    assert_eq!(at, "Resources.Fn.Properties.Environment.Variables.Q");
    assert!(message.contains("Fn::GetAtt Queue.Nope"), "{message}");
    assert!(message.contains("no attribute \"Nope\""), "{message}");
    assert!(message.contains("Arn, QueueName, QueueUrl"), "{message}");
}

#[test]
fn a_function_without_a_binary_or_runtime_is_an_error() {
    let yaml = "Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {Timeout: 3}
";
    let (at, message) = error(yaml);
    assert_eq!(at, "Resources.Fn.Properties.Runtime");
    assert!(
        message.contains("function Fn has neither a Runtime nor Metadata.BuildProperties.Binary"),
        "{message}"
    );
}

#[test]
fn a_parameter_without_default_or_override_is_an_error() {
    let yaml = "Parameters:
  Env: {Type: String}
Resources:
  Queue: {Type: AWS::SQS::Queue, Properties: {QueueName: !Sub '${Env}-jobs'}}
";
    let (at, message) = error(yaml);
    assert_eq!(at, "Parameters.Env");
    assert!(message.contains("\"Env\" has no Default"), "{message}");
    let model = parse_with(yaml, &[("Env", "dev")]).expect("an override gives the value");
    assert_eq!(model.queues["Queue"].name, "dev-jobs");
}

const INTRINSICS: &str = "Transform: AWS::Serverless-2016-10-31
Parameters:
  Env: {Type: String, Default: prod}
  Zones: {Type: CommaDelimitedList, Default: 'a,b,c'}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: {'Fn::Not': [{Condition: IsProd}]}
  Both: !And [!Condition IsProd, !Equals ['1', 1]]
  Either: {'Fn::Or': [!Condition NotProd, !Equals [a, b]]}
Mappings:
  Sizes: {prod: {memory: 1024}}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: jobs.fifo, FifoQueue: 'true', VisibilityTimeout: 60}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
    Properties:
      MemorySize: !FindInMap [Sizes, !Ref Env, memory]
      Environment:
        Variables:
          SUB: !Sub '${AWS::Region}/${AWS::AccountId}/${AWS::StackName}/${Queue.QueueName}/${!Literal}/${Env}'
          SUB_VARS: {'Fn::Sub': ['${A}-${Env}', {A: {Ref: Queue}}]}
          JOIN: !Join ['+', !Ref Zones]
          SELECT: {'Fn::Select': ['1', {'Fn::Split': [',', 'x,y,z']}]}
          GETATT_LIST: {'Fn::GetAtt': [Queue, Arn]}
          BOTH: !If [Both, 'y', 'n']
          EITHER: !If [Either, 'y', 'n']
          NUMBER: 42
          BOOL: true
          GONE: !If [IsProd, !Ref AWS::NoValue, here]
          SUFFIX: !Join ['', [!Ref AWS::Partition, '.', !Ref AWS::URLSuffix, !If [IsProd, !Ref AWS::NoValue, '!']]]
";

#[test]
fn intrinsics_in_short_and_long_form() {
    let model = parse(INTRINSICS);
    let f = &model.functions["Fn"];
    let env = |k: &str| f.environment.get(k).map(String::as_str);
    assert_eq!(
        env("SUB"),
        Some("us-east-1/000000000000/dynamowave/jobs.fifo/${Literal}/prod")
    );
    assert_eq!(
        env("SUB_VARS"),
        Some("http://127.0.0.1:4566/000000000000/jobs.fifo-prod")
    );
    assert_eq!(env("JOIN"), Some("a+b+c"));
    assert_eq!(env("SELECT"), Some("y"));
    assert_eq!(
        env("GETATT_LIST"),
        Some("arn:aws:sqs:us-east-1:000000000000:jobs.fifo")
    );
    assert_eq!(env("BOTH"), Some("y"));
    assert_eq!(env("EITHER"), Some("n"));
    assert_eq!(env("NUMBER"), Some("42"));
    assert_eq!(env("BOOL"), Some("true"));
    assert_eq!(env("GONE"), None, "AWS::NoValue removes the key");
    assert_eq!(
        env("SUFFIX"),
        Some("aws.amazonaws.com"),
        "and the list item"
    );
    assert_eq!(f.memory_mb, 1024);
    assert_eq!(f.timeout, Duration::from_secs(3), "SAM's default");
    let queue = &model.queues["Queue"];
    assert!(queue.fifo);
    assert_eq!(queue.visibility_timeout, Duration::from_secs(60));
    assert_eq!(queue.retention, Duration::from_secs(345_600));

    let dev = parse_with(INTRINSICS, &[("Env", "dev")]);
    let (at, message) = match dev {
        Err(LocalError::Template { at, message }) => (at, message),
        other => panic!("expected a FindInMap error, got {other:?}"),
    };
    assert_eq!(at, "Resources.Fn.Properties.MemorySize");
    assert!(
        message.contains("Fn::FindInMap [Sizes, dev, memory]"),
        "{message}"
    );
}

const CONDITIONAL: &str = "Parameters:
  WithQueue: {Type: String, Default: 'no', AllowedValues: ['yes', 'no']}
Conditions:
  HasQueue: !Equals [!Ref WithQueue, 'yes']
  Unused: !Equals [!ImportValue x, y]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Condition: HasQueue
    Properties: {QueueName: !ImportValue shared-name}
  Other: {Type: AWS::SQS::Queue}
Outputs:
  QueueUrl: {Condition: HasQueue, Value: !Ref Queue}
  Other: {Value: !GetAtt Other.QueueName}
";

#[test]
fn only_what_is_created_is_evaluated() {
    let model = parse(CONDITIONAL);
    assert_eq!(model.queues.keys().collect::<Vec<_>>(), ["Other"]);
    assert_eq!(model.outputs.len(), 1);
    assert_eq!(model.outputs["Other"], "dynamowave-Other");
    let (at, message) = error_with(CONDITIONAL, &[("WithQueue", "yes")]);
    assert_eq!(at, "Resources.Queue.Properties.QueueName");
    assert!(
        message.contains("Fn::ImportValue \"shared-name\""),
        "{message}"
    );
}

#[test]
fn a_ref_to_a_resource_that_is_not_created_is_an_error() {
    let yaml = CONDITIONAL.replace("QueueUrl: {Condition: HasQueue, ", "QueueUrl: {");
    let (at, message) = error(&yaml);
    assert_eq!(at, "Outputs.QueueUrl.Value");
    assert!(
        message.contains("Ref Queue: the resource is not created (condition HasQueue is false)"),
        "{message}"
    );
}

#[test]
fn condition_functions_belong_in_conditions() {
    let yaml = with_function("", "      Environment: {Variables: {X: !Equals [a, a]}}");
    let (_, message) = error(&yaml);
    assert!(
        message.contains("Fn::Equals is only allowed in Conditions"),
        "{message}"
    );
    let yaml = with_function("", "      Timeout: !If [Missing, 1, 2]");
    let (at, message) = error(&yaml);
    assert_eq!(at, "Resources.Fn.Properties.Timeout");
    assert!(
        message.contains("condition Missing is not defined"),
        "{message}"
    );
}

#[test]
fn dead_letter_and_on_failure_queues() {
    let queues = "  Dlq: {Type: AWS::SQS::Queue}\n  Failed: {Type: AWS::SQS::Queue}";
    let props = "      DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt Dlq.Arn}
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt Failed.Arn}}";
    let model = parse(&with_function(queues, props));
    let f = &model.functions["Fn"];
    assert_eq!(f.dead_letter_queue.as_deref(), Some("Dlq"));
    assert_eq!(f.on_failure_queue.as_deref(), Some("Failed"));
    assert_eq!(f.max_retry_attempts, 0);

    let sns = with_function(
        "",
        "      DeadLetterQueue: {Type: SNS, TargetArn: arn:aws:sns:us-east-1:1:t}",
    );
    let (at, message) = error(&sns);
    assert_eq!(at, "Resources.Fn.Properties.DeadLetterQueue.Type");
    assert!(message.contains("SNS is not supported"), "{message}");
    let foreign = with_function(
        "",
        "      DeadLetterQueue: {Type: SQS, TargetArn: arn:aws:sqs:us-east-1:1:q}",
    );
    let (_, message) = error(&foreign);
    assert!(
        message.contains("is not the ARN of an SQS queue of this template"),
        "{message}"
    );
}

#[test]
fn schedule_events() {
    let props = "      Events:
        Each: {Type: Schedule, Properties: {Schedule: rate(1 minute), Enabled: 'false'}}
        Daily: {Type: Schedule, Properties: {Schedule: rate(2 days), State: DISABLED}}
        Noon: {Type: Schedule, Properties: {Schedule: cron(0 12 * * ? *)}}
        Api: {Type: Api, Properties: {Path: /, Method: get}}";
    let model = parse(&with_function("", props));
    let schedules = &model.functions["Fn"].schedules;
    let found: Vec<(&str, &Schedule, bool)> = schedules
        .iter()
        .map(|s| (s.name.as_str(), &s.expression, s.enabled))
        .collect();
    assert_eq!(
        found,
        [
            ("Each", &Schedule::Rate(Duration::from_secs(60)), false),
            (
                "Daily",
                &Schedule::Rate(Duration::from_secs(172_800)),
                false
            ),
            ("Noon", &Schedule::Cron("0 12 * * ? *".into()), true),
        ]
    );
    let bad = with_function(
        "",
        "      Events: {E: {Type: Schedule, Properties: {Schedule: rate(1 minutes)}}}",
    );
    let (at, message) = error(&bad);
    assert_eq!(at, "Resources.Fn.Properties.Events.E.Properties.Schedule");
    assert!(message.contains("singular unit for 1"), "{message}");
}

#[test]
fn stages_routes_and_several_apis() {
    let yaml = "Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
  A: {Type: AWS::ApiGatewayV2::Api, Properties: {Name: a, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.op}}
  B: {Type: AWS::ApiGatewayV2::Api, Properties: {Name: b, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}}
  Http: {Type: AWS::ApiGatewayV2::Api, Properties: {Name: h, ProtocolType: HTTP}}
  AInt: {Type: AWS::ApiGatewayV2::Integration, Properties: {ApiId: !Ref A, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Fn.Arn}}
  BInt: {Type: AWS::ApiGatewayV2::Integration, Properties: {ApiId: !Ref B, IntegrationType: AWS_PROXY, IntegrationUri: !Sub 'arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}:live/invocations'}}
  ARoute: {Type: AWS::ApiGatewayV2::Route, Properties: {ApiId: !Ref A, RouteKey: ping, Target: !Join [/, [integrations, !Ref AInt]]}}
  BRoute: {Type: AWS::ApiGatewayV2::Route, Properties: {ApiId: !Ref B, RouteKey: $default, Target: !Sub 'integrations/${BInt}'}}
  AStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref A
      StageName: live
      DefaultRouteSettings: {ThrottlingRateLimit: 2.5, ThrottlingBurstLimit: 4}
      RouteSettings: {ping: {ThrottlingBurstLimit: 1}}
";
    let model = parse(yaml);
    assert_eq!(model.websocket_apis.keys().collect::<Vec<_>>(), ["A", "B"]);
    let a = &model.websocket_apis["A"];
    assert_eq!(a.routes["ping"].function, "Fn");
    assert_eq!(model.websocket_apis["B"].routes["$default"].function, "Fn");
    let stage = &a.stages["live"];
    assert_eq!(
        stage.default_throttle,
        Some(Throttle {
            rate: 2.5,
            burst: 4
        })
    );
    assert_eq!(
        stage.route_throttles["ping"],
        Throttle {
            rate: 2.5,
            burst: 1
        }
    );

    let stray = yaml.replace(
        "!GetAtt Fn.Arn",
        "arn:aws:lambda:us-east-1:1:function:elsewhere",
    );
    let (at, message) = error(&stray);
    assert_eq!(at, "Resources.AInt.Properties.IntegrationUri");
    assert!(
        message.contains("does not invoke a function of this template"),
        "{message}"
    );
    let unknown_route = yaml.replace("{ping: {", "{pong: {");
    let (_, message) = error(&unknown_route);
    assert!(
        message.contains("RouteSettings names route pong"),
        "{message}"
    );
}

#[test]
fn circular_dependencies_are_errors() {
    let yaml = "Resources:
  A: {Type: AWS::SQS::Queue, Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt B.Arn, maxReceiveCount: 3}}}
  B: {Type: AWS::SQS::Queue, DependsOn: A}
";
    let (_, message) = error(yaml);
    assert!(
        message.contains("circular dependency between resources: A -> B -> A"),
        "{message}"
    );
}

#[test]
fn template_shape_errors() {
    let (at, message) = error("Resources: [\n");
    assert_eq!(at, "(document)");
    assert!(message.contains("not a valid YAML template"), "{message}");
    let (at, message) =
        error("Transform: AWS::LanguageExtensions\nResources: {Q: {Type: AWS::SQS::Queue}}");
    assert_eq!(at, "Transform");
    assert!(message.contains("AWS::LanguageExtensions"), "{message}");
    let (at, message) = error(
        &with_function("", "      Timeout: 3")
            .replace("Transform: AWS::Serverless-2016-10-31\n", ""),
    );
    assert_eq!(at, "Resources.Fn.Type");
    assert!(
        message.contains("needs Transform: AWS::Serverless-2016-10-31"),
        "{message}"
    );
    let (at, message) =
        error("Resources: {Q: {Type: AWS::SQS::Queue, Properties: {QueueName: q.fifo}}}");
    assert_eq!(at, "Resources.Q.Properties");
    assert!(
        message.contains("only a FIFO queue's name may end in .fifo"),
        "{message}"
    );
}
