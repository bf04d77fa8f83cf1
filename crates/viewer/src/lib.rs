//! A session viewer over the traffic log, for people who never run Seq: `sessions` lists the
//! Claude Code sessions in the log (and its rotated segments), `show` prints one as a
//! conversation in the terminal, `html` writes it to one self-contained HTML page.
//!
//! `serve` answers the same pages over HTTP, following the log as it grows.
//!
//! Imports go one way: `skim` (stepping over JSON values) <- `log` (reading and indexing
//! lines) <- `session` (what a session holds)
//! <- `term` (terminal text and number formats) <- `html` (the page) <- `cli` (the subcommands)
//! <- `serve` (the server).

pub mod cli;
pub mod html;
pub mod log;
pub mod serve;
pub mod session;
mod skim;
pub mod term;

/// What can stop a viewer command; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot read the traffic log {path}: {source} (set --log-file or LOG_FILE to the proxy's log file)"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no session or exchange matches {0:?}: run `claude-api-logger sessions` to list them")]
    NoMatch(String),
    #[error("{0:?} matches several sessions ({1}): give more of the id")]
    Ambiguous(String, String),
    #[error("the log holds no Claude Code session yet")]
    Empty,
    #[error("cannot write {path}: {source} (choose another -o FILE)")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
    #[error(
        "{0} (set --prices or PRICES_FILE to a valid table, or leave it unset for the built-in one)"
    )]
    Prices(#[from] pricing::Error),
}
