//! Turns a captured exchange into a traffic record: headers redacted, bodies decoded and
//! classified (JSON verbatim, text, or base64), SSE events parsed and the message rebuilt,
//! summary fields (model, session, usage, stop reason) lifted out.

use crate::capture::Capture;
use crate::decode::decode;
use crate::exchange::Exchange;
use crate::sse;
use base64::Engine;
use http::HeaderMap;
use serde_json::Value;
use serde_json::value::RawValue;
use std::time::SystemTime;
use traffic_record::{
    Body, CacheCreation, Headers, KIND, REDACTED, Request, Response, SCHEMA_VERSION,
    SECRET_HEADERS, Sse, SseEvent, TrafficRecord, Usage,
};

/// The record of `exchange`; `cap` bounds decoded output as it bounds captures.
pub fn build(exchange: &Exchange, cap: usize) -> TrafficRecord {
    let (request_body, _, request_summary) = body_of(
        &exchange.request_body,
        &exchange.request_headers,
        cap,
        false,
    );

    let mut model = None;
    let mut stop_reason = None;
    let mut usage = None;
    let mut error = exchange.error.clone();

    let response = exchange.response.as_ref().map(|head| {
        let is_sse = header(&head.headers, "content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
        let (body, decoded, body_summary) =
            body_of(&exchange.response_body, &head.headers, cap, is_sse);
        let mut sse_part = None;
        let message: Option<Summary> = if is_sse {
            // Uncompressed, the chunks are the events' bytes as they arrived: each event gets
            // the arrival time of the chunk that completed it.
            let (events, times): (Vec<sse::Event>, Vec<Option<f64>>) =
                if body.decoded_from.is_none() {
                    let arrived = exchange.response_body.arrived();
                    sse::parse_chunks(exchange.response_body.chunks())
                        .into_iter()
                        .map(|(e, i)| (e, arrived.get(i).map(|d| millis(*d))))
                        .unzip()
                } else {
                    sse::parse(&decoded).into_iter().map(|e| (e, None)).unzip()
                };
            let rebuilt = sse::reassemble(&events);
            if error.is_none() {
                error = rebuilt
                    .error
                    .map(|e| format!("error event in the stream: {e}"));
            }
            let message_raw = rebuilt.message.as_ref().and_then(to_raw);
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
            headers: redact(&head.headers),
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
        session_id,
        model,
        stream,
        stop_reason,
        usage,
        request: Request {
            method: exchange.method.to_string(),
            path: exchange.path.clone(),
            query: exchange.query.clone(),
            headers: redact(&exchange.request_headers),
            body: request_body,
        },
        response,
    }
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

/// Header map for the log: names lowercase, repeats joined with ", ", secrets redacted.
pub fn redact(headers: &HeaderMap) -> Headers {
    let mut out = Headers::new();
    for (name, value) in headers {
        let name = name.as_str();
        let value = if SECRET_HEADERS.contains(&name) {
            REDACTED.to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
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
    let usage = Usage {
        input_tokens: field("input_tokens"),
        output_tokens: field("output_tokens"),
        cache_creation_input_tokens: field("cache_creation_input_tokens"),
        cache_read_input_tokens: field("cache_read_input_tokens"),
        cache_creation: u.get("cache_creation").map(|c| {
            let field = |name: &str| c.get(name).and_then(Value::as_u64);
            CacheCreation {
                ephemeral_5m_input_tokens: field("ephemeral_5m_input_tokens"),
                ephemeral_1h_input_tokens: field("ephemeral_1h_input_tokens"),
            }
        }),
    };
    (usage != Usage::default()).then_some(usage)
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
///
/// The text is parsed once: a second parse, as `RawValue::from_string` makes, cost the writer
/// ~20% more CPU per record for a 50 KB body full of escapes, as Claude Code's are
/// (docs/performance-history.md).
#[allow(unsafe_code)]
fn json_body(text: String) -> Result<(Box<RawValue>, Option<Summary>), String> {
    // Reading the summary parses the whole text (unknown fields are skipped, but checked), so
    // a body is parsed once for both; only a JSON body that is not an object needs a parse of
    // its own.
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
    // SAFETY: `from_string_unchecked` needs one well-formed JSON value without surrounding
    // whitespace: serde_json parsed all of it above (the parse `from_string` would repeat;
    // debug builds, the tests', still repeat it) and the whitespace around it is trimmed.
    let raw = unsafe { RawValue::from_string_unchecked(json) };
    Ok((raw, summary))
}

/// The body for the log, the decoded bytes of an SSE body (for parsing), and the summary
/// fields of a JSON object body.
fn body_of(
    capture: &Capture,
    headers: &HeaderMap,
    cap: usize,
    is_sse: bool,
) -> (Body, Vec<u8>, Option<Summary>) {
    let size = capture.size;
    let mut truncated = capture.truncated;
    let raw = capture.to_bytes();
    let mut decoded_from = None;
    let bytes = match header(headers, "content-encoding").and_then(|e| decode(&raw, e, cap)) {
        Some((out, coding, cut)) => {
            decoded_from = Some(coding);
            truncated |= cut;
            out
        }
        None => raw,
    };
    let mut body = Body {
        size,
        decoded_from,
        truncated,
        ..Body::default()
    };
    if bytes.is_empty() || is_sse {
        return (body, bytes, None);
    }
    // JSON is UTF-8 (RFC 8259): anything else is logged base64.
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            body.base64 = Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()));
            return (body, Vec::new(), None);
        }
    };
    match json_body(text) {
        Ok((raw, summary)) => {
            body.json = Some(raw);
            (body, Vec::new(), summary)
        }
        Err(text) => {
            body.text = Some(text);
            (body, Vec::new(), None)
        }
    }
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
        let r = redact(&h);
        assert_eq!(r["x-api-key"], REDACTED);
        assert_eq!(r["authorization"], REDACTED);
        assert_eq!(r["set-cookie"], REDACTED);
        assert_eq!(r["anthropic-version"], "2023-06-01");
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
