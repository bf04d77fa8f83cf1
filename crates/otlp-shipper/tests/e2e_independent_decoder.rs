//! An independent OTLP implementation reads what the shipper really sends: the `rotel`
//! collector (Rust, from PyPI) receives a run and prints every LogRecord and span it decoded,
//! and the official Python `opentelemetry-proto` decodes the exact request bodies (logs and
//! traces) the Seq stand-in received, agreeing field by field with the stand-in's own (prost)
//! decoding.

mod e2e_support;

use e2e_support::*;
use seq_standin::Options;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

fn test_python() -> PathBuf {
    PathBuf::from(std::env::var("TEST_PYTHON").expect(
        "TEST_PYTHON not set: run scripts/test.sh, which installs a venv with \
         opentelemetry-proto and rotel",
    ))
}

/// The rotel-agent binary: on PATH, else inside the `rotel` package of the test venv.
fn rotel_agent() -> PathBuf {
    if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("rotel-agent"))
            .find(|p| p.is_file())
    }) {
        return p;
    }
    let out = std::process::Command::new(test_python())
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .expect("TEST_PYTHON runs");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success() && path.is_file(),
        "rotel-agent not found (PyPI package rotel): run scripts/test.sh, which installs it \
         into the test venv; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A small log with what matters: ordinary records, one whose body is split into parts, a
/// plain line.
fn write_log(scratch: &Scratch) -> Vec<String> {
    let mut rng = Rng::new(31);
    let mut lines: Vec<String> = (0..40)
        .map(|n| record_line(&exchange_id(0x1d, n), 500, &mut rng))
        .collect();
    lines.push(record_line(&exchange_id(0x1d, 40), 700_000, &mut rng));
    lines.push("a plain line, not a record".into());
    append_lines(&scratch.path("traffic.log"), &lines);
    (0..41).map(|n| exchange_id(0x1d, n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotel_collector_decodes_every_record_the_shipper_sends() {
    let scratch = Scratch::new("e2e-rotel");
    let ids = write_log(&scratch);
    // The same log through the stand-in gives the expected number of events.
    let seq = standin().await;
    let cmd = shipper_with_checkpoint(&scratch, &seq.logs_url(), "checkpoint-seq.json");
    ship_until_drained(&scratch, cmd, Duration::from_secs(60)).await;
    let expected_events = seq.event_count();
    let expected_spans = seq.spans().len();
    assert_eq!(expected_spans, 41, "a span per exchange");

    let http = free_port();
    let grpc = free_port();
    let rotel_out = scratch.path("rotel.out");
    let mut rotel = tokio::process::Command::new(rotel_agent())
        .arg("start")
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
        .args(["--otlp-receiver-logs-http-path", "/ingest/otlp/v1/logs"])
        .args(["--otlp-receiver-traces-http-path", "/ingest/otlp/v1/traces"])
        .args(["--exporter", "blackhole", "--debug-log", "logs"])
        .args(["--debug-log", "traces"])
        .args(["--debug-log-verbosity", "detailed"])
        .arg("--pid-file")
        .arg(scratch.path("rotel.pid"))
        .stdout(Stdio::from(std::fs::File::create(&rotel_out).unwrap()))
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("rotel-agent starts");
    wait_for(Duration::from_secs(20), "rotel-agent to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", http)).is_ok()
    })
    .await;

    let endpoint = format!("http://127.0.0.1:{http}/ingest/otlp/v1/logs");
    let cmd = shipper_with_checkpoint(&scratch, &endpoint, "checkpoint-rotel.json");
    ship_until_drained(&scratch, cmd, Duration::from_secs(60)).await;
    let read = || std::fs::read_to_string(&rotel_out).unwrap_or_default();
    wait_for(
        Duration::from_secs(20),
        "rotel to print every record",
        || {
            let out = read();
            out.matches("LogRecord #").count() >= expected_events
                && out.matches("Span #").count() >= expected_spans
        },
    )
    .await;
    rotel.start_kill().unwrap();
    let _ = rotel.wait().await;

    let out = read();
    assert_eq!(out.matches("LogRecord #").count(), expected_events);
    assert_eq!(out.matches("Span #").count(), expected_spans);
    for id in &ids {
        assert!(
            out.contains(&format!("-> claude.exchange.id: Str({id})")),
            "rotel saw {id}"
        );
    }
    assert!(out.contains("chat claude-sonnet-4-5"), "the span's name");
    assert!(out.contains("-> gen_ai.conversation.id: Str(5f1e7c2a-0000-4000-8000-000000000001)"));
    assert!(out.contains("Body: Str(POST /v1/messages 200 claude-sonnet-4-5"));
    assert!(out.contains("-> gen_ai.usage.input_tokens: Int(125)"));
    assert!(out.contains("-> url.path: Str(/v1/messages)"));
    assert!(out.contains("Body: Str(a plain line, not a record)"));
}

const DECODE: &str = r#"
import json, sys
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from google.protobuf.json_format import MessageToDict

def value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)

for path in sys.argv[1:]:
    if path.endswith(".traces.pb"):
        req = ExportTraceServiceRequest()
        with open(path, "rb") as f:
            req.ParseFromString(f.read())
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    print(json.dumps({
                        "span": True,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "name": s.name,
                        "kind": s.kind,
                        "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano,
                        "status": s.status.code,
                        "attributes": {kv.key: value(kv.value) for kv in s.attributes},
                    }, ensure_ascii=False))
        continue
    req = ExportLogsServiceRequest()
    with open(path, "rb") as f:
        req.ParseFromString(f.read())
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                print(json.dumps({
                    "trace_id": r.trace_id.hex(),
                    "span_id": r.span_id.hex(),
                    "time_unix_nano": r.time_unix_nano,
                    "severity_number": r.severity_number,
                    "body": value(r.body),
                    "attributes": {kv.key: value(kv.value) for kv in r.attributes},
                    "resource": {kv.key: value(kv.value) for kv in rl.resource.attributes},
                }, ensure_ascii=False))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_opentelemetry_proto_decodes_the_real_requests_identically() {
    let scratch = Scratch::new("e2e-python-otlp");
    write_log(&scratch);
    let seq = standin_with(Options {
        keep_raw: true,
        ..Options::default()
    })
    .await;
    ship_until_drained(
        &scratch,
        shipper(&scratch, &seq.logs_url()),
        Duration::from_secs(60),
    )
    .await;

    let mut files = Vec::new();
    for (i, body) in seq.raw_requests().iter().enumerate() {
        let path = scratch.path(&format!("request-{i}.pb"));
        std::fs::write(&path, body).unwrap();
        files.push(path);
    }
    for (i, body) in seq.raw_trace_requests().iter().enumerate() {
        let path = scratch.path(&format!("request-{i}.traces.pb"));
        std::fs::write(&path, body).unwrap();
        files.push(path);
    }
    let script = scratch.path("decode.py");
    std::fs::write(&script, DECODE).unwrap();
    let out = tokio::process::Command::new(test_python())
        .arg(&script)
        .args(&files)
        .output()
        .await
        .expect("TEST_PYTHON runs");
    assert!(
        out.status.success(),
        "python opentelemetry-proto failed to decode (is it installed? run scripts/test.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (spans, decoded): (Vec<serde_json::Value>, Vec<serde_json::Value>) =
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .partition(|v| v.get("span").is_some());
    let our_spans = seq.spans();
    assert_eq!(spans.len(), 41);
    assert_eq!(spans.len(), our_spans.len());
    for (py, rs) in spans.iter().zip(&our_spans) {
        assert_eq!(py["trace_id"], rs.trace_id.as_str());
        assert_eq!(py["span_id"], rs.span_id.as_str());
        assert_eq!(py["name"], rs.name.as_str());
        assert_eq!(py["kind"], 3, "SPAN_KIND_CLIENT");
        assert_eq!(py["start"], rs.start_time_unix_nano);
        assert_eq!(py["end"], rs.end_time_unix_nano);
        assert_eq!(py["status"], rs.status_code);
        assert_eq!(
            py["attributes"],
            serde_json::Value::Object(rs.attributes.clone())
        );
    }
    let ours = seq.events();
    assert_eq!(decoded.len(), ours.len());
    for (py, rs) in decoded.iter().zip(&ours) {
        assert_eq!(py["trace_id"], rs.trace_id.as_str());
        assert_eq!(py["span_id"], rs.span_id.as_str());
        assert_eq!(py["time_unix_nano"], rs.time_unix_nano);
        assert_eq!(py["severity_number"], rs.severity_number);
        assert_eq!(py["body"], rs.body, "body of {}", rs.trace_id);
        assert_eq!(
            py["attributes"],
            serde_json::Value::Object(rs.attributes.clone())
        );
        assert_eq!(
            py["resource"],
            serde_json::Value::Object(rs.resource.clone())
        );
    }
    assert!(ours.iter().any(|e| e.resource.contains_key("service.name")));
}
