//! Fault injection: what a test asks the stand-in to do wrong, as `POST /control` JSON or
//! through [`crate::Handle::control`].

use serde::{Deserialize, Serialize};

/// One fault command; every field is optional and the ones present are applied.
///
/// `{"refuse_connections_for_secs":30}`, `{"fail_next":[503,{"status":429,"retry_after":2}]}`,
/// `{"reject_event_containing":"X"}`, `{"reset":true}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Reset every connection (new and open ones) at the TCP level for that many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_connections_for_secs: Option<f64>,
    /// Answer the next ingest requests with these statuses, one each, before anything else
    /// is checked; appended to what is still queued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_next: Vec<Failure>,
    /// Reject with 400, for good, every batch that holds an event whose body or attributes
    /// contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_event_containing: Option<String>,
    /// Clear every fault (applied before the other fields).
    #[serde(default)]
    pub reset: bool,
}

/// A status to answer once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Failure {
    Status(u16),
    WithRetryAfter {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

impl Failure {
    pub fn status(self) -> u16 {
        match self {
            Failure::Status(s) | Failure::WithRetryAfter { status: s, .. } => s,
        }
    }

    pub fn retry_after(self) -> Option<u64> {
        match self {
            Failure::Status(_) => None,
            Failure::WithRetryAfter { retry_after, .. } => retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_examples() {
        let c: Control = serde_json::from_str(
            r#"{"fail_next":[503,503,{"status":429,"retry_after":2}],"refuse_connections_for_secs":30}"#,
        )
        .unwrap();
        assert_eq!(c.fail_next[0], Failure::Status(503));
        assert_eq!(c.fail_next[2].status(), 429);
        assert_eq!(c.fail_next[2].retry_after(), Some(2));
        assert_eq!(c.refuse_connections_for_secs, Some(30.0));
        assert!(serde_json::from_str::<Control>(r#"{"nonsense":1}"#).is_err());
    }
}
