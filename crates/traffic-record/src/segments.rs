//! The names of the traffic log's rotated segments, shared by the proxy (which makes them) and
//! the shipper (which follows them in order and deletes them once delivered).
//!
//! A segment of the live log `<path>` is `<path>.<UTC YYYYMMDDTHHMMSSZ>.<n>`, `n` counting
//! from 1 within one second. Segments sort oldest first by time stamp, then by `n` as a number.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One rotated segment of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    /// `YYYYMMDDTHHMMSSZ`.
    pub stamp: String,
    pub n: u64,
}

impl Segment {
    /// The sort key: oldest first.
    pub fn key(&self) -> (&str, u64) {
        (&self.stamp, self.n)
    }
}

/// `YYYYMMDDTHHMMSSZ` of `at`, in UTC.
pub fn stamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace(['-', ':'], "")
}

/// A free name for a segment of `live` rotated at `at`.
pub fn next_name(live: &Path, at: SystemTime) -> PathBuf {
    let stamp = stamp(at);
    (1u64..)
        .map(|n| name(live, &stamp, n))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("some n is free")
}

fn name(live: &Path, stamp: &str, n: u64) -> PathBuf {
    let mut name = live.as_os_str().to_owned();
    name.push(format!(".{stamp}.{n}"));
    PathBuf::from(name)
}

/// Parses `file_name` as a segment name of the live log named `live_name`.
pub fn parse(live_name: &str, file_name: &str) -> Option<(String, u64)> {
    let rest = file_name.strip_prefix(live_name)?.strip_prefix('.')?;
    let (stamp, n) = rest.split_once('.')?;
    let valid_stamp = stamp.len() == 16
        && stamp.as_bytes()[8] == b'T'
        && stamp.ends_with('Z')
        && stamp[..8].bytes().all(|b| b.is_ascii_digit())
        && stamp[9..15].bytes().all(|b| b.is_ascii_digit());
    // Digits only: `u64::from_str` would also take `+1`.
    let valid_n = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    let n = n.parse::<u64>().ok().filter(|_| valid_stamp && valid_n)?;
    Some((stamp.to_string(), n))
}

/// The segments of `live` in its directory, oldest first. Empty when there is no directory.
pub fn list(live: &Path) -> std::io::Result<Vec<Segment>> {
    let Some(live_name) = live.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = match live.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out: Vec<Segment> = entries
        .flatten()
        .filter_map(|e| {
            let file_name = e.file_name();
            let (stamp, n) = parse(live_name, file_name.to_str()?)?;
            Some(Segment {
                path: e.path(),
                stamp,
                n,
            })
        })
        .collect();
    out.sort_by(|a, b| a.key().cmp(&b.key()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_oldest_first_by_stamp_then_number() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("claude-logger.log");
        let at = humantime::parse_rfc3339("2026-12-03T10:15:00Z").unwrap();
        let first = next_name(&live, at);
        assert_eq!(
            first.file_name().unwrap(),
            "claude-logger.log.20261203T101500Z.1"
        );
        for _ in 0..11 {
            std::fs::write(next_name(&live, at), b"").unwrap();
        }
        let later = humantime::parse_rfc3339("2026-12-03T10:15:01Z").unwrap();
        std::fs::write(next_name(&live, later), b"").unwrap();
        // Not segments: logrotate's names, other logs, a temp file.
        for other in [
            "claude-logger.log",
            "claude-logger.log.1",
            "claude-logger.log.20261203T101500Z",
            "claude-logger.log.20261203T101500Z.x",
            "other.log.20261203T101500Z.1",
        ] {
            std::fs::write(dir.path().join(other), b"").unwrap();
        }
        let names: Vec<String> = list(&live)
            .unwrap()
            .iter()
            .map(|s| format!("{}.{}", s.stamp, s.n))
            .collect();
        let mut want: Vec<String> = (1..=11).map(|n| format!("20261203T101500Z.{n}")).collect();
        want.push("20261203T101501Z.1".to_string());
        assert_eq!(names, want);
    }

    #[test]
    fn a_name_parses_to_its_stamp_and_number() {
        let key = |file: &str| parse("claude-logger.log", file);
        assert_eq!(
            key("claude-logger.log.20261203T101500Z.10"),
            Some(("20261203T101500Z".into(), 10))
        );
        assert!(
            key("claude-logger.log.20261203T101500Z.1").unwrap()
                < key("claude-logger.log.20261203T101500Z.10").unwrap()
        );
        for not_a_segment in [
            "claude-logger.log.20261203T1015Z.1",
            "claude-logger.log.checkpoint",
            "claude-logger.log.20261203T101500Z.1.gz",
            "claude-logger.log.20261203T101500Z.+1",
            "claude-logger.log.20261203T101500Z.",
        ] {
            assert_eq!(key(not_a_segment), None, "{not_a_segment}");
        }
    }
}
