//! AWS clients. Endpoints come from the SDK's standard configuration
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`); nothing here knows where it runs.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_apigatewaymanagement as mgmt;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::config::Settings;

/// Loads the shared SDK configuration with a rustls/ring HTTPS client (no aws-lc build).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}

/// The SDK's hyper client over rustls with ring.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Explicit endpoint overrides. Production leaves them all `None` so the SDK's standard
/// configuration applies; tests point each service at its own loopback server.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub dynamodb: Option<String>,
    pub lambda: Option<String>,
    pub sqs: Option<String>,
    pub connections: Option<String>,
}

pub struct Clients {
    sdk: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub sqs: aws_sdk_sqs::Client,
    connections_override: Option<String>,
    post_timeout: std::time::Duration,
    management: Mutex<HashMap<String, mgmt::Client>>,
}

impl Clients {
    pub fn new(sdk: SdkConfig, endpoints: Endpoints, settings: &Settings) -> Self {
        let mut ddb = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(url) = &endpoints.dynamodb {
            ddb = ddb.endpoint_url(url);
        }
        let mut lambda = aws_sdk_lambda::config::Builder::from(&sdk);
        if let Some(url) = &endpoints.lambda {
            lambda = lambda.endpoint_url(url);
        }
        let mut sqs = aws_sdk_sqs::config::Builder::from(&sdk);
        if let Some(url) = &endpoints.sqs {
            sqs = sqs.endpoint_url(url);
        }
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(ddb.build()),
            lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            connections_override: endpoints.connections,
            post_timeout: settings.post_timeout,
            management: Mutex::new(HashMap::new()),
            sdk,
        }
    }

    /// The @connections client for an API. `fallback` is `https://{domainName}/{stage}` from
    /// the event; it is used only when no endpoint is configured for the service, as the
    /// SDK's own configuration always wins (shared/aws-semantics.md G2).
    ///
    /// SDK retries are off: the fan-out retries itself with full jitter, so the spacing
    /// of retries is ours to bound and to measure.
    pub fn management(&self, fallback: Option<&str>) -> mgmt::Client {
        let endpoint = self
            .connections_override
            .clone()
            .or_else(|| (!endpoint_configured()).then(|| fallback.map(str::to_string))?);
        let key = endpoint.clone().unwrap_or_default();
        let mut cache = self.management.lock().expect("management cache poisoned");
        cache
            .entry(key)
            .or_insert_with(|| {
                let mut b = mgmt::config::Builder::from(&self.sdk)
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_attempt_timeout(self.post_timeout)
                            .build(),
                    );
                if let Some(url) = endpoint {
                    b = b.endpoint_url(url);
                }
                mgmt::Client::from_conf(b.build())
            })
            .clone()
    }
}

/// Whether the SDK's environment configures an @connections endpoint itself.
fn endpoint_configured() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    let ignored = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !ignored && (set("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI") || set("AWS_ENDPOINT_URL"))
}

/// `https://{domainName}/{stage}`, the @connections base API Gateway documents.
pub fn connections_url(domain: Option<&str>, stage: Option<&str>) -> Option<String> {
    Some(format!("https://{}/{}", domain?, stage?))
}

/// A one-line description of an SDK error: the service's code and message when the
/// service answered, else the SDK's own account (timeouts, connection failures).
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("UnknownError"),
                e.message().unwrap_or("(no message)")
            )
        }
        other => DisplayErrorContext(other).to_string(),
    }
}
