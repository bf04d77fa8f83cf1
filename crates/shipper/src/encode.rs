//! Turning one line of the traffic log into what Seq receives: per exchange, a span (the
//! GenAI semantic conventions' `chat {model}`) and LogRecords on it — a short human message
//! with the exchange's properties (tokens, cost, quota, timing), the bodies (whole, or as
//! conversation deltas with the system prompt and tools shipped once as context events),
//! split into ordered parts under the per-event budget when they do not fit. Lines that are
//! not traffic records become plain string messages. See docs/seq-events.md.
//!
//! Bodies are never parsed into trees: the record is read with borrowed `RawValue`s, so a
//! body's JSON text goes into the event byte for byte as it is in the line.

use crate::delta::{Context, Conversations};
use crate::ids;
use crate::quota;
use crate::request_body::RequestBody;
use conversation::{Facts, Route, Sessions};
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span::SpanKind, status::StatusCode};
use pricing::PriceTable;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use traffic_record::{Usage, summary, trace_context};

/// OTLP severity numbers (logs data model).
pub const SEVERITY_INFO: i32 = 9;
pub const SEVERITY_WARN: i32 = 13;
pub const SEVERITY_ERROR: i32 = 17;

/// Room reserved in a part event for its own attributes and the envelope.
const PART_OVERHEAD: usize = 1_024;

/// The bodies of a record, named by their JSON path in the record (`response.message` is
/// `response.sse.message`, what `delta` ships instead of the whole `response.sse`).
pub const BODY_NAMES: [&str; 4] = [
    "request.body",
    "response.body",
    "response.sse",
    "response.message",
];

/// What Seq receives of the bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bodies {
    /// Request bodies as conversation deltas, the response as its reassembled message.
    #[default]
    Delta,
    /// Every body whole, as in the log, SSE events included.
    Full,
}

/// How the encoder works; see the shipper's `--bodies`, `--prices`, `--traces-endpoint`.
#[derive(Debug, Clone)]
pub struct Options {
    pub event_max_bytes: usize,
    pub bodies: Bodies,
    /// Build a span per exchange.
    pub spans: bool,
    pub prices: Arc<PriceTable>,
    /// `server.address` of the spans: the API the proxy forwards to.
    pub server_address: String,
    /// Where the session viewer serves exchanges: every event and span of an exchange then
    /// carries `claude.view.url` = `<base>/exchange/<id>`.
    pub view_base_url: Option<String>,
}

impl Options {
    /// The defaults, with this event budget.
    pub fn new(event_max_bytes: usize) -> Self {
        Options {
            event_max_bytes,
            bodies: Bodies::default(),
            spans: true,
            prices: Arc::new(PriceTable::builtin()),
            server_address: DEFAULT_SERVER_ADDRESS.to_string(),
            view_base_url: None,
        }
    }
}

/// Where Claude Code's requests go unless the proxy was pointed elsewhere.
pub const DEFAULT_SERVER_ADDRESS: &str = "api.anthropic.com";

#[derive(Deserialize)]
struct RecordView<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    started_at: Cow<'a, str>,
    #[serde(borrow, default)]
    ended_at: Option<Cow<'a, str>>,
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
    body: RequestBody<'a>,
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
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

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

/// Encodes lines; holds the per-event budget and the records it fills.
///
/// The events are opentelemetry-proto's generated `LogRecord`s. The record handed to `out`
/// and its attributes are reused from event to event: their strings are cleared and refilled,
/// never freed, so once a few lines have gone by an event costs copies into buffers that are
/// already large enough rather than an allocation per attribute.
pub struct Encoder {
    event_max_bytes: usize,
    options: Options,
    record: LogRecord,
    pool: Pool,
    conversations: Conversations,
    /// Who sent each request, by session (`claude.agent`).
    senders: Sessions,
    span: Span,
    has_span: bool,
    /// Exchanges with usage whose model the price table does not know (never guessed).
    pub unpriced: u64,
    /// The models already warned about, so each is named once per run.
    unpriced_models: std::collections::BTreeSet<String>,
}

impl Encoder {
    /// An encoder with the default options ([`Bodies::Delta`], spans, built-in prices).
    pub fn new(event_max_bytes: usize) -> Self {
        Encoder::with_options(Options::new(event_max_bytes))
    }

    pub fn with_options(options: Options) -> Self {
        Encoder {
            event_max_bytes: options.event_max_bytes,
            options,
            record: LogRecord::default(),
            pool: Pool::default(),
            conversations: Conversations::default(),
            senders: Sessions::default(),
            span: Span::default(),
            has_span: false,
            unpriced: 0,
            unpriced_models: Default::default(),
        }
    }

    /// The span of the line last encoded, if it was an exchange (and spans are on).
    pub fn span(&self) -> Option<&Span> {
        self.has_span.then_some(&self.span)
    }

    /// Hands the events of one line (without its newline) to `out`, in order: the main event
    /// first, then the body parts, one at a time, so a huge body is never held twice.
    pub fn encode_line(&mut self, line: &[u8], observed_ns: u64, out: &mut dyn FnMut(&LogRecord)) {
        self.has_span = false;
        // Read as text once, so the parts of a body borrowed from it can be placed in it.
        let record = std::str::from_utf8(line)
            .ok()
            .and_then(|text| Some((text, serde_json::from_str::<RecordView<'_>>(text).ok()?)));
        match record {
            Some((text, rec)) if rec.kind == traffic_record::KIND => {
                self.encode_record(text, &rec, observed_ns, out)
            }
            _ => self.encode_plain(line, observed_ns, out),
        }
    }

    fn encode_plain(&mut self, line: &[u8], observed_ns: u64, out: &mut dyn FnMut(&LogRecord)) {
        let text = String::from_utf8_lossy(line);
        let budget = self.event_max_bytes - PART_OVERHEAD;
        let Encoder {
            record: r, pool, ..
        } = self;
        if escaped_len(&text) <= budget {
            pool.reset(r, 0, observed_ns, SEVERITY_INFO, "INFO", (&[], &[]));
            set_string(any_string(&mut r.body), &text);
            out(r);
            return;
        }
        // A huge line that is not a record: parts correlated by a random trace id.
        let trace_id: [u8; 16] = rand::random();
        let parts = split_parts(&text, budget);
        pool.reset(r, 0, observed_ns, SEVERITY_INFO, "INFO", (&trace_id, &[]));
        pool.str(&mut r.attributes, &["claude.body.name"], "line");
        pool.value(&mut r.attributes, &["claude.body.part"], Value::IntValue(0));
        let count = Value::IntValue(parts.len() as i64);
        pool.value(&mut r.attributes, &["claude.body.parts"], count);
        for (i, part) in parts.into_iter().enumerate() {
            r.attributes[1].value = any(Value::IntValue(i as i64 + 1));
            set_string(any_string(&mut r.body), part);
            out(r);
        }
    }

    fn encode_record<'a>(
        &mut self,
        line: &'a str,
        rec: &RecordView<'a>,
        observed_ns: u64,
        out: &mut dyn FnMut(&LogRecord),
    ) {
        let Encoder {
            event_max_bytes,
            options,
            record: r,
            pool,
            conversations,
            senders,
            span,
            has_span,
            unpriced,
            unpriced_models,
        } = self;
        let event_max_bytes = *event_max_bytes;
        let time_ns = parse_time_ns(&rec.started_at).unwrap_or(0);
        let end_ns = rec
            .ended_at
            .as_deref()
            .and_then(parse_time_ns)
            .unwrap_or(time_ns)
            .max(time_ns);
        let session = rec.session_id.as_deref();
        // Claude Code's own trace when the request carries its `traceparent`: the exchange
        // span then sits under Claude Code's `claude_code.llm_request` span.
        let caller = rec
            .request
            .headers
            .iter()
            .find(|(name, _)| name.0 == "traceparent")
            .and_then(|(_, value)| trace_context::parse(&value.0));
        let trace_id_bytes = match caller {
            Some(c) => Some(c.trace_id),
            None => ids::trace_id(session, &rec.id),
        };
        let trace_id: &[u8] = trace_id_bytes.as_ref().map_or(&[], |b| b.as_slice());
        let span_id_bytes = ids::exchange_span_id(&rec.id);
        let span_id: &[u8] = if trace_id.is_empty() {
            &[]
        } else {
            &span_id_bytes
        };
        let status = rec.response.as_ref().map(|r| r.status);
        let complete = rec.outcome == "complete";
        let (severity, severity_text) = match status {
            _ if !complete => (SEVERITY_ERROR, "ERROR"),
            Some(s) if s >= 500 => (SEVERITY_ERROR, "ERROR"),
            Some(s) if s >= 400 => (SEVERITY_WARN, "WARN"),
            _ => (SEVERITY_INFO, "INFO"),
        };
        let budget = event_max_bytes - PART_OVERHEAD;
        let view_url = options
            .view_base_url
            .as_ref()
            .map(|base| format!("{base}/exchange/{}", rec.id));

        let (request_body, parts) = rec.request.body.place(line);
        let mut facts = Facts::new(Route::of(&rec.request.path));
        if facts.route == Route::Messages
            && let Some(parts) = &parts
        {
            for &(key, text) in parts.json.iter().flatten() {
                match key {
                    "system" => facts.system_text(text),
                    "tools" => facts.tools_text(text),
                    _ => {}
                }
            }
            if let Some(first) = parts.messages.as_ref().and_then(|m| m.first()) {
                facts.first_message_text(first);
            }
        }
        let req_peek = peek_body(request_body, true);
        let request_model = req_peek.model;
        let delta = options.bodies == Bodies::Delta;
        let encoded = match parts {
            Some(parts) if delta => {
                conversations.encode(session, &rec.id, &rec.request.path, request_body, parts)
            }
            _ => crate::delta::Encoded {
                body: Cow::Borrowed(request_body),
                ..Default::default()
            },
        };
        let rewritten = matches!(encoded.body, Cow::Owned(_));

        // System prompt blocks and tool definitions not shipped before go first, so every
        // reference in the main event points at an event Seq already has.
        for Context { hash, field, text } in &encoded.contexts {
            pool.reset(
                r,
                time_ns,
                observed_ns,
                SEVERITY_INFO,
                "INFO",
                (trace_id, span_id),
            );
            pool.str(&mut r.attributes, &["claude.context.hash"], hash);
            pool.str(&mut r.attributes, &["claude.context.field"], field);
            session_attrs(pool, &mut r.attributes, session);
            if escaped_len(text) + 200 <= budget {
                if let Some(url) = &view_url {
                    pool.str(&mut r.attributes, &["claude.view.url"], url);
                }
                set_string(any_string(&mut r.body), text);
                out(r);
                continue;
            }
            let parts = split_parts(text, budget);
            pool.str(&mut r.attributes, &["claude.body.name"], "context");
            let part_at = r.attributes.len();
            pool.value(&mut r.attributes, &["claude.body.part"], Value::IntValue(0));
            let count = Value::IntValue(parts.len() as i64);
            pool.value(&mut r.attributes, &["claude.body.parts"], count);
            if let Some(url) = &view_url {
                pool.str(&mut r.attributes, &["claude.view.url"], url);
            }
            for (i, part) in parts.into_iter().enumerate() {
                r.attributes[part_at].value = any(Value::IntValue(i as i64 + 1));
                set_string(any_string(&mut r.body), part);
                out(r);
            }
        }

        let sse_view = rec
            .response
            .as_ref()
            .and_then(|r| r.sse)
            .and_then(|sse| serde_json::from_str::<SseView<'_>>(sse.get()).ok());
        let sse_message = sse_view.as_ref().and_then(|v| v.message);
        let (first_token_ms, max_gap_ms) = sse_view
            .as_ref()
            .map_or((None, None), |v| stream_timing(&v.events));
        let response_message = match (sse_message, rec.response.as_ref()) {
            (Some(m), _) => Some(m.get()),
            (None, Some(resp)) => top_raw(resp.body.get(), "json"),
            _ => None,
        };
        let response_id = response_message.and_then(|m| top_str(m, "id"));
        if facts.route == Route::Messages
            && let Some(m) = response_message
        {
            facts.response_message_text(m);
        }
        let sender = senders.sender(session, &facts);

        // Properties shared by the main event and the span.
        let mut common: Vec<KeyValue> = Vec::new();
        let cs =
            |c: &mut Vec<KeyValue>, k: &str, v: &str| c.push(kv(k, Value::StringValue(v.into())));
        let cv = |c: &mut Vec<KeyValue>, k: &str, v: Value| c.push(kv(k, v));
        cs(&mut common, "gen_ai.provider.name", "anthropic");
        let chat = facts.route == Route::Messages;
        if chat {
            cs(&mut common, "gen_ai.operation.name", "chat");
        }
        let req_model = request_model.as_deref().or(rec.model.as_deref());
        if let Some(m) = req_model {
            cs(&mut common, "gen_ai.request.model", m);
        }
        if rec.response.is_some()
            && let Some(m) = &rec.model
        {
            cs(&mut common, "gen_ai.response.model", m);
        }
        if let Some(id) = &response_id {
            cs(&mut common, "gen_ai.response.id", id);
        }
        if let Some(reason) = &rec.stop_reason {
            let reasons = ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::StringValue(reason.to_string())),
                }],
            };
            cv(
                &mut common,
                "gen_ai.response.finish_reasons",
                Value::ArrayValue(reasons),
            );
        }
        if let Some(u) = &rec.usage {
            let read = u.cache_read_input_tokens;
            let written = u.cache_creation_input_tokens;
            if u.input_tokens.is_some() || read.is_some() || written.is_some() {
                // The conventions count every input token, cached or not.
                let all = u.input_tokens.unwrap_or(0) + read.unwrap_or(0) + written.unwrap_or(0);
                cv(
                    &mut common,
                    "gen_ai.usage.input_tokens",
                    Value::IntValue(all as i64),
                );
            }
            let tokens = [
                ("gen_ai.usage.output_tokens", u.output_tokens),
                ("gen_ai.usage.cache_read.input_tokens", read),
                ("gen_ai.usage.cache_creation.input_tokens", written),
            ];
            for (k, v) in tokens {
                if let Some(v) = v {
                    cv(&mut common, k, Value::IntValue(v as i64));
                }
            }
            // The response's model is billed (a refusal fallback answers with another one).
            let model = conversation::pricing_model(rec.model.as_deref(), request_model.as_deref());
            match model.map(|m| options.prices.price(m, u)) {
                Some(Ok(cost)) => {
                    cv(&mut common, "claude.cost.usd", Value::DoubleValue(cost.usd));
                    cv(
                        &mut common,
                        "claude.cost.long_context",
                        Value::BoolValue(cost.long_context),
                    );
                    cs(&mut common, "claude.cost.prices_date", &options.prices.date);
                }
                priced => {
                    *unpriced += 1;
                    let why = match &priced {
                        Some(Err(why)) => why.to_string(),
                        _ => "no model named".to_string(),
                    };
                    cv(&mut common, "claude.cost.unpriced", Value::BoolValue(true));
                    cs(&mut common, "claude.cost.unpriced_reason", &why);
                    cs(&mut common, "claude.cost.prices_date", &options.prices.date);
                    let model = model.unwrap_or("(none)");
                    if !unpriced_models.contains(model) {
                        unpriced_models.insert(model.to_string());
                        tracing::warn!(
                            model,
                            prices_date = %options.prices.date,
                            "no cost for model {model}: {why}; its exchanges carry \
                             claude.cost.unpriced=true (a newer table: --prices, see \
                             docs/seq-events.md \"Cost\")"
                        );
                    }
                }
            }
        }
        if let Some(s) = session {
            cs(&mut common, "gen_ai.conversation.id", s);
            cs(&mut common, "session.id", s);
        }
        if let Some(sender) = &sender {
            cs(&mut common, "claude.agent", sender.agent.as_str());
            if let Some(sub) = sender
                .subagent
                .as_ref()
                .filter(|s| !s.tool_use_id.is_empty())
            {
                cs(&mut common, "claude.agent.tool_use_id", &sub.tool_use_id);
            }
        }
        cs(&mut common, "claude.exchange.id", &rec.id);
        if let Some(url) = &view_url {
            cs(&mut common, "claude.view.url", url);
        }
        cs(&mut common, "claude.outcome", &rec.outcome);
        if let Some(e) = &rec.error {
            cs(&mut common, "claude.error", e);
            cs(&mut common, "error.type", &rec.outcome);
        } else if let Some(s) = status.filter(|s| *s >= 400) {
            cs(&mut common, "error.type", &s.to_string());
        }
        if let Some(s) = status {
            cv(
                &mut common,
                "http.response.status_code",
                Value::IntValue(s.into()),
            );
        }
        if let Some(d) = rec.duration_ms {
            cv(&mut common, "claude.duration_ms", Value::DoubleValue(d));
        }
        if let Some(t) = rec.ttfb_ms {
            cv(&mut common, "claude.ttfb_ms", Value::DoubleValue(t));
        }
        if let (true, Some(d), Some(t), Some(o)) = (
            rec.stream,
            rec.duration_ms,
            rec.ttfb_ms,
            rec.usage.as_ref().and_then(|u| u.output_tokens),
        ) && d > t
        {
            let rate = o as f64 / ((d - t) / 1000.0);
            cv(
                &mut common,
                "claude.output_tokens_per_second",
                Value::DoubleValue(rate),
            );
        }
        if let Some(t) = first_token_ms {
            cv(
                &mut common,
                "claude.time_to_first_token_ms",
                Value::DoubleValue(t),
            );
        }
        if let Some(g) = max_gap_ms {
            cv(
                &mut common,
                "claude.stream_max_gap_ms",
                Value::DoubleValue(g),
            );
        }
        if let Some(resp) = &rec.response {
            for (name, value) in &resp.headers {
                if let Some((key, typed)) = quota::property(&name.0, &value.0) {
                    let v = match typed {
                        quota::Typed::Int(i) => Value::IntValue(i),
                        quota::Typed::Double(d) => Value::DoubleValue(d),
                        quota::Typed::Text(t) => Value::StringValue(t.to_string()),
                    };
                    cv(&mut common, &key, v);
                }
            }
        }

        if options.spans && !trace_id.is_empty() {
            span.trace_id.clear();
            span.trace_id.extend_from_slice(trace_id);
            span.span_id.clear();
            span.span_id.extend_from_slice(span_id);
            span.parent_span_id.clear();
            if let Some(c) = &caller {
                span.parent_span_id.extend_from_slice(&c.parent_id);
            }
            span.name.clear();
            if chat {
                span.name.push_str("chat");
                if let Some(m) = req_model {
                    span.name.push(' ');
                    span.name.push_str(m);
                }
            } else {
                span.name.push_str(&rec.request.method);
                span.name.push(' ');
                span.name.push_str(&rec.request.path);
            }
            span.kind = SpanKind::Client as i32;
            span.start_time_unix_nano = time_ns;
            span.end_time_unix_nano = end_ns;
            span.attributes.clear();
            span.attributes.extend(common.iter().cloned());
            span.attributes.push(kv(
                "server.address",
                Value::StringValue(options.server_address.clone()),
            ));
            span.attributes.push(kv(
                "http.request.method",
                Value::StringValue(rec.request.method.to_string()),
            ));
            span.attributes.push(kv(
                "url.path",
                Value::StringValue(rec.request.path.to_string()),
            ));
            let failed = !complete || status.is_some_and(|s| s >= 400);
            span.status = Some(if failed {
                Status {
                    code: StatusCode::Error as i32,
                    message: rec.error.as_deref().map(str::to_string).unwrap_or_else(
                        || match status {
                            Some(s) if complete => format!("HTTP {s}"),
                            _ => rec.outcome.to_string(),
                        },
                    ),
                }
            } else {
                Status::default()
            });
            *has_span = true;
        }

        pool.reset(
            r,
            time_ns,
            observed_ns,
            severity,
            severity_text,
            (trace_id, span_id),
        );
        let attrs = &mut r.attributes;
        pool.str(attrs, &["http.request.method"], &rec.request.method);
        pool.str(attrs, &["url.path"], &rec.request.path);
        if let Some(q) = &rec.request.query {
            pool.str(attrs, &["url.query"], q);
        }
        for c in &common {
            if let Some(v) = c.value.as_ref().and_then(|v| v.value.clone()) {
                pool.value(attrs, &[&c.key], v);
            }
        }
        if let Some((from, shared)) = &encoded.continues {
            pool.str(attrs, &["claude.delta.continues"], from);
            pool.value(
                attrs,
                &["claude.delta.shared"],
                Value::IntValue(*shared as i64),
            );
        }
        if let Some(n) = encoded.new_messages {
            pool.value(
                attrs,
                &["claude.delta.new_messages"],
                Value::IntValue(n as i64),
            );
        }
        if rewritten {
            pool.str(attrs, &["claude.request.encoding"], "delta");
        }
        pool.value(attrs, &["claude.stream"], Value::BoolValue(rec.stream));
        if let Some(size) = req_peek.size {
            pool.value(
                attrs,
                &["http.request.body.size"],
                Value::IntValue(size as i64),
            );
        }
        if let Some(resp) = &rec.response
            && let Some(size) = peek_body(resp.body.get(), false).size
        {
            pool.value(
                attrs,
                &["http.response.body.size"],
                Value::IntValue(size as i64),
            );
        }
        for (name, value) in &rec.request.headers {
            pool.str(attrs, &["http.request.header.", &name.0], &value.0);
        }
        if let Some(resp) = &rec.response {
            for (name, value) in &resp.headers {
                pool.str(attrs, &["http.response.header.", &name.0], &value.0);
            }
        }

        let message = any_string(&mut r.body);
        summary(message, rec, status, request_model.as_deref());
        let response_bodies = rec.response.as_ref().map(|resp| {
            let sse = match (delta, sse_message, resp.sse) {
                (true, Some(m), _) => Some(("response.message", m.get())),
                (_, _, Some(s)) => Some(("response.sse", s.get())),
                _ => None,
            };
            (("response.body", resp.body.get()), sse)
        });
        let bodies: Vec<(&str, &str)> = [
            Some(("request.body", encoded.body.as_ref())),
            response_bodies.map(|(b, _)| b),
            response_bodies.and_then(|(_, s)| s),
        ]
        .into_iter()
        .flatten()
        .collect();

        // Bodies go inline (as attributes of the main event) while the event stays within
        // the budget, smallest first, so a small exchange reads in one event and a large one
        // keeps its small bodies inline; the others go to ordered part events.
        let mut size = escaped_len(message) + attrs_size(attrs) + PART_OVERHEAD;
        let mut by_size: Vec<(usize, usize)> = bodies
            .iter()
            .enumerate()
            .map(|(i, (name, text))| (escaped_len(text) + name.len() + 16, i))
            .collect();
        by_size.sort_unstable();
        let mut inline = [false; 3];
        for (body_size, i) in by_size {
            if size + body_size <= event_max_bytes {
                size += body_size;
                inline[i] = true;
            }
        }
        let mut split: Vec<(&str, Vec<&str>)> = Vec::new();
        for (i, (name, text)) in bodies.iter().enumerate() {
            if inline[i] {
                pool.str(attrs, &["claude.", name], text);
            } else {
                let parts = split_parts(text, budget);
                let count = Value::IntValue(parts.len() as i64);
                pool.value(attrs, &["claude.", name, ".parts"], count);
                split.push((name, parts));
            }
        }
        out(r);
        for (name, parts) in split {
            pool.reset(
                r,
                time_ns,
                observed_ns,
                severity,
                severity_text,
                (trace_id, span_id),
            );
            pool.str(&mut r.attributes, &["claude.exchange.id"], &rec.id);
            pool.str(&mut r.attributes, &["claude.body.name"], name);
            pool.value(&mut r.attributes, &["claude.body.part"], Value::IntValue(0));
            let count = Value::IntValue(parts.len() as i64);
            pool.value(&mut r.attributes, &["claude.body.parts"], count);
            session_attrs(pool, &mut r.attributes, session);
            if let Some(url) = &view_url {
                pool.str(&mut r.attributes, &["claude.view.url"], url);
            }
            for (i, part) in parts.into_iter().enumerate() {
                r.attributes[2].value = any(Value::IntValue(i as i64 + 1));
                set_string(any_string(&mut r.body), part);
                out(r);
            }
        }
    }
}

/// The session's id under both names it is queried by, on every event of an exchange.
fn session_attrs(pool: &mut Pool, attrs: &mut Vec<KeyValue>, session: Option<&str>) {
    if let Some(s) = session {
        pool.str(attrs, &["gen_ai.conversation.id"], s);
        pool.str(attrs, &["session.id"], s);
    }
}

#[derive(Deserialize)]
struct SseView<'a> {
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    events: Vec<SseEventView<'a>>,
}

#[derive(Deserialize)]
struct SseEventView<'a> {
    #[serde(borrow)]
    event: Str<'a>,
    #[serde(default)]
    t_ms: Option<f64>,
}

/// Time to the first token (the first `content_block_delta`) and the longest wait between two
/// stream events, in milliseconds, from the events' arrival times.
fn stream_timing(events: &[SseEventView<'_>]) -> (Option<f64>, Option<f64>) {
    let first = events
        .iter()
        .find(|e| e.event.0 == "content_block_delta")
        .and_then(|e| e.t_ms);
    let times: Vec<f64> = events.iter().filter_map(|e| e.t_ms).collect();
    let gap = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))));
    (first, gap)
}

/// A top-level member of a JSON object, as its raw text.
fn top_raw<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    let map: BTreeMap<Str<'a>, &'a RawValue> = serde_json::from_str(raw).ok()?;
    map.into_iter()
        .find(|(k, _)| k.0 == key)
        .map(|(_, v)| v.get())
}

/// A top-level string member of a JSON object.
fn top_str(raw: &str, key: &str) -> Option<String> {
    serde_json::from_str::<String>(top_raw(raw, key)?).ok()
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: any(value),
        ..Default::default()
    }
}

/// Attributes of earlier events, kept so that their strings' allocations serve the next ones.
#[derive(Debug, Default)]
struct Pool {
    spare: Vec<KeyValue>,
}

impl Pool {
    /// Readies `r` for a new event: its attributes go back to the pool, its other fields are
    /// set (the fields the shipper never sets stay at their defaults).
    fn reset(
        &mut self,
        r: &mut LogRecord,
        time_ns: u64,
        observed_ns: u64,
        severity: i32,
        severity_text: &str,
        (trace_id, span_id): (&[u8], &[u8]),
    ) {
        // Reversed, so the next event takes them back in the same order and a slot that held
        // a string value is usually handed a string again.
        self.spare.extend(r.attributes.drain(..).rev());
        r.time_unix_nano = time_ns;
        r.observed_time_unix_nano = observed_ns;
        r.severity_number = severity;
        set_string(&mut r.severity_text, severity_text);
        r.trace_id.clear();
        r.trace_id.extend_from_slice(trace_id);
        r.span_id.clear();
        r.span_id.extend_from_slice(span_id);
    }

    /// A KeyValue whose key is the concatenation of `key`.
    fn slot(&mut self, key: &[&str]) -> KeyValue {
        let mut kv = self.spare.pop().unwrap_or_default();
        kv.key.clear();
        for k in key {
            kv.key.push_str(k);
        }
        kv
    }

    fn str(&mut self, attrs: &mut Vec<KeyValue>, key: &[&str], value: &str) {
        let mut kv = self.slot(key);
        set_string(any_string(&mut kv.value), value);
        attrs.push(kv);
    }

    fn value(&mut self, attrs: &mut Vec<KeyValue>, key: &[&str], value: Value) {
        let mut kv = self.slot(key);
        kv.value = any(value);
        attrs.push(kv);
    }
}

fn any(value: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

/// The string of a string value, which `v` becomes if it was anything else.
fn any_string(v: &mut Option<AnyValue>) -> &mut String {
    let any = v.get_or_insert_with(AnyValue::default);
    if !matches!(any.value, Some(Value::StringValue(_))) {
        any.value = Some(Value::StringValue(String::new()));
    }
    match &mut any.value {
        Some(Value::StringValue(s)) => s,
        _ => unreachable!("set just above"),
    }
}

fn set_string(s: &mut String, value: &str) {
    s.clear();
    s.push_str(value);
}

/// The event's message: the exchange's one-line summary in its Seq style, written over `s`.
fn summary(s: &mut String, rec: &RecordView<'_>, status: Option<u16>, request_model: Option<&str>) {
    let usage = rec.usage.as_ref();
    let fields = summary::Fields {
        method: &rec.request.method,
        path: &rec.request.path,
        query: None,
        status,
        model: rec.model.as_deref().or(request_model),
        duration_ms: rec.duration_ms,
        input_tokens: usage.and_then(|u| u.input_tokens),
        output_tokens: usage.and_then(|u| u.output_tokens),
        session_id: None,
        outcome: &rec.outcome,
    };
    summary::write(s, &fields, summary::Style::Seq);
}

/// Upper bound of the JSON-escaped size of attributes (what Seq counts against its limit).
fn attrs_size(attrs: &[KeyValue]) -> usize {
    let value_size = |v: Option<&AnyValue>| match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => escaped_len(s),
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| match &v.value {
                Some(Value::StringValue(s)) => escaped_len(s) + 3,
                _ => 24,
            })
            .sum(),
        _ => 24,
    };
    attrs
        .iter()
        .map(|kv| kv.key.len() + value_size(kv.value.as_ref()) + 8)
        .sum()
}

/// Bytes one byte of a string may cost once the string is written as JSON by the receiver:
/// `"` `\\` and the short control escapes 2, other control characters 6 (`\u00XX`), and
/// every byte of a non-ASCII character 3, the worst case of `\uXXXX` escaping (a 2-byte
/// character becomes 6 bytes, a 4-byte one a 12-byte surrogate pair). Branch-free and in u16,
/// so that the sum vectorizes on 16 bytes at a time.
#[inline]
fn byte_cost(b: u8) -> u16 {
    let quote = u16::from(b == b'"') | u16::from(b == b'\\');
    let ctrl = u16::from(b < 0x20) | u16::from(b == 0x7f);
    let short = u16::from(b == 8)
        | u16::from(b == 9)
        | u16::from(b == 10)
        | u16::from(b == 12)
        | u16::from(b == 13);
    let high = u16::from(b >= 0x80);
    1 + quote + short + 5 * (ctrl - short) + 2 * high
}

/// Upper bound of the length of `s` once escaped as a JSON string (without quotes).
pub fn escaped_len(s: &str) -> usize {
    // A byte costs at most 6: a chunk of 8,192 sums to at most 49,152, within a u16.
    s.as_bytes()
        .chunks(8192)
        .map(|chunk| {
            usize::from(
                chunk
                    .iter()
                    .map(|&b| byte_cost(b))
                    .fold(0, u16::wrapping_add),
            )
        })
        .sum()
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
        let c = if len == 1 {
            usize::from(byte_cost(b))
        } else {
            3 * len
        };
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

pub use crate::ids::hex16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_len_is_the_sum_of_each_byte_cost_across_chunk_boundaries() {
        let cost = |b: u8| match b {
            b'"' | b'\\' | 8 | 9 | 10 | 12 | 13 => 2,
            0..=0x1f | 0x7f => 6,
            0x80..=0xff => 3,
            _ => 1,
        };
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut text = String::new();
        while text.len() < 50_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let c = match rng % 8 {
                0 => '"',
                1 => '\\',
                2 => char::from((rng >> 8) as u8 % 0x20),
                3 => '\u{7f}',
                4 => 'é',
                5 => '😀',
                _ => char::from(b'a' + (rng >> 8) as u8 % 26),
            };
            text.push(c);
        }
        let want: usize = text.bytes().map(cost).sum();
        assert_eq!(escaped_len(&text), want);
        // The costliest byte throughout: a chunk's sum must not wrap.
        assert_eq!(escaped_len(&"\u{1}".repeat(50_000)), 300_000);
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

    fn full(event_max_bytes: usize) -> Encoder {
        Encoder::with_options(Options {
            bodies: Bodies::Full,
            ..Options::new(event_max_bytes)
        })
    }

    fn record_line(request_body_json: &str) -> String {
        format!(
            r#"{{"v":1,"kind":"claude_api_exchange","id":"0123456789abcdef0123456789abcdef","started_at":"2026-11-27T10:00:00.5Z","ended_at":"2026-11-27T10:00:02.8Z","duration_ms":2300.0,"ttfb_ms":410.5,"outcome":"complete","session_id":"sess-1","model":"claude-sonnet-4-5-20250929","stream":true,"stop_reason":"end_turn","usage":{{"input_tokens":12345,"output_tokens":456,"cache_read_input_tokens":7}},"request":{{"method":"POST","path":"/v1/messages","query":"beta=true","headers":{{"x-api-key":"[REDACTED]","user-agent":"claude-cli"}},"body":{{"size":{},"json":{}}}}},"response":{{"status":200,"headers":{{"request-id":"req_1"}},"body":{{"size":40}},"sse":{{"events":[{{"event":"ping","data":{{"type":"ping"}}}}],"message":{{"role":"assistant"}}}}}}}}"#,
            request_body_json.len(),
            request_body_json
        )
    }

    /// The raw JSON text of `request.body`, `response.body`, `response.sse` in a line.
    fn raw_bodies(line: &str) -> Vec<(String, String)> {
        // The request body read on its own, not as the encoder reads it.
        #[derive(Deserialize)]
        struct Request<'a> {
            #[serde(borrow)]
            body: &'a RawValue,
        }
        #[derive(Deserialize)]
        struct Record<'a> {
            #[serde(borrow)]
            request: Request<'a>,
        }
        let request: Record<'_> = serde_json::from_str(line).unwrap();
        let v: RecordView<'_> = serde_json::from_str(line).unwrap();
        let resp = v.response.unwrap();
        vec![
            (
                "request.body".into(),
                request.request.body.get().to_string(),
            ),
            ("response.body".into(), resp.body.get().to_string()),
            ("response.sse".into(), resp.sse.unwrap().get().to_string()),
        ]
    }

    /// Rebuilds each body from events: inline attribute or ordered parts.
    fn reassemble(events: &[LogRecord]) -> Vec<(String, String)> {
        let main = &events[0];
        BODY_NAMES
            .iter()
            .filter(|name| {
                attr(main, &format!("claude.{name}")).is_some()
                    || attr(main, &format!("claude.{name}.parts")).is_some()
            })
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
        let mut encoder = full(200_000);
        encoder.encode_line(line.as_bytes(), 42, &mut |e| out.push(e.clone()));
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(
            body(e),
            "POST /v1/messages 200 claude-sonnet-4-5-20250929 2.3s in=12345 out=456"
        );
        assert_eq!(attr_str(e, "http.request.method"), Some("POST"));
        assert_eq!(attr_str(e, "url.path"), Some("/v1/messages"));
        assert_eq!(attr_str(e, "url.query"), Some("beta=true"));
        assert_eq!(attr_int(e, "http.response.status_code"), Some(200));
        assert_eq!(attr_str(e, "gen_ai.request.model"), Some("claude-sonnet-4"));
        assert_eq!(attr_str(e, "gen_ai.operation.name"), Some("chat"));
        assert_eq!(
            attr_str(e, "gen_ai.response.model"),
            Some("claude-sonnet-4-5-20250929")
        );
        // The conventions' input tokens include cache reads and writes.
        assert_eq!(attr_int(e, "gen_ai.usage.input_tokens"), Some(12345 + 7));
        assert_eq!(attr_int(e, "gen_ai.usage.cache_read.input_tokens"), Some(7));
        assert_eq!(attr(e, "gen_ai.usage.cache_creation.input_tokens"), None);
        assert_eq!(attr(e, "gen_ai.usage.cache_read_input_tokens"), None);
        assert_eq!(attr(e, "gen_ai.system"), None);
        assert_eq!(attr_str(e, "session.id"), Some("sess-1"));
        assert_eq!(attr_str(e, "gen_ai.conversation.id"), Some("sess-1"));
        // The response's model is billed: Sonnet 4.5 by hand, 12,345 x $3 + 456 x $15 + 7 x
        // $0.30 per million (the request named claude-sonnet-4, which has no price).
        let by_hand = (12_345.0 * 3.0 + 456.0 * 15.0 + 7.0 * 0.3) / 1e6;
        assert!(
            matches!(attr(e, "claude.cost.usd"), Some(Value::DoubleValue(d)) if (d - by_hand).abs() < 1e-12)
        );
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
        assert_eq!(e.trace_id, ids::session_trace_id("sess-1"));
        assert_eq!(e.span_id, [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
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
        full(max).encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
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
        Encoder::new(200_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
        assert_eq!(out[0].severity_number, SEVERITY_ERROR);
        assert!(body(&out[0]).ends_with(" upstream_aborted"));
        assert_eq!(attr_str(&out[0], "claude.error"), Some("cut"));
        let line = record_line("{}").replace(r#""status":200"#, r#""status":429"#);
        out.clear();
        Encoder::new(200_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
        assert_eq!(out[0].severity_number, SEVERITY_WARN);
    }

    #[test]
    fn lines_that_are_not_records_are_plain_strings() {
        let mut out = Vec::new();
        let mut enc = Encoder::new(200_000);
        enc.encode_line(b"not json at all", 0, &mut |e| out.push(e.clone()));
        enc.encode_line(br#"{"kind":"something_else"}"#, 0, &mut |e| {
            out.push(e.clone())
        });
        enc.encode_line(b"bad \xff\xfe utf8", 0, &mut |e| out.push(e.clone()));
        enc.encode_line(b"", 0, &mut |e| out.push(e.clone()));
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
        Encoder::new(20_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
        assert!(out.len() >= 5);
        let joined: String = out.iter().map(body).collect();
        assert_eq!(joined, line);
        assert!(out.iter().all(|e| e.trace_id == out[0].trace_id));
    }

    #[test]
    fn a_reused_encoder_gives_each_line_what_a_fresh_one_gives() {
        // The record and its attributes are reused: nothing of one event may leak into the
        // next, whatever the order of small, split, failed and plain lines.
        let big = format!(r#"{{"model":"m","messages":["{}"]}}"#, "é".repeat(30_000));
        let failed = record_line("{}").replace(
            r#""outcome":"complete""#,
            r#""outcome":"upstream_aborted","error":"cut""#,
        );
        let no_response = record_line("{}").replace(r#","response":{"#, r#","x":{"#);
        let lines = [
            record_line(&big),
            record_line(r#"{"model":"small"}"#),
            "plain line".to_string(),
            failed,
            no_response,
            record_line(&big),
            record_line("{}"),
        ];
        // In `full` mode an encoder holds no conversation state, so only buffers are reused.
        let mut reused = full(50_000);
        for line in &lines {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            reused.encode_line(line.as_bytes(), 7, &mut |e| a.push(e.clone()));
            full(50_000).encode_line(line.as_bytes(), 7, &mut |e| b.push(e.clone()));
            assert_eq!(a, b, "{line:.80}");
        }
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
        Encoder::new(200_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
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

    fn span_attr<'a>(s: &'a Span, key: &str) -> Option<&'a Value> {
        s.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    #[test]
    fn a_valid_traceparent_puts_the_exchange_under_the_callers_span() {
        let with = |value: &str| {
            record_line(r#"{"model":"claude-opus-5-5","system":"You are Claude Code.","messages":[{"role":"user","content":"hi"}]}"#)
                .replace(
                    r#""user-agent":"claude-cli""#,
                    &format!(r#""user-agent":"claude-cli","traceparent":"{value}""#),
                )
        };
        // A small event limit, so the bodies go out as part events too.
        let mut enc = Encoder::new(4_000);
        let mut out = Vec::new();
        let valid = "00-22a69c0f849d92305ba37d65ef1fd039-d26af7ffdb197558-01";
        let big = with(valid).replace("\"hi\"", &format!("\"{}\"", "hi ".repeat(3_000)));
        enc.encode_line(big.as_bytes(), 0, &mut |e| out.push(e.clone()));
        let span = enc.span().expect("a span").clone();
        assert_eq!(
            span.trace_id,
            hex16("22a69c0f849d92305ba37d65ef1fd039").unwrap()
        );
        assert_eq!(
            span.parent_span_id,
            [0xd2, 0x6a, 0xf7, 0xff, 0xdb, 0x19, 0x75, 0x58]
        );
        assert_eq!(
            span.span_id,
            [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        );
        assert!(
            out.iter().any(|e| attr(e, "claude.body.part").is_some()),
            "part events too"
        );
        for e in &out {
            assert_eq!(
                e.trace_id, span.trace_id,
                "every event on the caller's trace"
            );
            assert_eq!(e.span_id, span.span_id);
            assert_eq!(attr_str(e, "session.id"), Some("sess-1"));
            assert_eq!(attr_str(e, "gen_ai.conversation.id"), Some("sess-1"));
        }

        let huge = format!(
            "01-22a69c0f849d92305ba37d65ef1fd039-d26af7ffdb197558-01-{}",
            "a".repeat(10_000)
        );
        let zero = format!("00-{}-d26af7ffdb197558-01", "0".repeat(32));
        for bad in [
            "00-22a69c0f849d92305ba37d65ef1fd039-d26af7ffdb19755-01",
            &zero,
            "00-22a69c0f849d92305ba37d65ef1fd039-0000000000000000-01",
            "ff-22a69c0f849d92305ba37d65ef1fd039-d26af7ffdb197558-01",
            r"\u003cscript\u003e",
            &huge,
        ] {
            out.clear();
            enc.encode_line(with(bad).as_bytes(), 0, &mut |e| out.push(e.clone()));
            let span = enc.span().expect("still a span");
            assert_eq!(span.trace_id, ids::session_trace_id("sess-1"), "{bad:.60}");
            assert!(span.parent_span_id.is_empty(), "{bad:.60}");
            assert_eq!(out.last().unwrap().trace_id, span.trace_id);
        }
    }

    #[test]
    fn an_exchange_is_a_genai_client_span_on_its_session_trace() {
        let line = record_line(r#"{"model":"claude-sonnet-4","messages":[]}"#).replace(
            r#""response":{"status":200,"headers":{"request-id":"req_1"}"#,
            r#""response":{"status":200,"headers":{"request-id":"req_1","anthropic-ratelimit-unified-5h-utilization":"0.25","anthropic-ratelimit-tokens-remaining":"1000"}"#,
        ).replace(r#""message":{"role":"assistant"}"#, r#""message":{"id":"msg_01","role":"assistant"}"#);
        let mut enc = Encoder::new(200_000);
        let mut out = Vec::new();
        enc.encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
        let span = enc.span().expect("a span").clone();
        assert_eq!(span.name, "chat claude-sonnet-4");
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(span.trace_id, ids::session_trace_id("sess-1"));
        assert_eq!(span.span_id, out[0].span_id);
        assert_eq!(span.trace_id, out[0].trace_id);
        assert_eq!(span.start_time_unix_nano, 1_795_773_600_500_000_000);
        assert_eq!(span.end_time_unix_nano, 1_795_773_602_800_000_000);
        assert_eq!(span.status, Some(Status::default()));
        let s = |k| match span_attr(&span, k) {
            Some(Value::StringValue(v)) => Some(v.as_str()),
            _ => None,
        };
        assert_eq!(s("gen_ai.provider.name"), Some("anthropic"));
        assert_eq!(s("gen_ai.operation.name"), Some("chat"));
        assert_eq!(s("gen_ai.request.model"), Some("claude-sonnet-4"));
        assert_eq!(
            s("gen_ai.response.model"),
            Some("claude-sonnet-4-5-20250929")
        );
        assert_eq!(s("gen_ai.response.id"), Some("msg_01"));
        assert_eq!(s("gen_ai.conversation.id"), Some("sess-1"));
        assert_eq!(s("server.address"), Some("api.anthropic.com"));
        assert!(matches!(
            span_attr(&span, "gen_ai.usage.input_tokens"),
            Some(Value::IntValue(12352))
        ));
        assert!(matches!(
            span_attr(&span, "claude.ratelimit.unified_5h_utilization"),
            Some(Value::DoubleValue(d)) if *d == 0.25
        ));
        assert_eq!(
            attr_int(&out[0], "claude.ratelimit.tokens_remaining"),
            Some(1000)
        );
        // Delta mode ships the reassembled message, not the SSE events.
        assert_eq!(
            attr_str(&out[0], "claude.response.message"),
            Some(r#"{"id":"msg_01","role":"assistant"}"#)
        );
        assert_eq!(attr(&out[0], "claude.response.sse"), None);

        // Not complete: an error span; no session: its own trace.
        let failed = record_line("{}")
            .replace(
                r#""outcome":"complete""#,
                r#""outcome":"upstream_aborted","error":"cut""#,
            )
            .replace(r#""session_id":"sess-1","#, "");
        out.clear();
        enc.encode_line(failed.as_bytes(), 0, &mut |e| out.push(e.clone()));
        let span = enc.span().unwrap();
        let status = span.status.clone().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "cut");
        assert_eq!(
            span.trace_id,
            hex16("0123456789abcdef0123456789abcdef").unwrap()
        );
        assert!(matches!(
            span_attr(span, "error.type"),
            Some(Value::StringValue(t)) if t == "upstream_aborted"
        ));
        out.clear();
        enc.encode_line(b"plain", 0, &mut |e| out.push(e.clone()));
        assert!(enc.span().is_none());
    }

    #[test]
    fn an_unknown_model_gets_no_cost_and_is_counted() {
        let line = record_line("{}").replace("claude-sonnet-4-5-20250929", "claude-future-9");
        let mut enc = Encoder::new(200_000);
        let mut out = Vec::new();
        enc.encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
        assert_eq!(attr(&out[0], "claude.cost.usd"), None);
        assert!(matches!(
            attr(&out[0], "claude.cost.unpriced"),
            Some(Value::BoolValue(true))
        ));
        let span = enc.span().expect("a span");
        assert!(matches!(
            span_attr(span, "claude.cost.unpriced"),
            Some(Value::BoolValue(true))
        ));
        assert_eq!(enc.unpriced, 1);
        // The same model again: counted, but warned about once per run.
        enc.encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
        assert_eq!(enc.unpriced, 2);
        assert_eq!(enc.unpriced_models.len(), 1);
    }

    #[test]
    fn fast_mode_and_web_searches_reach_the_cost() {
        // Opus 5.5 in fast mode (2x): 12,345 x $8 + 456 x $40 + 7 x $0.40 per million, plus two
        // web searches at $0.01.
        let line = record_line("{}").replace("claude-sonnet-4-5-20250929", "claude-opus-5-5").replace(
            r#""cache_read_input_tokens":7}"#,
            r#""cache_read_input_tokens":7,"speed":"fast","server_tool_use":{"web_search_requests":2}}"#,
        );
        let mut out = Vec::new();
        Encoder::new(200_000).encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
        let by_hand = (12_345.0 * 8.0 + 456.0 * 40.0 + 7.0 * 0.4) / 1e6 + 0.02;
        assert!(
            matches!(attr(&out[0], "claude.cost.usd"), Some(Value::DoubleValue(d)) if (d - by_hand).abs() < 1e-12),
            "{:?}",
            attr(&out[0], "claude.cost.usd")
        );
        assert_eq!(attr(&out[0], "claude.cost.unpriced"), None);
    }

    #[test]
    fn who_sent_each_request_is_shipped_in_both_body_modes() {
        // The main turn calls the Agent tool; the sub-agent's first message is its prompt.
        let main = record_line(
            r#"{"model":"m","system":[{"type":"text","text":"You are Claude Code."}],"tools":[{"name":"Agent"}],"messages":[{"role":"user","content":"go"}]}"#,
        )
        .replace(
            r#""message":{"role":"assistant"}"#,
            r#""message":{"role":"assistant","content":[{"type":"tool_use","id":"toolu_7","name":"Agent","input":{"description":"Look","prompt":"look around","subagent_type":"Explore"}}]}"#,
        );
        let sub = record_line(
            r#"{"model":"m","system":[{"type":"text","text":"You are an agent."}],"tools":[{"name":"Read"}],"messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>ctx</system-reminder>"},{"type":"text","text":"look around"}]}]}"#,
        );
        let title = record_line(
            r#"{"model":"m","system":"Name the session.","messages":[{"role":"user","content":"go"}]}"#,
        );
        let count = record_line(r#"{"model":"m","tools":[{"name":"Agent"}],"messages":[]}"#)
            .replace(
                r#""path":"/v1/messages""#,
                r#""path":"/v1/messages/count_tokens""#,
            );
        for bodies in [Bodies::Delta, Bodies::Full] {
            let mut enc = Encoder::with_options(Options {
                bodies,
                ..Options::new(200_000)
            });
            let mut got = Vec::new();
            for line in [&main, &sub, &title, &count] {
                let mut out = Vec::new();
                enc.encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
                let first = &out[0];
                got.push((
                    attr_str(first, "claude.agent").map(str::to_string),
                    attr_str(first, "claude.agent.tool_use_id").map(str::to_string),
                ));
                let span = enc.span().unwrap();
                let on_span = span.attributes.iter().find(|kv| kv.key == "claude.agent");
                assert_eq!(on_span.is_some(), got.last().unwrap().0.is_some());
            }
            let s = |v: &str| Some(v.to_string());
            assert_eq!(
                got,
                [
                    (s("main"), None),
                    (s("subagent"), s("toolu_7")),
                    (s("auxiliary"), None),
                    (None, None)
                ],
                "{bodies:?}"
            );
        }
    }

    #[test]
    fn stream_timing_comes_from_the_events_arrival_times() {
        let sse = r#"{"events":[
            {"event":"message_start","data":{},"t_ms":400.0},
            {"event":"ping","data":{},"t_ms":410.0},
            {"event":"content_block_start","data":{},"t_ms":900.5},
            {"event":"content_block_delta","data":{},"t_ms":1250.0},
            {"event":"content_block_delta","data":{},"t_ms":3250.0},
            {"event":"message_stop","data":{},"t_ms":3300.0}],"message":{}}"#;
        let v: SseView<'_> = serde_json::from_str(sse).unwrap();
        assert_eq!(stream_timing(&v.events), (Some(1250.0), Some(2000.0)));
        let untimed: SseView<'_> =
            serde_json::from_str(r#"{"events":[{"event":"content_block_delta","data":{}}]}"#)
                .unwrap();
        assert_eq!(stream_timing(&untimed.events), (None, None));
    }

    #[test]
    fn every_event_and_the_span_of_an_exchange_link_to_the_viewer_when_a_base_is_set() {
        let big = "x".repeat(20_000);
        let request = serde_json::json!({"model": "claude-sonnet-4",
            "system": [{"type": "text", "text": format!("system {big}")}],
            "tools": [{"name": "Bash", "description": format!("tool {big}"), "input_schema": {}}],
            "messages": [{"role": "user", "content": format!("prompt {big}")}]})
        .to_string();
        let line = record_line(&request);
        for base in [None, Some("http://127.0.0.1:8001/t/secret-token-0123")] {
            let mut enc = Encoder::with_options(Options {
                view_base_url: base.map(str::to_string),
                ..Options::new(8_192)
            });
            let mut out = Vec::new();
            enc.encode_line(line.as_bytes(), 0, &mut |e| out.push(e.clone()));
            let contexts = out
                .iter()
                .filter(|e| attr(e, "claude.context.hash").is_some());
            assert!(contexts.count() >= 4, "system and tools, in parts");
            assert!(out.iter().any(|e| attr(e, "claude.body.part").is_some()));
            let span = enc.span().expect("a span").clone();
            let url = "http://127.0.0.1:8001/t/secret-token-0123/exchange/0123456789abcdef0123456789abcdef";
            let span_url = match span_attr(&span, "claude.view.url") {
                Some(Value::StringValue(v)) => Some(v.as_str()),
                _ => None,
            };
            match base {
                Some(_) => {
                    for e in &out {
                        assert_eq!(attr_str(e, "claude.view.url"), Some(url), "{e:?}");
                        assert!(
                            kv_size(&e.attributes) + escaped_len(body(e)) <= 8_192,
                            "the link fits the event budget"
                        );
                    }
                    assert_eq!(span_url, Some(url));
                }
                None => {
                    assert!(out.iter().all(|e| attr(e, "claude.view.url").is_none()));
                    assert_eq!(span_url, None);
                }
            }
        }
    }
}
