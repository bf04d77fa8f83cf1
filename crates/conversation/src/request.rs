//! What one exchange tells about itself: its route, the model it is priced as, and the facts
//! [`crate::Sessions`] decides its sender from (its system prompt's identity, whether it
//! carries tools, its first message, the sub-agents its response starts).

use crate::message;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The tools that start a sub-agent: `Agent` (Claude Code 2.1), `Task` (before).
pub const AGENT_TOOLS: [&str; 2] = ["Agent", "Task"];

/// How Claude Code's per-build billing block starts: it differs between versions and entry
/// points (and between the main conversation and sub-agents), so it never counts in a system
/// prompt's identity.
const BILLING_MARK: &str = "x-anthropic-billing-header:";

/// What an exchange is for, from its request path (the query string is not part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// `POST /v1/messages`: a model call.
    Messages,
    /// `POST /v1/messages/count_tokens`: counts a prompt's tokens (`/context` sends bursts).
    CountTokens,
    /// Anything else (`/api/hello`, `/v1/models`, ...).
    #[default]
    Other,
}

impl Route {
    pub fn of(path: &str) -> Route {
        match path {
            "/v1/messages" => Route::Messages,
            "/v1/messages/count_tokens" => Route::CountTokens,
            _ => Route::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Messages => "messages",
            Route::CountTokens => "count_tokens",
            Route::Other => "other",
        }
    }
}

/// The model an exchange is priced as: the record's `model` (the proxy writes the response's,
/// which is the model that answered and billed, and the request's when no response said),
/// else the request body's `model`.
pub fn pricing_model<'a>(record: Option<&'a str>, request: Option<&'a str>) -> Option<&'a str> {
    record.or(request)
}

/// A sub-agent call in a response: a `tool_use` of one of [`AGENT_TOOLS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The `tool_use` id (`toolu_…`).
    pub tool_use_id: String,
    /// Its `description` (a few words Claude Code shows) and `subagent_type`.
    pub description: String,
    pub kind: String,
    /// [`message::text_key`] of its `prompt`: the sub-agent's first message says it.
    pub prompt: u64,
}

/// What one exchange says about who sent it; built from the JSON text of the record's request
/// body members (and response message), however a reader found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub route: Route,
    /// The request has a non-empty `tools` list.
    pub has_tools: bool,
    /// Identity of the `system` prompt: its text but the billing block ([`Facts::system_text`]).
    pub system: Option<u64>,
    /// [`message::key`] of the first message: the conversation the request continues.
    pub conversation: Option<u64>,
    /// [`message::text_key`] of the first message's own text ([`message::own_text`]).
    pub prompt: Option<u64>,
    /// Sub-agents the response starts.
    pub launches: Vec<Launch>,
}

impl Facts {
    pub fn new(route: Route) -> Facts {
        Facts {
            route,
            ..Facts::default()
        }
    }

    /// The JSON text of `system` (a string or a list of blocks). Its identity is a digest of
    /// that text without Claude Code's billing block, which Claude Code puts first: only that
    /// block is parsed, so a system prompt of tens of KB costs one pass of BLAKE3.
    pub fn system_text(&mut self, text: &str) {
        let text = text.trim();
        let mut rest = text;
        if let Some(inner) = text.strip_prefix('[') {
            let mut blocks = serde_json::Deserializer::from_str(inner).into_iter::<&RawValue>();
            if let Some(Ok(first)) = blocks.next()
                && is_billing(first.get())
            {
                rest = &inner[blocks.byte_offset()..];
            }
        } else if is_billing(text) {
            rest = "";
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&blake3::hash(rest.as_bytes()).as_bytes()[..8]);
        self.system = Some(u64::from_le_bytes(id));
    }

    /// The JSON text of `tools`.
    pub fn tools_text(&mut self, text: &str) {
        let inner = text.trim().strip_prefix('[').map(str::trim_start);
        self.has_tools = inner.is_some_and(|rest| !rest.starts_with(']'));
    }

    /// The first element of `messages`, parsed.
    pub fn first_message(&mut self, message: &Value) {
        self.conversation = Some(message::key(message));
        let own = message::own_text(message);
        self.prompt = (!own.is_empty()).then(|| message::text_key(&own));
    }

    /// [`Facts::first_message`] from its JSON text.
    pub fn first_message_text(&mut self, text: &str) {
        if let Ok(message) = serde_json::from_str::<Value>(text) {
            self.first_message(&message);
        }
    }

    /// The response's message (reassembled from the stream, or the JSON body): the sub-agent
    /// calls in its content.
    pub fn response_message_text(&mut self, text: &str) {
        // Most responses call no tool: not worth reading.
        if !text.contains("\"tool_use\"") {
            return;
        }
        #[derive(Deserialize)]
        struct Message<'a> {
            #[serde(borrow, default)]
            content: Option<Vec<Block<'a>>>,
        }
        #[derive(Deserialize)]
        struct Block<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
            #[serde(borrow, default)]
            id: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            name: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            input: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Input<'a> {
            #[serde(borrow, default)]
            prompt: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            description: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            subagent_type: Option<Cow<'a, str>>,
        }
        let Ok(Message {
            content: Some(blocks),
        }) = serde_json::from_str::<Message<'_>>(text)
        else {
            return;
        };
        for b in blocks {
            let agent_call =
                b.kind == "tool_use" && b.name.as_deref().is_some_and(|n| AGENT_TOOLS.contains(&n));
            let Some(input) = b.input.filter(|_| agent_call) else {
                continue;
            };
            let Ok(Input {
                prompt: Some(prompt),
                description,
                subagent_type,
            }) = serde_json::from_str::<Input<'_>>(input.get())
            else {
                continue;
            };
            self.launches.push(Launch {
                tool_use_id: b.id.unwrap_or_default().into_owned(),
                description: description.unwrap_or_default().into_owned(),
                kind: subagent_type.unwrap_or_default().into_owned(),
                prompt: message::text_key(&prompt),
            });
        }
    }
}

/// Whether a system block (its JSON text) is Claude Code's billing block.
fn is_billing(block: &str) -> bool {
    block[..floor_char_boundary(block, 160)].contains(BILLING_MARK)
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_are_exact_paths() {
        assert_eq!(Route::of("/v1/messages"), Route::Messages);
        assert_eq!(Route::of("/v1/messages/count_tokens"), Route::CountTokens);
        for other in ["/v1/messages/batches", "/api/hello", "/v1/models", "/"] {
            assert_eq!(Route::of(other), Route::Other, "{other}");
        }
    }

    #[test]
    fn an_exchange_is_priced_as_the_model_that_answered() {
        // A refusal fallback answers with another model: that one bills.
        assert_eq!(
            pricing_model(Some("claude-sonnet-4-5"), Some("claude-opus-4-5")),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            pricing_model(None, Some("claude-opus-4-5")),
            Some("claude-opus-4-5")
        );
        assert_eq!(pricing_model(None, None), None);
    }

    #[test]
    fn the_billing_block_is_not_part_of_a_system_prompts_identity() {
        let identity = |system: Value| {
            let mut f = Facts::default();
            f.system_text(&system.to_string());
            f.system.unwrap()
        };
        let billing = |v: &str| json!({"type": "text", "text": format!("x-anthropic-billing-header: cc_version={v}; cc_entrypoint=cli;")});
        let prompt = json!({"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}});
        assert_eq!(
            identity(json!([billing("2.1.332.d2f"), prompt])),
            identity(json!([billing("2.1.332.4f9"), prompt]))
        );
        assert_ne!(
            identity(json!([billing("2.1.332.d2f"), prompt])),
            identity(
                json!([billing("2.1.332.d2f"), {"type": "text", "text": "You are an agent."}])
            )
        );
        assert_ne!(identity(json!("one string")), identity(json!("another")));
        // Only a first block is Claude Code's billing block.
        assert_ne!(
            identity(json!([prompt, billing("2.1.332.d2f")])),
            identity(json!([prompt, billing("2.1.332.4f9")]))
        );
    }

    #[test]
    fn facts_read_tools_first_message_and_agent_calls() {
        let mut f = Facts::new(Route::Messages);
        f.tools_text(" [ ] ");
        assert!(!f.has_tools);
        f.tools_text(r#"[{"name":"Bash"}]"#);
        assert!(f.has_tools);
        f.first_message_text(
            r#"{"role":"user","content":[{"type":"text","text":"<system-reminder>x</system-reminder>"},{"type":"text","text":"find it"}]}"#,
        );
        assert_eq!(f.prompt, Some(message::text_key("find it")));
        let response = json!({"role": "assistant", "content": [
            {"type": "text", "text": "Delegating."},
            {"type": "tool_use", "id": "toolu_1", "name": "Agent", "input": {"description": "Find it", "prompt": " find it ", "subagent_type": "general-purpose"}},
            {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"command": "ls", "prompt": "not an agent"}},
            {"type": "tool_use", "id": "toolu_3", "name": "Task", "input": {"prompt": "other"}}
        ]});
        f.response_message_text(&response.to_string());
        assert_eq!(
            f.launches,
            [
                Launch {
                    tool_use_id: "toolu_1".into(),
                    description: "Find it".into(),
                    kind: "general-purpose".into(),
                    prompt: message::text_key("find it"),
                },
                Launch {
                    tool_use_id: "toolu_3".into(),
                    description: String::new(),
                    kind: String::new(),
                    prompt: message::text_key("other"),
                }
            ]
        );
    }
}
