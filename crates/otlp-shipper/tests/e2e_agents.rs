//! Seq and the session viewer tell the same story of a session: for every exchange, the
//! `claude.agent` (and `claude.agent.tool_use_id`) the real shipper sent to the Seq stand-in
//! is the viewer's label for it, and a session's cost in Seq (the sum of `claude.cost.usd`
//! over its exchanges' events) is the viewer's total, sub-agents included, agent by agent.
//! Over generated sessions (sub-agents, a retry, a title request, a `count_tokens` burst, two
//! sessions interleaved) and over a real Claude Code session whose main turn starts a
//! sub-agent, where Claude Code's own telemetry (`query_source` of each
//! `claude_code.api_request`) is the oracle of who sent each request.
//!
//! Peers come from `scripts/test.sh` (`CLAUDE_BIN`: npm `@anthropic-ai/claude-code`); a missing
//! one fails the test.

mod e2e_support;
mod session_support;

use e2e_support::*;
use seq_standin::StoredEvent;
use serde_json::Value;
use session_support::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

/// What Seq holds of one exchange: its main event's `claude.agent`,
/// `claude.agent.tool_use_id`, `claude.cost.usd` and session.
#[derive(Debug)]
struct InSeq {
    agent: Option<String>,
    tool_use_id: Option<String>,
    cost: Option<f64>,
    session: Option<String>,
}

/// The events the cost queries of docs/seq-events.md count: those with `claude.stream`, the
/// exchanges' main events (Seq keeps spans as events too, with the same cost property).
fn in_seq(events: &[StoredEvent]) -> HashMap<String, InSeq> {
    let counted: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| e.attributes.contains_key("claude.stream"))
        .collect();
    assert_eq!(counted.len(), main_events(events).len(), "one per exchange");
    counted
        .into_iter()
        .map(|e| {
            let s = |k: &str| e.attr_str(k).map(str::to_string);
            let seen = InSeq {
                agent: s("claude.agent"),
                tool_use_id: s("claude.agent.tool_use_id"),
                cost: e.attributes.get("claude.cost.usd").and_then(Value::as_f64),
                session: s("session.id"),
            };
            (s("claude.exchange.id").expect("an exchange id"), seen)
        })
        .collect()
}

/// What the viewer makes of one exchange.
#[derive(Debug)]
struct InViewer {
    role: viewer::session::Role,
    label: String,
    tool_use_id: Option<String>,
    cost: Option<f64>,
}

/// Every session of the log as the viewer loads it: per exchange, and the summaries.
fn in_viewer(
    log: &Path,
) -> (
    HashMap<String, InViewer>,
    BTreeMap<String, viewer::session::Summary>,
) {
    let index = viewer::log::Index::build(log).unwrap();
    let prices = pricing::PriceTable::builtin();
    let mut exchanges = HashMap::new();
    let mut summaries = BTreeMap::new();
    for (id, heads) in viewer::session::by_session(&index) {
        let session = viewer::session::Session::load(&index, id, &heads, &prices).unwrap();
        for e in &session.exchanges {
            let seen = InViewer {
                role: e.role,
                label: e.label(),
                tool_use_id: e.subagent.as_ref().map(|s| s.tool_use_id.clone()),
                cost: e.cost_usd,
            };
            exchanges.insert(e.head.id.clone(), seen);
        }
        summaries.insert(id.to_string(), session.summary);
    }
    (exchanges, summaries)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

/// The agreement itself: labels exchange by exchange, totals session by session and agent
/// by agent. Returns the labels by exchange id.
fn assert_seq_and_viewer_agree(events: &[StoredEvent], log: &Path) -> HashMap<String, String> {
    // The viewer lists sessions: exchanges without a session id (Claude Code's `/api/hello`)
    // are only counted there.
    let mut seq = in_seq(events);
    seq.retain(|_, s| s.session.is_some());
    let (viewer, summaries) = in_viewer(log);
    assert_eq!(seq.len(), viewer.len(), "every exchange once in each");
    let mut labels = HashMap::new();
    for (id, v) in &viewer {
        let s = seq.get(id).unwrap_or_else(|| panic!("{id} not in Seq"));
        let agent = matches!(
            v.role,
            viewer::session::Role::Main
                | viewer::session::Role::Subagent
                | viewer::session::Role::Auxiliary
        )
        .then(|| v.role.label().to_string());
        assert_eq!(
            s.agent, agent,
            "{id}: Seq's claude.agent and the viewer's {}",
            v.label
        );
        assert_eq!(s.tool_use_id, v.tool_use_id, "{id}: the sub-agent's call");
        match (s.cost, v.cost) {
            (Some(a), Some(b)) => assert!(close(a, b), "{id}: cost {a} in Seq, {b} in the viewer"),
            (a, b) => assert_eq!(a.is_some(), b.is_some(), "{id}: cost {a:?} / {b:?}"),
        }
        labels.insert(id.clone(), v.label.clone());
    }
    // The Seq queries of docs/seq-events.md, over the log events (spans carry the same
    // properties and are counted apart): per session, and per session and agent.
    for (session, summary) in &summaries {
        let mine: Vec<(&String, &InSeq)> = seq
            .iter()
            .filter(|(_, s)| s.session.as_deref() == Some(session.as_str()))
            .collect();
        let total: f64 = mine.iter().filter_map(|(_, s)| s.cost).sum();
        assert!(
            close(total, summary.cost_usd),
            "{session}: {total} in Seq, {} in the viewer",
            summary.cost_usd
        );
        let by_agent_in_viewer: f64 = summary.agents.iter().map(|a| a.cost_usd).sum();
        assert!(
            close(by_agent_in_viewer, summary.cost_usd),
            "{session}: agents add up"
        );
        for agent in ["main", "subagent", "auxiliary"] {
            let in_seq: f64 = mine
                .iter()
                .filter(|(_, s)| s.agent.as_deref() == Some(agent))
                .filter_map(|(_, s)| s.cost)
                .sum();
            let in_viewer: f64 = summary
                .agents
                .iter()
                .filter(|a| a.agent.split(' ').next() == Some(agent))
                .map(|a| a.cost_usd)
                .sum();
            assert!(
                close(in_seq, in_viewer),
                "{session} {agent}: {in_seq} in Seq, {in_viewer} in the viewer"
            );
        }
    }
    labels
}

/// `lines` as another session: its own session id and exchange ids.
fn another_session(lines: &[String], session: &str) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l.replace(SESSION, session)
                .replace("\"id\":\"c0de", "\"id\":\"beef")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_and_the_viewer_agree_on_who_sent_each_exchange_and_what_it_cost() {
    let scratch = Scratch::new("e2e-agents-generated");
    // Two sessions, their lines interleaved, as two Claude Code windows would write them.
    let a = session_lines(40);
    let b = another_session(&session_lines(16), "0b0e5e55-1011-4000-8000-00000000beef");
    let mut lines = Vec::new();
    for i in 0..a.len().max(b.len()) {
        lines.extend(a.get(i).cloned());
        lines.extend(b.get(i).cloned());
    }
    let log = scratch.path("traffic.log");
    append_lines(&log, &lines);
    let seq = standin().await;
    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(120),
    )
    .await;
    let labels = assert_seq_and_viewer_agree(&seq.events(), &log);

    let count = |label: &str| labels.values().filter(|l| l.as_str() == label).count();
    // Session a: 40 turns and the retried one; four launches of two sub-agents of three
    // requests each, numbered in the order they started; the title request; the burst.
    // Session b: 16 turns and its retried one, one launch.
    assert_eq!(count("main"), 41 + 17);
    for n in 1..=8 {
        assert_eq!(
            count(&format!("subagent {n}")),
            3 + if n <= 2 { 3 } else { 0 },
            "subagent {n}"
        );
    }
    assert_eq!(count("subagent"), 0, "every sub-agent's call is in the log");
    assert_eq!(count("auxiliary"), 2, "the title requests");
    assert_eq!(count("count_tokens"), 26 * 2);
    // The spans say the same (and carry the cost too: why the queries keep to main events).
    assert!(
        seq.spans()
            .iter()
            .any(|s| s.attributes.contains_key("claude.cost.usd"))
    );
    for span in seq.spans() {
        let label = &labels[span.attr_str("claude.exchange.id").unwrap()];
        let agent = label
            .split(' ')
            .next()
            .filter(|a| ["main", "subagent", "auxiliary"].contains(a));
        assert_eq!(span.attr_str("claude.agent"), agent, "{label}");
    }
}

/// One `claude ARGS` run in the project directory through the proxy, Claude Code's own
/// telemetry exported as OTLP logs to `telemetry`; Claude Code's JSON result.
async fn claude(scratch: &Scratch, proxy: &str, telemetry: &str, args: &[&str]) -> Value {
    let (home, tmp) = (scratch.path("home"), scratch.path("tmp"));
    let mut cmd = claude_command(
        &scratch.path("project"),
        &home,
        &tmp,
        "sk-ant-test-agents-0000",
        proxy,
    );
    cmd.args(args)
        .args(["--model", "claude-sonnet-4-5", "--output-format", "json"])
        .arg("--dangerously-skip-permissions")
        .env("CLAUDE_CODE_ENABLE_TELEMETRY", "1")
        .env("OTEL_LOGS_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", telemetry)
        .env("OTEL_LOGS_EXPORT_INTERVAL", "500");
    claude_result(cmd, &format!("{args:?}"), Duration::from_secs(180)).await
}

/// Who sent a request, as Claude Code's own telemetry says: its `query_source`.
fn oracle(query_source: &str) -> &'static str {
    match query_source {
        s if s.starts_with("agent:") => "subagent",
        // The main loop: `sdk` in print mode (measured), `repl_main_thread` interactively.
        "sdk" | "repl_main_thread" => "main",
        _ => "auxiliary",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_the_viewer_and_claude_codes_telemetry_agree_on_a_real_session_with_a_sub_agent() {
    let scratch = Scratch::new("e2e-agents-claude-code");
    for dir in ["home", "tmp", "project"] {
        std::fs::create_dir_all(scratch.path(dir)).unwrap();
    }
    let log = scratch.path("traffic.log");
    let upstream = fake_anthropic::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start fake-anthropic");
    let (mut proxy, proxy_url) = start_proxy(&scratch, &format!("http://{upstream}"), &log).await;
    let telemetry = standin().await;

    // A text turn, then a turn whose answer calls the Agent tool: Claude Code runs the
    // sub-agent (its own system prompt and tools, the prompt as its first message) and the
    // main conversation goes on with its result.
    let first = claude(
        &scratch,
        &proxy_url,
        &telemetry.logs_url(),
        &["-p", "Say hi [ag-text-1]"],
    )
    .await;
    let second = claude(
        &scratch,
        &proxy_url,
        &telemetry.logs_url(),
        &[
            "-c",
            "-p",
            "Ask an agent [[tool:Agent:list the config files ag-agent-5]]",
        ],
    )
    .await;
    assert_eq!(
        first["session_id"], second["session_id"],
        "-c continues the session"
    );

    // The proxy drains its writer on SIGTERM: then the log holds every exchange.
    signal(proxy.id().unwrap(), "TERM");
    assert!(proxy.wait().await.unwrap().success());
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let request_ids: HashMap<String, String> = records
        .iter()
        .filter(|r| r["request"]["path"] == "/v1/messages")
        .map(|r| {
            let request_id = r["response"]["headers"]["request-id"].as_str().unwrap();
            (
                request_id.to_string(),
                r["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    let seq = standin().await;
    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(60),
    )
    .await;
    let labels = assert_seq_and_viewer_agree(&seq.events(), &log);

    // Claude Code's telemetry: one `api_request` per model call, with who sent it.
    let calls = request_ids.len();
    wait_for(
        Duration::from_secs(20),
        "Claude Code's api_request events",
        || {
            telemetry.with_events(|events| {
                events
                    .iter()
                    .filter(|e| e.attr_str("event.name") == Some("api_request"))
                    .count()
                    >= calls
            })
        },
    )
    .await;
    let mut agents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for e in telemetry.events() {
        if e.attr_str("event.name") != Some("api_request") {
            continue;
        }
        let request_id = e.attr_str("request_id").expect("a request id");
        let source = e.attr_str("query_source").expect("a query source");
        let exchange = request_ids
            .get(request_id)
            .unwrap_or_else(|| panic!("Claude Code's request {request_id} is not in the log"));
        let label = &labels[exchange];
        assert_eq!(
            label.split(' ').next(),
            Some(oracle(source)),
            "{exchange}: Claude Code says {source}, we say {label}"
        );
        *seen.entry(oracle(source)).or_insert(0) += 1;
        if let Some(agent_id) = e.attr_str("agent_id") {
            agents
                .entry(agent_id.to_string())
                .or_default()
                .push(label.clone());
        }
    }
    println!("model calls by Claude Code's query_source: {seen:?}; its agent ids: {agents:?}");
    assert_eq!(
        seen.values().sum::<usize>(),
        calls,
        "each model call once: {seen:?}"
    );
    assert!(seen.get("main").is_some_and(|n| *n >= 3), "{seen:?}");
    assert!(
        seen.contains_key("subagent"),
        "Claude Code started no sub-agent: {seen:?}"
    );
    // Each of Claude Code's agent ids is one numbered sub-agent of ours, and the reverse.
    let numbered: Vec<&String> = agents.values().map(|labels| &labels[0]).collect();
    for (id, labels) in &agents {
        assert!(
            labels
                .iter()
                .all(|l| l == &labels[0] && l.starts_with("subagent ")),
            "{id}: {labels:?}"
        );
    }
    let distinct: std::collections::BTreeSet<&&String> = numbered.iter().collect();
    assert_eq!(distinct.len(), agents.len(), "{agents:?}");

    // The costs are real numbers: every call priced, the total not zero.
    let (_, summaries) = in_viewer(&log);
    let session = &summaries[first["session_id"].as_str().unwrap()];
    assert_eq!(session.unpriced_exchanges, 0, "{session:?}");
    assert!(session.cost_usd > 0.0);
    println!("cost by agent: {:?}", session.agents);
    assert!(
        session
            .agents
            .iter()
            .any(|a| a.agent.starts_with("subagent ") && a.cost_usd > 0.0),
        "the sub-agent's cost is in the total: {:?}",
        session.agents
    );
}
