use std::path::PathBuf;

/// Everything that stops the harness; each becomes exit code 2 with its message.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Local(#[from] dynamowave_local::LocalError),
    /// A scenario file is invalid; the message names the field (and line, from the parser).
    #[error("{}: {message}", file.display())]
    Scenario { file: PathBuf, message: String },
    /// An SLO file is invalid.
    #[error("{}: {message}", file.display())]
    Slo { file: PathBuf, message: String },
    /// A report input (summary.json, latency.hlog, a tolerances file) is invalid or missing;
    /// the message names the field or line.
    #[error("{}: {message}", file.display())]
    Input { file: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
    /// A chaos action could not be applied or reverted.
    #[error("{0}")]
    Chaos(String),
    /// The target's AWS APIs failed a call the run needs (CloudWatch, Logs, CloudFormation).
    #[error("{0}")]
    Target(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}
