//! The `anthropic-ratelimit-*` response headers as typed properties, so Seq can compare and
//! sum them: API-key forms (`…-requests-remaining: 49`, `…-tokens-reset: 2026-…Z`) and the
//! subscription "unified" forms (`…-unified-5h-utilization: 0.42`, `…-unified-5h-reset:
//! 1764777600`, `…-unified-status: allowed`). See docs/seq-events.md, "Quota".

/// The header prefix; what follows it names the property.
pub const PREFIX: &str = "anthropic-ratelimit-";

/// A header value as a property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    Int(i64),
    Double(f64),
    Text(&'a str),
}

/// `anthropic-ratelimit-unified-5h-utilization` → `claude.ratelimit.unified_5h_utilization`
/// with its typed value; `None` for other headers. Integers stay integers, decimals become
/// doubles, an RFC 3339 time (the API-key `…-reset` form) becomes Unix seconds like the
/// unified form already is, anything else (a status) stays text.
pub fn property<'a>(header: &str, value: &'a str) -> Option<(String, Typed<'a>)> {
    let rest = header.strip_prefix(PREFIX)?;
    let key = format!("claude.ratelimit.{}", rest.replace('-', "_"));
    let v = value.trim();
    let typed = if let Ok(i) = v.parse::<i64>() {
        Typed::Int(i)
    } else if let Ok(d) = v.parse::<f64>()
        && d.is_finite()
    {
        Typed::Double(d)
    } else if let Some(ns) = crate::encode::time::parse_time_ns(v) {
        Typed::Int((ns / 1_000_000_000) as i64)
    } else {
        Typed::Text(value)
    };
    Some((key, typed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_and_unified_forms_become_numbers() {
        assert_eq!(
            property("anthropic-ratelimit-requests-remaining", "49"),
            Some(("claude.ratelimit.requests_remaining".into(), Typed::Int(49)))
        );
        assert_eq!(
            property("anthropic-ratelimit-tokens-reset", "2026-12-03T10:00:30Z"),
            Some((
                "claude.ratelimit.tokens_reset".into(),
                Typed::Int(1_796_292_030)
            ))
        );
        assert_eq!(
            property("anthropic-ratelimit-unified-5h-utilization", "0.42"),
            Some((
                "claude.ratelimit.unified_5h_utilization".into(),
                Typed::Double(0.42)
            ))
        );
        assert_eq!(
            property("anthropic-ratelimit-unified-7d-reset", "1764777600"),
            Some((
                "claude.ratelimit.unified_7d_reset".into(),
                Typed::Int(1_764_777_600)
            ))
        );
        assert_eq!(
            property("anthropic-ratelimit-unified-status", "allowed_warning"),
            Some((
                "claude.ratelimit.unified_status".into(),
                Typed::Text("allowed_warning")
            ))
        );
        assert_eq!(property("request-id", "req_1"), None);
    }
}
