//! The one error type of configuration: a setting the user must change, named in its message
//! (the shipper exits 64 on it).

use std::path::PathBuf;

/// A setting the user must change. Every message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path}: [{section}] key `{key}` is not supported by otlp-shipper (it would change \
         behaviour); remove it"
    )]
    UnknownKey {
        path: PathBuf,
        section: String,
        key: String,
    },
    #[error("{path}: [{section}] {message}")]
    Unsupported {
        path: PathBuf,
        section: String,
        message: String,
    },
    #[error("invalid value {value:?} for {setting}: {reason}")]
    Invalid {
        setting: String,
        value: String,
        reason: String,
    },
    #[error(
        "no OTLP endpoint: set --endpoint / OTLP_ENDPOINT (e.g. \
         http://seq:5341/ingest/otlp/v1/logs) or an [OUTPUT] host in the -c config file"
    )]
    NoEndpoint,
}

pub(crate) fn invalid(setting: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}
