//! The pages `serve` answers with, each one self-contained HTML document: the session list,
//! a session (the `html` page with links and live updates added), one exchange whole, and
//! errors. Every logged value is escaped (`html::escape`); the only scripts and styles are the
//! constants here and in `html`, allowed by their hashes in the Content-Security-Policy.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::html::{self, escape};
use crate::log::{Head, Skipped};
use crate::session::{Session, Summary, content_text, is_reminder};
use crate::term::{duration, short_time, skipped_line, usd};
use traffic_record::summary::thousands;

/// Styles added to `html::CSS` for the served pages.
pub const SERVE_CSS: &str = r#"
nav.top{display:flex;gap:14px;align-items:baseline;padding:8px 28px;background:#151823;color:#c9cbd6;font-size:13px}
nav.top a{color:#9ecbff;text-decoration:none}nav.top a:hover{text-decoration:underline}
#live-state{margin-left:auto;color:#8f95a8}
a.num{color:inherit;text-decoration:none;border-bottom:1px dotted var(--main)}
.filters{max-width:1300px;margin:12px auto 0;padding:0 28px}
.filters form{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center;font-size:13px}
.filters input[type=search]{min-width:280px}
body.list main{max-width:1300px}
table.sessions{border-collapse:collapse;width:100%;font-size:13px;background:var(--card)}
table.sessions th{text-align:left;font-weight:600;color:var(--dim);border-bottom:2px solid var(--line);padding:6px 8px;white-space:nowrap}
table.sessions td{border-bottom:1px solid var(--line);padding:6px 8px;vertical-align:top}
table.sessions td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.sessions td.prompt{max-width:420px;color:#333}
table.sessions tr.active td:first-child{border-left:3px solid var(--ok)}
.badge.active{background:#e6f6e6;color:var(--ok)}
section.part{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 16px 12px;margin:14px 0}
table.headers{border-collapse:collapse;font:12px/1.4 ui-monospace,Menlo,monospace}
table.headers td{padding:1px 10px 1px 0;vertical-align:top;word-break:break-all}
pre.raw{background:#1f2330;color:#e8e8ee;border-radius:6px;padding:10px;max-height:640px;overflow:auto}
"#;

/// Keeps a served page up to date without reloading it: on each `changed` event of the page's
/// event stream it fetches the page again and swaps its header, main part and footer (and, on
/// a session page, the data the `html` script rebuilds requests from, then runs that script
/// again), keeping open details open and the scroll position (at the bottom: following).
pub const LIVE_SCRIPT: &str = r#"
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource || !window.fetch || !window.DOMParser) return;
  var state = document.getElementById("live-state");
  var busy = false, again = false, rerun = null;
  function show(text) { if (state) state.textContent = text; }
  var source = new EventSource(live.getAttribute("data-events"));
  source.onopen = function () { show("live"); };
  source.onerror = function () { show("reconnecting…"); };
  source.addEventListener("changed", function (e) {
    if (e.data !== live.getAttribute("data-version")) refresh();
  });
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(swap)
      .then(function () { show("live · updated " + new Date().toLocaleTimeString()); })
      .catch(function (e) { show("update failed: " + e.message); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  function key(d) {
    var owner = d.id ? d : d.parentElement && d.parentElement.closest("[id]");
    var scope = owner || document.body;
    var all = scope.querySelectorAll("details");
    return (owner ? owner.id : "") + ":" + Array.prototype.indexOf.call(all, d);
  }
  function swap(text) {
    var doc = new DOMParser().parseFromString(text, "text/html");
    var next = doc.getElementById("live");
    if (!next) return;
    var open = {};
    document.querySelectorAll("details[open]").forEach(function (d) { open[key(d)] = true; });
    var bottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    ["header", "main", "footer"].forEach(function (tag) {
      var old = document.querySelector("body > " + tag), neu = doc.querySelector("body > " + tag);
      if (old && neu) old.replaceWith(neu);
    });
    var data = document.getElementById("session-data"), newData = doc.getElementById("session-data");
    if (data && newData) {
      data.textContent = newData.textContent;
      // The html script binds the new details and reads the new data when it runs again.
      if (rerun) rerun.remove();
      rerun = document.createElement("script");
      rerun.textContent = data.nextElementSibling.textContent;
      document.body.appendChild(rerun);
    }
    live.setAttribute("data-version", next.getAttribute("data-version"));
    document.querySelectorAll("details").forEach(function (d) { if (open[key(d)]) d.open = true; });
    if (bottom) window.scrollTo(0, document.body.scrollHeight);
  }
})();
"#;

fn sha256_source(text: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// The Content-Security-Policy of every page: nothing but the page's own scripts and styles
/// (by hash), requests only back to this server (the live updates), forms only to it.
pub fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        format!(
            "default-src 'none'; script-src {} {}; style-src {} {}; img-src data:; \
             connect-src 'self'; form-action 'self'; base-uri 'none'",
            sha256_source(html::SCRIPT),
            sha256_source(LIVE_SCRIPT),
            sha256_source(html::CSS),
            sha256_source(SERVE_CSS),
        )
    })
}

/// The header form adds what a `<meta>` policy cannot hold.
pub fn header_policy() -> String {
    format!("{}; frame-ancestors 'none'", policy())
}

fn page_head(page: &mut String, title: &str) {
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{}</style><style>{}</style></head>\n",
        policy(),
        escape(title),
        html::CSS,
        SERVE_CSS
    );
}

fn nav(page: &mut String, crumbs: &[(String, String)], live: bool) {
    page.push_str("<nav class=\"top\"><a href=\"/\">Sessions</a>");
    for (href, text) in crumbs {
        let _ = write!(page, " › <a href=\"{}\">{}</a>", escape(href), escape(text));
    }
    if live {
        page.push_str(
            "<span id=\"live-state\">static</span><noscript>reload the page to see new exchanges</noscript>",
        );
    }
    page.push_str("</nav>\n");
}

fn live_tail(page: &mut String, events: &str, version: &str) {
    let _ = write!(
        page,
        "<div id=\"live\" hidden data-events=\"{}\" data-version=\"{}\"></div>\n<script>{LIVE_SCRIPT}</script>\n",
        escape(events),
        escape(version)
    );
}

/// `text` as one path segment of a URL.
pub fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An error page: what happened and what to do.
pub fn error(title: &str, message: &str) -> String {
    let mut page = String::new();
    page_head(&mut page, title);
    page.push_str("<body>\n");
    nav(&mut page, &[], false);
    let _ = write!(
        page,
        "<main><h2>{}</h2><p>{}</p></main>\n</body></html>\n",
        escape(title),
        escape(message)
    );
    page
}

/// What the list is narrowed to (the query string of `/`).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filter {
    /// Text in the session id, the first prompt or a model name (any case).
    #[serde(default)]
    pub q: String,
    /// Exactly this model.
    #[serde(default)]
    pub model: String,
    /// `YYYY-MM-DD`: sessions active on or after that day (UTC).
    #[serde(default)]
    pub from: String,
    /// `YYYY-MM-DD`: sessions started on or before that day (UTC).
    #[serde(default)]
    pub to: String,
}

/// One row of the list.
pub struct Row<'a> {
    pub summary: &'a Summary,
    pub title: &'a str,
    /// An exchange ended within the last minutes: the session may be going on.
    pub active: bool,
}

/// What the list page shows besides its rows.
pub struct ListInfo<'a> {
    pub sessions: usize,
    pub matched: usize,
    pub exchanges: usize,
    pub bytes: u64,
    pub segments: usize,
    pub skipped: &'a Skipped,
    pub models: &'a [String],
    pub price_date: &'a str,
    pub generation: u64,
    pub active_minutes: u64,
}

/// The session list: newest first, with the filter form (a plain GET form: no script needed).
pub fn list(filter: &Filter, rows: &[Row<'_>], info: &ListInfo<'_>) -> String {
    let mut page = String::new();
    page_head(&mut page, "Claude Code sessions");
    page.push_str("<body class=\"list\">\n");
    nav(&mut page, &[], true);
    let _ = writeln!(
        page,
        "<header><h1>Claude Code sessions</h1><div class=\"stats\"><span><b>sessions</b> {}</span>\
         <span><b>exchanges</b> {}</span><span><b>log</b> {} MB in {} file{}</span>\
         <span><b>prices</b> {}</span></div>{}</header>",
        thousands(info.sessions as u64),
        thousands(info.exchanges as u64),
        thousands(info.bytes / 1_000_000),
        info.segments,
        if info.segments == 1 { "" } else { "s" },
        escape(info.price_date),
        if info.skipped.total() > 0 {
            format!(
                "<p class=\"warn\">{}</p>",
                escape(&skipped_line(info.skipped))
            )
        } else {
            String::new()
        }
    );
    let _ = write!(
        page,
        "<section class=\"filters\"><form method=\"get\" action=\"/\">\
         <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"text in the id, first prompt or model\">\
         <select name=\"model\"><option value=\"\">any model</option>",
        escape(&filter.q)
    );
    for m in info.models {
        let _ = write!(
            page,
            "<option{}>{}</option>",
            if *m == filter.model { " selected" } else { "" },
            escape(m)
        );
    }
    let _ = write!(
        page,
        "</select><label>from <input type=\"date\" name=\"from\" value=\"{}\"></label>\
         <label>to <input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <button type=\"submit\">Filter</button> <a href=\"/\">clear</a></form></section>\n<main>\n",
        escape(&filter.from),
        escape(&filter.to)
    );
    if rows.is_empty() {
        page.push_str(if info.sessions == 0 {
            "<p class=\"dim\">The log holds no Claude Code session yet; this page updates as exchanges are written.</p>\n"
        } else {
            "<p class=\"dim\">No session matches the filter.</p>\n"
        });
    } else {
        page.push_str(
            "<table class=\"sessions\"><thead><tr><th>started (UTC)</th><th>duration</th><th>exchanges</th>\
             <th>turns</th><th>input</th><th>output</th><th>cache read</th><th>cache write</th><th>cost</th>\
             <th>errors</th><th>models</th><th>first prompt</th></tr></thead>\n<tbody>\n",
        );
        for row in rows {
            let s = row.summary;
            let _ = writeln!(
                page,
                "<tr class=\"session{active_class}\" data-session=\"{id}\"><td><a href=\"/session/{href}\">{start}</a>{badge}<br><code class=\"dim\">{short}</code></td>\
                 <td class=\"n\">{dur}</td><td class=\"n\">{ex}</td><td class=\"n\">{turns}</td><td class=\"n\">{tin}</td><td class=\"n\">{tout}</td>\
                 <td class=\"n\">{tcr}</td><td class=\"n\">{tcw}</td><td class=\"n cost\">{cost}</td><td class=\"n{err_class}\">{errors}</td>\
                 <td class=\"model\">{models}</td><td class=\"prompt\">{title}</td></tr>",
                active_class = if row.active { " active" } else { "" },
                id = escape(&s.session_id),
                href = url_segment(&s.session_id),
                start = escape(&short_time(&s.started_at)),
                badge = if row.active {
                    format!(
                        " <span class=\"badge active\" title=\"an exchange ended in the last {} minutes\">active</span>",
                        info.active_minutes
                    )
                } else {
                    String::new()
                },
                short = escape(&s.session_id.chars().take(8).collect::<String>()),
                dur = duration(s.duration_ms),
                ex = s.exchanges,
                turns = s.turns,
                tin = thousands(s.tokens.input),
                tout = thousands(s.tokens.output),
                tcr = thousands(s.tokens.cache_read),
                tcw = thousands(s.tokens.cache_write),
                cost = if s.unpriced_exchanges > 0 {
                    format!("{}+?", usd(s.cost_usd))
                } else {
                    usd(s.cost_usd)
                },
                err_class = if s.errors > 0 { " err" } else { "" },
                errors = s.errors,
                models = escape(&s.models.join(", ")),
                title = escape(row.title),
            );
        }
        page.push_str("</tbody></table>\n");
        if info.matched > rows.len() {
            let _ = writeln!(
                page,
                "<p class=\"dim\">The newest {} of {} sessions; narrow the list with the filter.</p>",
                rows.len(),
                info.matched
            );
        }
    }
    page.push_str("</main>\n");
    live_tail(
        &mut page,
        &format!("/events?v={}", info.generation),
        &info.generation.to_string(),
    );
    page.push_str("</body></html>\n");
    page
}

/// The `html` page of a session, served: the served policy in place of the file's, the
/// navigation bar, each exchange's number linking to its own page, and the live updates.
/// (The markers looked for are written by `html::render`; logged text cannot hold them, since
/// every `<` of it is escaped.)
pub fn session(rendered: &str, session: &Session, events: &str) -> String {
    let mut page = String::with_capacity(rendered.len() + 8_192);
    let mut rest = rendered;
    const META: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"";
    if let Some(at) = rest.find(META)
        && let Some(len) = rest[at..].find('>')
    {
        page.push_str(&rest[..at]);
        let _ = write!(
            page,
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
            policy()
        );
        rest = &rest[at + len + 1..];
    }
    if let Some(at) = rest.find("</head>") {
        page.push_str(&rest[..at]);
        let _ = write!(page, "<style>{SERVE_CSS}</style>");
        rest = &rest[at..];
    }
    if let Some(at) = rest.find("<body>") {
        page.push_str(&rest[..at + "<body>".len()]);
        page.push('\n');
        let id = &session.summary.session_id;
        nav(
            &mut page,
            &[(
                format!("/session/{}", url_segment(id)),
                format!("session {id}"),
            )],
            true,
        );
        rest = &rest[at + "<body>".len()..];
    }
    const NUM: &str = "<span class=\"num\">#";
    while let Some(at) = rest.find(NUM) {
        page.push_str(&rest[..at]);
        rest = &rest[at + NUM.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = rest[..digits].parse().unwrap_or(0);
        match session.exchanges.get(n.wrapping_sub(1)) {
            Some(e) if rest[digits..].starts_with("</span>") => {
                let _ = write!(
                    page,
                    "<a class=\"num\" href=\"/exchange/{}\" title=\"the whole exchange\">#{n}</a>",
                    url_segment(&e.head.id)
                );
                rest = &rest[digits + "</span>".len()..];
            }
            _ => page.push_str(NUM),
        }
    }
    let end = rest.rfind("</body>").unwrap_or(rest.len());
    page.push_str(&rest[..end]);
    let count = session.exchanges.len().to_string();
    live_tail(&mut page, events, &count);
    page.push_str(&rest[end..]);
    page
}

/// The parts of a log line the exchange page shows, borrowed from the line.
#[derive(Deserialize)]
pub struct RecordParts<'a> {
    #[serde(borrow, default)]
    pub request: Option<RequestParts<'a>>,
    #[serde(borrow, default)]
    pub response: Option<ResponseParts<'a>>,
}

#[derive(Deserialize)]
pub struct RequestParts<'a> {
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub query: Option<Cow<'a, str>>,
    #[serde(default)]
    pub headers: Option<serde_json::Map<String, Value>>,
    #[serde(borrow, default)]
    pub body: Option<BodyParts<'a>>,
}

#[derive(Deserialize)]
pub struct ResponseParts<'a> {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: Option<serde_json::Map<String, Value>>,
    #[serde(borrow, default)]
    pub body: Option<BodyParts<'a>>,
    #[serde(borrow, default)]
    pub sse: Option<SseParts<'a>>,
}

#[derive(Deserialize)]
pub struct SseParts<'a> {
    #[serde(borrow, default)]
    pub message: Option<&'a RawValue>,
    #[serde(default)]
    pub events: Vec<serde::de::IgnoredAny>,
}

/// A captured body as the log holds it: `json` is the body's own text, byte for byte.
#[derive(Deserialize)]
pub struct BodyParts<'a> {
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub truncated: bool,
    #[serde(borrow, default)]
    pub decoded_from: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub json: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub base64: Option<Cow<'a, str>>,
}

/// A body to download: its bytes, type and file name ending.
pub struct Download {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
}

impl BodyParts<'_> {
    /// The body's bytes as captured (decoded from its content-encoding).
    pub fn download(&self) -> Option<Download> {
        if let Some(json) = self.json {
            return Some(Download {
                bytes: json.get().as_bytes().to_vec(),
                content_type: "application/json",
                extension: "json",
            });
        }
        if let Some(text) = &self.text {
            return Some(Download {
                bytes: text.as_bytes().to_vec(),
                content_type: "text/plain; charset=utf-8",
                extension: "txt",
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.base64.as_deref()?)
            .ok()?;
        Some(Download {
            bytes,
            content_type: "application/octet-stream",
            extension: "bin",
        })
    }
}

/// Where an exchange sits in its session, for the page's links.
pub struct Place<'a> {
    pub session: Option<&'a str>,
    pub number: usize,
}

/// One exchange whole: the request as sent (readable, raw, downloadable) and the response.
pub fn exchange(head: &Head, place: &Place<'_>, line: Option<&str>, cost: Option<f64>) -> String {
    let mut page = String::new();
    let id = &head.id;
    page_head(&mut page, &format!("Exchange {id}"));
    page.push_str("<body>\n");
    let mut crumbs = Vec::new();
    if let Some(s) = place.session {
        crumbs.push((
            format!("/session/{}#ex-{}", url_segment(s), place.number),
            format!("session {s}, exchange #{}", place.number),
        ));
    }
    nav(&mut page, &crumbs, false);
    let status = head
        .status
        .map_or("no response".to_string(), |s| s.to_string());
    let _ = write!(
        page,
        "<header><h1>Exchange <code>{}</code></h1><div class=\"stats\">\
         <span><b>started</b> {} UTC</span><span><b>duration</b> {}</span>{}\
         <span><b>model</b> {}</span><span class=\"{}\"><b>status</b> {} {}</span>",
        escape(id),
        escape(&short_time(&head.started_at)),
        duration(head.duration_ms),
        head.ttfb_ms
            .map(|t| format!("<span><b>ttfb</b> {}</span>", duration(t)))
            .unwrap_or_default(),
        escape(head.model.as_deref().unwrap_or("?")),
        if head.is_error() { "err" } else { "" },
        escape(&status),
        escape(head.outcome.as_str()),
    );
    if let Some(u) = &head.usage {
        let t = pricing::Tokens::from_usage(u);
        let _ = write!(
            page,
            "<span><b>input</b> {}</span><span><b>output</b> {}</span><span><b>cache read</b> {}</span><span><b>cache write</b> {}</span>",
            thousands(t.input),
            thousands(t.output),
            thousands(t.cache_read),
            thousands(t.cache_write_5m + t.cache_write_1h)
        );
    }
    if let Some(c) = cost {
        let _ = write!(page, "<span class=\"cost\"><b>cost</b> {}</span>", usd(c));
    }
    page.push_str("</div>");
    if let Some(e) = &head.error {
        let _ = write!(page, "<p class=\"warn\">{}</p>", escape(e));
    }
    page.push_str("</header>\n<main>\n");
    let parts = line.map(serde_json::from_str::<RecordParts<'_>>);
    match parts {
        None => {}
        Some(Err(e)) => {
            let _ = writeln!(
                page,
                "<p class=\"err\">Its log line is not valid JSON ({}): no body can be shown. <a href=\"/exchange/{}/record.json\">The line as it is</a>.</p>",
                escape(&e.to_string()),
                url_segment(id)
            );
        }
        Some(Ok(parts)) => {
            if let Some(r) = &parts.request {
                request(&mut page, id, r);
            }
            match &parts.response {
                Some(r) => response(&mut page, id, r),
                None => page.push_str(
                    "<section class=\"part\"><h2>Response</h2><p class=\"dim\">No response came from the upstream.</p></section>\n",
                ),
            }
        }
    }
    let _ = writeln!(
        page,
        "<p><a href=\"/exchange/{}/record.json\" download>The whole log record</a> (JSON, one line, as the proxy wrote it).</p>\n</main>\n</body></html>",
        url_segment(id)
    );
    page
}

fn headers_table(page: &mut String, title: &str, headers: Option<&serde_json::Map<String, Value>>) {
    let Some(headers) = headers else { return };
    let _ = write!(
        page,
        "<details><summary>{} ({})</summary><table class=\"headers\">",
        escape(title),
        headers.len()
    );
    for (k, v) in headers {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    }
    page.push_str("</table></details>\n");
}

fn body_note(page: &mut String, body: &BodyParts<'_>, href: &str, what: &str) {
    let mut notes = Vec::new();
    if let Some(size) = body.size {
        notes.push(format!("{} bytes on the wire", thousands(size)));
    }
    if let Some(enc) = &body.decoded_from {
        notes.push(format!("decoded from {}", escape(enc)));
    }
    if body.truncated {
        notes.push("<span class=\"err\">truncated at the capture cap</span>".to_string());
    }
    if body.json.is_some() || body.text.is_some() || body.base64.is_some() {
        notes.push(format!(
            "<a href=\"{href}\" download>download the {what}</a>"
        ));
    }
    let _ = writeln!(page, "<p class=\"note\">{}</p>", notes.join(" · "));
}

fn raw(page: &mut String, id: &str, text: &str, summary: &str) {
    // The newline after <pre> is dropped by the HTML parser, so the text keeps its own first one.
    let _ = writeln!(
        page,
        "<details class=\"raw\"><summary>{} ({} bytes)</summary><pre class=\"raw\" id=\"{id}\">\n{}</pre></details>",
        escape(summary),
        thousands(text.len() as u64),
        escape(text)
    );
}

fn request(page: &mut String, id: &str, r: &RequestParts<'_>) {
    let target = match &r.query {
        Some(q) => format!("{}?{q}", r.path.as_deref().unwrap_or("")),
        None => r.path.as_deref().unwrap_or("").to_string(),
    };
    let _ = writeln!(
        page,
        "<section class=\"part\" id=\"request\"><h2>Request</h2><p><code>{} {}</code></p>",
        escape(r.method.as_deref().unwrap_or("?")),
        escape(&target)
    );
    headers_table(
        page,
        "Headers (credentials redacted by the proxy)",
        r.headers.as_ref(),
    );
    if let Some(body) = &r.body {
        let href = format!("/exchange/{}/request.json", url_segment(id));
        body_note(page, body, &href, "body");
        match (body.json, &body.text, &body.base64) {
            (Some(json), _, _) => {
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(json.get()) {
                    readable_request(page, &fields);
                }
                raw(page, "request-body", json.get(), "The body as sent (JSON)");
            }
            (_, Some(text), _) => raw(page, "request-body", text, "The body as sent (text)"),
            (_, _, Some(b64)) => raw(
                page,
                "request-body",
                b64,
                "The body as sent (not UTF-8: base64)",
            ),
            _ => page.push_str("<p class=\"dim\">No body.</p>\n"),
        }
    }
    page.push_str("</section>\n");
}

/// The request's system prompt, tools, other fields and messages, for reading.
fn readable_request(page: &mut String, fields: &serde_json::Map<String, Value>) {
    if let Some(system) = fields.get("system") {
        let text = match system {
            Value::String(s) => s.clone(),
            other => content_text(other),
        };
        let _ = writeln!(
            page,
            "<details class=\"def\"><summary>System prompt <span class=\"dim\">({} chars)</span></summary><pre>{}</pre></details>",
            thousands(text.len() as u64),
            escape(&text)
        );
    }
    if let Some(Value::Array(tools)) = fields.get("tools") {
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        let _ = writeln!(
            page,
            "<details class=\"def\"><summary>Tools <span class=\"dim\">({}: {})</span></summary><pre>{}</pre></details>",
            tools.len(),
            escape(&names.join(", ")),
            escape(&serde_json::to_string_pretty(tools).unwrap_or_default())
        );
    }
    let params: serde_json::Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "system" | "tools" | "messages"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !params.is_empty() {
        let _ = writeln!(
            page,
            "<details><summary>Other fields <span class=\"dim\">({})</span></summary><pre>{}</pre></details>",
            escape(&params.keys().cloned().collect::<Vec<_>>().join(", ")),
            escape(&serde_json::to_string_pretty(&params).unwrap_or_default())
        );
    }
    if let Some(Value::Array(messages)) = fields.get("messages") {
        let _ = writeln!(
            page,
            "<h3>Messages <span class=\"dim\">({})</span></h3><div class=\"msgs\">",
            messages.len()
        );
        for m in messages {
            html::message(page, m);
        }
        page.push_str("</div>\n");
    }
}

fn response(page: &mut String, id: &str, r: &ResponseParts<'_>) {
    let _ = writeln!(
        page,
        "<section class=\"part\" id=\"response\"><h2>Response</h2><p><code>{}</code></p>",
        r.status.map_or("?".to_string(), |s| s.to_string())
    );
    headers_table(page, "Headers", r.headers.as_ref());
    let href = format!("/exchange/{}/response.json", url_segment(id));
    let message = r.sse.as_ref().and_then(|s| s.message);
    if let Some(sse) = &r.sse {
        let _ = writeln!(
            page,
            "<p class=\"note\">A stream of {} server-sent events, rebuilt into the message below (every event is in the log record) · <a href=\"{href}\" download>download the message</a></p>",
            sse.events.len()
        );
    } else if let Some(body) = &r.body {
        body_note(page, body, &href, "body");
    }
    let json = message.or(r.body.as_ref().and_then(|b| b.json));
    if let Some(json) = json {
        if let Ok(v) = serde_json::from_str::<Value>(json.get()) {
            if v.get("content").is_some() {
                page.push_str("<div class=\"msgs\">\n");
                html::message(page, &v);
                page.push_str("</div>\n");
            } else {
                let _ = writeln!(
                    page,
                    "<div class=\"blk err\">{}</div>",
                    html::folded(&serde_json::to_string_pretty(&v).unwrap_or_default())
                );
            }
        }
        raw(page, "response-body", json.get(), "The message as JSON");
    } else if let Some(body) = &r.body {
        if let Some(text) = &body.text {
            raw(page, "response-body", text, "The body (text)");
        } else if let Some(b64) = &body.base64 {
            raw(page, "response-body", b64, "The body (not UTF-8: base64)");
        }
    }
    page.push_str("</section>\n");
}

/// A session's first prompt: the user's own text of its first message (Claude Code's
/// reminders left out), on one line, at most 160 characters.
pub fn first_prompt(first_message: &Value) -> String {
    let text = match &first_message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text" && !is_reminder(b))
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 160 {
        one_line.chars().take(160).collect::<String>() + "…"
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_segments_keep_only_unreserved_bytes() {
        assert_eq!(url_segment("ab-1.x_~"), "ab-1.x_~");
        assert_eq!(url_segment("../a b/\"<"), "..%2Fa%20b%2F%22%3C");
    }

    #[test]
    fn the_policy_allows_exactly_the_pages_own_scripts_and_styles() {
        let p = policy();
        assert!(
            p.starts_with("default-src 'none'; script-src 'sha256-"),
            "{p}"
        );
        assert!(
            !p.contains("unsafe-inline") && !p.contains("unsafe-eval"),
            "{p}"
        );
        assert_eq!(p.matches("'sha256-").count(), 4, "{p}");
        assert!(header_policy().ends_with("frame-ancestors 'none'"));
    }

    #[test]
    fn the_first_prompt_leaves_reminders_out() {
        let m = serde_json::json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>x</system-reminder>"},
            {"type": "text", "text": "fix\n  the bug"}]});
        assert_eq!(first_prompt(&m), "fix the bug");
        let long = serde_json::json!({"role": "user", "content": "y".repeat(300)});
        assert_eq!(first_prompt(&long).chars().count(), 161);
    }
}
