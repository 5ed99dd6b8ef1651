//! DynamoWave reference chat: the Lambda functions of an API Gateway WebSocket chat.
//!
//! Each binary in `src/bin` is one function and only calls [`runtime::serve`]; the logic
//! lives here. The chat knows only the AWS SDK: endpoints come from the SDK's standard
//! configuration, so the same binary runs on AWS and on DynamoWave's local stack.

pub mod aws;
pub mod config;
pub mod connections;
pub mod deps;
pub mod dlq;
pub mod error;
pub mod fanout;
pub mod faults;
pub mod handlers;
pub mod message;
pub mod retry;
pub mod runtime;
pub mod store;
pub mod warmup;

pub use error::{ChatError, Result};
pub use handlers::Function;
