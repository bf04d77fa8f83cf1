//! The command line (flags with env fallbacks) and the validated configuration built from it.

use crate::redact::{BodyScan, Redactor};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Transparent logging proxy for Claude Code's Anthropic API traffic.
///
/// Forwards every request to the upstream unchanged, streams responses back live, and appends
/// one JSON line per exchange to the log file (see docs/log-format.md).
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// Address to listen on (port 0 picks a free port; printed as `listening on IP:PORT`).
    #[arg(
        long,
        env = "PROXY_LISTEN",
        default_value = "0.0.0.0:8000",
        value_name = "ADDR"
    )]
    pub listen: String,

    /// Base URL every request is forwarded to (http or https; a base path is kept).
    #[arg(
        long,
        env = "UPSTREAM_URL",
        default_value = "https://api.anthropic.com",
        value_name = "URL"
    )]
    pub upstream: String,

    /// Traffic log: one JSON line per exchange, appended; created with mode 0600.
    #[arg(
        long,
        env = "LOG_FILE",
        default_value = traffic_record::DEFAULT_LOG_PATH,
        value_name = "PATH"
    )]
    pub log_file: PathBuf,

    /// Most bytes of each body kept for the log (e.g. 64MiB, 1048576); larger bodies are
    /// forwarded whole and logged as a truncated prefix.
    #[arg(
        long,
        env = "CAPTURE_CAP",
        default_value = "64MiB",
        value_name = "BYTES"
    )]
    pub capture_cap: String,

    /// Rotate the traffic log before it passes this size (e.g. 256MiB; 0: never): the live file
    /// is renamed to `<log file>.<UTC YYYYMMDDTHHMMSSZ>.<n>` at a record boundary and a fresh one
    /// is started.
    #[arg(
        long,
        env = "LOG_ROTATE_SIZE",
        default_value = "256MiB",
        value_name = "BYTES"
    )]
    pub rotate_size: String,

    /// Disk budget of the traffic log and its rotated segments together (e.g. 10GiB; 0: none):
    /// past it, records are written without their bodies (marked `"degraded":"disk_budget"`).
    #[arg(
        long,
        env = "LOG_DISK_BUDGET",
        default_value = "0",
        value_name = "BYTES"
    )]
    pub log_disk_budget: String,

    /// Serve the traffic log's counters (records written, degraded, lost) at
    /// http://ADDR/metrics, Prometheus text [default: off].
    #[arg(long, env = "PROXY_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,

    /// Seconds the upstream may stay silent (no byte) before the exchange is ended.
    #[arg(long, env = "IDLE_TIMEOUT", default_value = "600", value_name = "SECS")]
    pub idle_timeout: String,

    /// Seconds to let in-flight exchanges finish after SIGTERM/SIGINT before exiting.
    #[arg(long, env = "DRAIN_TIMEOUT", default_value = "30", value_name = "SECS")]
    pub drain_timeout: String,

    /// Seconds a client may take to send a whole request head, counted from its first byte (on
    /// a new connection: from the accept); a slower client's connection is closed.
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT",
        default_value = "30",
        value_name = "SECS"
    )]
    pub header_read_timeout: String,

    /// Seconds a client may leave its request body waiting (no byte arriving) before its
    /// connection is closed with 408; time the upstream takes to accept the body is not
    /// counted. Also the grace before --body-min-rate applies.
    #[arg(
        long,
        env = "BODY_READ_TIMEOUT",
        default_value = "30",
        value_name = "SECS"
    )]
    pub body_read_timeout: String,

    /// Least average rate of a request body, bytes per second of waiting for it (e.g. 1KiB),
    /// once --body-read-timeout of waiting has passed; a slower client gets 408 and is closed
    /// (0: no minimum).
    #[arg(
        long,
        env = "BODY_MIN_RATE",
        default_value = "1KiB",
        value_name = "BYTES"
    )]
    pub body_min_rate: String,

    /// Most bytes a body may take in the log, decoded and escaped, per byte it took on the
    /// wire (gzip, deflate, br, zstd); past it the logged body is a prefix marked
    /// `"truncated_by":"decode_ratio"`.
    #[arg(long, env = "MAX_DECODE_RATIO", default_value = "20", value_name = "N")]
    pub max_decode_ratio: String,

    /// Seconds a client connection may stay idle, from the end of a response to the first byte
    /// of the next request, before it is closed; never while a request is served. Claude Code
    /// keeps idle connections for minutes (Bun's fetch: 5); the default outlasts that, so the
    /// client closes first and never sends a request onto a connection being closed.
    #[arg(
        long,
        env = "KEEP_ALIVE_TIMEOUT",
        default_value = "600",
        value_name = "SECS"
    )]
    pub keep_alive_timeout: String,

    /// Most bytes of a request head (request line and headers); a larger one gets 431 and the
    /// connection is closed.
    #[arg(
        long,
        env = "MAX_HEADER_BYTES",
        default_value = "64KiB",
        value_name = "BYTES"
    )]
    pub max_header_bytes: String,

    /// Most client connections open at once; a connection over it is answered 503 and closed
    /// at once, those open are served on.
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        default_value = "1024",
        value_name = "N"
    )]
    pub max_connections: String,

    /// Header names whose values are logged as [REDACTED]: comma-separated, `*` matches any
    /// run of characters, a leading `!` keeps a name an earlier glob matched.
    #[arg(
        long,
        env = "REDACT_HEADERS",
        default_value = crate::redact::DEFAULT_HEADERS,
        value_name = "GLOBS"
    )]
    pub redact_headers: String,

    /// Query parameter names whose values are logged as [REDACTED] (same syntax as
    /// --redact-headers).
    #[arg(
        long,
        env = "REDACT_QUERY",
        default_value = crate::redact::DEFAULT_QUERY,
        value_name = "GLOBS"
    )]
    pub redact_query: String,

    /// Replace known credential formats in logged bodies by `[REDACTED:<kind>]`: on or off.
    #[arg(
        long,
        env = "REDACT_BODIES",
        default_value = "on",
        value_name = "on|off"
    )]
    pub redact_bodies: String,

    /// Extra body patterns, one `KIND REGEX` a line (`#` comments); a `(?P<secret>...)` group,
    /// when present, is what gets replaced.
    #[arg(long, env = "REDACT_PATTERNS_FILE", value_name = "PATH")]
    pub redact_patterns_file: Option<PathBuf>,
}

/// A setting the proxy cannot run with; the message names the flag and its env variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid --listen (env PROXY_LISTEN) {value:?}: expected IP:PORT, e.g. 0.0.0.0:8000")]
    Listen { value: String },
    #[error(
        "invalid --metrics-listen (env PROXY_METRICS_LISTEN) {value:?}: expected IP:PORT, e.g. 127.0.0.1:9100"
    )]
    MetricsListen { value: String },
    #[error("invalid --upstream (env UPSTREAM_URL) {value:?}: {reason}")]
    Upstream { value: String, reason: String },
    #[error(
        "invalid --capture-cap (env CAPTURE_CAP) {value:?}: expected a byte count above 0, e.g. 64MiB or 1048576"
    )]
    CaptureCap { value: String },
    #[error(
        "invalid --max-header-bytes (env MAX_HEADER_BYTES) {value:?}: expected a byte count from 8KiB, e.g. 64KiB"
    )]
    MaxHeaderBytes { value: String },
    #[error(
        "invalid --max-connections (env MAX_CONNECTIONS) {value:?}: expected a whole number above 0"
    )]
    MaxConnections { value: String },
    #[error(
        "invalid --max-decode-ratio (env MAX_DECODE_RATIO) {value:?}: expected a whole number from 1, e.g. 20"
    )]
    MaxDecodeRatio { value: String },
    #[error("invalid --redact-bodies (env REDACT_BODIES) {value:?}: expected on or off")]
    RedactBodies { value: String },
    #[error(transparent)]
    Redact(#[from] crate::redact::RedactError),
    #[error(
        "invalid --{flag} (env {env}) {value:?}: expected a byte count, e.g. 256MiB, or 0 for none"
    )]
    Bytes {
        flag: &'static str,
        env: &'static str,
        value: String,
    },
    #[error("invalid --{flag} (env {env}) {value:?}: expected whole seconds above 0")]
    Seconds {
        flag: &'static str,
        env: &'static str,
        value: String,
    },
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Scheme, authority and base path without a trailing `/`, e.g. `https://api.anthropic.com`.
    pub upstream: url::Url,
    pub log_file: PathBuf,
    pub capture_cap: usize,
    /// 0: never rotate.
    pub rotate_size: u64,
    /// 0: no budget.
    pub disk_budget: u64,
    pub metrics_listen: Option<SocketAddr>,
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub body_read_timeout: Duration,
    /// Bytes per second; 0: none.
    pub body_min_rate: u64,
    pub max_decode_ratio: u64,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub redactor: Arc<Redactor>,
}

impl TryFrom<Cli> for Config {
    type Error = ConfigError;

    fn try_from(cli: Cli) -> Result<Self, ConfigError> {
        let listen = cli
            .listen
            .parse()
            .map_err(|_| ConfigError::Listen { value: cli.listen })?;
        let upstream = parse_upstream(&cli.upstream)?;
        let capture_cap =
            parse_size(&cli.capture_cap)
                .filter(|&n| n > 0)
                .ok_or(ConfigError::CaptureCap {
                    value: cli.capture_cap,
                })?;
        let bytes = |value: &str, flag, env| {
            command_line::parse_bytes(value).ok_or_else(|| ConfigError::Bytes {
                flag,
                env,
                value: value.to_string(),
            })
        };
        let rotate_size = bytes(&cli.rotate_size, "rotate-size", "LOG_ROTATE_SIZE")?;
        let disk_budget = bytes(&cli.log_disk_budget, "log-disk-budget", "LOG_DISK_BUDGET")?;
        let metrics_listen = match cli.metrics_listen {
            None => None,
            Some(value) => Some(
                value
                    .parse()
                    .map_err(|_| ConfigError::MetricsListen { value })?,
            ),
        };
        let idle_timeout = parse_secs(&cli.idle_timeout, "idle-timeout", "IDLE_TIMEOUT")?;
        let drain_timeout = parse_secs(&cli.drain_timeout, "drain-timeout", "DRAIN_TIMEOUT")?;
        let header_read_timeout = parse_secs(
            &cli.header_read_timeout,
            "header-read-timeout",
            "HEADER_READ_TIMEOUT",
        )?;
        let keep_alive_timeout = parse_secs(
            &cli.keep_alive_timeout,
            "keep-alive-timeout",
            "KEEP_ALIVE_TIMEOUT",
        )?;
        let body_read_timeout = parse_secs(
            &cli.body_read_timeout,
            "body-read-timeout",
            "BODY_READ_TIMEOUT",
        )?;
        let body_min_rate = bytes(&cli.body_min_rate, "body-min-rate", "BODY_MIN_RATE")?;
        let max_decode_ratio = cli
            .max_decode_ratio
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or(ConfigError::MaxDecodeRatio {
                value: cli.max_decode_ratio,
            })?;
        // hyper's smallest read buffer is 8 KiB; a head must fit in it.
        let max_header_bytes = parse_size(&cli.max_header_bytes)
            .filter(|&n| n >= 8192)
            .ok_or(ConfigError::MaxHeaderBytes {
                value: cli.max_header_bytes,
            })?;
        let max_connections = cli
            .max_connections
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0 && n <= tokio::sync::Semaphore::MAX_PERMITS)
            .ok_or(ConfigError::MaxConnections {
                value: cli.max_connections,
            })?;
        let enabled = match cli.redact_bodies.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            _ => {
                return Err(ConfigError::RedactBodies {
                    value: cli.redact_bodies,
                });
            }
        };
        let extra = match &cli.redact_patterns_file {
            Some(path) => crate::redact::read_patterns(path)?,
            None => Vec::new(),
        };
        let redactor = Redactor::new(
            &cli.redact_headers,
            &cli.redact_query,
            &BodyScan { enabled, extra },
        )?;
        Ok(Config {
            listen,
            upstream,
            log_file: cli.log_file,
            capture_cap,
            rotate_size,
            disk_budget,
            metrics_listen,
            idle_timeout,
            drain_timeout,
            header_read_timeout,
            keep_alive_timeout,
            body_read_timeout,
            body_min_rate,
            max_decode_ratio,
            max_header_bytes,
            max_connections,
            redactor: Arc::new(redactor),
        })
    }
}

fn parse_upstream(value: &str) -> Result<url::Url, ConfigError> {
    let err = |reason: &str| ConfigError::Upstream {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let url = url::Url::parse(value).map_err(|e| err(&format!("not a URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(err("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err("a host is required"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("a base URL takes no query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("credentials in the URL are not supported"));
    }
    Ok(url)
}

fn parse_secs(value: &str, flag: &'static str, env: &'static str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .ok_or(ConfigError::Seconds {
            flag,
            env,
            value: value.to_string(),
        })
}

/// A byte size ([`command_line::parse_bytes`]) that fits in memory.
fn parse_size(value: &str) -> Option<usize> {
    command_line::parse_bytes(value).and_then(|n| usize::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn upstream_must_be_http_with_a_host() {
        assert!(parse_upstream("https://api.anthropic.com").is_ok());
        assert!(parse_upstream("http://127.0.0.1:9/base").is_ok());
        assert!(parse_upstream("ftp://x").is_err());
        assert!(parse_upstream("api.anthropic.com").is_err());
    }
}
