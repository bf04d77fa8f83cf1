//! The traffic log writer: a dedicated thread that turns finished exchanges into records and
//! appends one line each, so that decoding, parsing and serializing never touch the hot path.
//!
//! Records are never dropped. Memory stays bounded: each body is capped, and when the
//! captures waiting for the writer exceed [`BACKLOG_LIMIT`] bytes, NEW exchanges wait for the
//! writer before they start, until it is back under half that (an exchange in flight is never
//! paused, so no stream is slowed).
//! A failed write is counted and reported through tracing; it never fails a request.

use crate::exchange::Exchange;
use crate::record;
use crate::summary;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::fence;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::mpsc::TryRecvError;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};
use traffic_record::TrafficRecord;

enum Msg {
    /// An exchange and the bytes of capture it holds.
    Exchange(Box<Exchange>, u64),
    Stop,
}

/// Captured bytes the writer may lag behind before new exchanges wait for it.
pub const BACKLOG_LIMIT: u64 = 64 << 20;

/// The backlog under which waiting exchanges go on. Half the limit rather than the limit
/// itself: waking them as soon as one record got the backlog under the limit let one of them
/// start and sent the others back to waiting, over and over, and that churn on the proxy's
/// thread took CPU from the writer it was waiting for.
const BACKLOG_RESUME: u64 = BACKLOG_LIMIT / 2;

/// Exchanges the writer takes from its queue at once at most (console lines are handed over
/// between batches), so that console lines keep coming under sustained load. The writer does
/// not wait for a batch to fill: a 5 ms pause tried for that made the 50 KB POST p99 ~3 ms
/// instead of ~0.4 ms (all its work then lands in one burst) with no gain at p50.
const BATCH_MAX: usize = 256;

/// Bytes handed to the writer and not yet written, a way to wait until that is small, and what
/// is shared to wake the writer and to free what it is done with.
#[derive(Debug, Default)]
struct Backlog {
    bytes: AtomicU64,
    drained: tokio::sync::Notify,
    /// A wait was reported since the backlog was last under the limit: one warning per stall,
    /// not one per waiting request.
    warned: AtomicBool,
    /// Exchanges are waiting: the writer wakes them once the backlog is under
    /// [`BACKLOG_RESUME`].
    stalled: AtomicBool,
    spent: Mutex<Spent>,
    /// The writer thread, and whether it is parked, or about to be, with nothing to do.
    writer: OnceLock<Thread>,
    asleep: AtomicBool,
    /// Set while [`WriterHandle::after_sends`] runs: sends then leave the writer's wake-up and
    /// the freeing to it.
    deferred: AtomicBool,
    after_send: tokio::sync::Notify,
}

/// Exchanges written to the log, for the forwarding thread that allocated them to free.
///
/// glibc's `free` of a block too big for the thread's cache takes the lock of the arena it
/// came from. Freed on the writer, every capture contended for that lock with the forwarding
/// thread's own allocations, and the forwarding thread then waited for a nice-19 thread: in a
/// profile under load ~4% of the proxy's CPU went to that lock's futex waits and wake-ups, and
/// freeing on the forwarding thread instead took the 50 KB POST's added p99 from 0.41-0.48 ms
/// to 0.19-0.30 (docs/performance-history.md).
///
/// So each [`WriterHandle::send`] (on the forwarding runtime, [`WriterHandle::after_sends`]
/// right after it) frees what the writer has finished with, and the writer frees
/// them itself only when nobody sends: after [`CONSOLE_EVERY`] without an exchange, or once
/// they hold more than [`SPENT_LIMIT`] bytes.
#[derive(Debug, Default)]
struct Spent {
    exchanges: Vec<Exchange>,
    bytes: u64,
}

/// Captured bytes the spent exchanges may hold before the writer frees them itself.
const SPENT_LIMIT: u64 = 8 << 20;

impl Backlog {
    /// The writer took `bytes` of captures off the backlog: waiting exchanges go on once it is
    /// under [`BACKLOG_RESUME`].
    fn taken(&self, bytes: u64) {
        // SeqCst, here and in `wait_for_room`: either this sees the waiter's flag, or the
        // waiter sees the backlog this left.
        if self.bytes.fetch_sub(bytes, Ordering::SeqCst) - bytes <= BACKLOG_RESUME
            && self.stalled.swap(false, Ordering::SeqCst)
        {
            self.drained.notify_waiters();
            self.warned.store(false, Ordering::Relaxed);
        }
    }

    /// Hands `exchanges` (`bytes` of captures) over to be freed by the next send.
    fn bury(&self, exchanges: &mut Vec<Exchange>, bytes: u64) {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        spent.exchanges.append(exchanges);
        spent.bytes += bytes;
        if spent.bytes > SPENT_LIMIT {
            let full = std::mem::take(&mut *spent);
            drop(spent);
            drop(full);
        }
    }

    /// Wakes the writer if it sleeps. Called after each message sent.
    fn wake(&self) {
        // Pairs with the fence in `next_msg`: either the writer sees the message, or this sees
        // that it went to sleep.
        fence(Ordering::SeqCst);
        if self.asleep.swap(false, Ordering::Relaxed)
            && let Some(writer) = self.writer.get()
        {
            writer.unpark();
        }
    }

    /// Frees the spent exchanges.
    fn free_spent(&self) {
        let spent = std::mem::take(&mut *self.spent.lock().unwrap_or_else(|e| e.into_inner()));
        drop(spent);
    }
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
    backlog: Arc<Backlog>,
}

impl WriterHandle {
    pub fn send(&self, exchange: Exchange) {
        let bytes = (exchange.request_body.kept() + exchange.response_body.kept()) as u64;
        self.backlog.bytes.fetch_add(bytes, Ordering::AcqRel);
        if self
            .tx
            .send(Msg::Exchange(Box::new(exchange), bytes))
            .is_err()
        {
            self.backlog.bytes.fetch_sub(bytes, Ordering::AcqRel);
            tracing::error!("traffic log writer has stopped; an exchange was not logged");
        }
        if self.backlog.deferred.load(Ordering::Relaxed) {
            self.backlog.after_send.notify_one();
        } else {
            self.after_send();
        }
    }

    /// Wakes the writer if it sleeps, and frees the exchanges it is done with.
    fn after_send(&self) {
        self.backlog.wake();
        // Never waits for the writer (what it holds now, a later send frees), and frees after
        // the lock is released.
        let spent = self
            .backlog
            .spent
            .try_lock()
            .map(|mut spent| std::mem::take(&mut *spent));
        drop(spent);
    }

    /// Does the work that follows each send once the sending task has yielded, for as long as
    /// it runs; spawn it on the forwarding runtime.
    ///
    /// An exchange is sent when hyper drops the response body, which is before it writes the
    /// response's last bytes to the client: woken there, the writer (a futex call, and an
    /// interrupt to the other CPU) and the freeing of the previous exchange held up the
    /// response. Run from a task, both come after the connection's task has written it.
    pub async fn after_sends(self) {
        struct Direct<'a>(&'a Backlog);
        impl Drop for Direct<'_> {
            fn drop(&mut self) {
                self.0.deferred.store(false, Ordering::Relaxed);
                // A send may have left its wake-up to this task and found it gone.
                self.0.wake();
            }
        }
        let _direct = Direct(&self.backlog);
        self.backlog.deferred.store(true, Ordering::Relaxed);
        loop {
            self.backlog.after_send.notified().await;
            self.after_send();
        }
    }

    /// Returns once the writer's backlog is under [`BACKLOG_LIMIT`] (at once, normally).
    pub async fn wait_for_room(&self) {
        // The usual case costs one load: no waiter is registered.
        if self.backlog.bytes.load(Ordering::Acquire) <= BACKLOG_LIMIT {
            return;
        }
        loop {
            let drained = self.backlog.drained.notified();
            let mut drained = std::pin::pin!(drained);
            drained.as_mut().enable();
            // Asks the writer for a wake-up (see `Backlog::taken`).
            self.backlog.stalled.store(true, Ordering::SeqCst);
            let bytes = self.backlog.bytes.load(Ordering::SeqCst);
            if bytes <= BACKLOG_LIMIT {
                return;
            }
            if !self.backlog.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    backlog_bytes = bytes,
                    "the traffic log writer is behind; new exchanges wait for it"
                );
            }
            // A writer that stopped making progress must not hang traffic forever.
            if tokio::time::timeout(std::time::Duration::from_secs(60), drained)
                .await
                .is_err()
            {
                tracing::error!(
                    backlog_bytes = bytes,
                    "the traffic log writer made no progress for 60 s; letting a new exchange through"
                );
                return;
            }
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
        let backlog = Arc::new(Backlog::default());
        let thread_backlog = backlog.clone();
        let thread = std::thread::Builder::new()
            .name("traffic-writer".to_string())
            .spawn(move || {
                let _ = thread_backlog.writer.set(std::thread::current());
                lower_priority();
                run(rx, path, file, cap, &thread_stats, &thread_backlog)
            })?;
        Ok(Writer {
            handle: WriterHandle { tx, backlog },
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
        self.handle.backlog.wake();
        if self.thread.join().is_err() {
            tracing::error!("traffic log writer thread panicked");
        }
    }
}

/// Runs the calling thread (and the console thread it starts) at nice 19: the writer's work is
/// never urgent, and at the default priority a record being built could hold a core that the
/// next request needed (added p50 latency of a 50 KB POST 0.153 → 0.117 ms in a same-run A/B,
/// docs/performance-history.md). Nice 19 still gets ~1.5% of a core against busy default-priority
/// threads, so a machine saturated by other work slows the log, never stops it (and the
/// backlog bound covers the rest).
fn lower_priority() {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "cannot lower the traffic log writer's priority");
    }
}

fn run(
    rx: mpsc::Receiver<Msg>,
    path: PathBuf,
    file: File,
    cap: usize,
    stats: &WriterStats,
    backlog: &Backlog,
) {
    let mut log = LogFile::new(path, file);
    let mut console = Console::start();
    // Console lines not yet handed to the console thread.
    let mut lines = String::new();
    // When to print `lines` and, if no exchange came meanwhile, free the spent exchanges.
    let mut due: Option<Instant> = None;
    let mut spent = Vec::new();
    let mut stop = false;
    while !stop {
        let first = match next_msg(&rx, backlog, due) {
            Next::Msg(msg) => msg,
            Next::Due => {
                console.print(std::mem::take(&mut lines));
                backlog.free_spent();
                due = None;
                continue;
            }
            Next::Closed => break,
        };
        let mut spent_bytes = 0;
        for msg in std::iter::once(first).chain(rx.try_iter().take(BATCH_MAX - 1)) {
            let Msg::Exchange(exchange, bytes) = msg else {
                stop = true;
                break;
            };
            let record = record::build(&exchange, cap);
            backlog.taken(bytes);
            spent.push(*exchange);
            spent_bytes += bytes;
            if spent_bytes > SPENT_LIMIT {
                backlog.bury(&mut spent, std::mem::take(&mut spent_bytes));
            }
            lines.push_str(&summary::line(&record));
            lines.push('\n');
            log.push(&record, stats);
            if log.pending.len() >= WRITE_SIZE {
                log.flush(stats);
            }
        }
        // Nothing is held back waiting for more: the queue is empty (or a batch is done).
        log.flush(stats);
        backlog.bury(&mut spent, spent_bytes);
        let now = Instant::now();
        let due_at = *due.get_or_insert(now + CONSOLE_EVERY);
        if now >= due_at {
            console.print(std::mem::take(&mut lines));
            due = Some(now + CONSOLE_EVERY);
        }
    }
    console.print(lines);
    console.close();
}

enum Next {
    Msg(Msg),
    /// The deadline passed with nothing queued.
    Due,
    Closed,
}

/// The next message, sleeping until one is sent or `due` passes.
///
/// The writer parks rather than blocking in `recv`: a blocked receiver registers in the
/// channel's waker list, under a mutex that the waking send then held while the woken writer
/// already wanted it back, and three exchanges in four cost the forwarding thread a second
/// futex call for that mutex (strace of sequential 50 KB POSTs). A parked writer costs a send
/// one atomic swap, and one `unpark` when it sleeps.
fn next_msg(rx: &mpsc::Receiver<Msg>, backlog: &Backlog, due: Option<Instant>) -> Next {
    loop {
        match rx.try_recv() {
            Ok(msg) => return Next::Msg(msg),
            Err(TryRecvError::Disconnected) => return Next::Closed,
            Err(TryRecvError::Empty) => {}
        }
        let wait = match due {
            None => None,
            Some(due) => match due.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Some(wait),
                _ => return Next::Due,
            },
        };
        // Say so, then look once more: a message sent before the flag was set is seen here,
        // and a send after it sees the flag (`Backlog::wake`).
        backlog.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        match rx.try_recv() {
            Ok(msg) => {
                backlog.asleep.store(false, Ordering::Relaxed);
                return Next::Msg(msg);
            }
            Err(TryRecvError::Disconnected) => return Next::Closed,
            Err(TryRecvError::Empty) => {}
        }
        match wait {
            None => std::thread::park(),
            Some(wait) => std::thread::park_timeout(wait),
        }
        backlog.asleep.store(false, Ordering::Relaxed);
    }
}

/// How long console lines are collected before they go to stdout in one write. A write per
/// exchange woke the console thread, and whoever reads stdout (podman's conmon, the
/// benchmark), once per exchange; a human reading the lines does not see 100 ms.
const CONSOLE_EVERY: Duration = Duration::from_millis(100);

/// Bytes of whole lines collected before one `write`: appending 1 MiB at a time costs the
/// kernel less than half the CPU per byte of 50 KB writes (measured alone, on ext4). The
/// writer never waits for a buffer to fill.
const WRITE_SIZE: usize = 1 << 20;

/// The traffic log and the lines serialized but not yet appended to it.
struct LogFile {
    path: PathBuf,
    /// None after a failed write: reopened on the next flush.
    file: Option<File>,
    pending: Vec<u8>,
    /// Records in `pending`.
    records: u64,
    cache: PageCache,
}

impl LogFile {
    fn new(path: PathBuf, file: File) -> LogFile {
        let mut log = LogFile {
            path,
            file: Some(file),
            pending: Vec::new(),
            records: 0,
            cache: PageCache::default(),
        };
        log.end_a_cut_line();
        log
    }

    /// A crash or a failed write may have cut the log's last line short: the next append then
    /// ends it first, so that the next record is a line of its own.
    fn end_a_cut_line(&mut self) {
        if self
            .file
            .as_ref()
            .is_some_and(|f| ends_mid_line(f, &self.path))
        {
            self.pending.insert(0, b'\n');
        }
    }

    /// Serializes `record` as one line onto `pending`.
    fn push(&mut self, record: &TrafficRecord, stats: &WriterStats) {
        let start = self.pending.len();
        match serde_json::to_writer(&mut self.pending, record) {
            Ok(()) => {
                self.pending.push(b'\n');
                self.records += 1;
            }
            Err(e) => {
                self.pending.truncate(start);
                let failed = stats.failed.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(id = %record.id, error = %e, failed, "could not serialize a traffic record; it is lost");
            }
        }
    }

    /// Appends the pending lines with one `write` (O_APPEND: lines never interleave with
    /// another writer's).
    fn flush(&mut self, stats: &WriterStats) {
        if self.pending.is_empty() {
            return;
        }
        if self.file.is_none() {
            self.file = open_log(&self.path).ok();
            self.end_a_cut_line();
        }
        let result = match &mut self.file {
            Some(f) => f.write_all(&self.pending),
            None => Err(std::io::Error::other("log file is not open")),
        };
        match result {
            Ok(()) => {
                stats.written.fetch_add(self.records, Ordering::Relaxed);
                if let Some(file) = &self.file {
                    self.cache.wrote(file, self.pending.len(), self.records);
                }
            }
            Err(e) => {
                let failed = stats.failed.fetch_add(self.records, Ordering::Relaxed) + self.records;
                tracing::error!(path = %self.path.display(), error = %e, records = self.records, failed,
                    "could not append traffic records to the log file; they are lost");
                self.file = None;
                self.cache = PageCache::default();
            }
        }
        self.pending.clear();
        self.records = 0;
        // One huge record must not pin its buffer for the life of the process.
        if self.pending.capacity() > 4 * WRITE_SIZE {
            self.pending = Vec::new();
        }
    }
}

/// Whether the log, a regular file open as `file` (for appending only), ends part way through
/// a line.
fn ends_mid_line(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let len = match file.metadata() {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => return false,
    };
    let mut last = [0];
    len > 0
        && File::open(path).is_ok_and(|f| f.read_at(&mut last, len - 1).is_ok())
        && last[0] != b'\n'
}

/// Bytes appended between two releases of the log's page cache.
const RELEASE_EVERY: u64 = 16 << 20;

/// Bytes appended between two starts of writeback while the writer keeps up with the traffic
/// (one record per write).
const WRITEBACK_STEP: u64 = 256 << 10;

/// The same while records queue up for the writer (several per write).
const WRITEBACK_STEP_BUSY: u64 = 1 << 20;

/// Keeps the log from filling the page cache. The log is written once and read once, by the
/// shipper right behind the writer, so nothing gains from gigabytes of it staying cached; and
/// every page cached anew costs the kernel a fresh page. On the VMs this is developed on,
/// where the host backs a page only once it is touched, that made appending 8x dearer
/// (0.42 against 3.7 GB per CPU-second) than writing into pages just released.
///
/// The writer starts writing back what it appended since the last time (`sync_file_range`,
/// which does not wait) every [`WRITEBACK_STEP`] bytes, and every [`RELEASE_EVERY`] bytes it
/// drops the stretch before the last release point, written back by then
/// (`POSIX_FADV_DONTNEED`). So the newest 16-32 MiB stay cached for the shipper.
///
/// Writeback in small steps because starting it is kernel work that nothing preempts on
/// kernels built `PREEMPT_NONE`, and a request woken on the writer's core waits for it: 16 MiB
/// steps gave sequential 50 KB POSTs a p99 of 0.76-1.63 ms, 1 MiB steps 0.46-0.69, and at 1 MiB
/// a scheduler trace still put most of the forwarding thread's longest waits behind the
/// writer's ~140 µs `sync_file_range`. While records queue up (several per write) the writer
/// is the bottleneck and steps of [`WRITEBACK_STEP_BUSY`] cost it less per byte
/// (docs/performance-history.md).
///
/// Dropping only clean pages matters: given a dirty one, `fadvise` cannot drop it and drains
/// every CPU's page lists to try again, a kernel work item on each CPU that the writer waits
/// for; asking it to write back and drop in one call cost the 50 KB POST 46-80 µs at p99.
#[derive(Debug, Default)]
struct PageCache {
    /// Bytes appended since writeback was last started.
    since: u64,
    /// Writeback has been started up to here.
    started_to: u64,
    /// The stretch to drop at the next release (from the release point before the last to the
    /// last one).
    written_from: u64,
    written_to: u64,
}

impl PageCache {
    fn wrote(&mut self, file: &File, bytes: usize, records: u64) {
        use std::io::Seek;
        self.since += bytes as u64;
        let step = if records > 1 {
            WRITEBACK_STEP_BUSY
        } else {
            WRITEBACK_STEP
        };
        if self.since < step {
            return;
        }
        self.since = 0;
        // With O_APPEND the offset after a write is the end of the log.
        let Ok(end) = (&*file).stream_position() else {
            return;
        };
        // A log truncated under us (logrotate's copytruncate) starts over at 0.
        if end < self.started_to {
            *self = PageCache::default();
        }
        // Both are advice: a failure costs page cache, never a record.
        start_writeback(file, self.started_to, end - self.started_to);
        self.started_to = end;
        if end - self.written_to < RELEASE_EVERY {
            return;
        }
        if let Some(len) = std::num::NonZeroU64::new(self.written_to - self.written_from) {
            let _ = rustix::fs::fadvise(
                file,
                self.written_from,
                Some(len),
                rustix::fs::Advice::DontNeed,
            );
        }
        self.written_from = self.written_to;
        self.written_to = end;
    }
}

/// Starts writing back `len` bytes of `file` from `offset`, without waiting for it.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range(2) reads no memory of ours; it takes an open descriptor (`file`
    // is borrowed for the call) and three integers. Neither std nor rustix wraps it.
    #[allow(unsafe_code)]
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

/// The human lines on stdout, printed by their own thread: a stdout nobody reads (a full pipe)
/// must never hold up the traffic log. Lines come in batches (at most one per
/// [`CONSOLE_EVERY`], one write each); batches beyond a backlog of 1024 are dropped and their
/// lines counted.
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
                while let Ok(lines) = rx.recv() {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(lines.as_bytes());
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

    /// Queues `lines` (each ending in a newline) for stdout.
    fn print(&mut self, lines: String) {
        if lines.is_empty() {
            return;
        }
        let count = memchr::memchr_iter(b'\n', lines.as_bytes()).count() as u64;
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.try_send(lines).is_ok());
        if !sent {
            let before = self.dropped;
            self.dropped += count;
            // Warn at each power of two crossed: rarely, however long stdout stays unread.
            if (before + 1).next_power_of_two() <= self.dropped {
                tracing::warn!(
                    dropped = self.dropped,
                    "stdout is not being read; per-exchange console lines dropped (the traffic log is unaffected)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Capture;

    /// A captured chunk that says on which thread it was freed.
    struct Owner(mpsc::Sender<std::thread::ThreadId>, Vec<u8>);

    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            &self.1
        }
    }

    impl Drop for Owner {
        fn drop(&mut self) {
            let _ = self.0.send(std::thread::current().id());
        }
    }

    fn exchange(freed: &mpsc::Sender<std::thread::ThreadId>) -> Exchange {
        let mut body = Capture::new(1 << 20);
        body.push(&bytes::Bytes::from_owner(Owner(
            freed.clone(),
            b"{\"model\":\"m\"}".to_vec(),
        )));
        Exchange {
            started_at: std::time::SystemTime::now(),
            ended_at: std::time::SystemTime::now(),
            duration: Duration::ZERO,
            ttfb: None,
            outcome: traffic_record::Outcome::Complete,
            error: None,
            method: http::Method::POST,
            path: "/v1/messages".to_string(),
            query: None,
            request_headers: http::HeaderMap::new(),
            request_body: body,
            response: None,
            response_body: Capture::new(1 << 20),
        }
    }

    /// A writer on a log in a fresh temp directory (kept while the returned guard lives).
    fn start_writer() -> (tempfile::TempDir, PathBuf, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        let writer = Writer::start(path.clone(), open_log(&path).unwrap(), 1 << 20).unwrap();
        (dir, path, writer)
    }

    /// Waits until `n` records are written; a lost wake-up leaves one unwritten.
    fn wait_written(writer: &Writer, n: u64) {
        let wait = Instant::now();
        while writer.stats.written.load(Ordering::SeqCst) < n {
            assert!(
                wait.elapsed() < Duration::from_secs(5),
                "record {n} not written: the writer missed its wake-up"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn every_send_wakes_a_sleeping_writer() {
        let (_dir, path, writer) = start_writer();
        let handle = writer.handle();
        let (freed_tx, _freed) = mpsc::channel();
        // Sent back to back, each racing the writer going to sleep after the one before; and
        // now and then after a pause that lets it sleep with no deadline at all. A lost
        // wake-up leaves a record unwritten.
        for i in 1..=2000u64 {
            if i % 500 == 0 {
                std::thread::sleep(CONSOLE_EVERY * 2);
            }
            handle.send(exchange(&freed_tx));
            wait_written(&writer, i);
        }
        writer.close();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().count(),
            2000
        );
    }

    #[test]
    fn after_sends_wakes_the_writer_once_the_sending_task_yields() {
        let (_dir, _, writer) = start_writer();
        let handle = writer.handle();
        let (freed_tx, _freed) = mpsc::channel();
        let written = |n| wait_written(&writer, n);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::spawn(handle.clone().after_sends());
            tokio::task::yield_now().await;
            for i in 1..=3 {
                // Long enough for the writer to park with no deadline.
                std::thread::sleep(CONSOLE_EVERY * 2);
                assert!(handle.backlog.asleep.load(Ordering::SeqCst));
                handle.send(exchange(&freed_tx));
                std::thread::sleep(Duration::from_millis(20));
                assert_eq!(
                    writer.stats.written.load(Ordering::SeqCst),
                    i - 1,
                    "send {i} woke the writer before the sending task yielded"
                );
                tokio::task::yield_now().await;
                written(i);
            }
            // Back to back: none of the wake-ups left to the task is lost.
            for i in 4..=2000 {
                handle.send(exchange(&freed_tx));
                tokio::task::yield_now().await;
                written(i);
            }
        });
        // Without the task, a send wakes the writer itself.
        drop(runtime);
        std::thread::sleep(CONSOLE_EVERY * 2);
        handle.send(exchange(&freed_tx));
        written(2001);
        writer.close();
    }

    #[test]
    fn captures_are_freed_by_the_next_send_or_by_the_writer_once_idle() {
        let (_dir, path, writer) = start_writer();
        let handle = writer.handle();
        let (freed_tx, freed) = mpsc::channel();
        let here = std::thread::current().id();

        handle.send(exchange(&freed_tx));
        let wait = Instant::now();
        while handle.backlog.spent.lock().unwrap().exchanges.is_empty() {
            assert!(
                wait.elapsed() < Duration::from_secs(5),
                "first record written"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Logged, and kept until the next send frees it on the sending thread.
        assert_eq!(writer.stats.written.load(Ordering::SeqCst), 1);
        assert!(freed.try_recv().is_err(), "not freed by the writer at once");
        handle.send(exchange(&freed_tx));
        assert_eq!(freed.try_recv(), Ok(here), "freed by the next send");

        // No more sends: the writer frees the last one itself, soon.
        let writer_thread = freed
            .recv_timeout(CONSOLE_EVERY * 20)
            .expect("freed by the idle writer");
        assert_ne!(writer_thread, here);
        writer.close();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[tokio::test]
    async fn new_exchanges_wait_while_the_backlog_is_over_the_limit_and_go_on_under_half() {
        let (tx, _rx) = mpsc::channel();
        let handle = WriterHandle {
            tx,
            backlog: Arc::new(Backlog::default()),
        };
        handle.wait_for_room().await; // empty backlog: at once
        handle
            .backlog
            .bytes
            .store(BACKLOG_LIMIT + 10, Ordering::SeqCst);
        let waiter = tokio::spawn({
            let handle = handle.clone();
            async move { handle.wait_for_room().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "waits while the writer is behind");
        handle.backlog.taken(20);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "just under the limit is not enough: one record's worth would stall it again"
        );
        handle.backlog.taken(BACKLOG_LIMIT - 10 - BACKLOG_RESUME);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("goes on once the writer is under half the limit")
            .unwrap();
    }

    #[test]
    fn a_line_cut_short_is_ended_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        let stats = WriterStats::default();
        let append_record = |log: &mut LogFile, text: &str| {
            log.pending.extend_from_slice(text.as_bytes());
            log.pending.push(b'\n');
            log.records += 1;
            log.flush(&stats);
        };
        // Left by a proxy killed part way through a write.
        std::fs::write(&path, "{\"id\":\"cut").unwrap();
        let mut log = LogFile::new(path.clone(), open_log(&path).unwrap());
        append_record(&mut log, "{}");
        append_record(&mut log, "[]");
        // A failed write (the disk filled up) left part of a line; the log is reopened.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\":\"half")
            .unwrap();
        log.file = None;
        append_record(&mut log, "{\"id\":\"next\"}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"cut\n{}\n[]\n{\"id\":\"half\n{\"id\":\"next\"}\n"
        );
        assert_eq!(stats.written.load(Ordering::Relaxed), 3);
    }
}
