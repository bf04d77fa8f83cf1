//! otlp-shipper binary: parse the command line, build the validated config (exit 64 when it
//! is wrong), start tracing, run until drained or signalled.

use command_line::{Diagnostics, Fatal};
use otlp_shipper::config::{Cli, Config};
use std::process::ExitCode;

const NAME: &str = "otlp-shipper";

fn main() -> ExitCode {
    let cli = match command_line::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let config = match Config::from_cli(cli, &|k| std::env::var(k).ok())
        .and_then(|c| c.check_paths().map(|()| c))
    {
        Ok(c) => c,
        Err(e) => return command_line::exit(NAME, Err(Fatal::usage(e))),
    };
    let diagnostics = Diagnostics::start(NAME, &config.log_level);
    let result = run(config);
    // Everything logged goes out before the last word.
    diagnostics.finish();
    command_line::exit(NAME, result)
}

/// Runs the shipper on a runtime of its own until it is drained or a signal stops it.
fn run(config: Config) -> Result<(), Fatal> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Fatal::failure(format_args!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(async {
            let shutdown = tokio_util::sync::CancellationToken::new();
            let s = shutdown.clone();
            tokio::spawn(async move {
                command_line::stop_signal().await;
                tracing::info!("shutdown signal: finishing the batch in flight");
                s.cancel();
            });
            otlp_shipper::run(config, shutdown).await
        })
        .map_err(|e| Fatal::failure(format_args!("{e:#}")))
}
