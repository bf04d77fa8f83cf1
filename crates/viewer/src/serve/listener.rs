//! The accept loop: at most `max_connections` connections at once (one more is answered 503
//! and closed), each served by hyper's HTTP/1 with a timeout on reading a request head (which
//! also closes a connection left idle between requests) and a small read buffer, so clients
//! cannot pile up sockets or memory. axum's `serve` has neither setting.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A request head must arrive within this; an idle connection is closed after it.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's read buffer (request heads are small: the viewer reads no request body).
const MAX_BUF: usize = 64 << 10;

const OVER_CAP: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: 52\r\n\r\nclaude-api-logger serve: too many open connections\n";

/// Serves `app` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUF);
    let http = Arc::new(http);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let (stream, _peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors, or a connection gone before accept: try again shortly.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = stream.try_write(OVER_CAP);
            tracing::warn!(
                max_connections,
                "connection refused: --max-connections (VIEWER_MAX_CONNECTIONS) reached"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let http = http.clone();
        tokio::spawn(async move {
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
}
