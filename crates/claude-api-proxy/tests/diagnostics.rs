//! Diagnostics on stderr never hold traffic: they go through tracing-appender's non-blocking
//! writer, so a stderr nobody reads (a full pipe, a stalled terminal or log collector) drops
//! diagnostic lines, counted, instead of stopping the proxy's one forwarding thread.

mod common;

use common::{client, fake_upstream, message_request, read_listen_addr};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn a_stderr_nobody_reads_never_holds_a_request() {
    let upstream = fake_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_claude-api-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--log-file",
        ])
        .arg(dir.path().join("traffic.log"))
        .env_clear()
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Held open and never read: once the pipe's 64 KiB are full, a blocking write waits.
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let addr = read_listen_addr(&mut stdout).await;
    // The console lines go to stdout: keep it drained so only stderr is left unread.
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink).await;
    });

    // Each malformed request makes the proxy log a debug line on stderr (~150 bytes): 2,000
    // of them are several times the pipe's capacity.
    for i in 0..2_000 {
        let answered = tokio::time::timeout(Duration::from_secs(10), async {
            let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
            conn.write_all(b"NOT HTTP\r\n\r\n").await.unwrap();
            let mut answer = Vec::new();
            let _ = conn.read_to_end(&mut answer).await;
        })
        .await;
        assert!(
            answered.is_ok(),
            "malformed request {i} got no answer within 10 s: the proxy waits on its stderr"
        );
    }
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        client()
            .post(format!("http://{addr}/v1/messages"))
            .header("x-api-key", "sk-ant-test")
            .json(&message_request("still served", false))
            .send(),
    )
    .await
    .expect("a request after stderr filled up is answered within 10 s")
    .unwrap();
    assert_eq!(response.status(), 200);

    // The lines were produced (the pipe is full), so the test did test a full stderr.
    let mut stderr = child.stderr.take().unwrap();
    let mut buf = vec![0u8; 128 * 1024];
    let mut read = 0;
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(500), stderr.read(&mut buf[read..])).await
    {
        if n == 0 || read + n == buf.len() {
            break;
        }
        read += n;
    }
    assert!(read >= 60 * 1024, "only {read} bytes of diagnostics");
}
