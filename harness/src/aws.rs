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

/// The SDK's configuration loader for `region`: rustls with ring, `endpoint` when given
/// (AWS's own endpoints otherwise), and on a loopback endpoint (a local stack, which checks
/// only that calls are signed) fixed credentials instead of the usual chain.
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
            loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "local",
                "local",
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
