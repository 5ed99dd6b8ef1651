//! The local stack's one error type (start-up and configuration failures). Errors that
//! AWS-shaped APIs return to their callers are `edge::AwsError`, rendered on the wire.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// template.yaml could not be read or parsed.
    #[error("{path}: {message}")]
    TemplateRead { path: PathBuf, message: String },
    /// template.yaml uses something the local stack cannot resolve or run; `at` is the
    /// path inside the template, e.g. `Resources.ChatFn.Properties.Environment`.
    #[error("template.yaml at {at}: {message}")]
    Template { at: String, message: String },
    /// A function's release binary is missing.
    #[error("{message}")]
    MissingBinary { message: String },
    /// A runtime interface client (or interpreter) a function needs is not installed.
    #[error("{message}")]
    MissingRuntime { message: String },
    /// DynamoDB Local could not be found or started.
    #[error("DynamoDB Local: {0}")]
    DynamoDbLocal(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = LocalError> = std::result::Result<T, E>;

impl LocalError {
    pub fn template(at: impl Into<String>, message: impl Into<String>) -> Self {
        LocalError::Template {
            at: at.into(),
            message: message.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LocalError::Io {
            context: context.into(),
            source,
        }
    }
}
