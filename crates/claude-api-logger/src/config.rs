//! The entrypoint's settings (flags with environment fallbacks, as the old container used env
//! only) validated into a `Config` before any child starts, so a typo fails fast with exit 64.
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Exit code for a configuration error: 64, EX_USAGE of sysexits.h (linkerd also exits 64 for
/// bad config), the code every binary of the project uses for it.
pub const EXIT_CONFIG: u8 = command_line::EXIT_USAGE;

/// PID 1 of the claude-api-logger image: runs claude-api-proxy and otlp-shipper.
#[derive(Debug, Parser)]
#[command(name = "claude-api-logger", version, about, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exit 0 when the proxy accepts connections (the image's HEALTHCHECK; needs no curl).
    Health(HealthArgs),
    /// List the Claude Code sessions in the traffic log, newest first.
    Sessions(viewer::cli::SessionsArgs),
    /// Show one session as a conversation in the terminal.
    Show(viewer::cli::ShowArgs),
    /// Write one session to a self-contained HTML page.
    Html(viewer::cli::HtmlArgs),
    /// Serve the sessions to a browser, live, read-only (127.0.0.1 unless told otherwise).
    Serve(viewer::serve::ServeArgs),
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The proxy's listen address; 0.0.0.0 / [::] are probed on loopback.
    #[arg(long, env = "PROXY_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: String,
    /// Give up connecting after this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Seq host the traffic ships to (fluent-bit.conf reads ${SEQ_HOST}).
    #[arg(long, env = "SEQ_HOST")]
    pub seq_host: Option<String>,
    /// Seq port (fluent-bit.conf reads ${SEQ_PORT}).
    #[arg(long, env = "SEQ_PORT", default_value_t = 5341)]
    pub seq_port: u16,
    /// Seq API key, sent as X-Seq-ApiKey (fluent-bit.conf reads ${SEQ_API_KEY}).
    #[arg(long, env = "SEQ_API_KEY", hide_env_values = true)]
    pub seq_api_key: Option<String>,
    /// Where the proxy forwards Claude Code's requests.
    #[arg(
        long,
        env = "UPSTREAM_URL",
        default_value = "https://api.anthropic.com"
    )]
    pub upstream_url: String,
    /// The traffic log the proxy writes and the shipper tails.
    #[arg(long, env = "LOG_FILE", default_value = traffic_record::DEFAULT_LOG_PATH)]
    pub log_file: PathBuf,
    /// The shipper's configuration (the old container's fluent-bit.conf).
    #[arg(
        long,
        env = "FLUENT_BIT_CONFIG",
        default_value = "/etc/claude-api-logger/fluent-bit.conf"
    )]
    pub fluent_bit_conf: PathBuf,
    /// claude-api-proxy executable [default: next to this executable, else /usr/local/bin].
    #[arg(long, env = "PROXY_BIN")]
    pub proxy_bin: Option<PathBuf>,
    /// otlp-shipper executable [default: next to this executable, else /usr/local/bin].
    #[arg(long, env = "SHIPPER_BIN")]
    pub shipper_bin: Option<PathBuf>,
    /// Seconds the proxy gets to drain in-flight exchanges after SIGTERM before SIGKILL
    /// (keep it above the proxy's DRAIN_TIMEOUT, 30 s by default).
    #[arg(long, env = "PROXY_GRACE_SECS", default_value_t = 35)]
    pub proxy_grace_secs: u64,
    /// Seconds the shipper gets at shutdown to deliver everything written; what is left then
    /// stays in the log file and ships at the next start (the checkpoint says where it was).
    #[arg(long, env = "DELIVERY_TIMEOUT_SECS", default_value_t = 60)]
    pub delivery_timeout_secs: u64,
    /// First restart delay of a crashed child, in milliseconds (doubles on each crash).
    #[arg(long, env = "RESTART_BACKOFF_MIN_MS", default_value_t = 500)]
    pub restart_backoff_min_ms: u64,
    /// Longest restart delay of a crash-looping child, in milliseconds.
    #[arg(long, env = "RESTART_BACKOFF_MAX_MS", default_value_t = 30_000)]
    pub restart_backoff_max_ms: u64,
    /// Also run the session viewer (`claude-api-logger serve`) on this address, e.g.
    /// 0.0.0.0:8001 (anything but loopback needs VIEWER_TOKEN) [default: not run].
    #[arg(long, env = "VIEWER_LISTEN")]
    pub viewer_listen: Option<String>,
    /// The secret every request to the viewer must carry (passed to it in its environment).
    #[arg(long, env = "VIEWER_TOKEN", hide_env_values = true)]
    pub viewer_token: Option<String>,
}

/// A configuration problem, naming the setting to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "SEQ_HOST is not set: set SEQ_HOST (or --seq-host) to the host name of the Seq server \
         the traffic ships to, e.g. SEQ_HOST=seq"
    )]
    MissingSeqHost,
    #[error("SEQ_HOST {0:?} is not a host name: give only the host, e.g. SEQ_HOST=seq")]
    BadSeqHost(String),
    #[error("SEQ_PORT 0 is not a usable port: set SEQ_PORT to Seq's port (default 5341)")]
    ZeroSeqPort,
    #[error(
        "UPSTREAM_URL {0:?} is not an http(s) URL: set UPSTREAM_URL like https://api.anthropic.com"
    )]
    BadUpstream(String),
    #[error(
        "FLUENT_BIT_CONFIG {path}: {reason}: point FLUENT_BIT_CONFIG (or --fluent-bit-conf) at the \
         shipper's fluent-bit.conf"
    )]
    FluentBitConf { path: String, reason: String },
    #[error("{setting} {path}: {reason}: point {setting} at the {program} executable")]
    Program {
        setting: &'static str,
        program: &'static str,
        path: String,
        reason: String,
    },
    #[error("RESTART_BACKOFF_MIN_MS must be at least 1 (it was 0)")]
    ZeroBackoff,
    #[error("{0}")]
    Viewer(#[from] viewer::serve::access::SettingError),
}

/// Validated settings of one supervisor run.
#[derive(Debug, Clone)]
pub struct Config {
    pub seq_host: String,
    pub seq_port: u16,
    pub seq_api_key: Option<String>,
    pub upstream_url: String,
    pub log_file: PathBuf,
    pub fluent_bit_conf: PathBuf,
    pub proxy_bin: PathBuf,
    pub shipper_bin: PathBuf,
    pub proxy_grace: Duration,
    pub delivery_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The viewer's address and token, when it runs.
    pub viewer: Option<Viewer>,
}

/// How the supervised viewer runs: this same program, `serve`.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub listen: std::net::SocketAddr,
    pub token: Option<String>,
    pub program: PathBuf,
}

impl Config {
    pub fn from_cli(args: RunArgs) -> Result<Self, ConfigError> {
        let seq_host = match args.seq_host.as_deref().map(str::trim) {
            None | Some("") => return Err(ConfigError::MissingSeqHost),
            Some(h) => h.to_owned(),
        };
        if seq_host.contains(['/', ' ', '@', '?', '#']) || seq_host.contains("://") {
            return Err(ConfigError::BadSeqHost(seq_host));
        }
        if args.seq_port == 0 {
            return Err(ConfigError::ZeroSeqPort);
        }
        check_upstream(&args.upstream_url)?;
        check_readable(&args.fluent_bit_conf).map_err(|reason| ConfigError::FluentBitConf {
            path: args.fluent_bit_conf.display().to_string(),
            reason,
        })?;
        let proxy_bin = resolve_program(args.proxy_bin, "claude-api-proxy", "PROXY_BIN")?;
        let shipper_bin = resolve_program(args.shipper_bin, "otlp-shipper", "SHIPPER_BIN")?;
        if args.restart_backoff_min_ms == 0 {
            return Err(ConfigError::ZeroBackoff);
        }
        let token = args.viewer_token.filter(|t| !t.is_empty());
        let viewer = match args.viewer_listen.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(listen) => Some(Viewer {
                listen: viewer::serve::access::check(listen, token.as_deref())?,
                token,
                program: std::env::current_exe().map_err(|e| ConfigError::Program {
                    setting: "VIEWER_LISTEN",
                    program: "claude-api-logger",
                    path: "(this program)".into(),
                    reason: e.to_string(),
                })?,
            }),
        };
        Ok(Self {
            seq_host,
            seq_port: args.seq_port,
            seq_api_key: args.seq_api_key.filter(|k| !k.is_empty()),
            upstream_url: args.upstream_url,
            log_file: args.log_file,
            fluent_bit_conf: args.fluent_bit_conf,
            proxy_bin,
            shipper_bin,
            proxy_grace: Duration::from_secs(args.proxy_grace_secs),
            delivery_timeout: Duration::from_secs(args.delivery_timeout_secs),
            backoff_min: Duration::from_millis(args.restart_backoff_min_ms),
            backoff_max: Duration::from_millis(args.restart_backoff_max_ms),
            viewer,
        })
    }
}

fn check_upstream(url: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::BadUpstream(url.to_owned());
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains([' ', '@']) {
        return Err(bad());
    }
    Ok(())
}

fn check_readable(path: &Path) -> Result<(), String> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// An explicit path, else the program next to our own executable (a dev build's target dir,
/// or the image's /usr/local/bin), else /usr/local/bin.
fn resolve_program(
    explicit: Option<PathBuf>,
    program: &'static str,
    setting: &'static str,
) -> Result<PathBuf, ConfigError> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(path) => vec![path],
        None => {
            let mut c = Vec::new();
            if let Some(dir) = std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                c.push(dir.join(program));
            }
            c.push(Path::new("/usr/local/bin").join(program));
            c
        }
    };
    let mut last = String::new();
    for path in &candidates {
        match is_executable(path) {
            Ok(()) => return Ok(path.clone()),
            Err(reason) => last = reason,
        }
    }
    Err(ConfigError::Program {
        setting,
        program,
        path: candidates
            .last()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        reason: last,
    })
}

fn is_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("not executable".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    fn args(extra: &[&str]) -> RunArgs {
        let mut argv = vec![
            "claude-api-logger",
            "--proxy-bin",
            "/bin/sh",
            "--shipper-bin",
            "/bin/sh",
            "--fluent-bit-conf",
            "/etc/hostname",
        ];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).expect("parses").run
    }

    #[test]
    fn seq_host_is_required() {
        // Only valid if SEQ_HOST is absent from the test environment; tests never set it.
        if std::env::var_os("SEQ_HOST").is_none() {
            assert_eq!(
                Config::from_cli(args(&[])).unwrap_err(),
                ConfigError::MissingSeqHost
            );
        }
    }

    #[test]
    fn a_url_is_not_a_seq_host() {
        let err = Config::from_cli(args(&["--seq-host", "http://seq:5341"])).unwrap_err();
        assert!(err.to_string().contains("SEQ_HOST"), "{err}");
    }

    #[test]
    fn upstream_must_be_http() {
        let err = Config::from_cli(args(&["--seq-host", "seq", "--upstream-url", "ftp://x"]))
            .unwrap_err();
        assert!(err.to_string().starts_with("UPSTREAM_URL"), "{err}");
    }

    #[test]
    fn missing_program_names_its_setting() {
        let err = Config::from_cli(args(&["--seq-host", "seq", "--proxy-bin", "/nonexistent"]))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("PROXY_BIN /nonexistent"),
            "{err}"
        );
    }

    #[test]
    fn missing_conf_names_its_setting() {
        let err = Config::from_cli(args(&[
            "--seq-host",
            "seq",
            "--fluent-bit-conf",
            "/nonexistent",
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("FLUENT_BIT_CONFIG /nonexistent"),
            "{err}"
        );
    }

    #[test]
    fn the_viewer_runs_only_when_asked_and_off_loopback_only_with_a_token() {
        let c = Config::from_cli(args(&["--seq-host", "seq"])).expect("valid");
        assert!(c.viewer.is_none());
        let c = Config::from_cli(args(&[
            "--seq-host",
            "seq",
            "--viewer-listen",
            "127.0.0.1:8001",
        ]))
        .expect("valid");
        assert_eq!(c.viewer.unwrap().listen, "127.0.0.1:8001".parse().unwrap());
        let err = Config::from_cli(args(&[
            "--seq-host",
            "seq",
            "--viewer-listen",
            "0.0.0.0:8001",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("VIEWER_TOKEN"), "{err}");
        let c = Config::from_cli(args(&[
            "--seq-host",
            "seq",
            "--viewer-listen",
            "0.0.0.0:8001",
            "--viewer-token",
            "0123456789abcdef0123",
        ]))
        .expect("valid");
        assert_eq!(
            c.viewer.unwrap().token.as_deref(),
            Some("0123456789abcdef0123")
        );
    }

    #[test]
    fn defaults_match_the_old_container() {
        let c = Config::from_cli(args(&["--seq-host", "seq"])).expect("valid");
        assert_eq!(c.seq_port, 5341);
        assert_eq!(c.upstream_url, "https://api.anthropic.com");
        assert_eq!(c.log_file, Path::new("/var/log/claude-logger.log"));
        assert_eq!(c.seq_api_key, None);
    }
}
