//! The stand-in enforces Seq's documented ingestion rules and injects the faults tests ask for.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use seq_standin::{Control, Failure, Handle, Options, spawn};
use std::time::Duration;

const PROTOBUF: &str = "application/x-protobuf";

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(s.to_string())),
    })
}

fn record(body: &str, trace: u8) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        trace_id: vec![trace; 16],
        body: string(body),
        attributes: vec![KeyValue {
            key: "url.path".into(),
            value: string("/v1/messages"),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn batch(records: Vec<LogRecord>) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

async fn standin(options: Options) -> Handle {
    spawn("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap()
}

async fn post(h: &Handle, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(h.logs_url())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn accepts_protobuf_and_stores_each_record() {
    let h = standin(Options::default()).await;
    let r = post(
        &h,
        PROTOBUF,
        batch(vec![record("one", 1), record("two", 2)]),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], PROTOBUF);
    let events = h.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].body_str(), Some("one"));
    assert_eq!(events[1].trace_id, "02".repeat(16));
    assert_eq!(events[0].attr_str("url.path"), Some("/v1/messages"));
    let c = h.counters();
    assert_eq!(
        (c.requests, c.accepted_requests, c.accepted_events),
        (1, 1, 2)
    );
}

#[tokio::test]
async fn refuses_json_and_other_content_types_with_415() {
    let h = standin(Options::default()).await;
    let r = post(&h, "application/json", b"{}".to_vec()).await;
    assert_eq!(r.status(), 415);
    assert_eq!(h.counters().rejected_batches["415"], 1);
}

#[tokio::test]
async fn other_paths_are_404() {
    let h = standin(Options::default()).await;
    let url = format!("http://{}/ingest/otlp/v1/metrics", h.addr());
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", PROTOBUF)
        .body(batch(vec![record("x", 1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(h.event_count(), 0);
}

#[tokio::test]
async fn api_key_is_required_when_configured() {
    let h = standin(Options {
        api_key: Some("secret".into()),
        ..Options::default()
    })
    .await;
    let client = reqwest::Client::new();
    let send = |key: Option<&str>| {
        let mut rb = client
            .post(h.logs_url())
            .header("content-type", PROTOBUF)
            .body(batch(vec![record("x", 1)]));
        if let Some(k) = key {
            rb = rb.header("X-Seq-ApiKey", k);
        }
        rb.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(send(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(send(Some("secret")).await.unwrap().status(), 200);
    assert_eq!(h.event_count(), 1);
}

#[tokio::test]
async fn one_event_over_256_kib_rejects_the_whole_batch() {
    let h = standin(Options::default()).await;
    let big = "a".repeat(256 * 1024);
    let r = post(
        &h,
        PROTOBUF,
        batch(vec![record("small", 1), record(&big, 2)]),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(h.event_count(), 0, "nothing of a rejected batch is stored");
    // Just under the limit, counting JSON escapes and the attribute, passes.
    let attr = seq_standin::limits::json_str_len("url.path")
        + seq_standin::limits::json_str_len("/v1/messages");
    let fits = "a".repeat(256 * 1024 - attr - 2);
    let r = post(&h, PROTOBUF, batch(vec![record(&fits, 3)])).await;
    assert_eq!(r.status(), 200);
    // Escapes count: quotes take two bytes each in the stored JSON.
    let quoted = "\"".repeat(129 * 1024);
    let r = post(&h, PROTOBUF, batch(vec![record(&quoted, 4)])).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn requests_over_10_mb_are_413() {
    let h = standin(Options::default()).await;
    let records = (0..45).map(|i| record(&"b".repeat(230_000), i)).collect();
    let r = post(&h, PROTOBUF, batch(records)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(h.event_count(), 0);
}

#[tokio::test]
async fn undecodable_bodies_are_400() {
    let h = standin(Options::default()).await;
    let r = post(&h, PROTOBUF, vec![0xff; 64]).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn injected_statuses_are_answered_in_order_with_retry_after() {
    let h = standin(Options::default()).await;
    h.control(Control {
        fail_next: vec![
            Failure::Status(503),
            Failure::WithRetryAfter {
                status: 429,
                retry_after: Some(2),
            },
        ],
        ..Control::default()
    });
    let r = post(&h, PROTOBUF, batch(vec![record("x", 1)])).await;
    assert_eq!(r.status(), 503);
    let r = post(&h, PROTOBUF, batch(vec![record("x", 1)])).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let r = post(&h, PROTOBUF, batch(vec![record("x", 1)])).await;
    assert_eq!(r.status(), 200);
    let c = h.counters();
    assert_eq!(c.rejected_batches["503"], 1);
    assert_eq!(c.rejected_batches["429"], 1);
    assert_eq!(c.accepted_events, 1);
}

#[tokio::test]
async fn refusing_resets_connections_then_recovers() {
    let h = standin(Options::default()).await;
    let client = reqwest::Client::new();
    let send = || {
        client
            .post(h.logs_url())
            .header("content-type", PROTOBUF)
            .body(batch(vec![record("x", 1)]))
            .send()
    };
    // A kept-alive connection exists before the refusal starts: it must be reset too.
    assert_eq!(send().await.unwrap().status(), 200);
    h.control(Control {
        refuse_connections_for_secs: Some(1.0),
        ..Control::default()
    });
    let err = send().await.expect_err("no HTTP answer while refusing");
    assert!(!err.is_status(), "{err:?}");
    let err = send().await.expect_err("new connections are reset too");
    assert!(!err.is_status(), "{err:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send().await.unwrap().status(), 200);
    let c = h.counters();
    assert!(c.refused_connections >= 2, "{c:?}");
    assert_eq!(c.accepted_events, 2);
}

#[tokio::test]
async fn a_marker_rejects_its_batch_for_good() {
    let h = standin(Options::default()).await;
    h.control(serde_json::from_str(r#"{"reject_event_containing":"POISON"}"#).unwrap());
    for _ in 0..2 {
        let r = post(
            &h,
            PROTOBUF,
            batch(vec![record("ok", 1), record("xPOISONx", 2)]),
        )
        .await;
        assert_eq!(r.status(), 400);
    }
    let r = post(&h, PROTOBUF, batch(vec![record("ok", 1)])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.event_count(), 1);
}

#[tokio::test]
async fn the_binary_serves_and_writes_events_jsonl() {
    let dir = std::env::temp_dir().join(format!("seq-standin-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_seq-standin"))
        .args(["--listen", "127.0.0.1:0", "--api-key", "k", "--store"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line.strip_prefix("listening on ").expect(&line).to_string();
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{addr}/ingest/otlp/v1/logs"))
        .header("content-type", PROTOBUF)
        .header("x-seq-apikey", "k")
        .body(batch(vec![record("stored", 7)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("http://{addr}/control"))
        .body(r#"{"fail_next":[503]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let counters = client
        .get(format!("http://{addr}/counters"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counters: serde_json::Value = serde_json::from_str(&counters).unwrap();
    assert_eq!(counters["accepted_events"], 1);
    let stored = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let event: seq_standin::StoredEvent = serde_json::from_str(stored.trim()).unwrap();
    assert_eq!(event.body_str(), Some("stored"));
    // SIGTERM (podman stop) ends it at once, with success.
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exits on SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sink_mode_answers_200_without_decoding_but_still_checks_the_request() {
    let h = standin(Options {
        decode: false,
        ..Options::default()
    })
    .await;
    assert_eq!(post(&h, PROTOBUF, vec![0xff; 64]).await.status(), 200);
    assert_eq!(
        post(&h, "application/json", b"{}".to_vec()).await.status(),
        415
    );
    let c = h.counters();
    assert_eq!((c.accepted_requests, c.accepted_events), (1, 0));
}

#[tokio::test]
async fn with_an_administrator_ingestion_needs_an_api_key_the_administrator_created() {
    use seq_standin::first_run::{AuthState, Authentication};
    let h = standin(Options {
        auth: Some(AuthState {
            authentication: Authentication::Admin {
                username: "admin".into(),
                password: Some("pw".into()),
            },
            api_keys: Vec::new(),
        }),
        ..Options::default()
    })
    .await;
    let r = post(&h, PROTOBUF, batch(vec![record("no key", 1)])).await;
    assert_eq!(r.status(), 401);
    let client = reqwest::Client::new();
    let create = |user: &'static str, pw: &'static str| {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        client
            .post(format!("http://{}/api/apikeys", h.addr()))
            .header("authorization", format!("Basic {basic}"))
            .body(r#"{"Title":"t","Token":"tok-1","AssignedPermissions":["Ingest"]}"#)
            .send()
    };
    assert_eq!(create("admin", "wrong").await.unwrap().status(), 401);
    assert_eq!(create("admin", "pw").await.unwrap().status(), 201);
    let with_key = |key: &'static str| {
        client
            .post(h.logs_url())
            .header("content-type", PROTOBUF)
            .header("x-seq-apikey", key)
            .body(batch(vec![record("keyed", 2)]))
            .send()
    };
    assert_eq!(with_key("tok-2").await.unwrap().status(), 401);
    assert_eq!(with_key("tok-1").await.unwrap().status(), 200);
    // The API root answers without authentication (the sandbox probes it).
    let root = client
        .get(format!("http://{}/api", h.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);
}

/// Real seqcli (`apikey create`, datalust/seqcli `CreateCommand.cs`) prints the generated token
/// alone when no `--token` is given, and the key's id and title when one is; it reads the
/// password from stdin with `--connect-password-stdin` and refuses it beside
/// `--connect-password`. The sandbox reads the token from that output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqcli_standin_prints_what_seqcli_prints() {
    use seq_standin::first_run::{AuthState, Authentication};
    use std::io::Write as _;
    let h = standin(Options {
        auth: Some(AuthState {
            authentication: Authentication::Admin {
                username: "admin".into(),
                password: Some("pw".into()),
            },
            api_keys: Vec::new(),
        }),
        ..Options::default()
    })
    .await;
    let server = format!("http://{}", h.addr());
    let seqcli = move |extra: &'static [&'static str]| {
        let server = server.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seqcli-standin"))
                .args([
                    "apikey",
                    "create",
                    "-t",
                    "sandbox key",
                    "--permissions",
                    "Ingest",
                ])
                .args([
                    "--connect-username",
                    "admin",
                    "--connect-password-stdin",
                    "-s",
                ])
                .arg(&server)
                .args(extra)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
            child.wait_with_output().unwrap()
        })
    };
    let generated = seqcli(&[]).await.unwrap();
    assert!(generated.status.success(), "{generated:?}");
    let token = String::from_utf8(generated.stdout).unwrap();
    let token = token.trim_end();
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "{token:?}"
    );
    let given = seqcli(&["--token", "tok-given"]).await.unwrap();
    assert!(given.status.success(), "{given:?}");
    assert_eq!(
        String::from_utf8(given.stdout).unwrap(),
        "apikey-2 sandbox key\n"
    );
    let both = seqcli(&["--connect-password", "pw"]).await.unwrap();
    assert!(!both.status.success(), "{both:?}");
    // The printed token is the key: it ingests.
    let r = reqwest::Client::new()
        .post(h.logs_url())
        .header("content-type", PROTOBUF)
        .header("x-seq-apikey", token)
        .body(batch(vec![record("keyed", 1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn as_the_seq_container_a_new_instance_refuses_to_start_without_a_first_run_setting() {
    let dir = std::env::temp_dir().join(format!("seq-standin-firstrun-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seq-standin"));
        cmd.args(["--listen", "127.0.0.1:0", "--first-run-rules", "--store"])
            .arg(&dir)
            .env_remove("ACCEPT_EULA")
            .env_remove("SEQ_FIRSTRUN_ADMINPASSWORD")
            .env_remove("SEQ_FIRSTRUN_ADMINPASSWORDHASH")
            .env_remove("SEQ_FIRSTRUN_NOAUTHENTICATION")
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let out = run(&[("ACCEPT_EULA", "Y")]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SEQ_FIRSTRUN_ADMINPASSWORD")
            && stderr.contains("SEQ_FIRSTRUN_NOAUTHENTICATION=true"),
        "{stderr}"
    );
    let out = run(&[("SEQ_FIRSTRUN_NOAUTHENTICATION", "true")])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "no ACCEPT_EULA=Y");
    // With a setting it starts (and keeps running until stopped).
    let mut child = run(&[("ACCEPT_EULA", "Y"), ("SEQ_FIRSTRUN_ADMINPASSWORD", "pw")]);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

mod traces {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn span(trace: u8, id: u8, name: &str) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: name.into(),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_001_000_000_000,
            attributes: vec![KeyValue {
                key: "gen_ai.provider.name".into(),
                value: string("anthropic"),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn spans(spans: Vec<Span>) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    async fn post_traces(h: &Handle, key: Option<&str>, body: Vec<u8>) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(h.traces_url())
            .header("content-type", PROTOBUF);
        if let Some(k) = key {
            req = req.header("x-seq-apikey", k);
        }
        req.body(body).send().await.unwrap()
    }

    #[tokio::test]
    async fn spans_are_accepted_on_the_traces_path_and_stored() {
        let h = standin(Options::default()).await;
        let r = post_traces(
            &h,
            None,
            spans(vec![span(1, 2, "chat m"), span(1, 3, "chat m")]),
        )
        .await;
        assert_eq!(r.status(), 200);
        let stored = h.spans();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].trace_id, "01".repeat(16));
        assert_eq!(stored[1].span_id, "03".repeat(8));
        assert_eq!(stored[0].name, "chat m");
        assert_eq!(stored[0].kind, 3);
        assert_eq!(
            stored[0].attr_str("gen_ai.provider.name"),
            Some("anthropic")
        );
        let c = h.counters();
        assert_eq!(
            (c.trace_requests, c.accepted_spans, c.accepted_events),
            (1, 2, 0)
        );
    }

    #[tokio::test]
    async fn one_bad_span_rejects_the_whole_batch() {
        let h = standin(Options {
            event_limit: 2_000,
            ..Options::default()
        })
        .await;
        let mut no_trace = span(0, 1, "x");
        no_trace.trace_id = vec![0; 16];
        let mut short_id = span(1, 1, "x");
        short_id.span_id = vec![1; 4];
        let mut backwards = span(1, 1, "x");
        backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
        let mut huge = span(1, 1, "x");
        huge.attributes[0].value = string(&"y".repeat(3_000));
        for bad in [no_trace, short_id, backwards, huge] {
            let r = post_traces(&h, None, spans(vec![span(1, 9, "ok"), bad])).await;
            assert_eq!(r.status(), 400);
        }
        assert!(h.spans().is_empty(), "nothing of a refused batch is kept");
        // A logs request on the traces path is not a traces request.
        let r = post_traces(&h, None, b"\xff\xff".to_vec()).await;
        assert_eq!(r.status(), 400);
    }

    #[tokio::test]
    async fn the_api_key_and_faults_apply_to_traces_too() {
        let h = standin(Options {
            api_key: Some("k".into()),
            ..Options::default()
        })
        .await;
        assert_eq!(
            post_traces(&h, None, spans(vec![span(1, 1, "x")]))
                .await
                .status(),
            401
        );
        h.control(Control {
            fail_next: vec![Failure::Status(503)],
            ..Default::default()
        });
        assert_eq!(
            post_traces(&h, Some("k"), spans(vec![span(1, 1, "x")]))
                .await
                .status(),
            503
        );
        assert_eq!(
            post_traces(&h, Some("k"), spans(vec![span(1, 1, "x")]))
                .await
                .status(),
            200
        );
    }
}
