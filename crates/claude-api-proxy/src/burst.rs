//! Events that come in floods (refused connections, accept errors, client timeouts) counted
//! for `/metrics` and reported on stderr once per burst with a count, never once per event: a
//! client opening thousands of connections must not turn the proxy's stderr into a disk filler.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a kind of event must stay quiet before its burst is reported over.
pub const BURST_QUIET: Duration = Duration::from_secs(1);

/// One kind of event: its total, and the burst under way.
#[derive(Debug, Default)]
pub struct Burst {
    total: AtomicU64,
    /// The total when the current burst started, and whether one is under way.
    at_start: AtomicU64,
    active: AtomicBool,
    /// The total at the last [`Burst::tick`].
    at_tick: AtomicU64,
}

impl Burst {
    /// Counts one event; true when it starts a burst (the caller logs its first line then).
    pub fn note(&self) -> bool {
        let before = self.total.fetch_add(1, Ordering::Relaxed);
        if self.active.swap(true, Ordering::Relaxed) {
            return false;
        }
        self.at_start.store(before, Ordering::Relaxed);
        true
    }

    /// Events counted since start.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Called every [`BURST_QUIET`]: the number of events of the burst that ended, if the one
    /// under way saw no event since the last call.
    pub fn tick(&self) -> Option<u64> {
        let total = self.total();
        let quiet = self.at_tick.swap(total, Ordering::Relaxed) == total;
        if quiet && self.active.swap(false, Ordering::Relaxed) {
            return Some(total - self.at_start.load(Ordering::Relaxed));
        }
        None
    }

    /// Ends the burst under way, if any: its number of events.
    pub fn end(&self) -> Option<u64> {
        self.active
            .swap(false, Ordering::Relaxed)
            .then(|| self.total() - self.at_start.load(Ordering::Relaxed))
    }
}

/// The client-side floods of one proxy.
#[derive(Debug, Default)]
pub struct ClientFloods {
    /// Connections answered 503 at once: `--max-connections` reached.
    pub refused: Burst,
    /// `accept` failures (out of descriptors, EMFILE/ENFILE, or a connection gone first).
    pub accept_errors: Burst,
    /// Requests whose body came too slowly (`--body-read-timeout`, `--body-min-rate`).
    pub body_timeouts: Burst,
}

impl ClientFloods {
    /// Reports each burst's end with its count, until `shutdown`.
    pub async fn report(&self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(BURST_QUIET);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => break,
            }
            self.report_ended();
        }
        // A burst still under way at exit is reported with what it counted.
        self.report_ended_or(true);
    }

    fn report_ended(&self) {
        self.report_ended_or(false);
    }

    fn report_ended_or(&self, at_exit: bool) {
        let ended = |burst: &Burst| if at_exit { burst.end() } else { burst.tick() };
        if let Some(count) = ended(&self.refused) {
            tracing::warn!(
                refused = count,
                total_refused = self.refused.total(),
                "client connections are no longer refused: a burst over --max-connections (env MAX_CONNECTIONS) ended"
            );
        }
        if let Some(count) = ended(&self.accept_errors) {
            tracing::warn!(
                errors = count,
                total_errors = self.accept_errors.total(),
                "client connections are accepted again: a burst of accept errors ended"
            );
        }
        if let Some(count) = ended(&self.body_timeouts) {
            tracing::warn!(
                closed = count,
                total_closed = self.body_timeouts.total(),
                "a burst of clients closed for sending their request body too slowly ended"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_starts_once_and_ends_after_a_quiet_tick() {
        let b = Burst::default();
        assert!(b.note(), "the first event starts a burst");
        assert!(!b.note());
        assert_eq!(b.tick(), None, "events since the last tick");
        assert!(!b.note());
        assert_eq!(b.tick(), None);
        assert_eq!(b.tick(), Some(3), "a quiet tick ends it with its count");
        assert_eq!(b.tick(), None);
        assert!(b.note(), "a new burst");
        b.tick();
        assert_eq!(b.tick(), Some(1));
        assert_eq!(b.total(), 4);
    }
}
