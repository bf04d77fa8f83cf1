//! Restart delays for a crashing child: exponential, capped, reset once a child ran long enough
//! to count as healthy, so a crash loop cannot spin the CPU and a rare crash restarts fast.
use std::time::Duration;

/// A run at least this long means the child was healthy; the next crash restarts quickly.
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The delay before restarting a child that ran for `ran_for` before dying.
    pub fn after_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= HEALTHY_RUN {
            self.next = self.min;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let quick = Duration::from_millis(10);
        let delays: Vec<_> = (0..5).map(|_| b.after_exit(quick).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
    }

    #[test]
    fn a_healthy_run_resets_the_delay() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let quick = Duration::from_millis(10);
        b.after_exit(quick);
        b.after_exit(quick);
        assert_eq!(b.after_exit(HEALTHY_RUN).as_millis(), 500);
        assert_eq!(b.after_exit(quick).as_millis(), 1000);
    }
}
