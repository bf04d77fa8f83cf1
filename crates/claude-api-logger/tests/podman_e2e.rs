//! End to end with real podman containers: the image built from container/Containerfile,
//! scripts/claude-sandbox.sh with the real Claude Code CLI, a Seq stand-in and a fake
//! Anthropic upstream, all on a podman network.
mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

fn sandbox(scope: &Scope) -> Command {
    let mut cmd = Command::new(repo_root().join("scripts/claude-sandbox.sh"));
    cmd.env("SANDBOX_NAME", &scope.name)
        .env("SEQ_IMAGE", STANDIN_IMAGE)
        .env("SEQCLI_IMAGE", SEQCLI_IMAGE)
        .env("CLAUDE_SANDBOX_STATE", sandbox_state_root())
        .env_remove("SEQ_ADMIN_PASSWORD")
        .env_remove("SEQ_API_KEY")
        .env("LOGGER_IMAGE", LOGGER_IMAGE)
        .env("CLAUDE_IMAGE", CLAUDE_IMAGE)
        .env("SEQ_UI_PORT", "")
        .env("VIEWER_PORT", "")
        .env("UPSTREAM_URL", "http://fake-anthropic:8080")
        .env("ANTHROPIC_API_KEY", "sk-ant-test-secret")
        .env("DISABLE_ERROR_REPORTING", "1")
        .env_remove("ANTHROPIC_BASE_URL")
        .stdin(Stdio::null());
    cmd
}

#[test]
fn claude_sandbox_script_is_shellcheck_clean() {
    let root = repo_root();
    run(Command::new("shellcheck")
        .arg(root.join("scripts/claude-sandbox.sh"))
        .arg(root.join("crates/claude-api-logger/tests/podman/bases.sh"))
        .arg(root.join("crates/claude-api-logger/tests/podman/build-logger.sh"))
        .arg(root.join("crates/claude-api-logger/tests/podman/rootless.sh")));
}

/// Secrets reach containers by name (`-e NAME`, the value taken from the script's environment)
/// or on stdin, never as a value on a command line, where the host's process list shows it:
/// seqcli generates the Seq API key and prints it (no `--token`), and reads the admin password
/// from stdin. (Without podman; the sandbox test below runs the key creation for real.)
#[test]
fn no_secret_value_is_put_on_a_command_line() {
    let script = std::fs::read_to_string(repo_root().join("scripts/claude-sandbox.sh")).unwrap();
    let secrets = [
        "SEQ_API_KEY",
        "SEQ_ADMIN_PASSWORD",
        "SEQ_FIRSTRUN_ADMINPASSWORD",
        "VIEWER_TOKEN",
        "ANTHROPIC_API_KEY",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "token",
    ];
    for (n, line) in script.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        for flag in [
            "--token",
            "--connect-password ",
            "--connect-password=",
            "--apikey",
        ] {
            assert!(
                !code.contains(flag),
                "line {}: {flag} puts a secret on a command line: {line}",
                n + 1
            );
        }
        // `-e NAME=$secret` would put the value on podman's command line.
        for arg in code.split("-e ").skip(1) {
            let Some((_, value)) = arg
                .split_whitespace()
                .next()
                .and_then(|a| a.split_once('='))
            else {
                continue;
            };
            for name in secrets {
                assert!(
                    !value.contains(&format!("${name}")) && !value.contains(&format!("${{{name}")),
                    "line {}: {name} passed by value with -e: {line}",
                    n + 1
                );
            }
        }
    }
}

/// bash 3.2 (macOS's) and every bash before 4.4 call `"${a[@]}"` of an empty array unbound
/// under `set -u`, and no such bash can be installed here: every array the script starts empty
/// must be expanded as `${a[@]+"${a[@]}"}`.
#[test]
fn arrays_that_may_be_empty_are_expanded_the_bash_3_2_way() {
    let script = std::fs::read_to_string(repo_root().join("scripts/claude-sandbox.sh")).unwrap();
    let empty: Vec<&str> = script
        .match_indices("=()")
        .map(|(at, _)| {
            let head = &script[..at];
            let start = head
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            &script[start..at]
        })
        .collect();
    assert!(empty.contains(&"CLAUDE_ARGS"), "{empty:?}");
    for name in empty {
        let plain = format!("\"${{{name}[@]}}\"");
        let guarded = format!("${{{name}[@]+{plain}}}");
        assert_eq!(
            script.matches(&plain).count(),
            script.matches(&guarded).count(),
            "{name} is expanded as {plain} somewhere: write {guarded}"
        );
    }
}

/// On an SELinux host the project is mounted with `:Z`, elsewhere without it. This machine has
/// no SELinux, so a `podman` in front of the real one answers the script's `podman info` as an
/// SELinux host would and records the commands; the real podman runs them (`:Z` is a no-op
/// without SELinux).
#[test]
fn the_project_is_relabelled_only_on_selinux_hosts() {
    build_bases();
    let scope = Scope::new("selinux");
    let project = temp_dir("selinux-project");
    let shim = temp_dir("selinux-shim");
    let real = String::from_utf8(run(Command::new("sh").args(["-c", "command -v podman"])).stdout)
        .unwrap();
    for selinux in [true, false] {
        let log = shim.join(format!("commands-{selinux}"));
        std::fs::write(
            shim.join("podman"),
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >>'{}'\n\
                 if [ \"$1\" = info ]; then echo \"false {selinux}\"; exit 0; fi\n\
                 exec {} \"$@\"\n",
                log.display(),
                real.trim()
            ),
        )
        .unwrap();
        run(Command::new("chmod").arg("+x").arg(shim.join("podman")));
        let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
        run(sandbox(&scope)
            .env("PATH", path)
            .current_dir(&project)
            .args(["--rm", "mount", "--version"]));
        let commands = std::fs::read_to_string(&log).unwrap();
        let mount = format!("-v {}:/workspace", project.display());
        let claude_run = commands
            .lines()
            .find(|l| l.starts_with("run ") && l.contains(&mount))
            .unwrap_or_else(|| panic!("no Claude run in {commands}"));
        assert_eq!(
            claude_run.contains(&format!("{mount}:Z ")),
            selinux,
            "SELinux {selinux}: {claude_run}"
        );
    }
    let _ = std::fs::remove_dir_all(&project);
    let _ = std::fs::remove_dir_all(&shim);
}

#[test]
fn options_of_otel_without_otel_fail_and_start_nothing() {
    let scope = Scope::new("nootel");
    let out = sandbox(&scope)
        .args(["--log-api", "mount", "-p", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--log-api") && stderr.contains("--otel"),
        "{stderr}"
    );
    assert!(scope.containers().is_empty(), "{:?}", scope.containers());
    assert!(!podman_ok(&["network", "exists", &scope.net()]));

    // Likewise turning off a part of --otel without --otel.
    let out = sandbox(&scope)
        .args(["--no-claude-traces", "mount", "-p", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("add --otel"), "{stderr}");
    assert!(scope.containers().is_empty(), "{:?}", scope.containers());
}

/// The card's command, `podman build -t claude-api-logger scripts/claude-api-logger/` from the
/// repository root, builds the image (build-logger.sh runs exactly that, adding only the local
/// bases and the offline crates); with `--format docker` the same build keeps the HEALTHCHECK.
#[test]
fn image_is_small_non_root_and_has_a_healthcheck() {
    build_logger_image();
    let oci_health = podman(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck}}",
        LOGGER_IMAGE,
    ]);
    assert_eq!(
        oci_health, "null",
        "the OCI format has no HEALTHCHECK field"
    );
    build_logger_image_as(LOGGER_IMAGE_DOCKER, &["--format", "docker"]);
    let size: u64 = podman(&["image", "inspect", "-f", "{{.Size}}", LOGGER_IMAGE_DOCKER])
        .parse()
        .unwrap();
    assert!(size <= 40_000_000, "image is {size} bytes");
    assert_eq!(
        podman(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.User}}",
            LOGGER_IMAGE_DOCKER
        ]),
        "65532:65532"
    );
    let health = podman(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck.Test}}",
        LOGGER_IMAGE_DOCKER,
    ]);
    assert_eq!(
        health,
        r#"["CMD","/usr/local/bin/claude-api-logger","health"]"#
    );
    let ports = podman(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.ExposedPorts}}",
        LOGGER_IMAGE_DOCKER,
    ]);
    assert!(ports.contains("8000/tcp"), "{ports}");
    // The image's own HEALTHCHECK passes on a running container (no --health-cmd given).
    let scope = Scope::new("health");
    let name = format!("{}-logger", scope.name);
    podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "SEQ_HOST=seq",
        LOGGER_IMAGE_DOCKER,
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !podman_ok(&["healthcheck", "run", &name]) {
        assert!(
            Instant::now() < deadline,
            "the image's HEALTHCHECK never passed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// container/claude/Containerfile itself, on a local stand-in for its node base image (no
/// registry here): git from the Debian mirror and Claude Code from npm, as in a real build.
#[test]
fn claude_image_builds_from_its_containerfile_and_runs_claude_code_as_uid_1000() {
    build_bases();
    let root = repo_root();
    let containerfile = root.join("container/claude/Containerfile");
    let version = std::fs::read_to_string(&containerfile)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("ARG CLAUDE_CODE_VERSION=")
                .map(str::to_string)
        })
        .expect("ARG CLAUDE_CODE_VERSION in container/claude/Containerfile");
    let tag = "localhost/cal-test-claude-real:latest";
    run(Command::new("flock")
        .arg(format!(
            "{}/podman/claude-real.lock",
            require_env("CAL_CACHE")
        ))
        .args(["podman", "build", "-q", "--build-arg"])
        .arg(format!("NODE_IMAGE={NODE_IMAGE}"))
        .arg("-f")
        .arg(&containerfile)
        .args(["-t", tag])
        .arg(root.join("container/claude")));
    assert_eq!(
        podman(&["run", "--rm", tag, "--version"]),
        format!("{version} (Claude Code)")
    );
    let id = podman(&["run", "--rm", "--entrypoint", "id", tag]);
    assert!(id.starts_with("uid=1000(claude)"), "{id}");
    let git = podman(&["run", "--rm", "--entrypoint", "git", tag, "--version"]);
    assert!(git.starts_with("git version"), "{git}");
    assert_eq!(
        podman(&["image", "inspect", "-f", "{{.Config.WorkingDir}}", tag]),
        "/workspace"
    );
}

/// Seq 2025.2+ refuses to start a new instance without a first-run setting; so does the
/// stand-in's container, so a script that forgot them fails the e2e tests.
#[test]
fn seq_standin_container_refuses_to_start_without_first_run_settings() {
    build_peer_images();
    let out = Command::new("podman")
        .args(["run", "--rm", "-e", "ACCEPT_EULA=Y", STANDIN_IMAGE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SEQ_FIRSTRUN_ADMINPASSWORD"), "{stderr}");
}

/// Seq exiting at start (as Seq 2025.2 does without a first-run setting) fails the script with
/// Seq's own last log lines, instead of a "success" with nothing reaching Seq. Any image that
/// exits at once stands in for it here: the seqcli stand-in without arguments prints its usage.
#[test]
fn seq_exiting_at_start_fails_the_script_with_its_last_log_lines() {
    build_peer_images();
    let scope = Scope::new("seqdies");
    let out = sandbox(&scope)
        .env("SEQ_IMAGE", SEQCLI_IMAGE)
        .args(["--otel", "--rm", "mount", "--version"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("exited while starting"), "{stderr}");
    assert!(
        stderr.contains("Usage: seqcli-standin"),
        "Seq's log: {stderr}"
    );
    assert!(
        !scope.containers().contains(&scope.name),
        "Claude Code never started"
    );
}

/// A second run under a name whose Claude container is live (another terminal) stops before
/// touching anything of that session.
/// Seq's host port already taken (another Seq, say): the script stops saying which setting
/// picks another, and starts nothing else.
#[test]
fn a_taken_seq_port_fails_naming_the_setting_to_change() {
    build_peer_images();
    let scope = Scope::new("seqport");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = sandbox(&scope)
        .env("SEQ_UI_PORT", &port)
        .args(["--otel", "--rm", "mount", "--version"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("if 127.0.0.1:{port} is taken, set SEQ_UI_PORT")),
        "{stderr}"
    );
    assert!(
        !scope.containers().contains(&scope.name),
        "Claude Code never started"
    );
}

#[test]
fn a_running_sandbox_of_the_same_name_is_refused_not_replaced() {
    build_bases();
    let scope = Scope::new("busy");
    podman(&[
        "run",
        "-d",
        "--name",
        &scope.name,
        "--entrypoint",
        "sleep",
        CLAUDE_IMAGE,
        "600",
    ]);
    let out = sandbox(&scope)
        .args(["--otel", "mount", "--version"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is running"), "{stderr}");
    assert_eq!(
        podman(&["inspect", "-f", "{{.State.Running}}", &scope.name]),
        "true"
    );
    assert_eq!(
        scope.containers(),
        std::slice::from_ref(&scope.name),
        "nothing else started"
    );
}

#[test]
fn without_log_api_no_logger_container_starts() {
    build_peer_images();
    build_bases();
    let scope = Scope::new("nolog");
    // A logger left by an earlier --log-api run of this sandbox...
    let stale = format!("{}-api-logger", scope.name);
    podman(&[
        "run",
        "-d",
        "--name",
        &stale,
        "--entrypoint",
        "sleep",
        CLAUDE_IMAGE,
        "600",
    ]);
    // Seq's port published on a free host port: on 127.0.0.1 only.
    let ui_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = sandbox(&scope)
        .env("SEQ_UI_PORT", ui_port.to_string())
        // The stand-in "logger" (sleep as PID 1) ignores SIGTERM: don't wait 90 s for it.
        .env("LOGGER_STOP_TIMEOUT", "5")
        .args(["--otel", "--no-persist", "--rm", "mount", "--version"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Claude Code"), "{stdout}");
    let containers = scope.containers();
    // ...is stopped: only Seq keeps running.
    assert_eq!(
        containers,
        [format!("{}-seq", scope.name)],
        "only Seq keeps running"
    );
    let seq = format!("{}-seq", scope.name);
    assert_eq!(
        podman(&["port", &seq, "80"]),
        format!("127.0.0.1:{ui_port}")
    );
    assert!(
        stderr.contains(&format!(
            "Seq: http://127.0.0.1:{ui_port}, log in: user admin"
        )),
        "{stderr}"
    );
    // --no-persist: a new Seq each run, so the generated password is printed, not kept.
    assert!(stderr.contains("generated Seq admin password"), "{stderr}");
    assert!(!scope.state_dir().join("seq-admin-password").exists());
}

#[test]
fn podman_stop_of_the_logger_delivers_every_written_record() {
    let stack = Stack::start("stop");
    for i in 0..5 {
        let (status, _) = post_messages(stack.logger_port, &format!("quick {i}"), false);
        assert_eq!(status, 200);
    }
    // A slow stream still in flight when the stop comes: the proxy drains it, writes its
    // record, and the shipper delivers that record before the container exits.
    let port = stack.logger_port;
    let streaming = std::thread::spawn(move || post_messages(port, "slow one [[slow:250]]", true));
    std::thread::sleep(Duration::from_millis(600));
    podman(&["stop", "-t", "90", &stack.logger]);
    let (status, chunks) = streaming.join().unwrap();
    assert_eq!(status, 200);
    let text: String = chunks.iter().map(|c| c.1.as_str()).collect();
    assert!(text.contains("message_stop"), "the stream was cut: {text}");
    let exchanges = stack.exchanges();
    assert_eq!(
        exchanges.len(),
        6,
        "right after `podman stop`:\n{}",
        stack.logs()
    );
    let slow = exchanges.iter().find(|e| {
        e["body"].as_str().is_some_and(|b| b.contains(" 200 "))
            && attr(e, "claude.stream") == &Value::Bool(true)
    });
    assert!(slow.is_some(), "no streamed exchange among {exchanges:#?}");
    assert_eq!(
        podman(&["inspect", "-f", "{{.State.ExitCode}}", &stack.logger]),
        "0"
    );
    assert!(
        stack.logs().contains("every written record was delivered"),
        "{}",
        stack.logs()
    );
}

#[test]
fn killed_proxy_inside_the_container_is_restarted_and_traffic_continues() {
    let stack = Stack::start("restart");
    assert_eq!(post_messages(stack.logger_port, "before", false).0, 200);
    let before = container_pids(&stack.logger, "claude-api-prox");
    assert_eq!(before.len(), 1, "{before:?}");
    run(Command::new("kill").args(["-KILL", &before[0].to_string()]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = container_pids(&stack.logger, "claude-api-prox");
        // The new proxy may not be listening yet: a refused connection means "not back yet".
        if now.len() == 1
            && now != before
            && try_post_messages(stack.logger_port, "after", false).is_ok_and(|r| r.0 == 200)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "proxy not back:\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        stack.logs().contains("child was killed by signal SIGKILL"),
        "{}",
        stack.logs()
    );
    let exchanges = stack.wait_exchanges(2, Duration::from_secs(30));
    assert!(
        exchanges
            .iter()
            .any(|e| e["body"].as_str().is_some_and(|b| b.contains("200")))
    );
    assert_eq!(
        podman(&["inspect", "-f", "{{.State.Running}}", &stack.logger]),
        "true"
    );
}

/// The fake Anthropic API on the sandbox's network (created here, before the script, which
/// reuses it), as `fake-anthropic:8080`.
fn start_fake_upstream(scope: &Scope) {
    podman(&["network", "create", &scope.net()]);
    podman(&[
        "run",
        "-d",
        "--name",
        &format!("{}-fake", scope.name),
        "--network",
        &scope.net(),
        "--network-alias",
        "fake-anthropic",
        FAKE_IMAGE,
    ]);
}

/// Where the Seq stand-in started by the script keeps its events (its data volume).
/// The spans the stand-in stored, once `done` holds of them (at most 60 s).
fn wait_for_spans(store: &std::path::Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spans: Vec<Value> = std::fs::read_to_string(store.join("spans.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if done(&spans) {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans at the stand-in: {spans:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn seq_store(scope: &Scope) -> std::path::PathBuf {
    std::path::PathBuf::from(podman(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}}",
        &format!("{}-seq-data", scope.name),
    ]))
}

#[test]
fn recover_restarts_the_kept_claude_container_and_its_traffic_is_logged_again() {
    build_peer_images();
    build_logger_image();
    let scope = Scope::new("recover");
    start_fake_upstream(&scope);
    let workspace = temp_dir("recover-workspace");
    run(Command::new("chmod").arg("0777").arg(&workspace));
    // The fake API answers every text turn with this (and an echo of the first text block,
    // which Claude Code fills with its own reminders).
    let reply = "Hello from fake-anthropic.";

    // Without --rm the Claude container stays after its run...
    let first = run(sandbox(&scope).current_dir(&workspace).args([
        "--otel",
        "--log-api",
        "mount",
        "-p",
        "recover me",
    ]));
    let first = String::from_utf8_lossy(&first.stdout);
    assert!(first.contains(reply), "first run: {first}");
    assert_eq!(
        podman(&["inspect", "-f", "{{.State.Status}}", &scope.name]),
        "exited"
    );

    // ...and `recover` starts that same container again (same arguments, same session
    // volume), with Seq and the logger started afresh on their volumes.
    let second =
        run(sandbox(&scope)
            .current_dir(&workspace)
            .args(["--otel", "--log-api", "recover"]));
    let second = String::from_utf8_lossy(&second.stdout);
    assert!(second.contains(reply), "recovered run: {second}");

    // Both runs' turns reached the Seq stand-in: each print-mode run is its own session.
    let store = seq_store(&scope);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = stored_events(&store);
        let sessions: std::collections::BTreeSet<String> = events
            .iter()
            .filter(|e| is_exchange(e) && attr(e, "url.path") == "/v1/messages")
            .filter(|e| {
                body_of(&events, e, "request.body").is_some_and(|b| b.contains("recover me"))
            })
            .filter_map(|e| attr(e, "session.id").as_str().map(str::to_string))
            .collect();
        if sessions.len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sessions with the prompt at the stand-in: {sessions:?}; events: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Without a kept container there is nothing to recover.
    run(sandbox(&scope).args(["clean", "--containers"]));
    let missing = sandbox(&scope).arg("recover").output().unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no container"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    run(sandbox(&scope).args(["clean", "--volumes"]));
    let _ = std::fs::remove_dir_all(&workspace);
}

/// `clone` builds a missing Claude image before anything runs it (it used to run the image
/// for the git clone first and fail on the missing image). The build itself fails here: its
/// node base image cannot be pulled without a registry.
#[test]
fn clone_builds_a_missing_claude_image_before_running_it() {
    require_podman_env();
    let scope = Scope::new("clonebuild");
    let cwd = temp_dir("clonebuild-cwd");
    let out = sandbox(&scope)
        .current_dir(&cwd)
        .env("CLAUDE_IMAGE", "localhost/cal-test-missing-claude:none")
        .args(["--rm", "--repo=/srv/fixture.git", "clone", "-p", "hi"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "building localhost/cal-test-missing-claude:none from container/claude/Containerfile"
        ),
        "{stderr}"
    );
    assert!(
        !podman_ok(&["volume", "exists", &format!("{}-workspace", scope.name)]),
        "nothing ran before the build"
    );
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn clone_runs_claude_code_in_a_kept_clone_of_the_branch() {
    build_peer_images();
    build_logger_image();
    let scope = Scope::new("clone");
    // A directory without a git origin: clone mode then needs --repo, and says so.
    let cwd = temp_dir("clone-cwd");
    let no_repo = sandbox(&scope)
        .current_dir(&cwd)
        .arg("clone")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&no_repo.stderr);
    assert!(!no_repo.status.success());
    assert!(stderr.contains("no --repo=URL given"), "{stderr}");
    assert!(scope.containers().is_empty(), "{:?}", scope.containers());

    start_fake_upstream(&scope);
    // The test Claude image holds /srv/fixture.git (crates/claude-api-logger/tests/podman/bases.sh);
    // Claude Code runs a command in its workspace and the fake API echoes the result.
    let clone = |command: &str| {
        let out = run(sandbox(&scope).current_dir(&cwd).args([
            "--otel",
            "--log-api",
            "--rm",
            "--repo=/srv/fixture.git",
            "--branch=feature",
            "clone",
            "-p",
            &format!("[[tool:Bash:{command}]]"),
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = clone("pwd; git branch --show-current; cat fixture.txt");
    assert!(
        first.contains("Tool result received: /workspace")
            && first.contains("\nfeature\n")
            && first.contains("fixture on feature"),
        "first run: {first}"
    );

    // The clone lives in the workspace volume: a second run works in it again, not in a fresh
    // clone.
    podman(&[
        "run",
        "--rm",
        "-v",
        &format!("{}-workspace:/workspace", scope.name),
        "--entrypoint",
        "sh",
        CLAUDE_IMAGE,
        "-c",
        "echo 'local work' >/workspace/local.txt",
    ]);
    let second = clone("cat local.txt fixture.txt");
    assert!(
        second.contains("Tool result received: local work")
            && second.contains("fixture on feature"),
        "second run: {second}"
    );
    run(sandbox(&scope).args(["clean", "--containers", "--volumes"]));
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn sandbox_log_api_ships_a_real_claude_code_tool_use_session_to_seq() {
    build_peer_images();
    build_logger_image();
    let scope = Scope::new("e2e");
    start_fake_upstream(&scope);
    let workspace = temp_dir("e2e-workspace");
    run(Command::new("chmod").arg("0777").arg(&workspace));

    // The session viewer published on a free host port; the tool prints how many variables of
    // the Claude container name the viewer (none may: its token is the user's only).
    let viewer_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let mut child = sandbox(&scope)
        .current_dir(&workspace)
        .env("VIEWER_PORT", viewer_port.to_string())
        .args([
            "--otel",
            "--log-api",
            "--rm",
            "mount",
            "-p",
            "Please run it [[tool:Bash:echo marker-XYZ; env | grep -ci -e viewer -e view_base || true]] [[slow:150]]",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Watchdog: a hung Claude Code run ends the script (and the test) instead of hanging CI.
    let claude_container = scope.name.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(420));
        podman_ok(&["rm", "-f", "-t", "0", &claude_container]);
    });
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut lines: Vec<(Instant, String)> = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        lines.push((Instant::now(), line.unwrap()));
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "Claude Code still running"
        );
    }
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    let output: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(&l.1).ok())
        .collect();
    assert!(
        status.success(),
        "sandbox failed: {status}\n{stderr}\n{lines:#?}"
    );

    // Claude Code ran the tool and got the fake model's answer to its result.
    let tool_result = output.iter().any(|v| {
        v["type"] == "user"
            && v.to_string().contains("tool_result")
            && v.to_string().contains("marker-XYZ")
    });
    assert!(tool_result, "no tool_result with the marker in {lines:#?}");
    let result = output
        .iter()
        .find(|v| v["type"] == "result")
        .expect("a result line");
    assert!(
        result["result"]
            .as_str()
            .unwrap_or("")
            .contains("Tool result received: marker-XYZ"),
        "{result}"
    );

    // Live: the first turn's deltas reached Claude Code while the upstream was still
    // sending (150 ms between events), not all at once at the end.
    let at = |pred: &dyn Fn(&Value) -> bool| {
        lines
            .iter()
            .find(|(_, l)| serde_json::from_str::<Value>(l).is_ok_and(|v| pred(&v)))
            .map(|(t, _)| *t)
    };
    let first_delta =
        at(&|v| v["type"] == "stream_event" && v["event"]["type"] == "content_block_delta")
            .expect("partial messages streamed");
    let first_stop = at(&|v| v["type"] == "stream_event" && v["event"]["type"] == "message_stop")
        .expect("message_stop streamed");
    let spread = first_stop.duration_since(first_delta);
    assert!(
        spread >= Duration::from_millis(400),
        "deltas arrived within {spread:?}: buffered, not live"
    );

    // The logger is there, and the stand-in got both exchanges with full bodies.
    let logger = format!("{}-api-logger", scope.name);
    assert!(scope.containers().contains(&logger));
    let store = seq_store(&scope);
    let (events, turns) = wait_for_tool_turns(&store);
    for turn in &turns {
        assert_eq!(attr(turn, "http.request.method"), "POST");
        assert_eq!(attr(turn, "http.response.status_code"), 200);
        assert!(attr(turn, "gen_ai.request.model").is_string(), "{turn}");
        assert!(
            attr(turn, "gen_ai.usage.input_tokens")
                .as_i64()
                .unwrap_or(0)
                > 0,
            "{turn}"
        );
        assert!(
            attr(turn, "session.id")
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{turn}"
        );
        let request = body_of(&events, turn, "request.body").expect("request body shipped");
        let request: Value = serde_json::from_str(&request).expect("request body is JSON");
        let request = &request["json"];
        if attr(turn, "claude.request.encoding") == "delta" {
            // Conversation deltas (docs/seq-events.md): the system prompt's big block and every
            // tool are context events, named by digest from the request.
            let shipped_once = |field: &str| {
                let refs = request[field]["$context"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                !refs.is_empty()
                    && refs.iter().filter_map(Value::as_str).all(|hash| {
                        events
                            .iter()
                            .any(|e| attr(e, "claude.context.hash").as_str() == Some(hash))
                    })
            };
            assert!(
                shipped_once("system"),
                "system prompt shipped once: {request}"
            );
            assert!(shipped_once("tools"), "tools shipped once: {request}");
        } else {
            assert!(
                request["system"].to_string().len() > 1000,
                "system prompt shipped in full"
            );
            assert!(
                request["tools"].as_array().is_some_and(|t| !t.is_empty()),
                "tools shipped"
            );
        }
    }
    let shipped: String = events.iter().map(|e| e.to_string()).collect();
    assert!(
        shipped.contains("echo marker-XYZ"),
        "the tool_use input is in the shipped response"
    );
    assert!(
        !shipped.contains("sk-ant-test-secret"),
        "the API key reached Seq"
    );
    // One trace: each exchange's span sits under the claude_code.llm_request span Claude Code
    // made for it (--otel turns on its traces, --log-api its traceparent header).
    let spans = wait_for_spans(&store, |spans| {
        let count = |name: &str| {
            spans
                .iter()
                .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with(name)))
                .count()
        };
        count("chat ") >= 2 && count("claude_code.llm_request") >= 2
    });
    for exchange in spans
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("chat ")))
    {
        let parent = spans
            .iter()
            .find(|s| s["span_id"] == exchange["parent_span_id"])
            .unwrap_or_else(|| panic!("no parent span for {exchange}"));
        assert_eq!(parent["name"], "claude_code.llm_request", "{exchange}");
        assert_eq!(parent["trace_id"], exchange["trace_id"]);
    }
    // All exchanges of one Claude Code run carry its session id.
    let sessions: std::collections::BTreeSet<_> = turns
        .iter()
        .map(|t| attr(t, "session.id").to_string())
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    // At exit the script names that session: its Seq query, and the logger's own viewer, whose
    // printed command shows the session without Seq.
    let session = attr(&turns[0], "session.id").as_str().unwrap();
    let line = stderr
        .lines()
        .find(|l| {
            l.contains(&format!(
                "session {session} in Seq: session.id = '{session}'"
            ))
        })
        .unwrap_or_else(|| panic!("no line naming session {session}: {stderr}"));
    let command = line.split("without Seq: ").nth(1).unwrap();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..2], ["podman", "exec"], "{line}");
    let shown = run(Command::new("podman").args(&words[1..]));
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("echo marker-XYZ") && shown.contains("Tool result received"),
        "{shown}"
    );

    // --otel: Claude Code's own telemetry reached the same Seq (with the API key, which the
    // stand-in requires because the script started it with an admin password).
    assert!(
        events
            .iter()
            .any(|e| e["resource"]["service.name"] == "claude-code"),
        "no Claude Code OTel event at the stand-in"
    );
    let auth: Value = serde_json::from_str(
        &std::fs::read_to_string(store.join("standin-auth.json")).expect("first-run state"),
    )
    .unwrap();
    assert!(
        auth["authentication"]["admin"]["password"].is_string(),
        "Seq started with an admin password: {auth}"
    );
    assert!(
        stderr.contains("generated Seq admin password")
            && stderr.contains("created the Seq API key"),
        "{stderr}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let password = scope.state_dir().join("seq-admin-password");
    assert_eq!(
        std::fs::metadata(&password).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Where to look is printed again when the run ends (Claude Code's screen covered it).
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.contains("this run's API exchanges in Seq: has(claude.outcome)"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("[sandbox] Seq: ").count(), 2, "{stderr}");
    // ~/.claude.json (onboarding state) is kept on the config volume.
    let config = podman(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}}",
        &format!("{}-config", scope.name),
    ]);
    assert!(
        std::path::Path::new(&config).join(".claude.json").exists(),
        "no .claude.json on the config volume"
    );
    // No API key in the logger's output or files.
    let logger_out = Command::new("podman")
        .args(["logs", &logger])
        .output()
        .unwrap();
    let logger_out = format!(
        "{}{}",
        String::from_utf8_lossy(&logger_out.stdout),
        String::from_utf8_lossy(&logger_out.stderr)
    );
    assert!(!logger_out.contains("sk-ant-test-secret"), "{logger_out}");
    let log_volume = podman(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}}",
        &format!("{}-api-log", scope.name),
    ]);
    for file in std::fs::read_dir(&log_volume).unwrap().flatten() {
        let bytes = std::fs::read(file.path()).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("sk-ant-test-secret"),
            "the API key is in {}",
            file.path().display()
        );
    }
    check_the_session_viewer(&scope, viewer_port, &stderr, &output, &events, &log_volume);
    // `clean` removes what the script started; the fake upstream is this test's own.
    run(sandbox(&scope).args(["clean", "--containers", "--volumes"]));
    assert_eq!(scope.containers(), [format!("{}-fake", scope.name)]);
    assert!(!podman_ok(&[
        "volume",
        "exists",
        &format!("{}-seq-data", scope.name)
    ]));
    let _ = std::fs::remove_dir_all(&workspace);
}

/// The sandbox's session viewer: printed with its token, published on 127.0.0.1 only, the
/// token needed from the host and from the sandbox network alike, never in the Claude
/// container's environment, and every exchange shipped to Seq links to it; the link's
/// exchange serves the log's request body byte for byte.
fn check_the_session_viewer(
    scope: &Scope,
    port: u16,
    stderr: &str,
    output: &[Value],
    events: &[Value],
    log_volume: &str,
) {
    let prefix = format!("[sandbox] session viewer: http://127.0.0.1:{port}/t/");
    let printed: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(printed.len(), 2, "at start and at exit: {stderr}");
    let token = printed[0][prefix.len()..]
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 48, "{}", printed[0]);
    let base = format!("http://127.0.0.1:{port}/t/{token}");
    // The Claude container's environment names no viewer setting (the tool printed 0).
    assert!(
        output.iter().any(|v| v["type"] == "user"
            && v.to_string().contains("tool_result")
            && v.to_string().contains("marker-XYZ\\n0")),
        "the Claude container's environment mentions the viewer: {output:#?}"
    );
    // From the host: nothing without the token; with it, a cookie and the session list.
    let addr = format!("127.0.0.1:{port}");
    assert!(viewer_get(&addr, "/", &[]).starts_with("HTTP/1.1 401"));
    let login = viewer_get(&addr, &format!("/t/{token}/"), &[]);
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session = events
        .iter()
        .find_map(|e| attr(e, "session.id").as_str())
        .unwrap();
    let list = viewer_get(&addr, "/", &[("Cookie", &cookie)]);
    assert!(
        list.starts_with("HTTP/1.1 200") && list.contains(session),
        "{list}"
    );
    assert!(
        stderr.contains(&format!(
            "session {session} in the viewer: {base}/session/{session}"
        )),
        "{stderr}"
    );
    // From the sandbox network, where Claude Code runs: refused without the token.
    let from_network = podman(&[
        "run",
        "--rm",
        "--network",
        &scope.net(),
        "--entrypoint",
        "bash",
        CLAUDE_IMAGE,
        "-c",
        "exec 3<>/dev/tcp/api-logger/8001; printf 'GET / HTTP/1.0\\r\\nHost: api-logger\\r\\n\\r\\n' >&3; head -1 <&3",
    ]);
    assert_eq!(
        from_network.split_whitespace().nth(1),
        Some("401"),
        "{from_network}"
    );
    // Every exchange event links to the viewer; the link's request body is the log's.
    let exchanges: Vec<&Value> = events.iter().filter(|e| is_exchange(e)).collect();
    assert!(!exchanges.is_empty());
    for e in &exchanges {
        let id = attr(e, "claude.exchange.id").as_str().unwrap();
        assert_eq!(
            attr(e, "claude.view.url").as_str(),
            Some(format!("{base}/exchange/{id}").as_str()),
            "{e}"
        );
    }
    // A Messages call (Claude Code also makes requests without a body).
    let turn = exchanges
        .iter()
        .find(|e| attr(e, "url.path") == "/v1/messages")
        .expect("a /v1/messages exchange");
    let id = attr(turn, "claude.exchange.id").as_str().unwrap();
    let log = std::fs::read_to_string(std::path::Path::new(log_volume).join("claude-logger.log"))
        .unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("\"id\":\"{id}\"")))
        .expect("the exchange's line");
    let record: Value = serde_json::from_str(line).unwrap();
    let download = viewer_get(
        &addr,
        &format!("/exchange/{id}/request.json"),
        &[("Cookie", &cookie)],
    );
    let (head, body) = download.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    let shown: Value = serde_json::from_str(body).expect("the request body is JSON");
    assert_eq!(shown, record["request"]["body"]["json"]);
    assert!(
        line.contains(body),
        "the body is the log's text byte for byte"
    );
}

/// One HTTP/1.1 GET to the viewer; the whole answer (head and body).
fn viewer_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> String {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(addr).expect("the viewer's host port");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    conn.write_all((request + "\r\n").as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer
}
