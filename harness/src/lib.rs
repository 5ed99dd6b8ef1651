//! The `dynamowave` CLI as a library: `cli` parses, each command lives in its own module;
//! the scenario engine measures (`engine`), `accounting` and `slo` judge, `report` renders.

pub mod accounting;
pub mod attach;
pub mod aws;
pub mod bench;
pub mod capacity;
pub mod chaos;
pub mod cli;
pub mod compare;
pub mod deployed;
pub mod dlq;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod fuzzing;
pub mod limits;
pub mod local;
pub mod observe;
pub mod preflight;
pub mod replay;
pub mod report;
pub mod retries;
pub mod run;
pub mod scenario;
pub mod slo;
pub mod workers;

pub use error::HarnessError;
