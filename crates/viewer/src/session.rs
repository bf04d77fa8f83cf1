//! What a Claude Code session is, read from the log: its totals (for `sessions`), and its
//! exchanges as a conversation where each request keeps only what it added to the previous
//! request of the same conversation (Claude Code re-sends the whole history every turn).

use conversation::message::{self, exact_key as exact_hash, key as value_hash};
use conversation::{Agent, Route, Subagent};
use pricing::{PriceTable, Tokens};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use crate::Error;
use crate::log::{Head, Index};

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
    /// Exchanges and cost by who sent them; their costs add up to `cost_usd`.
    pub agents: Vec<AgentTotal>,
}

/// The exchanges and cost of one sender of a session (or of its `count_tokens` and other
/// calls, which no agent is named for).
#[derive(Debug, Clone, Serialize)]
pub struct AgentTotal {
    /// `main`, `subagent 2`, `subagent` (its call not in the log), `auxiliary`,
    /// `count_tokens` or `other`: [`Exchange::label`].
    pub agent: String,
    /// For a numbered sub-agent: the call that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub exchanges: usize,
    pub cost_usd: f64,
    pub unpriced_exchanges: usize,
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
    // The response's model (else the request's), with every billing rule the shipper applies.
    let cost = conversation::pricing_model(head.model.as_deref(), head.request_model.as_deref())
        .and_then(|m| prices.price(m, usage).ok())
        .map(|c| c.usd);
    (tokens, cost)
}

/// Adds exchanges to per-sender totals, keeping them in the order the page lists them: main,
/// sub-agents by number, then the others.
#[derive(Default)]
struct AgentTotals(Vec<(Role, u32, AgentTotal)>);

impl AgentTotals {
    fn add(&mut self, head: &Head, cost: Option<f64>) {
        let role = Role::of(head);
        let sub = head.sender.as_ref().and_then(|s| s.subagent.as_ref());
        let number = sub.map_or(u32::MAX, |s| s.number);
        let at = match self
            .0
            .iter()
            .position(|(r, n, _)| *r == role && *n == number)
        {
            Some(at) => at,
            None => {
                self.0.push((
                    role,
                    number,
                    AgentTotal {
                        agent: label(role, sub),
                        tool_use_id: sub.map(|s| s.tool_use_id.clone()),
                        description: sub.map(|s| s.description.clone()),
                        exchanges: 0,
                        cost_usd: 0.0,
                        unpriced_exchanges: 0,
                    },
                ));
                self.0.len() - 1
            }
        };
        let total = &mut self.0[at].2;
        total.exchanges += 1;
        match cost {
            Some(usd) => total.cost_usd += usd,
            None if head.usage.is_some() => total.unpriced_exchanges += 1,
            None => {}
        }
    }

    fn sorted(mut self) -> Vec<AgentTotal> {
        self.0.sort_by_key(|(role, number, _)| (*role, *number));
        self.0.into_iter().map(|(_, _, t)| t).collect()
    }
}

/// The exchanges of each session, oldest first, keyed by session id; the exchanges of one
/// Claude Code interaction (see [`group_interactions`]) together.
pub fn by_session(index: &Index) -> BTreeMap<&str, Vec<&Head>> {
    let mut sessions: BTreeMap<&str, Vec<&Head>> = BTreeMap::new();
    for head in &index.heads {
        if let Some(id) = head.session_id.as_deref() {
            sessions.entry(id).or_default().push(head);
        }
    }
    for heads in sessions.values_mut() {
        heads.sort_by(|a, b| a.start.cmp(&b.start).then(a.started_at.cmp(&b.started_at)));
        group_interactions(heads);
    }
    sessions
}

/// Puts the exchanges of each Claude Code interaction (one user prompt and every request it
/// caused: sub-agents, side requests) together, where its first exchange is, so a late
/// sub-agent request reads inside its prompt. Exchanges without a `traceparent` keep their
/// place in time.
fn group_interactions(heads: &mut Vec<&Head>) {
    if heads.iter().all(|h| h.interaction.is_none()) {
        return;
    }
    let mut first: HashMap<[u8; 16], usize> = HashMap::new();
    let mut keyed: Vec<(usize, usize, &Head)> = heads
        .iter()
        .enumerate()
        .map(|(i, h)| match h.interaction {
            Some(t) => (*first.entry(t).or_insert(i), i, *h),
            None => (i, i, *h),
        })
        .collect();
    keyed.sort_by_key(|(group, i, _)| (*group, *i));
    *heads = keyed.into_iter().map(|(_, _, h)| h).collect();
}

/// Where turns start. An exchange Claude Code sent with a `traceparent` starts one when it is
/// the first of its interaction (Claude Code's own word for a prompt); one without starts one
/// when it is a main-conversation request that ends with the user's own text and is longer
/// than any before (a retry is not a new turn).
#[derive(Default)]
struct TurnRule {
    longest: usize,
    interactions: HashSet<[u8; 16]>,
}

impl TurnRule {
    fn starts(&mut self, h: &Head) -> bool {
        let inferred = starts_turn(h, &mut self.longest);
        match h.interaction {
            Some(t) => self.interactions.insert(t),
            None => inferred,
        }
    }
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

/// Whether a main-conversation request starts a turn by inference: it ends with the user's own
/// text and is longer than any before. `longest` carries along the session.
fn starts_turn(h: &Head, longest: &mut usize) -> bool {
    if Role::of(h) != Role::Main {
        return false;
    }
    let starts = h.ends_with_prompt && h.messages > *longest;
    *longest = (*longest).max(h.messages);
    starts
}

pub fn summarize(id: &str, heads: &[&Head], prices: &PriceTable) -> Summary {
    let (mut turns, mut rule) = (0, TurnRule::default());
    let mut tokens = TokenTotals::default();
    let (mut cost, mut unpriced, mut errors) = (0.0, 0, 0);
    let mut models: Vec<String> = Vec::new();
    let mut agents = AgentTotals::default();
    for h in heads {
        turns += usize::from(rule.starts(h));
        let (t, c) = tokens_and_cost(h, prices);
        agents.add(h, c);
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
        agents: agents.sorted(),
    }
}

/// Who sent an exchange's request (crate `conversation`, the rule Seq's `claude.agent`
/// follows), or what the exchange is when it is no model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The conversation the user types into.
    Main,
    /// An agent started by an `Agent`/`Task` tool call.
    Subagent,
    /// A helper request (titles, summaries, quota checks).
    Auxiliary,
    /// `count_tokens` (no conversation).
    CountTokens,
    /// Not a Messages API call.
    Other,
}

impl Role {
    pub fn of(head: &Head) -> Role {
        match (head.facts.route, head.sender.as_ref().map(|s| s.agent)) {
            (_, Some(Agent::Main)) => Role::Main,
            (_, Some(Agent::Subagent)) => Role::Subagent,
            (_, Some(Agent::Auxiliary)) => Role::Auxiliary,
            (Route::CountTokens, None) => Role::CountTokens,
            _ => Role::Other,
        }
    }

    /// Seq's `claude.agent` for the agents, the route for the rest.
    pub fn label(self) -> &'static str {
        match self {
            Role::Main => Agent::Main.as_str(),
            Role::Subagent => Agent::Subagent.as_str(),
            Role::Auxiliary => Agent::Auxiliary.as_str(),
            Role::CountTokens => Route::CountTokens.as_str(),
            Role::Other => Route::Other.as_str(),
        }
    }
}

/// `subagent 2` for a numbered sub-agent, else the role's label.
fn label(role: Role, subagent: Option<&Subagent>) -> String {
    match subagent {
        Some(s) => format!("{} {}", role.label(), s.number),
        None => role.label().to_string(),
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
    /// For a sub-agent whose call is in the log: which one.
    pub subagent: Option<Subagent>,
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

impl Exchange {
    /// What changed since the previous request of its conversation, one note each (a retry,
    /// history rewritten, request fields changed); none for the first request.
    pub fn change_notes(&self) -> Vec<String> {
        let Some(base) = self.base else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        if self.added.is_empty() {
            notes.push(format!("same messages as #{} (a retry)", base + 1));
        }
        if self.dropped > 0 {
            notes.push(format!(
                "{} earlier messages dropped (history rewritten)",
                self.dropped
            ));
        }
        if !self.changed.is_empty() {
            notes.push(format!("request changed: {}", self.changed.join(", ")));
        }
        notes
    }
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

impl Exchange {
    /// `main`, `subagent 2`, `subagent`, `auxiliary`, `count_tokens` or `other`.
    pub fn label(&self) -> String {
        label(self.role, self.subagent.as_ref())
    }
}

/// The exchanges from one turn's start to the next's (the first "turn" 0 holds what came
/// before the user's first input, if anything did), and what they cost, by sender.
#[derive(Debug, Clone)]
pub struct Turn {
    /// 1, 2, ...; 0 for the exchanges before the first turn.
    pub number: usize,
    /// Indexes into `Session::exchanges`.
    pub exchanges: std::ops::Range<usize>,
    pub cost_usd: f64,
    pub unpriced_exchanges: usize,
    pub agents: Vec<AgentTotal>,
}

impl Session {
    /// For each exchange, the turn it starts (1, 2, ...), by [`TurnRule`] (the rule
    /// `Summary::turns` counts).
    pub fn turn_starts(&self) -> Vec<Option<usize>> {
        let (mut turn, mut rule) = (0, TurnRule::default());
        self.exchanges
            .iter()
            .map(|e| {
                rule.starts(&e.head).then(|| {
                    turn += 1;
                    turn
                })
            })
            .collect()
    }

    /// The session's turns with their cost: every exchange in exactly one of them, so their
    /// costs add up to the session's.
    pub fn turns(&self) -> Vec<Turn> {
        let mut turns: Vec<(Turn, AgentTotals)> = Vec::new();
        for (i, (e, start)) in self.exchanges.iter().zip(self.turn_starts()).enumerate() {
            if start.is_some() || turns.is_empty() {
                let turn = Turn {
                    number: start.unwrap_or(0),
                    exchanges: i..i,
                    cost_usd: 0.0,
                    unpriced_exchanges: 0,
                    agents: Vec::new(),
                };
                turns.push((turn, AgentTotals::default()));
            }
            let (turn, agents) = turns.last_mut().expect("pushed");
            turn.exchanges.end = i + 1;
            agents.add(&e.head, e.cost_usd);
            match e.cost_usd {
                Some(usd) => turn.cost_usd += usd,
                None if e.head.usage.is_some() => turn.unpriced_exchanges += 1,
                None => {}
            }
        }
        turns
            .into_iter()
            .map(|(mut t, agents)| {
                t.agents = agents.sorted();
                t
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
            role: Role::of(head),
            subagent: head.sender.as_ref().and_then(|s| s.subagent.clone()),
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
        if thread != 0 && head.facts.route == Route::Messages {
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
    block["type"] == "text" && block["text"].as_str().is_some_and(message::is_reminder)
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
                "body": {"size": 10, "json": {"model": "claude-haiku-4-5", "system": "be brief", "tools": [{"name": "Bash"}], "messages": messages}}},
            "response": {"status": 200, "headers": {}, "body": {"size": 0, "json": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}}}
        })
        .to_string()
    }

    #[test]
    fn with_claude_codes_traceparent_a_turn_is_its_interaction_and_reads_together() {
        let traced = |n: u32, trace: char, messages: Value| {
            line(n, messages).replace(
                r#""headers":{},"body":{"size":10"#,
                &format!(
                    r#""headers":{{"traceparent":"00-{}-00f067aa0ba902b7-01"}},"body":{{"size":10"#,
                    trace.to_string().repeat(32)
                ),
            )
        };
        let u1 = json!({"role": "user", "content": "first"});
        let a1 = json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]});
        let u2 = json!({"role": "user", "content": "second"});
        let tool = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "done"}]});
        let side = json!({"role": "user", "content": "write a title"});
        let old = json!({"role": "user", "content": "from before the upgrade"});
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("traffic.log");
        let lines = [
            // Before Claude Code sent traceparent (an upgrade mid-session): inferred turns.
            line(1, json!([old])).replace(r#""system":"be brief""#, r#""system":"other""#),
            // Prompt a: its request, a side request, then (late) its tool round trip.
            traced(2, 'a', json!([u1])),
            traced(3, 'a', json!([side])).replace(r#","tools":[{"name":"Bash"}]"#, ""),
            // Prompt b starts before prompt a's last request (a background sub-agent) ends.
            traced(4, 'b', json!([u1, a1, u2])),
            traced(5, 'a', json!([u1, a1, tool])),
            // A traceparent that is not valid: the exchange keeps its place in time.
            line(6, json!([u1, a1, u2, a1])).replace(
                r#""headers":{}"#,
                r#""headers":{"traceparent":"00-zz-00f067aa0ba902b7-01"}"#,
            ),
        ];
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        let index = Index::build(&log).unwrap();
        let prices = PriceTable::builtin();
        let Selection::Session(id, heads) = select(&index, "s1").unwrap() else {
            panic!("the session");
        };
        let order: Vec<u128> = heads
            .iter()
            .map(|h| u128::from_str_radix(&h.id, 16).unwrap())
            .collect();
        assert_eq!(order, [1, 2, 3, 5, 4, 6], "prompt a's exchanges together");
        let session = Session::load(&index, id, &heads, &prices).unwrap();
        assert_eq!(
            session.turn_starts(),
            [Some(1), Some(2), None, None, Some(3), None],
            "one turn per interaction, inferred turns before them"
        );
        assert_eq!(session.summary.turns, 3);
        let turns = session.turns();
        assert_eq!(
            turns[1].exchanges,
            1..4,
            "prompt a: request, side request, tool result"
        );
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
            // The title request: no tools.
            line(4, json!([side])).replace(r#","tools":[{"name":"Bash"}]"#, ""),
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
            [Role::Main, Role::Main, Role::Main, Role::Auxiliary]
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

    /// A record of session `s2` at second `n`: `system`, `tools`, `messages`, the response's
    /// content blocks, and Haiku 4.5 usage of `input` tokens in and 100 out.
    fn exchange_line(
        n: u32,
        system: &str,
        tools: Value,
        messages: Value,
        reply: Value,
        input: u64,
    ) -> String {
        json!({
            "v": 1, "kind": "claude_api_exchange", "id": format!("{n:032x}"),
            "started_at": format!("2026-12-03T10:00:{n:02}Z"), "ended_at": format!("2026-12-03T10:00:{n:02}.5Z"),
            "duration_ms": 500.0, "outcome": "complete", "session_id": "s2", "model": "claude-haiku-4-5",
            "usage": {"input_tokens": input, "output_tokens": 100},
            "request": {"method": "POST", "path": "/v1/messages", "headers": {},
                "body": {"size": 10, "json": {"model": "claude-haiku-4-5", "system": system, "tools": tools, "messages": messages}}},
            "response": {"status": 200, "headers": {}, "body": {"size": 0, "json": {"role": "assistant", "content": reply}}}
        })
        .to_string()
    }

    #[test]
    fn cost_is_shown_per_turn_and_per_agent_and_the_total_includes_every_sub_agent() {
        let tools = json!([{"name": "Agent"}, {"name": "Bash"}]);
        let ask = json!({"role": "user", "content": "delegate it"});
        let call = json!([{"type": "tool_use", "id": "toolu_01", "name": "Agent",
            "input": {"description": "Find configs", "prompt": "find the config files", "subagent_type": "Explore"}}]);
        let called = json!({"role": "assistant", "content": call});
        let result = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "found 3"}]});
        let done = json!({"role": "assistant", "content": [{"type": "text", "text": "done"}]});
        let sub1 = json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
            {"type": "text", "text": "find the config files"}]});
        let ok = json!([{"type": "text", "text": "ok"}]);
        let lines = [
            exchange_line(1, "main", tools.clone(), json!([ask]), call.clone(), 1_000),
            exchange_line(
                2,
                "a title",
                json!([]),
                json!([{"role": "user", "content": "name it"}]),
                ok.clone(),
                10,
            ),
            exchange_line(
                3,
                "agent",
                json!([{"name": "Read"}]),
                json!([sub1]),
                ok.clone(),
                2_000,
            ),
            exchange_line(
                4,
                "agent",
                json!([{"name": "Read"}]),
                json!([sub1, {"role": "assistant", "content": ok}, {"role": "user", "content": "more"}]),
                ok.clone(),
                3_000,
            ),
            exchange_line(
                5,
                "main",
                tools.clone(),
                json!([ask, called, result]),
                json!([{"type": "text", "text": "done"}]),
                4_000,
            ),
            exchange_line(
                6,
                "main",
                tools.clone(),
                json!([ask, called, result, done, {"role": "user", "content": "thanks"}]),
                ok,
                5_000,
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("traffic.log");
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        let index = Index::build(&log).unwrap();
        let prices = PriceTable::builtin();
        let Selection::Session(id, heads) = select(&index, "s2").unwrap() else {
            panic!("a session id selects the session");
        };
        let session = Session::load(&index, id, &heads, &prices).unwrap();
        // Haiku 4.5: $1 in and $5 out per million tokens.
        let usd = |input: u64| (input as f64 + 500.0) / 1e6;
        let labels: Vec<String> = session.exchanges.iter().map(Exchange::label).collect();
        assert_eq!(
            labels,
            [
                "main",
                "auxiliary",
                "subagent 1",
                "subagent 1",
                "main",
                "main"
            ]
        );
        let s = &session.summary;
        let total: f64 = [1_000, 10, 2_000, 3_000, 4_000, 5_000]
            .into_iter()
            .map(usd)
            .sum();
        assert!(
            (s.cost_usd - total).abs() < 1e-12,
            "{} != {total}",
            s.cost_usd
        );
        let by_agent: Vec<(&str, usize, f64)> = s
            .agents
            .iter()
            .map(|a| (a.agent.as_str(), a.exchanges, a.cost_usd))
            .collect();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert_eq!(by_agent.len(), 3, "{by_agent:?}");
        assert_eq!((by_agent[0].0, by_agent[0].1), ("main", 3));
        assert!(close(by_agent[0].2, usd(1_000) + usd(4_000) + usd(5_000)));
        assert_eq!((by_agent[1].0, by_agent[1].1), ("subagent 1", 2));
        assert!(close(by_agent[1].2, usd(2_000) + usd(3_000)));
        assert_eq!(s.agents[1].description.as_deref(), Some("Find configs"));
        assert_eq!(s.agents[1].tool_use_id.as_deref(), Some("toolu_01"));
        assert_eq!((by_agent[2].0, by_agent[2].1), ("auxiliary", 1));
        assert!(close(by_agent.iter().map(|a| a.2).sum::<f64>(), s.cost_usd));

        // Turn 1 holds everything its input set off, the sub-agent included; turn 2 the rest.
        let turns = session.turns();
        assert_eq!(turns.iter().map(|t| t.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(turns[0].exchanges, 0..5);
        assert!(close(turns[0].cost_usd, total - usd(5_000)));
        assert!(close(turns[1].cost_usd, usd(5_000)));

        let shown = crate::term::show(
            &session,
            None,
            &crate::log::Skipped::default(),
            crate::term::Style {
                color: false,
                full: false,
            },
        );
        let turn1 = crate::term::turn_header(&turns[0]);
        assert!(shown.contains(&turn1), "{shown}");
        assert!(
            turn1.starts_with("══ Turn 1 · $0.0") && turn1.contains("subagent 1 $"),
            "{turn1}"
        );
        assert!(shown.contains("cost by agent: main $"), "{shown}");
        assert!(
            shown.contains("subagent 1: Find configs (toolu_01)"),
            "{shown}"
        );
        let page = crate::html::render(&session, &crate::log::Skipped::default(), "2025-11-24");
        for a in &s.agents {
            assert!(
                page.contains(&format!(
                    "<tr data-agent=\"{}\" data-cost=\"{}\">",
                    a.agent, a.cost_usd
                )),
                "{}",
                a.agent
            );
        }
        assert!(page.contains(&format!(
            "id=\"turn-1\" data-cost=\"{}\"",
            turns[0].cost_usd
        )));
        assert!(page.contains("data-agent=\"subagent 1\""));
    }

    #[test]
    fn who_sent_a_request_is_decided_in_the_logs_order_as_the_shipper_reads_it() {
        // The sub-agent's first exchange ended (and was written) before the exchange whose
        // response started it: the shipper labels it before seeing the call, and so does the
        // viewer, though it shows the exchanges by start time.
        let tools = json!([{"name": "Agent"}]);
        let go = json!({"role": "user", "content": "go"});
        let answer = json!({"role": "assistant", "content": "ok"});
        let call = json!([{"type": "tool_use", "id": "toolu_02", "name": "Agent",
            "input": {"description": "d", "prompt": "look", "subagent_type": "Explore"}}]);
        let first = exchange_line(
            1,
            "main",
            tools.clone(),
            json!([go]),
            json!([{"type": "text", "text": "ok"}]),
            100,
        );
        let delegate = json!([go, answer, {"role": "user", "content": "delegate"}]);
        let main = exchange_line(2, "main", tools.clone(), delegate, call, 100);
        let sub = exchange_line(
            3,
            "agent",
            tools,
            json!([{"role": "user", "content": "look"}]),
            json!([]),
            100,
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("traffic.log");
        std::fs::write(&log, format!("{first}\n{sub}\n{main}\n")).unwrap();
        let index = Index::build(&log).unwrap();
        let Selection::Session(id, heads) = select(&index, "s2").unwrap() else {
            panic!("a session id selects the session");
        };
        let session = Session::load(&index, id, &heads, &PriceTable::builtin()).unwrap();
        let labels: Vec<String> = session.exchanges.iter().map(Exchange::label).collect();
        assert_eq!(labels, ["main", "main", "subagent"], "not `subagent 1`");
    }
}
