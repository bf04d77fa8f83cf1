//! Claude Code is the oracle of our cost. The real Claude Code CLI, its own telemetry on (as
//! `scripts/claude-sandbox.sh --otel` sets it), runs `claude -p` once per model of the built-in
//! price table through the real proxy to fake-anthropic, which answers with cache reads and
//! 5-minute and 1-hour cache writes (`[[usage:...]]`); a model with a prompt-length band runs
//! once more with a prompt above each threshold. The real shipper ships the proxy's log into the
//! same Seq stand-in that receives Claude Code's OTLP log events. For every
//! `claude_code.api_request` event, the exchange with the same request id must carry
//! `claude.cost.usd` equal to Claude Code's `cost_usd` (relative 1e-9), and the session viewer's
//! cost of that exchange must be the same number.
//!
//! No model of the table is passed over silently: a model Claude Code refuses or answers with
//! another model fails the test, naming it and the reason, unless it is listed in
//! [`NOT_SELECTABLE`] with why (printed every run).
//!
//! Peers come from `scripts/test.sh` (`CLAUDE_BIN`: npm `@anthropic-ai/claude-code`); a missing
//! one fails the test.

mod e2e_support;

use e2e_support::*;
use pricing::PriceTable;
use seq_standin::StoredEvent;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Claude Code runs at once: each is a few seconds of a 400 MB binary starting; 2 cores.
const CONCURRENCY: usize = 3;

/// Relative difference allowed between our cost and Claude Code's.
const TOLERANCE: f64 = 1e-9;

/// Models of the table that Claude Code 2.1.332 does not let a user select, with the reason
/// (measured; printed every run, and checked still to be refused).
const NOT_SELECTABLE: &[(&str, &str)] = &[];

/// Usage of the ordinary run of every model: cache reads, 5-minute and 1-hour cache writes,
/// a prompt of 46,200 tokens (under every band).
const CACHED: Figures = Figures {
    input: 1200,
    cache_read: 40_000,
    cache_5m: 3000,
    cache_1h: 2000,
    output: 500,
};

/// The token counts fake-anthropic answers a run with, and Claude Code reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figures {
    input: u64,
    cache_read: u64,
    cache_5m: u64,
    cache_1h: u64,
    output: u64,
}

impl Figures {
    /// The `[[usage:...]]` directive of these counts, with `more` figures (`NAME=N,...`).
    fn directive(&self, more: &str) -> String {
        let sep = if more.is_empty() { "" } else { "," };
        format!(
            "[[usage:input={},cache_read={},cache_5m={},cache_1h={},output={}{sep}{more}]]",
            self.input, self.cache_read, self.cache_5m, self.cache_1h, self.output
        )
    }

    /// The counts of a `claude_code.api_request` event.
    fn of_event(e: &StoredEvent) -> Option<Figures> {
        let n = |key| number(e, key).map(|v| v as u64);
        Some(Figures {
            input: n("input_tokens")?,
            cache_read: n("cache_read_tokens")?,
            cache_5m: n("cache_creation_5m_tokens")?,
            cache_1h: n("cache_creation_1h_tokens")?,
            output: n("output_tokens")?,
        })
    }

    fn prompt(&self) -> u64 {
        self.input + self.cache_read + self.cache_5m + self.cache_1h
    }
}

/// One `claude -p` run: a model and the usage fake-anthropic answers it with.
#[derive(Debug, Clone)]
struct Case {
    model: String,
    /// `cached`, `above <N>` (a prompt above a band's threshold), `fast`, `us, web tools` or
    /// `not streamed`.
    label: String,
    usage: Figures,
    /// Server tool uses added to the usage directive (`web_search=N,web_fetch=N`).
    tools: &'static str,
    /// More directives for fake-anthropic.
    directives: &'static str,
    /// Request fields Claude Code adds to its request body (`CLAUDE_CODE_EXTRA_BODY`), which
    /// the API, and so fake-anthropic, reports back in `usage`.
    body: &'static str,
}

impl Case {
    fn new(model: &str, label: &str, usage: Figures) -> Case {
        Case {
            model: model.to_string(),
            label: label.to_string(),
            usage,
            tools: "",
            directives: "",
            body: "",
        }
    }
}

/// The cases: every model of the table (by id) with cache reads and writes, once more above
/// each of its prompt-length bands, once more in fast mode if it has one; and Claude Code's
/// default model once in the `us` inference region with web searches and fetches, and once
/// answered without streaming.
fn cases(table: &PriceTable) -> Vec<Case> {
    let mut out = Vec::new();
    for (model, prices) in &table.models {
        out.push(Case::new(model, "cached", CACHED));
        for band in &prices.bands {
            // Every kind of token again, the prompt 7,000 tokens above the threshold.
            let above = Figures {
                input: 2000,
                cache_read: band.above_prompt_tokens,
                ..CACHED
            };
            let label = format!("above {}", band.above_prompt_tokens);
            out.push(Case::new(model, &label, above));
        }
        if prices.fast_multiplier.is_some() {
            out.push(Case {
                body: r#"{"speed":"fast"}"#,
                ..Case::new(model, "fast", CACHED)
            });
        }
    }
    let default_model = "claude-opus-5-5";
    out.push(Case {
        tools: "web_search=3,web_fetch=2",
        body: r#"{"inference_geo":"us"}"#,
        ..Case::new(default_model, "us, web tools", CACHED)
    });
    // An SSE error frame makes Claude Code ask again with `stream: false`.
    out.push(Case {
        directives: "[[sse-error]]",
        ..Case::new(default_model, "not streamed", CACHED)
    });
    out
}

/// What one run gave: Claude Code's JSON result, or why it did not answer as that model.
struct Run {
    case: Case,
    session: Option<String>,
    refused: Option<String>,
}

async fn run_claude(
    scratch: Arc<Scratch>,
    n: usize,
    case: Case,
    proxy: String,
    otlp: String,
) -> Run {
    let (home, tmp) = (format!("home-{n}"), format!("tmp-{n}"));
    for dir in [&home, &tmp] {
        std::fs::create_dir_all(scratch.path(dir)).unwrap();
    }
    let prompt = format!(
        "Cost oracle run {n}: {} {}. {} {}",
        case.model,
        case.label,
        case.usage.directive(case.tools),
        case.directives
    );
    let mut cmd = claude_command(
        &scratch.path(&tmp),
        &scratch.path(&home),
        &scratch.path(&tmp),
        "sk-ant-test-oracle-0000",
        &proxy,
    );
    cmd.args([
        "-p",
        &prompt,
        "--model",
        &case.model,
        "--output-format",
        "json",
    ])
    .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    // Claude Code's own telemetry, as `claude-sandbox.sh --otel` turns it on.
    .env("CLAUDE_CODE_ENABLE_TELEMETRY", "1")
    .env("OTEL_LOGS_EXPORTER", "otlp")
    .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp)
    .env("OTEL_LOGS_EXPORT_INTERVAL", "500");
    if !case.body.is_empty() {
        cmd.env("CLAUDE_CODE_EXTRA_BODY", case.body);
    }
    let out = cmd.output();
    let out = match tokio::time::timeout(Duration::from_secs(180), out).await {
        Ok(out) => out.expect("run claude"),
        Err(_) => panic!("claude --model {} did not finish within 180 s", case.model),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result: Option<Value> = serde_json::from_str(stdout.trim()).ok();
    let session = result
        .as_ref()
        .and_then(|r| r["session_id"].as_str())
        .map(str::to_string);
    let refused = match &result {
        _ if !out.status.success() => Some(format!(
            "claude exited with {}: {} {}",
            out.status,
            stdout.trim(),
            stderr.trim()
        )),
        None => Some(format!("claude printed no JSON result: {stdout} {stderr}")),
        Some(r) if r["is_error"] != false => Some(format!("claude reported an error: {r}")),
        Some(r) => {
            let used: Vec<&String> = r["modelUsage"]
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            (!used.iter().any(|m| **m == case.model))
                .then(|| format!("Claude Code answered with {used:?}, not {}", case.model))
        }
    };
    Run {
        case,
        session,
        refused,
    }
}

/// A number attribute that may arrive as a double, an int or a string.
fn number(e: &StoredEvent, key: &str) -> Option<f64> {
    match e.attributes.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(e: &StoredEvent, key: &str) -> String {
    match e.attributes.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

fn is_api_request(e: &StoredEvent) -> bool {
    e.body_str() == Some("claude_code.api_request")
        || e.attr_str("event.name") == Some("api_request")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

/// The viewer's cost of every exchange of the log, by exchange id (what `show` prints).
fn viewer_costs(log: &Path, table: &PriceTable) -> BTreeMap<String, Option<f64>> {
    use viewer::session::{self, Session};
    let index = viewer::log::Index::build(log).expect("the viewer reads the log");
    let mut costs = BTreeMap::new();
    for (id, heads) in session::by_session(&index) {
        let session = Session::load(&index, id, &heads, table).expect("the viewer loads it");
        for e in session.exchanges {
            costs.insert(e.head.id.clone(), e.cost_usd);
        }
    }
    costs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_of_the_table_costs_what_claude_code_says_it_cost() {
    let began = Instant::now();
    let scratch = Arc::new(Scratch::new("e2e-cost-oracle"));
    let table = PriceTable::builtin();
    let log = scratch.path("traffic.log");
    let upstream = fake_anthropic::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start fake-anthropic");
    let (mut proxy, proxy_url) = start_proxy(&scratch, &format!("http://{upstream}"), &log).await;
    let seq = standin().await;
    let otlp = format!("http://{}/ingest/otlp", seq.addr());
    let mut shipper_cmd = shipper(&scratch, &seq.logs_url());
    let mut shipper = spawn_logged(&scratch, &mut shipper_cmd);

    // Every case, CONCURRENCY at a time.
    let started = Instant::now();
    eprintln!("peers up in {:.1}s", began.elapsed().as_secs_f64());
    let all = cases(&table);
    let gate = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, case) in all.iter().cloned().enumerate() {
        let (gate, scratch, proxy, otlp) = (
            gate.clone(),
            scratch.clone(),
            proxy_url.clone(),
            otlp.clone(),
        );
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            (n, run_claude(scratch, n, case, proxy, otlp).await)
        });
    }
    let mut runs: Vec<(usize, Run)> = tasks.join_all().await;
    runs.sort_by_key(|(n, _)| *n);
    let runs: Vec<Run> = runs.into_iter().map(|(_, r)| r).collect();
    eprintln!(
        "{} runs of claude -p over {} models in {:.1}s",
        runs.len(),
        table.models.len(),
        started.elapsed().as_secs_f64()
    );

    // The proxy drains its writer on SIGTERM: then the log holds every exchange.
    signal(proxy.id().unwrap(), "TERM");
    assert!(proxy.wait().await.unwrap().success());
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    wait_for(Duration::from_secs(120), "every exchange in Seq", || {
        seq.counters().accepted_spans >= records.len() as u64
    })
    .await;
    eprintln!(
        "{} records shipped {:.1}s after the start",
        records.len(),
        started.elapsed().as_secs_f64()
    );
    signal(shipper.id().unwrap(), "TERM");
    assert!(
        shipper.wait().await.unwrap().success(),
        "{}",
        shipper_output(&scratch)
    );

    let events = seq.events();
    let mut oracle: Vec<&StoredEvent> = events.iter().filter(|e| is_api_request(e)).collect();
    oracle.sort_by_key(|e| (text(e, "model"), text(e, "input_tokens")));
    let ours: BTreeMap<&str, &StoredEvent> = events
        .iter()
        .filter(|e| !is_part(e) && e.attr_str("claude.exchange.id").is_some())
        .filter_map(|e| Some((e.attr_str("http.response.header.request-id")?, e)))
        .collect();
    let viewer = viewer_costs(&log, &table);

    // Refusals: named with the reason, a failure unless the table's note says why.
    let mut failures = Vec::new();
    if NOT_SELECTABLE.is_empty() {
        eprintln!("models of the table Claude Code does not let a user select: none");
    }
    for (model, why) in NOT_SELECTABLE {
        eprintln!("not selectable in Claude Code: {model}: {why}");
    }
    for run in &runs {
        let listed = NOT_SELECTABLE.iter().any(|(m, _)| *m == run.case.model);
        match (&run.refused, listed) {
            (Some(reason), true) => eprintln!("  {} refused as expected: {reason}", run.case.model),
            (Some(reason), false) => {
                eprintln!("REFUSED {} ({}): {reason}", run.case.model, run.case.label);
                failures.push(format!("{} ({}) refused: {reason}", run.case.model, run.case.label));
            }
            (None, true) => failures.push(format!(
                "{} is listed as not selectable but Claude Code answered with it: update NOT_SELECTABLE",
                run.case.model
            )),
            (None, false) => {}
        }
    }

    // Every api_request event against its run, our exchange and the viewer.
    eprintln!(
        "{:<18} {:<13} {:>6} {:>7} {:>6} {:>6} {:>6} {:>12} {:>12} {:>12}",
        "model", "run", "input", "read", "5m", "1h", "output", "Claude Code", "Seq", "viewer"
    );
    let usd = |c: Option<f64>| c.map_or("none".to_string(), |c| format!("{c:.9}"));
    let mut compared = BTreeMap::<(String, String), usize>::new();
    for e in &oracle {
        let request_id = text(e, "request_id");
        let session = text(e, "session.id");
        let Some(run) = runs
            .iter()
            .find(|r| r.session.as_deref() == Some(session.as_str()))
        else {
            failures.push(format!(
                "{request_id}: an api_request event of no run: {:?}",
                e.attributes
            ));
            continue;
        };
        let case = &run.case;
        let cc = number(e, "cost_usd");
        let mine = ours.get(request_id.as_str());
        let seq_cost = mine.and_then(|m| number(m, "claude.cost.usd"));
        let exchange = mine.and_then(|m| m.attr_str("claude.exchange.id"));
        let viewer_cost = exchange.and_then(|id| viewer.get(id).copied().flatten());
        let figures = Figures::of_event(e);
        let f = figures.unwrap_or(Figures {
            input: 0,
            cache_read: 0,
            cache_5m: 0,
            cache_1h: 0,
            output: 0,
        });
        eprintln!(
            "{:<18} {:<13} {:>6} {:>7} {:>6} {:>6} {:>6} {:>12} {:>12} {:>12}",
            text(e, "model"),
            case.label,
            f.input,
            f.cache_read,
            f.cache_5m,
            f.cache_1h,
            f.output,
            usd(cc),
            usd(seq_cost),
            usd(viewer_cost),
        );
        let what = format!("{} ({}) {request_id}", case.model, case.label);
        // Whether this is the request the case is about (Claude Code may add others of its
        // own, e.g. with a smaller model: those are compared too).
        let model = text(e, "model");
        let asked = figures == Some(case.usage) && model == case.model;
        let Some(cc) = cc else {
            failures.push(format!("{what}: Claude Code's event has no cost_usd"));
            continue;
        };
        let Some(mine) = mine else {
            failures.push(format!("{what}: no exchange in Seq has this request-id"));
            continue;
        };
        for (who, ours) in [("claude.cost.usd", seq_cost), ("the viewer", viewer_cost)] {
            if !ours.is_some_and(|c| close(c, cc)) {
                failures.push(format!(
                    "{what}: {who} {ours:?}, Claude Code {cc} ({model})"
                ));
            }
        }
        let banded = table.models.get(&model).is_some_and(|p| {
            p.bands
                .iter()
                .any(|b| figures.is_some_and(|f| f.prompt() > b.above_prompt_tokens))
        });
        if mine.attributes.get("claude.cost.long_context") != Some(&Value::Bool(banded)) {
            failures.push(format!(
                "{what}: claude.cost.long_context {:?}, a band applies: {banded}",
                mine.attributes.get("claude.cost.long_context")
            ));
        }
        if asked {
            *compared
                .entry((case.model.clone(), case.label.clone()))
                .or_default() += 1;
            let streamed = mine.attributes.get("claude.stream") == Some(&Value::Bool(true));
            if streamed == (case.label == "not streamed") {
                failures.push(format!("{what}: claude.stream is {streamed}"));
            }
        }
    }

    // What we priced and Claude Code did not: only the attempt whose stream ended in an
    // `error` event (Claude Code asked again and counts only the answer; whether the API bills
    // the attempt is not documented). Anything else would make session totals differ.
    let priced_by_claude_code: BTreeSet<String> =
        oracle.iter().map(|e| text(e, "request_id")).collect();
    let mut ours_only = Vec::new();
    for (request_id, m) in &ours {
        let Some(cost) = number(m, "claude.cost.usd") else {
            continue;
        };
        if priced_by_claude_code.contains(*request_id) {
            continue;
        }
        let run = runs
            .iter()
            .find(|r| r.session.is_some() && r.session.as_deref() == m.attr_str("session.id"));
        let label = run.map_or("?", |r| r.case.label.as_str());
        let streamed = m.attributes.get("claude.stream") == Some(&Value::Bool(true));
        eprintln!(
            "priced by us, not by Claude Code: {} ({label}) {request_id} {cost:.9}, streamed {streamed}",
            text(m, "gen_ai.request.model")
        );
        ours_only.push((label.to_string(), streamed));
    }
    if ours_only != [("not streamed".to_string(), true)] {
        failures.push(format!(
            "exchanges priced by us and not by Claude Code: {ours_only:?}, expected only the \
             errored stream of the `not streamed` run"
        ));
    }

    // Each run Claude Code answered was priced by it with the asked model and every kind of
    // token the run asked for: the oracle spoke on what the case is about.
    for run in runs.iter().filter(|r| r.refused.is_none()) {
        if !compared.contains_key(&(run.case.model.clone(), run.case.label.clone())) {
            failures.push(format!(
                "{} ({}): no claude_code.api_request event of that model with {:?}",
                run.case.model, run.case.label, run.case.usage
            ));
        }
    }
    eprintln!(
        "{} api_request events compared over {} runs",
        compared.values().sum::<usize>(),
        compared.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
