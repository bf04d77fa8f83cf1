//! `claude-api-logger sessions | show | html` over real traffic logs: sessions of the real
//! Claude Code CLI (text turns, a tool turn, a sub-agent) through the real proxy binary against
//! fake-anthropic, the HTML page checked in Debian's headless Chromium, and logs with broken
//! lines and rotated segments.
//!
//! Peers come from `scripts/test.sh` (`CLAUDE_BIN`: npm `@anthropic-ai/claude-code`; Debian's
//! `chromium`; npm `playwright-core` under `$CAL_CACHE/npm`); a missing one fails the test.

mod peers;

use peers::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const API_KEY: &str = "sk-ant-test-viewer-0000";

/// Runs `claude-api-logger ARGS --log-file LOG`; returns stdout, panics on failure.
fn viewer(log: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--log-file")
        .arg(log)
        .env_clear()
        .env("PATH", PATH)
        .output()
        .expect("run claude-api-logger");
    assert!(
        out.status.success(),
        "claude-api-logger {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `sessions --json`, validated against docs/viewer-sessions.schema.json.
fn sessions_json(log: &Path) -> Value {
    let doc: Value = serde_json::from_str(&viewer(log, &["sessions", "--json"])).expect("JSON");
    let schema_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/viewer-sessions.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("a valid 2020-12 schema");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "sessions --json does not fit the schema: {errors:#?}"
    );
    doc
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Every record of the log (the live file), parsed independently of the viewer.
fn records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

/// Waits until the log holds `n` records whose request mentions `needle`; every record.
fn wait_for(log: &Path, needle: &str, n: usize) -> Vec<Value> {
    wait_for_log(log, needle, n);
    records(log)
}

#[test]
fn real_claude_code_sessions_are_listed_shown_and_rendered_in_a_browser() {
    let dir = temp_dir("viewer", "real");
    let log = dir.join("traffic.log");
    let upstream = fake_upstream();
    let proxy = proxy(&upstream, &log, &dir);

    // Session A: a text turn, a tool turn, a sub-agent turn (`-c` continues the session).
    let a = claude(&proxy, &dir, API_KEY, &["-p", "Say hello [vw-text-1]"]);
    let a2 = claude(
        &proxy,
        &dir,
        API_KEY,
        &["-c", "-p", "Run it [[tool:Bash:echo vw-marker-7]]"],
    );
    let a3 = claude(
        &proxy,
        &dir,
        API_KEY,
        &["-c", "-p", "Ask an agent [[tool:Agent:find vw-agent-3]]"],
    );
    let session_a = a["session_id"].as_str().unwrap().to_string();
    assert_eq!(a2["session_id"], session_a);
    assert_eq!(a3["session_id"], session_a);
    assert!(
        a2["result"].as_str().unwrap().contains("vw-marker-7"),
        "{a2}"
    );
    // Session B, newer: one text turn.
    std::thread::sleep(Duration::from_millis(20));
    let b = claude(
        &proxy,
        &dir,
        API_KEY,
        &["-p", "Another session [vw-text-b]"],
    );
    let session_b = b["session_id"].as_str().unwrap().to_string();
    assert_ne!(session_a, session_b);
    let all = wait_for(&log, "vw-text-b", 1);
    // The sub-agent's own request (its prompt as the first message) is in the log.
    assert!(
        all.iter()
            .any(|r| r["request"]["body"]["json"]["messages"][0]
                .to_string()
                .contains("find vw-agent-3")),
        "Claude Code started no sub-agent"
    );

    // sessions --json: right counts and tokens, newest first.
    let doc = sessions_json(&log);
    let sessions = doc["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{doc:#}");
    assert_eq!(
        sessions[0]["session_id"],
        session_b.as_str(),
        "newest first"
    );
    assert_eq!(sessions[1]["session_id"], session_a.as_str());
    let prices = pricing::PriceTable::builtin();
    for (summary, id) in [(&sessions[1], &session_a), (&sessions[0], &session_b)] {
        let mine: Vec<&Value> = all
            .iter()
            .filter(|r| r["session_id"] == id.as_str())
            .collect();
        assert_eq!(summary["exchanges"], mine.len(), "{summary:#}");
        let sum = |f: &str| -> u64 {
            mine.iter()
                .map(|r| r["usage"][f].as_u64().unwrap_or(0))
                .sum()
        };
        assert_eq!(
            summary["tokens"]["input"],
            sum("input_tokens"),
            "{summary:#}"
        );
        assert_eq!(
            summary["tokens"]["output"],
            sum("output_tokens"),
            "{summary:#}"
        );
        assert_eq!(
            summary["tokens"]["cache_read"],
            sum("cache_read_input_tokens")
        );
        assert_eq!(
            summary["tokens"]["cache_write"],
            sum("cache_creation_input_tokens")
        );
        let cost: f64 = mine
            .iter()
            .filter_map(|r| {
                let usage: traffic_record::Usage =
                    serde_json::from_value(r["usage"].clone()).ok()?;
                prices.cost(r["model"].as_str()?, &pricing::Tokens::from_usage(&usage))
            })
            .map(|c| c.usd)
            .sum();
        assert!(cost > 0.0);
        assert!(
            (summary["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
            "{summary:#} vs {cost}"
        );
        assert_eq!(summary["models"], json!(["claude-sonnet-4-5"]));
        assert_eq!(summary["errors"], 0);
    }
    assert_eq!(
        sessions[1]["turns"], 3,
        "three prompts typed in session A: {:#}",
        sessions[1]
    );
    assert_eq!(sessions[0]["turns"], 1);
    assert_eq!(
        doc["skipped"],
        json!({"cut": 0, "invalid_utf8": 0, "not_json": 0, "not_record": 0})
    );

    // The table says the same.
    let table = viewer(&log, &["sessions"]);
    assert!(
        table.lines().nth(1).unwrap().starts_with(&session_b),
        "{table}"
    );

    // show: each turn's text and tool input, each once (only what each request added).
    let shown = viewer(&log, &["show", &session_a, "--color", "never"]);
    assert!(!shown.contains("\x1b["), "no colour when not a terminal");
    assert_eq!(count(&shown, "══ Turn "), 3, "{shown}");
    assert_eq!(count(&shown, "Say hello [vw-text-1]"), 1, "{shown}");
    assert_eq!(
        count(&shown, "Run it [[tool:Bash:echo vw-marker-7]]"),
        1,
        "{shown}"
    );
    assert!(
        shown.contains("tool call Bash {\"command\":\"echo vw-marker-7\""),
        "{shown}"
    );
    assert!(shown.contains("tool result: vw-marker-7"), "{shown}");
    assert!(shown.contains("tool call Agent"), "{shown}");
    assert!(
        shown.contains(" subagent 1 "),
        "the sub-agent's requests are marked: {shown}"
    );
    // Cost per agent (the sub-agent's in the session's) and per turn.
    assert!(shown.contains("cost by agent: main $"), "{shown}");
    assert!(shown.contains(" · subagent 1 $"), "{shown}");
    assert!(shown.contains("══ Turn 3 · $"), "{shown}");
    assert!(shown.contains("user: find vw-agent-3"), "{shown}");
    assert!(
        shown.contains("Tool result received: vw-marker-7"),
        "assistant text: {shown}"
    );
    for r in all.iter().filter(|r| r["session_id"] == session_a.as_str()) {
        assert!(
            shown.contains(r["id"].as_str().unwrap()),
            "every exchange is shown"
        );
    }
    assert!(shown.contains("ttfb ") && shown.contains("$"), "{shown}");
    let latest = viewer(&log, &["show", "latest"]);
    assert!(
        latest.contains(&session_b) && latest.contains("vw-text-b"),
        "{latest}"
    );
    let one = all
        .iter()
        .find(|r| r["session_id"] == session_a.as_str())
        .unwrap();
    let single = viewer(&log, &["show", one["id"].as_str().unwrap()]);
    assert_eq!(
        count(&single, "── #"),
        1,
        "an exchange id shows that exchange: {single}"
    );

    // html in a real browser.
    let out_dir = target_dir().join("viewer-test");
    std::fs::create_dir_all(&out_dir).unwrap();
    let page = out_dir.join("session.html");
    let shot = out_dir.join("session.png");
    let _ = std::fs::remove_file(&shot);
    viewer(&log, &["html", &session_a, "-o", page.to_str().unwrap()]);
    let report = browser_check(&page, &shot);
    assert_eq!(report["console_errors"], json!([]), "{report:#}");
    assert_eq!(report["page_errors"], json!([]), "{report:#}");
    assert_eq!(
        report["blocked"],
        json!([]),
        "no request leaves the page: {report:#}"
    );
    let page_url = format!("file://{}", page.display());
    assert!(
        report["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| *u == page_url.as_str()),
        "{report:#}"
    );
    // Each turn with its cost: `Turn 2 · $0.0123`.
    let turns: Vec<&str> = report["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let names: Vec<&str> = turns
        .iter()
        .map(|t| t.split(" · $").next().unwrap())
        .collect();
    assert_eq!(names, ["Turn 1", "Turn 2", "Turn 3"], "{report:#}");
    assert!(turns.iter().all(|t| t.contains(" · $")), "{turns:?}");
    let exchanges = report["exchanges"].as_array().unwrap();
    let texts: String = exchanges
        .iter()
        .map(|x| x["text"].as_str().unwrap())
        .collect();
    for needle in [
        "Say hello [vw-text-1]",
        "echo vw-marker-7",
        "find vw-agent-3",
    ] {
        assert!(texts.contains(needle), "the page shows {needle}");
    }
    assert!(
        exchanges
            .iter()
            .any(|x| x["classes"].as_str().unwrap().contains("subagent")),
        "sub-agent requests are marked"
    );
    // The expanded (last) exchange shows its full request: the whole re-sent history.
    let detail = &report["detail"];
    assert_eq!(detail["open"], true);
    let request = &detail["request"];
    let last = all
        .iter()
        .rev()
        .find(|r| r["session_id"] == session_a.as_str())
        .unwrap();
    assert_eq!(
        request["body"]["messages"], last["request"]["body"]["json"]["messages"],
        "the full messages are rebuilt"
    );
    assert_eq!(
        request["body"]["system"],
        last["request"]["body"]["json"]["system"]
    );
    assert_eq!(
        request["body"]["tools"],
        last["request"]["body"]["json"]["tools"]
    );
    assert_eq!(request["headers"]["x-api-key"], "[REDACTED]");
    assert!(
        detail["diff"]
            .as_str()
            .unwrap()
            .contains("What changed since #"),
        "{detail:#}"
    );
    assert!(
        shot.metadata().unwrap().len() > 10_000,
        "screenshot kept at {}",
        shot.display()
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("sk-ant-test-viewer"), "no key in the page");

    // The check sees a request that does leave: the same page without its Content-Security-
    // Policy and with an image from the network.
    let csp_start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .expect("a CSP");
    let csp_end = csp_start + html[csp_start..].find('>').unwrap() + 1;
    let leaky = html[..csp_start].to_string()
        + &html[csp_end..].replace(
            "</main>",
            "<img src=\"http://127.0.0.1:9/leak.png\"></main>",
        );
    let leaky_page = out_dir.join("leaky.html");
    std::fs::write(&leaky_page, leaky).unwrap();
    let caught = browser_check(&leaky_page, &out_dir.join("leaky.png"));
    assert_eq!(
        caught["blocked"],
        json!(["http://127.0.0.1:9/leak.png"]),
        "{caught:#}"
    );
    drop(proxy);
}

/// Opens `page` in headless Chromium (tests/browser/check_page.js); its JSON report.
fn browser_check(page: &Path, shot: &Path) -> Value {
    browser_report("check_page.js", &[page, shot])
}

/// A minimal traffic record of session `session` (shape of docs/log-format.md) whose request
/// holds the conversation so far: `prompts`, each answered but the last; with a tool, as
/// Claude Code's main conversation sends it.
fn record(id: u32, session: &str, started: &str, prompts: &[&str]) -> String {
    let mut messages = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        messages.push(json!({"role": "user", "content": p}));
        if i + 1 < prompts.len() {
            messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": format!("answer to {p}")}]}));
        }
    }
    let prompt = prompts.last().unwrap();
    json!({
        "v": 1, "kind": "claude_api_exchange", "id": format!("{id:032x}"),
        "started_at": started, "ended_at": started, "duration_ms": 12.5, "ttfb_ms": 3.0,
        "outcome": "complete", "session_id": session, "model": "claude-haiku-4-5", "stream": false,
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 100, "output_tokens": 10},
        "request": {"method": "POST", "path": "/v1/messages", "headers": {"x-api-key": "[REDACTED]"},
            "body": {"size": 80, "json": {"model": "claude-haiku-4-5", "max_tokens": 10,
                "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
                "messages": messages}}},
        "response": {"status": 200, "headers": {}, "body": {"size": 60, "json": {
            "type": "message", "role": "assistant", "content": [{"type": "text", "text": format!("answer to {prompt}")}]}}}
    })
    .to_string()
}

#[test]
fn cut_invalid_utf8_and_non_record_lines_are_counted_and_skipped() {
    let dir = temp_dir("viewer", "broken");
    let log = dir.join("traffic.log");
    let good = record(1, "sess-broken", "2026-12-03T10:00:00Z", &["first prompt"]);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(good.as_bytes());
    bytes.push(b'\n');
    // A record cut short by a crash, then the proxy's newline.
    bytes.extend_from_slice(
        &record(2, "sess-broken", "2026-12-03T10:00:01Z", &["cut"]).as_bytes()[..150],
    );
    bytes.push(b'\n');
    bytes
        .extend_from_slice(b"{\"kind\":\"claude_api_exchange\",\"note\":\"\xff\xfe not utf-8\"}\n");
    bytes.extend_from_slice(b"{\"level\":\"info\",\"msg\":\"not a traffic record\"}\n");
    bytes.extend_from_slice(b"plain text, not JSON\n");
    bytes.extend_from_slice(
        record(
            3,
            "sess-broken",
            "2026-12-03T10:00:02Z",
            &["first prompt", "second prompt"],
        )
        .as_bytes(),
    );
    bytes.push(b'\n');
    std::fs::write(&log, &bytes).unwrap();

    let doc = sessions_json(&log);
    assert_eq!(
        doc["skipped"],
        json!({"cut": 1, "invalid_utf8": 1, "not_json": 1, "not_record": 1}),
        "{doc:#}"
    );
    assert_eq!(doc["sessions"][0]["exchanges"], 2);
    let table = viewer(&log, &["sessions"]);
    assert!(table.contains("skipped 4 lines"), "{table}");
    let shown = viewer(&log, &["show", "sess-broken"]);
    assert!(
        shown.contains("first prompt") && shown.contains("second prompt"),
        "{shown}"
    );
    assert!(
        shown.contains("1 cut short, 1 not UTF-8, 1 not JSON, 1 other JSON"),
        "{shown}"
    );
}

#[test]
fn a_record_whose_body_is_malformed_inside_is_listed_and_show_says_why_it_has_no_body() {
    let dir = temp_dir("viewer", "malformed-body");
    let log = dir.join("traffic.log");
    // Whole structure, but an escape JSON does not have inside a body string: the listing steps
    // over bodies without checking them, `show` parses the line in full.
    let line = record(1, "sess-odd", "2026-12-03T10:00:00Z", &["odd prompt"]).replacen(
        "odd prompt",
        "odd \\q prompt",
        1,
    );
    assert!(serde_json::from_str::<Value>(&line).is_err());
    std::fs::write(&log, line + "\n").unwrap();
    let doc = sessions_json(&log);
    assert_eq!(doc["sessions"][0]["session_id"], "sess-odd", "{doc:#}");
    assert_eq!(doc["sessions"][0]["exchanges"], 1);
    let shown = viewer(&log, &["show", "sess-odd"]);
    assert!(
        shown.contains("its log line is not valid JSON") && !shown.contains("no response"),
        "{shown}"
    );
}

#[test]
fn rotated_segments_are_read_oldest_first_then_the_live_file() {
    let dir = temp_dir("viewer", "rotated");
    let log = dir.join("claude-logger.log");
    let seg = |stamp: &str| dir.join(format!("claude-logger.log.{stamp}"));
    std::fs::write(
        seg("20261203T100000Z.2"),
        record(2, "s-rot", "2026-12-03T10:00:02Z", &["p-one", "p-two"]) + "\n",
    )
    .unwrap();
    std::fs::write(
        seg("20261203T100000Z.10"),
        record(
            3,
            "s-rot",
            "2026-12-03T10:00:03Z",
            &["p-one", "p-two", "p-three"],
        ) + "\n",
    )
    .unwrap();
    std::fs::write(
        seg("20261203T090000Z.1"),
        record(1, "s-rot", "2026-12-03T10:00:01Z", &["p-one"]) + "\n",
    )
    .unwrap();
    std::fs::write(
        &log,
        record(
            4,
            "s-rot",
            "2026-12-03T10:00:04Z",
            &["p-one", "p-two", "p-three", "p-four"],
        ) + "\n",
    )
    .unwrap();
    // Not a segment of this log: ignored.
    std::fs::write(dir.join("claude-logger.log.checkpoint"), "{}\n").unwrap();

    let doc = sessions_json(&log);
    assert_eq!(doc["segments"], 4, "{doc:#}");
    assert_eq!(doc["sessions"][0]["exchanges"], 4);
    assert_eq!(doc["sessions"][0]["turns"], 4);
    let shown = viewer(&log, &["show", "latest"]);
    let at = |p: &str| shown.find(p).unwrap_or_else(|| panic!("{p} in {shown}"));
    assert!(
        at("p-one") < at("p-two") && at("p-two") < at("p-three") && at("p-three") < at("p-four")
    );

    // The live file rotated away entirely: the segments are still read.
    std::fs::remove_file(&log).unwrap();
    assert_eq!(sessions_json(&log)["sessions"][0]["exchanges"], 3);
    // No log at all: an error naming the setting.
    let out = Command::new(bin())
        .args(["sessions", "--log-file"])
        .arg(dir.join("nothing.log"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LOG_FILE"), "{err}");
}

#[test]
fn sessions_since_a_time_lists_only_those_active_after_it() {
    let dir = temp_dir("viewer", "since");
    let log = dir.join("traffic.log");
    let lines = [
        record(1, "s-morning", "2026-12-03T09:00:00Z", &["early"]),
        record(2, "s-noon", "2026-12-03T11:59:59Z", &["before"]),
        record(3, "s-noon", "2026-12-03T12:00:00.5Z", &["before", "after"]),
        record(4, "s-evening", "2026-12-03T18:00:00Z", &["late"]),
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let ids = |since: &str| -> Vec<String> {
        let doc: Value =
            serde_json::from_str(&viewer(&log, &["sessions", "--json", "--since", since])).unwrap();
        doc["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("2026-12-03T12:00:00Z"), ["s-evening", "s-noon"]);
    assert_eq!(ids("2026-12-03T12:00:01Z"), ["s-evening"]);
    assert_eq!(ids("2026-12-04T00:00:00Z"), Vec::<String>::new());
    assert_eq!(ids("2026-12-03T00:00:00Z").len(), 3);

    let out = Command::new(bin())
        .args(["sessions", "--since", "yesterday", "--log-file"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--since") && err.contains("2026-12-03T10:15:00Z"),
        "{err}"
    );
}

#[test]
fn on_a_terminal_show_is_coloured_and_paged_like_git_log() {
    let dir = temp_dir("viewer", "pty");
    let log = dir.join("traffic.log");
    std::fs::write(
        &log,
        record(1, "s-pty", "2026-12-03T10:00:01Z", &["p-paged"]) + "\n",
    )
    .unwrap();
    // A pager that keeps what it was given.
    let pager = dir.join("pager.sh");
    let paged = dir.join("paged.txt");
    std::fs::write(&pager, format!("#!/bin/sh\ncat > {}\n", paged.display())).unwrap();
    std::fs::set_permissions(&pager, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // util-linux `script` gives the command a pseudo-terminal as its stdout.
    let on_terminal = |extra: &str| {
        let command = format!(
            "{} show s-pty --log-file {} {extra}",
            bin().display(),
            log.display()
        );
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env_clear()
            .env("PATH", PATH)
            .env("TERM", "xterm")
            .env("PAGER", &pager)
            .output()
            .expect("run util-linux script");
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    on_terminal("");
    let text = std::fs::read_to_string(&paged).expect("the pager got the output");
    assert!(text.contains("p-paged"), "{text}");
    assert!(text.contains("\x1b[1m"), "coloured on a terminal: {text:?}");
    std::fs::remove_file(&paged).unwrap();

    let direct = on_terminal("--no-pager");
    assert!(
        direct.contains("p-paged") && direct.contains("\x1b["),
        "{direct:?}"
    );
    assert!(!paged.exists(), "--no-pager starts no pager");
    let plain = on_terminal("--no-pager --color never");
    assert!(
        plain.contains("p-paged") && !plain.contains("\x1b["),
        "{plain:?}"
    );
}

#[test]
fn failed_exchanges_are_counted_as_errors_and_shown_with_their_cause() {
    let dir = temp_dir("viewer", "errors");
    let log = dir.join("traffic.log");
    let ok = record(1, "s-err", "2026-12-03T10:00:01Z", &["fine"]);
    let mut overloaded: Value = serde_json::from_str(&record(
        2,
        "s-err",
        "2026-12-03T10:00:02Z",
        &["fine", "busy?"],
    ))
    .unwrap();
    overloaded["response"]["status"] = json!(529);
    overloaded["response"]["body"]["json"] = json!({"type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_1"});
    overloaded.as_object_mut().unwrap().remove("usage");
    let mut unreachable: Value = serde_json::from_str(&record(
        3,
        "s-err",
        "2026-12-03T10:00:03Z",
        &["fine", "busy?"],
    ))
    .unwrap();
    unreachable["outcome"] = json!("upstream_unreachable");
    unreachable["error"] = json!("connection refused");
    let u = unreachable.as_object_mut().unwrap();
    u.remove("response");
    u.remove("usage");
    u.remove("ttfb_ms");
    std::fs::write(&log, format!("{ok}\n{overloaded}\n{unreachable}\n")).unwrap();

    let doc = sessions_json(&log);
    let s = &doc["sessions"][0];
    assert_eq!(
        (s["exchanges"].as_u64(), s["errors"].as_u64()),
        (Some(3), Some(2)),
        "{s:#}"
    );
    let shown = viewer(&log, &["show", "s-err", "--color", "never"]);
    assert!(
        shown.contains("529 complete") && shown.contains("overloaded_error"),
        "{shown}"
    );
    assert!(
        shown.contains("upstream_unreachable") && shown.contains("error: connection refused"),
        "{shown}"
    );
    assert!(shown.contains("2 errors"), "{shown}");
    let page = dir.join("errors.html");
    viewer(&log, &["html", "s-err", "-o", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        count(&html, "<article class=\"ex main error\""),
        2,
        "failed exchanges stand out"
    );
    assert!(html.contains("connection refused") && html.contains("<b>errors</b> 2"));
}

#[test]
fn a_long_session_re_sending_its_history_makes_a_small_page_that_rebuilds_every_request() {
    let dir = temp_dir("viewer", "long");
    let log = dir.join("traffic.log");
    let mut history = vec![
        json!({"role": "user", "content": format!("read this {}", "big file line\n".repeat(10_000))}),
    ];
    let mut text = String::new();
    for n in 1..=200u32 {
        let mut r: Value =
            serde_json::from_str(&record(n, "s-long", "2026-12-03T10:00:00Z", &["x"])).unwrap();
        r["started_at"] = json!(format!("2026-12-03T10:{:02}:{:02}Z", n / 60, n % 60));
        r["request"]["body"]["json"]["messages"] = json!(history);
        text += &r.to_string();
        text.push('\n');
        let id = format!("toolu_{n}");
        history.push(json!({"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "Bash", "input": {"command": format!("step {n}")}}]}));
        history.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": format!("output {n}")}]}));
    }
    std::fs::write(&log, &text).unwrap();
    let out_dir = target_dir().join("viewer-test");
    std::fs::create_dir_all(&out_dir).unwrap();
    let page = out_dir.join("long-session.html");
    viewer(&log, &["html", "s-long", "-o", page.to_str().unwrap()]);
    let size = page.metadata().unwrap().len();
    assert!(
        size * 20 < text.len() as u64,
        "the page ({size} bytes) stores deltas, not the {} bytes of re-sent history",
        text.len()
    );
    let report = browser_check(&page, &out_dir.join("long-session.png"));
    assert_eq!(report["console_errors"], json!([]), "{report:#}");
    assert_eq!(report["exchanges"].as_array().unwrap().len(), 200);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        report["detail"]["request"]["body"]["messages"],
        last["request"]["body"]["json"]["messages"],
        "the 200th request is rebuilt from 199 deltas"
    );
}

#[test]
fn a_price_table_given_with_prices_replaces_the_built_in_one_as_for_the_shipper() {
    let dir = temp_dir("viewer", "prices");
    let log = dir.join("traffic.log");
    std::fs::write(
        &log,
        record(1, "s-price", "2026-12-03T10:00:01Z", &["hi"]) + "\n",
    )
    .unwrap();
    // Built in: Haiku 4.5 at $1 in, $5 out: 100 x 1 + 10 x 5 = 150 micro-USD.
    let cost = |doc: &Value| doc["sessions"][0]["cost_usd"].as_f64().unwrap();
    assert!((cost(&sessions_json(&log)) - 0.000_15).abs() < 1e-9);

    let table = dir.join("prices.json");
    std::fs::write(
        &table,
        r#"{"date":"2026-12-01","source":"https://example.invalid","unit":"USD per million tokens",
            "models":{"claude-haiku-4-5":{"input":10,"output":100,"cache_write_5m":0,"cache_write_1h":0,"cache_read":0}}}"#,
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&viewer(
        &log,
        &["sessions", "--json", "--prices", table.to_str().unwrap()],
    ))
    .unwrap();
    assert!((cost(&doc) - 0.002).abs() < 1e-9, "{doc:#}");
    assert_eq!(doc["price_table_date"], "2026-12-01");

    // LiteLLM's price file works the same way: its per-token rates, its Anthropic entries.
    let litellm = dir.join("model_prices_and_context_window.json");
    std::fs::write(
        &litellm,
        r#"{"claude-haiku-4-5": {"litellm_provider": "anthropic", "input_cost_per_token": 2e-05,
            "output_cost_per_token": 1e-04, "cache_creation_input_token_cost": 0,
            "cache_read_input_token_cost": 0}}"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["sessions", "--json", "--log-file"])
        .arg(&log)
        .arg("--prices")
        .arg(&litellm)
        .env_clear()
        .env("PATH", PATH)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((cost(&doc) - 0.003).abs() < 1e-9, "{doc:#}");
    // The table's date is said on stderr, the output is left as it was.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "price table of {}",
            doc["price_table_date"].as_str().unwrap()
        )),
        "{stderr}"
    );

    std::fs::write(&table, "{}").unwrap();
    let out = Command::new(bin())
        .args(["sessions", "--log-file"])
        .arg(&log)
        .env_clear()
        .env("PATH", PATH)
        .env("PRICES_FILE", &table)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("PRICES_FILE") && stderr.contains("prices.json"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
