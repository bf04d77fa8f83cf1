//! Why a price table cannot be used: the file, and what to change in it.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the price table {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the price table {path} is not valid: {source} (see docs/seq-events.md, \"Cost\")")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("the price table {path} is not valid: {reason} (see docs/seq-events.md, \"Cost\")")]
    Invalid { path: String, reason: String },
}
