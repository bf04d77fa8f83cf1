//! `seq-standin`: the Seq stand-in as a program, for container tests and by-hand runs.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// A Seq stand-in (NOT Seq) for tests: OTLP/HTTP logs ingestion with Seq's default limits,
/// counters and fault injection.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SEQ_STANDIN_LISTEN", default_value = "0.0.0.0:5341")]
    listen: SocketAddr,
    /// Required X-Seq-ApiKey value (none: any request is accepted).
    #[arg(long, env = "SEQ_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Per-event limit in bytes (Seq's default: 256 KiB).
    #[arg(long, default_value_t = seq_standin::limits::DEFAULT_EVENT_LIMIT)]
    event_limit: usize,
    /// Per-request limit in bytes (Seq's default: 10 MB).
    #[arg(long, default_value_t = seq_standin::limits::DEFAULT_REQUEST_LIMIT)]
    request_limit: usize,
    /// Directory where accepted events are appended to events.jsonl and spans to spans.jsonl.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Also serve on this address (the Seq container's UI port 80, which ingests too).
    #[arg(long)]
    also_listen: Option<SocketAddr>,
    /// Behave as the Seq container at start: refuse to start a new instance (no auth state in
    /// --store) without ACCEPT_EULA=Y and SEQ_FIRSTRUN_ADMINPASSWORD,
    /// SEQ_FIRSTRUN_ADMINPASSWORDHASH or SEQ_FIRSTRUN_NOAUTHENTICATION=true (Seq 2025.2+).
    #[arg(long, requires = "store")]
    first_run_rules: bool,
    /// Also keep accepted events in memory for GET /events.
    #[arg(long)]
    keep_events: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let auth = match (&cli.store, cli.first_run_rules) {
        (Some(store), true) => {
            match seq_standin::first_run::start(|name| std::env::var(name).ok(), store) {
                Ok(state) => Some(state),
                Err(e) => {
                    eprintln!("seq-standin: {e}");
                    return ExitCode::from(64);
                }
            }
        }
        _ => None,
    };
    let options = seq_standin::Options {
        api_key: cli.api_key,
        auth,
        event_limit: cli.event_limit,
        request_limit: cli.request_limit,
        keep_events: cli.keep_events,
        store_dir: cli.store,
        keep_raw: false,
        decode: true,
    };
    let mut handle = match seq_standin::spawn(cli.listen, options).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "seq-standin: cannot listen on {} (--listen): {e}",
                cli.listen
            );
            return ExitCode::from(64);
        }
    };
    println!("listening on {}", handle.addr());
    if let Some(addr) = cli.also_listen {
        match handle.listen_also(addr).await {
            Ok(bound) => println!("listening on {bound}"),
            Err(e) => {
                eprintln!("seq-standin: cannot listen on {addr} (--also-listen): {e}");
                return ExitCode::from(64);
            }
        }
    }
    tokio::select! {
        _ = handle.wait() => ExitCode::FAILURE,
        _ = command_line::stop_signal() => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
