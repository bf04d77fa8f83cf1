//! Who sent a `/v1/messages` request, decided exchange by exchange in log order, from what
//! the session's earlier exchanges showed (docs/seq-events.md, "Who sent a request"):
//!
//! 1. A request without tools is **auxiliary**: Claude Code sends its helpers (session title,
//!    quota probe, summaries) with a system prompt of their own and no tools.
//! 2. A request continuing a sub-agent's conversation (its first message is the same as that
//!    conversation's) is that **sub-agent**'s.
//! 3. A request whose first message's own text ([`crate::message::own_text`]) is the prompt of
//!    a sub-agent call (`Agent`/`Task` `tool_use`) made earlier in the session, not yet
//!    claimed, starts that **sub-agent**: the session's next number.
//! 4. A request with the main conversation's first message or its system prompt (either:
//!    compaction replaces the first, a setting or a new day can change the second), or the
//!    session's first request with tools, is the **main** conversation's.
//! 5. Any other request with tools is a **sub-agent** whose call the log did not show (it
//!    was before the shipper started, or before the log's oldest segment).
//!
//! Requests Claude Code forks from a conversation to work on it (compaction, prompt
//! suggestions, memory extraction, side questions) are sent with that conversation's system
//! prompt, tools and history, so they count as that conversation's.

use crate::request::{Facts, Launch, Route};
use std::collections::{HashMap, VecDeque};

/// Sessions remembered at once; a new one beyond this forgets the one least recently seen.
pub const MAX_SESSIONS: usize = 1_024;
/// Conversations, system prompts and unclaimed sub-agent calls remembered per session, each;
/// beyond this the oldest is forgotten.
const MAX_KNOWN: usize = 1_024;

/// Who sent a request, as Seq's `claude.agent` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Agent {
    /// The conversation the user types into.
    Main,
    /// An agent started by the `Agent` (`Task`) tool, in a conversation of its own.
    Subagent,
    /// A helper request: titles, quota probes, summaries.
    Auxiliary,
}

impl Agent {
    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Main => "main",
            Agent::Subagent => "subagent",
            Agent::Auxiliary => "auxiliary",
        }
    }
}

/// A sub-agent whose call the session showed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subagent {
    /// 1 for the session's first sub-agent, 2 for the next, ... (in log order).
    pub number: u32,
    /// The `tool_use` id of the call that started it.
    pub tool_use_id: String,
    /// The call's `description` and `subagent_type`.
    pub description: String,
    pub kind: String,
}

/// Who sent one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sender {
    pub agent: Agent,
    /// For a sub-agent whose call was seen: which one.
    pub subagent: Option<Subagent>,
}

impl Sender {
    fn of(agent: Agent) -> Sender {
        Sender {
            agent,
            subagent: None,
        }
    }

    /// `main`, `subagent 2`, `subagent` (its call not seen), `auxiliary`.
    pub fn label(&self) -> String {
        match &self.subagent {
            Some(s) => format!("{} {}", self.agent.as_str(), s.number),
            None => self.agent.as_str().to_string(),
        }
    }
}

/// What one session's exchanges showed so far.
#[derive(Debug, Default)]
pub struct Session {
    main_conversations: VecDeque<u64>,
    main_systems: VecDeque<u64>,
    subagents: VecDeque<(u64, Subagent)>,
    unclaimed: VecDeque<Launch>,
    started: u32,
}

fn remember<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() >= MAX_KNOWN {
        list.pop_front();
    }
    list.push_back(item);
}

impl Session {
    /// Who sent this exchange's request (`None` for a route other than `messages`); then
    /// learns the sub-agent calls of its response.
    pub fn sender(&mut self, facts: &Facts) -> Option<Sender> {
        if facts.route != Route::Messages {
            return None;
        }
        let sender = self.decide(facts);
        for launch in &facts.launches {
            remember(&mut self.unclaimed, launch.clone());
        }
        Some(sender)
    }

    fn decide(&mut self, facts: &Facts) -> Sender {
        if !facts.has_tools {
            return Sender::of(Agent::Auxiliary);
        }
        let conversation = facts.conversation;
        if let Some(c) = conversation
            && let Some((_, sub)) = self.subagents.iter().find(|(k, _)| *k == c)
        {
            return Sender {
                agent: Agent::Subagent,
                subagent: Some(sub.clone()),
            };
        }
        if let Some(p) = facts.prompt
            && let Some(at) = self.unclaimed.iter().position(|l| l.prompt == p)
        {
            let launch = self.unclaimed.remove(at).expect("found");
            self.started += 1;
            let sub = Subagent {
                number: self.started,
                tool_use_id: launch.tool_use_id,
                description: launch.description,
                kind: launch.kind,
            };
            if let Some(c) = conversation {
                remember(&mut self.subagents, (c, sub.clone()));
            }
            return Sender {
                agent: Agent::Subagent,
                subagent: Some(sub),
            };
        }
        let first = self.main_systems.is_empty() && self.main_conversations.is_empty();
        let main_conversation = conversation.is_some_and(|c| self.main_conversations.contains(&c));
        let main_system = facts.system.is_some_and(|s| self.main_systems.contains(&s));
        if !(first || main_conversation || main_system) {
            return Sender::of(Agent::Subagent);
        }
        if let Some(c) = conversation.filter(|_| !main_conversation) {
            remember(&mut self.main_conversations, c);
        }
        if let Some(s) = facts.system.filter(|_| !main_system) {
            remember(&mut self.main_systems, s);
        }
        Sender::of(Agent::Main)
    }
}

/// [`Session`]s by session id (exchanges without one share one state).
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: HashMap<String, (Session, u64)>,
    clock: u64,
}

impl Sessions {
    /// [`Session::sender`] within session `id`.
    pub fn sender(&mut self, id: Option<&str>, facts: &Facts) -> Option<Sender> {
        let id = id.unwrap_or("");
        self.clock += 1;
        if !self.sessions.contains_key(id) && self.sessions.len() >= MAX_SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.sessions.remove(&k);
            }
        }
        let (session, seen) = self.sessions.entry(id.to_string()).or_default();
        *seen = self.clock;
        session.sender(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message;
    use serde_json::{Value, json};

    const MAIN_SYSTEM: &str = r#"[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.332.d2f;"},{"type":"text","text":"You are Claude Code."}]"#;
    const AGENT_SYSTEM: &str = r#"[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.332.4f9;"},{"type":"text","text":"You are an agent for Claude Code."}]"#;
    const TOOLS: &str = r#"[{"name":"Agent"},{"name":"Bash"}]"#;

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>context</system-reminder>"},
            {"type": "text", "text": text}]})
    }

    fn facts(system: &str, tools: &str, first: &Value, calls: &[(&str, &str)]) -> Facts {
        let mut f = Facts::new(Route::Messages);
        f.system_text(system);
        f.tools_text(tools);
        f.first_message(first);
        let content: Vec<Value> = calls
            .iter()
            .map(|(id, prompt)| json!({"type": "tool_use", "id": id, "name": "Agent", "input": {"description": "d", "prompt": prompt, "subagent_type": "general-purpose"}}))
            .collect();
        f.response_message_text(&json!({"role": "assistant", "content": content}).to_string());
        f
    }

    fn labels(session: &mut Session, list: &[Facts]) -> Vec<String> {
        list.iter()
            .map(|f| session.sender(f).map_or("-".into(), |s| s.label()))
            .collect()
    }

    #[test]
    fn main_sub_agents_and_helpers_as_claude_code_sends_them() {
        let hi = user("say hi");
        let task1 = user("find the config files");
        let task2 = user("read the docs");
        let title =
            json!({"role": "user", "content": "<session>say hi</session> Write the title."});
        let mut count = Facts::new(Route::CountTokens);
        count.tools_text(TOOLS);
        let list = [
            facts(MAIN_SYSTEM, TOOLS, &hi, &[]),
            facts(
                r#"[{"type":"text","text":"Name the session."}]"#,
                "[]",
                &title,
                &[],
            ),
            facts(
                MAIN_SYSTEM,
                TOOLS,
                &hi,
                &[
                    ("toolu_1", "find the config files"),
                    ("toolu_2", "read the docs"),
                ],
            ),
            // The two sub-agents, interleaved, each for two turns; the second one retried.
            facts(AGENT_SYSTEM, TOOLS, &task2, &[]),
            facts(AGENT_SYSTEM, TOOLS, &task1, &[]),
            facts(AGENT_SYSTEM, TOOLS, &task2, &[]),
            facts(AGENT_SYSTEM, TOOLS, &task2, &[]),
            facts(AGENT_SYSTEM, TOOLS, &task1, &[]),
            count,
            facts(MAIN_SYSTEM, TOOLS, &hi, &[]),
            // A sub-agent whose call the log did not show.
            facts(AGENT_SYSTEM, TOOLS, &user("unseen"), &[]),
            // The quota probe.
            facts(
                "\"\"",
                "[]",
                &json!({"role": "user", "content": "quota"}),
                &[],
            ),
        ];
        let mut s = Session::default();
        assert_eq!(
            labels(&mut s, &list),
            [
                "main",
                "auxiliary",
                "main",
                "subagent 1",
                "subagent 2",
                "subagent 1",
                "subagent 1",
                "subagent 2",
                "-",
                "main",
                "subagent",
                "auxiliary"
            ]
        );
        let mut again = Session::default();
        let sub = again
            .sender(&list[0])
            .and(again.sender(&list[2]))
            .and(again.sender(&list[4]));
        assert_eq!(
            sub.unwrap().subagent,
            Some(Subagent {
                number: 1,
                tool_use_id: "toolu_1".into(),
                description: "d".into(),
                kind: "general-purpose".into(),
            })
        );
    }

    #[test]
    fn the_main_conversation_survives_compaction_and_a_changed_system_prompt() {
        let hi = user("say hi");
        let summary = user("This session is being continued from a previous conversation.");
        let later_system = MAIN_SYSTEM.replace("Claude Code.", "Claude Code. Today is tomorrow.");
        let mut s = Session::default();
        let list = [
            facts(MAIN_SYSTEM, TOOLS, &hi, &[]),
            // Compacted: a new first message, the same system prompt.
            facts(MAIN_SYSTEM, TOOLS, &summary, &[]),
            // The system prompt changed: the same first message.
            facts(&later_system, TOOLS, &summary, &[]),
            facts(&later_system, TOOLS, &user("a new main message"), &[]),
        ];
        assert_eq!(labels(&mut s, &list), ["main", "main", "main", "main"]);
    }

    #[test]
    fn a_sub_agent_with_the_main_system_prompt_is_told_by_its_prompt() {
        let mut s = Session::default();
        let list = [
            facts(MAIN_SYSTEM, TOOLS, &user("go"), &[("toolu_9", "fork this")]),
            facts(MAIN_SYSTEM, TOOLS, &user("fork this"), &[]),
            // A second call with the same prompt starts a second sub-agent.
            facts(
                MAIN_SYSTEM,
                TOOLS,
                &user("go"),
                &[("toolu_10", "fork this")],
            ),
        ];
        assert_eq!(labels(&mut s, &list), ["main", "subagent 1", "main"]);
    }

    #[test]
    fn sessions_are_apart_and_the_least_recent_is_forgotten() {
        let mut all = Sessions::default();
        let main = facts(MAIN_SYSTEM, TOOLS, &user("go"), &[]);
        let agent = facts(AGENT_SYSTEM, TOOLS, &user("x"), &[]);
        assert_eq!(all.sender(Some("a"), &main).unwrap().agent, Agent::Main);
        assert_eq!(
            all.sender(Some("b"), &agent).unwrap().agent,
            Agent::Main,
            "b's first"
        );
        assert_eq!(
            all.sender(Some("a"), &agent).unwrap().agent,
            Agent::Subagent
        );
        for i in 0..MAX_SESSIONS {
            all.sender(Some(&format!("s{i}")), &main);
        }
        assert_eq!(all.sessions.len(), MAX_SESSIONS);
        assert!(!all.sessions.contains_key("a") && !all.sessions.contains_key("b"));
        assert_eq!(message::text_key("x"), message::text_key(" x "));
    }
}
