//! The one LogRecord the encoder refills for every event, and the pool of attributes that
//! keeps their strings' allocations from event to event.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

pub(crate) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: any(value),
        ..Default::default()
    }
}

/// Attributes of earlier events, kept so that their strings' allocations serve the next ones.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    spare: Vec<KeyValue>,
}

impl Pool {
    /// Readies `r` for a new event: its attributes go back to the pool, its other fields are
    /// set (the fields the shipper never sets stay at their defaults).
    pub(crate) fn reset(
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
    pub(crate) fn slot(&mut self, key: &[&str]) -> KeyValue {
        let mut kv = self.spare.pop().unwrap_or_default();
        kv.key.clear();
        for k in key {
            kv.key.push_str(k);
        }
        kv
    }

    pub(crate) fn str(&mut self, attrs: &mut Vec<KeyValue>, key: &[&str], value: &str) {
        let mut kv = self.slot(key);
        set_string(any_string(&mut kv.value), value);
        attrs.push(kv);
    }

    pub(crate) fn value(&mut self, attrs: &mut Vec<KeyValue>, key: &[&str], value: Value) {
        let mut kv = self.slot(key);
        kv.value = any(value);
        attrs.push(kv);
    }
}

pub(crate) fn any(value: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

/// The string of a string value, which `v` becomes if it was anything else.
pub(crate) fn any_string(v: &mut Option<AnyValue>) -> &mut String {
    let any = v.get_or_insert_with(AnyValue::default);
    if !matches!(any.value, Some(Value::StringValue(_))) {
        any.value = Some(Value::StringValue(String::new()));
    }
    match &mut any.value {
        Some(Value::StringValue(s)) => s,
        _ => unreachable!("set just above"),
    }
}

pub(crate) fn set_string(s: &mut String, value: &str) {
    s.clear();
    s.push_str(value);
}

/// Sends `parts` (one body, split) as consecutive events of `r`, which holds the events'
/// leading attributes: `claude.body.name`, `claude.body.part` (1-based) and
/// `claude.body.parts` follow them, then what `after` adds.
pub(crate) fn emit_parts(
    pool: &mut Pool,
    r: &mut LogRecord,
    name: &str,
    parts: &[&str],
    after: impl FnOnce(&mut Pool, &mut Vec<KeyValue>),
    out: &mut dyn FnMut(&LogRecord),
) {
    pool.str(&mut r.attributes, &["claude.body.name"], name);
    let part_at = r.attributes.len();
    pool.value(&mut r.attributes, &["claude.body.part"], Value::IntValue(0));
    let count = Value::IntValue(parts.len() as i64);
    pool.value(&mut r.attributes, &["claude.body.parts"], count);
    after(pool, &mut r.attributes);
    for (i, part) in parts.iter().enumerate() {
        r.attributes[part_at].value = any(Value::IntValue(i as i64 + 1));
        set_string(any_string(&mut r.body), part);
        out(r);
    }
}
