//! A long Claude Code session, generated the way the CLI talks to the API, written as traffic
//! records; and a reader that rebuilds every request body from what Seq received (conversation
//! deltas + references + context events), as a person following docs/seq-events.md would.
//!
//! The session (shapes taken from real Claude Code 2.1 traffic): a system prompt of a small
//! `x-anthropic-billing-header` block and a ~14 KB block, 18 tool definitions of 1-3 KB, a
//! main conversation of `turns` tool-using turns whose tool results (file reads) make the
//! request grow past 1 MB, the cache marker moved to the last message every turn; interleaved
//! with a title request (its own system prompt, no tools), two parallel Task sub-agents (their
//! own system prompt and tools, each started by a `Task` call of the main turn before, its
//! prompt as their first message) every ten turns, a burst of 26 parallel `count_tokens` calls
//! (`/context`), a retried request after an aborted stream, and a billing block that changes
//! build half way.
#![allow(dead_code)]

use seq_standin::StoredEvent;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use traffic_record::{
    Body, KIND, Outcome, Request, Response, SCHEMA_VERSION, Sse, SseEvent, TrafficRecord, Usage,
};

pub const SESSION: &str = "7d2c1f00-5e55-4a11-9000-00000000c0de";
pub const MODEL: &str = "claude-sonnet-4-5-20250929";

/// Deterministic text of about `len` bytes (code-like, with escapes and non-ASCII).
fn text(seed: u64, len: usize) -> String {
    const WORDS: &[&str] = &[
        "fn ",
        "let ",
        "match ",
        "{\n",
        "}\n",
        "    ",
        "self.",
        "\"quoted\"",
        "é",
        "→",
        "🦀",
        "\t",
        "\\path\\",
        "return ",
        "Option<T>",
        "// why\n",
        "0x1f",
        "<tag/>",
        "a",
        "bc",
    ];
    let mut s = String::with_capacity(len + 8);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
    }
    s
}

fn billing(version: &str) -> Value {
    json!({"type": "text", "text": format!("x-anthropic-billing-header: cc_version={version}; cc_entrypoint=cli;")})
}

fn tool(i: usize) -> Value {
    json!({
        "name": format!("Tool{i}"),
        "description": text(100 + i as u64, 800 + (i * 397) % 2000),
        "input_schema": {
            "type": "object",
            "properties": {"file_path": {"type": "string", "description": "absolute path"},
                           "limit": {"type": "number"}},
            "required": ["file_path"],
            "additionalProperties": false,
            "$schema": "http://json-schema.org/draft-07/schema#"
        }
    })
}

/// One exchange to write: path, request JSON, response message, outcome.
struct Call {
    path: &'static str,
    request: Value,
    reply: Value,
    outcome: Outcome,
}

fn reply_message(n: u64, content: Value, stop: &str) -> Value {
    json!({
        "id": format!("msg_{n:024}"),
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 900,
                  "cache_read_input_tokens": 20_000 + n * 1_000, "output_tokens": 150,
                  "cache_creation": {"ephemeral_5m_input_tokens": 900, "ephemeral_1h_input_tokens": 0}}
    })
}

/// With Claude Code's cache marker on the last block of the last message.
fn marked(messages: &[Value]) -> Vec<Value> {
    let mut out = messages.to_vec();
    if let Some(Value::Array(blocks)) = out.last_mut().and_then(|m| m.get_mut("content"))
        && let Some(Value::Object(b)) = blocks.last_mut()
    {
        b.insert("cache_control".into(), json!({"type": "ephemeral"}));
    }
    out
}

fn messages_request(system: &Value, tools: &Value, messages: &[Value]) -> Value {
    json!({
        "model": MODEL,
        "messages": marked(messages),
        "system": system,
        "tools": tools,
        "metadata": {"user_id": format!("user_abc_account__session_{SESSION}")},
        "max_tokens": 32000,
        "stream": true
    })
}

/// The prompt of sub-agent `k` started at main turn `turn`.
pub fn subagent_prompt(k: usize, turn: usize) -> String {
    format!("search the repo for rename races, part {k} of turn {turn}")
}

/// Whether main turn `turn` (not the last) starts two sub-agents.
pub fn starts_subagents(turn: usize) -> bool {
    turn % 10 == 5
}

/// The calls of the session, in log order.
fn calls(turns: usize) -> Vec<Call> {
    let main_system = |v: &str| json!([billing(v), {"type": "text", "text": format!("You are Claude Code, Anthropic's official CLI for Claude.\n{}", text(1, 14_000)), "cache_control": {"type": "ephemeral"}}]);
    let sub_system = json!([billing("2.1.1.a1b"), {"type": "text", "text": format!("You are an agent for Claude Code.\n{}", text(2, 6_000))}]);
    let tools = Value::Array((0..18).map(tool).collect());
    let sub_tools = Value::Array((0..10).map(tool).collect());
    let mut calls = Vec::new();
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        n
    };

    // The title request, under its own small system prompt.
    calls.push(Call {
        path: "/v1/messages",
        request: json!({"model": "claude-haiku-4-5-20251001", "max_tokens": 512,
            "messages": [{"role": "user", "content": "fix the flaky test in tail.rs"}],
            "system": [billing("2.1.1.a1b"), {"type": "text", "text": "Summarize this coding conversation in under 50 characters."}],
            "stream": true}),
        reply: reply_message(next(), json!([{"type": "text", "text": "Fix flaky tail test"}]), "end_turn"),
        outcome: Outcome::Complete,
    });

    let mut messages = vec![
        json!({"role": "user", "content": [{"type": "text", "text": "fix the flaky test in tail.rs"}]}),
    ];
    for turn in 0..turns {
        let version = if turn < turns / 2 {
            "2.1.1.a1b"
        } else {
            "2.1.2.c3d"
        };
        let system = main_system(version);
        let last = turn + 1 == turns;
        let m = next();
        let content = if last {
            json!([{"type": "text", "text": "Done: the test no longer races the rename."}])
        } else if starts_subagents(turn) {
            let call = |k: usize| {
                json!({"type": "tool_use", "id": format!("toolu_{m:020}_{k}"), "name": "Task",
                       "input": {"description": format!("Search part {k}"), "prompt": subagent_prompt(k, turn), "subagent_type": "general-purpose"}})
            };
            json!([{"type": "text", "text": "Asking two agents."}, call(0), call(1)])
        } else {
            json!([{"type": "text", "text": format!("Reading file {turn}.")},
                   {"type": "tool_use", "id": format!("toolu_{m:020}"), "name": "Tool0",
                    "input": {"file_path": format!("/src/file{turn}.rs")}}])
        };
        let request = messages_request(&system, &tools, &messages);
        if turn == turns / 3 {
            // The stream broke; Claude Code sent the same request again.
            calls.push(Call {
                path: "/v1/messages",
                request: request.clone(),
                reply: reply_message(m, json!([]), "end_turn"),
                outcome: Outcome::UpstreamAborted,
            });
        }
        calls.push(Call {
            path: "/v1/messages",
            request,
            reply: reply_message(
                m,
                content.clone(),
                if last { "end_turn" } else { "tool_use" },
            ),
            outcome: Outcome::Complete,
        });
        if last {
            break;
        }
        messages.push(json!({"role": "assistant", "content": content}));
        let result_len = 12_000 + (turn * 7_919) % 30_000;
        if starts_subagents(turn) {
            let result = |k: usize| {
                json!({"type": "tool_result", "tool_use_id": format!("toolu_{m:020}_{k}"),
                       "content": text(1_000 + turn as u64 + k as u64, result_len / 2)})
            };
            messages.push(json!({"role": "user", "content": [result(0), result(1)]}));
        } else {
            messages.push(json!({"role": "user", "content": [{"type": "tool_result",
                "tool_use_id": format!("toolu_{m:020}"), "content": text(1_000 + turn as u64, result_len)}]}));
        }

        if starts_subagents(turn) {
            // The two Task sub-agents run in parallel: their turns interleave.
            let mut subs: Vec<Vec<Value>> = (0..2)
                .map(|k| vec![json!({"role": "user", "content": [{"type": "text", "text": subagent_prompt(k, turn)}]})])
                .collect();
            for _step in 0..3 {
                for sub in subs.iter_mut() {
                    let s = next();
                    let content = json!([{"type": "tool_use", "id": format!("toolu_{s:020}"), "name": "Tool1", "input": {"file_path": "/src"}}]);
                    calls.push(Call {
                        path: "/v1/messages",
                        request: messages_request(&sub_system, &sub_tools, sub),
                        reply: reply_message(s, content.clone(), "tool_use"),
                        outcome: Outcome::Complete,
                    });
                    sub.push(json!({"role": "assistant", "content": content}));
                    sub.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": format!("toolu_{s:020}"), "content": text(s, 3_000)}]}));
                }
            }
        }
        if turn == 10 {
            // `/context`: one count_tokens call per tool, all at once.
            for i in 0..26 {
                let t = tool(i % 18);
                calls.push(Call {
                    path: "/v1/messages/count_tokens",
                    request: json!({"model": MODEL, "messages": [{"role": "user", "content": "foo"}], "tools": [t]}),
                    reply: json!({"input_tokens": 400 + i}),
                    outcome: Outcome::Complete,
                });
            }
        }
    }
    calls
}

fn sse_of(message: &Value) -> Sse {
    let raw = |v: Value| serde_json::value::to_raw_value(&v).unwrap();
    let mut events = vec![SseEvent {
        event: "message_start".into(),
        data: raw(
            json!({"type": "message_start", "message": {"id": message["id"], "type": "message", "role": "assistant", "model": MODEL, "content": [], "stop_reason": null, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        ),
        t_ms: Some(900.0),
    }];
    for (i, block) in message["content"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        events.push(SseEvent {
            event: "content_block_start".into(),
            data: raw(json!({"type": "content_block_start", "index": i, "content_block": block})),
            t_ms: Some(1_000.0 + i as f64 * 500.0),
        });
        for piece in 0..8 {
            events.push(SseEvent {
                event: "content_block_delta".into(),
                data: raw(json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": format!("piece {piece} ")}})),
                t_ms: Some(1_100.0 + i as f64 * 500.0 + piece as f64 * 20.0),
            });
        }
        events.push(SseEvent {
            event: "content_block_stop".into(),
            data: raw(json!({"type": "content_block_stop", "index": i})),
            t_ms: Some(1_300.0 + i as f64 * 500.0),
        });
    }
    events.push(SseEvent {
        event: "message_delta".into(),
        data: raw(json!({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"]}, "usage": message["usage"]})),
        t_ms: Some(4_400.0),
    });
    events.push(SseEvent {
        event: "message_stop".into(),
        data: raw(json!({"type": "message_stop"})),
        t_ms: Some(4_500.0),
    });
    Sse {
        events,
        message: Some(raw(message.clone())),
    }
}

/// The session as traffic-log lines, with at least `turns` main turns.
pub fn session_lines(turns: usize) -> Vec<String> {
    let headers = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    calls(turns)
        .into_iter()
        .enumerate()
        .map(|(i, call)| {
            let request_json = serde_json::to_string(&call.request).unwrap();
            let streamed = call.path == "/v1/messages";
            let usage: Option<Usage> = call
                .reply
                .get("usage")
                .map(|u| serde_json::from_value(u.clone()).unwrap());
            let (body, sse) = if streamed {
                (
                    Body {
                        size: 4_000,
                        ..Body::default()
                    },
                    Some(sse_of(&call.reply)),
                )
            } else {
                let text = serde_json::to_string(&call.reply).unwrap();
                (
                    Body {
                        size: text.len() as u64,
                        json: Some(serde_json::value::RawValue::from_string(text).unwrap()),
                        ..Body::default()
                    },
                    None,
                )
            };
            let started = 1_796_290_000u64 + i as u64 * 7;
            let time = |s: u64, ms: u64| {
                humantime::format_rfc3339_nanos(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(s * 1000 + ms),
                )
                .to_string()
            };
            let complete = call.outcome == Outcome::Complete;
            let record = TrafficRecord {
                v: SCHEMA_VERSION,
                kind: KIND.into(),
                id: format!(
                    "{:016x}{:016x}",
                    0xc0de_0000_0000_0000u64 + i as u64,
                    i as u64 * 0x9e37_79b9 + 1
                ),
                started_at: time(started, 0),
                ended_at: time(started, 4_500),
                duration_ms: 4_500.0,
                ttfb_ms: Some(900.0),
                outcome: call.outcome,
                error: (!complete).then(|| "upstream closed the stream".to_string()),
                session_id: Some(SESSION.into()),
                model: call.request["model"].as_str().map(str::to_string),
                stream: streamed,
                stop_reason: call.reply["stop_reason"].as_str().map(str::to_string),
                usage,
                degraded: None,
                request: Request {
                    method: "POST".into(),
                    path: call.path.into(),
                    query: Some("beta=true".into()),
                    headers: headers(&[
                        ("content-type", "application/json"),
                        ("x-api-key", traffic_record::REDACTED),
                        ("x-claude-code-session-id", SESSION),
                        ("user-agent", "claude-cli/2.1.1 (external, cli)"),
                    ]),
                    body: Body {
                        size: request_json.len() as u64,
                        json: Some(serde_json::value::RawValue::from_string(request_json).unwrap()),
                        ..Body::default()
                    },
                },
                response: Some(Response {
                    status: 200,
                    headers: headers(&[
                        ("request-id", "req_011CUoTest"),
                        ("anthropic-ratelimit-unified-status", "allowed"),
                        ("anthropic-ratelimit-unified-5h-utilization", "0.31"),
                        ("anthropic-ratelimit-unified-5h-reset", "1796299200"),
                    ]),
                    body,
                    sse,
                }),
            };
            serde_json::to_string(&record).unwrap()
        })
        .collect()
}

/// Rebuilds request bodies and responses from the events Seq received.
pub struct Rebuilder<'a> {
    /// First main event of each exchange.
    mains: HashMap<String, &'a StoredEvent>,
    /// Body parts by (exchange id, body name), part number → text.
    parts: HashMap<(String, String), BTreeMap<i64, &'a str>>,
    /// Context blocks by digest.
    contexts: HashMap<String, String>,
    memo: HashMap<String, Value>,
    /// How many lookups (one Seq query each) rebuilding took.
    pub queries: usize,
}

impl<'a> Rebuilder<'a> {
    pub fn new(events: &'a [StoredEvent]) -> Self {
        let mut mains = HashMap::new();
        let mut parts: HashMap<(String, String), BTreeMap<i64, &'a str>> = HashMap::new();
        let mut context_parts: HashMap<String, BTreeMap<i64, &'a str>> = HashMap::new();
        let mut contexts = HashMap::new();
        for e in events {
            if let Some(hash) = e.attr_str("claude.context.hash") {
                match e.attr_i64("claude.body.part") {
                    Some(p) => {
                        context_parts
                            .entry(hash.to_string())
                            .or_default()
                            .insert(p, e.body_str().unwrap());
                    }
                    None => {
                        contexts.insert(hash.to_string(), e.body_str().unwrap().to_string());
                    }
                }
                continue;
            }
            let Some(id) = e.attr_str("claude.exchange.id") else {
                continue;
            };
            match e.attr_str("claude.body.name") {
                Some(name) => {
                    parts
                        .entry((id.to_string(), name.to_string()))
                        .or_default()
                        .insert(
                            e.attr_i64("claude.body.part").unwrap(),
                            e.body_str().unwrap(),
                        );
                }
                None => {
                    mains.entry(id.to_string()).or_insert(e);
                }
            }
        }
        for (hash, p) in context_parts {
            contexts.insert(hash, p.values().copied().collect());
        }
        Rebuilder {
            mains,
            parts,
            contexts,
            memo: HashMap::new(),
            queries: 0,
        }
    }

    pub fn main(&self, id: &str) -> &'a StoredEvent {
        self.mains
            .get(id)
            .unwrap_or_else(|| panic!("no main event for {id}"))
    }

    /// A body of exchange `id` as shipped: inline, or its parts joined.
    pub fn shipped(&self, id: &str, name: &str) -> Option<String> {
        let main = self.main(id);
        if let Some(inline) = main.attr_str(&format!("claude.{name}")) {
            return Some(inline.to_string());
        }
        let declared = main.attr_i64(&format!("claude.{name}.parts"))?;
        let parts = &self.parts[&(id.to_string(), name.to_string())];
        assert_eq!(parts.len() as i64, declared, "{id} {name}: parts missing");
        Some(parts.values().copied().collect())
    }

    fn context(&mut self, v: &Value) -> Value {
        self.queries += 1;
        let hash = v.as_str().expect("a digest");
        let text = self
            .contexts
            .get(hash)
            .unwrap_or_else(|| panic!("context {hash} never shipped"));
        serde_json::from_str(text).unwrap()
    }

    /// The request body (`{"size":…,"json":…}`) of exchange `id`, rebuilt.
    pub fn request_body(&mut self, id: &str) -> Value {
        if let Some(v) = self.memo.get(id) {
            return v.clone();
        }
        let text = self.shipped(id, "request.body").expect("a request body");
        let mut body: Value = serde_json::from_str(&text).unwrap();
        if self.main(id).attr_str("claude.request.encoding") == Some("delta") {
            let json = body.get_mut("json").expect("a delta is of a JSON body");
            for field in ["system", "tools"] {
                let Some(refs) = json.get(field).and_then(|v| v.get("$context")).cloned() else {
                    continue;
                };
                json[field] = match refs {
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .map(|item| match item {
                                Value::String(_) => self.context(item),
                                inline => inline.clone(),
                            })
                            .collect(),
                    ),
                    single => self.context(&single),
                };
            }
            if let Some(delta) = json.get("messages").filter(|m| m.is_object()).cloned() {
                let from = delta["$continues"].as_str().unwrap();
                let shared = delta["$shared"].as_u64().unwrap() as usize;
                self.queries += 1;
                let earlier = self.request_body(from);
                let mut messages: Vec<Value> =
                    earlier["json"]["messages"].as_array().unwrap()[..shared].to_vec();
                for i in delta
                    .get("$uncached")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    strip_cache_control(&mut messages[i.as_u64().unwrap() as usize]);
                }
                messages.extend(delta["$new"].as_array().unwrap().iter().cloned());
                json["messages"] = Value::Array(messages);
            }
        }
        self.memo.insert(id.to_string(), body.clone());
        body
    }
}

/// Checks that every request body and response message of `lines` comes back from `events`.
pub fn assert_rebuilt(events: &[StoredEvent], lines: &[String]) -> usize {
    let mut rb = Rebuilder::new(events);
    for (id, body, message) in expected(lines) {
        let rebuilt = rb.request_body(&id);
        let original: Value = serde_json::from_str(&body).unwrap();
        assert!(rebuilt == original, "{id}: rebuilt request body differs");
        // The record keeps the body's bytes: the rebuilt one has the same text.
        assert!(
            serde_json::to_string(&rebuilt).unwrap() == body,
            "{id}: rebuilt request body text differs"
        );
        if let Some(message) = message {
            assert_eq!(
                rb.shipped(&id, "response.message").as_deref(),
                Some(message.as_str()),
                "{id}: response message"
            );
        }
    }
    rb.queries
}

pub fn main_events(events: &[StoredEvent]) -> Vec<&StoredEvent> {
    events
        .iter()
        .filter(|e| e.attributes.contains_key("claude.outcome"))
        .collect()
}

/// JSON size of an event as Seq stores it (message + properties).
pub fn event_size(e: &StoredEvent) -> usize {
    serde_json::to_string(&(&e.body, &e.attributes))
        .unwrap()
        .len()
}

/// Removes every `cache_control` member, at any depth (docs/seq-events.md, `$uncached`).
pub fn strip_cache_control(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.shift_remove("cache_control");
            map.values_mut().for_each(strip_cache_control);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_cache_control),
        _ => {}
    }
}

/// `(exchange id, request.body text, sse.message text)` of each record line.
pub fn expected(lines: &[String]) -> Vec<(String, String, Option<String>)> {
    lines
        .iter()
        .map(|l| {
            let r: TrafficRecord = serde_json::from_str(l).unwrap();
            let body = serde_json::to_string(&r.request.body).unwrap();
            let message = r
                .response
                .and_then(|resp| resp.sse)
                .and_then(|s| s.message)
                .map(|m| m.get().to_string());
            (r.id, body, message)
        })
        .collect()
}
