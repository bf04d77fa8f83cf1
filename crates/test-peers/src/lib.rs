//! Where the tests of every crate find the real peers that scripts/test.sh installs (the Claude
//! Code CLI, a Python with the Anthropic SDK, the cache of npm packages): tests never skip, so a
//! missing peer fails the test with the step that installs it.

use std::path::PathBuf;

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
