//! Configuration: the command line (flags with env fallbacks) and the validated [`Config`]
//! built from it and the old container's `fluent-bit.conf` ([`fluent_bit`]). Precedence: flag >
//! environment variable > fluent-bit.conf > built-in default.

pub mod error;
pub mod fluent_bit;

pub use error::ConfigError;
use error::invalid;
use fluent_bit::{FluentBitSettings, parse_fluent_bit};

use clap::Parser;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Seq's default per-request limit is 10 MB. Measured on loopback, 2-4 MB requests pipeline
/// better than 8 MB ones (the next batch is encoded while one is in flight); 2 MB ships as
/// fast as 4 MB and keeps a backlog of 20 MB records under 50 MB of RSS (docs/shipper.md).
pub const DEFAULT_BATCH_MAX_BYTES: usize = 2_000_000;
/// Seq's default per-event limit is 256 KiB (262,144 bytes) including attributes; an event's
/// budget is counted in JSON-escaped bytes, which leaves ~60 KiB of headroom.
pub const DEFAULT_EVENT_MAX_BYTES: usize = 200_000;
/// Below this an event could not hold its own attributes.
pub const MIN_EVENT_MAX_BYTES: usize = 8_192;
/// Default longest line held in memory: above the largest record the proxy writes with its
/// default capture cap (two 64 MiB bodies and the stream's events and message).
pub const DEFAULT_MAX_LINE_BYTES: usize = 512 << 20;
/// A line's dead-letter entry keeps this many leading bytes; the cap cannot go below it.
pub const MIN_MAX_LINE_BYTES: usize = 65_536;

/// The raw command line. Turned into a [`Config`] by [`Config::from_cli`].
#[derive(Debug, Parser)]
#[command(
    name = "otlp-shipper",
    version,
    // A repeated flag overrides the earlier one (wrappers append their own settings).
    args_override_self = true,
    about = "Tails the claude-api-logger traffic log and delivers every line to Seq (or any \
             OTLP/HTTP logs endpoint), at least once."
)]
pub struct Cli {
    /// A Fluent Bit classic-format config (the old container's fluent-bit.conf); its tail
    /// input and opentelemetry output settings are honoured, flags override them.
    #[arg(
        short = 'c',
        long = "config",
        env = "FLUENT_BIT_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// The traffic log to follow [default: /var/log/claude-logger.log].
    #[arg(long, env = "LOG_FILE", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Full OTLP/HTTP logs URL, e.g. http://seq:5341/ingest/otlp/v1/logs.
    #[arg(long, env = "OTLP_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Full OTLP/HTTP traces URL for the span of each exchange, or `none` [default: the
    /// endpoint with its trailing /v1/logs replaced by /v1/traces].
    #[arg(long, env = "OTLP_TRACES_ENDPOINT", value_name = "URL")]
    pub traces_endpoint: Option<String>,
    /// What Seq gets of the bodies: `delta` (each request's new messages, the system prompt
    /// and tools once, the response's reassembled message) or `full` (every body whole, SSE
    /// events included) [default: delta].
    #[arg(long, env = "SHIP_BODIES", value_name = "MODE")]
    pub bodies: Option<String>,
    /// A price table replacing the built-in one: crates/pricing/prices.json's shape or LiteLLM's
    /// model_prices_and_context_window.json.
    #[arg(long, env = "PRICES_FILE", value_name = "FILE", help = pricing::prices_help())]
    pub prices: Option<PathBuf>,
    /// `server.address` of the spans: the host the proxy forwards to [default:
    /// api.anthropic.com].
    #[arg(long, env = "SERVER_ADDRESS", value_name = "HOST")]
    pub server_address: Option<String>,
    /// The session viewer's address as the user's browser reaches it (`claude-api-logger
    /// serve`, with its token path if it has one), e.g. http://127.0.0.1:8001: every event and
    /// span of an exchange then carries `claude.view.url` = `<URL>/exchange/<id>`
    /// [default: none, no link].
    #[arg(
        long,
        env = "VIEW_BASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub view_base_url: Option<String>,
    /// Seq API key, sent as the X-Seq-ApiKey header.
    #[arg(long, env = "SEQ_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Where the delivered position is saved [default: <file>.checkpoint.json, or the
    /// tail input's DB path].
    #[arg(long, env = "CHECKPOINT_FILE", value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
    /// Where events the endpoint refuses for good are written [default:
    /// <file>.dead-letter.jsonl].
    #[arg(long, env = "DEAD_LETTER_FILE", value_name = "PATH")]
    pub dead_letter: Option<PathBuf>,
    /// Seconds a partly filled batch may wait before it is sent [default: 1].
    #[arg(long, env = "FLUSH_INTERVAL", value_name = "SECS")]
    pub flush_interval: Option<f64>,
    /// Seconds between checks of the file when no change notification arrives [default: 1].
    #[arg(long, env = "REFRESH_INTERVAL", value_name = "SECS")]
    pub refresh_interval: Option<f64>,
    /// Seconds a renamed file is still read after the new one appeared [default: 1].
    #[arg(long, env = "ROTATE_WAIT", value_name = "SECS")]
    pub rotate_wait: Option<f64>,
    /// Bytes of delivered rotated segments (`<file>.<stamp>.<n>`) kept, newest first; older
    /// ones are deleted, 0 keeps none [default: 1GiB]. Undelivered segments are never deleted.
    #[arg(long, env = "RETAIN_BYTES", value_name = "BYTES")]
    pub retain_bytes: Option<String>,
    /// Age (since its last write) past which a delivered segment is deleted, e.g. 7d, 12h, 0s
    /// [default: 7d].
    #[arg(long, env = "RETAIN_AGE", value_name = "DURATION")]
    pub retain_age: Option<String>,
    /// Without a checkpoint: start at the beginning of the file (true) or at its end
    /// [default: true].
    #[arg(long, env = "READ_FROM_HEAD", value_name = "BOOL")]
    pub read_from_head: Option<bool>,
    /// Upper bound of one request body in bytes [default: 2000000].
    #[arg(long, env = "BATCH_MAX_BYTES", value_name = "N")]
    pub batch_max_bytes: Option<usize>,
    /// Upper bound of one event (body + attributes, JSON-escaped) in bytes; larger bodies
    /// are split into ordered parts [default: 200000].
    #[arg(long, env = "EVENT_MAX_BYTES", value_name = "N")]
    pub event_max_bytes: Option<usize>,
    /// Longest line held in memory; a longer line is not shipped: its first 64 KiB go to the
    /// dead-letter file with its offset and length, and reading goes on after it
    /// [default: 536870912].
    #[arg(long, env = "MAX_LINE_BYTES", value_name = "N")]
    pub max_line_bytes: Option<usize>,
    /// Serve counters at http://ADDR/metrics (Prometheus text; JSON with ?format=json).
    #[arg(long, env = "METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds between two counter lines in the shipper's own log [default: 60].
    #[arg(long, env = "METRICS_INTERVAL", value_name = "SECS")]
    pub metrics_interval: Option<f64>,
    /// Ship until the file is fully delivered, then exit 0.
    #[arg(long)]
    pub exit_when_drained: bool,
    /// Diagnostics level: error, warn, info, debug, trace [default: info].
    #[arg(long, env = "SHIPPER_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// The validated configuration the shipper runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub endpoint: Url,
    /// `None`: no spans are built or sent.
    pub traces_endpoint: Option<Url>,
    pub bodies: crate::encode::Bodies,
    pub prices: std::sync::Arc<pricing::PriceTable>,
    pub server_address: String,
    /// Base of `claude.view.url`, without a trailing `/`.
    pub view_base_url: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub tls_verify: bool,
    pub checkpoint: PathBuf,
    pub dead_letter: PathBuf,
    pub flush_interval: Duration,
    pub refresh_interval: Duration,
    pub rotate_wait: Duration,
    pub read_from_head: bool,
    pub retain: crate::source::retention::Budget,
    pub batch_max_bytes: usize,
    pub event_max_bytes: usize,
    pub max_line_bytes: usize,
    pub metrics_listen: Option<SocketAddr>,
    pub metrics_interval: Duration,
    pub exit_when_drained: bool,
    pub log_level: String,
}

impl Config {
    /// Checks that the files the shipper writes can be created, so a wrong path is a
    /// configuration error at start rather than a failure after the first delivery.
    pub fn check_paths(&self) -> Result<(), ConfigError> {
        for (setting, path) in [
            (
                "--checkpoint / CHECKPOINT_FILE / [INPUT] DB",
                &self.checkpoint,
            ),
            ("--dead-letter / DEAD_LETTER_FILE", &self.dead_letter),
        ] {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                return Err(invalid(
                    setting,
                    &path.display().to_string(),
                    format!("directory {} does not exist", dir.display()),
                ));
            }
        }
        Ok(())
    }

    /// Builds the configuration from the command line, reading `-c` if given. `env` looks up
    /// `${VAR}` references of the config file (the process environment in `main`).
    pub fn from_cli(cli: Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let fb = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_fluent_bit(&text, path, env)?
            }
            None => FluentBitSettings::default(),
        };

        let file = cli
            .file
            .or(fb.path)
            .unwrap_or_else(|| PathBuf::from(traffic_record::DEFAULT_LOG_PATH));
        let endpoint_text = cli
            .endpoint
            .or(fb.endpoint)
            .ok_or(ConfigError::NoEndpoint)?;
        let endpoint = Url::parse(&endpoint_text)
            .map_err(|e| invalid("--endpoint / OTLP_ENDPOINT", &endpoint_text, e.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(invalid(
                "--endpoint / OTLP_ENDPOINT",
                &endpoint_text,
                "the scheme must be http or https",
            ));
        }

        let traces_setting = "--traces-endpoint / OTLP_TRACES_ENDPOINT";
        let traces_endpoint = match cli.traces_endpoint.as_deref() {
            Some("none") => None,
            Some(text) => {
                let url =
                    Url::parse(text).map_err(|e| invalid(traces_setting, text, e.to_string()))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(invalid(
                        traces_setting,
                        text,
                        "the scheme must be http or https",
                    ));
                }
                Some(url)
            }
            None => endpoint.path().strip_suffix("/v1/logs").map(|base| {
                let mut url = endpoint.clone();
                url.set_path(&format!("{base}/v1/traces"));
                url
            }),
        };
        let bodies = match cli.bodies.as_deref() {
            None | Some("delta") => crate::encode::Bodies::Delta,
            Some("full") => crate::encode::Bodies::Full,
            Some(other) => {
                return Err(invalid(
                    "--bodies / SHIP_BODIES",
                    other,
                    "expected delta or full",
                ));
            }
        };
        let prices = match &cli.prices {
            None => pricing::PriceTable::builtin(),
            Some(path) => pricing::PriceTable::from_file(path).map_err(|e| {
                invalid(
                    "--prices / PRICES_FILE",
                    &path.display().to_string(),
                    e.to_string(),
                )
            })?,
        };
        let server_address = cli
            .server_address
            .unwrap_or_else(|| crate::encode::DEFAULT_SERVER_ADDRESS.to_string());
        let view_base_url = match cli.view_base_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                // The value may hold the viewer's token: it is never echoed in an error.
                let hidden = "(hidden: it may hold the viewer's token)";
                let url = Url::parse(text).map_err(|e| {
                    invalid("--view-base-url / VIEW_BASE_URL", hidden, e.to_string())
                })?;
                if !matches!(url.scheme(), "http" | "https")
                    || url.query().is_some()
                    || url.fragment().is_some()
                {
                    return Err(invalid(
                        "--view-base-url / VIEW_BASE_URL",
                        hidden,
                        "expected an http(s) URL without ?query or #fragment, e.g. http://127.0.0.1:8001",
                    ));
                }
                Some(text.trim_end_matches('/').to_string())
            }
        };

        let mut raw_headers: Vec<(String, String)> = fb.headers;
        for h in &cli.headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| invalid("--header", h, "expected `Name: value`"))?;
            raw_headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        if let Some(key) = cli.api_key {
            raw_headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-seq-apikey"));
            raw_headers.push(("X-Seq-ApiKey".to_string(), key));
        }
        let mut headers = Vec::new();
        for (name, value) in raw_headers {
            // An API key that expands to nothing (SEQ_API_KEY unset) means "no key".
            if value.is_empty() {
                continue;
            }
            let hn = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid("header name", &name, e.to_string()))?;
            let mut hv = HeaderValue::from_str(&value)
                .map_err(|e| invalid(&format!("header {name}"), "(hidden)", e.to_string()))?;
            hv.set_sensitive(true);
            headers.push((hn, hv));
        }

        let secs = |setting: &str, v: Option<f64>, default: f64| -> Result<Duration, ConfigError> {
            let v = v.unwrap_or(default);
            if !(v.is_finite() && v > 0.0 && v < 86_400.0) {
                return Err(invalid(setting, &v.to_string(), "expected seconds > 0"));
            }
            Ok(Duration::from_secs_f64(v))
        };
        let flush_interval = secs(
            "--flush-interval / [SERVICE] flush",
            cli.flush_interval.or(fb.flush),
            1.0,
        )?;
        let refresh_interval = secs(
            "--refresh-interval / [INPUT] refresh_interval",
            cli.refresh_interval.or(fb.refresh_interval),
            1.0,
        )?;
        let rotate_wait = secs(
            "--rotate-wait / [INPUT] rotate_wait",
            cli.rotate_wait.or(fb.rotate_wait),
            1.0,
        )?;
        let metrics_interval = secs("--metrics-interval", cli.metrics_interval, 60.0)?;
        let retain_bytes = cli.retain_bytes.as_deref().unwrap_or("1GiB");
        let retain_age = cli.retain_age.as_deref().unwrap_or("7d");
        let retain = crate::source::retention::Budget {
            bytes: command_line::parse_bytes(retain_bytes).ok_or_else(|| {
                invalid(
                    "--retain-bytes / RETAIN_BYTES",
                    retain_bytes,
                    "expected a byte count, e.g. 1GiB, 500MiB or 0",
                )
            })?,
            age: humantime::parse_duration(retain_age).map_err(|e| {
                invalid(
                    "--retain-age / RETAIN_AGE",
                    retain_age,
                    format!("expected a duration, e.g. 7d, 12h or 0s ({e})"),
                )
            })?,
        };

        let event_max_bytes = cli.event_max_bytes.unwrap_or(DEFAULT_EVENT_MAX_BYTES);
        if event_max_bytes < MIN_EVENT_MAX_BYTES {
            return Err(invalid(
                "--event-max-bytes",
                &event_max_bytes.to_string(),
                format!("must be at least {MIN_EVENT_MAX_BYTES}"),
            ));
        }
        let batch_max_bytes = cli.batch_max_bytes.unwrap_or(DEFAULT_BATCH_MAX_BYTES);
        if batch_max_bytes < event_max_bytes + 1024 {
            return Err(invalid(
                "--batch-max-bytes",
                &batch_max_bytes.to_string(),
                format!(
                    "must exceed --event-max-bytes ({event_max_bytes}) by at least 1024 so one \
                     event always fits"
                ),
            ));
        }

        let max_line_bytes = cli.max_line_bytes.unwrap_or(DEFAULT_MAX_LINE_BYTES);
        if max_line_bytes < MIN_MAX_LINE_BYTES {
            return Err(invalid(
                "--max-line-bytes",
                &max_line_bytes.to_string(),
                format!("must be at least {MIN_MAX_LINE_BYTES}"),
            ));
        }

        let log_level = cli
            .log_level
            .or(fb.log_level)
            .unwrap_or_else(|| "info".to_string());
        if !matches!(
            log_level.as_str(),
            "off" | "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(invalid(
                "--log-level / [SERVICE] log_level",
                &log_level,
                "expected off, error, warn, info, debug or trace",
            ));
        }

        let checkpoint = cli
            .checkpoint
            .or(fb.db)
            .unwrap_or_else(|| with_suffix(&file, ".checkpoint.json"));
        let dead_letter = cli
            .dead_letter
            .unwrap_or_else(|| with_suffix(&file, ".dead-letter.jsonl"));

        Ok(Config {
            file,
            endpoint,
            traces_endpoint,
            bodies,
            prices: std::sync::Arc::new(prices),
            server_address,
            view_base_url,
            headers,
            tls_verify: fb.tls_verify.unwrap_or(true),
            checkpoint,
            dead_letter,
            flush_interval,
            refresh_interval,
            rotate_wait,
            read_from_head: cli.read_from_head.or(fb.read_from_head).unwrap_or(true),
            retain,
            batch_max_bytes,
            event_max_bytes,
            max_line_bytes,
            metrics_listen: cli.metrics_listen.or(fb.metrics_listen),
            metrics_interval,
            exit_when_drained: cli.exit_when_drained,
            log_level,
        })
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::fluent_bit::expand_vars;
    use super::*;
    use clap::CommandFactory;
    use std::collections::BTreeMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn repo_conf() -> (PathBuf, String) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fluent-bit/fluent-bit.conf");
        let text = std::fs::read_to_string(&path).expect("fluent-bit/fluent-bit.conf exists");
        (path, text)
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn repository_fluent_bit_conf_parses() {
        let (path, text) = repo_conf();
        let env = env_of(&[
            ("SEQ_HOST", "seq"),
            ("SEQ_PORT", "5341"),
            ("SEQ_API_KEY", "k3y"),
        ]);
        let fb = parse_fluent_bit(&text, &path, &env).unwrap();
        assert_eq!(fb.flush, Some(1.0));
        assert_eq!(fb.log_level.as_deref(), Some("info"));
        assert_eq!(fb.path, Some(PathBuf::from("/var/log/claude-logger.log")));
        assert_eq!(fb.db, Some(PathBuf::from("/var/log/flb_claude.db")));
        assert_eq!(fb.refresh_interval, Some(1.0));
        assert_eq!(fb.read_from_head, Some(true));
        assert_eq!(
            fb.endpoint.as_deref(),
            Some("http://seq:5341/ingest/otlp/v1/logs")
        );
        assert_eq!(
            fb.headers,
            vec![("X-Seq-ApiKey".to_string(), "k3y".to_string())]
        );
    }

    #[test]
    fn repository_conf_builds_a_config_and_flags_override_it() {
        let (path, _) = repo_conf();
        let env = env_of(&[("SEQ_HOST", "seq"), ("SEQ_PORT", "5341")]);
        let cli = Cli::try_parse_from([
            "otlp-shipper",
            "-c",
            path.to_str().unwrap(),
            "--file",
            "/tmp/x.log",
        ])
        .unwrap();
        let cfg = Config::from_cli(cli, &env).unwrap();
        assert_eq!(cfg.file, PathBuf::from("/tmp/x.log"));
        assert_eq!(cfg.endpoint.as_str(), "http://seq:5341/ingest/otlp/v1/logs");
        assert_eq!(cfg.checkpoint, PathBuf::from("/var/log/flb_claude.db"));
        // SEQ_API_KEY unset expands to nothing: no header is sent.
        assert!(cfg.headers.is_empty());
        assert_eq!(cfg.flush_interval, Duration::from_secs(1));
    }

    #[test]
    fn vars_expand_from_set_then_env_and_unset_is_empty() {
        let env = env_of(&[("A", "1"), ("B", "two")]);
        assert_eq!(expand_vars("x${A}y${B}z${C}", &env), "x1ytwoz");
        assert_eq!(expand_vars("no vars", &env), "no vars");
        assert_eq!(expand_vars("open ${A", &env), "open ${A");
        let text = "@SET B=fromset\n[OUTPUT]\n name opentelemetry\n host ${B}\n port 1\n";
        let fb = parse_fluent_bit(text, Path::new("t.conf"), &env).unwrap();
        assert_eq!(fb.endpoint.as_deref(), Some("http://fromset:1/v1/logs"));
    }

    #[test]
    fn a_repeated_flag_overrides_the_earlier_one() {
        let cli = Cli::try_parse_from(["otlp-shipper", "--checkpoint", "/a", "--checkpoint", "/b"])
            .unwrap();
        assert_eq!(cli.checkpoint, Some(PathBuf::from("/b")));
        let cli =
            Cli::try_parse_from(["otlp-shipper", "--header", "A: 1", "--header", "B: 2"]).unwrap();
        assert_eq!(cli.headers, ["A: 1", "B: 2"]);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let text = "[INPUT]\n name tail\n path /x\n parser json\n";
        let err = parse_fluent_bit(text, Path::new("t.conf"), &env_of(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`parser`") && msg.contains("[INPUT]"), "{msg}");
    }

    #[test]
    fn memory_tuning_keys_are_accepted_and_ignored() {
        let text = "[INPUT]\n Name tail\n Path /x\n Mem_Buf_Limit 5MB\n Buffer_Chunk_Size 32k\n \
                    Buffer_Max_Size 32k\n Skip_Long_Lines On\n";
        let fb = parse_fluent_bit(text, Path::new("t.conf"), &env_of(&[])).unwrap();
        assert_eq!(fb.path, Some(PathBuf::from("/x")));
    }

    #[test]
    fn filters_and_other_outputs_are_refused() {
        for text in [
            "[FILTER]\n name grep\n",
            "[OUTPUT]\n name http\n",
            "[INPUT]\n name tail\n path /a/*.log\n",
            "@INCLUDE other.conf\n",
        ] {
            assert!(
                parse_fluent_bit(text, Path::new("t.conf"), &env_of(&[])).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn fluent_bit_http_server_becomes_the_metrics_endpoint() {
        let text =
            "[SERVICE]\n flush 5\n http_server on\n http_listen 127.0.0.1\n http_port 2021\n";
        let fb = parse_fluent_bit(text, Path::new("t.conf"), &env_of(&[])).unwrap();
        assert_eq!(fb.metrics_listen, Some("127.0.0.1:2021".parse().unwrap()));
        assert_eq!(fb.flush, Some(5.0));
        let text = "[SERVICE]\n http_server off\n http_port 2021\n";
        let fb = parse_fluent_bit(text, Path::new("t.conf"), &env_of(&[])).unwrap();
        assert_eq!(fb.metrics_listen, None);
    }

    #[test]
    fn tls_on_gives_https_and_default_port() {
        let text = "[OUTPUT]\n name opentelemetry\n host seq.example\n tls on\n logs_uri /ingest/otlp/v1/logs\n";
        let fb = parse_fluent_bit(text, Path::new("t.conf"), &env_of(&[])).unwrap();
        assert_eq!(
            fb.endpoint.as_deref(),
            Some("https://seq.example:443/ingest/otlp/v1/logs")
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cli = Cli::try_parse_from([
            "otlp-shipper",
            "--endpoint",
            "http://x/v1/logs",
            "--event-max-bytes",
            "10",
        ])
        .unwrap();
        let err = Config::from_cli(cli, &env_of(&[])).unwrap_err().to_string();
        assert!(err.contains("--event-max-bytes"), "{err}");
        let cli = Cli::try_parse_from(["otlp-shipper"]).unwrap();
        let err = Config::from_cli(cli, &env_of(&[])).unwrap_err().to_string();
        assert!(err.contains("OTLP_ENDPOINT"), "{err}");
    }

    #[test]
    fn the_view_base_url_is_an_http_url_and_never_echoed() {
        let parse = |url: &str| {
            let cli = Cli::try_parse_from([
                "otlp-shipper",
                "--endpoint",
                "http://x/v1/logs",
                "--view-base-url",
                url,
            ])
            .unwrap();
            Config::from_cli(cli, &env_of(&[]))
        };
        let cfg = parse("http://127.0.0.1:8001/t/secret-0123456789ab/").unwrap();
        assert_eq!(
            cfg.view_base_url.as_deref(),
            Some("http://127.0.0.1:8001/t/secret-0123456789ab")
        );
        for bad in ["ftp://h/secret-x", "secret-x", "http://h/secret-x?a=1"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("VIEW_BASE_URL") && !err.contains("secret-x"),
                "{err}"
            );
        }
        let cli = Cli::try_parse_from(["otlp-shipper", "--endpoint", "http://x/v1/logs"]).unwrap();
        assert_eq!(
            Config::from_cli(cli, &env_of(&[])).unwrap().view_base_url,
            None
        );
    }

    #[test]
    fn api_key_flag_becomes_the_seq_header() {
        let cli = Cli::try_parse_from([
            "otlp-shipper",
            "--endpoint",
            "http://x/v1/logs",
            "--api-key",
            "secret",
        ])
        .unwrap();
        let cfg = Config::from_cli(cli, &env_of(&[])).unwrap();
        assert_eq!(cfg.headers.len(), 1);
        assert_eq!(cfg.headers[0].0.as_str(), "x-seq-apikey");
        assert_eq!(cfg.headers[0].1.to_str().unwrap(), "secret");
        assert_eq!(
            cfg.checkpoint,
            PathBuf::from("/var/log/claude-logger.log.checkpoint.json")
        );
    }

    #[test]
    fn the_traces_endpoint_sits_beside_the_logs_endpoint_unless_set() {
        let cfg = |args: &[&str]| {
            let mut argv = vec!["otlp-shipper"];
            argv.extend_from_slice(args);
            Config::from_cli(Cli::parse_from(argv), &|_| None).unwrap()
        };
        let c = cfg(&["--endpoint", "http://seq:5341/ingest/otlp/v1/logs"]);
        assert_eq!(
            c.traces_endpoint.unwrap().as_str(),
            "http://seq:5341/ingest/otlp/v1/traces"
        );
        assert_eq!(c.bodies, crate::encode::Bodies::Delta);
        let c = cfg(&["--endpoint", "http://collector:4318/custom"]);
        assert!(c.traces_endpoint.is_none(), "no guess for another path");
        let c = cfg(&[
            "--endpoint",
            "http://seq:5341/ingest/otlp/v1/logs",
            "--traces-endpoint",
            "none",
            "--bodies",
            "full",
        ]);
        assert!(c.traces_endpoint.is_none());
        assert_eq!(c.bodies, crate::encode::Bodies::Full);
    }
}
