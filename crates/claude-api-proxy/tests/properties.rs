//! Property tests over arbitrary input (proptest; 256 cases each by default, more with
//! `PROPTEST_CASES`, see docs/development.md): the SSE reassembler, the body decoders, the
//! record builder and the redactor never panic, a redacted JSON body stays JSON, a secret
//! written with any mix of JSON escapes is caught where a JSON reader reads it, and a secret
//! split anywhere across two stream deltas is caught in the events as written and in the
//! rebuilt message.

use bytes::Bytes;
use claude_api_proxy::capture::Capture;
use claude_api_proxy::exchange::{Exchange, ResponseHead};
use claude_api_proxy::redact::Redactor;
use claude_api_proxy::{decode, record, sse};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use proptest::prelude::*;
use std::time::{Duration, SystemTime};
use traffic_record::Outcome;

fn capture(bytes: &[u8], cap: usize) -> Capture {
    let mut c = Capture::new(cap);
    // In a few chunks, as a body arrives.
    for chunk in bytes.chunks(997) {
        c.push(&Bytes::copy_from_slice(chunk));
    }
    c
}

fn exchange(
    request: &[u8],
    response: &[u8],
    content_type: &str,
    encoding: Option<&str>,
) -> Exchange {
    let mut response_headers = HeaderMap::new();
    response_headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    if let Some(e) = encoding {
        response_headers.insert("content-encoding", HeaderValue::from_str(e).unwrap());
    }
    let mut request_headers = HeaderMap::new();
    request_headers.insert("content-type", HeaderValue::from_static("application/json"));
    Exchange {
        started_at: SystemTime::now(),
        ended_at: SystemTime::now(),
        duration: Duration::from_millis(5),
        ttfb: Some(Duration::from_millis(1)),
        outcome: Outcome::Complete,
        error: None,
        method: Method::POST,
        path: "/v1/messages".into(),
        query: Some("beta=true&key=k".into()),
        request_headers,
        request_body: capture(request, 1 << 20),
        response: Some(ResponseHead {
            status: StatusCode::OK,
            headers: response_headers,
        }),
        response_body: capture(response, 1 << 20),
        degraded: None,
    }
}

fn sse_of(deltas: &[String]) -> String {
    let mut out = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    for d in deltas {
        out.push_str(&format!(
            "event: content_block_delta\ndata: {}\n\n",
            serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":d}})
        ));
    }
    out.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    out
}

const SECRETS: &[&str] = &[
    "sk-ant-api03-Zr8kQ2vN5xW1yT7uP3sL9mB4cD6fG0hJ",
    "AKIAZ7QWERTYUIOP2345",
    "ghp_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2",
    "glpat-Zq8Wx7Ec6Rv5Tb4Yn3Um",
    "AIzaSyZq8Wx7Ec6Rv5Tb4Yn3Um2Ik1Ol0PzAqWs",
];

/// Secrets as written, and the part of each no reader of the record may see.
const ESCAPABLE: &[(&str, &str)] = &[
    (
        "sk-ant-api03-Zr8kQ2vN5xW1yT7uP3sL9mB4cD6fG0hJ",
        "Zr8kQ2vN5x",
    ),
    ("sk_live_u8jzPde0IgxLd6GncfBAepfJ", "u8jzPde0Ig"),
    ("dckr_pat_A9a9SkpXz9w3QlY7Zkuvqdt7s8S", "A9a9SkpXz9"),
    ("npm_53X83RZJzzzzgEOzdmenCkhvMdgaKjIg8xNb", "53X83RZJzz"),
    (
        "postgres://admin:Pg-Pa55w0rd-zq8@db.internal/app",
        "Pa55w0rd",
    ),
    (
        "https://deploy:https-Pa55-zq8@git.example.com/r.git",
        "Pa55-zq8",
    ),
];

proptest! {
    #[test]
    fn a_secret_written_with_any_json_escapes_is_caught_where_a_reader_reads_it(
        text in "(\\PC|sk-|\\\\|/|\"|://|@)*",
        (secret, hidden) in prop::sample::select(ESCAPABLE.to_vec()),
        escaped in proptest::collection::vec(any::<bool>(), 64),
        upper in any::<bool>(),
    ) {
        // Each character of the secret as is, `\uXXXX` (either case) or, for `/`, `\/`.
        let spelled: String = secret
            .chars()
            .zip(escaped.iter().cycle())
            .map(|(c, &escape)| match c {
                _ if !escape => c.to_string(),
                '/' if upper => "\\/".to_string(),
                _ if upper => format!("\\u{:04X}", c as u32),
                _ => format!("\\u{:04x}", c as u32),
            })
            .collect();
        let around = serde_json::to_string(&text).unwrap();
        let around = &around[1..around.len() - 1];
        let json = format!(r#"{{"content":"{around} {spelled} {around}","n":1}}"#);
        let out = Redactor::default().json(json);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(&value["n"], 1);
        let read = value["content"].as_str().unwrap();
        prop_assert!(!read.contains(hidden), "{} in {}", hidden, read);
        prop_assert!(read.contains("[REDACTED:"), "{}", read);
    }

    #[test]
    fn the_sse_parser_and_reassembler_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4000)) {
        let events = sse::parse(&body);
        let _ = sse::reassemble(&events);
    }

    #[test]
    fn the_sse_reassembler_never_panics_on_arbitrary_event_data(data in proptest::collection::vec("(\\PC|\\{|\\}|\"type\"|\"index\"|content_block_delta|input_json_delta|text_delta|message_delta|:|,)*", 0..20)) {
        let body: String = data.iter().map(|d| format!("data: {d}\n\n")).collect();
        let _ = sse::reassemble(&sse::parse(body.as_bytes()));
    }

    #[test]
    fn the_decoders_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4000), coding in prop::sample::select(vec!["gzip", "deflate", "br", "zstd", "x-gzip", "identity", "gzip, br", "bogus"])) {
        let _ = decode::decode(&body, coding, 1 << 16);
    }

    #[test]
    fn the_record_builder_never_panics_and_writes_json(
        request in proptest::collection::vec(any::<u8>(), 0..3000),
        response in proptest::collection::vec(any::<u8>(), 0..3000),
        content_type in prop::sample::select(vec!["application/json", "text/event-stream", "text/plain"]),
        encoding in prop::option::of(prop::sample::select(vec!["gzip", "br", "zstd", "deflate"])),
    ) {
        let record = record::build(&exchange(&request, &response, content_type, encoding), record::Limits::cap(1 << 20), &Redactor::default());
        let line = serde_json::to_string(&record).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).unwrap();
    }

    #[test]
    fn a_redacted_json_text_stays_json(text in "(\\PC|sk-ant-api03-|AKIA|PASSWORD=|password=|-----BEGIN RSA PRIVATE KEY-----|\\\\n|\")*", secret in prop::sample::select(SECRETS.to_vec())) {
        let json = serde_json::json!({"content": format!("{text} {secret} {text}"), "n": 1}).to_string();
        let out = Redactor::default().json(json);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(&value["n"], 1);
        prop_assert!(!out.contains(secret));
    }

    #[test]
    fn a_secret_split_anywhere_across_two_deltas_is_caught(
        secret in prop::sample::select(SECRETS.to_vec()),
        at in 1usize..20,
        before in "[a-z ]{0,20}",
        after in "[a-z ]{0,20}",
    ) {
        let at = at.min(secret.len() - 1);
        let deltas = vec![
            format!("{before} {}", &secret[..at]),
            format!("{} {after}", &secret[at..]),
        ];
        let body = sse_of(&deltas);
        let record = record::build(&exchange(b"{}", body.as_bytes(), "text/event-stream", None), record::Limits::cap(1 << 20), &Redactor::default());
        let line = serde_json::to_string(&record).unwrap();
        prop_assert!(!line.contains(secret), "{}", line);
        // Neither half long enough to tell the key is left where it was written.
        let sse = serde_json::to_value(record.response.unwrap().sse.unwrap()).unwrap();
        let events = sse["events"].as_array().unwrap();
        prop_assert!(!events[2]["data"]["delta"]["text"].as_str().unwrap().contains(&secret[..at]) || at < 4);
        let message = sse["message"]["content"][0]["text"].as_str().unwrap();
        prop_assert!(message.contains("[REDACTED:"), "{}", message);
    }
}
