//! Shared harness of the end-to-end tests: a traffic-log generator writing records like the
//! proxy does, the real `otlp-shipper` binary run against the Seq stand-in on loopback, and
//! the accounting that checks every record arrived (by exchange id) with its bodies intact.
#![allow(dead_code)]

use seq_standin::{Handle, Options, StoredEvent};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

pub const SHIPPER: &str = env!("CARGO_BIN_EXE_otlp-shipper");

/// A scratch directory for one test, removed on drop unless the test failed.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "otlp-shipper-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {} for inspection", self.dir.display());
        }
    }
}

/// Starts the Seq stand-in on 127.0.0.1 with Seq's default limits.
pub async fn standin() -> Handle {
    standin_with(Options::default()).await
}

pub async fn standin_with(options: Options) -> Handle {
    seq_standin::spawn("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("seq-standin binds on loopback")
}

/// Deterministic pseudo-random numbers (xorshift): reproducible runs without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The exchange id of record `n` of run `tag`: 32 lowercase hex digits like the proxy's.
pub fn exchange_id(tag: u64, n: u64) -> String {
    format!("{tag:016x}{n:016x}")
}

/// Text of about `len` bytes with the characters that make escaping and UTF-8 boundaries
/// matter: quotes, backslashes, newlines, tabs, 2-, 3- and 4-byte characters.
pub fn varied_text(len: usize, rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "word ",
        "Claude ",
        "\"quoted\" ",
        "back\\slash ",
        "line\n",
        "tab\t",
        "é",
        "ü",
        "日本語",
        "🦀",
        "{\"json\":[1,2]} ",
        "</tag> ",
        "  ",
    ];
    let mut s = String::with_capacity(len + 8);
    while s.len() < len {
        s.push_str(PIECES[rng.below(PIECES.len() as u64) as usize]);
    }
    s
}

/// One traffic record line (without the newline) as the proxy writes it: a Messages API
/// request whose user text is about `body_bytes` long, and a JSON response.
pub fn record_line(id: &str, body_bytes: usize, rng: &mut Rng) -> String {
    use serde_json::value::RawValue;
    use traffic_record::{
        Body, KIND, Outcome, Request, Response, SCHEMA_VERSION, TrafficRecord, Usage,
    };
    let text = varied_text(body_bytes, rng);
    let request_json = serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": false,
        "messages": [{"role": "user", "content": text}],
    })
    .to_string();
    let response_json = serde_json::json!({
        "id": format!("msg_{id}"),
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hello from the generator"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": body_bytes / 4, "output_tokens": 5},
    })
    .to_string();
    let headers = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let record = TrafficRecord {
        v: SCHEMA_VERSION,
        kind: KIND.to_string(),
        id: id.to_string(),
        started_at: "2026-11-27T10:00:00.123456789Z".into(),
        ended_at: "2026-11-27T10:00:01.123456789Z".into(),
        duration_ms: 1000.0,
        ttfb_ms: Some(250.5),
        outcome: Outcome::Complete,
        error: None,
        degraded: None,
        session_id: Some("5f1e7c2a-0000-4000-8000-000000000001".into()),
        model: Some("claude-sonnet-4-5".into()),
        stream: false,
        stop_reason: Some("end_turn".into()),
        usage: Some(Usage {
            input_tokens: Some((body_bytes / 4) as u64),
            output_tokens: Some(5),
            cache_creation_input_tokens: Some(0),
            cache_read_input_tokens: Some(0),
            ..Usage::default()
        }),
        request: Request {
            method: "POST".into(),
            path: "/v1/messages".into(),
            query: Some("beta=true".into()),
            headers: headers(&[
                ("content-type", "application/json"),
                ("x-api-key", traffic_record::REDACTED),
            ]),
            body: Body {
                size: request_json.len() as u64,
                json: Some(RawValue::from_string(request_json).unwrap()),
                ..Body::default()
            },
        },
        response: Some(Response {
            status: 200,
            headers: headers(&[
                ("content-type", "application/json"),
                ("request-id", "req_1"),
            ]),
            body: Body {
                size: response_json.len() as u64,
                json: Some(RawValue::from_string(response_json).unwrap()),
                ..Body::default()
            },
            sse: None,
        }),
    };
    serde_json::to_string(&record).unwrap()
}

/// Appends lines (each gets a newline) and flushes them in one write.
pub fn append_lines<S: AsRef<str>>(path: &Path, lines: &[S]) {
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l.as_ref().as_bytes());
        buf.push(b'\n');
    }
    append_bytes(path, &buf);
}

pub fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// The shipper's command line for a run: file, endpoint, checkpoint and dead letter in the
/// scratch dir, quick flush and refresh so tests do not wait on defaults.
pub fn shipper(scratch: &Scratch, endpoint: &str) -> Command {
    shipper_with_checkpoint(scratch, endpoint, "checkpoint.json")
}

/// [`shipper`] with its own checkpoint file, for several runs over the same log.
pub fn shipper_with_checkpoint(scratch: &Scratch, endpoint: &str, checkpoint: &str) -> Command {
    let mut cmd = Command::new(SHIPPER);
    cmd.arg("--file")
        .arg(scratch.path("traffic.log"))
        .arg("--endpoint")
        .arg(endpoint)
        .arg("--checkpoint")
        .arg(scratch.path(checkpoint))
        .arg("--dead-letter")
        .arg(scratch.path("dead-letter.jsonl"))
        .args(["--flush-interval", "0.2", "--refresh-interval", "0.2"])
        .args(["--read-from-head", "true"])
        .env_remove("OTLP_ENDPOINT")
        .env_remove("SEQ_API_KEY")
        .env_remove("LOG_FILE")
        .env_remove("CHECKPOINT_FILE")
        .env_remove("DEAD_LETTER_FILE")
        .kill_on_drop(true);
    cmd
}

/// Spawns the command with stdout and stderr appended to `shipper.out` in the scratch dir.
pub fn spawn_logged(scratch: &Scratch, cmd: &mut Command) -> Child {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(scratch.path("shipper.out"))
        .unwrap();
    let err = out.try_clone().unwrap();
    cmd.stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .stdin(Stdio::null())
        .spawn()
        .expect("otlp-shipper starts")
}

/// The last lines of the shipper's own output, for failure messages.
pub fn shipper_output(scratch: &Scratch) -> String {
    let text = std::fs::read_to_string(scratch.path("shipper.out")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Runs the shipper with `--exit-when-drained` and asserts it exits 0 within `limit`.
pub async fn ship_until_drained(scratch: &Scratch, mut cmd: Command, limit: Duration) {
    cmd.arg("--exit-when-drained");
    let mut child = spawn_logged(scratch, &mut cmd);
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => {
            let status = status.unwrap();
            assert!(
                status.success(),
                "otlp-shipper exited with {status}:\n{}",
                shipper_output(scratch)
            );
        }
        Err(_) => {
            let _ = child.start_kill();
            panic!(
                "otlp-shipper did not drain within {limit:?}:\n{}",
                shipper_output(scratch)
            );
        }
    }
}

/// The proxy binary of the same build profile as the shipper under test, built if needed.
pub fn proxy_bin() -> PathBuf {
    let dir = Path::new(SHIPPER).parent().unwrap();
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "-q",
        "-p",
        "claude-api-proxy",
        "--bin",
        "claude-api-proxy",
    ]);
    if dir.ends_with("release") {
        cargo.arg("--release");
    }
    assert!(
        cargo.status().unwrap().success(),
        "cargo build of the proxy"
    );
    dir.join("claude-api-proxy")
}

/// Sends signal `sig` (a name such as `TERM`) to process `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
pub async fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What arrived for one exchange: its main event and its body parts.
#[derive(Debug, Default)]
pub struct Arrived {
    /// Main events (copies beyond one are duplicates).
    pub mains: usize,
    /// Body part events (all copies).
    pub parts: usize,
}

/// Events grouped by exchange id (`claude.exchange.id`); events of no exchange (plain lines)
/// are returned apart, and context events (system prompt blocks, tools) are left out.
pub fn by_exchange(events: &[StoredEvent]) -> (HashMap<String, Arrived>, Vec<&StoredEvent>) {
    let mut map: HashMap<String, Arrived> = HashMap::new();
    let mut plain = Vec::new();
    for e in events {
        if e.attributes.contains_key("claude.context.hash") {
            continue;
        }
        let Some(id) = e.attr_str("claude.exchange.id") else {
            plain.push(e);
            continue;
        };
        let a = map.entry(id.to_string()).or_default();
        if is_part(e) {
            a.parts += 1;
        } else {
            a.mains += 1;
        }
    }
    (map, plain)
}

/// Asserts that exchanges `exchange_id(tag, 0..count)` all arrived (at least once).
pub fn assert_all_arrived(arrived: &HashMap<String, Arrived>, tag: u64, count: u64) {
    let missing: Vec<u64> = (0..count)
        .filter(|n| !arrived.contains_key(&exchange_id(tag, *n)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {count} records lost, first {:?}",
        missing.len(),
        missing.first()
    );
}

/// A body part event (docs/seq-events.md: `claude.body.part` of `claude.body.parts`).
pub fn is_part(e: &StoredEvent) -> bool {
    e.attributes.contains_key("claude.body.part")
}

/// The bodies of a record line, by the names docs/seq-events.md gives them, as the raw JSON
/// text of the record's field (what the shipper must deliver byte for byte).
pub fn bodies_of_line(line: &str) -> Vec<(String, String)> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct Req<'a> {
        #[serde(borrow)]
        body: &'a RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Resp<'a> {
        #[serde(borrow)]
        body: &'a RawValue,
        #[serde(borrow, default)]
        sse: Option<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Rec<'a> {
        #[serde(borrow)]
        request: Req<'a>,
        #[serde(borrow, default)]
        response: Option<Resp<'a>>,
    }
    let rec: Rec<'_> = serde_json::from_str(line).expect("a record line");
    let mut out = vec![(
        "request.body".to_string(),
        rec.request.body.get().to_string(),
    )];
    if let Some(r) = rec.response {
        out.push(("response.body".into(), r.body.get().to_string()));
        if let Some(sse) = r.sse {
            out.push(("response.sse".into(), sse.get().to_string()));
        }
    }
    out
}

/// Asserts that the bodies of exchange `id` arrived whole: either inline in the main event
/// (`claude.<name>`) or as parts 1..=N (`claude.body.part`/`claude.body.parts`) that,
/// deduplicated and ordered, concatenate to exactly the record's text.
pub fn assert_bodies_reassemble(events: &[StoredEvent], id: &str, line: &str) {
    let mine: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| e.attr_str("claude.exchange.id") == Some(id))
        .collect();
    let main = mine
        .iter()
        .find(|e| !is_part(e))
        .unwrap_or_else(|| panic!("no main event for {id}"));
    assert_eq!(main.attr_str("claude.exchange.id"), Some(id));
    for (name, expected) in bodies_of_line(line) {
        if let Some(inline) = main.attr_str(&format!("claude.{name}")) {
            assert!(inline == expected, "{id} {name}: inline body differs");
            continue;
        }
        let declared = main
            .attr_i64(&format!("claude.{name}.parts"))
            .unwrap_or_else(|| panic!("{id} {name}: neither inline nor split"));
        let mut parts: BTreeMap<i64, &str> = BTreeMap::new();
        for e in mine
            .iter()
            .filter(|e| e.attr_str("claude.body.name") == Some(&name))
        {
            assert_eq!(
                e.attr_i64("claude.body.parts"),
                Some(declared),
                "{id} {name}"
            );
            let index = e.attr_i64("claude.body.part").unwrap();
            let text = e.body_str().expect("a part body is a string");
            if let Some(previous) = parts.insert(index, text) {
                assert_eq!(
                    previous, text,
                    "{id} {name} part {index} differs between copies"
                );
            }
        }
        let indexes: Vec<i64> = parts.keys().copied().collect();
        assert_eq!(
            indexes,
            (1..=declared).collect::<Vec<_>>(),
            "{id} {name}: parts missing"
        );
        let joined: String = parts.values().copied().collect();
        assert_eq!(
            joined.len(),
            expected.len(),
            "{id} {name}: reassembled length"
        );
        assert!(joined == expected, "{id} {name}: reassembled body differs");
    }
}

/// The line of the log that holds record `id`.
pub fn line_of(path: &Path, id: &str) -> String {
    let needle = format!("\"id\":\"{id}\"");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("{id} not in {}", path.display()))
        .to_string()
}

/// Reads a file of dead letters.
pub fn dead_letters(path: &Path) -> Vec<serde_json::Value> {
    match File::open(path) {
        Ok(_) => std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a dead letter is one JSON object"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// [`test_peers::claude_command`] with `api_key` in `ANTHROPIC_API_KEY`, killed when dropped.
pub fn claude_command(cwd: &Path, home: &Path, tmp: &Path, api_key: &str, proxy: &str) -> Command {
    let mut cmd = Command::from(test_peers::claude_command(cwd, home, tmp, proxy));
    cmd.env("ANTHROPIC_API_KEY", api_key).kill_on_drop(true);
    cmd
}

/// Runs a `claude` command (`what` names it in failures) within `limit`; asserts that it
/// exited 0. Its output.
pub async fn claude_output(mut cmd: Command, what: &str, limit: Duration) -> std::process::Output {
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("claude {what} did not finish within {limit:?}"))
        .expect("run claude");
    assert!(
        out.status.success(),
        "claude {what}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`claude_output`] of a command with `--output-format json`: Claude Code's result, asserted
/// not to be an error.
pub async fn claude_result(cmd: Command, what: &str, limit: Duration) -> serde_json::Value {
    let out = claude_output(cmd, what, limit).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("claude printed JSON");
    assert_eq!(result["is_error"], false, "{result}");
    result
}

/// The real proxy binary, logging to `log`; returns it and its address.
pub async fn start_proxy(scratch: &Scratch, upstream: &str, log: &Path) -> (Child, String) {
    let mut proxy = Command::new(proxy_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--log-file",
        ])
        .arg(log)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(scratch.path("proxy.err")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start claude-api-proxy");
    let mut lines = tokio::io::BufReader::new(proxy.stdout.take().unwrap()).lines();
    let first = lines
        .next_line()
        .await
        .unwrap()
        .expect("the proxy's first line");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not a `listening on` line: {first}"))
        .to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (proxy, format!("http://{addr}"))
}
