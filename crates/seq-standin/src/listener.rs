//! A TCP listener that can "refuse" connections for a while: new ones are accepted and reset
//! at once, open ones are reset on their next read, so a client sees connection errors (RST),
//! not HTTP answers, exactly as when the server is down.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::server::State;

pub(crate) struct RefusingListener {
    pub(crate) inner: TcpListener,
    pub(crate) state: Arc<State>,
}

impl axum::serve::Listener for RefusingListener {
    type Io = RefusableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.state.refusing() {
                        self.state.count_refused();
                        reset(&stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let state = self.state.clone();
                    return (
                        RefusableStream {
                            inner: stream,
                            state,
                        },
                        addr,
                    );
                }
                // Out of descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Closing with a zero linger sends RST instead of FIN.
fn reset(stream: &TcpStream) {
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
}

pub(crate) struct RefusableStream {
    inner: TcpStream,
    state: Arc<State>,
}

impl AsyncRead for RefusableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.state.refusing() {
            self.state.count_refused();
            reset(&self.inner);
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RefusableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
