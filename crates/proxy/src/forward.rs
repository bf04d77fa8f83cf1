//! The one route: forward any request to the configured upstream and stream the answer back,
//! with the exchange captured on the side.

use crate::capture::Capture;
use crate::exchange::{ExchangeGuard, ShutdownFlag};
use crate::tap::{TapBody, TeeRequest, capture_chunk, chain};
use crate::writer::WriterHandle;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::StreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use traffic_record::Outcome;

/// What every request needs: the upstream, the writer, the caps.
#[derive(Clone)]
pub struct Forwarder {
    pub client: reqwest::Client,
    /// Upstream base URL, parsed once: each request only sets its path and query on a clone
    /// (parsing the whole URL per request, host and IDNA included, was ~2% of the forwarding
    /// thread's CPU).
    pub base: reqwest::Url,
    /// The base URL's path without a trailing `/` (so `/v1/messages` appends).
    pub base_path: String,
    pub capture_cap: usize,
    pub writer: WriterHandle,
    pub shutdown: Arc<ShutdownFlag>,
}

impl Forwarder {
    pub fn new(
        upstream: &reqwest::Url,
        idle_timeout: Duration,
        capture_cap: usize,
        writer: WriterHandle,
        shutdown: Arc<ShutdownFlag>,
    ) -> reqwest::Result<Self> {
        let mut builder = reqwest::Client::builder();
        if upstream.scheme() == "http" {
            // No TLS to this upstream: do not require a system CA store (a minimal image may
            // have none, and the platform verifier refuses to start without one).
            builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
        }
        let client = builder
            // The configured upstream only: no proxy from the environment, no redirects
            // followed (a 3xx goes back to the client as it came).
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            // Per read, so a long stream is never cut while bytes keep coming.
            .read_timeout(idle_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()?;
        let mut base = upstream.clone();
        base.set_query(None);
        base.set_fragment(None);
        let base_path = upstream.path().trim_end_matches('/').to_string();
        Ok(Forwarder {
            client,
            base,
            base_path,
            capture_cap,
            writer,
            shutdown,
        })
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the ones this hop sets itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The end-to-end headers of `headers`: hop-by-hop ones and those named by `Connection`
/// removed.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        if let Ok(value) = value.to_str() {
            named.extend(
                value
                    .split(',')
                    .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()),
            );
        }
    }
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if HOP_BY_HOP.contains(&name.as_str()) || named.contains(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The Anthropic error shape, for errors the proxy itself answers with.
fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "type": "error",
        "error": {"type": kind, "message": message},
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub async fn forward(State(fwd): State<Forwarder>, request: Request) -> Response {
    fwd.writer.wait_for_room().await;
    let started_at = SystemTime::now();
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // Only the path and query are used: the Host header and an absolute-form target name
    // hosts this proxy never talks to.
    let path = match parts.uri.path() {
        "" => "/".to_string(), // authority-form (CONNECT): refused below
        p => p.to_string(),
    };
    let query = parts.uri.query().map(str::to_string);
    let mut headers = end_to_end(&parts.headers);
    let request_capture = Arc::new(Mutex::new(Capture::new(fwd.capture_cap)));
    let mut guard = ExchangeGuard::new(
        started_at,
        started,
        parts.method.clone(),
        path.clone(),
        query.clone(),
        parts.headers,
        request_capture.clone(),
        fwd.capture_cap,
        fwd.writer.clone(),
        fwd.shutdown.clone(),
    );
    if parts.method == Method::CONNECT {
        let message = format!(
            "CONNECT {} refused: this proxy forwards API requests to its configured upstream only",
            parts.uri
        );
        guard.finish(Outcome::UpstreamUnreachable, Some(message.clone()));
        return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
    }

    let mut url = fwd.base.clone();
    if fwd.base_path.is_empty() {
        url.set_path(&path);
    } else {
        url.set_path(&format!("{}{path}", fwd.base_path));
    }
    url.set_query(query.as_deref());
    headers.remove(header::HOST);
    // hyper already answered any `Expect: 100-continue` on this hop.
    headers.remove(header::EXPECT);
    let leftover = Arc::new(Mutex::new(None));
    let mut upstream_request = fwd
        .client
        .request(parts.method.clone(), url)
        .headers(headers);
    // A request without a body (GET, or Content-Length: 0) gets none upstream either, rather
    // than an empty chunked one.
    if !http_body::Body::is_end_stream(&body) {
        upstream_request = upstream_request.body(reqwest::Body::wrap_stream(TeeRequest::new(
            body,
            request_capture.clone(),
            leftover.clone(),
        )));
    }

    let upstream_response = match upstream_request.send().await {
        Ok(r) => r,
        Err(e) => {
            let cause = chain(&e);
            let (outcome, status, kind) = if e.is_timeout() {
                (
                    Outcome::UpstreamTimeout,
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout_error",
                )
            } else {
                (
                    Outcome::UpstreamUnreachable,
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                )
            };
            tracing::warn!(error = %cause, "upstream request failed");
            // Read what the upstream never got, so the record still holds the request.
            let rest = leftover.lock().ok().and_then(|mut slot| slot.take());
            if let Some(mut rest) = rest {
                let drain = async {
                    while let Some(Ok(bytes)) = rest.next().await {
                        capture_chunk(&request_capture, &bytes);
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
            }
            let message = format!("claude-api-proxy: upstream request failed: {cause}");
            guard.finish(outcome, Some(message.clone()));
            return error_response(status, kind, &message);
        }
    };

    let response: http::Response<reqwest::Body> = upstream_response.into();
    let (mut head, upstream_body) = response.into_parts();
    let forwarded = end_to_end(&head.headers);
    guard.response_head(head.status, std::mem::replace(&mut head.headers, forwarded));
    Response::from_parts(head, Body::new(TapBody::new(upstream_body, guard)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-api-key", HeaderValue::from_static("k"));
        h.insert("content-length", HeaderValue::from_static("3"));
        let out = end_to_end(&h);
        let names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-api-key", "content-length"]);
    }
}
