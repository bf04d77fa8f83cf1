//! Shared harness of the proxy's integration tests: start the real `claude-api-proxy` binary
//! in front of an upstream on loopback, read its records, and validate every record against
//! `docs/log-format.schema.json`.
//!
//! Public API (also for other test files of this crate, via `mod common;`):
//! - [`validate_record`] / [`validate_log`]: schema validation with the `jsonschema` crate;
//!   `validate_log(path)` returns every record of a log file, each validated.
//! - [`Proxy::start`] / [`Proxy::start_with`]: the proxy binary on `127.0.0.1:0`.
//! - [`Proxy::records`] waits for N records and returns them validated.
#![allow(dead_code)] // each test binary uses a different part of the harness

use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

pub const RECORD_TIMEOUT: Duration = Duration::from_secs(15);

/// The path of docs/log-format.schema.json.
pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/log-format.schema.json")
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let text =
            std::fs::read_to_string(schema_path()).expect("read docs/log-format.schema.json");
        let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::draft202012::new(&schema).expect("the schema is a valid 2020-12 schema")
    })
}

/// Panics, naming every violation, unless `record` fits the documented schema.
pub fn validate_record(record: &Value) {
    let errors: Vec<String> = validator()
        .iter_errors(record)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    if !errors.is_empty() {
        let text: String = record.to_string().chars().take(2000).collect();
        panic!("record does not match docs/log-format.schema.json: {errors:#?}\nrecord: {text}…");
    }
}

/// Every complete line of the traffic log at `path`, each one parsed and validated. A last
/// line without its newline is still being written (one big `write` can be seen half done by
/// a concurrent reader) and is left for the next call.
pub fn validate_log(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                let start: String = line.chars().take(500).collect();
                panic!("log line is not JSON ({e}): {start}…")
            });
            validate_record(&record);
            record
        })
        .collect()
}

/// The proxy binary, running, with its stdout and stderr collected.
pub struct Proxy {
    pub addr: SocketAddr,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    pub child: Child,
}

impl Proxy {
    /// The proxy forwarding to `upstream` (a base URL), logging into a fresh temp dir.
    pub async fn start(upstream: &str) -> Proxy {
        Proxy::start_with(upstream, &[], &[]).await
    }

    /// Like [`Proxy::start`] with extra flags and environment variables.
    pub async fn start_with(upstream: &str, args: &[&str], env: &[(&str, &str)]) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        // A `--log-file` in `args` replaces the one in the temp dir.
        let log = match args.iter().position(|a| *a == "--log-file") {
            Some(i) => PathBuf::from(args[i + 1]),
            None => dir.path().join("traffic.log"),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-api-proxy"));
        cmd.args(["--listen", "127.0.0.1:0", "--upstream", upstream]);
        if !args.contains(&"--log-file") {
            cmd.arg("--log-file").arg(&log);
        }
        cmd.args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start claude-api-proxy");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        collect(child.stdout.take().unwrap(), stdout.clone(), Some(tx));
        collect(child.stderr.take().unwrap(), stderr.clone(), None);
        let addr = tokio::time::timeout(Duration::from_secs(15), rx)
            .await
            .expect("claude-api-proxy printed no `listening on` line within 15 s")
            .unwrap_or_else(|_| {
                panic!(
                    "claude-api-proxy exited before listening: {}",
                    stderr.lock().unwrap()
                )
            });
        Proxy {
            addr,
            log,
            dir,
            stdout,
            stderr,
            child,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until the log holds at least `n` records; returns them all, validated.
    pub async fn records(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + RECORD_TIMEOUT;
        loop {
            let records = validate_log(&self.log);
            if records.len() >= n {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} records after {RECORD_TIMEOUT:?}; stderr: {}",
                records.len(),
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Exactly one record once it is there (and no second one shortly after).
    pub async fn only_record(&self) -> Value {
        let mut records = self.records(1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let again = validate_log(&self.log);
        assert_eq!(again.len(), 1, "expected one record, got {again:#?}");
        records.remove(0)
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The per-exchange console lines once there are at least `n` (the writer prints them in
    /// batches, up to 100 ms after their records).
    pub async fn console(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + RECORD_TIMEOUT;
        loop {
            let lines: Vec<String> = self
                .stdout()
                .lines()
                .filter(|l| !l.starts_with("listening on "))
                .map(str::to_string)
                .collect();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} console lines after {RECORD_TIMEOUT:?}: {lines:?}",
                lines.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("proxy still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .expect("proxy did not exit within 40 s of SIGTERM")
            .expect("wait for proxy")
    }
}

fn collect<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
    sink: Arc<Mutex<String>>,
    mut listening: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("listening on ")
                && let Some(tx) = listening.take()
            {
                let _ = tx.send(addr.trim().parse().expect("listening on IP:PORT"));
            }
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

/// fake-anthropic in-process on a free loopback port; returns its base URL.
/// Reads the proxy's first stdout line, `listening on IP:PORT`, and returns `IP:PORT`.
pub async fn read_listen_addr<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .expect("first stdout line is `listening on IP:PORT`")
        .to_string()
}

pub async fn fake_upstream() -> String {
    let addr = fake_anthropic::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start fake-anthropic");
    format!("http://{addr}")
}

/// An in-test upstream serving `router` on a free loopback port; returns its base URL.
pub async fn custom_upstream(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A Messages API request body whose last user message is `text`.
pub fn message_request(text: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": "claude-opus-4-1",
        "max_tokens": 1024,
        "stream": stream,
        "system": "You are a test.",
        "messages": [{"role": "user", "content": text}],
    })
}

/// A plain HTTP client that never decompresses (reqwest is built without those features).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}
