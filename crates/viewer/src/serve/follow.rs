//! Following the traffic log for `serve`: the index of every exchange head, kept up to date as
//! the proxy appends to the live file, rotates it (a rename to `<log>.<stamp>.<n>` and a new
//! live file) and the shipper deletes delivered segments. A file is known by device and inode,
//! as the shipper's tail knows it, and read through its open handle, so a rename changes
//! nothing already indexed; a file that shrank or whose first bytes changed (copy-truncation)
//! is indexed again. Only heads are kept, never bodies.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;
use crate::log::{self, Index, Skipped};

/// How many leading bytes of a file tell whether it is still the file that was read.
const HEAD_LEN: usize = 64;
/// How far back one read looks for the last newline of a growing file.
const TAIL_READ: usize = 64 << 10;

/// The log's index, following the files as they change.
#[derive(Debug)]
pub struct LiveLog {
    log: PathBuf,
    /// Every head, in the order the files were read; `index.segments[slot]` and
    /// `index.files[slot]` belong to `files[slot]`.
    pub index: Index,
    files: Vec<Tracked>,
    /// Exchanges per session id, for the live pages.
    counts: HashMap<String, usize>,
    /// Bumped whenever the index changes.
    pub generation: u64,
}

#[derive(Debug)]
struct Tracked {
    dev: u64,
    ino: u64,
    /// Offset after the last whole line indexed.
    end: u64,
    /// The file's first bytes as read (up to `HEAD_LEN`).
    head: Vec<u8>,
    skipped: Skipped,
    bytes: u64,
    present: bool,
}

impl LiveLog {
    /// Indexes every segment and the live file (none yet is an empty log, not an error: the
    /// proxy creates the file with its first exchange).
    pub fn open(log: &Path, threads: usize) -> Result<LiveLog, Error> {
        let mut live = LiveLog {
            log: log.to_path_buf(),
            index: Index::default(),
            files: Vec::new(),
            counts: HashMap::new(),
            generation: 0,
        };
        live.refresh(threads)?;
        live.generation = 1;
        Ok(live)
    }

    /// Exchanges of a session indexed so far.
    pub fn count(&self, session: &str) -> usize {
        self.counts.get(session).copied().unwrap_or(0)
    }

    /// Looks at the files again: new lines, rotated, truncated, replaced or deleted files.
    /// Returns whether the index changed.
    pub fn refresh(&mut self, threads: usize) -> Result<bool, Error> {
        let read_err = |path: &Path, source| Error::Read {
            path: path.display().to_string(),
            source,
        };
        let mut paths: Vec<PathBuf> = traffic_record::segments::list(&self.log)
            .map_err(|e| read_err(&self.log, e))?
            .into_iter()
            .map(|s| s.path)
            .collect();
        paths.push(self.log.clone());
        let mut seen = vec![false; self.files.len()];
        let mut changed = false;
        for path in paths {
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                // Rotated away or deleted since it was listed: the next look finds it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(read_err(&path, e)),
            };
            let known = self
                .files
                .iter()
                .position(|t| t.present && (t.dev, t.ino) == (meta.dev(), meta.ino()));
            let slot = match known {
                Some(slot) => slot,
                None => {
                    let file = match File::open(&path) {
                        Ok(file) => file,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(read_err(&path, e)),
                    };
                    let opened = file.metadata().map_err(|e| read_err(&path, e))?;
                    if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
                        continue; // replaced between the look and the open
                    }
                    self.files.push(Tracked {
                        dev: meta.dev(),
                        ino: meta.ino(),
                        end: 0,
                        head: Vec::new(),
                        skipped: Skipped::default(),
                        bytes: 0,
                        present: true,
                    });
                    seen.push(false);
                    self.index.segments.push(path.clone());
                    self.index.files.push(Some(Arc::new(file)));
                    self.files.len() - 1
                }
            };
            seen[slot] = true;
            self.index.segments[slot] = path.clone();
            changed |= self.read_new(slot, threads)?;
        }
        for (slot, seen) in seen.into_iter().enumerate() {
            if !seen && self.files[slot].present {
                self.files[slot].present = false;
                self.index.files[slot] = None;
                self.forget(slot);
                changed = true;
            }
        }
        if changed {
            self.index.assign_senders();
            self.index.skipped = Skipped::default();
            self.index.bytes = 0;
            for t in self.files.iter().filter(|t| t.present) {
                self.index.skipped.add(&t.skipped);
                self.index.bytes += t.bytes;
            }
            self.generation += 1;
        }
        Ok(changed)
    }

    /// Indexes what was appended to the file of `slot` since the last look (all of it again
    /// when the file shrank or its first bytes changed).
    fn read_new(&mut self, slot: usize, threads: usize) -> Result<bool, Error> {
        let path = self.index.segments[slot].clone();
        let read_err = |source| Error::Read {
            path: path.display().to_string(),
            source,
        };
        let file = self.index.files[slot]
            .clone()
            .expect("a present file is open");
        let size = file.metadata().map_err(read_err)?.len();
        let t = &self.files[slot];
        let mut changed = false;
        if size < t.end || !starts_with(&file, &t.head).map_err(read_err)? {
            self.forget(slot);
            let t = &mut self.files[slot];
            (t.end, t.head, t.skipped, t.bytes) = (0, Vec::new(), Skipped::default(), 0);
            changed = true;
        }
        let start = self.files[slot].end;
        let end = last_line_end(&file, start, size).map_err(read_err)?;
        if end <= start {
            return Ok(changed);
        }
        let part = log::read_lines(slot, &path, &file, start, end, threads)?;
        let t = &mut self.files[slot];
        t.end = end;
        t.bytes += part.bytes;
        t.skipped.add(&part.skipped);
        if t.head.len() < HEAD_LEN {
            let mut head = vec![0; HEAD_LEN.min(end as usize)];
            file.read_exact_at(&mut head, 0).map_err(read_err)?;
            t.head = head;
        }
        for head in part.heads {
            if let Some(id) = &head.session_id {
                *self.counts.entry(id.clone()).or_default() += 1;
            }
            self.index.heads.push(head);
        }
        Ok(true)
    }

    /// Drops the heads of a file that is gone or is read again.
    fn forget(&mut self, slot: usize) {
        let counts = &mut self.counts;
        self.index.heads.retain(|h| {
            let keep = h.location.segment != slot;
            if !keep
                && let Some(id) = &h.session_id
                && let Some(n) = counts.get_mut(id)
            {
                *n -= 1;
                if *n == 0 {
                    counts.remove(id);
                }
            }
            keep
        });
    }
}

/// Whether `file` still begins with `head`.
fn starts_with(file: &File, head: &[u8]) -> std::io::Result<bool> {
    let mut now = vec![0; head.len()];
    match file.read_exact_at(&mut now, 0) {
        Ok(()) => Ok(now == head),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The offset just after the last newline in `[start, size)`, or `start` when there is none
/// (the line being written is read once it is whole).
fn last_line_end(file: &File, start: u64, size: u64) -> std::io::Result<u64> {
    let mut buf = vec![0; TAIL_READ];
    let mut to = size;
    while to > start {
        let from = to.saturating_sub(TAIL_READ as u64).max(start);
        let chunk = &mut buf[..(to - from) as usize];
        file.read_exact_at(chunk, from)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(from + i as u64 + 1);
        }
        to = from;
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn record(n: u32, session: &str) -> String {
        serde_json::json!({
            "v": 1, "kind": "claude_api_exchange", "id": id(n),
            "started_at": format!("2026-12-03T10:00:{:02}Z", n % 60), "ended_at": "2026-12-03T10:00:59Z",
            "duration_ms": 1.0, "outcome": "complete", "session_id": session,
            "request": {"method": "POST", "path": "/v1/messages", "headers": {},
                "body": {"size": 2, "json": {"messages": [{"role": "user", "content": format!("prompt {n}")}]}}},
            "response": {"status": 200, "headers": {}, "body": {"size": 0}}
        })
        .to_string()
            + "\n"
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn ids(live: &LiveLog) -> Vec<String> {
        let mut ids: Vec<String> = live.index.heads.iter().map(|h| h.id.clone()).collect();
        ids.sort();
        ids
    }

    /// Ids differ in their first bytes, as the proxy's random ids do.
    fn id(n: u32) -> String {
        format!("{n:02x}").repeat(16)
    }

    #[test]
    fn appended_lines_are_indexed_once_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("traffic.log");
        let mut live = LiveLog::open(&log, 1).unwrap();
        assert!(live.index.heads.is_empty(), "no file yet is an empty log");
        append(&log, &record(1, "a"));
        let second = record(2, "a");
        let (first_half, rest) = second.split_at(40);
        append(&log, first_half);
        assert!(live.refresh(1).unwrap());
        assert_eq!(ids(&live), [id(1)]);
        assert_eq!(
            live.index.skipped.total(),
            0,
            "a line being written is not cut"
        );
        append(&log, rest);
        assert!(live.refresh(1).unwrap());
        assert!(!live.refresh(1).unwrap(), "nothing new");
        assert_eq!(ids(&live), [id(1), id(2)]);
        assert_eq!(live.count("a"), 2);
        let line = live.index.read_line(live.index.heads[1].location).unwrap();
        assert_eq!(line + "\n", second);
    }

    #[test]
    fn a_rotation_keeps_what_was_read_and_follows_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("claude-logger.log");
        append(&log, &record(1, "a"));
        let mut live = LiveLog::open(&log, 1).unwrap();
        let segment = dir.path().join("claude-logger.log.20261203T100000Z.1");
        std::fs::rename(&log, &segment).unwrap();
        append(&segment, &record(2, "a")); // the proxy's last write before it reopened
        append(&log, &record(3, "b"));
        assert!(live.refresh(1).unwrap());
        assert_eq!(ids(&live), [id(1), id(2), id(3)]);
        for h in &live.index.heads {
            let line = live.index.read_line(h.location).unwrap();
            assert!(line.contains(&h.id), "{line}");
        }
        // The shipper deletes the delivered segment: its exchanges leave the index.
        std::fs::remove_file(&segment).unwrap();
        assert!(live.refresh(1).unwrap());
        assert_eq!(ids(&live), [id(3)]);
        assert_eq!((live.count("a"), live.count("b")), (0, 1));
    }

    #[test]
    fn a_truncated_or_replaced_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("traffic.log");
        append(&log, &(record(1, "a") + &record(2, "a")));
        let mut live = LiveLog::open(&log, 1).unwrap();
        // copytruncate, then more written than was there before.
        std::fs::write(&log, record(7, "c") + &record(8, "c") + &record(9, "c")).unwrap();
        assert!(live.refresh(1).unwrap());
        assert_eq!(ids(&live), [id(7), id(8), id(9)]);
        std::fs::write(&log, record(5, "d")).unwrap();
        assert!(live.refresh(1).unwrap());
        assert_eq!(ids(&live), [id(5)]);
        assert_eq!(live.count("c"), 0);
    }
}
