//! The one human line per exchange printed on stdout, so that `podman logs` reads like a
//! console view: `POST /v1/messages?beta=true 200 claude-opus-4 2.3s in=12,345 out=456 session=ab12`.

use traffic_record::{Outcome, TrafficRecord};

pub fn line(r: &TrafficRecord) -> String {
    let mut out = format!("{} {}", r.request.method, r.request.path);
    if let Some(q) = &r.request.query {
        out.push('?');
        out.push_str(q);
    }
    match &r.response {
        Some(resp) => out.push_str(&format!(" {}", resp.status)),
        None => out.push_str(" ---"),
    }
    if let Some(model) = &r.model {
        out.push(' ');
        out.push_str(model);
    }
    out.push_str(&format!(" {:.1}s", r.duration_ms / 1000.0));
    if let Some(u) = &r.usage {
        if let Some(n) = u.input_tokens {
            out.push_str(&format!(" in={}", thousands(n)));
        }
        if let Some(n) = u.output_tokens {
            out.push_str(&format!(" out={}", thousands(n)));
        }
    }
    if let Some(s) = &r.session_id {
        let short: String = s.chars().take(8).collect();
        out.push_str(&format!(" session={short}"));
    }
    if r.outcome != Outcome::Complete {
        out.push(' ');
        out.push_str(r.outcome.as_str());
    }
    out
}

/// 12345 → "12,345".
fn thousands(n: u64) -> String {
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
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(12345), "12,345");
        assert_eq!(super::thousands(456), "456");
        assert_eq!(super::thousands(1000000), "1,000,000");
    }
}
