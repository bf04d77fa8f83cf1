//! Seq's default ingestion limits and how an event's size is measured against them.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;

/// Seq's default per-event limit (256 KiB).
pub const DEFAULT_EVENT_LIMIT: usize = 256 * 1024;
/// Seq's default per-request limit (10 MB).
pub const DEFAULT_REQUEST_LIMIT: usize = 10_000_000;

/// Size of an event as a JSON document: the body plus every attribute key and value, each
/// JSON-escaped. Computed without building the document, so checking big batches stays cheap.
pub fn event_size(record: &LogRecord) -> usize {
    let body = record.body.as_ref().map_or(4, any_value_len);
    record.attributes.iter().fold(body, |n, kv| {
        n + json_str_len(&kv.key) + kv.value.as_ref().map_or(4, any_value_len)
    })
}

/// Size of a span as the event Seq makes of it: its name (the message) plus every attribute
/// key and value, JSON-escaped, as for a log record.
pub fn span_size(span: &Span) -> usize {
    span.attributes
        .iter()
        .fold(json_str_len(&span.name), |n, kv| {
            n + json_str_len(&kv.key) + kv.value.as_ref().map_or(4, any_value_len)
        })
}

fn any_value_len(v: &AnyValue) -> usize {
    match &v.value {
        None => 4,
        Some(Value::StringValue(s)) => json_str_len(s),
        Some(Value::BoolValue(b)) => {
            if *b {
                4
            } else {
                5
            }
        }
        Some(Value::IntValue(i)) => i.to_string().len(),
        Some(Value::StringValueStrindex(i)) => i.to_string().len(),
        Some(Value::DoubleValue(d)) => d.to_string().len(),
        // Bytes are shown base64-encoded.
        Some(Value::BytesValue(b)) => b.len().div_ceil(3) * 4 + 2,
        Some(Value::ArrayValue(a)) => {
            2 + a.values.iter().map(|v| any_value_len(v) + 1).sum::<usize>()
        }
        Some(Value::KvlistValue(l)) => {
            2 + l
                .values
                .iter()
                .map(|kv| json_str_len(&kv.key) + 2 + kv.value.as_ref().map_or(4, any_value_len))
                .sum::<usize>()
        }
    }
}

/// Length of `s` as a JSON string literal, quotes included.
pub fn json_str_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_str_len_counts_escapes_like_serde_json() {
        for s in ["", "plain", "q\"uo\\te", "nl\n\t\r", "\u{1}ctl", "ünïcode"] {
            assert_eq!(
                json_str_len(s),
                serde_json::to_string(s).unwrap().len(),
                "{s:?}"
            );
        }
    }
}
