//! Body wrappers that copy what flows through them without delaying it (linkerd's body-eos /
//! ReplayBody idea): the request stream tees into a capped capture; the response body passes
//! every frame through untouched and ends the exchange once — at end of stream, on error, or
//! when dropped (the client went away, which also drops, and so cancels, the upstream request).

use crate::capture::Capture;
use crate::error::{BoxError, chain};
use crate::exchange::ExchangeGuard;
use axum::body::BodyDataStream;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;
use traffic_record::Outcome;

/// How slowly a client may send its request body before its connection is closed.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Longest wait for the next bytes of the body (`--body-read-timeout`); also the grace
    /// before `min_rate` applies.
    pub read_timeout: Duration,
    /// Least average rate, in bytes per second of waiting, once `read_timeout` of waiting has
    /// passed (`--body-min-rate`); 0: none.
    pub min_rate: u64,
}

/// The client's request body as a stream for the upstream, copied into `capture` on the way.
///
/// If the upstream request fails before the body was read (connection refused), the unread
/// rest is handed back through `leftover`, so the record can still hold the request.
///
/// Only the time spent waiting for the client counts against [`BodyLimits`]: while the
/// upstream is slow to take the body, this stream is not polled and no timer runs. A client
/// too slow ends the stream with an error (so the upstream request is cancelled) and sets
/// `timed_out` with the reason.
pub struct TeeRequest {
    inner: Option<BodyDataStream>,
    capture: Arc<Mutex<Capture>>,
    leftover: Arc<Mutex<Option<BodyDataStream>>>,
    limits: BodyLimits,
    timed_out: Arc<Mutex<Option<String>>>,
    /// Bytes received, time waited before the current wait, and the current wait's deadline.
    received: u64,
    waited: Duration,
    wait: Option<(tokio::time::Instant, Pin<Box<Sleep>>, &'static str)>,
}

impl TeeRequest {
    pub fn new(
        body: axum::body::Body,
        capture: Arc<Mutex<Capture>>,
        leftover: Arc<Mutex<Option<BodyDataStream>>>,
        limits: BodyLimits,
        timed_out: Arc<Mutex<Option<String>>>,
    ) -> Self {
        TeeRequest {
            inner: Some(body.into_data_stream()),
            capture,
            leftover,
            limits,
            timed_out,
            received: 0,
            waited: Duration::ZERO,
            wait: None,
        }
    }

    /// When the client must have sent more, for a wait starting at `now`: within the read
    /// timeout, and soon enough to keep the average rate after the grace period.
    fn deadline(&self, now: tokio::time::Instant) -> (tokio::time::Instant, &'static str) {
        let idle = now + self.limits.read_timeout;
        if self.limits.min_rate == 0 {
            return (idle, "idle");
        }
        // The rate allows `received + 1` bytes by this much waiting in all.
        let allowed = self.limits.read_timeout
            + Duration::from_secs_f64((self.received + 1) as f64 / self.limits.min_rate as f64);
        let by_rate = now + allowed.saturating_sub(self.waited);
        if by_rate < idle {
            (by_rate, "rate")
        } else {
            (idle, "idle")
        }
    }

    fn expired(&mut self, why: &str) -> axum::Error {
        let message = if why == "rate" {
            format!(
                "the client sent its request body slower than {} bytes/s (--body-min-rate): {} bytes in {:.0?}",
                self.limits.min_rate, self.received, self.waited
            )
        } else {
            format!(
                "the client sent nothing of its request body for {:?} (--body-read-timeout)",
                self.limits.read_timeout
            )
        };
        if let Ok(mut slot) = self.timed_out.lock() {
            *slot = Some(message.clone());
        }
        self.inner = None;
        axum::Error::new(message)
    }
}

/// Copies `bytes` into the capture.
pub fn capture_chunk(capture: &Mutex<Capture>, bytes: &Bytes) {
    match capture.lock() {
        Ok(mut c) => c.push(bytes),
        Err(poisoned) => poisoned.into_inner().push(bytes),
    }
}

impl Stream for TeeRequest {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let next = inner.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Ok(bytes))) => capture_chunk(&this.capture, bytes),
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.inner = None,
            Poll::Pending => {
                let now = tokio::time::Instant::now();
                if this.wait.is_none() {
                    let (at, why) = this.deadline(now);
                    this.wait = Some((now, Box::pin(tokio::time::sleep_until(at)), why));
                }
                let (since, sleep, why) = this.wait.as_mut().expect("set above");
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let (since, why) = (*since, *why);
                this.waited += now - since;
                this.wait = None;
                return Poll::Ready(Some(Err(this.expired(why))));
            }
        }
        if let Some((since, _, _)) = this.wait.take() {
            this.waited += tokio::time::Instant::now() - since;
        }
        if let Poll::Ready(Some(Ok(bytes))) = &next {
            this.received += bytes.len() as u64;
        }
        next
    }
}

impl Drop for TeeRequest {
    fn drop(&mut self) {
        if let Some(rest) = self.inner.take()
            && let Ok(mut slot) = self.leftover.lock()
        {
            *slot = Some(rest);
        }
    }
}

/// The upstream's response body on its way to the client. A read that waits longer than the
/// idle timeout ends it as `upstream_timeout`: nothing else cuts a long stream.
pub struct TapBody {
    inner: Incoming,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    guard: ExchangeGuard,
}

impl TapBody {
    pub fn new(inner: Incoming, idle_timeout: Duration, guard: ExchangeGuard) -> Self {
        TapBody {
            inner,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            guard,
        }
    }
}

impl Body for TapBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.guard.response_chunk(data);
                }
                let next = tokio::time::Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.guard.finish(
                    Outcome::UpstreamAborted,
                    Some(format!("upstream response body: {}", chain(&e))),
                );
                // Returning the error makes hyper abort the client's response: a cut stream is
                // never turned into a clean end.
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.guard.finish(Outcome::Complete, None);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let message = format!(
                    "upstream response body: nothing read for {:?} (--idle-timeout)",
                    this.idle_timeout
                );
                this.guard
                    .finish(Outcome::UpstreamTimeout, Some(message.clone()));
                Poll::Ready(Some(Err(message.into())))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BodyLimits = BodyLimits {
        read_timeout: Duration::from_secs(30),
        min_rate: 1024,
    };

    /// A request body fed through a channel, teed with [`LIMITS`].
    fn tee() -> (
        tokio::sync::mpsc::Sender<Bytes>,
        TeeRequest,
        Arc<Mutex<Option<String>>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        });
        let timed_out = Arc::new(Mutex::new(None));
        let tee = TeeRequest::new(
            axum::body::Body::from_stream(stream),
            Arc::new(Mutex::new(Capture::new(1 << 20))),
            Arc::new(Mutex::new(None)),
            LIMITS,
            timed_out.clone(),
        );
        (tx, tee, timed_out)
    }

    /// Sends `chunk` every `every`, `n` times, reading the tee as a waiting upstream would;
    /// the error, if the tee ended with one.
    async fn feed(n: usize, chunk: usize, every: Duration) -> Option<String> {
        let (tx, mut tee, timed_out) = tee();
        tokio::spawn(async move {
            for _ in 0..n {
                tokio::time::sleep(every).await;
                if tx.send(Bytes::from(vec![b'x'; chunk])).await.is_err() {
                    return;
                }
            }
        });
        while let Some(item) = tee.next().await {
            if item.is_err() {
                return timed_out.lock().unwrap().clone();
            }
        }
        None
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_above_the_minimum_rate_passes() {
        // 2 KiB every second for 10 minutes: twice the minimum rate.
        assert_eq!(feed(600, 2048, Duration::from_secs(1)).await, None);
        // A 25 s stall between pieces, each worth more than the stall at the minimum rate.
        assert_eq!(feed(10, 64 * 1024, Duration::from_secs(25)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_byte_every_five_seconds_is_cut_by_the_minimum_rate_after_the_grace() {
        let started = tokio::time::Instant::now();
        let error = feed(100, 1, Duration::from_secs(5)).await.expect("cut");
        let after = started.elapsed();
        assert!(error.contains("--body-min-rate"), "{error}");
        assert!(
            after >= Duration::from_secs(30) && after < Duration::from_secs(32),
            "{after:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_is_cut_by_the_read_timeout() {
        let error = feed(1, 10, Duration::from_secs(31)).await.expect("cut");
        assert!(error.contains("--body-read-timeout"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_upstream_takes_to_read_the_body_is_not_counted() {
        let (tx, mut tee, timed_out) = tee();
        for _ in 0..5 {
            tx.send(Bytes::from_static(b"x")).await.unwrap();
            assert!(tee.next().await.unwrap().is_ok());
            // An upstream that takes 100 s before it reads on: the tee is not polled.
            tokio::time::sleep(Duration::from_secs(100)).await;
        }
        drop(tx);
        assert!(tee.next().await.is_none());
        assert_eq!(*timed_out.lock().unwrap(), None);
    }
}
