//! A batch: encoded LogRecords (and the spans of their exchanges) waiting to be sent, bounded
//! by bytes. Records are protobuf-encoded once, as they are added; a request (or, when the
//! endpoint refuses a batch, a request for a slice of it) is the records' bytes behind a small
//! header, so splitting never re-encodes. Logs and traces requests have the same layout
//! (`resource_*` 1 → `resource` 1, `scope_*` 2 → `scope` 1, records 2), so one envelope
//! serves both.

use crate::source::checkpoint::Position;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use std::ops::Range;
use std::time::Instant;

/// `ScopeLogs.log_records` is field 2; the other tags are field 1 of their parent.
const LOG_RECORDS_TAG: u32 = 2;

/// Encoded records of one kind, back to back.
#[derive(Default)]
pub struct Records {
    /// Concatenated `ScopeLogs.log_records` (or `ScopeSpans.spans`) fields: key + length +
    /// message.
    buf: Vec<u8>,
    /// End offset in `buf` of each record.
    ends: Vec<usize>,
}

impl Records {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn span(&self, range: &Range<usize>) -> Range<usize> {
        let start = if range.start == 0 {
            0
        } else {
            self.ends[range.start - 1]
        };
        start..self.ends[range.end - 1]
    }

    /// Decodes record `i` back (for the dead-letter file; rare).
    pub fn decode<M: Message + Default>(&self, i: usize) -> M {
        let span = self.span(&(i..i + 1));
        let mut bytes = &self.buf[span];
        // Skip the field key and length prefix.
        let _key = prost::encoding::decode_varint(&mut bytes).expect("own encoding");
        let _len = prost::encoding::decode_varint(&mut bytes).expect("own encoding");
        M::decode(bytes).expect("own encoding")
    }
}

#[derive(Default)]
pub struct Batch {
    /// The LogRecords.
    logs: Records,
    /// The spans, sent to the traces endpoint before the logs.
    pub spans: Records,
    /// Complete lines whose every event is in this batch (or an earlier one).
    pub lines: u64,
    /// Bytes of those lines in the file, newline included.
    pub line_bytes: u64,
    /// Where the checkpoint goes once this batch (and those before it) are delivered: the
    /// end of the last line whose final event is in this batch.
    pub checkpoint: Option<Position>,
    /// When the first record was added (for the flush interval).
    pub started: Option<Instant>,
}

impl Batch {
    /// Bytes a record adds to a request.
    pub fn encoded_len(rec: &LogRecord) -> usize {
        prost::encoding::message::encoded_len(LOG_RECORDS_TAG, rec)
    }

    pub fn push(&mut self, rec: &LogRecord) {
        prost::encoding::message::encode(LOG_RECORDS_TAG, rec, &mut self.logs.buf);
        self.logs.ends.push(self.logs.buf.len());
        self.started.get_or_insert_with(Instant::now);
    }

    pub fn push_span(&mut self, span: &Span) {
        prost::encoding::message::encode(LOG_RECORDS_TAG, span, &mut self.spans.buf);
        self.spans.ends.push(self.spans.buf.len());
        self.started.get_or_insert_with(Instant::now);
    }

    /// Number of LogRecords.
    pub fn len(&self) -> usize {
        self.logs.len()
    }

    /// No LogRecord and no span.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.spans.is_empty()
    }

    /// Encoded size of the records and spans.
    pub fn bytes(&self) -> usize {
        self.logs.buf.len() + self.spans.buf.len()
    }

    pub fn logs(&self) -> &Records {
        &self.logs
    }

    /// Decodes LogRecord `i` back (for the dead-letter file; rare).
    pub fn record(&self, i: usize) -> LogRecord {
        self.logs.decode(i)
    }
}

/// The resource and scope every request carries, pre-encoded.
pub struct Envelope {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl Envelope {
    pub fn new(resource: &Resource, scope: &InstrumentationScope) -> Self {
        Envelope {
            resource: resource.encode_to_vec(),
            scope: scope.encode_to_vec(),
        }
    }

    /// An `ExportLogsServiceRequest` holding LogRecords `range` of `batch`.
    pub fn request(&self, batch: &Batch, range: Range<usize>) -> Vec<u8> {
        self.wrap(&batch.logs, range)
    }

    /// An `ExportLogsServiceRequest` (LogRecords) or `ExportTraceServiceRequest` (spans)
    /// holding records `range`.
    pub fn wrap(&self, recs: &Records, range: Range<usize>) -> Vec<u8> {
        let records = &recs.buf[recs.span(&range)];
        let field = |len: usize| key_len(1) + encoded_len_varint(len as u64) + len;
        let scope_logs_len = field(self.scope.len()) + records.len();
        let resource_logs_len = field(self.resource.len())
            + key_len(2)
            + encoded_len_varint(scope_logs_len as u64)
            + scope_logs_len;
        let mut out = Vec::with_capacity(field(resource_logs_len));
        // ExportLogsServiceRequest.resource_logs (1)
        encode_key(1, WireType::LengthDelimited, &mut out);
        encode_varint(resource_logs_len as u64, &mut out);
        // ResourceLogs.resource (1)
        encode_key(1, WireType::LengthDelimited, &mut out);
        encode_varint(self.resource.len() as u64, &mut out);
        out.extend_from_slice(&self.resource);
        // ResourceLogs.scope_logs (2)
        encode_key(2, WireType::LengthDelimited, &mut out);
        encode_varint(scope_logs_len as u64, &mut out);
        // ScopeLogs.scope (1), then ScopeLogs.log_records (2) as already encoded
        encode_key(1, WireType::LengthDelimited, &mut out);
        encode_varint(self.scope.len() as u64, &mut out);
        out.extend_from_slice(&self.scope);
        out.extend_from_slice(records);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

    fn rec(i: usize) -> LogRecord {
        LogRecord {
            time_unix_nano: i as u64,
            body: Some(AnyValue {
                value: Some(Value::StringValue(format!(
                    "event {i} {}",
                    "x".repeat(i * 37)
                ))),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_request_for_any_slice_decodes_to_exactly_those_records() {
        let resource = Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue("claude-api-logger".into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "otlp-shipper".into(),
            ..Default::default()
        };
        let env = Envelope::new(&resource, &scope);
        let mut batch = Batch::default();
        let recs: Vec<LogRecord> = (0..50).map(rec).collect();
        for r in &recs {
            batch.push(r);
        }
        assert_eq!(
            batch.bytes(),
            recs.iter().map(Batch::encoded_len).sum::<usize>()
        );
        for range in [0..50, 0..1, 49..50, 10..33] {
            let bytes = env.request(&batch, range.clone());
            let decoded = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
            let expected = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(resource.clone()),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(scope.clone()),
                        log_records: recs[range.clone()].to_vec(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            assert_eq!(decoded, expected);
            assert_eq!(bytes, expected.encode_to_vec());
        }
        assert_eq!(batch.record(7), recs[7]);
    }
}
