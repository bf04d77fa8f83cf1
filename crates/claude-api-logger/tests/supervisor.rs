//! The supervisor binary against stub children (shell scripts that record their life in a
//! file): ordered shutdown, signal forwarding, restart with backoff, zombie reaping, exit 64.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_claude-api-logger");

struct Run {
    dir: PathBuf,
    child: Child,
}

fn stub(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/stubs")
        .join(name)
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cal-supervisor-{test}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(dir: &Path, env: &[(&str, &str)]) -> Command {
    let conf = dir.join("fluent-bit.conf");
    std::fs::write(&conf, "[SERVICE]\n    flush 1\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("EVENTS", dir.join("events"))
        .env("LOG_LEVEL", "debug")
        .args(["--proxy-bin"])
        .arg(stub("proxy.sh"))
        .arg("--shipper-bin")
        .arg(stub("shipper.sh"))
        .arg("--fluent-bit-conf")
        .arg(&conf)
        .args([
            "--restart-backoff-min-ms",
            "200",
            "--restart-backoff-max-ms",
            "800",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn start(test: &str, env: &[(&str, &str)]) -> Run {
    let dir = temp_dir(test);
    let child = command(&dir, env).spawn().expect("supervisor starts");
    Run { dir, child }
}

impl Run {
    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("events"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    fn wait_for_event(&self, prefix: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .events()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
            < count
        {
            assert!(
                Instant::now() < deadline,
                "no {count}x {prefix:?} in {:?}\nstderr:\n{}",
                self.events(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_stderr(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    fn wait_exit(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited, not killed");
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "supervisor still running after {within:?}\nstderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e.split(' ').next().unwrap().to_owned())
            .collect()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Stubs left behind by a failed assertion stop themselves when their parent is gone
        // only if signalled; kill them by the pids they recorded.
        for event in self.events() {
            if let Some(pid) = event.split(' ').nth(1).and_then(|p| p.parse::<i32>().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn missing_seq_host_exits_64_before_starting_anything() {
    let dir = temp_dir("config");
    let out = command(&dir, &[]).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SEQ_HOST is not set"), "{stderr}");
    assert!(!dir.join("events").exists(), "a child was started");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_proxy_first_then_shipper_delivers_the_tail_then_exit_0() {
    let mut run = start(
        "order",
        &[("SEQ_HOST", "seq.example"), ("STUB_DRAIN_SECS", "1")],
    );
    run.wait_for_event("proxy-start", 1);
    run.wait_for_event("shipper-start", 1);
    run.signal(Signal::SIGTERM);
    assert_eq!(
        run.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        run.stderr()
    );
    assert_eq!(
        run.kinds()[2..],
        [
            "proxy-TERM",
            "proxy-exit",
            "shipper-TERM",
            "shipper-drain-start",
            "shipper-drain-exit"
        ],
        "{:?}",
        run.events()
    );
    let drain = run
        .events()
        .into_iter()
        .find(|e| e.starts_with("shipper-drain-start"))
        .unwrap();
    assert!(
        drain.ends_with("SEQ_HOST=seq.example SEQ_PORT=5341"),
        "{drain}"
    );
}

#[test]
fn proxy_gets_upstream_and_log_file_arguments() {
    let run = start(
        "args",
        &[
            ("SEQ_HOST", "seq"),
            ("UPSTREAM_URL", "http://fake:8080"),
            ("LOG_FILE", "/tmp/x.log"),
        ],
    );
    run.wait_for_event("proxy-start", 1);
    run.wait_for_event("shipper-start", 1);
    let events = run.events();
    let proxy = events
        .iter()
        .find(|e| e.starts_with("proxy-start"))
        .unwrap();
    assert!(
        proxy.ends_with("--upstream http://fake:8080 --log-file /tmp/x.log"),
        "{proxy}"
    );
    let shipper = events
        .iter()
        .find(|e| e.starts_with("shipper-start"))
        .unwrap();
    assert!(shipper.contains(" -c "), "{shipper}");
}

#[test]
fn sigint_is_forwarded_to_the_proxy() {
    let mut run = start("sigint", &[("SEQ_HOST", "seq")]);
    run.wait_for_event("proxy-start", 1);
    run.wait_for_event("shipper-start", 1);
    run.signal(Signal::SIGINT);
    assert_eq!(run.wait_exit(Duration::from_secs(20)), 0);
    assert!(
        run.kinds().contains(&"proxy-INT".to_owned()),
        "{:?}",
        run.events()
    );
}

#[test]
fn sighup_is_forwarded_to_the_proxy_and_stops_nothing() {
    let mut run = start("sighup", &[("SEQ_HOST", "seq")]);
    run.wait_for_event("proxy-start", 1);
    run.wait_for_event("shipper-start", 1);
    run.signal(Signal::SIGHUP);
    run.wait_for_event("proxy-HUP", 1);
    run.signal(Signal::SIGHUP);
    run.wait_for_event("proxy-HUP", 2);
    let kinds = run.kinds();
    assert!(!kinds.contains(&"proxy-exit".to_owned()), "{kinds:?}");
    assert!(!kinds.contains(&"shipper-HUP".to_owned()), "{kinds:?}");
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait_exit(Duration::from_secs(20)), 0);
    let starts = run.kinds().iter().filter(|k| *k == "proxy-start").count();
    assert_eq!(starts, 1, "the proxy was never restarted");
}

#[test]
fn crashing_proxy_is_restarted_with_backoff_and_the_reason_is_logged() {
    let started = Instant::now();
    let mut run = start("crash", &[("SEQ_HOST", "seq"), ("STUB_PROXY", "crash")]);
    // Backoff 200, 400, 800, 800 ms before the 2nd to 5th start: at least 2.2 s for five
    // starts, however fast or loaded the machine; without backoff they take milliseconds.
    run.wait_for_event("proxy-start", 5);
    let five_starts = started.elapsed();
    assert!(
        five_starts >= Duration::from_millis(2200),
        "5 starts in {five_starts:?}: {:?}",
        run.events()
    );
    assert!(
        run.stderr()
            .contains("child exited with code 3; restarting after backoff"),
        "{}",
        run.stderr()
    );
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait_exit(Duration::from_secs(20)), 0);
}

#[test]
fn killed_proxy_is_restarted_and_the_signal_is_named() {
    let mut run = start("kill9", &[("SEQ_HOST", "seq")]);
    run.wait_for_event("proxy-start", 1);
    let first = run
        .events()
        .into_iter()
        .find(|e| e.starts_with("proxy-start"))
        .unwrap();
    let pid: i32 = first.split(' ').nth(1).unwrap().parse().unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    run.wait_for_event("proxy-start", 2);
    assert!(
        run.stderr().contains("child was killed by signal SIGKILL"),
        "{}",
        run.stderr()
    );
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait_exit(Duration::from_secs(20)), 0);
}

#[test]
fn child_configuration_error_stops_everything_with_64() {
    let mut run = start("child64", &[("SEQ_HOST", "seq"), ("STUB_PROXY", "config")]);
    assert_eq!(
        run.wait_exit(Duration::from_secs(20)),
        64,
        "{}",
        run.stderr()
    );
    assert_eq!(
        run.kinds().iter().filter(|k| *k == "proxy-start").count(),
        1
    );
}

#[test]
fn orphaned_grandchildren_are_reaped() {
    let mut run = start("zombies", &[("SEQ_HOST", "seq"), ("STUB_PROXY", "orphan")]);
    run.wait_for_event("proxy-start", 1);
    // The orphan (`sleep 0.3`) ends and the supervisor says it reaped it.
    run.wait_for_stderr("reaped an orphaned process");
    let me = run.child.id().to_string();
    let zombies: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
            let mut fields = after.split(' ');
            fields.next() == Some("Z") && fields.next() == Some(me.as_str())
        })
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    assert!(
        run.stderr().contains("reaped an orphaned process"),
        "{}",
        run.stderr()
    );
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait_exit(Duration::from_secs(20)), 0);
}

#[test]
fn health_subcommand_reports_whether_the_proxy_port_accepts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let status = |addr: &str| {
        Command::new(BIN)
            .args(["health", "--listen", addr])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(status(&addr), Some(0));
    drop(listener);
    assert_eq!(status(&addr), Some(1));
}

#[test]
fn with_viewer_listen_the_viewer_runs_beside_the_children_and_stops_first() {
    use std::io::{Read as _, Write as _};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_dir = temp_dir("viewer-log");
    let log = log_dir.join("traffic.log");
    std::fs::write(&log, "").unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut run = start(
        "viewer",
        &[
            ("SEQ_HOST", "seq"),
            ("LOG_FILE", log.to_str().unwrap()),
            ("VIEWER_LISTEN", &listen),
        ],
    );
    run.wait_for_event("proxy-start", 1);
    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&listen) {
            s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut page = String::new();
            let _ = s.read_to_string(&mut page);
            if page.starts_with("HTTP/1.1 200") {
                break page;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the viewer never answered on {listen}\n{}",
            run.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(page.contains("Claude Code sessions"), "{page}");
    run.signal(Signal::SIGTERM);
    assert_eq!(
        run.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        run.stderr()
    );
    let stderr = run.stderr();
    let at = |what: &str| {
        stderr
            .lines()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in {stderr}"))
    };
    assert!(
        at("stopped: exited with code 0 child=\"viewer\"") < at("stopping child=\"proxy\""),
        "the viewer stops first: {stderr}"
    );
    assert!(
        std::net::TcpStream::connect(&listen).is_err(),
        "the viewer stopped"
    );
    assert_eq!(run.kinds()[2], "proxy-TERM", "{:?}", run.events());
    let _ = std::fs::remove_dir_all(&log_dir);
}

#[test]
fn a_viewer_off_loopback_without_a_token_exits_64_before_starting_anything() {
    let dir = temp_dir("viewer-config");
    let out = command(
        &dir,
        &[("SEQ_HOST", "seq"), ("VIEWER_LISTEN", "0.0.0.0:8001")],
    )
    .stderr(Stdio::piped())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("VIEWER_TOKEN"), "{stderr}");
    assert!(!dir.join("events").exists(), "a child was started");
    let _ = std::fs::remove_dir_all(&dir);
}
