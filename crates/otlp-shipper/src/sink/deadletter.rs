//! The dead-letter file: events the endpoint refused for good, one JSON line each with the
//! status and reason, so nothing is dropped silently and they can be replayed by hand.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    /// RFC 3339 time the event was given up on.
    pub time: String,
    /// HTTP status of the refusal.
    pub status: u16,
    /// The endpoint's response body (its explanation), trimmed.
    pub reason: &'a str,
    /// Exchange id (`claude.exchange.id`) if the event belongs to a traffic record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_id: Option<String>,
    /// The refused event: body and attributes as strings.
    pub body: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write dead-letter file {path} (--dead-letter / DEAD_LETTER_FILE): {source}")]
pub struct DeadLetterError {
    path: PathBuf,
    source: std::io::Error,
}

/// Appends entries and syncs them to disk before the checkpoint may pass them.
pub fn append(path: &Path, entries: &[DeadLetter<'_>]) -> Result<(), DeadLetterError> {
    let err = |source| DeadLetterError {
        path: path.to_path_buf(),
        source,
    };
    let mut buf = Vec::new();
    for e in entries {
        serde_json::to_writer(&mut buf, e).expect("a dead letter serializes");
        buf.push(b'\n');
    }
    use std::os::unix::fs::OpenOptionsExt;
    // Owner-only: it holds full bodies, as the log (0600) does.
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(&buf).map_err(err)?;
    f.sync_data().map_err(err)?;
    Ok(())
}
