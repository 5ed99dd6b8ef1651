//! Posting to clients through the @connections API, with the fault layer applied.

use aws_sdk_apigatewaymanagement as mgmt;
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::Blob;

use crate::faults::FaultConfig;
use crate::message::DeliveryError;

/// How one @connections call failed, classified for the fan-out.
#[derive(Debug, Clone, PartialEq)]
pub struct PostFailure {
    pub error: DeliveryError,
    /// 410 Gone: the client is no longer connected.
    pub gone: bool,
    /// Throttles, 5xx, timeouts and connection failures are worth retrying.
    pub retryable: bool,
}

#[derive(Clone)]
pub struct Poster {
    client: mgmt::Client,
    faults: FaultConfig,
}

impl Poster {
    pub fn new(client: mgmt::Client, faults: FaultConfig) -> Self {
        Poster { client, faults }
    }

    pub async fn post(&self, connection_id: &str, data: Vec<u8>) -> Result<(), PostFailure> {
        if let Some(status) = self.faults.connections_failure() {
            return Err(classify_status(
                Some(status),
                Some(injected_code(status).to_string()),
                format!("HTTP {status} injected by DYNAMOWAVE_FAULTS"),
            ));
        }
        self.client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// Closes a client's connection (used for nothing but tidy-up; 410 counts as done).
    pub async fn delete(&self, connection_id: &str) -> Result<(), PostFailure> {
        match self
            .client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify(e) {
                f if f.gone => Ok(()),
                f => Err(f),
            },
        }
    }
}

fn injected_code(status: u16) -> &'static str {
    match status {
        410 => "GoneException",
        429 => "LimitExceededException",
        _ => "InternalServerError",
    }
}

fn classify<E, R>(err: SdkError<E, R>) -> PostFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: HasStatus + std::fmt::Debug,
{
    let message = crate::aws::describe(&err);
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status_code();
            let code = service.err().code().map(str::to_string);
            classify_status(Some(status), code, message)
        }
        SdkError::ResponseError(response) => {
            classify_status(Some(response.raw().status_code()), None, message)
        }
        // Timeouts and failures to reach the endpoint: transient by nature.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => PostFailure {
            error: DeliveryError {
                status: None,
                code: None,
                message,
            },
            gone: false,
            retryable: true,
        },
        _ => PostFailure {
            error: DeliveryError {
                status: None,
                code: None,
                message,
            },
            gone: false,
            retryable: false,
        },
    }
}

fn classify_status(status: Option<u16>, code: Option<String>, message: String) -> PostFailure {
    let gone = status == Some(410) || code.as_deref() == Some("GoneException");
    let retryable = !gone
        && (matches!(status, Some(429) | Some(500..=599))
            || code.as_deref() == Some("LimitExceededException"));
    PostFailure {
        error: DeliveryError {
            status,
            code,
            message,
        },
        gone,
        retryable,
    }
}

/// The HTTP status of a raw SDK response.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
