//! The signals the proxy acts on: SIGTERM or SIGINT drain and stop it (fanned out through a
//! cancellation token); SIGHUP reopens the traffic log path (after an external logrotate).

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Listens for SIGTERM and SIGINT from this call on (so that from then on neither kills the
/// proxy outright); the future cancels `token` on the first.
pub fn on_shutdown(token: CancellationToken) -> impl Future<Output = ()> {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let mut int = match int {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGINT");
                return;
            }
        };
        match term {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received; draining in-flight exchanges"),
                _ = int.recv() => tracing::info!("SIGINT received; draining in-flight exchanges"),
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT will stop the proxy");
                int.recv().await;
                tracing::info!("SIGINT received; draining in-flight exchanges");
            }
        }
        token.cancel();
    }
}

/// Installs the SIGHUP handler (so that from now on SIGHUP never kills the proxy).
pub fn hangups() -> std::io::Result<Signal> {
    signal(SignalKind::hangup())
}

/// Calls `reopen` on every SIGHUP.
pub async fn on_hangup(mut hangups: Signal, reopen: impl Fn()) {
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP received; reopening the traffic log");
        reopen();
    }
}
