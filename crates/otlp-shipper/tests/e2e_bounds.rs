//! The shipper bounds what it holds: a line longer than --max-line-bytes is read past, never
//! held (memory stays flat on a 1 GB line without a newline), and dead-lettered with its
//! offset and length; an OTLP partial success is counted, logged and dead-lettered when it
//! names every record of the request; the files the shipper creates are owner-only.

mod e2e_support;

use e2e_support::*;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use prost::Message;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Peak and current resident memory of `pid` in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gb_line_without_a_newline_is_never_held_and_the_next_line_ships() {
    let scratch = Scratch::new("e2e-huge-line");
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(21);
    append_lines(&log, &[record_line(&exchange_id(0x21, 0), 500, &mut rng)]);
    // 1 GiB without a newline (sparse: zeros the reader must still read through).
    let start = std::fs::metadata(&log).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(start + (1 << 30)).unwrap();
    drop(file);

    let mut cmd = shipper(&scratch, &seq.logs_url());
    cmd.args(["--max-line-bytes", "4194304"]);
    let mut child = spawn_logged(&scratch, &mut cmd);
    let pid = child.id().unwrap();
    wait_for(Duration::from_secs(30), "the first record", || {
        seq.with_events(|events| by_exchange(events).0.contains_key(&exchange_id(0x21, 0)))
    })
    .await;
    // The reader goes through the GiB (and then waits for its end) while memory stays flat.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (peak_before_end, _) = memory_kib(pid);

    let after = record_line(&exchange_id(0x21, 1), 500, &mut rng);
    append_bytes(&log, format!("\n{after}\n").as_bytes());
    wait_for(
        Duration::from_secs(60),
        "the record after the huge line",
        || seq.with_events(|events| by_exchange(events).0.contains_key(&exchange_id(0x21, 1))),
    )
    .await;
    let (peak, _) = memory_kib(pid);
    let _ = child.start_kill();
    eprintln!("shipper peak RSS {peak_before_end} KiB while reading, {peak} KiB at the end");
    assert!(
        peak < 80 * 1024,
        "peak RSS {peak} KiB over a 1 GiB line with a 4 MiB cap"
    );

    let letters = dead_letters(&scratch.path("dead-letter.jsonl"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("line of {} bytes", 1u64 << 30)),
        "{reason}"
    );
    assert!(reason.contains("--max-line-bytes"), "{reason}");
    assert_eq!(letters[0]["attributes"]["log.line.offset"], start);
    assert_eq!(letters[0]["body"].as_str().unwrap().len(), 65536);
    let mode = std::fs::metadata(scratch.path("dead-letter.jsonl"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "dead-letter mode {mode:o}");
}

/// An OTLP endpoint that accepts every request with a partial success rejecting `rejected`
/// records, or all of them when `rejected` is negative.
async fn partial_success_endpoint(rejected: i64) -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    let router = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            let request =
                opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(
                    body,
                )
                .unwrap();
            let records: i64 = request
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len() as i64)
                .sum();
            let response = ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: if rejected < 0 { records } else { rejected },
                    error_message: "quota of the day reached-zq8".to_string(),
                }),
            };
            (
                [("content-type", "application/x-protobuf")],
                response.encode_to_vec(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/ingest/otlp/v1/logs"), requests)
}

async fn metrics_of(scratch: &Scratch, endpoint: &str) -> (serde_json::Value, String) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = shipper(scratch, endpoint);
    // This endpoint speaks OTLP logs only.
    cmd.args(["--traces-endpoint", "none"]);
    cmd.args(["--metrics-listen", &format!("127.0.0.1:{port}")]);
    let mut child = spawn_logged(scratch, &mut cmd);
    let url = format!("http://127.0.0.1:{port}/metrics?format=json");
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(r) = reqwest::get(&url).await else {
            continue;
        };
        if let Ok(v) =
            serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap_or_default())
        {
            last = v;
            if last["lag_records"] == 0 && last["shipped_lines"] != 0 {
                break;
            }
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    (last, shipper_output(scratch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_success_is_counted_and_logged_and_a_full_rejection_dead_lettered() {
    let mut rng = Rng::new(22);
    let lines: Vec<String> = (0..5)
        .map(|n| record_line(&exchange_id(0x22, n), 300, &mut rng))
        .collect();

    // Two records rejected, without saying which: counted and logged.
    let scratch = Scratch::new("e2e-partial-some");
    append_lines(&scratch.path("traffic.log"), &lines);
    let (endpoint, _) = partial_success_endpoint(2).await;
    let (metrics, output) = metrics_of(&scratch, &endpoint).await;
    assert_eq!(metrics["rejected"], 2, "{metrics}\n{output}");
    assert!(output.contains("quota of the day reached-zq8"), "{output}");
    assert!(dead_letters(&scratch.path("dead-letter.jsonl")).is_empty());
    let mode = std::fs::metadata(scratch.path("checkpoint.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "checkpoint mode {mode:o}");

    // Every record of the request rejected: they are all known, so all dead-lettered.
    let scratch = Scratch::new("e2e-partial-all");
    append_lines(&scratch.path("traffic.log"), &lines);
    let (endpoint, _) = partial_success_endpoint(-1).await;
    let (metrics, output) = metrics_of(&scratch, &endpoint).await;
    let letters = dead_letters(&scratch.path("dead-letter.jsonl"));
    assert_eq!(
        metrics["rejected"].as_u64(),
        Some(letters.len() as u64),
        "{metrics}\n{output}"
    );
    assert_eq!(
        metrics["dead_lettered"].as_u64(),
        Some(letters.len() as u64)
    );
    assert!(letters.len() >= 5, "{letters:?}");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("quota of the day reached-zq8")
    );
}
