//! The shipper's HTTP stack: reqwest under reqwest-middleware, so what every request to the
//! endpoints goes through is one list of layers rather than code around each call. The one
//! layer today counts each request sent (retries and split halves included) for the metrics
//! and logs its outcome and time at DEBUG.

use crate::metrics::Metrics;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

pub type Client = ClientWithMiddleware;

/// `inner` with the shipper's layers.
pub fn client(inner: reqwest::Client, metrics: Arc<Metrics>) -> Client {
    ClientBuilder::new(inner)
        .with(CountRequests(metrics))
        .build()
}

struct CountRequests(Arc<Metrics>);

#[async_trait::async_trait]
impl Middleware for CountRequests {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.0.requests.fetch_add(1, Relaxed);
        let url = req.url().clone();
        let bytes = req.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len);
        let started = Instant::now();
        let result = next.run(req, extensions).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        match &result {
            Ok(r) => {
                tracing::debug!(%url, bytes, status = r.status().as_u16(), elapsed_ms, "OTLP request answered")
            }
            Err(e) => tracing::debug!(%url, bytes, error = %e, elapsed_ms, "OTLP request failed"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_request_sent_is_counted_answered_or_not() {
        let metrics = Arc::new(Metrics::default());
        let client = client(reqwest::Client::new(), metrics.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        for _ in 0..3 {
            assert!(
                client
                    .post(format!("http://{addr}/x"))
                    .send()
                    .await
                    .is_err()
            );
        }
        assert_eq!(metrics.requests.load(Relaxed), 3);
    }
}
