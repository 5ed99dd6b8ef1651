//! DynamoWave local stack: an offline, AWS-compatible home for the reference chat.

pub mod edge;
pub mod error;
pub mod model;
pub mod template;

pub use error::{LocalError, Result};
