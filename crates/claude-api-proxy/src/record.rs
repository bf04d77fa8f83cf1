//! Turns a captured exchange into a traffic record: headers redacted, bodies decoded and
//! classified (JSON verbatim, text, or base64), SSE events parsed and the message rebuilt,
//! summary fields (model, session, usage, stop reason) lifted out.

use crate::capture::Capture;
use crate::decode::decode;
use crate::exchange::Exchange;
use crate::redact::{self, Redactor};
use crate::sse;
use base64::Engine;
use http::HeaderMap;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::time::SystemTime;
use traffic_record::{
    Body, CacheCreation, Degraded, Headers, Iteration, KIND, REDACTED, Request, Response,
    SCHEMA_VERSION, ServerToolUse, Sse, SseEvent, TrafficRecord, TruncatedBy, Usage,
};

/// The record of `exchange`, each body within `limits` as written, secrets redacted by
/// `redactor` (the rules built from the config at start).
pub fn build(exchange: &Exchange, limits: Limits, redactor: &Redactor) -> TrafficRecord {
    let (request_body, _, request_summary, _) = body_of(
        &exchange.request_body,
        &exchange.request_headers,
        limits,
        false,
        redactor,
    );

    let mut model = None;
    let mut stop_reason = None;
    let mut usage = None;
    let mut error = exchange.error.clone();

    let response = exchange.response.as_ref().map(|head| {
        let is_sse = header(&head.headers, "content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
        let (mut body, decoded, body_summary, budget) = body_of(
            &exchange.response_body,
            &head.headers,
            limits,
            is_sse,
            redactor,
        );
        let mut sse_part = None;
        let message: Option<Summary> = if is_sse {
            // Uncompressed, the chunks are the events' bytes as they arrived: each event gets
            // the arrival time of the chunk that completed it.
            let (mut events, times): (Vec<sse::Event>, Vec<Option<f64>>) =
                if body.decoded_from.is_none() {
                    let arrived = exchange.response_body.arrived();
                    sse::parse_chunks(exchange.response_body.chunks())
                        .into_iter()
                        .map(|(e, i)| (e, arrived.get(i).map(|d| millis(*d))))
                        .unzip()
                } else {
                    sse::parse(&decoded).into_iter().map(|e| (e, None)).unzip()
                };
            drop(decoded);
            // The events as written stay within the budget; the message is rebuilt from those.
            let kept = events_within(&events, budget.0);
            if kept < events.len() {
                events.truncate(kept);
                cut_by(&mut body, budget.1);
            }
            redact_events(&mut events, redactor);
            let rebuilt = sse::reassemble(&events);
            if error.is_none() {
                error = rebuilt
                    .error
                    .map(|e| format!("error event in the stream: {e}"));
            }
            let message_raw = rebuilt
                .message
                .as_ref()
                .and_then(to_raw)
                .and_then(|raw| redacted_raw(raw, redactor));
            sse_part = Some(Sse {
                events: events
                    .into_iter()
                    .zip(times)
                    .map(|(e, t_ms)| SseEvent {
                        event: e.event,
                        data: json_or_string(&e.data),
                        t_ms,
                    })
                    .collect(),
                message: message_raw,
            });
            rebuilt
                .message
                .and_then(|m| serde_json::from_value::<Summary>(m).ok())
        } else {
            body_summary
        };
        if let Some(m) = message {
            model = m.model.as_ref().and_then(Value::as_str).map(str::to_string);
            stop_reason = m
                .stop_reason
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_string);
            usage = m.usage.as_ref().and_then(usage_of);
        }
        Response {
            status: head.status.as_u16(),
            headers: redact(&head.headers, redactor),
            body,
            sse: sse_part,
        }
    });

    let request_summary = request_summary.unwrap_or_default();
    if model.is_none() {
        model = request_summary
            .model
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let stream = request_summary.stream.as_ref().and_then(Value::as_bool) == Some(true);
    let session_id = header(&exchange.request_headers, "x-claude-code-session-id")
        .map(str::to_string)
        .or_else(|| {
            request_summary
                .metadata
                .as_ref()
                .and_then(session_from_metadata)
        });

    let mut request_body = request_body;
    let mut response = response;
    if exchange.degraded.is_some() {
        // The bodies were dropped before the writer: `degraded` says why, no limit cut them.
        request_body.truncated_by = None;
        if let Some(response) = &mut response {
            response.body.truncated_by = None;
        }
    }
    TrafficRecord {
        v: SCHEMA_VERSION,
        kind: KIND.to_string(),
        id: format!("{:032x}", rand::random::<u128>()),
        started_at: timestamp(exchange.started_at),
        ended_at: timestamp(exchange.ended_at),
        duration_ms: millis(exchange.duration),
        ttfb_ms: exchange.ttfb.map(millis),
        outcome: exchange.outcome,
        error,
        degraded: exchange.degraded,
        session_id,
        model,
        stream,
        stop_reason,
        usage,
        request: Request {
            method: exchange.method.to_string(),
            path: redactor.text(exchange.path.clone()),
            query: exchange.query.as_deref().map(|q| redactor.query(q)),
            headers: redact(&exchange.request_headers, redactor),
            body: request_body,
        },
        response,
    }
}

/// The record of an exchange whose full record could not be built: its metadata (times,
/// outcome, method, path, query, status, body sizes) and the cause, nothing that needs parsing.
pub fn minimal(exchange: &Exchange, cause: &str) -> TrafficRecord {
    let error = match &exchange.error {
        Some(e) => format!("{e}; the traffic record could not be built: {cause}"),
        None => format!("the traffic record could not be built: {cause}"),
    };
    let sized = |capture: &Capture| Body {
        size: capture.size,
        truncated: capture.size > 0,
        ..Body::default()
    };
    TrafficRecord {
        v: SCHEMA_VERSION,
        kind: KIND.to_string(),
        id: format!("{:032x}", rand::random::<u128>()),
        started_at: timestamp(exchange.started_at),
        ended_at: timestamp(exchange.ended_at),
        duration_ms: millis(exchange.duration),
        ttfb_ms: exchange.ttfb.map(millis),
        outcome: exchange.outcome,
        error: Some(error),
        degraded: Some(Degraded::BuildFailed),
        session_id: None,
        model: None,
        stream: false,
        stop_reason: None,
        usage: None,
        request: Request {
            method: exchange.method.to_string(),
            path: exchange.path.clone(),
            query: exchange.query.clone(),
            headers: Headers::new(),
            body: sized(&exchange.request_body),
        },
        response: exchange.response.as_ref().map(|head| Response {
            status: head.status.as_u16(),
            headers: Headers::new(),
            body: sized(&exchange.response_body),
            sse: None,
        }),
    }
}

/// Drops the bodies of `record` (keeping their sizes, marked truncated) and says why.
pub fn degrade(record: &mut TrafficRecord, why: Degraded) {
    fn strip(body: &mut Body) {
        let kept = std::mem::take(body);
        *body = Body {
            size: kept.size,
            decoded_from: kept.decoded_from,
            truncated: kept.size > 0,
            ..Body::default()
        };
    }
    strip(&mut record.request.body);
    if let Some(response) = &mut record.response {
        strip(&mut response.body);
        response.sse = None;
    }
    record.degraded.get_or_insert(why);
}

fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Header map for the log: names lowercase, repeats joined with ", ", secrets redacted by
/// `redactor`.
pub fn redact(headers: &HeaderMap, redactor: &Redactor) -> Headers {
    let mut out = Headers::new();
    for (name, value) in headers {
        let name = name.as_str();
        let value =
            redactor.header_value(name, String::from_utf8_lossy(value.as_bytes()).into_owned());
        out.entry(name.to_string())
            .and_modify(|v| {
                if v != REDACTED {
                    v.push_str(", ");
                    v.push_str(&value);
                }
            })
            .or_insert(value);
    }
    out
}

/// Redacts secrets in the events of a stream, as written: first those split across the
/// deltas of one content block (the text, thinking or tool input pieces are joined, scanned,
/// and each piece loses its part of a secret, the first piece getting the marker), then any
/// left whole inside one event. The message rebuilt from the redacted events holds no secret
/// either.
fn redact_events(events: &mut [sse::Event], redactor: &Redactor) {
    if !redactor.scans_bodies() {
        return;
    }
    // (block index, field) -> the events' parsed data and where the piece is.
    let mut parsed: BTreeMap<usize, Value> = BTreeMap::new();
    let mut groups: BTreeMap<(u64, &'static str), Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if !e.data.contains("content_block_delta") {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        let field = match value.pointer("/delta/type").and_then(Value::as_str) {
            Some("text_delta") => "text",
            Some("thinking_delta") => "thinking",
            Some("input_json_delta") => "partial_json",
            _ => continue,
        };
        if value
            .pointer(&format!("/delta/{field}"))
            .is_some_and(Value::is_string)
        {
            groups.entry((index, field)).or_default().push(i);
            parsed.insert(i, value);
        }
    }
    let mut changed: BTreeMap<usize, ()> = BTreeMap::new();
    for ((_, field), members) in &groups {
        let pointer = format!("/delta/{field}");
        let pieces: Vec<String> = members
            .iter()
            .map(|i| {
                parsed[i]
                    .pointer(&pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let joined = pieces.concat();
        let found = redactor.find(&joined, *field == "partial_json");
        if found.is_empty() {
            continue;
        }
        let mut start = 0;
        for (piece, i) in pieces.iter().zip(members) {
            let end = start + piece.len();
            let mut out = String::with_capacity(piece.len());
            let mut at = start;
            for (range, kind) in &found {
                if range.end <= start || range.start >= end {
                    continue;
                }
                let (from, to) = (range.start.max(start), range.end.min(end));
                out.push_str(&joined[at..from]);
                if range.start >= start {
                    out.push_str(&redact::marker(kind));
                }
                at = to;
            }
            if at != start {
                out.push_str(&joined[at..end]);
                if let Some(slot) = parsed.get_mut(i).and_then(|v| v.pointer_mut(&pointer)) {
                    *slot = Value::String(out);
                }
                changed.insert(*i, ());
            }
            start = end;
        }
    }
    for i in changed.keys() {
        if let Ok(data) = serde_json::to_string(&parsed[i]) {
            events[*i].data = data;
        }
    }
    for e in events.iter_mut() {
        e.data = redactor.json(std::mem::take(&mut e.data));
    }
}

/// `raw` with secrets redacted; a JSON string of the redacted text should a pattern file's
/// pattern have cut the JSON (the built-in ones cannot), so the record stays parseable.
fn redacted_raw(raw: Box<RawValue>, redactor: &Redactor) -> Option<Box<RawValue>> {
    let found = redactor.find(raw.get(), true);
    if found.is_empty() {
        return Some(raw);
    }
    let out = redact::apply(raw.get(), &found);
    RawValue::from_string(out.clone())
        .or_else(|_| serde_json::value::to_raw_value(&out))
        .ok()
}

/// The few top-level fields of a request or message the record lifts out. Deserializing into
/// this skips everything else without building a tree of a multi-megabyte body.
#[derive(Debug, Default, serde::Deserialize)]
struct Summary {
    model: Option<Value>,
    stream: Option<Value>,
    metadata: Option<Value>,
    stop_reason: Option<Value>,
    usage: Option<Value>,
}

/// Claude Code puts the session in `metadata.user_id`: either `..._session_<uuid>` or a JSON
/// object with `session_id`.
fn session_from_metadata(metadata: &Value) -> Option<String> {
    let user_id = metadata.get("user_id")?.as_str()?;
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(user_id) {
        return o
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let (_, session) = user_id.rsplit_once("session_")?;
    (!session.is_empty()).then(|| session.to_string())
}

fn usage_of(u: &Value) -> Option<Usage> {
    let field = |name: &str| u.get(name).and_then(Value::as_u64);
    let text = |name: &str| u.get(name).and_then(Value::as_str).map(str::to_string);
    let usage = Usage {
        input_tokens: field("input_tokens"),
        output_tokens: field("output_tokens"),
        cache_creation_input_tokens: field("cache_creation_input_tokens"),
        cache_read_input_tokens: field("cache_read_input_tokens"),
        cache_creation: u.get("cache_creation").and_then(cache_creation_of),
        speed: text("speed"),
        inference_geo: text("inference_geo"),
        server_tool_use: u.get("server_tool_use").filter(|s| s.is_object()).map(|s| {
            let field = |name: &str| s.get(name).and_then(Value::as_u64);
            ServerToolUse {
                web_search_requests: field("web_search_requests"),
                web_fetch_requests: field("web_fetch_requests"),
            }
        }),
        iterations: u.get("iterations").and_then(Value::as_array).map(|steps| {
            steps
                .iter()
                .map(|i| {
                    let field = |name: &str| i.get(name).and_then(Value::as_u64);
                    Iteration {
                        kind: i.get("type").and_then(Value::as_str).map(str::to_string),
                        input_tokens: field("input_tokens"),
                        output_tokens: field("output_tokens"),
                        cache_creation_input_tokens: field("cache_creation_input_tokens"),
                        cache_read_input_tokens: field("cache_read_input_tokens"),
                        cache_creation: i.get("cache_creation").and_then(cache_creation_of),
                    }
                })
                .collect()
        }),
    };
    (usage != Usage::default()).then_some(usage)
}

fn cache_creation_of(c: &Value) -> Option<CacheCreation> {
    let field = |name: &str| c.get(name).and_then(Value::as_u64);
    c.is_object().then(|| CacheCreation {
        ephemeral_5m_input_tokens: field("ephemeral_5m_input_tokens"),
        ephemeral_1h_input_tokens: field("ephemeral_1h_input_tokens"),
    })
}

/// `value` as a one-line raw JSON value.
fn to_raw(value: &Value) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(value).ok()
}

/// `text` verbatim when it is JSON (compacted if it spans lines), else a JSON string.
fn json_or_string(text: &str) -> Box<RawValue> {
    match json_body(text.to_string()) {
        Ok((raw, _)) => raw,
        Err(text) => serde_json::value::to_raw_value(&text).expect("a string always serializes"),
    }
}

/// `text` as a raw JSON value if it is JSON, with its summary fields if it is an object; else
/// `text` back. Kept byte for byte, without a copy, unless it holds a line break (whitespace
/// between tokens), which a one-line record cannot carry.
fn json_body(text: String) -> Result<(Box<RawValue>, Option<Summary>), String> {
    // Reading the summary parses the whole text (unknown fields are skipped, but checked); only
    // a JSON body that is not an object needs a parse of its own to be told from text.
    let summary = serde_json::from_str::<Summary>(&text).ok();
    if summary.is_none() && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_err() {
        return Err(text);
    }
    let json = text.trim_matches([' ', '\t', '\n', '\r']);
    // memchr: a plain `contains` over a multi-MB body showed up at 12% of the proxy's CPU.
    if memchr::memchr2(b'\n', b'\r', json.as_bytes()).is_some() {
        return match serde_json::from_str::<Value>(json) {
            Ok(value) => Ok((to_raw(&value).expect("a parsed value serializes"), summary)),
            Err(_) => Err(text),
        };
    }
    let json = if json.len() == text.len() {
        text
    } else {
        json.to_string()
    };
    let raw = RawValue::from_string(json).expect("serde_json parsed this text above");
    Ok((raw, summary))
}

/// What bounds a record's bodies in the log.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `--capture-cap`: most bytes of a body kept off the wire, and most bytes it may take in
    /// the log as written (JSON-escaped).
    pub cap: usize,
    /// `--max-decode-ratio`: most bytes a decoded body may take in the log per byte on the wire.
    pub max_decode_ratio: u64,
}

/// The default of `--max-decode-ratio`.
pub const DEFAULT_MAX_DECODE_RATIO: u64 = 20;

impl Limits {
    /// `cap` and the default decode ratio.
    pub fn cap(cap: usize) -> Limits {
        Limits {
            cap,
            max_decode_ratio: DEFAULT_MAX_DECODE_RATIO,
        }
    }
}

/// The body for the log, the decoded bytes of an SSE body (for parsing; empty when the chunks
/// are the events as they arrived), the summary fields of a JSON object body, and the bytes
/// the body may take in the log with the reason it would be cut at that.
fn body_of(
    capture: &Capture,
    headers: &HeaderMap,
    limits: Limits,
    is_sse: bool,
    redactor: &Redactor,
) -> (Body, Vec<u8>, Option<Summary>, (usize, TruncatedBy)) {
    let size = capture.size;
    let mut truncated_by = capture.truncated.then_some(TruncatedBy::CaptureCap);
    let mut decoded_from = None;
    let mut budget = (limits.cap, TruncatedBy::CaptureCap);
    let encoding = header(headers, "content-encoding");
    // An uncompressed stream is parsed from its chunks: no joined copy.
    let raw = if is_sse && encoding.is_none() {
        Vec::new()
    } else {
        capture.to_bytes()
    };
    let by_ratio = usize::try_from((raw.len() as u64).saturating_mul(limits.max_decode_ratio))
        .unwrap_or(usize::MAX);
    if by_ratio < limits.cap {
        budget = (by_ratio, TruncatedBy::DecodeRatio);
    }
    let bytes = match encoding.and_then(|e| decode(&raw, e, budget.0)) {
        Some((out, coding, cut)) => {
            decoded_from = Some(coding);
            if out.len() >= budget.0 && cut {
                truncated_by = Some(budget.1);
            } else if cut {
                truncated_by.get_or_insert(TruncatedBy::CaptureCap);
            }
            out
        }
        None => {
            budget = (limits.cap, TruncatedBy::CaptureCap);
            raw
        }
    };
    let mut body = Body {
        size,
        decoded_from,
        truncated: truncated_by.is_some(),
        truncated_by,
        ..Body::default()
    };
    if bytes.is_empty() || is_sse {
        return (body, bytes, None, budget);
    }
    // JSON is UTF-8 (RFC 8259): anything else is logged base64 (and not scanned for secrets).
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let mut bytes = e.into_bytes();
            // Base64 writes 4 bytes for every 3.
            let fits = budget.0 / 4 * 3;
            if bytes.len() > fits {
                bytes.truncate(fits);
                cut_by(&mut body, budget.1);
            }
            body.base64 = Some(base64::engine::general_purpose::STANDARD.encode(&bytes));
            return (body, Vec::new(), None, budget);
        }
    };
    match json_body(text) {
        Ok((raw, summary)) => {
            // Written verbatim: its length is what it takes in the log.
            body.json = redacted_raw(raw, redactor);
            (body, Vec::new(), summary, budget)
        }
        Err(mut text) => {
            let fits = escaped_prefix(&text, budget.0);
            if fits < text.len() {
                text.truncate(fits);
                cut_by(&mut body, budget.1);
            }
            body.text = Some(redactor.text(text));
            (body, Vec::new(), None, budget)
        }
    }
}

/// How many of `events` fit in `budget` bytes as written (an upper bound per event: its data
/// escaped, its name, and the fields around them).
fn events_within(events: &[sse::Event], budget: usize) -> usize {
    let mut used = 0usize;
    for (i, e) in events.iter().enumerate() {
        used += escaped_len(&e.data) + e.event.len() + 48;
        if used > budget {
            return i;
        }
    }
    events.len()
}

/// Marks `body` as a prefix cut by `why` (the first limit that cut it stays).
fn cut_by(body: &mut Body, why: TruncatedBy) {
    body.truncated = true;
    body.truncated_by.get_or_insert(why);
}

/// Bytes `c` takes in a JSON string as serde_json writes it.
fn escaped_cost(c: u8) -> usize {
    match c {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        0..=0x1f => 6,
        _ => 1,
    }
}

/// Bytes `text` takes as a JSON string's content, escaped.
pub fn escaped_len(text: &str) -> usize {
    text.bytes().map(escaped_cost).sum()
}

/// The length of the longest prefix of `text` (ending on a character boundary) whose escaped
/// form takes at most `budget` bytes.
fn escaped_prefix(text: &str, budget: usize) -> usize {
    if text.len().saturating_mul(6) <= budget {
        return text.len();
    }
    let mut used = 0;
    for (i, c) in text.bytes().enumerate() {
        used += escaped_cost(c);
        if used > budget {
            let mut end = i;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return end;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn secrets_are_redacted() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("sk-ant-secret"));
        h.insert("authorization", HeaderValue::from_static("Bearer secret"));
        h.append("set-cookie", HeaderValue::from_static("a=1"));
        h.append("set-cookie", HeaderValue::from_static("b=2"));
        h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        let r = redact(&h, &Redactor::default());
        assert_eq!(r["x-api-key"], REDACTED);
        assert_eq!(r["authorization"], REDACTED);
        assert_eq!(r["set-cookie"], REDACTED);
        assert_eq!(r["anthropic-version"], "2023-06-01");
    }

    #[test]
    fn usage_keeps_what_the_bill_depends_on() {
        let u: Value = serde_json::from_str(
            r#"{"input_tokens": 23000, "output_tokens": 1000, "speed": "fast", "inference_geo": "us",
                "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
                "iterations": [{"type": "compaction", "input_tokens": 180000, "output_tokens": 3500},
                               {"type": "message", "input_tokens": 23000, "output_tokens": 1000,
                                "cache_creation": {"ephemeral_1h_input_tokens": 0}}]}"#,
        )
        .unwrap();
        let usage = usage_of(&u).unwrap();
        assert_eq!(usage.speed.as_deref(), Some("fast"));
        assert_eq!(usage.inference_geo.as_deref(), Some("us"));
        let tools = usage.server_tool_use.as_ref().unwrap();
        assert_eq!(
            (tools.web_search_requests, tools.web_fetch_requests),
            (Some(2), Some(1))
        );
        let steps = usage.iterations.as_ref().unwrap();
        assert_eq!(steps[0].kind.as_deref(), Some("compaction"));
        assert_eq!(steps[0].input_tokens, Some(180_000));
        assert!(steps[1].cache_creation.is_some());
        // Written and read back unchanged, as the shipper and the viewer read it.
        let back: Usage = serde_json::from_str(&serde_json::to_string(&usage).unwrap()).unwrap();
        assert_eq!(back, usage);
    }

    #[test]
    fn session_comes_from_either_user_id_form() {
        let v = serde_json::json!({"user_id": "user_abc_account_x_session_1234-5678"});
        assert_eq!(session_from_metadata(&v).as_deref(), Some("1234-5678"));
        let v = serde_json::json!({"user_id": "{\"device_id\":\"d\",\"session_id\":\"s-1\"}"});
        assert_eq!(session_from_metadata(&v).as_deref(), Some("s-1"));
    }

    #[test]
    fn multi_line_json_is_compacted_other_json_kept_verbatim() {
        let raw = |text: &str| json_body(text.to_string()).map(|(raw, _)| raw.get().to_string());
        assert_eq!(raw("{\"a\": 1.50}").unwrap(), "{\"a\": 1.50}");
        assert_eq!(raw(" [1, 2]\n").unwrap(), "[1, 2]");
        assert_eq!(raw("\t{\"a\": [1]} ").unwrap(), "{\"a\": [1]}");
        assert_eq!(raw("{\n \"a\": 1\n}").unwrap(), "{\"a\":1}");
        assert_eq!(raw("not json").unwrap_err(), "not json");
        // Not an object, or an object the summary cannot read: still JSON, kept verbatim.
        assert_eq!(
            raw("{\"model\": 1, \"model\": 2}").unwrap(),
            "{\"model\": 1, \"model\": 2}"
        );
        assert_eq!(raw("{\"usage\": 1e400}").unwrap(), "{\"usage\": 1e400}");
    }
}
