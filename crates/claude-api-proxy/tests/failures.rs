//! How exchanges end when something goes wrong — the client leaves, the upstream dies or stays
//! silent, the proxy is told to stop — and what the client and the log see then.

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use common::{Proxy, client, custom_upstream, fake_upstream, message_request, read_listen_addr};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// Fires when dropped: the upstream's response body stream was cancelled.
struct DropSignal(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test]
async fn client_abort_mid_stream_cancels_the_upstream_and_keeps_what_arrived() {
    let (cancelled_tx, cancelled_rx) = tokio::sync::oneshot::channel();
    let cancelled_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(cancelled_tx)));
    let router = axum::Router::new().fallback(move |_req: Request| {
        let signal = DropSignal(cancelled_tx.lock().unwrap().take());
        async move {
            // An endless slow stream; it only ends when the proxy drops the connection.
            let events = futures_util::stream::unfold((0u64, signal), |(i, signal)| async move {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let frame = if i == 0 {
                    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"content\":[]}}\n\n".to_string()
                } else {
                    format!("event: ping\ndata: {{\"type\":\"ping\",\"n\":{i}}}\n\n")
                };
                Some((Ok::<_, std::io::Error>(Bytes::from(frame)), (i + 1, signal)))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(events))
                .unwrap()
        }
    });
    let proxy = Proxy::start(&custom_upstream(router).await).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("leave early", true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"event: message_start"));
    drop(body); // the client goes away mid-stream

    tokio::time::timeout(Duration::from_secs(5), cancelled_rx)
        .await
        .expect("the upstream saw the cancel within 5 s")
        .unwrap();
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "client_aborted");
    assert!(r["error"].as_str().unwrap().contains("client"));
    let events = r["response"]["sse"]["events"].as_array().unwrap();
    assert_eq!(events[0]["event"], "message_start");
    assert_eq!(r["response"]["status"], 200);
    assert!(proxy.console(1).await[0].contains("client_aborted"));
}

#[tokio::test]
async fn upstream_cut_mid_stream_aborts_the_client_response_and_is_recorded() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("[[cut]]", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    let mut ended_with_error = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                ended_with_error = true;
                break;
            }
        }
    }
    assert!(
        ended_with_error,
        "a cut upstream must never look like a clean end: got {}",
        String::from_utf8_lossy(&received)
    );
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "upstream_aborted");
    assert!(r["error"].is_string());
    let message = &r["response"]["sse"]["message"];
    assert_eq!(message["content"][0]["text"], "Hello from f");
    assert!(message["stop_reason"].is_null());
}

#[tokio::test]
async fn upstream_down_gives_a_502_in_the_anthropic_error_shape_and_a_record() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let proxy = Proxy::start(&format!("http://{addr}")).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("anyone there?", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream")
    );
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "upstream_unreachable");
    assert!(r.get("response").is_none());
    assert_eq!(
        r["request"]["body"]["json"]["messages"][0]["content"],
        "anyone there?"
    );
    assert!(proxy.console(1).await[0].contains("upstream_unreachable"));
}

#[tokio::test]
async fn upstream_silent_past_the_idle_timeout_ends_the_exchange() {
    let proxy = Proxy::start_with(&fake_upstream().await, &["--idle-timeout", "1"], &[]).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("[[slow:3000]]", true))
        .send()
        .await
        .unwrap();
    let result = response.text().await;
    assert!(result.is_err(), "a timed out stream must not end cleanly");
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "upstream_timeout");
    assert_eq!(r["response"]["sse"]["events"][0]["event"], "message_start");
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_stream_and_writes_its_record() {
    let mut proxy = Proxy::start(&fake_upstream().await).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("[[slow:150]] drain me", true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut received = body.next().await.unwrap().unwrap().to_vec();
    let exit = tokio::spawn(async move {
        let status = proxy.terminate().await;
        (status, proxy)
    });
    while let Some(chunk) = body.next().await {
        received.extend_from_slice(&chunk.expect("the stream finishes during the drain"));
    }
    assert!(received.ends_with(b"data: {\"type\":\"message_stop\"}\n\n"));
    let (status, proxy) = exit.await.unwrap();
    assert_eq!(status.code(), Some(0));
    let records = common::validate_log(&proxy.log);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["outcome"], "complete");
    assert_eq!(records[0]["stop_reason"], "end_turn");
}

#[tokio::test]
async fn sigterm_right_after_start_stops_the_proxy_cleanly() {
    // A supervisor may stop the proxy as soon as it says it listens: the SIGTERM handler must
    // be in place by then, or the default action kills it (exit by signal, not success).
    let upstream = fake_upstream().await;
    for _ in 0..20 {
        let mut proxy = Proxy::start(&upstream).await;
        let status = proxy.terminate().await;
        assert!(status.success(), "{status:?}: {}", proxy.stderr());
    }
}

#[tokio::test]
async fn drain_deadline_cuts_a_stream_that_outlives_it_and_still_writes_its_record() {
    let mut proxy = Proxy::start_with(&fake_upstream().await, &["--drain-timeout", "1"], &[]).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("[[slow:2000]] too slow", true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    let started = std::time::Instant::now();
    let status = proxy.terminate().await;
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(10));
    let records = common::validate_log(&proxy.log);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["outcome"], "client_aborted");
    assert!(records[0]["error"].as_str().unwrap().contains("shut down"));
}

#[tokio::test]
async fn client_abort_before_the_response_head_cancels_the_upstream() {
    let (cancelled_tx, cancelled_rx) = tokio::sync::oneshot::channel();
    let cancelled_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(cancelled_tx)));
    let router = axum::Router::new().fallback(move |_req: Request| {
        let signal = DropSignal(cancelled_tx.lock().unwrap().take());
        async move {
            // A long silence before the head (a model thinking); dropped if the proxy cancels.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(signal);
            Response::new(Body::empty())
        }
    });
    let proxy = Proxy::start(&custom_upstream(router).await).await;
    let result = client()
        .post(proxy.url("/v1/messages"))
        .timeout(Duration::from_millis(300))
        .json(&message_request("never mind", true))
        .send()
        .await;
    assert!(result.is_err(), "the client gave up");
    tokio::time::timeout(Duration::from_secs(5), cancelled_rx)
        .await
        .expect("the upstream saw the cancel within 5 s")
        .unwrap();
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "client_aborted");
    assert!(r.get("response").is_none());
    assert_eq!(
        r["request"]["body"]["json"]["messages"][0]["content"],
        "never mind"
    );
}

#[tokio::test]
async fn a_log_write_failure_never_fails_the_request_and_is_reported() {
    // /dev/full opens fine and fails every write with ENOSPC.
    let upstream = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut proxy = tokio::process::Command::new(env!("CARGO_BIN_EXE_claude-api-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-file",
            "/dev/full",
            "--upstream",
        ])
        .arg(&upstream)
        .arg("--metrics-listen")
        .arg(metrics.to_string())
        .current_dir(dir.path())
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(proxy.stdout.take().unwrap());
    let addr = read_listen_addr(&mut stdout).await;
    let response = client()
        .post(format!("http://{addr}/v1/messages"))
        .json(&message_request("log this if you can", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(
        reply["content"][0]["text"],
        "Hello from fake-anthropic. You said: log this if you can"
    );
    // The loss is counted where an operator's monitoring can see it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = client()
            .get(format!("http://{metrics}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("\nclaude_proxy_records_lost_total 1\n") {
            assert!(
                text.contains("\nclaude_proxy_records_written_total 0\n"),
                "{text}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = proxy.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), proxy.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot append to the traffic log") && stderr.contains("lost=1"),
        "the failure is reported and counted: {stderr}"
    );
}

#[tokio::test]
async fn an_unread_stdout_never_holds_up_traffic_or_records() {
    let router = axum::Router::new().fallback(|_req: Request| async {
        Response::builder()
            .header("content-type", "application/json")
            .body(Body::from("{\"input_tokens\":1}"))
            .unwrap()
    });
    let upstream = custom_upstream(router).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("traffic.log");
    let mut proxy = tokio::process::Command::new(env!("CARGO_BIN_EXE_claude-api-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--log-file",
        ])
        .arg(&log)
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read the address, then never read stdout again: the pipe (64 KiB) fills up.
    let mut reader = tokio::io::BufReader::new(proxy.stdout.take().unwrap());
    let addr = read_listen_addr(&mut reader).await;
    let client = client();
    let exchanges = 1500; // ~100 bytes of console line each: well past a pipe's 64 KiB
    for _ in 0..exchanges {
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            client
                .post(format!(
                    "http://{addr}/v1/messages/count_tokens?a-long-query-to-fill-the-pipe-faster=1"
                ))
                .body("{}")
                .send(),
        )
        .await
        .expect("traffic is never held up by stdout")
        .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let records = common::validate_log(&log).len();
        if records == exchanges {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{records} of {exchanges} records"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(reader);
}

#[tokio::test]
async fn sighup_reopens_the_log_after_an_external_rename_and_never_stops_the_proxy() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let send = |text: &'static str| {
        client()
            .post(proxy.url("/v1/messages"))
            .json(&message_request(text, false))
            .send()
    };
    assert_eq!(send("before").await.unwrap().status(), 200);
    proxy.records(1).await;
    // logrotate's `create` mode: rename, new empty file, `postrotate kill -HUP`.
    let rotated = proxy.dir.path().join("traffic.log.1");
    std::fs::rename(&proxy.log, &rotated).unwrap();
    std::fs::write(&proxy.log, b"").unwrap();
    let pid = proxy.child.id().unwrap().to_string();
    for _ in 0..2 {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proxy
        .stderr()
        .matches("reopening the traffic log (SIGHUP)")
        .count()
        < 1
    {
        assert!(std::time::Instant::now() < deadline, "{}", proxy.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(send("after").await.unwrap().status(), 200);
    let records = proxy.records(1).await;
    let last = records.last().unwrap();
    assert_eq!(
        last["request"]["body"]["json"]["messages"][0]["content"], "after",
        "new records go to the reopened path"
    );
    let old = common::validate_log(&rotated);
    assert_eq!(
        old[0]["request"]["body"]["json"]["messages"][0]["content"],
        "before"
    );
}
