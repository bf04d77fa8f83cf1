//! `claude-api-proxy`: parse the flags, start diagnostics on stderr, run the proxy.

use claude_api_proxy::config::{Cli, Config};
use command_line::{Diagnostics, Fatal};
use std::process::ExitCode;

const NAME: &str = "claude-api-proxy";

fn main() -> ExitCode {
    let cli = match command_line::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let diagnostics = Diagnostics::start(NAME, "info");
    let result = Config::try_from(cli)
        .map_err(Fatal::usage)
        .and_then(|config| {
            claude_api_proxy::run(config).map_err(|e| Fatal {
                message: format!("{e:#}"),
                code: e.exit_code(),
            })
        });
    // Everything logged goes out before the last word.
    diagnostics.finish();
    command_line::exit(NAME, result)
}
