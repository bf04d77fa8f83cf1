//! The client side of the proxy: accepts connections up to a cap and serves each with hyper's
//! HTTP/1 server under a header-read timeout, a keep-alive timeout and a header size cap, so
//! that one client on the network cannot exhaust the proxy's sockets or memory.
//!
//! axum's `serve` offers none of these settings (no timer, so no header-read timeout; no
//! connection cap; a one-second sleep on every accept error), so the accept loop is here, with
//! hyper's own `http1::Builder` and the same graceful shutdown `serve` does.

use crate::burst::ClientFloods;
use crate::connection::{Expired, Phase, Tracked, Watched};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// What a client connection may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
}

/// The answer to a connection over the cap, written without reading the request.
const OVER_CAP: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 118\r\n\r\n{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"claude-api-proxy: too many client connections\"}}";

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets the open connections
/// finish their requests (hyper's graceful shutdown) and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    floods: Arc<ClientFloods>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(AtomicUsize::new(0));
    tokio::spawn(trim_after_bursts(open.clone(), shutdown.clone()));
    tokio::spawn({
        let floods = floods.clone();
        let shutdown = shutdown.clone();
        async move { floods.report(shutdown).await }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // Both timeouts are applied by each connection's task; hyper's own header-read timer would
    // also cut an idle keep-alive connection at the header-read timeout.
    http.timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_header_size(limits.max_header_bytes)
        // hyper's read buffer grows up to this; the default (~400 KB) let each slow client
        // hold that much.
        .max_buf_size(limits.max_header_bytes.max(64 * 1024));
    let http = Arc::new(http);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, _peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection gone before accept: the
                // connections being served free descriptors as they end.
                if floods.accept_errors.note() {
                    tracing::warn!(error = %e, "cannot accept client connections (counted; reported again when the burst ends)");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = stream.try_write(OVER_CAP);
            if floods.refused.note() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "client connections refused with 503: --max-connections (env MAX_CONNECTIONS) reached (counted; reported again when the burst ends)"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let phase = Phase::accepted();
        let io = TokioIo::new(Watched::new(stream, phase.clone()));
        let service = Tracked::new(TowerToHyperService::new(app.clone()), phase.clone());
        let http = http.clone();
        let shutdown = shutdown.clone();
        let open = open.clone();
        open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut conn = pin!(http.serve_connection(io, service));
            let mut draining = false;
            loop {
                let ended = tokio::select! {
                    ended = until_expired(conn.as_mut(), &phase, limits) => ended,
                    () = shutdown.cancelled(), if !draining => End::Shutdown,
                };
                match ended {
                    End::Closed(result) => break log_end(result),
                    // The request under way (if any) is finished first; the timers still run,
                    // so a partial head cannot hold the drain.
                    End::Shutdown => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    // Idle, no request under way: hyper closes it at once.
                    End::Expired(Expired::KeepAlive) => {
                        conn.as_mut().graceful_shutdown();
                        break log_end(conn.await);
                    }
                    // A partial head keeps hyper waiting even after a graceful shutdown: dropped.
                    End::Expired(Expired::HeaderRead) => {
                        break tracing::debug!(
                            "client connection closed: no complete request head within --header-read-timeout"
                        );
                    }
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    // Every permit back: every connection has ended.
    let _all = permits
        .acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .await;
    Ok(())
}

/// How a connection's task stopped driving it.
enum End {
    Closed(Result<(), hyper::Error>),
    Expired(Expired),
    Shutdown,
}

/// Drives `conn` until it ends or the timer of its phase runs out.
///
/// Every change of phase happens while `conn` is polled (hyper reads, calls the service and
/// drops the response body inside its poll), so the deadline is looked at after each poll.
async fn until_expired<C>(mut conn: Pin<&mut C>, phase: &Phase, limits: Limits) -> End
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut timer = pin!(tokio::time::sleep(Duration::ZERO));
    poll_fn(|cx| {
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            return Poll::Ready(End::Closed(result));
        }
        let Some((at, expired)) =
            phase.deadline(limits.keep_alive_timeout, limits.header_read_timeout)
        else {
            return Poll::Pending;
        };
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        timer.as_mut().poll(cx).map(|()| End::Expired(expired))
    })
    .await
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}

/// Gives freed memory back to the system after many connections closed.
///
/// glibc's malloc keeps freed heap memory for reuse; after a burst of slow clients each holding
/// a partial head, the proxy would keep that peak for good. `malloc_trim` returns the free
/// pages; it is called only when the number of open connections has fallen well below the
/// peak since the last call, at most once every few seconds.
async fn trim_after_bursts(open: Arc<AtomicUsize>, shutdown: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(2);
    const DROP: usize = 32;
    let mut peak = 0;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = open.load(Ordering::Relaxed);
        peak = peak.max(now);
        if peak >= now + DROP {
            crate::heap::give_back();
            peak = now;
        }
    }
}

/// Raises the soft limit on open files to the hard limit: each client connection and each
/// upstream connection is a descriptor, and the usual soft limit (1024) is reached by a few
/// hundred clients. Returns the soft limit now in force.
pub fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return limit.maximum.or(Some(u64::MAX)),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
        }
    }
    limit.current
}
