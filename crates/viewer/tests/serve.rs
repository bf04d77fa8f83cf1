//! `claude-api-logger serve` for real: the binary over logs written by the real proxy for the
//! real Claude Code CLI (against fake-anthropic), read in Debian's headless Chromium driven by
//! playwright-core (tests/browser/serve_*.js): a session updating while Claude Code adds a
//! turn, a Seq event's `claude.view.url` (shipped by the real shipper to the Seq stand-in)
//! opening the exchange whose request body is the log's byte for byte, hostile logged content
//! that runs no script; and the server's rules over plain HTTP (token, host names, ids,
//! methods, connection cap, rotation).
//!
//! Peers come from `scripts/test.sh` (`CLAUDE_BIN`, Debian's `chromium`, npm `playwright-core`
//! under `$CAL_CACHE/npm`); a missing one fails the test naming it.

mod peers;

use peers::*;
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "serve-test-token-0123456789abcdef";
const API_KEY: &str = "sk-ant-test-serve-0000";

/// Where screenshots are kept for a person to look at (`target/serve-test/`).
fn shots() -> PathBuf {
    let dir = target_dir().join("serve-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `claude-api-logger serve --log-file LOG ARGS`, with `VIEWER_TOKEN` when `token` is given.
fn serve(log: &Path, dir: &Path, args: &[&str], token: Option<&str>) -> Running {
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .args(args)
        .arg("--log-file")
        .arg(log)
        .env_clear();
    if let Some(t) = token {
        cmd.env("VIEWER_TOKEN", t);
    }
    start(cmd, dir, "serve")
}

/// The request body of a log line exactly as the line holds it (`request.body.json`).
fn raw_request_body(line: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        request: Req<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Req<'a> {
        #[serde(borrow)]
        body: Body<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        json: &'a serde_json::value::RawValue,
    }
    let line: Line<'_> = serde_json::from_str(line).expect("a record with a JSON body");
    line.request.body.json.get().to_string()
}

/// One HTTP/1.1 request; the status, the head and the body.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// tests/browser/serve_open.js: opens `url` in the browser; its JSON report.
fn browse(origin: &str, url: &str, shot: &str, fetch: Option<&str>) -> Value {
    let shot = shots().join(shot);
    let mut args = vec![origin, url, shot.to_str().unwrap()];
    args.extend(fetch);
    browser_report("serve_open.js", &args)
}

/// Nothing a reader must never see: no dialog, no policy violation, no script of the log's,
/// no console error, no request elsewhere.
fn assert_clean(report: &Value) {
    for key in [
        "dialogs",
        "csp_violations",
        "console_errors",
        "page_errors",
        "elsewhere",
    ] {
        assert_eq!(report[key], json!([]), "{key}: {report:#}");
    }
    assert_eq!(report["pwned"], false, "{report:#}");
    assert!(
        report["control"]["violations"].as_u64() >= Some(1) && report["control"]["ran"] == false,
        "a script the page did not bring is refused, and the refusal is seen: {report:#}"
    );
}

#[test]
fn a_session_page_shows_a_new_turn_of_real_claude_code_without_a_reload() {
    let dir = temp_dir("serve", "live");
    let log = dir.join("traffic.log");
    let upstream = fake_upstream();
    let proxy = proxy(&upstream, &log, &dir);
    let first = claude(&proxy, &dir, API_KEY, &["-p", "First turn [sv-live-1]"]);
    let session = first["session_id"].as_str().unwrap().to_string();
    wait_for_log(&log, "sv-live-1", 1);
    let server = serve(&log, &dir, &["--listen", "127.0.0.1:0"], None);
    let origin = format!("http://{}", server.addr);

    let mut browser = node("serve_live.js")
        .args([
            &origin,
            &session,
            "Second turn [sv-live-2]",
            shots().join("live-session.png").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    if ready != "ready" {
        let mut err = String::new();
        let _ = browser.stderr.take().unwrap().read_to_string(&mut err);
        panic!("serve_live.js did not get ready: {ready:?}\n{err}");
    }
    // Claude Code continues the session while the page is open.
    let second = claude(
        &proxy,
        &dir,
        API_KEY,
        &["-c", "-p", "Second turn [sv-live-2]"],
    );
    assert_eq!(second["session_id"], session.as_str());
    let report_line = lines
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("report ").map(str::to_string));
    let status = browser.wait().unwrap();
    let mut err = String::new();
    let _ = browser.stderr.take().unwrap().read_to_string(&mut err);
    let report: Value = serde_json::from_str(
        &report_line.unwrap_or_else(|| panic!("no report from serve_live.js ({status}): {err}")),
    )
    .unwrap();

    // The list showed the session, going on, with its first prompt.
    let row = report["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["session"] == session.as_str())
        .unwrap_or_else(|| panic!("the session is listed: {report:#}"));
    assert_eq!(row["active"], true, "{row}");
    assert!(
        row["text"]
            .as_str()
            .unwrap()
            .contains("First turn [sv-live-1]"),
        "{row}"
    );
    // The new turn came in without a reload: two navigations (list, session) in all.
    // A turn's header is "Turn N · $cost".
    let turns = |when: &str| -> Vec<String> {
        report[when]["turns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().split(" · ").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(turns("before"), ["Turn 1"], "{report:#}");
    assert_eq!(turns("after"), ["Turn 1", "Turn 2"], "{report:#}");
    assert!(
        report["after"]["exchanges"].as_u64() > report["before"]["exchanges"].as_u64(),
        "{report:#}"
    );
    assert_eq!(
        report["navigations"].as_array().unwrap().len(),
        2,
        "no reload: {report:#}"
    );
    // The list open beside it counted the new exchanges, without a reload either.
    let count = |k: &str| report[k].as_str().unwrap().trim().parse::<u64>().unwrap();
    assert!(
        count("list_exchanges_after") > count("list_exchanges_before"),
        "{report:#}"
    );
    assert_eq!(
        report["list_navigations"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_clean(&report);
    // Every exchange links to its own page; the rebuilt last request is the log's.
    let lines_now = wait_for_log(&log, "sv-live-2", 1);
    let last = lines_now
        .iter()
        .rev()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["session_id"] == session.as_str())
        .unwrap();
    let links = report["exchange_links"].as_array().unwrap();
    assert_eq!(
        links.last().unwrap(),
        &json!(format!("/exchange/{}", last["id"].as_str().unwrap())),
        "{report:#}"
    );
    assert_eq!(
        report["detail_request"]["body"]["messages"],
        last["request"]["body"]["json"]["messages"]
    );
    drop(server);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_seq_events_view_url_opens_the_exchange_whose_request_body_is_the_logs_byte_for_byte() {
    let dir = temp_dir("serve", "seq-link");
    let log = dir.join("traffic.log");
    let upstream = fake_upstream();
    let proxy = proxy(&upstream, &log, &dir);
    // A tool turn: two exchanges with Claude Code's whole system prompt and tools, so Seq gets
    // context events and body parts besides the main events.
    claude(
        &proxy,
        &dir,
        API_KEY,
        &["-p", "Run it [[tool:Bash:echo sv-link-7]]"],
    );
    let lines = wait_for_log(&log, "Tool result received", 1);
    let server = serve(&log, &dir, &["--listen", "127.0.0.1:0"], Some(TOKEN));
    let base = format!("http://{}/t/{TOKEN}", server.addr);
    let origin = format!("http://{}", server.addr);

    // The real shipper delivers the log to the Seq stand-in with the viewer's base URL.
    let standin: (
        SocketAddr,
        std::sync::Arc<std::sync::Mutex<Option<seq_standin::Handle>>>,
    ) = background(|tx| {
        Box::pin(async move {
            let handle = seq_standin::spawn(
                "127.0.0.1:0".parse().unwrap(),
                seq_standin::Options::default(),
            )
            .await
            .expect("start the Seq stand-in");
            let addr = handle.addr();
            let shared = std::sync::Arc::new(std::sync::Mutex::new(Some(handle)));
            tx.send((addr, shared)).unwrap();
            std::future::pending::<()>().await;
        })
    });
    let out = Command::new(sibling("otlp-shipper"))
        .args(["--file"])
        .arg(&log)
        .args([
            "--endpoint",
            &format!("http://{}/ingest/otlp/v1/logs", standin.0),
        ])
        .args(["--view-base-url", &base])
        .arg("--checkpoint")
        .arg(dir.join("checkpoint.json"))
        .arg("--dead-letter")
        .arg(dir.join("dead-letter.jsonl"))
        .args(["--event-max-bytes", "16384", "--exit-when-drained"])
        .env_clear()
        .env("PATH", PATH)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "otlp-shipper: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let guard = standin.1.lock().unwrap();
    let handle = guard.as_ref().unwrap();
    let events = handle.events();
    let spans = handle.spans();
    let of_exchanges: Vec<_> = events
        .iter()
        .filter(|e| {
            e.attr_str("claude.exchange.id").is_some()
                || e.attributes.contains_key("claude.context.hash")
        })
        .collect();
    assert!(
        of_exchanges
            .iter()
            .any(|e| e.attributes.contains_key("claude.context.hash"))
            && of_exchanges
                .iter()
                .any(|e| e.attributes.contains_key("claude.body.part")),
        "context events and body parts were shipped"
    );
    for e in &of_exchanges {
        let url = e
            .attr_str("claude.view.url")
            .unwrap_or_else(|| panic!("no link on {e:?}"));
        assert!(url.starts_with(&format!("{base}/exchange/")), "{url}");
        if let Some(id) = e.attr_str("claude.exchange.id") {
            assert_eq!(url, format!("{base}/exchange/{id}"));
        }
    }
    assert!(!spans.is_empty());
    for s in &spans {
        let id = s.attributes["claude.exchange.id"].as_str().unwrap();
        assert_eq!(
            s.attributes["claude.view.url"],
            json!(format!("{base}/exchange/{id}"))
        );
    }

    // Follow the link of the last exchange's main event, as a Seq user clicks it.
    let main = of_exchanges
        .iter()
        .rev()
        .find(|e| e.attributes.contains_key("http.request.method"))
        .unwrap();
    let id = main.attr_str("claude.exchange.id").unwrap();
    let url = main.attr_str("claude.view.url").unwrap();
    let download = format!("/exchange/{id}/request.json");
    let report = browse(&origin, url, "seq-link.png", Some(&download));
    assert_eq!(report["status"], 200, "{report:#}");
    assert_eq!(
        report["url"],
        json!(format!("{origin}/exchange/{id}")),
        "the token leaves the address bar: {report:#}"
    );
    assert_clean(&report);
    let line = lines
        .iter()
        .find(|l| l.contains(&format!("\"id\":\"{id}\"")))
        .expect("the exchange's line");
    let logged = raw_request_body(line);
    let shown = report["request_body"].as_str().expect("a request body");
    assert_eq!(shown.len(), logged.len());
    assert!(
        shown == logged,
        "the page shows the request body byte for byte"
    );
    assert_eq!(report["fetched"]["status"], 200);
    assert!(
        report["fetched"]["text"].as_str() == Some(logged.as_str()),
        "the download is the body byte for byte"
    );
    assert!(
        report["fetched"]["disposition"]
            .as_str()
            .unwrap()
            .starts_with("attachment"),
        "{report:#}"
    );
    assert!(
        report["text"].as_str().unwrap().contains("echo sv-link-7"),
        "the readable view shows the conversation"
    );
    // Without the token (no cookie): refused.
    let (status, _, _) = http(&server.addr, "GET", &format!("/exchange/{id}"), &[]);
    assert_eq!(status, 401);
    drop(guard);
    drop(server);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A record whose every logged field an attacker could choose holds markup and script.
fn hostile_record(n: u32, session: &str, prompts: &[&str]) -> Value {
    let mut messages = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        messages.push(json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>r</system-reminder>"},
            {"type": "text", "text": p}]}));
        if i + 1 < prompts.len() {
            messages.push(json!({"role": "assistant", "content": [
                {"type": "text", "text": "<svg onload=\"window.__pwned=true;alert(3)\"></svg> ]]> <!--"},
                {"type": "tool_use", "id": format!("t{i}"), "name": "</script><script>window.__pwned=true</script>",
                    "input": {"</script><img src=x onerror=alert(4)>": "\u{0}\u{1}\u{1b}[31m\u{2028}\u{2029}"}}]}));
            messages.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": format!("t{i}"),
                "content": "<iframe src=\"javascript:alert(5)\"></iframe>"}]}));
        }
    }
    json!({
        "v": 1, "kind": "claude_api_exchange", "id": format!("{n:032x}"),
        "started_at": format!("2026-12-03T10:00:0{n}Z"), "ended_at": format!("2026-12-03T10:00:0{n}.5Z"),
        "duration_ms": 500.0, "outcome": "complete", "session_id": session,
        "model": "<b onmouseover=alert(6)>claude-haiku-4-5</b>",
        "usage": {"input_tokens": 10, "output_tokens": 5},
        "request": {"method": "POST", "path": "/v1/messages", "query": "a=<script>alert(7)</script>",
            "headers": {"user-agent": "\"><script>window.__pwned=true</script>", "x-api-key": "[REDACTED]"},
            "body": {"size": 100, "json": {"model": "claude-haiku-4-5",
                "system": "</script><script>window.__pwned=true;alert(8)</script>",
                "messages": messages}}},
        "response": {"status": 200, "headers": {"x-note": "</title><script>alert(9)</script>"},
            "body": {"size": 50, "json": {"role": "assistant", "content": [
                {"type": "text", "text": "</script><script>window.__pwned=true;alert(10)</script>"}]}}}
    })
}

#[test]
fn hostile_logged_content_is_shown_as_text_and_runs_no_script() {
    let dir = temp_dir("serve", "hostile");
    let log = dir.join("traffic.log");
    let session = "\"><script>window.__pwned=true</script>";
    let prompt =
        "</script><script>window.__pwned=true;alert(1)</script><img src=x onerror=\"alert(2)\">";
    let mut bytes = Vec::new();
    for (n, prompts) in [
        (1, vec![prompt]),
        (2, vec![prompt, "second <b>bold</b> & \u{7}"]),
    ] {
        bytes.extend_from_slice(hostile_record(n, session, &prompts).to_string().as_bytes());
        bytes.push(b'\n');
    }
    // A body that is not UTF-8 is logged as base64; a line that is not UTF-8 is skipped.
    let mut b64 = hostile_record(3, session, &[prompt]);
    b64["request"]["body"] = json!({"size": 4, "base64": "/w48Lz4="});
    bytes.extend_from_slice(b64.to_string().as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(b"{\"kind\":\"claude_api_exchange\",\"x\":\"\xff\xfe<script>\"}\n");
    std::fs::write(&log, &bytes).unwrap();
    let server = serve(&log, &dir, &["--listen", "127.0.0.1:0"], None);
    let origin = format!("http://{}", server.addr);

    let list = browse(&origin, &format!("{origin}/"), "hostile-list.png", None);
    assert_clean(&list);
    assert!(
        list["text"].as_str().unwrap().contains("1 not UTF-8"),
        "{list:#}"
    );
    let session_url = format!(
        "{origin}/session/{}",
        "%22%3E%3Cscript%3Ewindow.__pwned%3Dtrue%3C%2Fscript%3E"
    );
    let page = browse(&origin, &session_url, "hostile-session.png", None);
    assert_eq!(page["status"], 200, "{page:#}");
    assert_clean(&page);
    let text = page["text"].as_str().unwrap();
    assert!(text.contains(prompt), "the prompt shows as text: {text}");
    assert!(text.contains("second <b>bold</b>"), "{text}");
    // The page's script built every full request from the logged data, as text.
    let built = page["detail_requests"].as_array().unwrap();
    assert_eq!(built.len(), 3, "{page:#}");
    assert!(built[0].as_str().unwrap().contains("alert(8)"));
    for n in 1..=3 {
        let exchange = browse(
            &origin,
            &format!("{origin}/exchange/{n:032x}"),
            &format!("hostile-exchange-{n}.png"),
            None,
        );
        assert_eq!(exchange["status"], 200, "{exchange:#}");
        assert_clean(&exchange);
        let text = exchange["text"].as_str().unwrap();
        assert!(
            text.contains("\"><script>window.__pwned=true</script>"),
            "{text}"
        );
        if n == 3 {
            assert_eq!(exchange["request_body"], "/w48Lz4=", "{exchange:#}");
        } else {
            assert!(text.contains(prompt), "{text}");
        }
        if n == 2 {
            assert!(
                exchange["request_body"]
                    .as_str()
                    .unwrap()
                    .contains("\\u0000\\u0001\\u001b[31m"),
                "control characters stay escaped in the raw JSON: {exchange:#}"
            );
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn record(n: u32, session: &str, started: &str) -> String {
    json!({
        "v": 1, "kind": "claude_api_exchange", "id": format!("{n:02x}").repeat(16),
        "started_at": started, "ended_at": started, "duration_ms": 1.0, "outcome": "complete",
        "session_id": session, "model": "claude-haiku-4-5",
        "request": {"method": "POST", "path": "/v1/messages", "headers": {},
            "body": {"size": 2, "json": {"messages": [{"role": "user", "content": format!("prompt {n}")}]}}},
        "response": {"status": 200, "headers": {}, "body": {"size": 0}}
    })
    .to_string()
        + "\n"
}

#[test]
fn off_loopback_every_request_needs_the_token_and_bad_requests_are_refused() {
    let dir = temp_dir("serve", "rules");
    let log = dir.join("claude-logger.log");
    std::fs::write(&log, record(1, "s-rules", "2026-12-03T10:00:01Z")).unwrap();

    // Off loopback without a token: refused at start, naming the setting.
    let out = Command::new(bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--log-file"])
        .arg(&log)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("VIEWER_TOKEN"), "{err}");

    let server = serve(&log, &dir, &["--listen", "0.0.0.0:0"], Some(TOKEN));
    let said = std::fs::read_to_string(dir.join("serve.stdout")).unwrap();
    assert!(
        said.contains("reachable from other hosts: every request needs the token"),
        "{said}"
    );
    assert!(!said.contains(TOKEN), "the token is never printed: {said}");
    let port = server.addr.rsplit(':').next().unwrap();
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(http(&addr, "GET", "/", &[]).0, 401);
    assert_eq!(http(&addr, "GET", "/t/not-the-token-0000000/", &[]).0, 401);
    let bearer = format!("Bearer {TOKEN}");
    let (status, head, body) = http(&addr, "GET", "/", &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("s-rules"), "{body}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    // The address with the token: a cookie, and the same page without the token.
    let (status, head, _) = http(
        &addr,
        "GET",
        &format!("/t/{TOKEN}/session/s-rules?x=1"),
        &[],
    );
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /session/s-rules?x=1"), "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(!cookie.contains(TOKEN));
    let (status, _, body) = http(&addr, "GET", "/session/s-rules", &[("Cookie", &cookie)]);
    assert_eq!(status, 200);
    assert!(body.contains("prompt 1"));
    let auth = [("Cookie", cookie.as_str())];

    // The list's filter: text (id, first prompt, model), model, days.
    for (query, listed) in [
        ("q=PROMPT+1", true),
        ("q=s-rul", true),
        ("q=nothing-like-it", false),
        ("model=claude-haiku-4-5", true),
        ("model=claude-opus-5", false),
        ("from=2026-12-03&to=2026-12-03", true),
        ("from=2026-12-04", false),
        ("to=2026-12-02", false),
    ] {
        let (status, _, body) = http(&addr, "GET", &format!("/?{query}"), &auth);
        assert_eq!(status, 200);
        assert_eq!(
            body.contains("data-session=\"s-rules\""),
            listed,
            "{query}: {body}"
        );
    }

    // Exchange ids are 32 hex digits; nothing else is looked up, no path is ever built.
    for bad in [
        "/exchange/..%2F..%2Fetc%2Fpasswd",
        "/exchange/../../etc/passwd",
        "/exchange/0101010101010101010101010101010G",
        "/exchange/%2e%2e",
    ] {
        let (status, _, body) = http(&addr, "GET", bad, &auth);
        assert!(matches!(status, 400 | 404), "{bad}: {status}");
        assert!(!body.contains("root:"), "{bad}");
    }
    let id = "01".repeat(16);
    assert_eq!(http(&addr, "GET", &format!("/exchange/{id}"), &auth).0, 200);
    assert_eq!(
        http(&addr, "GET", &format!("/exchange/{id}/../../x"), &auth).0,
        404
    );
    let (status, head, body) = http(&addr, "GET", &format!("/exchange/{id}/record.json"), &auth);
    assert_eq!(status, 200);
    assert!(head.contains("content-disposition: attachment"), "{head}");
    assert_eq!(
        body,
        record(1, "s-rules", "2026-12-03T10:00:01Z").trim_end()
    );
    // Read-only.
    for method in ["POST", "PUT", "DELETE"] {
        assert_eq!(http(&addr, method, "/", &auth).0, 405, "{method}");
    }

    // Rotation while serving: the rotated file's exchanges stay, the new file's join them.
    std::fs::rename(&log, dir.join("claude-logger.log.20261203T100000Z.1")).unwrap();
    std::fs::write(&log, record(2, "s-rules", "2026-12-03T10:00:02Z")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, body) = http(&addr, "GET", "/session/s-rules", &auth);
        if body.contains("prompt 1") && body.contains("prompt 2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new file was not followed: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_token_only_loopback_host_names_are_answered_and_connections_are_capped() {
    let dir = temp_dir("serve", "limits");
    let log = dir.join("traffic.log");
    std::fs::write(&log, record(1, "s-limits", "2026-12-03T10:00:01Z")).unwrap();
    let server = serve(
        &log,
        &dir,
        &["--listen", "127.0.0.1:0", "--max-connections", "2"],
        None,
    );
    let addr = server.addr.clone();
    let said = std::fs::read_to_string(dir.join("serve.stdout")).unwrap();
    assert!(said.contains("this machine only, no token"), "{said}");
    assert_eq!(http(&addr, "GET", "/", &[]).0, 200);
    // A page elsewhere whose host name points at 127.0.0.1 (DNS rebinding) is refused.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: evil.example:8001\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // Two silent connections take both places: a third is answered 503 at once. The server
    // frees a place just after closing its connection, so a silent connection that came too
    // early was answered 503 itself: open another until two are held.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut idle: Vec<TcpStream> = Vec::new();
    while idle.len() < 2 {
        assert!(Instant::now() < deadline, "no place was freed");
        let c = TcpStream::connect(&addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        c.set_nonblocking(true).unwrap();
        let held =
            matches!(c.peek(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        c.set_nonblocking(false).unwrap();
        if held {
            idle.push(c);
        }
    }
    let (status, _, body) = http(&addr, "GET", "/", &[]);
    assert_eq!(status, 503, "{body}");
    // A connection that sends no request head within 10 s is closed, freeing its place: each
    // read ends when the server closes it (12 s from now at the latest, as the test waited).
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(12))).unwrap();
        let mut buf = [0u8; 64];
        let read = c.read(&mut buf);
        assert!(
            matches!(&read, Ok(0))
                || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "closed by the server: {read:?}"
        );
    }
    assert_eq!(http(&addr, "GET", "/", &[]).0, 200);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
