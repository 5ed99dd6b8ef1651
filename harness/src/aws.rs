//! The AWS SDK clients the harness drives and observes a target with: the same code path against AWS and
//! the local stack, which differ only in the endpoint URL (design: no local-only branch).

use aws_config::{BehaviorVersion, ConfigLoader, Region};

#[derive(Clone, Debug)]
pub struct Clients {
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// Fault Injection Service: the `aws:lambda:*` chaos actions.
    pub fis: aws_sdk_fis::Client,
    /// @connections: at the endpoint when one is given, else AWS's (set per API: see
    /// [`Clients::connections`]).
    pub config: aws_config::SdkConfig,
}

impl Clients {
    /// The @connections client for `url` (a stack's `ConnectionsURL`), or for the endpoint
    /// all clients use (a local stack's edge serves @connections too).
    pub fn connections(&self, url: Option<&str>) -> aws_sdk_apigatewaymanagement::Client {
        let mut b = aws_sdk_apigatewaymanagement::config::Builder::from(&self.config);
        if let Some(url) = url {
            b = b.endpoint_url(url);
        }
        aws_sdk_apigatewaymanagement::Client::from_conf(b.build())
    }
}

/// The key a local stack of this process was given (`--access-key-id`): the harness signs
/// its own calls to loopback endpoints with it.
static LOCAL_KEY: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Signs this process's calls to loopback endpoints with this key (set once, before any
/// client is built; a second key is ignored, as one process runs one embedded stack).
pub fn use_local_key(access_key_id: &str, secret_access_key: &str) {
    let _ = LOCAL_KEY.set((access_key_id.to_string(), secret_access_key.to_string()));
}

/// The SDK's configuration loader for `region`: rustls with ring, `endpoint` when given
/// (AWS's own endpoints otherwise), and on a loopback endpoint (a local stack) the key given
/// to this process's stack ([`use_local_key`]), else the one in AWS_ACCESS_KEY_ID /
/// AWS_SECRET_ACCESS_KEY when both are set (a `local up --access-key-id` verifies
/// signatures), else fixed credentials: never the rest of the chain (profiles, SSO), which
/// would reach for AWS.
pub fn loader(region: Region, endpoint: Option<&str>) -> ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .http_client(http);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
        if is_loopback(endpoint) {
            let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
            let (id, secret) = match (
                LOCAL_KEY.get(),
                var("AWS_ACCESS_KEY_ID"),
                var("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Some((id, secret)), _, _) => (id.clone(), secret.clone()),
                (None, Some(id), Some(secret)) => (id, secret),
                _ => ("local".into(), "local".into()),
            };
            loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                id,
                secret,
                None,
                None,
                "dynamowave",
            ));
        }
    }
    loader
}

/// Clients for `region`, at `endpoint` when given (a local stack's edge), else AWS's own
/// endpoints with credentials from the usual chain.
pub async fn clients(endpoint: Option<&str>, region: &str) -> Clients {
    let config = loader(Region::new(region.to_string()), endpoint)
        .load()
        .await;
    Clients {
        sqs: aws_sdk_sqs::Client::new(&config),
        lambda: aws_sdk_lambda::Client::new(&config),
        apigw: aws_sdk_apigatewayv2::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        fis: aws_sdk_fis::Client::new(&config),
        config,
    }
}

pub fn is_loopback(endpoint: &str) -> bool {
    ["http://127.", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| endpoint.starts_with(p))
}

/// An SDK error with its whole chain, for messages people read.
pub fn describe<E: std::error::Error>(e: &E) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}
