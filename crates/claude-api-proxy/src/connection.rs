//! What a client connection is doing — waiting between requests, receiving a request head, or
//! serving a request — and so which timer applies to it: the keep-alive timeout to the first,
//! the header-read timeout to the second, none to the third.
//!
//! hyper's own `header_read_timeout` starts as soon as the connection waits for a head, so on a
//! keep-alive connection it also bounds the idle wait between requests; the two limits are kept
//! apart here by watching the connection's reads and its requests.

use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Which limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// No request within the keep-alive timeout after the last response.
    KeepAlive,
    /// A request head not complete within the header-read timeout.
    HeaderRead,
}

#[derive(Debug)]
struct State {
    /// Requests being served (read from their head to the end of their response body).
    busy: usize,
    /// When the last response ended.
    idle_since: Instant,
    /// When the head being waited for started: the first byte read after the last response,
    /// or the accept for a new connection.
    head_since: Option<Instant>,
}

/// One client connection's phase, shared by its socket, its service and its task.
#[derive(Debug, Clone)]
pub struct Phase(Arc<Mutex<State>>);

impl Phase {
    /// A connection just accepted: its first request head is due within the header-read
    /// timeout.
    pub fn accepted() -> Phase {
        let now = Instant::now();
        Phase(Arc::new(Mutex::new(State {
            busy: 0,
            idle_since: now,
            head_since: Some(now),
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When the connection is to be closed and why; `None` while a request is served.
    pub fn deadline(
        &self,
        keep_alive: Duration,
        header_read: Duration,
    ) -> Option<(Instant, Expired)> {
        let state = self.state();
        if state.busy > 0 {
            return None;
        }
        Some(match state.head_since {
            Some(since) => (since + header_read, Expired::HeaderRead),
            None => (state.idle_since + keep_alive, Expired::KeepAlive),
        })
    }

    fn bytes_read(&self) {
        let mut state = self.state();
        if state.busy == 0 && state.head_since.is_none() {
            state.head_since = Some(Instant::now());
        }
    }

    fn request_started(&self) -> Busy {
        let mut state = self.state();
        state.busy += 1;
        state.head_since = None;
        Busy(self.clone())
    }
}

/// Held from a request's head to the end (or drop) of its response body.
#[derive(Debug)]
struct Busy(Phase);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.busy -= 1;
        if state.busy == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// The client's socket, noting when bytes of a request head arrive.
#[derive(Debug)]
pub struct Watched<T> {
    io: T,
    phase: Phase,
}

impl<T> Watched<T> {
    pub fn new(io: T, phase: Phase) -> Self {
        Watched { io, phase }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.phase.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The connection's service, marking the connection busy from each request's head to the end
/// of its response body.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    phase: Phase,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, phase: Phase) -> Self {
        Tracked { inner, phase }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> hyper::service::Service<http::Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: Body + Unpin,
{
    type Response = http::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let busy = self.phase.request_started();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody { body, _busy: busy }))
        })
    }
}

/// A response body that keeps its connection busy until it ends or is dropped.
#[derive(Debug)]
pub struct TrackedBody<B> {
    body: B,
    _busy: Busy,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_ALIVE: Duration = Duration::from_secs(600);
    const HEADER_READ: Duration = Duration::from_secs(30);

    /// The deadline's kind, and that it is `limit` after an instant within `from..=to`.
    fn due(phase: &Phase, from: Instant, to: Instant, limit: Duration) -> Expired {
        let (at, kind) = phase.deadline(KEEP_ALIVE, HEADER_READ).expect("a deadline");
        assert!(
            at >= from + limit && at <= to + limit,
            "{at:?} not {limit:?} after {from:?}"
        );
        kind
    }

    #[test]
    fn each_phase_has_its_timer() {
        let t0 = Instant::now();
        let phase = Phase::accepted();
        let t1 = Instant::now();
        // A new connection owes its first head.
        assert_eq!(due(&phase, t0, t1, HEADER_READ), Expired::HeaderRead);

        let busy = phase.request_started();
        phase.bytes_read(); // the request body
        assert_eq!(phase.deadline(KEEP_ALIVE, HEADER_READ), None, "serving");

        std::thread::sleep(Duration::from_millis(20));
        let t2 = Instant::now();
        drop(busy);
        let t3 = Instant::now();
        assert_eq!(due(&phase, t2, t3, KEEP_ALIVE), Expired::KeepAlive);

        std::thread::sleep(Duration::from_millis(20));
        let t4 = Instant::now();
        phase.bytes_read();
        let t5 = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        phase.bytes_read();
        // Counted from the first byte of the head, not from later ones.
        assert_eq!(due(&phase, t4, t5, HEADER_READ), Expired::HeaderRead);
    }
}
