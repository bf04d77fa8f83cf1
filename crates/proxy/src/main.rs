//! `claude-api-proxy`: parse the flags, start diagnostics on stderr, run the proxy.

use clap::Parser;
use claude_api_proxy::config::{Cli, Config};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are not errors.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // A bad flag is a usage error (64).
        Err(e) => {
            write_stderr(&e.render().to_string());
            return ExitCode::from(64);
        }
    };
    // Lossy and off-thread: a stderr nobody reads drops diagnostic lines (counted below) rather
    // than stop the forwarding thread.
    // 4,096 lines queued at most: the default (128,000) allocates ~4 MB up front.
    let (stderr, flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .finish(std::io::stderr());
    let dropped = stderr.error_counter();
    tracing_subscriber::fmt()
        .with_writer(stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = Config::try_from(cli)
        .map_err(|e| (e.to_string(), 64))
        .and_then(|config| {
            claude_api_proxy::run(config).map_err(|e| (format!("{e:#}"), e.exit_code()))
        });
    // Everything logged goes out before the last word.
    drop(flush);
    if dropped.dropped_lines() > 0 {
        fatal(format_args!(
            "{} diagnostic lines were dropped because stderr was not read fast enough",
            dropped.dropped_lines()
        ));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => {
            fatal(message);
            ExitCode::from(code)
        }
    }
}

/// Prints a fatal error as one line.
fn fatal(message: impl std::fmt::Display) {
    write_stderr(&format!("claude-api-proxy: {message}\n"));
}

/// Writes `text` to stderr in one `write`: stderr is unbuffered and `eprintln!` (or clap's
/// `print`) writes each formatted piece on its own, which another process sharing the
/// container's stderr (the supervisor's other child) could split.
fn write_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}
