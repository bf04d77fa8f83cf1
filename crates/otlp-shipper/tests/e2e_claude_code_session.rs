//! The measured session of `--bodies delta` (docs/performance.md): the real Claude Code CLI
//! continues one session turn after turn (`claude -p --resume ID`) through the real proxy
//! binary against fake-anthropic; every turn asks for a tool (Read or Bash `cat`) on a source
//! file the test prepared, so each turn adds a tool round trip of ~26 KB and the last request is
//! over 1 MB. Two real shippers tail the proxy's log while the session runs, one with
//! `--bodies full` and one with `--bodies delta`, each into its own Seq stand-in (which checks
//! Seq's limits). The figures are printed side by side; the 10x target, no split event in
//! `delta`, and the rebuild of every request from what the `delta` stand-in received are
//! asserted.
//!
//! Peers come from `scripts/test.sh` (`CLAUDE_BIN`: npm `@anthropic-ai/claude-code`); a missing
//! one fails the test.

mod e2e_support;
mod session_support;

use e2e_support::*;
use seq_standin::Handle;
use serde_json::Value;
use session_support::{assert_rebuilt, event_size, main_events};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::process::Child;

const TURNS: usize = 40;
/// Bytes of each prepared source file: under Bash's 30,000-character output cap, and 40 of them
/// take the request past 1 MB.
const FILE_BYTES: usize = 26_000;
/// A request of 1 MB is well over 200k tokens, more than the API takes without the 1M-token
/// window: a session this long runs with it (`[1m]`: Claude Code sends the `context-1m` beta).
const MODEL: &str = "claude-sonnet-4-5[1m]";

/// Source file `n` of the project the session works on: Rust-like lines with the escapes
/// (quotes, backslashes, tabs) and multi-byte characters that JSON bodies must carry.
fn source_file(n: usize) -> String {
    const NAMES: &[&str] = &["offset", "segment", "record", "batch", "span", "body"];
    const CALLS: &[&str] = &["read_line", "encode", "flush", "parse", "digest"];
    const NOTES: &[&str] = &[
        "why: the checkpoint moves after the ack",
        "\"quoted\" path C:\\logs\\claude.log",
        "keeps é, → and 🦀 whole",
        "see docs/shipper.md",
    ];
    let mut rng = Rng::new(n as u64 + 1);
    let mut text = format!("//! part {n} of the project\nuse std::io;\n\n");
    let mut i = 0;
    while text.len() < FILE_BYTES {
        let pick =
            |rng: &mut Rng, list: &[&'static str]| list[rng.below(list.len() as u64) as usize];
        let (name, call, note) = (
            pick(&mut rng, NAMES),
            pick(&mut rng, CALLS),
            pick(&mut rng, NOTES),
        );
        let line = match rng.below(4) {
            0 => format!("fn {call}_{n}_{i}(x: u64) -> io::Result<u64> {{\n"),
            1 => format!(
                "\tlet {name}_{i} = {call}(&{name}, {});\n",
                rng.below(1 << 20)
            ),
            2 => format!("    // {note}\n"),
            _ => "}\n\n".to_string(),
        };
        text.push_str(&line);
        i += 1;
    }
    text
}

/// One turn: `claude -p PROMPT [--resume SESSION]` in the project directory, through the
/// proxy; Claude Code's JSON result.
async fn claude(scratch: &Scratch, proxy: &str, prompt: &str, resume: Option<&str>) -> Value {
    let (home, tmp) = (scratch.path("home"), scratch.path("tmp"));
    let mut cmd = claude_command(
        &scratch.path("project"),
        &home,
        &tmp,
        "sk-ant-test-session-0000",
        proxy,
    );
    cmd.args(["-p", prompt]);
    if let Some(session) = resume {
        cmd.args(["--resume", session]);
    }
    cmd.args(["--model", MODEL, "--output-format", "json"])
        .arg("--dangerously-skip-permissions")
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
    claude_result(cmd, &format!("{prompt:?}"), Duration::from_secs(120)).await
}

/// A shipper tailing the live log into `seq` with `--bodies MODE`.
fn start_shipper(scratch: &Scratch, seq: &Handle, mode: &str) -> Child {
    let mut cmd = shipper_with_checkpoint(scratch, &seq.logs_url(), &format!("cp-{mode}"));
    cmd.args(["--bodies", mode]);
    spawn_logged(scratch, &mut cmd)
}

/// What one stand-in received, for the table in docs/performance.md.
struct Figures {
    bytes: u64,
    requests: u64,
    events: usize,
    spans: u64,
    largest_event: usize,
    parts: usize,
}

fn figures(seq: &Handle) -> Figures {
    let c = seq.counters();
    seq.with_events(|events| Figures {
        bytes: c.bytes_received,
        requests: c.accepted_requests,
        events: events.len(),
        spans: c.accepted_spans,
        largest_event: events.iter().map(event_size).max().unwrap_or(0),
        parts: events.iter().filter(|e| is_part(e)).count(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_claude_code_session_of_40_turns_ships_a_tenth_of_full_in_delta() {
    let scratch = Scratch::new("e2e-claude-code-session");
    for dir in ["home", "tmp", "project/src"] {
        std::fs::create_dir_all(scratch.path(dir)).unwrap();
    }
    let sources: Vec<PathBuf> = (0..TURNS)
        .map(|n| {
            let path = scratch.path(&format!("project/src/part_{n:02}.rs"));
            std::fs::write(&path, source_file(n)).unwrap();
            path
        })
        .collect();
    let log = scratch.path("traffic.log");
    let upstream = fake_anthropic::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start fake-anthropic");
    let (mut proxy, proxy_url) = start_proxy(&scratch, &format!("http://{upstream}"), &log).await;
    let (seq_full, seq_delta) = (standin().await, standin().await);
    let mut shippers = [
        start_shipper(&scratch, &seq_full, "full"),
        start_shipper(&scratch, &seq_delta, "delta"),
    ];

    // The session: one prompt per turn, each asking for a tool on the next file; even turns
    // Read it, odd turns `cat` it with Bash. `--resume` continues the first turn's session.
    let started = Instant::now();
    let mut session: Option<String> = None;
    for (n, path) in sources.iter().enumerate() {
        let tool = if n % 2 == 0 {
            format!("Read:{}", path.display())
        } else {
            format!(
                "Bash:cat src/{}",
                path.file_name().unwrap().to_string_lossy()
            )
        };
        let prompt =
            format!("Turn {n}: review the next part of the shipper. [[thinking]] [[tool:{tool}]]");
        let result = claude(&scratch, &proxy_url, &prompt, session.as_deref()).await;
        let id = result["session_id"]
            .as_str()
            .expect("a session id")
            .to_string();
        assert_eq!(
            session.get_or_insert_with(|| id.clone()),
            &id,
            "turn {n} continued another session"
        );
        assert_eq!(
            result["num_turns"], 2,
            "turn {n}: one tool round trip: {result}"
        );
    }
    let session_secs = started.elapsed().as_secs_f64();
    let session = session.unwrap();

    // The proxy drains its writer on SIGTERM: then the log holds every exchange.
    signal(proxy.id().unwrap(), "TERM");
    let status = proxy.wait().await.unwrap();
    let proxy_err = std::fs::read_to_string(scratch.path("proxy.err")).unwrap();
    assert!(
        status.success(),
        "the proxy exited with {status}: {proxy_err}"
    );
    assert!(
        proxy_err.contains("degraded=0 lost=0"),
        "no record degraded or lost: {proxy_err}"
    );
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // One session id across the turns, on every request (the x-claude-code-session-id header).
    let ids: BTreeSet<&str> = records
        .iter()
        .map(|r| {
            r["request"]["headers"]["x-claude-code-session-id"]
                .as_str()
                .expect("every request carries the session header")
        })
        .collect();
    assert_eq!(ids, BTreeSet::from([session.as_str()]));
    assert!(records.iter().all(|r| r["outcome"] == "complete"));
    assert!(
        records
            .iter()
            .filter(|r| r["request"]["path"] == "/v1/messages")
            .all(|r| r["request"]["headers"]["anthropic-beta"]
                .as_str()
                .is_some_and(|b| b.contains("context-1m"))),
        "every turn asks for the 1M-token window"
    );
    let request_bytes: Vec<u64> = records
        .iter()
        .map(|r| r["request"]["body"]["size"].as_u64().unwrap())
        .collect();
    let largest_request = *request_bytes.iter().max().unwrap();
    assert!(
        largest_request >= 1_000_000,
        "the last request is {largest_request} bytes, not 1 MB"
    );
    // Every turn read its whole file (the tool result is in the last request).
    let last = &lines[request_bytes
        .iter()
        .position(|b| *b == largest_request)
        .unwrap()];
    for n in [0, TURNS - 1] {
        assert!(
            last.contains(&format!("part {n} of the project")),
            "file {n} read"
        );
    }
    let log_bytes: usize = lines.iter().map(|l| l.len() + 1).sum();

    // Both shippers have delivered every exchange (one span each).
    for seq in [&seq_full, &seq_delta] {
        wait_for(Duration::from_secs(120), "every exchange in Seq", || {
            seq.counters().accepted_spans >= records.len() as u64
        })
        .await;
    }
    for shipper in &mut shippers {
        signal(shipper.id().unwrap(), "TERM");
        let status = shipper.wait().await.unwrap();
        assert!(status.success(), "{status}:\n{}", shipper_output(&scratch));
    }

    let full = figures(&seq_full);
    let delta = figures(&seq_delta);
    eprintln!(
        "session {session}: {TURNS} turns in {session_secs:.1}s, {} records, {log_bytes} bytes of \
         log, requests {} to {largest_request} bytes",
        records.len(),
        request_bytes.iter().min().unwrap()
    );
    for (mode, f) in [("full", &full), ("delta", &delta)] {
        eprintln!(
            "{mode:>5}: {} bytes to Seq in {} requests, {} events + {} spans, largest event {} \
             bytes, {} body parts",
            f.bytes, f.requests, f.events, f.spans, f.largest_event, f.parts
        );
    }
    eprintln!(
        "full / delta = {:.1}",
        full.bytes as f64 / delta.bytes as f64
    );

    // Every request comes back from the delta events, and each request of the main
    // conversation (two per turn: the prompt, then the tool result) continues the one before
    // it, across the `--resume`s and the count_tokens calls Claude Code makes after a Read.
    let events = seq_delta.events();
    assert_rebuilt(&events, &lines);
    let mains = main_events(&events);
    assert_eq!(mains.len(), records.len(), "one main event per exchange");
    let conversation: Vec<_> = mains
        .iter()
        .filter(|e| e.attr_str("claude.agent") == Some("main"))
        .collect();
    assert_eq!(conversation.len(), 2 * TURNS, "two requests per turn");
    for pair in conversation.windows(2) {
        assert_eq!(
            pair[1].attr_str("claude.delta.continues"),
            pair[0].attr_str("claude.exchange.id"),
            "a request of the main conversation continues the one before it"
        );
    }
    assert!(
        delta.bytes * 10 <= full.bytes,
        "delta {} vs full {} bytes",
        delta.bytes,
        full.bytes
    );
    assert_eq!(delta.parts, 0, "delta split no body");
}
