//! What the logging proxy costs: direct connection vs nginx vs claude-api-proxy, side by side.
//!
//! All three targets sit in front of the same instant upstream (a minimal hyper server in this
//! file, so the upstream's own cost is negligible and identical for all of them); the phases
//! interleave the targets round by round so that drift on a noisy 2-core machine hits all three
//! alike. claude-api-proxy runs as its real binary, capturing every exchange to a temp log file.
//!
//! ```text
//! cargo bench -p claude-api-proxy --bench overhead            # full run, ~6 minutes
//! cargo bench -p claude-api-proxy --bench overhead -- --smoke  # tiny counts, seconds
//! cargo test  -p claude-api-proxy --bench overhead -- --smoke  # the same on the debug build
//! ```
//!
//! Measured: p50/p99 latency of a 50 KB non-streaming POST, time to the first SSE event,
//! requests/s at 16 concurrent keep-alive connections, a saturation phase (a 50 KB request and
//! a 50 KB response at 16 connections, ~100 KB of log per exchange: p50/p99, requests/s, CPU
//! per exchange, and the records the proxy wrote degraded), and peak RSS (VmHWM) idle and
//! under 100 concurrent streams with 1 MB request bodies. Prints a markdown table with the
//! ratios, and each round's POST p99 per target on stderr.
//! Every run fails (exit 1) when any request fails or the proxy did not log exactly one record
//! per exchange.
//! `--proxy-bin PATH` measures another build of claude-api-proxy (e.g. one with symbols, for
//! `perf record -p`). `--also-bin NAME=PATH` (repeatable) runs further builds side by side in
//! the same rounds and prints their added latency and throughput next to ours: an A/B
//! comparison that load drift over minutes cannot fake (the order of the targets changes each
//! round), though single runs still spread ±15% in requests/s.
//! `--soak SECS` runs only the throughput phase, SECS per target and round.
//! `--saturation-only` runs only the saturation phase and the paced phase after it (100
//! exchanges/s of the same 50 KB exchanges, Claude Code's pace at most): the figures issue 20's
//! target is about, in a few minutes.
//! `--memory-only` runs only issue 29's memory phase: on fresh processes of nginx, ours and each
//! `--also-bin` build, 3 runs each, one 200,000-event stream then 10 s of saturation; peak RSS
//! and RSS 10 s after each burst, medians.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Which target a measurement goes through.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Via {
    Direct,
    Nginx,
    Ours,
}

const ALL: [Via; 3] = [Via::Direct, Via::Nginx, Via::Ours];

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Nginx => "nginx",
            Via::Ours => "claude-api-proxy",
        }
    }
}

/// How much work each phase does.
struct Plan {
    warmup: usize,
    rounds: usize,
    latency_requests: usize,
    ttfe_requests: usize,
    throughput_conns: usize,
    throughput_secs: f64,
    saturation_secs: f64,
    /// Seconds of [`PACED_RATE`] exchanges/s after each saturation phase.
    paced_secs: f64,
    streams: usize,
    stream_body_bytes: usize,
    slow_events: usize,
    slow_gap_ms: u64,
    /// Pause before each target (see [`settle`]).
    settle_secs: u64,
}

const FULL: Plan = Plan {
    warmup: 200,
    rounds: 5,
    latency_requests: 2000,
    ttfe_requests: 2000,
    throughput_conns: 16,
    throughput_secs: 3.0,
    saturation_secs: 3.0,
    paced_secs: 3.0,
    streams: 100,
    stream_body_bytes: 1 << 20,
    slow_events: 20,
    slow_gap_ms: 50,
    settle_secs: 5,
};

const SMOKE: Plan = Plan {
    warmup: 5,
    rounds: 1,
    latency_requests: 20,
    ttfe_requests: 20,
    throughput_conns: 16,
    throughput_secs: 0.3,
    saturation_secs: 0.3,
    paced_secs: 0.5,
    streams: 10,
    stream_body_bytes: 1 << 20,
    slow_events: 4,
    slow_gap_ms: 20,
    settle_secs: 1,
};

const LATENCY_BODY_BYTES: usize = 50 * 1024;

/// The response body of the saturation phase's upstream (`x-bench: json-50k`).
const SATURATION_RESPONSE_BYTES: usize = 50 * 1024;

/// Exchanges per second of the paced phase, over all its connections: above what one Claude
/// Code session sends (a few per second, bursts of ~26 `count_tokens` calls).
const PACED_RATE: f64 = 100.0;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing; ignore the rest.
    let smoke = std::env::args().any(|a| a == "--smoke");
    let plan = if smoke { SMOKE } else { FULL };
    let ok = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(run(&plan, smoke));
    if !ok {
        std::process::exit(1);
    }
}

async fn run(plan: &Plan, smoke: bool) -> bool {
    let saturation_only = std::env::args().any(|a| a == "--saturation-only");
    let work = tempfile::Builder::new()
        .prefix("overhead-bench")
        .tempdir()
        .expect("temp dir");
    let upstream = spawn_upstream(plan.slow_events, plan.slow_gap_ms);
    eprintln!("upstream on {upstream}");
    if std::env::args().any(|a| a == "--memory-only") {
        let (runs, secs) = if smoke { (1, 1.0) } else { (3, 10.0) };
        return memory_phase(upstream, work.path(), runs, secs).await;
    }

    // Fresh proxies for the memory phase, so that VmHWM is exactly idle, then 100 streams.
    let mut memory = Vec::new();
    let memory_targets = if saturation_only {
        &[][..]
    } else {
        &[Via::Nginx, Via::Ours][..]
    };
    for &via in memory_targets {
        let proxy = Proxy::start(
            via,
            upstream,
            &work.path().join(format!("rss-{}", via.name())),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle = proxy.hwm_kib();
        let failures = concurrent_streams(proxy.addr, plan.streams, plan.stream_body_bytes).await;
        let loaded = proxy.hwm_kib();
        eprintln!(
            "{}: VmHWM idle {idle} KiB, under streams {loaded} KiB",
            via.name()
        );
        memory.push((via, idle, loaded, failures));
        drop(proxy);
    }

    let nginx = Proxy::start(Via::Nginx, upstream, &work.path().join("nginx"));
    let ours = Proxy::start(Via::Ours, upstream, &work.path().join("ours"));
    let extras: Vec<(String, Proxy)> = also_bins()
        .into_iter()
        .map(|(name, bin)| {
            let dir = work.path().join(format!("also-{name}"));
            std::fs::create_dir_all(&dir).expect("proxy dir");
            let log_file = dir.join("traffic.log");
            let (child, addr) = start_proxy_bin(&bin, upstream, &log_file);
            let proxy = Proxy {
                via: Via::Ours,
                addr,
                child,
                log_file,
            };
            (name, proxy)
        })
        .collect();
    if let Some(secs) = soak_secs() {
        return soak(
            &[
                ("nginx", nginx.addr, None),
                ("claude-api-proxy", ours.addr, Some(&ours)),
            ],
            &extras,
            secs,
        )
        .await;
    }
    let addr = |via: Via| match via {
        Via::Direct => upstream,
        Via::Nginx => nginx.addr,
        Via::Ours => ours.addr,
    };

    let body = messages_body(LATENCY_BODY_BYTES, false);
    let stream_body = messages_body(1024, true);
    let mut failures = 0u64;

    let warm_addrs = ALL
        .into_iter()
        .map(addr)
        .chain(extras.iter().map(|e| e.1.addr));
    for target in warm_addrs.collect::<Vec<_>>() {
        let mut conn = Conn::open(target).await;
        for _ in 0..plan.warmup {
            conn.post(&body, "json").await;
        }
    }
    // Every target, ours and the `--also-bin` builds included, in one list taken in a different
    // order each round (see `round_order`).
    let targets: Vec<SocketAddr> = ALL
        .into_iter()
        .map(addr)
        .chain(extras.iter().map(|e| e.1.addr))
        .collect();
    // The logs of ours and the `--also-bin` builds, counted and emptied as the run goes.
    let mut ledgers: Vec<Option<Ledger>> = [None, None, Some(Ledger::new(&ours))]
        .into_iter()
        .chain(extras.iter().map(|e| Some(Ledger::new(&e.1))))
        .collect();
    for ledger in ledgers.iter_mut().flatten() {
        ledger.sent += plan.warmup as u64;
    }
    // The processes whose CPU time a target costs (none for direct: the upstream is this one).
    let pids: Vec<Vec<u32>> = ALL
        .into_iter()
        .map(|via| match via {
            Via::Direct => Vec::new(),
            Via::Nginx => {
                let mut p = vec![nginx.child.id()];
                p.extend(children_of(nginx.child.id()));
                p
            }
            Via::Ours => vec![ours.child.id()],
        })
        .chain(extras.iter().map(|e| vec![e.1.child.id()]))
        .collect();
    let mut lat = vec![Vec::new(); targets.len()];
    let mut tt = vec![Vec::new(); targets.len()];
    let mut tp = vec![(0u64, 0f64); targets.len()];
    let mut sat = vec![Saturation::default(); targets.len()];
    let names: Vec<&str> = ALL
        .iter()
        .map(|via| via.name())
        .chain(extras.iter().map(|e| e.0.as_str()))
        .collect();
    for round in 0..plan.rounds {
        // Each target's POST p99 in this round alone: a run's p99 that one round decided (a
        // stall of the host) shows here.
        let mut round_p99 = vec![f64::NAN; targets.len()];
        for i in round_order(targets.len(), round) {
            if !saturation_only {
                settle(plan.settle_secs).await;
                let mut conn = Conn::open(targets[i]).await;
                for _ in 0..plan.latency_requests {
                    let t = Instant::now();
                    conn.post(&body, "json").await;
                    lat[i].push(t.elapsed());
                }
                let mut this_round = lat[i][lat[i].len() - plan.latency_requests..].to_vec();
                this_round.sort();
                round_p99[i] = pct(&this_round, 0.99);
                for _ in 0..plan.ttfe_requests {
                    tt[i].push(conn.first_event(&stream_body).await);
                }
                let (n, secs, failed, _) = saturate(
                    targets[i],
                    plan.throughput_conns,
                    Duration::from_secs_f64(plan.throughput_secs),
                    &body,
                    "json",
                )
                .await;
                tp[i].0 += n;
                tp[i].1 += secs;
                failures += failed;
                if let Some(ledger) = &mut ledgers[i] {
                    ledger.sent += (plan.latency_requests + plan.ttfe_requests) as u64 + n;
                    ledger.settle().await;
                }
            }
            // Saturation: 50 KB in, 50 KB out, so ~100 KB of log per exchange.
            settle(plan.settle_secs).await;
            let cpu_before = cpu_ms(&pids[i]);
            let (n, secs, failed, mut latencies) = saturate(
                targets[i],
                plan.throughput_conns,
                Duration::from_secs_f64(plan.saturation_secs),
                &body,
                "json-50k",
            )
            .await;
            failures += failed;
            let s = &mut sat[i];
            if let Some(ledger) = &mut ledgers[i] {
                ledger.sent += n;
                // Records still being written when the load stops cost CPU too.
                s.degraded += ledger.settle().await;
            }
            s.done += n;
            s.secs += secs;
            s.cpu_ms += cpu_ms(&pids[i]) - cpu_before;
            s.latency.append(&mut latencies);
            // The same exchanges at Claude Code's pace: the writer keeps up, nothing degraded.
            let (n, failed) = paced(
                targets[i],
                plan.throughput_conns,
                Duration::from_secs_f64(plan.paced_secs),
                &body,
            )
            .await;
            failures += failed;
            s.paced_done += n;
            if let Some(ledger) = &mut ledgers[i] {
                ledger.sent += n;
                s.paced_degraded += ledger.settle().await;
            }
        }
        let p99s: Vec<String> = names
            .iter()
            .zip(&round_p99)
            .map(|(name, p99)| format!("{name} {p99:.3}"))
            .collect();
        eprintln!(
            "round {}/{} done; 50 KB POST p99 (ms, NaN with --saturation-only): {}",
            round + 1,
            plan.rounds,
            p99s.join(", ")
        );
    }
    let mut extra_latency = lat.split_off(ALL.len());
    let mut extra_ttfe = tt.split_off(ALL.len());
    let extra_rps = tp.split_off(ALL.len());
    let mut extra_sat = sat.split_off(ALL.len());
    let saturation: [Saturation; 3] = sat.try_into().expect("three main targets");
    let latency: [Vec<Duration>; 3] = lat.try_into().expect("three main targets");
    let ttfe: [Vec<Duration>; 3] = tt.try_into().expect("three main targets");
    let throughput: [(u64, f64); 3] = tp.try_into().expect("three main targets");

    // Peak memory over the latency and throughput phases (log writing under sustained load).
    let busy_hwm = [nginx.hwm_kib(), ours.hwm_kib()];
    // SIGTERM drains: after it every exchange must have its record, none dropped.
    drop(ours);
    drop(extras);
    drop(nginx);
    let mut ledgers = ledgers.into_iter().flatten();
    let ours_ledger = ledgers.next().expect("ours has a ledger");
    let (records, log_bytes) = ours_ledger.total();
    let extra_names: Vec<String> = also_bins().into_iter().map(|(name, _)| name).collect();
    let table = Table {
        latency: latency.map(|mut v| {
            v.sort();
            v
        }),
        ttfe: ttfe.map(|mut v| {
            v.sort();
            v
        }),
        rps: throughput.map(|(n, secs)| n as f64 / secs),
        saturation: saturation.map(|mut s| {
            s.latency.sort();
            s
        }),
        memory,
        busy_hwm,
    };
    println!("{}", machine());
    println!(
        "{} mode: {} rounds x {} requests (50 KB POST) and {} first-event requests per target; \
         {} connections x {:.1} s per round for throughput; {} concurrent streams x {} bytes\n",
        if smoke { "smoke" } else { "full" },
        plan.rounds,
        plan.latency_requests,
        plan.ttfe_requests,
        plan.throughput_conns,
        plan.throughput_secs,
        plan.streams,
        plan.stream_body_bytes
    );
    println!("{}", table.markdown());
    println!(
        "claude-api-proxy wrote {records} records ({:.1} MB of log) in all phases; {} of them \
         degraded (bodies dropped to keep traffic flowing).",
        log_bytes as f64 / 1e6,
        ours_ledger.degraded
    );

    let stream_failures: u64 = table.memory.iter().map(|m| m.3).sum();
    let expected = ours_ledger.sent;
    let mut ok = failures == 0 && stream_failures == 0 && records == expected;
    if !extra_names.is_empty() {
        let base = &table;
        // Added p50 over the direct connection's, as for the main table.
        let added = |v: &mut Vec<Duration>, direct: &[Duration], p: f64| {
            v.sort();
            pct(v, p) - pct(direct, p)
        };
        println!("\nA/B in the same rounds (added latency over direct, ms; requests/s):\n");
        println!(
            "| build | 50 KB POST p50 added | p99 added | first SSE event p50 added | p99 added | requests/s | saturation p50 (ms) | p99 (ms) | requests/s | CPU ms per exchange | degraded at saturation | degraded at 100/s |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for (name, lat, ttf, rps, sat) in [
            (
                "nginx",
                &base.latency[1],
                &base.ttfe[1],
                base.rps[1],
                &base.saturation[1],
            ),
            (
                "claude-api-proxy",
                &base.latency[2],
                &base.ttfe[2],
                base.rps[2],
                &base.saturation[2],
            ),
        ] {
            let d = |v: &[Duration], direct: &[Duration], p: f64| pct(v, p) - pct(direct, p);
            println!(
                "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {rps:.0} | {} |",
                d(lat, &base.latency[0], 0.5),
                d(lat, &base.latency[0], 0.99),
                d(ttf, &base.ttfe[0], 0.5),
                d(ttf, &base.ttfe[0], 0.99),
                sat.cells(),
            );
        }
        for (i, (name, ledger)) in extra_names.iter().zip(ledgers).enumerate() {
            let lat = added(&mut extra_latency[i], &base.latency[0], 0.5);
            let lat99 = added(&mut extra_latency[i], &base.latency[0], 0.99);
            let ttf = added(&mut extra_ttfe[i], &base.ttfe[0], 0.5);
            let ttf99 = added(&mut extra_ttfe[i], &base.ttfe[0], 0.99);
            let rps = extra_rps[i].0 as f64 / extra_rps[i].1;
            extra_sat[i].latency.sort();
            println!(
                "| {name} | {lat:.3} | {lat99:.3} | {ttf:.3} | {ttf99:.3} | {rps:.0} | {} |",
                extra_sat[i].cells(),
            );
            let (got, _) = ledger.total();
            if got != ledger.sent {
                eprintln!(
                    "FAILED: {name} wrote {got} records for {} exchanges",
                    ledger.sent
                );
                ok = false;
            }
        }
    }
    if !ok {
        eprintln!(
            "FAILED: {failures} throughput failures, {stream_failures} stream failures, \
             {records} records for {expected} exchanges through claude-api-proxy"
        );
    }
    ok
}

// ---------------------------------------------------------------------------------------------
// The instant upstream: a minimal Anthropic-shaped server on its own runtime thread.

const MESSAGE_JSON: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Hello from the bench upstream."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12800,"output_tokens":8}}"#;

fn sse_event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn sse_events(deltas: usize) -> Vec<Bytes> {
    let mut v = vec![
        sse_event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":256,"output_tokens":1}}}"#,
        ),
        sse_event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        sse_event("ping", r#"{"type": "ping"}"#),
    ];
    for i in 0..deltas {
        v.push(sse_event(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"word {i} "}}}}"#
            ),
        ));
    }
    v.push(sse_event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ));
    v.push(sse_event(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":20}}"#,
    ));
    v.push(sse_event("message_stop", r#"{"type":"message_stop"}"#));
    v
}

type UpBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Text deltas in the memory phase's long stream (issue 29: one response of 200,000 events).
const LONG_STREAM_EVENTS: usize = 200_000;

/// The long stream's events, in chunks of ~16 KB as they leave the upstream.
fn long_stream() -> &'static [Bytes] {
    static LONG: std::sync::OnceLock<Vec<Bytes>> = std::sync::OnceLock::new();
    LONG.get_or_init(|| {
        let mut events = sse_events(LONG_STREAM_EVENTS).into_iter();
        let mut chunks = Vec::new();
        let mut chunk = Vec::new();
        for event in events.by_ref() {
            chunk.extend_from_slice(&event);
            if chunk.len() >= 16 * 1024 {
                chunks.push(Bytes::from(std::mem::take(&mut chunk)));
            }
        }
        chunks.push(Bytes::from(chunk));
        chunks
    })
}

/// A message of [`SATURATION_RESPONSE_BYTES`] (its text padded).
fn big_message() -> Bytes {
    static BIG: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BIG.get_or_init(|| {
        let pad = SATURATION_RESPONSE_BYTES - MESSAGE_JSON.len();
        let text = format!("Hello from the bench upstream.{}", "y".repeat(pad));
        Bytes::from(MESSAGE_JSON.replace("Hello from the bench upstream.", &text))
    })
    .clone()
}

/// Answers after reading the whole request body. `x-bench: json` (default) → a message;
/// `sse` → the first event at once, the rest 2 ms later (so the first event is measured alone);
/// `sse-slow` → events `gap_ms` apart (keeps many streams open at once).
async fn upstream_handle(
    req: Request<Incoming>,
    slow_events: usize,
    gap_ms: u64,
) -> Result<Response<UpBody>, Infallible> {
    let mode = req
        .headers()
        .get("x-bench")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("json")
        .to_owned();
    let _ = req.into_body().collect().await;
    let builder = Response::builder()
        .header("request-id", "req_bench")
        .header("anthropic-ratelimit-requests-remaining", "999");
    let resp = match mode.as_str() {
        "sse" | "sse-slow" => {
            // `sse`: one pause, after the first event only; `sse-slow`: a pause before each.
            let (events, gap, every) = if mode == "sse" {
                (sse_events(3), Duration::from_millis(2), false)
            } else {
                (sse_events(slow_events), Duration::from_millis(gap_ms), true)
            };
            let stream = futures_util::stream::unfold(
                (events.into_iter(), 0usize),
                move |(mut it, i)| async move {
                    let ev = it.next()?;
                    if i == 1 || (every && i > 0) {
                        tokio::time::sleep(gap).await;
                    }
                    Some((Ok::<_, Infallible>(Frame::data(ev)), (it, i + 1)))
                },
            );
            builder
                .header("content-type", "text/event-stream; charset=utf-8")
                .header("cache-control", "no-cache")
                .body(StreamBody::new(stream).boxed())
        }
        "json-50k" => builder
            .header("content-type", "application/json")
            .body(Full::new(big_message()).boxed()),
        "sse-long" => {
            let chunks = long_stream().to_vec();
            let stream = futures_util::stream::iter(
                chunks
                    .into_iter()
                    .map(|c| Ok::<_, Infallible>(Frame::data(c))),
            );
            builder
                .header("content-type", "text/event-stream; charset=utf-8")
                .body(StreamBody::new(stream).boxed())
        }
        _ => builder
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(MESSAGE_JSON.as_bytes())).boxed()),
    };
    Ok(resp.expect("valid response"))
}

fn spawn_upstream(slow_events: usize, gap_ms: u64) -> SocketAddr {
    let std_listener = StdListener::bind("127.0.0.1:0").expect("bind upstream");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("upstream addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("upstream runtime");
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).expect("tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        upstream_handle(req, slow_events, gap_ms)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// The proxies under test, as child processes.

struct Proxy {
    via: Via,
    addr: SocketAddr,
    child: Child,
    log_file: PathBuf,
}

impl Proxy {
    fn start(via: Via, upstream: SocketAddr, dir: &Path) -> Proxy {
        std::fs::create_dir_all(dir).expect("proxy dir");
        let log_file = dir.join("traffic.log");
        let (child, addr) = match via {
            Via::Direct => unreachable!("direct has no proxy"),
            Via::Nginx => start_nginx(upstream, dir),
            Via::Ours => start_ours(upstream, &log_file),
        };
        Proxy {
            via,
            addr,
            child,
            log_file,
        }
    }

    /// Peak resident set (VmHWM) in KiB; for nginx the sum over the master and its workers.
    fn hwm_kib(&self) -> u64 {
        let master = self.child.id();
        let mut pids = vec![master];
        if self.via == Via::Nginx {
            pids.extend(children_of(master));
        }
        pids.iter().map(|&p| status_kib(p, "VmHWM:")).sum()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM first so nginx takes its workers down and ours drains its log.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(35); // past the 30 s drain default
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This package's binary, or the one after `--proxy-bin PATH` (e.g. a build with symbols, to
/// profile under this load).
fn proxy_bin() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--proxy-bin")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_claude-api-proxy")))
}

/// The order of `n` targets in round `round`: turned by one each round, and run backwards in
/// every other round, so that no target always comes right after the same one. Whatever
/// follows another target's throughput phase may still pay for it (see [`settle`]): in a fixed
/// order one target always did (up to 15% apart in requests/s between two identical builds),
/// and in an order that only turned, every `--also-bin` build came right after
/// claude-api-proxy's.
fn round_order(n: usize, round: usize) -> Vec<usize> {
    let turned = (0..n).map(|k| (k + round) % n);
    if round.is_multiple_of(2) {
        turned.collect()
    } else {
        turned.rev().collect()
    }
}

/// The builds given as `--also-bin NAME=PATH`, to measure side by side with ours.
fn also_bins() -> Vec<(String, PathBuf)> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .filter(|w| w[0] == "--also-bin")
        .map(|w| match w[1].split_once('=') {
            Some((name, path)) => (name.to_owned(), PathBuf::from(path)),
            None => (w[1].clone(), PathBuf::from(&w[1])),
        })
        .collect()
}

fn start_ours(upstream: SocketAddr, log_file: &Path) -> (Child, SocketAddr) {
    start_proxy_bin(&proxy_bin(), upstream, log_file)
}

fn start_proxy_bin(bin: &Path, upstream: SocketAddr, log_file: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(format!("http://{upstream}"))
        .arg("--log-file")
        .arg(log_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start claude-api-proxy");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep draining its one-line-per-exchange output so the pipe never blocks it.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("listening on ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("claude-api-proxy printed no `listening on` line within 10 s");
    (child, addr.parse().expect("listening address"))
}

fn start_nginx(upstream: SocketAddr, dir: &Path) -> (Child, SocketAddr) {
    // nginx takes no port 0: reserve a free one and hand it over.
    let port = StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let d = dir.display();
    let conf = format!(
        r#"# Reference reverse proxy: streaming both ways, keep-alive to the upstream.
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    client_max_body_size 64m;
    keepalive_requests 1000000;
    upstream anthropic {{
        server {upstream};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen {addr};
        location / {{
            proxy_pass http://anthropic;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 600s;
        }}
    }}
}}
"#
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    // Workers drop to `nobody` when run as root; they must reach the temp paths.
    let _ = Command::new("chmod").arg("0755").arg(dir).status();
    let _ = Command::new("chmod")
        .arg("0755")
        .arg(dir.parent().expect("parent"))
        .status();
    let child = Command::new(nginx_bin())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx (apt nginx-light; scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen on {addr} within 10 s; see {d}/error.log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, addr)
}

fn nginx_bin() -> PathBuf {
    for p in [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("nginx")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces; ppid follows the state.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        if after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) == Some(parent) {
            out.push(pid);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Load generation: raw hyper HTTP/1.1 connections, keep-alive, one request at a time each.

fn messages_body(bytes: usize, stream: bool) -> Bytes {
    let head = format!(
        r#"{{"model":"claude-bench","max_tokens":1024,"stream":{stream},"system":"You are a benchmark.","messages":[{{"role":"user","content":""#
    );
    let tail = r#""}]}"#;
    let fill = bytes.saturating_sub(head.len() + tail.len());
    let mut s = String::with_capacity(bytes);
    s.push_str(&head);
    s.extend(std::iter::repeat_n('x', fill));
    s.push_str(tail);
    Bytes::from(s)
}

struct Conn {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http1 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Conn { addr, sender }
    }

    fn request(&self, body: &Bytes, mode: &str) -> Request<Full<Bytes>> {
        Request::post("/v1/messages?beta=true")
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", "sk-ant-bench-not-a-key")
            .header("x-bench", mode)
            .body(Full::new(body.clone()))
            .expect("request")
    }

    async fn send(&mut self, body: &Bytes, mode: &str) -> Result<Response<Incoming>, String> {
        let req = self.request(body, mode);
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        if resp.status() != StatusCode::OK {
            return Err(format!("status {}", resp.status()));
        }
        Ok(resp)
    }

    /// One complete non-streaming exchange; panics on failure (latency must not hide errors).
    async fn post(&mut self, body: &Bytes, mode: &str) {
        let resp = self.send(body, mode).await.expect("request");
        let got = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(got.len(), MESSAGE_JSON.len(), "unexpected response body");
    }

    /// Time from sending a streaming request to holding its first complete SSE event.
    async fn first_event(&mut self, body: &Bytes) -> Duration {
        let t = Instant::now();
        let mut resp = self.send(body, "sse").await.expect("stream request");
        let mut buf = Vec::new();
        let mut first = None;
        while let Some(frame) = resp.body_mut().frame().await {
            if let Ok(data) = frame.expect("stream frame").into_data() {
                buf.extend_from_slice(&data);
                if first.is_none() && buf.windows(2).any(|w| w == b"\n\n") {
                    first = Some(t.elapsed());
                }
            }
        }
        assert!(
            buf.ends_with(b"data: {\"type\":\"message_stop\"}\n\n"),
            "stream did not end with message_stop"
        );
        first.expect("no SSE event")
    }
}

/// `conns` connections sending back to back for `dur` (upstream answer `mode`); returns
/// (completed, seconds, failures, latency of each completed exchange).
async fn saturate(
    addr: SocketAddr,
    conns: usize,
    dur: Duration,
    body: &Bytes,
    mode: &'static str,
) -> (u64, f64, u64, Vec<Duration>) {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let (mut latencies, mut failed) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                match conn.send(&body, mode).await {
                    Ok(resp) => match resp.into_body().collect().await {
                        Ok(_) => latencies.push(t.elapsed()),
                        Err(_) => failed += 1,
                    },
                    Err(_) => {
                        failed += 1;
                        conn = Conn::open(addr).await;
                    }
                }
            }
            (latencies, failed)
        }));
    }
    let (mut latencies, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (mut l, f) = t.await.expect("load task");
        latencies.append(&mut l);
        failed += f;
    }
    let done = latencies.len() as u64;
    (done, start.elapsed().as_secs_f64(), failed, latencies)
}

/// `conns` connections sending 50 KB in / 50 KB out exchanges at [`PACED_RATE`] per second
/// in all, for `dur`; returns (completed, failures).
async fn paced(addr: SocketAddr, conns: usize, dur: Duration, body: &Bytes) -> (u64, u64) {
    let every = Duration::from_secs_f64(conns as f64 / PACED_RATE);
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            // Staggered, so that the exchanges come evenly rather than 16 at once.
            tokio::time::sleep(every * c as u32 / conns as u32).await;
            let mut conn = Conn::open(addr).await;
            let mut tick = tokio::time::interval(every);
            let (mut done, mut failed) = (0u64, 0u64);
            loop {
                tick.tick().await;
                if Instant::now() >= deadline {
                    return (done, failed);
                }
                match conn.send(&body, "json-50k").await {
                    Ok(resp) => match resp.into_body().collect().await {
                        Ok(_) => done += 1,
                        Err(_) => failed += 1,
                    },
                    Err(_) => {
                        failed += 1;
                        conn = Conn::open(addr).await;
                    }
                }
            }
        }));
    }
    let (mut done, mut failed) = (0, 0);
    for t in tasks {
        let (d, f) = t.await.expect("paced task");
        done += d;
        failed += f;
    }
    (done, failed)
}

/// What the saturation phase measured for one target.
#[derive(Clone, Debug, Default)]
struct Saturation {
    done: u64,
    secs: f64,
    cpu_ms: f64,
    /// Sorted once the run is over.
    latency: Vec<Duration>,
    /// Records written without their bodies, of the `done` exchanges.
    degraded: u64,
    /// Exchanges of the paced phase, and how many of their records were degraded.
    paced_done: u64,
    paced_degraded: u64,
}

impl Saturation {
    fn rps(&self) -> f64 {
        self.done as f64 / self.secs
    }

    fn cpu_per_exchange(&self) -> f64 {
        self.cpu_ms / self.done as f64
    }

    /// p50 | p99 | requests/s | CPU ms per exchange | degraded | degraded paced, as table cells.
    fn cells(&self) -> String {
        format!(
            "{:.3} | {:.3} | {:.0} | {:.3} | {} | {}",
            pct(&self.latency, 0.5),
            pct(&self.latency, 0.99),
            self.rps(),
            self.cpu_per_exchange(),
            self.degraded_cell(),
            self.paced_degraded_cell(),
        )
    }

    fn degraded_cell(&self) -> String {
        format!("{} of {}", self.degraded, self.done)
    }

    fn paced_degraded_cell(&self) -> String {
        format!("{} of {}", self.paced_degraded, self.paced_done)
    }
}

/// CPU time (user + system) the processes `pids` have used so far, in milliseconds.
fn cpu_ms(pids: &[u32]) -> f64 {
    // Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux's usual builds).
    const TICKS_PER_SEC: f64 = 100.0;
    let ticks: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // Fields after the `(comm)`: state is 1st, utime the 12th, stime the 13th.
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let fields: Vec<&str> = after.split_whitespace().collect();
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            field(11).unwrap_or(0) + field(12).unwrap_or(0)
        })
        .sum();
    ticks as f64 * 1000.0 / TICKS_PER_SEC
}

/// The traffic log of one claude-api-proxy build, counted as the run goes. Once it holds a
/// record for every exchange sent so far it is counted and emptied: a full run writes ~10 GB
/// per build, which kept whole filled the disk here once.
struct Ledger {
    log: PathBuf,
    /// Exchanges sent to this build so far.
    sent: u64,
    /// Records (and their bytes) counted and emptied out of the log so far.
    counted: u64,
    bytes: u64,
    /// Records written without their bodies (`"degraded"`), among those counted.
    degraded: u64,
}

impl Ledger {
    fn new(proxy: &Proxy) -> Ledger {
        Ledger {
            log: proxy.log_file.clone(),
            sent: 0,
            counted: 0,
            bytes: 0,
            degraded: 0,
        }
    }

    /// Waits (at most 30 s) for a record of every exchange sent, then empties the log; returns
    /// how many of the records were degraded. A log with records missing or extra is left as
    /// it is, for [`Ledger::total`] to report.
    async fn settle(&mut self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (lines, bytes) = count_lines(&self.log);
            if self.counted + lines == self.sent {
                let degraded = log_files(&self.log)
                    .iter()
                    .map(|f| count_degraded(f))
                    .sum::<u64>();
                self.degraded += degraded;
                // The proxy is idle and appends (O_APPEND): its next record starts the file anew.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.log)
                    .and_then(|f| f.set_len(0))
                    .expect("empty the traffic log");
                for segment in traffic_record::segments::list(&self.log).unwrap_or_default() {
                    let _ = std::fs::remove_file(segment.path);
                }
                self.counted += lines;
                self.bytes += bytes;
                return degraded;
            }
            if self.counted + lines > self.sent || Instant::now() > deadline {
                return 0;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Records and bytes written in all.
    fn total(&self) -> (u64, u64) {
        let (lines, bytes) = count_lines(&self.log);
        (self.counted + lines, self.bytes + bytes)
    }
}

/// Records in `path` written without their bodies (the field comes before the bodies).
fn count_degraded(path: &Path) -> u64 {
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
        .filter(|line| {
            memchr::memmem::find(&line[..line.len().min(4096)], b"\"degraded\":\"").is_some()
        })
        .count() as u64
}

/// The live log `path` and the segments it was rotated into.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = traffic_record::segments::list(path)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.path)
        .collect();
    files.push(path.to_path_buf());
    files
}

/// Lines (records) and bytes in the log `path` and its rotated segments.
fn count_lines(path: &Path) -> (u64, u64) {
    log_files(path)
        .iter()
        .map(|f| count_file_lines(f))
        .fold((0, 0), |(l, b), (l2, b2)| (l + l2, b + b2))
}

/// Lines and bytes in one file, read 1 MiB at a time.
fn count_file_lines(path: &Path) -> (u64, u64) {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return (0, 0);
    };
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut bytes) = (0, 0);
    while let Ok(n @ 1..) = file.read(&mut buf) {
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        bytes += n as u64;
    }
    (lines, bytes)
}

/// Waits until the previous target's work is done, so that it costs the next one nothing:
/// `secs`, then `sync` to write back what is still dirty. Our writer releases its log from the
/// page cache as it goes, so a throughput phase leaves at most the newest 32 MiB to write back;
/// but whatever came right after claude-api-proxy's throughput phase still paid 25-35 µs on
/// its first SSE event's p50 with a 1 s pause (three runs of two builds whose forwarding
/// threads differ by 1k instructions), and nothing measurable with 5 s.
async fn settle(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let _ = tokio::process::Command::new("sync").status().await;
}

/// The seconds after `--soak SECS`: run only the throughput load, SECS per target, alternating
/// targets (their order turning each round, as in the full run) for at least 3 rounds (for
/// profiling one build under sustained load, or a quick A/B).
fn soak_secs() -> Option<f64> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--soak")?;
    Some(args.get(i + 1)?.parse().expect("--soak takes seconds"))
}

async fn soak(
    targets: &[(&str, SocketAddr, Option<&Proxy>)],
    extras: &[(String, Proxy)],
    secs: f64,
) -> bool {
    let body = messages_body(LATENCY_BODY_BYTES, false);
    let mut all: Vec<(&str, SocketAddr, Option<Ledger>)> = targets
        .iter()
        .map(|&(name, addr, proxy)| (name, addr, proxy.map(Ledger::new)))
        .chain(
            extras
                .iter()
                .map(|(name, p)| (name.as_str(), p.addr, Some(Ledger::new(p)))),
        )
        .collect();
    let mut totals = vec![(0u64, 0f64); all.len()];
    let mut failures = 0;
    for round in 0..all.len().max(3) {
        for i in round_order(all.len(), round) {
            settle(FULL.settle_secs).await;
            let (n, took, failed, _) =
                saturate(all[i].1, 16, Duration::from_secs_f64(secs), &body, "json").await;
            totals[i].0 += n;
            totals[i].1 += took;
            failures += failed;
            if let Some(ledger) = &mut all[i].2 {
                ledger.sent += n;
                ledger.settle().await;
            }
        }
    }
    let mut ok = failures == 0;
    for ((name, _, ledger), (n, took)) in all.iter().zip(totals) {
        println!("{name}: {:.0} requests/s", n as f64 / took);
        if let Some(ledger) = ledger
            && ledger.counted != ledger.sent
        {
            eprintln!(
                "FAILED: {name} wrote {} records for {} exchanges",
                ledger.total().0,
                ledger.sent
            );
            ok = false;
        }
    }
    ok
}

/// What one target's memory did in one run of the memory phase (KiB): idle RSS; the peak
/// (VmHWM) over one 200,000-event stream and RSS 10 s after it ended (and, for ours, after its
/// record was written); the peak over a saturation burst and RSS 10 s after it.
#[derive(Clone, Copy, Default, Debug)]
struct MemoryRun {
    idle: u64,
    stream_peak: u64,
    stream_after: u64,
    saturation_peak: u64,
    saturation_after: u64,
}

/// Resets the peak resident set (VmHWM) of the target's processes to their current RSS.
fn reset_hwm(proxy: &Proxy) {
    let master = proxy.child.id();
    let mut pids = vec![master];
    if proxy.via == Via::Nginx {
        pids.extend(children_of(master));
    }
    for pid in pids {
        // "5" resets the peak RSS (proc(5), /proc/PID/clear_refs).
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    }
}

/// RSS (VmRSS) in KiB; for nginx the sum over the master and its workers.
fn rss_kib(proxy: &Proxy) -> u64 {
    let master = proxy.child.id();
    let mut pids = vec![master];
    if proxy.via == Via::Nginx {
        pids.extend(children_of(master));
    }
    pids.iter().map(|&p| status_kib(p, "VmRSS:")).sum()
}

/// Issue 29's memory phase on a fresh `proxy`: a 200,000-event stream, then `secs` of
/// saturation (16 connections, 50 KB in and out); returns the figures and the failures.
async fn memory_run(proxy: &Proxy, secs: f64, body: &Bytes) -> (MemoryRun, u64) {
    let mut ledger = (proxy.via == Via::Ours).then(|| Ledger::new(proxy));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(proxy);
    let mut failures = 0;
    let mut conn = Conn::open(proxy.addr).await;
    match conn.send(&messages_body(1024, true), "sse-long").await {
        Ok(resp) => match resp.into_body().collect().await.map(|b| b.to_bytes()) {
            Ok(b) if b.ends_with(b"{\"type\":\"message_stop\"}\n\n") => {}
            _ => failures += 1,
        },
        Err(_) => failures += 1,
    }
    drop(conn);
    if let Some(ledger) = &mut ledger {
        ledger.sent += 1;
        ledger.settle().await;
    }
    let stream_peak = proxy.hwm_kib();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let stream_after = rss_kib(proxy);
    reset_hwm(proxy);
    let (n, _, failed, _) = saturate(
        proxy.addr,
        16,
        Duration::from_secs_f64(secs),
        body,
        "json-50k",
    )
    .await;
    failures += failed;
    if let Some(ledger) = &mut ledger {
        ledger.sent += n;
        ledger.settle().await;
    }
    let saturation_peak = proxy.hwm_kib();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let saturation_after = rss_kib(proxy);
    let run = MemoryRun {
        idle,
        stream_peak,
        stream_after,
        saturation_peak,
        saturation_after,
    };
    (run, failures)
}

/// `--memory-only`: [`memory_run`] `runs` times on fresh processes of nginx, ours and every
/// `--also-bin` build (in a turning order), then the medians beside each other.
async fn memory_phase(upstream: SocketAddr, work: &Path, runs: usize, secs: f64) -> bool {
    let body = messages_body(LATENCY_BODY_BYTES, false);
    let mut names = vec!["nginx".to_string(), "claude-api-proxy".to_string()];
    names.extend(also_bins().into_iter().map(|(name, _)| name));
    let mut results: Vec<Vec<MemoryRun>> = vec![Vec::new(); names.len()];
    let mut failures = 0;
    for run in 0..runs {
        for i in round_order(names.len(), run) {
            settle(FULL.settle_secs.min(2)).await;
            let dir = work.join(format!("memory-{run}-{i}"));
            let proxy = match i {
                0 => Proxy::start(Via::Nginx, upstream, &dir),
                1 => Proxy::start(Via::Ours, upstream, &dir),
                _ => {
                    std::fs::create_dir_all(&dir).expect("proxy dir");
                    let log_file = dir.join("traffic.log");
                    let bin = &also_bins()[i - 2].1;
                    let (child, addr) = start_proxy_bin(bin, upstream, &log_file);
                    Proxy {
                        via: Via::Ours,
                        addr,
                        child,
                        log_file,
                    }
                }
            };
            let (figures, failed) = memory_run(&proxy, secs, &body).await;
            eprintln!(
                "memory run {}/{runs}, {}: {figures:?} KiB",
                run + 1,
                names[i]
            );
            failures += failed;
            results[i].push(figures);
            drop(proxy);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let median = |runs: &[MemoryRun], f: fn(&MemoryRun) -> u64| {
        let mut v: Vec<u64> = runs.iter().map(f).collect();
        v.sort();
        v[v.len() / 2] as f64 / 1024.0
    };
    println!("{}", machine());
    println!(
        "memory phase: {runs} runs per target on fresh processes; one {LONG_STREAM_EVENTS}-event \
         stream, then {secs:.0} s of saturation (16 connections, 50 KB in / 50 KB out); MiB, \
         medians (all runs in brackets)\n"
    );
    println!(
        "| target | idle RSS | stream: peak | stream: RSS 10 s after | saturation: peak | saturation: RSS 10 s after |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, runs) in names.iter().zip(&results) {
        let cell = |f: fn(&MemoryRun) -> u64| {
            let all: Vec<String> = runs
                .iter()
                .map(|r| format!("{:.0}", f(r) as f64 / 1024.0))
                .collect();
            format!("{:.1} ({})", median(runs, f), all.join(", "))
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            cell(|r| r.idle),
            cell(|r| r.stream_peak),
            cell(|r| r.stream_after),
            cell(|r| r.saturation_peak),
            cell(|r| r.saturation_after),
        );
    }
    if failures > 0 {
        eprintln!("FAILED: {failures} requests of the memory phase failed");
    }
    failures == 0
}

/// `n` concurrent slow streams, each with a `body_bytes` request body; returns failures.
async fn concurrent_streams(addr: SocketAddr, n: usize, body_bytes: usize) -> u64 {
    let body = messages_body(body_bytes, true);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let Ok(resp) = conn.send(&body, "sse-slow").await else {
                return 1;
            };
            match resp.into_body().collect().await.map(|b| b.to_bytes()) {
                Ok(b) if b.ends_with(b"{\"type\":\"message_stop\"}\n\n") => 0,
                _ => 1,
            }
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap_or(1);
    }
    failed
}

// ---------------------------------------------------------------------------------------------
// Report.

struct Table {
    latency: [Vec<Duration>; 3],
    ttfe: [Vec<Duration>; 3],
    rps: [f64; 3],
    saturation: [Saturation; 3],
    /// (idle VmHWM, VmHWM after the streams, failures) per proxy.
    memory: Vec<(Via, u64, u64, u64)>,
    /// VmHWM of nginx and ours after the latency and throughput phases.
    busy_hwm: [u64; 2],
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

impl Table {
    fn markdown(&self) -> String {
        let mut out = String::new();
        let mut row = |cells: Vec<String>| {
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        };
        row(vec![
            "metric".into(),
            "direct".into(),
            "nginx".into(),
            "claude-api-proxy".into(),
            "ours / nginx".into(),
        ]);
        row(vec!["---".into(); 5]);
        let measured = |samples: &[Vec<Duration>; 3]| !samples[2].is_empty();
        for (name, samples) in [
            ("50 KB POST", &self.latency),
            ("first SSE event", &self.ttfe),
        ] {
            if !measured(samples) {
                continue;
            }
            for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
                let v = samples.each_ref().map(|s| pct(s, p));
                let (added_n, added_o) = (v[1] - v[0], v[2] - v[0]);
                row(vec![
                    format!("{name} {label} latency (ms)"),
                    format!("{:.3}", v[0]),
                    format!("{:.3} (+{:.3})", v[1], added_n),
                    format!("{:.3} (+{:.3})", v[2], added_o),
                    if added_n > 0.0 {
                        format!("{:.2}x added", added_o / added_n)
                    } else {
                        "n/a (nginx within noise)".into()
                    },
                ]);
            }
        }
        if measured(&self.latency) {
            row(vec![
                "requests/s, 16 connections, 50 KB POST".into(),
                format!("{:.0}", self.rps[0]),
                format!("{:.0}", self.rps[1]),
                format!("{:.0}", self.rps[2]),
                format!("{:.2}x throughput", self.rps[2] / self.rps[1]),
            ]);
        }
        let s = &self.saturation;
        for (label, value, ratio) in [
            (
                "saturation 50 KB in / 50 KB out, 16 connections: p50 (ms)",
                s.each_ref().map(|s| pct(&s.latency, 0.5)),
                "x",
            ),
            (
                "saturation p99 (ms)",
                s.each_ref().map(|s| pct(&s.latency, 0.99)),
                "x",
            ),
            (
                "saturation requests/s",
                s.each_ref().map(Saturation::rps),
                "x throughput",
            ),
        ] {
            row(vec![
                label.into(),
                format!("{:.3}", value[0]),
                format!("{:.3}", value[1]),
                format!("{:.3}", value[2]),
                format!("{:.2}{ratio}", value[2] / value[1]),
            ]);
        }
        row(vec![
            "saturation CPU per exchange (ms, the proxy's process)".into(),
            "-".into(),
            format!("{:.3}", s[1].cpu_per_exchange()),
            format!("{:.3}", s[2].cpu_per_exchange()),
            format!("{:.2}x", s[2].cpu_per_exchange() / s[1].cpu_per_exchange()),
        ]);
        row(vec![
            "saturation: records degraded (bodies dropped, not waited for)".into(),
            "-".into(),
            "-".into(),
            s[2].degraded_cell(),
            "-".into(),
        ]);
        row(vec![
            format!("{PACED_RATE:.0} exchanges/s, same exchanges: records degraded"),
            "-".into(),
            "-".into(),
            s[2].paced_degraded_cell(),
            "-".into(),
        ]);
        let mem = |via: Via| self.memory.iter().find(|m| m.0 == via).copied();
        if let (Some(n), Some(o)) = (mem(Via::Nginx), mem(Via::Ours)) {
            let mb = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
            row(vec![
                "peak RSS idle (MiB)".into(),
                "-".into(),
                mb(n.1),
                mb(o.1),
                format!("{:.2}x", o.1 as f64 / n.1 as f64),
            ]);
            row(vec![
                "peak RSS, concurrent streams with 1 MB bodies (MiB)".into(),
                "-".into(),
                mb(n.2),
                mb(o.2),
                format!("{:.2}x", o.2 as f64 / n.2 as f64),
            ]);
            row(vec![
                "peak RSS over the latency and throughput phases (MiB)".into(),
                "-".into(),
                mb(self.busy_hwm[0]),
                mb(self.busy_hwm[1]),
                format!("{:.2}x", self.busy_hwm[1] as f64 / self.busy_hwm[0] as f64),
            ]);
        }
        out
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let nginx = Command::new(nginx_bin())
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default();
    format!("machine: {cores} cores, {cpu}; {nginx}")
}
