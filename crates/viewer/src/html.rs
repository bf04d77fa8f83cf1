//! `html`: one session as one self-contained HTML page (inline CSS and script, no network:
//! its Content-Security-Policy forbids any fetch), a timeline of turns and exchanges whose
//! details (the full request and response, the diff against the previous request of the same
//! conversation) are rebuilt in the browser from deltas, so a 200-exchange session whose
//! requests re-send megabytes of history stays a small file.

use serde_json::{Value, json};
use std::fmt::Write as _;

use crate::log::Skipped;
use crate::session::{Exchange, Role, Session, content_text, is_reminder};
use crate::term::{duration, short_time, skipped_line, turn_header, usd, usd_with_unpriced};
use traffic_record::summary::thousands;

/// Text longer than this (or than `FOLD_LINES` lines) is folded behind a click.
const FOLD_CHARS: usize = 1_200;
const FOLD_LINES: usize = 12;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script>` element: no `<` can close it.
fn script_json(v: &Value) -> String {
    serde_json::to_string(v)
        .expect("serializable")
        .replace('<', "\\u003c")
}

pub fn render(session: &Session, skipped: &Skipped, price_date: &str) -> String {
    let s = &session.summary;
    let mut page = String::new();
    let title = format!("Claude Code session {}", s.session_id);
    let _ = write!(
        page,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{CSS}</style></head>
<body>
<header>
<h1>Claude Code session <code>{id}</code></h1>
<div class="stats">
<span><b>started</b> {start} UTC</span><span><b>duration</b> {dur}</span>
<span><b>exchanges</b> {exchanges}</span><span><b>turns</b> {turns}</span>
<span><b>models</b> {models}</span>
</div>
<div class="stats">
<span><b>input</b> {tin}</span><span><b>output</b> {tout}</span>
<span><b>cache read</b> {tcr}</span><span><b>cache write</b> {tcw}</span>
<span class="cost"><b>cost</b> {cost}</span>{unpriced}{errors}
</div>
{agents}
{skipped}
</header>
<main>
"#,
        title = escape(&title),
        CSS = CSS,
        id = escape(&s.session_id),
        start = escape(&short_time(&s.started_at)),
        dur = duration(s.duration_ms),
        exchanges = s.exchanges,
        turns = s.turns,
        models = escape(&s.models.join(", ")),
        tin = thousands(s.tokens.input),
        tout = thousands(s.tokens.output),
        tcr = thousands(s.tokens.cache_read),
        tcw = thousands(s.tokens.cache_write),
        cost = usd(s.cost_usd),
        unpriced = if s.unpriced_exchanges > 0 {
            format!(
                "<span><b>unpriced</b> {} exchanges (model not in the price table)</span>",
                s.unpriced_exchanges
            )
        } else {
            String::new()
        },
        errors = if s.errors > 0 {
            format!("<span class=\"err\"><b>errors</b> {}</span>", s.errors)
        } else {
            String::new()
        },
        agents = agents_table(&s.agents),
        skipped = if skipped.total() > 0 {
            format!("<p class=\"warn\">{}</p>", escape(&skipped_line(skipped)))
        } else {
            String::new()
        },
    );
    definitions(&mut page, session);
    page.push_str("<section class=\"timeline\">\n<h2>Timeline</h2>\n");
    for turn in session.turns() {
        let header = turn_header(&turn);
        let _ = writeln!(
            page,
            "<h3 class=\"turn\" id=\"turn-{n}\" data-cost=\"{cost}\">{}</h3>",
            escape(header.trim_start_matches("══ ")),
            n = turn.number,
            cost = turn.cost_usd,
        );
        for e in &session.exchanges[turn.exchanges] {
            exchange(&mut page, e);
        }
    }
    page.push_str("</section>\n</main>\n");
    let data = json!({
        "systems": session.systems,
        "tools": session.tools,
        "exchanges": session.exchanges.iter().map(exchange_data).collect::<Vec<_>>(),
    });
    let _ = write!(
        page,
        "<footer>Costs from the price table of {} (the shipper's). Written by claude-api-logger html.</footer>\n\
         <script id=\"session-data\" type=\"application/json\">{}</script>\n<script>{}</script>\n</body></html>\n",
        escape(price_date),
        script_json(&data),
        SCRIPT
    );
    page
}

/// Cost by sender: the main conversation, each sub-agent (with the call that started it),
/// auxiliary requests; the rows add up to the session's cost.
fn agents_table(agents: &[crate::session::AgentTotal]) -> String {
    if agents.is_empty() {
        return String::new();
    }
    let mut t = String::from(
        "<table class=\"agents\"><thead><tr><th>agent</th><th>exchanges</th><th>cost</th><th>started by</th></tr></thead><tbody>\n",
    );
    for a in agents {
        let started = match (&a.description, &a.tool_use_id) {
            (Some(d), Some(id)) => {
                format!("{} <span class=\"dim\">{}</span>", escape(d), escape(id))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            "<tr data-agent=\"{agent}\" data-cost=\"{cost}\"><td>{agent}</td><td>{n}</td><td class=\"cost\">{shown}</td><td>{started}</td></tr>",
            agent = escape(&a.agent),
            cost = a.cost_usd,
            n = a.exchanges,
            shown = usd_with_unpriced(a.cost_usd, a.unpriced_exchanges),
        );
    }
    t.push_str("</tbody></table>");
    t
}

/// The system prompts and tool lists, each shown once.
fn definitions(page: &mut String, session: &Session) {
    page.push_str("<h2>System prompts and tools</h2>\n<section class=\"defs\">\n");
    for (i, system) in session.systems.iter().enumerate() {
        let text = match system {
            Value::String(s) => s.clone(),
            other => content_text(other),
        };
        let _ = writeln!(
            page,
            "<details class=\"def\" id=\"system-{n}\"><summary>System prompt {n} <span class=\"dim\">({} chars)</span></summary><pre>{}</pre></details>",
            thousands(text.len() as u64),
            escape(&text),
            n = i + 1
        );
    }
    for (i, tools) in session.tools.iter().enumerate() {
        let list = tools.as_array().cloned().unwrap_or_default();
        let names: Vec<String> = list
            .iter()
            .map(|t| t["name"].as_str().unwrap_or("?").to_string())
            .collect();
        let _ = write!(
            page,
            "<details class=\"def\" id=\"tools-{n}\"><summary>Tool definitions {n} <span class=\"dim\">({} tools: {})</span></summary>",
            list.len(),
            escape(&names.join(", ")),
            n = i + 1
        );
        for t in &list {
            let _ = write!(
                page,
                "<details class=\"tool\"><summary><b>{}</b> <span class=\"dim\">{}</span></summary><pre>{}</pre></details>",
                escape(t["name"].as_str().unwrap_or("?")),
                escape(&first_line(t["description"].as_str().unwrap_or(""), 140)),
                escape(&serde_json::to_string_pretty(t).unwrap_or_default())
            );
        }
        page.push_str("</details>\n");
    }
    page.push_str("</section>\n");
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        line.chars().take(max).collect::<String>() + "…"
    } else {
        line.to_string()
    }
}

fn exchange(page: &mut String, e: &Exchange) {
    let h = &e.head;
    let role_class = match e.role {
        Role::Main => "main",
        Role::Subagent => "subagent",
        Role::Auxiliary => "auxiliary",
        Role::CountTokens | Role::Other => "other",
    };
    let role = e.label();
    let status = match (&e.response, h.status) {
        (Some(r), _) => r.status.to_string(),
        // Indexed, but the line was not readable (its error says so).
        (None, Some(status)) => status.to_string(),
        (None, None) => "no response".to_string(),
    };
    let err_class = if h.is_error() { " error" } else { "" };
    let _ = write!(
        page,
        "<article class=\"ex {role_class}{err_class}\" id=\"ex-{n}\" data-n=\"{n}\" data-agent=\"{role}\" data-cost=\"{cost}\">\n<div class=\"ex-head\"><span class=\"num\">#{n}</span> <span class=\"time\">{time}</span> <span class=\"badge {role_class}\">{role}</span> <span class=\"model\">{model}</span> <span class=\"status{err_class}\">{status} {outcome}</span>",
        n = e.number,
        cost = e.cost_usd.map(|c| c.to_string()).unwrap_or_default(),
        time = escape(short_time(&h.started_at).get(11..).unwrap_or("")),
        role = escape(&role),
        model = escape(h.model.as_deref().unwrap_or("?")),
        outcome = if h.outcome == traffic_record::Outcome::Complete {
            String::new()
        } else {
            escape(h.outcome.as_str())
        },
    );
    if h.usage.is_some() {
        let t = &e.tokens;
        let _ = write!(
            page,
            " <span class=\"tok\">in {} · out {} · cache r {} w {}</span>",
            thousands(t.input),
            thousands(t.output),
            thousands(t.cache_read),
            thousands(t.cache_write_5m + t.cache_write_1h)
        );
    }
    if let Some(ttfb) = h.ttfb_ms {
        let _ = write!(page, " <span class=\"dim\">ttfb {}</span>", duration(ttfb));
    }
    let _ = write!(
        page,
        " <span class=\"dim\">{}</span>",
        duration(h.duration_ms)
    );
    if let Some(c) = e.cost_usd {
        let _ = write!(page, " <span class=\"cost\">{}</span>", usd(c));
    }
    page.push_str("</div>\n");
    if let Some(err) = &h.error {
        let _ = writeln!(page, "<p class=\"err\">{}</p>", escape(err));
    }
    let mut notes = e.change_notes();
    if e.base.is_none() && e.role != Role::CountTokens {
        if let Some(i) = e.system {
            notes.push(format!(
                "<a href=\"#system-{n}\">system prompt {n}</a>",
                n = i + 1
            ));
        }
        if let Some(i) = e.tools {
            notes.push(format!(
                "<a href=\"#tools-{n}\">tool definitions {n}</a>",
                n = i + 1
            ));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(page, "<p class=\"note\">{}</p>", notes.join(" · "));
    }
    page.push_str("<div class=\"msgs\">\n");
    for m in &e.added {
        if e.base.is_some() && m["role"] == "assistant" {
            continue;
        }
        message(page, m);
    }
    if let Some(r) = &e.response {
        if let Some(m) = &r.message {
            if m.get("content").is_some() {
                message(page, m);
            } else {
                let _ = writeln!(
                    page,
                    "<div class=\"blk err\"><span class=\"who\">response</span>{}</div>",
                    folded(&serde_json::to_string_pretty(m).unwrap_or_default())
                );
            }
        } else if let Some(t) = &r.text {
            let _ = writeln!(
                page,
                "<div class=\"blk\"><span class=\"who\">response</span>{}</div>",
                folded(t)
            );
        }
    }
    page.push_str("</div>\n");
    let diff = match e.base {
        Some(b) => format!(", diff against #{}", b + 1),
        None => String::new(),
    };
    let _ = writeln!(
        page,
        "<details class=\"detail\" data-n=\"{n}\"><summary>Full request and response{diff}</summary><div class=\"detail-body\"></div></details>\n</article>",
        n = e.number
    );
}

pub(crate) fn message(page: &mut String, m: &Value) {
    let who = match m["role"].as_str() {
        Some("assistant") => "assistant",
        Some("system") => "system",
        _ => "user",
    };
    let blocks = match &m["content"] {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(b) => b.clone(),
        _ => Vec::new(),
    };
    let mut i = 0;
    while i < blocks.len() {
        let run = blocks[i..].iter().take_while(|b| is_reminder(b)).count();
        if run > 0 {
            let texts: Vec<&str> = blocks[i..i + run]
                .iter()
                .map(|b| b["text"].as_str().unwrap_or(""))
                .collect();
            let chars: usize = texts.iter().map(|t| t.len()).sum();
            let _ = writeln!(
                page,
                "<details class=\"blk reminder\"><summary>{run} system reminder{} <span class=\"dim\">({} chars added by Claude Code)</span></summary>{}</details>",
                if run == 1 { "" } else { "s" },
                thousands(chars as u64),
                texts
                    .iter()
                    .map(|t| format!("<pre>{}</pre>", escape(t)))
                    .collect::<Vec<_>>()
                    .join("<hr>")
            );
            i += run;
            continue;
        }
        let b = &blocks[i];
        i += 1;
        match b["type"].as_str().unwrap_or("") {
            "text" => {
                let text = b["text"].as_str().unwrap_or("");
                {
                    let _ = writeln!(
                        page,
                        "<div class=\"blk {who}\"><span class=\"who\">{who}</span>{}</div>",
                        folded(text)
                    );
                }
            }
            "thinking" => {
                let _ = writeln!(
                    page,
                    "<div class=\"blk thinking\"><span class=\"who\">thinking</span>{}</div>",
                    folded(b["thinking"].as_str().unwrap_or(""))
                );
            }
            "tool_use" | "server_tool_use" => {
                let name = b["name"].as_str().unwrap_or("?");
                let agent = conversation::AGENT_TOOLS.contains(&name);
                let input = b.get("input").or_else(|| b.get("input_partial_json"));
                let _ = writeln!(
                    page,
                    "<div class=\"blk tool-use{}\"><span class=\"who\">tool call</span><b>{}</b>{}{}</div>",
                    if agent { " agent" } else { "" },
                    escape(name),
                    if agent {
                        " <span class=\"badge subagent\">starts a sub-agent</span>"
                    } else {
                        ""
                    },
                    folded(
                        &input
                            .map(|i| serde_json::to_string_pretty(i).unwrap_or_default())
                            .unwrap_or_default()
                    )
                );
            }
            "tool_result" => {
                let text = content_text(&b["content"]);
                let err = b["is_error"] == true;
                let _ = writeln!(
                    page,
                    "<div class=\"blk tool-result{}\"><span class=\"who\">{}</span>{}</div>",
                    if err { " err" } else { "" },
                    if err { "tool error" } else { "tool result" },
                    folded(&text)
                );
            }
            other => {
                let _ = writeln!(
                    page,
                    "<div class=\"blk\"><span class=\"who\">{} {}</span>{}</div>",
                    who,
                    escape(other),
                    folded(&serde_json::to_string_pretty(b).unwrap_or_default())
                );
            }
        }
    }
}

/// Short text as is; long text folded behind its first lines.
pub(crate) fn folded(text: &str) -> String {
    let lines = text.lines().count();
    if text.len() <= FOLD_CHARS && lines <= FOLD_LINES {
        return format!("<pre>{}</pre>", escape(text));
    }
    let head: String = text.lines().take(3).collect::<Vec<_>>().join("\n");
    let head: String = head.chars().take(300).collect();
    format!(
        "<details class=\"fold\"><summary><pre class=\"preview\">{}</pre><span class=\"dim\">… {} lines, {} chars: click to unfold</span></summary><pre>{}</pre></details>",
        escape(&head),
        thousands(lines as u64),
        thousands(text.chars().count() as u64),
        escape(text)
    )
}

/// What the page's script needs to rebuild an exchange's full request and response.
fn exchange_data(e: &Exchange) -> Value {
    json!({
        "id": e.head.id,
        "base": e.base,
        "kept": e.exact_kept,
        "dropped": e.dropped,
        "added": e.resent.iter().chain(&e.added).collect::<Vec<_>>(),
        "new_messages": e.added.len(),
        "changed": e.changed,
        "system": e.system,
        "tools": e.tools,
        "params": e.params,
        "method": "POST",
        "path": e.head.path,
        "query": e.query,
        "headers": e.request_headers,
        "request_truncated": e.request_truncated,
        "request_other": e.request_other,
        "response": e.response,
        "outcome": e.head.outcome.as_str(),
        "error": e.head.error,
        "started_at": e.head.started_at,
        "duration_ms": e.head.duration_ms,
        "ttfb_ms": e.head.ttfb_ms,
    })
}

pub(crate) const CSS: &str = r#"
:root{--bg:#fbfbfa;--fg:#1d1d1f;--dim:#6b6b70;--line:#e2e2e6;--main:#2f6fdf;--sub:#a23bc9;--side:#8a8a90;--err:#c62828;--ok:#2e7d32;--card:#fff;--code:#f4f4f6}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{padding:18px 28px;background:#1f2330;color:#f1f1f4}
header h1{margin:0 0 8px;font-size:19px;font-weight:600}
header code{font-size:15px;color:#9ecbff}
.stats{display:flex;flex-wrap:wrap;gap:6px 20px;font-size:13px;margin-top:4px;color:#d6d6dc}
.stats b{color:#8f95a8;font-weight:500;margin-right:4px}
.stats .cost{color:#ffd479}.stats .err{color:#ff8a80}
main{max-width:1100px;margin:0 auto;padding:16px 28px 40px}
h2{font-size:16px;margin:22px 0 10px;color:#333}
.defs{display:flex;flex-direction:column;gap:6px;margin-top:6px}
details.def{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px 12px}
details.def>summary{cursor:pointer;font-weight:600}
details.tool{margin:4px 0 4px 12px}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.timeline{position:relative}
.turn{margin:26px 0 8px;font-size:14px;color:var(--main);border-bottom:2px solid var(--main);padding-bottom:2px;text-transform:uppercase;letter-spacing:.05em}
.ex{position:relative;background:var(--card);border:1px solid var(--line);border-left:4px solid var(--main);border-radius:8px;margin:10px 0;padding:8px 14px 8px}
.ex.subagent{margin-left:36px;border-left-color:var(--sub)}
.ex.auxiliary,.ex.other{margin-left:36px;border-left-color:var(--side);opacity:.92}
.ex.error{border-left-color:var(--err)}
.ex-head{display:flex;flex-wrap:wrap;gap:4px 10px;align-items:baseline;font-size:13px}
.num{font-weight:700}.time,.dim{color:var(--dim)}
.model{font-family:ui-monospace,Menlo,monospace;font-size:12px}
.status{color:var(--ok);font-weight:600}.status.error,.err{color:var(--err)}
.cost{color:#8a6d00;font-weight:600}
.tok{color:#444}
.badge{font-size:11px;padding:1px 7px;border-radius:10px;background:#e7efff;color:var(--main);font-weight:600}
.badge.subagent{background:#f5e6fb;color:var(--sub)}.badge.auxiliary,.badge.other{background:#eee;color:#555}
table.agents{border-collapse:collapse;margin-top:8px;font-size:13px;color:#d6d6dc}
table.agents th{color:#8f95a8;font-weight:500;text-align:left;padding:0 14px 0 0}
table.agents td{padding:0 14px 0 0}table.agents .cost{color:#ffd479}table.agents .dim{color:#8f95a8}
.note{margin:4px 0;font-size:12px;color:#8a5a00}
.note a{color:var(--main)}
.msgs{display:flex;flex-direction:column;gap:6px;margin:8px 0 4px}
.blk{border-radius:6px;padding:6px 10px;background:var(--code)}
.blk .who{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--dim);margin-bottom:2px;font-weight:600}
.blk.user{background:#eaf2ff}.blk.system{background:#f1f1f4;color:#555}.blk.assistant{background:#eef8ee}
.blk.thinking{background:#f8f1fb;color:#5b3b6b}
.blk.tool-use{background:#fff6e0}.blk.tool-use b{font-family:ui-monospace,Menlo,monospace}
.blk.tool-use.agent{background:#f5e6fb}
.blk.tool-result{background:#f3f3f3}.blk.err{background:#fdecea}
.blk.reminder{background:transparent;padding:0 10px;font-size:12px;color:var(--dim)}
.blk.reminder>summary{cursor:pointer}.blk.reminder hr{border:0;border-top:1px solid var(--line)}
.blk.user pre,.blk.assistant pre{font:14px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
details.fold>summary{cursor:pointer;list-style:none}
details.fold>summary .preview{color:#333}
details.fold[open]>summary .preview{display:none}
details.detail{margin-top:6px;font-size:13px}
details.detail>summary{cursor:pointer;color:var(--main)}
.detail-body h4{margin:10px 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--dim)}
.detail-body pre.json{background:#1f2330;color:#e8e8ee;border-radius:6px;padding:10px;max-height:520px;overflow:auto}
.diff .add{background:#e6f6e6;color:#1b5e20;display:block}
.diff .del{background:#fdecea;color:#b71c1c;display:block}
.diff pre{background:var(--code);border-radius:6px;padding:8px;max-height:420px;overflow:auto}
.warn{color:#ffd479;margin:6px 0 0}
footer{max-width:1100px;margin:0 auto;padding:0 28px 30px;color:var(--dim);font-size:12px}
"#;

/// Rebuilds an exchange's full request (messages from its base's plus what it added, the
/// system prompt and tools from the shared lists) when its details are opened.
pub(crate) const SCRIPT: &str = r#"
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("session-data").textContent);
  var ex = data.exchanges;
  var cache = {};
  function messagesOf(i) {
    if (cache[i]) return cache[i];
    var e = ex[i];
    var m = e.base === null || e.base === undefined ? e.added.slice() : messagesOf(e.base).slice(0, e.kept).concat(e.added);
    cache[i] = m;
    return m;
  }
  function request(i) {
    var e = ex[i];
    var body = null;
    if (e.request_other) {
      body = e.request_other;
    } else {
      body = {};
      Object.keys(e.params || {}).forEach(function (k) { body[k] = e.params[k]; });
      if (e.system !== null && e.system !== undefined) body.system = data.systems[e.system];
      if (e.tools !== null && e.tools !== undefined) body.tools = data.tools[e.tools];
      body.messages = messagesOf(i);
    }
    return { method: e.method, path: e.path, query: e.query, headers: e.headers, body: body, truncated: e.request_truncated };
  }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function pretty(v) { return JSON.stringify(v, null, 2); }
  function lineDiff(a, b) {
    var x = a.split("\n"), y = b.split("\n");
    var s = 0;
    while (s < x.length && s < y.length && x[s] === y[s]) s++;
    var ex2 = x.length, ey = y.length;
    while (ex2 > s && ey > s && x[ex2 - 1] === y[ey - 1]) { ex2--; ey--; }
    var pre = el("pre");
    var ctx = Math.max(0, s - 2);
    if (ctx > 0) pre.appendChild(el("span", "dim", "… " + ctx + " unchanged lines\n"));
    for (var i = ctx; i < s; i++) pre.appendChild(document.createTextNode("  " + x[i] + "\n"));
    for (i = s; i < ex2; i++) pre.appendChild(el("span", "del", "- " + x[i]));
    for (i = s; i < ey; i++) pre.appendChild(el("span", "add", "+ " + y[i]));
    var tail = x.length - ex2;
    if (tail > 0) pre.appendChild(el("span", "dim", "… " + tail + " unchanged lines"));
    return pre;
  }
  function addedLines(text) {
    var pre = el("pre");
    text.split("\n").forEach(function (l) { pre.appendChild(el("span", "add", "+ " + l)); });
    return pre;
  }
  function diff(i) {
    var e = ex[i], b = e.base;
    var box = el("div", "diff");
    box.appendChild(el("h4", null, "What changed since #" + (b + 1)));
    var before = request(b).body, after = request(i).body;
    var added = e.added.slice(e.added.length - e.new_messages);
    var resent = e.added.length - e.new_messages;
    var p = el("p", null, "messages: " + (e.kept + resent) + " kept" + (resent ? " (" + resent + " with a moved cache mark)" : "") + ", " + e.dropped + " dropped, " + added.length + " added");
    box.appendChild(p);
    if (added.length) box.appendChild(addedLines(pretty(added)));
    var keys = {};
    Object.keys(before).concat(Object.keys(after)).forEach(function (k) { if (k !== "messages") keys[k] = true; });
    Object.keys(keys).forEach(function (k) {
      var x = before[k] === undefined ? "" : pretty(before[k]);
      var y = after[k] === undefined ? "" : pretty(after[k]);
      if (x !== y) {
        box.appendChild(el("p", null, k + ":"));
        box.appendChild(lineDiff(x, y));
      }
    });
    if (!e.dropped && !added.length && e.changed.length === 0) box.appendChild(el("p", "dim", "the same request again (a retry)"));
    return box;
  }
  function fill(details) {
    var body = details.querySelector(".detail-body");
    if (body.childNodes.length) return;
    var i = Number(details.getAttribute("data-n")) - 1;
    var e = ex[i];
    if (e.base !== null && e.base !== undefined) body.appendChild(diff(i));
    body.appendChild(el("h4", null, "Request"));
    body.appendChild(el("pre", "json request-json", pretty(request(i))));
    body.appendChild(el("h4", null, "Response"));
    var resp = e.response ? e.response : { outcome: e.outcome, error: e.error };
    body.appendChild(el("pre", "json response-json", pretty(resp)));
  }
  document.querySelectorAll("details.detail").forEach(function (d) {
    d.addEventListener("toggle", function () { if (d.open) fill(d); });
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_text_cannot_close_the_script_or_inject_markup() {
        let data = json!({"text": "</script><script>alert(1)</script><!--"});
        let embedded = script_json(&data);
        assert!(!embedded.contains('<'), "{embedded}");
        assert_eq!(serde_json::from_str::<Value>(&embedded).unwrap(), data);
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn long_text_is_folded_short_text_is_not() {
        assert!(!folded("short").contains("<details"));
        let long = "line\n".repeat(100);
        let f = folded(&long);
        assert!(
            f.contains("<details class=\"fold\">") && f.contains("100 lines"),
            "{f}"
        );
    }
}
