//! `serve`: the viewer as a read-only HTTP server over the traffic log, following it live: the
//! session list, each session as the `html` page (updating as exchanges are written), each
//! exchange whole. It binds 127.0.0.1 unless told otherwise and then needs a token (`access`).
//!
//! Imports go one way: `access` (who may read), `follow` (the index, kept up to date) <-
//! `pages` (the HTML) <- `routes` (handlers) <- `listener` (connections) <- `run` here.

pub mod access;
mod follow;
mod listener;
pub mod pages;
mod routes;

use clap::Args;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::LogArgs;
pub use follow::LiveLog;
pub use routes::is_exchange_id;

/// How often the log is looked at for new lines, rotations and deletions.
const REFRESH: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but a loopback address needs --token.
    #[arg(long, env = "VIEWER_LISTEN", default_value = "127.0.0.1:8001")]
    pub listen: String,
    /// A secret every request must carry (at least 16 letters, digits, '-' or '_'); required
    /// when --listen is not a loopback address. Prefer the environment variable: a flag shows
    /// in the process list.
    #[arg(long, env = "VIEWER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Connections open at once; one more is answered 503 and closed.
    #[arg(long, env = "VIEWER_MAX_CONNECTIONS", default_value_t = 64)]
    pub max_connections: usize,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Why `serve` stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Setting(#[from] access::SettingError),
    #[error("--max-connections / VIEWER_MAX_CONNECTIONS must be at least 1")]
    NoConnections,
    #[error("cannot listen on {addr} (set --listen / VIEWER_LISTEN to a free address): {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Viewer(#[from] crate::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl Error {
    /// A setting the user must change (exit code 64).
    pub fn is_config(&self) -> bool {
        !matches!(self, Error::Runtime(_))
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<(), Error> {
    let addr = access::check(&args.listen, args.token.as_deref())?;
    if args.max_connections == 0 {
        return Err(Error::NoConnections);
    }
    let prices = args.log.prices()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let bound = listener.local_addr().unwrap_or(addr);
        let access = access::Access::new(args.token.as_deref());
        println!("{}", started_line(bound, access.needs_token()));
        let app = Arc::new(routes::App::new(
            prices,
            access,
            args.log.log_file.clone(),
            args.max_connections,
        ));
        tokio::spawn(follow_log(app.clone()));
        listener::serve(
            listener,
            routes::router(app),
            args.max_connections,
            command_line::stop_signal(),
        )
        .await;
        Ok(())
    })
}

/// The line `serve` prints first: where it listens and who may read it.
fn started_line(bound: std::net::SocketAddr, token: bool) -> String {
    let who = match (bound.ip().is_loopback(), token) {
        (true, false) => "this machine only, no token".to_string(),
        (loopback, true) => format!(
            "{}every request needs the token of VIEWER_TOKEN: open http://HOST:{}/t/<token>/ once, the browser then keeps a cookie",
            if loopback {
                ""
            } else {
                "reachable from other hosts: "
            },
            bound.port()
        ),
        (false, false) => unreachable!("access::check refuses this"),
    };
    format!("listening on http://{bound}/ ({who})")
}

/// Indexes the log, then looks at it every `REFRESH` for the rest of the server's life.
async fn follow_log(app: Arc<routes::App>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let mut last_error = String::new();
    loop {
        let started = Instant::now();
        let file = app.log_file.clone();
        match tokio::task::spawn_blocking(move || LiveLog::open(&file, threads)).await {
            Ok(Ok(live)) => {
                tracing::info!(
                    exchanges = live.index.heads.len(),
                    bytes = live.index.bytes,
                    seconds = started.elapsed().as_secs_f64(),
                    "indexed the traffic log; following it"
                );
                let generation = live.generation;
                *app.live.write().unwrap_or_else(|e| e.into_inner()) = Some(live);
                app.changes.send_replace(generation);
                break;
            }
            Ok(Err(e)) => {
                if e.to_string() != last_error {
                    tracing::error!(error = %e, "cannot index the traffic log; trying again");
                    last_error = e.to_string();
                }
            }
            Err(e) => tracing::error!(error = %e, "indexing the traffic log failed"),
        }
        tokio::time::sleep(REFRESH).await;
    }
    loop {
        tokio::time::sleep(REFRESH).await;
        let app2 = app.clone();
        let refreshed = tokio::task::spawn_blocking(move || {
            let mut guard = app2.live.write().unwrap_or_else(|e| e.into_inner());
            let live = guard.as_mut().expect("indexed above");
            live.refresh(1)
                .map(|changed| changed.then_some(live.generation))
        })
        .await;
        match refreshed {
            Ok(Ok(Some(generation))) => {
                app.changes.send_replace(generation);
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                if e.to_string() != last_error {
                    tracing::warn!(error = %e, "cannot read the traffic log; trying again");
                    last_error = e.to_string();
                }
            }
            Err(e) => tracing::error!(error = %e, "following the traffic log failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_says_who_may_read() {
        let line = started_line("127.0.0.1:8001".parse().unwrap(), false);
        assert_eq!(
            line,
            "listening on http://127.0.0.1:8001/ (this machine only, no token)"
        );
        let line = started_line("0.0.0.0:8001".parse().unwrap(), true);
        assert!(
            line.contains("reachable from other hosts: every request needs the token")
                && line.contains("/t/<token>/"),
            "{line}"
        );
    }
}
