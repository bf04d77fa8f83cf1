//! One trace in Seq: the real Claude Code CLI, with its enhanced telemetry (spans) and
//! `CLAUDE_CODE_PROPAGATE_TRACEPARENT=1`, sends its logs and spans straight to the Seq
//! stand-in, and its model requests through the real proxy (to fake-anthropic); the real
//! shipper ships the proxy's log into the same stand-in. Three prompts: a text turn, a tool
//! turn and a sub-agent (Agent tool) turn. Every exchange span must sit under the
//! `claude_code.llm_request` span that made it, inside that span's time, in the prompt's
//! interaction; a sub-agent's requests under the Agent tool's span; Claude Code's
//! `claude_code.api_request` events must name our exchanges' `request-id`; the viewer must
//! show one turn per prompt with the sub-agent inside it; and the API key must be nowhere.
//!
//! Peers come from `scripts/test.sh` (`CLAUDE_BIN`); a missing one fails the test.

mod e2e_support;

use e2e_support::*;
use seq_standin::{Options, StoredSpan};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const API_KEY: &str = "sk-ant-api03-trace-test-0123456789abcdefghijklmnopqrstuvwxyz";
const SEQ_KEY: &str = "seq-ingest-key-for-the-trace-test";

/// One `claude -p PROMPT` with telemetry to `seq` and its model requests through `proxy`.
async fn claude(scratch: &Scratch, proxy: &str, seq: &str, prompt: &str) {
    let (home, tmp) = (scratch.path("home"), scratch.path("tmp"));
    let mut cmd = claude_command(&scratch.path("project"), &home, &tmp, API_KEY, proxy);
    cmd.args(["-p", prompt, "--output-format", "json"])
        .arg("--dangerously-skip-permissions")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        // What `scripts/claude-sandbox.sh --otel --log-api` sets.
        .env("CLAUDE_CODE_ENABLE_TELEMETRY", "1")
        .env("OTEL_LOGS_EXPORTER", "otlp")
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("CLAUDE_CODE_ENHANCED_TELEMETRY_BETA", "1")
        .env("CLAUDE_CODE_PROPAGATE_TRACEPARENT", "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("{seq}/ingest/otlp"))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("X-Seq-ApiKey={SEQ_KEY}"),
        )
        .env("OTEL_LOGS_EXPORT_INTERVAL", "500")
        .env("OTEL_BSP_SCHEDULE_DELAY", "500");
    claude_output(cmd, &format!("{prompt:?}"), Duration::from_secs(120)).await;
}

fn attr<'a>(span: &'a StoredSpan, key: &str) -> Option<&'a str> {
    span.attributes.get(key).and_then(Value::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_sit_under_claude_codes_own_spans_in_one_trace() {
    let scratch = Scratch::new("e2e-claude-code-trace");
    for dir in ["home", "tmp", "project"] {
        std::fs::create_dir_all(scratch.path(dir)).unwrap();
    }
    let log = scratch.path("traffic.log");
    let upstream = fake_anthropic::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start fake-anthropic");
    let (mut proxy, proxy_url) = start_proxy(&scratch, &format!("http://{upstream}"), &log).await;
    let seq = standin_with(Options {
        api_key: Some(SEQ_KEY.into()),
        ..Options::default()
    })
    .await;
    let seq_url = format!("http://{}", seq.addr());
    let mut cmd = shipper(&scratch, &seq.logs_url());
    cmd.args(["--api-key", SEQ_KEY]);
    let mut shipper = spawn_logged(&scratch, &mut cmd);

    let prompts = [
        "Say hello.",
        "Run this for me. [[tool:Bash:echo traced]]",
        "Look around with a helper. [[tool:Agent:list the files here]]",
    ];
    for prompt in prompts {
        claude(&scratch, &proxy_url, &seq_url, prompt).await;
    }

    // Every exchange of the log shipped as a span, and Claude Code's spans arrived.
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exchange_ids: HashSet<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let llm_requests = records
        .iter()
        .filter(|r| r["request"]["path"] == "/v1/messages")
        .count();
    wait_for(
        Duration::from_secs(30),
        "every span in the stand-in",
        || {
            let spans = seq.spans();
            let ours = spans
                .iter()
                .filter(|s| s.attributes.get("claude.exchange.id").is_some())
                .count();
            let theirs = spans
                .iter()
                .filter(|s| s.name == "claude_code.llm_request")
                .count();
            ours == exchange_ids.len() && theirs >= llm_requests
        },
    )
    .await;
    let spans = seq.spans();
    let by_id: HashMap<&str, &StoredSpan> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let parent_of = |s: &StoredSpan| by_id.get(s.parent_span_id.as_str()).copied();

    let exchanges: Vec<&StoredSpan> = spans
        .iter()
        .filter(|s| s.name.starts_with("chat "))
        .collect();
    assert_eq!(
        exchanges.len(),
        llm_requests,
        "one span per /v1/messages exchange"
    );
    let mut sub_agent_exchanges = 0;
    for ex in &exchanges {
        let parent = parent_of(ex).unwrap_or_else(|| {
            panic!(
                "exchange {} has no parent among the spans (parent id {:?})",
                ex.attributes["claude.exchange.id"], ex.parent_span_id
            )
        });
        assert_eq!(parent.name, "claude_code.llm_request", "{ex:?}");
        assert_eq!(parent.trace_id, ex.trace_id);
        assert!(
            parent.start_time_unix_nano <= ex.start_time_unix_nano
                && ex.end_time_unix_nano <= parent.end_time_unix_nano,
            "exchange {}..{} outside its llm_request {}..{}",
            ex.start_time_unix_nano,
            ex.end_time_unix_nano,
            parent.start_time_unix_nano,
            parent.end_time_unix_nano
        );
        // Up the tree: an interaction at the root of the trace.
        let mut top = parent;
        while let Some(p) = parent_of(top) {
            top = p;
        }
        assert_eq!(top.name, "claude_code.interaction", "{ex:?}");
        let grandparent = parent_of(parent).expect("the llm_request has a parent");
        if attr(parent, "agent_id").is_some() {
            // A sub-agent's request: under the Agent tool's execution span.
            sub_agent_exchanges += 1;
            assert_eq!(grandparent.name, "claude_code.tool.execution");
            let tool = parent_of(grandparent).expect("the execution has its tool span");
            assert_eq!(tool.name, "claude_code.tool");
            assert_eq!(attr(tool, "tool_name"), Some("Agent"));
        } else {
            assert_eq!(grandparent.name, "claude_code.interaction");
        }
    }
    assert!(sub_agent_exchanges >= 1, "the Agent call ran a sub-agent");

    // The tool turn: both of its exchanges (tool call, then tool result) in one interaction.
    let tool_turn: Vec<&&StoredSpan> = exchanges
        .iter()
        .filter(|s| {
            records.iter().any(|r| {
                r["id"].as_str() == s.attributes["claude.exchange.id"].as_str()
                    && r["request"]["body"]["json"]["messages"][0]["content"]
                        .to_string()
                        .contains("echo traced")
            })
        })
        .collect();
    assert_eq!(tool_turn.len(), 2, "the tool turn's two requests");
    assert_eq!(tool_turn[0].trace_id, tool_turn[1].trace_id);
    assert_eq!(
        parent_of(parent_of(tool_turn[0]).unwrap()).unwrap().span_id,
        parent_of(parent_of(tool_turn[1]).unwrap()).unwrap().span_id,
        "one interaction holds both"
    );

    // Claude Code's api_request events name our exchanges by the response's request-id, and
    // sit on the same trace.
    wait_for(
        Duration::from_secs(30),
        "Claude Code's api_request events",
        || {
            seq.with_events(|events| {
                events
                    .iter()
                    .filter(|e| e.body_str() == Some("claude_code.api_request"))
                    .count()
                    >= llm_requests
            })
        },
    )
    .await;
    let events = seq.events();
    let ours: HashMap<&str, &seq_standin::StoredEvent> = events
        .iter()
        .filter(|e| e.attr_str("claude.exchange.id").is_some())
        .filter_map(|e| Some((e.attr_str("http.response.header.request-id")?, e)))
        .collect();
    for api in events
        .iter()
        .filter(|e| e.body_str() == Some("claude_code.api_request"))
    {
        let request_id = api.attr_str("request_id").expect("request_id");
        let exchange = ours
            .get(request_id)
            .unwrap_or_else(|| panic!("no exchange with request-id {request_id}"));
        assert_eq!(exchange.trace_id, api.trace_id, "{request_id}: one trace");
    }

    // The viewer groups by Claude Code's prompt: each session's turns are its interactions,
    // and the sub-agent's requests read inside the prompt that started them.
    let index = viewer::log::Index::build(&log).unwrap();
    let prices = pricing::PriceTable::builtin();
    let mut seen_subagent = false;
    for (id, heads) in viewer::session::by_session(&index) {
        let session = viewer::session::Session::load(&index, id, &heads, &prices).unwrap();
        let traces: HashSet<[u8; 16]> = heads.iter().filter_map(|h| h.interaction).collect();
        assert_eq!(
            session.summary.turns,
            traces.len(),
            "session {id}: a turn per prompt"
        );
        for turn in session.turns() {
            let exchanges = &session.exchanges[turn.exchanges.clone()];
            let trace = exchanges[0].head.interaction;
            assert!(
                exchanges.iter().all(|e| e.head.interaction == trace),
                "turn {} of {id} mixes prompts",
                turn.number
            );
            if exchanges
                .iter()
                .any(|e| e.role == viewer::session::Role::Subagent)
            {
                seen_subagent = true;
                assert!(
                    exchanges
                        .iter()
                        .any(|e| e.role == viewer::session::Role::Main),
                    "the sub-agent reads inside its prompt"
                );
            }
        }
    }
    assert!(seen_subagent, "the viewer shows the sub-agent's requests");

    // The API key is nowhere: not in what reached Seq, not in the log.
    let everything = format!(
        "{}{}{}",
        serde_json::to_string(&seq.events()).unwrap(),
        serde_json::to_string(&seq.spans()).unwrap(),
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(!everything.contains(&API_KEY[12..]), "the API key leaked");

    shipper.start_kill().unwrap();
    proxy.start_kill().unwrap();
}
