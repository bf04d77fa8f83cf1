//! The traffic log writer: one thread that turns finished exchanges into records and appends
//! one line each, so that decoding, parsing and serializing never run on the forwarding
//! thread, and that never makes a request wait.
//!
//! - A bounded queue: handing an exchange over never blocks. Over the memory budget (captures
//!   queued and not yet written), an exchange goes in with its bodies dropped and marked
//!   `writer_backlog`; a full queue (or a writer gone) loses the exchange, counted.
//! - Buffered appends: the records queued at once go out in one write (up to 1 MiB).
//! - Rotation by size at a record boundary, reopening on SIGHUP ([`LogFile`]).
//! - A full disk or a log over its disk budget degrades records (bodies dropped, marked)
//!   instead of losing them; writing resumes by itself when space returns.
//! - A panic while building a record yields a minimal record and the writer goes on; if the
//!   thread dies anyway, `on_death` runs (the proxy then shuts down, so that its health check
//!   fails and the supervisor restarts it).
//!
//! Degraded and lost records are counted ([`WriterStats`]) and reported on stderr once per
//! burst.

use crate::console::{CONSOLE_EVERY, Console};
use crate::exchange::{Exchange, Sink};
use crate::heap;
use crate::logfile::{LogFile, is_disk_full};
use crate::record;
use crate::redact::Redactor;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use traffic_record::summary::{self, Fields, Style};
use traffic_record::{Degraded, TrafficRecord};

/// Builds the record of an exchange; [`record::build`] but for tests.
pub type BuildFn = fn(&Exchange, record::Limits, &Redactor) -> TrafficRecord;

/// Captured bytes the queue may hold before exchanges go in without their bodies.
pub const MEMORY_BUDGET: u64 = 64 << 20;

/// Exchanges the queue holds at most (an exchange without bodies is a few KiB of headers).
const QUEUE_MAX: usize = 16_384;

/// Exchanges taken from the queue at once at most, so console lines keep coming under load.
const BATCH_MAX: usize = 256;

/// Bytes of lines collected before one `write`.
const WRITE_SIZE: usize = 1 << 20;

/// Bytes of records built after which the writer, once idle, gives the heap's free memory back
/// to the system ([`heap::give_back`]), at most once per [`TRIM_EVERY`]: building a record
/// takes several times its size in short-lived allocations, which glibc would otherwise keep.
const TRIM_AFTER: u64 = 16 << 20;
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// How long records must be written in full before a burst of degraded ones is reported over:
/// under sustained overload, full and degraded records alternate, one stderr line pair each.
const BURST_QUIET: Duration = Duration::from_secs(1);

/// What the writer needs to know.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub path: PathBuf,
    /// Most bytes of each body in the record, as written.
    pub capture_cap: usize,
    /// Most bytes a decoded body may take in the record per byte on the wire.
    pub max_decode_ratio: u64,
    /// Rotate the live file before it passes this many bytes; 0: never.
    pub rotate_size: u64,
    /// Degrade records while the log and its segments take more than this; 0: no budget.
    pub disk_budget: u64,
    /// See [`MEMORY_BUDGET`].
    pub memory_budget: u64,
    /// The redaction rules every record is built with.
    pub redactor: Arc<Redactor>,
    pub build: BuildFn,
}

impl WriterConfig {
    pub fn new(path: PathBuf, capture_cap: usize) -> Self {
        WriterConfig {
            path,
            capture_cap,
            max_decode_ratio: record::DEFAULT_MAX_DECODE_RATIO,
            rotate_size: 0,
            disk_budget: 0,
            memory_budget: MEMORY_BUDGET,
            redactor: Arc::new(Redactor::default()),
            build: record::build,
        }
    }
}

enum Msg {
    /// An exchange and the captured bytes it holds.
    Exchange(Box<Exchange>, u64),
    /// Look at the reopen flag.
    Wake,
    /// Write what is queued and end.
    Stop,
    #[cfg(test)]
    Panic,
}

/// Counts kept by the writer (and by senders, for what never reached it).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records appended in full.
    pub written: AtomicU64,
    /// Records appended without their bodies (`degraded` says why).
    pub degraded: AtomicU64,
    /// Exchanges with no record at all.
    pub lost: AtomicU64,
}

#[derive(Debug, Default)]
struct Shared {
    /// Captured bytes queued and not yet turned into records.
    backlog: AtomicU64,
    reopen: AtomicBool,
    stats: WriterStats,
    /// A burst of exchanges that went in without bodies is being reported.
    backlog_burst: AtomicBool,
}

/// Cheap to clone; hands exchanges to the writer thread without ever waiting.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::SyncSender<Msg>,
    shared: Arc<Shared>,
    memory_budget: u64,
}

impl Sink for WriterHandle {
    fn send(&self, mut exchange: Exchange) {
        let mut bytes = (exchange.request_body.kept() + exchange.response_body.kept()) as u64;
        let queued = self.shared.backlog.fetch_add(bytes, Ordering::Relaxed);
        if queued + bytes > self.memory_budget && bytes > 0 {
            self.shared.backlog.fetch_sub(bytes, Ordering::Relaxed);
            exchange.request_body.drop_content();
            exchange.response_body.drop_content();
            exchange.degraded = Some(Degraded::WriterBacklog);
            bytes = 0;
            if !self.shared.backlog_burst.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    backlog_bytes = queued,
                    "the traffic log writer is behind its memory budget; exchanges are logged without their bodies until it catches up"
                );
            }
        } else if self.shared.backlog_burst.load(Ordering::Relaxed) && queued == 0 {
            self.shared.backlog_burst.store(false, Ordering::Relaxed);
            tracing::info!("the traffic log writer caught up; bodies are logged again");
        }
        if let Err(e) = self.tx.try_send(Msg::Exchange(Box::new(exchange), bytes)) {
            self.shared.backlog.fetch_sub(bytes, Ordering::Relaxed);
            let lost = self.shared.stats.lost.fetch_add(1, Ordering::Relaxed) + 1;
            // Once per power of two: a writer gone for good must not flood stderr.
            if lost.is_power_of_two() {
                let why = match e {
                    mpsc::TrySendError::Full(_) => "its queue is full",
                    mpsc::TrySendError::Disconnected(_) => "it has stopped",
                };
                tracing::error!(
                    lost,
                    "an exchange was not logged: the traffic log writer {why}"
                );
            }
        }
    }
}

impl WriterHandle {
    /// Makes the writer reopen the log path before its next write (SIGHUP).
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::SeqCst);
        let _ = self.tx.try_send(Msg::Wake);
    }

    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }
}

/// The running writer thread.
pub struct Writer {
    handle: WriterHandle,
    thread: JoinHandle<()>,
}

/// Runs its function when dropped, unless disarmed: the writer thread's end by a panic.
struct DeathNotice(Option<Box<dyn FnOnce() + Send>>);

impl Drop for DeathNotice {
    fn drop(&mut self) {
        if let Some(notify) = self.0.take() {
            tracing::error!("the traffic log writer thread died; no more exchanges are logged");
            notify();
        }
    }
}

impl Writer {
    /// Opens the log (creating it with mode 0600) and starts the thread. `on_death` runs if
    /// the thread ends other than by [`Writer::close`].
    pub fn start(
        config: WriterConfig,
        on_death: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Writer> {
        let log = LogFile::open(config.path.clone(), config.rotate_size)?;
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE_MAX);
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        let memory_budget = config.memory_budget;
        let thread = std::thread::Builder::new()
            .name("traffic-writer".to_string())
            .spawn(move || {
                let mut notice = DeathNotice(Some(Box::new(on_death)));
                Worker::new(config, log, thread_shared).run(rx);
                notice.0 = None;
            })?;
        Ok(Writer {
            handle: WriterHandle {
                tx,
                shared,
                memory_budget,
            },
            thread,
        })
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Writes everything queued so far, then stops the thread. Returns the counts.
    pub fn close(self) -> Arc<WriterStatsSnapshot> {
        let Writer { handle, thread } = self;
        let shared = handle.shared.clone();
        let _ = handle.tx.send(Msg::Stop);
        if thread.join().is_err() {
            tracing::error!("traffic log writer thread panicked");
        }
        let stats = &shared.stats;
        Arc::new(WriterStatsSnapshot {
            written: stats.written.load(Ordering::Relaxed),
            degraded: stats.degraded.load(Ordering::Relaxed),
            lost: stats.lost.load(Ordering::Relaxed),
        })
    }
}

/// The final counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStatsSnapshot {
    pub written: u64,
    pub degraded: u64,
    pub lost: u64,
}

/// The writer thread's state.
struct Worker {
    config: WriterConfig,
    log: LogFile,
    shared: Arc<Shared>,
    /// Serialized lines not yet appended, and where each ends.
    pending: Vec<u8>,
    ends: Vec<usize>,
    /// Console lines not yet handed to the console thread, and when they are due.
    lines: String,
    due: Option<Instant>,
    /// Records degraded (or lost) in the current burst, reported when it ends, and when the
    /// last one was.
    burst: Option<(Degraded, u64, u64)>,
    last_degraded: Instant,
    /// Bytes of records built since the heap was last given back, and when that was.
    built: u64,
    trimmed: Instant,
}

impl Worker {
    fn new(config: WriterConfig, log: LogFile, shared: Arc<Shared>) -> Worker {
        Worker {
            config,
            log,
            shared,
            pending: Vec::new(),
            ends: Vec::new(),
            lines: String::new(),
            due: None,
            burst: None,
            last_degraded: Instant::now(),
            built: 0,
            trimmed: Instant::now(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut console = Console::start();
        let mut stop = false;
        while !stop {
            let trim_due = (self.built >= TRIM_AFTER).then(|| self.trimmed + TRIM_EVERY);
            let first = match self.due.into_iter().chain(trim_due).min() {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
            };
            let first = match first {
                Ok(msg) => msg,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.due.is_some_and(|due| Instant::now() >= due) {
                        console.print(std::mem::take(&mut self.lines));
                        self.due = None;
                    }
                    self.trim_if_idle();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            for msg in std::iter::once(first).chain(rx.try_iter().take(BATCH_MAX - 1)) {
                match msg {
                    Msg::Exchange(exchange, bytes) => self.record(*exchange, bytes),
                    Msg::Wake => {}
                    Msg::Stop => stop = true,
                    #[cfg(test)]
                    Msg::Panic => panic!("the writer thread was told to die"),
                }
            }
            self.flush();
            self.reopen_if_asked();
            let now = Instant::now();
            let due = *self.due.get_or_insert(now + CONSOLE_EVERY);
            if now >= due {
                console.print(std::mem::take(&mut self.lines));
                self.due = Some(now + CONSOLE_EVERY);
            }
        }
        self.flush();
        self.end_burst("at exit");
        console.print(std::mem::take(&mut self.lines));
        console.close();
    }

    /// Gives the heap back after [`TRIM_AFTER`] bytes of records, at most once per
    /// [`TRIM_EVERY`]; called only when no exchange came for a while (a trim walks the whole
    /// heap: under sustained load it would slow the writer).
    fn trim_if_idle(&mut self) {
        if self.built >= TRIM_AFTER && self.trimmed.elapsed() >= TRIM_EVERY {
            heap::give_back();
            self.built = 0;
            self.trimmed = Instant::now();
        }
    }

    /// Builds the record of `exchange` and queues its line.
    fn record(&mut self, exchange: Exchange, bytes: u64) {
        let build = self.config.build;
        let limits = record::Limits {
            cap: self.config.capture_cap,
            max_decode_ratio: self.config.max_decode_ratio,
        };
        let redactor = &self.config.redactor;
        let built =
            std::panic::catch_unwind(AssertUnwindSafe(|| build(&exchange, limits, redactor)));
        let record = built.unwrap_or_else(|panic| {
            let cause = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            tracing::error!(cause, path = %exchange.path, "could not build a traffic record; a minimal one is written");
            record::minimal(&exchange, &cause)
        });
        self.shared.backlog.fetch_sub(bytes, Ordering::Relaxed);
        drop(exchange);
        self.lines
            .push_str(&summary::line(&Fields::from(&record), Style::Console));
        self.lines.push('\n');
        self.push(record);
    }

    /// Reopens the log path if a SIGHUP asked for it (what is pending goes to the old file).
    fn reopen_if_asked(&mut self) {
        if self.shared.reopen.swap(false, Ordering::SeqCst) {
            self.flush();
            tracing::info!(path = %self.log.path().display(), "reopening the traffic log (SIGHUP)");
            self.log.reopen();
        }
    }

    /// Serializes `record` onto the pending lines (in place: a record is often 100 KB or more),
    /// within the disk budget; rotates or flushes first when due.
    fn push(&mut self, mut record: TrafficRecord) {
        self.reopen_if_asked();
        let start = self.pending.len();
        write_line(&mut self.pending, &record);
        self.built += (self.pending.len() - start) as u64;
        let budget = self.config.disk_budget;
        if budget > 0
            && self.log.usage() + self.pending.len() as u64 > budget
            && record.degraded.is_none()
        {
            self.pending.truncate(start);
            record::degrade(&mut record, Degraded::DiskBudget);
            write_line(&mut self.pending, &record);
        }
        let len = (self.pending.len() - start) as u64;
        if self.log.should_rotate(start as u64, len) {
            let line = self.pending.split_off(start);
            self.flush();
            if self.log.should_rotate(0, len) {
                self.log.rotate();
            }
            self.pending.extend_from_slice(&line);
        }
        self.ends.push(self.pending.len());
        if self.pending.len() >= WRITE_SIZE {
            self.flush();
        }
    }

    /// Appends the pending lines: all at once, or, if that fails, one by one, each degraded
    /// when the disk is full.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let ends = std::mem::take(&mut self.ends);
        if self.log.append(&pending).is_ok() {
            self.count_written(&pending, &ends);
        } else {
            let mut start = 0;
            for &end in &ends {
                self.append_one(&pending[start..end]);
                start = end;
            }
        }
        // One huge record must not pin its buffer for the life of the process.
        self.pending = if pending.capacity() > 4 * WRITE_SIZE {
            Vec::new()
        } else {
            let mut pending = pending;
            pending.clear();
            pending
        };
        self.ends = ends;
        self.ends.clear();
    }

    fn count_written(&mut self, pending: &[u8], ends: &[usize]) {
        let mut start = 0;
        let mut degraded = 0;
        for &end in ends {
            if let Some(why) = degraded_in(&pending[start..end]) {
                degraded += 1;
                self.in_burst(why, 1, 0);
            }
            start = end;
        }
        let stats = &self.shared.stats;
        stats.degraded.fetch_add(degraded, Ordering::Relaxed);
        let full = ends.len() as u64 - degraded;
        stats.written.fetch_add(full, Ordering::Relaxed);
        if full > 0 && self.last_degraded.elapsed() >= BURST_QUIET {
            self.end_burst("traffic records are written in full again");
        }
    }

    /// Appends one line; on a full disk, the same record without its bodies.
    fn append_one(&mut self, line: &[u8]) {
        let error = match self.log.append(line) {
            Ok(()) => return self.count_written(line, &[line.len()]),
            Err(e) => e,
        };
        let stats = &self.shared.stats;
        if is_disk_full(&error)
            && let Ok(mut record) = serde_json::from_slice::<TrafficRecord>(line)
        {
            record::degrade(&mut record, Degraded::DiskFull);
            record.degraded = Some(Degraded::DiskFull);
            if self.log.append(&to_line(&record)).is_ok() {
                stats.degraded.fetch_add(1, Ordering::Relaxed);
                self.in_burst(Degraded::DiskFull, 1, 0);
                return;
            }
        }
        stats.lost.fetch_add(1, Ordering::Relaxed);
        if self.in_burst(Degraded::DiskFull, 0, 1) {
            tracing::error!(path = %self.log.path().display(), error = %error,
                "cannot append to the traffic log; records are lost until it can be written again");
        }
    }

    /// Counts a degraded or lost record in the current burst; true when it starts one.
    fn in_burst(&mut self, why: Degraded, degraded: u64, lost: u64) -> bool {
        self.last_degraded = Instant::now();
        match &mut self.burst {
            Some((_, d, l)) => {
                *d += degraded;
                *l += lost;
                false
            }
            None => {
                self.burst = Some((why, degraded, lost));
                if degraded > 0 {
                    tracing::warn!(
                        reason = why.as_str(),
                        "traffic records are written without their bodies"
                    );
                }
                true
            }
        }
    }

    /// Reports the burst that ended (a record was written in full again, or the writer stops).
    fn end_burst(&mut self, message: &str) {
        if let Some((why, degraded, lost)) = self.burst.take() {
            let stats = &self.shared.stats;
            tracing::warn!(
                reason = why.as_str(),
                degraded,
                lost,
                total_degraded = stats.degraded.load(Ordering::Relaxed),
                total_lost = stats.lost.load(Ordering::Relaxed),
                "{message}: a burst of traffic records was degraded or lost"
            );
        }
    }
}

/// Appends `record` as one line to `out`.
fn write_line(out: &mut Vec<u8>, record: &TrafficRecord) {
    serde_json::to_writer(&mut *out, record).expect("a traffic record always serializes");
    out.push(b'\n');
}

/// `record` as one line.
fn to_line(record: &TrafficRecord) -> Vec<u8> {
    let mut line = Vec::new();
    write_line(&mut line, record);
    line
}

/// Why the record on `line` is degraded, if it is (a look at its start: the field comes before
/// the bodies).
fn degraded_in(line: &[u8]) -> Option<Degraded> {
    let at = memchr::memmem::find(&line[..line.len().min(4096)], b"\"degraded\":\"")?;
    let rest = &line[at + 12..];
    [
        Degraded::DiskFull,
        Degraded::DiskBudget,
        Degraded::WriterBacklog,
        Degraded::BuildFailed,
    ]
    .into_iter()
    .find(|d| rest.starts_with(d.as_str().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Capture;
    use std::time::Duration;

    fn exchange(path: &str, body: &[u8]) -> Exchange {
        let mut request_body = Capture::new(1 << 20);
        request_body.push(&bytes::Bytes::copy_from_slice(body));
        Exchange {
            started_at: std::time::SystemTime::now(),
            ended_at: std::time::SystemTime::now(),
            duration: Duration::ZERO,
            ttfb: None,
            outcome: traffic_record::Outcome::Complete,
            error: None,
            method: http::Method::POST,
            path: path.to_string(),
            query: None,
            request_headers: http::HeaderMap::new(),
            request_body,
            response: Some(crate::exchange::ResponseHead {
                status: http::StatusCode::OK,
                headers: http::HeaderMap::new(),
            }),
            response_body: Capture::new(1 << 20),
            degraded: None,
        }
    }

    fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn panics_on_crafted_path(
        exchange: &Exchange,
        limits: record::Limits,
        redactor: &Redactor,
    ) -> TrafficRecord {
        assert!(exchange.path != "/crafted", "a record builder bug");
        record::build(exchange, limits, redactor)
    }

    #[test]
    fn a_record_builder_that_panics_yields_a_minimal_record_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        let config = WriterConfig {
            build: panics_on_crafted_path,
            ..WriterConfig::new(path.clone(), 1 << 20)
        };
        let died = Arc::new(AtomicBool::new(false));
        let writer = Writer::start(config, {
            let died = died.clone();
            move || died.store(true, Ordering::SeqCst)
        })
        .unwrap();
        let handle = writer.handle();
        handle.send(exchange("/v1/messages", br#"{"model":"m"}"#));
        handle.send(exchange("/crafted", br#"{"model":"m"}"#));
        handle.send(exchange("/v1/messages", br#"{"model":"after"}"#));
        drop(handle);
        let stats = writer.close();
        assert!(!died.load(Ordering::SeqCst));
        let got = records(&path);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1]["request"]["path"], "/crafted");
        assert_eq!(got[1]["request"]["method"], "POST");
        assert_eq!(got[1]["response"]["status"], 200);
        assert_eq!(got[1]["degraded"], "build_failed");
        assert!(
            got[1]["error"]
                .as_str()
                .unwrap()
                .contains("a record builder bug")
        );
        assert_eq!(got[2]["request"]["body"]["json"]["model"], "after");
        assert!(got[2].get("degraded").is_none());
        assert_eq!(
            *stats,
            WriterStatsSnapshot {
                written: 2,
                degraded: 1,
                lost: 0
            }
        );
    }

    #[test]
    fn a_writer_thread_that_dies_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let writer = Writer::start(
            WriterConfig::new(dir.path().join("traffic.log"), 1 << 20),
            move || tx.send(()).unwrap(),
        )
        .unwrap();
        writer.handle.tx.send(Msg::Panic).unwrap();
        rx.recv_timeout(Duration::from_secs(5))
            .expect("on_death ran");
        // Exchanges sent to a dead writer are counted as lost, never waited on.
        writer.handle().send(exchange("/v1/messages", b"{}"));
        assert_eq!(writer.handle().stats().lost.load(Ordering::SeqCst), 1);
        let wait = Instant::now();
        while !writer.is_finished() {
            assert!(wait.elapsed() < Duration::from_secs(5), "the thread ended");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn over_the_memory_budget_an_exchange_goes_in_without_bodies_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        let (tx, rx) = mpsc::sync_channel(QUEUE_MAX);
        // A handle whose writer has not started: nothing is taken off the queue.
        let handle = WriterHandle {
            tx,
            shared: Arc::new(Shared::default()),
            memory_budget: 100,
        };
        let started = Instant::now();
        handle.send(exchange("/v1/messages", &[b'x'; 60]));
        handle.send(exchange("/v1/messages", &[b'y'; 60]));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "never waits"
        );
        assert_eq!(handle.shared.backlog.load(Ordering::SeqCst), 60);
        let queued: Vec<Exchange> = rx
            .try_iter()
            .map(|m| match m {
                Msg::Exchange(e, _) => *e,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(queued[0].degraded, None);
        assert_eq!(queued[1].degraded, Some(Degraded::WriterBacklog));
        assert_eq!(queued[1].request_body.kept(), 0);
        assert_eq!(queued[1].request_body.size, 60);
        // Such a record says so, with the body's size.
        let record = record::build(
            &queued[1],
            record::Limits::cap(1 << 20),
            &Redactor::default(),
        );
        let line = String::from_utf8(to_line(&record)).unwrap();
        assert!(line.contains("\"degraded\":\"writer_backlog\""), "{line}");
        assert!(line.contains("\"body\":{\"size\":60,\"truncated\":true}"));
        let _ = path;
    }

    #[test]
    fn size_rotation_never_splits_a_record_and_sighup_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        let config = WriterConfig {
            rotate_size: 1000,
            ..WriterConfig::new(path.clone(), 1 << 20)
        };
        let writer = Writer::start(config, || {}).unwrap();
        let handle = writer.handle();
        for i in 0..40 {
            handle.send(exchange(
                "/v1/messages",
                format!("{{\"n\":{i}}}").as_bytes(),
            ));
            if i == 20 {
                // logrotate's `create` once the 21 records so far are written: rename, new
                // empty file, SIGHUP.
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while handle.stats().written.load(Ordering::SeqCst) < 21 {
                    assert!(std::time::Instant::now() < deadline, "records not written");
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::fs::rename(&path, dir.path().join("traffic.log.1")).unwrap();
                std::fs::write(&path, b"").unwrap();
                handle.reopen();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(handle);
        let stats = writer.close();
        assert_eq!(stats.written, 40);
        let mut files: Vec<PathBuf> = traffic_record::segments::list(&path)
            .unwrap()
            .into_iter()
            .map(|s| s.path)
            .collect();
        assert!(files.len() >= 3, "rotated several times: {files:?}");
        files.push(dir.path().join("traffic.log.1"));
        files.push(path.clone());
        let mut seen = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(
                text.len() <= 1000 || text.lines().count() == 1,
                "{file:?}: {} bytes in {} lines",
                text.len(),
                text.lines().count()
            );
            for record in records(file) {
                seen.push(record["request"]["body"]["json"]["n"].as_u64().unwrap());
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            (0..40).collect::<Vec<_>>(),
            "every record whole, once"
        );
    }

    #[test]
    fn over_the_disk_budget_records_are_degraded_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        let config = WriterConfig {
            disk_budget: 2000,
            ..WriterConfig::new(path.clone(), 1 << 20)
        };
        let writer = Writer::start(config, || {}).unwrap();
        let handle = writer.handle();
        for _ in 0..10 {
            handle.send(exchange("/v1/messages", &[b'z'; 500]));
        }
        drop(handle);
        let stats = writer.close();
        let got = records(&path);
        assert_eq!(got.len(), 10);
        let degraded = got
            .iter()
            .filter(|r| r["degraded"] == "disk_budget")
            .count();
        assert!(degraded >= 7, "{degraded}");
        assert_eq!(stats.degraded as usize, degraded);
        assert_eq!(stats.written as usize, 10 - degraded);
    }
}
