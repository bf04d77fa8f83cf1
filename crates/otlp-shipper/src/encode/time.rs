//! The record's RFC 3339 timestamps (and the rate-limit headers' reset times) as Unix
//! nanoseconds, the unit of OTLP.

/// RFC 3339 → Unix nanoseconds.
pub fn parse_time_ns(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_nanos()).ok()
}
