//! Shared plumbing of the podman tests: required environment, locally made images, unique
//! names per run with cleanup, a tiny HTTP/1.1 client and the Seq stand-in's stored events.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const LOGGER_IMAGE: &str = "localhost/claude-api-logger:test";
pub const FAKE_IMAGE: &str = "localhost/cal-test-fake-anthropic:latest";
pub const STANDIN_IMAGE: &str = "localhost/cal-test-seq-standin:latest";
/// seqcli-standin: `seqcli apikey create` against the stand-in (SEQCLI_IMAGE of the sandbox).
pub const SEQCLI_IMAGE: &str = "localhost/cal-test-seqcli-standin:latest";
/// The logger built with `--format docker` (with its HEALTHCHECK); LOGGER_IMAGE is built with
/// the card's plain command (OCI format, no HEALTHCHECK).
pub const LOGGER_IMAGE_DOCKER: &str = "localhost/claude-api-logger:test-docker";
pub const CLAUDE_IMAGE: &str = "localhost/cal-test-claude:3";
/// The stand-in for container/claude/Containerfile's node base (bases.sh).
pub const NODE_IMAGE: &str = "localhost/cal-test-node:20";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} not set: run scripts/test.sh, which installs podman and writes it")
    })
}

/// Fails (never skips) when the harness did not set podman up.
pub fn require_podman_env() {
    require_env("CAL_CACHE");
    require_env("CONTAINERS_CONF");
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn podman(args: &[&str]) -> String {
    let out = run(Command::new("podman").args(args));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// stdout of a podman command that may fail (cleanup must never panic).
pub fn podman_try(args: &[&str]) -> String {
    Command::new("podman")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub fn podman_ok(args: &[&str]) -> bool {
    Command::new("podman")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds the logger image with `podman build -t LOGGER_IMAGE scripts/claude-api-logger/`
/// (offline, on local bases); returns the build's seconds.
pub fn build_logger_image() -> u64 {
    build_logger_image_as(LOGGER_IMAGE, &[])
}

/// [`build_logger_image`] with another tag and extra `podman build` options.
pub fn build_logger_image_as(tag: &str, options: &[&str]) -> u64 {
    require_podman_env();
    let out = run(Command::new(
        repo_root().join("crates/claude-api-logger/tests/podman/build-logger.sh"),
    )
    .arg(tag)
    .args(options));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The Debian base, Rust builder, distroless look-alike and Claude Code images.
pub fn build_bases() {
    require_podman_env();
    run(&mut Command::new(
        repo_root().join("crates/claude-api-logger/tests/podman/bases.sh"),
    ));
}

/// fake-anthropic and seq-standin images: the debug binaries on the local Debian base.
pub fn build_peer_images() {
    build_bases();
    let root = repo_root();
    run(Command::new(env!("CARGO")).current_dir(&root).args([
        "build",
        "-p",
        "fake-anthropic",
        "-p",
        "seq-standin",
    ]));
    let ctx = temp_dir("peers");
    for bin in ["fake-anthropic", "seq-standin", "seqcli-standin"] {
        std::fs::copy(root.join("target/debug").join(bin), ctx.join(bin)).unwrap();
    }
    std::fs::write(
        ctx.join("fake.Containerfile"),
        "FROM localhost/cal-test-debian:bookworm\nCOPY fake-anthropic /usr/local/bin/\n\
         EXPOSE 8080\nENTRYPOINT [\"fake-anthropic\", \"--listen\", \"0.0.0.0:8080\"]\n",
    )
    .unwrap();
    std::fs::write(
        ctx.join("seq.Containerfile"),
        "FROM localhost/cal-test-debian:bookworm\nCOPY seq-standin /usr/local/bin/\n\
         RUN mkdir -p /data\nEXPOSE 80 5341\n\
         ENTRYPOINT [\"seq-standin\", \"--listen\", \"0.0.0.0:5341\", \"--also-listen\", \
         \"0.0.0.0:80\", \"--store\", \"/data\", \"--first-run-rules\"]\n",
    )
    .unwrap();
    std::fs::write(
        ctx.join("seqcli.Containerfile"),
        "FROM localhost/cal-test-debian:bookworm\nCOPY seqcli-standin /usr/local/bin/\n\
         ENTRYPOINT [\"seqcli-standin\"]\n",
    )
    .unwrap();
    let lock = format!("{}/podman/peers.lock", require_env("CAL_CACHE"));
    for (file, tag) in [
        ("fake.Containerfile", FAKE_IMAGE),
        ("seq.Containerfile", STANDIN_IMAGE),
        ("seqcli.Containerfile", SEQCLI_IMAGE),
    ] {
        run(Command::new("flock")
            .arg(&lock)
            .args(["podman", "build", "-q", "-f"])
            .arg(ctx.join(file))
            .args(["-t", tag])
            .arg(&ctx));
    }
    let _ = std::fs::remove_dir_all(&ctx);
}

/// CLAUDE_SANDBOX_STATE of the tests: never the invoking user's own state directory.
pub fn sandbox_state_root() -> PathBuf {
    std::env::temp_dir().join("cal-podman-sandbox-state")
}

pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cal-podman-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A unique name prefix whose containers, volumes and network are removed on drop.
pub struct Scope {
    pub name: String,
}

impl Scope {
    pub fn new(test: &str) -> Self {
        require_podman_env();
        let scope = Scope {
            name: format!("cal-{test}-{}", std::process::id()),
        };
        scope.clean();
        scope
    }

    /// Where the sandbox script keeps this scope's Seq password and API key
    /// (CLAUDE_SANDBOX_STATE/SANDBOX_NAME).
    pub fn state_dir(&self) -> PathBuf {
        sandbox_state_root().join(&self.name)
    }

    pub fn net(&self) -> String {
        format!("{}-net", self.name)
    }

    pub fn containers(&self) -> Vec<String> {
        podman_try(&[
            "ps",
            "-a",
            "--filter",
            &format!("name=^{}", self.name),
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }

    fn clean(&self) {
        for c in self.containers() {
            let _ = podman_ok(&["rm", "-f", "-t", "0", &c]);
        }
        for v in podman_try(&[
            "volume",
            "ls",
            "--filter",
            &format!("name={}", self.name),
            "--format",
            "{{.Name}}",
        ])
        .lines()
        {
            let _ = podman_ok(&["volume", "rm", "-f", v]);
        }
        let _ = podman_ok(&["network", "rm", "-f", &self.net()]);
        let _ = std::fs::remove_dir_all(self.state_dir());
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.clean();
    }
}

/// seq-standin + fake-anthropic + the logger on one network; ports published on loopback.
pub struct Stack {
    pub scope: Scope,
    pub store: PathBuf,
    pub logger: String,
    pub logger_port: u16,
    pub standin_port: u16,
}

impl Stack {
    pub fn start(test: &str) -> Self {
        build_peer_images();
        build_logger_image();
        let scope = Scope::new(test);
        let net = scope.net();
        podman(&["network", "create", &net]);
        let store = temp_dir(&format!("{test}-store"));
        let seq = format!("{}-seq", scope.name);
        podman(&[
            "run",
            "-d",
            "--name",
            &seq,
            "--network",
            &net,
            "--network-alias",
            "seq",
            "-p",
            "127.0.0.1::5341",
            "-v",
            &format!("{}:/data", store.display()),
            "-e",
            "ACCEPT_EULA=Y",
            "-e",
            "SEQ_FIRSTRUN_NOAUTHENTICATION=true",
            STANDIN_IMAGE,
        ]);
        let fake = format!("{}-fake", scope.name);
        podman(&[
            "run",
            "-d",
            "--name",
            &fake,
            "--network",
            &net,
            "--network-alias",
            "fake-anthropic",
            FAKE_IMAGE,
        ]);
        let logger = format!("{}-logger", scope.name);
        podman(&[
            "run",
            "-d",
            "--name",
            &logger,
            "--network",
            &net,
            "-p",
            "127.0.0.1::8000",
            // LOGGER_IMAGE is OCI (no HEALTHCHECK); the sandbox script passes it the same way.
            "--health-cmd",
            r#"["/usr/local/bin/claude-api-logger","health"]"#,
            "-e",
            "SEQ_HOST=seq",
            "-e",
            "UPSTREAM_URL=http://fake-anthropic:8080",
            LOGGER_IMAGE,
        ]);
        let stack = Stack {
            logger_port: published_port(&logger, 8000),
            standin_port: published_port(&seq, 5341),
            scope,
            store,
            logger,
        };
        stack.wait_healthy();
        stack
    }

    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !podman_ok(&["healthcheck", "run", &self.logger]) {
            assert!(
                Instant::now() < deadline,
                "logger never healthy:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn logs(&self) -> String {
        let out = Command::new("podman")
            .args(["logs", &self.logger])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Main events (one per exchange) at the stand-in.
    pub fn exchanges(&self) -> Vec<Value> {
        stored_events(&self.store)
            .into_iter()
            .filter(is_exchange)
            .collect()
    }

    pub fn wait_exchanges(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.exchanges();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} exchanges at the stand-in\n{}",
                got.len(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

pub fn published_port(container: &str, port: u16) -> u16 {
    let out = podman(&["port", container, &port.to_string()]);
    out.lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no published port {port} for {container}: {out:?}"))
}

pub fn stored_events(store: &Path) -> Vec<Value> {
    std::fs::read_to_string(store.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits up to 60 s for both turns of a tool session at the stand-in whose events `store`
/// holds: the exchange answered with `tool_use` and the one sending the tool's result back.
/// Returns every stored event and those two turns.
pub fn wait_for_tool_turns(store: &Path) -> (Vec<Value>, Vec<Value>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = stored_events(store);
        let turns: Vec<Value> = events
            .iter()
            .filter(|e| is_exchange(e) && attr(e, "url.path") == "/v1/messages")
            .filter(|e| {
                attr(e, "gen_ai.response.finish_reasons")
                    .to_string()
                    .contains("tool_use")
                    || body_of(&events, e, "request.body")
                        .is_some_and(|b| b.contains("tool_result"))
            })
            .cloned()
            .collect();
        if turns.len() >= 2 {
            return (events, turns);
        }
        assert!(
            Instant::now() < deadline,
            "{} tool turns at the stand-in; events: {events:#?}",
            turns.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn attr<'a>(event: &'a Value, key: &str) -> &'a Value {
    &event["attributes"][key]
}

pub fn is_exchange(event: &Value) -> bool {
    attr(event, "http.request.method").is_string()
}

/// The full JSON text of one body (`request.body`, `response.body`, `response.sse`) of one
/// exchange: inline on its main event (`claude.<name>`) or reassembled from ordered parts.
pub fn body_of(events: &[Value], exchange: &Value, name: &str) -> Option<String> {
    if let Some(inline) = attr(exchange, &format!("claude.{name}")).as_str() {
        return Some(inline.to_owned());
    }
    let id = attr(exchange, "claude.exchange.id").as_str()?;
    let mut parts: Vec<(i64, String)> = events
        .iter()
        .filter(|e| attr(e, "claude.exchange.id").as_str() == Some(id))
        .filter(|e| attr(e, "claude.body.name").as_str() == Some(name))
        .map(|e| {
            let part = attr(e, "claude.body.part").as_i64().unwrap_or(0);
            (part, e["body"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    parts.sort_by_key(|p| p.0);
    Some(parts.into_iter().map(|p| p.1).collect())
}

/// One HTTP/1.1 POST of a Messages request with `Connection: close`; returns the status and
/// each chunk of the response as it arrived, with its arrival time.
pub fn post_messages(port: u16, text: &str, stream: bool) -> (u16, Vec<(Instant, String)>) {
    try_post_messages(port, text, stream).expect("POST to the logger")
}

/// [`post_messages`] for callers that expect the logger may not be listening (yet).
pub fn try_post_messages(
    port: u16,
    text: &str,
    stream: bool,
) -> std::io::Result<(u16, Vec<(Instant, String)>)> {
    let body = serde_json::json!({
        "model": "claude-sonnet-4",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    })
    .to_string();
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        conn,
        "POST /v1/messages HTTP/1.1\r\nHost: api\r\nx-api-key: sk-ant-test-secret\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(conn);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut chunks = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => chunks.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            )),
        }
    }
    Ok((status, chunks))
}

/// Host pids of the processes in `container` whose command name starts with `comm`.
pub fn container_pids(container: &str, comm: &str) -> Vec<u32> {
    let pid1: u32 = podman(&["inspect", "-f", "{{.State.Pid}}", container])
        .parse()
        .unwrap();
    let mut pids = Vec::new();
    let mut todo = vec![pid1];
    while let Some(pid) = todo.pop() {
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim().starts_with(comm))
        {
            pids.push(pid);
        }
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            todo.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    pids
}
