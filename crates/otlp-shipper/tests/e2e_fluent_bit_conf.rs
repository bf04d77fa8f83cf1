//! The repository's `fluent-bit/fluent-bit.conf` (the old container's config) drives a real
//! run, with `${SEQ_HOST}`, `${SEQ_PORT}` and `${SEQ_API_KEY}` from the environment; a bad
//! config fails with a message naming the problem and exit code 64.

mod e2e_support;

use e2e_support::*;
use seq_standin::Options;
use std::path::PathBuf;
use std::time::Duration;

fn repo_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fluent-bit/fluent-bit.conf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_fluent_bit_conf_drives_a_run() {
    let scratch = Scratch::new("e2e-fb-conf");
    let seq = standin_with(Options {
        api_key: Some("e2e-seq-key".into()),
        ..Options::default()
    })
    .await;
    let log = scratch.path("traffic.log");
    let mut rng = Rng::new(21);
    let lines: Vec<String> = (0..500)
        .map(|n| record_line(&exchange_id(0xfb, n), 200, &mut rng))
        .collect();
    append_lines(&log, &lines);

    // The config's tail path and DB point into /var/log; flags move them to the scratch dir.
    // Host, port and key come from the environment as in the old container.
    let mut cmd = tokio::process::Command::new(SHIPPER);
    cmd.arg("-c")
        .arg(repo_conf())
        .arg("--file")
        .arg(&log)
        .arg("--checkpoint")
        .arg(scratch.path("checkpoint.json"))
        .arg("--dead-letter")
        .arg(scratch.path("dead-letter.jsonl"))
        .env("SEQ_HOST", "127.0.0.1")
        .env("SEQ_PORT", seq.addr().port().to_string())
        .env("SEQ_API_KEY", "e2e-seq-key")
        .env_remove("OTLP_ENDPOINT")
        .env_remove("LOG_FILE")
        .kill_on_drop(true);
    ship_until_drained(&scratch, cmd, Duration::from_secs(60)).await;

    let c = seq.counters();
    assert_eq!(
        c.rejected_batches.get("401"),
        None,
        "the key from ${{SEQ_API_KEY}} was sent"
    );
    assert_eq!(c.accepted_events, 500);
    seq.with_events(|events| {
        let (arrived, _) = by_exchange(events);
        assert_eq!(arrived.len(), 500);
    });
}

async fn run_failing(args: &[&str], scratch: &Scratch) -> (i32, String) {
    let out = tokio::process::Command::new(SHIPPER)
        .args(args)
        .arg("--file")
        .arg(scratch.path("traffic.log"))
        .arg("--checkpoint")
        .arg(scratch.path("checkpoint.json"))
        .env("SEQ_HOST", "127.0.0.1")
        .env("SEQ_PORT", "5341")
        .env_remove("OTLP_ENDPOINT")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("a bad config fails at once")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unknown_key_in_the_config_exits_64_naming_it() {
    let scratch = Scratch::new("e2e-fb-bad");
    let conf = scratch.path("bad.conf");
    let text = std::fs::read_to_string(repo_conf())
        .unwrap()
        .replace("logs_uri", "frobnicate_level  9\n    logs_uri");
    std::fs::write(&conf, text).unwrap();
    let (code, stderr) = run_failing(&["-c", conf.to_str().unwrap()], &scratch).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("frobnicate_level"),
        "the message names the key: {stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one clear message: {stderr}"
    );
}

#[tokio::test]
async fn a_missing_config_file_exits_64_naming_it() {
    let scratch = Scratch::new("e2e-fb-missing");
    let missing = scratch.path("nowhere.conf");
    let (code, stderr) = run_failing(&["-c", missing.to_str().unwrap()], &scratch).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("nowhere.conf"), "{stderr}");
}
