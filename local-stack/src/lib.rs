//! DynamoWave local stack: an offline, AWS-compatible home for the reference chat.

pub mod cloudformation;
pub mod cloudwatch;
pub mod dynamodb;
pub mod edge;
pub mod error;
pub mod fis;
pub mod fuzzing;
pub mod gateway;
pub mod lambda;
pub mod model;
pub mod sqs;
pub mod stack;
pub mod telemetry;
pub mod template;
pub mod tls;

pub use error::{LocalError, Result};
