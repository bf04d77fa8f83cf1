//! End to end: 100,000 traffic records, some with 1 MB and one with a 20 MB body, written like
//! the proxy writes them, are all delivered by the real `otlp-shipper` to the Seq stand-in:
//! every exchange id arrives, and the body parts reassemble byte for byte.

mod e2e_support;

use e2e_support::*;
use std::time::{Duration, Instant};

const RECORDS: u64 = 100_000;
const MB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_records_with_1mb_and_20mb_bodies_all_arrive_by_id() {
    let scratch = Scratch::new("e2e-delivery");
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(1);
    // Big bodies at fixed, spread positions: three of 1 MB and one of 20 MB.
    let big = |n: u64| match n {
        1_000 | 50_000 | 99_998 => Some(MB),
        70_000 => Some(20 * MB),
        _ => None,
    };
    let mut written = Vec::with_capacity(RECORDS as usize);
    let mut big_lines = Vec::new();
    let mut chunk = Vec::new();
    for n in 0..RECORDS {
        let id = exchange_id(0xde1, n);
        let line = record_line(&id, big(n).unwrap_or(60), &mut rng);
        if big(n).is_some() {
            big_lines.push((id.clone(), line.clone()));
        }
        chunk.push(line);
        written.push(id);
        if chunk.len() == 5_000 {
            append_lines(&log, &chunk);
            chunk.clear();
        }
    }
    append_lines(&log, &chunk);
    let bytes = std::fs::metadata(&log).unwrap().len();

    let start = Instant::now();
    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(240),
    )
    .await;
    let took = start.elapsed();
    eprintln!(
        "shipped {RECORDS} records, {:.1} MB, in {took:.1?} ({:.1} MB/s, debug build)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / took.as_secs_f64()
    );

    seq.with_events(|events| {
        let (arrived, plain) = by_exchange(events);
        assert!(
            plain.is_empty(),
            "every line was a record: {:?}",
            plain.first()
        );
        let missing: Vec<_> = written
            .iter()
            .filter(|id| !arrived.contains_key(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "{} ids missing, first {:?}",
            missing.len(),
            missing.first()
        );
        assert_eq!(arrived.len() as u64, RECORDS, "no id that was not written");
        let duplicated = arrived.values().filter(|a| a.mains != 1).count();
        assert_eq!(duplicated, 0, "a clean run delivers each record once");
        for (id, line) in &big_lines {
            assert_bodies_reassemble(events, id, line);
        }
        // Small records too: a sample, through the same reassembly.
        for n in [0, 1, 99_999] {
            let id = exchange_id(0xde1, n);
            assert_bodies_reassemble(events, &id, &line_of(&log, &id));
        }
    });
    assert!(dead_letters(&scratch.path("dead-letter.jsonl")).is_empty());
}
