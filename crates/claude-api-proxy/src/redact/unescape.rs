//! Text as a JSON reader reads it, for matching: `\uXXXX` escapes (surrogate pairs included)
//! and `\/` decoded, with a map from offsets in the decoded text back to the text as written,
//! so a secret written `sk\u002dant\u002d...` or `postgres:\/\/...` is found and replaced whole.
//!
//! Escapes that decode to `"`, `\` or a control character stay as written, as do `\n`, `\"`,
//! `\\` and the other short escapes: the decoded text has the same strings, ending at the same
//! quotes, as the original, and a secret's characters never need them.

use std::ops::Range;

/// The decoded text and where its decoded escapes came from.
pub(super) struct Unescaped {
    pub text: String,
    /// One per decoded escape, in order.
    marks: Vec<Mark>,
}

struct Mark {
    /// The decoded character's start and length in [`Unescaped::text`].
    at: usize,
    len: usize,
    /// The escape's bytes in the original.
    from: usize,
    to: usize,
}

/// `text` with its `\uXXXX` and `\/` escapes decoded; `None` when it has none (it reads as
/// written), found without a copy.
pub(super) fn unescape(text: &str) -> Option<Unescaped> {
    let bytes = text.as_bytes();
    // JSON text has a `\n` or `\"` every few dozen bytes: the search skips to the escapes that
    // decode to something else, rather than stopping at every backslash.
    let mut unicode = Next::new(b"\\u", bytes);
    let mut slash = Next::new(b"\\/", bytes);
    let mut out: Option<Unescaped> = None;
    let mut copied = 0;
    let mut at = 0;
    loop {
        let i = unicode.from(at).min(slash.from(at));
        if i == usize::MAX {
            break;
        }
        // A backslash after an odd run of them is the second half of a `\\` escape.
        let run = bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count();
        let decoded = match bytes[i + 1] {
            _ if run % 2 == 1 => None,
            b'/' => Some(('/', 2)),
            _ => escaped_char(bytes, i),
        };
        let Some((c, len)) = decoded else {
            at = i + 1;
            continue;
        };
        let out = out.get_or_insert_with(|| Unescaped {
            text: String::with_capacity(text.len()),
            marks: Vec::new(),
        });
        out.text.push_str(&text[copied..i]);
        out.marks.push(Mark {
            at: out.text.len(),
            len: c.len_utf8(),
            from: i,
            to: i + len,
        });
        out.text.push(c);
        copied = i + len;
        at = i + len;
    }
    let mut out = out?;
    out.text.push_str(&text[copied..]);
    Some(out)
}

/// The next occurrence of a needle at or after a position, searched again only once passed.
struct Next<'a> {
    finder: memchr::memmem::Finder<'static>,
    bytes: &'a [u8],
    /// The last position found, once searched (`usize::MAX`: none left).
    found: Option<usize>,
}

impl<'a> Next<'a> {
    fn new(needle: &'static [u8], bytes: &'a [u8]) -> Self {
        Next {
            finder: memchr::memmem::Finder::new(needle),
            bytes,
            found: None,
        }
    }

    fn from(&mut self, at: usize) -> usize {
        match self.found {
            Some(found) if found >= at => found,
            _ => {
                let found = self
                    .finder
                    .find(&self.bytes[at..])
                    .map_or(usize::MAX, |i| at + i);
                *self.found.insert(found)
            }
        }
    }
}

/// The character of the `\uXXXX` escape (or surrogate pair of two) at `i`, and the escape's
/// length; `None` for one that must stay as written (see the module's comment) or is not one.
fn escaped_char(bytes: &[u8], i: usize) -> Option<(char, usize)> {
    let unit = |at: usize| -> Option<u32> {
        let hex = bytes.get(at..at + 6)?;
        if &hex[..2] != b"\\u" || !hex[2..].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let first = unit(i)?;
    let (code, len) = match first {
        0xD800..=0xDBFF => {
            let low = unit(i + 6).filter(|low| (0xDC00..=0xDFFF).contains(low))?;
            (0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00), 12)
        }
        _ => (first, 6),
    };
    let c = char::from_u32(code)?;
    (!c.is_control() && c != '"' && c != '\\').then_some((c, len))
}

impl Unescaped {
    /// `range` of [`Unescaped::text`] as a range of the original: a decoded character maps to
    /// its whole escape.
    pub fn original(&self, range: Range<usize>) -> Range<usize> {
        self.position(range.start)..self.position(range.end)
    }

    fn position(&self, p: usize) -> usize {
        let before = self.marks.partition_point(|m| m.at <= p);
        let Some(m) = before.checked_sub(1).map(|i| &self.marks[i]) else {
            return p;
        };
        // `p` is on a character boundary: at a decoded character's start, or past its end.
        if p < m.at + m.len {
            m.from
        } else {
            m.to + (p - m.at - m.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_decodable_escapes_is_not_copied() {
        assert!(unescape(r#"{"a":"line\nnext \"q\" C:\\users\\x"}"#).is_none());
        // `\\u0041` is an escaped backslash and the letters `u0041`.
        assert!(unescape(r"a\\u0041").is_none());
        // Escapes for a quote, a backslash or a control character stay as written.
        assert!(unescape(r"\u0022\u005c\u001b\u0000").is_none());
    }

    #[test]
    fn unicode_and_slash_escapes_decode_and_map_back_to_their_whole_escape() {
        let raw = r"x sk\u002dant\u002dk \/\ud83d\ude00é\u00e9!";
        let u = unescape(raw).unwrap();
        assert_eq!(u.text, "x sk-ant-k /😀éé!");
        let key = u.text.find("sk").unwrap()..u.text.find(" /").unwrap();
        assert_eq!(&raw[u.original(key)], r"sk\u002dant\u002dk");
        let emoji = u.text.find('😀').unwrap();
        assert_eq!(
            &raw[u.original(emoji..emoji + 4)],
            r"\ud83d\ude00",
            "a surrogate pair is one character"
        );
        let end = u.text.len();
        assert_eq!(&raw[u.original(end - 3..end)], r"\u00e9!");
        assert_eq!(u.original(0..2), 0..2);
    }

    #[test]
    fn broken_escapes_stay_as_written() {
        // An escaped backslash, then a `\u0041` escape.
        assert_eq!(unescape(r"a\\\u0041").unwrap().text, r"a\\A");
        let u = unescape(r"\ud83d lone \u12 short \/").unwrap();
        assert_eq!(u.text, r"\ud83d lone \u12 short /");
    }
}
