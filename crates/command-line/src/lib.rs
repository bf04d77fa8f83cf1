//! What the binaries of the workspace share at their command-line edge, so that they read a
//! setting the same way and start, stop and fail the same way: byte-size values, the parse of
//! the command line (exit 0 for `--help`, 64 for a bad flag), diagnostics on stderr, a fatal
//! error printed once as one line, and the signal that stops them.

use clap::Parser;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

/// Exit code for a setting the user must change (EX_USAGE, as linkerd uses for bad config).
pub const EXIT_USAGE: u8 = 64;

/// Parses `1048576`, `512KiB`, `64MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB` as
/// powers of 1024); `None` for anything else or a count that overflows.
pub fn parse_bytes(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(multiplier)
}

/// The command line of this process: `--help` and `--version` print and end with 0, a bad flag
/// prints clap's message and ends with [`EXIT_USAGE`] (the `Err` is the code to exit with).
pub fn parse<C: Parser>() -> Result<C, ExitCode> {
    match C::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            write_stderr(&e.render().to_string());
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// The `tracing` output on stderr of a running binary; [`Diagnostics::finish`] before the last
/// word.
pub struct Diagnostics {
    program: &'static str,
    flush: tracing_appender::non_blocking::WorkerGuard,
    dropped: tracing_appender::non_blocking::ErrorCounter,
}

impl Diagnostics {
    /// Starts diagnostics for `program` at the level `RUST_LOG` sets, else `default_filter`.
    ///
    /// Lossy and off-thread: a stderr nobody reads drops diagnostic lines (counted, and
    /// reported by [`Diagnostics::finish`]) rather than stall the program's work.
    pub fn start(program: &'static str, default_filter: &str) -> Self {
        // 4,096 lines queued at most: the default (128,000) allocates ~4 MB up front.
        let (stderr, flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(4096)
            .finish(std::io::stderr());
        let dropped = stderr.error_counter();
        tracing_subscriber::fmt()
            .with_writer(stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
            )
            .init();
        Diagnostics {
            program,
            flush,
            dropped,
        }
    }

    /// Writes out everything logged, then says how many lines were dropped, if any.
    pub fn finish(self) {
        drop(self.flush);
        let dropped = self.dropped.dropped_lines();
        if dropped > 0 {
            fatal(
                self.program,
                format_args!(
                    "{dropped} diagnostic lines were dropped because stderr was not read fast enough"
                ),
            );
        }
    }
}

/// A reason to stop, as printed, and the code to exit with.
#[derive(Debug)]
pub struct Fatal {
    pub message: String,
    pub code: u8,
}

impl Fatal {
    /// A setting the user must change: exit [`EXIT_USAGE`].
    pub fn usage(message: impl std::fmt::Display) -> Self {
        Fatal {
            message: message.to_string(),
            code: EXIT_USAGE,
        }
    }

    /// Anything else: exit 1.
    pub fn failure(message: impl std::fmt::Display) -> Self {
        Fatal {
            message: message.to_string(),
            code: 1,
        }
    }
}

/// The exit code of `result`, after printing its error once.
pub fn exit(program: &str, result: Result<(), Fatal>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal { message, code }) => {
            fatal(program, message);
            ExitCode::from(code)
        }
    }
}

/// Prints a fatal error as one line: `<program>: <message>`.
pub fn fatal(program: &str, message: impl std::fmt::Display) {
    write_stderr(&format!("{program}: {message}\n"));
}

/// Resolves on SIGTERM or SIGINT (on SIGINT only, should the SIGTERM handler not install). As
/// PID 1 in a container nothing else would end a program on `podman stop`, and the supervisor
/// stops its children with SIGTERM.
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Writes `text` to stderr in one `write`: stderr is unbuffered and `eprintln!` (or clap's
/// `print`) writes each formatted piece on its own, which another process sharing the
/// container's stderr (the supervisor's other child) could split.
fn write_stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_bytes("64MiB"), Some(64 << 20));
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("2k"), Some(2048));
        assert_eq!(parse_bytes(" 500 MB "), Some(500 << 20));
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("0"), Some(0));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("1TiB"), None);
        assert_eq!(parse_bytes("18446744073709551615G"), None);
    }
}
