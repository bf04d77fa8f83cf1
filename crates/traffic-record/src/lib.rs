//! The traffic record: the one contract between the proxy (writer) and the shipper (reader).
//!
//! One record is one JSON object on one line of the traffic log. The schema is documented in
//! `docs/log-format.md` and `docs/log-format.schema.json`; bump [`SCHEMA_VERSION`] on any change
//! a reader could notice.
//!
//! Bodies are kept as [`RawValue`] so that a JSON body Claude Code sent is written and shipped
//! byte for byte as it arrived (no key reordering, no float reformatting), and so that readers
//! which only need the summary fields never build a tree of a multi-megabyte body.

pub mod segments;
pub mod summary;
pub mod trace_context;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Version of the record layout, written as `"v"` in every record.
pub const SCHEMA_VERSION: u32 = 1;

/// Where the traffic log is unless a setting says otherwise (the proxy writes it, the shipper
/// follows it, the viewer and the supervisor read it).
pub const DEFAULT_LOG_PATH: &str = "/var/log/claude-logger.log";

/// Value of the `"kind"` field that marks a line as a traffic record.
pub const KIND: &str = "claude_api_exchange";

/// One request/response exchange through the proxy.
#[derive(Debug, Serialize, Deserialize)]
pub struct TrafficRecord {
    /// Always [`SCHEMA_VERSION`] for records this crate writes.
    pub v: u32,
    /// Always [`KIND`].
    pub kind: String,
    /// 32 lowercase hex digits; unique per exchange (usable as an OpenTelemetry trace id).
    pub id: String,
    /// RFC 3339 UTC timestamp with nanoseconds: when the proxy received the request head.
    pub started_at: String,
    /// RFC 3339 UTC timestamp: when the exchange ended (last byte, abort or error).
    pub ended_at: String,
    /// `ended_at - started_at` in milliseconds.
    pub duration_ms: f64,
    /// Milliseconds from `started_at` to the first response body byte (or the response head
    /// when the body is empty); absent when no response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    pub outcome: Outcome,
    /// Human-readable cause when the outcome is not `complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why this record holds no bodies (their sizes are kept, marked truncated); absent for a
    /// normal record. See [`Degraded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<Degraded>,
    /// Claude Code session id: the `x-claude-code-session-id` header, else parsed from the
    /// request body's `metadata.user_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `model` from the response (or the request, when no response said it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Whether the request asked for a stream (`"stream": true`).
    #[serde(default)]
    pub stream: bool,
    /// Final `stop_reason` of the message, if the response carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Token usage of the message, if the response carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    pub request: Request,
    /// Absent when no response head arrived from the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
}

/// How the exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The full response reached the client.
    Complete,
    /// The client went away before the response was complete; the upstream request was
    /// cancelled.
    ClientAborted,
    /// No connection (or no response head) could be had from the upstream.
    UpstreamUnreachable,
    /// The upstream stayed silent longer than the idle timeout.
    UpstreamTimeout,
    /// The upstream cut the response body before its end.
    UpstreamAborted,
    /// The client sent its request body too slowly (the proxy's `--body-read-timeout` or
    /// `--body-min-rate`); the proxy answered 408, closed the connection and cancelled the
    /// upstream request.
    ClientTimeout,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::ClientAborted => "client_aborted",
            Outcome::UpstreamUnreachable => "upstream_unreachable",
            Outcome::UpstreamTimeout => "upstream_timeout",
            Outcome::UpstreamAborted => "upstream_aborted",
            Outcome::ClientTimeout => "client_timeout",
        }
    }
}

/// Why the proxy wrote a record without its bodies rather than hold traffic or lose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Degraded {
    /// The log's volume was full (`ENOSPC`) when the full record was written.
    DiskFull,
    /// The log files passed the proxy's `--log-disk-budget`.
    DiskBudget,
    /// The captures waiting for the writer passed its memory budget.
    WriterBacklog,
    /// Building the record failed (a bug); only the exchange's metadata is kept.
    BuildFailed,
}

impl Degraded {
    pub fn as_str(self) -> &'static str {
        match self {
            Degraded::DiskFull => "disk_full",
            Degraded::DiskBudget => "disk_budget",
            Degraded::WriterBacklog => "writer_backlog",
            Degraded::BuildFailed => "build_failed",
        }
    }
}

/// The limit that cut a logged body short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncatedBy {
    /// The proxy's `--capture-cap`: the bytes kept off the wire, or the body as written to the
    /// log (JSON-escaped, a stream's events and the message rebuilt from them), reached it.
    CaptureCap,
    /// Decoding (gzip, deflate, br, zstd) would have written more than `--max-decode-ratio`
    /// bytes to the log per byte on the wire: a decompression bomb, or an unusually
    /// compressible body.
    DecodeRatio,
}

impl TruncatedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            TruncatedBy::CaptureCap => "capture_cap",
            TruncatedBy::DecodeRatio => "decode_ratio",
        }
    }
}

/// Token counts as the Anthropic API reports them (the final, cumulative values).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// `cache_creation_input_tokens` by cache lifetime, when the API broke them down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
    /// `standard` or `fast`: the speed the API served the request at (fast mode costs more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<String>,
    /// Where the API ran the model (`global`, `us`, ...); some regions cost more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_geo: Option<String>,
    /// Server tools the API ran for this request (billed per use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tool_use: Option<ServerToolUse>,
    /// The sampling steps of the request, when the API reports them one by one: compaction
    /// steps are billed but not counted in the totals above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<Vec<Iteration>>,
}

/// Uses of the API's server tools within one request.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerToolUse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_fetch_requests: Option<u64>,
}

/// One sampling step of a request (`usage.iterations[]`): `message` or `compaction`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iteration {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
}

/// Cache writes by lifetime (they are priced differently).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheCreation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_1h_input_tokens: Option<u64>,
}

/// Header name (lowercase) to value. Repeated headers are joined with `", "`. Secret values
/// (x-api-key, authorization, proxy-authorization, cookie, set-cookie) are replaced by
/// [`REDACTED`].
pub type Headers = BTreeMap<String, String>;

/// What replaces a secret header value.
pub const REDACTED: &str = "[REDACTED]";

/// Header names whose values never reach the log.
pub const SECRET_HEADERS: &[&str] = &[
    "x-api-key",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query string without `?`, absent when there was none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub headers: Headers,
    pub body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Body,
    /// Present when the response was `text/event-stream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<Sse>,
}

/// A captured body. Exactly one of `json`, `text`, `base64` is present unless the body was
/// empty.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Body {
    /// Bytes seen on the wire (before decoding), counting past the capture cap.
    pub size: u64,
    /// The `content-encoding` that was decoded for the log (`gzip`, `br`, `deflate`, `zstd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded_from: Option<String>,
    /// True when only a prefix of the body is logged (a limit was reached, see
    /// `truncated_by`, or the record is degraded, see `degraded`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// Which limit cut the logged body; absent when it is whole, and for the bodies of a
    /// degraded record (the record's `degraded` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_by: Option<TruncatedBy>,
    /// The body, when it is valid JSON, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Box<RawValue>>,
    /// The body, when it is UTF-8 but not JSON. Omitted for event streams, whose content is
    /// `response.sse.events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The body, base64 (standard alphabet), when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The server-sent events of a streamed response and the message rebuilt from them.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sse {
    pub events: Vec<SseEvent>,
    /// The Anthropic `message` reassembled from the events: content blocks (text, thinking
    /// with signature, tool_use with parsed `input`), `stop_reason`, `stop_sequence`, `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<RawValue>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SseEvent {
    /// The SSE `event:` field (`message` when absent).
    pub event: String,
    /// The `data:` field, verbatim as JSON when it parses, else as a string.
    pub data: Box<RawValue>,
    /// Milliseconds from the exchange's start to the arrival of the chunk that completed this
    /// event; absent when the stream was compressed (bytes and events no longer line up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_round_trip_byte_for_byte() {
        let line = r#"{"v":1,"kind":"claude_api_exchange","id":"0123456789abcdef0123456789abcdef","started_at":"2026-11-27T11:00:00.000000001Z","ended_at":"2026-11-27T11:00:01Z","duration_ms":1000.0,"outcome":"complete","stream":false,"request":{"method":"POST","path":"/v1/messages","headers":{"x-api-key":"[REDACTED]"},"body":{"size":30,"json":{"z":1,"a":1.50,"model":"m"}}}}"#;
        let record: TrafficRecord = serde_json::from_str(line).unwrap();
        assert_eq!(record.outcome, Outcome::Complete);
        assert_eq!(
            record.request.body.json.as_ref().unwrap().get(),
            r#"{"z":1,"a":1.50,"model":"m"}"#,
            "key order and number spelling are kept"
        );
        assert_eq!(serde_json::to_string(&record).unwrap(), line);
    }
}
