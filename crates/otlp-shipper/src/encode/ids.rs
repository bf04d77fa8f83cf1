//! Ids derived from what a record holds, never from the shipper's state, so a restart (or a
//! second shipper over the same log) gives the same ids: the trace of a session, the span of
//! an exchange, the content hash that names a shipped system prompt block or tool, and the
//! digest a conversation message is matched by.

use sha2::{Digest, Sha256};

/// The trace id of a Claude Code session: the first 16 bytes of SHA-256 over a fixed prefix
/// and the session id. Every exchange of the session shares it, so Seq shows the session as
/// one trace.
pub fn session_trace_id(session_id: &str) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(b"claude-api-logger session\0")
        .chain_update(session_id.as_bytes())
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The span id of an exchange: the first 8 bytes of its id (32 random hex digits written by
/// the proxy); an id that is not 32 hex digits, or whose first half is zero, is hashed instead.
pub fn exchange_span_id(exchange_id: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    match hex16(exchange_id) {
        Some(bytes) if bytes[..8].iter().any(|b| *b != 0) => out.copy_from_slice(&bytes[..8]),
        _ => {
            let digest = Sha256::new()
                .chain_update(b"claude-api-logger exchange\0")
                .chain_update(exchange_id.as_bytes())
                .finalize();
            out.copy_from_slice(&digest[..8]);
        }
    }
    out
}

/// The trace id of an exchange: its session's, or its own id when it has no session.
pub fn trace_id(session_id: Option<&str>, exchange_id: &str) -> Option<[u8; 16]> {
    match session_id {
        Some(s) => Some(session_trace_id(s)),
        None => hex16(exchange_id),
    }
}

/// A content digest: 16 bytes of SHA-256, enough that two different texts never share one.
pub type Digest16 = [u8; 16];

pub fn digest(text: &[u8]) -> Digest16 {
    let d = Sha256::digest(text);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The digest a conversation message is matched by (kept in memory, never shipped): 16 bytes
/// of BLAKE3, as collision-resistant as [`digest`] and several times faster on the megabytes
/// of messages each request re-sends.
pub fn message_digest(text: &[u8]) -> Digest16 {
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3::hash(text).as_bytes()[..16]);
    out
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// 32 hex digits → 16 bytes.
pub fn hex16(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_only_on_the_record() {
        let a = session_trace_id("5f1e7c2a-0000-4000-8000-000000000001");
        assert_eq!(a, session_trace_id("5f1e7c2a-0000-4000-8000-000000000001"));
        assert_ne!(a, session_trace_id("5f1e7c2a-0000-4000-8000-000000000002"));
        assert_eq!(
            exchange_span_id("0123456789abcdef0123456789abcdef"),
            [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        );
        let odd = exchange_span_id("not-hex");
        assert_eq!(odd, exchange_span_id("not-hex"));
        assert_ne!(odd, [0; 8]);
        assert_ne!(exchange_span_id(&"0".repeat(32)), [0; 8]);
        assert_eq!(
            trace_id(None, "0123456789abcdef0123456789abcdef"),
            hex16("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
