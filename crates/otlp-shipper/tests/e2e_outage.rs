//! Outages: Seq refusing connections for 30 s, then answering 503, then 429 with
//! Retry-After. Nothing is lost, records written during the outage are delivered too, each
//! injected status costs exactly one retry, and Retry-After is honoured.

mod e2e_support;

use e2e_support::*;
use seq_standin::{Control, Failure};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_for_30s_then_503_then_429_loses_nothing_and_retries_exactly() {
    let scratch = Scratch::new("e2e-outage");
    let seq = standin().await;
    seq.control(Control {
        refuse_connections_for_secs: Some(30.0),
        fail_next: vec![
            Failure::Status(503),
            Failure::WithRetryAfter {
                status: 429,
                retry_after: Some(2),
            },
        ],
        ..Control::default()
    });
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(3);
    let lines: Vec<String> = (0..2_000)
        .map(|n| record_line(&exchange_id(0x07a6e, n), 400, &mut rng))
        .collect();
    append_lines(&log, &lines);

    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cmd = shipper(&scratch, &seq.logs_url());
    cmd.arg("--metrics-listen").arg(metrics.to_string());
    let mut child = spawn_logged(&scratch, &mut cmd);
    wait_for(Duration::from_secs(20), "an attempt while refusing", || {
        seq.counters().refused_connections >= 1
    })
    .await;
    assert_eq!(
        seq.counters().accepted_events,
        0,
        "nothing gets through while refusing"
    );
    // Written while Seq is down: must be delivered as well.
    let lines: Vec<String> = (2_000..2_500)
        .map(|n| record_line(&exchange_id(0x07a6e, n), 400, &mut rng))
        .collect();
    append_lines(&log, &lines);

    wait_for(
        Duration::from_secs(150),
        "all 2,500 records after the outage",
        || seq.counters().accepted_events >= 2_500,
    )
    .await;
    let shipper_counts: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("http://{metrics}/metrics?format=json"))
            .await
            .expect("the metrics endpoint answers")
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    child.start_kill().unwrap();
    let _ = child.wait().await;

    let c = seq.counters();
    eprintln!("{c:?}\n{}", shipper_output(&scratch));
    assert!(
        c.refused_connections >= 1,
        "the shipper did try while refused"
    );
    assert_eq!(c.rejected_batches.get("503"), Some(&1));
    assert_eq!(c.rejected_batches.get("429"), Some(&1));
    assert_eq!(
        c.requests,
        c.accepted_requests + 2,
        "each injected status cost exactly one retry"
    );
    // The shipper's own count agrees: two retries for the statuses, the rest for the
    // connections the stand-in reset (one reset can be seen twice by the stand-in when the
    // HTTP client retries an idle pooled connection at once).
    let retried = shipper_counts["retried"].as_u64().unwrap();
    eprintln!("shipper metrics: {shipper_counts}");
    assert!(retried > 2, "connection errors were retried: {retried}");
    assert!(
        retried <= 2 + c.refused_connections,
        "{retried} retries, {c:?}"
    );
    assert_eq!(shipper_counts["shipped_events"], 2_500);
    assert_eq!(shipper_counts["dead_lettered"], 0);
    let answered = seq.answered();
    let statuses: Vec<u16> = answered.iter().map(|a| a.status).collect();
    assert_eq!(&statuses[..2], &[503, 429], "{statuses:?}");
    let wait = answered[2].at - answered[1].at;
    assert!(
        wait >= Duration::from_secs(2),
        "Retry-After: 2 honoured, waited {wait:?}"
    );

    seq.with_events(|events| {
        let (arrived, _) = by_exchange(events);
        for n in 0..2_500 {
            let id = exchange_id(0x07a6e, n);
            assert_eq!(arrived.get(&id).map(|a| a.mains), Some(1), "{id}");
        }
    });
}
