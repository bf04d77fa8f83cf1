//! Entrypoint of the claude-api-logger image: parse the CLI, validate, supervise, exit.
use std::process::ExitCode;

fn main() -> ExitCode {
    claude_api_logger::main_with_args(std::env::args_os())
}
