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
    memchr::memmem::find(bytes, b"\\u").or_else(|| memchr::memmem::find(bytes, b"\\/"))?;
    let mut out = Unescaped {
        text: String::with_capacity(text.len()),
        marks: Vec::new(),
    };
    let mut copied = 0;
    let mut at = 0;
    while let Some(i) = memchr::memchr(b'\\', &bytes[at..]).map(|i| at + i) {
        let (decoded, len) = match bytes.get(i + 1) {
            Some(b'/') => (Some('/'), 2),
            Some(b'u') => match escaped_char(bytes, i) {
                Some((c, len)) => (Some(c), len),
                None => (None, 2),
            },
            // `\\` is one escape: the character after it is not escaped.
            _ => (None, 2),
        };
        if let Some(c) = decoded {
            out.text.push_str(&text[copied..i]);
            out.marks.push(Mark {
                at: out.text.len(),
                len: c.len_utf8(),
                from: i,
                to: i + len,
            });
            out.text.push(c);
            copied = i + len;
        }
        at = (i + len).min(bytes.len());
    }
    if out.marks.is_empty() {
        return None;
    }
    out.text.push_str(&text[copied..]);
    Some(out)
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
        let u = unescape(r"\ud83d lone \u12 short \/").unwrap();
        assert_eq!(u.text, r"\ud83d lone \u12 short /");
    }
}
