//! The HTTP side: the ingest route with Seq's checks, the counters and control routes, and
//! the [`Handle`] in-process tests hold.

use axum::Router;
use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::control::{Control, Failure};
use crate::event::{StoredEvent, StoredSpan, attributes};
use crate::first_run::{ApiKey, AuthState, Authentication};
use crate::limits::{DEFAULT_EVENT_LIMIT, DEFAULT_REQUEST_LIMIT, event_size, span_size};
use crate::listener::{Refusal, RefusingListener};

/// The one path Seq ingests OTLP logs on.
pub const INGEST_PATH: &str = "/ingest/otlp/v1/logs";
/// The one path Seq ingests OTLP traces on (Seq 2024.1 and later).
pub const TRACES_PATH: &str = "/ingest/otlp/v1/traces";

/// How the stand-in is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Required `X-Seq-ApiKey` value; `None` accepts any request (unless [`Options::auth`]
    /// turns authentication on).
    pub api_key: Option<String>,
    /// Seq's authentication as fixed at its first start ([`crate::first_run`]): with an
    /// administrator, ingestion needs an API key with the `Ingest` permission that the
    /// administrator created (`POST /api/apikeys`). Keys created are saved to `store_dir`.
    pub auth: Option<AuthState>,
    /// Per-event limit in bytes (see [`crate::limits::event_size`]).
    pub event_limit: usize,
    /// Per-request limit in bytes.
    pub request_limit: usize,
    /// Keep accepted events in memory for [`Handle::events`] and `GET /events`.
    pub keep_events: bool,
    /// Append accepted events to `DIR/events.jsonl` and spans to `DIR/spans.jsonl`.
    pub store_dir: Option<PathBuf>,
    /// Keep the raw body of every accepted request for [`Handle::raw_requests`] (so a test
    /// can have an independent decoder read exactly what the shipper sent).
    pub keep_raw: bool,
    /// Decode and check every event (the default). Off, the stand-in is a minimal sink: it
    /// checks path, content type, key and request size, then answers 200 without decoding,
    /// so benchmarks measure the sender, not the receiver (`accepted_events` stays 0).
    pub decode: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_key: None,
            auth: None,
            event_limit: DEFAULT_EVENT_LIMIT,
            request_limit: DEFAULT_REQUEST_LIMIT,
            keep_events: true,
            store_dir: None,
            keep_raw: false,
            decode: true,
        }
    }
}

/// What the stand-in has seen, as served by `GET /counters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests to the ingest path (whatever their fate).
    pub requests: u64,
    /// Requests answered 200.
    pub accepted_requests: u64,
    /// Events stored.
    pub accepted_events: u64,
    /// Ingest requests not accepted, by status (`"400"`, `"429"`, ...).
    pub rejected_batches: BTreeMap<String, u64>,
    /// Connections (or reads on open connections) reset while refusing.
    pub refused_connections: u64,
    /// Bytes of ingest request bodies received.
    pub bytes_received: u64,
    /// Most events one accepted request held (the shipper's largest batch).
    pub max_events_per_request: u64,
    /// Requests to the traces path (whatever their fate; also counted in `requests`).
    #[serde(default)]
    pub trace_requests: u64,
    /// Spans stored.
    #[serde(default)]
    pub accepted_spans: u64,
}

/// One ingest request as the stand-in answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// When the answer was decided, from the stand-in's start.
    pub at: Duration,
    pub status: u16,
    /// Events in the request when it was accepted (0 otherwise).
    pub events: u64,
}

pub(crate) struct State {
    options: Options,
    refusal: Arc<Refusal>,
    fail_next: Mutex<VecDeque<Failure>>,
    reject_marker: Mutex<Option<String>>,
    counters: Mutex<Counters>,
    events: Mutex<Vec<StoredEvent>>,
    store: Mutex<Option<std::fs::File>>,
    /// `spans.jsonl` beside `events.jsonl`.
    span_store: Mutex<Option<std::fs::File>>,
    started: Instant,
    answered: Mutex<Vec<Answered>>,
    raw: Mutex<Vec<bytes::Bytes>>,
    auth: Mutex<Option<AuthState>>,
    spans: Mutex<Vec<StoredSpan>>,
    raw_traces: Mutex<Vec<bytes::Bytes>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn apply(&self, control: Control) {
        if control.reset {
            self.refusal.set(None);
            lock(&self.fail_next).clear();
            *lock(&self.reject_marker) = None;
        }
        if let Some(secs) = control.refuse_connections_for_secs {
            let until = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
            self.refusal.set(Some(until));
        }
        lock(&self.fail_next).extend(control.fail_next);
        if let Some(marker) = control.reject_event_containing {
            *lock(&self.reject_marker) = Some(marker);
        }
    }

    fn counters(&self) -> Counters {
        let mut c = lock(&self.counters).clone();
        c.refused_connections = self.refusal.refused();
        c
    }

    fn answered(&self, status: StatusCode, events: u64) {
        lock(&self.answered).push(Answered {
            at: self.started.elapsed(),
            status: status.as_u16(),
            events,
        });
    }

    fn reject(&self, status: StatusCode, message: String) -> Response {
        self.answered(status, 0);
        *lock(&self.counters)
            .rejected_batches
            .entry(status.as_u16().to_string())
            .or_default() += 1;
        error_response(status, &message)
    }

    /// Seq's checks common to logs and traces, in Seq's order; `Some` is the refusal.
    fn check(&self, headers: &HeaderMap, body: &bytes::Bytes) -> Option<Response> {
        // An injected failure stands for a server that is overloaded or in trouble: it
        // answers before looking at the request.
        if let Some(failure) = lock(&self.fail_next).pop_front() {
            let status =
                StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = self.reject(status, format!("injected failure {status}"));
            if let Some(secs) = failure.retry_after() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return Some(response);
        }
        let given = headers.get("x-seq-apikey").and_then(|v| v.to_str().ok());
        if let Some(key) = &self.options.api_key {
            if given != Some(key.as_str()) {
                return Some(self.reject(
                    StatusCode::UNAUTHORIZED,
                    "a valid X-Seq-ApiKey header is required".into(),
                ));
            }
        } else if let Some(auth) = lock(&self.auth).as_ref()
            && auth.authentication != Authentication::Off
        {
            let valid = auth
                .api_keys
                .iter()
                .any(|k| Some(k.token.as_str()) == given && k.can_ingest());
            if !valid {
                return Some(self.reject(
                    StatusCode::UNAUTHORIZED,
                    "a valid X-Seq-ApiKey header is required".into(),
                ));
            }
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let essence = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
        if essence != Some("application/x-protobuf") {
            return Some(self.reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "OTLP over HTTP is accepted as application/x-protobuf only, got {content_type:?}"
                ),
            ));
        }
        if body.len() > self.options.request_limit {
            return Some(self.reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request of {} bytes is over the {} byte limit",
                    body.len(),
                    self.options.request_limit
                ),
            ));
        }
        if !self.options.decode {
            lock(&self.counters).accepted_requests += 1;
            self.answered(StatusCode::OK, 0);
            return Some(ok_response());
        }
        None
    }

    fn ingest(&self, headers: &HeaderMap, body: bytes::Bytes) -> Response {
        if let Some(answer) = self.check(headers, &body) {
            return answer;
        }
        let request = match ExportLogsServiceRequest::decode(body.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                return self.reject(
                    StatusCode::BAD_REQUEST,
                    format!("not an ExportLogsServiceRequest: {e}"),
                );
            }
        };
        let marker = lock(&self.reject_marker).clone();
        let mut accepted = Vec::new();
        let mut count = 0u64;
        for resource_logs in &request.resource_logs {
            let resource = resource_logs
                .resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for scope_logs in &resource_logs.scope_logs {
                for record in &scope_logs.log_records {
                    count += 1;
                    let size = event_size(record);
                    if size > self.options.event_limit {
                        return self.reject(
                            StatusCode::BAD_REQUEST,
                            format!(
                                "event {count} of the batch is {size} bytes, over the {} byte \
                                 event limit; the whole batch is rejected",
                                self.options.event_limit
                            ),
                        );
                    }
                    let needs_event = self.options.keep_events
                        || self.options.store_dir.is_some()
                        || marker.is_some();
                    if !needs_event {
                        continue;
                    }
                    let event = StoredEvent::new(record, &resource);
                    if let Some(m) = &marker {
                        let text = serde_json::to_string(&(&event.body, &event.attributes))
                            .unwrap_or_default();
                        if text.contains(m.as_str()) {
                            return self.reject(
                                StatusCode::BAD_REQUEST,
                                format!("event {count} contains the rejected marker {m:?}"),
                            );
                        }
                    }
                    accepted.push(event);
                }
            }
        }
        if let Err(e) = self.store(&self.store, &accepted) {
            return self.reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store events: {e}"),
            );
        }
        {
            let mut c = lock(&self.counters);
            c.accepted_requests += 1;
            c.accepted_events += count;
            c.max_events_per_request = c.max_events_per_request.max(count);
        }
        self.answered(StatusCode::OK, count);
        if self.options.keep_raw {
            lock(&self.raw).push(body);
        }
        if self.options.keep_events {
            lock(&self.events).extend(accepted);
        }
        ok_response()
    }

    /// `POST /api/apikeys`: the stand-in's own form of key creation, used by its `seqcli`
    /// stand-in (Seq's real HTTP API is not emulated). HTTP Basic credentials of the
    /// administrator are required when authentication is on.
    fn create_api_key(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct NewKey {
            title: String,
            token: Option<String>,
            #[serde(default)]
            assigned_permissions: Vec<String>,
        }
        let mut guard = lock(&self.auth);
        let Some(auth) = guard.as_mut() else {
            return error_response(StatusCode::NOT_FOUND, "this stand-in runs without auth");
        };
        if let Authentication::Admin { username, password } = &auth.authentication {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(b).ok()
                })
                .and_then(|b| String::from_utf8(b).ok());
            let expected = password.as_ref().map(|p| format!("{username}:{p}"));
            if expected.is_none() || given != expected {
                return error_response(
                    StatusCode::UNAUTHORIZED,
                    "the administrator's username and password are required",
                );
            }
        }
        let new: NewKey = match serde_json::from_slice(body) {
            Ok(k) => k,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &format!("bad key: {e}")),
        };
        let token = new
            .token
            .unwrap_or_else(|| format!("standin{:x}", self.started.elapsed().as_nanos()));
        let permissions = if new.assigned_permissions.is_empty() {
            vec!["Ingest".to_string()]
        } else {
            new.assigned_permissions
        };
        let id = format!("apikey-{}", auth.api_keys.len() + 1);
        let title = new.title.clone();
        auth.api_keys.push(ApiKey {
            title: new.title,
            token: token.clone(),
            permissions,
        });
        if let Some(dir) = &self.options.store_dir
            && let Err(e) = crate::first_run::save(dir, auth)
        {
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
        (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "Id": id, "Title": title, "Token": token }).to_string(),
        )
            .into_response()
    }

    /// A traces request: Seq's common checks, then every span must have a 16-byte trace id,
    /// an 8-byte span id, an end not before its start, and fit the event limit (Seq stores a
    /// span as an event); one bad span rejects the whole batch with 400, as for logs.
    fn ingest_traces(&self, headers: &HeaderMap, body: bytes::Bytes) -> Response {
        if let Some(answer) = self.check(headers, &body) {
            return answer;
        }
        let request = match ExportTraceServiceRequest::decode(body.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                return self.reject(
                    StatusCode::BAD_REQUEST,
                    format!("not an ExportTraceServiceRequest: {e}"),
                );
            }
        };
        let mut accepted = Vec::new();
        for resource_spans in &request.resource_spans {
            let resource = resource_spans
                .resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for scope_spans in &resource_spans.scope_spans {
                for span in &scope_spans.spans {
                    let n = accepted.len() + 1;
                    let why = if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0)
                    {
                        Some("a trace id of 16 bytes, not all zero".to_string())
                    } else if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
                        Some("a span id of 8 bytes, not all zero".to_string())
                    } else if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
                        Some("a parent span id of 8 bytes or none".to_string())
                    } else if span.end_time_unix_nano < span.start_time_unix_nano {
                        Some("an end time not before its start time".to_string())
                    } else if span_size(span) > self.options.event_limit {
                        Some(format!(
                            "at most {} bytes (it has {})",
                            self.options.event_limit,
                            span_size(span)
                        ))
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        return self.reject(
                            StatusCode::BAD_REQUEST,
                            format!(
                                "span {n} of the batch needs {why}; the whole batch is rejected"
                            ),
                        );
                    }
                    accepted.push(StoredSpan::new(span, &resource));
                }
            }
        }
        let count = accepted.len() as u64;
        {
            let mut c = lock(&self.counters);
            c.accepted_requests += 1;
            c.accepted_spans += count;
        }
        self.answered(StatusCode::OK, count);
        if self.options.keep_raw {
            lock(&self.raw_traces).push(body);
        }
        if let Err(e) = self.store(&self.span_store, &accepted) {
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
        if self.options.keep_events {
            lock(&self.spans).extend(accepted);
        }
        ok_response()
    }

    fn store<T: serde::Serialize>(
        &self,
        file: &Mutex<Option<std::fs::File>>,
        items: &[T],
    ) -> io::Result<()> {
        let mut file = lock(file);
        let Some(file) = file.as_mut() else {
            return Ok(());
        };
        let mut buf = Vec::new();
        for e in items {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        file.write_all(&buf)
    }
}

fn ok_response() -> Response {
    let mut response = ExportLogsServiceResponse::default()
        .encode_to_vec()
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    response
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "Error": message }).to_string(),
    )
        .into_response()
}

async fn ingest(Extract(state): Extract<Arc<State>>, headers: HeaderMap, body: Body) -> Response {
    lock(&state.counters).requests += 1;
    // Read one byte past the limit so an oversized request is told apart without buffering
    // all of it.
    let body = match axum::body::to_bytes(body, state.options.request_limit + 1).await {
        Ok(b) => b,
        Err(_) => {
            return state.reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request is over the {} byte limit",
                    state.options.request_limit
                ),
            );
        }
    };
    lock(&state.counters).bytes_received += body.len() as u64;
    state.ingest(&headers, body)
}

async fn ingest_traces(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    {
        let mut c = lock(&state.counters);
        c.requests += 1;
        c.trace_requests += 1;
    }
    let body = match axum::body::to_bytes(body, state.options.request_limit + 1).await {
        Ok(b) => b,
        Err(_) => {
            return state.reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request is over the {} byte limit",
                    state.options.request_limit
                ),
            );
        }
    };
    lock(&state.counters).bytes_received += body.len() as u64;
    state.ingest_traces(&headers, body)
}

async fn spans(Extract(state): Extract<Arc<State>>) -> Response {
    let mut out = Vec::new();
    for s in lock(&state.spans).iter() {
        let _ = serde_json::to_writer(&mut out, s);
        out.push(b'\n');
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
}

async fn counters(Extract(state): Extract<Arc<State>>) -> Response {
    let body = serde_json::to_string(&state.counters()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn events(Extract(state): Extract<Arc<State>>) -> Response {
    let mut out = Vec::new();
    for e in lock(&state.events).iter() {
        let _ = serde_json::to_writer(&mut out, e);
        out.push(b'\n');
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
}

async fn control(Extract(state): Extract<Arc<State>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Control>(&body) {
        Ok(c) => {
            state.apply(c);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error_response(StatusCode::BAD_REQUEST, &format!("bad control: {e}")),
    }
}

/// `GET /api`: Seq answers its API root without authentication; the sandbox script probes it
/// to know Seq is up.
async fn api_root(Extract(state): Extract<Arc<State>>) -> Response {
    let auth = lock(&state.auth)
        .as_ref()
        .is_some_and(|a| a.authentication != Authentication::Off);
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "Product": "seq-standin (a test stand-in, not Seq)",
            "Version": env!("CARGO_PKG_VERSION"),
            "IsAuthenticationEnabled": auth,
        })
        .to_string(),
    )
        .into_response()
}

async fn api_keys(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    state.create_api_key(&headers, &body)
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(INGEST_PATH, post(ingest))
        .route(TRACES_PATH, post(ingest_traces))
        .route("/counters", get(counters))
        .route("/spans", get(spans))
        .route("/events", get(events))
        .route("/control", post(control))
        .route("/api", get(api_root))
        .route("/api/", get(api_root))
        .route("/api/apikeys", post(api_keys))
        .fallback(not_found)
        .with_state(state)
}

/// A running stand-in. Dropping it stops the server.
pub struct Handle {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
    also: Vec<tokio::task::JoinHandle<()>>,
}

impl Handle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full OTLP logs URL, as a shipper's endpoint setting wants it.
    pub fn logs_url(&self) -> String {
        format!("http://{}{INGEST_PATH}", self.addr)
    }

    /// The full OTLP traces URL.
    pub fn traces_url(&self) -> String {
        format!("http://{}{TRACES_PATH}", self.addr)
    }

    pub fn counters(&self) -> Counters {
        self.state.counters()
    }

    /// A copy of every stored span, in arrival order.
    pub fn spans(&self) -> Vec<StoredSpan> {
        lock(&self.state.spans).clone()
    }

    pub fn control(&self, control: Control) {
        self.state.apply(control);
    }

    /// A copy of every stored event, in arrival order.
    pub fn events(&self) -> Vec<StoredEvent> {
        lock(&self.state.events).clone()
    }

    /// Look at the stored events without copying them.
    pub fn with_events<R>(&self, f: impl FnOnce(&[StoredEvent]) -> R) -> R {
        f(&lock(&self.state.events))
    }

    /// Every ingest request answered so far, in order, with its status and time.
    pub fn answered(&self) -> Vec<Answered> {
        lock(&self.state.answered).clone()
    }

    /// Raw bodies of the accepted logs requests (with [`Options::keep_raw`]).
    pub fn raw_requests(&self) -> Vec<bytes::Bytes> {
        lock(&self.state.raw).clone()
    }

    /// Raw bodies of the accepted traces requests (with [`Options::keep_raw`]).
    pub fn raw_trace_requests(&self) -> Vec<bytes::Bytes> {
        lock(&self.state.raw_traces).clone()
    }

    /// Number of stored events.
    pub fn event_count(&self) -> usize {
        lock(&self.state.events).len()
    }

    /// Serves the same routes, on the same state, on another address too (Seq serves
    /// ingestion on its UI port 80 as well as on 5341). Returns the bound address.
    pub async fn listen_also(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = router(self.state.clone());
        self.also.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        Ok(bound)
    }

    /// Waits until the server task ends (it only ends on a fatal error).
    pub async fn wait(self) {
        let _ = (&mut { self }.task).await;
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
        for task in &self.also {
            task.abort();
        }
    }
}

/// Binds `addr`, serves in a background tokio task, returns the handle (with the bound
/// address: bind port 0 in tests).
pub async fn spawn(addr: SocketAddr, options: Options) -> io::Result<Handle> {
    let open = |name: &str| -> io::Result<Option<std::fs::File>> {
        let Some(dir) = &options.store_dir else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))?;
        Ok(Some(file))
    };
    let (store, span_store) = (open("events.jsonl")?, open("spans.jsonl")?);
    let auth = options.auth.clone();
    let state = Arc::new(State {
        options,
        auth: Mutex::new(auth),
        refusal: Arc::default(),
        fail_next: Mutex::new(VecDeque::new()),
        reject_marker: Mutex::new(None),
        counters: Mutex::new(Counters::default()),
        events: Mutex::new(Vec::new()),
        store: Mutex::new(store),
        span_store: Mutex::new(span_store),
        started: Instant::now(),
        answered: Mutex::new(Vec::new()),
        raw: Mutex::new(Vec::new()),
        spans: Mutex::new(Vec::new()),
        raw_traces: Mutex::new(Vec::new()),
    });
    let inner = tokio::net::TcpListener::bind(addr).await?;
    let addr = inner.local_addr()?;
    let listener = RefusingListener {
        inner,
        state: state.refusal.clone(),
    };
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Handle {
        addr,
        state,
        task,
        also: Vec::new(),
    })
}
