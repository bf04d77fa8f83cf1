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
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

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
    fn directive(&self) -> String {
        format!(
            "[[usage:input={},cache_read={},cache_5m={},cache_1h={},output={}]]",
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

fn claude_bin() -> PathBuf {
    let path = std::env::var_os("CLAUDE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("CLAUDE_BIN not set: run scripts/test.sh, which installs the Claude Code CLI")
        });
    assert!(
        path.exists(),
        "CLAUDE_BIN={} does not exist: run scripts/test.sh, which installs the Claude Code CLI",
        path.display()
    );
    path
}

/// The real proxy binary, logging to `log`; returns it and its address.
async fn start_proxy(scratch: &Scratch, upstream: &str, log: &Path) -> (Child, String) {
    let mut proxy = Command::new(proxy_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--log-file",
        ])
        .arg(log)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(scratch.path("proxy.err")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start claude-api-proxy");
    let mut lines = tokio::io::BufReader::new(proxy.stdout.take().unwrap()).lines();
    let first = lines
        .next_line()
        .await
        .unwrap()
        .expect("the proxy's first line");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not a `listening on` line: {first}"))
        .to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (proxy, format!("http://{addr}"))
}

/// One `claude -p` run: a model and the usage fake-anthropic answers it with.
#[derive(Debug, Clone)]
struct Case {
    model: String,
    /// `cached`, `above <N>` for a prompt above a band's threshold, or `not streamed`.
    label: String,
    usage: Figures,
    /// More directives for fake-anthropic.
    extra: &'static str,
}

/// The cases: every model of the table (by id) with cache reads and writes, once more above
/// each of its prompt-length bands; and Claude Code's default model once answered without
/// streaming.
fn cases(table: &PriceTable) -> Vec<Case> {
    let case = |model: &str, label: &str, usage, extra| Case {
        model: model.to_string(),
        label: label.to_string(),
        usage,
        extra,
    };
    let mut out = Vec::new();
    for (model, prices) in &table.models {
        out.push(case(model, "cached", CACHED, ""));
        for band in &prices.bands {
            // Every kind of token again, the prompt 7,000 tokens above the threshold.
            let above = Figures {
                input: 2000,
                cache_read: band.above_prompt_tokens,
                ..CACHED
            };
            let label = format!("above {}", band.above_prompt_tokens);
            out.push(case(model, &label, above, ""));
        }
    }
    // An SSE error frame makes Claude Code ask again with `stream: false`.
    out.push(case(
        "claude-opus-5-5",
        "not streamed",
        CACHED,
        "[[sse-error]]",
    ));
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
        case.usage.directive(),
        case.extra
    );
    let out = Command::new(claude_bin())
        .args([
            "-p",
            &prompt,
            "--model",
            &case.model,
            "--output-format",
            "json",
        ])
        .current_dir(scratch.path(&tmp))
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", scratch.path(&home))
        .env("TMPDIR", scratch.path(&tmp))
        .env("ANTHROPIC_API_KEY", "sk-ant-test-oracle-0000")
        .env("ANTHROPIC_BASE_URL", &proxy)
        .env("DISABLE_ERROR_REPORTING", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("IS_SANDBOX", "1")
        // Claude Code's own telemetry, as `claude-sandbox.sh --otel` turns it on.
        .env("CLAUDE_CODE_ENABLE_TELEMETRY", "1")
        .env("OTEL_LOGS_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp)
        .env("OTEL_LOGS_EXPORT_INTERVAL", "500")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
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
            case.model,
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
        // The oracle priced what the case asked for: every kind of token, the asked model.
        if figures != Some(case.usage) || text(e, "model") != case.model {
            failures.push(format!(
                "{what}: Claude Code reports model {} and {figures:?}, the run asked for {:?}",
                text(e, "model"),
                case.usage
            ));
        }
        let Some(cc) = cc else {
            failures.push(format!("{what}: Claude Code's event has no cost_usd"));
            continue;
        };
        let Some(mine) = mine else {
            failures.push(format!("{what}: no exchange in Seq has this request-id"));
            continue;
        };
        *compared
            .entry((case.model.clone(), case.label.clone()))
            .or_default() += 1;
        let streamed = mine.attributes.get("claude.stream") == Some(&Value::Bool(true));
        if streamed == (case.label == "not streamed") {
            failures.push(format!("{what}: claude.stream is {streamed}"));
        }
        for (who, ours) in [("claude.cost.usd", seq_cost), ("the viewer", viewer_cost)] {
            if !ours.is_some_and(|c| close(c, cc)) {
                failures.push(format!("{what}: {who} {ours:?}, Claude Code {cc}"));
            }
        }
        let banded = table.models[&case.model]
            .bands
            .iter()
            .any(|b| case.usage.prompt() > b.above_prompt_tokens);
        if mine.attributes.get("claude.cost.long_context") != Some(&Value::Bool(banded)) {
            failures.push(format!(
                "{what}: claude.cost.long_context {:?}, a band applies: {banded}",
                mine.attributes.get("claude.cost.long_context")
            ));
        }
    }

    // Each run Claude Code answered was priced by it at least once: the oracle spoke.
    for run in runs.iter().filter(|r| r.refused.is_none()) {
        if !compared.contains_key(&(run.case.model.clone(), run.case.label.clone())) {
            failures.push(format!(
                "{} ({}): no claude_code.api_request event to compare with",
                run.case.model, run.case.label
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
