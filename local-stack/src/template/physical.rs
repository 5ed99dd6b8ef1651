//! Physical ids and attributes: what `Ref` and `Fn::GetAtt` return for each resource type.
//! Everything is deterministic (derived from stack name and logical id), so tests and
//! users can predict names, ARNs and URLs.

use md5::{Digest, Md5};
use yaml_serde::Value;

use super::intrinsics::{Declared, Eval, Memo, err};
use super::props::{boolean, text};
use crate::error::Result;

pub(super) const FUNCTION: &str = "AWS::Serverless::Function";
pub(super) const LAMBDA: &str = "AWS::Lambda::Function";
pub(super) const TABLE: &str = "AWS::DynamoDB::Table";
pub(super) const QUEUE: &str = "AWS::SQS::Queue";
pub(super) const KEY: &str = "AWS::KMS::Key";
pub(super) const ROLE: &str = "AWS::IAM::Role";
pub(super) const API: &str = "AWS::ApiGatewayV2::Api";
pub(super) const ROUTE: &str = "AWS::ApiGatewayV2::Route";
pub(super) const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
pub(super) const STAGE: &str = "AWS::ApiGatewayV2::Stage";
pub(super) const DEPLOYMENT: &str = "AWS::ApiGatewayV2::Deployment";
pub(super) const ROUTE_RESPONSE: &str = "AWS::ApiGatewayV2::RouteResponse";

/// Hex MD5 of the parts: stable across runs, platforms and Rust releases.
pub(super) fn hex_digest(parts: &[&str]) -> String {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// A UUID-shaped id (8-4-4-4-12 hex), as KMS key ids and stack ids look.
pub(super) fn uuid_like(parts: &[&str]) -> String {
    let h = hex_digest(parts);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The attributes `Fn::GetAtt` knows per type (for error messages).
fn known(ty: &str) -> &'static [&'static str] {
    match ty {
        FUNCTION | LAMBDA | TABLE => &["Arn"],
        QUEUE => &["Arn", "QueueName", "QueueUrl"],
        KEY => &["Arn", "KeyId"],
        ROLE => &["Arn", "RoleId"],
        API => &["ApiEndpoint", "ApiId"],
        ROUTE => &["RouteId"],
        INTEGRATION => &["IntegrationId"],
        DEPLOYMENT => &["DeploymentId"],
        _ => &[],
    }
}

impl Eval<'_> {
    /// What `Ref` of a (created) resource returns.
    pub fn resource_ref(&self, id: &str, at: &str) -> Result<String> {
        let name = self.physical_name(id, at)?;
        Ok(match self.resources.get(id).map(|d| d.ty.as_str()) {
            Some(QUEUE) => self.queue_url(&name),
            _ => name,
        })
    }

    fn queue_url(&self, name: &str) -> String {
        format!("{}/{}/{name}", self.naming.edge_url, self.naming.account_id)
    }

    /// `Fn::GetAtt id.attr`.
    pub fn attribute(&self, id: &str, attr: &str, at: &str) -> Result<Value> {
        let Some(decl) = self.target("Fn::GetAtt", id, at)? else {
            return Err(err(
                at,
                format!("Fn::GetAtt {id}.{attr}: no resource is named \"{id}\""),
            ));
        };
        let name = self.physical_name(id, at)?;
        let (region, account) = (&self.naming.region, &self.naming.account_id);
        let value = match (decl.ty.as_str(), attr) {
            (FUNCTION | LAMBDA, "Arn") => {
                format!("arn:aws:lambda:{region}:{account}:function:{name}")
            }
            (TABLE, "Arn") => format!("arn:aws:dynamodb:{region}:{account}:table/{name}"),
            (TABLE, "StreamArn") => {
                return Err(err(
                    at,
                    format!(
                        "Fn::GetAtt {id}.StreamArn: the local stack does not model DynamoDB Streams"
                    ),
                ));
            }
            (QUEUE, "Arn") => format!("arn:aws:sqs:{region}:{account}:{name}"),
            (QUEUE, "QueueUrl") => self.queue_url(&name),
            (KEY, "Arn") => format!("arn:aws:kms:{region}:{account}:key/{name}"),
            (ROLE, "Arn") => format!("arn:aws:iam::{account}:role/{name}"),
            (ROLE, "RoleId") => format!(
                "AROA{}",
                hex_digest(&[&self.naming.stack_name, id])[..17].to_uppercase()
            ),
            (API, "ApiEndpoint") => self.naming.websocket_url.clone(),
            (QUEUE, "QueueName")
            | (KEY, "KeyId")
            | (API, "ApiId")
            | (ROUTE, "RouteId")
            | (INTEGRATION, "IntegrationId")
            | (DEPLOYMENT, "DeploymentId") => name,
            (ty, _) => {
                let known = known(ty);
                let hint = if known.is_empty() {
                    "the local stack knows none of its attributes".to_string()
                } else {
                    format!("the local stack knows {}", known.join(", "))
                };
                return Err(err(
                    at,
                    format!("Fn::GetAtt {id}.{attr}: {ty} has no attribute \"{attr}\" ({hint})"),
                ));
            }
        };
        Ok(Value::String(value))
    }

    pub fn attribute_text(&self, id: &str, attr: &str, at: &str) -> Result<String> {
        text(&self.attribute(id, attr, at)?, at)
    }

    /// The physical name, memoised; a circular name (A's name uses B's and back) is an error.
    pub fn physical_name(&self, id: &str, at: &str) -> Result<String> {
        match self.name_memo.borrow().get(id) {
            Some(Memo::Done(name)) => return Ok(name.clone()),
            Some(Memo::Busy) => {
                return Err(err(
                    &format!("Resources.{id}"),
                    format!("the name of {id} depends on itself"),
                ));
            }
            None => {}
        }
        let Some(decl) = self.resources.get(id) else {
            return Err(err(at, format!("no resource is named \"{id}\"")));
        };
        self.name_memo
            .borrow_mut()
            .insert(id.to_string(), Memo::Busy);
        let name = self.generate_name(id, decl)?;
        self.name_memo
            .borrow_mut()
            .insert(id.to_string(), Memo::Done(name.clone()));
        Ok(name)
    }

    fn generate_name(&self, id: &str, decl: &Declared) -> Result<String> {
        let stack = self.naming.stack_name.as_str();
        let generated = format!("{stack}-{id}");
        Ok(match decl.ty.as_str() {
            FUNCTION | LAMBDA => self
                .name_property(id, decl, "FunctionName")?
                .unwrap_or(generated),
            TABLE => self
                .name_property(id, decl, "TableName")?
                .unwrap_or(generated),
            ROLE => self
                .name_property(id, decl, "RoleName")?
                .unwrap_or(generated),
            QUEUE => match self.name_property(id, decl, "QueueName")? {
                Some(name) => name,
                // CloudFormation appends .fifo to the names it generates for FIFO queues.
                None if self.is_fifo(id, decl)? => format!("{generated}.fifo"),
                None => generated,
            },
            KEY => uuid_like(&[stack, id]),
            // API Gateway ids are 10 lowercase alphanumerics.
            API => hex_digest(&[stack, id])[..10].to_string(),
            _ => id.to_string(),
        })
    }

    fn name_property(&self, id: &str, decl: &Declared, key: &str) -> Result<Option<String>> {
        let Some(value) = decl.properties.and_then(|p| p.get(key)) else {
            return Ok(None);
        };
        let at = format!("Resources.{id}.Properties.{key}");
        self.eval(value, &at)?.map(|v| text(&v, &at)).transpose()
    }

    pub(super) fn is_fifo(&self, id: &str, decl: &Declared) -> Result<bool> {
        let Some(value) = decl.properties.and_then(|p| p.get("FifoQueue")) else {
            return Ok(false);
        };
        let at = format!("Resources.{id}.Properties.FifoQueue");
        match self.eval(value, &at)? {
            Some(v) => boolean(&v, &at),
            None => Ok(false),
        }
    }
}
