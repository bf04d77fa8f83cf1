//! The built-in credential formats the body scan looks for.
//!
//! Most patterns are taken from gitleaks' rule set (config/gitleaks.toml of
//! github.com/gitleaks/gitleaks at b58d3f1, 2026-07-22; MIT license, (c) 2019 Zachary Rice), the
//! Docker Hub and connection-URL ones from Nosey Parker's rules (github.com/praetorian-inc/
//! noseyparker at 2e6e7f3, Apache-2.0), both adapted the same way: only formats that start with
//! a fixed prefix (the keyword-and-context "generic" rules are left out: they cost a pass each
//! and flag ordinary code), the gitleaks `\b` and trailing-delimiter guards replaced by
//! [`Format::token_start`], and every class without `"` and `\`, so a match never crosses a JSON
//! string's end or splits an escape.

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

/// Formats that start with a literal, in the order they are tried: an earlier one wins an
/// overlap (an Anthropic key is also `sk-...`, so it comes before OpenAI's).
pub(super) const PREFIXED: &[Format] = &[
    f("anthropic-key", r"sk-ant-[A-Za-z0-9_\-]{16,}"),
    f(
        "openai-key",
        r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}",
    ),
    f(
        "aws-access-key",
        r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}",
    ),
    token("aws-bedrock-key", r"ABSK[A-Za-z0-9+/]{109,269}={0,2}"),
    f(
        "github-token",
        r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}",
    ),
    f(
        "gitlab-token",
        r"gl(?:pat|dt|ft|rt|soat|ffct|imt|agent|oas)-[A-Za-z0-9_\-]{20,}|glptt-[0-9a-f]{40}|glcbt-[0-9a-zA-Z]{1,5}_[0-9a-zA-Z_\-]{20,}|GR1348941[A-Za-z0-9_\-]{20,}",
    ),
    f(
        "slack-token",
        r"xox[abposre]-[A-Za-z0-9\-]{10,}|xoxe\.xox[bp]-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,}",
    ),
    f(
        "slack-webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
    ),
    f("google-api-key", r"AIza[0-9A-Za-z_\-]{35}"),
    token(
        "stripe-key",
        r"(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,99}",
    ),
    token("twilio-api-key", r"SK[0-9a-fA-F]{32}"),
    token("sendgrid-key", r"SG\.[A-Za-z0-9=_\-.]{66}"),
    token("npm-token", r"npm_[A-Za-z0-9]{36}"),
    f("pypi-token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,1000}"),
    token("dockerhub-token", r"dckr_pat_[A-Za-z0-9_\-]{27,}"),
    f("rubygems-token", r"rubygems_[a-f0-9]{48}"),
    token("huggingface-token", r"(?:hf_|api_org_)[A-Za-z]{34}"),
    token("digitalocean-token", r"do[opr]_v1_[a-f0-9]{64}"),
    f("shopify-token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    token("postman-key", r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}"),
    token("databricks-token", r"dapi[a-f0-9]{32}(?:-\d)?"),
    f("doppler-token", r"dp\.pt\.[A-Za-z0-9]{43}"),
    f("linear-key", r"lin_api_[A-Za-z0-9]{40}"),
    token("pulumi-token", r"pul-[a-f0-9]{40}"),
    token(
        "vault-token",
        r"hvs\.[A-Za-z0-9_\-]{90,120}|hvb\.[A-Za-z0-9_\-]{138,300}",
    ),
    token(
        "grafana-token",
        r"glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}",
    ),
    token(
        "sentry-token",
        r"sntryu_[a-f0-9]{64}|sntrys_eyJpYXQiO[A-Za-z0-9+/=_]{60,}",
    ),
    token("perplexity-key", r"pplx-[A-Za-z0-9]{48}"),
    token("sendinblue-key", r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}"),
    token("atlassian-token", r"ATATT3[A-Za-z0-9_\-=]{186}"),
    token("notion-token", r"ntn_[0-9]{11}[A-Za-z0-9]{35}"),
    token(
        "planetscale-token",
        r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.\-]{32,64}",
    ),
    f(
        "age-secret-key",
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
    ),
    f(
        "jwt",
        r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    ),
    // The password of `scheme://user:password@host`. The password runs to the last `@` before
    // the host (a literal `@` in it, though against RFC 3986, is common and drivers accept it);
    // one starting with `{`, `$` or `<` is a template (`:{password}@`, `:${PASS}@`), left alone.
    f(
        "url-password",
        r#"(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|https?|ftps?|sftp|smtps?|ldaps?)://[^\s:/?#@"'\\]*:(?P<secret>[^\s/?#"\\{$<][^\s/?#"\\]*)@"#,
    ),
    // A whole block; a block cut before its END line is redacted up to where its base64 (and
    // its `\n` escapes, in JSON text) stops.
    f(
        "private-key",
        r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----(?:[^\x22]*?-----END [A-Z ]{0,40}PRIVATE KEY( BLOCK)?-----|(?:[A-Za-z0-9+/=\s]|\\[nr])*)",
    ),
];

/// Formats tried after [`PREFIXED`], each on its own: `QUOTE` stands for what may open a
/// quoted value (in JSON text only an escaped quote; a bare one ends the string).
///
/// `.env` style: a name holding a credential word, `=`, a value (possibly quoted). Only the
/// value is replaced. Any name (`password=`, `?token=`) without spaces; with spaces around `=`,
/// only names in capitals, `_` and digits around the word (`.env`, settings files, `password =`
/// in code), so prose such as "tokens = many" is left alone. Two patterns, as one alternation
/// loses the crate's search for the `=` (the case-insensitive word in the second one keeps it).
/// They start with no literal, and in the set they made the whole pass ~30x slower.
pub(super) const ASSIGNMENTS: &[Format] = &[
    f(
        "secret-assignment",
        r#"(?i:[a-z0-9_.\-]*(?:password|passwd|secret|token|api_?key|access_?key|private_?key|credentials?|auth)[a-z0-9_.\-]*)=(?:QUOTE)?(?P<secret>[^\s"'\\=&\[][^\s"'\\&]*)"#,
    ),
    f(
        "secret-assignment",
        r#"[A-Z0-9_]*(?i:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)[A-Z0-9_]*[ \t]*=[ \t]*(?:QUOTE)?(?P<secret>[^\s"'\\=&\[][^\s"'\\&]*)"#,
    ),
];
