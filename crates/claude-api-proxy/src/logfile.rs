//! The traffic log on disk: appends whole lines, rotates by size at a line boundary, reopens
//! its path on request (SIGHUP, after an external logrotate), takes back a write that failed
//! part way, and knows how many bytes the log and its segments take.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use traffic_record::segments;

/// Opens (creating with mode 0600) the log for appending.
pub fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// How often the bytes of the rotated segments are counted again (the shipper deletes them).
const SEGMENTS_RECOUNT: Duration = Duration::from_secs(1);

/// The live log file.
pub struct LogFile {
    path: PathBuf,
    /// None after the path could not be opened: tried again on the next append.
    file: Option<File>,
    /// The live file's length: what this writer appended to it (it alone appends).
    len: u64,
    /// The live file ends part way through a line (a crash, a write that could not be taken
    /// back): the next append starts with a newline, so no record is glued to a fragment.
    cut: bool,
    /// Rotate before the live file would pass this many bytes; 0: never.
    rotate_size: u64,
    segments_bytes: u64,
    segments_counted: Option<Instant>,
}

impl LogFile {
    /// Opens `path` (creating it) and learns its state.
    pub fn open(path: PathBuf, rotate_size: u64) -> io::Result<LogFile> {
        let file = open_log(&path)?;
        let mut log = LogFile {
            path,
            file: None,
            len: 0,
            cut: false,
            rotate_size,
            segments_bytes: 0,
            segments_counted: None,
        };
        log.adopt(file);
        Ok(log)
    }

    fn adopt(&mut self, file: File) {
        self.len = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.cut = ends_mid_line(&self.path, self.len);
        self.file = Some(file);
    }

    /// Opens the path anew: after an external rotation the old descriptor writes to a file that
    /// was renamed away.
    pub fn reopen(&mut self) {
        self.file = None;
        match open_log(&self.path) {
            Ok(file) => self.adopt(file),
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot reopen the traffic log; trying again at the next record")
            }
        }
        self.segments_counted = None;
    }

    /// Whether a line of `next` bytes should go to a fresh file: the live file plus the
    /// `pending` bytes still to be appended to it hold something, and the line would take
    /// them past the rotation size.
    pub fn should_rotate(&self, pending: u64, next: u64) -> bool {
        let held = self.len + pending;
        self.rotate_size > 0 && held > 0 && held + next > self.rotate_size
    }

    /// Renames the live file to the next segment name and opens a fresh one. The live path is
    /// renamed only while it is still this writer's file (an external logrotate may have
    /// moved it already; then the path is just reopened).
    pub fn rotate(&mut self) {
        let ours = match (&self.file, std::fs::metadata(&self.path)) {
            (Some(file), Ok(at_path)) => file
                .metadata()
                .is_ok_and(|m| m.dev() == at_path.dev() && m.ino() == at_path.ino()),
            _ => false,
        };
        if ours {
            let segment = segments::next_name(&self.path, SystemTime::now());
            match std::fs::rename(&self.path, &segment) {
                Ok(()) => {
                    tracing::info!(segment = %segment.display(), bytes = self.len, "traffic log rotated")
                }
                Err(e) => {
                    tracing::error!(path = %self.path.display(), segment = %segment.display(), error = %e,
                        "cannot rotate the traffic log; appending to it still");
                    return;
                }
            }
        }
        self.reopen();
    }

    /// Appends `lines` (whole lines) in one write. A write that fails part way is taken back
    /// (the file is cut to its length before), so a failure leaves no fragment behind.
    pub fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.reopen();
        }
        let Some(file) = &mut self.file else {
            return Err(io::Error::other("the log file is not open"));
        };
        if self.cut {
            file.write_all(b"\n")?;
            self.len += 1;
            self.cut = false;
        }
        match file.write_all(lines) {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(e) => {
                // With O_APPEND the next write goes to the new end of the file.
                if file.set_len(self.len).is_err() {
                    self.file = None;
                }
                Err(e)
            }
        }
    }

    /// Bytes of the live file and its rotated segments (segments counted at most once a second).
    pub fn usage(&mut self) -> u64 {
        if self
            .segments_counted
            .is_none_or(|at| at.elapsed() >= SEGMENTS_RECOUNT)
        {
            self.segments_bytes = segments::list(&self.path)
                .unwrap_or_default()
                .iter()
                .filter_map(|s| std::fs::metadata(&s.path).ok())
                .map(|m| m.len())
                .sum();
            self.segments_counted = Some(Instant::now());
        }
        self.len + self.segments_bytes
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether the file at `path`, `len` bytes long, ends part way through a line.
fn ends_mid_line(path: &Path, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut last = [0];
    len > 0
        && File::open(path).is_ok_and(|f| f.read_at(&mut last, len - 1).is_ok())
        && last[0] != b'\n'
}

/// Whether `e` says the volume (or the user's quota) is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cut_short_is_ended_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        // Left by a proxy killed part way through a write.
        std::fs::write(&path, "{\"id\":\"cut").unwrap();
        let mut log = LogFile::open(path.clone(), 0).unwrap();
        log.append(b"{}\n").unwrap();
        log.append(b"[]\n").unwrap();
        // A fragment appended behind the writer's back; reopened (SIGHUP), it is ended too.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\":\"half")
            .unwrap();
        log.reopen();
        log.append(b"{\"id\":\"next\"}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"cut\n{}\n[]\n{\"id\":\"half\n{\"id\":\"next\"}\n"
        );
    }

    #[test]
    fn rotation_renames_at_a_line_boundary_to_a_sortable_name_and_starts_a_0600_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        let mut log = LogFile::open(path.clone(), 10).unwrap();
        assert!(!log.should_rotate(0, 100), "an empty file takes any record");
        assert!(
            log.should_rotate(5, 6),
            "lines waiting for an empty file count as its content"
        );
        log.append(b"0123456\n").unwrap();
        assert!(!log.should_rotate(0, 2));
        assert!(log.should_rotate(0, 3));
        log.rotate();
        log.append(b"abc\n").unwrap();
        let segments = segments::list(&path).unwrap();
        assert_eq!(segments.len(), 1);
        assert_eq!(std::fs::read(&segments[0].path).unwrap(), b"0123456\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"abc\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(log.usage(), 12);
    }

    #[test]
    fn rotation_after_an_external_rename_only_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.log");
        let mut log = LogFile::open(path.clone(), 0).unwrap();
        log.append(b"a\n").unwrap();
        std::fs::rename(&path, dir.path().join("traffic.log.1")).unwrap();
        std::fs::write(&path, b"").unwrap();
        log.rotate();
        log.append(b"b\n").unwrap();
        assert!(segments::list(&path).unwrap().is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), b"b\n");
        assert_eq!(
            std::fs::read(dir.path().join("traffic.log.1")).unwrap(),
            b"a\n"
        );
    }
}
