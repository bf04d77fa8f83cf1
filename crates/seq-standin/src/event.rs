//! What the stand-in keeps of an accepted LogRecord: the parts a test (or a person reading
//! `events.jsonl`) checks, with OTLP values turned into plain JSON.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt::Write;

/// One accepted event, as stored in memory and written as one line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    /// Lowercase hex; empty when the record had none.
    pub trace_id: String,
    /// Lowercase hex; empty when the record had none.
    pub span_id: String,
    /// The body; a string body stays a JSON string, byte for byte.
    pub body: Value,
    pub attributes: Map<String, Value>,
    /// The resource attributes of the record's `ResourceLogs`.
    pub resource: Map<String, Value>,
}

impl StoredEvent {
    pub fn new(record: &LogRecord, resource: &Map<String, Value>) -> Self {
        StoredEvent {
            time_unix_nano: record.time_unix_nano,
            observed_time_unix_nano: record.observed_time_unix_nano,
            severity_number: record.severity_number,
            severity_text: record.severity_text.clone(),
            trace_id: hex(&record.trace_id),
            span_id: hex(&record.span_id),
            body: record.body.as_ref().map_or(Value::Null, to_json),
            attributes: attributes(&record.attributes),
            resource: resource.clone(),
        }
    }

    /// The body when it is a string.
    pub fn body_str(&self) -> Option<&str> {
        self.body.as_str()
    }

    /// An attribute's value when it is a string.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// An attribute's value when it is an integer.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_i64)
    }
}

/// One accepted span, as Seq keeps it: an event with `@TraceId`, `@SpanId`, `@ParentId`,
/// start and end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSpan {
    /// Lowercase hex (16 bytes).
    pub trace_id: String,
    /// Lowercase hex (8 bytes).
    pub span_id: String,
    /// Lowercase hex; empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// OTLP `SpanKind` number (3 = CLIENT).
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// OTLP status code (0 unset, 1 ok, 2 error).
    pub status_code: i32,
    pub status_message: String,
    pub attributes: Map<String, Value>,
    pub resource: Map<String, Value>,
}

impl StoredSpan {
    pub fn new(span: &Span, resource: &Map<String, Value>) -> Self {
        let status = span.status.clone().unwrap_or_default();
        StoredSpan {
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent_span_id: hex(&span.parent_span_id),
            name: span.name.clone(),
            kind: span.kind,
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            status_code: status.code,
            status_message: status.message,
            attributes: attributes(&span.attributes),
            resource: resource.clone(),
        }
    }

    /// An attribute's value when it is a string.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// An attribute's value when it is an integer.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_i64)
    }
}

/// OTLP key/values as a JSON object (later duplicates win, as in Seq).
pub fn attributes(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, to_json),
            )
        })
        .collect()
}

fn to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(Any::StringValue(s)) => Value::String(s.clone()),
        Some(Any::BoolValue(b)) => Value::Bool(*b),
        Some(Any::IntValue(i)) => Value::from(*i),
        Some(Any::DoubleValue(d)) => Value::from(*d),
        Some(Any::BytesValue(b)) => Value::String(hex(b)),
        Some(Any::ArrayValue(a)) => Value::Array(a.values.iter().map(to_json).collect()),
        Some(Any::KvlistValue(l)) => Value::Object(attributes(&l.values)),
        // An index into a profiles string table: meaningless in logs; kept as the number.
        Some(Any::StringValueStrindex(i)) => Value::from(*i),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
