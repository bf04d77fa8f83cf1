//! The signals the proxy acts on: SIGTERM or SIGINT drain and stop it (fanned out through a
//! cancellation token); SIGHUP reopens the traffic log path (after an external logrotate).

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM or SIGINT.
pub async fn on_shutdown(token: CancellationToken) {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT will stop the proxy");
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; draining in-flight exchanges"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; draining in-flight exchanges"),
    }
    token.cancel();
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
