//! Skimming a JSON line: walk the objects and arrays the caller asks about and step over every
//! other value by finding where it ends (a string at its closing quote, an object or array at
//! its closing bracket), without decoding what is inside. The listing reads only a record's
//! small fields, and stepping over the bodies this way is several times faster than parsing
//! them. What is stepped over is not validated: a stray escape or number inside a body is not
//! noticed, but text that ends early is, and the values the caller reads are parsed in full.

use memchr::memchr;
use serde::Deserialize;
use wide::u8x16;

/// Why a line could not be skimmed.
#[derive(Debug)]
pub enum Error {
    /// The text ended inside a value.
    Eof,
    /// A byte that cannot be there (no `:` after a key, no `,` between members, ...).
    Syntax,
    /// A value the caller read did not parse as what it expected.
    Value(serde_json::Error),
}

/// A position in a JSON text, always at a value, a `,` or a closing bracket.
pub struct Skim<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Skim<'a> {
    pub fn new(text: &'a str) -> Self {
        Skim { text, at: 0 }
    }

    /// The next byte that is not whitespace, not consumed.
    pub fn peek(&mut self) -> Result<u8, Error> {
        let bytes = self.text.as_bytes();
        while let Some(&c) = bytes.get(self.at) {
            if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                return Ok(c);
            }
            self.at += 1;
        }
        Err(Error::Eof)
    }

    fn expect(&mut self, c: u8) -> Result<(), Error> {
        if self.peek()? != c {
            return Err(Error::Syntax);
        }
        self.at += 1;
        Ok(())
    }

    fn slice(&self, start: usize, end: usize) -> Result<&'a str, Error> {
        // Bounds are always next to an ASCII byte; `get` keeps a bug from panicking.
        self.text.get(start..end).ok_or(Error::Syntax)
    }

    /// Walks an object: `member` is called with each key (as written, escapes undecoded) and
    /// must consume its value (with `skip`, `value`, `object` or `array`).
    pub fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(());
        }
        loop {
            if self.peek()? != b'"' {
                return Err(Error::Syntax);
            }
            let start = self.at + 1;
            self.at = string_end(self.text.as_bytes(), start)?;
            let key = self.slice(start, self.at - 1)?;
            self.expect(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Error::Syntax),
            }
        }
    }

    /// Walks an array: `element` is called once per element and must consume it.
    pub fn array(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Ok(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Error::Syntax),
            }
        }
    }

    /// Steps over one value and returns its text.
    pub fn skip(&mut self) -> Result<&'a str, Error> {
        let bytes = self.text.as_bytes();
        let first = self.peek()?;
        let start = self.at;
        self.at = match first {
            b'"' => string_end(bytes, start + 1)?,
            b'{' | b'[' => container_end(bytes, start)?,
            b'}' | b']' | b',' | b':' => return Err(Error::Syntax),
            _ => bytes[start..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
                .map_or(bytes.len(), |n| start + n),
        };
        self.slice(start, self.at)
    }

    /// Parses one value in full.
    pub fn value<T: Deserialize<'a>>(&mut self) -> Result<T, Error> {
        serde_json::from_str(self.skip()?).map_err(Error::Value)
    }

    /// Nothing but whitespace is left.
    pub fn end(&mut self) -> Result<(), Error> {
        match self.peek() {
            Err(Error::Eof) => Ok(()),
            _ => Err(Error::Syntax),
        }
    }
}

/// The index after the closing quote of the string whose text starts at `from`: the first
/// quote not escaped by an odd run of backslashes (memchr finds quotes with SIMD).
fn string_end(bytes: &[u8], from: usize) -> Result<usize, Error> {
    let mut at = from;
    loop {
        let quote = at + memchr(b'"', &bytes[at..]).ok_or(Error::Eof)?;
        let backslashes = bytes[from..quote]
            .iter()
            .rev()
            .take_while(|&&c| c == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Ok(quote + 1);
        }
        at = quote + 1;
    }
}

/// The index after the bracket that closes the object or array opening at `start`. It reads
/// 64 bytes at a time, simdjson's way: bitmasks of quotes, backslashes and brackets (SSE2
/// compares through `wide`), which backslashes escape what, which bytes are inside strings;
/// so its speed does not depend on how many strings and escapes the bodies hold.
fn container_end(bytes: &[u8], start: usize) -> Result<usize, Error> {
    let mut state = Strings::default();
    let mut depth = 0u32;
    for (n, block) in bytes[start..].chunks(64).enumerate() {
        let masks = if let Ok(full) = <&[u8; 64]>::try_from(block) {
            Masks::of(full)
        } else {
            let mut padded = [b' '; 64];
            padded[..block.len()].copy_from_slice(block);
            Masks::of(&padded)
        };
        let outside = !state.inside(masks.quote, masks.backslash);
        let (open, close) = (masks.open & outside, masks.close & outside);
        if open | close == 0 {
            // Most blocks are inside a body's strings (and x86-64 counts bits in software).
            continue;
        }
        // The first close that brings the depth back to zero ends the container.
        let mut closes = close;
        let mut closed = 0;
        while closes != 0 {
            let at = closes.trailing_zeros();
            closed += 1;
            if depth + (open & ((1 << at) - 1)).count_ones() == closed {
                return Ok(start + n * 64 + at as usize + 1);
            }
            closes &= closes - 1;
        }
        depth = depth + open.count_ones() - close.count_ones();
    }
    Err(Error::Eof)
}

/// Bit i set: byte i of the block is that character (`open`: `{` or `[`; `close`: `}` or `]`).
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

impl Masks {
    fn of(block: &[u8; 64]) -> Masks {
        let mut m = Masks {
            quote: 0,
            backslash: 0,
            open: 0,
            close: 0,
        };
        for (i, lane) in block.chunks_exact(16).enumerate() {
            let v = u8x16::new(lane.try_into().expect("16 bytes"));
            // `[` and `]` are `{` and `}` without bit 0x20.
            let folded = v | u8x16::splat(0x20);
            let bits = |eq: u8x16| u64::from(eq.move_mask() as u16) << (16 * i);
            m.quote |= bits(v.cmp_eq(u8x16::splat(b'"')));
            m.backslash |= bits(v.cmp_eq(u8x16::splat(b'\\')));
            m.open |= bits(folded.cmp_eq(u8x16::splat(b'{')));
            m.close |= bits(folded.cmp_eq(u8x16::splat(b'}')));
        }
        m
    }
}

/// What carries from one 64-byte block to the next: whether it starts escaped (after an odd
/// run of backslashes) and whether it starts inside a string.
#[derive(Default)]
struct Strings {
    escaped: u64,
    inside: u64,
}

impl Strings {
    /// Bit i set: byte i is inside a string (an opening quote counts as inside, the closing
    /// one not). simdjson's branchless escape and prefix-xor steps.
    fn inside(&mut self, quote: u64, backslash: u64) -> u64 {
        const ODD: u64 = 0xAAAA_AAAA_AAAA_AAAA;
        let escaped = if backslash == 0 {
            std::mem::take(&mut self.escaped)
        } else {
            let potential = backslash & !self.escaped;
            // Runs of backslashes starting on an even byte become 1010..., on an odd byte
            // 0101...; the byte after an odd run is marked escaped.
            let code = (((potential << 1) | ODD).wrapping_sub(potential)) ^ ODD;
            let escaped = code ^ (backslash | self.escaped);
            self.escaped = (code & backslash) >> 63;
            escaped
        };
        let quote = quote & !escaped;
        let mut inside = quote;
        for shift in [1, 2, 4, 8, 16, 32] {
            inside ^= inside << shift;
        }
        inside ^= self.inside;
        self.inside = ((inside as i64) >> 63) as u64;
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_and_values(text: &str) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        let mut s = Skim::new(text);
        s.object(|s, k| {
            out.push((k.to_string(), s.skip()?.to_string()));
            Ok(())
        })?;
        s.end()?;
        Ok(out)
    }

    #[test]
    fn values_end_where_json_says() {
        let text = r#" { "a" : "x\"}\\" , "b":[1,{"c":"]"}],"d":-1.5e3,"e":null,"f":{}} "#;
        let got = keys_and_values(text).unwrap();
        let want = [
            ("a", r#""x\"}\\""#),
            ("b", r#"[1,{"c":"]"}]"#),
            ("d", "-1.5e3"),
            ("e", "null"),
            ("f", "{}"),
        ];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()
        );
    }

    #[test]
    fn text_that_ends_early_is_eof_and_stray_bytes_are_syntax() {
        for cut in [
            r#"{"a":"x"#,
            r#"{"a":[1,{"b":2}"#,
            r#"{"a":1,"#,
            r#"{"a"#,
            "{\"a\"",
            "{",
        ] {
            assert!(matches!(keys_and_values(cut), Err(Error::Eof)), "{cut}");
        }
        for bad in [
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":1}x"#,
            r#"{a:1}"#,
            "[]",
        ] {
            assert!(matches!(keys_and_values(bad), Err(Error::Syntax)), "{bad}");
        }
    }

    /// Random JSON rich in what the block scan must get right: quotes, runs of backslashes,
    /// brackets inside strings, multi-byte characters, values crossing 64-byte blocks.
    fn random_value(seed: &mut u64, depth: u32) -> serde_json::Value {
        let mut next = |n: u64| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed % n
        };
        match next(if depth > 3 { 3 } else { 5 }) {
            0 => serde_json::json!(next(1000) as f64 / 7.0),
            1 | 2 => {
                let pieces = [
                    "\\", "\"", "\\\"", "{", "]", "[", "}", "é", "\n", "x", "ab", "\\\\",
                ];
                let text: String = (0..next(90))
                    .map(|_| pieces[next(pieces.len() as u64) as usize])
                    .collect();
                serde_json::Value::String(text)
            }
            3 => (0..next(6))
                .map(|_| random_value(seed, depth + 1))
                .collect(),
            _ => (0..next(6))
                .map(|i| (format!("k{i}"), random_value(seed, depth + 1)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    #[test]
    fn the_block_scan_ends_containers_where_serde_json_does() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let mut checked = 0;
        while checked < 3_000 {
            let value = random_value(&mut seed, 0);
            if !(value.is_array() || value.is_object()) {
                continue;
            }
            checked += 1;
            for (pad, text) in [
                (0, value.to_string()),
                (1, serde_json::to_string_pretty(&value).unwrap()),
            ] {
                let line = format!("{}{text}{}", " ".repeat(pad * 61), ",\"after\":1");
                let start = pad * 61;
                assert_eq!(
                    container_end(line.as_bytes(), start).unwrap(),
                    start + text.len(),
                    "{text}"
                );
                let cut = &line.as_bytes()[..start + text.len() - 1];
                assert!(
                    matches!(container_end(cut, start), Err(Error::Eof)),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn arrays_are_walked_element_by_element() {
        let mut s = Skim::new(r#"[ {"x":"[,]"} ,"s", 3 ]"#);
        let mut seen = Vec::new();
        s.array(|s| {
            seen.push(s.skip()?);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [r#"{"x":"[,]"}"#, r#""s""#, "3"]);
        let n: u64 = Skim::new(" 42 ").value().unwrap();
        assert_eq!(n, 42);
    }
}
