//! The old container's `fluent-bit.conf` (classic format, `${VAR}` expansion), read into the
//! settings it contributes; keys that would change behaviour are refused, naming the key.

use crate::config::error::{ConfigError, invalid};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What a fluent-bit.conf contributes (all optional; flags override).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FluentBitSettings {
    pub flush: Option<f64>,
    pub log_level: Option<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub path: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub refresh_interval: Option<f64>,
    pub rotate_wait: Option<f64>,
    pub read_from_head: Option<bool>,
    pub endpoint: Option<String>,
    pub tls_verify: Option<bool>,
    pub headers: Vec<(String, String)>,
}

/// Replaces `${VAR}` with the variable's value; an unset variable expands to the empty string,
/// as in Fluent Bit.
pub fn expand_vars(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push_str(&env(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Keys accepted and ignored because they only tuned Fluent Bit itself (its memory buffers,
/// its SQLite DB, its scheduler) or are met by the shipper's fixed behaviour.
const IGNORED_SERVICE: &[&str] = &[
    "daemon",
    "grace",
    "http_server",
    "parsers_file",
    "plugins_file",
    "hot_reload",
    "coro_stack_size",
    "scheduler.cap",
    "scheduler.base",
    "log_file",
];
const IGNORED_INPUT: &[&str] = &[
    "tag",
    "mem_buf_limit",
    "buffer_chunk_size",
    "buffer_max_size",
    "skip_long_lines",
    "skip_empty_lines",
    "db.sync",
    "db.locking",
    "db.journal_mode",
    "db.compare_filename",
    "inotify_watcher",
    "storage.type",
    "storage.pause_on_chunks_overlimit",
    "threaded",
    "alias",
    "exit_on_eof",
];
const IGNORED_OUTPUT: &[&str] = &[
    "match",
    "retry_limit",
    "workers",
    "alias",
    "log_response_payload",
    "storage.total_limit_size",
    "net.keepalive",
    "net.keepalive_idle_timeout",
    "net.connect_timeout",
    "metrics_uri",
    "traces_uri",
    "http2",
];

/// (section name, line, [(key, value, line)]).
type Section = (String, usize, Vec<(String, String, usize)>);

/// Parses the classic Fluent Bit format: `[SECTION]` headers, `key value` lines, `#`
/// comments, `@SET name=value` variables; `${VAR}` expanded from `@SET` then `env`.
pub fn parse_fluent_bit(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FluentBitSettings, ConfigError> {
    let mut sets: BTreeMap<String, String> = BTreeMap::new();
    let mut out = FluentBitSettings::default();
    let mut section: Option<String> = None;
    // Sections collected first, then interpreted one by one.
    let mut sections: Vec<Section> = Vec::new();
    let syntax = |line: usize, message: String| ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    };

    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('@') {
            let (directive, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            match directive.to_ascii_uppercase().as_str() {
                "SET" => {
                    let (k, v) = arg
                        .trim()
                        .split_once('=')
                        .ok_or_else(|| syntax(lineno, "expected `@SET name=value`".to_string()))?;
                    sets.insert(k.trim().to_string(), v.trim().to_string());
                }
                other => {
                    return Err(syntax(
                        lineno,
                        format!("directive @{other} is not supported by otlp-shipper"),
                    ));
                }
            }
            continue;
        }
        if line.starts_with('[') {
            let name = line
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or_else(|| syntax(lineno, format!("malformed section header {line:?}")))?;
            let name = name.trim().to_ascii_uppercase();
            section = Some(name.clone());
            sections.push((name, lineno, Vec::new()));
            continue;
        }
        let Some(current) = sections.last_mut() else {
            return Err(syntax(lineno, "key outside of any [SECTION]".to_string()));
        };
        debug_assert!(section.is_some());
        let (key, value) = line
            .split_once(char::is_whitespace)
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((line, ""));
        let value = expand_vars(value, &|name| sets.get(name).cloned().or_else(|| env(name)));
        current
            .2
            .push((key.to_ascii_lowercase(), value.trim().to_string(), lineno));
    }

    let mut inputs = 0;
    let mut outputs = 0;
    for (name, _line, kvs) in &sections {
        let get_name = || {
            kvs.iter()
                .find(|(k, _, _)| k == "name")
                .map(|(_, v, _)| v.to_ascii_lowercase())
        };
        let unknown = |key: &str| ConfigError::UnknownKey {
            path: path.to_path_buf(),
            section: name.clone(),
            key: key.to_string(),
        };
        let unsupported = |message: String| ConfigError::Unsupported {
            path: path.to_path_buf(),
            section: name.clone(),
            message,
        };
        match name.as_str() {
            "SERVICE" => {
                let mut listen: Option<String> = None;
                let mut port: Option<String> = None;
                let mut http_server = false;
                for (k, v, _) in kvs {
                    match k.as_str() {
                        "flush" => out.flush = Some(parse_secs("[SERVICE] flush", v)?),
                        "log_level" => out.log_level = Some(v.to_ascii_lowercase()),
                        "http_listen" => listen = Some(v.clone()),
                        "http_port" => port = Some(v.clone()),
                        "http_server" => {
                            http_server = parse_bool("[SERVICE] http_server", v)?;
                        }
                        "daemon" if parse_bool("[SERVICE] daemon", v)? => {
                            return Err(unsupported(
                                "daemon on is not supported: run otlp-shipper in the foreground"
                                    .to_string(),
                            ));
                        }
                        k if IGNORED_SERVICE.contains(&k) || k.starts_with("storage.") => {}
                        k => return Err(unknown(k)),
                    }
                }
                if http_server {
                    let addr = format!(
                        "{}:{}",
                        listen.as_deref().unwrap_or("0.0.0.0"),
                        port.as_deref().unwrap_or("2020")
                    );
                    out.metrics_listen = Some(addr.parse().map_err(|_| {
                        invalid("[SERVICE] http_listen/http_port", &addr, "not an address")
                    })?);
                }
            }
            "INPUT" => {
                inputs += 1;
                if get_name().as_deref() != Some("tail") {
                    return Err(unsupported(format!(
                        "only `name tail` inputs are supported, found {:?}",
                        get_name().unwrap_or_default()
                    )));
                }
                for (k, v, _) in kvs {
                    match k.as_str() {
                        "name" => {}
                        "path" => {
                            if v.contains(['*', '?', ',']) {
                                return Err(unsupported(format!(
                                    "path {v:?}: one file only (no wildcard or list)"
                                )));
                            }
                            out.path = Some(PathBuf::from(v));
                        }
                        "db" => out.db = Some(PathBuf::from(v)),
                        "refresh_interval" => {
                            out.refresh_interval = Some(parse_secs("[INPUT] refresh_interval", v)?)
                        }
                        "rotate_wait" => {
                            out.rotate_wait = Some(parse_secs("[INPUT] rotate_wait", v)?)
                        }
                        "read_from_head" => {
                            out.read_from_head = Some(parse_bool("[INPUT] read_from_head", v)?)
                        }
                        k if IGNORED_INPUT.contains(&k) => {}
                        k => return Err(unknown(k)),
                    }
                }
            }
            "OUTPUT" => {
                outputs += 1;
                if get_name().as_deref() != Some("opentelemetry") {
                    return Err(unsupported(format!(
                        "only `name opentelemetry` outputs are supported, found {:?}",
                        get_name().unwrap_or_default()
                    )));
                }
                let mut host = None;
                let mut port = None;
                let mut uri = "/v1/logs".to_string();
                let mut tls = false;
                for (k, v, _) in kvs {
                    match k.as_str() {
                        "name" => {}
                        "host" => host = Some(v.clone()).filter(|h| !h.is_empty()),
                        "port" => port = Some(v.clone()).filter(|p| !p.is_empty()),
                        "logs_uri" => uri = v.clone(),
                        "tls" => tls = parse_bool("[OUTPUT] tls", v)?,
                        "tls.verify" => {
                            out.tls_verify = Some(parse_bool("[OUTPUT] tls.verify", v)?)
                        }
                        "header" => {
                            let (hn, hv) = v
                                .split_once(char::is_whitespace)
                                .map(|(n, v)| (n, v.trim()))
                                .unwrap_or((v.as_str(), ""));
                            out.headers.push((hn.to_string(), hv.to_string()));
                        }
                        k if IGNORED_OUTPUT.contains(&k) => {}
                        k => return Err(unknown(k)),
                    }
                }
                if let Some(host) = host {
                    let port: u16 = match port {
                        Some(p) => p
                            .parse()
                            .map_err(|_| invalid("[OUTPUT] port", &p, "expected a TCP port"))?,
                        None if tls => 443,
                        None => 80,
                    };
                    let scheme = if tls { "https" } else { "http" };
                    let uri = if uri.starts_with('/') {
                        uri
                    } else {
                        format!("/{uri}")
                    };
                    out.endpoint = Some(format!("{scheme}://{host}:{port}{uri}"));
                }
            }
            "FILTER" | "PARSER" | "MULTILINE_PARSER" | "PLUGINS" | "UPSTREAM" => {
                return Err(unsupported(format!(
                    "[{name}] sections are not supported by otlp-shipper"
                )));
            }
            other => {
                return Err(unsupported(format!("unknown section [{other}]")));
            }
        }
    }
    if inputs > 1 || outputs > 1 {
        return Err(ConfigError::Unsupported {
            path: path.to_path_buf(),
            section: if inputs > 1 { "INPUT" } else { "OUTPUT" }.to_string(),
            message: "only one [INPUT] and one [OUTPUT] are supported".to_string(),
        });
    }
    Ok(out)
}

fn parse_secs(setting: &str, v: &str) -> Result<f64, ConfigError> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| invalid(setting, v, "expected a number of seconds > 0"))
}

fn parse_bool(setting: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(invalid(setting, v, "expected on/off")),
    }
}
