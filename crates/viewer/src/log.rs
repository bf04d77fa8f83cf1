//! Reading the traffic log: its rotated segments oldest first, then the live file, line by
//! line, keeping for each exchange only a small head (ids, times, usage, where its line is) so
//! that memory follows the number of exchanges, never the bytes of their bodies. Lines that are
//! not whole traffic records are skipped and counted by kind.

use conversation::{Facts, Route, Sender, Sessions, message};
use memchr::memchr_iter;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use traffic_record::{Outcome, Usage, trace_context};

use crate::Error;
use crate::skim::{self, Skim};

/// The rotated segments of `log` (`<log>.<UTC YYYYMMDDTHHMMSSZ>.<n>`), oldest first, then the
/// live file itself when it exists.
pub fn segments(log: &Path) -> Result<Vec<PathBuf>, Error> {
    let read_err = |source| Error::Read {
        path: log.display().to_string(),
        source,
    };
    let mut all: Vec<PathBuf> = traffic_record::segments::list(log)
        .map_err(read_err)?
        .into_iter()
        .map(|segment| segment.path)
        .collect();
    if log.exists() {
        all.push(log.to_path_buf());
    }
    if all.is_empty() {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file, and no rotated segment of it",
        )));
    }
    Ok(all)
}

/// Where a line is: which segment, at which byte, how long (without its newline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub segment: usize,
    pub offset: u64,
    pub len: usize,
}

/// Lines that were not traffic records, by kind. Each was skipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// A record cut short (a crash mid-write, or the last line still being written).
    pub cut: u64,
    /// Bytes that are not UTF-8.
    pub invalid_utf8: u64,
    /// Text that is not JSON.
    pub not_json: u64,
    /// JSON that is not a traffic record (another `kind`, or fields missing).
    pub not_record: u64,
}

impl Skipped {
    pub fn add(&mut self, other: &Skipped) {
        self.cut += other.cut;
        self.invalid_utf8 += other.invalid_utf8;
        self.not_json += other.not_json;
        self.not_record += other.not_record;
    }

    pub fn total(&self) -> u64 {
        self.cut + self.invalid_utf8 + self.not_json + self.not_record
    }
}

/// What the index keeps of one exchange.
#[derive(Debug, Clone)]
pub struct Head {
    pub id: String,
    pub session_id: Option<String>,
    pub started_at: String,
    pub ended_at: String,
    pub start: Option<SystemTime>,
    pub end: Option<SystemTime>,
    pub duration_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub model: Option<String>,
    /// The request body's `model`.
    pub request_model: Option<String>,
    pub stop_reason: Option<String>,
    pub usage: Option<Usage>,
    pub path: String,
    pub status: Option<u16>,
    pub request_size: u64,
    /// Claude Code's trace of the prompt that made the request: the trace id of a valid
    /// `traceparent` request header (one per `claude_code.interaction`).
    pub interaction: Option<[u8; 16]>,
    /// What the exchange says about who sent it (crate `conversation`).
    pub facts: Facts,
    /// Who sent it, decided over the whole log in its order, as the shipper decides it.
    pub sender: Option<Sender>,
    pub messages: usize,
    /// The last message is the user's own input (not only tool results).
    pub ends_with_prompt: bool,
    pub location: Location,
}

impl Head {
    /// The conversation the request belongs to: the key of its first message (0: none).
    pub fn thread(&self) -> u64 {
        self.facts.conversation.unwrap_or(0)
    }

    /// An error status or an outcome other than `complete`.
    pub fn is_error(&self) -> bool {
        self.outcome != Outcome::Complete || self.status.is_none_or(|s| s >= 400)
    }
}

/// Every exchange head of a log, in file order, and what was skipped.
#[derive(Debug, Default)]
pub struct Index {
    pub segments: Vec<PathBuf>,
    /// Open handles of the segments, when the caller keeps them (`serve`): a line is then read
    /// through the handle, which follows its file across a rotation's rename.
    pub files: Vec<Option<Arc<File>>>,
    pub heads: Vec<Head>,
    pub skipped: Skipped,
    pub bytes: u64,
}

impl Index {
    /// Reads the whole log once; a big segment is cut at line boundaries into one part per
    /// core, read side by side (parsing, not reading, is what costs).
    pub fn build(log: &Path) -> Result<Index, Error> {
        let segments = segments(log)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let mut index = Index {
            segments: segments.clone(),
            ..Index::default()
        };
        for (n, path) in segments.iter().enumerate() {
            let read_err = |source| Error::Read {
                path: path.display().to_string(),
                source,
            };
            let file = File::open(path).map_err(read_err)?;
            let size = file.metadata().map_err(read_err)?.len();
            let part = read_lines(n, path, &file, 0, size, threads)?;
            index.heads.extend(part.heads);
            index.bytes += part.bytes;
            index.skipped.add(&part.skipped);
        }
        index.assign_senders();
        Ok(index)
    }

    /// Who sent each request, decided in the log's order, the order the shipper reads it in,
    /// so both decide alike.
    pub fn assign_senders(&mut self) {
        let mut senders = Sessions::default();
        for h in &mut self.heads {
            h.sender = senders.sender(h.session_id.as_deref(), &h.facts);
        }
    }

    /// The full text of an exchange's line.
    pub fn read_line(&self, location: Location) -> Result<String, Error> {
        let path = &self.segments[location.segment];
        let read_err = |source| Error::Read {
            path: path.display().to_string(),
            source,
        };
        let mut buf = vec![0; location.len];
        match self.files.get(location.segment) {
            Some(Some(file)) => file.read_exact_at(&mut buf, location.offset),
            _ => File::open(path).and_then(|mut file| {
                file.seek(SeekFrom::Start(location.offset))?;
                file.read_exact(&mut buf)
            }),
        }
        .map_err(read_err)?;
        String::from_utf8(buf).map_err(|e| {
            read_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the line changed since it was indexed: {e}"),
            ))
        })
    }
}

/// What was found in a byte range of a segment.
#[derive(Debug, Default)]
pub struct Part {
    pub heads: Vec<Head>,
    pub skipped: Skipped,
    pub bytes: u64,
}

/// Indexes the lines of `file` (named `path` in errors) in `[start, end)` (`start` a line
/// start); a range over 32 MB is cut at line boundaries into at most `threads` parts, read side
/// by side (parsing, not reading, is what costs). A last line without its newline counts as cut.
pub fn read_lines(
    segment: usize,
    path: &Path,
    file: &File,
    start: u64,
    end: u64,
    threads: usize,
) -> Result<Part, Error> {
    let ranges = split(path, file, start, end, threads, MIN_PART)?;
    let parts: Vec<Result<Part, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|&(start, end)| scope.spawn(move || read_range(segment, path, file, start, end)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a reader thread does not panic"))
            .collect()
    });
    let mut all = Part::default();
    for part in parts {
        let part = part?;
        all.heads.extend(part.heads);
        all.bytes += part.bytes;
        all.skipped.add(&part.skipped);
    }
    Ok(all)
}

/// Parts below this size are not worth a thread.
const MIN_PART: u64 = 32 << 20;

/// Reads a file from a position with `pread`, so threads can share one handle.
struct At<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Byte ranges cutting `[start, end)` of `file`, each beginning at a line start, at most `parts`.
fn split(
    path: &Path,
    file: &File,
    start: u64,
    end: u64,
    parts: usize,
    min_part: u64,
) -> Result<Vec<(u64, u64)>, Error> {
    let read_err = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let size = end.saturating_sub(start);
    let parts = (size / min_part).clamp(1, parts as u64);
    if parts == 1 {
        return Ok(vec![(start, end)]);
    }
    let mut bounds = vec![start];
    let mut rest = Vec::new();
    for k in 1..parts {
        let guess = (start + size * k / parts).max(*bounds.last().expect("not empty"));
        rest.clear();
        // The next line starts after the first newline at or past the guess.
        let n = BufReader::new(At { file, pos: guess })
            .read_until(b'\n', &mut rest)
            .map_err(read_err)?;
        bounds.push((guess + n as u64).min(end));
    }
    bounds.push(end);
    bounds.dedup();
    Ok(bounds.windows(2).map(|w| (w[0], w[1])).collect())
}

/// How much one read asks for: few syscalls, and lines are found in place (a line longer than
/// this grows the buffer to hold it).
const CHUNK: u64 = 1 << 20;

/// Reads the lines of `file` in `[start, end)` (a line start to a line start, or the end).
fn read_range(
    segment: usize,
    path: &Path,
    file: &File,
    start: u64,
    end: u64,
) -> Result<Part, Error> {
    let read_err = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = At { file, pos: start }.take(end - start);
    let mut part = Part::default();
    let mut buf = Vec::new();
    // The file offset of `buf[0]`, and how much of `buf` is known to hold no newline.
    let (mut offset, mut searched) = (start, 0);
    loop {
        buf.reserve(CHUNK as usize);
        let n = (&mut file)
            .take(CHUNK)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
        part.bytes += n as u64;
        let mut line_start = 0;
        for newline in memchr_iter(b'\n', &buf[searched..]) {
            let newline = searched + newline;
            part.add_line(
                &buf[line_start..newline],
                true,
                segment,
                offset + line_start as u64,
            );
            line_start = newline + 1;
        }
        if n == 0 {
            // No newline yet: the writer has not finished it (or a crash cut it).
            part.add_line(
                &buf[line_start..],
                false,
                segment,
                offset + line_start as u64,
            );
            return Ok(part);
        }
        buf.drain(..line_start);
        offset += line_start as u64;
        searched = buf.len();
    }
}

impl Part {
    fn add_line(&mut self, text: &[u8], whole: bool, segment: usize, offset: u64) {
        if text.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let location = Location {
            segment,
            offset,
            len: text.len(),
        };
        match parse_head(text, location) {
            Ok(head) if whole => self.heads.push(head),
            Ok(_) => self.skipped.cut += 1,
            Err(kind) => kind.count(&mut self.skipped),
        }
    }
}

/// Why a line is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Cut,
    InvalidUtf8,
    NotJson,
    NotRecord,
}

impl Reject {
    fn count(self, skipped: &mut Skipped) {
        match self {
            Reject::Cut => skipped.cut += 1,
            Reject::InvalidUtf8 => skipped.invalid_utf8 += 1,
            Reject::NotJson => skipped.not_json += 1,
            Reject::NotRecord => skipped.not_record += 1,
        }
    }
}

/// The head of one line, or why it is not a traffic record. Only the small fields are parsed;
/// the bodies are skimmed (`skim`), except the request's first and last few messages.
pub fn parse_head(line: &[u8], location: Location) -> Result<Head, Reject> {
    let text = std::str::from_utf8(line).map_err(|_| Reject::InvalidUtf8)?;
    let mut raw = RawHead::default();
    let mut s = Skim::new(text);
    s.object(|s, key| raw.member(s, key))
        .and_then(|()| s.end())
        .map_err(|e| match e {
            skim::Error::Eof => Reject::Cut,
            skim::Error::Syntax => Reject::NotJson,
            skim::Error::Value(e) if e.is_eof() => Reject::Cut,
            skim::Error::Value(e) if e.is_syntax() => Reject::NotJson,
            skim::Error::Value(_) => Reject::NotRecord,
        })?;
    let (
        Some(kind),
        Some(id),
        Some(started_at),
        Some(ended_at),
        Some(duration_ms),
        Some(outcome),
        Some(path),
    ) = (
        raw.kind,
        raw.id,
        raw.started_at,
        raw.ended_at,
        raw.duration_ms,
        raw.outcome,
        raw.path,
    )
    else {
        return Err(Reject::NotRecord);
    };
    if kind != traffic_record::KIND {
        return Err(Reject::NotRecord);
    }
    let mut facts = Facts::new(Route::of(&path));
    let first = raw.first.and_then(|m| serde_json::from_str(m).ok());
    if let Some(first) = &first {
        facts.first_message(first);
    }
    if facts.route == Route::Messages {
        if let Some(system) = raw.system {
            facts.system_text(system);
        }
        if let Some(tools) = raw.tools {
            facts.tools_text(tools);
        }
        if let Some(m) = raw.response_message {
            facts.response_message_text(m);
        }
    }
    Ok(Head {
        start: humantime::parse_rfc3339_weak(&started_at).ok(),
        end: humantime::parse_rfc3339_weak(&ended_at).ok(),
        id,
        session_id: raw.session_id,
        started_at,
        ended_at,
        duration_ms,
        ttfb_ms: raw.ttfb_ms,
        outcome,
        error: raw.error,
        model: raw.model,
        request_model: raw.request_model,
        stop_reason: raw.stop_reason,
        usage: raw.usage,
        path,
        status: raw.status,
        request_size: raw.request_size,
        interaction: raw
            .traceparent
            .as_deref()
            .and_then(trace_context::parse)
            .map(|t| t.trace_id),
        facts,
        sender: None,
        messages: raw.messages,
        ends_with_prompt: ends_with_prompt(&raw.last),
        location,
    })
}

/// The fields of a record the index keeps, as they are found (in any order).
#[derive(Default)]
struct RawHead<'a> {
    kind: Option<String>,
    id: Option<String>,
    started_at: Option<String>,
    ended_at: Option<String>,
    duration_ms: Option<f64>,
    ttfb_ms: Option<f64>,
    outcome: Option<Outcome>,
    error: Option<String>,
    session_id: Option<String>,
    model: Option<String>,
    stop_reason: Option<String>,
    usage: Option<Usage>,
    path: Option<String>,
    request_size: u64,
    request_model: Option<String>,
    traceparent: Option<String>,
    /// The request's `system` and `tools`, as JSON text.
    system: Option<&'a str>,
    tools: Option<&'a str>,
    /// The response's message: reassembled from the stream, or the JSON body.
    response_message: Option<&'a str>,
    status: Option<u16>,
    messages: usize,
    first: Option<&'a str>,
    /// The last few messages, oldest first.
    last: Vec<&'a str>,
}

/// How many of the last messages are kept to find the last non-system one.
const LAST_KEPT: usize = 4;

impl<'a> RawHead<'a> {
    fn member(&mut self, s: &mut Skim<'a>, key: &str) -> Result<(), skim::Error> {
        match key {
            "kind" => self.kind = s.value()?,
            "id" => self.id = s.value()?,
            "started_at" => self.started_at = s.value()?,
            "ended_at" => self.ended_at = s.value()?,
            "duration_ms" => self.duration_ms = s.value()?,
            "ttfb_ms" => self.ttfb_ms = s.value()?,
            "outcome" => self.outcome = s.value()?,
            "error" => self.error = s.value()?,
            "session_id" => self.session_id = s.value()?,
            "model" => self.model = s.value()?,
            "stop_reason" => self.stop_reason = s.value()?,
            "usage" => self.usage = s.value()?,
            "request" if s.peek()? == b'{' => s.object(|s, key| self.request(s, key))?,
            "response" if s.peek()? == b'{' => s.object(|s, key| self.response(s, key))?,
            _ => drop(s.skip()?),
        }
        Ok(())
    }

    fn request(&mut self, s: &mut Skim<'a>, key: &str) -> Result<(), skim::Error> {
        match key {
            "path" => self.path = s.value()?,
            "headers" if s.peek()? == b'{' => s.object(|s, key| {
                match key {
                    "traceparent" => self.traceparent = s.value()?,
                    _ => drop(s.skip()?),
                }
                Ok(())
            })?,
            "body" if s.peek()? == b'{' => s.object(|s, key| self.body(s, key))?,
            _ => drop(s.skip()?),
        }
        Ok(())
    }

    /// The request body: its size, and of its JSON the `model`, the `messages`, and the
    /// `system` blocks and `tools` as text (who sent it).
    fn body(&mut self, s: &mut Skim<'a>, key: &str) -> Result<(), skim::Error> {
        match key {
            "size" => self.request_size = s.value::<Option<u64>>()?.unwrap_or(0),
            "json" if s.peek()? == b'{' => s.object(|s, key| match key {
                "messages" if s.peek()? == b'[' => s.array(|s| self.message(s.skip()?)),
                "model" => {
                    self.request_model = s.value::<Option<String>>().ok().flatten();
                    Ok(())
                }
                "system" => {
                    self.system = Some(s.skip()?);
                    Ok(())
                }
                "tools" => {
                    self.tools = Some(s.skip()?);
                    Ok(())
                }
                _ => s.skip().map(drop),
            })?,
            _ => drop(s.skip()?),
        }
        Ok(())
    }

    /// The response: its status and message.
    fn response(&mut self, s: &mut Skim<'a>, key: &str) -> Result<(), skim::Error> {
        match key {
            "status" => self.status = s.value()?,
            "sse" if s.peek()? == b'{' => s.object(|s, key| {
                match key {
                    "message" => self.response_message = Some(s.skip()?),
                    _ => drop(s.skip()?),
                }
                Ok(())
            })?,
            "body" if s.peek()? == b'{' => s.object(|s, key| {
                match key {
                    "json" if self.response_message.is_none() => {
                        self.response_message = Some(s.skip()?)
                    }
                    _ => drop(s.skip()?),
                }
                Ok(())
            })?,
            _ => drop(s.skip()?),
        }
        Ok(())
    }

    fn message(&mut self, message: &'a str) -> Result<(), skim::Error> {
        self.first.get_or_insert(message);
        if self.last.len() == LAST_KEPT {
            self.last.remove(0);
        }
        self.last.push(message);
        self.messages += 1;
        Ok(())
    }
}

/// Whether the request ends with the user's own input: its last message that is not a
/// `system` one (Claude Code appends its environment as a system message) has role `user`,
/// text, and no tool result.
fn ends_with_prompt(last: &[&str]) -> bool {
    last.iter()
        .rev()
        .filter_map(|m| serde_json::from_str::<LastMessage>(m).ok())
        .find(|m| m.role != "system")
        .is_some_and(|m| {
            m.role == "user"
                && match m.content {
                    Kinds::Text => true,
                    Kinds::Blocks { text, tool_result } => text && !tool_result,
                }
        })
}

#[derive(Deserialize)]
struct LastMessage {
    role: String,
    content: Kinds,
}

/// The kinds of blocks a message's content holds (a string is text).
enum Kinds {
    Text,
    Blocks { text: bool, tool_result: bool },
}

impl<'de> Deserialize<'de> for Kinds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        #[derive(Deserialize)]
        struct Block<'a> {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default, borrow)]
            text: Option<std::borrow::Cow<'a, str>>,
        }
        impl<'de> Visitor<'de> for V {
            type Value = Kinds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of content blocks")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Kinds, E> {
                Ok(Kinds::Text)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kinds, A::Error> {
                let (mut text, mut tool_result) = (false, false);
                while let Some(b) = seq.next_element::<Block<'_>>()? {
                    // Claude Code's own notes to the model are not the user typing.
                    text |= b.kind == "text" && !b.text.is_some_and(|t| message::is_reminder(&t));
                    tool_result |= b.kind == "tool_result";
                }
                Ok(Kinds::Blocks { text, tool_result })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Location = Location {
        segment: 0,
        offset: 0,
        len: 0,
    };

    fn line(messages: serde_json::Value) -> String {
        serde_json::json!({
            "v": 1, "kind": "claude_api_exchange", "id": "00000000000000000000000000000001",
            "started_at": "2026-12-03T10:00:00Z", "ended_at": "2026-12-03T10:00:01Z",
            "duration_ms": 1000.0, "outcome": "complete", "session_id": "s",
            "request": {"method": "POST", "path": "/v1/messages", "headers": {},
                "body": {"size": 10, "json": {"messages": messages}}},
            "response": {"status": 200, "headers": {}, "body": {"size": 0}}
        })
        .to_string()
    }

    #[test]
    fn broken_lines_are_told_apart() {
        let good = line(serde_json::json!([{"role": "user", "content": "hi"}]));
        let head = parse_head(good.as_bytes(), AT).unwrap();
        assert_eq!(
            (head.messages, head.status, head.ends_with_prompt),
            (1, Some(200), true)
        );
        assert_eq!(
            parse_head(&good.as_bytes()[..good.len() / 2], AT).unwrap_err(),
            Reject::Cut
        );
        assert_eq!(
            parse_head(b"{\"a\":\"\xff\"}", AT).unwrap_err(),
            Reject::InvalidUtf8
        );
        assert_eq!(parse_head(b"hello there", AT).unwrap_err(), Reject::NotJson);
        assert_eq!(
            parse_head(b"{\"level\":\"info\"}", AT).unwrap_err(),
            Reject::NotRecord
        );
        let other_kind = good.replace("claude_api_exchange", "something_else");
        assert_eq!(
            parse_head(other_kind.as_bytes(), AT).unwrap_err(),
            Reject::NotRecord
        );
    }

    #[test]
    fn every_prefix_of_a_record_is_cut() {
        let good = line(serde_json::json!([{"role": "user", "content": "hi \"you\" \\ there"}]));
        for end in 1..good.len() {
            assert_eq!(
                parse_head(&good.as_bytes()[..end], AT).unwrap_err(),
                Reject::Cut,
                "{}",
                &good[..end]
            );
        }
    }

    #[test]
    fn a_prompt_is_the_users_text_not_tool_results_reminders_or_the_environment() {
        let prompt = |messages: serde_json::Value| {
            parse_head(line(messages).as_bytes(), AT)
                .unwrap()
                .ends_with_prompt
        };
        assert!(prompt(serde_json::json!([
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "do it"}]},
            {"role": "system", "content": "# Environment"}
        ])));
        assert!(!prompt(serde_json::json!([
            {"role": "user", "content": "do it"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}, {"type": "text", "text": "more"}]}
        ])));
        assert!(!prompt(serde_json::json!([
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>agent done</system-reminder>"}]}
        ])));
        assert!(!prompt(
            serde_json::json!([{"role": "assistant", "content": "prefill"}])
        ));
    }

    #[test]
    fn a_segment_read_in_parts_gives_what_one_pass_gives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut text = String::new();
        for i in 0..50 {
            let prompt = "x".repeat(i * 37);
            text += &line(serde_json::json!([{"role": "user", "content": prompt}]));
            text += if i % 7 == 0 { "\nnot json\n" } else { "\n" };
        }
        text += "{\"cut";
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        let whole = read_range(0, &path, &file, 0, text.len() as u64).unwrap();
        assert_eq!(whole.heads.len(), 50);
        assert_eq!((whole.skipped.not_json, whole.skipped.cut), (8, 1));
        for parts in [2, 3, 7] {
            let ranges = split(&path, &file, 0, text.len() as u64, parts, 1_000).unwrap();
            assert_eq!(ranges.len(), parts, "{ranges:?}");
            let mut heads = Vec::new();
            let mut skipped = Skipped::default();
            for (start, end) in ranges {
                assert!(start == 0 || text.as_bytes()[start as usize - 1] == b'\n');
                let part = read_range(0, &path, &file, start, end).unwrap();
                heads.extend(part.heads);
                skipped.add(&part.skipped);
            }
            assert_eq!(skipped, whole.skipped);
            let at = |h: &[Head]| h.iter().map(|h| h.location).collect::<Vec<_>>();
            assert_eq!(at(&heads), at(&whole.heads));
        }
    }
}
