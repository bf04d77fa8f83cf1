//! A long Claude Code session through the real shipper into the Seq stand-in: every request
//! body is rebuilt from the conversation deltas, references and context events Seq received
//! and equals the log's (the acceptance test of `--bodies delta`); spans put the session on
//! one trace with ids that survive a kill -9; sub-agents are marked; and `full` and `delta`
//! are measured side by side on the same session (docs/performance.md).

mod e2e_support;
mod session_support;

use e2e_support::*;
use seq_standin::StoredEvent;
use session_support::*;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const TURNS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_session_is_rebuilt_request_by_request_from_what_seq_received() {
    let scratch = Scratch::new("e2e-session-delta");
    let lines = session_lines(TURNS);
    append_lines(&scratch.path("traffic.log"), &lines);
    let seq = standin().await;
    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(120),
    )
    .await;
    let events = seq.events();
    let queries = assert_rebuilt(&events, &lines);
    assert!(queries > 0);

    // The largest request of the main conversation is over 1 MB in the log.
    let largest = expected(&lines)
        .iter()
        .map(|(_, b, _)| b.len())
        .max()
        .unwrap();
    assert!(largest > 1_000_000, "largest request {largest} bytes");
    // A normal turn needs no splitting: no event is a body part.
    assert!(
        events.iter().all(|e| !is_part(e)),
        "no body was split into parts"
    );
    // System prompt blocks and tools went once each, whatever the billing block said.
    let contexts: Vec<&str> = events
        .iter()
        .filter_map(|e| e.attr_str("claude.context.hash"))
        .collect();
    let distinct: HashSet<&&str> = contexts.iter().collect();
    assert_eq!(contexts.len(), distinct.len(), "a block shipped twice");
    assert_eq!(contexts.len(), 2 + 18, "two big system blocks and 18 tools");

    // One span per exchange, all on the session's trace.
    let spans = seq.spans();
    assert_eq!(spans.len(), lines.len());
    let trace = &spans[0].trace_id;
    assert!(spans.iter().all(|s| &s.trace_id == trace));
    assert!(events.iter().all(|e| &e.trace_id == trace));
    let span_ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(span_ids.len(), spans.len(), "a span id per exchange");
    for e in &events {
        assert!(
            span_ids.contains(e.span_id.as_str()),
            "an event off its span"
        );
    }
    assert!(
        spans.iter().any(|s| s.status_code == 2),
        "the aborted stream"
    );

    // Who sent what: the main conversation, the sub-agents, the title request.
    let mains = main_events(&events);
    let agents = |agent: &str| {
        mains
            .iter()
            .filter(|e| e.attr_str("claude.agent") == Some(agent))
            .count()
    };
    assert_eq!(agents("main"), TURNS + 1, "the turns and the retried one");
    assert_eq!(
        agents("subagent"),
        4 * 6,
        "two sub-agents of three turns, four times"
    );
    assert_eq!(agents("auxiliary"), 1, "the title request");
    // The main conversation's chain holds through the sub-agents and count_tokens bursts:
    // every main turn but the first continues an earlier main turn.
    let agent_of: HashMap<&str, &str> = mains
        .iter()
        .filter_map(|e| {
            Some((
                e.attr_str("claude.exchange.id")?,
                e.attr_str("claude.agent")?,
            ))
        })
        .collect();
    let main_turns: Vec<&&StoredEvent> = mains
        .iter()
        .filter(|e| e.attr_str("claude.agent") == Some("main"))
        .collect();
    for e in &main_turns[1..] {
        let from = e
            .attr_str("claude.delta.continues")
            .expect("a main turn continues");
        assert_eq!(agent_of.get(from), Some(&"main"));
        assert!(e.attr_i64("claude.delta.new_messages").unwrap() <= 3);
    }
    // Cost, quota and timing are numbers.
    let turn = main_turns[5];
    assert!(turn.attributes["claude.cost.usd"].as_f64().unwrap() > 0.0);
    assert_eq!(
        turn.attributes["claude.ratelimit.unified_5h_utilization"].as_f64(),
        Some(0.31)
    );
    assert_eq!(
        turn.attr_i64("claude.ratelimit.unified_5h_reset"),
        Some(1_796_299_200)
    );
    assert!(turn.attributes["claude.output_tokens_per_second"].is_f64());
    assert_eq!(
        turn.attributes["claude.time_to_first_token_ms"].as_f64(),
        Some(1_100.0)
    );
    assert!(
        turn.attributes["claude.stream_max_gap_ms"]
            .as_f64()
            .unwrap()
            >= 1_000.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_ships_a_tenth_of_full_on_a_long_session() {
    let scratch = Scratch::new("e2e-session-bench");
    let lines = session_lines(TURNS);
    append_lines(&scratch.path("traffic.log"), &lines);
    let log_bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut figures = Vec::new();
    for mode in ["full", "delta"] {
        let seq = standin().await;
        let mut cmd = shipper_with_checkpoint(&scratch, &seq.logs_url(), &format!("cp-{mode}"));
        cmd.args(["--bodies", mode]);
        let started = std::time::Instant::now();
        ship_until_drained(&scratch, cmd, Duration::from_secs(120)).await;
        let elapsed = started.elapsed();
        let events = seq.events();
        let largest = events.iter().map(event_size).max().unwrap();
        let parts = events.iter().filter(|e| is_part(e)).count();
        let c = seq.counters();
        figures.push((
            mode,
            c.bytes_received,
            events.len(),
            c.accepted_spans,
            largest,
            parts,
        ));
        eprintln!(
            "{mode:>5}: {} bytes to Seq in {} requests, {} events + {} spans, largest event \
             {largest} bytes, {parts} body parts, {:.2}s",
            c.bytes_received,
            c.accepted_requests,
            events.len(),
            c.accepted_spans,
            elapsed.as_secs_f64()
        );
        if mode == "delta" {
            assert_rebuilt(&events, &lines);
        }
    }
    eprintln!(
        "session: {} records, {TURNS} main turns, {log_bytes} bytes of log",
        lines.len()
    );
    let (full, delta) = (figures[0].1, figures[1].1);
    eprintln!("full / delta = {:.1}", full as f64 / delta as f64);
    assert!(delta * 10 <= full, "delta {delta} vs full {full} bytes");
    assert_eq!(figures[1].5, 0, "delta split no body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_nothing_is_lost_and_the_first_exchange_is_shipped_whole() {
    let scratch = Scratch::new("e2e-session-kill");
    let lines = session_lines(TURNS);
    append_lines(&scratch.path("traffic.log"), &lines);
    let seq = standin().await;
    // Small batches and slow acknowledgements (injected 503s), so the kill lands mid-session.
    let mut cmd = shipper(&scratch, &seq.logs_url());
    cmd.args(["--batch-max-bytes", "300000"]);
    seq.control(seq_standin::Control {
        fail_next: vec![seq_standin::Failure::Status(503); 6],
        ..Default::default()
    });
    let mut child = spawn_logged(&scratch, &mut cmd);
    let third = lines.len() / 3;
    wait_for(Duration::from_secs(60), "a third of the session", || {
        seq.counters().accepted_spans >= third as u64
    })
    .await;
    child.start_kill().unwrap(); // SIGKILL
    let _ = child.wait().await;
    let before = seq.event_count();
    let spans_before = seq.spans();

    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(120),
    )
    .await;
    let events = seq.events();
    assert_rebuilt(&events, &lines);
    let (arrived, _) = by_exchange(&events);
    for (id, _, _) in expected(&lines) {
        assert!(arrived.contains_key(&id), "{id} lost");
    }

    // The first exchange shipped after the restart refers to nothing shipped before it.
    let first = events[before..]
        .iter()
        .find(|e| e.attributes.contains_key("claude.outcome"))
        .expect("events after the restart");
    assert_eq!(first.attr_str("claude.delta.continues"), None);
    if first.attr_str("claude.agent") == Some("main") {
        // Whole: its messages are all there and its blocks were shipped again after the
        // restart.
        let id = first.attr_str("claude.exchange.id").unwrap();
        let body = Rebuilder::new(&events[before..])
            .shipped(id, "request.body")
            .unwrap();
        assert!(!body.contains("$continues"));
        assert!(
            events[before..]
                .iter()
                .any(|e| e.attributes.contains_key("claude.context.hash"))
        );
    }

    // Same session → same trace id; same exchange → same span id, across the restart.
    let spans = seq.spans();
    let trace = &spans[0].trace_id;
    assert!(spans.iter().all(|s| &s.trace_id == trace));
    let mut span_of: HashMap<String, String> = HashMap::new();
    for s in spans_before.iter().chain(&spans) {
        let id = s.attr_str("claude.exchange.id").unwrap().to_string();
        let previous = span_of.insert(id.clone(), s.span_id.clone());
        assert!(
            previous.is_none_or(|p| p == s.span_id),
            "{id} changed span id"
        );
    }
    assert_eq!(span_of.len(), lines.len());
}
