//! One exchange in flight: what the handler and the body wrappers learn about it, and the
//! guard that hands it to a [`Sink`] exactly once — at its end, on error, or on drop.

use crate::capture::Capture;
use http::{HeaderMap, Method, StatusCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use traffic_record::{Degraded, Outcome};

/// Everything captured about one exchange; turned into a record by the writer thread.
#[derive(Debug)]
pub struct Exchange {
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub duration: Duration,
    pub ttfb: Option<Duration>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub request_headers: HeaderMap,
    pub request_body: Capture,
    pub response: Option<ResponseHead>,
    pub response_body: Capture,
    /// Set by the sink when it dropped the bodies rather than hold or lose the exchange.
    pub degraded: Option<Degraded>,
}

/// Where finished exchanges go (the traffic log writer). `send` must never block: it runs on
/// the forwarding thread.
pub trait Sink: Send + Sync {
    fn send(&self, exchange: Exchange);
}

#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

/// Shared by all exchanges: set once the drain deadline passed, so that exchanges cut by the
/// shutdown say so instead of blaming the client.
#[derive(Debug, Default)]
pub struct ShutdownFlag(AtomicBool);

impl ShutdownFlag {
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Owns an exchange until it ends; dropping it unfinished records `client_aborted`.
pub struct ExchangeGuard {
    inner: Option<Pending>,
}

struct Pending {
    started_at: SystemTime,
    started: Instant,
    method: Method,
    path: String,
    query: Option<String>,
    request_headers: HeaderMap,
    request_body: Arc<Mutex<Capture>>,
    response: Option<ResponseHead>,
    response_body: Capture,
    head_at: Option<Instant>,
    first_byte_at: Option<Instant>,
    sink: Arc<dyn Sink>,
    shutdown: Arc<ShutdownFlag>,
}

impl ExchangeGuard {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        started_at: SystemTime,
        started: Instant,
        method: Method,
        path: String,
        query: Option<String>,
        request_headers: HeaderMap,
        request_body: Arc<Mutex<Capture>>,
        response_cap: usize,
        sink: Arc<dyn Sink>,
        shutdown: Arc<ShutdownFlag>,
    ) -> Self {
        ExchangeGuard {
            inner: Some(Pending {
                started_at,
                started,
                method,
                path,
                query,
                request_headers,
                request_body,
                response: None,
                response_body: Capture::new(response_cap),
                head_at: None,
                first_byte_at: None,
                sink,
                shutdown,
            }),
        }
    }

    /// The response head arrived from the upstream.
    pub fn response_head(&mut self, status: StatusCode, headers: HeaderMap) {
        if let Some(p) = &mut self.inner {
            p.head_at = Some(Instant::now());
            p.response = Some(ResponseHead { status, headers });
        }
    }

    /// A response body chunk is passing through to the client.
    pub fn response_chunk(&mut self, chunk: &bytes::Bytes) {
        if let Some(p) = &mut self.inner {
            if p.first_byte_at.is_none() && !chunk.is_empty() {
                p.first_byte_at = Some(Instant::now());
            }
            p.response_body.push(chunk);
        }
    }

    /// Ends the exchange and hands it to the sink; later calls do nothing.
    pub fn finish(&mut self, outcome: Outcome, error: Option<String>) {
        let Some(p) = self.inner.take() else { return };
        let now = Instant::now();
        let duration = now - p.started;
        let ttfb = p
            .first_byte_at
            .or(p.head_at.filter(|_| p.response_body.size == 0))
            .map(|t| t - p.started);
        let request_body = match p.request_body.lock() {
            Ok(mut c) => std::mem::take(&mut *c),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        p.sink.send(Exchange {
            started_at: p.started_at,
            ended_at: p.started_at + duration,
            duration,
            ttfb,
            outcome,
            error,
            method: p.method,
            path: p.path,
            query: p.query,
            request_headers: p.request_headers,
            request_body,
            response: p.response,
            response_body: p.response_body,
            degraded: None,
        });
    }
}

impl Drop for ExchangeGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.inner {
            let error = if p.shutdown.is_set() {
                "the proxy shut down (drain deadline reached) before the exchange ended"
            } else {
                "the client closed the connection before the response was complete"
            };
            self.finish(Outcome::ClientAborted, Some(error.to_string()));
        }
    }
}
