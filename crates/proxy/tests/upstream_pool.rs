//! Upstream pool hygiene: a connection whose response ended in an error, or that the upstream
//! closed, is never handed to a later request.

mod common;

use common::{Proxy, client, fake_upstream, message_request};

#[tokio::test]
async fn after_an_upstream_cut_later_requests_get_fresh_connections() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let client = client();
    let mut bad = 0;
    for round in 0..5 {
        let cut = client
            .post(proxy.url("/v1/messages"))
            .json(&message_request("[[cut]]", true))
            .send()
            .await
            .unwrap();
        let _ = cut.bytes().await;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..20 {
            let client = client.clone();
            let url = proxy.url("/v1/messages");
            set.spawn(async move {
                let r = client
                    .post(url)
                    .json(&message_request(&format!("after {round} {i}"), i % 2 == 0))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let _ = r.bytes().await;
                status
            });
        }
        while let Some(status) = set.join_next().await {
            if status.unwrap() != 200 {
                bad += 1;
            }
        }
    }
    assert_eq!(bad, 0, "requests after a cut failed");
}

/// An upstream on raw sockets: a request whose body holds `[[cut]]` gets a stream head and
/// one event, then every connection it has open is closed at once (as an upstream that
/// restarts after a failure would); other requests get a small JSON answer, keep-alive.
async fn closing_upstream() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (close_all, _) = tokio::sync::broadcast::channel::<()>(4);
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let close_all = close_all.clone();
            let mut closed = close_all.subscribe();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: head, then Content-Length bytes.
                    let mut chunk = [0u8; 65536];
                    let (head_end, len) = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            break (i + 4, len);
                        }
                        tokio::select! {
                            n = s.read(&mut chunk) => match n {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            },
                            _ = closed.recv() => return,
                        }
                    };
                    while buf.len() < head_end + len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
                    buf.drain(..head_end + len);
                    if body.contains("[[cut]]") {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n1a\r\nevent: ping\ndata: {}\n\n\r\n")
                            .await;
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        let _ = close_all.send(());
                        return;
                    }
                    let answer = "{\"type\":\"message\",\"content\":[]}";
                    let _ = s
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                                answer.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn after_an_upstream_closed_every_connection_later_requests_still_succeed() {
    let proxy = Proxy::start(&closing_upstream().await).await;
    let client = client();
    let mut bad = Vec::new();
    for round in 0..5 {
        // Fill the proxy's pool with idle upstream connections.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (client, url) = (client.clone(), proxy.url("/v1/messages"));
            set.spawn(async move {
                let r = client
                    .post(url)
                    .json(&message_request(&format!("warm {i}"), false))
                    .send()
                    .await
                    .unwrap();
                let s = r.status();
                let _ = r.bytes().await;
                s
            });
        }
        while let Some(s) = set.join_next().await {
            assert_eq!(s.unwrap(), 200);
        }
        let cut = client
            .post(proxy.url("/v1/messages"))
            .json(&message_request("[[cut]]", true))
            .send()
            .await
            .unwrap();
        let _ = cut.bytes().await;
        for i in 0..20 {
            let r = client
                .post(proxy.url("/v1/messages"))
                .json(&message_request(&format!("after {round} {i}"), false))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            if status != 200 {
                bad.push(format!("{status} {text}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} requests failed after the upstream closed its connections: {bad:?}",
        bad.len()
    );
}

/// An upstream that answers each request keep-alive (no `Connection: close`) and then closes
/// the connection at once: every pooled connection dies just after its response.
async fn one_shot_upstream() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        if buf.len() >= i + 4 + len {
                            break;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let answer = "{\"type\":\"message\",\"content\":[]}";
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                // Closed without saying so: the proxy's pool learns it only from the socket.
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_upstream_closing_each_connection_after_its_response_fails_no_later_request() {
    let proxy = Proxy::start(&one_shot_upstream().await).await;
    let client = client();
    let mut bad = Vec::new();
    for i in 0..300 {
        let r = client
            .post(proxy.url("/v1/messages"))
            .json(&message_request(&format!("n {i}"), false))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if status != 200 {
            bad.push(format!("{status} {text}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of 300 failed: {:?}",
        bad.len(),
        &bad[..bad.len().min(3)]
    );
}
