//! Who may read the viewer. Bound to loopback without a token, only this machine can connect,
//! and a request must name the server as `localhost` or a loopback address (so a web page
//! whose host name was pointed at 127.0.0.1 cannot read it: DNS rebinding). With a token,
//! every request carries it: once in the address (`/t/<token>/...`, answered with a cookie and
//! a redirect to the same page without it), then in that cookie, or as
//! `Authorization: Bearer <token>`.

use http::{HeaderMap, Uri, header};
use sha2::{Digest as _, Sha256};

/// The path prefix that carries the token.
pub const TOKEN_PREFIX: &str = "/t/";
/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// A bad `--listen` / `--token` combination, naming the setting to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("--listen / VIEWER_LISTEN {0:?} is not an address like 127.0.0.1:8001 or 0.0.0.0:8001")]
    BadListen(String),
    #[error(
        "--listen / VIEWER_LISTEN {0} is reachable from other hosts, so every request must carry \
         a secret: set VIEWER_TOKEN (or --token) to a random string of at least 16 letters, \
         digits, '-' or '_', e.g. the output of `openssl rand -hex 24`, or listen on 127.0.0.1"
    )]
    TokenRequired(std::net::SocketAddr),
    #[error(
        "VIEWER_TOKEN (--token) must be at least 16 characters of letters, digits, '-' or '_' (it \
         goes into the viewer's address): generate one with `openssl rand -hex 24`"
    )]
    BadToken,
}

/// Checks the settings `serve` starts with: the address, and a token wherever the address is
/// not loopback. Shared by the `serve` command and the supervisor that runs it.
pub fn check(listen: &str, token: Option<&str>) -> Result<std::net::SocketAddr, SettingError> {
    let addr: std::net::SocketAddr = listen
        .trim()
        .parse()
        .map_err(|_| SettingError::BadListen(listen.to_string()))?;
    match token {
        Some(t)
            if t.len() < MIN_TOKEN_LEN
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err(SettingError::BadToken)
        }
        None if !addr.ip().is_loopback() => Err(SettingError::TokenRequired(addr)),
        _ => Ok(addr),
    }
}

/// The access rule of one server.
#[derive(Debug, Clone)]
pub struct Access {
    /// SHA-256 of the token: compared digest to digest, so the time a comparison takes says
    /// nothing about the token.
    token: Option<[u8; 32]>,
    cookie_name: String,
    cookie_value: String,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The token was in the address: set the cookie, send the browser to `location`.
    Login {
        location: String,
        cookie: String,
    },
    /// No token, or a wrong one.
    Denied,
    /// Without a token: a host name that is not loopback (DNS rebinding).
    WrongHost,
}

impl Access {
    pub fn new(token: Option<&str>) -> Access {
        let token: Option<[u8; 32]> = token.map(|t| Sha256::digest(t.as_bytes()).into());
        let (cookie_name, cookie_value) = match &token {
            // Named after the token, so viewers on other ports of the same host (cookies do not
            // tell ports apart) keep their own; the value is derived, not the token itself.
            Some(digest) => {
                let value = hex(&Sha256::digest(
                    [b"claude-api-logger viewer cookie:" as &[u8], digest].concat(),
                ));
                (format!("cal_viewer_{}", &hex(digest)[..12]), value)
            }
            None => (String::new(), String::new()),
        };
        Access {
            token,
            cookie_name,
            cookie_value,
        }
    }

    pub fn needs_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Verdict {
        if let Some(rest) = uri.path().strip_prefix(TOKEN_PREFIX) {
            let (given, page) = rest.split_once('/').unwrap_or((rest, ""));
            if self.token.is_some() && !self.matches(given) {
                return Verdict::Denied;
            }
            // `//host` or `/\host` would send the browser to another site.
            let page = page.trim_start_matches(['/', '\\']);
            let location = match uri.query() {
                Some(q) => format!("/{page}?{q}"),
                None => format!("/{page}"),
            };
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Lax",
                self.cookie_name, self.cookie_value
            );
            return Verdict::Login { location, cookie };
        }
        if self.token.is_none() {
            return match headers.get(header::HOST).map(|h| h.to_str()) {
                None => Verdict::Allow,
                Some(Ok(host)) if is_loopback_host(host) => Verdict::Allow,
                Some(_) => Verdict::WrongHost,
            };
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|t| self.matches(t.trim())) {
            return Verdict::Allow;
        }
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .any(|(name, value)| name == self.cookie_name && value == self.cookie_value);
        if cookie {
            Verdict::Allow
        } else {
            Verdict::Denied
        }
    }

    fn matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        self.token == Some(given)
    }
}

/// `localhost`, `*.localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn check_with(access: &Access, uri: &str, headers: &[(&str, &str)]) -> Verdict {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        access.check(&uri.parse().unwrap(), &map)
    }

    #[test]
    fn anything_but_loopback_needs_a_good_token() {
        assert!(check("127.0.0.1:8001", None).is_ok());
        assert!(check("[::1]:8001", None).is_ok());
        assert_eq!(
            check("0.0.0.0:8001", None),
            Err(SettingError::TokenRequired("0.0.0.0:8001".parse().unwrap()))
        );
        assert!(check("0.0.0.0:8001", Some(TOKEN)).is_ok());
        assert_eq!(
            check("0.0.0.0:8001", Some("short")),
            Err(SettingError::BadToken)
        );
        assert_eq!(
            check("127.0.0.1:8001", Some("has a space in it, 123456")),
            Err(SettingError::BadToken)
        );
        assert!(matches!(
            check("localhost", None),
            Err(SettingError::BadListen(_))
        ));
        let err = check("0.0.0.0:8001", None).unwrap_err().to_string();
        assert!(err.contains("VIEWER_TOKEN"), "{err}");
    }

    #[test]
    fn the_token_comes_in_the_address_then_a_cookie_or_a_bearer_header() {
        let access = Access::new(Some(TOKEN));
        assert_eq!(check_with(&access, "/", &[]), Verdict::Denied);
        assert_eq!(
            check_with(&access, "/t/wrong-token-0000000/", &[]),
            Verdict::Denied
        );
        let Verdict::Login { location, cookie } =
            check_with(&access, &format!("/t/{TOKEN}/exchange/ab?x=1"), &[])
        else {
            panic!("a login");
        };
        assert_eq!(location, "/exchange/ab?x=1");
        assert!(!cookie.contains(TOKEN), "the cookie is derived: {cookie}");
        let pair = cookie.split(';').next().unwrap();
        assert_eq!(
            check_with(&access, "/", &[("cookie", &format!("a=b; {pair}"))]),
            Verdict::Allow
        );
        assert_eq!(
            check_with(&access, "/", &[("cookie", "cal_viewer_x=y")]),
            Verdict::Denied
        );
        assert_eq!(
            check_with(
                &access,
                "/",
                &[("authorization", &format!("Bearer {TOKEN}"))]
            ),
            Verdict::Allow
        );
        // With a token, any host name may be used (the token is what protects).
        assert_eq!(
            check_with(
                &access,
                "/",
                &[
                    ("host", "evil.example"),
                    ("authorization", &format!("Bearer {TOKEN}"))
                ]
            ),
            Verdict::Allow
        );
    }

    #[test]
    fn a_login_never_redirects_to_another_site() {
        let access = Access::new(Some(TOKEN));
        for evil in ["//evil.example/x", "/\\evil.example", "///evil.example"] {
            let Verdict::Login { location, .. } =
                check_with(&access, &format!("/t/{TOKEN}{evil}"), &[])
            else {
                panic!("a login");
            };
            assert!(
                location.starts_with('/') && !location[1..].starts_with(['/', '\\']),
                "{location}"
            );
        }
    }

    #[test]
    fn without_a_token_only_loopback_host_names_are_served() {
        let access = Access::new(None);
        for host in [
            "127.0.0.1:8001",
            "localhost:8001",
            "[::1]:8001",
            "LOCALHOST",
            "x.localhost",
        ] {
            assert_eq!(
                check_with(&access, "/", &[("host", host)]),
                Verdict::Allow,
                "{host}"
            );
        }
        for host in [
            "evil.example:8001",
            "127.0.0.1.evil.example",
            "10.0.0.1:8001",
        ] {
            assert_eq!(
                check_with(&access, "/", &[("host", host)]),
                Verdict::WrongHost,
                "{host}"
            );
        }
    }
}
