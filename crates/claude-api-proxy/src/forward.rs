//! The one route: forward any request to the configured upstream and stream the answer back,
//! with the exchange captured on the side.

use crate::burst::ClientFloods;
use crate::capture::Capture;
use crate::error::{BoxError, chain};
use crate::exchange::Sink;
use crate::exchange::{ExchangeGuard, ShutdownFlag};
use crate::tap::{BodyLimits, TapBody, TeeRequest, capture_chunk};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::StreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use traffic_record::Outcome;

type UpstreamBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    UpstreamBody,
>;

/// What every request needs: the upstream, where finished exchanges go, the caps.
///
/// The upstream is reached through hyper-util's client directly rather than through reqwest
/// (which wraps the same client): reqwest's per-request layers (URL re-parsing, redirect,
/// retry and timeout wrappers) took ~17 µs of the forwarding thread's ~64 µs per request, and
/// 57-92 µs of added latency to the first SSE event.
pub struct Forwarder {
    pub client: Client,
    /// The same client without a pool: every request on a new connection (the one retry).
    pub fresh: Client,
    /// The upstream's scheme and authority, parsed once at start.
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// The base URL's path without a trailing `/` (so `/v1/messages` appends).
    pub base_path: String,
    /// Longest wait for the upstream's response head (counted from the start of the request,
    /// its upload included), and between two reads of the response body.
    pub idle_timeout: Duration,
    pub capture_cap: usize,
    /// How slowly a client may send a request body.
    pub body_limits: BodyLimits,
    pub sink: Arc<dyn Sink>,
    pub shutdown: Arc<ShutdownFlag>,
    /// Counts (and reports once per burst) the clients closed for a slow body.
    pub floods: Arc<ClientFloods>,
}

impl Forwarder {
    pub fn new(
        upstream: &url::Url,
        idle_timeout: Duration,
        capture_cap: usize,
        body_limits: BodyLimits,
        sink: Arc<dyn Sink>,
        shutdown: Arc<ShutdownFlag>,
        floods: Arc<ClientFloods>,
    ) -> Result<Self, BoxError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let tls = if upstream.scheme() == "http" {
            // No TLS to this upstream: do not require a system CA store (a minimal image may
            // have none, and the platform verifier refuses to start without one).
            tls.with_root_certificates(rustls::RootCertStore::empty())
        } else {
            tls.dangerous().with_custom_certificate_verifier(Arc::new(
                rustls_platform_verifier::Verifier::new(provider)?,
            ))
        }
        .with_no_client_auth();
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // The configured upstream only: hyper-util reads no proxy from the environment and
        // follows no redirects (a 3xx goes back to the client as it came).
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                // A request handed an idle pooled connection found dead before any of the
                // request was written is sent again, on another connection (the default, set
                // here because the pool's hygiene depends on it). A connection whose response
                // ended in an error is never pooled again: hyper drops it.
                .retry_canceled_requests(true)
                .build(https.clone());
        let fresh =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(https);
        let base: http::Uri = upstream.as_str().parse()?;
        let (Some(scheme), Some(authority)) = (base.scheme(), base.authority()) else {
            return Err(format!("{upstream} has no scheme or host").into());
        };
        Ok(Forwarder {
            client,
            fresh,
            scheme: scheme.clone(),
            authority: authority.clone(),
            base_path: base.path().trim_end_matches('/').to_string(),
            idle_timeout,
            capture_cap,
            body_limits,
            sink,
            shutdown,
            floods,
        })
    }

    /// The upstream URI for a request's path and query: the base path, then both exactly as
    /// the client sent them (no re-encoding).
    fn upstream_uri(&self, path: &str, query: Option<&str>) -> Result<http::Uri, http::Error> {
        let mut target = String::with_capacity(
            self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
        );
        target.push_str(&self.base_path);
        target.push_str(path);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(target)
            .build()
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

/// An empty upstream body.
fn empty() -> UpstreamBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
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

pub async fn forward(State(fwd): State<Arc<Forwarder>>, request: Request) -> Response {
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
        fwd.sink.clone(),
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

    headers.remove(header::HOST);
    // Credentials for this hop (RFC 9110 §11.7.2), never for the Anthropic API.
    headers.remove(header::PROXY_AUTHORIZATION);
    // hyper already answered any `Expect: 100-continue` on this hop.
    headers.remove(header::EXPECT);
    let leftover = Arc::new(Mutex::new(None));
    let timed_out = Arc::new(Mutex::new(None));
    let uri = match fwd.upstream_uri(&path, query.as_deref()) {
        Ok(uri) => uri,
        Err(e) => {
            let message = format!("claude-api-proxy: cannot forward {path} upstream: {e}");
            guard.finish(Outcome::UpstreamUnreachable, Some(message.clone()));
            return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
        }
    };
    let has_body = !http_body::Body::is_end_stream(&body);
    let tee = |body: Body| {
        let tee = TeeRequest::new(
            body,
            request_capture.clone(),
            leftover.clone(),
            fwd.body_limits,
            timed_out.clone(),
        );
        http_body_util::StreamBody::new(
            tee.map(|chunk| chunk.map(http_body::Frame::data).map_err(BoxError::from)),
        )
        .boxed_unsync()
    };
    let request = |body: UpstreamBody| {
        let mut request = http::Request::new(body);
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers.clone();
        request
    };
    // A request without a body (GET, or Content-Length: 0) gets none upstream either, rather
    // than an empty chunked one.
    let first = request(if has_body { tee(body) } else { empty() });
    let sent = tokio::time::timeout(fwd.idle_timeout, async {
        let error = match fwd.client.request(first).await {
            Ok(response) => return Ok(response),
            Err(e) => e,
        };
        // Sent again once, on a new connection, when the upstream cannot have acted on it: no
        // byte of its body was taken (so the body is still whole, handed back through
        // `leftover`), or it has none and its method is idempotent (RFC 9110 §9.2.2). hyper
        // resends by itself only a request it had not begun to write. Not after a failed
        // connect: a new one would fail alike.
        let untouched = request_capture.lock().is_ok_and(|c| c.size == 0)
            && timed_out.lock().is_ok_and(|t| t.is_none());
        let retry = if !untouched || error.is_connect() {
            None
        } else if has_body {
            leftover
                .lock()
                .ok()
                .and_then(|mut slot| slot.take())
                .map(|rest| tee(Body::from_stream(rest)))
        } else {
            parts.method.is_idempotent().then(empty)
        };
        match retry {
            Some(body) => {
                tracing::debug!(error = %chain(&error), "upstream request failed before any of it was taken; sending it again on a new connection");
                fwd.fresh.request(request(body)).await
            }
            None => Err(error),
        }
    })
    .await;
    let failure = match sent {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err((
            Outcome::UpstreamUnreachable,
            StatusCode::BAD_GATEWAY,
            "api_error",
            chain(&e),
        )),
        Err(_) => Err((
            Outcome::UpstreamTimeout,
            StatusCode::GATEWAY_TIMEOUT,
            "timeout_error",
            format!("no response head within {:?}", fwd.idle_timeout),
        )),
    };
    // A client too slow with its body: the upstream request was cancelled for it.
    let too_slow = failure
        .is_err()
        .then(|| timed_out.lock().ok().and_then(|mut t| t.take()));
    if let Some(Some(why)) = too_slow {
        if fwd.floods.body_timeouts.note() {
            tracing::warn!(
                error = %why,
                "a client was closed for sending its request body too slowly (counted; reported again when the burst ends)"
            );
        }
        let message = format!("claude-api-proxy: {why}; the request was not sent upstream in full");
        guard.finish(Outcome::ClientTimeout, Some(message.clone()));
        let mut response = error_response(StatusCode::REQUEST_TIMEOUT, "timeout_error", &message);
        // The rest of the body is never read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let upstream_response = match failure {
        Ok(r) => r,
        Err((outcome, status, kind, cause)) => {
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

    let (mut head, upstream_body) = upstream_response.into_parts();
    let forwarded = end_to_end(&head.headers);
    guard.response_head(head.status, std::mem::replace(&mut head.headers, forwarded));
    Response::from_parts(
        head,
        Body::new(TapBody::new(upstream_body, fwd.idle_timeout, guard)),
    )
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
