//! Body wrappers that copy what flows through them without delaying it (linkerd's body-eos /
//! ReplayBody idea): the request stream tees into a capped capture; the response body passes
//! every frame through untouched and ends the exchange once — at end of stream, on error, or
//! when dropped (the client went away, which also drops, and so cancels, the upstream request).

use crate::capture::Capture;
use crate::exchange::ExchangeGuard;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use traffic_record::Outcome;

/// The client's request body as a stream for the upstream, copied into `capture` on the way.
pub fn tee_request(
    body: axum::body::Body,
    capture: Arc<Mutex<Capture>>,
) -> impl Stream<Item = Result<Bytes, axum::Error>> + Send + 'static {
    body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            match capture.lock() {
                Ok(mut c) => c.push(bytes),
                Err(poisoned) => poisoned.into_inner().push(bytes),
            }
        }
        chunk
    })
}

/// The upstream's response body on its way to the client.
pub struct TapBody {
    inner: reqwest::Body,
    guard: ExchangeGuard,
}

impl TapBody {
    pub fn new(inner: reqwest::Body, guard: ExchangeGuard) -> Self {
        TapBody { inner, guard }
    }
}

impl Body for TapBody {
    type Data = Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, reqwest::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.guard.response_chunk(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let outcome = if e.is_timeout() {
                    Outcome::UpstreamTimeout
                } else {
                    Outcome::UpstreamAborted
                };
                this.guard.finish(
                    outcome,
                    Some(format!("upstream response body: {}", chain(&e))),
                );
                // Returning the error makes hyper abort the client's response: a cut stream is
                // never turned into a clean end.
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.guard.finish(Outcome::Complete, None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TapBody {
    fn drop(&mut self) {
        // hyper stops polling a body that says it has ended (an empty body, a HEAD response):
        // that is a complete exchange, not an abort.
        if self.inner.is_end_stream() {
            self.guard.finish(Outcome::Complete, None);
        }
    }
}

/// An error and its sources on one line (reqwest's Display alone hides the cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
