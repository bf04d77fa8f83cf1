//! What keeps secrets out of the traffic record: credential-looking header names and query
//! parameters, and known credential formats inside bodies, replaced by markers.
//!
//! It runs on the writer thread, inside [`crate::record::build`], on what is written and
//! shipped only: the live path forwards every byte unchanged and never calls it.
//!
//! Bodies are scanned as text, JSON bodies as written (no parse into values, no copy of their
//! strings): one search for `\u`/`\/` tells whether the text reads differently once decoded;
//! only then is a decoded copy scanned ([`unescape`]) and each match mapped back to the escapes
//! it came from. The formats ([`formats`]) that start with a literal are a few small
//! [`RegexSet`]s, each saying in one fast pass (the crate searches for the literals first)
//! which of its formats occur; only those formats' own [`Regex`]es then run to find where. The
//! others (`scheme://user:password@`, `NAME=value`) run each on their own, where the crate
//! searches for their `://` or `=` first.
//! Every pattern matches characters that never end a JSON string (no `"`, no lone `\`), and
//! a marker is plain ASCII, so a redacted JSON body stays JSON, byte for byte the same outside
//! the markers, and a JSON reader sees the marker where the secret was, however it was escaped.

mod formats;
mod unescape;

use formats::{ALONE, GROUPS};
use regex::{Regex, RegexSet};
use std::ops::Range;
use traffic_record::REDACTED;

/// Header names redacted by default (globs, `*` any run of characters; a leading `!` keeps
/// what an earlier pattern would redact). `anthropic-ratelimit-*` carries token *counts*.
pub const DEFAULT_HEADERS: &str = "*key*,*token*,*secret*,*auth*,*cookie*,*password*,*passwd*,*credential*,*signature*,*session-secret*,!anthropic-ratelimit-*";

/// Query parameter names redacted by default (same syntax as [`DEFAULT_HEADERS`]).
pub const DEFAULT_QUERY: &str =
    "*key*,*token*,*secret*,*password*,*passwd*,pwd,*auth*,*credential*,sig,*signature*,code";

/// A credential format: the kind named in its marker, the pattern, which capture group is the
/// secret (0: the whole match), and whether it must start a token.
struct Format {
    kind: String,
    regex: Regex,
    group: usize,
    token_start: bool,
}

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
    /// One per group of [`GROUPS`], with the index in `formats` of its first format.
    sets: Vec<(RegexSet, usize)>,
    /// The groups' formats, then [`ALONE`], then the extra ones.
    formats: Vec<Format>,
    /// Where [`ALONE`] starts in `formats`.
    alone: usize,
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
    /// overlapping, each with its kind. Escaped text is matched as a JSON reader reads it: a
    /// range covers the whole escapes of a secret's characters.
    pub fn find(&self, text: &str, json: bool) -> Vec<(Range<usize>, &str)> {
        let patterns = match &self.body {
            Some(scanner) if json => &scanner.json,
            Some(scanner) => &scanner.plain,
            None => return Vec::new(),
        };
        match unescape::unescape(text) {
            None => patterns.find(text),
            Some(decoded) => patterns
                .find(&decoded.text)
                .into_iter()
                .map(|(range, kind)| (decoded.original(range), kind))
                .collect(),
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
        let built_in = |f: &formats::Format| Format {
            token_start: f.token_start,
            ..format(f.kind, &f.pattern.replace("QUOTE", quote))
                .expect("a built-in pattern compiles")
        };
        let mut formats = Vec::new();
        let mut sets = Vec::new();
        for group in GROUPS {
            let set = RegexSet::new(group.iter().map(|f| f.pattern))
                .expect("the built-in patterns compile");
            sets.push((set, formats.len()));
            formats.extend(group.iter().map(built_in));
        }
        let alone = formats.len();
        formats.extend(ALONE.iter().map(built_in));
        for (kind, pattern) in extra {
            formats.push(
                format(kind, pattern).map_err(|reason| RedactError::Pattern {
                    path: String::new(),
                    line: 0,
                    reason,
                })?,
            );
        }
        Ok(Patterns {
            sets,
            formats,
            alone,
        })
    }

    fn find(&self, text: &str) -> Vec<(Range<usize>, &str)> {
        let mut found: Vec<(Range<usize>, &str)> = Vec::new();
        let occurring = self
            .sets
            .iter()
            .flat_map(|(set, first)| set.matches(text).into_iter().map(move |i| first + i));
        for format in occurring
            .chain(self.alone..self.formats.len())
            .map(|i| &self.formats[i])
        {
            for captures in format.regex.captures_iter(text) {
                let Some(m) = captures.get(format.group).filter(|m| !m.is_empty()) else {
                    continue;
                };
                if !format.token_start || starts_token(text.as_bytes(), m.start()) {
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
        token_start: false,
    })
}

/// Whether `at` starts a token: no letter, digit or `_` before it, or only the letter of an
/// escape (`\n` in JSON text).
fn starts_token(text: &[u8], at: usize) -> bool {
    let Some(&before) = at.checked_sub(1).and_then(|i| text.get(i)) else {
        return true;
    };
    if !(before.is_ascii_alphanumeric() || before == b'_') {
        return true;
    }
    let backslashes = text[..at - 1]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    backslashes % 2 == 1 && matches!(before, b'n' | b'r' | b't' | b'b' | b'f')
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
    fn formats_from_the_maintained_rule_sets_are_replaced() {
        let cases = [
            ("sk_live_u8jzPde0IgxLd6GncfBAepfJ", "stripe-key"),
            ("rk_live_Bd0Kh8oOOL8dKLzdocJ2isAj", "stripe-key"),
            ("sk_test_u8jzPde0IgxLd6GncfBAepfJ", "stripe-key"),
            ("SK39536b3216fdaeeb975729fae923d5a4", "twilio-api-key"),
            (
                "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",
                "sendgrid-key",
            ),
            ("npm_53X83RZJzzzzgEOzdmenCkhvMdgaKjIg8xNb", "npm-token"),
            (
                "pypi-AgEIcHlwaS5vcmcjAWtGSU8po_799NksnRH9ucAUsdMlHUvTCQCyEZDz-TddJ8HyS5SUkCnD8zR",
                "pypi-token",
            ),
            ("dckr_pat_A9a9SkpXz9w3QlY7Zkuvqdt7s8S", "dockerhub-token"),
            (
                "xapp-1-A6I8J76B2LA-2227918058887-3176813e02ea68ef786e4d3cea27d26934b484e73cf575dcad6ba2b0aee0ca92",
                "slack-token",
            ),
            ("xoxe-1-My4xLTItMTIzNDU2Nzg5MA", "slack-token"),
            (
                "https://hooks.slack.com/services/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",
                "slack-webhook",
            ),
        ];
        for (secret, kind) in cases {
            let out = redacted(&format!("before {secret} after"));
            let want = if kind == "slack-webhook" {
                format!("before https://[REDACTED:{kind}] after")
            } else {
                format!("before [REDACTED:{kind}] after")
            };
            assert_eq!(out, want, "{secret}");
        }
    }

    #[test]
    fn connection_urls_lose_their_password_and_keep_the_rest() {
        for (url, kept) in [
            (
                "postgres://admin:hunter22@db.internal:5432/app",
                "postgres://admin:@db.internal:5432/app",
            ),
            ("postgresql://u:p%40ss@h/db", "postgresql://u:@h/db"),
            (
                "jdbc:mysql://root:toor@127.0.0.1:3306/x",
                "jdbc:mysql://root:@127.0.0.1:3306/x",
            ),
            (
                "mongodb+srv://svc:Zxcvbnm@12345)@cluster0.mongodb.net/?w=majority",
                "mongodb+srv://svc:@cluster0.mongodb.net/?w=majority",
            ),
            ("mongodb://a:b1@h1,h2/db", "mongodb://a:@h1,h2/db"),
            ("redis://:s3cret@cache:6379/0", "redis://:@cache:6379/0"),
            (
                "rediss://default:tok@r.example.com",
                "rediss://default:@r.example.com",
            ),
            ("amqp://guest:guest2@mq/vhost", "amqp://guest:@mq/vhost"),
            (
                "https://deploy:gh-pw@git.example.com/r.git",
                "https://deploy:@git.example.com/r.git",
            ),
        ] {
            let out = redacted(url);
            assert_eq!(out.replace("[REDACTED:url-password]", ""), kept, "{url}");
            assert!(out.contains("[REDACTED:url-password]"), "{url}");
        }
        // No password, or a template in its place: nothing to redact.
        for text in [
            "http://localhost:8080/v1/messages?beta=true",
            "https://user@example.com/x and ssh://git@github.com:22/o/r",
            r#"f"postgresql://{user}:{password}@{host}/{db}""#,
            "`redis://${USER}:${REDIS_PASSWORD}@${HOST}`",
            "mysql://root:<password>@localhost",
            "see https://docs.rs/regex/1.0.0/regex/#syntax: a@b",
        ] {
            assert_eq!(redacted(text), text);
        }
    }

    #[test]
    fn a_key_written_with_json_escapes_is_found_and_the_json_stays_json() {
        let key = "sk-ant-api03-Zr8kQ2vN5xW1yT7uP3sL9mB4cD6fG0hJ";
        let every_char: String = key
            .chars()
            .map(|c| format!("\\u{:04X}", c as u32))
            .collect();
        let json = [
            r#"{"a":"sk\u002dant\u002dapi03-Zr8kQ2vN5xW1yT7uP3sL9mB4cD6fG0hJ","#,
            &format!(r#""b":"x {every_char} y","#),
            r#""c":"postgres:\/\/admin:hunter22@db:5432\/app","#,
            r#""d":"\u00e9\ud83d\ude00 line\n\u001b[0m\u0020sk_live\u005fu8jzPde0IgxLd6GncfBAepfJ","#,
            r#""sk\u002dant\u002dapi03\u002dAAAAAAAAAAAAAAAAAAAA":1}"#,
        ]
        .concat();
        let out = Redactor::default().json(json.clone());
        let read: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
        assert_eq!(read["a"], "[REDACTED:anthropic-key]");
        assert_eq!(read["b"], "x [REDACTED:anthropic-key] y");
        assert_eq!(
            read["c"],
            "postgres://admin:[REDACTED:url-password]@db:5432/app"
        );
        assert_eq!(read["d"], "é😀 line\n\u{1b}[0m [REDACTED:stripe-key]");
        assert_eq!(read["[REDACTED:anthropic-key]"], 1);
        let as_read = read.to_string();
        for part in ["Zr8kQ2vN5", "hunter22", "u8jzPde0", "AAAAAAAAAA"] {
            assert!(
                !as_read.contains(part) && !out.contains(part),
                "{part} left in {out}"
            );
        }
        // Outside the markers the text is as written, escapes included.
        assert!(out.contains(r#""c":"postgres:\/\/admin:[REDACTED:url-password]@db:5432\/app""#));
        assert!(
            out.contains(r#""d":"\u00e9\ud83d\ude00 line\n\u001b[0m\u0020[REDACTED:stripe-key]""#)
        );
        // Text that is not JSON (a body cut at the capture cap) is read the same way.
        assert_eq!(
            redacted(r#"{"a":"sk\u002dant\u002dapi03-Zr8kQ2vN5xW1yT7uP3sL9mB4cD6fG0hJ"#),
            r#"{"a":"[REDACTED:anthropic-key]"#
        );
    }

    #[test]
    fn a_token_inside_a_word_is_not_a_key_but_one_after_an_escape_is() {
        for text in [
            "mask_test_abcdefghijklmnop",
            "let risk_live_forecast1234 = 1;",
            "fn task_prod_scheduler_abcdefgh()",
            "ASK39536b3216fdaeeb975729fae923d5a4",
        ] {
            assert_eq!(redacted(text), text);
        }
        let json =
            r#"{"a":"x\nsk_live_u8jzPde0IgxLd6GncfBAepfJ\tSK39536b3216fdaeeb975729fae923d5a4"}"#;
        assert_eq!(
            Redactor::default().json(json.to_string()),
            r#"{"a":"x\n[REDACTED:stripe-key]\t[REDACTED:twilio-api-key]"}"#
        );
    }

    #[test]
    fn ordinary_sources_docs_and_lock_files_are_left_alone() {
        // Code, prose, hex checksums and URLs as Claude Code sends them: as JSON text and as is.
        for (name, text) in [
            ("Cargo.lock", include_str!("../../../Cargo.lock")),
            ("forward.rs", include_str!("forward.rs")),
            ("sse.rs", include_str!("sse.rs")),
            ("capture.rs", include_str!("capture.rs")),
            ("config.rs", include_str!("config.rs")),
            (
                "reliability.md",
                include_str!("../../../docs/reliability.md"),
            ),
            (
                "performance.md",
                include_str!("../../../docs/performance.md"),
            ),
        ] {
            let r = Redactor::default();
            let found: Vec<_> = r
                .find(text, false)
                .into_iter()
                .map(|(range, kind)| (kind, &text[range]))
                .collect();
            assert!(found.is_empty(), "{name}: {found:?}");
            let json = serde_json::to_string(text).unwrap();
            assert!(r.find(&json, true).is_empty(), "{name} as JSON");
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
