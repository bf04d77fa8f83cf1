//! Turning one line of the traffic log into OTLP LogRecords for Seq: a short human message
//! with semantic-convention attributes per exchange, plus the full bodies, verbatim, split
//! into ordered parts under the per-event budget when they do not fit in the main event.
//! Lines that are not traffic records become plain string messages. See docs/seq-events.md.
//!
//! Bodies are never parsed into trees: the record is read with borrowed `RawValue`s, so a
//! body's JSON text goes into the event byte for byte as it is in the line.

use crate::event::{Attr, Event, Value};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use traffic_record::Usage;

/// OTLP severity numbers (logs data model).
pub const SEVERITY_INFO: i32 = 9;
pub const SEVERITY_WARN: i32 = 13;
pub const SEVERITY_ERROR: i32 = 17;

/// Room reserved in a part event for its own attributes and the envelope.
const PART_OVERHEAD: usize = 1_024;

/// The bodies of a record, named by their JSON path in the record.
pub const BODY_NAMES: [&str; 3] = ["request.body", "response.body", "response.sse"];

#[derive(Deserialize)]
struct RecordView<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    started_at: Cow<'a, str>,
    #[serde(default)]
    duration_ms: Option<f64>,
    #[serde(default)]
    ttfb_ms: Option<f64>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: bool,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow)]
    request: RequestView<'a>,
    #[serde(borrow, default)]
    response: Option<ResponseView<'a>>,
}

#[derive(Deserialize)]
struct RequestView<'a> {
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    path: Cow<'a, str>,
    #[serde(borrow, default)]
    query: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    headers: BTreeMap<Str<'a>, Str<'a>>,
    #[serde(borrow)]
    body: &'a RawValue,
}

#[derive(Deserialize)]
struct ResponseView<'a> {
    status: u16,
    #[serde(borrow, default)]
    headers: BTreeMap<Str<'a>, Str<'a>>,
    #[serde(borrow)]
    body: &'a RawValue,
    #[serde(borrow, default)]
    sse: Option<&'a RawValue>,
}

/// A string borrowed from the line when it has no escapes (serde's `Cow<str>` always copies).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// What the encoder needs from a captured body, read without scanning all of it: its `size`
/// and, for a JSON request, its `model`. Reading stops as soon as both are known (the proxy
/// writes `size` first; requests usually start with `model`), so a multi-megabyte body is not
/// parsed a second time.
#[derive(Debug, Default, PartialEq)]
struct BodyPeek {
    size: Option<u64>,
    model: Option<String>,
}

fn peek_body(raw: &str, want_model: bool) -> BodyPeek {
    use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, Visitor};
    use std::cell::RefCell;
    use std::fmt;
    // Returned as an error to stop reading early; the result is in `out` by then.
    const STOP: &str = "stop";

    struct BodyV<'p> {
        out: &'p RefCell<BodyPeek>,
        want_model: bool,
    }
    impl<'de> Visitor<'de> for BodyV<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a body object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Str<'de>>()? {
                match key.0.as_ref() {
                    "size" => {
                        self.out.borrow_mut().size = Some(map.next_value()?);
                        if !self.want_model {
                            return Err(A::Error::custom(STOP));
                        }
                    }
                    "json" if self.want_model => {
                        map.next_value_seed(ModelSeed(self.out))?;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }
    struct ModelSeed<'p>(&'p RefCell<BodyPeek>);
    impl<'de> DeserializeSeed<'de> for ModelSeed<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(ModelV(self.0))
        }
    }
    struct ModelV<'p>(&'p RefCell<BodyPeek>);
    impl<'de> Visitor<'de> for ModelV<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Str<'de>>()? {
                if key.0 == "model" {
                    let model: Str<'de> = map.next_value()?;
                    self.0.borrow_mut().model = Some(model.0.into_owned());
                    return Err(A::Error::custom(STOP));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let out = RefCell::new(BodyPeek::default());
    let mut de = serde_json::Deserializer::from_str(raw);
    let _ = de.deserialize_map(BodyV {
        out: &out,
        want_model,
    });
    out.into_inner()
}

/// Encodes lines; holds the per-event budget.
#[derive(Debug, Clone)]
pub struct Encoder {
    event_max_bytes: usize,
}

impl Encoder {
    pub fn new(event_max_bytes: usize) -> Self {
        Encoder { event_max_bytes }
    }

    /// Hands the events of one line (without its newline) to `out`, in order: the main event
    /// first, then the body parts, one at a time, so a huge body is never held twice.
    pub fn encode_line(&self, line: &[u8], observed_ns: u64, out: &mut dyn FnMut(Event<'_>)) {
        match serde_json::from_slice::<RecordView<'_>>(line) {
            Ok(rec) if rec.kind == traffic_record::KIND => {
                self.encode_record(&rec, observed_ns, out)
            }
            _ => self.encode_plain(line, observed_ns, out),
        }
    }

    fn encode_plain(&self, line: &[u8], observed_ns: u64, out: &mut dyn FnMut(Event<'_>)) {
        let text = String::from_utf8_lossy(line);
        let budget = self.event_max_bytes - PART_OVERHEAD;
        if escaped_len(&text) <= budget {
            out(Event {
                observed_time_unix_nano: observed_ns,
                severity_number: SEVERITY_INFO,
                severity_text: "INFO",
                body: text,
                ..Default::default()
            });
            return;
        }
        // A huge line that is not a record: parts correlated by a random trace id.
        let trace_id: [u8; 16] = rand::random();
        let parts = split_parts(&text, budget);
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            out(Event {
                observed_time_unix_nano: observed_ns,
                severity_number: SEVERITY_INFO,
                severity_text: "INFO",
                body: part.into(),
                trace_id: &trace_id,
                attributes: vec![
                    Attr::str("claude.body.name", "line"),
                    Attr::int("claude.body.part", i as i64 + 1),
                    Attr::int("claude.body.parts", count as i64),
                ],
                ..Default::default()
            });
        }
    }

    fn encode_record(
        &self,
        rec: &RecordView<'_>,
        observed_ns: u64,
        out: &mut dyn FnMut(Event<'_>),
    ) {
        let time_ns = parse_time_ns(&rec.started_at).unwrap_or(0);
        let trace_id_bytes = hex16(&rec.id);
        let trace_id: &[u8] = trace_id_bytes.as_ref().map_or(&[], |b| b.as_slice());
        let status = rec.response.as_ref().map(|r| r.status);
        let complete = rec.outcome == "complete";
        let (severity, severity_text) = match status {
            _ if !complete => (SEVERITY_ERROR, "ERROR"),
            Some(s) if s >= 500 => (SEVERITY_ERROR, "ERROR"),
            Some(s) if s >= 400 => (SEVERITY_WARN, "WARN"),
            _ => (SEVERITY_INFO, "INFO"),
        };

        let req_peek = peek_body(rec.request.body.get(), true);
        let request_model = req_peek.model;

        let mut attrs: Vec<Attr<'_>> = Vec::with_capacity(32);
        attrs.push(Attr::str(
            "http.request.method",
            rec.request.method.as_ref(),
        ));
        attrs.push(Attr::str("url.path", rec.request.path.as_ref()));
        if let Some(q) = &rec.request.query {
            attrs.push(Attr::str("url.query", q.as_ref()));
        }
        if let Some(s) = status {
            attrs.push(Attr::int("http.response.status_code", s.into()));
        }
        attrs.push(Attr::str("gen_ai.system", "anthropic"));
        attrs.push(Attr::str("gen_ai.provider.name", "anthropic"));
        if rec.request.path == "/v1/messages" {
            attrs.push(Attr::str("gen_ai.operation.name", "chat"));
        }
        if let Some(m) = request_model.as_deref().or(rec.model.as_deref()) {
            attrs.push(Attr::str("gen_ai.request.model", m));
        }
        if rec.response.is_some()
            && let Some(m) = &rec.model
        {
            attrs.push(Attr::str("gen_ai.response.model", m.as_ref()));
        }
        if let Some(u) = &rec.usage {
            let tokens = [
                ("gen_ai.usage.input_tokens", u.input_tokens),
                ("gen_ai.usage.output_tokens", u.output_tokens),
                (
                    "gen_ai.usage.cache_creation_input_tokens",
                    u.cache_creation_input_tokens,
                ),
                (
                    "gen_ai.usage.cache_read_input_tokens",
                    u.cache_read_input_tokens,
                ),
            ];
            for (k, v) in tokens {
                if let Some(v) = v {
                    attrs.push(Attr::int(k, v as i64));
                }
            }
        }
        if let Some(r) = &rec.stop_reason {
            attrs.push(Attr {
                key: "gen_ai.response.finish_reasons".into(),
                value: Value::StrArray(vec![r.as_ref().into()]),
            });
        }
        if let Some(s) = &rec.session_id {
            attrs.push(Attr::str("session.id", s.as_ref()));
        }
        attrs.push(Attr::str("claude.exchange.id", rec.id.as_ref()));
        attrs.push(Attr::str("claude.outcome", rec.outcome.as_ref()));
        if let Some(e) = &rec.error {
            attrs.push(Attr::str("claude.error", e.as_ref()));
            attrs.push(Attr::str("error.type", rec.outcome.as_ref()));
        } else if let Some(s) = status.filter(|s| *s >= 400) {
            attrs.push(Attr::str("error.type", s.to_string()));
        }
        if let Some(d) = rec.duration_ms {
            attrs.push(Attr::double("claude.duration_ms", d));
        }
        if let Some(t) = rec.ttfb_ms {
            attrs.push(Attr::double("claude.ttfb_ms", t));
        }
        attrs.push(Attr::bool("claude.stream", rec.stream));
        if let Some(size) = req_peek.size {
            attrs.push(Attr::int("http.request.body.size", size as i64));
        }
        if let Some(resp) = &rec.response
            && let Some(size) = peek_body(resp.body.get(), false).size
        {
            attrs.push(Attr::int("http.response.body.size", size as i64));
        }
        for (name, value) in &rec.request.headers {
            attrs.push(Attr::str(
                format!("http.request.header.{}", name.0),
                value.0.as_ref(),
            ));
        }
        if let Some(resp) = &rec.response {
            for (name, value) in &resp.headers {
                attrs.push(Attr::str(
                    format!("http.response.header.{}", name.0),
                    value.0.as_ref(),
                ));
            }
        }

        let message = summary(rec, status, request_model.as_deref());
        let bodies: Vec<(&str, &str)> = [
            Some(("request.body", rec.request.body.get())),
            rec.response
                .as_ref()
                .map(|r| ("response.body", r.body.get())),
            rec.response
                .as_ref()
                .and_then(|r| r.sse)
                .map(|s| ("response.sse", s.get())),
        ]
        .into_iter()
        .flatten()
        .collect();

        let base = Event {
            time_unix_nano: time_ns,
            observed_time_unix_nano: observed_ns,
            severity_number: severity,
            severity_text,
            trace_id,
            ..Default::default()
        };

        // Bodies go inline (as attributes of the main event) while the event stays within
        // the budget, smallest first, so a small exchange reads in one event and a large one
        // keeps its small bodies inline; the others go to ordered part events.
        let mut size = escaped_len(&message) + attrs_size(&attrs) + PART_OVERHEAD;
        let mut by_size: Vec<(usize, usize)> = bodies
            .iter()
            .enumerate()
            .map(|(i, (name, text))| (escaped_len(text) + name.len() + 16, i))
            .collect();
        by_size.sort_unstable();
        let mut inline = [false; 3];
        for (body_size, i) in by_size {
            if size + body_size <= self.event_max_bytes {
                size += body_size;
                inline[i] = true;
            }
        }
        let budget = self.event_max_bytes - PART_OVERHEAD;
        let mut split: Vec<(&str, Vec<&str>)> = Vec::new();
        for (i, (name, text)) in bodies.iter().enumerate() {
            if inline[i] {
                attrs.push(Attr::str(format!("claude.{name}"), *text));
            } else {
                let parts = split_parts(text, budget);
                attrs.push(Attr::int(
                    format!("claude.{name}.parts"),
                    parts.len() as i64,
                ));
                split.push((name, parts));
            }
        }
        out(Event {
            body: message.into(),
            attributes: attrs,
            ..base.clone()
        });
        for (name, parts) in split {
            let count = parts.len() as i64;
            for (i, part) in parts.into_iter().enumerate() {
                out(Event {
                    body: part.into(),
                    attributes: vec![
                        Attr::str("claude.exchange.id", rec.id.as_ref()),
                        Attr::str("claude.body.name", name),
                        Attr::int("claude.body.part", i as i64 + 1),
                        Attr::int("claude.body.parts", count),
                    ],
                    ..base.clone()
                });
            }
        }
    }
}

/// `POST /v1/messages 200 claude-sonnet-4 2.3s in=12345 out=456` (+ the outcome when it is
/// not `complete`).
fn summary(rec: &RecordView<'_>, status: Option<u16>, request_model: Option<&str>) -> String {
    use std::fmt::Write;
    let mut s = format!("{} {}", rec.request.method, rec.request.path);
    match status {
        Some(code) => {
            let _ = write!(s, " {code}");
        }
        None => s.push_str(" -"),
    }
    if let Some(m) = rec.model.as_deref().or(request_model) {
        let _ = write!(s, " {m}");
    }
    if let Some(d) = rec.duration_ms {
        if d >= 1000.0 {
            let _ = write!(s, " {:.1}s", d / 1000.0);
        } else {
            let _ = write!(s, " {}ms", d.round() as u64);
        }
    }
    if let Some(u) = &rec.usage {
        if let Some(i) = u.input_tokens {
            let _ = write!(s, " in={i}");
        }
        if let Some(o) = u.output_tokens {
            let _ = write!(s, " out={o}");
        }
    }
    if rec.outcome != "complete" {
        let _ = write!(s, " {}", rec.outcome);
    }
    s
}

fn attrs_size(attrs: &[Attr<'_>]) -> usize {
    attrs
        .iter()
        .map(|a| {
            let v = match &a.value {
                Value::Str(s) => escaped_len(s),
                Value::StrArray(items) => items.iter().map(|s| escaped_len(s) + 3).sum(),
                _ => 24,
            };
            a.key.len() + v + 8
        })
        .sum()
}

/// Bytes one byte of a string may cost once the string is written as JSON by the receiver:
/// `"` `\\` and the short control escapes 2, other control characters 6 (`\u00XX`), and
/// every byte of a non-ASCII character 3, the worst case of `\uXXXX` escaping (a 2-byte
/// character becomes 6 bytes, a 4-byte one a 12-byte surrogate pair). Branch-free so the sum
/// vectorizes.
#[inline]
fn byte_cost(b: u8) -> usize {
    let quote = usize::from(b == b'"') | usize::from(b == b'\\');
    let ctrl = usize::from(b < 0x20) | usize::from(b == 0x7f);
    let short = usize::from(b == 8)
        | usize::from(b == 9)
        | usize::from(b == 10)
        | usize::from(b == 12)
        | usize::from(b == 13);
    let high = usize::from(b >= 0x80);
    1 + quote + short + 5 * (ctrl - short) + 2 * high
}

/// Upper bound of the length of `s` once escaped as a JSON string (without quotes).
pub fn escaped_len(s: &str) -> usize {
    s.bytes().map(byte_cost).sum()
}

/// Splits `s` into consecutive parts whose [`escaped_len`] is at most `budget`, cutting only
/// on character boundaries. Concatenating the parts gives `s` back exactly.
pub fn split_parts(s: &str, budget: usize) -> Vec<&str> {
    assert!(budget >= 12, "a part must hold any one character");
    if s.len().saturating_mul(6) <= budget {
        return vec![s];
    }
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut cost, mut i) = (0, 0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        let len = match b {
            0..=0x7f => 1,
            0xf0..=0xff => 4,
            0xe0..=0xef => 3,
            _ => 2,
        };
        let c = if len == 1 { byte_cost(b) } else { 3 * len };
        if cost + c > budget && i > start {
            parts.push(&s[start..i]);
            start = i;
            cost = 0;
        }
        cost += c;
        i += len;
    }
    if start < bytes.len() || parts.is_empty() {
        parts.push(&s[start..]);
    }
    parts
}

/// RFC 3339 → Unix nanoseconds.
pub fn parse_time_ns(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_nanos()).ok()
}

/// 32 hex digits → 16 bytes (the exchange id as an OpenTelemetry trace id).
pub fn hex16(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use prost::Message;

    /// What the receiver decodes from an event (through the hand encoding).
    fn decoded(e: &Event<'_>) -> LogRecord {
        let mut buf = Vec::new();
        e.encode(&mut buf);
        LogRecord::decode(buf.as_slice()).unwrap()
    }

    fn kv_size(attrs: &[KeyValue]) -> usize {
        attrs
            .iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => escaped_len(s),
                    _ => 24,
                };
                kv.key.len() + v + 8
            })
            .sum()
    }

    fn attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a Value> {
        r.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn attr_str<'a>(r: &'a LogRecord, key: &str) -> Option<&'a str> {
        match attr(r, key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    fn attr_int(r: &LogRecord, key: &str) -> Option<i64> {
        match attr(r, key) {
            Some(Value::IntValue(i)) => Some(*i),
            _ => None,
        }
    }

    fn body(r: &LogRecord) -> &str {
        match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(Value::StringValue(s)) => s,
            _ => panic!("string body"),
        }
    }

    fn record_line(request_body_json: &str) -> String {
        format!(
            r#"{{"v":1,"kind":"claude_api_exchange","id":"0123456789abcdef0123456789abcdef","started_at":"2026-11-27T10:00:00.5Z","ended_at":"2026-11-27T10:00:02.8Z","duration_ms":2300.0,"ttfb_ms":410.5,"outcome":"complete","session_id":"sess-1","model":"claude-sonnet-4-20250514","stream":true,"stop_reason":"end_turn","usage":{{"input_tokens":12345,"output_tokens":456,"cache_read_input_tokens":7}},"request":{{"method":"POST","path":"/v1/messages","query":"beta=true","headers":{{"x-api-key":"[REDACTED]","user-agent":"claude-cli"}},"body":{{"size":{},"json":{}}}}},"response":{{"status":200,"headers":{{"request-id":"req_1"}},"body":{{"size":40}},"sse":{{"events":[{{"event":"ping","data":{{"type":"ping"}}}}],"message":{{"role":"assistant"}}}}}}}}"#,
            request_body_json.len(),
            request_body_json
        )
    }

    /// The raw JSON text of `request.body`, `response.body`, `response.sse` in a line.
    fn raw_bodies(line: &str) -> Vec<(String, String)> {
        let v: RecordView<'_> = serde_json::from_str(line).unwrap();
        let resp = v.response.unwrap();
        vec![
            ("request.body".into(), v.request.body.get().to_string()),
            ("response.body".into(), resp.body.get().to_string()),
            ("response.sse".into(), resp.sse.unwrap().get().to_string()),
        ]
    }

    /// Rebuilds each body from events: inline attribute or ordered parts.
    fn reassemble(events: &[LogRecord]) -> Vec<(String, String)> {
        let main = &events[0];
        BODY_NAMES
            .iter()
            .map(|name| {
                if let Some(inline) = attr_str(main, &format!("claude.{name}")) {
                    return (name.to_string(), inline.to_string());
                }
                let mut parts: Vec<(i64, &str)> = events[1..]
                    .iter()
                    .filter(|e| attr_str(e, "claude.body.name") == Some(name))
                    .map(|e| (attr_int(e, "claude.body.part").unwrap(), body(e)))
                    .collect();
                parts.sort_by_key(|p| p.0);
                let count = attr_int(main, &format!("claude.{name}.parts")).unwrap();
                assert_eq!(parts.len() as i64, count);
                (name.to_string(), parts.iter().map(|p| p.1).collect())
            })
            .collect()
    }

    #[test]
    fn a_small_exchange_is_one_event_with_its_bodies_inline() {
        let line = record_line(
            r#"{"model":"claude-sonnet-4","messages":[{"role":"user","content":"hi \"there\""}]}"#,
        );
        let mut out = Vec::new();
        Encoder::new(200_000).encode_line(line.as_bytes(), 42, &mut |e| out.push(decoded(&e)));
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(
            body(e),
            "POST /v1/messages 200 claude-sonnet-4-20250514 2.3s in=12345 out=456"
        );
        assert_eq!(attr_str(e, "http.request.method"), Some("POST"));
        assert_eq!(attr_str(e, "url.path"), Some("/v1/messages"));
        assert_eq!(attr_str(e, "url.query"), Some("beta=true"));
        assert_eq!(attr_int(e, "http.response.status_code"), Some(200));
        assert_eq!(attr_str(e, "gen_ai.request.model"), Some("claude-sonnet-4"));
        assert_eq!(attr_str(e, "gen_ai.operation.name"), Some("chat"));
        assert_eq!(
            attr_str(e, "gen_ai.response.model"),
            Some("claude-sonnet-4-20250514")
        );
        assert_eq!(attr_int(e, "gen_ai.usage.input_tokens"), Some(12345));
        assert_eq!(attr_int(e, "gen_ai.usage.cache_read_input_tokens"), Some(7));
        assert_eq!(attr(e, "gen_ai.usage.cache_creation_input_tokens"), None);
        assert_eq!(attr_str(e, "session.id"), Some("sess-1"));
        assert_eq!(attr_str(e, "claude.outcome"), Some("complete"));
        assert_eq!(
            attr_str(e, "http.request.header.x-api-key"),
            Some("[REDACTED]")
        );
        assert_eq!(
            attr_str(e, "http.response.header.request-id"),
            Some("req_1")
        );
        assert!(
            matches!(attr(e, "claude.duration_ms"), Some(Value::DoubleValue(d)) if *d == 2300.0)
        );
        assert_eq!(e.severity_number, SEVERITY_INFO);
        assert_eq!(
            e.trace_id,
            hex16("0123456789abcdef0123456789abcdef").unwrap()
        );
        assert_eq!(e.time_unix_nano, 1_795_773_600_500_000_000);
        assert_eq!(e.observed_time_unix_nano, 42);
        assert_eq!(reassemble(&out), raw_bodies(&line));
    }

    #[test]
    fn large_bodies_split_into_parts_that_reassemble_byte_identical() {
        // Multi-byte characters and escapes throughout, so cuts land everywhere.
        let chunk = r#"{"t":"é—🦀 \"q\" \\ \n"},"#;
        let mut content = String::from("[");
        while content.len() < 1_500_000 {
            content.push_str(chunk);
        }
        content.push_str("0]");
        let line = record_line(&format!(r#"{{"model":"m","messages":{content}}}"#));
        let mut out = Vec::new();
        let max = 50_000;
        Encoder::new(max).encode_line(line.as_bytes(), 0, &mut |e| out.push(decoded(&e)));
        assert!(out.len() > 30, "{}", out.len());
        for e in &out {
            let size = escaped_len(body(e)) + kv_size(&e.attributes);
            assert!(size <= max, "event of {size} escaped bytes");
            assert_eq!(e.trace_id, out[0].trace_id);
        }
        assert_eq!(attr_str(&out[0], "claude.request.body"), None);
        // The small response bodies stay inline on the main event.
        assert!(attr_str(&out[0], "claude.response.body").is_some());
        assert!(attr_str(&out[0], "claude.response.sse").is_some());
        assert_eq!(reassemble(&out), raw_bodies(&line));
    }

    #[test]
    fn failed_outcomes_and_error_statuses_set_severity() {
        let line = record_line("{}").replace(
            r#""outcome":"complete""#,
            r#""outcome":"upstream_aborted","error":"cut""#,
        );
        let mut out = Vec::new();
        Encoder::new(200_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(decoded(&e)));
        assert_eq!(out[0].severity_number, SEVERITY_ERROR);
        assert!(body(&out[0]).ends_with(" upstream_aborted"));
        assert_eq!(attr_str(&out[0], "claude.error"), Some("cut"));
        let line = record_line("{}").replace(r#""status":200"#, r#""status":429"#);
        out.clear();
        Encoder::new(200_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(decoded(&e)));
        assert_eq!(out[0].severity_number, SEVERITY_WARN);
    }

    #[test]
    fn lines_that_are_not_records_are_plain_strings() {
        let mut out = Vec::new();
        let enc = Encoder::new(200_000);
        enc.encode_line(b"not json at all", 0, &mut |e| out.push(decoded(&e)));
        enc.encode_line(br#"{"kind":"something_else"}"#, 0, &mut |e| {
            out.push(decoded(&e))
        });
        enc.encode_line(b"bad \xff\xfe utf8", 0, &mut |e| out.push(decoded(&e)));
        enc.encode_line(b"", 0, &mut |e| out.push(decoded(&e)));
        assert_eq!(out.len(), 4);
        assert_eq!(body(&out[0]), "not json at all");
        assert_eq!(body(&out[1]), r#"{"kind":"something_else"}"#);
        assert_eq!(body(&out[2]), "bad \u{fffd}\u{fffd} utf8");
        assert_eq!(body(&out[3]), "");
        assert!(out.iter().all(|e| e.attributes.is_empty()));
    }

    #[test]
    fn a_huge_plain_line_is_split_too() {
        let line = "z".repeat(100_000);
        let mut out = Vec::new();
        Encoder::new(20_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(decoded(&e)));
        assert!(out.len() >= 5);
        let joined: String = out.iter().map(body).collect();
        assert_eq!(joined, line);
        assert!(out.iter().all(|e| e.trace_id == out[0].trace_id));
    }

    #[test]
    fn body_peek_finds_size_and_model_wherever_they_are() {
        let p = peek_body(
            r#"{"size":12,"json":{"model":"m1","messages":[1,2]}}"#,
            true,
        );
        assert_eq!(
            p,
            BodyPeek {
                size: Some(12),
                model: Some("m1".into())
            }
        );
        let p = peek_body(
            r#"{"size":5,"truncated":true,"json":{"messages":[{"model":"no"}],"model":"m\"2"}}"#,
            true,
        );
        assert_eq!(
            p,
            BodyPeek {
                size: Some(5),
                model: Some("m\"2".into())
            }
        );
        let p = peek_body(r#"{"size":3,"json":[1,2,3]}"#, true);
        assert_eq!(
            p,
            BodyPeek {
                size: Some(3),
                model: None
            }
        );
        let p = peek_body(r#"{"size":3,"text":"model"}"#, true);
        assert_eq!(
            p,
            BodyPeek {
                size: Some(3),
                model: None
            }
        );
        assert_eq!(
            peek_body(r#"{"size":9,"json":{"model":"x"}}"#, false).size,
            Some(9)
        );
        assert_eq!(peek_body("not json", true), BodyPeek::default());
    }

    #[test]
    fn escaped_header_values_are_read() {
        let line = record_line("{}").replace(
            r#""user-agent":"claude-cli""#,
            r#""user-agent":"claude \"cli\" é""#,
        );
        let mut out = Vec::new();
        Encoder::new(200_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(decoded(&e)));
        assert_eq!(
            attr_str(&out[0], "http.request.header.user-agent"),
            Some("claude \"cli\" é")
        );
    }

    #[test]
    fn split_parts_respects_budget_and_char_boundaries() {
        let s = "aé🦀\"\u{1}".repeat(1000);
        for budget in [12, 13, 100, 4096] {
            let parts = split_parts(&s, budget);
            assert_eq!(parts.concat(), s);
            assert!(
                parts
                    .iter()
                    .all(|p| escaped_len(p) <= budget && !p.is_empty())
            );
        }
        assert_eq!(split_parts("", 12), vec![""]);
        assert_eq!(
            escaped_len("a\"\n\u{1}\u{7f}é🦀"),
            1 + 2 + 2 + 6 + 6 + 6 + 12
        );
        assert_eq!(escaped_len("\\\t\r\u{8}\u{c}"), 10);
    }
}
