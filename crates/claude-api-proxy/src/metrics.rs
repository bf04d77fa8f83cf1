//! The proxy's own counters over HTTP (`--metrics-listen`): traffic records written in full,
//! degraded and lost, and client connections refused, failed to accept or closed for a slow
//! body, in Prometheus text format, so that an operator can alert on a log that stopped
//! holding bodies or on a flood of clients. Served on an address of its own: every path of the proxy's port is
//! forwarded upstream.

use crate::burst::ClientFloods;
use crate::writer::WriterHandle;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters as Prometheus text.
pub fn render(writer: &WriterHandle, floods: &ClientFloods) -> String {
    let stats = writer.stats();
    let mut out = String::new();
    let refused = AtomicU64::new(floods.refused.total());
    let accept_errors = AtomicU64::new(floods.accept_errors.total());
    let body_timeouts = AtomicU64::new(floods.body_timeouts.total());
    for (name, help, value) in [
        (
            "claude_proxy_records_written_total",
            "Traffic records appended in full.",
            &stats.written,
        ),
        (
            "claude_proxy_records_degraded_total",
            "Traffic records appended without their bodies (disk full, disk budget, writer backlog, build failure).",
            &stats.degraded,
        ),
        (
            "claude_proxy_records_lost_total",
            "Exchanges with no traffic record at all.",
            &stats.lost,
        ),
        (
            "claude_proxy_connections_refused_total",
            "Client connections answered 503 and closed: --max-connections reached.",
            &refused,
        ),
        (
            "claude_proxy_accept_errors_total",
            "Client connections that could not be accepted (e.g. out of file descriptors).",
            &accept_errors,
        ),
        (
            "claude_proxy_request_body_timeouts_total",
            "Requests answered 408 and closed: the body came slower than --body-read-timeout / --body-min-rate allow.",
            &body_timeouts,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
    }
    out
}

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    writer: WriterHandle,
    floods: Arc<ClientFloods>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let writer = writer.clone();
            let floods = floods.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(&writer, &floods),
                )
            }
        }),
    );
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
}
