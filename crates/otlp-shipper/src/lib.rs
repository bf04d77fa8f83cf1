//! otlp-shipper: follows the claude-api-logger traffic log and delivers every line to Seq (or
//! any OTLP/HTTP logs endpoint) as OTLP LogRecords, at least once, with a durable checkpoint.
//!
//! The source tree is the pipeline, in three stages that import only upstream
//! (docs/architecture.md): [`source`] follows the file, [`encode`] turns each line into OTLP,
//! [`sink`] delivers. A reader thread ([`reader`]: `tail` → `encode` → `batch`) hands batches
//! through a one-slot channel to the sender, which moves the checkpoint after each
//! acknowledged batch; retention then deletes the delivered rotated segments beyond the
//! budget. [`run`] wires them up; [`config`] is the command line, [`metrics`] counts.
//!
//! Dependencies beyond the workspace basics: `notify` (file change events),
//! `opentelemetry-proto` and `prost` (the OTLP wire format), `reqwest` (HTTP/TLS client),
//! `axum` (metrics endpoint), `humantime` (RFC 3339 timestamps), `rand` (retry jitter),
//! `reqwest-middleware` and `async-trait` (the HTTP stack as layers, [`sink::http`]), `tracing-appender`
//! (diagnostics written off-thread), `bytes` (cheap request resends), `memchr` (a line's end
//! found in the read buffer, so a line longer than `--max-line-bytes` is never held), `sha2`
//! (stable trace ids and content digests), `blake3` (message digests, [`encode::delta`]), `pricing`
//! (the cost of an exchange); for tests only, `proptest` (property tests of the config parser
//! and the encoder, `tests/properties.rs`).

pub mod config;
pub mod encode;
pub mod metrics;
pub mod reader;
pub mod sink;
pub mod source;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::sink::batch;
use crate::sink::sender::{Delivery, Sender};
use crate::source::checkpoint::{self, Loaded};
use crate::source::retention;
use crate::source::tail::{self, Start};
use anyhow::Context;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio_util::sync::CancellationToken;

/// `service.name` of every event.
pub const SERVICE_NAME: &str = "claude-api-logger";

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// The resource and instrumentation scope sent with every request.
pub fn envelope() -> batch::Envelope {
    let resource = Resource {
        attributes: vec![
            kv("service.name", SERVICE_NAME),
            kv("service.version", env!("CARGO_PKG_VERSION")),
        ],
        ..Default::default()
    };
    let scope = InstrumentationScope {
        name: "otlp-shipper".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    batch::Envelope::new(&resource, &scope)
}

/// Ships until `shutdown` is cancelled (or, with `exit_when_drained`, the file is delivered).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let _ = metrics.file.set(config.file.clone());
    if let Some(addr) = config.metrics_listen {
        let bound = metrics::serve(addr, metrics.clone(), shutdown.clone())
            .await
            .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
        tracing::info!(addr = %bound, "metrics at http://{bound}/metrics");
    }
    {
        let (m, s, every) = (metrics.clone(), shutdown.clone(), config.metrics_interval);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => m.log(),
                    _ = s.cancelled() => break,
                }
            }
        });
    }

    let start = match checkpoint::load(&config.checkpoint)? {
        Loaded::Found(pos) => Start::At(pos),
        found => {
            if let Loaded::Unreadable(why) = found {
                tracing::warn!(checkpoint = %config.checkpoint.display(), why, "checkpoint is not readable (an old Fluent Bit DB?); it will be replaced");
            }
            // Record the file's identity before reading anything: if it is rotated before
            // the first delivery is checkpointed, a restart still finds and finishes it.
            match tail::initial_position(&config.file, !config.read_from_head)
                .with_context(|| format!("cannot read {}", config.file.display()))?
            {
                Some(pos) => {
                    checkpoint::save(&config.checkpoint, pos, &config.file)?;
                    Start::At(pos)
                }
                None if config.read_from_head => Start::Head,
                None => Start::End,
            }
        }
    };

    let mut retention = retention::Retention::new(config.file.clone(), config.retain);
    if let Start::At(pos) = start {
        retention.delivered(pos);
    }

    let sender = Sender::new(
        config.endpoint.clone(),
        config.traces_endpoint.clone(),
        config.headers.clone(),
        config.tls_verify,
        envelope(),
        config.dead_letter.clone(),
        metrics.clone(),
        shutdown.clone(),
    )?;

    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let reader_stop = shutdown.child_token();
    let settings = reader::ReaderSettings {
        file: config.file.clone(),
        start,
        rotate_wait: config.rotate_wait,
        refresh_interval: config.refresh_interval,
        flush_interval: config.flush_interval,
        batch_max_bytes: config.batch_max_bytes,
        encode: encode::Options {
            event_max_bytes: config.event_max_bytes,
            bodies: config.bodies,
            spans: config.traces_endpoint.is_some(),
            prices: config.prices.clone(),
            server_address: config.server_address.clone(),
            view_base_url: config.view_base_url.clone(),
        },
        exit_when_drained: config.exit_when_drained,
        max_line_bytes: config.max_line_bytes,
        dead_letter: config.dead_letter.clone(),
    };
    let reader = {
        let (m, stop) = (metrics.clone(), reader_stop.clone());
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || reader::run(settings, tx, m, stop))
            .context("cannot start the reader thread")?
    };
    let (prices, stale) = config.prices.describe(std::time::SystemTime::now());
    tracing::info!(prices_date = %config.prices.date, "costs from the {prices}");
    if let Some(stale) = stale {
        tracing::warn!(prices_date = %config.prices.date, "{stale}");
    }
    match &config.traces_endpoint {
        Some(traces) => {
            tracing::info!(file = %config.file.display(), endpoint = %config.endpoint, %traces, bodies = ?config.bodies, "shipping")
        }
        None => {
            tracing::info!(file = %config.file.display(), endpoint = %config.endpoint, bodies = ?config.bodies, "shipping (no traces endpoint: no spans)")
        }
    }

    let result: anyhow::Result<()> = async {
        loop {
            let batch = tokio::select! {
                b = rx.recv() => match b { Some(b) => b, None => break },
                _ = shutdown.cancelled() => break,
            };
            let started = std::time::Instant::now();
            match sender.deliver(&batch).await? {
                Delivery::Done => {
                    tracing::debug!(
                        events = batch.len(),
                        bytes = batch.bytes(),
                        lines = batch.lines,
                        ms = started.elapsed().as_millis() as u64,
                        "batch delivered"
                    );
                    if let Some(pos) = batch.checkpoint {
                        checkpoint::save(&config.checkpoint, pos, &config.file)?;
                        metrics.delivered_offset.store(pos.offset, Relaxed);
                        retention.delivered(pos);
                    }
                    metrics.shipped_lines.fetch_add(batch.lines, Relaxed);
                    metrics.shipped_bytes.fetch_add(batch.line_bytes, Relaxed);
                }
                Delivery::Interrupted => break,
            }
        }
        Ok(())
    }
    .await;

    // Stop the reader (it may be blocked handing over a batch: closing the channel frees it).
    reader_stop.cancel();
    drop(rx);
    let read = tokio::task::spawn_blocking(move || reader.join())
        .await
        .context("reader thread")?;
    metrics.log();
    result?;
    match read {
        Ok(r) => r.with_context(|| format!("cannot read {}", config.file.display())),
        Err(_) => anyhow::bail!("the reader thread panicked"),
    }
}
