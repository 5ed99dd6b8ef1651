#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Local(#[from] dynamowave_local::LocalError),
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}
