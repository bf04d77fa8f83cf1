//! otlp-shipper binary: parse the command line, build the validated config (exit 64 when it
//! is wrong), start tracing, run until drained or signalled.

use clap::Parser;
use otlp_shipper::config::{Cli, Config};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            write_stderr(&e.render().to_string());
            return ExitCode::from(64);
        }
    };
    let config = match Config::from_cli(cli, &|k| std::env::var(k).ok())
        .and_then(|c| c.check_paths().map(|()| c))
    {
        Ok(c) => c,
        Err(e) => {
            fatal(e);
            return ExitCode::from(64);
        }
    };
    // Lossy and off-thread: a stderr nobody reads drops diagnostic lines rather than stall
    // delivery.
    // 4,096 lines queued at most: the default (128,000) allocates ~4 MB up front.
    let (stderr, flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .finish(std::io::stderr());
    let dropped = stderr.error_counter();
    tracing_subscriber::fmt()
        .with_writer(stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level)),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            drop(flush);
            fatal(format_args!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            otlp_shipper::shutdown_signal().await;
            tracing::info!("shutdown signal: finishing the batch in flight");
            s.cancel();
        });
        otlp_shipper::run(config, shutdown).await
    });
    drop(runtime);
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
        Err(e) => {
            fatal(format_args!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints a fatal error as one line.
fn fatal(message: impl std::fmt::Display) {
    write_stderr(&format!("otlp-shipper: {message}\n"));
}

/// Writes `text` to stderr in one `write`: stderr is unbuffered and `eprintln!` (or clap's
/// `print`) writes each formatted piece on its own, which another process sharing the
/// container's stderr (the supervisor's other child) could split.
fn write_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}
