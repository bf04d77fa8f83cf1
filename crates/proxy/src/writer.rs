//! The traffic log writer: a dedicated thread that turns finished exchanges into records and
//! appends one line each, so that decoding, parsing and serializing never touch the hot path.
//!
//! The queue is unbounded on purpose: records are never dropped, and memory stays bounded by
//! the per-body capture cap times the exchanges in flight. A failed write is counted and
//! reported through tracing; it never fails a request.

use crate::exchange::Exchange;
use crate::record;
use crate::summary;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

enum Msg {
    Exchange(Box<Exchange>),
    Stop,
}

/// Counts kept by the writer thread.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub written: AtomicU64,
    pub failed: AtomicU64,
}

/// Cheap to clone; hands exchanges to the writer thread.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
}

impl WriterHandle {
    pub fn send(&self, exchange: Exchange) {
        if self.tx.send(Msg::Exchange(Box::new(exchange))).is_err() {
            tracing::error!("traffic log writer has stopped; an exchange was not logged");
        }
    }
}

/// The running writer thread.
pub struct Writer {
    handle: WriterHandle,
    thread: JoinHandle<()>,
    pub stats: Arc<WriterStats>,
}

/// Opens (creating with mode 0600) the log for appending.
pub fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl Writer {
    /// Starts the thread writing to `file` (already opened with [`open_log`]).
    pub fn start(path: PathBuf, file: File, cap: usize) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("traffic-writer".to_string())
            .spawn(move || run(rx, path, file, cap, &thread_stats))?;
        Ok(Writer {
            handle: WriterHandle { tx },
            thread,
            stats,
        })
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Writes everything queued so far, then stops the thread.
    pub fn close(self) {
        let _ = self.handle.tx.send(Msg::Stop);
        if self.thread.join().is_err() {
            tracing::error!("traffic log writer thread panicked");
        }
    }
}

fn run(rx: mpsc::Receiver<Msg>, path: PathBuf, file: File, cap: usize, stats: &WriterStats) {
    let mut file = Some(file);
    let mut console = Console::start();
    while let Ok(Msg::Exchange(exchange)) = rx.recv() {
        let record = record::build(*exchange, cap);
        let line = summary::line(&record);
        let mut json = match serde_json::to_vec(&record) {
            Ok(json) => json,
            Err(e) => {
                let failed = stats.failed.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(id = %record.id, error = %e, failed, "could not serialize a traffic record; it is lost");
                continue;
            }
        };
        json.push(b'\n');
        if file.is_none() {
            file = open_log(&path).ok();
        }
        // One write per record (O_APPEND): lines never interleave, even with other writers.
        let result = match &mut file {
            Some(f) => f.write_all(&json),
            None => Err(std::io::Error::other("log file is not open")),
        };
        match result {
            Ok(()) => {
                stats.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let failed = stats.failed.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(path = %path.display(), id = %record.id, error = %e, failed,
                    "could not append a traffic record to the log file; it is lost");
                file = None; // reopen on the next record
            }
        }
        console.print(line);
    }
    console.close();
}

/// The human lines on stdout, printed by their own thread: a stdout nobody reads (a full pipe)
/// must never hold up the traffic log. Lines beyond a backlog of 1024 are dropped and counted.
struct Console {
    tx: Option<mpsc::SyncSender<String>>,
    /// Says when the console thread has printed everything.
    done: Option<mpsc::Receiver<()>>,
    dropped: u64,
}

impl Console {
    fn start() -> Console {
        let (tx, rx) = mpsc::sync_channel::<String>(1024);
        let (done_tx, done_rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("console".to_string())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                let _ = done_tx.send(());
            });
        let done = match spawned {
            Ok(_) => Some(done_rx),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the console thread; no per-exchange lines on stdout");
                None
            }
        };
        Console {
            tx: Some(tx),
            done,
            dropped: 0,
        }
    }

    /// Prints what is queued (waiting at most 2 s for a stdout that may be blocked), then
    /// stops the thread.
    fn close(mut self) {
        drop(self.tx.take());
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(std::time::Duration::from_secs(2));
        }
    }

    fn print(&mut self, line: String) {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.try_send(line).is_ok());
        if !sent {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped,
                    "stdout is not being read; per-exchange console lines dropped (the traffic log is unaffected)"
                );
            }
        }
    }
}
