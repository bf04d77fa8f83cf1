//! Where the tests of every crate find the real peers that scripts/test.sh installs (the Claude
//! Code CLI, a Python with the Anthropic SDK, the cache of npm packages): tests never skip, so a
//! missing peer fails the test with the step that installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `PATH` the tests give the programs they run (which start with an empty environment).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The path in the environment variable `name`, which scripts/test.sh sets when it installs
/// `what`; panics naming the install step when it is unset or names nothing.
pub fn required_env(name: &str, what: &str) -> PathBuf {
    let value = std::env::var_os(name)
        .unwrap_or_else(|| panic!("{name} not set: run scripts/test.sh, which installs {what}"));
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{name}={} does not exist: run scripts/test.sh, which installs {what}",
        path.display()
    );
    path
}

/// The real Claude Code CLI (`CLAUDE_BIN`: npm `@anthropic-ai/claude-code`).
pub fn claude_bin() -> PathBuf {
    required_env("CLAUDE_BIN", "the Claude Code CLI")
}

/// The real Claude Code CLI as every test runs it: in `cwd` with its own `home` and `tmp`, no
/// environment but what is set here, its model requests to `base_url`, no error reports or
/// auto-update, stdin closed. Callers add the prompt, flags, the API key (in the variable they
/// test) and telemetry settings.
pub fn claude_command(cwd: &Path, home: &Path, tmp: &Path, base_url: &str) -> Command {
    let mut cmd = Command::new(claude_bin());
    cmd.current_dir(cwd)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", home)
        .env("TMPDIR", tmp)
        .env("ANTHROPIC_BASE_URL", base_url)
        .env("DISABLE_ERROR_REPORTING", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        // --dangerously-skip-permissions refuses to run as root outside a sandbox.
        .env("IS_SANDBOX", "1")
        .stdin(Stdio::null());
    cmd
}

/// The binary `bin` of the workspace package `package`, built now in this test's profile (so
/// a test in one crate runs the current build of another crate's program), once per process.
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(name, _)| name == bin) {
        return path.clone();
    }
    // target/<profile>/deps/<test> → target/<profile>
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "-q", "-p", package, "--bin", bin]);
    if dir.ends_with("release") {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("cargo runs");
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    let path = dir.join(bin);
    built.push((bin.to_string(), path.clone()));
    path
}
