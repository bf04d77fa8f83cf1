//! The per-exchange console lines on stdout, printed by their own thread so that a stdout
//! nobody reads never holds up the traffic log.

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// How long console lines are collected before they go to stdout in one write: whoever reads
/// stdout (podman's conmon) is then woken ten times a second at most, not once per exchange.
pub const CONSOLE_EVERY: Duration = Duration::from_millis(100);

/// The human lines on stdout, printed by their own thread: a stdout nobody reads (a full pipe)
/// must never hold up the traffic log. Lines come in batches (at most one per
/// [`CONSOLE_EVERY`], one write each); batches beyond a backlog of 1024 are dropped and their
/// lines counted.
pub struct Console {
    tx: Option<mpsc::SyncSender<String>>,
    /// Says when the console thread has printed everything.
    done: Option<mpsc::Receiver<()>>,
    dropped: u64,
}

impl Console {
    pub fn start() -> Console {
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
    pub fn close(mut self) {
        drop(self.tx.take());
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(std::time::Duration::from_secs(2));
        }
    }

    /// Queues `lines` (each ending in a newline) for stdout.
    pub fn print(&mut self, lines: String) {
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
