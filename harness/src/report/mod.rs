//! Rendering lives apart from measuring: the report folder (summary.json, junit.xml,
//! latency.hlog, report.html and its PNG charts) and the short text summary, all from a
//! finished run; `dynamowave report DIR` renders report.html again from a folder.

pub mod charts;
pub mod data;
pub mod hlog;
pub mod html;
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

/// report.html and its charts for a finished run, into its report folder.
pub fn write_html(dir: &Path, summary: &Summary) -> Result<(), HarnessError> {
    html::write(dir, &data::ReportInput::from_summary(summary)?)
}

/// `dynamowave report DIR`: renders report.html again from summary.json and latency.hlog.
pub fn rerender(dir: &Path) -> Result<i32, HarnessError> {
    if !dir.is_dir() {
        return Err(HarnessError::Input {
            file: dir.to_path_buf(),
            message: "not a report folder".into(),
        });
    }
    html::write(dir, &data::ReportInput::from_folder(dir)?)?;
    println!("{}", dir.join(html::FILE).display());
    Ok(0)
}
