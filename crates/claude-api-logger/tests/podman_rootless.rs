//! scripts/claude-sandbox.sh under rootless podman, as on a workstation: a non-root user with
//! its own podman storage runs `mount` and `clone` with the real Claude Code CLI, Seq (the
//! stand-in, with its first-run rules), the logger and a fake Anthropic upstream on a rootless
//! podman network. rootless.sh sets the user up and copies the images into its storage.
mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

const USER: &str = "cal-rootless";

/// The test user, set up by rootless.sh with the given images in its storage.
struct Rootless {
    env: Vec<(String, String)>,
    home: PathBuf,
    uid: u32,
}

impl Rootless {
    fn setup(images: &[&str]) -> Self {
        require_podman_env();
        let out = run(Command::new(
            repo_root().join("crates/claude-api-logger/tests/podman/rootless.sh"),
        )
        .arg(USER)
        .args(images));
        let env: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let home = PathBuf::from(&env.iter().find(|(k, _)| k == "HOME").unwrap().1);
        let uid = std::fs::metadata(&home).unwrap().uid();
        assert_ne!(uid, 0, "the rootless user must not be root");
        Rootless { env, home, uid }
    }

    /// `program args...` as the user, with its environment (and nothing of root's).
    fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args([
            "-u",
            USER,
            "--",
            "env",
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin",
        ])
        .args(self.env.iter().map(|(k, v)| format!("{k}={v}")))
        .arg(program)
        .stdin(Stdio::null());
        cmd
    }

    fn podman(&self, args: &[&str]) -> String {
        let out = run(self.cmd("podman").args(args));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn volume_dir(&self, volume: &str) -> PathBuf {
        PathBuf::from(self.podman(&["volume", "inspect", "-f", "{{.Mountpoint}}", volume]))
    }

    /// claude-sandbox.sh as the user, set up like podman_e2e.rs's `sandbox`.
    fn sandbox(&self, name: &str, dir: &Path, env: &[String], args: &[&str]) -> Output {
        let mut cmd = self.cmd("env");
        cmd.args(env)
            .args([
                format!("SANDBOX_NAME={name}"),
                format!("SEQ_IMAGE={STANDIN_IMAGE}"),
                format!("SEQCLI_IMAGE={SEQCLI_IMAGE}"),
                format!("LOGGER_IMAGE={LOGGER_IMAGE}"),
                format!("CLAUDE_IMAGE={CLAUDE_IMAGE}"),
                "UPSTREAM_URL=http://fake-anthropic:8080".to_owned(),
                "ANTHROPIC_API_KEY=sk-ant-test-secret".to_owned(),
                "DISABLE_ERROR_REPORTING=1".to_owned(),
                "bash".to_owned(),
            ])
            .arg(repo_root().join("scripts/claude-sandbox.sh"))
            .args(args)
            .current_dir(dir);
        run(&mut cmd)
    }

    /// Removes what an earlier run of this test left in the user's podman (the user is this
    /// test's own), e.g. after it failed half-way.
    fn clean_all(&self) {
        for args in [
            &["rm", "-a", "-f", "-t", "0"][..],
            &["volume", "prune", "-f"],
            &["network", "prune", "-f"],
        ] {
            let _ = self.cmd("podman").args(args).output();
        }
        let _ = std::fs::remove_dir_all(self.home.join(".local/state/claude-sandbox"));
    }

    /// Removes everything of the sandbox `name` from the user's podman and state directory,
    /// the test's fake upstream last: removing a container from a rootless network stalls the
    /// next DNS lookup of the containers left on it for up to 40 s (aardvark-dns 1.4), and the
    /// logger's last delivery to Seq would wait on it.
    fn clean(&self, name: &str) {
        let _ = self
            .cmd("env")
            .arg(format!("SANDBOX_NAME={name}"))
            .arg("bash")
            .arg(repo_root().join("scripts/claude-sandbox.sh"))
            .args(["clean", "--containers", "--volumes"])
            .output();
        let _ = self
            .cmd("podman")
            .args(["rm", "-f", "-t", "0", &format!("{name}-fake")])
            .output();
        let _ = self
            .cmd("podman")
            .args(["network", "rm", "-f", &format!("{name}-net")])
            .output();
    }
}

/// `GET path` on 127.0.0.1:port; the status code, or 0 when nothing answers.
fn get_status(port: u16, path: &str) -> u16 {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(conn, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut head = [0u8; 12];
    match conn.read_exact(&mut head) {
        Ok(()) => String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// The whole documented path as a non-root user with rootless podman: Seq comes up with its
/// generated password and published on 127.0.0.1, the logger ships both turns of a real Claude
/// Code tool session to it, and the files Claude Code creates, edits and deletes in the user's
/// project (uid 1000 inside) are the user's on the host. Then `clone` in the same sandbox: the
/// kept clone is the user's too.
#[test]
fn rootless_sandbox_works_on_the_users_project_and_ships_to_seq() {
    build_peer_images();
    build_logger_image();
    let user = Rootless::setup(&[
        CLAUDE_IMAGE,
        LOGGER_IMAGE,
        STANDIN_IMAGE,
        SEQCLI_IMAGE,
        FAKE_IMAGE,
    ]);
    user.clean_all();
    let name = format!("cal-rootless-{}", std::process::id());
    let net = format!("{name}-net");
    user.podman(&["network", "create", &net]);
    user.podman(&[
        "run",
        "-d",
        "--name",
        &format!("{name}-fake"),
        "--network",
        &net,
        "--network-alias",
        "fake-anthropic",
        FAKE_IMAGE,
    ]);

    // The user's project: theirs, not world-writable.
    let project = user.home.join(format!("project-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&project);
    run(user.cmd("mkdir").arg(&project));
    run(user.cmd("sh").arg("-c").arg(format!(
        "cd {} && echo from-host >host.txt && echo bye >delete-me.txt",
        project.display()
    )));
    let ui_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let viewer_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = user.sandbox(
        &name,
        &project,
        &[
            format!("SEQ_UI_PORT={ui_port}"),
            format!("VIEWER_PORT={viewer_port}"),
        ],
        &[
            "--otel",
            "--log-api",
            "--rm",
            "mount",
            "-p",
            "Edit the project [[tool:Bash:echo created-inside >created.txt && \
             echo edited-inside >>host.txt && rm delete-me.txt && id -u]]",
        ],
    );
    // The session viewer's port, published by rootless podman on 127.0.0.1, asks for its token.
    {
        use std::io::{Read as _, Write as _};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", viewer_port))
            .expect("the viewer's port is published");
        conn.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The fake model answers the tool result with it: the command ran as uid 1000 inside.
    assert!(
        stdout.contains("Tool result received: 1000"),
        "{stdout}\n{stderr}"
    );

    let uid = |p: &Path| std::fs::metadata(p).unwrap().uid();
    assert_eq!(uid(&project), user.uid);
    let created = project.join("created.txt");
    assert_eq!(
        std::fs::read_to_string(&created).unwrap(),
        "created-inside\n"
    );
    assert_eq!(
        uid(&created),
        user.uid,
        "created inside, the user's outside"
    );
    assert_eq!(
        std::fs::read_to_string(project.join("host.txt")).unwrap(),
        "from-host\nedited-inside\n"
    );
    assert!(!project.join("delete-me.txt").exists(), "deleted inside");

    // Seq: up with a generated admin password, its port on 127.0.0.1 only.
    assert!(stderr.contains("generated Seq admin password"), "{stderr}");
    let seq = format!("{name}-seq");
    assert_eq!(
        user.podman(&["port", &seq, "80"]),
        format!("127.0.0.1:{ui_port}")
    );
    assert_eq!(get_status(ui_port, "/api"), 200, "Seq's API from the host");

    // Both turns, with the tool_use input, reached Seq through the logger; no API key did.
    let (events, _) = wait_for_tool_turns(&user.volume_dir(&format!("{name}-seq-data")));
    let shipped: String = events.iter().map(|e| e.to_string()).collect();
    assert!(
        shipped.contains("echo created-inside"),
        "the tool_use input"
    );
    assert!(
        !shipped.contains("sk-ant-test-secret"),
        "the API key reached Seq"
    );

    // clone, in the same sandbox: the clone and what Claude Code writes there are the user's.
    let out = user.sandbox(
        &name,
        &project,
        &["SEQ_UI_PORT=".to_owned(), "VIEWER_PORT=".to_owned()],
        &[
            "--otel",
            "--log-api",
            "--rm",
            "--repo=/srv/fixture.git",
            "--branch=feature",
            "clone",
            "-p",
            "Write here [[tool:Bash:echo from-claude >made-in-clone.txt && cat fixture.txt]]",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Tool result received: fixture on feature"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let workspace = user.volume_dir(&format!("{name}-workspace"));
    for file in [".git", "fixture.txt", "made-in-clone.txt"] {
        assert_eq!(uid(&workspace.join(file)), user.uid, "{file} in the clone");
    }

    user.clean(&name);
    let _ = std::fs::remove_dir_all(&project);
}
