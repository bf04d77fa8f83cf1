//! The reader thread: follows the file, encodes each complete line and hands full (or old
//! enough) batches to the sender. At most one batch is being filled and one waits in the
//! channel, so memory stays flat however large the backlog: the file is the buffer.

use crate::encode::{self, Encoder};
use crate::metrics::Metrics;
use crate::sink::batch::Batch;
use crate::source::tail::{Start, Tailer};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Room kept in a request for the resource/scope envelope around the records.
const ENVELOPE_ROOM: usize = 1_024;

pub struct ReaderSettings {
    pub file: PathBuf,
    pub start: Start,
    pub rotate_wait: Duration,
    pub refresh_interval: Duration,
    pub flush_interval: Duration,
    pub batch_max_bytes: usize,
    pub encode: encode::Options,
    pub exit_when_drained: bool,
    /// Longest line held; longer ones are dead-lettered (their first bytes) in `dead_letter`.
    pub max_line_bytes: usize,
    pub dead_letter: PathBuf,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs until `stop` is cancelled, the sender is gone, or (with `exit_when_drained`) every
/// complete line has been handed over.
pub fn run(
    s: ReaderSettings,
    tx: mpsc::Sender<Batch>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let mut tailer = Tailer::new(&s.file, s.start, s.rotate_wait)?.with_max_line(s.max_line_bytes);
    let mut encoder = Encoder::with_options(s.encode.clone());
    let max = s.batch_max_bytes - ENVELOPE_ROOM;
    let mut batch = Batch::default();
    let mut line = Vec::new();
    if let Some(pos) = tailer.position() {
        metrics.delivered_offset.store(pos.offset, Relaxed);
        metrics.read_offset.store(pos.offset, Relaxed);
    }
    metrics.file_size.store(tailer.file_len(), Relaxed);

    // Hands the batch over; false when the sender has stopped.
    let send = |batch: &mut Batch| tx.blocking_send(std::mem::take(batch)).is_ok();

    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        match tailer.next_line(&mut line)? {
            Some(l) => {
                let read = metrics.read_lines.fetch_add(1, Relaxed) + 1;
                if read.is_multiple_of(1024) {
                    // Keep the lag metric honest while catching up on a backlog.
                    metrics.file_size.store(tailer.file_len(), Relaxed);
                }
                metrics.read_offset.store(l.end.offset, Relaxed);
                if let Some(len) = l.oversized {
                    dead_letter_oversized(&s, &line, len, l.end.offset, &metrics)?;
                    batch.lines += 1;
                    batch.line_bytes += len + 1;
                    batch.checkpoint = Some(l.end);
                    continue;
                }
                let mut sent_ok = true;
                encoder.encode_line(&line, now_ns(), &mut |ev| {
                    if !sent_ok {
                        return;
                    }
                    if !batch.is_empty() && batch.bytes() + Batch::encoded_len(ev) > max {
                        sent_ok = send(&mut batch);
                        if !sent_ok {
                            return;
                        }
                    }
                    batch.push(ev);
                });
                if !sent_ok {
                    return Ok(());
                }
                if let Some(span) = encoder.span() {
                    // The span goes with the line's last events, so the checkpoint covers it.
                    batch.push_span(span);
                }
                metrics.unpriced.store(encoder.unpriced, Relaxed);
                batch.lines += 1;
                batch.line_bytes += line.len() as u64 + 1;
                batch.checkpoint = Some(l.end);
                let old = batch
                    .started
                    .is_some_and(|t| t.elapsed() >= s.flush_interval);
                if (batch.bytes() >= max || old) && !send(&mut batch) {
                    return Ok(());
                }
            }
            None => {
                metrics.file_size.store(tailer.file_len(), Relaxed);
                let age = batch.started.map(|t| t.elapsed());
                match age {
                    Some(age) if s.exit_when_drained || age >= s.flush_interval => {
                        if !send(&mut batch) {
                            return Ok(());
                        }
                        continue;
                    }
                    None if s.exit_when_drained => return Ok(()),
                    _ => {}
                }
                let wait = match age {
                    Some(age) => s.refresh_interval.min(s.flush_interval - age),
                    None => s.refresh_interval,
                };
                tailer.wait(wait.max(Duration::from_millis(1)));
            }
        }
    }
}

/// Writes a line too long to hold to the dead-letter file: its first bytes, its offset and
/// length, and why. Synced before the checkpoint can pass the line.
fn dead_letter_oversized(
    s: &ReaderSettings,
    prefix: &[u8],
    len: u64,
    end: u64,
    metrics: &Metrics,
) -> std::io::Result<()> {
    let offset = end.saturating_sub(len + 1);
    let reason = format!(
        "line of {len} bytes at offset {offset} is longer than --max-line-bytes (env MAX_LINE_BYTES, {}): not shipped; its first {} bytes are kept here",
        s.max_line_bytes,
        prefix.len()
    );
    let mut attributes = serde_json::Map::new();
    attributes.insert("log.file.path".into(), s.file.display().to_string().into());
    attributes.insert("log.line.offset".into(), offset.into());
    attributes.insert("log.line.length".into(), len.into());
    let entry = crate::sink::deadletter::DeadLetter {
        time: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
        status: 0,
        reason: &reason,
        exchange_id: None,
        body: String::from_utf8_lossy(prefix).into_owned(),
        attributes,
    };
    crate::sink::deadletter::append(&s.dead_letter, &[entry]).map_err(std::io::Error::other)?;
    metrics.dead_lettered.fetch_add(1, Relaxed);
    tracing::error!(len, offset, max_line_bytes = s.max_line_bytes, file = %s.dead_letter.display(), "line too long to ship: its first bytes were written to the dead-letter file");
    Ok(())
}
