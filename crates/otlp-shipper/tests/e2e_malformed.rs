//! Lines that are not traffic records (not JSON, invalid UTF-8, JSON of another shape, a
//! record missing its fields, empty) still ship, as plain string messages, and do not stop
//! the records around them.

mod e2e_support;

use e2e_support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_ship_as_strings_without_a_crash() {
    let scratch = Scratch::new("e2e-malformed");
    let seq = standin().await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(9);
    let mut bytes = Vec::new();
    let mut line = |b: &[u8]| {
        bytes.extend_from_slice(b);
        bytes.push(b'\n');
    };
    line(record_line(&exchange_id(0xbad, 1), 100, &mut rng).as_bytes());
    line(b"this is not json");
    line(b"invalid \xff\xfe utf-8 \xc3(");
    line(br#"{"json":"but not a record"}"#);
    line(br#"{"v":1,"kind":"claude_api_exchange","id":"truncated"#);
    line(br#"{"v":1,"kind":"claude_api_exchange"}"#);
    line(b"");
    line(b"[1,2,3]");
    line(record_line(&exchange_id(0xbad, 2), 100, &mut rng).as_bytes());
    append_bytes(&log, &bytes);

    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(60),
    )
    .await;

    seq.with_events(|events| {
        let (arrived, plain) = by_exchange(events);
        assert_eq!(
            arrived.len(),
            2,
            "both records around the bad lines arrived"
        );
        let bodies: Vec<&str> = plain
            .iter()
            .map(|e| e.body_str().expect("a string"))
            .collect();
        let expected = [
            "this is not json",
            "invalid \u{fffd}\u{fffd} utf-8 \u{fffd}(",
            r#"{"json":"but not a record"}"#,
            r#"{"v":1,"kind":"claude_api_exchange","id":"truncated"#,
            r#"{"v":1,"kind":"claude_api_exchange"}"#,
            "",
            "[1,2,3]",
        ];
        assert_eq!(bodies, expected);
    });
    assert!(dead_letters(&scratch.path("dead-letter.jsonl")).is_empty());
}
