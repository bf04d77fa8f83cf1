//! Delivering a batch to the OTLP/HTTP endpoints: its spans to the traces endpoint, then its
//! LogRecords to the logs endpoint, each by POST and the same retry policy — wait and resend,
//! split a refused batch to isolate the offending event, or move an event the endpoint
//! refuses for good to the dead-letter file. Returns only when every span and event of the
//! batch is either acknowledged or dead-lettered (or shutdown interrupted a retry wait).

use crate::metrics::Metrics;
use crate::sink::batch::{Batch, Envelope, Records};
use crate::sink::deadletter::{self, DeadLetter, DeadLetterError};
use crate::sink::retry::{Attempt, Decision, RetryReason, decide, parse_retry_after};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A request that takes longer than this is treated as a connection error and retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a refusal's response body is kept as the reason.
const REASON_MAX: usize = 2_000;

pub struct Sender {
    client: crate::sink::http::Client,
    endpoint: Url,
    /// Where spans go; `None`: the batch has none to send.
    traces_endpoint: Option<Url>,
    headers: HeaderMap,
    envelope: Envelope,
    dead_letter: PathBuf,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Every event is acknowledged or dead-lettered: the checkpoint may move.
    Done,
    /// Shutdown arrived while waiting to retry: the checkpoint must not move.
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
}

/// What a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Logs,
    Spans,
}

impl Sender {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        endpoint: Url,
        traces_endpoint: Option<Url>,
        headers: Vec<(HeaderName, HeaderValue)>,
        tls_verify: bool,
        envelope: Envelope,
        dead_letter: PathBuf,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<Self, SenderError> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .tls_danger_accept_invalid_certs(!tls_verify)
            .build()?;
        let client = crate::sink::http::client(client, metrics.clone());
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(n, v);
        }
        map.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        Ok(Sender {
            client,
            endpoint,
            traces_endpoint,
            headers: map,
            envelope,
            dead_letter,
            metrics,
            shutdown,
        })
    }

    async fn post(&self, url: &Url, body: bytes::Bytes) -> (Attempt, String, bytes::Bytes) {
        let sent = self
            .client
            .post(url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await;
        match sent {
            Err(e) => (Attempt::Transport, format!("{e:#}"), bytes::Bytes::new()),
            Ok(resp) => {
                let code = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let raw = resp.bytes().await.unwrap_or_default();
                let mut reason = String::from_utf8_lossy(&raw).into_owned();
                if reason.len() > REASON_MAX {
                    let mut cut = REASON_MAX;
                    while !reason.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    reason.truncate(cut);
                }
                (Attempt::Status { code, retry_after }, reason, raw)
            }
        }
    }

    /// Sends the spans (so an exchange's trace exists when its events arrive), then the
    /// LogRecords.
    pub async fn deliver(&self, batch: &Batch) -> Result<Delivery, SenderError> {
        if let Some(url) = &self.traces_endpoint
            && !batch.spans.is_empty()
            && self.deliver_kind(url, &batch.spans, Kind::Spans).await? == Delivery::Interrupted
        {
            return Ok(Delivery::Interrupted);
        }
        self.deliver_kind(&self.endpoint, batch.logs(), Kind::Logs)
            .await
    }

    async fn deliver_kind(
        &self,
        url: &Url,
        records: &Records,
        kind: Kind,
    ) -> Result<Delivery, SenderError> {
        if records.is_empty() {
            return Ok(Delivery::Done);
        }
        let mut pending: Vec<Range<usize>> = Vec::new();
        pending.push(0..records.len());
        while let Some(range) = pending.pop() {
            let body = bytes::Bytes::from(self.envelope.wrap(records, range.clone()));
            let mut attempt: u32 = 0;
            loop {
                let (outcome, reason, raw) = self.post(url, body.clone()).await;
                let status = match &outcome {
                    Attempt::Status { code, .. } => *code,
                    Attempt::Transport => 0,
                };
                match decide(&outcome, attempt, rand::random::<f64>()) {
                    Decision::Delivered => {
                        let rejected =
                            self.partial_success(records, kind, range.clone(), status, &raw)?;
                        let counter = match kind {
                            Kind::Logs => &self.metrics.shipped_events,
                            Kind::Spans => &self.metrics.shipped_spans,
                        };
                        counter.fetch_add(range.len() as u64 - rejected, Relaxed);
                        break;
                    }
                    Decision::Retry { after, reason: why } => {
                        self.metrics.retried.fetch_add(1, Relaxed);
                        let reason = reason.trim();
                        match why {
                            RetryReason::Misconfigured if kind == Kind::Spans => tracing::error!(
                                status, endpoint = %url, reason, retry_in_ms = after.as_millis() as u64,
                                "traces endpoint refuses the shipper (check --traces-endpoint and --api-key; \
                                 --traces-endpoint none for a Seq older than 2024.1); retrying"
                            ),
                            RetryReason::Misconfigured => tracing::error!(
                                status, endpoint = %url, reason, retry_in_ms = after.as_millis() as u64,
                                "endpoint refuses the shipper (check --endpoint and --api-key); retrying"
                            ),
                            RetryReason::Transient if attempt >= 3 => tracing::warn!(
                                status,
                                attempt,
                                reason,
                                retry_in_ms = after.as_millis() as u64,
                                "endpoint still unavailable; retrying"
                            ),
                            RetryReason::Transient => tracing::debug!(
                                status,
                                attempt,
                                reason,
                                retry_in_ms = after.as_millis() as u64,
                                "endpoint unavailable; retrying"
                            ),
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(after) => {}
                            _ = self.shutdown.cancelled() => return Ok(Delivery::Interrupted),
                        }
                        attempt = attempt.saturating_add(1);
                    }
                    Decision::Split if range.len() > 1 => {
                        let mid = range.start + range.len() / 2;
                        tracing::debug!(
                            status,
                            events = range.len(),
                            "batch refused; splitting it to isolate the offending event"
                        );
                        // Left half first: pop order keeps the file order.
                        pending.push(mid..range.end);
                        pending.push(range.start..mid);
                        break;
                    }
                    Decision::Split | Decision::DeadLetter => {
                        self.dead_letter(records, kind, range.clone(), status, reason.trim())?;
                        break;
                    }
                }
            }
        }
        Ok(Delivery::Done)
    }

    /// Reads an OTLP partial success from a 2xx reply: counts the rejected records, logs the
    /// endpoint's message, and dead-letters them when it can tell which they are (all of the
    /// request's). Returns how many were rejected.
    fn partial_success(
        &self,
        records: &Records,
        kind: Kind,
        range: Range<usize>,
        status: u16,
        raw: &[u8],
    ) -> Result<u64, DeadLetterError> {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
        use prost::Message;
        let partial = match kind {
            Kind::Logs => ExportLogsServiceResponse::decode(raw)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| (p.rejected_log_records, p.error_message)),
            Kind::Spans => ExportTraceServiceResponse::decode(raw)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| (p.rejected_spans, p.error_message)),
        };
        let Some((rejected, message)) = partial else {
            return Ok(0);
        };
        let rejected = u64::try_from(rejected).unwrap_or(0).min(range.len() as u64);
        let message = message.trim();
        if rejected == 0 {
            if !message.is_empty() {
                tracing::warn!(
                    status,
                    message,
                    "endpoint accepted the batch with a warning"
                );
            }
            return Ok(0);
        }
        self.metrics.rejected.fetch_add(rejected, Relaxed);
        if rejected == range.len() as u64 {
            let reason = format!("partial success: every record rejected: {message}");
            self.dead_letter(records, kind, range, status, &reason)?;
        } else {
            // OTLP does not say which ones: they cannot be told apart from those kept.
            tracing::error!(
                status,
                rejected,
                events = range.len(),
                message,
                "endpoint rejected some records of a batch (OTLP partial success) without saying which; they are lost"
            );
        }
        Ok(rejected)
    }

    fn dead_letter(
        &self,
        records: &Records,
        kind: Kind,
        range: Range<usize>,
        status: u16,
        reason: &str,
    ) -> Result<(), DeadLetterError> {
        use opentelemetry_proto::tonic::logs::v1::LogRecord;
        use opentelemetry_proto::tonic::trace::v1::Span;
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let entries: Vec<DeadLetter<'_>> = range
            .clone()
            .map(|i| {
                // A span is written like an event whose message is the span's name.
                let (attrs, body) = match kind {
                    Kind::Logs => {
                        let rec: LogRecord = records.decode(i);
                        let body = match to_json(rec.body.as_ref()) {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (rec.attributes, body)
                    }
                    Kind::Spans => {
                        let span: Span = records.decode(i);
                        (span.attributes, span.name)
                    }
                };
                let attributes: serde_json::Map<String, serde_json::Value> = attrs
                    .iter()
                    .map(|kv| (kv.key.clone(), to_json(kv.value.as_ref())))
                    .collect();
                DeadLetter {
                    time: time.clone(),
                    status,
                    reason,
                    exchange_id: attributes
                        .get("claude.exchange.id")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                    body,
                    attributes,
                }
            })
            .collect();
        deadletter::append(&self.dead_letter, &entries)?;
        self.metrics
            .dead_lettered
            .fetch_add(range.len() as u64, Relaxed);
        tracing::error!(
            status, reason, events = range.len(), file = %self.dead_letter.display(),
            "endpoint refused events for good; written to the dead-letter file"
        );
        Ok(())
    }
}

fn to_json(v: Option<&AnyValue>) -> serde_json::Value {
    use serde_json::Value as J;
    match v.and_then(|v| v.value.as_ref()) {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => J::from(*d),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(|v| to_json(Some(v))).collect()),
        Some(Value::KvlistValue(l)) => J::Object(
            l.values
                .iter()
                .map(|kv| (kv.key.clone(), to_json(kv.value.as_ref())))
                .collect(),
        ),
        Some(Value::BytesValue(b)) => J::String(format!("{} bytes", b.len())),
        #[allow(unreachable_patterns)]
        Some(_) => J::Null,
    }
}
