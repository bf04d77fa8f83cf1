//! A capped copy of a body, kept on the side while the body streams through untouched.
//!
//! Chunks are kept as `Bytes` handles (a reference count, no copy) so the hot path never
//! memcpys; the writer thread joins them later.

use bytes::Bytes;
use std::time::{Duration, Instant};

/// Up to `cap` bytes of a body, plus the size seen on the wire.
#[derive(Debug, Default)]
pub struct Capture {
    chunks: Vec<Bytes>,
    /// When each kept chunk arrived, from the capture's creation (the exchange's start).
    arrived: Vec<Duration>,
    created: Option<Instant>,
    kept: usize,
    cap: usize,
    /// Bytes seen, counting past the cap.
    pub size: u64,
    /// The cap was reached: what is kept is a prefix.
    pub truncated: bool,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        Capture {
            cap,
            created: Some(Instant::now()),
            ..Capture::default()
        }
    }

    /// Records a chunk that is passing through.
    pub fn push(&mut self, chunk: &Bytes) {
        self.size += chunk.len() as u64;
        let room = self.cap - self.kept;
        if chunk.len() <= room {
            if !chunk.is_empty() {
                self.kept += chunk.len();
                self.chunks.push(chunk.clone());
                self.arrived.push(self.since_created());
            }
        } else {
            self.truncated = true;
            if room > 0 {
                self.kept += room;
                self.chunks.push(chunk.slice(..room));
                self.arrived.push(self.since_created());
            }
        }
    }

    fn since_created(&self) -> Duration {
        self.created.map_or(Duration::ZERO, |c| c.elapsed())
    }

    /// The kept chunks, as they arrived.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// When each of [`Capture::chunks`] arrived, from the capture's creation.
    pub fn arrived(&self) -> &[Duration] {
        &self.arrived
    }

    /// Bytes held (at most the cap).
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Frees the kept bytes, keeping the size; what is left is an empty prefix.
    pub fn drop_content(&mut self) {
        self.chunks = Vec::new();
        self.kept = 0;
        self.truncated |= self.size > 0;
    }

    /// The kept bytes as one buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.kept);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_prefix_up_to_the_cap_and_counts_everything() {
        let mut c = Capture::new(5);
        c.push(&Bytes::from_static(b"abc"));
        c.push(&Bytes::from_static(b"defg"));
        c.push(&Bytes::from_static(b"hij"));
        assert!(c.truncated);
        assert_eq!(c.size, 10);
        assert_eq!(c.to_bytes(), b"abcde");
    }
}
