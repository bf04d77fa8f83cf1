//! The whole chain under fault, counted end to end: the Python SDK (streaming and not, bodies
//! from 100 B to 1.5 MB) -> the proxy binary -> fake-anthropic; the proxy's log, rotated by
//! size many times and once by a logrotate-style rename + new file + SIGHUP -> the shipper,
//! SIGKILLed five times, with a retention budget -> the Seq stand-in, which refuses
//! connections, then answers 503, then 429 with Retry-After. Every exchange the client
//! completed is in Seq, once or duplicated within one batch per crash; the kept segments are
//! within the budget; none was deleted before it was delivered (it would be missing in Seq).

mod e2e_support;

use e2e_support::*;
use seq_standin::{Control, Failure};
use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;

const EXCHANGES: u64 = 96;
const KILLS: usize = 5;
const ROTATE_SIZE: &str = "2MiB";
const RETAIN_BYTES: u64 = 4 << 20;

fn test_python() -> String {
    std::env::var("TEST_PYTHON").unwrap_or_else(|_| {
        panic!("TEST_PYTHON is not set: run scripts/test.sh, which installs a venv with the anthropic SDK")
    })
}

fn segments_bytes(log: &Path) -> (usize, u64) {
    let list = traffic_record::segments::list(log).unwrap();
    let bytes = list
        .iter()
        .filter_map(|s| std::fs::metadata(&s.path).ok())
        .map(|m| m.len())
        .sum();
    (list.len(), bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_to_seq_under_rotation_logrotate_shipper_kills_and_outages_loses_nothing() {
    let python = test_python();
    let proxy_bin = proxy_bin();
    let scratch = Scratch::new("e2e-chain");
    let log = scratch.path("traffic.log");
    let seq = standin().await;
    let upstream = fake_anthropic::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();

    let mut proxy = Command::new(&proxy_bin)
        .args(["--listen", "127.0.0.1:0", "--rotate-size", ROTATE_SIZE])
        .arg("--upstream")
        .arg(format!("http://{upstream}"))
        .arg("--log-file")
        .arg(&log)
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(scratch.path("proxy.err")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(proxy.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr = first.strip_prefix("listening on ").unwrap().to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let proxy_pid = proxy.id().unwrap();

    let shipper_cmd = || {
        let mut cmd = shipper(&scratch, &seq.logs_url());
        cmd.arg("--retain-bytes")
            .arg(RETAIN_BYTES.to_string())
            .args(["--retain-age", "1h"]);
        cmd
    };

    let client = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/chain_sdk.py"))
        .arg(EXCHANGES.to_string())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &scratch.dir)
        .env("ANTHROPIC_BASE_URL", format!("http://{addr}"))
        .env("ANTHROPIC_API_KEY", "sk-ant-chain-test")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = tokio::spawn(client.wait_with_output());

    // Faults while the client runs: five SIGKILLs of the shipper, Seq refusing connections
    // then answering 503 and 429, and an external logrotate (rename, create, SIGHUP).
    let started = Instant::now();
    let mut timing = Rng::new(20);
    let mut delivered_at_kill = Vec::new();
    let mut rotated_by_hand = false;
    let mut outage = false;
    for kill in 0..KILLS {
        let mut child = spawn_logged(&scratch, &mut shipper_cmd());
        let alive = Duration::from_millis(1500 + timing.below(2000));
        let until = Instant::now() + alive;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Once the shipper demonstrably delivers (so that it is mid-backlog when Seq goes
            // away), or after 4 s at the latest.
            if !outage
                && (seq.counters().accepted_requests > 0
                    || started.elapsed() > Duration::from_secs(4))
            {
                outage = true;
                seq.control(Control {
                    refuse_connections_for_secs: Some(6.0),
                    fail_next: vec![
                        Failure::Status(503),
                        Failure::WithRetryAfter {
                            status: 429,
                            retry_after: Some(1),
                        },
                    ],
                    ..Control::default()
                });
            }
            if !rotated_by_hand && kill == 2 {
                rotated_by_hand = true;
                std::fs::rename(&log, scratch.path("traffic.log.1")).unwrap();
                std::fs::OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .mode(0o600)
                    .open(&log)
                    .unwrap();
                signal(proxy_pid, "HUP");
            }
        }
        child.start_kill().unwrap(); // SIGKILL
        let status = child.wait().await.unwrap();
        assert!(!status.success(), "killed, not exited: {status}");
        delivered_at_kill.push(seq.counters().accepted_events);
    }
    let mut last = spawn_logged(&scratch, &mut shipper_cmd());

    let output = tokio::time::timeout(Duration::from_secs(120), client)
        .await
        .expect("the client finishes")
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the client saw a failure: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let completed: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("done "))
        .map(str::to_string)
        .collect();
    assert_eq!(completed.len() as u64, EXCHANGES);

    // The proxy survived the SIGHUP and wrote nothing more to the renamed file after it.
    assert!(proxy.try_wait().unwrap().is_none(), "SIGHUP kept the proxy");
    let renamed = std::fs::metadata(scratch.path("traffic.log.1"))
        .unwrap()
        .len();

    let header = "http.request.header.x-chain-exchange";
    let count_arrived = || {
        seq.with_events(|events| {
            let mut mains: HashMap<String, usize> = HashMap::new();
            for e in events {
                if let Some(n) = e.attr_str(header)
                    && !is_part(e)
                {
                    *mains.entry(n.to_string()).or_default() += 1;
                }
            }
            mains
        })
    };
    wait_for(
        Duration::from_secs(90),
        "every completed exchange in Seq",
        || {
            let arrived = count_arrived();
            completed.iter().all(|n| arrived.contains_key(n))
        },
    )
    .await;
    // The retention pass that follows the last delivery brings the segments within budget.
    wait_for(
        Duration::from_secs(30),
        "delivered segments within the retention budget",
        || segments_bytes(&log).1 <= RETAIN_BYTES,
    )
    .await;
    last.start_kill().unwrap();
    let _ = last.wait().await;
    signal(proxy_pid, "TERM");
    let proxy_exit = proxy.wait().await.unwrap();
    let proxy_err = std::fs::read_to_string(scratch.path("proxy.err")).unwrap();

    let arrived = count_arrived();
    let counters = seq.counters();
    let duplicates: usize = arrived.values().map(|n| n - 1).sum();
    let bound = KILLS as u64 * counters.max_events_per_request;
    let rotations = proxy_err.matches("traffic log rotated").count();
    let (kept, kept_bytes) = segments_bytes(&log);
    eprintln!(
        "delivered at each kill {delivered_at_kill:?}; duplicates {duplicates} (bound {bound}); \
         {rotations} size rotations; {kept} segments kept, {kept_bytes} bytes; {c:?}",
        c = counters
    );
    assert_eq!(proxy_exit.code(), Some(0), "{proxy_err}");
    assert!(
        counters.refused_connections >= 1,
        "the outage was seen: {counters:?}"
    );
    assert_eq!(counters.rejected_batches.get("503"), Some(&1));
    assert_eq!(counters.rejected_batches.get("429"), Some(&1));
    assert!(rotations >= 5, "rotated by size {rotations} times");
    assert!(
        proxy_err.contains("SIGHUP received"),
        "the proxy reopened its log: {proxy_err}"
    );
    assert!(
        proxy_err.contains("degraded=0 lost=0"),
        "no record degraded or lost: {proxy_err}"
    );
    assert_eq!(
        std::fs::metadata(scratch.path("traffic.log.1"))
            .unwrap()
            .len(),
        renamed,
        "logrotate's file is left alone"
    );
    for n in &completed {
        assert!(arrived.contains_key(n), "exchange {n} never reached Seq");
    }
    assert_eq!(arrived.len() as u64, EXCHANGES, "no unknown exchange");
    assert!(
        duplicates as u64 <= bound,
        "{duplicates} duplicates > {bound}"
    );
    assert!(
        kept_bytes <= RETAIN_BYTES,
        "{kept} delivered segments kept, {kept_bytes} bytes over the budget"
    );
}
