//! The proxy's promises about safety and configuration: no open relay, no secret in the log or
//! its own output, an owner-only log file, clear failures on bad settings, a useful `--help`.

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use common::{Proxy, client, custom_upstream, message_request};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An upstream that counts the requests it gets and answers 200 with its own name.
async fn counting_upstream(name: &'static str) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().fallback(move |req: Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        if req.method() == http::Method::GET {
            assert!(
                !req.headers().contains_key("transfer-encoding"),
                "a GET without a body is forwarded without one"
            );
        }
        async move {
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(format!("{{\"served_by\":\"{name}\"}}")))
                .unwrap()
        }
    });
    (custom_upstream(router).await, hits)
}

/// Sends `raw` on a fresh connection to `addr`; returns the response head and body text.
async fn raw_request(addr: std::net::SocketAddr, raw: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn host_header_and_absolute_form_targets_never_reach_another_host() {
    let (configured, configured_hits) = counting_upstream("configured").await;
    let (other, other_hits) = counting_upstream("other").await;
    let other_authority = other.trim_start_matches("http://");
    let proxy = Proxy::start(&configured).await;

    let via_host = raw_request(
        proxy.addr,
        &format!("GET /v1/models HTTP/1.1\r\nHost: {other_authority}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        via_host.contains("\"served_by\":\"configured\""),
        "{via_host}"
    );

    let absolute = raw_request(
        proxy.addr,
        &format!(
            "GET {other}/v1/models?x=1 HTTP/1.1\r\nHost: {other_authority}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(
        absolute.contains("\"served_by\":\"configured\""),
        "{absolute}"
    );

    let connect = raw_request(
        proxy.addr,
        &format!(
            "CONNECT {other_authority} HTTP/1.1\r\nHost: {other_authority}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(!connect.starts_with("HTTP/1.1 200"), "{connect}");

    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "the other host saw nothing"
    );
    assert_eq!(configured_hits.load(Ordering::SeqCst), 2);
    let records = proxy.records(2).await;
    assert_eq!(records[1]["request"]["path"], "/v1/models");
    assert_eq!(records[1]["request"]["query"], "x=1");
}

#[tokio::test]
async fn secrets_appear_neither_in_the_log_nor_in_the_proxy_output() {
    let router = axum::Router::new().fallback(|_req: Request| async {
        Response::builder()
            .header("content-type", "application/json")
            .header(
                "set-cookie",
                "session=cookie-secret-from-upstream; HttpOnly",
            )
            .body(Body::from("{\"ok\":true}"))
            .unwrap()
    });
    // Trace-level diagnostics: whatever the proxy or its libraries print must hold no secret.
    let proxy = Proxy::start_with(
        &custom_upstream(router).await,
        &[],
        &[("RUST_LOG", "trace")],
    )
    .await;
    let secrets = [
        "sk-ant-api03-very-secret-key",
        "sk-ant-oat01-bearer-secret",
        "cookie-secret-from-client",
        "cookie-secret-from-upstream",
    ];
    for auth in [
        ("x-api-key", secrets[0].to_string()),
        ("authorization", format!("Bearer {}", secrets[1])),
    ] {
        let response = client()
            .post(proxy.url("/v1/messages"))
            .header(auth.0, auth.1)
            .header("cookie", format!("c={}", secrets[2]))
            .json(&message_request("keep my secrets", false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("set-cookie"));
    }
    let records = proxy.records(2).await;
    assert_eq!(records[0]["request"]["headers"]["x-api-key"], "[REDACTED]");
    assert_eq!(
        records[1]["request"]["headers"]["authorization"],
        "[REDACTED]"
    );
    assert_eq!(records[0]["request"]["headers"]["cookie"], "[REDACTED]");
    assert_eq!(
        records[0]["response"]["headers"]["set-cookie"],
        "[REDACTED]"
    );
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    let stdout = proxy.console(2).await.join("\n");
    let stderr = proxy.stderr();
    assert!(!stderr.is_empty(), "trace output was collected");
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} in the log file");
        assert!(!stdout.contains(secret), "{secret} on stdout");
        assert!(!stderr.contains(secret), "{secret} on stderr");
    }
}

#[tokio::test]
async fn log_file_is_created_readable_by_its_owner_only() {
    let (upstream, _) = counting_upstream("configured").await;
    let proxy = Proxy::start(&upstream).await;
    client().get(proxy.url("/health")).send().await.unwrap();
    proxy.records(1).await;
    let mode = std::fs::metadata(&proxy.log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

/// Runs the binary with `args` and `env` (nothing else); returns (exit code, stdout, stderr).
fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_claude-api-proxy"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run claude-api-proxy");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configuration_exits_64_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    let log = log.to_str().unwrap();
    let missing_dir = dir.path().join("no/such/dir/t.log");
    // (flags, environment, the setting the message must name)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec!["--listen", "nowhere"], vec![], "--listen"),
        (
            vec!["--upstream", "ftp://example.com"],
            vec![],
            "--upstream",
        ),
        (vec![], vec![("UPSTREAM_URL", "not a url")], "UPSTREAM_URL"),
        (vec!["--capture-cap", "0"], vec![], "--capture-cap"),
        (vec!["--capture-cap", "lots"], vec![], "CAPTURE_CAP"),
        (vec!["--max-connections", "0"], vec![], "--max-connections"),
        (
            vec![],
            vec![("HEADER_READ_TIMEOUT", "0")],
            "HEADER_READ_TIMEOUT",
        ),
        (
            vec!["--max-header-bytes", "1k"],
            vec![],
            "--max-header-bytes",
        ),
        (vec![], vec![("REDACT_BODIES", "maybe")], "REDACT_BODIES"),
        (
            vec!["--redact-patterns-file", "/no/such/file"],
            vec![],
            "--redact-patterns-file",
        ),
        (vec!["--idle-timeout", "soon"], vec![], "--idle-timeout"),
        (vec![], vec![("DRAIN_TIMEOUT", "-1")], "DRAIN_TIMEOUT"),
        (
            vec!["--log-file", missing_dir.to_str().unwrap()],
            vec![],
            "--log-file",
        ),
        (vec!["--no-such-flag"], vec![], "--no-such-flag"),
    ];
    for (args, env, setting) in cases {
        let mut all = vec![];
        if !args.contains(&"--log-file") {
            all.extend(["--log-file", log]);
        }
        if !args.contains(&"--listen") {
            all.extend(["--listen", "127.0.0.1:0"]);
        }
        all.extend(&args);
        let (code, _, stderr) = run_cli(&all, &env);
        assert_eq!(code, Some(64), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(setting),
            "{args:?} {env:?}: stderr should name {setting}: {stderr}"
        );
        let messages = stderr
            .lines()
            .filter(|l| l.starts_with("error:") || l.starts_with("claude-api-proxy:"))
            .count();
        assert_eq!(messages, 1, "one clear message: {stderr}");
    }
}

#[test]
fn help_lists_every_flag_with_its_env_name_and_default() {
    let (code, stdout, _) = run_cli(&["--help"], &[]);
    assert_eq!(code, Some(0));
    for (flag, env, default) in [
        ("--listen", "PROXY_LISTEN", "0.0.0.0:8000"),
        ("--upstream", "UPSTREAM_URL", "https://api.anthropic.com"),
        ("--log-file", "LOG_FILE", "/var/log/claude-logger.log"),
        ("--capture-cap", "CAPTURE_CAP", "64MiB"),
        ("--idle-timeout", "IDLE_TIMEOUT", "600"),
        ("--drain-timeout", "DRAIN_TIMEOUT", "30"),
    ] {
        assert!(stdout.contains(flag), "{flag} missing: {stdout}");
        assert!(
            stdout.contains(&format!("env: {env}")),
            "{env} missing: {stdout}"
        );
        assert!(
            stdout.contains(&format!("default: {default}")),
            "{default} missing: {stdout}"
        );
    }
}

/// Runs `openssl` with `args`; panics with its stderr if it fails.
fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TLS server on 127.0.0.1 (`openssl s_server -www`: answers any GET with a status page)
/// presenting `cert`; returns it and its port once it accepts connections.
async fn tls_upstream(cert: &str, key: &str) -> (tokio::process::Child, u16) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = tokio::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start openssl s_server");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, port)
}

#[tokio::test]
async fn upstream_with_an_untrusted_certificate_is_refused() {
    // A TLS upstream with a self-signed certificate: the proxy must refuse it rather than send
    // the API key to whoever answers.
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| format!("{}/{name}", dir.path().display());
    let (key, cert) = (path("key.pem"), path("cert.pem"));
    let subject = [
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    ];
    openssl(
        &[
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ][..],
            &subject,
            &["-keyout", &key, "-out", &cert],
        ]
        .concat(),
    );
    let (mut server, port) = tls_upstream(&cert, &key).await;
    let proxy = Proxy::start(&format!("https://127.0.0.1:{port}")).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-must-not-leave")
        .json(&message_request("hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "upstream_unreachable");
    let error = r["error"].as_str().unwrap().to_ascii_lowercase();
    assert!(error.contains("certificate"), "{error}");
    let _ = server.kill().await;
}

#[tokio::test]
async fn upstream_with_a_certificate_from_the_system_store_is_reached() {
    // The other side of the check above: a certificate issued by a CA in the system store
    // (SSL_CERT_FILE stands in for /etc/ssl/certs) is trusted, and the exchange goes through.
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| format!("{}/{name}", dir.path().display());
    let (ca_key, ca, key, csr, cert, ext) = (
        path("ca.key"),
        path("ca.pem"),
        path("leaf.key"),
        path("leaf.csr"),
        path("leaf.pem"),
        path("leaf.ext"),
    );
    let new_key = ["-newkey", "rsa:2048", "-nodes"];
    openssl(
        &[
            &["req", "-x509", "-days", "1", "-subj", "/CN=test CA"][..],
            &new_key,
            &["-keyout", &ca_key, "-out", &ca],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=127.0.0.1"][..],
            &new_key,
            &["-keyout", &key, "-out", &csr],
        ]
        .concat(),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    let (mut server, port) = tls_upstream(&cert, &key).await;
    let no_dir = path("no-cert-dir");
    let proxy = Proxy::start_with(
        &format!("https://127.0.0.1:{port}"),
        &[],
        &[("SSL_CERT_FILE", &ca), ("SSL_CERT_DIR", &no_dir)],
    )
    .await;
    let response = client().get(proxy.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let r = proxy.only_record().await;
    assert_eq!(r["outcome"], "complete", "{r}");
    let _ = server.kill().await;
}
