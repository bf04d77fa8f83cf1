//! Retention of the proxy's rotated log segments: a segment the endpoint has fully
//! acknowledged (the checkpoint has moved to a later file) is deleted, unless the delivered
//! segments kept, newest first, stay within the budget (bytes and age). A segment not yet
//! delivered is never deleted, whatever the budget.

use crate::source::checkpoint::Position;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use traffic_record::segments;

/// How much delivered history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes of delivered segments kept at most (0: none).
    pub bytes: u64,
    /// Age (since its last write) of a delivered segment kept at most (zero: none).
    pub age: Duration,
}

/// How often retention looks again while the checkpoint stays in one file (for the age).
const RECHECK: Duration = Duration::from_secs(60);

/// Applies the budget as the checkpoint moves.
pub struct Retention {
    live: PathBuf,
    budget: Budget,
    /// The file (dev, ino) of the checkpoint at the last pass, and when that was.
    last: Option<((u64, u64), Instant)>,
}

impl Retention {
    pub fn new(live: PathBuf, budget: Budget) -> Self {
        Retention {
            live,
            budget,
            last: None,
        }
    }

    /// The checkpoint is now `pos`: deletes what the budget lets go, when the checkpoint moved
    /// to another file or a while has passed.
    pub fn delivered(&mut self, pos: Position) {
        let file = (pos.dev, pos.ino);
        if self
            .last
            .is_some_and(|(f, at)| f == file && at.elapsed() < RECHECK)
        {
            return;
        }
        self.last = Some((file, Instant::now()));
        match apply(&self.live, pos, self.budget) {
            Ok(deleted) => {
                for path in deleted {
                    tracing::info!(segment = %path.display(), "delivered log segment deleted (retention budget)");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot apply the retention budget to the log's segments")
            }
        }
    }
}

/// Deletes the delivered segments of `live` beyond `budget`; returns them. Delivered: older
/// than the checkpoint's file (all of them when that is the live file; none when it is found
/// nowhere).
pub fn apply(live: &Path, checkpoint: Position, budget: Budget) -> std::io::Result<Vec<PathBuf>> {
    let is_checkpoint =
        |m: &std::fs::Metadata| m.dev() == checkpoint.dev && m.ino() == checkpoint.ino;
    let list = segments::list(live)?;
    let metas: Vec<Option<std::fs::Metadata>> = list
        .iter()
        .map(|s| std::fs::metadata(&s.path).ok())
        .collect();
    let delivered = match metas
        .iter()
        .position(|m| m.as_ref().is_some_and(is_checkpoint))
    {
        Some(i) => i,
        None if std::fs::metadata(live).is_ok_and(|m| is_checkpoint(&m)) => list.len(),
        // A file logrotate renamed: files are read in the order they were last written, so
        // the segments written before it are delivered.
        None => match renamed_file(live, &is_checkpoint).and_then(|m| m.modified().ok()) {
            Some(written) => metas
                .iter()
                .take_while(|m| {
                    m.as_ref()
                        .and_then(|m| m.modified().ok())
                        .is_some_and(|t| t < written)
                })
                .count(),
            None => 0,
        },
    };
    let now = SystemTime::now();
    let mut kept = 0u64;
    let mut over = false;
    let mut deleted = Vec::new();
    // Newest first: the most recent history is what is kept.
    for i in (0..delivered).rev() {
        let Some(meta) = &metas[i] else { continue };
        let age = meta
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        kept += meta.len();
        over |= kept > budget.bytes || age > budget.age;
        if over {
            std::fs::remove_file(&list[i].path)?;
            deleted.push(list[i].path.clone());
        }
    }
    deleted.reverse();
    Ok(deleted)
}

/// The file beside `live` that `is_checkpoint` names, when it is not one of the proxy's
/// segments (logrotate's `<log>.1` and the like).
fn renamed_file(
    live: &Path,
    is_checkpoint: &dyn Fn(&std::fs::Metadata) -> bool,
) -> Option<std::fs::Metadata> {
    let dir = match live.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .find(|m| m.is_file() && is_checkpoint(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position_of(path: &Path) -> Position {
        let m = std::fs::metadata(path).unwrap();
        Position {
            dev: m.dev(),
            ino: m.ino(),
            offset: 0,
            head: 0,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn only_delivered_segments_are_deleted_oldest_first_beyond_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("t.log");
        for n in 1..=4 {
            std::fs::write(
                dir.path().join(format!("t.log.20261203T101500Z.{n}")),
                [b'x'; 100],
            )
            .unwrap();
        }
        std::fs::write(&live, b"live").unwrap();
        let budget = Budget {
            bytes: 150,
            age: Duration::from_secs(3600),
        };
        // The checkpoint is in segment 3: 1 and 2 are delivered; 3 and 4 are not.
        let third = dir.path().join("t.log.20261203T101500Z.3");
        let deleted = apply(&live, position_of(&third), budget).unwrap();
        assert_eq!(deleted, [dir.path().join("t.log.20261203T101500Z.1")]);
        // A zero budget still never touches undelivered segments.
        let none = Budget {
            bytes: 0,
            age: Duration::ZERO,
        };
        apply(&live, position_of(&third), none).unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "t.log",
                "t.log.20261203T101500Z.3",
                "t.log.20261203T101500Z.4"
            ]
        );
        // A checkpoint found nowhere: nothing is known delivered.
        let gone = Position {
            ino: u64::MAX,
            ..position_of(&live)
        };
        assert!(apply(&live, gone, none).unwrap().is_empty());
        // On the live file: every segment is delivered.
        apply(&live, position_of(&live), none).unwrap();
        assert_eq!(names(dir.path()), ["t.log"]);
    }

    #[test]
    fn delivered_segments_older_than_the_age_budget_go() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("t.log");
        let old = dir.path().join("t.log.20261203T101500Z.1");
        let new = dir.path().join("t.log.20261203T101501Z.1");
        std::fs::write(&old, b"old").unwrap();
        std::fs::write(&new, b"new").unwrap();
        std::fs::write(&live, b"").unwrap();
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        let budget = Budget {
            bytes: u64::MAX,
            age: Duration::from_secs(3600),
        };
        assert_eq!(apply(&live, position_of(&live), budget).unwrap(), [old]);
        assert!(new.exists());
    }

    #[test]
    fn with_the_checkpoint_in_a_file_logrotate_renamed_the_segments_written_before_it_are_delivered()
     {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("t.log");
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs);
        let write = |name: &str, when: SystemTime| {
            let path = dir.path().join(name);
            std::fs::write(&path, [b'x'; 100]).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
            path
        };
        write("t.log.20261203T101500Z.1", at(1));
        write("t.log.20261203T101500Z.2", at(2));
        let renamed = write("t.log.1", at(3));
        let after = write("t.log.20261203T101600Z.1", at(4));
        std::fs::write(&live, b"").unwrap();
        let none = Budget {
            bytes: 0,
            age: Duration::ZERO,
        };
        let deleted = apply(&live, position_of(&renamed), none).unwrap();
        assert_eq!(
            deleted,
            [
                dir.path().join("t.log.20261203T101500Z.1"),
                dir.path().join("t.log.20261203T101500Z.2")
            ]
        );
        assert!(
            after.exists(),
            "written after the checkpoint's file: not delivered"
        );
        assert!(renamed.exists(), "logrotate's file is left to logrotate");
    }
}
