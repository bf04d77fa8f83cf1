//! `show` and `sessions` as terminal text: a session as a conversation (what each request
//! added, what each response said, per exchange its status, model, tokens and timings), with
//! ANSI colour only when asked for (a terminal, not a pipe).

use serde_json::Value;
use std::fmt::Write as _;
use traffic_record::summary::thousands;

use crate::log::Skipped;
use crate::session::{AgentTotal, Exchange, Role, Session, Summary, content_text, is_reminder};

/// Tool results and reminders longer than this many lines are folded.
const FOLD_LINES: usize = 8;
const FOLD_CHARS: usize = 1_000;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    /// Never fold long tool results.
    pub full: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    fn blue(&self, t: &str) -> String {
        self.paint("34", t)
    }
    fn magenta(&self, t: &str) -> String {
        self.paint("35", t)
    }
    fn cyan(&self, t: &str) -> String {
        self.paint("36", t)
    }
}

/// `61234.5` ms -> `1m 01s`; `2306` -> `2.31 s`; `412` -> `412 ms`.
pub fn duration(ms: f64) -> String {
    if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1e3)
    } else {
        let s = (ms / 1e3).round() as u64;
        if s < 3_600 {
            format!("{}m {:02}s", s / 60, s % 60)
        } else {
            format!("{}h {:02}m", s / 3_600, (s % 3_600) / 60)
        }
    }
}

pub fn usd(cost: f64) -> String {
    if cost >= 1.0 {
        format!("${cost:.2}")
    } else {
        format!("${cost:.4}")
    }
}

/// A cost, with `+?` when exchanges of models the price table does not know add to it.
pub fn usd_with_unpriced(cost: f64, unpriced: usize) -> String {
    if unpriced > 0 {
        format!("{}+?", usd(cost))
    } else {
        usd(cost)
    }
}

/// `main $0.1200 · subagent 1 $0.0300 · auxiliary $0.0010`: who spent what. Senders that
/// cost nothing and priced nothing (`count_tokens`) are left out; `exchanges` adds each one's
/// number of exchanges.
pub fn agent_costs(agents: &[AgentTotal], exchanges: bool) -> String {
    agents
        .iter()
        .filter(|a| a.cost_usd > 0.0 || a.unpriced_exchanges > 0)
        .map(|a| {
            let mut item = format!(
                "{} {}",
                a.agent,
                usd_with_unpriced(a.cost_usd, a.unpriced_exchanges)
            );
            if exchanges {
                let n = a.exchanges;
                let _ = write!(item, " ({n} exchange{})", if n == 1 { "" } else { "s" });
            }
            item
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `2026-12-03T10:15:00.123456789Z` -> `2026-12-03 10:15:00`.
pub fn short_time(rfc3339: &str) -> String {
    rfc3339
        .get(..19)
        .map(|s| s.replace('T', " "))
        .unwrap_or_else(|| rfc3339.to_string())
}

/// The `sessions` table.
pub fn sessions_table(sessions: &[Summary], skipped: &Skipped, style: Style) -> String {
    let mut out = String::new();
    let header = format!(
        "{:<36}  {:<19}  {:>8}  {:>5}  {:>5}  {:>9}  {:>9}  {:>11}  {:>9}  {:>6}  {}",
        "SESSION",
        "STARTED (UTC)",
        "DURATION",
        "EXCH",
        "TURNS",
        "INPUT",
        "OUTPUT",
        "CACHE R/W",
        "COST",
        "ERRORS",
        "MODELS"
    );
    let _ = writeln!(out, "{}", style.bold(&header));
    for s in sessions {
        let cost = usd_with_unpriced(s.cost_usd, s.unpriced_exchanges);
        let errors = if s.errors > 0 {
            style.red(&format!("{:>6}", s.errors))
        } else {
            format!("{:>6}", 0)
        };
        let _ = writeln!(
            out,
            "{:<36}  {:<19}  {:>8}  {:>5}  {:>5}  {:>9}  {:>9}  {:>11}  {:>9}  {}  {}",
            style.cyan(&format!("{:<36}", s.session_id)),
            short_time(&s.started_at),
            duration(s.duration_ms),
            s.exchanges,
            s.turns,
            thousands(s.tokens.input),
            thousands(s.tokens.output),
            format!(
                "{}/{}",
                compact(s.tokens.cache_read),
                compact(s.tokens.cache_write)
            ),
            cost,
            errors,
            s.models.join(", ")
        );
    }
    if sessions.is_empty() {
        let _ = writeln!(out, "(no Claude Code session in the log)");
    }
    if skipped.total() > 0 {
        let _ = writeln!(out, "{}", style.yellow(&skipped_line(skipped)));
    }
    out
}

/// `1234567` -> `1.2M`.
fn compact(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

pub fn skipped_line(s: &Skipped) -> String {
    format!(
        "skipped {} lines that are not traffic records: {} cut short, {} not UTF-8, {} not JSON, {} other JSON",
        s.total(),
        s.cut,
        s.invalid_utf8,
        s.not_json,
        s.not_record
    )
}

/// A session as a conversation; `only`: just that exchange id.
pub fn show(session: &Session, only: Option<&str>, skipped: &Skipped, style: Style) -> String {
    let mut out = String::new();
    let s = &session.summary;
    let _ = writeln!(
        out,
        "{} {}",
        style.bold("session"),
        style.cyan(&s.session_id)
    );
    let _ = writeln!(
        out,
        "  started {} UTC · {} · {} exchanges · {} turns · {}",
        short_time(&s.started_at),
        duration(s.duration_ms),
        s.exchanges,
        s.turns,
        s.models.join(", ")
    );
    let _ = writeln!(
        out,
        "  tokens in {} · out {} · cache read {} · cache write {} · cost {}{}{}",
        thousands(s.tokens.input),
        thousands(s.tokens.output),
        thousands(s.tokens.cache_read),
        thousands(s.tokens.cache_write),
        usd(s.cost_usd),
        if s.unpriced_exchanges > 0 {
            format!(" (+{} exchanges of unpriced models)", s.unpriced_exchanges)
        } else {
            String::new()
        },
        if s.errors > 0 {
            style.red(&format!(" · {} errors", s.errors))
        } else {
            String::new()
        }
    );
    let by_agent = agent_costs(&s.agents, true);
    if !by_agent.is_empty() {
        let _ = writeln!(out, "  cost by agent: {by_agent}");
    }
    for a in s.agents.iter().filter(|a| a.description.is_some()) {
        let _ = writeln!(
            out,
            "  {}",
            style.dim(&format!(
                "{}: {} ({})",
                a.agent,
                a.description.as_deref().unwrap_or(""),
                a.tool_use_id.as_deref().unwrap_or("")
            ))
        );
    }
    if skipped.total() > 0 {
        let _ = writeln!(out, "  {}", style.yellow(&skipped_line(skipped)));
    }
    for turn in session.turns() {
        for e in &session.exchanges[turn.exchanges.clone()] {
            if only.is_some_and(|id| id != e.head.id) {
                continue;
            }
            out.push('\n');
            if e.number == turn.exchanges.start + 1 {
                let _ = writeln!(out, "{}", style.bold(&style.blue(&turn_header(&turn))));
            }
            exchange(&mut out, session, e, style);
        }
    }
    out
}

/// `══ Turn 2 · $0.0150 (main $0.0120 · subagent 1 $0.0030)`: the turn's cost, all its
/// exchanges, by sender when more than one spent.
pub fn turn_header(turn: &crate::session::Turn) -> String {
    let name = match turn.number {
        0 => "Before the first turn".to_string(),
        n => format!("Turn {n}"),
    };
    let mut line = format!(
        "══ {name} · {}",
        usd_with_unpriced(turn.cost_usd, turn.unpriced_exchanges)
    );
    let spenders = turn
        .agents
        .iter()
        .filter(|a| a.cost_usd > 0.0 || a.unpriced_exchanges > 0)
        .count();
    if spenders > 1 {
        let _ = write!(line, " ({})", agent_costs(&turn.agents, false));
    }
    line
}

fn exchange(out: &mut String, session: &Session, e: &Exchange, style: Style) {
    let h = &e.head;
    let status = match (&e.response, h.is_error()) {
        (Some(r), false) => style.green(&r.status.to_string()),
        (Some(r), true) => style.red(&format!("{} {}", r.status, h.outcome.as_str())),
        (None, _) => style.red(h.outcome.as_str()),
    };
    let label = e.label();
    let role = match e.role {
        Role::Main => style.blue(&label),
        Role::Subagent => style.magenta(&label),
        _ => style.dim(&label),
    };
    let t = &e.tokens;
    let mut line = format!(
        "── #{} {} {} {} {}",
        e.number,
        short_time(&h.started_at).get(11..).unwrap_or(""),
        role,
        h.model.as_deref().unwrap_or("?"),
        status
    );
    if h.usage.is_some() {
        let _ = write!(
            line,
            " · in {} out {} cache r {} w {}",
            thousands(t.input),
            thousands(t.output),
            thousands(t.cache_read),
            thousands(t.cache_write_5m + t.cache_write_1h)
        );
    }
    if let Some(ttfb) = h.ttfb_ms {
        let _ = write!(line, " · ttfb {}", duration(ttfb));
    }
    let _ = write!(line, " · {}", duration(h.duration_ms));
    if let Some(c) = e.cost_usd {
        let _ = write!(line, " · {}", usd(c));
    }
    let _ = writeln!(out, "{}", style.bold(&line));
    let _ = writeln!(
        out,
        "   {}",
        style.dim(&format!("exchange {} {}", h.id, h.path))
    );
    if let Some(err) = &h.error {
        let _ = writeln!(out, "   {}", style.red(&format!("error: {err}")));
    }
    if e.base.is_some() {
        let notes = e.change_notes();
        if !notes.is_empty() {
            let _ = writeln!(out, "   {}", style.yellow(&notes.join("; ")));
        }
    } else if e.system.is_some() && e.role != Role::CountTokens {
        let sys = e
            .system
            .map(|i| content_text(&session.systems[i]).len())
            .unwrap_or(0);
        let tools = e
            .tools
            .and_then(|i| session.tools[i].as_array().map(Vec::len))
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "   {}",
            style.dim(&format!(
                "system prompt {} chars · {} tools",
                thousands(sys as u64),
                tools
            ))
        );
    }
    for m in &e.added {
        // A later request re-sends the previous response as an assistant message: shown there.
        if e.base.is_some() && m["role"] == "assistant" {
            continue;
        }
        message(out, m, style);
    }
    if let Some(other) = &e.request_other {
        let _ = writeln!(out, "   request body: {}", fold(&other.to_string(), style));
    }
    match &e.response {
        Some(r) => {
            if let Some(m) = &r.message {
                if m["type"] == "error" || m.get("error").is_some_and(Value::is_object) {
                    let _ = writeln!(out, "   {}", style.red(&format!("response: {m}")));
                } else if m.get("content").is_some() {
                    message(out, m, style);
                } else {
                    let _ = writeln!(out, "   response: {}", fold(&m.to_string(), style));
                }
            }
            if let Some(text) = &r.text {
                let _ = writeln!(out, "   response: {}", fold(text, style));
            }
        }
        // With a status, the line was indexed but not readable: its error line says so.
        None if e.head.status.is_some() => {}
        None => {
            let _ = writeln!(out, "   {}", style.red("no response"));
        }
    }
}

fn message(out: &mut String, m: &Value, style: Style) {
    let role = m["role"].as_str().unwrap_or("user");
    let who = match role {
        "assistant" => style.green("assistant"),
        "system" => style.dim("system"),
        _ => style.cyan("user"),
    };
    let blocks = match &m["content"] {
        Value::String(s) => vec![serde_json::json!({"type": "text", "text": s})],
        Value::Array(b) => b.clone(),
        _ => Vec::new(),
    };
    let mut i = 0;
    while i < blocks.len() {
        let run = blocks[i..].iter().take_while(|b| is_reminder(b)).count();
        if run > 0 {
            let chars: usize = blocks[i..i + run]
                .iter()
                .map(|b| b["text"].as_str().map_or(0, str::len))
                .sum();
            let _ = writeln!(
                out,
                "   {}",
                style.dim(&format!(
                    "{run} system reminder{} ({} chars added by Claude Code)",
                    if run == 1 { "" } else { "s" },
                    thousands(chars as u64)
                ))
            );
            i += run;
            continue;
        }
        let b = &blocks[i];
        i += 1;
        match b["type"].as_str().unwrap_or("") {
            "text" => {
                let text = b["text"].as_str().unwrap_or("");
                if role == "system" {
                    let _ = writeln!(out, "   {who}: {}", fold(text, style));
                } else {
                    let _ = writeln!(out, "   {who}: {}", indent(text));
                }
            }
            "thinking" => {
                let _ = writeln!(
                    out,
                    "   {} {}",
                    style.magenta("thinking:"),
                    style.dim(&indent(b["thinking"].as_str().unwrap_or("")))
                );
            }
            "redacted_thinking" => {
                let _ = writeln!(out, "   {}", style.magenta("thinking (redacted)"));
            }
            "tool_use" | "server_tool_use" => {
                let input = b
                    .get("input")
                    .or_else(|| b.get("input_partial_json"))
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "   {} {} {}",
                    style.yellow("tool call"),
                    style.bold(b["name"].as_str().unwrap_or("?")),
                    fold(&input, style)
                );
            }
            "tool_result" => {
                let text = content_text(&b["content"]);
                let label = if b["is_error"] == true {
                    style.red("tool error")
                } else {
                    style.yellow("tool result")
                };
                let _ = writeln!(out, "   {label}: {}", fold(&text, style));
            }
            "image" | "document" => {
                let _ = writeln!(out, "   {who}: [{}]", b["type"].as_str().unwrap_or(""));
            }
            other => {
                let _ = writeln!(out, "   {who} {other}: {}", fold(&b.to_string(), style));
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.trim_end().replace('\n', "\n      ")
}

/// Long text keeps its first lines and says how much was folded.
fn fold(text: &str, style: Style) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    if style.full || (lines.len() <= FOLD_LINES && text.len() <= FOLD_CHARS) {
        return indent(text);
    }
    let mut kept = String::new();
    for l in lines.iter().take(FOLD_LINES) {
        if kept.len() + l.len() > FOLD_CHARS {
            let room = FOLD_CHARS.saturating_sub(kept.len());
            let cut = (0..=room.min(l.len()))
                .rev()
                .find(|i| l.is_char_boundary(*i))
                .unwrap_or(0);
            kept.push_str(&l[..cut]);
            break;
        }
        kept.push_str(l);
        kept.push('\n');
    }
    let shown = kept.len();
    format!(
        "{}\n      {}",
        indent(&kept),
        style.dim(&format!(
            "… folded: {} more chars in {} lines (--full shows all)",
            thousands(text.len().saturating_sub(shown) as u64),
            lines.len()
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration(412.4), "412 ms");
        assert_eq!(duration(2306.0), "2.31 s");
        assert_eq!(duration(61_234.5), "1m 01s");
        assert_eq!(duration(7_300_000.0), "2h 01m");
        assert_eq!(usd(0.05), "$0.0500");
        assert_eq!(usd(417.6), "$417.60");
    }

    #[test]
    fn long_tool_output_is_folded_unless_full() {
        let text = (0..50)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let plain = Style {
            color: false,
            full: false,
        };
        let folded = fold(&text, plain);
        assert!(
            folded.contains("line 7") && !folded.contains("line 8\n"),
            "{folded}"
        );
        assert!(
            folded.contains("folded") && folded.contains("50 lines"),
            "{folded}"
        );
        let full = fold(
            &text,
            Style {
                color: false,
                full: true,
            },
        );
        assert!(full.contains("line 49") && !full.contains("folded"));
        let coloured = Style {
            color: true,
            full: false,
        };
        assert!(coloured.red("x").starts_with("\x1b[31m"));
        assert_eq!(plain.red("x"), "x");
    }
}
