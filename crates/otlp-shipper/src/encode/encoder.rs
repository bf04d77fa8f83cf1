//! Turning one line of the traffic log into what Seq receives: per exchange, a span (the
//! GenAI semantic conventions' `chat {model}`) and LogRecords on it — a short human message
//! with the exchange's properties (tokens, cost, quota, timing), the bodies (whole, or as
//! conversation deltas with the system prompt and tools shipped once as context events),
//! split into ordered parts under the per-event budget when they do not fit. Lines that are
//! not traffic records become plain string messages. See docs/seq-events.md.
//!
//! Bodies are never parsed into trees: the record is read with borrowed `RawValue`s, so a
//! body's JSON text goes into the event byte for byte as it is in the line.

use crate::encode::delta::{Context, Conversations, Encoded};
use crate::encode::event::{Pool, any_string, emit_parts, kv, set_string};
use crate::encode::ids;
use crate::encode::parts::{attrs_size, escaped_len, split_parts};
use crate::encode::quota;
use crate::encode::record::{
    BodyPeek, RecordView, SseEventView, SseView, peek_body, top_raw, top_str,
};
use crate::encode::time::parse_time_ns;
use conversation::{Facts, Route, Sender, Sessions};
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span::SpanKind, status::StatusCode};
use pricing::PriceTable;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;
use traffic_record::trace_context::{self, TraceParent};
use traffic_record::{Usage, summary};

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
        pool.reset(r, 0, observed_ns, SEVERITY_INFO, "INFO", (&trace_id, &[]));
        emit_parts(pool, r, "line", &split_parts(&text, budget), |_, _| {}, out);
    }

    /// An exchange: its context events, its span, its main event, then its body parts.
    fn encode_record<'a>(
        &mut self,
        line: &'a str,
        rec: &RecordView<'a>,
        observed_ns: u64,
        out: &mut dyn FnMut(&LogRecord),
    ) {
        let x = Exchange::read(rec, observed_ns, self.options.view_base_url.as_deref());
        let mut request = self.read_request(line, rec, x.session);
        self.emit_contexts(&x, &request.encoded.contexts, out);
        let response = read_response(rec, &mut request.facts);
        let sender = self.senders.sender(x.session, &request.facts);
        let common = self.common_attributes(&x, rec, &request, &response, sender.as_ref());
        if self.options.spans && x.trace_id.is_some() {
            self.fill_span(&x, rec, &request, &common);
        }
        self.emit_exchange(&x, rec, &common, &request, &response, out);
    }

    /// The request's facts (route, system prompt, tools, first message), its size and model,
    /// and its body as shipped: whole, or in `delta` the part of the conversation not shipped
    /// before.
    fn read_request<'a>(
        &mut self,
        line: &'a str,
        rec: &RecordView<'a>,
        session: Option<&str>,
    ) -> RequestRead<'a> {
        let (body, parts) = rec.request.body.place(line);
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
        let peek = peek_body(body, true);
        let encoded = match parts {
            Some(parts) if self.options.bodies == Bodies::Delta => {
                let path = &rec.request.path;
                self.conversations
                    .encode(session, &rec.id, path, body, parts)
            }
            _ => Encoded {
                body: Cow::Borrowed(body),
                ..Default::default()
            },
        };
        RequestRead {
            facts,
            peek,
            encoded,
        }
    }

    /// System prompt blocks and tool definitions not shipped before go first, so every
    /// reference in the main event points at an event Seq already has.
    fn emit_contexts(
        &mut self,
        x: &Exchange<'_>,
        contexts: &[Context<'_>],
        out: &mut dyn FnMut(&LogRecord),
    ) {
        let budget = self.event_max_bytes - PART_OVERHEAD;
        let Encoder {
            record: r, pool, ..
        } = self;
        for Context { hash, field, text } in contexts {
            x.start(pool, r, (SEVERITY_INFO, "INFO"));
            pool.str(&mut r.attributes, &["claude.context.hash"], hash);
            pool.str(&mut r.attributes, &["claude.context.field"], field);
            session_attrs(pool, &mut r.attributes, x.session);
            if escaped_len(text) + 200 <= budget {
                x.view_url_attr(pool, &mut r.attributes);
                set_string(any_string(&mut r.body), text);
                out(r);
            } else {
                let parts = split_parts(text, budget);
                emit_parts(
                    pool,
                    r,
                    "context",
                    &parts,
                    |p, a| x.view_url_attr(p, a),
                    out,
                );
            }
        }
    }

    /// The properties the main event and the span share, in the order they are shipped.
    fn common_attributes(
        &mut self,
        x: &Exchange<'_>,
        rec: &RecordView<'_>,
        request: &RequestRead<'_>,
        response: &ResponseRead<'_>,
        sender: Option<&Sender>,
    ) -> Vec<KeyValue> {
        let mut c = Common::default();
        genai_attrs(&mut c, rec, request, response);
        if let Some(u) = &rec.usage {
            usage_attrs(&mut c, u);
            self.cost_attrs(&mut c, rec, u, request.peek.model.as_deref());
        }
        identity_attrs(&mut c, x, rec, sender);
        outcome_attrs(&mut c, x, rec);
        timing_attrs(&mut c, rec, response);
        quota_attrs(&mut c, rec);
        c.0
    }

    /// The exchange's cost from the price table, or why it has none (each unknown model is
    /// warned about once).
    fn cost_attrs(
        &mut self,
        c: &mut Common,
        rec: &RecordView<'_>,
        u: &Usage,
        request_model: Option<&str>,
    ) {
        let prices = &self.options.prices;
        // The response's model is billed (a refusal fallback answers with another one).
        let model = conversation::pricing_model(rec.model.as_deref(), request_model);
        match model.map(|m| prices.price(m, u)) {
            Some(Ok(cost)) => {
                c.value("claude.cost.usd", Value::DoubleValue(cost.usd));
                c.value(
                    "claude.cost.long_context",
                    Value::BoolValue(cost.long_context),
                );
                c.str("claude.cost.prices_date", &prices.date);
            }
            priced => {
                self.unpriced += 1;
                let why = match &priced {
                    Some(Err(why)) => why.to_string(),
                    _ => "no model named".to_string(),
                };
                c.value("claude.cost.unpriced", Value::BoolValue(true));
                c.str("claude.cost.unpriced_reason", &why);
                c.str("claude.cost.prices_date", &prices.date);
                let model = model.unwrap_or("(none)");
                if !self.unpriced_models.contains(model) {
                    self.unpriced_models.insert(model.to_string());
                    tracing::warn!(
                        model,
                        prices_date = %prices.date,
                        "no cost for model {model}: {why}; its exchanges carry \
                         claude.cost.unpriced=true (a newer table: --prices, see \
                         docs/seq-events.md \"Cost\")"
                    );
                }
            }
        }
    }

    /// The exchange's span: a GenAI client span (`chat {model}`), under Claude Code's span
    /// when the request carried a `traceparent`.
    fn fill_span(
        &mut self,
        x: &Exchange<'_>,
        rec: &RecordView<'_>,
        request: &RequestRead<'_>,
        common: &[KeyValue],
    ) {
        let span = &mut self.span;
        let (trace_id, span_id) = x.ids();
        span.trace_id.clear();
        span.trace_id.extend_from_slice(trace_id);
        span.span_id.clear();
        span.span_id.extend_from_slice(span_id);
        span.parent_span_id.clear();
        if let Some(c) = &x.caller {
            span.parent_span_id.extend_from_slice(&c.parent_id);
        }
        span.name.clear();
        if request.facts.route == Route::Messages {
            span.name.push_str("chat");
            if let Some(m) = request_model(rec, request) {
                span.name.push(' ');
                span.name.push_str(m);
            }
        } else {
            span.name.push_str(&rec.request.method);
            span.name.push(' ');
            span.name.push_str(&rec.request.path);
        }
        span.kind = SpanKind::Client as i32;
        span.start_time_unix_nano = x.time_ns;
        span.end_time_unix_nano = x.end_ns;
        span.attributes.clear();
        span.attributes.extend(common.iter().cloned());
        let server = self.options.server_address.clone();
        span.attributes
            .push(kv("server.address", Value::StringValue(server)));
        let method = Value::StringValue(rec.request.method.to_string());
        span.attributes.push(kv("http.request.method", method));
        let path = Value::StringValue(rec.request.path.to_string());
        span.attributes.push(kv("url.path", path));
        let failed = !x.complete || x.status.is_some_and(|s| s >= 400);
        span.status = Some(if failed {
            Status {
                code: StatusCode::Error as i32,
                message: rec.error.as_deref().map(str::to_string).unwrap_or_else(|| {
                    match x.status {
                        Some(s) if x.complete => format!("HTTP {s}"),
                        _ => rec.outcome.to_string(),
                    }
                }),
            }
        } else {
            Status::default()
        });
        self.has_span = true;
    }

    /// The main event (a one-line summary, the properties, the bodies that fit inline), then
    /// the parts of the bodies that did not fit.
    fn emit_exchange(
        &mut self,
        x: &Exchange<'_>,
        rec: &RecordView<'_>,
        common: &[KeyValue],
        request: &RequestRead<'_>,
        response: &ResponseRead<'_>,
        out: &mut dyn FnMut(&LogRecord),
    ) {
        let event_max_bytes = self.event_max_bytes;
        let budget = event_max_bytes - PART_OVERHEAD;
        let delta = self.options.bodies == Bodies::Delta;
        let Encoder {
            record: r, pool, ..
        } = self;
        x.start(pool, r, x.severity);
        main_attrs(pool, &mut r.attributes, rec, common, request);
        let message = any_string(&mut r.body);
        summary(message, rec, x.status, request.peek.model.as_deref());
        let size = escaped_len(message) + attrs_size(&r.attributes) + PART_OVERHEAD;
        let bodies = bodies_of(rec, &request.encoded.body, response.sse_message, delta);
        let inline = inline_bodies(&bodies, size, event_max_bytes);
        let mut split: Vec<(&str, Vec<&str>)> = Vec::new();
        for (&(name, text), inline) in bodies.iter().zip(inline) {
            if inline {
                pool.str(&mut r.attributes, &["claude.", name], text);
            } else {
                let parts = split_parts(text, budget);
                let count = Value::IntValue(parts.len() as i64);
                pool.value(&mut r.attributes, &["claude.", name, ".parts"], count);
                split.push((name, parts));
            }
        }
        out(r);
        for (name, parts) in split {
            x.start(pool, r, x.severity);
            pool.str(&mut r.attributes, &["claude.exchange.id"], &rec.id);
            let after = |p: &mut Pool, a: &mut Vec<KeyValue>| {
                session_attrs(p, a, x.session);
                x.view_url_attr(p, a);
            };
            emit_parts(pool, r, name, &parts, after, out);
        }
    }
}

/// What every event and the span of one exchange share, read once from its record.
struct Exchange<'r> {
    time_ns: u64,
    end_ns: u64,
    observed_ns: u64,
    session: Option<&'r str>,
    /// Claude Code's own trace when the request carries its `traceparent`: the exchange
    /// span then sits under Claude Code's `claude_code.llm_request` span.
    caller: Option<TraceParent>,
    /// `None`: the exchange has no trace (and its events no trace or span id).
    trace_id: Option<[u8; 16]>,
    span_id: [u8; 8],
    status: Option<u16>,
    complete: bool,
    severity: (i32, &'static str),
    view_url: Option<String>,
}

impl<'r> Exchange<'r> {
    fn read(rec: &'r RecordView<'_>, observed_ns: u64, view_base_url: Option<&str>) -> Self {
        let time_ns = parse_time_ns(&rec.started_at).unwrap_or(0);
        let end_ns = rec
            .ended_at
            .as_deref()
            .and_then(parse_time_ns)
            .unwrap_or(time_ns)
            .max(time_ns);
        let session = rec.session_id.as_deref();
        let caller = rec
            .request
            .headers
            .iter()
            .find(|(name, _)| name.0 == "traceparent")
            .and_then(|(_, value)| trace_context::parse(&value.0));
        let trace_id = match &caller {
            Some(c) => Some(c.trace_id),
            None => ids::trace_id(session, &rec.id),
        };
        let status = rec.response.as_ref().map(|r| r.status);
        let complete = rec.outcome == "complete";
        let severity = match status {
            _ if !complete => (SEVERITY_ERROR, "ERROR"),
            Some(s) if s >= 500 => (SEVERITY_ERROR, "ERROR"),
            Some(s) if s >= 400 => (SEVERITY_WARN, "WARN"),
            _ => (SEVERITY_INFO, "INFO"),
        };
        Exchange {
            time_ns,
            end_ns,
            observed_ns,
            session,
            caller,
            trace_id,
            span_id: ids::exchange_span_id(&rec.id),
            status,
            complete,
            severity,
            view_url: view_base_url.map(|base| format!("{base}/exchange/{}", rec.id)),
        }
    }

    /// The trace and span id of the exchange's events: both empty when it has no trace.
    fn ids(&self) -> (&[u8], &[u8]) {
        match &self.trace_id {
            Some(trace_id) => (trace_id, &self.span_id),
            None => (&[], &[]),
        }
    }

    /// Readies `r` for an event of this exchange.
    fn start(&self, pool: &mut Pool, r: &mut LogRecord, (severity, text): (i32, &str)) {
        pool.reset(
            r,
            self.time_ns,
            self.observed_ns,
            severity,
            text,
            self.ids(),
        );
    }

    fn view_url_attr(&self, pool: &mut Pool, attrs: &mut Vec<KeyValue>) {
        if let Some(url) = &self.view_url {
            pool.str(attrs, &["claude.view.url"], url);
        }
    }
}

/// The request as the exchange's events ship it.
struct RequestRead<'a> {
    facts: Facts,
    peek: BodyPeek,
    encoded: Encoded<'a>,
}

/// The model asked for: the request body's, else the record's.
fn request_model<'r>(rec: &'r RecordView<'_>, request: &'r RequestRead<'_>) -> Option<&'r str> {
    request.peek.model.as_deref().or(rec.model.as_deref())
}

/// What the encoder reads of the response besides its bodies.
struct ResponseRead<'a> {
    /// A stream's reassembled message (`response.sse.message`).
    sse_message: Option<&'a RawValue>,
    first_token_ms: Option<f64>,
    max_gap_ms: Option<f64>,
    id: Option<String>,
}

/// Reads the response's message (the stream's, else the JSON body) into `facts`, and the
/// stream's timing.
fn read_response<'a>(rec: &RecordView<'a>, facts: &mut Facts) -> ResponseRead<'a> {
    let sse_view = rec
        .response
        .as_ref()
        .and_then(|r| r.sse)
        .and_then(|sse| serde_json::from_str::<SseView<'a>>(sse.get()).ok());
    let sse_message = sse_view.as_ref().and_then(|v| v.message);
    let (first_token_ms, max_gap_ms) = sse_view
        .as_ref()
        .map_or((None, None), |v| stream_timing(&v.events));
    let message = match (sse_message, rec.response.as_ref()) {
        (Some(m), _) => Some(m.get()),
        (None, Some(resp)) => top_raw(resp.body.get(), "json"),
        _ => None,
    };
    if facts.route == Route::Messages
        && let Some(m) = message
    {
        facts.response_message_text(m);
    }
    ResponseRead {
        sse_message,
        first_token_ms,
        max_gap_ms,
        id: message.and_then(|m| top_str(m, "id")),
    }
}

/// Attributes in the making, for the main event and the span.
#[derive(Default)]
struct Common(Vec<KeyValue>);

impl Common {
    fn str(&mut self, key: &str, value: &str) {
        self.0.push(kv(key, Value::StringValue(value.into())));
    }

    fn value(&mut self, key: &str, value: Value) {
        self.0.push(kv(key, value));
    }
}

/// The GenAI semantic conventions' operation, models, response id and finish reason.
fn genai_attrs(
    c: &mut Common,
    rec: &RecordView<'_>,
    request: &RequestRead<'_>,
    response: &ResponseRead<'_>,
) {
    c.str("gen_ai.provider.name", "anthropic");
    if request.facts.route == Route::Messages {
        c.str("gen_ai.operation.name", "chat");
    }
    if let Some(m) = request_model(rec, request) {
        c.str("gen_ai.request.model", m);
    }
    if rec.response.is_some()
        && let Some(m) = &rec.model
    {
        c.str("gen_ai.response.model", m);
    }
    if let Some(id) = &response.id {
        c.str("gen_ai.response.id", id);
    }
    if let Some(reason) = &rec.stop_reason {
        let reasons = ArrayValue {
            values: vec![AnyValue {
                value: Some(Value::StringValue(reason.to_string())),
            }],
        };
        c.value("gen_ai.response.finish_reasons", Value::ArrayValue(reasons));
    }
}

/// Token counts; the conventions count every input token, cached or not.
fn usage_attrs(c: &mut Common, u: &Usage) {
    let read = u.cache_read_input_tokens;
    let written = u.cache_creation_input_tokens;
    if u.input_tokens.is_some() || read.is_some() || written.is_some() {
        let all = u.input_tokens.unwrap_or(0) + read.unwrap_or(0) + written.unwrap_or(0);
        c.value("gen_ai.usage.input_tokens", Value::IntValue(all as i64));
    }
    let tokens = [
        ("gen_ai.usage.output_tokens", u.output_tokens),
        ("gen_ai.usage.cache_read.input_tokens", read),
        ("gen_ai.usage.cache_creation.input_tokens", written),
    ];
    for (k, v) in tokens {
        if let Some(v) = v {
            c.value(k, Value::IntValue(v as i64));
        }
    }
}

/// Whose exchange this is: session, sending agent, exchange id, its page in the viewer.
fn identity_attrs(c: &mut Common, x: &Exchange<'_>, rec: &RecordView<'_>, sender: Option<&Sender>) {
    if let Some(s) = x.session {
        c.str("gen_ai.conversation.id", s);
        c.str("session.id", s);
    }
    if let Some(sender) = sender {
        c.str("claude.agent", sender.agent.as_str());
        if let Some(sub) = sender
            .subagent
            .as_ref()
            .filter(|s| !s.tool_use_id.is_empty())
        {
            c.str("claude.agent.tool_use_id", &sub.tool_use_id);
        }
    }
    c.str("claude.exchange.id", &rec.id);
    if let Some(url) = &x.view_url {
        c.str("claude.view.url", url);
    }
}

/// How the exchange ended: the proxy's outcome, the error, the HTTP status.
fn outcome_attrs(c: &mut Common, x: &Exchange<'_>, rec: &RecordView<'_>) {
    c.str("claude.outcome", &rec.outcome);
    if let Some(e) = &rec.error {
        c.str("claude.error", e);
        c.str("error.type", &rec.outcome);
    } else if let Some(s) = x.status.filter(|s| *s >= 400) {
        c.str("error.type", &s.to_string());
    }
    if let Some(s) = x.status {
        c.value("http.response.status_code", Value::IntValue(s.into()));
    }
}

/// Duration, time to first byte and token, output rate, longest stall of the stream.
fn timing_attrs(c: &mut Common, rec: &RecordView<'_>, response: &ResponseRead<'_>) {
    if let Some(d) = rec.duration_ms {
        c.value("claude.duration_ms", Value::DoubleValue(d));
    }
    if let Some(t) = rec.ttfb_ms {
        c.value("claude.ttfb_ms", Value::DoubleValue(t));
    }
    if let (true, Some(d), Some(t), Some(o)) = (
        rec.stream,
        rec.duration_ms,
        rec.ttfb_ms,
        rec.usage.as_ref().and_then(|u| u.output_tokens),
    ) && d > t
    {
        let rate = o as f64 / ((d - t) / 1000.0);
        c.value("claude.output_tokens_per_second", Value::DoubleValue(rate));
    }
    if let Some(t) = response.first_token_ms {
        c.value("claude.time_to_first_token_ms", Value::DoubleValue(t));
    }
    if let Some(g) = response.max_gap_ms {
        c.value("claude.stream_max_gap_ms", Value::DoubleValue(g));
    }
}

/// The rate-limit headers of the response, typed.
fn quota_attrs(c: &mut Common, rec: &RecordView<'_>) {
    let Some(resp) = &rec.response else { return };
    for (name, value) in &resp.headers {
        if let Some((key, typed)) = quota::property(&name.0, &value.0) {
            let v = match typed {
                quota::Typed::Int(i) => Value::IntValue(i),
                quota::Typed::Double(d) => Value::DoubleValue(d),
                quota::Typed::Text(t) => Value::StringValue(t.to_string()),
            };
            c.value(&key, v);
        }
    }
}

/// The main event's attributes before its bodies: the request line, the shared properties,
/// the delta's bookkeeping, the body sizes and the headers.
fn main_attrs(
    pool: &mut Pool,
    attrs: &mut Vec<KeyValue>,
    rec: &RecordView<'_>,
    common: &[KeyValue],
    request: &RequestRead<'_>,
) {
    pool.str(attrs, &["http.request.method"], &rec.request.method);
    pool.str(attrs, &["url.path"], &rec.request.path);
    if let Some(q) = &rec.request.query {
        pool.str(attrs, &["url.query"], q);
    }
    for c in common {
        if let Some(v) = c.value.as_ref().and_then(|v| v.value.clone()) {
            pool.value(attrs, &[&c.key], v);
        }
    }
    let encoded = &request.encoded;
    if let Some((from, shared)) = &encoded.continues {
        pool.str(attrs, &["claude.delta.continues"], from);
        let shared = Value::IntValue(*shared as i64);
        pool.value(attrs, &["claude.delta.shared"], shared);
    }
    if let Some(n) = encoded.new_messages {
        let n = Value::IntValue(n as i64);
        pool.value(attrs, &["claude.delta.new_messages"], n);
    }
    if matches!(encoded.body, Cow::Owned(_)) {
        pool.str(attrs, &["claude.request.encoding"], "delta");
    }
    pool.value(attrs, &["claude.stream"], Value::BoolValue(rec.stream));
    if let Some(size) = request.peek.size {
        let size = Value::IntValue(size as i64);
        pool.value(attrs, &["http.request.body.size"], size);
    }
    if let Some(resp) = &rec.response
        && let Some(size) = peek_body(resp.body.get(), false).size
    {
        let size = Value::IntValue(size as i64);
        pool.value(attrs, &["http.response.body.size"], size);
    }
    for (name, value) in &rec.request.headers {
        pool.str(attrs, &["http.request.header.", &name.0], &value.0);
    }
    if let Some(resp) = &rec.response {
        for (name, value) in &resp.headers {
            pool.str(attrs, &["http.response.header.", &name.0], &value.0);
        }
    }
}

/// The bodies the main event carries, by name: the request (whole or its delta), the
/// response body, and the stream (its reassembled message in `delta`, its events in `full`).
fn bodies_of<'b>(
    rec: &'b RecordView<'_>,
    request_body: &'b str,
    sse_message: Option<&'b RawValue>,
    delta: bool,
) -> Vec<(&'static str, &'b str)> {
    let mut bodies = vec![("request.body", request_body)];
    if let Some(resp) = &rec.response {
        bodies.push(("response.body", resp.body.get()));
        match (delta, sse_message, resp.sse) {
            (true, Some(m), _) => bodies.push(("response.message", m.get())),
            (_, _, Some(s)) => bodies.push(("response.sse", s.get())),
            _ => {}
        }
    }
    bodies
}

/// Which bodies go inline (as attributes of the main event, already `size` bytes): while the
/// event stays within the budget, smallest first, so a small exchange reads in one event and
/// a large one keeps its small bodies inline; the others go to ordered part events.
fn inline_bodies(bodies: &[(&str, &str)], mut size: usize, event_max_bytes: usize) -> [bool; 3] {
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
    inline
}

/// The session's id under both names it is queried by, on every event of an exchange.
fn session_attrs(pool: &mut Pool, attrs: &mut Vec<KeyValue>, session: Option<&str>) {
    if let Some(s) = session {
        pool.str(attrs, &["gen_ai.conversation.id"], s);
        pool.str(attrs, &["session.id"], s);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::ids::hex16;
    use serde::Deserialize;

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
