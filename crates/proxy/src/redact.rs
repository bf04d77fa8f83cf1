//! What keeps secrets out of the traffic record: credential-looking header names and query
//! parameters, and known credential formats inside bodies, replaced by markers.
//!
//! It runs on the writer thread, inside [`crate::record::build`], on what is written and
//! shipped only: the live path forwards every byte unchanged and never calls it.
//!
//! Bodies are scanned with the `regex` crate. The formats that start with a literal (`sk-ant-`,
//! `AKIA`, ...) are one [`RegexSet`], which says in one fast pass (the crate searches for the
//! literals first) which of them occur; only those formats' own [`Regex`]es then run to find
//! where. The assignments (`NAME=value`) start with no literal, and in the set they made the
//! whole pass ~30x slower; each runs on its own, where the crate searches for its `=` first.
//! Every pattern matches characters that never end a JSON string (no `"`, no lone `\`), so a
//! redacted JSON body stays JSON, byte for byte the same outside the markers.

use regex::{Regex, RegexSet};
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use traffic_record::REDACTED;

/// Header names redacted by default (globs, `*` any run of characters; a leading `!` keeps
/// what an earlier pattern would redact). `anthropic-ratelimit-*` carries token *counts*.
pub const DEFAULT_HEADERS: &str = "*key*,*token*,*secret*,*auth*,*cookie*,*password*,*passwd*,*credential*,*signature*,*session-secret*,!anthropic-ratelimit-*";

/// Query parameter names redacted by default (same syntax as [`DEFAULT_HEADERS`]).
pub const DEFAULT_QUERY: &str =
    "*key*,*token*,*secret*,*password*,*passwd*,pwd,*auth*,*credential*,sig,*signature*,code";

/// A known credential format: the kind named in its marker, the pattern, and which capture
/// group is the secret (0: the whole match).
struct Format {
    kind: String,
    regex: Regex,
    group: usize,
}

/// Built-in formats that start with a literal, in the order they are tried (an Anthropic key
/// is also `sk-...`, so it comes before OpenAI's). Every class excludes `"` and `\`: a match
/// never crosses a JSON string's end or splits an escape.
const PREFIXED: &[(&str, &str)] = &[
    ("anthropic-key", r"sk-ant-[A-Za-z0-9_\-]{16,}"),
    (
        "openai-key",
        r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}",
    ),
    ("aws-access-key", r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"),
    (
        "github-token",
        r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}",
    ),
    ("gitlab-token", r"glpat-[A-Za-z0-9_\-]{20,}"),
    ("slack-token", r"xox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("google-api-key", r"AIza[0-9A-Za-z_\-]{35}"),
    (
        "jwt",
        r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    ),
    // A whole block; a block cut before its END line is redacted up to where its base64 (and
    // its `\n` escapes, in JSON text) stops.
    (
        "private-key",
        r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----(?:[^\x22]*?-----END [A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----|(?:[A-Za-z0-9+/=\s]|\\[nr])*)",
    ),
];

/// Built-in formats tried after [`PREFIXED`], each on its own.
const ASSIGNMENTS: &[(&str, &str)] = &[
    // `.env` style: a name holding a credential word, `=`, a value (possibly quoted; in JSON
    // text only an escaped quote opens it, a bare one ends the string). Only the value is
    // replaced. Any name (`password=`, `?token=`) without spaces; with spaces around `=`, only
    // names in capitals, `_` and digits around the word (`.env`, settings files, `password =`
    // in code), so prose such as "tokens = many" is left alone. Two patterns, as one
    // alternation loses the crate's search for the `=` (the case-insensitive word in the second
    // one keeps it).
    (
        "secret-assignment",
        r#"(?i:[a-z0-9_.\-]*(?:password|passwd|secret|token|api_?key|access_?key|private_?key|credentials?|auth)[a-z0-9_.\-]*)=(?:QUOTE)?(?P<secret>[^\s"'\\=&\[][^\s"'\\&]*)"#,
    ),
    (
        "secret-assignment",
        r#"[A-Z0-9_]*(?i:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)[A-Z0-9_]*[ \t]*=[ \t]*(?:QUOTE)?(?P<secret>[^\s"'\\=&\[][^\s"'\\&]*)"#,
    ),
];

/// One set of redaction rules: built once from the configuration, used by every record.
#[derive(Debug)]
pub struct Redactor {
    headers: Globs,
    query: Globs,
    body: Option<Scanner>,
}

#[derive(Debug)]
struct Scanner {
    /// For text known to be JSON: no match starts or ends at a structural character.
    json: Patterns,
    /// For any other text (a bare `"` may open a quoted value).
    plain: Patterns,
}

#[derive(Debug)]
struct Patterns {
    /// The first `prefixed.len()` of `formats`.
    prefixed: RegexSet,
    formats: Vec<Format>,
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.kind)
    }
}

/// A redaction setting that does not parse; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("cannot read --redact-patterns-file (env REDACT_PATTERNS_FILE) {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "invalid line {line} of --redact-patterns-file (env REDACT_PATTERNS_FILE) {path}: {reason} (expected `KIND REGEX`, KIND made of a-z, 0-9 and -)"
    )]
    Pattern {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("invalid --{flag} (env {env}) {value:?}: {reason}")]
    Names {
        flag: &'static str,
        env: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// How the body scan is set: on with the built-in formats, off, or on with extra formats.
#[derive(Debug, Clone, Default)]
pub struct BodyScan {
    pub enabled: bool,
    /// `(kind, regex)` pairs tried after the built-in ones.
    pub extra: Vec<(String, String)>,
}

impl Redactor {
    /// `headers` and `query`: comma-separated globs as in [`DEFAULT_HEADERS`].
    pub fn new(headers: &str, query: &str, body: &BodyScan) -> Result<Self, RedactError> {
        let headers = Globs::parse(headers).ok_or(RedactError::Names {
            flag: "redact-headers",
            env: "REDACT_HEADERS",
            value: headers.to_string(),
            reason: "expected comma-separated names or globs, e.g. *key*,!x-keep",
        })?;
        let query = Globs::parse(query).ok_or(RedactError::Names {
            flag: "redact-query",
            env: "REDACT_QUERY",
            value: query.to_string(),
            reason: "expected comma-separated names or globs, e.g. *token*,sig",
        })?;
        let body = body
            .enabled
            .then(|| Scanner::new(&body.extra))
            .transpose()?;
        Ok(Redactor {
            headers,
            query,
            body,
        })
    }

    /// Whether a header's value is replaced whole by [`REDACTED`].
    pub fn is_secret_header(&self, name: &str) -> bool {
        self.headers.matches(name)
    }

    /// A header value for the log: [`REDACTED`] for a secret name, else the value with any
    /// known credential format inside it replaced.
    pub fn header_value(&self, name: &str, value: String) -> String {
        if self.is_secret_header(name) {
            REDACTED.to_string()
        } else {
            self.text(value)
        }
    }

    /// The query string with the values of credential-looking parameters replaced by
    /// [`REDACTED`] (names, order, separators and the other values byte for byte), then any
    /// known credential format left in it replaced.
    pub fn query(&self, query: &str) -> String {
        let mut out = String::with_capacity(query.len());
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if self.query.matches(&percent_decoded(name)) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(pair),
            }
        }
        self.text(out)
    }

    /// `text` (any text) with every known credential format replaced by
    /// `[REDACTED:<kind>]`; returned as is (no copy) when the scan is off or finds nothing.
    pub fn text(&self, text: String) -> String {
        self.redact(text, false)
    }

    /// [`Redactor::text`] for text that is JSON: it stays JSON.
    pub fn json(&self, text: String) -> String {
        self.redact(text, true)
    }

    fn redact(&self, text: String, json: bool) -> String {
        let found = self.find(&text, json);
        if found.is_empty() {
            text
        } else {
            apply(&text, &found)
        }
    }

    /// Where the known credential formats are in `text` (JSON text if `json`), sorted, not
    /// overlapping, each with its kind.
    pub fn find(&self, text: &str, json: bool) -> Vec<(Range<usize>, &str)> {
        match &self.body {
            Some(scanner) if json => scanner.json.find(text),
            Some(scanner) => scanner.plain.find(text),
            None => Vec::new(),
        }
    }

    /// Whether body scanning is on.
    pub fn scans_bodies(&self) -> bool {
        self.body.is_some()
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(
            DEFAULT_HEADERS,
            DEFAULT_QUERY,
            &BodyScan {
                enabled: true,
                extra: Vec::new(),
            },
        )
        .expect("the built-in redaction rules compile")
    }
}

impl Scanner {
    fn new(extra: &[(String, String)]) -> Result<Self, RedactError> {
        Ok(Scanner {
            json: Patterns::new(r#"\\"|'"#, extra)?,
            plain: Patterns::new(r#"\\?"|'"#, extra)?,
        })
    }
}

impl Patterns {
    fn new(quote: &str, extra: &[(String, String)]) -> Result<Self, RedactError> {
        let mut formats = Vec::new();
        for (kind, pattern) in PREFIXED.iter().chain(ASSIGNMENTS) {
            let pattern = pattern.replace("QUOTE", quote);
            formats.push(format(kind, &pattern).expect("a built-in pattern compiles"));
        }
        for (kind, pattern) in extra {
            formats.push(
                format(kind, pattern).map_err(|reason| RedactError::Pattern {
                    path: String::new(),
                    line: 0,
                    reason,
                })?,
            );
        }
        let prefixed = RegexSet::new(PREFIXED.iter().map(|(_, pattern)| pattern))
            .expect("the built-in patterns compile");
        Ok(Patterns { prefixed, formats })
    }

    fn find(&self, text: &str) -> Vec<(Range<usize>, &str)> {
        let mut found: Vec<(Range<usize>, &str)> = Vec::new();
        let occurring = self.prefixed.matches(text).into_iter();
        let others = self.prefixed.len()..self.formats.len();
        for format in occurring.chain(others).map(|i| &self.formats[i]) {
            for captures in format.regex.captures_iter(text) {
                if let Some(m) = captures.get(format.group).filter(|m| !m.is_empty()) {
                    found.push((m.range(), format.kind.as_str()));
                }
            }
        }
        // Earlier formats win an overlap (they come first in the sort of equal starts too).
        found.sort_by_key(|(r, _)| r.start);
        let mut merged: Vec<(Range<usize>, &str)> = Vec::with_capacity(found.len());
        for (range, kind) in found {
            match merged.last_mut() {
                Some((last, _)) if range.start < last.end => last.end = last.end.max(range.end),
                _ => merged.push((range, kind)),
            }
        }
        merged
    }
}

fn format(kind: &str, pattern: &str) -> Result<Format, String> {
    if kind.is_empty()
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!("kind {kind:?} is not made of a-z, 0-9 and -"));
    }
    let regex = Regex::new(pattern).map_err(|e| e.to_string())?;
    let group = regex
        .capture_names()
        .position(|n| n == Some("secret"))
        .unwrap_or(0);
    Ok(Format {
        kind: kind.to_string(),
        regex,
        group,
    })
}

/// Reads extra formats from a file: one `KIND REGEX` a line; blank lines and `#` comments
/// skipped. A `(?P<secret>...)` group, when present, is what gets replaced.
pub fn read_patterns(path: &std::path::Path) -> Result<Vec<(String, String)>, RedactError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RedactError::Read {
        path: shown.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: String| RedactError::Pattern {
            path: shown.clone(),
            line: i + 1,
            reason,
        };
        let (kind, pattern) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("no regex after the kind".to_string()))?;
        let pattern = pattern.trim();
        format(kind, pattern).map_err(err)?;
        out.push((kind.to_string(), pattern.to_string()));
    }
    Ok(out)
}

/// `text` with each range replaced by `[REDACTED:<kind>]`.
pub fn apply(text: &str, found: &[(Range<usize>, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, kind) in found {
        out.push_str(&text[at..range.start]);
        out.push_str(&marker(kind));
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The marker that replaces a secret of `kind`.
pub fn marker(kind: &str) -> String {
    format!("[REDACTED:{kind}]")
}

/// A query parameter name with `%XX` escapes and `+` decoded (lowercase), for matching only.
fn percent_decoded(name: &str) -> String {
    let bytes: Vec<u8> = url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).to_ascii_lowercase()
}

/// Name globs: `*` matches any run; `!glob` keeps a name an earlier glob matched.
#[derive(Debug)]
struct Globs(Vec<(bool, String)>);

impl Globs {
    fn parse(list: &str) -> Option<Self> {
        let mut out = Vec::new();
        for item in list.split(',') {
            let item = item.trim().to_ascii_lowercase();
            if item.is_empty() {
                continue;
            }
            let (keep, glob) = match item.strip_prefix('!') {
                Some(g) => (true, g.to_string()),
                None => (false, item),
            };
            if glob.is_empty() || glob.chars().any(char::is_whitespace) {
                return None;
            }
            out.push((keep, glob));
        }
        Some(Globs(out))
    }

    /// The last glob that matches decides (redact, or keep for a `!` one).
    fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let mut secret = false;
        for (keep, glob) in &self.0 {
            if glob_match(glob, &name) {
                secret = !keep;
            }
        }
        secret
    }
}

/// `*`-only glob matching.
fn glob_match(glob: &str, name: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

static ACTIVE: OnceLock<Arc<Redactor>> = OnceLock::new();

/// Sets the rules every record uses from now on (once, at start; later calls are ignored).
///
/// A process-wide setting rather than an argument of [`crate::record::build`]: the writer
/// thread that calls it is built once and its rules never change while the proxy runs.
pub fn install(redactor: Arc<Redactor>) {
    let _ = ACTIVE.set(redactor);
}

/// The installed rules, or the defaults when none were installed (unit tests).
pub fn active() -> &'static Redactor {
    ACTIVE.get_or_init(|| Arc::new(Redactor::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> String {
        Redactor::default().text(text.to_string())
    }

    #[test]
    fn each_built_in_format_is_replaced_by_a_marker_naming_its_kind() {
        let cases = [
            (
                "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
                "anthropic-key",
            ),
            (
                "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
                "openai-key",
            ),
            ("AKIAIOSFODNN7EXAMPLE", "aws-access-key"),
            ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github-token"),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijkl",
                "github-token",
            ),
            ("glpat-abcdefghij0123456789", "gitlab-token"),
            ("xoxb-1234567890-abcdefghij", "slack-token"),
            ("AIzaSyA-abcdefghijklmnopqrstuvwxyz01234", "google-api-key"),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "jwt",
            ),
        ];
        for (secret, kind) in cases {
            let out = redacted(&format!("before {secret} after"));
            assert_eq!(out, format!("before [REDACTED:{kind}] after"), "{secret}");
        }
    }

    #[test]
    fn env_assignments_keep_the_name_and_lose_the_value_also_in_json_text() {
        let json = r#"{"content":"DB_PASSWORD=hunter22\nAPI_KEY=\"abc123\"\nPORT=8080\n","b":"PASSWORD="}"#;
        let out = Redactor::default().json(json.to_string());
        assert_eq!(
            out,
            r#"{"content":"DB_PASSWORD=[REDACTED:secret-assignment]\nAPI_KEY=\"[REDACTED:secret-assignment]\"\nPORT=8080\n","b":"PASSWORD="}"#
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
        // In plain text a bare quote opens a value.
        assert_eq!(
            redacted("SECRET=\"abc\""),
            "SECRET=\"[REDACTED:secret-assignment]\""
        );
    }

    #[test]
    fn assignments_with_spaces_need_a_name_in_capitals_or_the_bare_word() {
        for (text, out) in [
            (
                "DB_PASSWORD = hunter22",
                "DB_PASSWORD = [REDACTED:secret-assignment]",
            ),
            ("\tAPI_KEY =abc", "\tAPI_KEY =[REDACTED:secret-assignment]"),
            (
                "password = 'x1'",
                "password = '[REDACTED:secret-assignment]'",
            ),
            (
                "self.Token = t0",
                "self.Token = [REDACTED:secret-assignment]",
            ),
            ("tokens = many", "tokens = many"),
            ("the secrets = few", "the secrets = few"),
        ] {
            assert_eq!(redacted(text), out, "{text}");
        }
    }

    #[test]
    fn a_private_key_block_goes_whole_and_the_json_stays_json() {
        let json = r#"{"a":"x -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\nAAKC\n-----END RSA PRIVATE KEY-----\n y","b":"-----BEGIN PRIVATE KEY-----\nMIIE\nAB"}"#;
        let out = redacted(json);
        assert_eq!(
            out,
            r#"{"a":"x [REDACTED:private-key]\n y","b":"[REDACTED:private-key]"}"#
        );
    }

    #[test]
    fn max_tokens_and_ordinary_text_are_left_alone() {
        let json = r#"{"model":"claude","max_tokens":32000,"messages":[{"role":"user","content":"sk-ant is a prefix; tokens = many"}]}"#;
        assert_eq!(redacted(json), json);
    }

    #[test]
    fn query_credentials_are_redacted_other_parameters_kept_byte_for_byte() {
        let r = Redactor::default();
        assert_eq!(
            r.query("beta=true&api_key=s3cr3t&key=k&X-Amz-Signature=abc&sig=1&q=a%20b"),
            "beta=true&api_key=[REDACTED]&key=[REDACTED]&X-Amz-Signature=[REDACTED]&sig=[REDACTED]&q=a%20b"
        );
        assert_eq!(r.query("access%5Ftoken=x"), "access%5Ftoken=[REDACTED]");
    }

    #[test]
    fn header_globs_redact_credential_names_but_keep_rate_limit_counts() {
        let r = Redactor::default();
        for name in [
            "x-api-key",
            "anthropic-api-key",
            "x-anthropic-api-key",
            "api-key",
            "x-auth-token",
            "authorization",
            "proxy-authorization",
            "cookie",
            "set-cookie",
        ] {
            assert!(r.is_secret_header(name), "{name}");
        }
        for name in [
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-version",
            "x-claude-code-session-id",
            "content-type",
            "request-id",
        ] {
            assert!(!r.is_secret_header(name), "{name}");
        }
        let custom = Redactor::new(
            "x-mine,*key*,!x-api-key",
            DEFAULT_QUERY,
            &BodyScan::default(),
        )
        .unwrap();
        assert!(custom.is_secret_header("x-mine"));
        assert!(!custom.is_secret_header("x-api-key"));
    }

    #[test]
    fn extra_patterns_come_from_a_file_and_a_bad_line_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.txt");
        std::fs::write(&path, "# mine\ninternal-token itk_[a-z0-9]{8}\n").unwrap();
        let extra = read_patterns(&path).unwrap();
        let r = Redactor::new(
            DEFAULT_HEADERS,
            DEFAULT_QUERY,
            &BodyScan {
                enabled: true,
                extra,
            },
        )
        .unwrap();
        assert_eq!(
            r.text("a itk_abcd1234 b".into()),
            "a [REDACTED:internal-token] b"
        );
        std::fs::write(&path, "Bad_Kind x\n").unwrap();
        let e = read_patterns(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 1") && e.contains("REDACT_PATTERNS_FILE"),
            "{e}"
        );
    }

    #[test]
    fn scanning_off_leaves_bodies_alone() {
        let r = Redactor::new(DEFAULT_HEADERS, DEFAULT_QUERY, &BodyScan::default()).unwrap();
        let text = "AKIAIOSFODNN7EXAMPLE".to_string();
        assert_eq!(r.text(text.clone()), text);
    }
}
