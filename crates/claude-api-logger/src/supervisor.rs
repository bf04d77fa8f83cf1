//! The PID 1 loop: start both children (and the viewer when asked), reap every zombie, restart
//! crashes with backoff, and run the ordered shutdown (viewer stops → proxy drains → shipper
//! delivers the tail → exit 0).
use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::child::{ChildSpec, Exit};
use crate::config::Config;

/// How often to reap even without SIGCHLD (signals coalesce; this is only a safety net).
const REAP_TICK: Duration = Duration::from_millis(500);
/// The shipper's own shutdown (finish the batch in flight, save the checkpoint) is quick.
const SHIPPER_STOP_GRACE: Duration = Duration::from_secs(15);
/// Exit code with which our children report bad configuration: restarting cannot help.
const CHILD_CONFIG_ERROR: i32 = command_line::EXIT_USAGE as i32;
/// The viewer only reads: it stops at once.
const VIEWER_STOP_GRACE: Duration = Duration::from_secs(5);

struct Slot {
    spec: ChildSpec,
    pid: Option<Pid>,
    started: Instant,
    backoff: Backoff,
    restart_at: Option<Instant>,
    restarts: u32,
}

impl Slot {
    fn new(spec: ChildSpec, config: &Config) -> Self {
        Self {
            spec,
            pid: None,
            started: Instant::now(),
            backoff: Backoff::new(config.backoff_min, config.backoff_max),
            restart_at: None,
            restarts: 0,
        }
    }

    fn start(&mut self) {
        self.restart_at = None;
        self.started = Instant::now();
        match self.spec.spawn() {
            Ok(pid) => {
                info!(child = self.spec.name, pid = pid.as_raw(), program = %self.spec.program.display(), "started");
                self.pid = Some(pid);
            }
            Err(err) => {
                let delay = self.backoff.after_exit(Duration::ZERO);
                error!(child = self.spec.name, program = %self.spec.program.display(), %err, retry_in_ms = delay.as_millis() as u64, "cannot start; will retry");
                self.restart_at = Some(Instant::now() + delay);
            }
        }
    }
}

/// Why the main loop stopped.
enum Stop {
    Signal(Signal),
    ChildConfigError(&'static str),
}

pub struct Supervisor {
    config: Config,
    proxy: Slot,
    shipper: Slot,
    viewer: Option<Slot>,
}

impl Supervisor {
    pub fn new(config: Config) -> Self {
        let proxy = Slot::new(proxy_spec(&config), &config);
        let shipper = Slot::new(shipper_spec(&config), &config);
        let viewer = config
            .viewer
            .as_ref()
            .map(|v| Slot::new(viewer_spec(&config, v), &config));
        Self {
            config,
            proxy,
            shipper,
            viewer,
        }
    }

    fn slots(&mut self) -> impl Iterator<Item = &mut Slot> {
        [&mut self.proxy, &mut self.shipper]
            .into_iter()
            .chain(self.viewer.as_mut())
    }

    /// Runs until SIGTERM/SIGINT (returns exit code 0 after the ordered shutdown) or until a
    /// child reports bad configuration (returns 64).
    pub async fn run(mut self) -> anyhow::Result<u8> {
        // Handlers first: a child dying before they exist would leave a zombie until the tick.
        let mut sigchld = signal(SignalKind::child()).context("installing the SIGCHLD handler")?;
        let mut sigterm =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut sigint =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        // SIGHUP is for the proxy (reopen its log after an external logrotate), never fatal here.
        let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        become_subreaper();

        self.shipper.start();
        self.proxy.start();
        if let Some(viewer) = &mut self.viewer {
            viewer.start();
        }

        let mut tick = tokio::time::interval(REAP_TICK);
        let stop = loop {
            let next_restart = self
                .slots()
                .filter_map(|s| s.restart_at)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = sigchld.recv() => {}
                _ = tick.tick() => {}
                _ = sigterm.recv() => break Stop::Signal(Signal::SIGTERM),
                _ = sigint.recv() => break Stop::Signal(Signal::SIGINT),
                _ = sighup.recv() => {
                    if let Some(pid) = self.proxy.pid {
                        info!(child = "proxy", "SIGHUP received; forwarding it (the proxy reopens its log)");
                        if let Err(err) = kill(pid, Signal::SIGHUP) {
                            warn!(child = "proxy", %err, "could not forward SIGHUP");
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_restart.into()) => {
                    let now = Instant::now();
                    for slot in self.slots() {
                        if slot.restart_at.is_some_and(|at| at <= now) {
                            slot.restarts += 1;
                            info!(child = slot.spec.name, restart = slot.restarts, "restarting");
                            slot.start();
                        }
                    }
                }
            }
            if let Some(name) = self.reap_and_schedule() {
                break Stop::ChildConfigError(name);
            }
        };

        match stop {
            Stop::Signal(sig) => {
                info!(
                    signal = sig.as_str(),
                    "shutting down: proxy first, then the shipper delivers what was written"
                );
                self.shutdown(sig, &mut sigchld).await;
                info!("shutdown complete");
                Ok(0)
            }
            Stop::ChildConfigError(name) => {
                error!(
                    child = name,
                    "child reported a configuration error (exit 64); not restarting it, stopping"
                );
                self.shutdown(Signal::SIGTERM, &mut sigchld).await;
                Ok(crate::config::EXIT_CONFIG)
            }
        }
    }

    /// Reaps every exited process; schedules restarts of ours. Returns the name of a child that
    /// exited with the configuration-error code.
    fn reap_and_schedule(&mut self) -> Option<&'static str> {
        let mut config_error = None;
        for (pid, exit) in reap_all() {
            let Some(slot) = self.slots().find(|s| s.pid == Some(pid)) else {
                debug!(pid = pid.as_raw(), %exit, "reaped an orphaned process");
                continue;
            };
            slot.pid = None;
            let ran_for = slot.started.elapsed();
            if exit == Exit::Code(CHILD_CONFIG_ERROR) && slot.spec.name == "viewer" {
                // Reading sessions is a side job: the traffic goes on being logged and shipped.
                error!(
                    child = "viewer",
                    "the viewer reported a configuration error (exit 64, its reason is above); not restarting it, the proxy and the shipper go on"
                );
                continue;
            }
            if exit == Exit::Code(CHILD_CONFIG_ERROR) {
                config_error = Some(slot.spec.name);
                continue;
            }
            let delay = slot.backoff.after_exit(ran_for);
            warn!(
                child = slot.spec.name,
                pid = pid.as_raw(),
                ran_for_ms = ran_for.as_millis() as u64,
                restart_in_ms = delay.as_millis() as u64,
                "child {exit}; restarting after backoff"
            );
            slot.restart_at = Some(Instant::now() + delay);
        }
        config_error
    }

    async fn shutdown(&mut self, sig: Signal, sigchld: &mut tokio::signal::unix::Signal) {
        for slot in self.slots() {
            slot.restart_at = None;
        }
        if let Some(pid) = self.viewer.as_mut().and_then(|v| v.pid.take()) {
            stop_child("viewer", pid, Signal::SIGTERM, VIEWER_STOP_GRACE, sigchld).await;
        }

        // 1. The proxy stops accepting, drains in-flight exchanges and writes their records.
        if let Some(pid) = self.proxy.pid.take() {
            stop_child("proxy", pid, sig, self.config.proxy_grace, sigchld).await;
        }
        // 2. The tailing shipper finishes its batch and saves its checkpoint.
        if let Some(pid) = self.shipper.pid.take() {
            stop_child("shipper", pid, Signal::SIGTERM, SHIPPER_STOP_GRACE, sigchld).await;
        }
        // 3. One more shipper run delivers everything written, including the proxy's last lines.
        let drain = self.shipper.spec.with_extra_arg("--exit-when-drained");
        let pid = match drain.spawn() {
            Ok(pid) => pid,
            Err(err) => {
                error!(%err, "cannot start the shipper to deliver the tail; undelivered lines stay in the log file and ship at the next start");
                return;
            }
        };
        info!(
            pid = pid.as_raw(),
            timeout_s = self.config.delivery_timeout.as_secs(),
            "delivering the rest of the log file"
        );
        match wait_for(pid, self.config.delivery_timeout, sigchld).await {
            Some(exit) if exit.success() => info!("every written record was delivered"),
            Some(exit) => error!(
                "the final delivery run {exit}; undelivered lines stay in the log file and ship at the next start"
            ),
            None => {
                error!(
                    timeout_s = self.config.delivery_timeout.as_secs(),
                    "delivery did not finish in time (is Seq reachable?); stopping it: undelivered lines stay in the log file and ship at the next start"
                );
                stop_child("shipper", pid, Signal::SIGTERM, SHIPPER_STOP_GRACE, sigchld).await;
            }
        }
    }
}

/// Sends `sig`, waits up to `grace`, then SIGKILLs.
async fn stop_child(
    name: &'static str,
    pid: Pid,
    sig: Signal,
    grace: Duration,
    sigchld: &mut tokio::signal::unix::Signal,
) {
    info!(
        child = name,
        pid = pid.as_raw(),
        signal = sig.as_str(),
        grace_s = grace.as_secs(),
        "stopping"
    );
    if let Err(err) = kill(pid, sig) {
        debug!(child = name, %err, "signal not delivered (already gone?)");
    }
    match wait_for(pid, grace, sigchld).await {
        Some(exit) => info!(child = name, "stopped: {exit}"),
        None => {
            warn!(
                child = name,
                grace_s = grace.as_secs(),
                "did not stop within its grace period; killing it"
            );
            let _ = kill(pid, Signal::SIGKILL);
            if let Some(exit) = wait_for(pid, Duration::from_secs(5), sigchld).await {
                info!(child = name, "stopped: {exit}");
            }
        }
    }
}

/// Waits for `pid` to exit (reaping any other zombie meanwhile); None on timeout.
async fn wait_for(
    pid: Pid,
    timeout: Duration,
    sigchld: &mut tokio::signal::unix::Signal,
) -> Option<Exit> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        for (reaped, exit) in reap_all() {
            if reaped == pid {
                return Some(exit);
            }
            debug!(pid = reaped.as_raw(), %exit, "reaped an orphaned process");
        }
        // A waitpid error other than "no child" means the pid is not ours any more.
        if matches!(kill(pid, None), Err(Errno::ESRCH)) {
            return Some(Exit::Code(-1));
        }
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::time::sleep_until(deadline) => return None,
        }
    }
}

/// Collects every exited child (ours and reparented orphans) without blocking.
pub fn reap_all() -> Vec<(Pid, Exit)> {
    let mut exits = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(status) => {
                if let Some(exit) = Exit::from_status(status) {
                    exits.push(exit);
                }
            }
        }
    }
    exits
}

/// Outside a container (tests, a laptop) orphans of our children come to us, not init.
fn become_subreaper() {
    if nix::unistd::getpid().as_raw() != 1
        && let Err(err) = nix::sys::prctl::set_child_subreaper(true)
    {
        debug!(%err, "cannot become a child subreaper");
    }
}

fn proxy_spec(config: &Config) -> ChildSpec {
    ChildSpec {
        name: "proxy",
        program: config.proxy_bin.clone(),
        args: vec![
            "--upstream".into(),
            config.upstream_url.clone().into(),
            "--log-file".into(),
            config.log_file.clone().into(),
        ],
        env: Vec::new(),
    }
}

/// `claude-api-logger serve`: this same program; the token goes in its environment, never on
/// its command line (where any process could read it).
fn viewer_spec(config: &Config, viewer: &crate::config::Viewer) -> ChildSpec {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    if let Some(token) = &viewer.token {
        env.push(("VIEWER_TOKEN".into(), token.clone().into()));
    }
    ChildSpec {
        name: "viewer",
        program: viewer.program.clone(),
        args: vec![
            "serve".into(),
            "--listen".into(),
            viewer.listen.to_string().into(),
            "--log-file".into(),
            config.log_file.clone().into(),
        ],
        env,
    }
}

fn shipper_spec(config: &Config) -> ChildSpec {
    // fluent-bit.conf expands these; an unset SEQ_API_KEY expands to "no header".
    let mut env: Vec<(OsString, OsString)> = vec![
        ("SEQ_HOST".into(), config.seq_host.clone().into()),
        ("SEQ_PORT".into(), config.seq_port.to_string().into()),
    ];
    if let Some(key) = &config.seq_api_key {
        env.push(("SEQ_API_KEY".into(), key.clone().into()));
    }
    ChildSpec {
        name: "shipper",
        program: config.shipper_bin.clone(),
        args: vec!["-c".into(), config.fluent_bit_conf.clone().into()],
        env,
    }
}
