//! An event Seq refuses for good is isolated, written to the dead-letter file with the
//! status and Seq's reason, and everything else is delivered.

mod e2e_support;

use e2e_support::*;
use std::time::Duration;

const MARKER: &str = "POISON-PILL-7f3a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_refused_for_good_is_dead_lettered_and_the_rest_delivered() {
    let scratch = Scratch::new("e2e-dead-letter");
    let seq = standin().await;
    seq.control(
        serde_json::from_value(serde_json::json!({ "reject_event_containing": MARKER })).unwrap(),
    );
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(5);
    let poisoned = exchange_id(0xdead, 150);
    let lines: Vec<String> = (0..300)
        .map(|n| {
            let line = record_line(&exchange_id(0xdead, n), 200, &mut rng);
            if n == 150 {
                // The marker inside the request text (a JSON string in the body).
                line.replacen("\"content\":\"", &format!("\"content\":\"{MARKER} "), 1)
            } else {
                line
            }
        })
        .collect();
    assert!(lines[150].contains(MARKER));
    append_lines(&log, &lines);

    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(60),
    )
    .await;

    seq.with_events(|events| {
        let (arrived, _) = by_exchange(events);
        for n in 0..300 {
            let id = exchange_id(0xdead, n);
            if id == poisoned {
                assert!(
                    !arrived.contains_key(&id),
                    "the refused event was not stored"
                );
            } else {
                assert_eq!(arrived.get(&id).map(|a| a.mains), Some(1), "{id}");
            }
        }
    });
    let letters = dead_letters(&scratch.path("dead-letter.jsonl"));
    assert_eq!(letters.len(), 1, "exactly the refused event: {letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["status"], 400);
    assert_eq!(letter["exchange_id"], poisoned.as_str());
    let reason = letter["reason"].as_str().unwrap();
    assert!(
        reason.contains("rejected marker"),
        "Seq's reason is kept: {reason}"
    );
    let counters = seq.counters();
    assert!(counters.rejected_batches["400"] >= 1);
    eprintln!(
        "isolating the event took {} rejected requests",
        counters.rejected_batches["400"]
    );
}
