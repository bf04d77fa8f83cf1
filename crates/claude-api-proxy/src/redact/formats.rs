//! The built-in credential formats the body scan looks for.
//!
//! The first group is the scan's own; the second is taken from gitleaks' rules
//! (config/gitleaks.toml of github.com/gitleaks/gitleaks at b58d3f1, 2026-07-22; MIT license,
//! (c) 2019 Zachary Rice: stripe-access-token, twilio-api-key, sendgrid-api-token,
//! npm-access-token, pypi-upload-token, slack-app-token, slack-config-*-token,
//! slack-webhook-url), except Docker Hub's, which gitleaks lacks, from Nosey Parker's rules
//! (github.com/praetorian-inc/noseyparker at 2e6e7f3, Apache-2.0: np.dockerhub.1), as is the
//! connection-URL password (np.postgres.1, np.mongodb.1, widened to any scheme). Adapted: the
//! `\b` and trailing-delimiter guards replaced by [`Format::token_start`], every class without
//! `"` and `\`, so a match never crosses a JSON string's end or splits an escape. Left out:
//! the keyword-and-context ("generic") rules, which flag ordinary code, and gitleaks' other
//! prefixed rules: each further group of them costs about what the second one does, more than
//! the scan's cost budget (docs/performance.md) has left.

/// A built-in format.
pub(super) struct Format {
    /// Named in the marker: `[REDACTED:<kind>]`.
    pub kind: &'static str,
    /// `regex` crate syntax; a `(?P<secret>...)` group, when present, is what gets replaced.
    pub pattern: &'static str,
    /// The match must not continue a word (`mask_test_...` is not a Stripe key); a JSON or C
    /// escape letter before it (`\nsk_live_...`) does not count as a word.
    pub token_start: bool,
}

const fn f(kind: &'static str, pattern: &'static str) -> Format {
    Format {
        kind,
        pattern,
        token_start: false,
    }
}

const fn token(kind: &'static str, pattern: &'static str) -> Format {
    Format {
        kind,
        pattern,
        token_start: true,
    }
}

/// Formats that start with a literal, in groups, each searched as one `RegexSet` (in one pass,
/// the crate looking for the groups' literals first). The groups stay small: past about eight
/// literals the crate's literal search slows down sharply (one set of all of them took 4x the
/// time of the groups on ordinary code). Earlier formats win an overlap (an Anthropic key is
/// also `sk-...`, so it comes before OpenAI's).
pub(super) const GROUPS: &[&[Format]] = &[
    &[
        f("anthropic-key", r"sk-ant-[A-Za-z0-9_\-]{16,}"),
        f(
            "openai-key",
            r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}",
        ),
        f("aws-access-key", r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"),
        f(
            "github-token",
            r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}",
        ),
        f("gitlab-token", r"glpat-[A-Za-z0-9_\-]{20,}"),
        f("slack-token", r"xox[abposr]-[A-Za-z0-9\-]{10,}"),
        f("google-api-key", r"AIza[0-9A-Za-z_\-]{35}"),
        f(
            "jwt",
            r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        ),
        // A whole block; a block cut before its END line is redacted up to where its base64
        // (and its `\n` escapes, in JSON text) stops.
        f(
            "private-key",
            r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----(?:[^\x22]*?-----END [A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----|(?:[A-Za-z0-9+/=\s]|\\[nr])*)",
        ),
    ],
    &[
        token(
            "stripe-key",
            r"(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,99}",
        ),
        token("twilio-api-key", r"SK[0-9a-fA-F]{32}"),
        token("sendgrid-key", r"SG\.[A-Za-z0-9=_\-.]{66}"),
        token("npm-token", r"npm_[A-Za-z0-9]{36}"),
        f("pypi-token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,1000}"),
        token("dockerhub-token", r"dckr_pat_[A-Za-z0-9_\-]{27,}"),
        f(
            "slack-token",
            r"xoxe\.xox[bp]-[A-Za-z0-9\-]{10,}|xoxe-\d-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,}",
        ),
        f(
            "slack-webhook",
            r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
        ),
    ],
];

/// Formats tried each on its own, after the groups: they start with no literal, and the crate
/// searches for one inside them (`://`, `=`) first. `QUOTE` stands for what may open a quoted
/// value (in JSON text only an escaped quote; a bare one ends the string).
pub(super) const ALONE: &[Format] = &[
    // The password of `scheme://user:password@host`, any scheme (RFC 3986). The password runs
    // to the last `@` before the host (a literal `@` in it, though against the RFC, is common
    // and drivers accept it); one starting with `{`, `$` or `<` is a template (`:{password}@`,
    // `:${PASS}@`), left alone.
    f(
        "url-password",
        r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@"'\\]*:(?P<secret>[^\s/?#"\\{$<][^\s/?#"\\]*)@"#,
    ),
    // `.env` style: a name holding a credential word, `=`, a value (possibly quoted). Only the
    // value is replaced. Any name (`password=`, `?token=`) without spaces; with spaces around
    // `=`, only names in capitals, `_` and digits around the word (`.env`, settings files,
    // `password =` in code), so prose such as "tokens = many" is left alone. Two patterns, as
    // one alternation loses the crate's search for the `=` (the case-insensitive word in the
    // second one keeps it); in a set they made the whole pass ~30x slower.
    f(
        "secret-assignment",
        r#"(?i:[a-z0-9_.\-]*(?:password|passwd|secret|token|api_?key|access_?key|private_?key|credentials?|auth)[a-z0-9_.\-]*)=(?:QUOTE)?(?P<secret>[^\s"'\\=&\[][^\s"'\\&]*)"#,
    ),
    f(
        "secret-assignment",
        r#"[A-Z0-9_]*(?i:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)[A-Z0-9_]*[ \t]*=[ \t]*(?:QUOTE)?(?P<secret>[^\s"'\\=&\[][^\s"'\\&]*)"#,
    ),
];
