//! A record's request body read in the same pass as the record: its members, the members of
//! its `json` and the elements of `json.messages`, all borrowed from the line, and its whole
//! text found from where those parts lie. `--bodies delta` splits and digests the messages of
//! every request, so reading a multi-megabyte body a second time would cost as much again.

use crate::encode::borrowed::Str;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A request body as read with its record; [`RequestBody::place`] gives its text and parts.
#[derive(Default)]
pub struct RequestBody<'a> {
    wrapper: Vec<(Str<'a>, Member<'a>)>,
    /// The members of `json`, when it is an object.
    json: Vec<(Str<'a>, Member<'a>)>,
    messages: Vec<&'a RawValue>,
    /// A shape whose text cannot be found from its parts (not an object, `json` not an
    /// object, `messages` not an array): read again by [`RequestBody::place`].
    opaque: bool,
}

enum Member<'a> {
    Raw(&'a RawValue),
    Json,
    Messages,
}

/// A request body's text and the parts the delta encoder rewrites, as slices of the line.
#[derive(Debug, Default, PartialEq)]
pub struct Parts<'a> {
    /// The body's members (`size`, `json`, `text`, …): key and JSON text.
    pub wrapper: Vec<(&'a str, &'a str)>,
    /// The members of `json`, when it is an object.
    pub json: Option<Vec<(&'a str, &'a str)>>,
    /// The elements of `json.messages`, when it is an array.
    pub messages: Option<Vec<&'a str>>,
}

impl<'a> RequestBody<'a> {
    /// The body's text and parts; `line` is the text the record was read from. Returns no
    /// parts (and the text read again) for a shape whose text cannot be placed from its
    /// parts, or whose keys hold escapes.
    pub fn place(&self, line: &'a str) -> (&'a str, Option<Parts<'a>>) {
        match self.placed(line) {
            Some((text, parts)) => (text, Some(parts)),
            None => (read_again(line), None),
        }
    }

    fn placed(&self, line: &'a str) -> Option<(&'a str, Parts<'a>)> {
        if self.opaque {
            return None;
        }
        let base = line.as_ptr() as usize;
        // Where a slice of the line starts and ends in it.
        let at = |s: &str| {
            let start = (s.as_ptr() as usize).checked_sub(base)?;
            (start + s.len() <= line.len()).then_some((start, start + s.len()))
        };
        // A key without escapes is the very text of the line (a key with escapes was copied).
        let key = |k: &Str<'a>| match k.0 {
            Cow::Borrowed(s) => Some((s, at(s)?)),
            Cow::Owned(_) => None,
        };
        // The text of a container opened after the key ending at `key_end`, closed after its
        // last child (the line is valid JSON, so only whitespace lies between them).
        let container = |key_end: usize, open: char, close: char, last: Option<usize>| {
            let start = key_end + line[key_end..].find(open)?;
            let from = last.unwrap_or(start + 1);
            let end = from + line[from..].find(close)? + 1;
            Some(&line[start..end])
        };

        let messages: Vec<&'a str> = self.messages.iter().map(|m| m.get()).collect();
        let mut messages_text = None;
        let mut json = Vec::with_capacity(self.json.len());
        for (k, m) in &self.json {
            let (k, (_, k_end)) = key(k)?;
            let text = match m {
                Member::Raw(v) => v.get(),
                Member::Json => return None,
                Member::Messages => {
                    let last = messages.last().and_then(|m| at(m)).map(|(_, e)| e);
                    let t = container(k_end, '[', ']', last)?;
                    messages_text = Some(t);
                    t
                }
            };
            json.push((k, text));
        }

        let mut json_text = None;
        let mut wrapper = Vec::with_capacity(self.wrapper.len());
        for (k, m) in &self.wrapper {
            let (k, (_, k_end)) = key(k)?;
            let text = match m {
                Member::Raw(v) => v.get(),
                Member::Messages => return None,
                Member::Json => {
                    let last = json.last().and_then(|(_, t)| at(t)).map(|(_, e)| e);
                    let t = container(k_end, '{', '}', last)?;
                    json_text = Some(t);
                    t
                }
            };
            wrapper.push((k, text));
        }
        let (_, (first, _)) = key(&self.wrapper.first()?.0)?;
        let start = line[..first].rfind('{')?;
        let (_, last) = at(wrapper.last()?.1)?;
        let end = last + line[last..].find('}')? + 1;
        let parts = Parts {
            wrapper,
            json: json_text.map(|_| json),
            messages: messages_text.map(|_| messages),
        };
        Some((&line[start..end], parts))
    }
}

/// The request body's text read on its own (the rare shapes [`RequestBody::place`] cannot
/// place from their parts).
fn read_again(line: &str) -> &str {
    #[derive(Deserialize)]
    struct Record<'a> {
        #[serde(borrow)]
        request: Request<'a>,
    }
    #[derive(Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        body: &'a RawValue,
    }
    serde_json::from_str::<Record<'_>>(line).map_or("", |r| r.request.body.get())
}

impl<'de: 'a, 'a> Deserialize<'de> for RequestBody<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut body = RequestBody::default();
        d.deserialize_any(Level {
            body: &mut body,
            depth: Depth::Wrapper,
        })?;
        Ok(body)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Depth {
    Wrapper,
    Json,
    Messages,
}

/// Reads one level of the body: the wrapper object, `json`, or `messages`. Any other JSON
/// value is read past and marks the body opaque, so no body ever fails its record.
struct Level<'p, 'a> {
    body: &'p mut RequestBody<'a>,
    depth: Depth,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Level<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Level<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (child, name) = match self.depth {
            Depth::Wrapper => (Depth::Json, "json"),
            Depth::Json => (Depth::Messages, "messages"),
            Depth::Messages => {
                self.body.opaque = true;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(());
            }
        };
        let mut seen = false;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            let member = if key.0 == name && !seen {
                seen = true;
                map.next_value_seed(Level {
                    body: self.body,
                    depth: child,
                })?;
                if child == Depth::Json {
                    Member::Json
                } else {
                    Member::Messages
                }
            } else {
                Member::Raw(map.next_value()?)
            };
            let members = match self.depth {
                Depth::Wrapper => &mut self.body.wrapper,
                _ => &mut self.body.json,
            };
            members.push((key, member));
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth == Depth::Messages {
            while let Some(m) = seq.next_element()? {
                self.body.messages.push(m);
            }
        } else {
            self.body.opaque = true;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
        }
        Ok(())
    }
    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<(), E> {
        self.body.opaque = true;
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.body.opaque = true;
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.body.opaque = true;
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.body.opaque = true;
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.body.opaque = true;
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.body.opaque = true;
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.body.opaque = true;
        Ok(())
    }
}

/// A body read on its own (its text is the whole of `raw`), as the record reader reads it.
#[cfg(test)]
pub fn read(raw: &str) -> (&str, Option<Parts<'_>>) {
    match serde_json::from_str::<RequestBody<'_>>(raw) {
        Ok(body) => body.placed(raw).map_or((raw, None), |(t, p)| (t, Some(p))),
        Err(_) => (raw, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record line around `body`, read the way the encoder reads it.
    fn in_record(body: &str) -> (String, String) {
        let line = format!(r#"{{"kind":"x","request":{{"path":"/","body":{body}}},"z":[1]}}"#);
        #[derive(Deserialize)]
        struct Record<'a> {
            #[serde(borrow)]
            request: Request<'a>,
        }
        #[derive(Deserialize)]
        struct Request<'a> {
            #[serde(borrow)]
            body: RequestBody<'a>,
        }
        let rec: Record<'_> = serde_json::from_str(&line).expect("the record reads");
        let text = rec.request.body.place(&line).0.to_string();
        (line, text)
    }

    #[test]
    fn the_body_text_is_found_exactly_whatever_its_shape() {
        for body in [
            r#"{"size":2,"json":{"model":"m","messages":[{"role":"user","content":"a]}"},{"b":[]}],"stream":true}}"#,
            r#"{ "size" : 2 , "json" : { "messages" : [ ] , "x" : { } } , "truncated" : false }"#,
            r#"{"size":2,"json":{"messages":[ {"a":"}"} ]}}"#,
            r#"{"size":2,"json":{}}"#,
            r#"{"size":2,"json":{"system":"s"}}"#,
            r#"{"size":3,"text":"not json"}"#,
            r#"{"size":3,"truncated":true,"base64":"AAAA"}"#,
            r#"{"size":3,"json":[1,2,3]}"#,
            r#"{"size":3,"json":{"messages":"not an array"}}"#,
            r#"{"size":3,"json":{"messages":[1],"messages":[2]},"json":4}"#,
            r#"{"si\u007ae":3,"json":{"messages":[]}}"#,
            r#"{"size":3,"json":{"mess\u0061ges":[1]}}"#,
            r#"{}"#,
            "[1,2]",
            r#""a string body""#,
            "null",
            "12",
        ] {
            let (line, text) = in_record(body);
            assert_eq!(text, body, "in {line}");
        }
    }

    #[test]
    fn a_json_body_is_split_into_its_members_and_messages() {
        let body = r#"{"size":2,"json":{"model":"m","messages":[{"a":1}, "two" ],"tools":[]}}"#;
        let (text, parts) = read(body);
        assert_eq!(text, body);
        let parts = parts.expect("parts");
        assert_eq!(
            parts.wrapper,
            vec![
                ("size", "2"),
                (
                    "json",
                    r#"{"model":"m","messages":[{"a":1}, "two" ],"tools":[]}"#
                )
            ]
        );
        assert_eq!(
            parts.json,
            Some(vec![
                ("model", r#""m""#),
                ("messages", r#"[{"a":1}, "two" ]"#),
                ("tools", "[]")
            ])
        );
        assert_eq!(parts.messages, Some(vec![r#"{"a":1}"#, r#""two""#]));
        // Only the first `messages` is split; a second is a member like any other.
        let (_, parts) = read(r#"{"json":{"messages":[1],"messages":[2]}}"#);
        let parts = parts.unwrap();
        assert_eq!(parts.messages, Some(vec!["1"]));
        assert_eq!(parts.json.unwrap()[1], ("messages", "[2]"));
        // Shapes the delta encoder does not rewrite.
        assert_eq!(read(r#"{"size":3,"text":"t"}"#).1.unwrap().json, None);
        assert_eq!(read(r#"{"json":{"messages":5}}"#).1, None);
        assert_eq!(read(r#"{"json":{"mess\u0061ges":[1]}}"#).1, None);
        assert_eq!(read("[1]").1, None);
    }
}
