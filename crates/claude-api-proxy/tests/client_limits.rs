//! The proxy faces a network: one client cannot exhaust it. A slow client is closed within the
//! header-read timeout, an idle keep-alive connection within the keep-alive timeout (and a
//! request being served by neither), connections over the cap are refused while those open are
//! served, the open-files limit is raised at start, and memory held by an attack is given back
//! after it.

mod common;

use common::{Proxy, client, custom_upstream, fake_upstream, message_request};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The proxy's resident memory in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Lets this test process open as many sockets as its hard limit allows.
fn raise_own_nofile() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

#[tokio::test]
async fn slowloris_is_closed_within_the_header_read_timeout() {
    let proxy =
        Proxy::start_with(&fake_upstream().await, &["--header-read-timeout", "2"], &[]).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One header byte every 200 ms, never the blank line that ends the head.
    let closed_after = loop {
        if stream.write_all(b"X").await.is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            Ok(Ok(_)) => {
                // hyper may answer 408 before closing; the close follows.
                continue;
            }
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a slowloris client was still connected after 10 s"
        );
    };
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(5),
        "closed after {closed_after:?}, expected about the 2 s timeout"
    );
}

/// A small request fake-anthropic answers 200, keep-alive.
const COUNT_TOKENS: &[u8] = b"POST /v1/messages/count_tokens HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"messages\":[]}";

/// Reads one response (Content-Length or chunked) from `stream`; returns its head.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..i]).to_ascii_lowercase();
            let body = &got[i + 4..];
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap());
            let complete = match length {
                Some(n) => body.len() >= n,
                None => body.ends_with(b"0\r\n\r\n"),
            };
            if complete {
                return head;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(n > 0, "closed before a whole response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// How long after `since` the proxy closes `stream` (reading and discarding what it sends).
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the connection was still open after 20 s")
}

/// A proxy with these timeouts (seconds) and a connection to it that has had one exchange.
async fn after_one_exchange(header_read: &str, keep_alive: &str) -> (Proxy, TcpStream) {
    let proxy = Proxy::start_with(
        &fake_upstream().await,
        &[
            "--header-read-timeout",
            header_read,
            "--keep-alive-timeout",
            keep_alive,
        ],
        &[],
    )
    .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(COUNT_TOKENS).await.unwrap();
    let head = read_response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    (proxy, stream)
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    // A keep-alive timeout longer than the header-read timeout: the idle wait is not cut at
    // the header-read timeout.
    let (_proxy, mut stream) = after_one_exchange("1", "3").await;
    let idle = closed_after(&mut stream, Instant::now()).await;
    assert!(
        idle >= Duration::from_millis(2800) && idle < Duration::from_secs(6),
        "closed after {idle:?} idle, expected about the 3 s keep-alive timeout"
    );
}

#[tokio::test]
async fn a_keep_alive_timeout_shorter_than_the_header_read_timeout_closes_idle_connections_first() {
    let (_proxy, mut stream) = after_one_exchange("10", "1").await;
    let idle = closed_after(&mut stream, Instant::now()).await;
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_secs(4),
        "closed after {idle:?} idle, expected about the 1 s keep-alive timeout"
    );
}

#[tokio::test]
async fn a_slow_head_on_a_kept_alive_connection_is_cut_at_the_header_read_timeout() {
    let (_proxy, mut stream) = after_one_exchange("2", "60").await;
    // Idle for a while (within the keep-alive timeout), then a head one byte every 200 ms.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    let head = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut bytes = head.iter().chain(std::iter::repeat(&b'a'));
    loop {
        if stream.write_all(&[*bytes.next().unwrap()]).await.is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a slow head was still being accepted after 10 s"
        );
    }
    let closed = started.elapsed();
    assert!(
        closed >= Duration::from_millis(1800) && closed < Duration::from_secs(5),
        "a slow head was cut {closed:?} after its first byte, expected about the 2 s timeout"
    );
}

#[tokio::test]
async fn a_streaming_response_longer_than_both_timeouts_is_never_cut() {
    use axum::body::Body;
    use axum::response::Response;
    use bytes::Bytes;
    // Three events 1.5 s apart: the response outlasts both timeouts, and so does each silence.
    let router = axum::Router::new().fallback(|| async {
        let events = futures_util::stream::unfold(0u32, |i| async move {
            if i == 3 {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            let frame = format!("event: ping\ndata: {{\"type\":\"ping\",\"n\":{i}}}\n\n");
            Some((Ok::<_, std::io::Error>(Bytes::from(frame)), i + 1))
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(events))
            .unwrap()
    });
    let proxy = Proxy::start_with(
        &custom_upstream(router).await,
        &["--header-read-timeout", "1", "--keep-alive-timeout", "1"],
        &[],
    )
    .await;
    let started = Instant::now();
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("a long stream", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("the whole stream");
    assert!(started.elapsed() >= Duration::from_secs(3));
    for n in 0..3 {
        assert!(
            body.contains(&format!("\"n\":{n}")),
            "event {n} missing: {body}"
        );
    }
    let record = proxy.only_record().await;
    assert_eq!(record["outcome"], "complete");
}

#[tokio::test]
async fn oversized_request_heads_get_431() {
    let proxy = Proxy::start_with(
        &fake_upstream().await,
        &["--max-header-bytes", "16KiB"],
        &[],
    )
    .await;
    let big = "a".repeat(20 * 1024);
    let response = client()
        .get(proxy.url("/v1/models"))
        .header("x-big", big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    let ok = client()
        .post(proxy.url("/v1/messages"))
        .header("x-small", "a".repeat(8 * 1024))
        .json(&message_request("small head", false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn the_connection_cap_holds_and_open_connections_are_served_during_the_attack() {
    raise_own_nofile();
    let cap = 50;
    let proxy = Proxy::start_with(
        &fake_upstream().await,
        &["--max-connections", &cap.to_string()],
        &[],
    )
    .await;
    // A client with a keep-alive connection open before the attack.
    let client = client();
    let first = client
        .post(proxy.url("/v1/messages"))
        .json(&message_request("before", false))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    first.bytes().await.unwrap();

    // The attack: three times the cap of connections, each sending a partial head.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..3 * cap {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    let started = Instant::now();
    for s in &mut held {
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await;
        if let Ok(Ok(n)) = read
            && String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 503")
        {
            refused += 1;
        }
    }
    // The cap minus the one connection of the real client.
    assert_eq!(
        refused,
        3 * cap - (cap - 1),
        "connections over the cap refused"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // The open connection still serves during the attack.
    let during = client
        .post(proxy.url("/v1/messages"))
        .json(&message_request("during", false))
        .send()
        .await
        .unwrap();
    assert_eq!(during.status(), 200);
    let pid = proxy.child.id().unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert!(
        fds < cap + 30,
        "{fds} descriptors open with a cap of {cap} connections"
    );
    drop(held);
}

#[tokio::test]
async fn the_open_files_limit_is_raised_to_the_hard_limit_at_start() {
    let upstream = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_claude-api-proxy"))
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
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    common::read_listen_addr(&mut out).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id().unwrap())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit raised to the hard: {line}"
    );
    assert_ne!(numbers[0], "256", "{line}");
}

#[tokio::test]
async fn memory_returns_near_idle_after_an_attack_of_partial_heads() {
    raise_own_nofile();
    let clients = 1500;
    let proxy =
        Proxy::start_with(&fake_upstream().await, &["--max-connections", "2000"], &[]).await;
    let pid = proxy.child.id().unwrap();
    client().get(proxy.url("/v1/models")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid);

    // Each client holds a partial head just under the 64 KiB cap.
    let line = format!("x-pad: {}\r\n", "a".repeat(1000));
    let mut held = Vec::new();
    for _ in 0..clients {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    for _ in 0..60 {
        for s in &mut held {
            s.write_all(line.as_bytes()).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = rss_kib(pid);
    drop(held);

    // The trim runs within a few seconds of the connections closing.
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = rss_kib(pid);
        if now < idle + 20 * 1024 || Instant::now() > deadline {
            break now;
        }
    };
    eprintln!("RSS idle {idle} KiB, during {during} KiB, after {after} KiB");
    assert!(
        during > idle + 40 * 1024,
        "the attack held memory ({during} KiB against {idle} KiB idle)"
    );
    assert!(
        after < idle + 20 * 1024,
        "RSS after the attack {after} KiB, idle {idle} KiB, during {during} KiB"
    );
    // And the proxy still serves.
    let ok = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("after", false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_partial_head_does_not_hold_the_drain_past_the_header_read_timeout() {
    let mut proxy = Proxy::start_with(
        &fake_upstream().await,
        &["--header-read-timeout", "2", "--drain-timeout", "30"],
        &[],
    )
    .await;
    // One exchange first: the proxy is serving (and handling SIGTERM) by then.
    let ok = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("before", false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let status = proxy.terminate().await;
    assert!(status.success());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "SIGTERM to exit took {took:?} with a partial head open (drain timeout 30 s)"
    );
}
