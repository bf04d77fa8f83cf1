//! claude-api-proxy: a transparent logging proxy for Claude Code's Anthropic API traffic.
//!
//! Every request is forwarded to the configured upstream unchanged and its response streamed
//! back live; a capped copy of both bodies is taken on the side ([`tap`]) and, once the
//! exchange ends, a dedicated thread ([`writer`]) decodes it and appends one JSON line to the
//! traffic log (format: `docs/log-format.md`).
//!
//! The upstream is reached through hyper-util's client with `hyper-rustls`, `rustls` and
//! `rustls-platform-verifier` (the TLS stack reqwest used, all already in the tree under it)
//! rather than through reqwest, whose per-request layers cost ~17 µs of forwarding CPU. `url`
//! parses `--upstream`.
//!
//! Dependencies added to the workspace for this crate: `base64` (bodies that are not UTF-8 are
//! logged base64, as the record format says), `memchr` (the line-break scan of every JSON body),
//! `rustix` (already in the tree through tempfile and tokio; `setrlimit`, to raise the
//! open-files limit at start: std has none), `libc` (already in the tree; glibc's
//! `malloc_trim`), `regex` (already in the tree; the body secret scan of [`redact`], one
//! `Regex` per credential format) and, for tests only, `jsonschema` (every
//! record a test writes is validated against `docs/log-format.schema.json`) and `proptest`
//! (property tests, `tests/properties.rs`).
//!
//! The workspace denies `unsafe`; the one exception is `heap::give_back`, a `malloc_trim(0)`
//! call (an integer).

pub mod burst;
pub mod capture;
pub mod config;
pub mod connection;
pub mod console;
pub mod decode;
pub mod error;
pub mod exchange;
pub mod forward;
pub mod heap;
pub mod logfile;
pub mod metrics;
pub mod record;
pub mod redact;
pub mod server;
pub mod signals;
pub mod sse;
pub mod tap;
pub mod writer;

use crate::config::Config;
use crate::exchange::ShutdownFlag;
use crate::forward::{Forwarder, forward};
use crate::writer::{WriterConfig, WriterHandle};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    #[error("cannot listen on --metrics-listen (env PROXY_METRICS_LISTEN) {addr}: {source}")]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot build the upstream HTTP client for --upstream (env UPSTREAM_URL) {upstream}: {cause} (an https upstream needs the system CA certificates, e.g. the ca-certificates package)"
    )]
    Client { upstream: String, cause: String },
    #[error(
        "the traffic log writer thread died; exiting so that the proxy is restarted (this is a bug: please report the error logged before)"
    )]
    WriterDied,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl RunError {
    /// 64 (EX_USAGE) for a setting the user must change, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::LogFile { .. } | RunError::Listen { .. } | RunError::MetricsListen { .. } => {
                command_line::EXIT_USAGE
            }
            RunError::Client { .. } | RunError::WriterDied | RunError::Io(_) => 1,
        }
    }
}

/// Runs the proxy until SIGTERM/SIGINT, then drains in-flight exchanges (up to the drain
/// timeout), writes their records and returns. A writer thread that dies stops the proxy too
/// (with [`RunError::WriterDied`]): its health check then fails and the supervisor restarts it.
pub fn run(config: Config) -> Result<(), RunError> {
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
    let token = CancellationToken::new();
    let writer_died = Arc::new(AtomicBool::new(false));
    let writer_config = WriterConfig {
        rotate_size: config.rotate_size,
        disk_budget: config.disk_budget,
        max_decode_ratio: config.max_decode_ratio,
        redactor: config.redactor.clone(),
        ..WriterConfig::new(config.log_file.clone(), config.capture_cap)
    };
    let writer = writer::Writer::start(writer_config, {
        let token = token.clone();
        let died = writer_died.clone();
        move || {
            died.store(true, Ordering::SeqCst);
            token.cancel();
        }
    })
    .map_err(|source| RunError::LogFile {
        path: config.log_file.clone(),
        source,
    })?;
    let shutdown_flag = Arc::new(ShutdownFlag::default());
    let floods = Arc::new(burst::ClientFloods::default());
    let forwarder = Forwarder::new(
        &config.upstream,
        config.idle_timeout,
        config.capture_cap,
        tap::BodyLimits {
            read_timeout: config.body_read_timeout,
            min_rate: config.body_min_rate,
        },
        Arc::new(writer.handle()),
        shutdown_flag.clone(),
        floods.clone(),
    )
    .map_err(|e| RunError::Client {
        upstream: config.upstream.to_string(),
        cause: error::chain(e.as_ref()),
    })?;
    // One thread: the proxy only shuffles bytes (the heavy work is on the writer thread), and
    // keeping a request, its upstream connection and its response on one thread avoids
    // cross-thread wake-ups (benches/overhead.rs measured lower added latency than with a
    // multi-thread runtime on 2 cores).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(
        &config,
        forwarder,
        writer.handle(),
        floods,
        shutdown_flag,
        token,
    ));
    // Dropping the runtime drops connections still open after the drain deadline; their
    // exchange guards hand the partial exchanges to the writer before it is closed.
    drop(runtime);
    let stats = writer.close();
    tracing::info!(
        written = stats.written,
        degraded = stats.degraded,
        lost = stats.lost,
        "traffic log closed"
    );
    if writer_died.load(Ordering::SeqCst) {
        return Err(RunError::WriterDied);
    }
    result
}

async fn serve(
    config: &Config,
    forwarder: Forwarder,
    writer: WriterHandle,
    floods: Arc<burst::ClientFloods>,
    shutdown_flag: Arc<ShutdownFlag>,
    token: CancellationToken,
) -> Result<(), RunError> {
    if let Some(addr) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::MetricsListen { addr, source })?;
        tracing::info!(addr = %listener.local_addr()?, "metrics at http://{}/metrics", listener.local_addr()?);
        tokio::spawn(metrics::serve(
            listener,
            writer.clone(),
            floods.clone(),
            token.clone(),
        ));
    }
    // Before the port opens: from then on a SIGHUP reopens the log, never kills the proxy.
    let hangups = signals::hangups()?;
    tokio::spawn(signals::on_hangup(hangups, move || writer.reopen()));
    // SIGTERM too: a supervisor stopping the proxy right after it started drains it.
    tokio::spawn(signals::on_shutdown(token.clone()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    tracing::info!(listen = %local, upstream = %config.upstream, log_file = %config.log_file.display(), "proxy started");

    // No timeout or compression layer here: either would break live SSE streams.
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::new(forwarder));
    let limits = server::Limits {
        header_read_timeout: config.header_read_timeout,
        keep_alive_timeout: config.keep_alive_timeout,
        max_header_bytes: config.max_header_bytes,
        max_connections: config.max_connections,
    };
    let mut server = tokio::spawn(server::serve(listener, app, limits, floods, token.clone()));
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
