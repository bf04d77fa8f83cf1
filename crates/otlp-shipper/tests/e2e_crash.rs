//! Crash safety: the shipper is killed with SIGKILL five times at random moments while
//! records keep arriving, and restarted each time. Nothing is lost, and each kill costs at
//! most one batch of duplicates (the batch Seq accepted before the checkpoint was saved).

mod e2e_support;

use e2e_support::*;
use std::time::Duration;

const RECORDS: u64 = 20_000;
const CHUNK: u64 = 250;
const KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_kill_9_during_a_run_lose_nothing_and_duplicate_at_most_a_batch_each() {
    let scratch = Scratch::new("e2e-crash");
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill timing seed {seed}");
    let mut timing = Rng::new(seed);

    // The writer appends a chunk every 50 ms for the whole run, like a busy proxy.
    let writer_log = log.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut rng = Rng::new(7);
        for c in 0..RECORDS / CHUNK {
            let lines: Vec<String> = (c * CHUNK..(c + 1) * CHUNK)
                .map(|n| record_line(&exchange_id(0xc4a5, n), 300, &mut rng))
                .collect();
            append_lines(&writer_log, &lines);
            std::thread::sleep(Duration::from_millis(50));
        }
    });

    let mut delivered_at_kill = Vec::new();
    for _ in 0..KILLS {
        let mut child = spawn_logged(&scratch, &mut batched(shipper(&scratch, &seq.logs_url())));
        let alive = Duration::from_millis(300 + timing.below(1200));
        tokio::time::sleep(alive).await;
        child.start_kill().unwrap(); // SIGKILL
        let status = child.wait().await.unwrap();
        assert!(
            !status.success(),
            "the shipper was killed, not exited: {status}"
        );
        delivered_at_kill.push(seq.counters().accepted_events);
    }
    writer.await.unwrap();
    eprintln!("events delivered at each kill: {delivered_at_kill:?}");

    let mut last = batched(shipper(&scratch, &seq.logs_url()));
    ship_until_drained(&scratch, last_run(&mut last), Duration::from_secs(120)).await;

    let counters = seq.counters();
    seq.with_events(|events| {
        let (arrived, plain) = by_exchange(events);
        assert!(plain.is_empty());
        assert_all_arrived(&arrived, 0xc4a5, RECORDS);
        let duplicates: usize = arrived.values().map(|a| a.mains - 1).sum();
        let bound = KILLS as u64 * counters.max_events_per_request;
        eprintln!(
            "duplicates {duplicates} (bound {KILLS} kills x largest batch {} = {bound})",
            counters.max_events_per_request
        );
        assert!(
            duplicates as u64 <= bound,
            "{duplicates} duplicates > {bound}"
        );
    });
}

/// Small batches, so that "one batch" is a meaningful bound.
fn batched(mut cmd: tokio::process::Command) -> tokio::process::Command {
    cmd.args(["--batch-max-bytes", "300000"]);
    cmd
}

fn last_run(cmd: &mut tokio::process::Command) -> tokio::process::Command {
    std::mem::replace(cmd, tokio::process::Command::new("true"))
}
