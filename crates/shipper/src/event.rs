//! One OTLP LogRecord held as borrowed data and protobuf-encoded by hand, straight into the
//! batch buffer. Building prost's owned `LogRecord` tree cost an allocation per attribute
//! key and value plus a copy of every body; this writes the same bytes (the tests compare
//! them with prost's encoding) without either. Field numbers are those of
//! opentelemetry/proto/logs/v1/logs.proto and common/v1/common.proto.

use prost::encoding::encoded_len_varint;
use std::borrow::Cow;

/// An attribute value (the subset of `AnyValue` the shipper sends).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
    StrArray(Vec<Cow<'a, str>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attr<'a> {
    pub key: Cow<'a, str>,
    pub value: Value<'a>,
}

impl<'a> Attr<'a> {
    pub fn str(key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        Attr {
            key: key.into(),
            value: Value::Str(value.into()),
        }
    }

    pub fn int(key: impl Into<Cow<'a, str>>, value: i64) -> Self {
        Attr {
            key: key.into(),
            value: Value::Int(value),
        }
    }

    pub fn double(key: impl Into<Cow<'a, str>>, value: f64) -> Self {
        Attr {
            key: key.into(),
            value: Value::Double(value),
        }
    }

    pub fn bool(key: impl Into<Cow<'a, str>>, value: bool) -> Self {
        Attr {
            key: key.into(),
            value: Value::Bool(value),
        }
    }
}

/// A LogRecord. Zero / empty fields are left out, as protobuf does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: &'static str,
    /// Always a string body (Seq shows a string body as the message).
    pub body: Cow<'a, str>,
    pub attributes: Vec<Attr<'a>>,
    /// 16 bytes, or empty.
    pub trace_id: &'a [u8],
}

fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

fn put_varint(buf: &mut Vec<u8>, v: u64) {
    prost::encoding::encode_varint(v, buf);
}

fn put_bytes(buf: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    buf.push(key);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

// AnyValue: string_value = 1, bool_value = 2, int_value = 3, double_value = 4,
// array_value = 5 (ArrayValue.values = 1).
fn any_str_len(s: &str) -> usize {
    field_len(s.len())
}

impl Value<'_> {
    fn len(&self) -> usize {
        match self {
            Value::Str(s) => any_str_len(s),
            Value::Int(i) => 1 + encoded_len_varint(*i as u64),
            Value::Double(_) => 9,
            Value::Bool(_) => 2,
            Value::StrArray(items) => field_len(Self::array_len(items)),
        }
    }

    fn array_len(items: &[Cow<'_, str>]) -> usize {
        items.iter().map(|s| field_len(any_str_len(s))).sum()
    }

    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Value::Str(s) => put_bytes(buf, 0x0a, s.as_bytes()),
            Value::Bool(b) => buf.extend_from_slice(&[0x10, u8::from(*b)]),
            Value::Int(i) => {
                buf.push(0x18);
                put_varint(buf, *i as u64);
            }
            Value::Double(d) => {
                buf.push(0x21);
                buf.extend_from_slice(&d.to_le_bytes());
            }
            Value::StrArray(items) => {
                buf.push(0x2a);
                put_varint(buf, Self::array_len(items) as u64);
                for s in items {
                    buf.push(0x0a);
                    put_varint(buf, any_str_len(s) as u64);
                    put_bytes(buf, 0x0a, s.as_bytes());
                }
            }
        }
    }
}

// KeyValue: key = 1, value = 2.
impl Attr<'_> {
    fn len(&self) -> usize {
        let key = if self.key.is_empty() {
            0
        } else {
            field_len(self.key.len())
        };
        key + field_len(self.value.len())
    }

    fn encode(&self, buf: &mut Vec<u8>) {
        if !self.key.is_empty() {
            put_bytes(buf, 0x0a, self.key.as_bytes());
        }
        buf.push(0x12);
        put_varint(buf, self.value.len() as u64);
        self.value.encode(buf);
    }
}

// LogRecord: time_unix_nano = 1 (fixed64), severity_number = 2, severity_text = 3, body = 5,
// attributes = 6, trace_id = 9, observed_time_unix_nano = 11 (fixed64).
impl Event<'_> {
    /// Length of the LogRecord message.
    pub fn encoded_len(&self) -> usize {
        let mut n = 0;
        if self.time_unix_nano != 0 {
            n += 9;
        }
        if self.severity_number != 0 {
            n += 1 + encoded_len_varint(self.severity_number as u64);
        }
        if !self.severity_text.is_empty() {
            n += field_len(self.severity_text.len());
        }
        n += field_len(any_str_len(&self.body));
        n += self
            .attributes
            .iter()
            .map(|a| field_len(a.len()))
            .sum::<usize>();
        if !self.trace_id.is_empty() {
            n += field_len(self.trace_id.len());
        }
        if self.observed_time_unix_nano != 0 {
            n += 9;
        }
        n
    }

    /// Appends the LogRecord message (without a field key or length prefix).
    pub fn encode(&self, buf: &mut Vec<u8>) {
        if self.time_unix_nano != 0 {
            buf.push(0x09);
            buf.extend_from_slice(&self.time_unix_nano.to_le_bytes());
        }
        if self.severity_number != 0 {
            buf.push(0x10);
            put_varint(buf, self.severity_number as u64);
        }
        if !self.severity_text.is_empty() {
            put_bytes(buf, 0x1a, self.severity_text.as_bytes());
        }
        buf.push(0x2a);
        put_varint(buf, any_str_len(&self.body) as u64);
        put_bytes(buf, 0x0a, self.body.as_bytes());
        for a in &self.attributes {
            buf.push(0x32);
            put_varint(buf, a.len() as u64);
            a.encode(buf);
        }
        if !self.trace_id.is_empty() {
            put_bytes(buf, 0x4a, self.trace_id);
        }
        if self.observed_time_unix_nano != 0 {
            buf.push(0x59);
            buf.extend_from_slice(&self.observed_time_unix_nano.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use prost::Message;

    fn prost_value(v: &Value<'_>) -> AnyValue {
        use any_value::Value as V;
        AnyValue {
            value: Some(match v {
                Value::Str(s) => V::StringValue(s.to_string()),
                Value::Int(i) => V::IntValue(*i),
                Value::Double(d) => V::DoubleValue(*d),
                Value::Bool(b) => V::BoolValue(*b),
                Value::StrArray(items) => V::ArrayValue(ArrayValue {
                    values: items
                        .iter()
                        .map(|s| AnyValue {
                            value: Some(V::StringValue(s.to_string())),
                        })
                        .collect(),
                }),
            }),
        }
    }

    fn prost_record(e: &Event<'_>) -> LogRecord {
        LogRecord {
            time_unix_nano: e.time_unix_nano,
            observed_time_unix_nano: e.observed_time_unix_nano,
            severity_number: e.severity_number,
            severity_text: e.severity_text.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(e.body.to_string())),
            }),
            attributes: e
                .attributes
                .iter()
                .map(|a| KeyValue {
                    key: a.key.to_string(),
                    value: Some(prost_value(&a.value)),
                    ..Default::default()
                })
                .collect(),
            trace_id: e.trace_id.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn hand_encoding_is_byte_identical_to_prost() {
        let trace = [7u8; 16];
        let long = "x".repeat(300);
        let events = [
            Event::default(),
            Event {
                body: "".into(),
                attributes: vec![Attr::str("", ""), Attr::int("zero", 0)],
                ..Default::default()
            },
            Event {
                time_unix_nano: 1_795_773_600_500_000_000,
                observed_time_unix_nano: 42,
                severity_number: 17,
                severity_text: "ERROR",
                body: "POST /v1/messages 200 é🦀".into(),
                attributes: vec![
                    Attr::str("http.request.method", "POST"),
                    Attr::int("http.response.status_code", 200),
                    Attr::int("negative", -5),
                    Attr::double("claude.duration_ms", 2300.25),
                    Attr::bool("claude.stream", true),
                    Attr::bool("f", false),
                    Attr {
                        key: "gen_ai.response.finish_reasons".into(),
                        value: Value::StrArray(vec!["end_turn".into(), long.as_str().into()]),
                    },
                    Attr::str(
                        format!("http.request.header.{}", "x-api-key"),
                        long.as_str(),
                    ),
                ],
                trace_id: &trace,
            },
        ];
        for e in &events {
            let mut mine = Vec::new();
            e.encode(&mut mine);
            assert_eq!(mine.len(), e.encoded_len());
            let theirs = prost_record(e).encode_to_vec();
            assert_eq!(mine, theirs, "{e:?}");
            assert_eq!(LogRecord::decode(mine.as_slice()).unwrap(), prost_record(e));
        }
    }
}
