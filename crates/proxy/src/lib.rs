//! claude-api-proxy: a transparent logging proxy for Claude Code's Anthropic API traffic.
//!
//! Every request is forwarded to the configured upstream unchanged and its response streamed
//! back live; a capped copy of both bodies is taken on the side ([`tap`]) and, once the
//! exchange ends, a dedicated thread ([`writer`]) decodes it and appends one JSON line to the
//! traffic log (format: `docs/log-format.md`).
//!
//! The upstream is reached through hyper-util's client with `hyper-rustls`, `rustls` and
//! `rustls-platform-verifier` (the TLS stack reqwest used, all already in the tree under it)
//! rather than through reqwest: reqwest's per-request layers cost ~17 µs of forwarding CPU and
//! 57-92 µs of latency to the first SSE event (docs/performance-history.md). `url` parses
//! `--upstream`.
//!
//! Dependencies added to the workspace for this crate: `base64` (bodies that are not UTF-8 are
//! logged base64, as the record format says), `memchr` (the line-break scan of every JSON body),
//! `rustix` (already in the tree through tempfile and tokio; for `posix_fadvise`, which keeps
//! the log out of the page cache, and `setpriority`, which lowers the writer's priority: std
//! has neither; also `setrlimit`, to raise the open-files limit at start), `libc` (already in
//! the tree; for `sync_file_range`, which rustix lacks, and glibc's `malloc_trim`), `regex`
//! (already in the tree; the body secret scan of [`redact`], a `RegexSet` and one `Regex` per
//! credential format) and, for tests only, `jsonschema` (every record a test writes is validated
//! against `docs/log-format.schema.json`) and `proptest` (property tests,
//! `tests/properties.rs`).
//!
//! The workspace denies `unsafe`; the three exceptions are `record::json_body`, which wraps a
//! body serde_json has just parsed in serde_json's `RawValue::from_string_unchecked` rather
//! than have it parsed a second time, `writer::start_writeback`, a `sync_file_range` call
//! (an fd and integers, no memory), and `server::trim`, a `malloc_trim(0)` call (an integer).

pub mod capture;
pub mod config;
pub mod decode;
pub mod exchange;
pub mod forward;
pub mod record;
pub mod redact;
pub mod server;
pub mod shutdown;
pub mod sse;
pub mod summary;
pub mod tap;
pub mod writer;

use crate::config::Config;
use crate::exchange::ShutdownFlag;
use crate::forward::{Forwarder, forward};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// Why the proxy could not run; the message names the setting to change.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot open --log-file (env LOG_FILE) {path}: {source}")]
    LogFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on --listen (env PROXY_LISTEN) {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot build the upstream HTTP client for --upstream (env UPSTREAM_URL) {upstream}: {cause} (an https upstream needs the system CA certificates, e.g. the ca-certificates package)"
    )]
    Client { upstream: String, cause: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl RunError {
    /// 64 (EX_USAGE) for a setting the user must change, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::LogFile { .. } | RunError::Listen { .. } => 64,
            RunError::Client { .. } | RunError::Io(_) => 1,
        }
    }
}

/// Runs the proxy until SIGTERM/SIGINT, then drains in-flight exchanges (up to the drain
/// timeout), writes their records and returns.
pub fn run(config: Config) -> Result<(), RunError> {
    redact::install(config.redactor.clone());
    if let Some(nofile) = server::raise_nofile_limit() {
        // A client connection and its upstream connection are two descriptors.
        let needed = 2 * config.max_connections as u64 + 64;
        if nofile < needed {
            tracing::warn!(
                nofile,
                max_connections = config.max_connections,
                "the open files limit is below what --max-connections (env MAX_CONNECTIONS) needs; lower it or raise the hard limit (ulimit -Hn)"
            );
        }
    }
    let file = writer::open_log(&config.log_file).map_err(|source| RunError::LogFile {
        path: config.log_file.clone(),
        source,
    })?;
    let writer = writer::Writer::start(config.log_file.clone(), file, config.capture_cap)?;
    let shutdown_flag = Arc::new(ShutdownFlag::default());
    let forwarder = Forwarder::new(
        &config.upstream,
        config.idle_timeout,
        config.capture_cap,
        writer.handle(),
        shutdown_flag.clone(),
    )
    .map_err(|e| RunError::Client {
        upstream: config.upstream.to_string(),
        cause: tap::chain(e.as_ref()),
    })?;
    // One thread: the proxy only shuffles bytes (the heavy work is on the writer thread), and
    // keeping a request, its upstream connection and its response on one thread avoids
    // cross-thread wake-ups. Measured with benches/overhead.rs on 2 cores: added p50 latency
    // 0.12-0.15 ms with one multi-thread worker against 0.27 ms with two, the same requests/s;
    // the current-thread runtime also drops the hand-offs between that worker and this thread
    // (0.181 ms against 0.245 ms with the one worker, same run; docs/performance-history.md).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(&config, forwarder, shutdown_flag));
    // Dropping the runtime drops connections still open after the drain deadline; their
    // exchange guards hand the partial exchanges to the writer before it is closed.
    drop(runtime);
    let stats = writer.stats.clone();
    writer.close();
    let failed = stats.failed.load(Ordering::Relaxed);
    tracing::info!(
        written = stats.written.load(Ordering::Relaxed),
        failed,
        "traffic log closed"
    );
    result
}

async fn serve(
    config: &Config,
    forwarder: Forwarder,
    shutdown_flag: Arc<ShutdownFlag>,
) -> Result<(), RunError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    tracing::info!(listen = %local, upstream = %config.upstream, log_file = %config.log_file.display(), "proxy started");

    let token = CancellationToken::new();
    tokio::spawn(shutdown::on_signal(token.clone()));
    tokio::spawn(forwarder.writer.clone().after_sends());
    // No timeout or compression layer here: either would break live SSE streams.
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::new(forwarder));
    let limits = server::Limits {
        header_read_timeout: config.header_read_timeout,
        max_header_bytes: config.max_header_bytes,
        max_connections: config.max_connections,
    };
    let mut server = tokio::spawn(server::serve(listener, app, limits, token.clone()));
    tokio::select! {
        result = &mut server => return finished(result),
        () = token.cancelled() => {}
    }
    match tokio::time::timeout(config.drain_timeout, &mut server).await {
        Ok(result) => finished(result),
        Err(_) => {
            shutdown_flag.set();
            tracing::warn!(
                drain_timeout_secs = config.drain_timeout.as_secs(),
                "drain deadline reached; cutting the exchanges still in flight"
            );
            server.abort();
            Ok(())
        }
    }
}

fn finished(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), RunError> {
    match result {
        Ok(r) => Ok(r?),
        Err(e) => Err(RunError::Io(std::io::Error::other(e))),
    }
}
