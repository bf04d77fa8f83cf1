//! Log rotation in the middle of a run: rename rotation (the old file finished, the new one
//! followed) and copytruncate (the file restarts at 0). Nothing is lost.

mod e2e_support;

use e2e_support::*;
use std::time::Duration;
use tokio::process::Child;

fn records(tag: u64, range: std::ops::Range<u64>, rng: &mut Rng) -> Vec<String> {
    range
        .map(|n| record_line(&exchange_id(tag, n), 200, rng))
        .collect()
}

/// What logrotate's copytruncate does: copy the log to `traffic.log.1`, then empty it in place.
fn copytruncate(scratch: &Scratch, log: &std::path::Path) {
    std::fs::copy(log, scratch.path("traffic.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(log)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Waits (up to `limit`) until `count` events arrived and the shipper's checkpoint says it
/// delivered the live log to its end (so it is done with the rotated file), stops it with
/// SIGTERM, then runs it again from that checkpoint until drained: anything the first run
/// would still send, a late duplicate included, has arrived before the events are counted.
async fn stop_and_drain(
    scratch: &Scratch,
    seq: &seq_standin::Handle,
    child: Child,
    count: u64,
    limit: Duration,
) {
    wait_for(limit, &format!("{count} records"), || {
        seq.counters().accepted_events >= count
    })
    .await;
    wait_for(limit, "the checkpoint at the end of the live log", || {
        caught_up(scratch)
    })
    .await;
    stop(scratch, child).await;
    ship_until_drained(scratch, shipper(scratch, &seq.logs_url()), limit).await;
}

/// The checkpoint names the live log (its device and inode) at its current length.
fn caught_up(scratch: &Scratch) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(bytes), Ok(live)) = (
        std::fs::read(scratch.path("checkpoint.json")),
        std::fs::metadata(scratch.path("traffic.log")),
    ) else {
        return false;
    };
    let Ok(cp) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    cp["dev"].as_u64() == Some(live.dev())
        && cp["ino"].as_u64() == Some(live.ino())
        && cp["offset"].as_u64() == Some(live.len())
}

/// SIGTERM, then waits for the shipper to exit 0.
async fn stop(scratch: &Scratch, mut child: Child) {
    let pid = child.id().expect("the shipper runs").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap_or_else(|_| panic!("no exit after SIGTERM:\n{}", shipper_output(scratch)))
        .unwrap();
    assert!(
        status.success(),
        "{status} after SIGTERM:\n{}",
        shipper_output(scratch)
    );
}

fn assert_all_once(seq: &seq_standin::Handle, tag: u64, count: u64) {
    seq.with_events(|events| {
        let (arrived, _) = by_exchange(events);
        assert_all_arrived(&arrived, tag, count);
        let dup = arrived.values().filter(|a| a.mains != 1).count();
        assert_eq!(dup, 0, "no duplicates without a crash");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_mid_run_loses_nothing() {
    let scratch = Scratch::new("e2e-rename");
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(11);
    append_lines(&log, &records(0x4e, 0..3_000, &mut rng));
    let mut cmd = shipper(&scratch, &seq.logs_url());
    cmd.args(["--rotate-wait", "2"]);
    let child = spawn_logged(&scratch, &mut cmd);
    wait_for(Duration::from_secs(60), "the first records", || {
        seq.counters().accepted_events > 0
    })
    .await;

    // Rotate: the writer still holds the old file for a moment and appends to it, then
    // opens a new file at the same path.
    std::fs::rename(&log, scratch.path("traffic.log.1")).unwrap();
    append_lines(
        &scratch.path("traffic.log.1"),
        &records(0x4e, 3_000..3_200, &mut rng),
    );
    append_lines(&log, &records(0x4e, 3_200..5_000, &mut rng));
    tokio::time::sleep(Duration::from_millis(500)).await;
    append_lines(&log, &records(0x4e, 5_000..5_500, &mut rng));

    stop_and_drain(&scratch, &seq, child, 5_500, Duration::from_secs(90)).await;
    assert_all_once(&seq, 0x4e, 5_500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_mid_run_loses_nothing() {
    let scratch = Scratch::new("e2e-copytruncate");
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(12);
    append_lines(&log, &records(0xc7, 0..2_000, &mut rng));
    let child = spawn_logged(&scratch, &mut shipper(&scratch, &seq.logs_url()));
    // copytruncate loses whatever was not read before the copy: that is logrotate's
    // contract, not the shipper's. So truncate once the file was read.
    wait_for(Duration::from_secs(60), "the first 2,000 records", || {
        seq.counters().accepted_events >= 2_000
    })
    .await;

    copytruncate(&scratch, &log);
    // The writer goes on at the start of the emptied file (O_APPEND), soon after.
    append_lines(&log, &records(0xc7, 2_000..2_500, &mut rng));
    tokio::time::sleep(Duration::from_millis(700)).await;
    append_lines(&log, &records(0xc7, 2_500..3_000, &mut rng));

    stop_and_drain(&scratch, &seq, child, 3_000, Duration::from_secs(60)).await;
    assert_all_once(&seq, 0xc7, 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_while_the_shipper_is_down_loses_nothing() {
    let scratch = Scratch::new("e2e-rename-down");
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(13);
    append_lines(&log, &records(0xd0, 0..3_000, &mut rng));
    let mut child = spawn_logged(&scratch, &mut shipper(&scratch, &seq.logs_url()));
    wait_for(Duration::from_secs(60), "the first records", || {
        seq.counters().accepted_events > 0
    })
    .await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let before = seq.counters().accepted_events;

    // Rotated while nobody reads: late lines in the old file, a new file at the path.
    std::fs::rename(&log, scratch.path("traffic.log.1")).unwrap();
    append_lines(
        &scratch.path("traffic.log.1"),
        &records(0xd0, 3_000..3_300, &mut rng),
    );
    append_lines(&log, &records(0xd0, 3_300..4_000, &mut rng));

    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(60),
    )
    .await;
    eprintln!("{before} events delivered before the kill");
    seq.with_events(|events| {
        let (arrived, _) = by_exchange(events);
        assert_all_arrived(&arrived, 0xd0, 4_000);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_refilled_past_the_old_position_while_down_loses_nothing() {
    // The size never shows the truncation here (the file grew back past the checkpoint while
    // the shipper was down): only the file's identity and head tell it apart.
    let scratch = Scratch::new("e2e-copytruncate-down");
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(14);
    append_lines(&log, &records(0xe1, 0..1_000, &mut rng));
    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(seq.counters().accepted_events, 1_000);

    copytruncate(&scratch, &log);
    append_lines(&log, &records(0xe2, 0..3_000, &mut rng));

    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(60),
    )
    .await;
    seq.with_events(|events| {
        let (arrived, _) = by_exchange(events);
        assert_all_arrived(&arrived, 0xe2, 3_000);
    });
}

/// Copy-truncates the running shipper's file (1,000 records, all delivered) and refills it
/// with 3,000 new records in `writes` writes, faster than any poll: the size never goes
/// below the read position, only the file's changed head shows the truncation.
async fn copytruncate_refilled_while_running(name: &str, seed: u64, tag: u64, writes: usize) {
    let scratch = Scratch::new(name);
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(seed);
    append_lines(&log, &records(tag, 0..1_000, &mut rng));
    let child = spawn_logged(&scratch, &mut shipper(&scratch, &seq.logs_url()));
    wait_for(Duration::from_secs(60), "the first 1,000 records", || {
        seq.counters().accepted_events >= 1_000
    })
    .await;

    let refill = records(tag + 1, 0..3_000, &mut rng);
    let chunks: Vec<Vec<u8>> = refill
        .chunks(refill.len().div_ceil(writes))
        .map(|c| {
            c.iter()
                .flat_map(|l| [l.as_bytes(), b"\n"].concat())
                .collect()
        })
        .collect();
    std::fs::copy(&log, scratch.path("traffic.log.1")).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.set_len(0).unwrap();
        for c in &chunks {
            f.write_all(c).unwrap();
        }
    }

    let arrived = tokio::time::timeout(Duration::from_secs(60), async {
        while seq.counters().accepted_events < 4_000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        arrived.is_ok(),
        "only {} of 4,000 events arrived; shipper output:\n{}",
        seq.counters().accepted_events,
        shipper_output(&scratch)
    );
    wait_for(
        Duration::from_secs(60),
        "the checkpoint at the end of the live log",
        || caught_up(&scratch),
    )
    .await;
    stop(&scratch, child).await;
    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(60),
    )
    .await;
    assert_all_once(&seq, tag, 1_000);
    assert_all_once(&seq, tag + 1, 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_refilled_at_once_past_the_old_position_while_running_loses_nothing() {
    copytruncate_refilled_while_running("e2e-copytruncate-refill", 15, 0xe3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_refilled_in_several_writes_while_running_loses_nothing() {
    copytruncate_refilled_while_running("e2e-copytruncate-refill-writes", 16, 0xe5, 6).await;
}
