//! When two messages are the same message. Claude Code re-sends the whole conversation on
//! every request and, between two requests, moves its `cache_control` marker to the newest
//! message and spells a message's content as one text block while it carries the marker, as a
//! plain string after: the same message all along. [`key`] is equal for such spellings;
//! [`exact_key`] only for the same JSON.

use serde_json::Value;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// How Claude Code's own notes to the model start: text it adds to a user message, not the
/// user's (or the calling agent's) words.
pub const REMINDER: &str = "<system-reminder>";

/// A message's identity: equal for two spellings of the same message (kept in memory only).
pub fn key(message: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    hash_value(message, &mut h, true);
    h.finish()
}

/// [`key`] of a message's JSON text; `None` when it is not JSON.
pub fn key_of_text(message: &str) -> Option<u64> {
    serde_json::from_str::<Value>(message).ok().map(|v| key(&v))
}

/// A JSON value's identity as it is, `cache_control` and spelling included.
pub fn exact_key(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    hash_value(v, &mut h, false);
    h.finish()
}

fn hash_value(v: &Value, h: &mut DefaultHasher, loose: bool) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => (2u8, n.to_string()).hash(h),
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(a) => {
            (4u8, a.len()).hash(h);
            a.iter().for_each(|x| hash_value(x, h, loose));
        }
        Value::Object(o) => {
            5u8.hash(h);
            for (k, x) in o.iter().filter(|(k, _)| !loose || *k != "cache_control") {
                k.hash(h);
                match (k.as_str(), single_text(x)) {
                    ("content", Some(text)) if loose => (3u8, text).hash(h),
                    _ => hash_value(x, h, loose),
                }
            }
        }
    }
}

/// The text of a content list that is one text block and nothing else.
fn single_text(content: &Value) -> Option<&str> {
    let [block] = content.as_array()?.as_slice() else {
        return None;
    };
    let o = block.as_object()?;
    let only_text = o
        .keys()
        .all(|k| matches!(k.as_str(), "type" | "text" | "cache_control"));
    (only_text && o.get("type")? == "text").then(|| o.get("text")?.as_str())?
}

/// Whether a text is one of Claude Code's notes to the model (`<system-reminder>…`).
pub fn is_reminder(text: &str) -> bool {
    text.trim_start().starts_with(REMINDER)
}

/// What the sender of a message wrote in it: its text blocks (or string content) other than
/// Claude Code's reminders, joined by newlines, trimmed. A sub-agent's first message is the
/// calling agent's prompt, after the reminders Claude Code puts before it.
pub fn own_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) if !is_reminder(s) => s.trim().to_string(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .filter(|t| !is_reminder(t))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string(),
        _ => String::new(),
    }
}

/// The key a prompt is matched by: the trimmed text, hashed.
pub fn text_key(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.trim().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_moved_cache_mark_or_a_string_content_is_the_same_message() {
        let marked = json!({"role": "user", "content": [
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]});
        let plain = json!({"role": "user", "content": "hi"});
        let block = json!({"role": "user", "content": [{"type": "text", "text": "hi"}]});
        assert_eq!(key(&marked), key(&plain));
        assert_eq!(key(&block), key(&plain));
        assert_ne!(exact_key(&marked), exact_key(&plain));
        assert_ne!(key(&json!({"role": "user", "content": "ho"})), key(&plain));
        assert_ne!(
            key(&json!({"role": "assistant", "content": "hi"})),
            key(&plain),
            "the role is part of the message"
        );
        // A marker deeper in the message (a tool result's) does not count either.
        let result = |marker: bool| {
            let mut b = json!({"type": "tool_result", "tool_use_id": "t", "content": "ok"});
            if marker {
                b["cache_control"] = json!({"type": "ephemeral", "ttl": "1h"});
            }
            json!({"role": "user", "content": [b]})
        };
        assert_eq!(key(&result(true)), key(&result(false)));
        assert_eq!(key_of_text(&plain.to_string()), Some(key(&plain)));
        assert_eq!(key_of_text("not json"), None);
    }

    #[test]
    fn own_text_leaves_out_claude_codes_reminders() {
        // As Claude Code 2.1.332 starts a sub-agent: reminders first, then the prompt.
        let first = json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nAttribution for git commits…</system-reminder>"},
            {"type": "text", "text": "find the config files\n", "cache_control": {"type": "ephemeral"}}]});
        assert_eq!(own_text(&first), "find the config files");
        assert_eq!(
            own_text(&json!({"role": "user", "content": " do it "})),
            "do it"
        );
        assert_eq!(
            own_text(
                &json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]})
            ),
            ""
        );
        assert_eq!(text_key(" a\n"), text_key("a"));
    }
}
