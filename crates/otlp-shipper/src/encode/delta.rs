//! Conversation deltas: what a Messages API request adds to the conversation it continues,
//! so Seq receives each message, system prompt block and tool definition once instead of on
//! every turn (docs/seq-events.md, "Conversation deltas").
//!
//! A request body `{"size":…,"json":{…,"system":…,"tools":[…],"messages":[…]}}` is shipped
//! with, in `json`:
//! - `messages` → `{"$continues":"<exchange id>","$shared":K,"$new":[…]}` when an earlier
//!   exchange of the same session (and path) had the same first K messages, byte for byte
//!   (the longest such prefix, among the last [`RECENT`] exchanges: parallel sub-agents, title
//!   requests and retries interleave, so order is never assumed). Claude Code moves its cache
//!   marker to the newest message on every turn, so a shared message may also be the earlier
//!   one with its `cache_control` members removed: its index is then listed in
//!   `"$uncached":[…]` rather than the message shipped again;
//! - `system` and `tools` → `{"$context":[…]}`, each block of at least [`INLINE_MAX`] bytes
//!   replaced by the hex digest of its text (the block itself is shipped once, as a context
//!   event), smaller blocks (the billing header) kept inline as they are.
//!
//! Everything else is the record's text, so the body is rebuilt from the events alone. The
//! state lives only in memory: after a restart the first exchange of each session is shipped
//! whole, and each block once more.

use crate::encode::ids::{Digest16, digest, hex, message_digest};
use crate::encode::request_body::Parts;
use conversation::Route;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write;

/// Exchanges per session a new request is matched against.
pub const RECENT: usize = 64;
/// System and tool blocks shorter than this stay inline.
pub const INLINE_MAX: usize = 256;
/// Sessions remembered; beyond this the state starts again (the next exchange of each session
/// is shipped whole: bounded memory, nothing lost).
const MAX_SESSIONS: usize = 1_024;
/// Context digests remembered as shipped; beyond this they are forgotten and shipped again.
const MAX_SHIPPED: usize = 100_000;
/// A system prompt block or tool definition to ship before the exchange that first uses it.
#[derive(Debug, PartialEq)]
pub struct Context<'a> {
    /// Hex digest (what the request body refers to).
    pub hash: String,
    /// `system` or `tools`.
    pub field: &'static str,
    /// The block's JSON text, as in the record.
    pub text: &'a str,
}

/// What [`Conversations::encode`] made of a request body.
#[derive(Debug, Default, PartialEq)]
pub struct Encoded<'a> {
    /// The body to ship: rewritten when something was replaced, else the record's text.
    pub body: Cow<'a, str>,
    /// The exchange this one continues and how many of its messages are shared.
    pub continues: Option<(String, usize)>,
    /// Messages shipped in this exchange's body.
    pub new_messages: Option<usize>,
    /// Blocks not shipped before, in the order the body names them.
    pub contexts: Vec<Context<'a>>,
}

struct Known {
    id: String,
    route: Route,
    messages: Vec<Digest16>,
    /// Digest of each message without its cache markers, when it had removable ones.
    uncached: Vec<Option<Digest16>>,
}

/// A message's text with every `,"cache_control":{…}` member removed, when that removes
/// every `cache_control` of the message (so a reader removing the members from the parsed
/// message gets the same JSON); `None` when the message has none or has others.
fn without_cache_markers(text: &str) -> Option<String> {
    const KEY: &str = r#","cache_control":{"#;
    if !text.contains(r#""cache_control""#) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let value = &rest[at + KEY.len()..];
        // A marker is a flat object: `{"type":"ephemeral"}`, maybe with a `ttl`.
        let end = value.find(['{', '}'])?;
        if value.as_bytes()[end] != b'}' {
            return None;
        }
        out.push_str(&rest[..at]);
        rest = &value[end + 1..];
    }
    out.push_str(rest);
    (!out.contains(r#""cache_control""#)).then_some(out)
}

#[derive(Default)]
struct Session {
    recent: VecDeque<Known>,
}

/// The conversations seen so far (in memory only).
#[derive(Default)]
pub struct Conversations {
    sessions: HashMap<String, Session>,
    shipped: HashSet<Digest16>,
}

fn write_key(out: &mut String, key: &str) {
    // A key as read from the line: it has no escapes.
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

impl Conversations {
    /// Encodes the request body of exchange `id`: `raw` is the record's `request.body` text
    /// and `parts` its members, as [`crate::encode::request_body`] read them.
    pub fn encode<'a>(
        &mut self,
        session: Option<&str>,
        id: &str,
        path: &str,
        raw: &'a str,
        parts: Parts<'a>,
    ) -> Encoded<'a> {
        let route = Route::of(path);
        if route == Route::Other {
            return unchanged(raw);
        }
        let Parts {
            wrapper,
            json: Some(json),
            messages: mut parsed_messages,
        } = parts
        else {
            return unchanged(raw);
        };
        if self.sessions.len() >= MAX_SESSIONS && !self.sessions.contains_key(session.unwrap_or(""))
        {
            self.sessions.clear();
        }
        if self.shipped.len() >= MAX_SHIPPED {
            self.shipped.clear();
        }

        let mut result = Encoded::default();
        let mut rewritten = false;
        let mut json_out = String::with_capacity(raw.len().min(1 << 16));
        let mut messages_hashes: Option<(Vec<Digest16>, Vec<Option<Digest16>>)> = None;
        json_out.push('{');
        for (i, &(key, text)) in json.iter().enumerate() {
            if i > 0 {
                json_out.push(',');
            }
            write_key(&mut json_out, key);
            match key {
                field @ ("system" | "tools") => {
                    let field: &'static str = if field == "system" { "system" } else { "tools" };
                    match self.blocks(field, text, &mut result.contexts) {
                        Some(r) => {
                            json_out.push_str(&r);
                            rewritten = true;
                        }
                        None => json_out.push_str(text),
                    }
                }
                "messages" => match parsed_messages.take() {
                    Some(messages) => {
                        let hashes: Vec<Digest16> = messages
                            .iter()
                            .map(|m| message_digest(m.as_bytes()))
                            .collect();
                        let session_state = self.sessions.get(session.unwrap_or(""));
                        let best = session_state.and_then(|s| longest_prefix(s, route, &hashes));
                        match best {
                            Some((from, shared, uncached)) => {
                                let _ = write!(
                                    json_out,
                                    r#"{{"$continues":{},"$shared":{shared},"#,
                                    serde_json::to_string(&from).unwrap_or_default()
                                );
                                if !uncached.is_empty() {
                                    let list: Vec<String> =
                                        uncached.iter().map(|i| i.to_string()).collect();
                                    let _ =
                                        write!(json_out, r#""$uncached":[{}],"#, list.join(","));
                                }
                                json_out.push_str(r#""$new":["#);
                                for (j, m) in messages[shared..].iter().enumerate() {
                                    if j > 0 {
                                        json_out.push(',');
                                    }
                                    json_out.push_str(m);
                                }
                                json_out.push_str("]}");
                                result.new_messages = Some(messages.len() - shared);
                                result.continues = Some((from, shared));
                                rewritten = true;
                            }
                            None => {
                                json_out.push_str(text);
                                result.new_messages = Some(messages.len());
                            }
                        }
                        let uncached = messages
                            .iter()
                            .map(|m| without_cache_markers(m).map(|t| message_digest(t.as_bytes())))
                            .collect();
                        messages_hashes = Some((hashes, uncached));
                    }
                    None => json_out.push_str(text),
                },
                _ => json_out.push_str(text),
            }
        }
        json_out.push('}');

        let state = self
            .sessions
            .entry(session.unwrap_or("").to_string())
            .or_default();
        if let Some((messages, uncached)) = messages_hashes {
            if state.recent.len() >= RECENT {
                state.recent.pop_front();
            }
            state.recent.push_back(Known {
                id: id.to_string(),
                route,
                messages,
                uncached,
            });
        }
        if !rewritten {
            result.body = Cow::Borrowed(raw);
            return result;
        }
        let mut out = String::with_capacity(json_out.len() + 64);
        out.push('{');
        for (i, &(key, value)) in wrapper.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_key(&mut out, key);
            if key == "json" {
                out.push_str(&json_out);
            } else {
                out.push_str(value);
            }
        }
        out.push('}');
        result.body = Cow::Owned(out);
        result
    }

    /// `system` or `tools`: the `{"$context":…}` text when at least one block is replaced
    /// by its digest.
    fn blocks<'a>(
        &mut self,
        field: &'static str,
        text: &'a str,
        contexts: &mut Vec<Context<'a>>,
    ) -> Option<String> {
        let mut replace = |block: &'a str| -> Option<String> {
            let d = digest(block.as_bytes());
            if block.len() < INLINE_MAX {
                return None;
            }
            let hash = hex(&d);
            if self.shipped.insert(d) {
                contexts.push(Context {
                    hash: hash.clone(),
                    field,
                    text: block,
                });
            }
            Some(hash)
        };
        if text.starts_with('"') {
            return replace(text).map(|h| format!(r#"{{"$context":"{h}"}}"#));
        }
        let Ok(blocks) = serde_json::from_str::<Vec<&'a RawValue>>(text) else {
            return None;
        };
        let mut out = String::from(r#"{"$context":["#);
        let mut any = false;
        for (i, block) in blocks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match replace(block.get()) {
                Some(h) => {
                    any = true;
                    out.push('"');
                    out.push_str(&h);
                    out.push('"');
                }
                None => out.push_str(block.get()),
            }
        }
        out.push_str("]}");
        any.then_some(out)
    }
}

fn unchanged(raw: &str) -> Encoded<'_> {
    Encoded {
        body: Cow::Borrowed(raw),
        ..Encoded::default()
    }
}

/// The known exchange (same route) sharing the longest prefix of messages with `hashes`
/// (equal, or equal once the known one's cache markers are removed), the latest one on a
/// tie, with the indexes that matched without their markers. `None` when no exchange shares
/// even the first message.
fn longest_prefix(
    s: &Session,
    route: Route,
    hashes: &[Digest16],
) -> Option<(String, usize, Vec<usize>)> {
    let mut best: Option<(&Known, usize)> = None;
    for k in s.recent.iter().filter(|k| k.route == route) {
        let shared = k
            .messages
            .iter()
            .zip(&k.uncached)
            .zip(hashes)
            .take_while(|((exact, uncached), new)| exact == new || uncached.as_ref() == Some(new))
            .count();
        if shared > 0 && best.is_none_or(|(_, n)| shared >= n) {
            best = Some((k, shared));
        }
    }
    best.map(|(k, n)| {
        let uncached = (0..n).filter(|i| k.messages[*i] != hashes[*i]).collect();
        (k.id.clone(), n, uncached)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `raw` as the record reader does and encodes it.
    fn encode<'a>(
        c: &mut Conversations,
        session: Option<&str>,
        id: &str,
        path: &str,
        raw: &'a str,
    ) -> Encoded<'a> {
        match crate::encode::request_body::read(raw) {
            (text, Some(parts)) => c.encode(session, id, path, text, parts),
            (text, None) => unchanged(text),
        }
    }

    fn body(system: &str, tools: &str, messages: &[&str]) -> String {
        let json = format!(
            r#"{{"model":"m","system":{system},"tools":{tools},"messages":[{}],"stream":true}}"#,
            messages.join(",")
        );
        format!(r#"{{"size":{},"json":{json}}}"#, json.len())
    }

    fn big(tag: &str) -> String {
        format!(r#"{{"type":"text","text":"{tag} {}"}}"#, "x".repeat(400))
    }

    const BILLING: &str = r#"{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.1; cc_entrypoint=cli;"}"#;

    #[test]
    fn a_turn_ships_only_its_new_messages_and_names_the_exchange_it_continues() {
        let mut c = Conversations::default();
        let system = format!("[{BILLING},{}]", big("you are claude code"));
        let tools = format!("[{},{}]", big("tool a"), big("tool b"));
        let m1 = r#"{"role":"user","content":"one"}"#;
        let m2 = r#"{"role":"assistant","content":"two"}"#;
        let m3 = r#"{"role":"user","content":"three"}"#;
        let first = body(&system, &tools, &[m1]);
        let e1 = encode(&mut c, Some("s"), "id1", "/v1/messages", &first);
        assert_eq!(e1.contexts.len(), 3, "the big blocks, once each");
        assert_eq!(e1.continues, None);
        assert_eq!(e1.new_messages, Some(1));
        assert!(
            e1.body
                .contains(r#""messages":[{"role":"user","content":"one"}]"#)
        );
        assert!(e1.body.contains(BILLING), "small blocks stay inline");

        let second = body(&system, &tools, &[m1, m2, m3]);
        let e2 = encode(&mut c, Some("s"), "id2", "/v1/messages", &second);
        assert!(e2.contexts.is_empty(), "blocks are shipped once");
        assert_eq!(e2.continues, Some(("id1".into(), 1)));
        assert_eq!(e2.new_messages, Some(2));
        assert!(e2.body.contains(&format!(
            r#""messages":{{"$continues":"id1","$shared":1,"$new":[{m2},{m3}]}}"#
        )));
        assert!(!e2.body.contains("you are claude code"));

        // Another build's billing block changes neither the chain nor the shipped blocks.
        let other_billing = system.replace("2.1.1", "2.1.2");
        let third = body(&other_billing, &tools, &[m1, m2, m3, m2]);
        let e3 = encode(&mut c, Some("s"), "id3", "/v1/messages", &third);
        assert!(e3.contexts.is_empty());
        assert_eq!(e3.continues, Some(("id2".into(), 3)));
    }

    #[test]
    fn interleaved_requests_continue_the_longest_shared_prefix() {
        let mut c = Conversations::default();
        let main_sys = format!("[{}]", big("main"));
        let sub_sys = format!("[{}]", big("sub agent"));
        let tools = format!("[{}]", big("tool"));
        let a = r#"{"role":"user","content":"a"}"#;
        let b = r#"{"role":"assistant","content":"b"}"#;
        let task = r#"{"role":"user","content":"search the repo"}"#;
        let mut enc = |session: &str, id: &str, path: &str, raw: String| {
            let e = encode(&mut c, Some(session), id, path, &raw);
            e.continues
        };
        let main = enc("s", "m1", "/v1/messages", body(&main_sys, &tools, &[a]));
        assert_eq!(main, None);
        let sub = enc("s", "s1", "/v1/messages", body(&sub_sys, &tools, &[task]));
        assert_eq!(sub, None);
        let title = enc("s", "t1", "/v1/messages", body(&sub_sys, "[]", &[task]));
        assert_eq!(title, Some(("s1".into(), 1)));
        // count_tokens never continues a messages exchange (nor the reverse).
        let count = enc(
            "s",
            "c1",
            "/v1/messages/count_tokens",
            body(&main_sys, &tools, &[a, b]),
        );
        assert_eq!(count, None);
        let next = enc("s", "m2", "/v1/messages", body(&main_sys, &tools, &[a, b]));
        assert_eq!(next, Some(("m1".into(), 1)));
        // Another session never continues this one's.
        let other = enc("o", "x1", "/v1/messages", body(&main_sys, &tools, &[a, b]));
        assert_eq!(other, None);
    }

    #[test]
    fn a_message_that_only_lost_its_cache_marker_is_not_shipped_again() {
        let mut c = Conversations::default();
        let marked = r#"{"role":"user","content":[{"type":"text","text":"long","cache_control":{"type":"ephemeral"}}]}"#;
        let plain = r#"{"role":"user","content":[{"type":"text","text":"long"}]}"#;
        let reply = r#"{"role":"assistant","content":"ok"}"#;
        let next = r#"{"role":"user","content":[{"type":"text","text":"more","cache_control":{"type":"ephemeral"}}]}"#;
        encode(
            &mut c,
            Some("s"),
            "a",
            "/v1/messages",
            &body("[]", "[]", &[marked]),
        );
        let second = body("[]", "[]", &[plain, reply, next]);
        let e = encode(&mut c, Some("s"), "b", "/v1/messages", &second);
        assert_eq!(e.continues, Some(("a".into(), 1)));
        assert!(e.body.contains(&format!(
            r#""messages":{{"$continues":"a","$shared":1,"$uncached":[0],"$new":[{reply},{next}]}}"#
        )));
        assert_eq!(without_cache_markers(marked).as_deref(), Some(plain));
        assert_eq!(without_cache_markers(plain), None);
        // A marker that is not a flat trailing member is never taken out.
        let first = r#"{"content":[{"cache_control":{"type":"ephemeral"},"text":"x"}]}"#;
        assert_eq!(without_cache_markers(first), None);
        let nested = r#"{"content":[{"text":"x","cache_control":{"a":{"b":1}}}]}"#;
        assert_eq!(without_cache_markers(nested), None);
    }

    #[test]
    fn bodies_without_anything_to_replace_are_shipped_as_they_are() {
        let mut c = Conversations::default();
        let raw = r#"{"size":2,"json":{"model":"m","messages":[{"role":"user","content":"hi"}]}}"#;
        let e = encode(&mut c, Some("s"), "a", "/v1/messages", raw);
        assert!(matches!(e.body, Cow::Borrowed(b) if b == raw));
        for raw in [
            r#"{"size":3,"text":"not json"}"#,
            r#"{"size":3,"truncated":true,"base64":"AAAA"}"#,
            "not json",
        ] {
            assert_eq!(
                encode(&mut c, Some("s"), "b", "/v1/messages", raw).body,
                raw
            );
        }
        let other = r#"{"size":2,"json":{"messages":[{"role":"user","content":"hi"}]}}"#;
        assert_eq!(
            encode(&mut c, Some("s"), "c", "/v1/complete", other).body,
            other
        );
    }
}
