//! Retry policy: a pure function from the outcome of one request to what to do next, so the
//! rules (what is retried, when to split, when to give up on an event) are tested exactly.

use std::time::Duration;

/// What one POST of a batch produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// An HTTP response arrived. `retry_after` is the parsed `Retry-After` header.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No response: connection refused or reset, timeout, TLS failure.
    Transport,
}

/// What to do after an [`Attempt`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// 2xx: the events are stored; the checkpoint may move.
    Delivered,
    /// Transient: send the same batch again after this delay, with no limit on attempts.
    Retry {
        after: Duration,
        reason: RetryReason,
    },
    /// The batch (or one event in it) is refused: split it in halves to isolate the offender.
    Split,
    /// Refused for good: write the events to the dead-letter file and go on.
    DeadLetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// The endpoint is down, overloaded or rate limiting.
    Transient,
    /// 401/403/404/405/415: the endpoint or its API key is misconfigured. Retried rather
    /// than dead-lettered, because the whole log would otherwise go to the dead-letter file;
    /// logged as an error that needs operator action.
    Misconfigured,
}

pub const BASE_DELAY: Duration = Duration::from_millis(100);
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// A Retry-After above this is clamped: the shipper never sleeps for hours on one header.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Decides what to do after attempt number `attempt` (0 for the first) of a batch. `jitter`
/// is a uniform draw from [0, 1) supplied by the caller, which keeps this function pure.
pub fn decide(outcome: &Attempt, attempt: u32, jitter: f64) -> Decision {
    match outcome {
        Attempt::Transport => Decision::Retry {
            after: backoff(attempt, jitter),
            reason: RetryReason::Transient,
        },
        Attempt::Status { code, retry_after } => match *code {
            200..=299 => Decision::Delivered,
            408 | 429 | 500 | 502..=599 => Decision::Retry {
                after: retry_after
                    .map(|d| d.min(MAX_RETRY_AFTER))
                    .unwrap_or_else(|| backoff(attempt, jitter)),
                reason: RetryReason::Transient,
            },
            401 | 403 | 404 | 405 | 415 => Decision::Retry {
                after: backoff(attempt, jitter).max(Duration::from_secs(1)),
                reason: RetryReason::Misconfigured,
            },
            400 | 413 => Decision::Split,
            _ => Decision::DeadLetter,
        },
    }
}

/// Exponential backoff from [`BASE_DELAY`] doubling up to [`MAX_DELAY`], with "equal jitter":
/// the delay is between half and all of the exponential value.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let exp = BASE_DELAY.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(MAX_DELAY);
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Parses `Retry-After` given in seconds (the form Seq and proxies use); HTTP dates are
/// ignored (the backoff applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Attempt {
        Attempt::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn success_is_delivered() {
        for code in [200, 201, 202, 204] {
            assert_eq!(decide(&status(code), 0, 0.5), Decision::Delivered);
        }
    }

    #[test]
    fn transient_failures_are_retried_without_limit() {
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert!(
                matches!(
                    decide(&status(code), 1000, 0.5),
                    Decision::Retry {
                        reason: RetryReason::Transient,
                        ..
                    }
                ),
                "{code}"
            );
        }
        assert!(matches!(
            decide(&Attempt::Transport, 5000, 0.1),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn not_implemented_is_not_retried() {
        assert_eq!(decide(&status(501), 0, 0.5), Decision::DeadLetter);
    }

    #[test]
    fn bad_request_and_too_large_split_the_batch() {
        assert_eq!(decide(&status(400), 0, 0.5), Decision::Split);
        assert_eq!(decide(&status(413), 3, 0.5), Decision::Split);
    }

    #[test]
    fn other_client_errors_go_to_the_dead_letter_file() {
        for code in [402, 409, 410, 422, 302] {
            assert_eq!(
                decide(&status(code), 0, 0.5),
                Decision::DeadLetter,
                "{code}"
            );
        }
    }

    #[test]
    fn misconfiguration_is_retried_and_flagged() {
        for code in [401, 403, 404, 415] {
            assert!(matches!(
                decide(&status(code), 0, 0.0),
                Decision::Retry {
                    reason: RetryReason::Misconfigured,
                    after
                } if after >= Duration::from_secs(1)
            ));
        }
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let a = Attempt::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            decide(&a, 7, 0.9),
            Decision::Retry {
                after: Duration::from_secs(2),
                reason: RetryReason::Transient
            }
        );
        let a = Attempt::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(100_000)),
        };
        assert!(
            matches!(decide(&a, 0, 0.0), Decision::Retry { after, .. } if after == MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        assert_eq!(backoff(0, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(0, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(30, 1.0), MAX_DELAY);
        assert_eq!(backoff(30, 0.0), MAX_DELAY / 2);
        for attempt in 0..40 {
            assert!(backoff(attempt, 0.99) <= MAX_DELAY);
        }
    }

    #[test]
    fn retry_after_parses_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
