//! Following the traffic log: complete lines of any size from a known position, across
//! rename rotation (finish the old file, then follow the next one) and copy-truncation (size
//! below the read position, or first bytes no longer those read: start again at 0). A file is
//! identified by device + inode, never by its path. The proxy's rotated segments
//! (`<path>.<stamp>.<n>`, [`traffic_record::segments`]) are read oldest first, each to its
//! end, then the live file: none is ever skipped. Blocking I/O: it runs on the shipper's
//! reader thread.

use crate::source::checkpoint::Position;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};
use traffic_record::segments;

/// Read buffer; lines longer than this are assembled in a growable buffer.
const READ_BUF: usize = 1 << 20;
/// A line buffer larger than this is freed once its line is done with.
const BIG_LINE: usize = 1 << 20;
/// How many leading bytes of a file its fingerprint covers.
const HEAD_LEN: usize = 64;

/// FNV-1a 64 of the leading bytes; never 0 (0 means "unknown" in a checkpoint).
fn fingerprint(head: &[u8]) -> u64 {
    let h = head.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h.max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

struct Open {
    reader: BufReader<File>,
    id: FileId,
    /// Offset just after the last complete line handed out.
    offset: u64,
    /// When the path was first seen to name another file (rotation), if it was.
    rotated_at: Option<Instant>,
    /// The file's first `min(offset, HEAD_LEN)` bytes and their fingerprint.
    head: Vec<u8>,
    head_hash: u64,
}

impl Open {
    fn position(&self) -> Position {
        Position {
            dev: self.id.dev,
            ino: self.id.ino,
            offset: self.offset,
            head: self.head_hash,
        }
    }

    /// Whether the file's first bytes are no longer those read from it: `head` and, while
    /// that is shorter than [`HEAD_LEN`], the start of `partial` (read after it). A
    /// copy-truncated file refilled past the read position never looks smaller than that
    /// position, but its head changed. One `pread` of at most [`HEAD_LEN`] bytes.
    fn head_changed(&self, partial: &[u8]) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        let h = self.head.len();
        let more = if h < HEAD_LEN {
            &partial[..(HEAD_LEN - h).min(partial.len())]
        } else {
            &[][..]
        };
        let known = h + more.len();
        if known == 0 {
            return Ok(false);
        }
        let mut now = [0u8; HEAD_LEN];
        match self.reader.get_ref().read_exact_at(&mut now[..known], 0) {
            Ok(()) => Ok(now[..h] != self.head[..] || now[h..known] != *more),
            // Shorter than what was read from it: truncated.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Starts again at offset 0 of the same file (it was truncated).
    fn rewind(&mut self) -> io::Result<()> {
        self.reader.seek(SeekFrom::Start(0))?;
        self.offset = 0;
        self.head.clear();
        self.head_hash = 0;
        Ok(())
    }

    /// Accounts for `bytes` consumed at the current offset.
    fn advance(&mut self, bytes: &[u8]) {
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            self.head_hash = fingerprint(&self.head);
        }
        self.offset += bytes.len() as u64;
    }
}

/// `read_until(b'\n')` that appends at most `limit` bytes (stopping early at a newline or
/// the end of the data), so a line without a newline is never read into memory whole.
fn read_until_at_most<R: BufRead>(r: &mut R, out: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
    let mut read = 0;
    while read < limit {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let window = &buf[..buf.len().min(limit - read)];
        let (take, done) = match memchr::memchr(b'\n', window) {
            Some(i) => (i + 1, true),
            None => (window.len(), false),
        };
        out.extend_from_slice(&window[..take]);
        r.consume(take);
        read += take;
        if done {
            break;
        }
    }
    Ok(read)
}

/// Consumes bytes up to and including the next newline, keeping none; returns how many and
/// whether the newline was reached (else the data ended for now).
fn skip_line<R: BufRead>(r: &mut R) -> io::Result<(usize, bool)> {
    let mut skipped = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((skipped, false));
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                r.consume(i + 1);
                return Ok((skipped + i + 1, true));
            }
            None => {
                let n = buf.len();
                r.consume(n);
                skipped += n;
            }
        }
    }
}

/// The first `min(offset, HEAD_LEN)` bytes of `file`.
fn read_head(file: &File, offset: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut head = vec![0; (offset as usize).min(HEAD_LEN)];
    file.read_exact_at(&mut head, 0)?;
    Ok(head)
}

/// Where reading starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// A checkpoint: resume in that file (found at the path or, if rotated away while the
    /// shipper was down, elsewhere in the same directory) after that offset.
    At(Position),
    Head,
    End,
}

pub struct Tailer {
    path: PathBuf,
    open: Option<Open>,
    /// Bytes of a line not yet terminated by `\n`.
    partial: Vec<u8>,
    rotate_wait: Duration,
    wake: Option<(notify::RecommendedWatcher, mpsc::Receiver<()>)>,
    /// Longest line held in memory ([`Tailer::with_max_line`]).
    max_line: usize,
    /// A line found longer than `max_line`, being skipped to its end.
    oversized: Option<Oversized>,
    /// Rotated files read to their end in this run.
    finished: Vec<FileId>,
}

/// What is kept of a line too long to hold: its first bytes and its length so far.
struct Oversized {
    prefix: Vec<u8>,
    len: u64,
}

/// Leading bytes kept of a line longer than the cap (for its dead-letter entry).
pub const OVERSIZED_PREFIX: usize = 64 * 1024;

/// A complete line; the newline is stripped.
pub struct Line {
    /// Position just after this line (what the checkpoint becomes once it is delivered).
    pub end: Position,
    /// Set when the line was longer than the cap: its full length. The line buffer then
    /// holds only its first [`OVERSIZED_PREFIX`] bytes.
    pub oversized: Option<u64>,
}

impl Tailer {
    pub fn new(path: &Path, start: Start, rotate_wait: Duration) -> io::Result<Self> {
        let mut t = Tailer {
            path: path.to_path_buf(),
            open: None,
            partial: Vec::new(),
            rotate_wait,
            wake: None,
            max_line: usize::MAX,
            oversized: None,
            finished: Vec::new(),
        };
        t.wake = watch(path);
        match start {
            Start::Head => t.open_path(false)?,
            Start::End => t.open_path(true)?,
            Start::At(pos) => t.resume(pos)?,
        }
        Ok(t)
    }

    fn resume(&mut self, pos: Position) -> io::Result<()> {
        let want = FileId {
            dev: pos.dev,
            ino: pos.ino,
        };
        if let Ok(meta) = std::fs::metadata(&self.path)
            && FileId::of(&meta) == want
        {
            let file = File::open(&self.path)?;
            let same = pos.head == 0
                || (meta.len() >= pos.offset
                    && fingerprint(&read_head(&file, pos.offset)?) == pos.head);
            if !same && meta.len() >= pos.offset {
                tracing::warn!(path = %self.path.display(), "the file has the checkpoint's inode but other content (deleted and recreated): reading it from its head");
                return self.start_in(file, want, 0);
            }
            return self.start_in(file, want, pos.offset);
        }
        // The checkpointed file is no longer at the path: rotated while we were down. Finish
        // it if it is still in the directory, then the path is read from its head.
        if let Some(old) = self.find_in_dir(want) {
            tracing::info!(file = %old.display(), offset = pos.offset, "resuming in the rotated file");
            let file = File::open(&old)?;
            self.start_in(file, want, pos.offset)?;
            if let Some(o) = self.open.as_mut() {
                o.rotated_at = Some(
                    Instant::now()
                        .checked_sub(self.rotate_wait)
                        .unwrap_or_else(Instant::now),
                );
            }
            return Ok(());
        }
        tracing::warn!(path = %self.path.display(), "checkpointed file is gone; reading the oldest segment (or the current file) from its head");
        self.open_oldest()
    }

    /// Opens the oldest rotated segment, or the live path when there is none.
    fn open_oldest(&mut self) -> io::Result<()> {
        match segments::list(&self.path)?.into_iter().next() {
            Some(segment) => self.open_segment(&segment.path),
            None => self.open_path(false),
        }
    }

    /// Opens a rotated segment at its head; it is final, so its end is the end of it.
    fn open_segment(&mut self, path: &Path) -> io::Result<()> {
        let file = File::open(path)?;
        let id = FileId::of(&file.metadata()?);
        tracing::info!(segment = %path.display(), "reading a rotated segment");
        self.start_in(file, id, 0)?;
        if let Some(o) = self.open.as_mut() {
            o.rotated_at = Some(
                Instant::now()
                    .checked_sub(self.rotate_wait)
                    .unwrap_or_else(Instant::now),
            );
        }
        Ok(())
    }

    /// Where reading goes after the file `id` (open as `file`): whether it is one of the
    /// proxy's segments, and the rotated file to read next, if any (else the live file).
    ///
    /// The proxy writes one file at a time, so the order in which rotated files were last
    /// written is the order to read them in: next comes the unread rotated file (a segment of
    /// the proxy, or a file logrotate renamed to `<path>.<digits>`) last written no earlier
    /// than this one, the earliest such (ties: segment order). Files finished in this run are
    /// never read again (file times are coarse: two may share one).
    fn after(&mut self, id: FileId, file: &File) -> io::Result<(bool, Option<PathBuf>)> {
        if !self.finished.contains(&id) {
            self.finished.push(id);
        }
        let last_write = file.metadata()?.modified()?;
        let mut is_segment = false;
        let mut next: Option<(SystemTime, String, u64, PathBuf)> = None;
        for (path, stamp, n) in rotated_files(&self.path)? {
            let Ok(m) = std::fs::metadata(&path) else {
                continue;
            };
            let (fid, modified) = (FileId::of(&m), m.modified()?);
            if fid == id {
                is_segment = !stamp.is_empty();
                continue;
            }
            if modified < last_write || self.finished.contains(&fid) {
                continue;
            }
            let candidate = (modified, stamp, n, path);
            if next.as_ref().is_none_or(|best| candidate < *best) {
                next = Some(candidate);
            }
        }
        Ok((is_segment, next.map(|(_, _, _, path)| path)))
    }

    fn find_in_dir(&self, want: FileId) -> Option<PathBuf> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty())?;
        std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
            let meta = e.metadata().ok()?;
            (meta.is_file() && FileId::of(&meta) == want).then(|| e.path())
        })
    }

    fn start_in(&mut self, file: File, id: FileId, offset: u64) -> io::Result<()> {
        let len = file.metadata()?.len();
        let offset = if len < offset {
            tracing::warn!(path = %self.path.display(), len, offset, "file is shorter than the checkpoint (truncated): reading from 0");
            0
        } else {
            offset
        };
        let head = read_head(&file, offset)?;
        let head_hash = if head.is_empty() {
            0
        } else {
            fingerprint(&head)
        };
        let mut reader = BufReader::with_capacity(READ_BUF, file);
        reader.seek(SeekFrom::Start(offset))?;
        self.partial.clear();
        self.open = Some(Open {
            reader,
            id,
            offset,
            rotated_at: None,
            head,
            head_hash,
        });
        Ok(())
    }

    /// Opens the file at the path, if it exists (else stays closed until it appears).
    fn open_path(&mut self, at_end: bool) -> io::Result<()> {
        match File::open(&self.path) {
            Ok(file) => {
                let meta = file.metadata()?;
                let offset = if at_end { meta.len() } else { 0 };
                self.start_in(file, FileId::of(&meta), offset)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.open = None;
                self.partial.clear();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Holds at most `max_line` bytes of a line (at least [`OVERSIZED_PREFIX`]): a longer one
    /// is read past without being kept, and handed out as its prefix, marked oversized.
    pub fn with_max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line.max(OVERSIZED_PREFIX);
        self
    }

    /// Reads the next complete line into `line` (cleared first). `Ok(None)`: nothing complete
    /// is available now; call [`Tailer::wait`] and try again.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> io::Result<Option<Line>> {
        // The previous line's buffer becomes the next partial one: after a huge line, free it
        // rather than hold it while the next line is read into another buffer.
        if line.capacity() > BIG_LINE {
            *line = Vec::new();
        }
        loop {
            let Some(open) = self.open.as_mut() else {
                self.open_path(false)?;
                if self.open.is_none() {
                    return Ok(None);
                }
                continue;
            };
            if let Some(over) = self.oversized.as_mut() {
                // Past the cap: consume up to the newline without keeping anything.
                let (n, ended) = skip_line(&mut open.reader)?;
                open.offset += n as u64;
                over.len += n as u64;
                if ended {
                    let over = self.oversized.take().expect("checked above");
                    *line = over.prefix;
                    return Ok(Some(Line {
                        end: open.position(),
                        oversized: Some(over.len - 1),
                    }));
                }
                if n > 0 {
                    continue;
                }
            } else {
                let buffered = open.reader.buffer().len();
                // Grow a long line's buffer by exact steps of one read, not by doubling: a 20
                // MB line then costs 20 MB, not up to twice that.
                if self.partial.capacity() - self.partial.len() < READ_BUF {
                    self.partial.reserve_exact(READ_BUF);
                }
                let room =
                    (self.max_line - self.partial.len().min(self.max_line)).saturating_add(1);
                let n = read_until_at_most(&mut open.reader, &mut self.partial, room)?;
                // More than was buffered: bytes came from the file just now. Checked after the
                // read, so a head still unchanged vouches for everything that read returned.
                if n > buffered && open.head_changed(&self.partial)? {
                    tracing::warn!(path = %self.path.display(), offset = open.offset, "file truncated and rewritten (copytruncate; its first bytes changed): reading again from 0");
                    open.rewind()?;
                    self.partial.clear();
                    continue;
                }
                if n > 0 && self.partial.last() == Some(&b'\n') {
                    open.advance(&self.partial);
                    self.partial.pop();
                    line.clear();
                    std::mem::swap(line, &mut self.partial);
                    return Ok(Some(Line {
                        end: open.position(),
                        oversized: None,
                    }));
                }
                if self.partial.len() > self.max_line {
                    // Too long to hold: keep its first bytes, let the rest go by.
                    open.advance(&self.partial);
                    let prefix = self.partial[..OVERSIZED_PREFIX].to_vec();
                    let len = self.partial.len() as u64;
                    self.partial = Vec::new();
                    tracing::warn!(path = %self.path.display(), offset = open.offset - len, max_line = self.max_line, "line longer than --max-line-bytes: skipping it");
                    self.oversized = Some(Oversized { prefix, len });
                    continue;
                }
                if n > 0 {
                    continue; // more of a long line may be there
                }
            }
            // End of the data for now: truncated, rotated, or just caught up?
            let read_pos = open.offset + self.partial.len() as u64;
            let len = open.reader.get_ref().metadata()?.len();
            // Refilled up to exactly the read position, the size says nothing: the head does.
            if len < read_pos || open.head_changed(&self.partial)? {
                tracing::warn!(path = %self.path.display(), len, read_pos, "file truncated (copytruncate): reading again from 0");
                open.rewind()?;
                self.partial.clear();
                self.oversized = None;
                continue;
            }
            let path_id = std::fs::metadata(&self.path).ok().map(|m| FileId::of(&m));
            match path_id {
                Some(id) if id != open.id => {
                    if open.rotated_at.is_none() {
                        let id = open.id;
                        // A segment the proxy rotated is final (it renames only after its
                        // last write): read once more for what came before the rename, then
                        // go on. A file renamed by someone else may still be written to for
                        // a while (until the proxy's SIGHUP): wait `rotate_wait` for it.
                        let file = open.reader.get_ref().try_clone()?;
                        let (final_segment, _) = self.after(id, &file)?;
                        let open = self.open.as_mut().expect("open above");
                        open.rotated_at = Some(if final_segment {
                            Instant::now()
                                .checked_sub(self.rotate_wait)
                                .unwrap_or_else(Instant::now)
                        } else {
                            Instant::now()
                        });
                        continue;
                    }
                    let since = open.rotated_at.expect("set above");
                    if since.elapsed() < self.rotate_wait {
                        return Ok(None);
                    }
                    if let Some(over) = self.oversized.take() {
                        // The writer moved on: the unterminated end of the old file is final.
                        *line = over.prefix;
                        return Ok(Some(Line {
                            end: open.position(),
                            oversized: Some(over.len),
                        }));
                    }
                    if !self.partial.is_empty() {
                        // The writer moved on: the unterminated end of the old file is final.
                        open.advance(&self.partial);
                        line.clear();
                        std::mem::swap(line, &mut self.partial);
                        return Ok(Some(Line {
                            end: open.position(),
                            oversized: None,
                        }));
                    }
                    let id = open.id;
                    let file = open.reader.get_ref().try_clone()?;
                    match self.after(id, &file)? {
                        (_, Some(next)) => self.open_segment(&next)?,
                        (_, None) => {
                            tracing::info!(path = %self.path.display(), "file rotated: following the new file");
                            self.open_path(false)?;
                        }
                    }
                    continue;
                }
                _ => {
                    if !self.partial.is_empty() {
                        // A line still being written, or one the proxy takes back (it cuts off
                        // an append that failed part way, then writes something else there):
                        // read it again from its start once it is complete.
                        open.reader.seek(SeekFrom::Start(open.offset))?;
                        self.partial.clear();
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Blocks until the file may have changed: a notification, or `timeout` (polling).
    pub fn wait(&self, timeout: Duration) {
        match &self.wake {
            Some((_, rx)) => {
                let _ = rx.recv_timeout(timeout);
                while rx.try_recv().is_ok() {}
            }
            None => std::thread::sleep(timeout),
        }
    }

    /// Position just after the last complete line handed out.
    pub fn position(&self) -> Option<Position> {
        self.open.as_ref().map(Open::position)
    }

    /// Size of the file being read (for the lag metric).
    pub fn file_len(&self) -> u64 {
        self.open
            .as_ref()
            .and_then(|o| o.reader.get_ref().metadata().ok())
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

/// The rotated files of the log at `path`: the proxy's segments (with their stamp and number)
/// and files logrotate renamed to `<path>.<digits>` (empty stamp).
fn rotated_files(path: &Path) -> io::Result<Vec<(PathBuf, String, u64)>> {
    let mut out: Vec<(PathBuf, String, u64)> = segments::list(path)?
        .into_iter()
        .map(|s| (s.path, s.stamp, s.n))
        .collect();
    let (Some(name), Some(dir)) = (
        path.file_name().and_then(|n| n.to_str()),
        path.parent().filter(|d| !d.as_os_str().is_empty()),
    ) else {
        return Ok(out);
    };
    for entry in std::fs::read_dir(dir)?.flatten() {
        let file_name = entry.file_name();
        let digits = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|f| f.strip_prefix('.'));
        if let Some(digits) = digits
            && let Ok(n) = digits.parse::<u64>()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            out.push((entry.path(), String::new(), n));
        }
    }
    Ok(out)
}

/// Where a fresh start begins in the file at `path` (its head, or its end), with its
/// identity; `None` when there is no file yet.
///
/// From the head, the oldest rotated segment comes first: a shipper started next to a log
/// that has already rotated delivers every segment.
pub fn initial_position(path: &Path, at_end: bool) -> io::Result<Option<Position>> {
    let oldest = if at_end {
        None
    } else {
        segments::list(path)?.into_iter().next()
    };
    let path = oldest.as_ref().map_or(path, |s| s.path.as_path());
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let id = FileId::of(&meta);
    let offset = if at_end { meta.len() } else { 0 };
    let head = read_head(&file, offset)?;
    Ok(Some(Position {
        dev: id.dev,
        ino: id.ino,
        offset,
        head: if head.is_empty() {
            0
        } else {
            fingerprint(&head)
        },
    }))
}

/// Watches the file's directory (renames and creations happen there); `None` means polling.
fn watch(path: &Path) -> Option<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    use notify::Watcher;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let mut watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        // One pending wake-up is enough; a full channel means the reader will look anyway.
        let _ = tx.try_send(());
    })
    .map_err(|e| tracing::warn!(error = %e, "no file notifications; polling at refresh_interval"))
    .ok()?;
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .map_err(|e| tracing::warn!(error = %e, dir = %dir.display(), "cannot watch directory; polling at refresh_interval"))
        .ok()?;
    Some((watcher, rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    fn drain(t: &mut Tailer) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(_l) = t.next_line(&mut buf).unwrap() {
            out.push(String::from_utf8_lossy(&buf).into_owned());
        }
        out
    }

    #[test]
    fn complete_lines_then_a_partial_line_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"one\ntwo\nthr");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["one", "two"]);
        assert_eq!(t.position().unwrap().offset, 8);
        append(&p, b"ee\n");
        assert_eq!(drain(&mut t), ["three"]);
        assert_eq!(t.position().unwrap().offset, 14);
    }

    #[test]
    fn a_line_of_50_mb_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let big = vec![b'x'; 50 << 20];
        append(&p, b"a\n");
        append(&p, &big);
        append(&p, b"\nb\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        let mut buf = Vec::new();
        t.next_line(&mut buf).unwrap().unwrap();
        assert_eq!(buf, b"a");
        t.next_line(&mut buf).unwrap().unwrap();
        assert_eq!(buf.len(), 50 << 20);
        t.next_line(&mut buf).unwrap().unwrap();
        assert_eq!(buf, b"b");
    }

    #[test]
    fn a_line_over_the_cap_is_handed_out_as_its_prefix_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"a\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO)
            .unwrap()
            .with_max_line(100_000);
        let mut buf = Vec::new();
        assert!(t.next_line(&mut buf).unwrap().unwrap().oversized.is_none());
        // Written in two goes, the second after the reader has already passed the cap.
        append(&p, &vec![b'x'; 150_000]);
        assert!(t.next_line(&mut buf).unwrap().is_none(), "no newline yet");
        append(&p, &vec![b'y'; 50_000]);
        append(&p, b"\nb\n");
        let line = t.next_line(&mut buf).unwrap().unwrap();
        assert_eq!(line.oversized, Some(200_000));
        assert_eq!(buf.len(), OVERSIZED_PREFIX);
        assert!(buf.iter().all(|&b| b == b'x'));
        assert_eq!(line.end.offset, 2 + 200_001);
        let next = t.next_line(&mut buf).unwrap().unwrap();
        assert_eq!(buf, b"b");
        assert!(next.oversized.is_none());
        assert_eq!(next.end.offset, 2 + 200_001 + 2);
    }

    #[test]
    fn resume_from_a_checkpoint_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"one\ntwo\n");
        let meta = std::fs::metadata(&p).unwrap();
        let pos = Position {
            dev: meta.dev(),
            ino: meta.ino(),
            offset: 4,
            head: 0,
        };
        let mut t = Tailer::new(&p, Start::At(pos), Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["two"]);
    }

    #[test]
    fn start_at_end_skips_existing_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"old\n");
        let mut t = Tailer::new(&p, Start::End, Duration::ZERO).unwrap();
        assert!(drain(&mut t).is_empty());
        append(&p, b"new\n");
        assert_eq!(drain(&mut t), ["new"]);
    }

    #[test]
    fn rename_rotation_finishes_the_old_file_then_follows_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"a\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["a"]);
        append(&p, b"b\nunterminated");
        std::fs::rename(&p, dir.path().join("t.log.1")).unwrap();
        append(&p, b"c\n");
        assert_eq!(drain(&mut t), ["b", "unterminated", "c"]);
    }

    #[test]
    fn rotation_waits_rotate_wait_for_late_writes_to_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let old = dir.path().join("t.log.1");
        append(&p, b"a\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::from_millis(300)).unwrap();
        assert_eq!(drain(&mut t), ["a"]);
        std::fs::rename(&p, &old).unwrap();
        append(&p, b"new\n");
        assert!(drain(&mut t).is_empty());
        append(&old, b"late\n");
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(drain(&mut t), ["late", "new"]);
    }

    #[test]
    fn copytruncate_restarts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"first-line\nsecond-line\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["first-line", "second-line"]);
        std::fs::copy(&p, dir.path().join("t.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        append(&p, b"x\n");
        assert_eq!(drain(&mut t), ["x"]);
    }

    /// What logrotate's copytruncate does: copy, then truncate in place (same inode).
    fn copy_truncate(p: &Path) {
        std::fs::copy(p, p.with_extension("log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    fn lines(tag: &str, range: std::ops::Range<usize>, width: usize) -> Vec<String> {
        range.map(|n| format!("{tag}-{n:0width$}")).collect()
    }

    fn joined(lines: &[String]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| [l.as_bytes(), b"\n"].concat())
            .collect()
    }

    #[test]
    fn copytruncate_refilled_past_the_old_position_in_one_write_restarts_at_zero() {
        // Heads shorter (9 bytes) and longer (2 lines of 100 bytes) than the fingerprint.
        for width in [4, 95] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("t.log");
            let old = lines("old", 0..2, width);
            append(&p, &joined(&old));
            let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
            assert_eq!(drain(&mut t), old);
            copy_truncate(&p);
            let new = lines("new", 0..5, width);
            append(&p, &joined(&new));
            assert_eq!(drain(&mut t), new, "width {width}");
            assert_eq!(t.position().unwrap().offset, joined(&new).len() as u64);
        }
    }

    #[test]
    fn copytruncate_refilled_in_several_writes_restarts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let old = lines("old", 0..3, 70);
        append(&p, &joined(&old));
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), old);
        copy_truncate(&p);
        let new = lines("new", 0..8, 70);
        for l in &new {
            append(&p, &joined(std::slice::from_ref(l)));
        }
        assert_eq!(drain(&mut t), new);
    }

    #[test]
    fn copytruncate_refilled_to_exactly_the_old_size_is_seen_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"aaaa\nbbbb\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["aaaa", "bbbb"]);
        copy_truncate(&p);
        append(&p, b"cccc\ndddd\n");
        assert_eq!(drain(&mut t), ["cccc", "dddd"]);
        // And appending afterwards is no truncation.
        append(&p, b"eeee\n");
        assert_eq!(drain(&mut t), ["eeee"]);
    }

    #[test]
    fn copytruncate_under_a_pending_partial_line_drops_the_stale_part() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"stale-unterminated");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert!(drain(&mut t).is_empty());
        copy_truncate(&p);
        append(&p, b"fresh-line-that-is-longer-than-the-stale-one\n");
        assert_eq!(
            drain(&mut t),
            ["fresh-line-that-is-longer-than-the-stale-one"]
        );
    }

    #[test]
    fn copytruncate_in_the_middle_of_a_backlog_restarts_at_zero() {
        // The first read buffered READ_BUF bytes of the old content; those lines were read
        // before the truncation and come out. The next read finds the new head.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let old = lines("old", 0..30_000, 95);
        append(&p, &joined(&old));
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        let mut buf = Vec::new();
        t.next_line(&mut buf).unwrap().unwrap();
        copy_truncate(&p);
        let new = lines("new", 0..40_000, 95);
        append(&p, &joined(&new));
        let got = drain(&mut t);
        let buffered = READ_BUF / 100 - 1;
        assert_eq!(got[..buffered], old[1..=buffered]);
        assert_eq!(got[buffered..], new[..]);
    }

    #[test]
    fn growing_past_the_fingerprint_is_no_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let all = lines("l", 0..40, 3);
        append(&p, b"l-000\nl-0");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        let mut got = drain(&mut t);
        let rest = &joined(&all)[9..];
        for chunk in rest.chunks(7) {
            append(&p, chunk);
            got.extend(drain(&mut t));
        }
        assert_eq!(got, all);
    }

    #[test]
    fn resume_finds_a_file_rotated_while_down() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"one\ntwo\n");
        let meta = std::fs::metadata(&p).unwrap();
        let pos = Position {
            dev: meta.dev(),
            ino: meta.ino(),
            offset: 4,
            head: 0,
        };
        std::fs::rename(&p, dir.path().join("t.log.1")).unwrap();
        append(&p, b"three\n");
        let mut t = Tailer::new(&p, Start::At(pos), Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["two", "three"]);
    }

    #[test]
    fn a_recreated_file_with_the_same_inode_is_read_from_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"old-one\nold-two\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["old-one", "old-two"]);
        let pos = t.position().unwrap();
        assert_ne!(pos.head, 0);
        drop(t);
        // Same inode, other content: rewrite in place (what inode reuse looks like).
        std::fs::write(&p, b"new-first-line-longer\nnew-2\n").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), pos.ino);
        let mut t = Tailer::new(&p, Start::At(pos), Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["new-first-line-longer", "new-2"]);
        // The same content resumes where it was.
        let pos = t.position().unwrap();
        append(&p, b"more\n");
        let mut t = Tailer::new(&p, Start::At(pos), Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["more"]);
    }

    #[test]
    fn a_fresh_start_recorded_before_reading_survives_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"one\ntwo\n");
        let pos = initial_position(&p, false).unwrap().unwrap();
        assert_eq!((pos.offset, pos.head), (0, 0));
        // Rotated before anything was delivered: the old file is still read in full.
        std::fs::rename(&p, dir.path().join("t.log.1")).unwrap();
        append(&p, b"three\n");
        let mut t = Tailer::new(&p, Start::At(pos), Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["one", "two", "three"]);
        let end = initial_position(&p, true).unwrap().unwrap();
        assert_eq!(end.offset, 6);
        assert_ne!(end.head, 0);
        assert!(
            initial_position(&dir.path().join("none"), false)
                .unwrap()
                .is_none()
        );
    }

    fn segment(dir: &Path, n: u64) -> PathBuf {
        dir.join(format!("t.log.20261203T101500Z.{n}"))
    }

    #[test]
    fn segments_rotated_behind_the_reader_are_all_read_in_order_then_the_live_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"a\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::from_secs(60)).unwrap();
        assert_eq!(drain(&mut t), ["a"]);
        // The proxy rotates three times (up to n = 11, so names do not sort as text) while
        // the reader looks elsewhere.
        append(&p, b"b\n");
        std::fs::rename(&p, segment(dir.path(), 9)).unwrap();
        append(&p, b"c\n");
        std::fs::rename(&p, segment(dir.path(), 10)).unwrap();
        append(&p, b"d\n");
        std::fs::rename(&p, segment(dir.path(), 11)).unwrap();
        append(&p, b"e\n");
        // No rotate_wait for the proxy's own segments: they are final.
        assert_eq!(drain(&mut t), ["b", "c", "d", "e"]);
    }

    #[test]
    fn a_fresh_start_from_the_head_reads_every_segment_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&segment(dir.path(), 2), b"two\n");
        append(&segment(dir.path(), 1), b"one\n");
        append(&p, b"live\n");
        let pos = initial_position(&p, false).unwrap().unwrap();
        let mut t = Tailer::new(&p, Start::At(pos), Duration::from_secs(60)).unwrap();
        assert_eq!(drain(&mut t), ["one", "two", "live"]);
    }

    #[test]
    fn resume_in_a_segment_goes_on_with_the_later_segments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"one\ntwo\n");
        let meta = std::fs::metadata(&p).unwrap();
        let pos = Position {
            dev: meta.dev(),
            ino: meta.ino(),
            offset: 4,
            head: 0,
        };
        std::fs::rename(&p, segment(dir.path(), 1)).unwrap();
        append(&segment(dir.path(), 2), b"three\n");
        append(&p, b"four\n");
        let mut t = Tailer::new(&p, Start::At(pos), Duration::from_secs(60)).unwrap();
        assert_eq!(drain(&mut t), ["two", "three", "four"]);
    }

    #[test]
    fn after_a_file_renamed_by_logrotate_come_the_segments_rotated_since() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&segment(dir.path(), 1), b"delivered-before\n");
        // File times are coarse (a clock tick): a segment last written in the same tick as
        // the renamed file would be read again (a duplicate, never a loss).
        std::thread::sleep(Duration::from_millis(20));
        append(&p, b"a\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        // Start::Head is the live file itself here (the segment predates it).
        assert_eq!(drain(&mut t), ["a"]);
        // logrotate renames, the proxy reopens (SIGHUP), writes, then rotates by size
        // before the reader looks again.
        std::fs::rename(&p, dir.path().join("t.log.1")).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        append(&p, b"b\n");
        std::fs::rename(&p, segment(dir.path(), 2)).unwrap();
        append(&p, b"c\n");
        assert_eq!(drain(&mut t), ["b", "c"]);
    }

    #[test]
    fn a_file_logrotate_renamed_after_the_newest_segment_is_read_before_the_live_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"a\n");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["a"]);
        // The proxy rotates (the reader is now in a segment), writes the next live file,
        // then logrotate renames that one away before the reader got to it.
        std::fs::rename(&p, segment(dir.path(), 1)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        append(&p, b"b\n");
        std::fs::rename(&p, dir.path().join("t.log.1")).unwrap();
        append(&p, b"c\n");
        assert_eq!(drain(&mut t), ["b", "c"]);
    }

    #[test]
    fn a_partial_line_taken_back_and_rewritten_is_read_as_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        append(&p, b"first\n{\"id\":\"full-record-that-failed");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert_eq!(drain(&mut t), ["first"]);
        // The proxy cuts the failed append off and writes the degraded record there.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(6)
            .unwrap();
        append(&p, b"{\"id\":\"degraded\"}\n");
        assert_eq!(drain(&mut t), ["{\"id\":\"degraded\"}"]);
    }

    #[test]
    fn a_missing_file_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("later.log");
        let mut t = Tailer::new(&p, Start::Head, Duration::ZERO).unwrap();
        assert!(drain(&mut t).is_empty());
        append(&p, b"hello\n");
        assert_eq!(drain(&mut t), ["hello"]);
    }
}
