//! A FAKE Anthropic Messages API, for tests only: it is not the real service and knows no model.
//!
//! It follows the documented wire format closely enough for the official SDKs and the Claude
//! Code CLI to talk to it: `POST /v1/messages` answers with a JSON message or, with
//! `"stream": true`, a server-sent event stream framed as `event: NAME\ndata: {json}\n\n` in the
//! real order (`message_start`, `content_block_start`, `ping`, `content_block_delta`...,
//! `content_block_stop`, `message_delta`, `message_stop`); errors use the documented shape
//! `{"type":"error","error":{"type","message"},"request_id"}`; every response carries a
//! `request-id` and `anthropic-ratelimit-*` headers.
//!
//! What it answers is chosen by directives in the text of the LAST user message:
//!
//! | directive | reply |
//! |---|---|
//! | a `tool_result` block | `Tool result received: <first 200 chars of its content>` |
//! | `[[tool:Bash:<command>]]` | a `tool_use` block, input streamed as `input_json_delta` |
//! | `[[tool:Agent:<prompt>]]` | a sub-agent call (`Task` works too): input `description`, `prompt`, `subagent_type` |
//! | `[[tool:Read:<absolute path>]]` | a call of Claude Code's Read tool: input `file_path` |
//! | `[[thinking]]` | a thinking block (thinking + signature deltas) before the text |
//! | `[[error:<status>]]` | that status with the Anthropic error shape |
//! | `[[sse-error]]` | an `event: error` frame after the first delta |
//! | `[[cut]]` | the connection is dropped after a few events |
//! | `[[slow:<ms>]]` | that long between SSE events |
//! | `[[gzip]]` | a gzip-compressed non-streaming response (when the client accepts gzip) |
//! | `[[big:<bytes>]]` | a text reply of about that many bytes |
//! | `[[usage:input=N,output=N,cache_read=N,cache_5m=N,cache_1h=N]]` | those usage figures (any subset; see below) |
//! | anything else | `Hello from fake-anthropic. You said: <first 80 chars>` |
//!
//! A `/v1/messages` or `/v1/messages/count_tokens` body over 32 MB gets 413 `request_too_large`,
//! as from the real API. Usage numbers are deterministic: `input_tokens` = request body bytes / 4, `output_tokens` =
//! reply bytes / 4 (at least 1), no cache reads or writes; a `[[usage:...]]` directive replaces
//! any of them: `cache_read` is `cache_read_input_tokens`, `cache_5m` and `cache_1h` are the
//! `cache_creation` breakdown (`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`) and
//! their sum `cache_creation_input_tokens`. Usage has the documented shape: the whole object in
//! a non-streaming message and in `message_start`, the cumulative counts (`input_tokens`,
//! `cache_creation_input_tokens`, `cache_read_input_tokens`, `output_tokens`) in
//! `message_delta`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::serve::ListenerExt;
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Binds `addr`, serves the fake API in a background task, and returns the bound address.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = serve(listener).await;
    });
    Ok(bound)
}

/// Serves the fake API on an already bound listener until the task is dropped.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    // Small SSE frames must leave at once, as the real API's do (no Nagle delay).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router()).await
}

/// The fake API as an axum router (every path goes through one handler).
pub fn router() -> Router {
    // Claude Code's requests grow with the conversation; tests send 10 MB and more.
    Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// The Messages and Token Counting APIs refuse bodies over 32 MB with 413 `request_too_large`
/// (answered by the API's Cloudflare front); 32 MB read as 32,000,000 bytes, the stricter way.
pub const MAX_REQUEST_BYTES: usize = 32_000_000;

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A fresh id with the given prefix, e.g. `req_fake000000000000000000000007`.
fn new_id(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_fake{nanos:08x}{n:016x}")
}

async fn handle(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = new_id("req");
    let path = uri.path();
    let mut response = match (method.as_str(), path) {
        ("POST", "/v1/messages" | "/v1/messages/count_tokens")
            if body.len() > MAX_REQUEST_BYTES =>
        {
            error_response(
                413,
                "Request exceeds the maximum allowed number of bytes. The maximum request size is 32 MB for standard API endpoints.",
                &request_id,
            )
        }
        ("GET", "/health") => plain_json(StatusCode::OK, json!({"status": "ok"})),
        ("POST", "/v1/messages") => messages(&headers, &body, &request_id).await,
        ("POST", "/v1/messages/count_tokens") => match serde_json::from_slice::<Value>(&body) {
            Ok(_) => plain_json(
                StatusCode::OK,
                json!({"input_tokens": input_tokens(body.len())}),
            ),
            Err(e) => error_response(
                400,
                &format!("request body is not valid JSON: {e}"),
                &request_id,
            ),
        },
        _ => error_response(
            404,
            &format!("Not found: {method} {path} (fake-anthropic)"),
            &request_id,
        ),
    };
    let h = response.headers_mut();
    h.insert("request-id", header_value(&request_id));
    for (name, value) in [
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", "3999"),
        ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:00Z"),
        ("anthropic-ratelimit-tokens-limit", "400000"),
        ("anthropic-ratelimit-tokens-remaining", "399000"),
        ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:00Z"),
        ("anthropic-organization-id", "fake-org"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn input_tokens(body_len: usize) -> u64 {
    (body_len / 4) as u64
}

fn output_tokens(reply_len: usize) -> u64 {
    ((reply_len / 4) as u64).max(1)
}

fn plain_json(status: StatusCode, value: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(value.to_string()))
        .expect("static response parts are valid")
}

/// The documented error shape for `status`; 429 and 529 also say when to retry.
fn error_response(status: u16, message: &str, request_id: &str) -> Response {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = plain_json(
        status_code,
        json!({
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }),
    );
    let h = response.headers_mut();
    if status == 429 || status == 529 {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if status == 429 || status >= 500 {
        h.insert("x-should-retry", HeaderValue::from_static("true"));
    }
    response
}

/// What the last user message asks for.
#[derive(Debug, Default)]
struct Directives {
    /// Text of the last user message (text blocks joined).
    text: String,
    /// Content of a `tool_result` block in the last user message, if any.
    tool_result: Option<String>,
    tool: Option<(String, String)>,
    thinking: bool,
    error: Option<u16>,
    sse_error: bool,
    cut: bool,
    slow_ms: u64,
    gzip: bool,
    big: Option<usize>,
    usage: UsageAsked,
    /// A malformed `[[usage:...]]`: answered with 400 so the test author sees why.
    usage_error: Option<String>,
}

/// Usage figures asked for by `[[usage:...]]`; `None` keeps the computed default.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct UsageAsked {
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_5m: Option<u64>,
    cache_1h: Option<u64>,
}

impl UsageAsked {
    /// Parses `input=N,output=N,...`; an unknown name or a bad number is an error the test
    /// author sees in the reply.
    fn parse(arg: &str) -> Result<UsageAsked, String> {
        let mut asked = UsageAsked::default();
        for pair in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("usage directive: {pair:?} is not NAME=N"))?;
            let n: u64 = value
                .trim()
                .parse()
                .map_err(|e| format!("usage directive: {pair:?}: {e}"))?;
            let slot = match name.trim() {
                "input" => &mut asked.input,
                "output" => &mut asked.output,
                "cache_read" => &mut asked.cache_read,
                "cache_5m" => &mut asked.cache_5m,
                "cache_1h" => &mut asked.cache_1h,
                other => {
                    return Err(format!(
                        "usage directive: unknown figure {other:?} (input, output, cache_read, cache_5m, cache_1h)"
                    ));
                }
            };
            *slot = Some(n);
        }
        Ok(asked)
    }
}

/// The text inside `[[name:...]]`, if the directive is present.
fn directive_arg<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("[[{name}:");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find("]]")?;
    Some(&text[start..start + len])
}

/// Joins the text of a content value: a string, or a list of blocks with `text`.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn parse_directives(request: &Value) -> Directives {
    let mut d = Directives::default();
    let last_user = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        });
    let Some(content) = last_user.and_then(|m| m.get("content")) else {
        return d;
    };
    if let Value::Array(blocks) = content {
        d.tool_result = blocks
            .iter()
            .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .map(|b| b.get("content").map(content_text).unwrap_or_default());
    }
    let text = content_text(content);
    if let Some(arg) = directive_arg(&text, "tool") {
        let (name, command) = arg.split_once(':').unwrap_or(("Bash", arg));
        d.tool = Some((name.to_string(), command.to_string()));
    }
    d.thinking = text.contains("[[thinking]]");
    d.error = directive_arg(&text, "error").and_then(|s| s.trim().parse().ok());
    d.sse_error = text.contains("[[sse-error]]");
    d.cut = text.contains("[[cut]]");
    d.slow_ms = directive_arg(&text, "slow")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    d.gzip = text.contains("[[gzip]]");
    d.big = directive_arg(&text, "big").and_then(|s| s.trim().parse().ok());
    match directive_arg(&text, "usage").map(UsageAsked::parse) {
        Some(Ok(asked)) => d.usage = asked,
        Some(Err(e)) => d.usage_error = Some(e),
        None => {}
    }
    d.text = text;
    d
}

/// The first `n` characters of `s`.
fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// One content block of the reply.
enum Block {
    Thinking {
        thinking: String,
        signature: String,
    },
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

impl Block {
    fn to_json(&self) -> Value {
        match self {
            Block::Thinking {
                thinking,
                signature,
            } => json!({"type": "thinking", "thinking": thinking, "signature": signature}),
            Block::Text(text) => json!({"type": "text", "text": text}),
            Block::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Block::Thinking { thinking, .. } => thinking.len(),
            Block::Text(text) => text.len(),
            Block::ToolUse { input, .. } => input.to_string().len(),
        }
    }
}

/// A tool call's input: a sub-agent's (`Task`/`Agent`: the text is its prompt), a file read's
/// (`Read`: the text is the path) or a command's.
fn tool_input(name: &str, text: &str) -> Value {
    match name {
        "Task" | "Agent" => {
            json!({"description": "sub-agent task", "prompt": text, "subagent_type": "general-purpose"})
        }
        "Read" => json!({"file_path": text}),
        _ => json!({"command": text, "description": "run it"}),
    }
}

fn reply_blocks(d: &Directives) -> (Vec<Block>, &'static str) {
    let mut blocks = Vec::new();
    if d.thinking {
        blocks.push(Block::Thinking {
            thinking: "Let me think about this step by step. The user wants a fake answer."
                .to_string(),
            signature: "ZmFrZS1zaWduYXR1cmUtZnJvbS1mYWtlLWFudGhyb3BpYw==".to_string(),
        });
    }
    if let Some(result) = &d.tool_result {
        blocks.push(Block::Text(format!(
            "Tool result received: {}",
            prefix_chars(result, 200)
        )));
        return (blocks, "end_turn");
    }
    if let Some((name, command)) = &d.tool {
        blocks.push(Block::Text("I will run that command.".to_string()));
        blocks.push(Block::ToolUse {
            id: new_id("toolu"),
            name: name.clone(),
            input: tool_input(name, command),
        });
        return (blocks, "tool_use");
    }
    if let Some(size) = d.big {
        let unit = "All work and no play makes a big reply. ";
        let mut text = unit.repeat(size / unit.len() + 1);
        text.truncate(size.max(1));
        blocks.push(Block::Text(text));
        return (blocks, "end_turn");
    }
    blocks.push(Block::Text(format!(
        "Hello from fake-anthropic. You said: {}",
        prefix_chars(&d.text, 80)
    )));
    (blocks, "end_turn")
}

async fn messages(headers: &HeaderMap, body: &[u8], request_id: &str) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(
                400,
                &format!("request body is not valid JSON: {e}"),
                request_id,
            );
        }
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude-fake")
        .to_string();
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    let d = parse_directives(&request);
    if let Some(status) = d.error {
        return error_response(status, &format!("fake error {status} as asked"), request_id);
    }
    if let Some(e) = &d.usage_error {
        return error_response(400, e, request_id);
    }
    let (blocks, stop_reason) = reply_blocks(&d);
    let usage = Figures {
        input: d.usage.input.unwrap_or(input_tokens(body.len())),
        output: d
            .usage
            .output
            .unwrap_or(output_tokens(blocks.iter().map(Block::len).sum())),
        cache_read: d.usage.cache_read.unwrap_or(0),
        cache_5m: d.usage.cache_5m.unwrap_or(0),
        cache_1h: d.usage.cache_1h.unwrap_or(0),
    };
    let message_id = new_id("msg");
    if stream {
        return stream_response(StreamPlan {
            message_id,
            model,
            blocks,
            stop_reason,
            usage,
            slow: Duration::from_millis(d.slow_ms),
            sse_error: d.sse_error,
            cut: d.cut,
        });
    }
    let message = json!({
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks.iter().map(Block::to_json).collect::<Vec<_>>(),
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage.whole(),
    });
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if d.gzip && accepts_gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let compressed = encoder
            .write_all(message.to_string().as_bytes())
            .and_then(|()| encoder.finish());
        if let Ok(compressed) = compressed {
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(compressed))
                .expect("static response parts are valid");
        }
    }
    plain_json(StatusCode::OK, message)
}

/// The token counts of one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figures {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_5m: u64,
    cache_1h: u64,
}

impl Figures {
    /// The `usage` object of a message (and of `message_start`).
    fn whole(&self) -> Value {
        json!({
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_5m + self.cache_1h,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_5m,
                "ephemeral_1h_input_tokens": self.cache_1h,
            },
            "output_tokens": self.output,
        })
    }

    /// The `usage` of `message_delta`: the cumulative counts, without the breakdown.
    fn cumulative(&self) -> Value {
        json!({
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_5m + self.cache_1h,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": self.output,
        })
    }
}

struct StreamPlan {
    message_id: String,
    model: String,
    blocks: Vec<Block>,
    stop_reason: &'static str,
    usage: Figures,
    slow: Duration,
    sse_error: bool,
    cut: bool,
}

/// One SSE frame, framed as the API frames it.
fn frame(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// Splits `s` into pieces of about `n` bytes on character boundaries.
fn chunks(s: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut end = n.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// The event frames of a streamed reply, in the documented order.
fn stream_frames(plan: &StreamPlan) -> Vec<(String, Value)> {
    let mut frames = vec![(
        "message_start".to_string(),
        json!({"type": "message_start", "message": {
            "id": plan.message_id, "type": "message", "role": "assistant", "model": plan.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            // The API counts output as it goes: the start says 1.
            "usage": Figures { output: 1, ..plan.usage }.whole(),
        }}),
    )];
    for (index, block) in plan.blocks.iter().enumerate() {
        let start = match block {
            Block::Thinking { .. } => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Block::Text(_) => json!({"type": "text", "text": ""}),
            Block::ToolUse { id, name, .. } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": {}})
            }
        };
        frames.push((
            "content_block_start".to_string(),
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        if index == 0 {
            frames.push(("ping".to_string(), json!({"type": "ping"})));
        }
        let deltas: Vec<Value> = match block {
            Block::Thinking {
                thinking,
                signature,
            } => chunks(thinking, 16)
                .into_iter()
                .map(|t| json!({"type": "thinking_delta", "thinking": t}))
                .chain(std::iter::once(
                    json!({"type": "signature_delta", "signature": signature}),
                ))
                .collect(),
            Block::Text(text) => chunks(text, if text.len() > 4096 { 16384 } else { 12 })
                .into_iter()
                .map(|t| json!({"type": "text_delta", "text": t}))
                .collect(),
            Block::ToolUse { input, .. } => std::iter::once(String::new())
                .chain(
                    chunks(&input.to_string(), 10)
                        .into_iter()
                        .map(str::to_string),
                )
                .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                .collect(),
        };
        for delta in deltas {
            frames.push((
                "content_block_delta".to_string(),
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        frames.push((
            "content_block_stop".to_string(),
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    frames.push((
        "message_delta".to_string(),
        json!({"type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": null},
            "usage": plan.usage.cumulative()}),
    ));
    frames.push(("message_stop".to_string(), json!({"type": "message_stop"})));
    frames
}

fn stream_response(plan: StreamPlan) -> Response {
    let frames = stream_frames(&plan);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut deltas_sent = 0;
        for (i, (event, data)) in frames.iter().enumerate() {
            if i > 0 && !plan.slow.is_zero() {
                tokio::time::sleep(plan.slow).await;
            }
            if plan.cut && i == 4 {
                // Dropping the connection mid-stream: the body ends with an error.
                let _ = tx
                    .send(Err(std::io::Error::other("fake-anthropic cut the stream")))
                    .await;
                return;
            }
            if tx.send(Ok(frame(event, data))).await.is_err() {
                return; // client gone
            }
            if event == "content_block_delta" {
                deltas_sent += 1;
                if plan.sse_error && deltas_sent == 1 {
                    let error = json!({"type": "error", "error":
                        {"type": "overloaded_error", "message": "Overloaded"}});
                    let _ = tx.send(Ok(frame("error", &error))).await;
                    return;
                }
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_come_from_the_last_user_message() {
        let request = json!({"messages": [
            {"role": "user", "content": "[[thinking]]"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "run [[tool:Bash:ls -la]] now [[slow:5]]"}]},
        ]});
        let d = parse_directives(&request);
        assert!(!d.thinking);
        assert_eq!(d.tool, Some(("Bash".to_string(), "ls -la".to_string())));
        assert_eq!(d.slow_ms, 5);
    }

    #[test]
    fn an_agent_call_carries_what_claude_code_needs_to_start_a_sub_agent() {
        let d = parse_directives(
            &json!({"messages": [{"role": "user", "content": "go [[tool:Agent:find it]]"}]}),
        );
        let (blocks, stop) = reply_blocks(&d);
        assert_eq!(stop, "tool_use");
        let call = blocks.last().unwrap().to_json();
        assert_eq!(call["name"], "Agent");
        assert_eq!(
            call["input"],
            json!({"description": "sub-agent task", "prompt": "find it", "subagent_type": "general-purpose"})
        );
    }

    #[test]
    fn a_read_call_carries_the_path_as_claude_codes_read_tool_wants_it() {
        let d = parse_directives(
            &json!({"messages": [{"role": "user", "content": "go [[tool:Read:/src/lib.rs]]"}]}),
        );
        let (blocks, _) = reply_blocks(&d);
        assert_eq!(
            blocks.last().unwrap().to_json()["input"],
            json!({"file_path": "/src/lib.rs"})
        );
    }

    #[test]
    fn tool_result_content_may_be_a_list_of_blocks() {
        let request = json!({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "file.txt"}]}
        ]}]});
        assert_eq!(
            parse_directives(&request).tool_result.as_deref(),
            Some("file.txt")
        );
    }

    #[test]
    fn streamed_tool_input_reassembles_to_the_input() {
        let d = parse_directives(
            &json!({"messages": [{"role": "user", "content": "[[tool:Bash:echo hi]]"}]}),
        );
        let (blocks, stop) = reply_blocks(&d);
        assert_eq!(stop, "tool_use");
        let plan = StreamPlan {
            message_id: "m".into(),
            model: "x".into(),
            blocks,
            stop_reason: stop,
            usage: Figures {
                input: 1,
                output: 1,
                cache_read: 0,
                cache_5m: 0,
                cache_1h: 0,
            },
            slow: Duration::ZERO,
            sse_error: false,
            cut: false,
        };
        let partial: String = stream_frames(&plan)
            .iter()
            .filter_map(|(_, d)| d["delta"]["partial_json"].as_str().map(str::to_string))
            .collect();
        let input: Value = serde_json::from_str(&partial).unwrap();
        assert_eq!(
            input,
            json!({"command": "echo hi", "description": "run it"})
        );
    }

    fn plan_for(text: &str) -> StreamPlan {
        let d = parse_directives(&json!({"messages": [{"role": "user", "content": text}]}));
        let (blocks, stop_reason) = reply_blocks(&d);
        let a = d.usage;
        StreamPlan {
            message_id: "m".into(),
            model: "x".into(),
            blocks,
            stop_reason,
            usage: Figures {
                input: a.input.unwrap_or(7),
                output: a.output.unwrap_or(3),
                cache_read: a.cache_read.unwrap_or(0),
                cache_5m: a.cache_5m.unwrap_or(0),
                cache_1h: a.cache_1h.unwrap_or(0),
            },
            slow: Duration::ZERO,
            sse_error: false,
            cut: false,
        }
    }

    #[test]
    fn a_usage_directive_sets_any_subset_of_the_figures() {
        let d = parse_directives(&json!({"messages": [{"role": "user", "content":
            "price this [[usage:cache_read=30000, cache_5m=2000,cache_1h=1000,output=400]] please"}]}));
        assert_eq!(d.usage_error, None);
        assert_eq!(
            d.usage,
            UsageAsked {
                input: None,
                output: Some(400),
                cache_read: Some(30_000),
                cache_5m: Some(2_000),
                cache_1h: Some(1_000),
            }
        );
    }

    #[test]
    fn a_malformed_usage_directive_is_an_error_naming_the_figure() {
        for (text, names) in [
            ("[[usage:cache_2h=5]]", "cache_2h"),
            ("[[usage:input=many]]", "input=many"),
            ("[[usage:input]]", "input"),
        ] {
            let d = parse_directives(&json!({"messages": [{"role": "user", "content": text}]}));
            let error = d.usage_error.unwrap_or_default();
            assert!(error.contains(names), "{text}: {error}");
        }
    }

    #[test]
    fn usage_has_the_documented_shape_with_the_cache_breakdown() {
        let f = Figures {
            input: 12,
            output: 400,
            cache_read: 30_000,
            cache_5m: 2_000,
            cache_1h: 1_000,
        };
        assert_eq!(
            f.whole(),
            json!({"input_tokens": 12, "output_tokens": 400,
                "cache_read_input_tokens": 30_000, "cache_creation_input_tokens": 3_000,
                "cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 1_000}})
        );
        // message_delta's usage (MessageDeltaUsage) has the cumulative counts, no breakdown.
        assert_eq!(
            f.cumulative(),
            json!({"input_tokens": 12, "output_tokens": 400,
                "cache_read_input_tokens": 30_000, "cache_creation_input_tokens": 3_000})
        );
    }

    #[test]
    fn a_stream_starts_with_the_whole_usage_and_ends_with_the_cumulative_counts() {
        let plan = plan_for("[[usage:input=150000,cache_read=5,cache_5m=6,cache_1h=7,output=8]]");
        let frames = stream_frames(&plan);
        let start = &frames[0].1["message"]["usage"];
        assert_eq!(start["input_tokens"], 150_000);
        assert_eq!(start["output_tokens"], 1, "output is counted as it goes");
        assert_eq!(start["cache_creation_input_tokens"], 13);
        assert_eq!(
            start["cache_creation"],
            json!({"ephemeral_5m_input_tokens": 6, "ephemeral_1h_input_tokens": 7})
        );
        let (event, delta) = &frames[frames.len() - 2];
        assert_eq!(event, "message_delta");
        assert_eq!(delta["usage"], plan.usage.cumulative());
        assert_eq!(delta["usage"]["output_tokens"], 8);
    }

    #[tokio::test]
    async fn a_non_streaming_reply_carries_the_asked_usage_and_a_malformed_one_is_a_400() {
        let body = json!({"model": "claude-opus-5-5", "max_tokens": 10, "messages": [
            {"role": "user", "content": "[[usage:input=3,cache_read=4,cache_5m=5,cache_1h=6,output=7]]"}]});
        let response = messages(&HeaderMap::new(), body.to_string().as_bytes(), "req_t").await;
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let message: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            message["usage"],
            Figures {
                input: 3,
                output: 7,
                cache_read: 4,
                cache_5m: 5,
                cache_1h: 6
            }
            .whole()
        );
        let bad = json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": "[[usage:cache=1]]"}]});
        let response = messages(&HeaderMap::new(), bad.to_string().as_bytes(), "req_t").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}
