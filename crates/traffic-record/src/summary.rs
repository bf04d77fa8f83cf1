//! The one human line that sums up an exchange: `POST /v1/messages 200 claude-sonnet-4 2.3s
//! in=12,345 out=456`. The proxy prints it on stdout (so `podman logs` reads like a console) and
//! the shipper sends it as each event's message in Seq; the two differ only where [`Style`] says.

use crate::TrafficRecord;
use std::fmt::Write as _;

/// The fields of an exchange the line is made of.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Written after the path as `?query` when given.
    pub query: Option<&'a str>,
    /// The response status; absent when no response arrived.
    pub status: Option<u16>,
    pub model: Option<&'a str>,
    pub duration_ms: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Written as `session=<first 8 characters>` when given.
    pub session_id: Option<&'a str>,
    /// The record's outcome; written at the end unless it is `complete`.
    pub outcome: &'a str,
}

impl<'a> From<&'a TrafficRecord> for Fields<'a> {
    fn from(r: &'a TrafficRecord) -> Self {
        let usage = r.usage.as_ref();
        Fields {
            method: &r.request.method,
            path: &r.request.path,
            query: r.request.query.as_deref(),
            status: r.response.as_ref().map(|resp| resp.status),
            model: r.model.as_deref(),
            duration_ms: Some(r.duration_ms),
            input_tokens: usage.and_then(|u| u.input_tokens),
            output_tokens: usage.and_then(|u| u.output_tokens),
            session_id: r.session_id.as_deref(),
            outcome: r.outcome.as_str(),
        }
    }
}

/// Where the line is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Read by a person in a terminal: token counts grouped (`12,345`), every duration in
    /// seconds, a missing status `---`.
    Console,
    /// Searched in Seq: plain numbers (`in=12345` matches a query), durations under a second
    /// in `ms`, a missing status `-`.
    Seq,
}

/// The line of `f`.
pub fn line(f: &Fields<'_>, style: Style) -> String {
    let mut out = String::new();
    write(&mut out, f, style);
    out
}

/// Writes the line of `f` over `out` (cleared first), so a caller can reuse one buffer.
pub fn write(out: &mut String, f: &Fields<'_>, style: Style) {
    out.clear();
    let _ = write!(out, "{} {}", f.method, f.path);
    if let Some(q) = f.query {
        let _ = write!(out, "?{q}");
    }
    match (f.status, style) {
        (Some(code), _) => {
            let _ = write!(out, " {code}");
        }
        (None, Style::Console) => out.push_str(" ---"),
        (None, Style::Seq) => out.push_str(" -"),
    }
    if let Some(m) = f.model {
        let _ = write!(out, " {m}");
    }
    if let Some(d) = f.duration_ms {
        if style == Style::Seq && d < 1000.0 {
            let _ = write!(out, " {}ms", d.round() as u64);
        } else {
            let _ = write!(out, " {:.1}s", d / 1000.0);
        }
    }
    for (name, n) in [("in", f.input_tokens), ("out", f.output_tokens)] {
        let Some(n) = n else { continue };
        let _ = match style {
            Style::Console => write!(out, " {name}={}", thousands(n)),
            // Written in place: the shipper writes one line per event.
            Style::Seq => write!(out, " {name}={n}"),
        };
    }
    if let Some(s) = f.session_id {
        let short: String = s.chars().take(8).collect();
        let _ = write!(out, " session={short}");
    }
    if f.outcome != "complete" {
        let _ = write!(out, " {}", f.outcome);
    }
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(f: &Fields<'_>, style: Style) -> String {
        let mut out = String::from("left over");
        write(&mut out, f, style);
        out
    }

    const FULL: Fields<'static> = Fields {
        method: "POST",
        path: "/v1/messages",
        query: Some("beta=true"),
        status: Some(200),
        model: Some("claude-opus-4"),
        duration_ms: Some(2300.0),
        input_tokens: Some(12345),
        output_tokens: Some(456),
        session_id: Some("5e551011-aaaa"),
        outcome: "complete",
    };

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(456), "456");
        assert_eq!(thousands(12345), "12,345");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_console_line_groups_digits_and_names_the_session() {
        assert_eq!(
            line(&FULL, Style::Console),
            "POST /v1/messages?beta=true 200 claude-opus-4 2.3s in=12,345 out=456 session=5e551011"
        );
        let aborted = Fields {
            status: None,
            duration_ms: Some(412.0),
            outcome: "upstream_aborted",
            ..FULL
        };
        assert_eq!(
            line(&aborted, Style::Console),
            "POST /v1/messages?beta=true --- claude-opus-4 0.4s in=12,345 out=456 session=5e551011 upstream_aborted"
        );
    }

    #[test]
    fn the_seq_line_keeps_numbers_plain_and_short_durations_in_ms() {
        let seq = Fields {
            query: None,
            session_id: None,
            ..FULL
        };
        assert_eq!(
            line(&seq, Style::Seq),
            "POST /v1/messages 200 claude-opus-4 2.3s in=12345 out=456"
        );
        let fast = Fields {
            status: None,
            duration_ms: Some(412.4),
            ..seq
        };
        assert_eq!(
            line(&fast, Style::Seq),
            "POST /v1/messages - claude-opus-4 412ms in=12345 out=456"
        );
    }
}
