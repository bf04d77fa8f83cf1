//! The docs name only what the programs have: every `--flag`, environment variable and default
//! in README.md and docs/*.md is checked against the `--help` of claude-api-proxy, otlp-shipper
//! and claude-api-logger (each subcommand too), the options the repository's scripts and
//! benchmarks parse, and the variables its code, scripts and Containerfiles read. Names that
//! belong to other programs (cargo, podman, seqcli, Claude Code, ...) are listed below, each
//! with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

const LOGGER: &str = env!("CARGO_BIN_EXE_claude-api-logger");

/// Flags of other programs the docs show in commands.
const OTHER_FLAGS: &[(&str, &str)] = &[
    ("release", "cargo build/run/bench --release"),
    ("bench", "cargo bench --bench NAME"),
    ("test", "cargo test/nextest --test NAME"),
    ("example", "cargo run/build --example NAME"),
    ("workspace", "cargo nextest run --workspace"),
    ("locked", "cargo build --locked (the image build)"),
    ("check", "cargo fmt --check"),
    ("no-deps", "cargo doc --no-deps"),
    ("no-capture", "cargo nextest run --no-capture"),
    ("format", "podman build --format docker"),
    ("health-cmd", "podman run --health-cmd"),
    ("stop-timeout", "podman run --stop-timeout"),
    ("userns", "podman run --userns=keep-id"),
    ("signal", "podman kill --signal HUP"),
    (
        "mount",
        "RUN --mount=type=cache in the Containerfile (buildah)",
    ),
    ("permissions", "seqcli apikey create --permissions"),
    (
        "connect-username",
        "seqcli apikey create --connect-username",
    ),
    (
        "connect-password-stdin",
        "seqcli apikey create --connect-password-stdin",
    ),
    (
        "connect-password",
        "seqcli apikey create --connect-password (the sandbox never uses it)",
    ),
    ("apikey", "seqcli --apikey (the sandbox never uses it)"),
    (
        "dangerously-skip-permissions",
        "claude --dangerously-skip-permissions (Claude Code)",
    ),
    (
        "output-format",
        "claude --output-format stream-json (Claude Code)",
    ),
    ("model", "claude --model (Claude Code)"),
    ("resume", "claude -p --resume SESSION (Claude Code)"),
];

/// Upper-case names the docs show that are not read by this repository.
const OTHER_NAMES: &[(&str, &str)] = &[
    (
        "ANTHROPIC_BASE_URL",
        "Claude Code's base URL (the proxy's address)",
    ),
    (
        "CLAUDE_CODE_EXTRA_BODY",
        "Claude Code: extra JSON merged into each request body",
    ),
    (
        "NODE_PATH",
        "node's module path (the browser tests' playwright-core)",
    ),
    ("PROPTEST_CASES", "proptest: cases per property test"),
    (
        "SSL_CERT_FILE",
        "rustls-platform-verifier's CA file on Linux (openssl-probe)",
    ),
    (
        "CARGO_PROFILE_RELEASE_LTO",
        "cargo's profile setting as an environment variable",
    ),
    (
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS",
        "cargo's profile setting as an environment variable",
    ),
    (
        "CARGO_PROFILE_RELEASE_STRIP",
        "cargo's profile setting as an environment variable",
    ),
    ("CAP_SYS_ADMIN", "a Linux capability, not a variable"),
    (
        "PR_SET_CHILD_SUBREAPER",
        "a Linux prctl option, not a variable",
    ),
    ("RLIMIT_NOFILE", "a Linux resource limit, not a variable"),
    (
        "API_KEY",
        "a name shape the proxy's body redaction matches (docs/proxy.md)",
    ),
    (
        "ACCESS_KEY",
        "a name shape the proxy's body redaction matches (docs/proxy.md)",
    ),
    (
        "PRIVATE_KEY",
        "a name shape the proxy's body redaction matches (docs/proxy.md)",
    ),
    (
        "DB_PASSWORD",
        "an example of user data the proxy's body redaction matches",
    ),
];

#[derive(Default, Debug)]
struct Known {
    flags: BTreeSet<String>,
    flag_defaults: BTreeMap<String, BTreeSet<String>>,
    names: BTreeSet<String>,
    name_defaults: BTreeMap<String, BTreeSet<String>>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn help(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} --help failed",
        bin.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every `--help` text: the three binaries and each claude-api-logger subcommand.
fn helps() -> Vec<(String, String)> {
    let proxy = test_peers::workspace_bin("claude-api-proxy", "claude-api-proxy");
    let shipper = test_peers::workspace_bin("otlp-shipper", "otlp-shipper");
    let logger = PathBuf::from(LOGGER);
    let top = help(&logger, &[]);
    let commands = top
        .split_once("Commands:")
        .and_then(|(_, rest)| rest.split_once("Options:"))
        .expect("claude-api-logger --help lists its commands")
        .0;
    let mut all = vec![
        ("claude-api-proxy".to_string(), help(&proxy, &[])),
        ("otlp-shipper".to_string(), help(&shipper, &[])),
    ];
    for line in commands.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name != "help" {
            all.push((format!("claude-api-logger {name}"), help(&logger, &[name])));
        }
    }
    assert!(all.len() >= 6, "subcommands found: {all:?}");
    all.push(("claude-api-logger".to_string(), top));
    all
}

/// Flags, their variables and defaults from one `--help`; an option's text runs until the next.
fn parse_help(text: &str, known: &mut Known) {
    let option = Regex::new(r"(?m)^\s+(?:-\w, )?--([a-z][a-z0-9-]*)").unwrap();
    let env = Regex::new(r"\[env: ([A-Z][A-Z0-9_]*)").unwrap();
    let default = Regex::new(r"\[default: ([^\]]+)\]").unwrap();
    let starts: Vec<_> = option.captures_iter(text).collect();
    for (i, c) in starts.iter().enumerate() {
        let whole = c.get(0).unwrap();
        let end = starts
            .get(i + 1)
            .map_or(text.len(), |n| n.get(0).unwrap().start());
        let block = &text[whole.start()..end];
        let flag = c[1].to_string();
        known.flags.insert(flag.clone());
        let default = default.captures(block).map(|d| d[1].to_string());
        if let Some(d) = &default {
            known
                .flag_defaults
                .entry(flag.clone())
                .or_default()
                .insert(d.clone());
        }
        if let Some(e) = env.captures(block) {
            known.names.insert(e[1].to_string());
            let entry = known.name_defaults.entry(e[1].to_string()).or_default();
            entry.extend(default);
        }
    }
}

/// Files under `dir` ending in `.ext`; symlinks are not followed (`scripts/claude-api-logger`
/// links to the repository root).
fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let path = entry.path();
        if kind.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n != "target" && n != "node_modules")
            {
                files_under(&path, ext, out);
            }
        } else if kind.is_file() && path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// What the repository itself reads or parses, beside the binaries' `--help`.
fn project_sources(root: &Path, known: &mut Known) {
    // The scripts' own options (`--name)` or `--name=*)` in a `case`), and every upper-case
    // name they use: the variables they read, set for a container or pass on.
    let case_flag = Regex::new(r"(?m)(?:^|[\s|(])--([a-z][a-z0-9-]*)(?:=\*)?[|)]").unwrap();
    let upper = Regex::new(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b").unwrap();
    // `NAME=${VAR:-default}` (the default may itself hold an expansion).
    let script_default =
        Regex::new(r"(?m)^[A-Z][A-Z0-9_]*=\$\{([A-Z][A-Z0-9_]*):?-(.*)\}[ \t]*(?:#.*)?$").unwrap();
    let mut scripts = Vec::new();
    files_under(&root.join("scripts"), "sh", &mut scripts);
    files_under(&root.join("crates"), "sh", &mut scripts);
    for path in scripts {
        let text = read(&path);
        known
            .flags
            .extend(case_flag.captures_iter(&text).map(|c| c[1].to_string()));
        known
            .names
            .extend(upper.captures_iter(&text).map(|c| c[1].to_string()));
        for c in script_default.captures_iter(&text) {
            let entry = known.name_defaults.entry(c[1].to_string()).or_default();
            entry.insert(c[2].to_string());
        }
    }
    // Containerfiles: build arguments and the image's environment, with their values.
    let assignment = Regex::new(r"\b([A-Z][A-Z0-9_]*)=(\S+)").unwrap();
    for file in ["container/Containerfile", "container/claude/Containerfile"] {
        let text = read(&root.join(file));
        let mut continued = false;
        for line in text.lines() {
            let setting = continued || line.starts_with("ARG ") || line.starts_with("ENV ");
            continued = setting && line.trim_end().ends_with('\\');
            if !setting {
                continue;
            }
            for c in assignment.captures_iter(line) {
                known.names.insert(c[1].to_string());
                let entry = known.name_defaults.entry(c[1].to_string()).or_default();
                entry.insert(c[2].to_string());
            }
        }
        known
            .names
            .extend(upper.captures_iter(&text).map(|c| c[1].to_string()));
    }
    let fluent = read(&root.join("fluent-bit/fluent-bit.conf"));
    let expansion = Regex::new(r"\$\{([A-Z][A-Z0-9_]*)\}").unwrap();
    known
        .names
        .extend(expansion.captures_iter(&fluent).map(|c| c[1].to_string()));
    // Rust: variables read (std::env, clap's `env =`, tracing's filter variable) and the
    // benchmarks' options.
    let reads = Regex::new(
        r#"(?:env::var(?:_os)?|try_from_env|option_env!|env!)\(\s*"([A-Z][A-Z0-9_]*)"|env\s*=\s*"([A-Z][A-Z0-9_]*)""#,
    )
    .unwrap();
    let filter_default =
        Regex::new(r#"try_from_env\("([A-Z][A-Z0-9_]*)"\)[^;]*?EnvFilter::new\("([^"]+)"\)"#)
            .unwrap();
    let bench_flag = Regex::new(r#"(?:==\s*|arg_value\([^,]*,\s*)"--([a-z][a-z0-9-]*)""#).unwrap();
    let mut sources = Vec::new();
    files_under(&root.join("crates"), "rs", &mut sources);
    for path in sources {
        let text = read(&path);
        for c in reads.captures_iter(&text) {
            let name = c.get(1).or(c.get(2)).unwrap().as_str();
            known.names.insert(name.to_string());
        }
        for c in filter_default.captures_iter(&text) {
            let entry = known.name_defaults.entry(c[1].to_string()).or_default();
            entry.insert(c[2].to_string());
        }
        let is_program = path.components().any(|c| {
            let c = c.as_os_str();
            c == "benches" || c == "examples"
        });
        if is_program {
            known
                .flags
                .extend(bench_flag.captures_iter(&text).map(|c| c[1].to_string()));
        }
    }
}

const UNITS: &[(&str, f64)] = &[
    ("", 1.0),
    ("b", 1.0),
    ("kb", 1e3),
    ("mb", 1e6),
    ("gb", 1e9),
    ("kib", 1024.0),
    ("mib", 1048576.0),
    ("gib", 1073741824.0),
    ("kib/s", 1024.0),
    ("s", 1.0),
    ("secs", 1.0),
    ("seconds", 1.0),
];

/// A value as a number when it is one (`64 MiB` = `64MiB`, `200,000` = `200000`, `30 s` =
/// `30`), else as lower-case text.
fn normalize(value: &str) -> Result<f64, String> {
    let value = value.trim().trim_matches('`').trim();
    let number = Regex::new(r"^([0-9][0-9,_]*(?:\.[0-9]+)?)\s*([A-Za-z/]*)$").unwrap();
    if let Some(c) = number.captures(value) {
        let unit = c[2].to_ascii_lowercase();
        if let Some((_, factor)) = UNITS.iter().find(|(u, _)| *u == unit) {
            let n: f64 = c[1].replace([',', '_'], "").parse().unwrap();
            return Ok(n * factor);
        }
    }
    Err(value.to_ascii_lowercase())
}

/// The documented default is the program's: equal as a value, or the first alternative of a
/// default the help words as `X, or Y` / `X (…)`.
fn same_default(documented: &str, real: &BTreeSet<String>) -> bool {
    let doc = normalize(documented);
    real.iter().any(|r| {
        normalize(r) == doc || {
            let first = r.split([',', '(']).next().unwrap_or("").trim();
            normalize(first) == doc
        }
    })
}

const NAME: &str = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+";

/// Defaults claimed in running text, read a paragraph at a time (a claim may wrap):
/// "`--flag value` (the default)", "by default (`--flag value`)", "`--flag` (default X)",
/// "`--flag` (X by default)", "`--flag`, default `X`".
struct Prose {
    flag_span: Regex,
    tail_default: Regex,
    value_is_default: Regex,
    default_before: Regex,
}

impl Prose {
    fn new() -> Self {
        Self {
            flag_span: Regex::new(r"`--([a-z][a-z0-9-]*)(?:[ =]([^`]+))?`").unwrap(),
            tail_default: Regex::new(
                r"^(?:[^.;`]{0,15}?\(default:? `?([0-9][0-9,.]*(?: ?[A-Za-z/]+)?|[^`),;]+)`?[),;]|,? default:? `([^`]+)`|\s*\(([^)`]+) by default\))",
            )
            .unwrap(),
            value_is_default: Regex::new(r"^\s*(?:\(the default\)|is the default|\(default\))")
                .unwrap(),
            default_before: Regex::new(r"(?:default|[Bb]y default \()\s*$").unwrap(),
        }
    }

    fn check(
        &self,
        lines: &[(usize, String)],
        page: &str,
        known: &Known,
        problems: &mut Vec<String>,
    ) {
        let mut text = String::new();
        let mut starts = Vec::new();
        for (n, line) in lines {
            starts.push((text.len(), *n));
            text.push_str(line.trim());
            text.push(' ');
        }
        for c in self.flag_span.captures_iter(&text) {
            let flag = &c[1];
            let whole = c.get(0).unwrap();
            let line = starts
                .iter()
                .rev()
                .find(|(offset, _)| *offset <= whole.start())
                .map_or(0, |(_, n)| *n);
            let before = &text[..whole.start()];
            let after = &text[whole.end()..];
            let claim = match c.get(2) {
                Some(v)
                    if self.value_is_default.is_match(after)
                        || self.default_before.is_match(before) =>
                {
                    Some(v.as_str().to_string())
                }
                Some(_) => None,
                None => self.tail_default.captures(after).map(|t| {
                    let value = t.get(1).or(t.get(2)).or(t.get(3)).unwrap();
                    value.as_str().to_string()
                }),
            };
            let Some(claim) = claim else { continue };
            match known.flag_defaults.get(flag) {
                Some(real) if same_default(&claim, real) => {}
                Some(real) => problems.push(format!(
                    "{page}:{line}: `--{flag}` defaults to {real:?}, not `{claim}`"
                )),
                None => problems.push(format!(
                    "{page}:{line}: `--{flag}` has no default, the docs say `{claim}`"
                )),
            }
        }
    }
}

fn check_docs(root: &Path, known: &Known) -> Vec<String> {
    let other_flags: BTreeSet<&str> = OTHER_FLAGS.iter().map(|(f, _)| *f).collect();
    let other_names: BTreeSet<&str> = OTHER_NAMES.iter().map(|(n, _)| *n).collect();
    let flag_mention = Regex::new(r"(?:^|[^A-Za-z0-9_-])--([a-z][a-z0-9-]*)").unwrap();
    let span = Regex::new(r"`([^`]+)`").unwrap();
    let bare_name = Regex::new(&format!(r"^\$?\{{?({NAME})\}}?(?:=.*)?$")).unwrap();
    let assigned = Regex::new(&format!(r"(?:^|[^A-Za-z0-9_])({NAME})=")).unwrap();
    let expanded = Regex::new(&format!(r"\$\{{?({NAME})")).unwrap();
    let leading_values = Regex::new(r"^`([^`]+)`((?:\s*(?:,|/)\s*`[^`]+`)*)").unwrap();
    let prose = Prose::new();
    let cell_split = Regex::new(r"(?:^|[^\\])\|").unwrap();

    let mut pages = vec![root.join("README.md")];
    let mut docs = Vec::new();
    files_under(&root.join("docs"), "md", &mut docs);
    docs.sort();
    pages.extend(docs);
    let mut problems = Vec::new();
    for page in pages {
        let rel = page.strip_prefix(root).unwrap().display().to_string();
        let mut fence = false;
        let mut header: Option<Vec<String>> = None;
        let mut paragraph: Vec<(usize, String)> = Vec::new();
        for (n, line) in read(&page).lines().enumerate() {
            let at = format!("{rel}:{}", n + 1);
            if line.trim_start().starts_with("```") || line.starts_with('|') {
                prose.check(&paragraph, &rel, known, &mut problems);
                paragraph.clear();
            }
            if line.trim_start().starts_with("```") {
                fence = !fence;
                continue;
            }
            for c in flag_mention.captures_iter(line) {
                let flag = &c[1];
                if !known.flags.contains(flag) && !other_flags.contains(flag) {
                    problems.push(format!("{at}: `--{flag}` is no option of our programs"));
                }
            }
            let mut names = Vec::new();
            if fence {
                names.extend(assigned.captures_iter(line).map(|c| c[1].to_string()));
                names.extend(expanded.captures_iter(line).map(|c| c[1].to_string()));
            } else {
                for s in span.captures_iter(line) {
                    if let Some(c) = bare_name.captures(&s[1]) {
                        names.push(c[1].to_string());
                    } else {
                        names.extend(assigned.captures_iter(&s[1]).map(|c| c[1].to_string()));
                        names.extend(expanded.captures_iter(&s[1]).map(|c| c[1].to_string()));
                    }
                }
            }
            for name in names {
                if !known.names.contains(&name) && !other_names.contains(name.as_str()) {
                    problems.push(format!(
                        "{at}: `{name}` is read by none of our programs or scripts"
                    ));
                }
            }
            if fence {
                continue;
            }
            // Tables with a "default" column: the leading value(s) of that cell are the
            // defaults of the row's flags (or, without flags, of its variables).
            if line.starts_with('|') {
                let inner = line.trim().trim_start_matches('|');
                let mut cells = Vec::new();
                let mut last = 0;
                for m in cell_split.find_iter(inner) {
                    let end = m.end() - 1;
                    cells.push(inner[last..end].trim().to_string());
                    last = m.end();
                }
                if last < inner.len() {
                    cells.push(inner[last..].trim().to_string());
                }
                let Some(head) = &header else {
                    header = Some(cells.iter().map(|c| c.to_lowercase()).collect());
                    continue;
                };
                let Some(d) = head.iter().position(|h| h == "default") else {
                    continue;
                };
                let Some(cell) = cells.get(d) else { continue };
                let Some(v) = leading_values.captures(cell) else {
                    continue;
                };
                let mut values = vec![v[1].to_string()];
                values.extend(span.captures_iter(&v[2]).map(|c| c[1].to_string()));
                let flags: Vec<String> = flag_mention
                    .captures_iter(&cells[0])
                    .map(|c| c[1].to_string())
                    .collect();
                let keys: Vec<(bool, String)> = if flags.is_empty() {
                    let env_cell = head
                        .iter()
                        .position(|h| h == "env")
                        .map_or(&cells[0], |e| &cells[e]);
                    span.captures_iter(env_cell)
                        .filter_map(|c| {
                            bare_name.captures(&c[1]).map(|n| (false, n[1].to_string()))
                        })
                        .collect()
                } else {
                    flags.into_iter().map(|f| (true, f)).collect()
                };
                let values = if keys.len() == 1 {
                    &values[..1]
                } else {
                    &values[..]
                };
                if keys.len() != values.len() {
                    problems.push(format!(
                        "{at}: {} default values for {} settings",
                        values.len(),
                        keys.len()
                    ));
                    continue;
                }
                for ((is_flag, key), value) in keys.iter().zip(values) {
                    let (shown, real) = if *is_flag {
                        (format!("--{key}"), known.flag_defaults.get(key))
                    } else {
                        (key.clone(), known.name_defaults.get(key))
                    };
                    match real {
                        Some(real) if !real.is_empty() => {
                            if !same_default(value, real) {
                                problems.push(format!(
                                    "{at}: `{shown}` defaults to {real:?}, not `{value}`"
                                ));
                            }
                        }
                        _ => problems.push(format!(
                            "{at}: `{shown}` has no default, the docs say `{value}`"
                        )),
                    }
                }
                continue;
            }
            header = None;
            if line.trim().is_empty() {
                prose.check(&paragraph, &rel, known, &mut problems);
                paragraph.clear();
            } else {
                paragraph.push((n + 1, line.to_string()));
            }
        }
        prose.check(&paragraph, &rel, known, &mut problems);
    }
    problems
}

#[test]
fn the_docs_name_only_flags_variables_and_defaults_the_programs_have() {
    let root = repo_root();
    let mut known = Known::default();
    for (_, text) in helps() {
        parse_help(&text, &mut known);
    }
    // The parser must have found what every binary is known to have.
    for flag in [
        "listen",
        "bodies",
        "log-file",
        "token",
        "timeout-ms",
        "seq-host",
    ] {
        assert!(
            known.flags.contains(flag),
            "--{flag} not found in any --help"
        );
    }
    assert!(known.flag_defaults["bodies"].contains("delta"));
    project_sources(&root, &mut known);
    let problems = check_docs(&root, &known);
    assert!(
        problems.is_empty(),
        "the docs name what the programs do not have (fix the doc, or, for another program's \
         name, add it with its reason to this test's lists):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_catches_an_unknown_flag_variable_and_default() {
    // The check above passing proves little unless it fails on untrue docs: run it over a page
    // with one of each mistake.
    let dir = std::env::temp_dir().join(format!("docs-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(
        dir.join("README.md"),
        "Run `otlp-shipper --no-such-flag`.\n\
         Set `NO_SUCH_VARIABLE=1`.\n\
         With `--bodies full`\n\
         (the default) every body ships.\n\
         \n\
         | flag | env | default | meaning |\n\
         |---|---|---|---|\n\
         | `--batch-max-bytes N` | `BATCH_MAX_BYTES` | `4 MB` | batch |\n\
         | `--capture-cap` | `CAPTURE_CAP` | `64 MiB` | right |\n",
    )
    .unwrap();
    let mut known = Known::default();
    for (_, text) in helps() {
        parse_help(&text, &mut known);
    }
    let problems = check_docs(&dir, &known);
    let _ = std::fs::remove_dir_all(&dir);
    let expected = [
        "README.md:1: `--no-such-flag`",
        "README.md:2: `NO_SUCH_VARIABLE`",
        "README.md:3: `--bodies` defaults to",
        "README.md:8: `--batch-max-bytes` defaults to",
    ];
    for e in expected {
        assert!(
            problems.iter().any(|p| p.starts_with(e)),
            "missed {e}: {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}
