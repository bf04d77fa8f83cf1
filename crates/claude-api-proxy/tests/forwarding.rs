//! What passes through the proxy, and what it logs: each test sends one kind of exchange through
//! the real binary to fake-anthropic (or a purpose-built upstream) and checks both sides.

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use common::{Proxy, client, custom_upstream, fake_upstream, message_request};
use futures_util::StreamExt;
use serde_json::Value;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn non_streaming_json_passes_through_and_is_logged_with_usage_and_session() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let body = message_request("hello proxy", false);
    let response = client()
        .post(proxy.url("/v1/messages?beta=true"))
        .header("x-api-key", "sk-ant-test-key")
        .header("anthropic-version", "2023-06-01")
        .header(
            "x-claude-code-session-id",
            "5e551011-aaaa-bbbb-cccc-000000000001",
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        response
            .headers()
            .contains_key("anthropic-ratelimit-requests-limit")
    );
    let reply: Value = response.json().await.unwrap();
    assert_eq!(
        reply["content"][0]["text"],
        "Hello from fake-anthropic. You said: hello proxy"
    );

    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "complete");
    assert_eq!(r["request"]["method"], "POST");
    assert_eq!(r["request"]["path"], "/v1/messages");
    assert_eq!(r["request"]["query"], "beta=true");
    assert_eq!(r["request"]["body"]["json"], body);
    assert_eq!(r["request"]["headers"]["anthropic-version"], "2023-06-01");
    assert_eq!(r["response"]["status"], 200);
    assert_eq!(r["response"]["headers"]["request-id"], request_id);
    assert_eq!(r["response"]["body"]["json"], reply);
    assert_eq!(r["model"], "claude-opus-4-1");
    assert_eq!(r["stop_reason"], "end_turn");
    assert_eq!(r["usage"]["output_tokens"], reply["usage"]["output_tokens"]);
    assert_eq!(r["session_id"], "5e551011-aaaa-bbbb-cccc-000000000001");
    assert_eq!(r["stream"], false);
    assert!(r["ttfb_ms"].as_f64().unwrap() <= r["duration_ms"].as_f64().unwrap());
    let line = &proxy.console(1).await[0];
    assert!(
        line.starts_with("POST /v1/messages?beta=true 200 claude-opus-4-1")
            && line.contains("session=5e551011"),
        "human line on stdout: {line}"
    );
}

/// Sends a streaming request; returns the raw SSE text the client received.
async fn stream_through(proxy: &Proxy, text: &str) -> String {
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request(text, true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn streaming_text_reaches_the_client_and_the_message_is_reassembled() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let sse = stream_through(&proxy, "stream me").await;
    assert!(sse.starts_with("event: message_start\ndata: "), "{sse}");
    assert!(sse.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));

    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "complete");
    assert_eq!(r["stream"], true);
    let events = r["response"]["sse"]["events"].as_array().unwrap();
    assert_eq!(events.len(), sse.matches("event: ").count());
    assert_eq!(events[0]["event"], "message_start");
    assert_eq!(events[0]["data"]["type"], "message_start");
    let message = &r["response"]["sse"]["message"];
    assert_eq!(
        message["content"][0]["text"],
        "Hello from fake-anthropic. You said: stream me"
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(r["stop_reason"], "end_turn");
    assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 1);
    assert!(r["response"]["body"].get("text").is_none());
    assert_eq!(r["response"]["body"]["size"], sse.len());
}

#[tokio::test]
async fn streaming_tool_use_input_is_parsed_from_input_json_deltas() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let sse = stream_through(&proxy, "please [[tool:Bash:ls -la /tmp]]").await;
    assert!(sse.contains("input_json_delta"));
    let r = proxy.only_record().await;
    let message = &r["response"]["sse"]["message"];
    let tool = &message["content"][1];
    assert_eq!(tool["type"], "tool_use");
    assert_eq!(tool["name"], "Bash");
    assert_eq!(
        tool["input"],
        serde_json::json!({"command": "ls -la /tmp", "description": "run it"})
    );
    assert_eq!(r["stop_reason"], "tool_use");
}

#[tokio::test]
async fn streaming_thinking_block_keeps_thinking_and_signature() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    stream_through(&proxy, "[[thinking]] think first").await;
    let r = proxy.only_record().await;
    let block = &r["response"]["sse"]["message"]["content"][0];
    assert_eq!(block["type"], "thinking");
    assert!(
        block["thinking"]
            .as_str()
            .unwrap()
            .starts_with("Let me think")
    );
    assert!(!block["signature"].as_str().unwrap().is_empty());
    assert_eq!(
        r["response"]["sse"]["message"]["content"][1]["type"],
        "text"
    );
}

#[tokio::test]
async fn error_statuses_pass_through_with_their_headers_and_are_logged() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    for (status, kind) in [
        (400, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let response = client()
            .post(proxy.url("/v1/messages"))
            .json(&message_request(&format!("[[error:{status}]]"), true))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        if status == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], kind);
    }
    let records = proxy.records(4).await;
    let statuses: Vec<u64> = records
        .iter()
        .map(|r| r["response"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [400, 429, 500, 529]);
    for r in &records {
        assert_eq!(r["outcome"], "complete");
        assert_eq!(r["response"]["body"]["json"]["type"], "error");
        assert!(r["response"]["headers"]["request-id"].is_string());
    }
    assert_eq!(records[1]["response"]["headers"]["retry-after"], "1");
    assert_eq!(records[1]["response"]["headers"]["x-should-retry"], "true");
}

#[tokio::test]
async fn sse_error_event_is_passed_through_and_recorded() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let sse = stream_through(&proxy, "[[sse-error]]").await;
    assert!(sse.contains("event: error\n"));
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "complete");
    assert!(r["error"].as_str().unwrap().contains("overloaded_error"));
    let events = r["response"]["sse"]["events"].as_array().unwrap();
    assert_eq!(events.last().unwrap()["event"], "error");
}

#[tokio::test]
async fn gzip_response_reaches_the_client_compressed_and_is_logged_decoded() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .header("accept-encoding", "gzip, deflate, br, zstd")
        .json(&message_request("[[gzip]] squeeze", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    assert_eq!(
        &compressed[..2],
        &[0x1f, 0x8b],
        "the client gets the gzip bytes"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    let reply: Value = serde_json::from_str(&text).unwrap();

    let r = proxy.only_record().await;
    let body = &r["response"]["body"];
    assert_eq!(body["decoded_from"], "gzip");
    assert_eq!(body["size"], compressed.len());
    assert_eq!(body["json"], reply);
    assert_eq!(r["response"]["headers"]["content-encoding"], "gzip");
    assert_eq!(r["usage"]["input_tokens"], reply["usage"]["input_tokens"]);
}

/// POSTs `body` (JSON bytes, sent as they are) to /v1/messages through `proxy`.
async fn post_bytes(proxy: &Proxy, body: impl Into<reqwest::Body>) -> reqwest::Response {
    client()
        .post(proxy.url("/v1/messages"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ten_megabyte_request_body_is_forwarded_whole_and_logged_whole() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let filler = "x".repeat(10 * 1024 * 1024);
    let mut body = message_request("big request", false);
    body["system"] = Value::String(filler);
    let bytes = serde_json::to_vec(&body).unwrap();
    let response = post_bytes(&proxy, bytes.clone()).await;
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    // fake-anthropic counts input tokens as body bytes / 4: it saw every byte.
    assert_eq!(reply["usage"]["input_tokens"], bytes.len() / 4);
    let r = proxy.only_record().await;
    assert_eq!(r["request"]["body"]["size"], bytes.len());
    assert!(r["request"]["body"].get("truncated").is_none());
    assert!(
        r["request"]["body"]["json"] == body,
        "the logged request body is the one sent"
    );
}

/// Over the API's 32 MB limit the upstream refuses with 413 `request_too_large`: the client gets
/// that answer as it is, and the exchange is logged with it.
#[tokio::test]
async fn a_body_over_the_apis_32_mb_limit_gets_its_413_and_is_logged() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let mut body = message_request("too big", false);
    body["system"] = Value::String("x".repeat(fake_anthropic::MAX_REQUEST_BYTES));
    let bytes = serde_json::to_vec(&body).unwrap();
    let response = post_bytes(&proxy, bytes.clone()).await;
    assert_eq!(response.status(), 413);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["error"]["type"], "request_too_large");
    let r = proxy.only_record().await;
    assert_eq!(r["response"]["status"], 413);
    assert_eq!(r["request"]["body"]["size"], bytes.len());
}

#[tokio::test]
async fn body_over_the_capture_cap_is_forwarded_whole_and_logged_as_truncated() {
    let proxy = Proxy::start_with(&fake_upstream().await, &["--capture-cap", "1KiB"], &[]).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("[[big:100000]]", false))
        .send()
        .await
        .unwrap();
    let reply = response.bytes().await.unwrap();
    assert!(reply.len() > 100_000);
    let r = proxy.only_record().await;
    let body = &r["response"]["body"];
    assert_eq!(body["truncated"], true);
    assert_eq!(body["size"], reply.len());
    // The cap counts the body as written: each `"` of the JSON prefix takes two bytes.
    assert_eq!(body["truncated_by"], "capture_cap");
    let written = serde_json::to_string(&body["text"]).unwrap().len() - 2;
    assert!(
        written <= 1024 && written > 1018,
        "{written} bytes as written"
    );
}

#[tokio::test]
async fn fifty_concurrent_streams_all_complete_and_are_all_logged() {
    let proxy = Proxy::start(&fake_upstream().await).await;
    let client = client();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = client.clone();
            let url = proxy.url("/v1/messages");
            tokio::spawn(async move {
                let text = client
                    .post(url)
                    .json(&message_request(&format!("stream {i} [[slow:5]]"), true))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert!(text.ends_with("data: {\"type\":\"message_stop\"}\n\n"));
                assert!(text.contains(&format!("stream {i}")) || text.contains("You said"));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let records = proxy.records(50).await;
    assert_eq!(records.len(), 50);
    let mut said: Vec<String> = records
        .iter()
        .map(|r| {
            assert_eq!(r["outcome"], "complete");
            r["request"]["body"]["json"]["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    said.sort();
    said.dedup();
    assert_eq!(said.len(), 50, "each stream has its own record");
}

#[tokio::test]
async fn first_sse_event_reaches_the_client_before_the_upstream_sends_the_last() {
    // The upstream sends one event, then waits until the test says the client has it.
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let router = axum::Router::new().fallback(move |_req: Request| {
        let release = release_rx.lock().unwrap().take();
        async move {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(
                    b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\"}}\n\n",
                ))
            });
            let last = futures_util::stream::once(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
                Ok(Bytes::from_static(
                    b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                ))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(first.chain(last)))
                .unwrap()
        }
    });
    let proxy = Proxy::start(&custom_upstream(router).await).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&message_request("live", true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the first event arrived while the upstream still held the last one")
        .unwrap()
        .unwrap();
    assert!(first.starts_with(b"event: message_start"));
    // A pause the record must show between the two events' arrival times.
    tokio::time::sleep(Duration::from_millis(300)).await;
    release_tx.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(rest.ends_with(b"data: {\"type\":\"message_stop\"}\n\n"));
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "complete");
    let events = r["response"]["sse"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let (t0, t1) = (
        events[0]["t_ms"].as_f64().unwrap(),
        events[1]["t_ms"].as_f64().unwrap(),
    );
    assert!(t1 - t0 >= 300.0, "arrival times {t0} and {t1}");
    assert!(t1 <= r["duration_ms"].as_f64().unwrap());
}

#[tokio::test]
async fn request_framing_and_end_to_end_headers_reach_the_upstream() {
    let seen: Arc<Mutex<Option<http::HeaderMap>>> = Arc::default();
    let seen_in = seen.clone();
    let router = axum::Router::new().fallback(move |req: Request| {
        let seen = seen_in.clone();
        async move {
            *seen.lock().unwrap() = Some(req.headers().clone());
            let uri = req.uri().to_string();
            Response::builder()
                .header("content-type", "application/json")
                .header("x-should-retry", "false")
                .body(Body::from(serde_json::json!({"uri": uri}).to_string()))
                .unwrap()
        }
    });
    let upstream = custom_upstream(router).await;
    let proxy = Proxy::start(&format!("{upstream}/base/")).await;
    let response = client()
        .post(proxy.url("/v1/messages/count_tokens?beta=true"))
        .header("authorization", "Bearer sk-ant-oat-secret")
        .header("anthropic-beta", "a,b")
        .header("x-stainless-lang", "js")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .body(r#"{"model":"m","messages":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-should-retry"], "false");
    let reply: Value = response.json().await.unwrap();
    assert_eq!(
        reply["uri"], "/base/v1/messages/count_tokens?beta=true",
        "the base path is kept, the path and query appended"
    );
    let headers = seen.lock().unwrap().take().unwrap();
    assert_eq!(headers["authorization"], "Bearer sk-ant-oat-secret");
    assert_eq!(headers["anthropic-beta"], "a,b");
    assert_eq!(headers["x-stainless-lang"], "js");
    assert_eq!(
        headers["content-length"], "27",
        "Content-Length framing kept"
    );
    assert!(!headers.contains_key("transfer-encoding"));
    assert!(
        !headers.contains_key("x-hop"),
        "headers named by Connection are hop-by-hop"
    );
    let r = proxy.only_record().await;
    assert_eq!(r["request"]["headers"]["authorization"], "[REDACTED]");
}

#[tokio::test]
async fn path_and_query_reach_the_upstream_byte_for_byte() {
    let router = axum::Router::new().fallback(|req: Request| async move {
        let target = req.uri().path_and_query().unwrap().to_string();
        Response::new(Body::from(target))
    });
    let upstream = custom_upstream(router).await;
    let proxy = Proxy::start(&format!("{upstream}/base")).await;
    // Characters a URL library would re-encode (`{`, `}` and `"` percent-encoded, `\` turned
    // into `/`), ones it leaves, and an escape that must stay escaped: the upstream gets
    // exactly what the client sent.
    let target = r#"/v1/files/a{b}|c^d"e\f%2Fg?q={x}|^\&s=%20&t=`u`&v"#;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, format!("/base{target}"));
    let r = proxy.only_record().await;
    assert_eq!(r["request"]["path"], r#"/v1/files/a{b}|c^d"e\f%2Fg"#);
    assert_eq!(r["request"]["query"], r#"q={x}|^\&s=%20&t=`u`&v"#);
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_across_requests() {
    let peers: Arc<Mutex<Vec<std::net::SocketAddr>>> = Arc::default();
    let peers_in = peers.clone();
    let router = axum::Router::new().fallback(
        move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
            std::net::SocketAddr,
        >| {
            let peers = peers_in.clone();
            async move {
                peers.lock().unwrap().push(peer);
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let proxy = Proxy::start(&upstream).await;
    let client = client();
    for _ in 0..5 {
        let response = client
            .post(proxy.url("/v1/messages/count_tokens"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    proxy.records(5).await;
    let peers = peers.lock().unwrap();
    assert_eq!(peers.len(), 5);
    assert!(
        peers.iter().all(|p| *p == peers[0]),
        "one upstream connection for sequential requests: {peers:?}"
    );
}

#[tokio::test]
async fn a_compressed_event_stream_is_logged_decoded_and_reassembled() {
    let sse = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-z\",\"content\":[],\"usage\":{\"input_tokens\":7}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"squeezed\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let compressed = zstd::encode_all(sse.as_bytes(), 3).unwrap();
    let served = compressed.clone();
    let router = axum::Router::new().fallback(move |_req: Request| {
        let served = served.clone();
        async move {
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("content-encoding", "zstd")
                .body(Body::from(served))
                .unwrap()
        }
    });
    let proxy = Proxy::start(&custom_upstream(router).await).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .header("accept-encoding", "zstd")
        .json(&message_request("compress the stream", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "zstd");
    assert_eq!(
        response.bytes().await.unwrap(),
        compressed,
        "bytes untouched"
    );
    let r = proxy.only_record().await;
    assert_eq!(r["response"]["body"]["decoded_from"], "zstd");
    assert_eq!(r["response"]["body"]["size"], compressed.len());
    assert_eq!(r["response"]["sse"]["events"].as_array().unwrap().len(), 6);
    // Decompressed bytes no longer line up with the chunks: no arrival times.
    assert!(r["response"]["sse"]["events"][0].get("t_ms").is_none());
    assert_eq!(
        r["response"]["sse"]["message"]["content"][0]["text"],
        "squeezed"
    );
    assert_eq!(r["model"], "claude-z");
    assert_eq!(r["usage"]["output_tokens"], 3);
}
