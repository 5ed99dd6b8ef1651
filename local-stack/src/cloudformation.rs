//! CloudFormation's DescribeStacks for the one stack the local stack runs, so tools that
//! find a deployed stack through its outputs (`dynamowave run --stack`) work unchanged
//! against `--endpoint-url`. awsQuery protocol (shared/aws-wire.md): a form-encoded
//! `POST /` with `Action=DescribeStacks&Version=2010-05-15&StackName=…`, answered in XML.
//!
//! The outputs are the template's, resolved, except that the API's public URLs
//! (`wss://{api}.execute-api.{region}.amazonaws.com`, `https://…`) are replaced by where
//! the local stack serves them, so the outputs are reachable (an ARCHITECTURE.md deviation).
//!
//! DescribeStackResources lists what the stack runs: functions, tables, queues, WebSocket
//! APIs and stages, with the physical ids `Ref` would give.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::model::StackModel;

const XMLNS: &str = "http://cloudformation.amazonaws.com/doc/2010-05-15/";

/// The stack as DescribeStacks reports it.
#[derive(Debug, Clone)]
pub struct CloudFormation {
    pub stack_name: String,
    /// `arn:aws:cloudformation:{region}:{account}:stack/{name}/{uuid}`
    pub stack_id: String,
    /// When the stack started, ISO 8601 in UTC.
    pub creation_time: String,
    pub parameters: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
}

/// One resource as DescribeStackResources reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub logical_id: String,
    /// What `Ref` returns: function name, table name, queue URL, API id, stage name.
    pub physical_id: String,
    /// The deployed type (SAM's `AWS::Serverless::Function` becomes `AWS::Lambda::Function`).
    pub resource_type: String,
}

/// The resources the local stack runs, in logical-id order. Kept beside `CloudFormation`
/// rather than in it, so code that builds the struct literally keeps compiling.
pub fn resources(model: &StackModel) -> Vec<Resource> {
    let r = |logical_id: &str, physical_id: &str, resource_type: &str| Resource {
        logical_id: logical_id.to_string(),
        physical_id: physical_id.to_string(),
        resource_type: resource_type.to_string(),
    };
    let mut out: Vec<Resource> = model
        .functions
        .values()
        .map(|f| r(&f.logical_id, &f.name, "AWS::Lambda::Function"))
        .chain(
            model
                .tables
                .values()
                .map(|t| r(&t.logical_id, &t.name, "AWS::DynamoDB::Table")),
        )
        .chain(
            model
                .queues
                .values()
                .map(|q| r(&q.logical_id, &q.url, "AWS::SQS::Queue")),
        )
        .collect();
    for api in model.websocket_apis.values() {
        out.push(r(&api.logical_id, &api.api_id, "AWS::ApiGatewayV2::Api"));
        out.extend(
            api.stages
                .values()
                .map(|s| r(&s.logical_id, &s.name, "AWS::ApiGatewayV2::Stage")),
        );
    }
    out.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    out
}

impl CloudFormation {
    /// The stack of `model`, whose WebSocket APIs are served at `ws_base`
    /// (`ws://127.0.0.1:PORT`) and whose @connections are at `edge_url`.
    pub fn new(model: &StackModel, ws_base: &str, edge_url: &str) -> Self {
        let n = &model.naming;
        let local = |value: &str| {
            model
                .websocket_apis
                .values()
                .fold(value.to_string(), |v, api| {
                    let host = format!("{}.execute-api.{}.amazonaws.com", api.api_id, n.region);
                    v.replace(&format!("wss://{host}"), ws_base)
                        .replace(&format!("https://{host}"), edge_url)
                })
        };
        CloudFormation {
            stack_name: n.stack_name.clone(),
            stack_id: format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/{}",
                n.region,
                n.account_id,
                n.stack_name,
                uuid::Uuid::new_v4()
            ),
            creation_time: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            parameters: model
                .parameters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            outputs: model
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), local(v)))
                .collect(),
        }
    }

    /// One awsQuery request (the form-encoded body), for a stack without resources.
    pub fn handle(&self, body: &[u8]) -> Response {
        self.handle_for(body, &[])
    }

    /// One awsQuery request; DescribeStackResources answers with `resources`.
    pub fn handle_for(&self, body: &[u8], resources: &[Resource]) -> Response {
        let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(body) {
            Ok(f) => f,
            Err(e) => {
                return error(
                    400,
                    "MalformedQueryString",
                    &format!("the body is not form-encoded: {e}"),
                );
            }
        };
        let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        match get("Action") {
            Some("DescribeStacks") => self.describe_stacks(get("StackName")),
            Some("DescribeStackResources") => self.describe_stack_resources(
                resources,
                get("StackName"),
                get("LogicalResourceId"),
                get("PhysicalResourceId"),
            ),
            Some(other) => error(
                400,
                "InvalidAction",
                &format!(
                    "The action {other} is not valid for this web service (the local stack serves CloudFormation DescribeStacks and DescribeStackResources only)."
                ),
            ),
            None => error(
                400,
                "MissingAction",
                "The request must contain the parameter Action.",
            ),
        }
    }

    /// By name or stack id; no name lists the one stack. Anything else is AWS's
    /// `ValidationError` "Stack with id X does not exist".
    fn describe_stacks(&self, name: Option<&str>) -> Response {
        if let Some(name) = name
            && name != self.stack_name
            && name != self.stack_id
        {
            return error(
                400,
                "ValidationError",
                &format!("Stack with id {name} does not exist"),
            );
        }
        let members = |items: &[(String, String)], key: &str, value: &str| {
            items
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<member><{key}>{}</{key}><{value}>{}</{value}></member>",
                        escape(k),
                        escape(v)
                    )
                })
                .collect::<String>()
        };
        let xml = format!(
            "<DescribeStacksResponse xmlns=\"{XMLNS}\"><DescribeStacksResult><Stacks><member>\
             <StackName>{}</StackName><StackId>{}</StackId>\
             <Parameters>{}</Parameters>\
             <CreationTime>{}</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>\
             <DisableRollback>false</DisableRollback><NotificationARNs/>\
             <Capabilities><member>CAPABILITY_IAM</member><member>CAPABILITY_AUTO_EXPAND</member></Capabilities>\
             <Outputs>{}</Outputs><Tags/>\
             <EnableTerminationProtection>false</EnableTerminationProtection>\
             <DriftInformation><StackDriftStatus>NOT_CHECKED</StackDriftStatus></DriftInformation>\
             </member></Stacks></DescribeStacksResult>\
             <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></DescribeStacksResponse>",
            escape(&self.stack_name),
            escape(&self.stack_id),
            members(&self.parameters, "ParameterKey", "ParameterValue"),
            self.creation_time,
            members(&self.outputs, "OutputKey", "OutputValue"),
            uuid::Uuid::new_v4(),
        );
        xml_response(StatusCode::OK, xml)
    }
}

impl CloudFormation {
    /// By stack name or id, or by the physical id of one of its resources; optionally
    /// only one logical id. Other stacks are `ValidationError`, as DescribeStacks.
    fn describe_stack_resources(
        &self,
        resources: &[Resource],
        name: Option<&str>,
        logical: Option<&str>,
        physical: Option<&str>,
    ) -> Response {
        let known = match (name, physical) {
            (Some(n), _) => n == self.stack_name || n == self.stack_id,
            (None, Some(p)) => resources.iter().any(|r| r.physical_id == p),
            (None, None) => {
                return error(
                    400,
                    "ValidationError",
                    "Either StackName or PhysicalResourceId must be specified.",
                );
            }
        };
        if !known {
            let id = name.or(physical).unwrap_or_default();
            return error(
                400,
                "ValidationError",
                &format!("Stack with id {id} does not exist"),
            );
        }
        let members: String = resources
            .iter()
            .filter(|r| logical.is_none_or(|l| l == r.logical_id))
            .take(100)
            .map(|r| {
                format!(
                    "<member><StackName>{}</StackName><StackId>{}</StackId>\
                     <LogicalResourceId>{}</LogicalResourceId><PhysicalResourceId>{}</PhysicalResourceId>\
                     <ResourceType>{}</ResourceType><Timestamp>{}</Timestamp>\
                     <ResourceStatus>CREATE_COMPLETE</ResourceStatus>\
                     <DriftInformation><StackResourceDriftStatus>NOT_CHECKED</StackResourceDriftStatus></DriftInformation></member>",
                    escape(&self.stack_name),
                    escape(&self.stack_id),
                    escape(&r.logical_id),
                    escape(&r.physical_id),
                    escape(&r.resource_type),
                    self.creation_time,
                )
            })
            .collect();
        let xml = format!(
            "<DescribeStackResourcesResponse xmlns=\"{XMLNS}\"><DescribeStackResourcesResult>\
             <StackResources>{members}</StackResources></DescribeStackResourcesResult>\
             <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></DescribeStackResourcesResponse>",
            uuid::Uuid::new_v4(),
        );
        xml_response(StatusCode::OK, xml)
    }
}

/// CloudFormation alone on `POST /` (the wire tests; the edge routes to `handle` itself).
pub fn router(service: Arc<CloudFormation>) -> Router {
    Router::new().route("/", post(serve)).with_state(service)
}

async fn serve(State(service): State<Arc<CloudFormation>>, body: Bytes) -> Response {
    service.handle(&body)
}

/// awsQuery's error shape; the SDK reads `Code` and `Message` from it.
pub fn error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let fault = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let xml = format!(
        "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{fault}</Type><Code>{}</Code>\
         <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(code),
        escape(message),
        uuid::Uuid::new_v4()
    );
    xml_response(status, xml)
}

fn xml_response(status: StatusCode, xml: String) -> Response {
    let mut response = (status, xml).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
    response
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
