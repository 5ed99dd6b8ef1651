//! The one error type of the chat library, and its mapping to stable Lambda error types.

use lambda_runtime::Diagnostic;

/// Everything that can make a chat function fail an invocation.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A function's environment is missing a variable or holds a bad value.
    #[error("configuration: {0}")]
    Config(String),
    /// A DynamoDB call failed after the SDK's own retries.
    #[error("DynamoDB {operation} failed: {message}")]
    Store {
        operation: &'static str,
        message: String,
        throttled: bool,
    },
    /// Handing a message to the broadcast function failed.
    #[error("invoking {function} failed: {message}")]
    Invoke { function: String, message: String },
    /// A recipient could not be dead-lettered, so the whole invocation fails
    /// (Lambda's async retries and DLQ take over rather than dropping it).
    #[error("dead-lettering to {queue} failed: {message}")]
    DeadLetter { queue: String, message: String },
    /// The event is not the shape this function handles.
    #[error("event is not a {expected} event: {message}")]
    BadEvent {
        expected: &'static str,
        message: String,
    },
    /// The fault layer (`DYNAMOWAVE_FAULTS`) injected this failure.
    #[error("injected fault: {0}")]
    Injected(String),
}

impl ChatError {
    /// The stable `errorType` Lambda reports for this error. Dashboards, alarms and the
    /// harness match on these strings, so they never change meaning.
    pub fn error_type(&self) -> &'static str {
        match self {
            ChatError::Config(_) => "DynamoWave.ConfigError",
            ChatError::Store {
                throttled: true, ..
            } => "DynamoWave.StoreThrottled",
            ChatError::Store { .. } => "DynamoWave.StoreError",
            ChatError::Invoke { .. } => "DynamoWave.InvokeError",
            ChatError::DeadLetter { .. } => "DynamoWave.DeadLetterError",
            ChatError::BadEvent { .. } => "DynamoWave.BadEvent",
            ChatError::Injected(_) => "DynamoWave.InjectedError",
        }
    }
}

impl From<ChatError> for Diagnostic {
    fn from(err: ChatError) -> Self {
        Diagnostic {
            error_type: err.error_type().to_string(),
            error_message: err.to_string(),
        }
    }
}

pub type Result<T, E = ChatError> = std::result::Result<T, E>;
