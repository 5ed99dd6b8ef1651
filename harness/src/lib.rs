//! The `dynamowave` CLI as a library: `cli` parses, each command lives in its own module.
//! (The scenario engine, chaos and reports come in later issues.)

pub mod cli;
pub mod error;
pub mod local;

pub use error::HarnessError;
