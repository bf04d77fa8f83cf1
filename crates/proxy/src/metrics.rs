//! The proxy's own counters over HTTP (`--metrics-listen`): traffic records written in full,
//! degraded and lost, in Prometheus text format, so that an operator can alert on a log that
//! stopped holding bodies. Served on an address of its own: every path of the proxy's port is
//! forwarded upstream.

use crate::writer::WriterHandle;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// The counters as Prometheus text.
pub fn render(writer: &WriterHandle) -> String {
    let stats = writer.stats();
    let mut out = String::new();
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
    shutdown: tokio_util::sync::CancellationToken,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let writer = writer.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(&writer),
                )
            }
        }),
    );
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
}
