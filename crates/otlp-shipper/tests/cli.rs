//! The otlp-shipper binary against a tiny in-test OTLP receiver: it ships a file and exits
//! when drained, retries exactly as told, dead-letters what is refused for good, stops on
//! SIGTERM with its checkpoint saved, and refuses bad configuration with exit 64.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_otlp-shipper");

#[derive(Default)]
struct Receiver {
    requests: usize,
    records: Vec<LogRecord>,
    /// Statuses to answer next, before accepting.
    script: VecDeque<u16>,
    /// A batch containing an event body with this marker is refused with 400.
    reject_marker: Option<String>,
    api_keys: Vec<Option<String>>,
    /// Answer each request this late (to catch the shipper with a request in flight).
    delay: Duration,
    /// Requests that arrived (counted before the delay).
    arrived: usize,
}

fn body_of(r: &LogRecord) -> &str {
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => s,
        _ => "",
    }
}

fn spawn_receiver(state: Arc<Mutex<Receiver>>) -> SocketAddr {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    async fn ingest(
        State(st): State<Arc<Mutex<Receiver>>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let delay = {
            let mut st = st.lock().unwrap();
            st.arrived += 1;
            st.delay
        };
        tokio::time::sleep(delay).await;
        let mut st = st.lock().unwrap();
        st.requests += 1;
        st.api_keys.push(
            headers
                .get("x-seq-apikey")
                .map(|v| v.to_str().unwrap().to_string()),
        );
        assert_eq!(
            headers.get("content-type").unwrap(),
            "application/x-protobuf"
        );
        if let Some(code) = st.script.pop_front() {
            return (StatusCode::from_u16(code).unwrap(), "scripted".into());
        }
        let req = ExportLogsServiceRequest::decode(body).expect("valid protobuf");
        let records: Vec<LogRecord> = req
            .resource_logs
            .into_iter()
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
            .collect();
        if let Some(marker) = &st.reject_marker
            && records.iter().any(|r| body_of(r).contains(marker.as_str()))
        {
            return (StatusCode::BAD_REQUEST, "event too large".into());
        }
        st.records.extend(records);
        (StatusCode::OK, String::new())
    }
    let app = axum::Router::new()
        .route("/ingest/otlp/v1/logs", axum::routing::post(ingest))
        .with_state(state);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn record(id: u32, text: &str) -> String {
    format!(
        r#"{{"v":1,"kind":"claude_api_exchange","id":"{id:032x}","started_at":"2026-11-27T10:00:00Z","ended_at":"2026-11-27T10:00:01Z","duration_ms":1000.0,"outcome":"complete","model":"claude-test","usage":{{"input_tokens":3,"output_tokens":4}},"request":{{"method":"POST","path":"/v1/messages","headers":{{}},"body":{{"size":{len},"json":{{"model":"claude-test","text":"{text}"}}}}}},"response":{{"status":200,"headers":{{}},"body":{{"size":2,"json":{{}}}}}}}}"#,
        len = text.len() + 30
    )
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        f.write_all(l.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

struct Run {
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Run {
    fn new(lines: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("claude-logger.log");
        write_lines(&log, lines);
        Run { dir, log }
    }

    fn command(&self, addr: SocketAddr) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--file")
            .arg(&self.log)
            .arg("--endpoint")
            .arg(format!("http://{addr}/ingest/otlp/v1/logs"))
            // This receiver takes logs only (spans are tested against the Seq stand-in).
            .args(["--traces-endpoint", "none"])
            .arg("--checkpoint")
            .arg(self.dir.path().join("cp.json"))
            .arg("--dead-letter")
            .arg(self.dir.path().join("dead.jsonl"))
            .arg("--flush-interval")
            .arg("0.2")
            .arg("--refresh-interval")
            .arg("0.1")
            .env_remove("SEQ_API_KEY")
            .env_remove("OTLP_ENDPOINT")
            .env_remove("LOG_FILE")
            .stdin(Stdio::null());
        c
    }

    /// Runs the shipper with `--exit-when-drained` and `extra` arguments; asserts it exited 0.
    fn drain(&self, addr: SocketAddr, extra: &[&str]) -> std::process::Output {
        let mut c = self.command(addr);
        c.arg("--exit-when-drained").args(extra);
        let out = run_to_completion(c);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Asserts that the checkpoint is at the end of the log: everything was delivered.
    fn assert_checkpoint_at_end(&self) {
        assert_eq!(
            self.checkpoint_offset(),
            std::fs::metadata(&self.log).unwrap().len()
        );
    }

    fn checkpoint_offset(&self) -> u64 {
        let cp: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.path().join("cp.json")).unwrap())
                .unwrap();
        cp["offset"].as_u64().unwrap()
    }
}

fn run_to_completion(mut c: Command) -> std::process::Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let pid = child.id();
    // Bounded in time: kill a hung shipper so the test fails instead of hanging.
    let guard = std::thread::spawn(move || {
        while start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().unwrap();
    drop(guard);
    out
}

#[test]
fn ships_every_line_then_exits_when_drained_with_the_checkpoint_at_the_end() {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let addr = spawn_receiver(state.clone());
    let mut lines: Vec<String> = (0..200).map(|i| record(i, "hello")).collect();
    lines.push("a plain line that is not a record".into());
    let run = Run::new(&lines);
    run.drain(addr, &["--api-key", "k3y"]);
    let st = state.lock().unwrap();
    assert_eq!(st.records.len(), 201);
    assert_eq!(
        body_of(&st.records[0]),
        "POST /v1/messages 200 claude-test 1.0s in=3 out=4"
    );
    assert_eq!(
        body_of(&st.records[200]),
        "a plain line that is not a record"
    );
    assert!(st.api_keys.iter().all(|k| k.as_deref() == Some("k3y")));
    run.assert_checkpoint_at_end();
}

#[test]
fn a_restart_resumes_after_the_checkpoint_without_resending() {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let addr = spawn_receiver(state.clone());
    let run = Run::new(&(0..10).map(|i| record(i, "a")).collect::<Vec<_>>());
    run.drain(addr, &[]);
    write_lines(
        &run.log,
        &(10..15).map(|i| record(i, "b")).collect::<Vec<_>>(),
    );
    run.drain(addr, &[]);
    let st = state.lock().unwrap();
    assert_eq!(st.records.len(), 15);
}

#[test]
fn a_foreign_checkpoint_file_is_replaced_and_the_file_read_from_its_head() {
    // What the old container leaves at the DB path: Fluent Bit's SQLite file.
    let state = Arc::new(Mutex::new(Receiver::default()));
    let addr = spawn_receiver(state.clone());
    let run = Run::new(&(0..3).map(|i| record(i, "a")).collect::<Vec<_>>());
    std::fs::write(run.dir.path().join("cp.json"), b"SQLite format 3\0\x10\x00").unwrap();
    run.drain(addr, &[]);
    assert_eq!(state.lock().unwrap().records.len(), 3);
    run.assert_checkpoint_at_end();
}

#[test]
fn retries_503_429_and_500_exactly_then_delivers() {
    let state = Arc::new(Mutex::new(Receiver {
        script: VecDeque::from([503, 429, 500]),
        ..Default::default()
    }));
    let addr = spawn_receiver(state.clone());
    let run = Run::new(&[record(1, "x")]);
    run.drain(addr, &[]);
    let st = state.lock().unwrap();
    assert_eq!(st.requests, 4);
    assert_eq!(st.records.len(), 1);
}

#[test]
fn an_event_refused_for_good_is_dead_lettered_and_the_rest_delivered() {
    let state = Arc::new(Mutex::new(Receiver {
        reject_marker: Some("POISON".into()),
        ..Default::default()
    }));
    let addr = spawn_receiver(state.clone());
    let lines: Vec<String> = (0..20)
        .map(|i| {
            if i == 7 {
                "POISON line".to_string()
            } else {
                record(i, "ok")
            }
        })
        .collect();
    let run = Run::new(&lines);
    run.drain(addr, &[]);
    let st = state.lock().unwrap();
    assert_eq!(st.records.len(), 19);
    let dead = std::fs::read_to_string(run.dir.path().join("dead.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], 400);
    assert_eq!(entries[0]["reason"], "event too large");
    assert_eq!(entries[0]["body"], "POISON line");
    run.assert_checkpoint_at_end();
}

#[test]
fn sigterm_while_the_endpoint_is_down_exits_0_and_keeps_the_checkpoint() {
    // Nothing listens on this port: every attempt is a connection error.
    let dead_addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let run = Run::new(&[record(1, "x")]);
    let stderr = run.dir.path().join("stderr");
    let mut child = run
        .command(dead_addr)
        .env("RUST_LOG", "otlp_shipper=debug")
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    // The signal comes while the shipper is retrying its first batch.
    let t = Instant::now();
    while !std::fs::read_to_string(&stderr)
        .unwrap()
        .contains("unavailable; retrying")
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no failed attempt: {}",
            std::fs::read_to_string(&stderr).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    // Only the starting position (the file's identity, offset 0) was recorded.
    assert_eq!(run.checkpoint_offset(), 0);
}

#[test]
fn sigterm_with_a_request_in_flight_finishes_it_and_saves_the_checkpoint() {
    let state = Arc::new(Mutex::new(Receiver {
        delay: Duration::from_millis(1500),
        ..Default::default()
    }));
    let addr = spawn_receiver(state.clone());
    let run = Run::new(&(0..5).map(|i| record(i, "x")).collect::<Vec<_>>());
    let mut child = run.command(addr).stderr(Stdio::null()).spawn().unwrap();
    // Wait until the request is in flight, then signal while the receiver holds it.
    let t = Instant::now();
    while state.lock().unwrap().arrived == 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "no request");
        std::thread::sleep(Duration::from_millis(10));
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    // The signal came while the receiver held the request: it was still answered and counted.
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(state.lock().unwrap().records.len(), 5);
    run.assert_checkpoint_at_end();
}

#[test]
fn follows_appends_and_serves_metrics() {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let addr = spawn_receiver(state.clone());
    let run = Run::new(&[record(1, "first")]);
    let metrics_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = run
        .command(addr)
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |n: usize| {
        let t = Instant::now();
        while state.lock().unwrap().records.len() < n {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "waiting for {n} records"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(1);
    write_lines(&run.log, &[record(2, "second"), record(3, "third")]);
    wait_for(3);
    let t = Instant::now();
    let text = loop {
        let text = http_get(metrics_port, "/metrics?format=json");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v["shipped_lines"] == 3 {
            break text;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["lag_bytes"], 0);
    assert_eq!(v["dead_lettered"], 0);
    let prom = http_get(metrics_port, "/metrics");
    assert!(
        prom.contains("otlp_shipper_shipped_lines_total 3"),
        "{prom}"
    );
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[test]
fn bad_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &conf,
        "[INPUT]\n    name tail\n    path /x.log\n    multiline.parser docker\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .arg("--endpoint")
        .arg("http://127.0.0.1:1/v1/logs")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("multiline.parser"), "{err}");

    let out = Command::new(BIN)
        .args([
            "--endpoint",
            "http://x/v1/logs",
            "--batch-max-bytes",
            "many",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--batch-max-bytes"));

    let out = Command::new(BIN)
        .args([
            "--endpoint",
            "http://x/v1/logs",
            "--checkpoint",
            "/no/such/dir/cp.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--checkpoint"));

    let out = Command::new(BIN)
        .env_remove("OTLP_ENDPOINT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OTLP_ENDPOINT"));

    for (flag, value) in [
        ("--bodies", "compact"),
        ("--prices", "/no/such/prices.json"),
        ("--traces-endpoint", "ftp://x/v1/traces"),
    ] {
        let out = Command::new(BIN)
            .args(["--endpoint", "http://x/v1/logs", flag, value])
            .env_remove("SHIP_BODIES")
            .env_remove("PRICES_FILE")
            .env_remove("OTLP_TRACES_ENDPOINT")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{flag} {value}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(flag),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
