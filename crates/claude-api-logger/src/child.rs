//! One supervised program: how to start it, and how to say why it died. Children are spawned
//! with std (not tokio::process) because PID 1 reaps every child itself with waitpid(-1).
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// What to run: program, arguments and extra environment (the rest is inherited).
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Short name used in logs: "proxy", "shipper".
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

impl ChildSpec {
    /// Starts the program; its stdout/stderr are the container's.
    pub fn spawn(&self) -> std::io::Result<Pid> {
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .spawn()?;
        // The std Child handle is dropped without waiting: the reaper owns the exit status.
        Ok(Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX)))
    }

    /// The same program with extra arguments (the shutdown drain run of the shipper).
    pub fn with_extra_arg(&self, arg: &str) -> Self {
        let mut spec = self.clone();
        spec.args.push(arg.into());
        spec
    }
}

/// How a child ended, for logs and restart decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(Signal),
}

impl Exit {
    pub fn from_status(status: WaitStatus) -> Option<(Pid, Exit)> {
        match status {
            WaitStatus::Exited(pid, code) => Some((pid, Exit::Code(code))),
            WaitStatus::Signaled(pid, sig, _) => Some((pid, Exit::Signal(sig))),
            _ => None,
        }
    }

    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with code {code}"),
            Exit::Signal(sig) => write!(f, "was killed by signal {}", sig.as_str()),
        }
    }
}
