//! The container's PID 1: starts `claude-api-proxy` and `otlp-shipper` (and, with
//! `VIEWER_LISTEN`, the session viewer `claude-api-logger serve`), reaps zombies,
//! restarts crashed children with backoff, forwards SIGHUP to the proxy (it reopens its log),
//! and on SIGTERM stops the proxy first (its in-flight exchanges are written), then lets the
//! shipper deliver every written line, then exits 0.

pub mod backoff;
pub mod child;
pub mod config;
pub mod health;
pub mod supervisor;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

pub use crate::config::EXIT_CONFIG;
use crate::config::{Cli, Command, Config};

/// The session viewer's subcommands (they read the log; nothing is supervised).
fn viewer_command(command: &Option<Command>) -> Option<ExitCode> {
    let result = match command {
        Some(Command::Sessions(args)) => viewer::cli::sessions(args),
        Some(Command::Show(args)) => viewer::cli::show(args),
        Some(Command::Html(args)) => viewer::cli::html(args),
        _ => return None,
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("claude-api-logger: {err}");
            ExitCode::FAILURE
        }
    })
}

/// The whole program, minus `std::env`, so tests can drive it with arguments.
pub fn main_with_args<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    if let Some(code) = viewer_command(&cli.command) {
        return code;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();

    if let Some(Command::Serve(args)) = &cli.command {
        return match viewer::serve::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("claude-api-logger serve: {err}");
                ExitCode::from(if err.is_config() { EXIT_CONFIG } else { 1 })
            }
        };
    }

    if let Some(Command::Health(args)) = &cli.command {
        return match health::check(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("unhealthy: {err:#}");
                ExitCode::FAILURE
            }
        };
    }

    let config = match Config::from_cli(cli.run) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("claude-api-logger: configuration error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("claude-api-logger: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(supervisor::Supervisor::new(config).run()) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("claude-api-logger: {err:#}");
            ExitCode::FAILURE
        }
    }
}
