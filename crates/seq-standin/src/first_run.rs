//! Seq's first-run rule, for the stand-in running as the Seq container: since Seq 2025.2 a new
//! instance refuses to start unless the administrator password is given or authentication is
//! explicitly turned off, and the container always needs `ACCEPT_EULA=Y`. The choice made at the
//! first start is kept in the data directory, and later starts ignore `SEQ_FIRSTRUN_*`, as Seq
//! does.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Where the stand-in keeps its first-run choice and the API keys created since, in its data
/// directory (the Seq volume). Plain JSON: this is a test peer, not a credential store.
pub const AUTH_FILE: &str = "standin-auth.json";

/// How the instance authenticates, fixed at its first start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authentication {
    /// `SEQ_FIRSTRUN_NOAUTHENTICATION=true`: anyone may read, and ingestion needs no key.
    Off,
    /// An administrator account; ingestion then needs an API key created by it.
    Admin {
        username: String,
        /// `None` when only `SEQ_FIRSTRUN_ADMINPASSWORDHASH` was given: the hash is Seq's own
        /// format, which the stand-in cannot check, so every login is refused.
        password: Option<String>,
    },
}

/// The persisted state: the first-run choice and the API keys created since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    pub authentication: Authentication,
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
}

/// An API key as the stand-in keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub title: String,
    pub token: String,
    pub permissions: Vec<String>,
}

impl ApiKey {
    /// Seq accepts events only with a key that holds the `Ingest` permission.
    pub fn can_ingest(&self) -> bool {
        self.permissions
            .iter()
            .any(|p| p.eq_ignore_ascii_case("ingest"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FirstRunError {
    #[error(
        "the Seq End User License Agreement has not been accepted: set ACCEPT_EULA=Y to accept it"
    )]
    EulaNotAccepted,
    #[error(
        "no administrator password was given for this new Seq instance: set \
         SEQ_FIRSTRUN_ADMINPASSWORD or SEQ_FIRSTRUN_ADMINPASSWORDHASH, or set \
         SEQ_FIRSTRUN_NOAUTHENTICATION=true to run without authentication (required since Seq 2025.2)"
    )]
    NoAuthenticationChoice,
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a stand-in auth file: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Applies the rule at start: `env` looks a variable up (the process environment in the
/// binary). Returns the state to run with, written to `dir` when this is the first start.
pub fn start(env: impl Fn(&str) -> Option<String>, dir: &Path) -> Result<AuthState, FirstRunError> {
    if env("ACCEPT_EULA").as_deref() != Some("Y") {
        return Err(FirstRunError::EulaNotAccepted);
    }
    let path = dir.join(AUTH_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            return serde_json::from_slice(&bytes).map_err(|source| FirstRunError::Corrupt {
                path: path.clone(),
                source,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(FirstRunError::Io { path, source }),
    }
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let username = set("SEQ_FIRSTRUN_ADMINUSERNAME").unwrap_or_else(|| "admin".into());
    let authentication = if let Some(password) = set("SEQ_FIRSTRUN_ADMINPASSWORD") {
        Authentication::Admin {
            username,
            password: Some(password),
        }
    } else if set("SEQ_FIRSTRUN_ADMINPASSWORDHASH").is_some() {
        Authentication::Admin {
            username,
            password: None,
        }
    } else if set("SEQ_FIRSTRUN_NOAUTHENTICATION").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        Authentication::Off
    } else {
        return Err(FirstRunError::NoAuthenticationChoice);
    };
    let state = AuthState {
        authentication,
        api_keys: Vec::new(),
    };
    save(dir, &state)?;
    Ok(state)
}

/// Writes the state to `dir` (after the first start and after each new API key).
pub fn save(dir: &Path, state: &AuthState) -> Result<(), FirstRunError> {
    let path = dir.join(AUTH_FILE);
    let io = |source| FirstRunError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let json = serde_json::to_vec_pretty(state).unwrap_or_default();
    let tmp = dir.join(format!("{AUTH_FILE}.tmp"));
    std::fs::write(&tmp, json).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("standin-first-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_new_instance_without_a_first_run_setting_refuses_to_start() {
        let d = dir("none");
        let err = start(env(&[("ACCEPT_EULA", "Y")]), &d).unwrap_err();
        assert!(
            matches!(err, FirstRunError::NoAuthenticationChoice),
            "{err}"
        );
        assert!(err.to_string().contains("SEQ_FIRSTRUN_ADMINPASSWORD"));
        assert!(!d.join(AUTH_FILE).exists());
        let err = start(
            env(&[
                ("ACCEPT_EULA", "Y"),
                ("SEQ_FIRSTRUN_NOAUTHENTICATION", "false"),
            ]),
            &d,
        )
        .unwrap_err();
        assert!(
            matches!(err, FirstRunError::NoAuthenticationChoice),
            "{err}"
        );
    }

    #[test]
    fn the_eula_must_be_accepted_even_with_a_password() {
        let d = dir("eula");
        let err = start(env(&[("SEQ_FIRSTRUN_ADMINPASSWORD", "pw")]), &d).unwrap_err();
        assert!(matches!(err, FirstRunError::EulaNotAccepted), "{err}");
    }

    #[test]
    fn the_first_choice_is_kept_and_later_first_run_settings_are_ignored() {
        let d = dir("kept");
        let first = start(
            env(&[("ACCEPT_EULA", "Y"), ("SEQ_FIRSTRUN_ADMINPASSWORD", "pw")]),
            &d,
        )
        .unwrap();
        assert_eq!(
            first.authentication,
            Authentication::Admin {
                username: "admin".into(),
                password: Some("pw".into())
            }
        );
        // A restart on the same data needs no first-run setting, and a new one changes nothing.
        let again = start(
            env(&[
                ("ACCEPT_EULA", "Y"),
                ("SEQ_FIRSTRUN_NOAUTHENTICATION", "true"),
            ]),
            &d,
        )
        .unwrap();
        assert_eq!(again, first);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn no_authentication_is_an_explicit_opt_out() {
        let d = dir("off");
        let state = start(
            env(&[
                ("ACCEPT_EULA", "Y"),
                ("SEQ_FIRSTRUN_NOAUTHENTICATION", "True"),
            ]),
            &d,
        )
        .unwrap();
        assert_eq!(state.authentication, Authentication::Off);
        let _ = std::fs::remove_dir_all(&d);
    }
}
