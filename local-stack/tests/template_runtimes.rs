//! Functions as teams write them: Runtime + CodeUri + Handler (SAM), AWS::Lambda::Function
//! with a local Code path, and each construct the local stack cannot run refused naming the
//! resource and property.

use std::collections::BTreeMap;

use dynamowave_local::LocalError;
use dynamowave_local::model::{Code, Naming, Runtime, StackModel};
use dynamowave_local::template;

fn parse(yaml: &str) -> Result<StackModel, LocalError> {
    template::parse(yaml, &Naming::default(), &BTreeMap::new())
}

fn sam(props: &str) -> String {
    format!(
        "Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {{Timeout: 7}}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {props}
"
    )
}

fn error(yaml: &str) -> (String, String) {
    match parse(yaml) {
        Err(LocalError::Template { at, message }) => (at, message),
        other => panic!("expected a template error, got {other:?}"),
    }
}

#[test]
fn sam_python_node_and_provided_functions() {
    let cases = [
        (
            "{Runtime: python3.12, CodeUri: src/, Handler: app.lambda_handler}",
            Runtime::Python("python3.12".into()),
            "src/",
            "app.lambda_handler",
        ),
        (
            "{Runtime: nodejs22.x, CodeUri: ./js, Handler: lib/index.handler}",
            Runtime::Node("nodejs22.x".into()),
            "./js",
            "lib/index.handler",
        ),
        (
            "{Runtime: provided.al2023, CodeUri: sh}",
            Runtime::Provided("provided.al2023".into()),
            "sh",
            "",
        ),
    ];
    for (props, runtime, dir, handler) in cases {
        let model = parse(&sam(props)).unwrap_or_else(|e| panic!("{props}: {e}"));
        let f = &model.functions["Fn"];
        assert_eq!(
            f.code,
            Code::Package {
                runtime,
                dir: dir.into(),
                handler: handler.into()
            },
            "{props}"
        );
        assert_eq!(f.timeout.as_secs(), 7, "Globals apply: {props}");
    }
}

#[test]
fn plain_cloudformation_lambda_function_with_a_local_code_path() {
    let yaml = "Resources:
  Dlq: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: chat-send
      Runtime: nodejs20.x
      Handler: index.handler
      Code: ./handlers
      Timeout: 12
      MemorySize: 1024
      ReservedConcurrentExecutions: 5
      DeadLetterConfig: {TargetArn: !GetAtt Dlq.Arn}
      Environment: {Variables: {TABLE: connections}}
";
    let model = parse(yaml).expect("resolves");
    let f = &model.functions["Fn"];
    assert_eq!(f.name, "chat-send");
    assert_eq!(f.code.runtime_id(), "nodejs20.x");
    assert_eq!(f.timeout.as_secs(), 12);
    assert_eq!(f.memory_mb, 1024);
    assert_eq!(f.reserved_concurrency, Some(5));
    assert_eq!(f.dead_letter_queue.as_deref(), Some("Dlq"));
    assert_eq!(f.environment["TABLE"], "connections");
}

#[test]
fn what_cannot_run_locally_is_refused_naming_resource_and_property() {
    let cases = [
        (
            sam("{Runtime: java21, CodeUri: x, Handler: a.b}"),
            "Resources.Fn.Properties.Runtime",
            "runtime java21 is not one the local stack runs (python3.11",
        ),
        (
            sam("{Runtime: python3.12, CodeUri: {Bucket: b, Key: k}, Handler: app.h}"),
            "Resources.Fn.Properties.CodeUri",
            "set CodeUri to the code's path",
        ),
        (
            sam("{Runtime: python3.12, InlineCode: 'def h(e, c): pass', Handler: index.h}"),
            "Resources.Fn.Properties.InlineCode",
            "InlineCode is not run by the local stack",
        ),
        (
            sam("{PackageType: Image, ImageUri: repo/x:1}"),
            "Resources.Fn.Properties.PackageType",
            "PackageType Image cannot run on the local stack",
        ),
        (
            sam("{Runtime: python3.12, CodeUri: src}"),
            "Resources.Fn.Properties.Handler",
            "runtime python3.12 needs a Handler",
        ),
        (
            sam("{Runtime: nodejs20.x, CodeUri: src, Handler: index}"),
            "Resources.Fn.Properties.Handler",
            "Handler \"index\" is not file.function",
        ),
        (
            sam("{Runtime: python3.12, Handler: app.h}"),
            "Resources.Fn.Properties.CodeUri",
            "function Fn needs CodeUri",
        ),
        (
            "Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python3.13, Handler: a.b, Code: {S3Bucket: b, S3Key: k}}
"
            .to_string(),
            "Resources.Fn.Properties.Code",
            "set Code to the code's path",
        ),
    ];
    for (yaml, at, why) in cases {
        let (got_at, message) = error(&yaml);
        assert_eq!(got_at, at, "{yaml}");
        assert!(message.contains(why), "{yaml}: {message}");
    }
}

#[test]
fn routes_with_authorizers_are_refused_and_route_responses_are_modelled() {
    let api = |route_extra: &str, response: &str| {
        format!(
            "Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {{Runtime: python3.12, CodeUri: src, Handler: app.h}}
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {{Name: a, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}}
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties: {{ApiId: !Ref Api, RouteKey: ask, Target: !Sub 'integrations/${{Integ}}'{route_extra}}}
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub 'arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{Fn.Arn}}/invocations'
{response}"
        )
    };
    let (at, message) = error(&api(", AuthorizationType: CUSTOM", ""));
    assert_eq!(at, "Resources.Route.Properties.AuthorizationType");
    assert!(message.contains("authorizer"), "{message}");
    let plain = parse(&api("", "")).expect("resolves");
    assert!(!plain.websocket_apis["Api"].routes["ask"].responds);
    let response = "  Answer:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: {ApiId: !Ref Api, RouteId: !Ref Route, RouteResponseKey: $default}
";
    let two_way = parse(&api("", response)).expect("resolves");
    assert!(two_way.websocket_apis["Api"].routes["ask"].responds);
    let (at, _) = error(&api(
        "",
        &response.replace("RouteId: !Ref Route", "RouteId: nope"),
    ));
    assert_eq!(at, "Resources.Answer.Properties.RouteId");
}
