//! What a Claude Code session is, read from the log: its totals (for `sessions`), and its
//! exchanges as a conversation where each request keeps only what it added to the previous
//! request of the same conversation (Claude Code re-sends the whole history every turn).

use pricing::{PriceTable, Tokens};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use crate::Error;
use crate::log::{Head, Index, exact_hash, value_hash};

/// One line of `sessions` (and one element of `sessions --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub session_id: String,
    pub started_at: String,
    pub ended_at: String,
    pub duration_ms: f64,
    pub exchanges: usize,
    /// The user's own inputs in the main conversation (tool results and retries not counted).
    pub turns: usize,
    pub models: Vec<String>,
    pub tokens: TokenTotals,
    /// USD, from the price table shared with the shipper; exchanges of unknown models add 0.
    pub cost_usd: f64,
    /// Exchanges with usage whose model the price table does not know.
    pub unpriced_exchanges: usize,
    /// Exchanges with an error status or an outcome other than `complete`.
    pub errors: usize,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct TokenTotals {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl TokenTotals {
    fn add(&mut self, t: &Tokens) {
        self.input += t.input;
        self.output += t.output;
        self.cache_read += t.cache_read;
        self.cache_write += t.cache_write_5m + t.cache_write_1h;
    }
}

/// The tokens and cost of one exchange (`None` cost: unknown model or no usage).
pub fn tokens_and_cost(head: &Head, prices: &PriceTable) -> (Tokens, Option<f64>) {
    let Some(usage) = &head.usage else {
        return (Tokens::default(), None);
    };
    let tokens = Tokens::from_usage(usage);
    // The response's model, with every billing rule the shipper applies.
    let cost = head
        .model
        .as_deref()
        .and_then(|m| prices.price(m, usage).ok())
        .map(|c| c.usd);
    (tokens, cost)
}

/// The exchanges of each session, oldest first, keyed by session id.
pub fn by_session(index: &Index) -> BTreeMap<&str, Vec<&Head>> {
    let mut sessions: BTreeMap<&str, Vec<&Head>> = BTreeMap::new();
    for head in &index.heads {
        if let Some(id) = head.session_id.as_deref() {
            sessions.entry(id).or_default().push(head);
        }
    }
    for heads in sessions.values_mut() {
        heads.sort_by(|a, b| a.start.cmp(&b.start).then(a.started_at.cmp(&b.started_at)));
    }
    sessions
}

/// Every session, newest first.
pub fn summaries(index: &Index, prices: &PriceTable) -> Vec<Summary> {
    let mut out: Vec<(Option<SystemTime>, Summary)> = by_session(index)
        .into_iter()
        .map(|(id, heads)| (heads[0].start, summarize(id, &heads, prices)))
        .collect();
    // By time, not by text: `10:00:00Z` is before `10:00:00.5Z`.
    out.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.started_at.cmp(&a.1.started_at)));
    out.into_iter().map(|(_, s)| s).collect()
}

fn is_conversation(h: &Head) -> bool {
    h.path.starts_with("/v1/messages") && !h.path.ends_with("/count_tokens") && h.thread != 0
}

/// The main conversation of a session: the one with most exchanges, then the biggest request.
pub fn main_thread(heads: &[&Head]) -> u64 {
    let mut threads: HashMap<u64, (usize, u64)> = HashMap::new();
    for h in heads.iter().filter(|h| is_conversation(h)) {
        let t = threads.entry(h.thread).or_default();
        t.0 += 1;
        t.1 = t.1.max(h.request_size);
    }
    threads
        .into_iter()
        .max_by_key(|(_, v)| *v)
        .map(|(k, _)| k)
        .unwrap_or(0)
}

pub fn summarize(id: &str, heads: &[&Head], prices: &PriceTable) -> Summary {
    let main = main_thread(heads);
    let (mut turns, mut longest) = (0, 0);
    let mut tokens = TokenTotals::default();
    let (mut cost, mut unpriced, mut errors) = (0.0, 0, 0);
    let mut models: Vec<String> = Vec::new();
    for h in heads {
        if h.thread == main && is_conversation(h) {
            if h.ends_with_prompt && h.messages > longest {
                turns += 1;
            }
            longest = longest.max(h.messages);
        }
        let (t, c) = tokens_and_cost(h, prices);
        tokens.add(&t);
        match c {
            Some(usd) => cost += usd,
            None if h.usage.is_some() => unpriced += 1,
            None => {}
        }
        errors += usize::from(h.is_error());
        if let Some(m) = &h.model
            && !models.contains(m)
        {
            models.push(m.clone());
        }
    }
    let first = heads.first().expect("a session has an exchange");
    let last_end = heads
        .iter()
        .max_by(|a, b| a.end.cmp(&b.end))
        .expect("a session has an exchange");
    let duration_ms = match (first.start, last_end.end) {
        (Some(s), Some(e)) => e.duration_since(s).map_or(0.0, |d| d.as_secs_f64() * 1e3),
        _ => 0.0,
    };
    Summary {
        session_id: id.to_string(),
        started_at: first.started_at.clone(),
        ended_at: last_end.ended_at.clone(),
        duration_ms,
        exchanges: heads.len(),
        turns,
        models,
        tokens,
        cost_usd: cost,
        unpriced_exchanges: unpriced,
        errors,
    }
}

/// Which conversation of the session an exchange belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The conversation the user types into.
    Main,
    /// A conversation started by a Task/Agent tool call of another one.
    SubAgent,
    /// Any other request (titles, summaries, quota checks).
    Side,
    /// `count_tokens` (no conversation).
    CountTokens,
    /// Not a Messages API call.
    Other,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::SubAgent => "sub-agent",
            Role::Side => "side",
            Role::CountTokens => "count_tokens",
            Role::Other => "other",
        }
    }
}

/// What the upstream answered.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseView {
    pub status: u16,
    pub headers: Value,
    /// The message: the one rebuilt from the stream, or the JSON body.
    pub message: Option<Value>,
    /// Any other body (an error body is JSON too and lands in `message`).
    pub text: Option<String>,
    pub sse_events: usize,
    pub truncated: bool,
}

/// One exchange of a session, with its request reduced to what it added.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub head: Head,
    pub number: usize,
    pub role: Role,
    /// Which conversation of the session (1 = first seen).
    pub conversation: usize,
    /// The previous exchange (index into `Session::exchanges`) of the same conversation.
    pub base: Option<usize>,
    /// Messages of `base`'s request this request starts with (the same message, perhaps with
    /// its cache mark moved).
    pub kept: usize,
    /// Of those, how many are byte for byte the same; `resent` holds the others as sent now,
    /// so the page can rebuild the exact request.
    pub exact_kept: usize,
    pub resent: Vec<Value>,
    /// Messages of `base`'s request this one no longer has (history rewritten or compacted).
    pub dropped: usize,
    /// The messages this request added (all of them when there is no `base`).
    pub added: Vec<Value>,
    /// Request fields besides `messages` that differ from `base`'s.
    pub changed: Vec<String>,
    /// Index into `Session::systems` / `Session::tools`.
    pub system: Option<usize>,
    pub tools: Option<usize>,
    /// Request fields other than messages, system and tools.
    pub params: Map<String, Value>,
    pub query: Option<String>,
    pub request_headers: Value,
    pub request_truncated: bool,
    /// The request body when it was not JSON (or not an object).
    pub request_other: Option<Value>,
    pub response: Option<ResponseView>,
    pub tokens: Tokens,
    pub cost_usd: Option<f64>,
}

/// A session loaded for display.
#[derive(Debug)]
pub struct Session {
    pub summary: Summary,
    pub exchanges: Vec<Exchange>,
    /// Distinct system prompts and tool lists, each kept once.
    pub systems: Vec<Value>,
    pub tools: Vec<Value>,
}

/// What `show`/`html` was asked for.
pub enum Selection<'a> {
    Session(&'a str, Vec<&'a Head>),
    /// One exchange, with its session for context.
    Exchange(&'a str, Vec<&'a Head>, String),
}

/// Finds a session by `latest`, a session id (or a unique prefix), or an exchange id.
pub fn select<'a>(index: &'a Index, what: &str) -> Result<Selection<'a>, Error> {
    let mut sessions = by_session(index);
    if sessions.is_empty() {
        return Err(Error::Empty);
    }
    if what == "latest" {
        let (id, _) = sessions
            .iter()
            .max_by_key(|(_, heads)| (heads[0].start, heads[0].started_at.clone()))
            .map(|(k, v)| (*k, v.clone()))
            .expect("not empty");
        let heads = sessions.remove(id).expect("present");
        return Ok(Selection::Session(id, heads));
    }
    if let Some(head) = index.heads.iter().find(|h| h.id == what)
        && let Some(id) = head.session_id.as_deref()
    {
        let heads = sessions.remove(id).expect("indexed");
        return Ok(Selection::Exchange(id, heads, what.to_string()));
    }
    if let Some((id, heads)) = sessions.remove_entry(what) {
        return Ok(Selection::Session(id, heads));
    }
    let matches: Vec<&str> = sessions
        .keys()
        .copied()
        .filter(|id| id.starts_with(what))
        .collect();
    match matches.as_slice() {
        [] => Err(Error::NoMatch(what.to_string())),
        [id] => {
            let id = *id;
            Ok(Selection::Session(
                id,
                sessions.remove(id).expect("present"),
            ))
        }
        many => Err(Error::Ambiguous(what.to_string(), many.join(", "))),
    }
}

/// What loading has seen so far: system prompts and tool lists by hash, each conversation's
/// last request, the conversations in order of appearance.
#[derive(Default)]
struct Seen {
    blobs: HashMap<u64, usize>,
    threads: HashMap<u64, Previous>,
    conversations: Vec<u64>,
}

/// Per conversation: the last exchange seen and its request's message and field hashes.
struct Previous {
    exchange: usize,
    messages: Vec<u64>,
    exact: Vec<u64>,
    fields: BTreeMap<String, u64>,
}

impl Session {
    /// For each exchange, the turn it starts (1, 2, ...): a main-conversation request ending
    /// with the user's own text and longer than any before (the rule `Summary::turns` counts).
    pub fn turn_starts(&self) -> Vec<Option<usize>> {
        let (mut turn, mut longest) = (0, 0);
        self.exchanges
            .iter()
            .map(|e| {
                if e.role != Role::Main {
                    return None;
                }
                let starts = e.head.ends_with_prompt && e.head.messages > longest;
                longest = longest.max(e.head.messages);
                starts.then(|| {
                    turn += 1;
                    turn
                })
            })
            .collect()
    }

    /// Reads the session's lines one at a time, keeping only what each request added.
    pub fn load(
        index: &Index,
        id: &str,
        heads: &[&Head],
        prices: &PriceTable,
    ) -> Result<Session, Error> {
        let summary = summarize(id, heads, prices);
        let mut session = Session {
            summary,
            exchanges: Vec::with_capacity(heads.len()),
            systems: Vec::new(),
            tools: Vec::new(),
        };
        let mut seen = Seen::default();
        for (n, head) in heads.iter().enumerate() {
            let line = index.read_line(head.location)?;
            // The index skims bodies without checking them; a line that turns out not to be
            // JSON keeps its head and says why its bodies are missing.
            let (record, unreadable) = match serde_json::from_str(&line) {
                Ok(record) => (record, None),
                Err(e) => (Value::Null, Some(e)),
            };
            drop(line);
            let mut exchange = session.exchange(n, head, record, &mut seen, prices);
            if let Some(e) = unreadable {
                let why = format!("its log line is not valid JSON ({e}): no body can be shown");
                exchange.head.error = Some(match exchange.head.error.take() {
                    Some(error) => format!("{error}; {why}"),
                    None => why,
                });
            }
            session.exchanges.push(exchange);
        }
        session.assign_roles(heads);
        Ok(session)
    }

    fn exchange(
        &mut self,
        n: usize,
        head: &Head,
        mut record: Value,
        seen: &mut Seen,
        prices: &PriceTable,
    ) -> Exchange {
        let Seen {
            blobs,
            threads,
            conversations,
        } = seen;
        let (tokens, cost_usd) = tokens_and_cost(head, prices);
        let mut request = record
            .get_mut("request")
            .map(Value::take)
            .unwrap_or(Value::Null);
        let mut body = request
            .pointer_mut("/body/json")
            .map(Value::take)
            .unwrap_or(Value::Null);
        let request_truncated = request.pointer("/body/truncated") == Some(&Value::Bool(true));
        let mut exchange = Exchange {
            head: head.clone(),
            number: n + 1,
            role: Role::Other,
            conversation: 0,
            base: None,
            kept: 0,
            exact_kept: 0,
            resent: Vec::new(),
            dropped: 0,
            added: Vec::new(),
            changed: Vec::new(),
            system: None,
            tools: None,
            params: Map::new(),
            query: request
                .get("query")
                .and_then(Value::as_str)
                .map(str::to_string),
            request_headers: request
                .get_mut("headers")
                .map(Value::take)
                .unwrap_or(Value::Null),
            request_truncated,
            request_other: None,
            response: record.get_mut("response").map(|r| response_view(r.take())),
            tokens,
            cost_usd,
        };
        let Value::Object(mut fields) = body.take() else {
            exchange.request_other = request
                .get_mut("body")
                .map(Value::take)
                .filter(|b| b.get("text").is_some() || b.get("base64").is_some());
            return exchange;
        };
        let messages = match fields.remove("messages") {
            Some(Value::Array(m)) => m,
            _ => Vec::new(),
        };
        let hashes: Vec<u64> = messages.iter().map(value_hash).collect();
        let exact: Vec<u64> = messages.iter().map(exact_hash).collect();
        let field_hashes: BTreeMap<String, u64> = fields
            .iter()
            .map(|(k, v)| (k.clone(), value_hash(v)))
            .collect();
        let mut keep_blob = |v: Value, list: &mut Vec<Value>, kind: u8| {
            let key = value_hash(&v) ^ u64::from(kind);
            *blobs.entry(key).or_insert_with(|| {
                list.push(v);
                list.len() - 1
            })
        };
        if let Some(system) = fields.remove("system") {
            exchange.system = Some(keep_blob(system, &mut self.systems, 1));
        }
        if let Some(tools) = fields.remove("tools") {
            exchange.tools = Some(keep_blob(tools, &mut self.tools, 2));
        }
        exchange.params = fields;
        let thread = hashes.first().copied().unwrap_or(0);
        if thread != 0
            && head.path.starts_with("/v1/messages")
            && !head.path.ends_with("/count_tokens")
        {
            exchange.conversation = match conversations.iter().position(|t| *t == thread) {
                Some(i) => i + 1,
                None => {
                    conversations.push(thread);
                    conversations.len()
                }
            };
            if let Some(prev) = threads.get(&thread) {
                let kept = prev
                    .messages
                    .iter()
                    .zip(&hashes)
                    .take_while(|(a, b)| a == b)
                    .count();
                let exact_kept = prev
                    .exact
                    .iter()
                    .zip(&exact)
                    .take_while(|(a, b)| a == b)
                    .count()
                    .min(kept);
                exchange.base = Some(prev.exchange);
                exchange.kept = kept;
                exchange.exact_kept = exact_kept;
                exchange.resent = messages[exact_kept..kept].to_vec();
                exchange.dropped = prev.messages.len() - kept;
                exchange.changed = changed_fields(&prev.fields, &field_hashes);
                exchange.added = messages.into_iter().skip(kept).collect();
            } else {
                exchange.added = messages;
            }
            threads.insert(
                thread,
                Previous {
                    exchange: n,
                    messages: hashes,
                    exact,
                    fields: field_hashes,
                },
            );
        } else {
            exchange.added = messages;
        }
        exchange
    }

    /// Main conversation, sub-agents (started by a Task/Agent tool call), side requests.
    fn assign_roles(&mut self, heads: &[&Head]) {
        let main = main_thread(heads);
        let mut agent_prompts: HashSet<String> = HashSet::new();
        for e in &self.exchanges {
            for block in content_blocks(e.response.as_ref().and_then(|r| r.message.as_ref())) {
                if block["type"] == "tool_use"
                    && matches!(block["name"].as_str(), Some("Task" | "Agent"))
                    && let Some(prompt) = block["input"]["prompt"].as_str()
                {
                    agent_prompts.insert(prompt.trim().to_string());
                }
            }
        }
        for (e, h) in self.exchanges.iter_mut().zip(heads) {
            e.role = if h.path.ends_with("/count_tokens") {
                Role::CountTokens
            } else if !h.path.starts_with("/v1/messages") || e.conversation == 0 {
                Role::Other
            } else if h.thread == main {
                Role::Main
            } else if e.base.is_none() && starts_with_agent_prompt(&e.added, &agent_prompts) {
                Role::SubAgent
            } else {
                Role::Side
            };
        }
        // Later exchanges of a sub-agent's conversation are the sub-agent too.
        let agents: HashSet<usize> = self
            .exchanges
            .iter()
            .filter(|e| e.role == Role::SubAgent)
            .map(|e| e.conversation)
            .collect();
        for e in &mut self.exchanges {
            if e.role == Role::Side && agents.contains(&e.conversation) {
                e.role = Role::SubAgent;
            }
        }
    }
}

fn starts_with_agent_prompt(messages: &[Value], prompts: &HashSet<String>) -> bool {
    let Some(first) = messages.first() else {
        return false;
    };
    let text = message_text(first);
    prompts
        .iter()
        .any(|p| !p.is_empty() && text.contains(p.as_str()))
}

fn changed_fields(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<String> {
    let mut names: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    names.extend(
        before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .map(|k| format!("{k} (removed)")),
    );
    names
}

fn response_view(mut r: Value) -> ResponseView {
    let sse = r.get_mut("sse").map(Value::take);
    let mut body = r.get_mut("body").map(Value::take).unwrap_or(Value::Null);
    let message = match &sse {
        Some(s) => s.get("message").cloned(),
        None => body.get_mut("json").map(Value::take),
    };
    ResponseView {
        status: r["status"].as_u64().unwrap_or(0) as u16,
        headers: r.get_mut("headers").map(Value::take).unwrap_or(Value::Null),
        message,
        text: body.get("text").and_then(Value::as_str).map(str::to_string),
        sse_events: sse
            .as_ref()
            .and_then(|s| s["events"].as_array())
            .map_or(0, Vec::len),
        truncated: body["truncated"] == true,
    }
}

/// The content blocks of a message (a string content is one text block).
pub fn content_blocks(message: Option<&Value>) -> Vec<Value> {
    match message.map(|m| &m["content"]) {
        Some(Value::Array(blocks)) => blocks.clone(),
        Some(Value::String(s)) => vec![serde_json::json!({"type": "text", "text": s})],
        _ => Vec::new(),
    }
}

/// All text of a message or tool result content, joined.
pub fn message_text(message: &Value) -> String {
    content_text(&message["content"])
}

pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A text block Claude Code adds for the model (`<system-reminder>…`), not typed by the user.
pub fn is_reminder(block: &Value) -> bool {
    block["type"] == "text"
        && block["text"]
            .as_str()
            .is_some_and(|t| t.trim_start().starts_with("<system-reminder>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(n: u32, messages: Value) -> String {
        json!({
            "v": 1, "kind": "claude_api_exchange", "id": format!("{n:032x}"),
            "started_at": format!("2026-12-03T10:00:0{n}Z"), "ended_at": format!("2026-12-03T10:00:0{n}.5Z"),
            "duration_ms": 500.0, "outcome": "complete", "session_id": "s1", "model": "claude-haiku-4-5",
            "usage": {"input_tokens": 1000, "output_tokens": 100},
            "request": {"method": "POST", "path": "/v1/messages", "headers": {},
                "body": {"size": 10, "json": {"model": "claude-haiku-4-5", "system": "be brief", "messages": messages}}},
            "response": {"status": 200, "headers": {}, "body": {"size": 0, "json": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}}}
        })
        .to_string()
    }

    #[test]
    fn each_request_keeps_only_what_it_added_and_retries_are_not_turns() {
        let u1 = json!({"role": "user", "content": "first"});
        let u1_marked = json!({"role": "user", "content": [{"type": "text", "text": "first", "cache_control": {"type": "ephemeral"}}]});
        let a1 = json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]});
        let u2 = json!({"role": "user", "content": "second"});
        let side = json!({"role": "user", "content": "write a title"});
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("traffic.log");
        let lines = [
            line(1, json!([u1_marked])),
            line(2, json!([u1, a1, u2])),
            line(3, json!([u1, a1, u2])),
            line(4, json!([side])),
        ];
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        let index = Index::build(&log).unwrap();
        let prices = PriceTable::builtin();
        let summaries = summaries(&index, &prices);
        assert_eq!(summaries.len(), 1);
        let s = &summaries[0];
        assert_eq!((s.exchanges, s.turns, s.errors), (4, 2, 0), "{s:?}");
        assert_eq!(s.tokens.input, 4_000);
        // Haiku 4.5: $1 in, $5 out per million.
        assert!(
            (s.cost_usd - 4.0 * (1_000.0 + 500.0) / 1e6).abs() < 1e-12,
            "{}",
            s.cost_usd
        );

        let Selection::Session(id, heads) = select(&index, "s").unwrap() else {
            panic!("a session prefix selects the session");
        };
        let session = Session::load(&index, id, &heads, &prices).unwrap();
        let e = &session.exchanges;
        assert_eq!(e[1].base, Some(0));
        assert_eq!((e[1].kept, e[1].exact_kept, e[1].dropped), (1, 0, 0));
        assert_eq!(
            e[1].resent,
            vec![u1.clone()],
            "the exact message as sent now"
        );
        assert_eq!(e[1].added, vec![a1, u2]);
        assert!(e[2].added.is_empty(), "a retry adds nothing");
        assert_eq!(session.turn_starts(), [Some(1), Some(2), None, None]);
        assert!(e[2].changed.is_empty());
        assert_eq!(e[0].system, e[1].system, "one system prompt, kept once");
        assert_eq!(session.systems.len(), 1);
        assert_eq!(
            e.iter().map(|x| x.role).collect::<Vec<_>>(),
            [Role::Main, Role::Main, Role::Main, Role::Side]
        );
        assert!(matches!(
            select(&index, "latest"),
            Ok(Selection::Session("s1", _))
        ));
        assert!(matches!(
            select(&index, &format!("{:032x}", 3)),
            Ok(Selection::Exchange("s1", _, _))
        ));
        assert!(matches!(select(&index, "nope"), Err(Error::NoMatch(_))));
    }

    #[test]
    fn newest_first_is_by_time_not_by_text() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("traffic.log");
        let older = line(1, json!([{"role": "user", "content": "a"}]))
            .replace("\"s1\"", "\"older\"")
            .replace("2026-12-03T10:00:01Z", "2026-12-03T10:00:00Z");
        let newer = line(2, json!([{"role": "user", "content": "b"}]))
            .replace("\"s1\"", "\"newer\"")
            .replace("2026-12-03T10:00:02Z", "2026-12-03T10:00:00.5Z");
        std::fs::write(&log, format!("{older}\n{newer}\n")).unwrap();
        let index = Index::build(&log).unwrap();
        let list = summaries(&index, &PriceTable::builtin());
        let ids: Vec<&str> = list.iter().map(|s| s.session_id.as_str()).collect();
        assert_eq!(ids, ["newer", "older"]);
        assert!(matches!(
            select(&index, "latest"),
            Ok(Selection::Session("newer", _))
        ));
    }
}
