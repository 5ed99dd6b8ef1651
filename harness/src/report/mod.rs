//! Rendering lives apart from measuring: the report folder (summary.json, junit.xml,
//! latency.hlog) and the short text summary, all from a finished run.

pub mod hlog;
pub mod junit;
pub mod summary;
pub mod text;

use std::path::Path;

use crate::error::HarnessError;
pub use summary::Summary;

/// Writes a file whole or not at all: a temporary file renamed into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HarnessError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| HarnessError::Io {
            context: format!("writing {}", path.display()),
            source: e,
        })
}
