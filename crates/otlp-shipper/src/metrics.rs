//! The shipper's own counters: what was shipped, retried and dead-lettered, and how far
//! behind the file it is. Logged at an interval and served over HTTP (Prometheus text, or
//! JSON with `?format=json`).

use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Lines delivered (a traffic record or a plain line, with all its events).
    pub shipped_lines: AtomicU64,
    /// Bytes of those lines in the file.
    pub shipped_bytes: AtomicU64,
    /// LogRecords accepted by the endpoint.
    pub shipped_events: AtomicU64,
    /// Spans accepted by the traces endpoint.
    pub shipped_spans: AtomicU64,
    /// Exchanges with token usage whose model the price table does not know (no cost).
    pub unpriced: AtomicU64,
    /// Requests sent, including retries.
    pub requests: AtomicU64,
    /// Requests retried (transport errors, 408, 429, 5xx, misconfiguration).
    pub retried: AtomicU64,
    /// LogRecords written to the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// LogRecords a 2xx reply said it rejected (OTLP partial success).
    pub rejected: AtomicU64,
    /// Lines read from the file (delivered or not).
    pub read_lines: AtomicU64,
    /// Offset read so far in the current file, and its size.
    pub read_offset: AtomicU64,
    pub file_size: AtomicU64,
    /// Delivered (checkpointed) offset in the current file.
    pub delivered_offset: AtomicU64,
    /// The followed path, looked at when a snapshot is taken so the lag keeps growing while
    /// the reader is blocked behind an unreachable endpoint.
    pub file: std::sync::OnceLock<std::path::PathBuf>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Snapshot {
    pub shipped_lines: u64,
    pub shipped_bytes: u64,
    pub shipped_events: u64,
    pub shipped_spans: u64,
    pub unpriced_exchanges: u64,
    pub requests: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub rejected: u64,
    /// Bytes of the file not yet delivered.
    pub lag_bytes: u64,
    /// Lines read but not yet delivered.
    pub lag_records: u64,
}

impl Metrics {
    pub fn snapshot(&self) -> Snapshot {
        let shipped_lines = self.shipped_lines.load(Relaxed);
        let live = self
            .file
            .get()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        let file_size = self.file_size.load(Relaxed).max(live);
        Snapshot {
            shipped_lines,
            shipped_bytes: self.shipped_bytes.load(Relaxed),
            shipped_events: self.shipped_events.load(Relaxed),
            shipped_spans: self.shipped_spans.load(Relaxed),
            unpriced_exchanges: self.unpriced.load(Relaxed),
            requests: self.requests.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            lag_bytes: file_size.saturating_sub(self.delivered_offset.load(Relaxed)),
            lag_records: self.read_lines.load(Relaxed).saturating_sub(shipped_lines),
        }
    }

    pub fn prometheus(&self) -> String {
        let s = self.snapshot();
        let rows: [(&str, &str, &str, u64); 11] = [
            (
                "otlp_shipper_shipped_lines_total",
                "counter",
                "Lines delivered",
                s.shipped_lines,
            ),
            (
                "otlp_shipper_shipped_bytes_total",
                "counter",
                "Bytes of delivered lines",
                s.shipped_bytes,
            ),
            (
                "otlp_shipper_shipped_events_total",
                "counter",
                "LogRecords accepted by the endpoint",
                s.shipped_events,
            ),
            (
                "otlp_shipper_shipped_spans_total",
                "counter",
                "Spans accepted by the traces endpoint",
                s.shipped_spans,
            ),
            (
                "otlp_shipper_unpriced_exchanges_total",
                "counter",
                "Exchanges with usage whose model the price table does not know",
                s.unpriced_exchanges,
            ),
            (
                "otlp_shipper_requests_total",
                "counter",
                "Requests sent, retries included",
                s.requests,
            ),
            (
                "otlp_shipper_retried_total",
                "counter",
                "Requests retried",
                s.retried,
            ),
            (
                "otlp_shipper_dead_lettered_total",
                "counter",
                "LogRecords written to the dead-letter file",
                s.dead_lettered,
            ),
            (
                "otlp_shipper_rejected_total",
                "counter",
                "LogRecords a 2xx reply rejected (OTLP partial success)",
                s.rejected,
            ),
            (
                "otlp_shipper_lag_bytes",
                "gauge",
                "Bytes of the file not yet delivered",
                s.lag_bytes,
            ),
            (
                "otlp_shipper_lag_records",
                "gauge",
                "Lines read but not yet delivered",
                s.lag_records,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        out
    }

    pub fn log(&self) {
        let s = self.snapshot();
        tracing::info!(
            shipped_lines = s.shipped_lines,
            shipped_events = s.shipped_events,
            retried = s.retried,
            dead_lettered = s.dead_lettered,
            rejected = s.rejected,
            lag_bytes = s.lag_bytes,
            lag_records = s.lag_records,
            "shipper counters"
        );
    }
}

/// Serves `GET /metrics` until the token is cancelled. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<SocketAddr> {
    use axum::extract::State;
    use axum::response::IntoResponse;

    async fn get(State(m): State<Arc<Metrics>>, uri: axum::http::Uri) -> axum::response::Response {
        let json = uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "format=json"));
        if json {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                serde_json::to_string(&m.snapshot()).expect("snapshot serializes"),
            )
                .into_response()
        } else {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                m.prometheus(),
            )
                .into_response()
        }
    }

    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(get))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_follows_the_file_even_when_the_reader_is_blocked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        let m = Metrics::default();
        m.file.set(path.clone()).unwrap();
        m.delivered_offset.store(40, Relaxed);
        m.read_lines.store(7, Relaxed);
        m.shipped_lines.store(5, Relaxed);
        let s = m.snapshot();
        assert_eq!((s.lag_bytes, s.lag_records), (60, 2));
        std::fs::write(&path, vec![b'x'; 150]).unwrap();
        assert_eq!(m.snapshot().lag_bytes, 110);
        let text = m.prometheus();
        assert!(text.contains("# TYPE otlp_shipper_lag_bytes gauge\notlp_shipper_lag_bytes 110\n"));
        assert!(text.contains("otlp_shipper_shipped_lines_total 5\n"));
    }
}
