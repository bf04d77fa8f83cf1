//! Secrets wherever they hide: in the query, in headers named like credentials, in request
//! and response bodies (a secret split across two SSE deltas included). None reaches the log,
//! stdout or stderr, nor, once the log is shipped, the Seq stand-in or the shipper's
//! dead-letter file (the shipper's metrics are counters, the proxy has none), while the upstream and the client get every byte unchanged, and
//! `Proxy-Authorization` never goes upstream.

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use common::{Proxy, client, custom_upstream};
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};

/// What the upstream received: query, headers, body.
#[derive(Default, Clone)]
struct Seen {
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

const ANTHROPIC: &str = "sk-ant-api03-Zr8kQ2vN5xW1yT7uP3sL9mB4cD6fG0hJ";
const OPENAI: &str = "sk-proj-Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8L9";
const AWS: &str = "AKIAZ7QWERTYUIOP2345";
const GITHUB: &str = "ghp_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2";
const GITLAB: &str = "glpat-Zq8Wx7Ec6Rv5Tb4Yn3Um";
const SLACK: &str = "xoxb-998877665544-Zq8Wx7Ec6Rv5Tb4Y";
const GOOGLE: &str = "AIzaSyZq8Wx7Ec6Rv5Tb4Yn3Um2Ik1Ol0PzAqWs";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ6cTh3eDdlYzYifQ.Zq8Wx7Ec6Rv5Tb4Yn3Um2Ik1Ol0P";
const PEM_BODY: &str = "MIIEowIBAAKCAQEAzq8Wx7Ec6Rv5Tb4Yn3Um2Ik1Ol0PzAqWsXdCfVgBhNjMk";
const DOTENV_PASSWORD: &str = "correct-horse-battery-zq8";
const DOTENV_SECRET: &str = "s3cr3t-value-zq8wx7";
/// The halves of a key the upstream streams in two deltas.
const SPLIT_A: &str = "sk-ant-api03-Hq7Wm2";
const SPLIT_B: &str = "Xp4Kd9Ls3Vb8Nc1Zt6Ry";

fn sse_response() -> String {
    let delta = |text: &str| {
        format!(
            "event: content_block_delta\ndata: {}\n\n",
            serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":text}})
        )
    };
    [
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-opus-4-1\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n".to_string(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string(),
        delta(&format!("Your key is {SPLIT_A}")),
        delta(&format!("{SPLIT_B}, keep it safe.")),
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".to_string(),
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n".to_string(),
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_string(),
    ]
    .concat()
}

#[tokio::test]
async fn secrets_in_query_headers_and_bodies_are_redacted_but_forwarded_unchanged() {
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let record = seen.clone();
    let router = axum::Router::new().fallback(move |req: Request| {
        let record = record.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes().to_vec();
            record.lock().unwrap().push(Seen {
                query: parts.uri.query().map(str::to_string),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
                    .collect(),
                body,
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("x-auth-token", "resp-header-secret-zq8")
                .header("anthropic-ratelimit-tokens-remaining", "12345")
                .body(Body::from(sse_response()))
                .unwrap()
        }
    });
    let proxy = Proxy::start_with(
        &custom_upstream(router).await,
        &[],
        &[("RUST_LOG", "debug")],
    )
    .await;

    let dotenv = format!(
        "DB_PASSWORD={DOTENV_PASSWORD}\nexport APP_SECRET=\"{DOTENV_SECRET}\"\nAWS_ACCESS_KEY_ID={AWS}\nPORT=8080\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n"
    );
    let body = serde_json::json!({
        "model": "claude-opus-4-1",
        "max_tokens": 1024,
        "stream": true,
        "messages": [
            {"role": "user", "content": "read my config"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": ".env"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": dotenv}]},
            {"role": "user", "content": format!("keys: {ANTHROPIC} {OPENAI} {GITHUB} {GITLAB} {SLACK} {GOOGLE} {JWT}")},
        ],
    })
    .to_string();
    let query = "beta=true&api_key=query-secret-one-zq8&key=query-secret-two-zq8&access_token=query-secret-three-zq8";
    let header_secrets = [
        ("x-api-key", "hdr-secret-x-api-key-zq8"),
        ("anthropic-api-key", "hdr-secret-anthropic-api-key-zq8"),
        ("x-anthropic-api-key", "hdr-secret-x-anthropic-api-key-zq8"),
        ("api-key", "hdr-secret-api-key-zq8"),
        ("x-auth-token", "hdr-secret-x-auth-token-zq8"),
        ("proxy-authorization", "Basic cHJveHktc2VjcmV0LXpxOA=="),
    ];
    let mut request = client()
        .post(proxy.url(&format!("/v1/messages?{query}")))
        .header("content-type", "application/json")
        .header("authorization", "Bearer hdr-secret-bearer-zq8")
        .body(body.clone());
    for (name, value) in header_secrets {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answered = response.text().await.unwrap();
    assert_eq!(
        answered,
        sse_response(),
        "the client gets the stream unchanged"
    );

    // The upstream got everything but the proxy's own credential, byte for byte.
    let got = seen.lock().unwrap()[0].clone();
    assert_eq!(got.query.as_deref(), Some(query));
    assert_eq!(got.body, body.as_bytes());
    for (name, value) in header_secrets {
        let forwarded = got.headers.iter().find(|(k, _)| k == name);
        if name == "proxy-authorization" {
            assert!(forwarded.is_none(), "Proxy-Authorization went upstream");
        } else {
            assert_eq!(forwarded.map(|(_, v)| v.as_str()), Some(value), "{name}");
        }
    }

    let record = proxy.only_record().await;
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    let stdout = proxy.console(1).await.join("\n");
    let stderr = proxy.stderr();
    let mut secrets: Vec<&str> = vec![
        ANTHROPIC,
        OPENAI,
        AWS,
        GITHUB,
        GITLAB,
        SLACK,
        GOOGLE,
        JWT,
        PEM_BODY,
        DOTENV_PASSWORD,
        DOTENV_SECRET,
        SPLIT_A,
        SPLIT_B,
        "query-secret",
        "resp-header-secret",
        "cHJveHktc2VjcmV0LXpxOA",
        "hdr-secret",
    ];
    secrets.extend(header_secrets.iter().map(|(_, v)| *v));
    for &secret in &secrets {
        assert!(!log.contains(secret), "{secret} in the log file");
        assert!(!stdout.contains(secret), "{secret} on stdout");
        assert!(!stderr.contains(secret), "{secret} on stderr");
    }
    for kind in [
        "anthropic-key",
        "openai-key",
        "aws-access-key",
        "github-token",
        "gitlab-token",
        "slack-token",
        "google-api-key",
        "jwt",
        "private-key",
        "secret-assignment",
    ] {
        assert!(
            log.contains(&format!("[REDACTED:{kind}]")),
            "no {kind} marker in the log"
        );
    }
    assert_eq!(
        record["request"]["query"],
        "beta=true&api_key=[REDACTED]&key=[REDACTED]&access_token=[REDACTED]"
    );
    assert_eq!(
        record["response"]["headers"]["anthropic-ratelimit-tokens-remaining"],
        "12345"
    );
    // The split key: the marker in the first delta as written, nothing of it in the second,
    // and the rebuilt message reads as the model wrote it, key replaced.
    let events = record["response"]["sse"]["events"].as_array().unwrap();
    assert_eq!(
        events[2]["data"]["delta"]["text"],
        "Your key is [REDACTED:anthropic-key]"
    );
    assert_eq!(events[3]["data"]["delta"]["text"], ", keep it safe.");
    assert_eq!(
        record["response"]["sse"]["message"]["content"][0]["text"],
        "Your key is [REDACTED:anthropic-key], keep it safe."
    );
    assert_shipped_without(&proxy.log, &secrets).await;

    // The request body is still JSON, the non-secret parts as sent.
    assert_eq!(record["request"]["body"]["json"]["max_tokens"], 1024);
    assert!(
        record["request"]["body"]["json"]["messages"][2]["content"][0]["content"]
            .as_str()
            .unwrap()
            .contains("PORT=8080")
    );
}

#[tokio::test]
async fn body_scanning_can_be_turned_off_and_extended_by_a_file() {
    let router = axum::Router::new().fallback(|_req: Request| async {
        Response::builder()
            .header("content-type", "application/json")
            .body(Body::from("{\"ok\":\"itk_zq8wx7ec\"}"))
            .unwrap()
    });
    let upstream = custom_upstream(router).await;
    let dir = tempfile::tempdir().unwrap();
    let patterns = dir.path().join("patterns");
    std::fs::write(&patterns, "internal-token itk_[a-z0-9]{8}\n").unwrap();

    let extended = Proxy::start_with(
        &upstream,
        &["--redact-patterns-file", patterns.to_str().unwrap()],
        &[],
    )
    .await;
    client()
        .post(extended.url("/v1/messages"))
        .body(format!("{{\"k\":\"{AWS}\"}}"))
        .send()
        .await
        .unwrap();
    let r = extended.only_record().await;
    assert_eq!(
        r["request"]["body"]["json"]["k"],
        "[REDACTED:aws-access-key]"
    );
    assert_eq!(
        r["response"]["body"]["json"]["ok"],
        "[REDACTED:internal-token]"
    );

    let off = Proxy::start_with(&upstream, &[], &[("REDACT_BODIES", "off")]).await;
    client()
        .post(off.url("/v1/messages"))
        .body(format!("{{\"k\":\"{AWS}\"}}"))
        .send()
        .await
        .unwrap();
    let r = off.only_record().await;
    assert_eq!(r["request"]["body"]["json"]["k"], AWS);
}

/// Issue 29, measured case 6: a key written with JSON escapes (any JSON reader gets the key),
/// bare Stripe keys and passwords in connection URLs reached the log verbatim. The bodies are
/// sent as a client may write them; the record must stay JSON, show the markers where a JSON
/// reader reads the secrets, and hold no part of any of them, nor may stdout, stderr or Seq.
#[tokio::test]
async fn secrets_written_with_json_escapes_and_in_the_wider_formats_are_redacted() {
    const KEY_TAIL: &str = "Qm4Vn8Bx2Lk6Jh0Gf3Ds";
    const STRIPE_LIVE: &str = "sk_live_51Hq8Zr2Vx6Wm3Tn9Kp4Lb7Yc";
    const STRIPE_RESTRICTED: &str = "rk_live_51Hq8Zr2Vx6Wm3Tn9Kp4Lb8Yd";
    const PG_PASSWORD: &str = "Pg-Pa55w0rd-zq8";
    const MONGO_PASSWORD: &str = "m0ngo-Pa55-zq8";
    const REDIS_PASSWORD: &str = "r3dis-Pa55-zq8";
    const AMQP_PASSWORD: &str = "amqp-Pa55-zq8";
    const MYSQL_PASSWORD: &str = "my5ql-Pa55-zq8";
    const HTTPS_PASSWORD: &str = "https-Pa55-zq8";
    const SLACK_BOT: &str = "xoxb-2741858193-5630478125-Zq8Wx7Ec6Rv5Tb4Yn3Um2Ik1";
    const TWILIO: &str = "SK39536b3216fdaeeb975729fae923d5a4";
    const SENDGRID: &str = "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";
    const NPM: &str = "npm_53X83RZJzzzzgEOzdmenCkhvMdgaKjIg8xNb";
    const PYPI: &str =
        "pypi-AgEIcHlwaS5vcmcjAWtGSU8po_799NksnRH9ucAUsdMlHUvTCQCyEZDz-TddJ8HyS5SUkCnD8zR";
    const DOCKER: &str = "dckr_pat_A9a9SkpXz9w3QlY7Zkuvqdt7s8S";
    let escaped_key = format!(r"sk\u002dant\u002dapi03\u002d{KEY_TAIL}");
    let every_char_escaped: String = format!("sk-ant-api03-{KEY_TAIL}")
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let prose = format!(
        r"Deploy notes:\n- DATABASE_URL postgresql:\/\/app:{PG_PASSWORD}@db.internal:5432\/prod\n- mongodb+srv://svc:{MONGO_PASSWORD}@cluster0.example.net/?w=majority\n- redis://:{REDIS_PASSWORD}@cache:6379/0, amqp://guest:{AMQP_PASSWORD}@mq/vhost\n- mysql://root:{MYSQL_PASSWORD}@127.0.0.1:3306/x, https://deploy:{HTTPS_PASSWORD}@git.example.com/r.git\nstripe {STRIPE_LIVE} and\n{STRIPE_RESTRICTED}\nslack {SLACK_BOT} twilio {TWILIO} sendgrid {SENDGRID}\nnpm {NPM} pypi {PYPI} docker {DOCKER}\n"
    );
    // Raw JSON text, escapes as written: serde_json would not write these on its own.
    let body = format!(
        r#"{{"model":"claude-opus-4-1","max_tokens":1024,"messages":[{{"role":"user","content":"key {escaped_key} and {every_char_escaped}"}},{{"role":"user","content":"{prose}"}}]}}"#
    );
    serde_json::from_str::<serde_json::Value>(&body).expect("the test body is JSON");
    let response = format!(
        r#"{{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-4-1","content":[{{"type":"text","text":"Saved {escaped_key}"}}],"stop_reason":"end_turn","usage":{{"input_tokens":3,"output_tokens":5}}}}"#
    );
    let answer = response.clone();
    let router = axum::Router::new().fallback(move |_req: Request| {
        let answer = answer.clone();
        async move {
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(answer))
                .unwrap()
        }
    });
    let proxy = Proxy::start_with(
        &custom_upstream(router).await,
        &[],
        &[("RUST_LOG", "debug")],
    )
    .await;
    let got = client()
        .post(proxy.url("/v1/messages"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.text().await.unwrap(),
        response,
        "the client gets it unchanged"
    );

    let record = proxy.only_record().await;
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    let stdout = proxy.console(1).await.join("\n");
    let stderr = proxy.stderr();
    let secrets = [
        KEY_TAIL,
        STRIPE_LIVE,
        STRIPE_RESTRICTED,
        PG_PASSWORD,
        MONGO_PASSWORD,
        REDIS_PASSWORD,
        AMQP_PASSWORD,
        MYSQL_PASSWORD,
        HTTPS_PASSWORD,
        SLACK_BOT,
        TWILIO,
        SENDGRID,
        NPM,
        PYPI,
        DOCKER,
        // The tail of the key with every character escaped, as written.
        &every_char_escaped[every_char_escaped.len() - 30..],
    ];
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} in the log file");
        assert!(!stdout.contains(secret), "{secret} on stdout");
        assert!(!stderr.contains(secret), "{secret} on stderr");
    }
    // What a JSON reader of the record sees.
    let messages = &record["request"]["body"]["json"]["messages"];
    assert_eq!(
        messages[0]["content"],
        "key [REDACTED:anthropic-key] and [REDACTED:anthropic-key]"
    );
    let notes = messages[1]["content"].as_str().unwrap();
    for line in [
        "postgresql://app:[REDACTED:url-password]@db.internal:5432/prod",
        "mongodb+srv://svc:[REDACTED:url-password]@cluster0.example.net/?w=majority",
        "redis://:[REDACTED:url-password]@cache:6379/0, amqp://guest:[REDACTED:url-password]@mq/vhost",
        "mysql://root:[REDACTED:url-password]@127.0.0.1:3306/x",
        "https://deploy:[REDACTED:url-password]@git.example.com/r.git",
        "stripe [REDACTED:stripe-key] and\n[REDACTED:stripe-key]\n",
        "slack [REDACTED:slack-token] twilio [REDACTED:twilio-api-key] sendgrid [REDACTED:sendgrid-key]",
        "npm [REDACTED:npm-token] pypi [REDACTED:pypi-token] docker [REDACTED:dockerhub-token]",
    ] {
        assert!(notes.contains(line), "{line:?} not in {notes:?}");
    }
    assert_eq!(
        record["response"]["body"]["json"]["content"][0]["text"],
        "Saved [REDACTED:anthropic-key]"
    );
    assert_shipped_without(&proxy.log, &secrets).await;
}

/// Ships `log` with the real shipper (its library, in-process) twice: to a Seq stand-in that
/// accepts everything, and to one that refuses every event for good (so all go to the
/// dead-letter file). No secret may be in what the stand-in received (its raw requests and
/// decoded events) or in the dead letters.
async fn assert_shipped_without(log: &std::path::Path, secrets: &[&str]) {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    for (name, refuse) in [("accepted", false), ("refused", true)] {
        let seq = seq_standin::spawn(
            "127.0.0.1:0".parse().unwrap(),
            seq_standin::Options {
                keep_raw: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        if refuse {
            seq.control(
                serde_json::from_value(serde_json::json!({"reject_event_containing": "claude"}))
                    .unwrap(),
            );
        }
        let dead = dir.path().join(format!("{name}.dead-letter.jsonl"));
        let cli = otlp_shipper::config::Cli::try_parse_from([
            "otlp-shipper".to_string(),
            "--file".into(),
            log.display().to_string(),
            "--endpoint".into(),
            seq.logs_url(),
            "--checkpoint".into(),
            dir.path()
                .join(format!("{name}.checkpoint"))
                .display()
                .to_string(),
            "--dead-letter".into(),
            dead.display().to_string(),
            "--exit-when-drained".into(),
            "--flush-interval".into(),
            "0.1".into(),
        ])
        .unwrap();
        let config = otlp_shipper::config::Config::from_cli(cli, &|_| None).unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            otlp_shipper::run(config, shutdown),
        )
        .await
        .expect("the shipper drains the log")
        .unwrap();
        let events = serde_json::to_string(&seq.events()).unwrap();
        let raw: Vec<u8> = seq.raw_requests().concat();
        let dead_letters = std::fs::read_to_string(&dead).unwrap_or_default();
        if refuse {
            assert!(
                !dead_letters.is_empty(),
                "the refused events were dead-lettered"
            );
        } else {
            assert!(
                events.contains("[REDACTED:anthropic-key]"),
                "the record arrived"
            );
        }
        for secret in secrets {
            assert!(
                !events.contains(secret),
                "{secret} in the events Seq stored"
            );
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in a request the shipper sent"
            );
            assert!(
                !dead_letters.contains(secret),
                "{secret} in the dead letters"
            );
        }
    }
}
