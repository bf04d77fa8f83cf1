//! The real peers of the viewer's tests (tests/cli.rs, tests/serve.rs): the tools
//! scripts/test.sh installs, fake-anthropic, the real proxy binary and the real Claude Code CLI
//! in print mode, headless Chromium through playwright-core. A missing one fails the test
//! naming its install step.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
pub use test_peers::{PATH, required_env};

/// The `claude-api-logger` binary, whose subcommands these tests drive.
pub fn bin() -> PathBuf {
    test_peers::workspace_bin("claude-api-logger", "claude-api-logger")
}

/// A fresh directory `cal-<suite>-<test>-<pid>` under the system's temp dir.
pub fn temp_dir(suite: &str, test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cal-{suite}-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The cargo target directory this binary was built into (`target/`).
pub fn target_dir() -> PathBuf {
    bin()
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/claude-api-logger")
        .to_path_buf()
}

/// A program built next to this one by the workspace build.
pub fn sibling(name: &str) -> PathBuf {
    let bin = bin().with_file_name(name);
    assert!(
        bin.exists(),
        "{} not built: run scripts/test.sh (or `cargo build --workspace`)",
        bin.display()
    );
    bin
}

/// Runs `future` on a runtime thread of its own for the rest of the test; returns what it
/// sends back once started.
pub fn background<T: Send + 'static>(
    start: impl FnOnce(std::sync::mpsc::Sender<T>) -> std::pin::Pin<Box<dyn Future<Output = ()>>>
    + Send
    + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(start(tx));
    });
    rx.recv().unwrap()
}

/// fake-anthropic on its own runtime thread; its base URL.
pub fn fake_upstream() -> String {
    let addr: std::net::SocketAddr = background(|tx| {
        Box::pin(async move {
            let addr = fake_anthropic::spawn("127.0.0.1:0".parse().unwrap())
                .await
                .expect("start fake-anthropic");
            tx.send(addr).unwrap();
            std::future::pending::<()>().await;
        })
    });
    format!("http://{addr}")
}

/// A child program killed (by its own id) when the test ends.
pub struct Running {
    pub child: Child,
    /// The address it printed in its `listening on` line.
    pub addr: String,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` and waits for its `listening on ` line on stdout (saved to `dir`).
pub fn start(mut command: Command, dir: &Path, name: &str) -> Running {
    let stdout = dir.join(format!("{name}.stdout"));
    let mut child = command
        .env("PATH", PATH)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{name}.stderr"))).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&stdout).unwrap_or_default();
        if let Some(rest) = text.lines().find_map(|l| l.strip_prefix("listening on ")) {
            let addr = rest
                .trim_start_matches("http://")
                .split(['/', ' '])
                .next()
                .unwrap()
                .to_string();
            return Running { child, addr };
        }
        assert!(
            Instant::now() < deadline,
            "{name} printed no `listening on` line"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{name} exited ({status}): {}",
                std::fs::read_to_string(dir.join(format!("{name}.stderr"))).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The real proxy binary in front of `upstream`, logging to `log`.
pub fn proxy(upstream: &str, log: &Path, dir: &Path) -> Running {
    let mut cmd = Command::new(sibling("claude-api-proxy"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        upstream,
        "--log-file",
    ])
    .arg(log)
    .env_clear();
    start(cmd, dir, "proxy")
}

/// `claude ARGS --output-format json` in print mode through `proxy` with `api_key`, in
/// `dir/work` with its own home and temp dir; its JSON result, asserted not to be an error.
pub fn claude(proxy: &Running, dir: &Path, api_key: &str, args: &[&str]) -> Value {
    let (home, tmp, work) = (dir.join("home"), dir.join("tmp"), dir.join("work"));
    for d in [&home, &tmp, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut child = test_peers::claude_command(&work, &home, &tmp, &proxy.url())
        .args(args)
        .args(["--model", "claude-sonnet-4-5", "--output-format", "json"])
        .arg("--dangerously-skip-permissions")
        .env("ANTHROPIC_API_KEY", api_key)
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start claude");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("claude {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "claude {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("claude printed JSON");
    assert_eq!(result["is_error"], false, "{result}");
    result
}

/// Waits until the log holds `n` records mentioning `needle` (the proxy writes a record once
/// its exchange has ended, just after the client got the response); returns every line.
pub fn wait_for_log(log: &Path, needle: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= n && text.ends_with('\n') {
            return text.lines().map(str::to_string).collect();
        }
        assert!(
            Instant::now() < deadline,
            "no record with {needle:?} in the log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `node tests/browser/<script>` with playwright-core on its module path and Debian's chromium
/// there for it to drive.
pub fn node(script: &str) -> Command {
    let cache = required_env("CAL_CACHE", "the test peers");
    let modules = cache.join("npm/lib/node_modules");
    assert!(
        modules.join("playwright-core").exists(),
        "{} missing: run scripts/test.sh, which installs playwright-core",
        modules.join("playwright-core").display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium missing: run scripts/test.sh, which installs Debian's chromium"
    );
    let mut cmd = Command::new("node");
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/browser")
            .join(script),
    )
    .env("NODE_PATH", &modules);
    cmd
}

/// Runs `node tests/browser/<script> <args>` (see [`node`]) and returns the JSON report it
/// prints; a failed run fails the test with its stderr.
pub fn browser_report<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> Value {
    let out = node(script)
        .args(args)
        .output()
        .expect("run node (scripts/test.sh installs it with Claude Code)");
    assert!(
        out.status.success(),
        "{script} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{script} prints JSON"))
}
